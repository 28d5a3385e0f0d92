/*
 * kernel/random.h: start-up of the random-number generator (the calls
 * everyone uses are in <ringlet/random.h>).
 */
#ifndef RINGLET_KERNEL_RANDOM_H
#define RINGLET_KERNEL_RANDOM_H

#include <stdbool.h>
#include <stddef.h>

/* Seeds the generator from every source there is and logs which; after
 * drivers_init() (virtio-rng), before anything draws from it. Registers
 * /dev/urandom, /dev/random and, with a device, /dev/hwrng. */
void random_init(void);

/* Kernel option "entropy=virtio": seed and reseed from virtio-rng alone,
 * so that a known file behind the device gives known output (tests).
 * Returns true when w was this option. */
bool random_option(const char *w);

/* Like random_bytes(), but first reseeds from virtio-rng when a reseed is
 * due; may wait for the device. For getentropy() and friends, which an
 * application calls, never a wait-loop source. */
void random_read(void *buf, size_t n);

#endif
