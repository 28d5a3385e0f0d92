/*
 * test_virtio_balloon: drivers/virtio_balloon.c against a device played by
 * the test, honest and hostile. The kernel services it calls (the
 * transport's steps, config reads and writes, the page allocator, the
 * clock, the log) are stand-ins here; the virtqueue is the real
 * drivers/virtio/virtq.c.
 *
 * The page allocator is a table of FAKE_PAGES page frame numbers that are
 * never backed by memory: a driver that touched a ballooned page would
 * crash under ASan. The device reads the PFNs each request carries, as
 * QEMU's does, and checks them: every inflated page must be free to take
 * and must not be in the balloon already, every deflated one must be in it.
 * Its misbehaviours: asking for more pages than exist, holding deflate
 * requests (MUST_TELL_HOST: the pages must not come back before it
 * answers), and completing a request it was never given.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../drivers/virtio_balloon.c"
#include "check.h"
#include "klog_stub.h"

/* ---- stand-ins for the kernel -------------------------------------------- */

static uint64_t fake_ns;

uint64_t time_ns(void) { return fake_ns += 1000; }

/* ---- the page allocator: PFNs only ---------------------------------------- */

#define FAKE_PAGES 8192 /* 32 MiB */
#define FIRST_PFN  0x100
static bool taken[FAKE_PAGES]; /* by the allocator's other users or the balloon */
static size_t nfree;
static size_t (*oom_hook)(size_t), (*heap_hook)(size_t);

size_t pmem_total_pages(void) { return FAKE_PAGES; }
size_t pmem_free_pages(void) { return nfree; }

size_t pmem_take(uint32_t *pfns, size_t n)
{
	size_t got = 0;
	for (size_t i = FAKE_PAGES; i-- > 0 && got < n;)
		if (!taken[i]) {
			taken[i] = true;
			pfns[got++] = (uint32_t)(FIRST_PFN + i);
		}
	nfree -= got;
	return got;
}

void pmem_give(const uint32_t *pfns, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t k = pfns[i] - FIRST_PFN;
		CHECK(k < FAKE_PAGES && taken[k]);
		taken[k] = false;
	}
	nfree += n;
}

/* The driver's own memory (its PFN list, request slots) is real. */
void *page_alloc(size_t n) { return calloc(n, PAGE_SIZE); }
/* Free page reporting: `report_free` free 2 MiB blocks at made-up
 * addresses; a block is out of use from take to done. */
static unsigned report_free, report_out, report_done;
uintptr_t pmem_report_take(void)
{
	if (!report_free)
		return 0;
	report_free--;
	report_out++;
	return (uintptr_t)(0x40000000u + report_out * PMEM_REPORT_PAGES * PAGE_SIZE);
}
void pmem_report_done(uintptr_t addr)
{
	CHECK(addr % (PMEM_REPORT_PAGES * PAGE_SIZE) == 0);
	CHECK(report_out > 0);
	report_out--;
	report_done++;
}
void pmem_set_oom_hook(size_t (*hook)(size_t)) { oom_hook = hook; }
void heap_set_oom_hook(size_t (*hook)(size_t)) { heap_hook = hook; }
size_t heap_claimed_bytes(void) { return 0; }
static void (*tick)(void);
void time_tick_set(void (*fn)(void), uint64_t period_ns)
{
	(void)period_ns;
	tick = fn;
}

/* ---- the device ------------------------------------------------------------ */

static struct {
	uint64_t offered;
	uint32_t num_pages, actual;
	struct virtq *q[4];
	void *ring_mem[4];
	uint16_t last_avail[4], used_idx[4];
	bool in_balloon[FAKE_PAGES];
	uint32_t pages; /* in the balloon, as the device counts */
	bool hold_deflates, hold_reports;
	int stats_q, report_q; /* their indices, or -1 */
	unsigned reports_seen;
	bool bad_pfn; /* a request named a page it should not have */
	unsigned stats_seen;
	bool reset;
} dev;

static void dev_use(int qi, uint16_t head, uint32_t len)
{
	struct virtq *q = dev.q[qi];
	q->used->ring[dev.used_idx[qi] % q->size].id = head;
	q->used->ring[dev.used_idx[qi] % q->size].len = len;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	q->used->idx = ++dev.used_idx[qi];
}

/* Takes what is available on queue qi, as QEMU's handlers do. */
static void dev_step(int qi)
{
	struct virtq *q = dev.q[qi];
	if (!q || dev.reset)
		return;
	while (dev.last_avail[qi] != q->avail->idx) {
		if ((qi == 1 && dev.hold_deflates) || (qi == dev.report_q && dev.hold_reports))
			return;
		uint16_t head = q->avail->ring[dev.last_avail[qi] % q->size];
		dev.last_avail[qi]++;
		volatile struct virtq_desc *d = &q->desc[head];
		if (qi <= 1) {
			CHECK(d->flags == 0 && d->len % 4 == 0 && d->len <= BATCH * 4);
			const uint32_t *pfn = (const uint32_t *)(uintptr_t)d->addr;
			for (uint32_t i = 0; i < d->len / 4; i++) {
				uint32_t k = pfn[i] - FIRST_PFN;
				if (k >= FAKE_PAGES || dev.in_balloon[k] == (qi == 0) || !taken[k]) {
					dev.bad_pfn = true;
					continue;
				}
				dev.in_balloon[k] = qi == 0;
				dev.pages += qi == 0 ? 1 : -1;
			}
		} else if (qi == dev.stats_q) {
			dev.stats_seen++;
			continue; /* held until the host wants figures */
		} else if (qi == dev.report_q) {
			/* One free block, device-writable (§5.5.6.6). */
			CHECK(d->flags == VIRTQ_DESC_F_WRITE && d->len == PMEM_REPORT_PAGES * PAGE_SIZE);
			dev.reports_seen++;
		}
		dev_use(qi, head, 0);
	}
}

static void dev_notify(struct virtq *q, void *ctx)
{
	(void)ctx;
	dev_step(q->index);
}

/* ---- stand-ins for the transport ------------------------------------------- */

int virtio_start(struct virtio_dev *vd, uint64_t wanted, uint64_t required)
{
	(void)required;
	vd->features = wanted & dev.offered;
	return 0;
}

int virtio_queue_init(struct virtio_dev *vd, struct virtq *q, uint16_t index, uint16_t max_size)
{
	(void)vd;
	uint16_t size = max_size < 128 ? max_size : 128;
	dev.ring_mem[index] = aligned_alloc(VIRTQ_RING_ALIGN, ALIGN_UP(virtq_ring_bytes(size), VIRTQ_RING_ALIGN));
	memset(dev.ring_mem[index], 0, virtq_ring_bytes(size));
	dev.q[index] = q;
	return virtq_init(q, index, size, dev.ring_mem[index], false, dev_notify, NULL);
}

void virtio_config_read(struct virtio_dev *vd, uint32_t off, void *buf, uint32_t len)
{
	(void)vd;
	CHECK(off == CFG_NUM_PAGES && len == 4);
	memcpy(buf, &dev.num_pages, 4);
}

void virtio_config_write32(struct virtio_dev *vd, uint32_t off, uint32_t v)
{
	(void)vd;
	CHECK_EQ(off, CFG_ACTUAL);
	dev.actual = v;
}

void virtio_ready(struct virtio_dev *vd) { (void)vd; }
void virtio_fail(struct virtio_dev *vd, const char *why) { (void)vd, (void)why; }
void virtio_irq_setup(struct virtio_dev *vd, uint16_t nqueues) { (void)vd, (void)nqueues; }
bool virtio_reset(struct virtio_dev *vd)
{
	(void)vd;
	dev.reset = true;
	return true;
}

static struct wait_source *source;
void wait_add_source(struct wait_source *s) { source = s; }

/* The loop, a while: fake time passes LOOK_NS per pass. */
static void run(unsigned passes)
{
	for (unsigned i = 0; i < passes; i++) {
		fake_ns += LOOK_NS;
		source->poll(source->ctx);
	}
}

/* ---- the tests ------------------------------------------------------------- */

static void fresh(uint64_t offered, size_t other_users)
{
	for (int i = 0; i < 4; i++)
		free(dev.ring_mem[i]);
	if (the) {
		free(the->held);
		free(the->reqs);
	}
	memset(&dev, 0, sizeof(dev));
	memset(taken, 0, sizeof(taken));
	the = NULL;
	oom_hook = heap_hook = NULL;
	report_free = report_out = report_done = 0;
	/* The kernel and the app hold the lowest pages. */
	for (size_t i = 0; i < other_users; i++)
		taken[i] = true;
	nfree = FAKE_PAGES - other_users;
	dev.offered = offered;
	/* Queues that do not exist take no index. */
	int next = 2;
	dev.stats_q = offered >> VIRTIO_BALLOON_F_STATS_VQ & 1 ? next++ : -1;
	dev.report_q = offered >> VIRTIO_BALLOON_F_REPORTING & 1 ? next++ : -1;
	struct virtio_dev vd = {.modern = true};
	char note[40];
	CHECK_EQ(virtio_balloon_probe(&vd, note, sizeof(note)), 0);
	CHECK(source != NULL);
}

static void test_follows_target(void)
{
	fresh(1ull << VIRTIO_BALLOON_F_STATS_VQ, 100);
	CHECK_EQ(dev.stats_seen, 1); /* the initial stats buffer */
	dev.num_pages = 3000;
	run(10);
	CHECK_EQ(dev.pages, 3000);
	CHECK_EQ(dev.actual, 3000);
	CHECK_EQ(nfree, FAKE_PAGES - 100 - 3000);
	dev.num_pages = 1000;
	run(10);
	CHECK_EQ(dev.pages, 1000);
	CHECK_EQ(dev.actual, 1000);
	CHECK_EQ(nfree, FAKE_PAGES - 100 - 1000);
	dev.num_pages = 0;
	run(10);
	CHECK_EQ(dev.actual, 0);
	CHECK_EQ(nfree, FAKE_PAGES - 100);
	CHECK(!dev.bad_pfn);
	CHECK(!the->broken);
}

/* A balloon asking for more pages than exist: it gets what can be spared,
 * the floor stays free, and actual says what the balloon holds. */
static void test_more_than_exist(void)
{
	fresh(0, 100);
	dev.num_pages = 0xffffffffu;
	run(200);
	CHECK_EQ(nfree, KEEP_FREE_PAGES);
	CHECK_EQ(dev.pages, FAKE_PAGES - 100 - KEEP_FREE_PAGES);
	CHECK_EQ(dev.actual, dev.pages);
	CHECK(!dev.bad_pfn);
	CHECK(!the->broken);
	/* Asking for less again gives it all back. */
	dev.num_pages = 0;
	run(200);
	CHECK_EQ(dev.actual, 0);
	CHECK_EQ(nfree, FAKE_PAGES - 100);
}

/* MUST_TELL_HOST: deflated pages come back only once the device has used
 * the request; until then actual still counts them. */
static void test_tell_host_first(void)
{
	fresh(1ull << VIRTIO_BALLOON_F_MUST_TELL_HOST, 0);
	dev.num_pages = 600;
	run(10);
	CHECK_EQ(dev.actual, 600);
	dev.hold_deflates = true;
	dev.num_pages = 0;
	run(10);
	CHECK_EQ(nfree, FAKE_PAGES - 600); /* not one page back yet */
	CHECK_EQ(dev.actual, 600);
	dev.hold_deflates = false;
	dev_step(1);
	run(10);
	CHECK_EQ(nfree, FAKE_PAGES);
	CHECK_EQ(dev.actual, 0);
	CHECK(!dev.bad_pfn);
}

/* Deflate on OOM: an allocation that finds nothing gets pages back, and the
 * balloon does not take them again until the host sets another target. */
static void test_deflate_on_oom(void)
{
	fresh(1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM, 0);
	CHECK(oom_hook != NULL);
	dev.num_pages = 2000;
	run(10);
	CHECK_EQ(dev.actual, 2000);
	CHECK(oom_hook(300) >= 300);
	CHECK_EQ(dev.actual, dev.pages);
	CHECK(dev.actual <= 1700);
	uint32_t after = dev.actual;
	run(20);
	CHECK_EQ(dev.actual, after); /* held back at the same target */
	CHECK_EQ(the->info.oom_events, 1);
	CHECK(strstr(last_log, "deflate on OOM") != NULL);
	dev.num_pages = 2001;
	run(10);
	CHECK_EQ(dev.actual, 2001);
	CHECK(!dev.bad_pfn);
}

/* Without the feature the balloon keeps its pages (§5.5.6.1: the driver
 * MUST NOT use them). */
static void test_no_oom_without_feature(void)
{
	fresh(0, 0);
	dev.num_pages = 2000;
	run(10);
	CHECK(oom_hook == NULL);
	CHECK_EQ(balloon_oom(300), 0);
	CHECK_EQ(dev.actual, 2000);
}

/* A device that completes a request it was never given: the queue is
 * broken, the device reset and left alone; nothing crashes, and the pages
 * stay out of use (the device may still own them). */
static void test_bogus_completion(void)
{
	fresh(0, 0);
	dev.num_pages = 500;
	run(10);
	CHECK_EQ(dev.actual, 500);
	dev_use(0, 77, 0); /* never offered */
	run(3);
	CHECK(the->broken);
	CHECK(dev.reset);
	CHECK(strstr(last_log, "inflate queue") != NULL);
	dev.num_pages = 0;
	run(10);
	CHECK_EQ(nfree, FAKE_PAGES - 500);
	struct ringlet_balloon_info info;
	CHECK_EQ(ringlet_balloon_info(&info), -ENODEV);
}

/* Statistics: every buffer the device uses comes back with fresh figures. */
static void test_stats_refilled(void)
{
	fresh(1ull << VIRTIO_BALLOON_F_STATS_VQ, 0);
	CHECK_EQ(dev.stats_seen, 1);
	struct virtq *q = dev.q[dev.stats_q];
	uint16_t head = q->avail->ring[(uint16_t)(dev.last_avail[dev.stats_q] - 1) % q->size];
	dev.num_pages = 1024;
	run(5);
	dev_use(dev.stats_q, head, 0); /* the host wants figures */
	run(1);
	CHECK_EQ(dev.stats_seen, 2);
	CHECK_EQ(the->info.stats_sent, 1);
	const struct balloon_stat *s = the->stats;
	bool saw_free = false;
	for (int i = 0; i < NSTATS; i++) {
		if (s[i].tag == VIRTIO_BALLOON_S_MEMFREE) {
			CHECK_EQ(s[i].val, (uint64_t)(FAKE_PAGES - 1024) * PAGE_SIZE);
			saw_free = true;
		}
		if (s[i].tag == VIRTIO_BALLOON_S_MAJFLT || s[i].tag == VIRTIO_BALLOON_S_MINFLT)
			CHECK_EQ(s[i].val, 0);
	}
	CHECK(saw_free);
}

/* The application tick runs the driver's step, except when it interrupted
 * the driver itself (busy): then it leaves everything as it was. */
static void test_tick(void)
{
	fresh(0, 0);
	CHECK(tick != NULL);
	dev.num_pages = 700;
	fake_ns += LOOK_NS;
	the->busy = true; /* as if the tick came inside balloon_poll() */
	tick();
	CHECK_EQ(dev.pages, 0);
	CHECK_EQ(nfree, FAKE_PAGES);
	the->busy = false;
	for (int i = 0; i < 10; i++) {
		fake_ns += LOOK_NS;
		tick();
	}
	CHECK_EQ(dev.pages, 700);
	CHECK_EQ(dev.actual, 700);
}

/* Free page reporting: free blocks go to the device, and come back when it
 * is done; an allocation that fails meanwhile gets them back first. */
static void test_reporting(void)
{
	fresh(1ull << VIRTIO_BALLOON_F_STATS_VQ | 1ull << VIRTIO_BALLOON_F_REPORTING, 0);
	CHECK_EQ(dev.report_q, 3); /* after statsq, with no free_page_vq */
	CHECK(heap_hook != NULL);
	report_free = 5;
	fake_ns += REPORT_NS; /* the probe looked once already */
	run(3);
	CHECK_EQ(dev.reports_seen, 5);
	CHECK_EQ(report_done, 5);
	CHECK_EQ(report_out, 0);
	CHECK_EQ(the->info.reported_blocks, 5);
	/* The device keeps two: out of use until it answers. */
	dev.hold_reports = true;
	report_free = 2;
	fake_ns += REPORT_NS;
	run(1);
	CHECK_EQ(report_out, 2);
	CHECK_EQ(heap_hook(10), 0); /* nothing to give yet */
	dev.hold_reports = false;
	dev_step(dev.report_q);
	CHECK_EQ(heap_hook(10), 2 * PMEM_REPORT_PAGES);
	CHECK_EQ(report_out, 0);
	/* No reporting while the balloon still wants pages. */
	dev.num_pages = 100000;
	report_free = 3;
	fake_ns += REPORT_NS;
	the->next_report = 0;
	source->poll(source->ctx);
	CHECK_EQ(report_free, 3);
}

int main(void)
{
	RUN_TEST(test_follows_target);
	RUN_TEST(test_more_than_exist);
	RUN_TEST(test_tell_host_first);
	RUN_TEST(test_deflate_on_oom);
	RUN_TEST(test_no_oom_without_feature);
	RUN_TEST(test_bogus_completion);
	RUN_TEST(test_stats_refilled);
	RUN_TEST(test_tick);
	RUN_TEST(test_reporting);
	return check_report();
}
