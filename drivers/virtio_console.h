/*
 * drivers/virtio_console.h: what the virtio-console driver offers the kernel.
 *
 * The console port (port 0 without VIRTIO_CONSOLE_F_MULTIPORT, else the
 * port the device announces with VIRTIO_CONSOLE_CONSOLE_PORT) is the sink
 * kernel/console.c switches to with `console=virtio`; the other ports are
 * files (/dev/vportDpN, /dev/virtio-ports/NAME) that the driver registers
 * itself.
 */
#ifndef RINGLET_VIRTIO_CONSOLE_H
#define RINGLET_VIRTIO_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct virtio_dev;

/* Takes a device a transport found; writes a few words about it ("con0 2
 * ports") into note. Returns 0 or a negative errno. */
int virtio_console_probe(const struct virtio_dev *found, char *note, size_t note_len);

/* Whether a console port is there and working. */
bool virtio_console_available(void);

/* Appends to the console port's open buffer; a full buffer goes to the
 * device. Never waits in the wait loop (klog() calls it from anywhere):
 * with every buffer at the device it spins on the used ring, bounded, and
 * drops the bytes when the device does not give one back. Returns false
 * when the console port is gone or broken (the caller falls back). */
bool virtio_console_write(const char *s, size_t n);

/* Sends the open buffer, if any: one request for everything appended since
 * the last flush (that is the batching). */
void virtio_console_flush(void);

/* Waits (spinning: interrupts may be off) up to max_ns for every port's
 * transmit requests to come back: the guest is about to stop. */
void virtio_console_drain(uint64_t max_ns);

/* Bytes received on the console port: up to n of those waiting, without
 * waiting; 0 when none. */
size_t virtio_console_read(char *buf, size_t n);

/* Whether the console port has received bytes (the wait loop's condition). */
bool virtio_console_readable(void *unused);

struct virtio_console_stats {
	uint64_t bytes;    /* bytes sent through the console port */
	uint64_t requests; /* requests (buffers) they took */
	uint64_t dropped;  /* bytes dropped: no buffer came back in time */
};
void virtio_console_stats(struct virtio_console_stats *st);

#endif
