/*
 * <ringlet/blk.h>: the disks, below the file interface.
 *
 * Every virtio-blk disk is also a file: open("/dev/vda") and pread/pwrite
 * at any offset and length. This header is for applications that want more:
 * the device's own operations (flush, discard, write-zeroes, its ID) and
 * many requests in flight at once.
 *
 * Synchronous calls take byte offsets and lengths that are multiples of the
 * disk's block size and return 0 or a negative errno:
 *   -EINVAL     not aligned, zero length, or past the end of the disk
 *   -EROFS      a write to a read-only disk
 *   -EOPNOTSUPP the device does not offer the operation (discard, ...)
 *   -EIO        the device reported an error, or misbehaved and was stopped
 *   -ENODEV     no such disk
 *
 * Asynchronous use: fill a struct blk_request, blk_submit() it (-EAGAIN when
 * the queue is full: poll first), then blk_poll() hands completed requests
 * back with ->status set. A request is the kernel's from blk_submit() until
 * blk_poll() or blk_wait() hands it back: do not change or submit it again
 * before then. Synchronous calls made in between keep the completions they
 * meet for the next blk_poll(), however many there are.
 */
#ifndef RINGLET_BLK_H
#define RINGLET_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum blk_op {
	BLK_READ,
	BLK_WRITE,
	BLK_FLUSH,
	BLK_DISCARD,
	BLK_WRITE_ZEROES,
	BLK_GET_ID, /* buf gets up to 20 bytes of the device's serial */
};

struct blk_info {
	char name[8];        /* "vda" */
	uint64_t size;       /* bytes, whole blocks: what can be read */
	uint32_t block_size; /* bytes; offsets and lengths are multiples */
	bool read_only;
	bool flush; /* the device has a write cache that flush empties */
	bool discard;
	bool write_zeroes;
	uint32_t max_transfer; /* the most bytes one read/write request may carry */
	uint64_t max_discard;  /* bytes per discard request the device takes (0: no limit) */
	uint64_t max_zeroes;   /* the same for write-zeroes */
	uint16_t queue_size;   /* requests that can be in flight at once (at least) */
	uint64_t features;     /* the virtio feature bits negotiated */
	bool modern;           /* virtio 1.0 transport, else legacy */
	char bus[8];           /* "pci" or "mmio" */
	char wakeup[8];        /* what wakes a waiting guest: "msix", "intx", "irq" or "timer" (polling only) */
	uint64_t wakeups;      /* device interrupts so far (on a shared INTx line: the line's) */
};

struct blk_request {
	enum blk_op op;
	uint64_t offset; /* bytes */
	void *buf;       /* BLK_READ, BLK_WRITE, BLK_GET_ID */
	uint32_t len;    /* bytes (BLK_DISCARD, BLK_WRITE_ZEROES: the range) */
	void *user;      /* the caller's, untouched */
	int status;      /* on completion: 0 or a negative errno */
	/* private to the kernel (the block layer queues held completions
	 * through it): whatever the caller leaves here is overwritten */
	void *priv;
};

int blk_count(void);
int blk_info(int disk, struct blk_info *info);

int blk_submit(int disk, struct blk_request *req);
/* Up to max completed requests into done[]; returns how many (0: none yet). */
int blk_poll(int disk, struct blk_request **done, int max);
/* Waits until at least one request completes; returns as blk_poll. */
int blk_wait(int disk, struct blk_request **done, int max);

int blk_read(int disk, uint64_t offset, void *buf, uint32_t len);
int blk_write(int disk, uint64_t offset, const void *buf, uint32_t len);
int blk_flush(int disk);
int blk_discard(int disk, uint64_t offset, uint64_t len);
int blk_write_zeroes(int disk, uint64_t offset, uint64_t len);
int blk_get_id(int disk, char id[21]);

#endif
