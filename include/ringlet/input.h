/*
 * <ringlet/input.h>: keyboards and pointers (virtio-input), for applications.
 *
 * Keys need nothing from here: a virtio keyboard types into stdin (a US
 * keymap; arrows and the like arrive as the escape sequences a terminal
 * sends), so read(0, ...) gets them as it gets the serial console's.
 * Pointer events (a mouse's movements, a tablet's positions, buttons) come
 * through input_read(), in Linux's evdev vocabulary, which is virtio-input's:
 *
 *	struct input_event ev[16];
 *	int n = input_read(ev, 16);            // never waits
 *	for (int i = 0; i < n; i++)
 *		if (ev[i].type == EV_ABS && ev[i].code == ABS_X)
 *			x = ev[i].value * fb.width / (input_abs_max(ABS_X) + 1);
 */
#ifndef RINGLET_INPUT_H
#define RINGLET_INPUT_H

#include <stdbool.h>
#include <stdint.h>

/* Event types and codes (linux/input-event-codes.h; virtio 1.2 §5.8.6.2). */
#define EV_SYN     0x00 /* the end of one report: the events before it belong together */
#define EV_KEY     0x01 /* a key or button: value 1 pressed, 0 released, 2 repeated */
#define EV_REL     0x02 /* a relative movement (mouse) */
#define EV_ABS     0x03 /* an absolute position (tablet), 0..input_abs_max() */
#define REL_X      0x00
#define REL_Y      0x01
#define REL_WHEEL  0x08
#define ABS_X      0x00
#define ABS_Y      0x01
#define BTN_LEFT   0x110
#define BTN_RIGHT  0x111
#define BTN_MIDDLE 0x112

struct input_event {
	uint16_t type;
	uint16_t code;
	int32_t value;
};

/* Takes up to max pointer events that arrived (after looking at the
 * devices once); returns how many, 0 when there are none. Never waits. An
 * application that does not read them loses the oldest (a bounded queue). */
int input_read(struct input_event *ev, int max);
/* The largest value of an absolute axis (ABS_X, ABS_Y), from the device's
 * configuration; 0 when no device has the axis. */
int32_t input_abs_max(unsigned axis);
/* Whether a byte waits on stdin (a key typed, or the serial line): a
 * read(0, ...) would not block. Looks at the devices once. */
bool input_stdin_ready(void);

#endif
