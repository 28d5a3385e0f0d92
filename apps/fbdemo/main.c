/*
 * apps/fbdemo: an animation on the screen through <ringlet/fb.h>.
 *
 * Draws a moving colour pattern over the whole screen, frame after frame,
 * and a square where the tablet or mouse points (<ringlet/input.h>); a key
 * (on the keyboard or the serial line) ends it and gives the screen back to
 * the console. Each frame is drawn into the framebuffer and shown with one
 * fb_flush() of the whole screen: the TRANSFER_TO_HOST_2D and
 * RESOURCE_FLUSH of docs/screen.md.
 *
 *   fbdemo              animate until a key
 *   fbdemo --frames N   draw N frames, print the frames per second, exit
 *                       (bench/screen)
 *
 * Try it: scripts/run --display vnc fbdemo (and a VNC viewer on 127.0.0.1:5900)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ringlet/fb.h>
#include <ringlet/input.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One frame of the pattern: bands of colour that slide and swirl with t. */
static void draw(const struct fb *fb, unsigned t)
{
	for (uint32_t y = 0; y < fb->height; y++) {
		uint32_t *row = (uint32_t *)((uint8_t *)fb->pixels + (size_t)y * fb->stride);
		uint32_t gy = (y + t) & 0xff;
		for (uint32_t x = 0; x < fb->width; x++) {
			uint32_t r = ((x + 2 * t) ^ y) & 0xff;
			uint32_t g = ((x >> 1) + gy) & 0xff;
			uint32_t b = ((x ^ (y + t)) >> 1) & 0xff;
			row[x] = r << 16 | g << 8 | b;
		}
	}
}

static void square(const struct fb *fb, int cx, int cy)
{
	for (int y = cy - 6; y <= cy + 6; y++)
		for (int x = cx - 6; x <= cx + 6; x++)
			if (x >= 0 && y >= 0 && (uint32_t)x < fb->width && (uint32_t)y < fb->height)
				fb->pixels[(size_t)y * fb->stride / 4 + x] = 0xffffff;
}

int main(int argc, char **argv)
{
	long frames = -1;
	if (argc == 3 && strcmp(argv[1], "--frames") == 0)
		frames = strtol(argv[2], NULL, 0);
	else if (argc != 1) {
		fprintf(stderr, "usage: fbdemo [--frames N]\n");
		return 2;
	}
	struct fb fb;
	int err = fb_open(&fb);
	if (err) {
		fprintf(stderr, "fbdemo: no screen (error %d): add a GPU (scripts/run --screen)\n", err);
		return 1;
	}
	int px = (int)fb.width / 2, py = (int)fb.height / 2;
	uint64_t start = now_ns();
	long n;
	for (n = 0; frames < 0 || n < frames; n++) {
		struct input_event ev[32];
		int got = input_read(ev, 32);
		for (int i = 0; i < got; i++) {
			if (ev[i].type == EV_ABS && ev[i].code == ABS_X && input_abs_max(ABS_X) > 0)
				px = (int)((int64_t)ev[i].value * fb.width / (input_abs_max(ABS_X) + 1));
			else if (ev[i].type == EV_ABS && ev[i].code == ABS_Y && input_abs_max(ABS_Y) > 0)
				py = (int)((int64_t)ev[i].value * fb.height / (input_abs_max(ABS_Y) + 1));
			else if (ev[i].type == EV_REL && ev[i].code == REL_X)
				px += ev[i].value;
			else if (ev[i].type == EV_REL && ev[i].code == REL_Y)
				py += ev[i].value;
		}
		draw(&fb, (unsigned)n * 4);
		square(&fb, px, py);
		err = fb_flush(&fb, 0, 0, fb.width, fb.height);
		if (err == -ESTALE) { /* the host resized the display */
			if ((err = fb_open(&fb)) != 0)
				break;
			continue;
		}
		if (err)
			break;
		if (frames < 0 && input_stdin_ready()) {
			char c;
			read(0, &c, 1);
			break;
		}
	}
	uint64_t ns = now_ns() - start;
	fb_close();
	if (err) {
		fprintf(stderr, "fbdemo: the screen failed (error %d)\n", err);
		return 1;
	}
	unsigned long mfps = ns ? (unsigned long)(n * 1000000000000ull / ns) : 0;
	printf("fbdemo: %ld frames of %ux%u in %lu ms: %lu.%03lu frames/s\n", n, fb.width, fb.height,
	       (unsigned long)(ns / 1000000), mfps / 1000, mfps % 1000);
	return 0;
}
