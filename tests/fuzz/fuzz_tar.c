/*
 * fuzz_tar: libFuzzer target for kernel/tarfs.c, the tar index built from a
 * disk's contents at mount time (ustar and GNU headers, 'L' long names, pax
 * extended headers and their records, GNU base-256 numbers).
 *
 *	make fuzz FUZZ=tar FUZZ_SECONDS=300
 *
 * The input is the disk. The read callback aborts on any read outside it
 * (the index must never ask for one); every indexed entry's data must lie
 * inside the disk, its path must be normalised (no "", ".", ".." components,
 * no leading '/'), lookups must find every entry, and listing every directory
 * must visit each entry exactly once as someone's child.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tarfs.h"

struct disk {
	const uint8_t *p;
	size_t size;
};

static int rd(void *ctx, uint64_t off, void *buf, size_t n)
{
	struct disk *d = ctx;
	if (off > d->size || n > d->size - off)
		abort(); /* a read outside the disk */
	memcpy(buf, d->p + off, n);
	return 0;
}

/* The messages are formatted as the kernel's log would (so their arguments are read), then dropped. */
static void log_line(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
}

static void check_path(const char *p)
{
	if (p[0] == '/')
		abort();
	for (const char *s = p; *s;) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			abort();
		s += n + (e ? 1 : 0);
		if (e && !*s)
			abort(); /* a trailing '/' */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct disk d = {data, size};
	struct tarfs fs;
	uint64_t v;
	if (size >= 12)
		(void)tarfs_number(data, 12, &v);
	if (tarfs_build(&fs, rd, &d, size, log_line) < 0) {
		if (fs.n || fs.e)
			abort(); /* refused: nothing left behind */
		return 0;
	}
	if (fs.n == 0 || fs.e[0].path[0] || !fs.e[0].dir)
		abort(); /* the root comes first */
	size_t *seen = calloc(fs.n, sizeof(*seen));
	for (size_t i = 0; i < fs.n; i++) {
		const struct tarfs_entry *e = &fs.e[i];
		check_path(e->path);
		if (i && strcmp(fs.e[i - 1].path, e->path) >= 0)
			abort(); /* sorted, one entry per path */
		if (!e->dir && (e->offset > size || e->size > size - e->offset))
			abort(); /* data outside the disk */
		if (tarfs_lookup(&fs, e->path) != e)
			abort();
		if (e->dir) {
			size_t cookie = 0;
			for (const struct tarfs_entry *c; (c = tarfs_next_child(&fs, e, &cookie));)
				seen[c - fs.e]++;
		}
	}
	for (size_t i = 1; i < fs.n; i++)
		if (seen[i] != 1)
			abort(); /* every entry but the root is exactly one directory's child */
	free(seen);
	tarfs_free(&fs);
	return 0;
}
