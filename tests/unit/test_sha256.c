/*
 * tests/unit/test_sha256.c: apps/blktool's SHA-256 against the FIPS 180-4
 * examples ("abc", the two-block message, a million 'a's), and streaming in
 * odd-sized pieces against hashing in one go.
 */
#include <stdio.h>
#include <string.h>

#include "../../apps/blktool/sha256.h"
#include "check.h"

static void hex(const uint8_t d[32], char out[65])
{
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static void digest(const void *p, size_t n, char out[65])
{
	struct sha256 s;
	uint8_t d[32];
	sha256_init(&s);
	sha256_update(&s, p, n);
	sha256_final(&s, d);
	hex(d, out);
}

#define CHECK_HASH(got, want)                                                                                          \
	do {                                                                                                           \
		CHECK(strcmp(got, want) == 0);                                                                         \
		if (strcmp(got, want) != 0)                                                                            \
			fprintf(stderr, "  got  %s\n  want %s\n", got, want);                                          \
	} while (0)

static char million[1000000];

static void test_fips_examples(void)
{
	char h[65];
	digest("abc", 3, h);
	CHECK_HASH(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	digest("", 0, h);
	CHECK_HASH(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	digest(two, strlen(two), h);
	CHECK_HASH(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

	memset(million, 'a', sizeof(million));
	digest(million, sizeof(million), h);
	CHECK_HASH(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_streaming(void)
{
	char h[65];
	memset(million, 'a', sizeof(million));
	/* The same million bytes fed in pieces of 1, 63, 64, 65, ... bytes. */
	struct sha256 s;
	uint8_t d[32];
	sha256_init(&s);
	size_t off = 0, step = 1;
	while (off < sizeof(million)) {
		size_t n = step < sizeof(million) - off ? step : sizeof(million) - off;
		sha256_update(&s, million + off, n);
		off += n;
		step = step * 7 % 131 + 1;
	}
	sha256_final(&s, d);
	hex(d, h);
	CHECK_HASH(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

int main(void)
{
	RUN_TEST(test_fips_examples);
	RUN_TEST(test_streaming);
	return check_report();
}
