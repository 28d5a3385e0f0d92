/*
 * virtq: the split virtqueue, driver side (see virtq.h for the API and an example).
 * Implements: Virtual I/O Device (VIRTIO) Version 1.2, §2.7 Split Virtqueues.
 * Try it:     make test (tests/unit/test_virtq.c plays the device, a malicious one included)
 *
 * Layout of the ring memory, the legacy one (§2.7.2), which modern devices accept as well:
 *
 *	offset 0                 struct virtq_desc desc[size]
 *	16 * size                struct virtq_avail { flags, idx, ring[size], used_event }
 *	(padding to VIRTQ_RING_ALIGN)
 *	used offset              struct virtq_used { flags, idx, ring[size], avail_event }
 *
 * What the device can write (the used ring) is read through volatile pointers, each field
 * once, into locals that are checked before anything is done with them. What we keep for
 * ourselves (free list, chain lengths, cookies, our indices) lives in struct virtq, never in
 * shared memory, so a device scribbling over the rings cannot make us follow its pointers.
 */
#include "virtq.h"

#include <errno.h>
#include <string.h>

static size_t align_up(size_t x, size_t a) { return (x + a - 1) & ~(a - 1); }

/* Size of desc[] + avail (flags, idx, ring[], used_event), where the padding starts. */
static size_t desc_avail_bytes(uint16_t size)
{
	return sizeof(struct virtq_desc) * size + sizeof(uint16_t) * (3 + (size_t)size);
}

/* Size of the used ring: flags, idx, ring[], avail_event. */
static size_t used_bytes(uint16_t size) { return sizeof(uint16_t) * 3 + sizeof(struct virtq_used_elem) * (size_t)size; }

/*
 * The legacy formula of §2.7.2, with the alignment the spec means (its ALIGN macro adds
 * qalign and masks with ~qalign; the intent is round-up to a multiple of qalign):
 *	ALIGN(sizeof(struct virtq_desc)*qsz + sizeof(u16)*(3 + qsz))
 *	+ ALIGN(sizeof(u16)*3 + sizeof(struct virtq_used_elem)*qsz)
 */
size_t virtq_ring_bytes(uint16_t size)
{
	return align_up(desc_avail_bytes(size), VIRTQ_RING_ALIGN) + align_up(used_bytes(size), VIRTQ_RING_ALIGN);
}

/* avail->used_event sits right after avail->ring[size] (§2.7.6). */
static volatile uint16_t *used_event(struct virtq *q) { return &q->avail->ring[q->size]; }

/* used->avail_event sits right after used->ring[size] (§2.7.8). */
static volatile uint16_t *avail_event(struct virtq *q) { return (volatile uint16_t *)&q->used->ring[q->size]; }

/*
 * Used buffer notifications are off unless the wait loop is about to halt (virtq_enable_notify()).
 * With VIRTIO_F_EVENT_IDX the driver MUST set avail->flags to 0 (§2.7.7.1), so the only tool is
 * used_event: the device notifies when it writes the used entry numbered used_event. Off, we
 * point it at the entry just behind the last one we consumed: the device can never be more than
 * `size` entries ahead of us, so it would have to go 65535 entries round the 16-bit index to
 * reach it, and never does. On, we point it at the next entry: the first completion notifies.
 * Moving it after each completion keeps it where it should be. It is only a hint, so no barrier.
 */
static void push_used_event(struct virtq *q)
{
	if (q->event_idx)
		*used_event(q) = q->notify_on ? (uint16_t)(q->last_used + q->notify_lag) : (uint16_t)(q->last_used - 1);
}

int virtq_init(struct virtq *q, uint16_t index, uint16_t size, void *ring_mem, bool event_idx,
               void (*notify)(struct virtq *q, void *ctx), void *notify_ctx)
{
	uint8_t *mem = ring_mem;

	if (q == NULL || mem == NULL || notify == NULL)
		return -EINVAL;
	/* "Queue Size value is always a power of 2" (§2.7); ours also fits VIRTQ_MAX_SIZE. */
	if (size == 0 || (size & (size - 1)) != 0 || size > VIRTQ_MAX_SIZE)
		return -EINVAL;
	/* "The driver MUST ensure that the physical address of the first byte of each virtqueue
	 * part is a multiple of the specified alignment value" (§2.7.1); page alignment of the
	 * whole covers all three parts and the legacy layout. */
	if (virtq_dma_addr(mem) % VIRTQ_RING_ALIGN != 0)
		return -EINVAL;

	memset(q, 0, sizeof(*q));
	/* "The driver MUST initialize flags in the used ring to 0 when allocating the used
	 * ring" (§2.7.10.1): zero everything, whatever the caller gave us. */
	memset(mem, 0, virtq_ring_bytes(size));

	q->desc = (volatile struct virtq_desc *)mem;
	q->avail = (volatile struct virtq_avail *)(mem + sizeof(struct virtq_desc) * size);
	q->used = (volatile struct virtq_used *)(mem + align_up(desc_avail_bytes(size), VIRTQ_RING_ALIGN));
	q->index = index;
	q->size = size;
	q->event_idx = event_idx;
	q->notify = notify;
	q->notify_ctx = notify_ctx;

	/* Every descriptor free, linked in order. */
	for (uint16_t i = 0; i + 1 < size; i++)
		q->next[i] = i + 1;
	q->free_head = 0;
	q->num_free = size;

	/* We poll, so start with no used buffer notifications (§2.7.7.1): without EVENT_IDX "the
	 * driver MUST set flags to 0 or 1" and 1 means "not needed"; with it, see above. */
	virtq_disable_notify(q);
	return 0;
}

bool virtq_enable_notify_after(struct virtq *q, uint16_t n)
{
	if (q->broken || n == 0)
		return false;
	q->notify_on = true;
	q->notify_lag = (uint16_t)(n - 1); /* used_event names the entry whose use notifies */
	if (q->event_idx)
		push_used_event(q);
	else
		q->avail->flags = 0; /* §2.7.7: 0 asks for a notification on every used buffer */
	/* The device reads our suppression field after it moves used->idx, and we read used->idx
	 * after writing the field: both sides store then load, so without a full fence each could
	 * miss the other's store, and the completion that came in between would notify nobody. */
	virtio_mb();
	/* used->idx read once; only compared, never used as an index */
	return (uint16_t)(q->used->idx - q->last_used) >= n;
}

bool virtq_enable_notify(struct virtq *q) { return virtq_enable_notify_after(q, 1); }

uint16_t virtq_used_idx(const struct virtq *q) { return q->broken ? 0 : q->used->idx; }

unsigned virtq_used_pending(const struct virtq *q)
{
	if (q->broken)
		return 0;
	uint16_t moved = (uint16_t)(q->used->idx - q->last_used); /* read once */
	return moved < q->inflight ? moved : q->inflight;         /* a lying device gets no more */
}

void virtq_disable_notify(struct virtq *q)
{
	q->notify_on = false;
	q->notify_lag = 0;
	if (q->event_idx)
		push_used_event(q);
	else
		q->avail->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
}

/* The checks every chain passes, direct or indirect; sets *in_len to the bytes the device may
 * write. Returns 0 or -EINVAL/-EIO. */
static int check_chain(const struct virtq *q, const struct virtq_buf *bufs, unsigned n_out, unsigned n_in,
                       const void *cookie, uint32_t *in_len)
{
	uint64_t total = 0, in = 0;
	unsigned n;

	if (q->broken)
		return -EIO;
	if (cookie == NULL || bufs == NULL || n_out > q->size || n_in > q->size)
		return -EINVAL;
	n = n_out + n_in;
	/* "A driver MUST NOT create a descriptor chain longer than the Queue Size of the
	 * device" (§2.7.5.3.1), which holds for an indirect table's chain too. */
	if (n == 0 || n > q->size)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		if (bufs[i].addr == NULL || bufs[i].len == 0)
			return -EINVAL;
		total += bufs[i].len;
		if (i >= n_out)
			in += bufs[i].len;
	}
	/* "Drivers MUST NOT add a descriptor chain longer than 2^32 bytes in total" (§2.7.5.2);
	 * we stop one byte short so that lengths fit in 32 bits. */
	if (total > UINT32_MAX)
		return -EINVAL;
	*in_len = (uint32_t)(q->used_len_total ? total : in);
	return 0;
}

/* Writes n descriptors for bufs: into the ring's table (linked through our free list) when
 * table is NULL, else into an indirect table (linked 0, 1, 2, ...). Returns the last index. */
static uint16_t fill_descs(struct virtq *q, volatile struct virtq_desc *table, uint16_t first,
                           const struct virtq_buf *bufs, unsigned n_out, unsigned n)
{
	volatile struct virtq_desc *desc = table ? table : q->desc;
	uint16_t d = first, last = first;

	/* "The driver MUST place any device-writable descriptor elements after any device-readable
	 * descriptor elements" (§2.7.4.2): bufs lists the out buffers first. */
	for (unsigned i = 0; i < n; i++) {
		uint16_t flags = i >= n_out ? VIRTQ_DESC_F_WRITE : 0;
		bool more = i + 1 < n;
		uint16_t next = table ? (uint16_t)(d + 1) : q->next[d];

		if (more)
			flags |= VIRTQ_DESC_F_NEXT;
		desc[d].addr = virtq_dma_addr(bufs[i].addr);
		desc[d].len = bufs[i].len;
		desc[d].flags = flags;
		desc[d].next = more ? next : 0;
		last = d;
		d = next;
	}
	return last;
}

/* Takes n descriptors off the free list for a chain starting at the head, records the chain
 * and makes it available to the device. */
static void publish(struct virtq *q, uint16_t head, uint16_t last, unsigned n, void *cookie, uint32_t in_len)
{
	q->free_head = q->next[last]; /* meaningless when the list is now empty; never read */
	q->num_free = (uint16_t)(q->num_free - n);
	q->chain[head].cookie = cookie;
	q->chain[head].in_len = in_len;
	q->chain[head].ndesc = (uint16_t)n;
	q->inflight++;

	/* §2.7.13.2: the head goes into the next available ring entry. */
	q->avail->ring[q->avail_idx & (q->size - 1)] = head;
	/* "The driver MUST perform a suitable memory barrier before the idx update, to ensure the
	 * device sees the most up-to-date copy" (§2.7.13.3.1). */
	virtio_wmb(); /* descriptors and ring entry visible before avail->idx moves */
	/* "A driver MUST NOT decrement the available idx" (§2.7.6.1): it only counts up, and
	 * wraps naturally at 65536 (§2.7.13.3). */
	q->avail_idx++;
	q->avail->idx = q->avail_idx;
}

int virtq_add(struct virtq *q, const struct virtq_buf *bufs, unsigned n_out, unsigned n_in, void *cookie)
{
	uint32_t in_len;
	int err = check_chain(q, bufs, n_out, n_in, cookie, &in_len);
	unsigned n = n_out + n_in;

	if (err)
		return err;
	if (n > q->num_free)
		return -ENOSPC;
	/* §2.7.13.1: fill free descriptors, chaining through the free list's own order. */
	uint16_t head = q->free_head;
	uint16_t last = fill_descs(q, NULL, head, bufs, n_out, n);
	publish(q, head, last, n, cookie, in_len);
	return 0;
}

int virtq_add_indirect(struct virtq *q, const struct virtq_buf *bufs, unsigned n_out, unsigned n_in, void *cookie,
                       struct virtq_desc *table)
{
	uint32_t in_len;
	int err = check_chain(q, bufs, n_out, n_in, cookie, &in_len);
	unsigned n = n_out + n_in;

	if (err)
		return err;
	if (table == NULL || ((uintptr_t)table & 15))
		return -EINVAL;
	if (q->num_free == 0)
		return -ENOSPC;
	/* §2.7.5.3: the chain lives in the table, and one descriptor in the ring points at it.
	 * "The driver MUST NOT set the VIRTQ_DESC_F_INDIRECT flag within an indirect descriptor"
	 * and "MUST NOT set both VIRTQ_DESC_F_INDIRECT and VIRTQ_DESC_F_NEXT" (§2.7.5.3.1). */
	fill_descs(q, table, 0, bufs, n_out, n);
	uint16_t head = q->free_head;
	q->desc[head].addr = virtq_dma_addr(table);
	q->desc[head].len = (uint32_t)(n * sizeof(struct virtq_desc));
	q->desc[head].flags = VIRTQ_DESC_F_INDIRECT;
	q->desc[head].next = 0;
	publish(q, head, head, 1, cookie, in_len);
	return 0;
}

bool virtq_kick_prepare(struct virtq *q)
{
	uint16_t old = q->kicked_idx, new = q->avail_idx;

	if (q->broken || old == new)
		return false;
	q->kicked_idx = new;

	/* "The driver MUST perform a suitable memory barrier before reading flags or
	 * avail_event, to avoid missing a notification" (§2.7.13.4.1). */
	virtio_mb(); /* avail->idx store visible before we read the device's suppression */

	if (q->event_idx) {
		/* §2.7.10.1, with EVENT_IDX: the driver MUST notify when the avail idx it wrote
		 * the entry at "was equal to avail_event". We may have written several entries
		 * (old..new-1) since the last kick: notify if avail_event is one of them, i.e.
		 * (new - avail_event - 1) < (new - old) in 16-bit arithmetic. */
		uint16_t event = *avail_event(q);

		return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
	}
	/* §2.7.10.1, without EVENT_IDX: "If flags is 0, the driver MUST send a notification";
	 * if it is 1 (VIRTQ_USED_F_NO_NOTIFY), it SHOULD NOT. */
	return (q->used->flags & VIRTQ_USED_F_NO_NOTIFY) == 0;
}

void virtq_kick(struct virtq *q)
{
	if (virtq_kick_prepare(q))
		q->notify(q, q->notify_ctx);
}

void virtq_notify(struct virtq *q)
{
	if (q->broken)
		return;
	q->kicked_idx = q->avail_idx;
	q->notify(q, q->notify_ctx);
}

bool virtq_watchdog(struct virtq *q, uint64_t now_ns)
{
	if (q->broken)
		return false;
	if (q->inflight == 0 || q->last_used != q->wd_used || q->avail_idx != q->wd_avail) {
		q->wd_used = q->last_used;
		q->wd_avail = q->avail_idx;
		q->wd_ns = now_ns;
		return false;
	}
	if (now_ns - q->wd_ns < VIRTQ_STALL_NS)
		return false;
	q->wd_ns = now_ns;
	virtq_notify(q);
	return true;
}

static int mark_broken(struct virtq *q, const char *reason)
{
	q->broken = reason;
	return -EIO;
}

int virtq_get_used(struct virtq *q, void **cookie, uint32_t *len)
{
	uint16_t used_idx, moved, slot, d;
	uint32_t id, used_len;
	struct virtq_chain *c;

	if (q->broken)
		return -EIO;

	used_idx = q->used->idx; /* read once: the device may move it at any time */
	if (used_idx == q->last_used)
		return 0;
	/* The device "MUST set len prior to updating the used idx" (§2.7.8.2); our side of
	 * that: read the entry only after the idx that published it. */
	virtio_rmb(); /* used->idx read before the used entries it covers */

	/* Each used entry returns one chain we offered, so idx can run ahead of us by at most
	 * the chains in flight (which is at most size). Anything else, including idx going
	 * backwards (a huge forward move in 16 bits), is a device bug. */
	moved = (uint16_t)(used_idx - q->last_used);
	if (moved > q->size)
		return mark_broken(q, "used idx moved by more than the queue size");
	if (moved > q->inflight)
		return mark_broken(q, "used idx moved past the chains in flight");

	/* Copy the entry out once; only the copies are checked and used. */
	slot = q->last_used & (q->size - 1);
	id = q->used->ring[slot].id;
	used_len = q->used->ring[slot].len;

	if (id >= q->size)
		return mark_broken(q, "used id out of range");
	id = virtq_index_nospec(id, q->size); /* no speculative chain[] read past the check */
	c = &q->chain[id];
	if (c->cookie == NULL)
		return mark_broken(q, "used id is not the head of a chain in flight");
	if (used_len > c->in_len)
		return mark_broken(q, "used len larger than the chain's writable buffers");

	*cookie = c->cookie;
	*len = used_len;

	/* Give the chain's descriptors back: walk our own links (not desc[].next, which sits in
	 * shared memory) to the tail and splice the chain onto the free list. */
	d = (uint16_t)id;
	for (uint16_t i = 1; i < c->ndesc; i++)
		d = q->next[d];
	q->next[d] = q->free_head;
	q->free_head = (uint16_t)id;
	q->num_free += c->ndesc;
	c->cookie = NULL;
	c->ndesc = 0;
	c->in_len = 0;
	q->inflight--;
	q->last_used++;
	push_used_event(q);
	return 1;
}

bool virtq_broken(const struct virtq *q) { return q->broken != NULL; }

const char *virtq_broken_reason(const struct virtq *q) { return q->broken ? q->broken : ""; }

unsigned virtq_free_count(const struct virtq *q) { return q->num_free; }

unsigned virtq_inflight(const struct virtq *q) { return q->inflight; }
