/*
 * virtio-balloon: gives memory back to the host when it asks, takes it back
 * when it allows.
 * Implements: Virtual I/O Device (VIRTIO) Version 1.2, §5.5 Traditional
 *             Memory Balloon Device (inflate/deflate, statistics, deflate
 *             on OOM, free page reporting).
 * Try it:     scripts/run --balloon --qmp /tmp/q.sock memhog
 *             then scripts/qmp /tmp/q.sock balloon 64M (docs/balloon.md)
 *
 * The host sets a target, num_pages (config offset 0): how many 4 KiB pages
 * it wants in the balloon. The driver compares it with what it holds and
 * inflates (takes free pages from the page allocator and sends their page
 * frame numbers, up to BATCH per request, on the inflate queue) or deflates
 * (sends PFNs on the deflate queue and, once the device has used the
 * request, returns the pages to the allocator). After each completion it
 * writes `actual` (config offset 4). Pages in the balloon are marked in use
 * in the page allocator and nothing in the guest touches them.
 *
 * The driver is polled from the wait loop, and from the application tick
 * (kernel/time.c, every TICK_NS) while the application computes: the config
 * is read at most every LOOK_NS (config-change interrupts are not used), so
 * it follows the host whether the application waits or not. The two never
 * meet half-way: the loop runs with interrupts off, and `busy` fences the
 * driver's own entry points (poll, deflate on OOM, ringlet_balloon_info())
 * against a tick that arrives inside them; the page allocator runs with
 * interrupts off. Deflate on OOM runs from inside an allocation
 * (kernel/heap.c, pmem.c).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "../kernel/io.h"
#include "../kernel/kernel.h"
#include "../kernel/wait.h"
#include "virtio/virtio_dev.h"
#include "virtio_balloon.h"

/* §5.5.3 Feature bits. */
#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define VIRTIO_BALLOON_F_STATS_VQ       1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_FREE_PAGE_HINT 3
#define VIRTIO_BALLOON_F_PAGE_POISON    4
#define VIRTIO_BALLOON_F_REPORTING      5

/* §5.5.4 Device configuration layout (little-endian even for legacy). */
#define CFG_NUM_PAGES 0
#define CFG_ACTUAL    4

/* §5.5.6.3 Memory Statistics Tags. */
#define VIRTIO_BALLOON_S_SWAP_IN  0
#define VIRTIO_BALLOON_S_SWAP_OUT 1
#define VIRTIO_BALLOON_S_MAJFLT   2
#define VIRTIO_BALLOON_S_MINFLT   3
#define VIRTIO_BALLOON_S_MEMFREE  4
#define VIRTIO_BALLOON_S_MEMTOT   5
#define VIRTIO_BALLOON_S_AVAIL    6
#define VIRTIO_BALLOON_S_CACHES   7
#define NSTATS                    8

struct balloon_stat {
	uint16_t tag;
	uint64_t val;
} __attribute__((packed));

/* PFNs per request: what Linux sends too (VIRTIO_BALLOON_ARRAY_PFNS_MAX), and
 * 1 KiB, so requests stay small for the device to read. */
#define BATCH 256
/* Requests in flight per direction: QEMU's queues have 128 descriptors. */
#define SLOTS 16
/* Free pages the balloon never takes (4 MiB): page tables, DMA buffers and
 * a little heap must stay possible even at an absurd target. */
#define KEEP_FREE_PAGES 1024
/* How often num_pages is read while the guest waits. */
#define LOOK_NS (2 * 1000000ull)
/* The application tick (kernel/time.c): the balloon's step while the
 * application computes and nothing waits in the loop. */
#define TICK_NS (10 * 1000000ull)
/* How often free memory is looked over for blocks to report. */
#define REPORT_NS    (500 * 1000000ull)
#define REPORT_SLOTS 16
/* How long an allocation waits for the host to acknowledge a deflate. */
#define OOM_TELL_NS (1000 * 1000000ull)

struct req {
	uint32_t pfns[BATCH];
	uint32_t n;
	bool busy;
	bool inflate;
};

struct report {
	uintptr_t addr;
	bool busy;
};

struct balloon {
	struct virtio_dev vd;
	struct virtq inflateq, deflateq, statsq, reportq;
	bool has_stats, has_report, oom_ok;
	bool broken;
	bool busy; /* in poll or in the OOM hook: neither runs inside the other */
	struct req *reqs;
	unsigned inflating, deflating; /* requests in flight */
	uint32_t in_pages, out_pages;  /* pages in those requests */
	/* Pages in the balloon that the device has acknowledged: a stack, so a
	 * deflate returns the last taken, the lowest (pmem_take() goes down). */
	uint32_t *held;
	size_t nheld, cap;
	uint32_t target;
	uint32_t actual_written;
	/* After deflate on OOM: the target then. No inflating back until the
	 * host sets another (or the memory would be taken again at once). */
	bool oom_hold;
	uint32_t oom_target;
	uint64_t next_look, next_report;
	struct balloon_stat *stats;
	bool stats_busy;
	struct report reports[REPORT_SLOTS];
	unsigned reporting;
	struct ringlet_balloon_info info;
	struct wait_source ws;
};

static struct balloon *the;

static bool has(const struct balloon *b, unsigned bit) { return b->vd.features >> bit & 1; }

static void give_up(struct balloon *b, const char *why)
{
	if (b->broken)
		return;
	b->broken = true;
	klog("balloon: %s; the device is reset and not used again (%zu pages stay out of use)", why,
	     b->nheld + b->in_pages + b->out_pages);
	if (!virtio_reset(&b->vd))
		klog("balloon: the device did not reset");
}

static void queue_broke(struct balloon *b, struct virtq *q, const char *name)
{
	char why[96];
	ksnprintf(why, sizeof(why), "device broke the %s queue's rules (%s)", name, virtq_broken_reason(q));
	give_up(b, why);
}

/* What `actual` must say: acknowledged pages, plus deflates not yet
 * acknowledged (§5.5.6.1: the driver updates actual after the device has
 * used a request). */
static uint32_t actual_now(const struct balloon *b) { return (uint32_t)(b->nheld + b->out_pages); }

static void write_actual(struct balloon *b)
{
	uint32_t a = actual_now(b);
	if (a == b->actual_written)
		return;
	/* §5.5.6.1: "The driver SHOULD update the actual field ... to
	 * reflect the new number of pages in the balloon" (the legacy
	 * interface is little-endian too, §5.5.4.1, as is x86). */
	virtio_config_write32(&b->vd, CFG_ACTUAL, a);
	b->actual_written = a;
	b->info.actual_pages = a;
}

static void fill_stats(struct balloon *b)
{
	uint64_t free = (uint64_t)pmem_free_pages() * PAGE_SIZE;
	/* No swap and no demand paging: nothing is ever paged in or faulted
	 * in, so the fault and swap counters are truly zero. */
	static const uint16_t tags[NSTATS] = {
	    VIRTIO_BALLOON_S_SWAP_IN, VIRTIO_BALLOON_S_SWAP_OUT, VIRTIO_BALLOON_S_MAJFLT, VIRTIO_BALLOON_S_MINFLT,
	    VIRTIO_BALLOON_S_MEMFREE, VIRTIO_BALLOON_S_MEMTOT,   VIRTIO_BALLOON_S_AVAIL,  VIRTIO_BALLOON_S_CACHES};
	uint64_t vals[NSTATS] = {0, 0, 0, 0, free, (uint64_t)pmem_total_pages() * PAGE_SIZE, free, 0};
	for (int i = 0; i < NSTATS; i++) {
		b->stats[i].tag = tags[i];
		b->stats[i].val = vals[i];
	}
}

/* §5.5.6.3: the driver offers a buffer of statistics; the device uses it
 * when it wants fresh figures, and the driver offers it again, refilled. */
static void offer_stats(struct balloon *b)
{
	fill_stats(b);
	struct virtq_buf buf = {b->stats, NSTATS * sizeof(struct balloon_stat)};
	if (virtq_add(&b->statsq, &buf, 1, 0, b->stats) == 0) {
		b->stats_busy = true;
		virtq_kick(&b->statsq);
	}
}

static void complete(struct balloon *b, struct req *r)
{
	if (r->inflate) {
		kassert(b->nheld + r->n <= b->cap); /* cap covers every page of RAM */
		memcpy(&b->held[b->nheld], r->pfns, r->n * sizeof(uint32_t));
		b->nheld += r->n;
		b->in_pages -= r->n;
		b->inflating--;
		b->info.inflated_pages += r->n;
	} else {
		/* §5.5.6.1: with MUST_TELL_HOST "the driver MUST NOT use pages
		 * from the balloon until the device has acknowledged the deflate
		 * request": we never do, whether negotiated or not. */
		pmem_give(r->pfns, r->n);
		b->out_pages -= r->n;
		b->deflating--;
		b->info.deflated_pages += r->n;
	}
	r->busy = false;
}

/* Takes what the device used on every queue. Returns true if anything. */
static bool reap(struct balloon *b)
{
	bool any = false;
	void *cookie;
	uint32_t len;
	int got;
	struct virtq *qs[2] = {&b->inflateq, &b->deflateq};
	for (int i = 0; i < 2 && !b->broken; i++) {
		while ((got = virtq_get_used(qs[i], &cookie, &len)) == 1) {
			complete(b, cookie);
			any = true;
		}
		if (got < 0)
			queue_broke(b, qs[i], i ? "deflate" : "inflate");
	}
	if (!b->broken && b->has_stats) {
		while ((got = virtq_get_used(&b->statsq, &cookie, &len)) == 1) {
			b->stats_busy = false;
			b->info.stats_sent++;
			offer_stats(b);
			any = true;
		}
		if (got < 0)
			queue_broke(b, &b->statsq, "statistics");
	}
	if (!b->broken && b->has_report) {
		while ((got = virtq_get_used(&b->reportq, &cookie, &len)) == 1) {
			struct report *r = cookie;
			pmem_report_done(r->addr);
			r->busy = false;
			b->reporting--;
			b->info.reported_blocks++;
			any = true;
		}
		if (got < 0)
			queue_broke(b, &b->reportq, "reporting");
	}
	return any;
}

static struct req *free_req(struct balloon *b)
{
	for (unsigned i = 0; i < SLOTS; i++)
		if (!b->reqs[i].busy)
			return &b->reqs[i];
	return NULL;
}

static int send(struct balloon *b, struct req *r)
{
	struct virtq_buf buf = {r->pfns, r->n * (uint32_t)sizeof(uint32_t)};
	int err = virtq_add(r->inflate ? &b->inflateq : &b->deflateq, &buf, 1, 0, r);
	if (err)
		return err;
	r->busy = true;
	if (r->inflate) {
		b->inflating++;
		b->in_pages += r->n;
	} else {
		b->deflating++;
		b->out_pages += r->n;
	}
	return 0;
}

/* Sends a deflate request for the last n pages held; they stay held if it cannot be sent. */
static int send_deflate(struct balloon *b, struct req *r, size_t n)
{
	r->inflate = false;
	r->n = (uint32_t)n;
	b->nheld -= n;
	memcpy(r->pfns, &b->held[b->nheld], n * sizeof(uint32_t));
	int err = send(b, r);
	if (err)
		b->nheld += n;
	return err;
}

/* More requests towards the target, as far as slots go. One direction at
 * a time: the other's requests finish first. */
static bool move(struct balloon *b)
{
	bool sent = false;
	uint64_t going_in = b->nheld + b->in_pages;
	if (b->target > going_in && !b->deflating && !(b->oom_hold && b->target == b->oom_target)) {
		struct req *r;
		while (going_in < b->target && (r = free_req(b)) != NULL) {
			size_t free = pmem_free_pages();
			if (free <= KEEP_FREE_PAGES)
				break; /* a target beyond what the guest can give: actual says what it gave */
			size_t n = b->target - going_in;
			if (n > BATCH)
				n = BATCH;
			if (n > free - KEEP_FREE_PAGES)
				n = free - KEEP_FREE_PAGES;
			r->inflate = true;
			r->n = (uint32_t)pmem_take(r->pfns, n);
			if (r->n == 0)
				break;
			if (send(b, r) != 0) {
				pmem_give(r->pfns, r->n);
				break;
			}
			going_in += r->n;
			sent = true;
		}
		if (sent)
			virtq_kick(&b->inflateq);
	} else if (b->target < b->nheld && !b->inflating) {
		struct req *r;
		while (b->target < b->nheld && (r = free_req(b)) != NULL) {
			size_t n = b->nheld - b->target;
			if (n > BATCH)
				n = BATCH;
			if (send_deflate(b, r, n) != 0)
				break;
			sent = true;
		}
		if (sent)
			virtq_kick(&b->deflateq);
	}
	return sent;
}

/* Free page reporting (§5.5.6.6): free 2 MiB blocks, each taken from the
 * allocator while the device discards its backing, then freed again. */
static bool report(struct balloon *b, uint64_t now)
{
	if (!b->has_report || b->reporting || now < b->next_report)
		return false;
	b->next_report = now + REPORT_NS;
	bool sent = false;
	for (unsigned i = 0; i < REPORT_SLOTS; i++) {
		/* Not while the balloon wants pages: it takes them first. */
		if (b->target > b->nheld + b->in_pages)
			break;
		uintptr_t addr = pmem_report_take();
		if (!addr)
			break;
		struct report *r = &b->reports[i];
		/* §5.5.6.6: the driver supplies the free pages as device-writable
		 * buffers on the reporting queue. */
		struct virtq_buf buf = {(void *)addr, PMEM_REPORT_PAGES * PAGE_SIZE};
		if (virtq_add(&b->reportq, &buf, 0, 1, r) != 0) {
			pmem_report_done(addr);
			break;
		}
		r->addr = addr;
		r->busy = true;
		b->reporting++;
		sent = true;
	}
	if (sent) {
		virtq_kick(&b->reportq);
		b->next_report = now; /* more may be waiting: look again soon */
	}
	return sent;
}

static uint32_t read_target(struct balloon *b)
{
	uint32_t v;
	virtio_config_read(&b->vd, CFG_NUM_PAGES, &v, sizeof(v));
	/* The host may ask for more pages than there are (a hostile or
	 * confused device): held to what the balloon could ever hold, and
	 * move() stops anyway at KEEP_FREE_PAGES. */
	if ((uint64_t)v > b->cap)
		v = (uint32_t)b->cap;
	return v;
}

static bool balloon_poll(void *ctx)
{
	struct balloon *b = ctx;
	if (b->broken || b->busy)
		return false;
	b->busy = true;
	bool any = reap(b);
	uint64_t now = time_ns();
	if (!b->broken && (now >= b->next_look || b->inflating || b->deflating)) {
		b->next_look = now + LOOK_NS;
		uint32_t t = read_target(b);
		if (t != b->target) {
			b->target = t;
			b->info.target_pages = t;
			b->oom_hold = false;
		}
	}
	if (!b->broken) {
		any |= move(b);
		/* Reported blocks are out of use until the device is done:
		 * take them back now if it already is (QEMU answers at once). */
		if (report(b, now))
			any |= reap(b);
		write_actual(b);
		if (b->inflating || b->deflating) {
			virtq_watchdog(&b->inflateq, now);
			virtq_watchdog(&b->deflateq, now);
		}
	}
	b->busy = false;
	return any;
}

static void balloon_tick(void)
{
	if (the)
		balloon_poll(the); /* returns at once when busy: the tick interrupted the driver */
}

static uint64_t balloon_deadline(void *ctx)
{
	struct balloon *b = ctx;
	/* Requests in flight: look again soon. Otherwise the loop's own 10 ms
	 * halt bound (no wake-up interrupt here) is the cadence. */
	if (b->broken || !(b->inflating || b->deflating || b->reporting))
		return WAIT_FOREVER;
	return b->next_look;
}

/* From inside an allocation that found no room: first the reported blocks
 * the device is done with go back; then, with DEFLATE_ON_OOM, the balloon
 * gives back `want` pages (the lowest held), telling the host first and
 * waiting for it. Returns the pages given back. */
static size_t balloon_oom(size_t want)
{
	struct balloon *b = the;
	if (!b || b->broken || b->busy)
		return 0;
	b->busy = true;
	size_t reported = b->reporting;
	reap(b);
	size_t freed = (reported - b->reporting) * PMEM_REPORT_PAGES;
	if (!b->oom_ok || b->nheld == 0 || freed >= want) {
		b->busy = false;
		return freed;
	}
	size_t given = 0;
	uint64_t deadline = time_ns() + OOM_TELL_NS;
	while (given < want && b->nheld && !b->broken) {
		struct req *r = free_req(b);
		if (!r) {
			/* Every slot in flight: take completions until one is free. */
			if (!reap(b) && time_ns() > deadline)
				break;
			continue;
		}
		size_t n = want - given;
		if (n > BATCH)
			n = BATCH;
		if (n > b->nheld)
			n = b->nheld;
		if (send_deflate(b, r, n) != 0)
			break;
		virtq_kick(&b->deflateq);
		/* The allocation cannot wait in the loop (it may be the loop's
		 * caller): spin on this queue, bounded. */
		while (r->busy && !b->broken) {
			reap(b);
			if (r->busy && time_ns() > deadline) {
				give_up(b, "the host did not acknowledge a deflate on OOM");
				break;
			}
		}
		if (!r->busy)
			given += n;
	}
	if (given) {
		b->oom_hold = true;
		b->oom_target = b->target;
		b->info.oom_pages += given;
		b->info.oom_events++;
		write_actual(b);
		/* Every time would flood the log when an application fills
		 * memory a megabyte at a time: the 1st, 2nd, 4th, 8th... */
		if ((b->info.oom_events & (b->info.oom_events - 1)) == 0)
			klog(
			    "balloon: deflate on OOM (%lu so far): %zu pages (%zu KiB) back for an allocation, %lu KiB "
			    "in all; %zu still in the balloon",
			    (unsigned long)b->info.oom_events, given, given * 4, (unsigned long)(b->info.oom_pages * 4),
			    b->nheld);
	}
	b->busy = false;
	return freed + given;
}

int virtio_balloon_probe(const struct virtio_dev *found, char *note, size_t note_len)
{
	static struct balloon balloon;
	struct balloon *b = &balloon;
	int err;
	if (the)
		return -EBUSY;
	memset(b, 0, sizeof(*b));
	b->vd = *found;
	b->vd.name = "virtio-balloon";

	/* Free page hinting (for migration) and page poisoning are not
	 * offered to: neither is needed for the balloon to work. */
	uint64_t wanted = 1ull << VIRTIO_BALLOON_F_MUST_TELL_HOST | 1ull << VIRTIO_BALLOON_F_STATS_VQ |
	                  1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM | 1ull << VIRTIO_BALLOON_F_REPORTING;
	if ((err = virtio_start(&b->vd, wanted, 0)) != 0)
		return err;
	b->has_stats = has(b, VIRTIO_BALLOON_F_STATS_VQ);
	b->has_report = has(b, VIRTIO_BALLOON_F_REPORTING);
	b->oom_ok = has(b, VIRTIO_BALLOON_F_DEFLATE_ON_OOM);

	/* §5.5.2: 0 inflateq, 1 deflateq, 2 statsq, 3 free_page_vq, 4
	 * reporting_vq, each of the last three only with its feature. Queues
	 * that do not exist take no index (as Linux and QEMU count them): the
	 * reporting queue is 3 without free page hinting. */
	uint16_t nq = 2;
	if ((err = virtio_queue_init(&b->vd, &b->inflateq, 0, 128)) != 0 ||
	    (err = virtio_queue_init(&b->vd, &b->deflateq, 1, 128)) != 0 ||
	    (b->has_stats && (err = virtio_queue_init(&b->vd, &b->statsq, nq++, 8)) != 0) ||
	    (b->has_report && (err = virtio_queue_init(&b->vd, &b->reportq, nq++, 32)) != 0)) {
		virtio_fail(&b->vd, "cannot set up its queues");
		return err;
	}

	/* The stack of held PFNs, big enough for every page of RAM (4 bytes a
	 * page: 0.1% of memory), the request slots and the stats buffer. */
	b->cap = pmem_total_pages();
	size_t held_pages = ALIGN_UP(b->cap * sizeof(uint32_t), PAGE_SIZE) / PAGE_SIZE;
	size_t req_pages =
	    ALIGN_UP(SLOTS * sizeof(struct req) + NSTATS * sizeof(struct balloon_stat), PAGE_SIZE) / PAGE_SIZE;
	b->held = page_alloc(held_pages);
	b->reqs = page_alloc(req_pages);
	if (!b->held || !b->reqs) {
		virtio_fail(&b->vd, "no memory for its page list");
		return -ENOMEM;
	}
	b->stats = (struct balloon_stat *)&b->reqs[SLOTS];

	virtio_irq_setup(&b->vd, nq);
	virtio_ready(&b->vd);
	/* §5.5.6.3: "the driver MUST make an initial buffer available" on the
	 * stats queue: the device uses it when it wants figures. */
	if (b->has_stats)
		offer_stats(b);

	b->info.present = true;
	b->info.features = b->vd.features;
	b->ws = (struct wait_source){.name = "balloon", .poll = balloon_poll, .deadline = balloon_deadline, .ctx = b};
	wait_add_source(&b->ws);
	time_tick_set(balloon_tick, TICK_NS);
	the = b;
	if (b->oom_ok || b->has_report) {
		heap_set_oom_hook(balloon_oom);
		pmem_set_oom_hook(balloon_oom);
	}
	ksnprintf(note, note_len, "balloon%s%s%s%s%s", b->has_stats ? " stats" : "", b->oom_ok ? " oom" : "",
	          b->has_report ? " report" : "", has(b, VIRTIO_BALLOON_F_MUST_TELL_HOST) ? " tell" : "",
	          b->vd.modern ? "" : " (legacy)");
	/* Follow a target the host set before we came. */
	balloon_poll(b);
	return 0;
}

int ringlet_balloon_info(struct ringlet_balloon_info *info)
{
	if (!the) {
		memset(info, 0, sizeof(*info));
		return -ENODEV;
	}
	/* Bring it up to date first: an application that asks is waiting. */
	balloon_poll(the);
	uint64_t flags = irq_save(); /* a tick must not change it half-copied */
	*info = the->info;
	info->present = !the->broken;
	irq_restore(flags);
	return info->present ? 0 : -ENODEV;
}

void ringlet_mem_info(struct ringlet_mem_info *info)
{
	info->total_bytes = (uint64_t)pmem_total_pages() * PAGE_SIZE;
	info->free_bytes = (uint64_t)pmem_free_pages() * PAGE_SIZE;
	info->heap_bytes = heap_claimed_bytes();
}
