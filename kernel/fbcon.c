/*
 * kernel/fbcon.c: the console on the screen (console=gpu), and the
 * framebuffer API for applications (<ringlet/fb.h>).
 * Try it:     scripts/run --display vnc hello -- (kernel option console=gpu,serial is added)
 *
 * The screen is a grid of character cells, each a byte and two colours,
 * drawn with a bitmap font from Debian's console fonts (converted into C at
 * build time by scripts/psf2c). Bytes written to the console go through a
 * small terminal: printable bytes fill cells, \n \r \b \t move the cursor,
 * and the common ANSI escape sequences (ECMA-48 CSI: colours with SGR, cursor
 * movement and position, erase in display and in line) work, so ordinary
 * programs look right. Each write draws only the cells it changed into the
 * framebuffer, and hands the rectangle around them (the damage) to the GPU;
 * a scroll moves the pixels up and damages the whole screen.
 *
 * Log lines printed before the GPU was found are kept in a small buffer and
 * replayed, so the screen shows the whole boot.
 *
 * An application that calls fb_open() gets the screen: the console stops
 * drawing (it still keeps its grid) until fb_close() gives it back.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <ringlet/fb.h>

#include "../drivers/virtio_gpu.h"
#include "kernel.h"

/* build/gen/font.c, from scripts/psf2c. */
extern const unsigned fbcon_font_width, fbcon_font_height;
extern const uint8_t fbcon_font[256][16];

/* The 16 colours of ECMA-48's SGR 30-37 / 90-97, as the Linux console has them. */
static const uint32_t palette[16] = {
    0x000000, 0xaa0000, 0x00aa00, 0xaa5500, 0x0000aa, 0xaa00aa, 0x00aaaa, 0xaaaaaa,
    0x555555, 0xff5555, 0x55ff55, 0xffff55, 0x5555ff, 0xff55ff, 0x55ffff, 0xffffff,
};
#define DEFAULT_FG 7
#define DEFAULT_BG 0

struct cell {
	uint8_t ch;
	uint8_t fg, bg; /* palette indices */
};

/* ANSI parser states. */
enum { S_TEXT, S_ESC, S_CSI };
#define MAX_PARAMS 8

static struct {
	bool on;     /* console=gpu and a framebuffer to draw on */
	bool app;    /* an application has the screen (fb_open) */
	bool inside; /* a write is in progress: a log line from inside the GPU's wait only fills cells */
	struct virtio_gpu_fb fb;
	struct cell *cells;
	size_t cell_pages;
	uint32_t cols, rows;
	uint32_t cx, cy; /* the cursor */
	bool wrap_next;  /* the last column was written: the next byte goes on a new line */
	uint8_t fg, bg;  /* colours for new text */
	bool bold;       /* SGR 1: the bright half of the palette */
	int state;
	int params[MAX_PARAMS], nparams;
	/* Damage, in cells: [dx0, dx1) x [dy0, dy1); empty when dx0 >= dx1. */
	uint32_t dx0, dy0, dx1, dy1;
	bool cursor_shown;
	uint32_t cur_x, cur_y; /* where the cursor was drawn */
} con;

/* Log lines from before the screen was there (kernel/console.c feeds it). */
#define EARLY_SIZE 16384
static char early[EARLY_SIZE];
static size_t early_len;
static bool early_lost;

void fbcon_early(const char *s, size_t n)
{
	if (con.on)
		return;
	for (size_t i = 0; i < n; i++) {
		if (early_len == EARLY_SIZE) {
			/* Keep the newer half. */
			memmove(early, early + EARLY_SIZE / 2, EARLY_SIZE / 2);
			early_len = EARLY_SIZE / 2;
			early_lost = true;
		}
		early[early_len++] = s[i];
	}
}

size_t fbcon_early_take(const char **p)
{
	size_t n = early_len;
	*p = early;
	early_len = 0;
	return n;
}

/* ---- drawing ---------------------------------------------------------------------------- */

static void damage(uint32_t x0, uint32_t y0, uint32_t x1, uint32_t y1)
{
	if (con.dx0 >= con.dx1) {
		con.dx0 = x0, con.dy0 = y0, con.dx1 = x1, con.dy1 = y1;
		return;
	}
	if (x0 < con.dx0)
		con.dx0 = x0;
	if (y0 < con.dy0)
		con.dy0 = y0;
	if (x1 > con.dx1)
		con.dx1 = x1;
	if (y1 > con.dy1)
		con.dy1 = y1;
}

/* Draws cell (x, y) into the framebuffer, colours swapped for the cursor. */
static void draw_cell(uint32_t x, uint32_t y, bool inverse)
{
	const struct cell *c = &con.cells[(size_t)y * con.cols + x];
	uint32_t fg = palette[c->fg], bg = palette[c->bg];
	if (inverse) {
		uint32_t t = fg;
		fg = bg;
		bg = t;
	}
	const uint8_t *glyph = fbcon_font[c->ch];
	uint32_t *row = (uint32_t *)((uint8_t *)con.fb.pixels + (size_t)y * fbcon_font_height * con.fb.stride) +
	                (size_t)x * fbcon_font_width;
	for (unsigned gy = 0; gy < fbcon_font_height; gy++) {
		uint8_t bits = glyph[gy];
		for (unsigned gx = 0; gx < fbcon_font_width; gx++)
			row[gx] = bits & (0x80 >> gx) ? fg : bg;
		row = (uint32_t *)((uint8_t *)row + con.fb.stride);
	}
	damage(x, y, x + 1, y + 1);
}

static void put_cell(uint32_t x, uint32_t y, uint8_t ch)
{
	struct cell *c = &con.cells[(size_t)y * con.cols + x];
	*c = (struct cell){ch, (uint8_t)(con.fg + (con.bold && con.fg < 8 ? 8 : 0)), con.bg};
	if (!con.app)
		draw_cell(x, y, false);
}

/* Blanks cells [x0, x1) of row y with the current background. */
static void clear_cells(uint32_t y, uint32_t x0, uint32_t x1)
{
	for (uint32_t x = x0; x < x1; x++) {
		con.cells[(size_t)y * con.cols + x] = (struct cell){' ', con.fg, con.bg};
		if (!con.app)
			draw_cell(x, y, false);
	}
}

/* Moves everything up a line; the last line is blank. */
static void scroll_up(void)
{
	memmove(con.cells, con.cells + con.cols, (size_t)(con.rows - 1) * con.cols * sizeof(struct cell));
	if (!con.app) {
		size_t line = (size_t)fbcon_font_height * con.fb.stride;
		memmove(con.fb.pixels, (uint8_t *)con.fb.pixels + line, (size_t)(con.rows - 1) * line);
		damage(0, 0, con.cols, con.rows);
	}
	uint8_t bg = con.bg;
	con.bg = DEFAULT_BG; /* a new line starts in the default background, as on Linux */
	clear_cells(con.rows - 1, 0, con.cols);
	con.bg = bg;
}

static void redraw_all(void)
{
	for (uint32_t y = 0; y < con.rows; y++)
		for (uint32_t x = 0; x < con.cols; x++)
			draw_cell(x, y, false);
}

/* ---- the terminal ----------------------------------------------------------------------- */

static void newline(void)
{
	con.wrap_next = false;
	if (con.cy + 1 < con.rows)
		con.cy++;
	else
		scroll_up();
}

static void printable(uint8_t ch)
{
	if (con.wrap_next) {
		con.cx = 0;
		newline();
	}
	put_cell(con.cx, con.cy, ch);
	if (con.cx + 1 < con.cols)
		con.cx++;
	else
		con.wrap_next = true;
}

static int param(int i, int dflt) { return i < con.nparams && con.params[i] > 0 ? con.params[i] : dflt; }

static uint32_t clamp(int64_t v, uint32_t max) { return v < 0 ? 0 : v >= max ? max - 1 : (uint32_t)v; }

static void sgr(void)
{
	if (con.nparams == 0)
		con.nparams = 1, con.params[0] = 0;
	for (int i = 0; i < con.nparams; i++) {
		int p = con.params[i];
		if (p == 0)
			con.fg = DEFAULT_FG, con.bg = DEFAULT_BG, con.bold = false;
		else if (p == 1)
			con.bold = true;
		else if (p == 22)
			con.bold = false;
		else if (p >= 30 && p <= 37)
			con.fg = (uint8_t)(p - 30);
		else if (p == 39)
			con.fg = DEFAULT_FG;
		else if (p >= 40 && p <= 47)
			con.bg = (uint8_t)(p - 40);
		else if (p == 49)
			con.bg = DEFAULT_BG;
		else if (p >= 90 && p <= 97)
			con.fg = (uint8_t)(p - 90 + 8);
		else if (p >= 100 && p <= 107)
			con.bg = (uint8_t)(p - 100 + 8);
		/* others (underline, blink, 256 colours) are ignored */
	}
}

/* The final byte of a CSI sequence: ESC [ params final. */
static void csi(uint8_t final)
{
	con.wrap_next = false;
	switch (final) {
	case 'A': /* cursor up */
		con.cy = clamp((int64_t)con.cy - param(0, 1), con.rows);
		break;
	case 'B': /* down */
		con.cy = clamp((int64_t)con.cy + param(0, 1), con.rows);
		break;
	case 'C': /* forward */
		con.cx = clamp((int64_t)con.cx + param(0, 1), con.cols);
		break;
	case 'D': /* back */
		con.cx = clamp((int64_t)con.cx - param(0, 1), con.cols);
		break;
	case 'G': /* column */
		con.cx = clamp(param(0, 1) - 1, con.cols);
		break;
	case 'H': /* position: row;column, from 1 */
	case 'f':
		con.cy = clamp(param(0, 1) - 1, con.rows);
		con.cx = clamp(param(1, 1) - 1, con.cols);
		break;
	case 'J': /* erase in display: 0 to the end, 1 to the cursor, 2 all */
		switch (con.nparams ? con.params[0] : 0) {
		case 0:
			clear_cells(con.cy, con.cx, con.cols);
			for (uint32_t y = con.cy + 1; y < con.rows; y++)
				clear_cells(y, 0, con.cols);
			break;
		case 1:
			for (uint32_t y = 0; y < con.cy; y++)
				clear_cells(y, 0, con.cols);
			clear_cells(con.cy, 0, con.cx + 1);
			break;
		default:
			for (uint32_t y = 0; y < con.rows; y++)
				clear_cells(y, 0, con.cols);
		}
		break;
	case 'K': /* erase in line */
		switch (con.nparams ? con.params[0] : 0) {
		case 0:
			clear_cells(con.cy, con.cx, con.cols);
			break;
		case 1:
			clear_cells(con.cy, 0, con.cx + 1);
			break;
		default:
			clear_cells(con.cy, 0, con.cols);
		}
		break;
	case 'm':
		sgr();
		break;
	default: /* not understood: ignored, as a terminal does */
		break;
	}
}

static void byte(uint8_t c)
{
	switch (con.state) {
	case S_ESC:
		if (c == '[') {
			con.state = S_CSI;
			con.nparams = 0;
			memset(con.params, 0, sizeof(con.params));
		} else {
			con.state = S_TEXT; /* other escapes are ignored */
		}
		return;
	case S_CSI:
		if (c >= '0' && c <= '9') {
			if (con.nparams == 0)
				con.nparams = 1;
			int *p = &con.params[con.nparams - 1];
			if (*p < 10000) /* bounded: a hostile program cannot overflow it */
				*p = *p * 10 + (c - '0');
		} else if (c == ';') {
			if (con.nparams == 0)
				con.nparams = 1;
			if (con.nparams < MAX_PARAMS)
				con.nparams++;
		} else if (c == '?' || c == '>' || c == '=') {
			/* private sequences: parsed, then ignored by csi() */
		} else if (c >= 0x40 && c <= 0x7e) {
			con.state = S_TEXT;
			csi(c);
		} else {
			con.state = S_TEXT;
		}
		return;
	}
	switch (c) {
	case '\033':
		con.state = S_ESC;
		break;
	case '\n':
		con.cx = 0; /* the console translates LF to CR LF, as on serial */
		newline();
		break;
	case '\r':
		con.cx = 0;
		con.wrap_next = false;
		break;
	case '\b':
		if (con.cx > 0)
			con.cx--;
		con.wrap_next = false;
		break;
	case '\t':
		while (con.cx + 1 < con.cols && (con.cx + 1) % 8 != 0)
			con.cx++;
		if (con.cx + 1 < con.cols)
			con.cx++;
		break;
	case '\a':
		break;
	default:
		if (c >= 0x20 && c != 0x7f)
			printable(c);
	}
}

/* ---- the cursor and the flush ---------------------------------------------------------- */

static void hide_cursor(void)
{
	if (con.cursor_shown && !con.app)
		draw_cell(con.cur_x, con.cur_y, false);
	con.cursor_shown = false;
}

static void show_cursor(void)
{
	if (con.app)
		return;
	con.cur_x = con.cx;
	con.cur_y = con.cy;
	draw_cell(con.cur_x, con.cur_y, true);
	con.cursor_shown = true;
}

static void flush(void)
{
	if (con.dx0 >= con.dx1 || con.app)
		return;
	uint32_t fw = fbcon_font_width, fh = fbcon_font_height;
	if (virtio_gpu_flush(con.dx0 * fw, con.dy0 * fh, (con.dx1 - con.dx0) * fw, (con.dy1 - con.dy0) * fh) == -EBUSY)
		return; /* a write from inside the GPU's own wait: the next write flushes it */
	con.dx0 = con.dx1 = 0;
}

/* Sizes the grid to the framebuffer; the old text is kept where it fits. */
static bool layout(void)
{
	struct virtio_gpu_fb fb;
	if (virtio_gpu_fb(&fb) != 0)
		return false;
	uint32_t cols = fb.width / fbcon_font_width, rows = fb.height / fbcon_font_height;
	if (cols == 0 || rows == 0)
		return false;
	size_t pages = ((size_t)cols * rows * sizeof(struct cell) + PAGE_SIZE - 1) / PAGE_SIZE;
	struct cell *cells = page_alloc(pages);
	if (!cells)
		return false;
	for (size_t i = 0; i < (size_t)cols * rows; i++)
		cells[i] = (struct cell){' ', DEFAULT_FG, DEFAULT_BG};
	if (con.cells) {
		/* Keep the bottom lines, which hold the cursor. */
		uint32_t skip = con.cy >= rows ? con.cy - rows + 1 : 0;
		for (uint32_t y = skip; y < con.rows && y - skip < rows; y++)
			for (uint32_t x = 0; x < con.cols && x < cols; x++)
				cells[(size_t)(y - skip) * cols + x] = con.cells[(size_t)y * con.cols + x];
		con.cy -= skip;
		page_free(con.cells, con.cell_pages);
	}
	con.cells = cells;
	con.cell_pages = pages;
	con.cols = cols;
	con.rows = rows;
	con.cx = con.cx < cols ? con.cx : cols - 1;
	con.fb = fb;
	con.cursor_shown = false;
	if (!con.app) {
		redraw_all();
		damage(0, 0, cols, rows);
	}
	return true;
}

void fbcon_write(const char *s, size_t n)
{
	if (!con.on)
		return;
	if (con.inside) {
		/* From inside our own flush's wait (a log line from a driver):
		 * cells only; the outer write flushes them. */
		for (size_t i = 0; i < n; i++)
			byte((uint8_t)s[i]);
		return;
	}
	con.inside = true;
	struct virtio_gpu_fb fb;
	if (virtio_gpu_fb(&fb) != 0) {
		con.on = false; /* the GPU broke: the serial console carries on */
		con.inside = false;
		return;
	}
	if (fb.generation != con.fb.generation)
		layout();
	hide_cursor();
	for (size_t i = 0; i < n; i++)
		byte((uint8_t)s[i]);
	show_cursor();
	flush();
	con.inside = false;
}

bool fbcon_init(void)
{
	con.fg = DEFAULT_FG;
	con.bg = DEFAULT_BG;
	if (!layout())
		return false;
	con.on = true;
	if (early_lost)
		fbcon_write("[... earlier log lines lost]\n", 29);
	fbcon_write(early, early_len);
	early_len = 0;
	return true;
}

/* ---- <ringlet/fb.h> ----------------------------------------------------------------------- */

int fb_open(struct fb *out)
{
	struct virtio_gpu_fb fb;
	virtio_gpu_check_display();
	int err = virtio_gpu_fb(&fb);
	if (err)
		return err;
	con.app = true;
	hide_cursor();
	*out = (struct fb){.pixels = fb.pixels,
	                   .width = fb.width,
	                   .height = fb.height,
	                   .stride = fb.stride,
	                   .format = FB_FORMAT_XRGB8888,
	                   .generation = fb.generation};
	return 0;
}

int fb_flush(const struct fb *f, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
	struct virtio_gpu_fb fb;
	int err = virtio_gpu_fb(&fb);
	if (err)
		return err;
	if (f->generation != fb.generation)
		return -ESTALE; /* the display was resized: fb_open() again */
	return virtio_gpu_flush(x, y, w, h);
}

void fb_close(void)
{
	if (!con.app)
		return;
	con.app = false;
	if (!con.on)
		return;
	struct virtio_gpu_fb fb;
	if (virtio_gpu_fb(&fb) != 0)
		return;
	if (fb.generation != con.fb.generation)
		layout();
	else {
		redraw_all();
		damage(0, 0, con.cols, con.rows);
	}
	show_cursor();
	flush();
}
