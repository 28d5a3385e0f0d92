/*
 * drivers/virtio/virtio_input.h: the virtio-input structures, named as the
 * spec names them.
 * Implements: Virtual I/O Device (VIRTIO) Version 1.2, §5.8 Input Device.
 *
 * The device speaks Linux's evdev: each event is a type, a code and a value
 * (linux/input-event-codes.h), and its configuration answers questions the
 * driver asks by writing select and subsel (the name, which event types and
 * codes it sends, the range of each absolute axis).
 */
#ifndef RINGLET_VIRTIO_INPUT_SPEC_H
#define RINGLET_VIRTIO_INPUT_SPEC_H

#include <stdint.h>

/* What the configuration answers (select), §5.8.4. */
enum virtio_input_config_select {
	VIRTIO_INPUT_CFG_UNSET = 0x00,
	VIRTIO_INPUT_CFG_ID_NAME = 0x01,   /* u.string: the device's name */
	VIRTIO_INPUT_CFG_ID_SERIAL = 0x02, /* u.string */
	VIRTIO_INPUT_CFG_ID_DEVIDS = 0x03, /* u.ids */
	VIRTIO_INPUT_CFG_PROP_BITS = 0x10, /* u.bitmap */
	VIRTIO_INPUT_CFG_EV_BITS = 0x11,   /* subsel an event type: u.bitmap of its codes */
	VIRTIO_INPUT_CFG_ABS_INFO = 0x12,  /* subsel an axis: u.abs */
};

struct virtio_input_absinfo {
	uint32_t min, max, fuzz, flat, res;
};

struct virtio_input_config {
	uint8_t select; /* written by the driver: the question */
	uint8_t subsel; /* written by the driver: its argument */
	uint8_t size;   /* read-only: bytes of the answer in u, 0 for "none"; untrusted */
	uint8_t reserved[5];
	union {
		char string[128];
		uint8_t bitmap[128];
		struct virtio_input_absinfo abs;
	} u;
};
_Static_assert(sizeof(struct virtio_input_config) == 136, "virtio_input_config");

/* One event, written by the device into a buffer of the event queue. */
struct virtio_input_event {
	uint16_t type;
	uint16_t code;
	uint32_t value;
};
_Static_assert(sizeof(struct virtio_input_event) == 8, "virtio_input_event");

#endif
