/*
 * test_virtio_blk: the virtio-blk driver against a block device played by the test through a
 * fake transport (struct virtio_transport), so that the used length a device reports can be
 * chosen: exact, short (as real legacy devices report it), or larger than the buffers.
 * Implements: tests of Virtual I/O Device (VIRTIO) Version 1.2, §5.2.6 Device Operation and
 *             §2.7.8.2 (used len).
 * Try it:     make unit-test (build/tests/test_virtio_blk)
 *
 * §2.7.8.2 lets a device write more than it reports ("The device MAY write more than len
 * bytes to descriptor"), and legacy devices are known to report len wrongly (Linux reverted
 * its used-length validation for that: commit f124034faa91). So only a len above the
 * buffers is an error (the queue's); otherwise the request's own status byte decides.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blkdev.h"
#include "check.h"
#include "kstubs.h"
#include "virtio_blk.h"
#include "virtio_dev.h"

/* ---- the device -------------------------------------------------------------------------- */

#define QSIZE   8
#define SECTORS 64

static struct blkdev {
	uint8_t status_reg;
	struct virtq *q; /* what queue_enable programmed: the device finds the rings from it */
	uint16_t last_avail, used_idx;
	unsigned notifies;
	uint8_t disk[SECTORS * 512];
} D;

static uint8_t dev_get_status(struct virtio_dev *vd) { return (void)vd, D.status_reg; }
static void dev_set_status(struct virtio_dev *vd, uint8_t s) { (void)vd, D.status_reg = s; }
static uint64_t dev_get_features(struct virtio_dev *vd) { return (void)vd, 1ull << VIRTIO_F_VERSION_1; }
static void dev_set_features(struct virtio_dev *vd, uint64_t f) { (void)vd, (void)f; }
static uint16_t dev_queue_max(struct virtio_dev *vd, uint16_t index) { return (void)vd, index == 0 ? QSIZE : 0; }
static void dev_notify(struct virtq *q, void *ctx) { (void)q, (void)ctx, D.notifies++; }
static int dev_queue_notify(struct virtio_dev *vd, uint16_t index, void (**fn)(struct virtq *, void *), void **ctx)
{
	(void)vd, (void)index;
	*fn = dev_notify;
	*ctx = NULL;
	return 0;
}
static void dev_queue_enable(struct virtio_dev *vd, struct virtq *q) { (void)vd, D.q = q; }
static bool dev_config_copy(struct virtio_dev *vd, uint32_t off, uint8_t *out, uint32_t len)
{
	uint8_t cfg[64] = {0};
	uint64_t cap = SECTORS;
	(void)vd;
	memcpy(cfg, &cap, 8);
	if ((uint64_t)off + len > sizeof(cfg))
		return false;
	memcpy(out, cfg + off, len);
	return true;
}
static int dev_config_generation(struct virtio_dev *vd) { return (void)vd, 0; }

static const struct virtio_transport blk_transport = {
    .name = "fake",
    .modern = true,
    .get_status = dev_get_status,
    .set_status = dev_set_status,
    .get_features = dev_get_features,
    .set_features = dev_set_features,
    .queue_max = dev_queue_max,
    .queue_notify = dev_queue_notify,
    .queue_enable = dev_queue_enable,
    .config_copy = dev_config_copy,
    .config_generation = dev_config_generation,
};

struct hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

/*
 * Serves the next available request the way a device does: follows the descriptors from the
 * head, reads the header, moves the data, writes `status` into the last byte. The used len is
 * the bytes written (data of a read, the status byte) when `len` is negative, else `len`.
 */
static void dev_serve(int64_t len, uint8_t status)
{
	volatile struct virtq_desc *desc = (void *)(uintptr_t)virtq_desc_addr(D.q);
	volatile struct virtq_avail *avail = (void *)(uintptr_t)virtq_avail_addr(D.q);
	volatile struct virtq_used *used = (void *)(uintptr_t)virtq_used_addr(D.q);
	uint16_t head = avail->ring[D.last_avail++ % QSIZE], i = head;
	struct hdr h;
	uint32_t written = 0;
	uint64_t pos = 0;

	CHECK(!(desc[i].flags & VIRTQ_DESC_F_INDIRECT)); /* not offered */
	memcpy(&h, (void *)(uintptr_t)desc[i].addr, sizeof(h));
	while (desc[i].flags & VIRTQ_DESC_F_NEXT) {
		i = desc[i].next;
		uint8_t *p = (void *)(uintptr_t)desc[i].addr;
		uint32_t n = desc[i].len;
		if (!(desc[i].flags & VIRTQ_DESC_F_NEXT)) { /* the status byte */
			*p = status;
			written++;
			break;
		}
		if (h.type == 0) { /* VIRTIO_BLK_T_IN */
			memcpy(p, D.disk + h.sector * 512 + pos, n);
			written += n;
		} else if (h.type == 1) { /* VIRTIO_BLK_T_OUT */
			memcpy(D.disk + h.sector * 512 + pos, p, n);
		}
		pos += n;
	}
	used->ring[D.used_idx % QSIZE].id = head;
	used->ring[D.used_idx % QSIZE].len = len < 0 ? written : (uint32_t)len;
	D.used_idx++;
	used->idx = D.used_idx;
}

static struct virtio_blk *disk_new(void)
{
	struct virtio_dev found = {.t = &blk_transport, .modern = true, .type = VIRTIO_ID_BLOCK, .where = "fake"};
	char note[40];

	memset(&D, 0, sizeof(D));
	for (size_t i = 0; i < sizeof(D.disk); i++)
		D.disk[i] = (uint8_t)(i * 7 + 1);
	int n = kstub_nblk;
	CHECK_EQ(virtio_blk_probe(&found, note, sizeof(note)), 0);
	CHECK(D.q != NULL);
	return kstub_nblk == n + 1 ? kstub_blk_dev[n] : NULL;
}

/* Submits r, lets the device serve it with (len, status), and returns the request's status. */
static int one(struct virtio_blk *d, struct blk_request *r, int64_t len, uint8_t status)
{
	struct blk_request *done[4];

	r->status = 12345;
	CHECK_EQ(kstub_blk_ops->submit(d, r), 0);
	dev_serve(len, status);
	CHECK_EQ(kstub_blk_ops->poll(d, done, 4), 1);
	CHECK(done[0] == r);
	return r->status;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_read_exact_len(void)
{
	struct virtio_blk *d = disk_new();
	static uint8_t buf[1024];
	struct blk_request r = {.op = BLK_READ, .offset = 512, .buf = buf, .len = sizeof(buf)};

	CHECK_EQ(one(d, &r, -1, 0), 0);
	CHECK(memcmp(buf, D.disk + 512, sizeof(buf)) == 0);
}

/* A used len below the buffers with status OK: accepted (real legacy devices report it
 * loosely); the data the device wrote is there. */
static void test_read_short_len_ok(void)
{
	struct virtio_blk *d = disk_new();
	static uint8_t buf[1024];
	struct blk_request r = {.op = BLK_READ, .offset = 1024, .buf = buf, .len = sizeof(buf)};

	CHECK_EQ(one(d, &r, 1, 0), 0);
	CHECK(memcmp(buf, D.disk + 1024, sizeof(buf)) == 0);
	CHECK_EQ(one(d, &r, 0, 0), 0);
	CHECK_EQ(one(d, &r, sizeof(buf), 0), 0); /* the data but not the status byte counted */
}

/* The status byte still decides: an error is an error whatever the length. */
static void test_status_decides(void)
{
	struct virtio_blk *d = disk_new();
	static uint8_t buf[512];
	struct blk_request r = {.op = BLK_READ, .offset = 0, .buf = buf, .len = sizeof(buf)};

	CHECK_EQ(one(d, &r, -1, 1), -EIO);        /* VIRTIO_BLK_S_IOERR, full length */
	CHECK_EQ(one(d, &r, -1, 2), -EOPNOTSUPP); /* VIRTIO_BLK_S_UNSUPP */
	CHECK_EQ(one(d, &r, 1, 0x7f), -EIO);      /* not a status the spec has */
}

/* Writes and flushes: any length up to the status byte. */
static void test_write_loose_len(void)
{
	struct virtio_blk *d = disk_new();
	static uint8_t buf[512];
	struct blk_request r = {.op = BLK_WRITE, .offset = 2048, .buf = buf, .len = sizeof(buf)};
	struct blk_request f = {.op = BLK_FLUSH};

	memset(buf, 0x3c, sizeof(buf));
	CHECK_EQ(one(d, &r, 0, 0), 0);
	CHECK_EQ(D.disk[2048], 0x3c);
	CHECK_EQ(D.disk[2048 + 511], 0x3c);
	CHECK_EQ(one(d, &r, 1, 0), 0);
	CHECK_EQ(one(d, &f, 0, 0), 0);
}

/* A used len above the buffers is still a broken device: the queue refuses it, the disk is
 * given up and the request fails. */
static void test_len_above_buffers_refused(void)
{
	struct virtio_blk *d = disk_new();
	static uint8_t buf[512];
	struct blk_request r = {.op = BLK_READ, .offset = 0, .buf = buf, .len = sizeof(buf)};

	CHECK_EQ(one(d, &r, sizeof(buf) + 2, 0), -EIO);
	CHECK(strstr(kstub_log, "used len larger") != NULL);
	CHECK_EQ(kstub_blk_ops->submit(d, &r), -EIO);
	kstub_log[0] = '\0';
}

/* "The transport can fail": a queue whose doorbell the transport refuses gives the device up
 * at probe, with FAILED status and a log line, before DRIVER_OK. */
static int refuse_queue_notify(struct virtio_dev *vd, uint16_t index, void (**fn)(struct virtq *, void *), void **ctx)
{
	(void)vd, (void)index, (void)fn, (void)ctx;
	return -EIO;
}

static void test_queue_refused_by_transport(void)
{
	struct virtio_transport t = blk_transport;
	t.queue_notify = refuse_queue_notify;
	struct virtio_dev found = {.t = &t, .modern = true, .type = VIRTIO_ID_BLOCK, .where = "fake"};
	char note[40] = "";
	int n = kstub_nblk;

	memset(&D, 0, sizeof(D));
	kstub_log[0] = '\0';
	CHECK_EQ(virtio_blk_probe(&found, note, sizeof(note)), -EIO);
	CHECK_EQ(kstub_nblk, n);
	CHECK(D.status_reg & VIRTIO_STATUS_FAILED);
	CHECK(!(D.status_reg & VIRTIO_STATUS_DRIVER_OK));
	CHECK(D.q == NULL); /* never enabled */
	CHECK(strstr(kstub_log, "cannot set up its request queue") != NULL);
	kstub_log[0] = '\0';
}

int main(void)
{
	RUN_TEST(test_read_exact_len);
	RUN_TEST(test_read_short_len_ok);
	RUN_TEST(test_status_decides);
	RUN_TEST(test_write_loose_len);
	RUN_TEST(test_len_above_buffers_refused);
	RUN_TEST(test_queue_refused_by_transport);
	return check_report();
}
