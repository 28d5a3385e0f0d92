/*
 * kernel/net/inet.c: addresses as text and back: inet_pton(), inet_ntop(),
 * inet_aton(), inet_addr(), inet_ntoa().
 * Implements: POSIX.1-2017 XSH inet_ntop(), inet_addr(); RFC 4291 §2.2 (IPv6
 *             text forms), accepting and printing exactly what glibc does:
 *             tests/fuzz/fuzz_inet.c compares the two on any input.
 *
 * Pure functions of their arguments, with no kernel dependency, so the host
 * fuzz target links this file as it is.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Dotted quad: exactly four decimal parts of 0-255, no leading zeros, nothing
 * after (glibc's inet_pton; inet_aton's looser forms are not taken). */
static int pton4(const char *src, uint8_t out[4])
{
	uint8_t a[4] = {0};
	int parts = 0;
	bool digit = false;
	for (; *src; src++) {
		char c = *src;
		if (c >= '0' && c <= '9') {
			if (!digit) {
				if (++parts > 4)
					return 0;
				digit = true;
			} else if (a[parts - 1] == 0) {
				return 0; /* a leading zero */
			}
			unsigned v = a[parts - 1] * 10u + (unsigned)(c - '0');
			if (v > 255)
				return 0;
			a[parts - 1] = (uint8_t)v;
		} else if (c == '.' && digit) {
			if (parts == 4)
				return 0;
			digit = false;
		} else {
			return 0;
		}
	}
	if (parts < 4 || !digit)
		return 0;
	memcpy(out, a, 4);
	return 1;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
	                              : -1;
}

/* Up to eight groups of at most four hex digits; one "::" stands for the
 * zero groups missing (at least one); a dotted quad may end it. */
static int pton6(const char *src, uint8_t out[16])
{
	uint8_t a[16] = {0};
	int n = 0, gap = -1, digits = 0;
	unsigned v = 0;
	/* A leading "::" needs its first colon skipped; a lone ':' is wrong. */
	if (*src == ':' && *++src != ':')
		return 0;
	const char *token = src;
	for (char c; (c = *src++) != '\0';) {
		int h = hexval(c);
		if (h >= 0) {
			if (digits == 4)
				return 0;
			v = v << 4 | (unsigned)h;
			digits++;
			continue;
		}
		if (c == ':') {
			token = src;
			if (!digits) {
				if (gap >= 0)
					return 0; /* a second "::" */
				gap = n;
				continue;
			}
			if (*src == '\0' || n + 2 > 16)
				return 0; /* a trailing single ':', or a ninth group */
			a[n++] = (uint8_t)(v >> 8);
			a[n++] = (uint8_t)v;
			digits = 0;
			v = 0;
			continue;
		}
		/* The dotted quad starts at the token's start and ends the text. */
		if (c == '.' && n + 4 <= 16 && pton4(token, a + n)) {
			n += 4;
			digits = 0;
			break;
		}
		return 0;
	}
	if (digits) {
		if (n + 2 > 16)
			return 0;
		a[n++] = (uint8_t)(v >> 8);
		a[n++] = (uint8_t)v;
	}
	if (gap >= 0) {
		if (n == 16)
			return 0; /* "::" would stand for no group at all */
		memmove(a + 16 - (n - gap), a + gap, (size_t)(n - gap));
		memset(a + gap, 0, (size_t)(16 - n));
		n = 16;
	}
	if (n != 16)
		return 0;
	memcpy(out, a, 16);
	return 1;
}

int inet_pton(int af, const char *src, void *dst)
{
	if (af == AF_INET)
		return pton4(src, dst);
	if (af == AF_INET6)
		return pton6(src, dst);
	errno = EAFNOSUPPORT;
	return -1;
}

/* ---- printing, without printf: this file also runs on the host ----------------------- */

static char *put_dec(char *p, unsigned v)
{
	if (v >= 100)
		*p++ = (char)('0' + v / 100);
	if (v >= 10)
		*p++ = (char)('0' + v / 10 % 10);
	*p++ = (char)('0' + v % 10);
	return p;
}

static char *put_quad(char *p, const uint8_t a[4])
{
	for (int i = 0; i < 4; i++) {
		if (i)
			*p++ = '.';
		p = put_dec(p, a[i]);
	}
	return p;
}

static char *put_hex(char *p, unsigned v)
{
	bool started = false;
	for (int shift = 12; shift >= 0; shift -= 4) {
		unsigned d = v >> shift & 15;
		if (d || started || shift == 0) {
			*p++ = "0123456789abcdef"[d];
			started = true;
		}
	}
	return p;
}

const char *inet_ntop(int af, const void *src, char *dst, socklen_t size)
{
	char buf[INET6_ADDRSTRLEN], *p = buf;
	const uint8_t *a = src;
	if (af == AF_INET) {
		p = put_quad(p, a);
	} else if (af == AF_INET6) {
		unsigned w[8];
		for (int i = 0; i < 8; i++)
			w[i] = (unsigned)(a[2 * i] << 8 | a[2 * i + 1]);
		/* The longest run of zero groups (the first of equals), if at
		 * least two long, becomes "::". */
		int best = -1, best_len = 0;
		for (int i = 0; i < 8;) {
			int j = i;
			while (j < 8 && w[j] == 0)
				j++;
			if (j - i > best_len)
				best = i, best_len = j - i;
			i = j > i ? j : i + 1;
		}
		if (best_len < 2)
			best = -1;
		for (int i = 0; i < 8; i++) {
			if (best >= 0 && i >= best && i < best + best_len) {
				if (i == best)
					*p++ = ':';
				continue;
			}
			if (i)
				*p++ = ':';
			/* ::a.b.c.d and ::ffff:a.b.c.d keep the IPv4 form. */
			if (i == 6 && best == 0 && (best_len == 6 || (best_len == 5 && w[5] == 0xffff))) {
				p = put_quad(p, a + 12);
				break;
			}
			p = put_hex(p, w[i]);
		}
		if (best >= 0 && best + best_len == 8)
			*p++ = ':';
	} else {
		errno = EAFNOSUPPORT;
		return NULL;
	}
	*p = '\0';
	if ((size_t)(p - buf) + 1 > size) {
		errno = ENOSPC;
		return NULL;
	}
	memcpy(dst, buf, (size_t)(p - buf) + 1);
	return dst;
}

/* XXX: glibc's inet_aton() also takes the old short and hex forms ("127.1",
 * "0x7f000001"); this one takes only the dotted quad. */
int inet_aton(const char *cp, struct in_addr *inp)
{
	uint8_t a[4];
	if (!pton4(cp, a))
		return 0;
	memcpy(&inp->s_addr, a, 4);
	return 1;
}

in_addr_t inet_addr(const char *cp)
{
	struct in_addr in;
	return inet_aton(cp, &in) ? in.s_addr : INADDR_NONE;
}

char *inet_ntoa(struct in_addr in)
{
	static char buf[INET_ADDRSTRLEN];
	return (char *)inet_ntop(AF_INET, &in, buf, sizeof(buf));
}
