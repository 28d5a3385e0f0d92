/*
 * fuzz_inet: kernel/net/inet.c against glibc, on any input.
 *
 * The input, as a string, goes to both inet_pton()s for AF_INET and AF_INET6:
 * the same verdict and the same bytes. Its first 16 bytes, as an address,
 * go to both inet_ntop()s: the same text. Ringlet's functions are renamed
 * (ringlet_inet_*) at compile time so that both live in one program.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The Makefile renames for the whole program: <arpa/inet.h> above declared
 * ringlet_inet_*; glibc's own come back under their names here. */
#undef inet_pton
#undef inet_ntop
extern int inet_pton(int af, const char *src, void *dst);
extern const char *inet_ntop(int af, const void *src, char *dst, socklen_t size);

static void fail(const char *what, const char *input)
{
	fprintf(stderr, "fuzz_inet: %s differs for \"%s\"\n", what, input);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	for (int af = AF_INET; af; af = af == AF_INET ? AF_INET6 : 0) {
		unsigned char ours[16] = {0}, theirs[16] = {0};
		int a = ringlet_inet_pton(af, s, ours), b = inet_pton(af, s, theirs);
		if (a != b || (a == 1 && memcmp(ours, theirs, af == AF_INET ? 4 : 16) != 0))
			fail(af == AF_INET ? "inet_pton(AF_INET)" : "inet_pton(AF_INET6)", s);
	}
	unsigned char addr[16] = {0};
	memcpy(addr, data, size < 16 ? size : 16);
	char ours[INET6_ADDRSTRLEN], theirs[INET6_ADDRSTRLEN];
	for (int af = AF_INET; af; af = af == AF_INET ? AF_INET6 : 0) {
		const char *a = ringlet_inet_ntop(af, addr, ours, sizeof(ours));
		const char *b = inet_ntop(af, addr, theirs, sizeof(theirs));
		if (!a || !b || strcmp(a, b) != 0) {
			fprintf(stderr, "ours \"%s\", glibc's \"%s\"\n", a ? a : "(null)", b ? b : "(null)");
			fail("inet_ntop", s);
		}
	}
	free(s);
	return 0;
}
