/*
 * drivers/virtio_blk.h: what the virtio-blk driver offers drivers/drivers.c.
 * Each disk it takes is registered with the block layer (kernel/blkdev.h),
 * which is the only caller of the rest of the driver.
 */
#ifndef RINGLET_VIRTIO_BLK_H
#define RINGLET_VIRTIO_BLK_H

#include <stddef.h>

struct virtio_dev;

/* Takes a device a transport found (and reset); writes a few words about it
 * ("vda 64 MiB") into note. Returns 0 or a negative errno. */
int virtio_blk_probe(const struct virtio_dev *found, char *note, size_t note_len);

#endif
