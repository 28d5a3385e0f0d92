/*
 * kernel/cmdline.c: splitting the kernel command line into words.
 *
 * The command line is one string (QEMU's -append, the cmdline file on a disk
 * image); the application expects argv. The quoting rules are the shell's
 * simplest ones, so scripts/run can pass any argument through: see
 * cmdline_split() in kernel.h. Also the values of options that need more
 * than a number (virtio_mmio.device=). Pure functions, tested on the host
 * (tests/unit/test_cmdline.c).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

/* A decimal or 0x-hex number at *s, up to the first character that is not a
 * digit; *s moves past it. Returns 0 or -1 (no digits, overflow). */
static int parse_number(const char **s, uint64_t *out)
{
	const char *p = *s;
	unsigned base = 10;
	uint64_t v = 0;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	const char *digits = p;
	for (;; p++) {
		unsigned d;
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (base == 16 && *p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			break;
		if (v > (UINT64_MAX - d) / base)
			return -1;
		v = v * base + d;
	}
	if (p == digits)
		return -1;
	*out = v;
	*s = p;
	return 0;
}

int cmdline_virtio_mmio(const char *s, struct cmdline_virtio_mmio *out, const char **why)
{
	char size_text[24];
	uint64_t v;
	size_t n = 0;
	*why = NULL;
	/* SIZE: up to '@', with cmdline_parse_size()'s K/M/G suffixes. */
	while (s[n] && s[n] != '@' && n < sizeof(size_text) - 1)
		n++;
	if (s[n] != '@') {
		*why = "no '@' after the size";
		return -1;
	}
	memcpy(size_text, s, n);
	size_text[n] = '\0';
	if (cmdline_parse_size(size_text, &out->size) != 0) {
		*why = "bad size";
		return -1;
	}
	/* The registers up to the device configuration are 0x100 bytes (virtio
	 * 1.2 §4.2.2); a window that does not hold them is not a device. */
	if (out->size < 0x100) {
		*why = "size smaller than the 0x100 bytes of registers";
		return -1;
	}
	s += n + 1;
	if (parse_number(&s, &out->base) != 0 || out->base == 0 || out->base % 4) {
		*why = "bad base address";
		return -1;
	}
	/* 52 bits: the most physical address x86-64 has. */
	if (out->base >= (1ull << 52) || out->size > (1ull << 52) - out->base) {
		*why = "base address and size run past physical memory";
		return -1;
	}
	if (*s++ != ':' || parse_number(&s, &v) != 0 || v == 0 || v > 255) {
		*why = "bad IRQ (want 1 to 255)";
		return -1;
	}
	out->irq = (uint32_t)v;
	out->id = -1;
	if (*s == ':') {
		s++;
		if (parse_number(&s, &v) != 0 || v > INT32_MAX) {
			*why = "bad device ID";
			return -1;
		}
		out->id = (int32_t)v;
	}
	if (*s) {
		*why = "junk after the IRQ";
		return -1;
	}
	return 0;
}
