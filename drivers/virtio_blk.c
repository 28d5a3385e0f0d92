/*
 * virtio-blk: polled block device driver.
 * Implements: Virtual I/O Device (VIRTIO) Version 1.2, §5.2 Block Device.
 * Try it:     -drive file=disk.img,if=none,id=d0,format=raw -device virtio-blk-pci,drive=d0
 *             (scripts/run --disk disk.img blktool -- info)
 *
 * One request is one descriptor chain (§5.2.6): a 16-byte header the device
 * reads, the data (read by the device for a write, written for a read), and
 * one status byte the device writes. Each request in flight has a slot in
 * DMA memory holding its header and status; the slot is the chain's cookie.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "../kernel/blkdev.h"
#include "../kernel/kernel.h"
#include "../kernel/pci.h"
#include "../kernel/wait.h"
#include "virtio/virtio_dev.h"
#include "virtio_blk.h"

/* Feature bits (§5.2.3). */
#define VIRTIO_BLK_F_SIZE_MAX     1
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types and status values (§5.2.6). */
#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_DISCARD      11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK           0
#define VIRTIO_BLK_S_IOERR        1
#define VIRTIO_BLK_S_UNSUPP       2
#define VIRTIO_BLK_ID_BYTES       20

/* Offsets in struct virtio_blk_config (§5.2.4). */
#define CFG_CAPACITY                 0 /* le64: in 512-byte sectors, always */
#define CFG_SIZE_MAX                 8
#define CFG_SEG_MAX                  12
#define CFG_BLK_SIZE                 20
#define CFG_MAX_DISCARD_SECTORS      36
#define CFG_MAX_DISCARD_SEG          40
#define CFG_MAX_WRITE_ZEROES_SECTORS 48

struct virtio_blk_req_hdr {
	uint32_t type; /* VIRTIO_BLK_T_* */
	uint32_t reserved;
	uint64_t sector; /* in 512-byte units, whatever blk_size is */
};
_Static_assert(sizeof(struct virtio_blk_req_hdr) == 16, "virtio_blk_req header");

struct virtio_blk_discard_write_zeroes {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags; /* bit 0: unmap (write-zeroes only) */
};
_Static_assert(sizeof(struct virtio_blk_discard_write_zeroes) == 16, "discard segment");

#define MAX_DISKS 8
/* Data segments per request we build. A buffer is contiguous in physical
 * memory (identity mapping), so a request needs more than one only when the
 * device has a small size_max. */
#define MAX_SEGS 32

/* One request in flight: what the device reads and writes besides the data,
 * and its indirect descriptor table (header, data segments, status). */
struct slot {
	struct virtq_desc table[MAX_SEGS + 2]; /* first: it must be 16-byte aligned */
	struct virtio_blk_req_hdr hdr;
	struct virtio_blk_discard_write_zeroes range;
	uint8_t status;
	uint64_t submitted_ns; /* time_ns() when it went to the device */
	struct blk_request *req;
	struct slot *next_free;
} __attribute__((aligned(16))); /* each slot's table stays 16-byte aligned */

struct virtio_blk {
	struct virtio_dev vd;
	struct virtq q;
	char name[8];
	uint64_t sectors;
	uint32_t block_size;
	uint32_t size_max; /* bytes per data segment; 0: no limit */
	uint32_t seg_max;  /* data segments per request */
	uint32_t max_discard_sectors, max_write_zeroes_sectors;
	bool broken;
	struct slot *slots, *free_slots;
	uint16_t nslots;
	unsigned inflight;   /* requests submitted, not yet handed back */
	unsigned renotified; /* notifications sent by the queue's watchdog */
	struct wait_source ws;
	uint16_t seen_used; /* used->idx when the wait loop last looked */
};

static struct virtio_blk disks[MAX_DISKS];
static int ndisks;

static const struct blk_dev_ops virtio_blk_ops;

static bool has(const struct virtio_blk *d, unsigned bit) { return virtio_has_feature(d->vd.features, bit); }

static uint32_t cfg32(struct virtio_blk *d, uint32_t off)
{
	uint32_t v;
	virtio_config_read(&d->vd, off, &v, 4);
	return v;
}

static void stall_check(struct virtio_blk *d);

/* ---- the disk as a wait source (kernel/wait.h) ---------------------------
 * The completions themselves are taken by whoever waits for them (the block
 * layer's cond, through virtio_blk_poll()); the source only tells the loop
 * that new ones came, looks for a lost notification, and turns the queue's
 * wake-up on and off. */

static bool src_poll(void *ctx)
{
	struct virtio_blk *d = ctx;
	if (d->broken)
		return false;
	stall_check(d);
	uint16_t idx = virtq_used_idx(&d->q);
	bool news = idx != d->seen_used;
	d->seen_used = idx;
	return news;
}

/* Completions nobody has taken yet (asynchronous ones, while the caller
 * sleeps) are not a reason to stay awake; new ones are. */
static bool src_arm(void *ctx)
{
	struct virtio_blk *d = ctx;
	return !d->broken && virtq_enable_notify(&d->q) && virtq_used_idx(&d->q) != d->seen_used;
}

static void src_disarm(void *ctx)
{
	struct virtio_blk *d = ctx;
	if (!d->broken)
		virtq_disable_notify(&d->q);
}

/* With requests at the device, the watchdog wants a look once per stall
 * period; without an interrupt, the completions want one sooner. Requests
 * it has finished and nobody has taken yet (an application that submits,
 * then sleeps) need no look at all. */
static uint64_t src_deadline(void *ctx)
{
	struct virtio_blk *d = ctx;
	if (d->broken || virtq_inflight(&d->q) <= virtq_used_pending(&d->q))
		return WAIT_FOREVER;
	return time_ns() + (d->vd.irq_vector ? VIRTQ_STALL_NS : 100000);
}

int virtio_blk_probe(const struct virtio_dev *found, char *note, size_t note_len)
{
	int err;
	if (ndisks == MAX_DISKS)
		return -ENOSPC;
	struct virtio_blk *d = &disks[ndisks];
	memset(d, 0, sizeof(*d));
	d->vd = *found;
	d->vd.name = "virtio-blk";

	uint64_t wanted = 1ull << VIRTIO_BLK_F_SIZE_MAX | 1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_RO |
	                  1ull << VIRTIO_BLK_F_BLK_SIZE | 1ull << VIRTIO_BLK_F_FLUSH | 1ull << VIRTIO_BLK_F_DISCARD |
	                  1ull << VIRTIO_BLK_F_WRITE_ZEROES | 1ull << VIRTIO_F_EVENT_IDX |
	                  1ull << VIRTIO_F_INDIRECT_DESC;
	if ((err = virtio_start(&d->vd, wanted, 0)) != 0)
		return err;

	/* The configuration, read once the features are settled. */
	virtio_config_read(&d->vd, CFG_CAPACITY, &d->sectors, 8);
	/* Byte offsets are 64-bit and files' off_t signed: a capacity beyond
	 * 2^63 bytes is more than anything can address, not a real disk. */
	if (d->sectors > INT64_MAX / 512)
		d->sectors = INT64_MAX / 512;
	d->block_size = has(d, VIRTIO_BLK_F_BLK_SIZE) ? cfg32(d, CFG_BLK_SIZE) : 512;
	if (d->block_size < 512 || d->block_size > 65536 || (d->block_size & (d->block_size - 1)))
		d->block_size = 512; /* nonsense from the device: the spec's default */
	d->size_max = has(d, VIRTIO_BLK_F_SIZE_MAX) ? cfg32(d, CFG_SIZE_MAX) : 0;
	d->seg_max = has(d, VIRTIO_BLK_F_SEG_MAX) ? cfg32(d, CFG_SEG_MAX) : 1;
	if (d->seg_max == 0 || d->seg_max > MAX_SEGS)
		d->seg_max = d->seg_max ? MAX_SEGS : 1;
	if (has(d, VIRTIO_BLK_F_DISCARD))
		d->max_discard_sectors = cfg32(d, CFG_MAX_DISCARD_SECTORS);
	if (has(d, VIRTIO_BLK_F_WRITE_ZEROES))
		d->max_write_zeroes_sectors = cfg32(d, CFG_MAX_WRITE_ZEROES_SECTORS);

	/* 7. One request queue (no VIRTIO_BLK_F_MQ). */
	if ((err = virtio_queue_init(&d->vd, &d->q, 0, VIRTQ_MAX_SIZE)) != 0) {
		virtio_fail(&d->vd, "cannot set up its request queue");
		return err;
	}
	/* A slot per possible request: with indirect descriptors each request
	 * takes one descriptor of the ring, so the queue size is the limit;
	 * without, three or more, and the ring runs out first. */
	d->nslots = d->q.size;
	size_t bytes = ALIGN_UP(d->nslots * sizeof(struct slot), PAGE_SIZE);
	d->slots = page_alloc(bytes / PAGE_SIZE);
	if (!d->slots) {
		virtio_fail(&d->vd, "no memory for request slots");
		return -ENOMEM;
	}
	for (int i = d->nslots - 1; i >= 0; i--) {
		d->slots[i].next_free = d->free_slots;
		d->free_slots = &d->slots[i];
	}
	virtio_irq_setup(&d->vd, 1);
	virtio_ready(&d->vd);

	ksnprintf(d->name, sizeof(d->name), "vd%c", 'a' + ndisks);
	ksnprintf(note, note_len, "%s %lu MiB%s%s, %s", d->name, (unsigned long)(d->sectors >> 11),
	          has(d, VIRTIO_BLK_F_RO) ? " ro" : "", d->vd.modern ? "" : " (legacy)", d->vd.wake);
	d->ws = (struct wait_source){.name = d->name,
	                             .poll = src_poll,
	                             .arm = d->vd.irq_vector ? src_arm : NULL,
	                             .disarm = src_disarm,
	                             .deadline = src_deadline,
	                             .ctx = d};
	wait_add_source(&d->ws);
	ndisks++;
	return blk_register(&virtio_blk_ops, d);
}

static void virtio_blk_info(void *dev, struct blk_info *info)
{
	const struct virtio_blk *d = dev;
	memset(info, 0, sizeof(*info));
	memcpy(info->name, d->name, sizeof(info->name));
	/* capacity counts 512-byte sectors whatever blk_size is (§5.2.5: "the
	 * units used in the protocol (always 512 bytes)"), but requests go in
	 * whole blocks (a device with 4 KiB logical blocks, such as QEMU's
	 * logical_block_size=4096, refuses anything else): a partial last
	 * block cannot be read, so it is not part of the disk. */
	info->size = ALIGN_DOWN(d->sectors * 512, (uint64_t)d->block_size);
	info->block_size = d->block_size;
	info->read_only = has(d, VIRTIO_BLK_F_RO);
	info->flush = has(d, VIRTIO_BLK_F_FLUSH);
	info->discard = has(d, VIRTIO_BLK_F_DISCARD);
	info->write_zeroes = has(d, VIRTIO_BLK_F_WRITE_ZEROES);
	/* Without size_max, a segment is limited only by the 32-bit length;
	 * keep requests to a size that leaves other requests room. */
	uint64_t seg = d->size_max ? d->size_max : (1u << 20);
	uint64_t max = seg * (d->seg_max > 1 ? d->seg_max - 1 : 1); /* -1: a buffer may straddle */
	if (max > (4u << 20))
		max = 4u << 20;
	info->max_transfer = (uint32_t)ALIGN_DOWN(max, d->block_size);
	if (info->max_transfer < d->block_size)
		info->max_transfer = d->block_size;
	info->queue_size = d->nslots;
	info->features = d->vd.features;
	info->modern = d->vd.modern;
	info->max_discard = (uint64_t)d->max_discard_sectors * 512;
	info->max_zeroes = (uint64_t)d->max_write_zeroes_sectors * 512;
	/* The first word of the wake-up the boot log names: msix, intx, irq, timer. */
	size_t w = strcspn(d->vd.wake, " ");
	ksnprintf(info->wakeup, sizeof(info->wakeup), "%.*s", (int)w, d->vd.wake);
	ksnprintf(info->bus, sizeof(info->bus), "%s", d->vd.pci ? "pci" : "mmio");
}

static unsigned virtio_blk_inflight(void *dev) { return ((struct virtio_blk *)dev)->inflight; }
static uint64_t virtio_blk_wakeups(void *dev) { return virtio_irq_count(&((struct virtio_blk *)dev)->vd); }

static uint64_t virtio_blk_oldest_ns(void *dev)
{
	const struct virtio_blk *d = dev;
	uint64_t oldest = UINT64_MAX;
	for (uint16_t i = 0; i < d->nslots && d->inflight; i++)
		if (d->slots[i].req && d->slots[i].submitted_ns < oldest)
			oldest = d->slots[i].submitted_ns;
	return oldest == UINT64_MAX ? time_ns() : oldest;
}

/* Splits [p, p+len) into segments of at most size_max bytes. */
static int add_data(const struct virtio_blk *d, struct virtq_buf *b, int n, uint8_t *p, uint32_t len)
{
	while (len) {
		uint32_t chunk = d->size_max && len > d->size_max ? d->size_max : len;
		if (n - 1 >= (int)d->seg_max)
			return -EINVAL; /* more segments than the device takes */
		b[n++] = (struct virtq_buf){p, chunk};
		p += chunk;
		len -= chunk;
	}
	return n;
}

static int virtio_blk_submit(void *dev, struct blk_request *r)
{
	struct virtio_blk *d = dev;
	struct virtq_buf b[MAX_SEGS + 2];
	int n_out, n;
	if (d->broken)
		return -EIO;
	struct slot *s = d->free_slots;
	if (!s)
		return -EAGAIN;

	uint64_t sector = r->offset / 512;
	s->hdr = (struct virtio_blk_req_hdr){.sector = sector};
	s->status = 0xff; /* not a valid status: the device must overwrite it */
	b[0] = (struct virtq_buf){&s->hdr, sizeof(s->hdr)};
	switch (r->op) {
	case BLK_READ:
	case BLK_WRITE:
		s->hdr.type = r->op == BLK_READ ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT;
		n = add_data(d, b, 1, r->buf, r->len);
		if (n < 0)
			return n;
		n_out = r->op == BLK_WRITE ? n : 1;
		break;
	case BLK_FLUSH:
		s->hdr.type = VIRTIO_BLK_T_FLUSH;
		s->hdr.sector = 0;
		n = n_out = 1;
		break;
	case BLK_GET_ID:
		s->hdr.type = VIRTIO_BLK_T_GET_ID;
		s->hdr.sector = 0;
		b[1] = (struct virtq_buf){r->buf, VIRTIO_BLK_ID_BYTES};
		n = 2;
		n_out = 1;
		break;
	case BLK_DISCARD:
	case BLK_WRITE_ZEROES: {
		bool discard = r->op == BLK_DISCARD;
		uint32_t limit = discard ? d->max_discard_sectors : d->max_write_zeroes_sectors;
		if (!has(d, discard ? VIRTIO_BLK_F_DISCARD : VIRTIO_BLK_F_WRITE_ZEROES))
			return -EOPNOTSUPP;
		if (limit && r->len / 512 > limit)
			return -EINVAL;
		s->hdr.type = discard ? VIRTIO_BLK_T_DISCARD : VIRTIO_BLK_T_WRITE_ZEROES;
		s->hdr.sector = 0;
		s->range = (struct virtio_blk_discard_write_zeroes){.sector = sector, .num_sectors = r->len / 512};
		b[1] = (struct virtq_buf){&s->range, sizeof(s->range)};
		n = n_out = 2;
		break;
	}
	default:
		return -EINVAL;
	}
	b[n++] = (struct virtq_buf){&s->status, 1};

	int err = has(d, VIRTIO_F_INDIRECT_DESC) ? virtq_add_indirect(&d->q, b, n_out, n - n_out, s, s->table)
	                                         : virtq_add(&d->q, b, n_out, n - n_out, s);
	if (err == -ENOSPC)
		return -EAGAIN;
	if (err)
		return err;
	d->free_slots = s->next_free;
	s->req = r;
	s->submitted_ns = time_ns();
	d->inflight++;
	virtq_kick(&d->q);
	return 0;
}

static int status_errno(uint8_t status)
{
	switch (status) {
	case VIRTIO_BLK_S_OK:
		return 0;
	case VIRTIO_BLK_S_UNSUPP:
		return -EOPNOTSUPP;
	default: /* IOERR, or a value the spec does not have */
		return -EIO;
	}
}

static void virtio_blk_abandon(void *dev, const char *why)
{
	struct virtio_blk *d = dev;
	if (d->broken)
		return;
	d->broken = true;
	/* Reset first: after this the device no longer touches our memory,
	 * so the requests' buffers can go back to their owners. */
	virtio_reset(&d->vd);
	klog("%s: %s; the disk is stopped and its requests fail", d->name, why);
	if (virtio_status(&d->vd) != 0)
		klog("%s: the device did not reset: it may still write to memory it was given", d->name);
}

/*
 * A lost notification would leave requests in the queue that the device
 * never looks at (see virtq_notify()): the queue's watchdog notifies again
 * when nothing has moved for a while.
 */
static void stall_check(struct virtio_blk *d)
{
	if (virtq_watchdog(&d->q, time_ns()) && d->renotified++ == 0)
		kdebug("%s: no completion for 1 ms with %u requests in flight: notifying again", d->name, d->inflight);
}

static int virtio_blk_poll(void *dev, struct blk_request **done, int max)
{
	struct virtio_blk *d = dev;
	int n = 0;
	void *cookie;
	uint32_t len;
	while (n < max && !d->broken) {
		int got = virtq_get_used(&d->q, &cookie, &len);
		if (got == 0) {
			stall_check(d);
			break;
		}
		if (got < 0) {
			char why[96];
			ksnprintf(why, sizeof(why), "device broke the ring rules (%s)", virtq_broken_reason(&d->q));
			virtio_blk_abandon(d, why);
			break;
		}
		struct slot *s = cookie;
		struct blk_request *r = s->req;
		/* The status byte decides, not the used length: the queue has
		 * already refused a length above the writable buffers, and a
		 * shorter one is no sign of missing data (§2.7.8.2: "The device
		 * MAY write more than len bytes"); legacy devices are known to
		 * report it wrongly (Linux stopped checking it, commit
		 * f124034faa91). A device that never wrote the status leaves our
		 * 0xff there: -EIO. */
		(void)len;
		r->status = status_errno(s->status);
		s->req = NULL;
		s->next_free = d->free_slots;
		d->free_slots = s;
		d->inflight--;
		done[n++] = r;
	}
	if (d->broken) {
		/* Everything still outstanding fails. */
		for (uint16_t i = 0; i < d->nslots && n < max; i++) {
			struct slot *s = &d->slots[i];
			if (!s->req)
				continue;
			s->req->status = -EIO;
			done[n++] = s->req;
			s->req = NULL;
			d->inflight--;
		}
	}
	return n;
}

static const struct blk_dev_ops virtio_blk_ops = {
    .info = virtio_blk_info,
    .submit = virtio_blk_submit,
    .poll = virtio_blk_poll,
    .inflight = virtio_blk_inflight,
    .oldest_ns = virtio_blk_oldest_ns,
    .wakeups = virtio_blk_wakeups,
    .abandon = virtio_blk_abandon,
};
