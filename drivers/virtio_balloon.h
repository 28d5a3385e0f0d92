/*
 * drivers/virtio_balloon.h: the virtio-balloon driver, as the kernel sees it.
 * It registers itself with the wait loop and the page allocator at probe;
 * the rest of the kernel only asks it for figures.
 */
#ifndef RINGLET_VIRTIO_BALLOON_H
#define RINGLET_VIRTIO_BALLOON_H

#include <stddef.h>
#include <stdint.h>

#include <ringlet/balloon.h>

struct virtio_dev;

/* Takes a device a transport found; writes a few words about it into note.
 * Returns 0 or a negative errno. One balloon at most (-EBUSY for a second). */
int virtio_balloon_probe(const struct virtio_dev *found, char *note, size_t note_len);

#endif
