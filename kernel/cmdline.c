/*
 * kernel/cmdline.c: splitting the kernel command line into words.
 *
 * The command line is one string (QEMU's -append, the cmdline file on a disk
 * image); the application expects argv. The quoting rules are the shell's
 * simplest ones, so scripts/run can pass any argument through: see
 * cmdline_split() in kernel.h. Pure functions, tested on the host
 * (tests/unit/test_cmdline.c).
 */
#include <stddef.h>
#include <stdint.h>

#include "kernel.h"

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int cmdline_split(char *s, char **words, int max, const char **err)
{
	int n = 0;
	char *in = s, *out = s; /* output never runs ahead of input */
	*err = NULL;
	for (;;) {
		while (is_space(*in))
			in++;
		if (!*in)
			break;
		if (n == max) {
			*err = "too many words; the rest are ignored";
			break;
		}
		words[n++] = out;
		while (*in && !is_space(*in)) {
			if (*in == '\'') {
				for (in++; *in && *in != '\''; in++)
					*out++ = *in;
				if (!*in) {
					*err = "unterminated ' quote";
					break;
				}
				in++;
			} else if (*in == '"') {
				for (in++; *in && *in != '"'; in++) {
					if (*in == '\\' && in[1])
						in++;
					*out++ = *in;
				}
				if (!*in) {
					*err = "unterminated \" quote";
					break;
				}
				in++;
			} else if (*in == '\\' && in[1]) {
				*out++ = in[1];
				in += 2;
			} else {
				*out++ = *in++;
			}
		}
		/* `in` may point at the separator we are about to overwrite
		 * (when nothing was unquoted, out == in): step past it first. */
		if (*in)
			in++;
		*out++ = '\0';
	}
	return n;
}

int cmdline_parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	unsigned base = 10;
	if (!s || !*s)
		return -1;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		if (!*s)
			return -1;
	}
	const char *digits = s;
	for (; *s; s++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			break;
		if (v > (UINT64_MAX - d) / base)
			return -1; /* overflow */
		v = v * base + d;
	}
	if (s == digits)
		return -1; /* a suffix alone ("K", "0xM") is not a size */
	unsigned shift = 0;
	switch (*s) {
	case '\0':
		break;
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	default:
		return -1;
	}
	if (*s && s[1])
		return -1; /* junk after the suffix */
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = v << shift;
	return 0;
}
