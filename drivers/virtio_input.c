/*
 * virtio-input: polled keyboard, mouse and tablet driver.
 * Implements: Virtual I/O Device (VIRTIO) Version 1.2, §5.8 Input Device.
 * Try it:     -device virtio-keyboard-pci -device virtio-tablet-pci
 *             (scripts/run --display vnc kbd; virtio-keyboard-device on microvm)
 *
 * The device sends Linux evdev events (type, code, value: 8 bytes) into
 * buffers the driver keeps on its event queue; the driver hands each back
 * as soon as it has looked at it, so the queue stays full. Key events turn
 * into bytes on stdin through a US keymap (shift, ctrl, caps lock; a held
 * key repeats because the device sends value 2; arrows and the like as the
 * escape sequences a terminal sends). Pointer events (EV_REL, EV_ABS,
 * buttons, EV_SYN) are queued for applications (<ringlet/input.h>). The
 * device's name and what it sends are read from its configuration.
 *
 * The device is not trusted: an event shorter than 8 bytes marks it broken
 * (the queue itself refuses longer ones); a storm of events costs at most
 * MAX_PER_POLL events per pass of the wait loop, and what nobody reads is
 * dropped at the bounded queues' ends, never written past them. The status
 * queue (LEDs) is not used.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <ringlet/input.h>

#include "../kernel/kernel.h"
#include "../kernel/wait.h"
#include "virtio/virtio_dev.h"
#include "virtio/virtio_input.h"
#include "virtio_input.h"

#define MAX_INPUTS   4
#define NBUFS        64  /* event buffers kept on the queue */
#define MAX_PER_POLL 128 /* events handled per pass of the wait loop */
#define STDIN_SIZE   512 /* typed bytes not yet read */
#define PTR_SIZE     256 /* pointer events not yet read */

/* Key codes (linux/input-event-codes.h) the keymap treats specially. */
#define KEY_ESC        1
#define KEY_LEFTCTRL   29
#define KEY_LEFTSHIFT  42
#define KEY_RIGHTSHIFT 54
#define KEY_LEFTALT    56
#define KEY_CAPSLOCK   58
#define KEY_F1         59
#define KEY_KPENTER    96
#define KEY_RIGHTCTRL  97
#define KEY_KPSLASH    98
#define KEY_RIGHTALT   100
#define KEY_HOME       102
#define KEY_UP         103
#define KEY_PAGEUP     104
#define KEY_LEFT       105
#define KEY_RIGHT      106
#define KEY_END        107
#define KEY_DOWN       108
#define KEY_PAGEDOWN   109
#define KEY_INSERT     110
#define KEY_DELETE     111
#define KEY_MAX_CODE   0xff /* codes above are buttons (BTN_*) */

/* A US keyboard, by key code 0..57, without and with shift. Enter is CR
 * (console_read() makes it a newline, as for the serial line), Backspace
 * is DEL (what terminals send). */
static const char plain[58] = "\0\0331234567890-=\177\tqwertyuiop[]\r\0asdfghjkl;'`\0\\zxcvbnm,./\0*\0 ";
static const char shifted[58] = "\0\033!@#$%^&*()_+\177\tQWERTYUIOP{}\r\0ASDFGHJKL:\"~\0|ZXCVBNM<>?\0*\0 ";

struct input {
	struct virtio_dev vd;
	struct virtq q;
	char name[8];
	char devname[40]; /* from the configuration */
	bool broken;
	bool keyboard, pointer;
	int32_t abs_max[2]; /* ABS_X, ABS_Y */
	uint64_t events;    /* since boot */
	struct wait_source source;
	struct virtio_input_event bufs[NBUFS]; /* the device writes these */
};

static struct input inputs[MAX_INPUTS];
static int ninputs;

/* The keyboard state, shared by all keyboards (as on a PC). */
static struct {
	bool shift_l, shift_r, ctrl_l, ctrl_r, alt, caps;
} mods;

/* Typed bytes and pointer events, bounded rings. */
static char stdin_ring[STDIN_SIZE];
static unsigned stdin_head, stdin_tail; /* free-running; head - tail bytes waiting */
static uint64_t stdin_dropped;
static struct input_event ptr_ring[PTR_SIZE];
static unsigned ptr_head, ptr_tail;

static void stdin_put(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (stdin_head - stdin_tail == STDIN_SIZE) {
			stdin_dropped++; /* nobody reads: the newest keys are lost, as on a full tty */
			continue;
		}
		stdin_ring[stdin_head++ % STDIN_SIZE] = s[i];
	}
}

int virtio_input_getc(void)
{
	if (stdin_head == stdin_tail)
		return -1;
	return (unsigned char)stdin_ring[stdin_tail++ % STDIN_SIZE];
}

bool virtio_input_have_keyboard(void)
{
	for (int i = 0; i < ninputs; i++)
		if (inputs[i].keyboard && !inputs[i].broken)
			return true;
	return false;
}

static void ptr_put(uint16_t type, uint16_t code, int32_t value)
{
	if (ptr_head - ptr_tail == PTR_SIZE)
		ptr_tail++; /* drop the oldest: a pointer's latest position matters most */
	ptr_ring[ptr_head++ % PTR_SIZE] = (struct input_event){type, code, value};
}

/* ---- the keymap ------------------------------------------------------------------------- */

/* The bytes a terminal sends for a key that is not a character. */
static const char *special(unsigned code)
{
	switch (code) {
	case KEY_UP:
		return "\033[A";
	case KEY_DOWN:
		return "\033[B";
	case KEY_RIGHT:
		return "\033[C";
	case KEY_LEFT:
		return "\033[D";
	case KEY_HOME:
		return "\033[H";
	case KEY_END:
		return "\033[F";
	case KEY_INSERT:
		return "\033[2~";
	case KEY_DELETE:
		return "\033[3~";
	case KEY_PAGEUP:
		return "\033[5~";
	case KEY_PAGEDOWN:
		return "\033[6~";
	case KEY_F1:
		return "\033OP";
	case KEY_F1 + 1:
		return "\033OQ";
	case KEY_F1 + 2:
		return "\033OR";
	case KEY_F1 + 3:
		return "\033OS";
	case KEY_KPENTER:
		return "\r";
	case KEY_KPSLASH:
		return "/";
	default:
		return NULL;
	}
}

/* One key event: value 1 pressed, 2 repeated (the device's autorepeat), 0 released. */
static void key(unsigned code, uint32_t value)
{
	bool down = value != 0;
	switch (code) {
	case KEY_LEFTSHIFT:
		mods.shift_l = down;
		return;
	case KEY_RIGHTSHIFT:
		mods.shift_r = down;
		return;
	case KEY_LEFTCTRL:
		mods.ctrl_l = down;
		return;
	case KEY_RIGHTCTRL:
		mods.ctrl_r = down;
		return;
	case KEY_LEFTALT:
	case KEY_RIGHTALT:
		mods.alt = down;
		return;
	case KEY_CAPSLOCK:
		if (value == 1)
			mods.caps = !mods.caps;
		return;
	}
	if (!down)
		return;
	const char *seq = special(code);
	if (seq) {
		stdin_put(seq, strlen(seq));
		return;
	}
	if (code >= sizeof(plain))
		return; /* a key without a byte (F5.., keypad, media keys) */
	bool shift = mods.shift_l || mods.shift_r;
	char c = shift ? shifted[code] : plain[code];
	if (c == 0)
		return;
	if (mods.caps && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
		c ^= 0x20; /* caps lock swaps the case of letters only */
	if (mods.ctrl_l || mods.ctrl_r) {
		if ((c >= 'a' && c <= 'z') || (c >= '@' && c <= '_'))
			c &= 0x1f; /* Ctrl-A = 1 ... Ctrl-[ = ESC */
		else if (c == ' ')
			c = 0;
	}
	if (mods.alt)
		stdin_put("\033", 1); /* Alt-x: ESC x, as xterm's metaSendsEscape */
	stdin_put(&c, 1);
}

static void event(struct input *d, uint16_t type, uint16_t code, uint32_t value)
{
	d->events++;
	if (type == EV_KEY && code <= KEY_MAX_CODE) {
		if (d->keyboard)
			key(code, value);
		return;
	}
	if (d->pointer && (type == EV_KEY || type == EV_REL || type == EV_ABS || type == EV_SYN))
		ptr_put(type, code, (int32_t)value);
}

/* ---- the queue ------------------------------------------------------------------------- */

static void abandon(struct input *d, const char *why)
{
	if (d->broken)
		return;
	d->broken = true;
	bool reset = virtio_reset(&d->vd);
	klog("%s: %s; the device is reset and not used again", d->name, why);
	if (!reset)
		klog("%s: the device did not reset: it may still write to its buffers", d->name);
}

static int offer(struct input *d, struct virtio_input_event *b)
{
	struct virtq_buf vb = {b, sizeof(*b)};
	return virtq_add(&d->q, &vb, 0, 1, b);
}

static bool input_poll(void *ctx)
{
	struct input *d = ctx;
	bool any = false;
	for (int n = 0; n < MAX_PER_POLL && !d->broken; n++) {
		void *cookie;
		uint32_t len;
		int got = virtq_get_used(&d->q, &cookie, &len);
		if (got == 0)
			break;
		if (got < 0) {
			char why[96];
			ksnprintf(why, sizeof(why), "device broke the ring rules (%s)", virtq_broken_reason(&d->q));
			abandon(d, why);
			break;
		}
		struct virtio_input_event *b = cookie;
		/* §5.8.6.2: the device fills a buffer with one virtio_input_event. */
		if (len != sizeof(*b)) {
			char why[64];
			ksnprintf(why, sizeof(why), "an event of %u bytes, not %zu", len, sizeof(*b));
			abandon(d, why);
			break;
		}
		struct virtio_input_event ev = *b; /* once, into a local */
		any = true;
		/* Back on the queue at once: a descriptor was just freed. */
		if (offer(d, b) != 0) {
			abandon(d, "cannot offer an event buffer again");
			break;
		}
		event(d, ev.type, ev.code, ev.value);
	}
	if (any && !d->broken)
		virtq_kick(&d->q);
	return any;
}

static bool input_arm(void *ctx)
{
	struct input *d = ctx;
	return !d->broken && virtq_enable_notify(&d->q);
}

static void input_disarm(void *ctx)
{
	struct input *d = ctx;
	if (!d->broken)
		virtq_disable_notify(&d->q);
}

/* ---- configuration ----------------------------------------------------------------------- */

/* Asks the configuration a question; returns the answer's size (0: none),
 * at most 128 whatever the device says. */
static uint32_t ask(struct input *d, uint8_t select, uint8_t subsel)
{
	/* Two byte-wide writes: a 32-bit one would also write size and
	 * reserved, and §4.1.3.1 wants each field accessed with its width. */
	virtio_config_write8(&d->vd, offsetof(struct virtio_input_config, select), select);
	virtio_config_write8(&d->vd, offsetof(struct virtio_input_config, subsel), subsel);
	uint8_t size;
	virtio_config_read(&d->vd, offsetof(struct virtio_input_config, size), &size, 1);
	return size > 128 ? 128 : size;
}

static bool has_event_type(struct input *d, unsigned type)
{
	return ask(d, VIRTIO_INPUT_CFG_EV_BITS, (uint8_t)type) != 0;
}

/* Reads the name and what the device sends: a keyboard has letter keys, a
 * pointer relative or absolute axes. */
static void identify(struct input *d)
{
	uint32_t n = ask(d, VIRTIO_INPUT_CFG_ID_NAME, 0);
	if (n >= sizeof(d->devname))
		n = sizeof(d->devname) - 1;
	virtio_config_read(&d->vd, offsetof(struct virtio_input_config, u), d->devname, n);
	d->devname[n] = 0;
	n = (uint32_t)strlen(d->devname); /* QEMU counts the terminating NUL */
	for (uint32_t i = 0; i < n; i++)
		if (d->devname[i] < 0x20 || d->devname[i] > 0x7e)
			d->devname[i] = '?'; /* it goes to the log */

	uint8_t keys[8] = {0};
	uint32_t kn = ask(d, VIRTIO_INPUT_CFG_EV_BITS, EV_KEY);
	virtio_config_read(&d->vd, offsetof(struct virtio_input_config, u), keys, kn < 8 ? kn : 8);
	d->keyboard = keys[30 / 8] & (1u << (30 % 8)); /* KEY_A */
	d->pointer = has_event_type(d, EV_REL) || has_event_type(d, EV_ABS);
	for (unsigned axis = ABS_X; axis <= ABS_Y; axis++) {
		if (ask(d, VIRTIO_INPUT_CFG_ABS_INFO, (uint8_t)axis) < sizeof(struct virtio_input_absinfo))
			continue;
		struct virtio_input_absinfo ai;
		virtio_config_read(&d->vd, offsetof(struct virtio_input_config, u), &ai, sizeof(ai));
		d->abs_max[axis] = ai.max > INT32_MAX ? INT32_MAX : (int32_t)ai.max;
	}
}

int virtio_input_probe(const struct virtio_dev *found, char *note, size_t note_len)
{
	int err;
	if (ninputs == MAX_INPUTS)
		return -ENOSPC;
	struct input *d = &inputs[ninputs];
	memset(d, 0, sizeof(*d));
	d->vd = *found;
	d->vd.name = "virtio-input";
	ksnprintf(d->name, sizeof(d->name), "input%d", ninputs);

	/* §5.8.3: no device-specific feature bits. */
	if ((err = virtio_start(&d->vd, 0, 0)) != 0)
		return err;
	identify(d);
	/* §5.8.2: "0 eventq, 1 statusq". */
	if ((err = virtio_queue_init(&d->vd, &d->q, 0, NBUFS)) != 0) {
		virtio_fail(&d->vd, "cannot set up its event queue");
		return err;
	}
	virtio_irq_setup(&d->vd, 1);
	virtio_ready(&d->vd);
	/* §5.8.6.1: "The driver SHOULD keep the eventq populated with buffers." */
	unsigned nb = d->q.size < NBUFS ? d->q.size : NBUFS;
	for (unsigned i = 0; i < nb; i++)
		if (offer(d, &d->bufs[i]) != 0)
			break;
	virtq_kick(&d->q);

	/* With a wake-up interrupt a key wakes the halted loop at once; without
	 * one (arm NULL) it waits for the loop's next look, 10 ms at most. No
	 * deadline: the buffers on the queue are always "in flight", and an
	 * idle keyboard must not keep the loop awake. */
	d->source = (struct wait_source){.name = d->name,
	                                 .poll = input_poll,
	                                 .arm = d->vd.irq_vector ? input_arm : NULL,
	                                 .disarm = input_disarm,
	                                 .ctx = d};
	wait_add_source(&d->source);
	const char *kind = d->keyboard ? "keyboard" : d->pointer ? (d->abs_max[0] ? "tablet" : "mouse") : "other";
	/* The PCI list's note has room for a few words; the name gets a line. */
	ksnprintf(note, note_len, "%s %s, %s", d->name, kind, d->vd.wake);
	klog("%s: \"%s\", a %s", d->name, d->devname, kind);
	ninputs++;
	return 0;
}

/* ---- <ringlet/input.h> --------------------------------------------------------------------- */

int input_read(struct input_event *ev, int max)
{
	wait_poll();
	int n = 0;
	while (n < max && ptr_tail != ptr_head)
		ev[n++] = ptr_ring[ptr_tail++ % PTR_SIZE];
	return n;
}

int32_t input_abs_max(unsigned axis)
{
	if (axis > ABS_Y)
		return 0;
	for (int i = 0; i < ninputs; i++)
		if (!inputs[i].broken && inputs[i].abs_max[axis])
			return inputs[i].abs_max[axis];
	return 0;
}
