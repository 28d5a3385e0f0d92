/*
 * kernel/blkdev.h: what the block layer (kernel/blk.c) offers disk drivers.
 *
 * A driver that found a disk (a virtio-blk device, a virtio-scsi LUN)
 * registers it with a small table of operations and a context pointer of its
 * own; the block layer makes it /dev/NAME and an index of <ringlet/blk.h>,
 * checks every request against its blk_info before the driver sees it, and
 * does the waiting (in the kernel's one wait loop, kernel/wait.h: a driver
 * registers its device there as a wait source of its own, so that the loop
 * wakes for its completions). Requests are struct blk_request; offsets are already
 * checked against the disk and aligned to its block size.
 *
 * While the driver holds a request (from submit until poll hands it back)
 * it may use the request's ->priv, e.g. to chain completions that arrived
 * for another disk of the same device.
 */
#ifndef RINGLET_BLKDEV_H
#define RINGLET_BLKDEV_H

#include <stdint.h>

#include <ringlet/blk.h>

struct blk_dev_ops {
	/* What the disk is; called once, when the block layer sets it up. */
	void (*info)(void *dev, struct blk_info *info);
	/* Queues one request. 0, -EAGAIN (queue full), or an errno for a
	 * request the device cannot take (-EOPNOTSUPP, -EINVAL) or a broken
	 * or missing device (-EIO). */
	int (*submit)(void *dev, struct blk_request *req);
	/* Completed requests of this disk, up to max; their ->status is set. */
	int (*poll)(void *dev, struct blk_request **done, int max);
	/* Requests submitted and not yet returned by poll(). */
	unsigned (*inflight)(void *dev);
	/* time_ns() at which the oldest request in flight was submitted (now,
	 * when none is): the block layer's deadline counts from there. */
	uint64_t (*oldest_ns)(void *dev);
	/* Device interrupts that woke the wait loop so far (blk_info()'s
	 * wakeups); NULL: the disk has none of its own. */
	uint64_t (*wakeups)(void *dev);
	/* Stops a device that stopped answering: reset, and every request in
	 * flight completes with -EIO. */
	void (*abandon)(void *dev, const char *why);
};

/* Registers a disk at probe time (before blk_init()); 0, or -ENOSPC when
 * the block layer has no room for more disks. */
int blk_register(const struct blk_dev_ops *ops, void *dev);

#endif
