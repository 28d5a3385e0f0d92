/*
 * kernel/blk.c: the block layer between applications and the disk driver.
 *
 * It checks every request before a device sees it (range, alignment,
 * read-only), waits for completions in the kernel's one wait loop
 * (kernel/wait.c: polling, then halting until the disk's interrupt), gives
 * up on a device that stops answering, and makes each disk a file:
 * /dev/vda, /dev/vdb, ... (virtio-blk), /dev/sda, ... (virtio-scsi LUNs)
 * where read/write/pread/pwrite take any offset and length (partial blocks
 * are read, changed and written back through a bounce buffer). Drivers
 * register their disks with a table of operations (blkdev.h), so every kind
 * of disk gets the same checks and interface.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <ringlet/blk.h>

#include "blkdev.h"
#include "fd.h"
#include "io.h"
#include "kernel.h"
#include "wait.h"

/* A request the device has not completed in this long is not coming back. */
#define BLK_TIMEOUT_NS (30ull * 1000000000ull)

struct disk {
	const struct blk_dev_ops *ops; /* the driver's, with its context: */
	void *dev;
	struct blk_info info;
	uint8_t *bounce; /* one block, for partial-block file I/O */
	char path[16];
	/* Completions a synchronous call reaped for someone else's
	 * asynchronous requests, oldest first, handed out first by the next
	 * poll. Chained through the requests' own ->priv, not kept in an
	 * array: a held request has already given its slot back, so its owner
	 * may fill the queue again before reaping, and there is no bound on
	 * how many are held. */
	struct blk_request *held_head, *held_tail;
	uint64_t deadline_checked_ns; /* when wait_loop() last looked for a stuck request */
};

static struct disk disks[16];
static int ndisks;
static int nregistered; /* disks[] drivers registered; the first ndisks are set up */

static struct disk *disk_get(int i) { return i >= 0 && i < ndisks ? &disks[i] : NULL; }
int blk_count(void) { return ndisks; }

int blk_info(int i, struct blk_info *info)
{
	struct disk *d = disk_get(i);
	if (!d)
		return -ENODEV;
	*info = d->info;
	info->wakeups = d->ops->wakeups ? d->ops->wakeups(d->dev) : 0;
	return 0;
}

/* ---- requests ------------------------------------------------------------ */

static int check(const struct disk *d, const struct blk_request *r)
{
	const struct blk_info *in = &d->info;
	bool data = r->op == BLK_READ || r->op == BLK_WRITE;
	if (r->op == BLK_FLUSH || r->op == BLK_GET_ID)
		return r->op == BLK_GET_ID && !r->buf ? -EINVAL : 0;
	if (r->op != BLK_READ && in->read_only)
		return -EROFS;
	if (r->len == 0 || r->offset % in->block_size || r->len % in->block_size)
		return -EINVAL;
	if (r->offset > in->size || r->len > in->size - r->offset)
		return -EINVAL; /* past the end */
	if (data && (!r->buf || r->len > in->max_transfer))
		return -EINVAL;
	return 0;
}

int blk_submit(int i, struct blk_request *r)
{
	struct disk *d = disk_get(i);
	if (!d)
		return -ENODEV;
	int err = check(d, r);
	if (err)
		return err;
	if (r->op == BLK_FLUSH && !d->info.flush)
		return -EOPNOTSUPP; /* no write cache to empty: see blk_flush() */
	r->status = -EINPROGRESS;
	return d->ops->submit(d->dev, r);
}

static void hold(struct disk *d, struct blk_request *r)
{
	r->priv = NULL;
	if (d->held_tail)
		d->held_tail->priv = r;
	else
		d->held_head = r;
	d->held_tail = r;
}

/* Completed requests: first those held for their owner (in the order they
 * completed), then the device's. */
static int reap(struct disk *d, struct blk_request **done, int max)
{
	int n = 0;
	while (n < max && d->held_head) {
		struct blk_request *r = d->held_head;
		d->held_head = r->priv;
		if (!d->held_head)
			d->held_tail = NULL;
		r->priv = NULL;
		done[n++] = r;
	}
	return n + d->ops->poll(d->dev, done + n, max - n);
}

int blk_poll(int i, struct blk_request **done, int max)
{
	struct disk *d = disk_get(i);
	return d ? reap(d, done, max) : -ENODEV;
}

/* What wait_loop() waits for: completions, reaped in the wait loop's cond. */
struct reaping {
	struct disk *d;
	struct blk_request **done;
	int max;
	bool held_too;
	int n;
};

static bool reaped(void *arg)
{
	struct reaping *w = arg;
	struct disk *d = w->d;
	w->n = w->held_too ? reap(d, w->done, w->max) : d->ops->poll(d->dev, w->done, w->max);
	if (w->n != 0 || d->ops->inflight(d->dev) == 0)
		return true;
	uint64_t now = time_ns();
	/* The oldest request's age, at most once a millisecond: finding it
	 * means looking at every slot, and this runs in every pass. */
	if (now - d->deadline_checked_ns > 1000000) {
		d->deadline_checked_ns = now;
		if (now - d->ops->oldest_ns(d->dev) > BLK_TIMEOUT_NS)
			d->ops->abandon(d->dev, "a request got no answer for 30 s");
		/* the next pass's poll fails what was in flight */
	}
	return false;
}

/*
 * Waits until something completes; returns how many (0 when nothing is in
 * flight) or a negative errno. held_too: also the completions held for
 * their owner (not for run(), which must reach the device itself). The
 * waiting is the kernel's one wait loop (kernel/wait.c): it polls every
 * device, and halts until the disk's interrupt when nothing comes soon.
 */
static int wait_loop(struct disk *d, struct blk_request **done, int max, bool held_too)
{
	struct reaping w = {.d = d, .done = done, .max = max, .held_too = held_too};
	wait_until(reaped, &w, WAIT_FOREVER);
	return w.n;
}

int blk_wait(int i, struct blk_request **done, int max)
{
	struct disk *d = disk_get(i);
	return d ? wait_loop(d, done, max, true) : -ENODEV;
}

/* Waits for completions from the device and keeps the ones that are not
 * `mine` for their owner. Returns as wait_loop(). */
static int wait_and_hold(struct disk *d, struct blk_request *mine)
{
	struct blk_request *done[8];
	int n = wait_loop(d, done, 8, false);
	for (int k = 0; k < n; k++)
		if (done[k] != mine)
			hold(d, done[k]);
	return n;
}

/* Submits one request and waits for exactly that one. Completions of other
 * (asynchronous) requests met on the way are held for their owner. */
static int run(int i, struct blk_request *r)
{
	struct disk *d = disk_get(i);
	int err;
	if (!d)
		return -ENODEV;
	while ((err = blk_submit(i, r)) == -EAGAIN) {
		/* The queue is full of others' requests: wait for room. */
		if (wait_and_hold(d, NULL) < 0)
			return -EIO;
	}
	if (err)
		return err;
	while (r->status == -EINPROGRESS)
		if (wait_and_hold(d, r) <= 0 && r->status == -EINPROGRESS)
			return -EIO; /* nothing in flight any more, yet no answer */
	return r->status;
}

int blk_read(int i, uint64_t off, void *buf, uint32_t len)
{
	struct blk_request r = {.op = BLK_READ, .offset = off, .buf = buf, .len = len};
	return run(i, &r);
}

int blk_write(int i, uint64_t off, const void *buf, uint32_t len)
{
	struct blk_request r = {.op = BLK_WRITE, .offset = off, .buf = (void *)buf, .len = len};
	return run(i, &r);
}

int blk_flush(int i)
{
	struct disk *d = disk_get(i);
	if (!d)
		return -ENODEV;
	/* §5.2.5: without VIRTIO_BLK_F_FLUSH the device has no write cache
	 * to empty: every acknowledged write is already durable. */
	if (!d->info.flush)
		return 0;
	struct blk_request r = {.op = BLK_FLUSH};
	return run(i, &r);
}

/* Discard and write-zeroes ranges may be larger than one request carries. */
static int range_op(int i, enum blk_op op, uint64_t off, uint64_t len)
{
	struct disk *d = disk_get(i);
	if (!d)
		return -ENODEV;
	if (len == 0)
		return -EINVAL;
	/* At most what the device says one request may cover, and well below
	 * 2^32 sectors in any case. */
	uint64_t limit = op == BLK_DISCARD ? d->info.max_discard : d->info.max_zeroes;
	uint64_t chunk = limit && limit < (1ull << 30) ? limit : 1ull << 30;
	chunk = ALIGN_DOWN(chunk, d->info.block_size);
	if (chunk == 0)
		return -EINVAL;
	for (uint64_t done = 0; done < len;) {
		uint64_t n = len - done < chunk ? len - done : chunk;
		struct blk_request r = {.op = op, .offset = off + done, .len = (uint32_t)n};
		int err = run(i, &r);
		if (err)
			return err;
		done += n;
	}
	return 0;
}

int blk_discard(int i, uint64_t off, uint64_t len) { return range_op(i, BLK_DISCARD, off, len); }
int blk_write_zeroes(int i, uint64_t off, uint64_t len) { return range_op(i, BLK_WRITE_ZEROES, off, len); }

int blk_get_id(int i, char id[21])
{
	struct blk_request r = {.op = BLK_GET_ID, .buf = id};
	memset(id, 0, 21);
	return run(i, &r);
}

/* ---- disks as files ------------------------------------------------------ */

static int disk_index(void *ctx) { return (int)((struct disk *)ctx - disks); }

static int file_open(void *ctx, int flags)
{
	struct disk *d = ctx;
	return (flags & O_ACCMODE) != O_RDONLY && d->info.read_only ? -EROFS : 0;
}

/* Reads or writes [off, off+n) of the disk at byte granularity: whole blocks
 * straight between the device and buf, partial ones through the bounce
 * block. Returns bytes done or a negative errno. */
static ssize_t file_io(struct disk *d, bool write, uint8_t *buf, size_t n, uint64_t off)
{
	const uint32_t bs = d->info.block_size;
	int i = disk_index(d);
	if (off >= d->info.size)
		return write ? -ENOSPC : 0;
	if (n > d->info.size - off)
		n = d->info.size - off; /* short at the end of the disk */
	size_t done = 0;
	while (done < n) {
		uint64_t pos = off + done;
		uint32_t in_block = pos % bs;
		size_t left = n - done;
		int err;
		if (in_block == 0 && left >= bs) {
			/* Whole blocks, as many as one request carries. */
			uint32_t len =
			    (uint32_t)ALIGN_DOWN(left < d->info.max_transfer ? left : d->info.max_transfer, bs);
			err = write ? blk_write(i, pos, buf + done, len) : blk_read(i, pos, buf + done, len);
			if (err)
				return done ? (ssize_t)done : err;
			done += len;
			continue;
		}
		/* A piece of one block. */
		uint32_t len = bs - in_block < left ? bs - in_block : (uint32_t)left;
		err = blk_read(i, pos - in_block, d->bounce, bs);
		if (!err && write) {
			memcpy(d->bounce + in_block, buf + done, len);
			err = blk_write(i, pos - in_block, d->bounce, bs);
		} else if (!err) {
			memcpy(buf + done, d->bounce + in_block, len);
		}
		if (err)
			return done ? (ssize_t)done : err;
		done += len;
	}
	return (ssize_t)done;
}

static ssize_t file_read(void *ctx, void *buf, size_t n, uint64_t off) { return file_io(ctx, false, buf, n, off); }

/* For filesystems on a disk (kernel/fs.c): pread() without a descriptor. */
ssize_t blk_pread(int i, void *buf, size_t n, uint64_t off)
{
	struct disk *d = disk_get(i);
	return d ? file_io(d, false, buf, n, off) : -ENODEV;
}
static ssize_t file_write(void *ctx, const void *buf, size_t n, uint64_t off)
{
	return file_io(ctx, true, (uint8_t *)buf, n, off);
}
static int file_fsync(void *ctx) { return blk_flush(disk_index(ctx)); }
static uint64_t file_size(void *ctx) { return ((struct disk *)ctx)->info.size; }
static uint32_t file_block_size(void *ctx) { return ((struct disk *)ctx)->info.block_size; }

static const struct fd_ops disk_ops = {
    .open = file_open,
    .read = file_read,
    .write = file_write,
    .fsync = file_fsync,
    .size = file_size,
    .block_size = file_block_size,
};

int blk_register(const struct blk_dev_ops *ops, void *dev)
{
	if (nregistered == (int)ARRAY_SIZE(disks))
		return -ENOSPC;
	disks[nregistered].ops = ops;
	disks[nregistered].dev = dev;
	nregistered++;
	return 0;
}

/* The disks the drivers registered become files, in the order they came. */
void blk_init(void)
{
	for (int i = 0; i < nregistered; i++) {
		struct disk *d = &disks[ndisks];
		*d = disks[i]; /* a disk before it that failed leaves a gap to close */
		d->ops->info(d->dev, &d->info);
		d->bounce = page_alloc(ALIGN_UP(d->info.block_size, PAGE_SIZE) / PAGE_SIZE);
		if (!d->bounce)
			continue;
		ksnprintf(d->path, sizeof(d->path), "/dev/%s", d->info.name);
		fd_register_device(d->path, &disk_ops, d);
		ndisks++;
	}
}
