/*
 * kernel/chacha20.h: the ChaCha20 block function and a generator on it with
 * fast key erasure. Pure computation: no device, no clock, no allocation, so
 * the host unit test (tests/unit/test_chacha20.c) runs the very same code.
 * Implements: RFC 8439 (ChaCha20 and Poly1305 for IETF Protocols), §2.3 The
 *             ChaCha20 Block Function; D. J. Bernstein, "Fast-key-erasure
 *             random-number generators" (2017) for the generator.
 */
#ifndef RINGLET_CHACHA20_H
#define RINGLET_CHACHA20_H

#include <stddef.h>
#include <stdint.h>

#define CHACHA20_KEY_BYTES   32
#define CHACHA20_NONCE_BYTES 12
#define CHACHA20_BLOCK_BYTES 64

/* One 64-byte block of keystream for (key, counter, nonce), RFC 8439 §2.3:
 * the key and nonce are byte strings read as little-endian words. */
void chacha20_block(const uint8_t key[CHACHA20_KEY_BYTES], uint32_t counter, const uint8_t nonce[CHACHA20_NONCE_BYTES],
                    uint8_t out[CHACHA20_BLOCK_BYTES]);

/*
 * The generator's whole state is one key. Every request runs ChaCha20 under
 * it from counter 0 and a zero nonce; the first 32 bytes of that keystream
 * replace the key before any output is handed out, the rest is the output.
 * So the state after a request says nothing about what the request returned
 * (the old key is gone), and a state stolen later cannot run backwards.
 */
struct chacha20_rng {
	uint8_t key[CHACHA20_KEY_BYTES];
};

/* Fills out[0..n) and replaces the key. n may be 0 (the key still moves).
 * One request is at most 2^32 blocks of keystream, so n is at most
 * 256 GiB - 32 bytes (a caller that asks more loops). */
void chacha20_rng_generate(struct chacha20_rng *rng, void *out, size_t n);

/* Folds len bytes of seed into the key: each 32-byte piece is XORed in and
 * the key then replaced by a keystream block under itself, so the new key
 * depends on every seed byte and on the old key, and is unpredictable as
 * long as either was. */
void chacha20_rng_mix(struct chacha20_rng *rng, const void *seed, size_t len);

#endif
