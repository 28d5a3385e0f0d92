/*
 * <ringlet/fb.h>: the screen, for applications (virtio-gpu, 2D).
 *
 * fb_open() hands the application the framebuffer of the first scanout and
 * takes the screen from the console (console=gpu stops drawing until
 * fb_close()). Draw into pixels (one uint32_t per pixel, 0x00RRGGBB, rows
 * `stride` bytes apart), then fb_flush() the rectangle you changed: only
 * that is copied to the host and redrawn in its window.
 *
 *	struct fb fb;
 *	if (fb_open(&fb) == 0) {
 *		fb.pixels[10 * fb.stride / 4 + 20] = 0xff0000;   // a red pixel at (20, 10)
 *		fb_flush(&fb, 20, 10, 1, 1);
 *	}
 *
 * When the host resizes the display (a window made bigger), the driver
 * makes a new framebuffer: fb_flush() then returns -ESTALE, and fb_open()
 * again gives the new size and pointer. docs/screen.md follows one frame
 * from here to the window.
 */
#ifndef RINGLET_FB_H
#define RINGLET_FB_H

#include <stdint.h>

#define FB_FORMAT_XRGB8888 1 /* little-endian 0x00RRGGBB: bytes B, G, R, unused */

struct fb {
	uint32_t *pixels;
	uint32_t width, height; /* pixels */
	uint32_t stride;        /* bytes from one row to the next */
	uint32_t format;        /* FB_FORMAT_* */
	uint32_t generation;    /* changes with every new framebuffer (a resize) */
};

/* 0, or -ENODEV when there is no working GPU. */
int fb_open(struct fb *fb);
/* Shows the rectangle (clipped to the screen). 0, -ESTALE (resized: open
 * again), -ENODEV or -EIO (the GPU broke and is stopped). */
int fb_flush(const struct fb *fb, uint32_t x, uint32_t y, uint32_t w, uint32_t h);
/* Gives the screen back to the console, which redraws its text. */
void fb_close(void);

#endif
