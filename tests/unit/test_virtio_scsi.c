/*
 * test_virtio_scsi: drivers/virtio_scsi.c against a virtio-scsi device played by the test,
 * honest and hostile.
 * Implements: tests of Virtual I/O Device (VIRTIO) Version 1.2, §5.6 SCSI Host Device.
 * Try it:     make unit-test
 *
 * The kernel and transport functions the driver calls are stubs here (memory from the host's
 * heap, a clock that moves a microsecond a call, a configuration space in an array); the
 * virtqueue is the real drivers/virtio/virtq.c. The "device" reads the request queue's
 * available ring and indirect tables the way QEMU does, answers the SCSI commands of a 1 MiB
 * disk, and writes used entries: right ones, sense data of every kind, and responses that
 * break the rules (a sense length past the buffer, a residual past the data, a used length
 * past the chain, a used id that is not in flight, no response at all). The driver must turn
 * each into the right errno, retry what is worth retrying, and stop the controller for a
 * rule breaker without touching memory it does not own (AddressSanitizer watches).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkdev.h"
#include "check.h"
#include "kernel.h"
#include "klog_stub.h"
#include "virtio_dev.h"
#include "virtio_scsi.h"
#include "wait.h"

#define QSIZE     32
#define BLOCKS    2048 /* 1 MiB of 512-byte blocks */
#define RESP_SIZE 108  /* virtio_scsi_resp_cmd with 96 sense bytes */
#define SENSE_OFF 12
#define CMD_CDB   19 /* offset of the CDB in virtio_scsi_req_cmd */

/* ---- stubs of the kernel and the transport ------------------------------------------------ */

static uint64_t now_ns;
static unsigned resets;

void *page_alloc(size_t npages)
{
	void *p = aligned_alloc(PAGE_SIZE, npages * PAGE_SIZE);
	if (p)
		memset(p, 0, npages * PAGE_SIZE);
	return p;
}

void page_free(void *p, size_t npages)
{
	(void)npages;
	free(p);
}

static void dev_step(void);
static bool auto_device; /* the device answers whenever the driver looks at the clock */

uint64_t time_ns(void)
{
	now_ns += 1000;
	if (auto_device)
		dev_step();
	return now_ns;
}

static const struct blk_dev_ops *reg_ops;
static void *reg_dev[16];
static int nreg;

int blk_register(const struct blk_dev_ops *ops, void *dev)
{
	reg_ops = ops;
	reg_dev[nreg++] = dev;
	return 0;
}

static uint8_t cfg[64];

int virtio_start(struct virtio_dev *vd, uint64_t wanted, uint64_t required)
{
	uint64_t offered = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_INDIRECT_DESC | 1ull << VIRTIO_F_EVENT_IDX |
	                   1ull << 1 /* VIRTIO_SCSI_F_HOTPLUG */;
	(void)required;
	vd->features = offered & (wanted | 1ull << VIRTIO_F_VERSION_1);
	return 0;
}

void virtio_config_read(struct virtio_dev *vd, uint32_t off, void *buf, uint32_t len)
{
	(void)vd;
	memcpy(buf, cfg + off, len);
}

void virtio_config_write32(struct virtio_dev *vd, uint32_t off, uint32_t v)
{
	(void)vd;
	memcpy(cfg + off, &v, 4);
}

void virtio_fail(struct virtio_dev *vd, const char *why)
{
	(void)vd;
	klog("virtio_fail: %s", why);
}

void virtio_ready(struct virtio_dev *vd) { (void)vd; }

/* ---- the simulated device ------------------------------------------------------------------ */

enum evil {
	HONEST,
	SENSE_LEN_PAST_BUFFER, /* sense_len 200 of 96 */
	RESID_PAST_DATA,       /* resid larger than the data buffer */
	LEN_PAST_CHAIN,        /* used len beyond every buffer of the chain */
	ID_NOT_IN_FLIGHT,      /* a used id that no chain starts at */
	NO_RESPONSE,           /* a used entry with len 0: the response was never written */
	CHECK_FIXED,           /* CHECK CONDITION, fixed-format sense (key/asc/ascq below) */
	CHECK_DESCRIPTOR,      /* the same, descriptor format */
	UNIT_ATTENTION_ONCE,   /* a unit attention, then the right answer */
	BAD_TARGET,            /* the LUN is gone (hot-unplug) */
};

static struct sim {
	struct virtq *q[3];
	uint16_t last_avail, used_idx;
	bool reset;
	enum evil evil;
	uint8_t key, asc, ascq;
	unsigned commands; /* request-queue chains seen */
	unsigned writes;   /* WRITE commands done */
} sim;

/* The device is stepped by the test, not kicked. */
static void notify(struct virtq *q, void *ctx)
{
	(void)q;
	(void)ctx;
}

int virtio_queue_init(struct virtio_dev *vd, struct virtq *q, uint16_t index, uint16_t max_size)
{
	uint16_t size = index == 2 ? QSIZE : 8;
	(void)vd;
	if (size > max_size)
		size = max_size;
	void *ring = page_alloc((virtq_ring_bytes(size) + PAGE_SIZE - 1) / PAGE_SIZE);
	int err = virtq_init(q, index, size, ring, true, notify, NULL);
	if (err)
		return err;
	if (index < 3)
		sim.q[index] = q;
	return 0;
}

bool virtio_reset(struct virtio_dev *vd)
{
	(void)vd;
	resets++;
	sim.reset = true; /* a reset device touches no memory any more */
	return true;
}

/* No interrupt: the wait loop's timer wakes it (the loop is not linked). */
void virtio_irq_setup(struct virtio_dev *vd, uint16_t nqueues)
{
	(void)nqueues;
	vd->irq_vector = 0;
	snprintf(vd->wake, sizeof(vd->wake), "timer only");
}

uint64_t virtio_irq_count(const struct virtio_dev *vd)
{
	(void)vd;
	return 0;
}

static struct wait_source *sources[8];
static int nsources;

void wait_add_source(struct wait_source *s)
{
	if (nsources < 8)
		sources[nsources++] = s;
}

static void *dma(uint64_t a) { return (void *)(uintptr_t)a; }

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void sense(uint8_t *resp, bool descriptor, uint8_t key, uint8_t asc, uint8_t ascq)
{
	uint8_t *s = resp + SENSE_OFF;
	uint32_t len = descriptor ? 8 : 18;
	memset(s, 0, len);
	if (descriptor) {
		s[0] = 0x72;
		s[1] = key;
		s[2] = asc;
		s[3] = ascq;
	} else {
		s[0] = 0x70;
		s[2] = key;
		s[7] = 10;
		s[12] = asc;
		s[13] = ascq;
	}
	memcpy(resp, &len, 4); /* sense_len */
	resp[10] = 0x02;       /* status: CHECK CONDITION */
}

/* Answers one command of an honest 1 MiB disk; returns the data-in bytes delivered. */
static uint32_t answer(const uint8_t *cmd, uint8_t *resp, uint8_t *in, uint32_t in_len)
{
	const uint8_t *cdb = cmd + CMD_CDB;
	uint8_t buf[512];
	uint32_t n = 0;
	memset(buf, 0, sizeof(buf));
	switch (cdb[0]) {
	case 0xa0: /* REPORT LUNS: LUN 0 of target 0 */
		put_be32(buf, 8);
		n = 16;
		break;
	case 0x12: /* INQUIRY */
		if (cdb[1] & 1) {
			sense(resp, false, 0x5, 0x24, 0); /* no VPD pages */
			return 0;
		}
		buf[0] = 0; /* a disk */
		buf[4] = 91;
		memcpy(buf + 8, "TESTVENDHOSTILE DEVICE  ", 24);
		n = 96;
		break;
	case 0x9e: /* READ CAPACITY(16) */
		buf[7] = (BLOCKS - 1) & 0xff;
		buf[6] = (BLOCKS - 1) >> 8;
		put_be32(buf + 8, 512);
		n = 32;
		break;
	case 0x1a: /* MODE SENSE(6): no WP */
		buf[0] = 3;
		n = 4;
		break;
	case 0x28: { /* READ(10): byte i of block b is (b + i) & 0xff */
		uint32_t lba = (uint32_t)cdb[2] << 24 | cdb[3] << 16 | cdb[4] << 8 | cdb[5];
		for (uint32_t i = 0; i < in_len; i++)
			in[i] = (uint8_t)(lba + i / 512 + i % 512);
		return in_len;
	}
	case 0x2a: /* WRITE(10) */
		sim.writes++;
		return 0;
	default: /* TEST UNIT READY, SYNCHRONIZE CACHE, ... */
		return 0;
	}
	if (n > in_len)
		n = in_len;
	memcpy(in, buf, n);
	return n;
}

/* Takes every available chain of the request queue and answers it. */
static void dev_step(void)
{
	struct virtq *q = sim.q[2];
	if (!q || sim.reset)
		return;
	while ((uint16_t)(q->avail->idx - sim.last_avail) != 0) {
		uint16_t head = q->avail->ring[sim.last_avail % q->size];
		sim.last_avail++;
		/* The driver offers indirect tables: one descriptor, then the table. */
		volatile struct virtq_desc *d = &q->desc[head];
		CHECK(d->flags & VIRTQ_DESC_F_INDIRECT);
		const struct virtq_desc *t = dma(d->addr);
		unsigned n = d->len / sizeof(*t);
		uint8_t *out[2] = {0}, *in[2] = {0};
		uint32_t out_len[2] = {0}, in_len[2] = {0};
		unsigned no = 0, ni = 0;
		for (unsigned i = 0; i < n && i < 4; i++) {
			if (t[i].flags & VIRTQ_DESC_F_WRITE) {
				in[ni] = dma(t[i].addr);
				in_len[ni++] = t[i].len;
			} else {
				CHECK(ni == 0); /* readable before writable */
				out[no] = dma(t[i].addr);
				out_len[no++] = t[i].len;
			}
			if (!(t[i].flags & VIRTQ_DESC_F_NEXT))
				break;
		}
		CHECK(out_len[0] == CMD_CDB + 32 && in_len[0] == RESP_SIZE);
		uint8_t *resp = in[0];
		sim.commands++;
		memset(resp, 0, 12);
		uint32_t got = answer(out[0], resp, in[1], in_len[1]);
		uint32_t resid = in_len[1] - got;
		memcpy(resp + 4, &resid, 4);
		uint32_t len = RESP_SIZE + in_len[1];
		uint32_t id = head;
		const uint8_t *cdb = out[0] + CMD_CDB;
		bool data_cmd = cdb[0] == 0x28 || cdb[0] == 0x2a; /* the evil is kept for I/O */
		if (data_cmd) {
			switch (sim.evil) {
			case SENSE_LEN_PAST_BUFFER:
				sense(resp, false, 0x3, 0x11, 0);
				resp[0] = 200;
				break;
			case RESID_PAST_DATA:
				resid = in_len[1] + 512;
				memcpy(resp + 4, &resid, 4);
				break;
			case LEN_PAST_CHAIN:
				len = RESP_SIZE + in_len[1] + out_len[0] + out_len[1] + 4096;
				break;
			case ID_NOT_IN_FLIGHT:
				id = (head + 1) % q->size;
				break;
			case NO_RESPONSE:
				len = 0;
				memset(resp, 0xee, RESP_SIZE); /* never written: what the driver left */
				resp[11] = 0xff;
				break;
			case CHECK_FIXED:
			case CHECK_DESCRIPTOR:
				sense(resp, sim.evil == CHECK_DESCRIPTOR, sim.key, sim.asc, sim.ascq);
				break;
			case UNIT_ATTENTION_ONCE:
				sense(resp, false, 0x6, 0x29, 0x00); /* power on or reset occurred */
				sim.evil = HONEST;
				break;
			case BAD_TARGET:
				resp[11] = 3; /* VIRTIO_SCSI_S_BAD_TARGET */
				break;
			case HONEST:
				break;
			}
		}
		q->used->ring[sim.used_idx % q->size].id = id;
		q->used->ring[sim.used_idx % q->size].len = len;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		q->used->idx = ++sim.used_idx;
	}
}

/* ---- the tests ----------------------------------------------------------------------------- */

/* A fresh controller with one 1 MiB LUN; returns the LUN's block-layer context. */
static void *probe(void)
{
	char note[40];
	memset(&sim, 0, sizeof(sim));
	memset(cfg, 0, sizeof(cfg));
	uint32_t max_sectors = 0xffff, seg_max = 126;
	memcpy(cfg + 8, &max_sectors, 4);
	memcpy(cfg + 4, &seg_max, 4);
	struct virtio_dev vd = {.name = "virtio-scsi", .where = "test", .modern = true};
	int before = nreg;
	auto_device = true;
	CHECK_EQ(virtio_scsi_probe(&vd, note, sizeof(note)), 0);
	auto_device = false;
	CHECK_EQ(nreg, before + 1);
	if (nreg != before + 1)
		return NULL;
	struct blk_info info;
	reg_ops->info(reg_dev[before], &info);
	CHECK_EQ(info.size, BLOCKS * 512);
	CHECK_EQ(info.block_size, 512);
	CHECK(!info.read_only);
	return reg_dev[before];
}

/* Submits one request, lets the device answer, and polls it back; returns its status. */
static int one(void *lun, enum blk_op op, uint64_t off, void *buf, uint32_t len)
{
	struct blk_request r = {.op = op, .offset = off, .buf = buf, .len = len, .status = -EINPROGRESS};
	struct blk_request *done[4];
	int err = reg_ops->submit(lun, &r);
	if (err)
		return err;
	for (int tries = 0; tries < 10; tries++) {
		dev_step();
		int n = reg_ops->poll(lun, done, 4);
		if (n) {
			CHECK_EQ(n, 1);
			CHECK(done[0] == &r);
			CHECK_EQ(reg_ops->inflight(lun), 0);
			return r.status;
		}
	}
	CHECK(!"the request never came back");
	return 1;
}

static uint8_t block[4096];

static void test_honest_read_and_write(void)
{
	void *lun = probe();
	if (!lun)
		return;
	CHECK_EQ(one(lun, BLK_READ, 8 * 512, block, 4096), 0);
	bool right = true;
	for (uint32_t i = 0; i < 4096; i++)
		right &= block[i] == (uint8_t)(8 + i / 512 + i % 512);
	CHECK(right);
	CHECK_EQ(one(lun, BLK_WRITE, 0, block, 512), 0);
	CHECK_EQ(sim.writes, 1);
	CHECK_EQ(one(lun, BLK_FLUSH, 0, NULL, 0), 0);
	CHECK_EQ(resets, 0);
}

/* Sense data of both formats becomes the errno SPC-4's keys call for, with a log line. */
static void test_sense_decoded(void)
{
	static const struct {
		enum evil evil;
		uint8_t key, asc, ascq;
		int want;
		const char *log;
	} cases[] = {
	    {CHECK_FIXED, 0x3, 0x11, 0x00, -EIO, "MEDIUM ERROR, asc 0x11 ascq 0x00"},
	    {CHECK_DESCRIPTOR, 0x3, 0x11, 0x00, -EIO, "MEDIUM ERROR, asc 0x11 ascq 0x00"},
	    {CHECK_FIXED, 0x7, 0x27, 0x00, -EROFS, "DATA PROTECT"},
	    {CHECK_DESCRIPTOR, 0x5, 0x21, 0x00, -EINVAL, "ILLEGAL REQUEST, asc 0x21"},
	    {CHECK_FIXED, 0x5, 0x20, 0x00, -EOPNOTSUPP, "ILLEGAL REQUEST, asc 0x20"},
	    {CHECK_FIXED, 0x4, 0x44, 0x00, -EIO, "HARDWARE ERROR"},
	    {CHECK_FIXED, 0x2, 0x3a, 0x00, -EIO, "NOT READY, asc 0x3a"}, /* medium not present */
	    {CHECK_FIXED, 0x2, 0x04, 0x01, -EIO, "NOT READY, asc 0x04 ascq 0x01 (retries exhausted)"},
	    {CHECK_FIXED, 0x1, 0x17, 0x00, 0, NULL}, /* recovered: success */
	};
	void *lun = probe();
	if (!lun)
		return;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sim.evil = cases[i].evil;
		sim.key = cases[i].key;
		sim.asc = cases[i].asc;
		sim.ascq = cases[i].ascq;
		last_log[0] = 0;
		CHECK_EQ(one(lun, BLK_READ, 0, block, 512), cases[i].want);
		if (cases[i].log)
			CHECK(strstr(last_log, cases[i].log) != NULL);
	}
	/* A unit attention is retried: the device sees the command twice, the caller
	 * gets the data. */
	sim.evil = UNIT_ATTENTION_ONCE;
	unsigned before = sim.commands;
	CHECK_EQ(one(lun, BLK_READ, 0, block, 512), 0);
	CHECK_EQ(sim.commands - before, 2);
	/* A unit attention that never ends is given up on. */
	sim.evil = CHECK_FIXED;
	sim.key = 0x6;
	sim.asc = 0x29;
	CHECK_EQ(one(lun, BLK_READ, 0, block, 512), -EIO);
	CHECK(strstr(last_log, "retries exhausted") != NULL);
	CHECK_EQ(resets, 0); /* none of this is the device's fault */
}

/* The LUN is gone: its requests fail with EIO, now and later, and the controller lives on. */
static void test_lun_gone(void)
{
	void *lun = probe();
	if (!lun)
		return;
	sim.evil = BAD_TARGET;
	CHECK_EQ(one(lun, BLK_READ, 0, block, 512), -EIO);
	unsigned before = sim.commands;
	CHECK_EQ(one(lun, BLK_READ, 0, block, 512), -EIO);
	CHECK_EQ(sim.commands, before); /* refused without asking the device */
	CHECK_EQ(resets, 0);
}

/* Each rule breaker stops the controller (a reset), fails the request, and every later
 * request fails at once. */
static void test_rule_breakers_stop_the_controller(void)
{
	static const enum evil evils[] = {SENSE_LEN_PAST_BUFFER, RESID_PAST_DATA, LEN_PAST_CHAIN, ID_NOT_IN_FLIGHT,
	                                  NO_RESPONSE};
	for (size_t i = 0; i < sizeof(evils) / sizeof(evils[0]); i++) {
		void *lun = probe();
		if (!lun)
			return;
		unsigned before = resets;
		sim.evil = evils[i];
		memset(block, 0x5a, sizeof(block));
		struct blk_request r = {.op = BLK_READ, .buf = block, .len = 4096, .status = -EINPROGRESS};
		struct blk_request *done[4];
		CHECK_EQ(reg_ops->submit(lun, &r), 0);
		dev_step();
		int n = reg_ops->poll(lun, done, 4);
		CHECK_EQ(n, 1);
		CHECK(n == 1 && done[0] == &r && r.status == -EIO);
		CHECK_EQ(resets, before + 1);
		CHECK(strstr(last_log, "controller is stopped") != NULL);
		struct blk_request r2 = {.op = BLK_READ, .buf = block, .len = 512};
		CHECK_EQ(reg_ops->submit(lun, &r2), -EIO);
		CHECK_EQ(reg_ops->inflight(lun), 0);
	}
}

int main(void)
{
	RUN_TEST(test_honest_read_and_write);
	RUN_TEST(test_sense_decoded);
	RUN_TEST(test_lun_gone);
	RUN_TEST(test_rule_breakers_stop_the_controller);
	return check_report();
}
