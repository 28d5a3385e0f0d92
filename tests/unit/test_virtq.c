/*
 * test_virtq: the split virtqueue against a device played by the test, honest and malicious.
 * Implements: tests of Virtual I/O Device (VIRTIO) Version 1.2, §2.7 Split Virtqueues.
 * Try it (from the top of the checkout):
 *
 *	mkdir -p build/tests && gcc -std=c11 -O1 -g -fsanitize=address,undefined \
 *		-fno-sanitize-recover=all -Wall -Wextra -Werror -I drivers/virtio -I tests/unit \
 *		tests/unit/test_virtq.c drivers/virtio/virtq.c -o build/tests/test_virtq \
 *		&& build/tests/test_virtq
 *
 * The "device" here finds the rings only through the addresses the transport would program
 * (virtq_desc_addr() and friends), reads the available ring and the descriptors the way QEMU
 * would, and writes used entries by hand: right ones, and wrong ids, lengths and indices that
 * the queue must refuse without touching memory.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>

#include "check.h"
#include "virtq.h"

#define GUARD  4096 /* bytes of poison on each side of the ring memory */
#define POISON 0xa5

/* ---- the simulated device ---------------------------------------------------------------- */

struct dev {
	volatile struct virtq_desc *desc;
	volatile struct virtq_avail *avail;
	volatile struct virtq_used *used;
	uint16_t size;
	uint16_t last_avail; /* next available entry the device will take */
	uint16_t used_idx;   /* the device's used->idx */
};

/* One chain as the device sees it. */
struct seen {
	uint16_t head;
	unsigned n;
	struct virtq_desc d[VIRTQ_MAX_SIZE];
	uint16_t idx[VIRTQ_MAX_SIZE]; /* descriptor index of each element */
	uint32_t writable;            /* total length of the WRITE descriptors */
};

static void *dma_ptr(uint64_t addr) { return (void *)(uintptr_t)addr; }

static void dev_attach(struct dev *dev, const struct virtq *q, uint16_t size)
{
	memset(dev, 0, sizeof(*dev));
	dev->desc = dma_ptr(virtq_desc_addr(q));
	dev->avail = dma_ptr(virtq_avail_addr(q));
	dev->used = dma_ptr(virtq_used_addr(q));
	dev->size = size;
}

static uint16_t dev_pending(const struct dev *dev) { return (uint16_t)(dev->avail->idx - dev->last_avail); }

/* Take the next available chain, following the descriptor links like a device does. */
static int dev_pop(struct dev *dev, struct seen *s)
{
	uint16_t i;

	if (dev_pending(dev) == 0)
		return 0;
	memset(s, 0, sizeof(*s));
	s->head = dev->avail->ring[dev->last_avail % dev->size];
	dev->last_avail++;
	i = s->head;
	for (;;) {
		if (i >= dev->size || s->n >= dev->size)
			return -1; /* the driver built a bad chain */
		s->idx[s->n] = i;
		s->d[s->n].addr = dev->desc[i].addr;
		s->d[s->n].len = dev->desc[i].len;
		s->d[s->n].flags = dev->desc[i].flags;
		s->d[s->n].next = dev->desc[i].next;
		if (s->d[s->n].flags & VIRTQ_DESC_F_WRITE)
			s->writable += s->d[s->n].len;
		if (!(s->d[s->n++].flags & VIRTQ_DESC_F_NEXT))
			return 1;
		i = dev->desc[i].next;
	}
}

/* Write one used entry and publish it. */
static void dev_use(struct dev *dev, uint32_t id, uint32_t len)
{
	dev->used->ring[dev->used_idx % dev->size].id = id;
	dev->used->ring[dev->used_idx % dev->size].len = len;
	dev->used_idx++;
	dev->used->idx = dev->used_idx;
}

static volatile uint16_t *dev_avail_event(struct dev *dev) { return (volatile uint16_t *)&dev->used->ring[dev->size]; }

static uint16_t dev_used_event(struct dev *dev) { return dev->avail->ring[dev->size]; }

/* ---- a queue with poisoned guards around its ring memory ----------------------------------- */

struct fix {
	struct virtq q;
	struct dev dev;
	uint8_t *block; /* GUARD + ring + GUARD */
	uint8_t *ring;
	size_t bytes;
	size_t driver_bytes; /* desc table + avail ring: what only the driver writes */
	unsigned notifies;
	struct virtq *notified_q;
};

static void count_notify(struct virtq *q, void *ctx)
{
	struct fix *f = ctx;

	f->notifies++;
	f->notified_q = q;
}

static struct fix *fix_new(uint16_t size, bool event_idx)
{
	struct fix *f = calloc(1, sizeof(*f));

	f->bytes = virtq_ring_bytes(size);
	f->block = aligned_alloc(VIRTQ_RING_ALIGN, f->bytes + 2 * GUARD);
	memset(f->block, POISON, f->bytes + 2 * GUARD); /* init must zero the ring itself */
	f->ring = f->block + GUARD;
	CHECK_EQ(virtq_init(&f->q, 3, size, f->ring, event_idx, count_notify, f), 0);
	f->driver_bytes = (size_t)(virtq_used_addr(&f->q) - virtq_desc_addr(&f->q));
	dev_attach(&f->dev, &f->q, size);
	return f;
}

static bool guards_intact(const struct fix *f)
{
	for (size_t i = 0; i < GUARD; i++)
		if (f->block[i] != POISON || f->block[GUARD + f->bytes + i] != POISON)
			return false;
	return true;
}

static void fix_free(struct fix *f)
{
	CHECK(guards_intact(f));
	free(f->block);
	free(f);
}

/* Buffers the tests hand to the queue: addresses that are real, lengths that differ. */
static uint8_t bufmem[64][256];

static struct virtq_buf buf(unsigned i, uint32_t len) { return (struct virtq_buf){bufmem[i % 64], len}; }

static int add1(struct fix *f, unsigned n_out, unsigned n_in, void *cookie)
{
	struct virtq_buf b[8];

	for (unsigned i = 0; i < n_out + n_in; i++)
		b[i] = buf(i, 16 + 8 * i);
	return virtq_add(&f->q, b, n_out, n_in, cookie);
}

static int cookies[1024]; /* &cookies[i] is cookie number i */

/* ---- layout ---------------------------------------------------------------------------- */

/* Recomputed here from the §2.7.2 legacy formula, independently of virtq.c. */
static size_t legacy_size(unsigned qsz)
{
	size_t a = 16 * qsz + 2 * (3 + qsz), u = 2 * 3 + 8 * qsz;

	return ((a + 4095) / 4096) * 4096 + ((u + 4095) / 4096) * 4096;
}

static void test_ring_layout(void)
{
	CHECK_EQ(virtq_ring_bytes(256), 12288);
	CHECK_EQ(virtq_ring_bytes(8), 8192);
	for (unsigned s = 1; s <= 32768; s *= 2)
		CHECK_EQ(virtq_ring_bytes((uint16_t)s), legacy_size(s));

	struct fix *f = fix_new(256, false);
	CHECK_EQ(virtq_desc_addr(&f->q), (uintptr_t)f->ring);
	CHECK_EQ(virtq_avail_addr(&f->q), (uintptr_t)f->ring + 16 * 256);
	CHECK_EQ(virtq_used_addr(&f->q), (uintptr_t)f->ring + 8192); /* next 4096 boundary */
	CHECK_EQ(virtq_desc_addr(&f->q) % 4096, 0);
	CHECK_EQ(virtq_used_addr(&f->q) % 4096, 0);
	fix_free(f);

	f = fix_new(8, false);
	CHECK_EQ(virtq_avail_addr(&f->q), (uintptr_t)f->ring + 128);
	CHECK_EQ(virtq_used_addr(&f->q), (uintptr_t)f->ring + 4096);
	fix_free(f);
}

static void test_init_rejects_bad_args(void)
{
	struct virtq q;
	uint8_t *mem = aligned_alloc(4096, 3 * 4096 + 4096);
	unsigned n = 0;

	CHECK_EQ(virtq_init(&q, 0, 0, mem, false, count_notify, &n), -EINVAL);
	CHECK_EQ(virtq_init(&q, 0, 3, mem, false, count_notify, &n), -EINVAL);
	CHECK_EQ(virtq_init(&q, 0, 24, mem, false, count_notify, &n), -EINVAL);
	CHECK_EQ(virtq_init(&q, 0, VIRTQ_MAX_SIZE * 2, mem, false, count_notify, &n), -EINVAL);
	CHECK_EQ(virtq_init(&q, 0, 8, mem + 64, false, count_notify, &n), -EINVAL);
	CHECK_EQ(virtq_init(&q, 0, 8, NULL, false, count_notify, &n), -EINVAL);
	CHECK_EQ(virtq_init(&q, 0, 8, mem, false, NULL, &n), -EINVAL);
	CHECK_EQ(virtq_init(&q, 0, 1, mem, false, count_notify, &n), 0);
	CHECK_EQ(virtq_init(&q, 0, VIRTQ_MAX_SIZE, mem, false, count_notify, &n), 0);
	free(mem);
}

static void test_init_state(void)
{
	struct fix *f = fix_new(16, false);

	CHECK_EQ(virtq_free_count(&f->q), 16);
	CHECK_EQ(virtq_inflight(&f->q), 0);
	CHECK(!virtq_broken(&f->q));
	CHECK_EQ(virtq_broken_reason(&f->q)[0], '\0');
	CHECK_EQ(f->q.index, 3);
	/* We poll: no used buffer notifications, please. */
	CHECK_EQ(f->dev.avail->flags, VIRTQ_AVAIL_F_NO_INTERRUPT);
	CHECK_EQ(f->dev.avail->idx, 0);
	CHECK_EQ(f->dev.used->flags, 0);
	CHECK_EQ(f->dev.used->idx, 0);
	for (size_t i = 0; i < f->bytes; i++)
		if (i != 16 * 16) /* avail->flags */
			CHECK_EQ(f->ring[i], 0);
	fix_free(f);

	/* With EVENT_IDX the flags MUST be 0; used_event says "not before 65535 more". */
	f = fix_new(16, true);
	CHECK_EQ(f->dev.avail->flags, 0);
	CHECK_EQ(dev_used_event(&f->dev), 0xffff);
	fix_free(f);
}

/* ---- the honest device ----------------------------------------------------------------- */

static void test_single_request(void)
{
	struct fix *f = fix_new(8, false);
	uint8_t hdr[16], status = 0xff;
	struct virtq_buf b[2] = {{hdr, sizeof(hdr)}, {&status, 1}};
	struct seen s;
	void *cookie = NULL;
	uint32_t len = 99;

	CHECK_EQ(virtq_add(&f->q, b, 1, 1, &cookies[7]), 0);
	CHECK_EQ(virtq_free_count(&f->q), 6);
	CHECK_EQ(virtq_inflight(&f->q), 1);
	CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), 0); /* nothing used yet */
	virtq_kick(&f->q);
	CHECK_EQ(f->notifies, 1);
	CHECK(f->notified_q == &f->q);

	CHECK_EQ(dev_pop(&f->dev, &s), 1);
	CHECK_EQ(s.n, 2);
	CHECK_EQ(s.d[0].addr, (uintptr_t)hdr);
	CHECK_EQ(s.d[1].addr, (uintptr_t)&status);
	if (s.n == 2)
		*(uint8_t *)dma_ptr(s.d[1].addr) = 0; /* the device writes the status byte */
	dev_use(&f->dev, s.head, 1);

	CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), 1);
	CHECK(cookie == &cookies[7]);
	CHECK_EQ(len, 1);
	CHECK_EQ(status, 0);
	CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), 0);
	CHECK_EQ(virtq_free_count(&f->q), 8);
	CHECK_EQ(virtq_inflight(&f->q), 0);
	fix_free(f);
}

static void test_out_of_order(void)
{
	enum { N = 16 };
	static const uint8_t order[N] = {5, 0, 15, 3, 9, 1, 14, 2, 8, 7, 13, 4, 11, 6, 12, 10};
	struct fix *f = fix_new(32, false);
	struct seen s[N];
	void *cookie;
	uint32_t len;

	for (unsigned i = 0; i < N; i++) {
		struct virtq_buf b[2] = {buf(i, 10), buf(i + 1, 100 + (uint32_t)i)};

		CHECK_EQ(virtq_add(&f->q, b, 1, 1, &cookies[i]), 0);
	}
	CHECK_EQ(virtq_inflight(&f->q), N);
	for (unsigned i = 0; i < N; i++)
		CHECK_EQ(dev_pop(&f->dev, &s[i]), 1);
	/* Complete in a shuffled order, each with a length of its own: its index. */
	for (unsigned k = 0; k < N; k++)
		dev_use(&f->dev, s[order[k]].head, order[k]);
	for (unsigned k = 0; k < N; k++) {
		CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), 1);
		CHECK(cookie == &cookies[order[k]]);
		CHECK_EQ(len, order[k]);
	}
	CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), 0);
	CHECK_EQ(virtq_free_count(&f->q), 32);
	CHECK_EQ(virtq_inflight(&f->q), 0);
	fix_free(f);
}

static void test_chain_layout(void)
{
	struct fix *f = fix_new(16, false);
	struct virtq_buf b[5] = {buf(0, 12), buf(1, 200), buf(2, 64), buf(3, 1), buf(4, 7)};
	struct seen s;
	void *cookie;
	uint32_t len;

	CHECK_EQ(virtq_add(&f->q, b, 2, 3, &cookies[1]), 0);
	CHECK_EQ(dev_pop(&f->dev, &s), 1);
	CHECK_EQ(s.n, 5);
	for (unsigned i = 0; i < 5; i++) {
		uint16_t want = (i >= 2 ? VIRTQ_DESC_F_WRITE : 0) | (i < 4 ? VIRTQ_DESC_F_NEXT : 0);

		CHECK_EQ(s.d[i].addr, (uintptr_t)b[i].addr);
		CHECK_EQ(s.d[i].len, b[i].len);
		CHECK_EQ(s.d[i].flags, want);
		if (i < 4)
			CHECK_EQ(s.d[i].next, s.idx[i + 1]);
		for (unsigned j = 0; j < i; j++)
			CHECK(s.idx[i] != s.idx[j]); /* no descriptor used twice */
	}
	CHECK_EQ(s.writable, 64 + 1 + 7);
	dev_use(&f->dev, s.head, 72); /* exactly the writable length: allowed */
	CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), 1);
	CHECK_EQ(len, 72);

	/* Device-readable only (a transmit): used len 0. */
	CHECK_EQ(add1(f, 3, 0, &cookies[2]), 0);
	CHECK_EQ(dev_pop(&f->dev, &s), 1);
	CHECK_EQ(s.n, 3);
	CHECK_EQ(s.writable, 0);
	CHECK_EQ(s.d[2].flags, 0);
	dev_use(&f->dev, s.head, 0);
	CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), 1);
	CHECK(cookie == &cookies[2]);
	CHECK_EQ(len, 0);

	/* Device-writable only (a receive buffer): every descriptor has WRITE. */
	CHECK_EQ(add1(f, 0, 2, &cookies[3]), 0);
	CHECK_EQ(dev_pop(&f->dev, &s), 1);
	CHECK_EQ(s.n, 2);
	CHECK_EQ(s.d[0].flags, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT);
	CHECK_EQ(s.d[1].flags, VIRTQ_DESC_F_WRITE);
	dev_use(&f->dev, s.head, 5);
	CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), 1);
	CHECK(cookie == &cookies[3]);
	CHECK_EQ(len, 5);
	CHECK_EQ(virtq_free_count(&f->q), 16);
	fix_free(f);
}

static void test_add_errors(void)
{
	struct fix *f = fix_new(8, false);
	struct virtq_buf b[9];

	for (unsigned i = 0; i < 9; i++)
		b[i] = buf(i, 8);
	CHECK_EQ(virtq_add(&f->q, b, 0, 0, &cookies[0]), -EINVAL);           /* empty chain */
	CHECK_EQ(virtq_add(&f->q, b, 1, 0, NULL), -EINVAL);                  /* no cookie */
	CHECK_EQ(virtq_add(&f->q, b, 5, 4, &cookies[0]), -EINVAL);           /* longer than the queue */
	CHECK_EQ(virtq_add(&f->q, b, 0xffffffffu, 2, &cookies[0]), -EINVAL); /* n overflows */
	b[1].len = 0;
	CHECK_EQ(virtq_add(&f->q, b, 1, 1, &cookies[0]), -EINVAL); /* zero-length buffer */
	b[1].len = 8;
	b[0].addr = NULL;
	CHECK_EQ(virtq_add(&f->q, b, 1, 1, &cookies[0]), -EINVAL); /* no buffer */
	b[0] = buf(0, 0xffffffffu);
	CHECK_EQ(virtq_add(&f->q, b, 1, 1, &cookies[0]), -EINVAL); /* more than 2^32 - 1 bytes */

	/* None of that touched the queue. */
	CHECK_EQ(virtq_free_count(&f->q), 8);
	CHECK_EQ(virtq_inflight(&f->q), 0);
	CHECK_EQ(f->dev.avail->idx, 0);
	CHECK(!virtq_broken(&f->q));
	virtq_kick(&f->q);
	CHECK_EQ(f->notifies, 0); /* nothing was added: nothing to say */
	fix_free(f);
}

static void test_full_queue(void)
{
	struct fix *f = fix_new(8, false);
	struct seen s;
	void *cookie;
	uint32_t len;

	for (unsigned i = 0; i < 4; i++)
		CHECK_EQ(add1(f, 1, 1, &cookies[i]), 0);
	CHECK_EQ(virtq_free_count(&f->q), 0);
	CHECK_EQ(add1(f, 1, 0, &cookies[9]), -ENOSPC);
	CHECK_EQ(virtq_inflight(&f->q), 4);

	/* One completion frees two descriptors: a chain of three still does not fit. */
	CHECK_EQ(dev_pop(&f->dev, &s), 1);
	dev_use(&f->dev, s.head, 0);
	CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), 1);
	CHECK(cookie == &cookies[0]);
	CHECK_EQ(virtq_free_count(&f->q), 2);
	CHECK_EQ(add1(f, 2, 1, &cookies[9]), -ENOSPC);
	CHECK_EQ(add1(f, 1, 1, &cookies[9]), 0);
	CHECK_EQ(virtq_free_count(&f->q), 0);

	/* Drain everything; the device sees exactly the chains that were added. */
	unsigned got = 0;
	while (dev_pop(&f->dev, &s) == 1) {
		CHECK_EQ(s.n, 2);
		dev_use(&f->dev, s.head, 1);
	}
	while (virtq_get_used(&f->q, &cookie, &len) == 1)
		got++;
	CHECK_EQ(got, 4);
	CHECK_EQ(virtq_free_count(&f->q), 8);
	CHECK_EQ(add1(f, 4, 4, &cookies[10]), 0); /* a chain as long as the queue */
	CHECK(!virtq_broken(&f->q));
	fix_free(f);
}

/*
 * Far more requests than the 16-bit indices count: 70000 chains of 1 to 3 descriptors, in
 * batches completed out of order, the device echoing avail_event like QEMU does.
 */
static void run_wraparound(bool event_idx)
{
	enum { SIZE = 16, TOTAL = 70000 };
	struct fix *f = fix_new(SIZE, event_idx);
	struct seen s[SIZE];
	unsigned done = 0, next = 0, kicks = 0;
	void *cookie;
	uint32_t len;

	while (done < TOTAL) {
		unsigned added = 0, popped = 0;

		/* Add as many chains as fit. */
		for (;;) {
			unsigned n_out = 1 + next % 2, n_in = next % 3 == 0 ? 0 : 1;
			int r = add1(f, n_out, n_in, &cookies[next % 1024]);

			if (r == -ENOSPC)
				break;
			CHECK(added < SIZE); /* a full queue must say -ENOSPC, not loop forever */
			if (added >= SIZE)
				goto out;
			CHECK_EQ(r, 0);
			if (r != 0)
				goto out;
			next++;
			added++;
		}
		virtq_kick(&f->q);
		kicks++;
		CHECK(added > 0);
		while (dev_pop(&f->dev, &s[popped]) == 1)
			popped++;
		CHECK_EQ(popped, added);
		if (event_idx)
			*dev_avail_event(&f->dev) = f->dev.last_avail; /* "kick me at the next one" */
		/* Complete back to front, with the writable length as len. */
		for (unsigned i = popped; i-- > 0;)
			dev_use(&f->dev, s[i].head, s[i].writable);
		for (unsigned i = popped; i-- > 0;) {
			CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), 1);
			CHECK(cookie == &cookies[(next - popped + i) % 1024]);
			CHECK_EQ(len, s[i].writable);
			done++;
		}
		if (event_idx) /* our used_event stays just behind us: the device never signals */
			CHECK_EQ(dev_used_event(&f->dev), (uint16_t)(f->dev.used_idx - 1));
	}
	CHECK(f->dev.avail->idx == (uint16_t)next); /* it did wrap, several times */
	CHECK(next > 65536);
	CHECK_EQ(f->notifies, kicks); /* flags 0 / avail_event right behind: every kick counts */
	CHECK_EQ(virtq_free_count(&f->q), SIZE);
	CHECK_EQ(virtq_inflight(&f->q), 0);
	CHECK(!virtq_broken(&f->q));
out:
	fix_free(f);
}

static void test_wraparound(void) { run_wraparound(false); }

static void test_wraparound_event_idx(void) { run_wraparound(true); }

/* ---- notification suppression ------------------------------------------------------------ */

static void test_kick_no_notify_flag(void)
{
	struct fix *f = fix_new(8, false);

	CHECK(!virtq_kick_prepare(&f->q)); /* nothing added yet */
	CHECK_EQ(add1(f, 1, 0, &cookies[0]), 0);
	virtq_kick(&f->q);
	CHECK_EQ(f->notifies, 1);
	virtq_kick(&f->q); /* nothing new since */
	CHECK_EQ(f->notifies, 1);

	f->dev.used->flags = VIRTQ_USED_F_NO_NOTIFY; /* the device is polling */
	CHECK_EQ(add1(f, 1, 0, &cookies[1]), 0);
	virtq_kick(&f->q);
	CHECK_EQ(f->notifies, 1);

	f->dev.used->flags = 0;
	CHECK_EQ(add1(f, 1, 0, &cookies[2]), 0);
	CHECK_EQ(add1(f, 1, 0, &cookies[3]), 0);
	CHECK_EQ(add1(f, 1, 0, &cookies[4]), 0);
	virtq_kick(&f->q); /* one notification for the batch of three */
	CHECK_EQ(f->notifies, 2);

	/* The avail_event field means nothing without EVENT_IDX: ignored. */
	*dev_avail_event(&f->dev) = 1000;
	CHECK_EQ(add1(f, 1, 0, &cookies[5]), 0);
	virtq_kick(&f->q);
	CHECK_EQ(f->notifies, 3);
	fix_free(f);
}

static void test_kick_event_idx(void)
{
	struct fix *f = fix_new(16, true);

	/* avail_event 0: notify when the entry at index 0 is written. */
	CHECK_EQ(add1(f, 1, 0, &cookies[0]), 0); /* avail idx 0 -> 1 */
	virtq_kick(&f->q);
	CHECK_EQ(f->notifies, 1);
	CHECK_EQ(add1(f, 1, 0, &cookies[1]), 0); /* 1 -> 2: the device did not ask */
	virtq_kick(&f->q);
	CHECK_EQ(f->notifies, 1);

	*dev_avail_event(&f->dev) = 2;           /* "tell me when you write entry 2" */
	CHECK_EQ(add1(f, 1, 0, &cookies[2]), 0); /* 2 -> 3 */
	virtq_kick(&f->q);
	CHECK_EQ(f->notifies, 2);

	/* A batch crossing the event: 3 -> 6 with avail_event 4. */
	*dev_avail_event(&f->dev) = 4;
	for (unsigned i = 3; i < 6; i++)
		CHECK_EQ(add1(f, 1, 0, &cookies[i]), 0);
	virtq_kick(&f->q);
	CHECK_EQ(f->notifies, 3);

	/* Event ahead of us: 6 -> 8 with avail_event 10, then 8 -> 11 crosses it. */
	*dev_avail_event(&f->dev) = 10;
	CHECK_EQ(add1(f, 1, 0, &cookies[6]), 0);
	CHECK_EQ(add1(f, 1, 0, &cookies[7]), 0);
	virtq_kick(&f->q);
	CHECK_EQ(f->notifies, 3);
	for (unsigned i = 8; i < 11; i++)
		CHECK_EQ(add1(f, 1, 0, &cookies[i]), 0);
	virtq_kick(&f->q);
	CHECK_EQ(f->notifies, 4);

	/* With EVENT_IDX "the driver MUST ignore the lower bit of flags". */
	f->dev.used->flags = VIRTQ_USED_F_NO_NOTIFY;
	*dev_avail_event(&f->dev) = 11;
	CHECK_EQ(add1(f, 1, 0, &cookies[11]), 0); /* 11 -> 12 */
	CHECK(virtq_kick_prepare(&f->q));
	CHECK(!virtq_kick_prepare(&f->q)); /* decided once per batch */
	fix_free(f);
}

/* ---- the malicious device ----------------------------------------------------------------- */

/* What a broken queue must look like: errors everywhere, memory left alone. */
static void check_dead(struct fix *f, const char *reason_part, const uint8_t *snapshot, unsigned free_before,
                       unsigned inflight_before)
{
	void *cookie = &cookies[1000];
	uint32_t len = 12345;

	CHECK(virtq_broken(&f->q));
	CHECK(strstr(virtq_broken_reason(&f->q), reason_part) != NULL);
	CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), -EIO);
	CHECK(cookie == &cookies[1000]); /* outputs untouched */
	CHECK_EQ(len, 12345);
	CHECK_EQ(add1(f, 1, 1, &cookies[999]), -EIO);
	unsigned notifies = f->notifies;
	virtq_kick(&f->q);
	CHECK_EQ(f->notifies, notifies); /* a broken queue does not ring the device */
	CHECK(!virtq_kick_prepare(&f->q));
	/* Nothing was freed, nothing handed back, nothing written to the driver's side of the
	 * rings, nothing outside them. */
	CHECK_EQ(virtq_free_count(&f->q), free_before);
	CHECK_EQ(virtq_inflight(&f->q), inflight_before);
	CHECK(memcmp(snapshot, f->ring, f->driver_bytes) == 0);
	CHECK(guards_intact(f));
}

/*
 * Set up `n` chains of two descriptors in flight, already kicked and popped by the device,
 * and snapshot the driver's side of the rings. Returns the fixture.
 */
static struct fix *bad_setup(uint16_t size, unsigned n, struct seen *s, uint8_t **snapshot)
{
	struct fix *f = fix_new(size, false);

	for (unsigned i = 0; i < n; i++) {
		CHECK_EQ(add1(f, 1, 1, &cookies[i]), 0);
		CHECK_EQ(dev_pop(&f->dev, &s[i]), 1);
	}
	virtq_kick(&f->q);
	*snapshot = malloc(f->driver_bytes);
	memcpy(*snapshot, f->ring, f->driver_bytes);
	return f;
}

static void expect_broken(struct fix *f, const char *reason, uint8_t *snapshot)
{
	unsigned free_before = virtq_free_count(&f->q), inflight = virtq_inflight(&f->q);
	void *cookie = &cookies[1000];
	uint32_t len = 12345;

	CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), -EIO);
	CHECK(cookie == &cookies[1000]);
	CHECK_EQ(len, 12345);
	check_dead(f, reason, snapshot, free_before, inflight);
	free(snapshot);
	fix_free(f);
}

/* virtq_watchdog(): with chains in flight and neither completions nor new chains for
 * VIRTQ_STALL_NS, it notifies once per period; any progress restarts the clock; an idle or
 * broken queue is left alone. */
static void test_watchdog(void)
{
	enum { MS = 1000000 };
	struct fix *f = fix_new(16, true);
	struct seen s;
	void *cookie;
	uint32_t len;

	CHECK(!virtq_watchdog(&f->q, 0)); /* nothing in flight */
	*dev_avail_event(&f->dev) = 100;  /* the device asks for no notifications... */
	CHECK_EQ(add1(f, 1, 0, &cookies[0]), 0);
	CHECK_EQ(add1(f, 1, 0, &cookies[1]), 0);
	virtq_kick(&f->q);
	CHECK_EQ(f->notifies, 0); /* ...and so gets none: the lost-notification case */

	CHECK(!virtq_watchdog(&f->q, 10 * MS));          /* new chains went out: progress */
	CHECK(!virtq_watchdog(&f->q, 10 * MS + MS / 2)); /* not stalled long enough */
	CHECK(virtq_watchdog(&f->q, 11 * MS));           /* 1 ms without progress */
	CHECK_EQ(f->notifies, 1);
	CHECK(!virtq_watchdog(&f->q, 11 * MS + MS / 2)); /* once per period */
	CHECK(virtq_watchdog(&f->q, 12 * MS));
	CHECK_EQ(f->notifies, 2);

	/* A completion is progress. */
	CHECK_EQ(dev_pop(&f->dev, &s), 1);
	dev_use(&f->dev, s.head, 0);
	CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), 1);
	CHECK(!virtq_watchdog(&f->q, 20 * MS));
	CHECK(!virtq_watchdog(&f->q, 20 * MS + MS / 2));
	CHECK(virtq_watchdog(&f->q, 21 * MS));
	CHECK_EQ(f->notifies, 3);

	/* All back: nothing to watch. */
	CHECK_EQ(dev_pop(&f->dev, &s), 1);
	dev_use(&f->dev, s.head, 0);
	CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), 1);
	CHECK(!virtq_watchdog(&f->q, 30 * MS));
	CHECK(!virtq_watchdog(&f->q, 40 * MS));

	/* A broken queue is not notified. */
	CHECK_EQ(add1(f, 1, 0, &cookies[2]), 0);
	dev_use(&f->dev, 99, 0);
	CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), -EIO);
	CHECK(!virtq_watchdog(&f->q, 50 * MS));
	CHECK(!virtq_watchdog(&f->q, 60 * MS));
	CHECK_EQ(f->notifies, 3);
	fix_free(f);
}

/* Indirect chains: one ring descriptor each, pointing at the caller's table, so a queue of
 * size N holds N requests whatever their length; the device sees the same buffers. */
static void test_indirect(void)
{
	enum { SIZE = 16 };
	struct fix *f = fix_new(SIZE, false);
	static struct virtq_desc tables[SIZE + 1][3] __attribute__((aligned(16)));
	static uint8_t hdr[SIZE + 1][16], data[SIZE + 1][512], status[SIZE + 1];
	struct seen s;

	for (unsigned i = 0; i < SIZE; i++) {
		struct virtq_buf b[3] = {{hdr[i], 16}, {data[i], 512}, {&status[i], 1}};
		CHECK_EQ(virtq_add_indirect(&f->q, b, 1, 2, &cookies[i], tables[i]), 0);
	}
	/* Sixteen 3-buffer requests in a 16-descriptor queue: a 17th does not fit. */
	struct virtq_buf b[3] = {{hdr[SIZE], 16}, {data[SIZE], 512}, {&status[SIZE], 1}};
	CHECK_EQ(virtq_add_indirect(&f->q, b, 1, 2, &cookies[SIZE], tables[SIZE]), -ENOSPC);
	CHECK_EQ(virtq_free_count(&f->q), 0);

	/* As the device sees the first one: one INDIRECT descriptor, its table chained 0-1-2. */
	CHECK_EQ(dev_pop(&f->dev, &s), 1);
	CHECK_EQ(s.n, 1);
	CHECK_EQ(s.d[0].flags, VIRTQ_DESC_F_INDIRECT);
	CHECK_EQ(s.d[0].addr, (uint64_t)(uintptr_t)tables[0]);
	CHECK_EQ(s.d[0].len, 3 * sizeof(struct virtq_desc));
	CHECK_EQ(tables[0][0].addr, (uint64_t)(uintptr_t)hdr[0]);
	CHECK_EQ(tables[0][0].flags, VIRTQ_DESC_F_NEXT);
	CHECK_EQ(tables[0][0].next, 1);
	CHECK_EQ(tables[0][1].addr, (uint64_t)(uintptr_t)data[0]);
	CHECK_EQ(tables[0][1].flags, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE);
	CHECK_EQ(tables[0][1].next, 2);
	CHECK_EQ(tables[0][2].len, 1);
	CHECK_EQ(tables[0][2].flags, VIRTQ_DESC_F_WRITE);

	/* The writable length is still known: more than 513 bytes is a lie. */
	void *cookie;
	uint32_t len;
	dev_use(&f->dev, s.head, 513);
	CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), 1);
	CHECK(cookie == &cookies[0]);
	CHECK_EQ(len, 513);
	CHECK_EQ(virtq_free_count(&f->q), 1);
	CHECK_EQ(virtq_add_indirect(&f->q, b, 1, 2, &cookies[SIZE], tables[SIZE]), 0);

	CHECK_EQ(dev_pop(&f->dev, &s), 1);
	dev_use(&f->dev, s.head, 514);
	CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), -EIO);

	/* A table that is missing or not 16-byte aligned is refused. */
	struct fix *g = fix_new(SIZE, false);
	CHECK_EQ(virtq_add_indirect(&g->q, b, 1, 2, &cookies[0], NULL), -EINVAL);
	CHECK_EQ(virtq_add_indirect(&g->q, b, 1, 2, &cookies[0], (struct virtq_desc *)((uint8_t *)tables[0] + 8)),
	         -EINVAL);
	fix_free(f);
	fix_free(g);
}

/* virtq_notify(): the stall fallback notifies even when the device's avail_event says it
 * need not be told (it may be stale), and not at all on a broken queue. */
static void test_forced_notify(void)
{
	struct fix *f = fix_new(16, true);

	*dev_avail_event(&f->dev) = 100; /* the device claims it needs no news for a while */
	CHECK_EQ(add1(f, 1, 0, &cookies[0]), 0);
	virtq_kick(&f->q);
	CHECK_EQ(f->notifies, 0);
	virtq_notify(&f->q);
	CHECK_EQ(f->notifies, 1);
	CHECK(f->notified_q == &f->q);
	virtq_kick(&f->q); /* nothing new since the forced one */
	CHECK_EQ(f->notifies, 1);

	dev_use(&f->dev, 20, 0); /* an id that is no head: broken */
	void *cookie;
	uint32_t len;
	CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), -EIO);
	virtq_notify(&f->q);
	CHECK_EQ(f->notifies, 1);
	fix_free(f);
}

static void test_bad_id_out_of_range(void)
{
	struct seen s[2];
	uint8_t *snap;
	struct fix *f = bad_setup(8, 2, s, &snap);

	dev_use(&f->dev, 8, 0); /* ids go 0..7 */
	expect_broken(f, "out of range", snap);

	f = bad_setup(8, 2, s, &snap);
	dev_use(&f->dev, 0xffffffffu, 0);
	expect_broken(f, "out of range", snap);
}

static void test_bad_id_never_added(void)
{
	struct seen s[2];
	uint8_t *snap;
	struct fix *f = bad_setup(8, 2, s, &snap); /* descriptors 0..3 in use */

	dev_use(&f->dev, 6, 0); /* a free descriptor */
	expect_broken(f, "not the head", snap);

	/* The second descriptor of a chain is in use but is not a head. */
	f = bad_setup(8, 2, s, &snap);
	dev_use(&f->dev, s[0].idx[1], 0);
	expect_broken(f, "not the head", snap);
}

static void test_bad_double_completion(void)
{
	struct seen s[2];
	uint8_t *snap;
	struct fix *f = bad_setup(8, 2, s, &snap);
	void *cookie;
	uint32_t len;

	/* Two used entries for the first chain, none for the second: idx moves by 2 with 2 in
	 * flight, so only the id check can catch the second one. */
	dev_use(&f->dev, s[0].head, 1);
	dev_use(&f->dev, s[0].head, 1);
	CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), 1);
	CHECK(cookie == &cookies[0]);
	memcpy(snap, f->ring, f->driver_bytes); /* the good completion may move used_event */
	expect_broken(f, "not the head", snap);

	/* Completed again after it was taken back, with nothing else in flight: the idx check
	 * catches it first. */
	f = bad_setup(8, 1, s, &snap);
	dev_use(&f->dev, s[0].head, 1);
	CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), 1);
	memcpy(snap, f->ring, f->driver_bytes);
	dev_use(&f->dev, s[0].head, 1);
	expect_broken(f, "in flight", snap);
}

static void test_bad_len(void)
{
	struct seen s[2];
	uint8_t *snap;
	struct fix *f = bad_setup(8, 2, s, &snap);

	dev_use(&f->dev, s[1].head, s[1].writable + 1); /* one byte more than it could write */
	expect_broken(f, "len", snap);

	f = bad_setup(8, 1, s, &snap);
	dev_use(&f->dev, s[0].head, 0xffffffffu);
	expect_broken(f, "len", snap);

	/* A chain with nothing device-writable: any non-zero len is a lie. */
	f = fix_new(8, false);
	CHECK_EQ(add1(f, 2, 0, &cookies[0]), 0);
	CHECK_EQ(dev_pop(&f->dev, &s[0]), 1);
	snap = malloc(f->driver_bytes);
	memcpy(snap, f->ring, f->driver_bytes);
	dev_use(&f->dev, s[0].head, 1);
	expect_broken(f, "len", snap);
}

static void test_bad_idx_jump(void)
{
	struct seen s[3];
	uint8_t *snap;
	struct fix *f = bad_setup(8, 3, s, &snap);

	/* Three in flight, the device claims four (the fourth entry even looks valid). */
	for (unsigned i = 0; i < 3; i++)
		dev_use(&f->dev, s[i].head, 0);
	dev_use(&f->dev, s[0].head, 0);
	expect_broken(f, "in flight", snap);

	/* More than the queue size. */
	f = bad_setup(8, 3, s, &snap);
	f->dev.used->idx = 9;
	expect_broken(f, "queue size", snap);

	/* Backwards, which in 16 bits is a jump of 65535. */
	f = bad_setup(8, 3, s, &snap);
	f->dev.used->idx = 0xffff;
	expect_broken(f, "queue size", snap);

	/* Nothing in flight at all and the index moves. */
	f = fix_new(8, false);
	snap = malloc(f->driver_bytes);
	memcpy(snap, f->ring, f->driver_bytes);
	f->dev.used->idx = 1;
	expect_broken(f, "in flight", snap);
}

/*
 * "A device MUST NOT write to any descriptor table entry" (§2.7.5.1). One that does must not
 * steer our bookkeeping: the free list and the chains live in struct virtq, not in desc[].
 */
static void test_device_scribbles_descriptors(void)
{
	struct fix *f = fix_new(8, false);
	struct seen a, b;
	void *cookie;
	uint32_t len;

	for (unsigned round = 0; round < 64; round++) {
		unsigned na = 1 + round % 4, nb = 1 + (round / 4) % 4;

		CHECK_EQ(add1(f, na, 0, &cookies[round]), 0);
		CHECK_EQ(add1(f, 0, nb, &cookies[100 + round]), 0);
		CHECK_EQ(dev_pop(&f->dev, &a), 1);
		CHECK_EQ(dev_pop(&f->dev, &b), 1);
		CHECK_EQ(a.n, na);
		CHECK_EQ(b.n, nb);
		/* The two chains share no descriptor: the free list was whole. */
		for (unsigned i = 0; i < a.n; i++)
			for (unsigned j = 0; j < b.n; j++)
				CHECK(a.idx[i] != b.idx[j]);
		/* Now the device overwrites every descriptor with garbage links. */
		for (unsigned i = 0; i < 8; i++) {
			f->dev.desc[i].next = (uint16_t)((round * 3 + i * 5) % 8);
			f->dev.desc[i].flags = VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE;
			f->dev.desc[i].len = 0xffffffffu;
		}
		dev_use(&f->dev, b.head, b.writable);
		dev_use(&f->dev, a.head, 0);
		CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), 1);
		CHECK(cookie == &cookies[100 + round]);
		CHECK_EQ(len, b.writable);
		CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), 1);
		CHECK(cookie == &cookies[round]);
		CHECK_EQ(virtq_free_count(&f->q), 8);
	}
	/* Still whole: a chain of all eight descriptors, each once. */
	CHECK_EQ(add1(f, 4, 4, &cookies[0]), 0);
	CHECK_EQ(dev_pop(&f->dev, &a), 1);
	CHECK_EQ(a.n, 8);
	for (unsigned i = 0; i < a.n; i++)
		for (unsigned j = 0; j < i; j++)
			CHECK(a.idx[i] != a.idx[j]);
	CHECK(!virtq_broken(&f->q));
	fix_free(f);
}

/* ---- used buffer notifications (the wait loop's wake-up) -------------------------------- */

/* Would the device send a used buffer notification for moving used->idx from old to new?
 * §2.7.10 from the device's side: with EVENT_IDX, when it wrote the entry numbered used_event
 * (vring_need_event); without, when avail->flags is 0. */
static bool dev_would_notify(struct dev *dev, bool event_idx, uint16_t old, uint16_t new)
{
	if (event_idx)
		return (uint16_t)(new - dev_used_event(dev) - 1) < (uint16_t)(new - old);
	return (dev->avail->flags & VIRTQ_AVAIL_F_NO_INTERRUPT) == 0;
}

/* One request in, the device takes it, completes it; returns whether it would notify. */
static bool complete_one(struct fix *f, bool event_idx, void *cookie)
{
	struct seen s;
	CHECK_EQ(add1(f, 1, 1, cookie), 0);
	virtq_kick(&f->q);
	CHECK_EQ(dev_pop(&f->dev, &s), 1);
	uint16_t old = f->dev.used_idx;
	dev_use(&f->dev, s.head, 0);
	return dev_would_notify(&f->dev, event_idx, old, f->dev.used_idx);
}

static void run_notify(bool event_idx)
{
	struct fix *f = fix_new(8, event_idx);
	void *cookie;
	uint32_t len;

	/* Off from the start: completions do not notify. */
	CHECK_EQ(virtq_used_pending(&f->q), 0);
	CHECK(!complete_one(f, event_idx, &cookies[1]));
	CHECK_EQ(virtq_used_pending(&f->q), 1); /* used, not yet taken */
	CHECK_EQ(virtq_used_idx(&f->q), 1);
	CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), 1);
	CHECK_EQ(virtq_used_pending(&f->q), 0);

	/* On, with nothing pending: false, and the next completion notifies. */
	CHECK(!virtq_enable_notify(&f->q));
	CHECK(complete_one(f, event_idx, &cookies[2]));
	/* Now one is pending: enabling again says so (poll, do not halt). */
	CHECK(virtq_enable_notify(&f->q));
	CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), 1);
	CHECK(cookie == &cookies[2]);
	/* Consumed while on: it stays on for the next one. */
	CHECK(!virtq_enable_notify(&f->q));
	CHECK(complete_one(f, event_idx, &cookies[3]));
	CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), 1);

	/* Off again: nothing notifies, many times round the ring (wraps the indices too). */
	virtq_disable_notify(&f->q);
	for (unsigned i = 0; i < 40; i++) {
		CHECK(!complete_one(f, event_idx, &cookies[10 + i]));
		CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), 1);
	}
	/* ... and on again after the wrap. */
	CHECK(!virtq_enable_notify(&f->q));
	CHECK(complete_one(f, event_idx, &cookies[60]));
	CHECK(virtq_enable_notify(&f->q));
	if (event_idx)
		CHECK_EQ(f->dev.avail->flags, 0); /* MUST stay 0 with EVENT_IDX (§2.7.7.1) */
	virtq_disable_notify(&f->q);
	CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), 1);
	CHECK(!virtq_broken(&f->q));
	fix_free(f);
}

static void test_notify_flags(void) { run_notify(false); }
static void test_notify_event_idx(void) { run_notify(true); }

/* virtq_enable_notify_after(q, n): with EVENT_IDX only the n-th completion notifies; without,
 * every one does. True when n are pending already. Round the 16-bit indices too. */
static void run_notify_after(bool event_idx)
{
	struct fix *f = fix_new(8, event_idx);
	struct seen s;
	void *cookie;
	uint32_t len;
	for (unsigned round = 0; round < 20; round++) { /* 20 * 6 completions wrap the ring's indices */
		for (unsigned i = 0; i < 6; i++)        /* one descriptor each: six fit in eight */
			CHECK_EQ(add1(f, 1, 0, &cookies[i]), 0);
		virtq_kick(&f->q);
		CHECK(!virtq_enable_notify_after(&f->q, 4));
		for (unsigned i = 0; i < 6; i++) {
			CHECK_EQ(dev_pop(&f->dev, &s), 1);
			uint16_t old = f->dev.used_idx;
			dev_use(&f->dev, s.head, 0);
			bool would = dev_would_notify(&f->dev, event_idx, old, f->dev.used_idx);
			CHECK(would == (!event_idx || i == 3));
			CHECK(virtq_enable_notify_after(&f->q, 4) == (i >= 3)); /* 4 pending, not taken */
		}
		virtq_disable_notify(&f->q);
		for (unsigned i = 0; i < 6; i++)
			CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), 1);
	}
	CHECK(!virtq_enable_notify_after(&f->q, 0)); /* no such thing as the 0th */
	CHECK(!virtq_broken(&f->q));
	fix_free(f);
}

static void test_notify_after_flags(void) { run_notify_after(false); }
static void test_notify_after_event_idx(void) { run_notify_after(true); }

/* A broken queue will never complete anything: enabling says "nothing pending". */
static void test_notify_broken(void)
{
	struct fix *f = fix_new(8, true);
	void *cookie;
	uint32_t len;
	CHECK_EQ(add1(f, 1, 1, &cookies[1]), 0);
	dev_use(&f->dev, 7, 0);                 /* never offered */
	dev_use(&f->dev, 6, 0);                 /* and an idx that runs past the one chain in flight */
	CHECK_EQ(virtq_used_pending(&f->q), 1); /* clamped to what is in flight */
	CHECK_EQ(virtq_get_used(&f->q, &cookie, &len), -EIO);
	CHECK_EQ(virtq_used_pending(&f->q), 0);
	CHECK(!virtq_enable_notify(&f->q));
	fix_free(f);
}

/* The branch-free clamp on device-written indices: idx inside, 0 outside, at every edge. */
static void test_index_nospec(void)
{
	for (uint32_t size = 1; size <= 65536; size *= 2) {
		CHECK_EQ(virtq_index_nospec(0, size), 0);
		CHECK_EQ(virtq_index_nospec(size - 1, size), size - 1);
		CHECK_EQ(virtq_index_nospec(size, size), 0);
		CHECK_EQ(virtq_index_nospec(size + 1, size), 0);
		CHECK_EQ(virtq_index_nospec(0xffffffffu, size), 0);
		CHECK_EQ(virtq_index_nospec(0x80000000u + size - 1, size), 0);
	}
	CHECK_EQ(virtq_index_nospec(0, 0), 0);
	CHECK_EQ(virtq_index_nospec(5, 0), 0);
	CHECK_EQ(virtq_index_nospec(299, 300), 299);
	CHECK_EQ(virtq_index_nospec(0xfffffffeu, 0xffffffffu), 0xfffffffeu);
	CHECK_EQ(virtq_index_nospec(0xffffffffu, 0xffffffffu), 0);
}

int main(void)
{
	RUN_TEST(test_ring_layout);
	RUN_TEST(test_init_rejects_bad_args);
	RUN_TEST(test_init_state);
	RUN_TEST(test_single_request);
	RUN_TEST(test_out_of_order);
	RUN_TEST(test_chain_layout);
	RUN_TEST(test_add_errors);
	RUN_TEST(test_full_queue);
	RUN_TEST(test_wraparound);
	RUN_TEST(test_wraparound_event_idx);
	RUN_TEST(test_kick_no_notify_flag);
	RUN_TEST(test_kick_event_idx);
	RUN_TEST(test_forced_notify);
	RUN_TEST(test_notify_flags);
	RUN_TEST(test_notify_event_idx);
	RUN_TEST(test_notify_after_flags);
	RUN_TEST(test_notify_after_event_idx);
	RUN_TEST(test_notify_broken);
	RUN_TEST(test_watchdog);
	RUN_TEST(test_indirect);
	RUN_TEST(test_bad_id_out_of_range);
	RUN_TEST(test_bad_id_never_added);
	RUN_TEST(test_bad_double_completion);
	RUN_TEST(test_bad_len);
	RUN_TEST(test_bad_idx_jump);
	RUN_TEST(test_device_scribbles_descriptors);
	RUN_TEST(test_index_nospec);
	return check_report();
}
