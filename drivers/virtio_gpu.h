/*
 * drivers/virtio_gpu.h: what the virtio-gpu driver offers the kernel: the
 * framebuffer of the first scanout, and a call that shows a rectangle of it.
 * kernel/fbcon.c draws the console into it; <ringlet/fb.h> hands it to
 * applications.
 */
#ifndef RINGLET_VIRTIO_GPU_H
#define RINGLET_VIRTIO_GPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct virtio_dev;

/* Takes a device a transport found; brings up scanout 0 with a framebuffer
 * of the size the host asks for. note: "gpu0 1280x800, 1 scanout". */
int virtio_gpu_probe(const struct virtio_dev *found, char *note, size_t note_len);

/* The framebuffer: 32-bit pixels 0x00RRGGBB, `stride` bytes per row. */
struct virtio_gpu_fb {
	uint32_t *pixels;
	uint32_t width, height, stride;
	uint32_t generation; /* changes when the host resized the display: a new buffer */
};

/* Fills *fb and returns 0, or -ENODEV (no working device). */
int virtio_gpu_fb(struct virtio_gpu_fb *fb);

/* Copies the rectangle to the host's copy of the resource and shows it
 * (TRANSFER_TO_HOST_2D then RESOURCE_FLUSH); clipped to the screen. Returns
 * 0, -ENODEV, or -EIO (the device broke the rules now and is stopped). */
int virtio_gpu_flush(uint32_t x, uint32_t y, uint32_t w, uint32_t h);

/* Looks for a display-change event now rather than at the next poll. */
void virtio_gpu_check_display(void);

#endif
