/*
 * kernel/chacha20.c: ChaCha20 and the fast-key-erasure generator (see
 * chacha20.h). Plain C on 32-bit words; the kernel is built without SSE, so
 * this is the scalar form of RFC 8439 §2.3's pseudocode, word for word.
 */
#include <string.h>

#include "chacha20.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "chacha20.c reads and writes words little-endian by plain loads and stores"
#endif

#define ROTL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

/* RFC 8439 §2.1, the quarter round on four words of the state. */
#define QR(a, b, c, d)                                                                                                 \
	do {                                                                                                           \
		a += b, d ^= a, d = ROTL(d, 16);                                                                       \
		c += d, b ^= c, b = ROTL(b, 12);                                                                       \
		a += b, d ^= a, d = ROTL(d, 8);                                                                        \
		c += d, b ^= c, b = ROTL(b, 7);                                                                        \
	} while (0)

static uint32_t load32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* The 16-word state of §2.3: constants, key, counter, nonce. */
static void setup(uint32_t s[16], const uint8_t *key, uint32_t counter, const uint8_t *nonce)
{
	s[0] = 0x61707865; /* "expand 32-byte k" */
	s[1] = 0x3320646e;
	s[2] = 0x79622d32;
	s[3] = 0x6b206574;
	for (int i = 0; i < 8; i++)
		s[4 + i] = load32(key + 4 * i);
	s[12] = counter;
	for (int i = 0; i < 3; i++)
		s[13 + i] = load32(nonce + 4 * i);
}

/* 20 rounds (10 column + diagonal pairs), then the input added back. */
static void block(const uint32_t in[16], uint8_t out[CHACHA20_BLOCK_BYTES])
{
	uint32_t x[16];
	memcpy(x, in, sizeof(x));
	for (int i = 0; i < 10; i++) {
		QR(x[0], x[4], x[8], x[12]);
		QR(x[1], x[5], x[9], x[13]);
		QR(x[2], x[6], x[10], x[14]);
		QR(x[3], x[7], x[11], x[15]);
		QR(x[0], x[5], x[10], x[15]);
		QR(x[1], x[6], x[11], x[12]);
		QR(x[2], x[7], x[8], x[13]);
		QR(x[3], x[4], x[9], x[14]);
	}
	for (int i = 0; i < 16; i++)
		x[i] += in[i];
	memcpy(out, x, CHACHA20_BLOCK_BYTES);
}

void chacha20_block(const uint8_t key[CHACHA20_KEY_BYTES], uint32_t counter, const uint8_t nonce[CHACHA20_NONCE_BYTES],
                    uint8_t out[CHACHA20_BLOCK_BYTES])
{
	uint32_t s[16];
	setup(s, key, counter, nonce);
	block(s, out);
}

/* The generator's requests all use nonce 0: each key is used once. */
static const uint8_t zero_nonce[CHACHA20_NONCE_BYTES];

void chacha20_rng_generate(struct chacha20_rng *rng, void *out, size_t n)
{
	uint32_t s[16];
	uint8_t ks[CHACHA20_BLOCK_BYTES];
	uint8_t *p = out;
	setup(s, rng->key, 0, zero_nonce);

	/* Block 0: the new key first, then up to 32 bytes of output. */
	block(s, ks);
	memcpy(rng->key, ks, CHACHA20_KEY_BYTES);
	size_t take = n < CHACHA20_BLOCK_BYTES - CHACHA20_KEY_BYTES ? n : CHACHA20_BLOCK_BYTES - CHACHA20_KEY_BYTES;
	memcpy(p, ks + CHACHA20_KEY_BYTES, take);
	p += take;
	n -= take;

	/* The rest straight into the caller's buffer, whole blocks first. */
	while (n >= CHACHA20_BLOCK_BYTES) {
		s[12]++;
		block(s, p);
		p += CHACHA20_BLOCK_BYTES;
		n -= CHACHA20_BLOCK_BYTES;
	}
	if (n) {
		s[12]++;
		block(s, ks);
		memcpy(p, ks, n);
	}
	/* Nothing of this request's keystream or old key stays behind. */
	memset(ks, 0, sizeof(ks));
	memset(s, 0, sizeof(s));
	__asm__ volatile("" ::"r"(ks), "r"(s) : "memory"); /* keep the clearing */
}

void chacha20_rng_mix(struct chacha20_rng *rng, const void *seed, size_t len)
{
	const uint8_t *p = seed;
	uint8_t ks[CHACHA20_BLOCK_BYTES];
	while (len) {
		size_t take = len < CHACHA20_KEY_BYTES ? len : CHACHA20_KEY_BYTES;
		for (size_t i = 0; i < take; i++)
			rng->key[i] ^= p[i];
		chacha20_block(rng->key, 0, zero_nonce, ks);
		memcpy(rng->key, ks, CHACHA20_KEY_BYTES);
		p += take;
		len -= take;
	}
	memset(ks, 0, sizeof(ks));
	__asm__ volatile("" ::"r"(ks) : "memory");
}
