/*
 * drivers/virtio_rng.h: what the virtio-rng driver offers the kernel's
 * random-number generator (kernel/random.c) and /dev/hwrng: bytes from the
 * host's entropy source, straight from the device.
 */
#ifndef RINGLET_VIRTIO_RNG_H
#define RINGLET_VIRTIO_RNG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct virtio_dev;

/* Takes a device a transport found; writes a few words about it ("rng0")
 * into note. Returns 0 or a negative errno. */
int virtio_rng_probe(const struct virtio_dev *found, char *note, size_t note_len);

/* Whether a working device is there (one that broke is not). */
bool virtio_rng_available(void);

/*
 * Fills buf[0..n) with bytes from the device, any n: split into requests,
 * several in flight, a short answer asked again for the rest. Gives up when
 * the device sends nothing for silence_ns: the device is then reset and not
 * used again, as is one that breaks the ring rules (claims more bytes than
 * a buffer holds). Returns n, or -ENODEV (no working device), -ETIMEDOUT
 * (it fell silent now), -EIO (it broke the rules now), -EINVAL (n does
 * not fit a ssize_t). After an error buf
 * holds no promise.
 */
ssize_t virtio_rng_read(void *buf, size_t n, uint64_t silence_ns);

#endif
