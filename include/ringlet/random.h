/*
 * <ringlet/random.h>: the kernel's random-number generator, below
 * getentropy(), getrandom(), arc4random() and /dev/urandom.
 *
 * One ChaCha20 generator with fast key erasure, seeded before main() from
 * every source the machine has (virtio-rng, RDSEED, RDRAND, and clock
 * jitter, which alone is not enough) and reseeded from virtio-rng after
 * RANDOM_RESEED_BYTES of output or RANDOM_RESEED_NS of time. docs/entropy.md
 * says what each promise rests on.
 */
#ifndef RINGLET_RANDOM_H
#define RINGLET_RANDOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RANDOM_RESEED_BYTES (1u << 20)
#define RANDOM_RESEED_NS    (60ull * 1000000000ull)

/* n bytes from the generator. Never fails and never waits: safe from any
 * kernel context (a reseed that is due happens at the next getentropy(),
 * getrandom() or /dev/urandom read, which may wait for the device). */
void random_bytes(void *buf, size_t n);

struct random_info {
	char seeded_from[96]; /* the boot seeding: "virtio-rng 32 B, rdrand 32 B, clock jitter" */
	bool weak;            /* seeded from clock jitter alone: no virtio-rng, RDSEED or RDRAND */
	bool virtio_rng;      /* a working virtio-rng device is there now */
	uint64_t reseeds;     /* reseeds from virtio-rng since boot */
	uint64_t bytes;       /* generator output since boot */
};
void random_info(struct random_info *info);

#endif
