/*
 * test_virtio_input: drivers/virtio_input.c against a keyboard and a tablet
 * played by the test. The kernel services it calls are stand-ins; the
 * virtqueue is the real drivers/virtio/virtq.c.
 *
 * The device answers configuration questions (name, event types, axis
 * ranges) as QEMU's virtio-keyboard and virtio-tablet do, and writes events
 * into the buffers on its event queue. Checked: the keymap (shift, caps
 * lock, ctrl, alt, repeat, arrows), pointer events for applications, an
 * event storm (bounded work per poll, bounded queues, the event queue kept
 * full, no corruption), and an event shorter than 8 bytes (device stopped).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../drivers/virtio_input.c"
#include "check.h"
#include "klog_stub.h"

/* ---- stand-ins for the kernel -------------------------------------------- */

static uint64_t fake_ns;

uint64_t time_ns(void) { return fake_ns += 1000; }

/* ---- the device ------------------------------------------------------------ */

static struct {
	struct virtq *q;
	bool tablet;
	uint16_t last_avail, used_idx;
	struct virtio_input_config cfg;
	bool reset;
	void *ring;
	unsigned written; /* events written */
} dev;

static void dev_notify(struct virtq *q, void *ctx) { (void)q, (void)ctx; }

/* The answer to the question in cfg.select / cfg.subsel. */
static void dev_answer(void)
{
	memset(&dev.cfg.u, 0, sizeof(dev.cfg.u));
	dev.cfg.size = 0;
	const char *name = dev.tablet ? "QEMU Virtio Tablet" : "QEMU Virtio Keyboard";
	switch (dev.cfg.select) {
	case VIRTIO_INPUT_CFG_ID_NAME:
		strcpy(dev.cfg.u.string, name);
		dev.cfg.size = (uint8_t)strlen(name) + 1; /* QEMU counts the NUL */
		break;
	case VIRTIO_INPUT_CFG_EV_BITS:
		if (dev.cfg.subsel == EV_KEY && !dev.tablet) {
			memset(dev.cfg.u.bitmap, 0xff, 16); /* keys 0..127 */
			dev.cfg.size = 16;
		} else if (dev.cfg.subsel == EV_KEY) {
			dev.cfg.u.bitmap[BTN_LEFT / 8] = 1u << (BTN_LEFT % 8);
			dev.cfg.size = BTN_LEFT / 8 + 1;
		} else if (dev.cfg.subsel == EV_ABS && dev.tablet) {
			dev.cfg.u.bitmap[0] = 3;
			dev.cfg.size = 1;
		}
		break;
	case VIRTIO_INPUT_CFG_ABS_INFO:
		if (dev.tablet && dev.cfg.subsel <= ABS_Y) {
			dev.cfg.u.abs = (struct virtio_input_absinfo){0, 32767, 0, 0, 0};
			dev.cfg.size = sizeof(dev.cfg.u.abs);
		}
		break;
	}
}

/* Writes one event into the next buffer, claiming `len` bytes; false when
 * the driver has no buffer on the queue. */
static bool dev_push_len(uint16_t type, uint16_t code, uint32_t value, uint32_t len)
{
	struct virtq *q = dev.q;
	if (dev.reset || dev.last_avail == q->avail->idx)
		return false;
	uint16_t head = q->avail->ring[dev.last_avail % q->size];
	dev.last_avail++;
	volatile struct virtq_desc *d = &q->desc[head];
	CHECK(d->flags == VIRTQ_DESC_F_WRITE);
	CHECK_EQ(d->len, 8);
	struct virtio_input_event *ev = (void *)(uintptr_t)d->addr;
	*ev = (struct virtio_input_event){type, code, value};
	q->used->ring[dev.used_idx % q->size].id = head;
	q->used->ring[dev.used_idx % q->size].len = len;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	q->used->idx = ++dev.used_idx;
	dev.written++;
	return true;
}

static bool dev_push(uint16_t type, uint16_t code, uint32_t value) { return dev_push_len(type, code, value, 8); }

/* A key pressed and released, with EV_SYN after each as QEMU sends. */
static void tap(uint16_t code)
{
	CHECK(dev_push(EV_KEY, code, 1));
	CHECK(dev_push(EV_SYN, 0, 0));
	CHECK(dev_push(EV_KEY, code, 0));
	CHECK(dev_push(EV_SYN, 0, 0));
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
	dev.ring = aligned_alloc(VIRTQ_RING_ALIGN, ALIGN_UP(virtq_ring_bytes(max_size), VIRTQ_RING_ALIGN));
	memset(dev.ring, 0, virtq_ring_bytes(max_size));
	dev.q = q;
	return virtq_init(q, index, max_size, dev.ring, false, dev_notify, NULL);
}

void virtio_ready(struct virtio_dev *vd) { (void)vd; }
void virtio_irq_setup(struct virtio_dev *vd, uint16_t nqueues)
{
	(void)nqueues;
	strcpy(vd->wake, "timer only");
}
void virtio_fail(struct virtio_dev *vd, const char *why) { (void)vd, (void)why; }
bool virtio_reset(struct virtio_dev *vd)
{
	(void)vd;
	dev.reset = true;
	return true;
}

void virtio_config_read(struct virtio_dev *vd, uint32_t off, void *buf, uint32_t len)
{
	(void)vd;
	CHECK(off + len <= sizeof(dev.cfg));
	memcpy(buf, (uint8_t *)&dev.cfg + off, len);
}

/* select and subsel are 8-bit fields: written one byte at a time (the
 * device answers when either changes, as QEMU's does). */
void virtio_config_write8(struct virtio_dev *vd, uint32_t off, uint8_t v)
{
	(void)vd;
	CHECK(off == offsetof(struct virtio_input_config, select) ||
	      off == offsetof(struct virtio_input_config, subsel));
	((uint8_t *)&dev.cfg)[off] = v;
	dev_answer();
}

void virtio_config_write32(struct virtio_dev *vd, uint32_t off, uint32_t v)
{
	(void)vd, (void)off, (void)v;
	CHECK(!"a 32-bit write over virtio-input's byte-wide fields");
}

void wait_add_source(struct wait_source *s) { source = s; }
bool wait_poll(void) { return source->poll(source->ctx); }

/* ---- the tests ------------------------------------------------------------- */

static char note[80];

static void fresh(bool tablet)
{
	free(dev.ring);
	memset(&dev, 0, sizeof(dev));
	memset(inputs, 0, sizeof(inputs));
	ninputs = 0;
	memset(&mods, 0, sizeof(mods));
	stdin_head = stdin_tail = ptr_head = ptr_tail = 0;
	stdin_dropped = 0;
	last_log[0] = 0;
	dev.tablet = tablet;
	struct virtio_dev vd = {.modern = true};
	CHECK_EQ(virtio_input_probe(&vd, note, sizeof(note)), 0);
}

/* What stdin holds now, as a string. */
static const char *typed(void)
{
	static char buf[STDIN_SIZE + 1];
	wait_poll();
	size_t n = 0;
	for (int c; (c = virtio_input_getc()) >= 0;)
		buf[n++] = (char)c;
	buf[n] = 0;
	return buf;
}

static void test_keyboard_identity(void)
{
	fresh(false);
	CHECK(strcmp(note, "input0 keyboard, timer only") == 0);
	CHECK(strcmp(last_log, "input0: \"QEMU Virtio Keyboard\", a keyboard") == 0);
	CHECK(virtio_input_have_keyboard());
	CHECK_EQ(virtq_inflight(&inputs[0].q), NBUFS); /* the queue is full */
}

static void test_keymap(void)
{
	fresh(false);
	/* Shift held: "H", then "i!" and Enter. */
	CHECK(dev_push(EV_KEY, KEY_LEFTSHIFT, 1));
	tap(35); /* h */
	CHECK(dev_push(EV_KEY, KEY_LEFTSHIFT, 0));
	tap(23); /* i */
	CHECK(dev_push(EV_KEY, KEY_RIGHTSHIFT, 1));
	tap(2); /* 1 -> ! */
	CHECK(dev_push(EV_KEY, KEY_RIGHTSHIFT, 0));
	tap(14); /* Backspace: DEL */
	tap(28); /* Enter: CR */
	CHECK(strcmp(typed(), "Hi!\177\r") == 0);

	/* Caps lock: letters only; shift inverts it. */
	tap(KEY_CAPSLOCK);
	tap(30); /* a */
	tap(12); /* - */
	CHECK(dev_push(EV_KEY, KEY_LEFTSHIFT, 1));
	tap(48); /* b */
	CHECK(dev_push(EV_KEY, KEY_LEFTSHIFT, 0));
	tap(KEY_CAPSLOCK);
	tap(46); /* c */
	CHECK(strcmp(typed(), "A-bc") == 0);

	/* Ctrl-C, Alt-x, arrows, a held key repeating (value 2). */
	CHECK(dev_push(EV_KEY, KEY_LEFTCTRL, 1));
	tap(46);
	CHECK(dev_push(EV_KEY, KEY_LEFTCTRL, 0));
	CHECK(dev_push(EV_KEY, KEY_LEFTALT, 1));
	tap(45);
	CHECK(dev_push(EV_KEY, KEY_LEFTALT, 0));
	tap(KEY_UP);
	tap(KEY_LEFT);
	tap(KEY_DELETE);
	CHECK(dev_push(EV_KEY, 31, 1)); /* s */
	CHECK(dev_push(EV_KEY, 31, 2));
	CHECK(dev_push(EV_KEY, 31, 2));
	CHECK(dev_push(EV_KEY, 31, 0));
	tap(88); /* F12: no byte */
	tap(0xff);
	CHECK(strcmp(typed(), "\003\033x\033[A\033[D\033[3~sss") == 0);
	/* Key events from a keyboard are not pointer events. */
	struct input_event ev[4];
	CHECK_EQ(input_read(ev, 4), 0);
	CHECK(!dev.reset);
}

/* A device that sends far more than anyone reads: each poll does bounded
 * work, the event queue stays full, stdin keeps what fits and counts the
 * rest, and the device is not stopped: a storm is not a broken rule. */
static void test_event_storm(void)
{
	fresh(false);
	unsigned polls = 0;
	for (int round = 0; round < 200; round++) {
		while (dev_push(EV_KEY, 30, 1)) /* every buffer it has: 'a' pressed */
			;
		bool any = wait_poll();
		CHECK(any);
		polls++;
		CHECK_EQ(virtq_inflight(&inputs[0].q), NBUFS); /* all given back */
	}
	CHECK_EQ(dev.written, NBUFS * 200 + 0u);
	CHECK_EQ(stdin_head - stdin_tail, STDIN_SIZE);
	CHECK_EQ(stdin_dropped, NBUFS * 200 - STDIN_SIZE);
	const char *s = typed();
	CHECK_EQ(strlen(s), STDIN_SIZE);
	CHECK_EQ(strspn(s, "a"), STDIN_SIZE);
	CHECK(!dev.reset);
	CHECK(!inputs[0].broken);
}

static void test_short_event_stops_the_device(void)
{
	fresh(false);
	tap(30);
	CHECK(dev_push_len(EV_KEY, 31, 1, 4)); /* half an event */
	tap(32);
	const char *s = typed();
	CHECK(strcmp(s, "a") == 0); /* what came before, nothing after */
	CHECK(dev.reset);
	CHECK(inputs[0].broken);
	CHECK(strstr(last_log, "an event of 4 bytes") != NULL);
	CHECK(!virtio_input_have_keyboard());
}

static void test_tablet(void)
{
	fresh(true);
	CHECK(strcmp(note, "input0 tablet, timer only") == 0);
	CHECK(strcmp(last_log, "input0: \"QEMU Virtio Tablet\", a tablet") == 0);
	CHECK(!virtio_input_have_keyboard());
	CHECK_EQ(input_abs_max(ABS_X), 32767);
	CHECK_EQ(input_abs_max(ABS_Y), 32767);
	CHECK_EQ(input_abs_max(7), 0);
	CHECK(dev_push(EV_ABS, ABS_X, 100));
	CHECK(dev_push(EV_ABS, ABS_Y, 200));
	CHECK(dev_push(EV_KEY, BTN_LEFT, 1));
	CHECK(dev_push(EV_SYN, 0, 0));
	struct input_event ev[8];
	CHECK_EQ(input_read(ev, 8), 4);
	CHECK(ev[0].type == EV_ABS && ev[0].code == ABS_X && ev[0].value == 100);
	CHECK(ev[1].type == EV_ABS && ev[1].code == ABS_Y && ev[1].value == 200);
	CHECK(ev[2].type == EV_KEY && ev[2].code == BTN_LEFT && ev[2].value == 1);
	CHECK(ev[3].type == EV_SYN);
	CHECK(strcmp(typed(), "") == 0); /* a button is not a key */

	/* A storm nobody reads: the newest PTR_SIZE events are kept. */
	for (uint32_t i = 0; i < 1000;) {
		if (dev_push(EV_ABS, ABS_X, i))
			i++;
		else
			wait_poll();
	}
	while (wait_poll())
		;
	static struct input_event many[PTR_SIZE + 10];
	CHECK_EQ(input_read(many, PTR_SIZE + 10), PTR_SIZE);
	CHECK_EQ(many[0].value, 1000 - PTR_SIZE);
	CHECK_EQ(many[PTR_SIZE - 1].value, 999);
}

int main(void)
{
	RUN_TEST(test_keyboard_identity);
	RUN_TEST(test_keymap);
	RUN_TEST(test_event_storm);
	RUN_TEST(test_short_event_stops_the_device);
	RUN_TEST(test_tablet);
	free(dev.ring);
	return check_report();
}
