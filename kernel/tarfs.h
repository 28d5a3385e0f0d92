/*
 * kernel/tarfs.h: a read-only index of a tar archive (kernel/tarfs.c).
 *
 * The archive is read through a callback, so the same code indexes a disk in
 * the guest and a buffer in a host test or fuzzer. Paths in the index are
 * normalised ("a/b/c": no leading "/", no "." or empty components, never
 * "..") and sorted, so lookups are binary searches and a directory's
 * children are one run of the array. The root is the entry with path "".
 */
#ifndef RINGLET_TARFS_H
#define RINGLET_TARFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TARFS_MAX_ENTRIES 100000 /* an archive with more is refused */
#define TARFS_MAX_PATH    1024   /* longer names are skipped */

struct tarfs_entry {
	const char *path; /* normalised; the index's own copy */
	uint64_t offset;  /* of the data, bytes from the start of the archive */
	uint64_t size;    /* bytes (0 for a directory) */
	int64_t mtime;    /* seconds since 1970 */
	uint32_t mode;    /* permission bits */
	bool dir;
};

struct tarfs {
	struct tarfs_entry *e; /* sorted by path; e[0] is the root */
	size_t n;
	uint64_t data_bytes; /* sum of the file sizes */
	unsigned skipped;    /* entries left out (their reasons were logged) */
};

/* Reads n bytes at off into buf: 0, or a negative errno. */
typedef int (*tarfs_read_fn)(void *ctx, uint64_t off, void *buf, size_t n);

/* Indexes the archive of `size` bytes. Returns 0, or a negative errno with
 * fs left empty: -EINVAL (not a tar archive, a bad checksum, an entry that
 * runs past the end), -E2BIG (more than TARFS_MAX_ENTRIES), -ENOMEM, or the
 * read's error. Each problem is logged through log (NULL: silent). */
int tarfs_build(struct tarfs *fs, tarfs_read_fn read, void *ctx, uint64_t size, void (*log)(const char *fmt, ...));
void tarfs_free(struct tarfs *fs);

/* The entry for a normalised path, or NULL. */
const struct tarfs_entry *tarfs_lookup(const struct tarfs *fs, const char *path);
/* The next child of directory d after *cookie (start at 0), or NULL at the end. */
const struct tarfs_entry *tarfs_next_child(const struct tarfs *fs, const struct tarfs_entry *d, size_t *cookie);

/* Parses a number field of a tar header: octal (NUL- or space-terminated) or
 * GNU base-256; false when it is neither or does not fit 63 bits. */
bool tarfs_number(const uint8_t *f, size_t len, uint64_t *out);

#endif
