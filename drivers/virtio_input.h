/*
 * drivers/virtio_input.h: what the virtio-input driver offers the kernel:
 * typed bytes for stdin (kernel/console.c merges them with the serial
 * line's); pointer events go to applications through <ringlet/input.h>.
 */
#ifndef RINGLET_VIRTIO_INPUT_H
#define RINGLET_VIRTIO_INPUT_H

#include <stdbool.h>
#include <stddef.h>

struct virtio_dev;

/* Takes a device a transport found. note: "input0 keyboard \"QEMU Virtio Keyboard\"". */
int virtio_input_probe(const struct virtio_dev *found, char *note, size_t note_len);

/* Whether any keyboard works (stdin then waits for it as well). */
bool virtio_input_have_keyboard(void);
/* The next byte typed, or -1 when none is waiting. */
int virtio_input_getc(void);

#endif
