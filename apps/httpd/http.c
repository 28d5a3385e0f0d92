/*
 * apps/httpd/http.c: reading requests (see http.h).
 * Implements: RFC 9112 (HTTP/1.1) §2.2 message parsing, §3 request line,
 *             §5 field syntax; RFC 9110 §5.6.7 IMF-fixdate, §14.1.2 byte
 *             ranges; RFC 3986 §2.1 percent-encoding, §5.2.4 dot segments.
 *
 * Everything here takes bytes from the network: every index is checked
 * against the length it came with, no input is assumed NUL-terminated, and
 * numbers are parsed with their overflow checked. tests/fuzz/fuzz_http.c
 * runs all of it under ASan/UBSan.
 */
#include <string.h>

#include "http.h"

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static bool ieq(const char *a, size_t alen, const char *b)
{
	size_t n = strlen(b);
	if (alen != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)a[i]) != b[i])
			return false;
	return true;
}

/* RFC 9110 §5.6.2: tchar. */
static bool tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The end of the line starting at p (the index of its '\n'), or -1. */
static long line_end(const char *buf, size_t p, size_t len)
{
	const char *nl = memchr(buf + p, '\n', len - p);
	return nl ? nl - buf : -1;
}

static enum http_method method_of(const char *m, size_t n)
{
	static const char *const other[] = {"POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
	if (n == 3 && memcmp(m, "GET", 3) == 0)
		return HTTP_GET;
	if (n == 4 && memcmp(m, "HEAD", 4) == 0)
		return HTTP_HEAD;
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
		if (n == strlen(other[i]) && memcmp(m, other[i], n) == 0)
			return HTTP_OTHER_KNOWN;
	return HTTP_UNKNOWN;
}

/* "Connection: keep-alive, Upgrade": does the comma list hold token t? */
static bool list_has(const char *v, size_t n, const char *t)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t s = i;
		while (i < n && v[i] != ',')
			i++;
		size_t e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e > s && ieq(v + s, e - s, t))
			return true;
	}
	return false;
}

static int request_line(const char *l, size_t n, struct http_request *req)
{
	const char *sp1 = memchr(l, ' ', n);
	if (!sp1 || sp1 == l)
		return -400;
	req->method_s = l;
	req->method_len = (size_t)(sp1 - l);
	for (size_t i = 0; i < req->method_len; i++)
		if (!tchar((unsigned char)l[i]))
			return -400;
	const char *t = sp1 + 1, *end = l + n;
	const char *sp2 = memchr(t, ' ', (size_t)(end - t));
	if (!sp2 || sp2 == t)
		return -400;
	req->target = t;
	req->target_len = (size_t)(sp2 - t);
	for (size_t i = 0; i < req->target_len; i++)
		if ((unsigned char)t[i] <= 0x20 || t[i] == 0x7f)
			return -400;
	const char *v = sp2 + 1;
	size_t vl = (size_t)(end - v);
	if (vl != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' || v[5] > '9' || v[7] < '0' ||
	    v[7] > '9')
		return -400;
	if (v[5] != '1')
		return -501; /* 505 in RFC terms: only HTTP/1.x is spoken here */
	req->minor = v[7] - '0';
	req->method = method_of(req->method_s, req->method_len);
	return 0;
}

static int field(const char *l, size_t n, struct http_request *req)
{
	const char *colon = memchr(l, ':', n);
	if (!colon || colon == l)
		return -400;
	size_t nl = (size_t)(colon - l);
	for (size_t i = 0; i < nl; i++)
		if (!tchar((unsigned char)l[i]))
			return -400; /* §5.1: no whitespace between name and colon */
	const char *v = colon + 1, *end = l + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	size_t vl = (size_t)(end - v);
	for (size_t i = 0; i < vl; i++)
		if (v[i] == '\0' || v[i] == '\r')
			return -400;
	if (ieq(l, nl, "connection")) {
		if (list_has(v, vl, "close"))
			req->keep_alive = false;
		else if (list_has(v, vl, "keep-alive"))
			req->keep_alive = true;
	} else if (ieq(l, nl, "content-length")) {
		uint64_t x = 0;
		if (vl == 0 || vl > 18)
			return -400;
		for (size_t i = 0; i < vl; i++) {
			if (v[i] < '0' || v[i] > '9')
				return -400;
			x = x * 10 + (uint64_t)(v[i] - '0');
		}
		if (x)
			req->has_body = true;
	} else if (ieq(l, nl, "transfer-encoding")) {
		req->has_body = true;
	} else if (ieq(l, nl, "range")) {
		req->range = v;
		req->range_len = vl;
	} else if (ieq(l, nl, "if-none-match")) {
		req->if_none_match = v;
		req->if_none_match_len = vl;
	} else if (ieq(l, nl, "if-modified-since")) {
		req->if_modified_since = http_parse_date(v, vl);
	} else if (ieq(l, nl, "host")) {
		if (req->host)
			return -400; /* §3.2: more than one Host */
		req->host = true;
	}
	return 0;
}

int http_parse(const char *buf, size_t len, struct http_request *req)
{
	size_t p = 0;
	memset(req, 0, sizeof(*req));
	req->if_modified_since = -1;
	/* §2.2: "SHOULD ignore at least one empty line (CRLF) received prior to the request-line". */
	while (p < len && p < 4 && (buf[p] == '\r' || buf[p] == '\n'))
		p++;
	size_t limit = len - p < HTTP_MAX_LINE + 2 ? len - p : HTTP_MAX_LINE + 2;
	long e = line_end(buf, p, p + limit);
	if (e < 0)
		return len - p > HTTP_MAX_LINE ? -414 : 0;
	size_t ll = (size_t)e - p;
	if (ll && buf[e - 1] == '\r')
		ll--;
	if (ll > HTTP_MAX_LINE)
		return -414;
	int err = request_line(buf + p, ll, req);
	if (err)
		return err;
	req->keep_alive = req->minor >= 1;
	p = (size_t)e + 1;
	for (int fields = 0;; fields++) {
		size_t cap = len < HTTP_MAX_HEADERS ? len : HTTP_MAX_HEADERS;
		if (p >= cap)
			return len >= HTTP_MAX_HEADERS ? -431 : 0;
		e = line_end(buf, p, cap);
		if (e < 0)
			return len >= HTTP_MAX_HEADERS ? -431 : 0;
		ll = (size_t)e - p;
		if (ll && buf[e - 1] == '\r')
			ll--;
		if (ll == 0)
			break; /* the blank line: the head is complete */
		if (fields >= HTTP_MAX_FIELDS)
			return -431;
		if (buf[p] == ' ' || buf[p] == '\t')
			return -400; /* §5.2: obsolete line folding is refused */
		if ((err = field(buf + p, ll, req)))
			return err;
		p = (size_t)e + 1;
	}
	if (req->minor >= 1 && !req->host)
		return -400; /* RFC 9112 §3.2: "MUST respond with a 400 ... lacks a Host header field" */
	return (int)e + 1;
}

static int hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int http_path(const char *target, size_t len, char *out, size_t cap, bool *slash, const char **query, size_t *query_len)
{
	char dec[HTTP_MAX_PATH];
	size_t d = 0, i = 0;
	*query = NULL;
	*query_len = 0;
	*slash = false;
	if (cap < 2)
		return -400;
	/* absolute-form (RFC 9112 §3.2.2): "http://host/path" -> "/path". */
	if (len > 7 && (ieq(target, 7, "http://") || (len > 8 && ieq(target, 8, "https://")))) {
		i = target[4] == ':' ? 7 : 8;
		while (i < len && target[i] != '/' && target[i] != '?')
			i++;
		if (i == len || target[i] != '/') {
			target = "/";
			len = 1;
			i = 0;
		}
	}
	if (i >= len || target[i] != '/')
		return -400;
	for (; i < len && target[i] != '?' && target[i] != '#'; i++) {
		int c = (unsigned char)target[i];
		if (c == '%') {
			int h = i + 2 < len ? hex(target[i + 1]) : -1, l = i + 2 < len ? hex(target[i + 2]) : -1;
			if (h < 0 || l < 0)
				return -400;
			c = h << 4 | l;
			i += 2;
		}
		if (c < 0x20 || c == 0x7f)
			return -400; /* %00 and friends: no file has such a name */
		if (d == sizeof(dec))
			return -400;
		dec[d++] = (char)c;
	}
	if (i < len && target[i] == '?') {
		*query = target + i + 1;
		*query_len = len - i - 1;
	}
	/* RFC 3986 §5.2.4, except that ".." above the root is refused, not dropped. */
	size_t o = 0;
	bool dir = true;
	for (size_t s = 0; s < d;) {
		while (s < d && dec[s] == '/')
			s++;
		size_t e = s;
		while (e < d && dec[e] != '/')
			e++;
		size_t n = e - s;
		dir = e < d || n == 0;
		if (n == 0)
			break;
		if (n == 1 && dec[s] == '.') {
			dir = true;
		} else if (n == 2 && dec[s] == '.' && dec[s + 1] == '.') {
			if (o == 0)
				return -400;
			while (o > 0 && out[o - 1] != '/')
				o--;
			o--; /* the '/' */
			dir = true;
		} else {
			if (o + 1 + n + 1 > cap)
				return -400;
			out[o++] = '/';
			memcpy(out + o, dec + s, n);
			o += n;
		}
		s = e;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	*slash = dir;
	return 0;
}

static bool number(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > 18)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

int http_range(const char *v, size_t len, uint64_t size, uint64_t *first, uint64_t *last)
{
	if (len < 7 || !ieq(v, 6, "bytes=") || memchr(v, ',', len))
		return 0;
	v += 6;
	len -= 6;
	const char *dash = memchr(v, '-', len);
	if (!dash)
		return 0;
	size_t a_len = (size_t)(dash - v), b_len = len - a_len - 1;
	uint64_t a, b;
	if (a_len == 0) { /* "-suffix": the last b bytes */
		if (!number(dash + 1, b_len, &b))
			return 0;
		if (b == 0 || size == 0)
			return -416;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return 1;
	}
	if (!number(v, a_len, &a))
		return 0;
	if (b_len == 0) {
		b = UINT64_MAX;
	} else if (!number(dash + 1, b_len, &b) || b < a) {
		return 0; /* invalid: ignored, the whole file is sent */
	}
	if (a >= size)
		return -416;
	*first = a;
	*last = b >= size ? size - 1 : b;
	return 1;
}

/* Days since 1970-01-01 of a civil date, and back (H. Hinnant's algorithms). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static const char wdays[7][4] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"}; /* 1970-01-01: Thursday */
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void http_date(int64_t t, char out[30])
{
	if (t < 0)
		t = 0;
	int64_t z = t / 86400, secs = t % 86400;
	unsigned wd = (unsigned)(z % 7);
	z += 719468;
	int64_t era = z / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = (int64_t)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	unsigned d = doy - (153 * mp + 2) / 5 + 1;
	unsigned m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	if (y > 9999)
		y = 9999;
	char *o = out;
	memcpy(o, wdays[wd], 3);
	o += 3;
	*o++ = ',';
	*o++ = ' ';
	*o++ = (char)('0' + d / 10);
	*o++ = (char)('0' + d % 10);
	*o++ = ' ';
	memcpy(o, months[m - 1], 3);
	o += 3;
	*o++ = ' ';
	for (int k = 1000; k; k /= 10)
		*o++ = (char)('0' + (y / k) % 10);
	unsigned hh = (unsigned)(secs / 3600), mm = (unsigned)(secs / 60 % 60), ss = (unsigned)(secs % 60);
	*o++ = ' ';
	*o++ = (char)('0' + hh / 10);
	*o++ = (char)('0' + hh % 10);
	*o++ = ':';
	*o++ = (char)('0' + mm / 10);
	*o++ = (char)('0' + mm % 10);
	*o++ = ':';
	*o++ = (char)('0' + ss / 10);
	*o++ = (char)('0' + ss % 10);
	memcpy(o, " GMT", 5);
}

static bool digits(const char *s, int n, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return true;
}

int64_t http_parse_date(const char *s, size_t len)
{
	/* "Sun, 06 Nov 1994 08:49:37 GMT" */
	unsigned d, y, hh, mm, ss, m;
	if (len != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s[19] != ':' ||
	    s[22] != ':' || memcmp(s + 25, " GMT", 4) != 0)
		return -1;
	if (!digits(s + 5, 2, &d) || !digits(s + 12, 4, &y) || !digits(s + 17, 2, &hh) || !digits(s + 20, 2, &mm) ||
	    !digits(s + 23, 2, &ss))
		return -1;
	for (m = 0; m < 12 && memcmp(s + 8, months[m], 3) != 0; m++)
		;
	if (m == 12 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60)
		return -1;
	return days_from_civil(y, m + 1, d) * 86400 + hh * 3600 + mm * 60 + ss;
}
