/*
 * virtq: the split virtqueue, driver side; generic, knows no transport and no device type.
 * Implements: Virtual I/O Device (VIRTIO) Version 1.2, §2.7 Split Virtqueues.
 * Try it:     make test (tests/unit/test_virtq.c plays the device, a malicious one included)
 *
 * One request is one chain of buffers: first the ones the device reads, then the ones it
 * writes. The caller hands over a cookie with the chain and gets the same cookie back, with
 * the number of bytes the device wrote, when the device has used it:
 *
 *	struct virtq_buf b[2] = { { &hdr, sizeof(hdr) }, { &status, 1 } };
 *	virtq_add(q, b, 1, 1, req);       // 1 device-readable, 1 device-writable
 *	virtq_kick(q);                    // notifies the device only if it asked for it
 *	while (virtq_get_used(q, &cookie, &len) == 1)
 *		complete(cookie, len);
 *
 * The device is not trusted: a used entry that names no outstanding chain, claims more bytes
 * than the chain can hold, or a used index that runs ahead marks the queue broken. From then
 * on every call fails with -EIO and nothing more is read from or written to the rings.
 *
 * Nothing here sleeps, allocates or takes a lock: one queue, one caller at a time.
 */
#ifndef RINGLET_VIRTQ_H
#define RINGLET_VIRTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio.h"

/*
 * The largest queue this code drives; its bookkeeping lives inline in struct virtq, sized for
 * this many descriptors (about 4.5 KiB per queue). 256 is what QEMU offers by default for
 * virtio-net and virtio-blk; smaller devices (rng, balloon) offer less. A modern device accepts
 * a smaller queue_size from the driver; a legacy device's size is fixed, so a legacy device
 * offering more than this cannot be driven: raise it here if one ever matters.
 */
#define VIRTQ_MAX_SIZE 256

/*
 * Alignment of the ring memory and of the used ring inside it. The modern transport would be
 * happy with 16 (desc) / 2 (avail) / 4 (used), but the legacy one only takes a page frame
 * number and puts the used ring at the next 4096 boundary (§2.7.2), so one layout serves both.
 */
#define VIRTQ_RING_ALIGN 4096

/*
 * The device address of driver memory. Ringlet identity-maps RAM (physical == virtual) and
 * does not use VIRTIO_F_ACCESS_PLATFORM, so it is the pointer's value. Every address handed to
 * the device goes through here, so this is the one place to change with an IOMMU, and the
 * host-side tests can pass ordinary heap memory.
 */
static inline uint64_t virtq_dma_addr(const volatile void *p) { return (uint64_t)(uintptr_t)p; }

/*
 * idx when idx < size, else 0, computed without a branch. A bounds check on an index the
 * device wrote is a branch the CPU may predict wrongly, and then it reads array[idx]
 * speculatively, out of bounds, leaving a trace in the cache (Spectre v1; Linux clamps with
 * array_index_nospec()). So the checked index is also clamped with a mask: all ones when
 * idx < size (the 64-bit difference is negative, its top bit set), zero otherwise. The empty
 * asm hides the difference from the compiler, so that it cannot turn the mask back into the
 * comparison and a branch. Use it right after the check, on the value that indexes.
 */
static inline uint32_t virtq_index_nospec(uint32_t idx, uint32_t size)
{
	uint64_t diff = (uint64_t)idx - size;
	__asm__("" : "+r"(diff));
	uint64_t mask = 0 - (diff >> 63);
	return idx & (uint32_t)mask;
}

/* One buffer of a chain. The queue never dereferences addr: it only passes it to the device. */
struct virtq_buf {
	const void *addr; /* start of the buffer (the device writes it if it is an "in" buffer) */
	uint32_t len;     /* its length in bytes, not 0 */
};

/* Per-chain bookkeeping, indexed by the chain's head descriptor. Private to virtq.c. */
struct virtq_chain {
	void *cookie;    /* the caller's cookie; NULL when no chain starts at this descriptor */
	uint32_t in_len; /* total length of the device-writable buffers: the most used len may be */
	uint16_t ndesc;  /* descriptors in the chain */
};

/*
 * A split virtqueue. Fields are public only so that a struct virtq can be embedded in a
 * driver's state; use the functions below rather than touching them.
 */
struct virtq {
	/* The three parts shared with the device (§2.7), inside the caller's ring memory. */
	volatile struct virtq_desc *desc;   /* descriptor table: written by us */
	volatile struct virtq_avail *avail; /* available ring: written by us */
	volatile struct virtq_used *used;   /* used ring: written by the device, untrusted */

	uint16_t index;                             /* the queue's index on its device, for the transport's notify */
	uint16_t size;                              /* number of descriptors, a power of two <= VIRTQ_MAX_SIZE */
	bool event_idx;                             /* VIRTIO_F_EVENT_IDX was negotiated */
	void (*notify)(struct virtq *q, void *ctx); /* the transport's "available buffer" kick */
	void *notify_ctx;
	/* The device's used len counts the bytes it read too, not only those it wrote (QEMU's
	 * virtio-scsi reports data-out + response for a write, against §2.7.8): a used len up to
	 * the chain's whole length is accepted, and the driver must not take len as bytes
	 * written. Set by the driver after virtq_init(); false by default. */
	bool used_len_total;

	/* Our own state. Never read back from shared memory, so the device cannot change it. */
	uint16_t avail_idx;            /* next avail->idx we publish (the device must not write avail) */
	uint16_t kicked_idx;           /* avail_idx at the last kick decision */
	uint16_t last_used;            /* used->idx up to which we have consumed entries */
	uint16_t free_head;            /* first free descriptor; free ones are linked through next[] */
	uint16_t num_free;             /* number of free descriptors */
	uint16_t inflight;             /* chains added and not yet returned by virtq_get_used() */
	const char *broken;            /* why the device was judged broken; NULL while it behaves */
	bool notify_on;                /* used buffer notifications asked for (virtq_enable_notify()) */
	uint16_t notify_lag;           /* ... after this many more used buffers (virtq_enable_notify_after()) */
	uint16_t wd_used, wd_avail;    /* virtq_watchdog(): last_used and avail_idx when it last saw progress */
	uint64_t wd_ns;                /* ... and the time it saw it */
	uint16_t next[VIRTQ_MAX_SIZE]; /* free list and chain links */
	struct virtq_chain chain[VIRTQ_MAX_SIZE]; /* by head descriptor */
};

/* Bytes of ring memory a queue of `size` needs (desc + avail, padded to 4096, + used). */
size_t virtq_ring_bytes(uint16_t size);

/*
 * Set up q over ring_mem, which must be VIRTQ_RING_ALIGN-aligned, virtq_ring_bytes(size) long
 * and stay put while the device may use it; virtq_init() zeroes it. size must be a power of
 * two no larger than VIRTQ_MAX_SIZE. event_idx says whether VIRTIO_F_EVENT_IDX was negotiated.
 * notify(q, notify_ctx) is called by virtq_kick() when the device wants a notification.
 * Returns 0, or -EINVAL for a bad argument. Program the three addresses below into the
 * transport afterwards.
 */
int virtq_init(struct virtq *q, uint16_t index, uint16_t size, void *ring_mem, bool event_idx,
               void (*notify)(struct virtq *q, void *ctx), void *notify_ctx);

/* Device addresses of the three parts, for the transport to program. */
static inline uint64_t virtq_desc_addr(const struct virtq *q) /* modern queue_desc; legacy PFN */
{
	return virtq_dma_addr(q->desc);
}
static inline uint64_t virtq_avail_addr(const struct virtq *q) /* modern queue_driver */
{
	return virtq_dma_addr(q->avail);
}
static inline uint64_t virtq_used_addr(const struct virtq *q) /* modern queue_device */
{
	return virtq_dma_addr(q->used);
}

/*
 * Offer one chain: n_out device-readable buffers, then n_in device-writable ones, all in bufs.
 * The chain is visible to the device when this returns; call virtq_kick() after one or more.
 * Returns 0; -EINVAL for an empty chain, a zero-length or NULL buffer, a chain longer than the
 * queue or than 4 GiB in total, or a NULL cookie; -ENOSPC when there are fewer than
 * n_out + n_in free descriptors (wait for completions); -EIO when the queue is broken.
 */
int virtq_add(struct virtq *q, const struct virtq_buf *bufs, unsigned n_out, unsigned n_in, void *cookie);

/*
 * The same chain through an indirect table (§2.7.5.3, VIRTIO_F_INDIRECT_DESC negotiated): the
 * buffers' descriptors go into `table` (n_out + n_in entries, 16-byte aligned, owned by the
 * caller and left alone until the chain is used), and the chain takes one descriptor of the
 * ring however long it is, so a queue of size N can hold N requests. Returns as virtq_add();
 * -EINVAL also for a missing or misaligned table.
 */
int virtq_add_indirect(struct virtq *q, const struct virtq_buf *bufs, unsigned n_out, unsigned n_in, void *cookie,
                       struct virtq_desc *table);

/*
 * Whether the device needs an available buffer notification for what was added since the last
 * kick; virtq_kick() = this, then notify() if true. Kept separate so a caller can decide
 * first and notify outside a critical section.
 */
bool virtq_kick_prepare(struct virtq *q);
void virtq_kick(struct virtq *q);

/*
 * Notifies the device whatever its suppression fields say. For a driver
 * that sees chains in flight and no progress for a while: a notification
 * the device did not need is harmless, one it needed and did not get stalls
 * the queue for good. (QEMU 7.2's TCG turns the guest's mfence into nothing
 * with one vCPU, so virtq_kick_prepare() can read a stale avail_event.)
 */
void virtq_notify(struct virtq *q);

/*
 * The way a driver uses virtq_notify(): call this when a poll found nothing, with the current
 * time. Progress is chains coming back or new chains going out; with chains in flight and no
 * progress for VIRTQ_STALL_NS, it notifies the device again and returns true. So a lost
 * notification costs at most that long, whatever the driver.
 */
#define VIRTQ_STALL_NS 1000000
bool virtq_watchdog(struct virtq *q, uint64_t now_ns);

/*
 * Used buffer notifications (§2.7.7, §2.7.10): off from virtq_init() on, because the driver
 * polls. The wait loop turns them on just before it halts, so that a completion wakes it, and
 * off again when it runs. virtq_enable_notify() asks for a notification on the next used
 * buffer (with EVENT_IDX: used_event = the next entry; without: avail->flags = 0), issues a full
 * barrier and returns true when used entries are already pending: then poll, do not halt.
 * Returns false for a broken queue (nothing will come). The device may notify once more after
 * virtq_disable_notify(): that costs one needless wake-up, never a lost one.
 */
bool virtq_enable_notify(struct virtq *q);
void virtq_disable_notify(struct virtq *q);

/*
 * Like virtq_enable_notify(), but the notification comes with the n-th buffer used from now
 * on (n >= 1; Linux's virtqueue_enable_cb_delayed()): a driver waiting for room in a full
 * queue wakes once when a batch is done, and the device still has the rest to work on while
 * the driver refills. Only EVENT_IDX can say "the n-th"; without it the first buffer notifies.
 * Returns true when n buffers are used already (do not halt), false for a broken queue.
 */
bool virtq_enable_notify_after(struct virtq *q, uint16_t n);
/* The device's used->idx, read once: only a hint that something changed (a wait loop compares
 * it with an earlier reading); never an index. 0 for a broken queue. */
uint16_t virtq_used_idx(const struct virtq *q);
/* Chains the device has used that virtq_get_used() has not returned yet, from one reading of
 * used->idx, at most virtq_inflight(): so virtq_inflight() minus this is what the device still
 * works on. A hint like virtq_used_idx(); 0 for a broken queue. */
unsigned virtq_used_pending(const struct virtq *q);

/*
 * Take one used chain: returns 1 and sets *cookie and *len (bytes the device wrote into the
 * chain's writable buffers) and frees its descriptors; 0 when the device has used nothing
 * new; -EIO when the queue is broken (now or before).
 */
int virtq_get_used(struct virtq *q, void **cookie, uint32_t *len);

/* The device broke the rules; the queue is unusable until the device is reset. */
bool virtq_broken(const struct virtq *q);
/* Why, for the log; "" while it is not broken. */
const char *virtq_broken_reason(const struct virtq *q);
/* Free descriptors: a chain of n buffers can be added when this is >= n. */
unsigned virtq_free_count(const struct virtq *q);
/* Chains offered to the device and not yet returned by virtq_get_used(). */
unsigned virtq_inflight(const struct virtq *q);

#endif /* RINGLET_VIRTQ_H */
