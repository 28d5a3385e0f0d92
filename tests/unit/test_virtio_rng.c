/*
 * test_virtio_rng: drivers/virtio_rng.c against a device played by the test,
 * honest and hostile: the kernel services it calls (the transport's start-up
 * steps, the wait loop, the clock, the log) are small stand-ins here, the
 * virtqueue is the real drivers/virtio/virtq.c.
 *
 * The device takes requests from the available ring through the addresses
 * the queue was given and writes bytes of a counting stream into them, as
 * QEMU's would; its misbehaviours: answering short, answering with nothing,
 * claiming more bytes than the buffer holds, and never answering. The
 * driver must fill every byte from the stream in order, ask again for what a
 * short answer left, and stop a hostile device for good with an error.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../drivers/virtio_rng.c"
#include "check.h"
#include "klog_stub.h"

/* ---- stand-ins for the kernel -------------------------------------------- */

static uint64_t fake_ns;
static int resets;

uint64_t time_ns(void) { return fake_ns += 1000; }

/* ---- the device ------------------------------------------------------------ */

enum behaviour { HONEST, SHORT, EMPTY, LIAR, SILENT };

static struct {
	struct virtq *q;
	enum behaviour how;
	uint16_t last_avail, used_idx;
	uint8_t next_byte; /* the counting stream */
	unsigned answered;
	bool reset;
	void *ring_mem;
} dev;

static void dev_notify(struct virtq *q, void *ctx) { (void)q, (void)ctx; }

/* Answers every request that is available, as the behaviour says. */
static void dev_step(void)
{
	struct virtq *q = dev.q;
	if (!q || dev.reset || dev.how == SILENT)
		return;
	while (dev.last_avail != q->avail->idx) {
		uint16_t head = q->avail->ring[dev.last_avail % q->size];
		dev.last_avail++;
		volatile struct virtq_desc *d = &q->desc[head];
		/* The driver's requests are one device-writable buffer. */
		CHECK(d->flags == VIRTQ_DESC_F_WRITE);
		uint8_t *p = (uint8_t *)(uintptr_t)d->addr;
		uint32_t len = d->len, wrote = len;
		if (dev.how == SHORT)
			wrote = len > 3 ? len / 3 : len; /* a third, at least the last byte or two */
		if (dev.how == EMPTY)
			wrote = 0;
		for (uint32_t i = 0; i < wrote; i++)
			p[i] = dev.next_byte++;
		uint32_t claimed = dev.how == LIAR ? len + 16 : wrote;
		q->used->ring[dev.used_idx % q->size].id = head;
		q->used->ring[dev.used_idx % q->size].len = claimed;
		__atomic_thread_fence(__ATOMIC_RELEASE);
		q->used->idx = ++dev.used_idx;
		dev.answered++;
	}
}

/* ---- stand-ins for the transport and the wait loop ------------------------ */

static struct wait_source *source;

int virtio_start(struct virtio_dev *vd, uint64_t wanted, uint64_t required)
{
	(void)vd, (void)wanted, (void)required;
	return 0;
}

int virtio_queue_init(struct virtio_dev *vd, struct virtq *q, uint16_t index, uint16_t max_size)
{
	(void)vd;
	uint16_t size = max_size < 8 ? max_size : 8; /* QEMU's virtio-rng queue */
	dev.ring_mem = aligned_alloc(VIRTQ_RING_ALIGN, ALIGN_UP(virtq_ring_bytes(size), VIRTQ_RING_ALIGN));
	memset(dev.ring_mem, 0, virtq_ring_bytes(size));
	dev.q = q;
	return virtq_init(q, index, size, dev.ring_mem, false, dev_notify, NULL);
}

void virtio_ready(struct virtio_dev *vd) { (void)vd; }
void virtio_irq_setup(struct virtio_dev *vd, uint16_t nqueues)
{
	(void)nqueues;
	vd->irq_vector = 0; /* no interrupt: the test polls */
	snprintf(vd->wake, sizeof(vd->wake), "timer only");
}
void virtio_fail(struct virtio_dev *vd, const char *why) { (void)vd, (void)why; }
bool virtio_reset(struct virtio_dev *vd)
{
	(void)vd;
	dev.reset = true;
	resets++;
	return true;
}

void wait_add_source(struct wait_source *s) { source = s; }

/* The loop: the device answers, the source polls, time passes. */
int wait_until(bool (*cond)(void *arg), void *arg, uint64_t deadline_ns)
{
	for (;;) {
		if (cond && cond(arg))
			return 0;
		if (time_ns() >= deadline_ns)
			return -ETIMEDOUT;
		dev_step();
		source->poll(source->ctx);
	}
}

/* ---- the tests ------------------------------------------------------------- */

static void fresh(enum behaviour how)
{
	free(dev.ring_mem);
	memset(&dev, 0, sizeof(dev));
	memset(rngs, 0, sizeof(rngs));
	nrngs = 0;
	resets = 0;
	last_log[0] = 0;
	dev.how = how;
	struct virtio_dev vd = {.modern = true};
	char note[40];
	CHECK_EQ(virtio_rng_probe(&vd, note, sizeof(note)), 0);
	CHECK(strcmp(note, "rng0 queue 8, timer only") == 0);
	CHECK(virtio_rng_available());
}

/* buf holds the stream from `first` on, n bytes. */
static bool stream_ok(const uint8_t *buf, size_t n, uint8_t first)
{
	for (size_t i = 0; i < n; i++)
		if (buf[i] != (uint8_t)(first + i))
			return false;
	return true;
}

static void test_honest_any_size(void)
{
	static const size_t sizes[] = {1, 32, 4096, CHUNK - 1, CHUNK, CHUNK + 1, 9 * CHUNK + 5};
	static uint8_t buf[9 * CHUNK + 6];
	fresh(HONEST);
	uint8_t first = 0;
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizes[k];
		memset(buf, 0xee, sizeof(buf));
		CHECK_EQ(virtio_rng_read(buf, n, 1000000), n);
		CHECK(stream_ok(buf, n, first));
		CHECK_EQ(buf[n], 0xee); /* not one byte more */
		first = (uint8_t)(first + n);
	}
	/* 9 * CHUNK + 5 needs ten requests with at most 8 in flight. */
	CHECK(dev.answered >= 10);
	CHECK_EQ(virtq_inflight(&rngs[0].q), 0);
	CHECK_EQ(resets, 0);
}

static void test_short_answers_are_asked_again(void)
{
	static uint8_t buf[3 * CHUNK + 100];
	fresh(SHORT);
	CHECK_EQ(virtio_rng_read(buf, sizeof(buf), 1000000), sizeof(buf));
	/* One request answered a third at a time: the driver offers the rest
	 * of the same buffer each time, so the buffer holds the stream in
	 * order, every byte of it. */
	memset(buf, 0xee, sizeof(buf));
	size_t n = 1000;
	CHECK_EQ(virtio_rng_read(buf, n, 1000000), n);
	/* One request of 1000: 333, then 222, 148, ... always the rest. */
	CHECK(stream_ok(buf, n, dev.next_byte - n));
	CHECK(dev.answered > 3);
	CHECK_EQ(resets, 0);
}

static void test_liar_is_stopped(void)
{
	uint8_t buf[64];
	fresh(LIAR);
	CHECK_EQ(virtio_rng_read(buf, sizeof(buf), 1000000), -EIO);
	CHECK_EQ(resets, 1);
	CHECK(strstr(last_log, "rng0: device broke the ring rules") != NULL);
	CHECK(strstr(last_log, "not used again") != NULL);
	CHECK(!virtio_rng_available());
	/* Not used again: the next read fails at once, and nothing is offered. */
	unsigned answered = dev.answered;
	uint16_t avail = dev.q->avail->idx;
	CHECK_EQ(virtio_rng_read(buf, sizeof(buf), 1000000), -ENODEV);
	CHECK_EQ(dev.q->avail->idx, avail);
	CHECK_EQ(dev.answered, answered);
}

static void test_silent_is_stopped(void)
{
	uint8_t buf[64];
	fresh(SILENT);
	uint64_t t0 = fake_ns;
	CHECK_EQ(virtio_rng_read(buf, sizeof(buf), 5000000), -ETIMEDOUT);
	CHECK(fake_ns - t0 >= 5000000);
	CHECK_EQ(resets, 1);
	CHECK(strstr(last_log, "rng0: no random bytes for 5 ms") != NULL);
	CHECK(!virtio_rng_available());
	CHECK_EQ(virtio_rng_read(buf, sizeof(buf), 5000000), -ENODEV);
}

/* Answers that carry nothing are no progress: the deadline still ends it. */
static void test_empty_answers_time_out(void)
{
	uint8_t buf[64];
	fresh(EMPTY);
	CHECK_EQ(virtio_rng_read(buf, sizeof(buf), 5000000), -ETIMEDOUT);
	CHECK(dev.answered > 1);
	CHECK_EQ(resets, 1);
	CHECK(!virtio_rng_available());
}

/* A second device takes over when the first breaks. */
static void test_second_device_takes_over(void)
{
	uint8_t buf[64];
	fresh(LIAR);
	struct virtq *first_q = dev.q;
	CHECK_EQ(virtio_rng_read(buf, sizeof(buf), 1000000), -EIO);
	/* Probe an honest second device; the played device now answers it. */
	struct virtio_dev vd = {.modern = true};
	char note[40];
	void *old_mem = dev.ring_mem;
	dev.how = HONEST;
	dev.reset = false;
	dev.last_avail = dev.used_idx = 0;
	dev.next_byte = 0;
	CHECK_EQ(virtio_rng_probe(&vd, note, sizeof(note)), 0);
	CHECK(strcmp(note, "rng1 queue 8, timer only") == 0);
	CHECK(dev.q != first_q);
	CHECK_EQ(virtio_rng_read(buf, sizeof(buf), 1000000), sizeof(buf));
	CHECK(stream_ok(buf, sizeof(buf), 0));
	free(old_mem);
}

int main(void)
{
	RUN_TEST(test_honest_any_size);
	RUN_TEST(test_short_answers_are_asked_again);
	RUN_TEST(test_liar_is_stopped);
	RUN_TEST(test_silent_is_stopped);
	RUN_TEST(test_empty_answers_time_out);
	RUN_TEST(test_second_device_takes_over);
	free(dev.ring_mem);
	return check_report();
}
