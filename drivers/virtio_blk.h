/*
 * drivers/virtio_blk.h: what the virtio-blk driver offers the kernel's block
 * layer (kernel/blk.c). Requests are struct blk_request from <ringlet/blk.h>;
 * offsets here are already checked against the disk and aligned.
 */
#ifndef RINGLET_VIRTIO_BLK_H
#define RINGLET_VIRTIO_BLK_H

#include <stddef.h>
#include <stdint.h>

#include <ringlet/blk.h>

struct virtio_blk;
struct virtio_dev;

/* Takes a device a transport found (and reset); writes a few words about it
 * ("vda 64 MiB") into note. Returns 0 or a negative errno. */
int virtio_blk_probe(const struct virtio_dev *found, char *note, size_t note_len);
int virtio_blk_count(void);
struct virtio_blk *virtio_blk_get(int i);
void virtio_blk_info(const struct virtio_blk *d, struct blk_info *info);
/* Queues one request. 0, -EAGAIN (queue full), or an errno for a request
 * the device cannot take (-EOPNOTSUPP, -EINVAL) or a broken device (-EIO). */
int virtio_blk_submit(struct virtio_blk *d, struct blk_request *req);
/* Completed requests, up to max; their ->status is set. */
int virtio_blk_poll(struct virtio_blk *d, struct blk_request **done, int max);
/* Requests submitted and not yet returned by virtio_blk_poll(). */
unsigned virtio_blk_inflight(const struct virtio_blk *d);
/* time_ns() at which the oldest request in flight was submitted (now, when
 * none is): the block layer's deadline counts from there. */
uint64_t virtio_blk_oldest_ns(const struct virtio_blk *d);
/* Device interrupts that woke the wait loop so far. */
uint64_t virtio_blk_wakeups(const struct virtio_blk *d);
/* Stops a device that stopped answering: reset, and every request in
 * flight completes with -EIO. */
void virtio_blk_abandon(struct virtio_blk *d, const char *why);

#endif
