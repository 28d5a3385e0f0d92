/*
 * fuzz_http: libFuzzer target for apps/httpd/http.c, everything httpd reads
 * from a client: the request line and header fields, percent-decoding and
 * path normalisation, Range, HTTP dates.
 *
 *	make fuzz FUZZ=http FUZZ_SECONDS=300
 *
 * The input is given as it is (no NUL at the end) to the head parser, and,
 * when it parses, the target to http_path() and the Range value to
 * http_range(); the whole input also goes to http_path() and http_range()
 * directly. Checked: a parsed head lies inside the input, a normalised path
 * starts with '/' and has no "", "." or ".." component and no control byte
 * (so it cannot leave the root), a range lies inside the file, and a date
 * read back from its own formatting is the same second.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../apps/httpd/http.h"

static void check_path(const char *target, size_t len)
{
	char out[HTTP_MAX_PATH + 16];
	bool slash;
	const char *q;
	size_t ql;
	if (http_path(target, len, out, sizeof(out), &slash, &q, &ql) != 0)
		return;
	size_t n = strlen(out);
	if (out[0] != '/' || n >= sizeof(out))
		abort();
	if (q && (q < target || q + ql > target + len))
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			abort();
	if (n > 1) {
		/* components between the slashes: none empty, "." or ".." */
		for (const char *s = out + 1;;) {
			const char *e = strchr(s, '/');
			size_t c = e ? (size_t)(e - s) : strlen(s);
			if (c == 0 || (c == 1 && s[0] == '.') || (c == 2 && s[0] == '.' && s[1] == '.'))
				abort();
			if (!e)
				break;
			s = e + 1;
		}
	}
}

static void check_range(const char *v, size_t len, uint64_t size)
{
	uint64_t a = 0, b = 0;
	int r = http_range(v, len, size, &a, &b);
	if (r == 1 && (a > b || b >= size))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly the input's size, so ASan sees any read past it. */
	char *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	struct http_request req;
	int r = http_parse(buf, size, &req);
	if (r > 0) {
		if ((size_t)r > size || req.target < buf || req.target + req.target_len > buf + size)
			abort();
		check_path(req.target, req.target_len);
		if (req.range)
			check_range(req.range, req.range_len, size);
	} else if (r != 0 && r != -400 && r != -414 && r != -431 && r != -501) {
		abort();
	}
	check_path(buf, size);
	check_range(buf, size, size / 2);
	int64_t t = http_parse_date(buf, size);
	if (t >= 0) {
		char out[30];
		http_date(t, out);
		if (http_parse_date(out, 29) != t && t < 253402300800) /* up to the year 9999 */
			abort();
	}
	free(buf);
	return 0;
}
