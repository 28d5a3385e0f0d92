/*
 * apps/httpd/http.h: the parts of httpd that read what a client sends: the
 * request line and headers (RFC 9112 §2-§5, RFC 9110 for the fields),
 * percent-decoding and path normalisation, Range, HTTP dates. Plain C with
 * no I/O, so the guest, the Linux build and tests/fuzz share it.
 */
#ifndef HTTPD_HTTP_H
#define HTTPD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define HTTP_MAX_LINE    8192  /* request line: longer is 414 */
#define HTTP_MAX_HEADERS 16384 /* the whole head: longer is 431 */
#define HTTP_MAX_FIELDS  64    /* header lines: more is 431 */
#define HTTP_MAX_PATH    1024  /* decoded path */

enum http_method { HTTP_GET, HTTP_HEAD, HTTP_OTHER_KNOWN, HTTP_UNKNOWN };

struct http_request {
	enum http_method method;
	const char *method_s, *target; /* into the caller's buffer, not NUL-terminated */
	size_t method_len, target_len;
	int minor;       /* HTTP/1.minor */
	bool keep_alive; /* after the response: 1.1 unless "close", 1.0 only with "keep-alive" */
	bool has_body;   /* Content-Length > 0 or Transfer-Encoding: we take no bodies */
	const char *range, *if_none_match;
	size_t range_len, if_none_match_len;
	int64_t if_modified_since; /* -1: absent or unreadable */
	bool host;                 /* a Host field came (1.1 requires one) */
};

/* Parses one request head at the start of buf[0..len).
 * > 0: the head's length (through the blank line), req filled;
 *   0: incomplete, read more (len is still within the limits);
 * < 0: -status to answer before closing: -400 malformed, -414 request line
 *      too long, -431 head too long or too many fields, -501 not HTTP/1.x. */
int http_parse(const char *buf, size_t len, struct http_request *req);

/* The target's path, percent-decoded ("%41" is 'A') and normalised (no "",
 * "." components; ".." pops one) into out, always starting with '/'. The
 * query (after '?') is left out; *query says whether there was one and
 * *slash whether the path ended in '/'. Returns 0, or -400 for a bad escape,
 * a decoded NUL or control byte, a ".." above the root, a target that is not
 * an absolute path (or an absolute URI), or one too long. */
int http_path(const char *target, size_t len, char *out, size_t cap, bool *slash, const char **query,
              size_t *query_len);

/* One Range "bytes=first-last" / "first-" / "-suffix" against size.
 * 1: satisfiable, [*first, *last] set; 0: ignore the header (not one bytes
 * range: multiple ranges are served whole, as RFC 9110 §14.2 allows);
 * -416: not satisfiable. */
int http_range(const char *v, size_t len, uint64_t size, uint64_t *first, uint64_t *last);

/* IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), the only format we send. */
void http_date(int64_t t, char out[30]);
/* IMF-fixdate back to seconds since 1970; -1 when it is not one. */
int64_t http_parse_date(const char *s, size_t len);

#endif
