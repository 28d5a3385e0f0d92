/*
 * test_chacha20: kernel/chacha20.c against RFC 8439's test vectors, and the
 * fast-key-erasure generator on top of it against its own definition.
 *
 * Vectors: RFC 8439 §2.3.2 (the block function), §2.4.2 (keystream over a
 * whole message, counter 1) and Appendix A.1 (#1, #2, #3, #5).
 */
#include <stdint.h>
#include <string.h>

#include "chacha20.h"
#include "check.h"

static void hex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		while (*s == ' ' || *s == '\n')
			s++;
		unsigned v;
		sscanf(s, "%2x", &v);
		out[i] = (uint8_t)v;
		s += 2;
	}
}

static void check_block(const char *key_hex, uint32_t counter, const char *nonce_hex, const char *want_hex)
{
	uint8_t key[32], nonce[12], want[64], got[64];
	hex(key_hex, key, 32);
	hex(nonce_hex, nonce, 12);
	hex(want_hex, want, 64);
	chacha20_block(key, counter, nonce, got);
	CHECK(memcmp(got, want, 64) == 0);
}

#define KEY_SEQ  "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEY_ZERO "0000000000000000000000000000000000000000000000000000000000000000"

static void test_rfc8439_2_3_2(void)
{
	check_block(KEY_SEQ, 1, "000000090000004a00000000",
	            "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
	            "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e");
}

static void test_rfc8439_a1(void)
{
	/* #1 */
	check_block(KEY_ZERO, 0, "000000000000000000000000",
	            "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
	            "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586");
	/* #2 */
	check_block(KEY_ZERO, 1, "000000000000000000000000",
	            "9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed"
	            "29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f");
	/* #3 */
	check_block("0000000000000000000000000000000000000000000000000000000000000001", 1, "000000000000000000000000",
	            "3aeb5224ecf849929b9d828db1ced4dd832025e8018b8160b82284f3c949aa5a"
	            "8eca00bbb4a73bdad192b5c42f73f2fd4e273644c8b36125a64addeb006c13a0");
	/* #5 */
	check_block(KEY_ZERO, 0, "000000000000000000000002",
	            "c2c64d378cd536374ae204b9ef933fcd1a8b2288b3dfa49672ab765b54ee27c7"
	            "8a970e0e955c14f3a88e741b97c286f75f8fc299e8148362fa198a39531bed6d");
}

/* §2.4.2: the keystream from counter 1 XORed over the "sunscreen" text. */
static void test_rfc8439_2_4_2(void)
{
	static const char plain[] = "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for "
	                            "the future, sunscreen would be it.";
	size_t n = sizeof(plain) - 1;
	uint8_t key[32], nonce[12], want[114], got[114], ks[64];
	CHECK_EQ(n, 114);
	hex(KEY_SEQ, key, 32);
	hex("000000000000004a00000000", nonce, 12);
	hex("6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b"
	    "f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8"
	    "07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736"
	    "5af90bbf74a35be6b40b8eedf2785e42874d",
	    want, n);
	for (size_t off = 0; off < n; off += 64) {
		chacha20_block(key, 1 + (uint32_t)(off / 64), nonce, ks);
		for (size_t i = 0; i < 64 && off + i < n; i++)
			got[off + i] = (uint8_t)plain[off + i] ^ ks[i];
	}
	CHECK(memcmp(got, want, n) == 0);
}

/* The keystream under `key` (zero nonce) from counter 0, n bytes. */
static void keystream(const uint8_t key[32], uint8_t *out, size_t n)
{
	uint8_t ks[64];
	static const uint8_t nonce[12];
	for (size_t off = 0; off < n; off += 64) {
		chacha20_block(key, (uint32_t)(off / 64), nonce, ks);
		memcpy(out + off, ks, n - off < 64 ? n - off : 64);
	}
}

/* A request: the first 32 bytes of the keystream become the key, the
 * next n are the output, for sizes around every block boundary. */
static void test_generate_is_fast_key_erasure(void)
{
	static const size_t sizes[] = {0, 1, 31, 32, 33, 63, 64, 95, 96, 97, 1000, 4096, 65536 + 7};
	static uint8_t want[32 + 65536 + 64], got[65536 + 64];
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizes[k];
		struct chacha20_rng rng;
		uint8_t old[32];
		hex(KEY_SEQ, rng.key, 32);
		memcpy(old, rng.key, 32);
		keystream(old, want, 32 + n);
		memset(got, 0xee, sizeof(got));
		chacha20_rng_generate(&rng, got, n);
		CHECK(memcmp(got, want + 32, n) == 0);
		CHECK(got[n] == 0xee); /* not one byte more */
		CHECK(memcmp(rng.key, want, 32) == 0);
		CHECK(memcmp(rng.key, old, 32) != 0); /* the old key is gone */
	}
}

/* Two requests never return the same bytes; the second comes from the new key. */
static void test_requests_differ(void)
{
	struct chacha20_rng rng = {{0}};
	uint8_t a[64], b[64], want[96];
	chacha20_rng_generate(&rng, a, sizeof(a));
	uint8_t key1[32];
	memcpy(key1, rng.key, 32);
	chacha20_rng_generate(&rng, b, sizeof(b));
	CHECK(memcmp(a, b, sizeof(a)) != 0);
	keystream(key1, want, sizeof(want));
	CHECK(memcmp(b, want + 32, sizeof(b)) == 0);
}

/* Mixing: the key depends on every seed byte and on the old key. */
static void test_mix(void)
{
	struct chacha20_rng a = {{0}}, b = {{0}}, c = {{0}};
	uint8_t seed[80];
	for (size_t i = 0; i < sizeof(seed); i++)
		seed[i] = (uint8_t)i;
	chacha20_rng_mix(&a, seed, sizeof(seed));
	chacha20_rng_mix(&b, seed, sizeof(seed));
	CHECK(memcmp(a.key, b.key, 32) == 0); /* deterministic */
	seed[79] ^= 1;                        /* the last byte of the last, short piece */
	chacha20_rng_mix(&c, seed, sizeof(seed));
	CHECK(memcmp(a.key, c.key, 32) != 0);
	/* The same seed on another key gives another key. */
	struct chacha20_rng d = {{1}};
	seed[79] ^= 1;
	chacha20_rng_mix(&d, seed, sizeof(seed));
	CHECK(memcmp(a.key, d.key, 32) != 0);
	/* One 32-byte piece: key = block(key ^ seed, 0, 0)[0..32]. */
	struct chacha20_rng e = {{0}};
	uint8_t want[64];
	static const uint8_t nonce[12];
	chacha20_rng_mix(&e, seed, 32);
	chacha20_block(seed, 0, nonce, want);
	CHECK(memcmp(e.key, want, 32) == 0);
}

int main(void)
{
	RUN_TEST(test_rfc8439_2_3_2);
	RUN_TEST(test_rfc8439_a1);
	RUN_TEST(test_rfc8439_2_4_2);
	RUN_TEST(test_generate_is_fast_key_erasure);
	RUN_TEST(test_requests_differ);
	RUN_TEST(test_mix);
	return check_report();
}
