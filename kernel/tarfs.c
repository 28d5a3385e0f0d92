/*
 * kernel/tarfs.c: the index of a read-only tar filesystem.
 * Implements: POSIX.1-2017 pax, "ustar Interchange Format" and "pax Header
 *             Block" / "pax Extended Header"; GNU tar's 'L' long names
 *             and base-256 numbers (GNU tar manual, "Basic Tar Format").
 * Try it:     tar -cf site.tar -C docs . && scripts/run --disk site.tar httpd
 *
 * tarfs_build() walks the headers once, at mount time, and keeps for each
 * file and directory where its data starts and how long it is; reading a
 * file later is then one disk read at a known offset. Nothing in the archive
 * is trusted: every header's checksum is checked, every size is checked
 * against the end of the archive before anything is skipped over, names are
 * normalised and those that would leave the root (".." components, absolute
 * paths) are skipped, and pax records are parsed against their own stated
 * lengths. A problem that makes the rest of the archive unreadable (a bad
 * checksum, an entry running past the end) refuses the whole archive; one
 * that concerns a single entry skips that entry. Each is logged.
 *
 * No kernel services but malloc: the host tests and fuzz_tar use this file
 * as it is.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tarfs.h"

#define BLOCK        512
#define MAX_META     65536                   /* bytes of a pax header or GNU long name we read */
#define MAX_ALL      (4 * TARFS_MAX_ENTRIES) /* entries with the implicit directories */
#define SEQ_IMPLICIT 0                       /* a directory only named as some entry's parent */

/* The ustar header (POSIX "ustar Interchange Format"): offsets in the block. */
#define H_NAME     0   /* [100] */
#define H_MODE     100 /* [8] */
#define H_SIZE     124 /* [12] */
#define H_MTIME    136 /* [12] */
#define H_CHKSUM   148 /* [8] */
#define H_TYPEFLAG 156
#define H_MAGIC    257 /* [6] "ustar\0" (POSIX) or "ustar " (GNU) */
#define H_PREFIX   345 /* [155], POSIX ustar only */

struct raw {
	char *path;
	uint64_t offset, size;
	int64_t mtime;
	uint32_t mode;
	bool dir;
	size_t seq; /* header number from 1; SEQ_IMPLICIT for parents nobody named */
};

struct builder {
	struct raw *r;
	size_t n, cap;
	void (*log)(const char *fmt, ...);
	unsigned skipped;
};

#define LOG(b, ...)                                                                                                    \
	do {                                                                                                           \
		if ((b)->log)                                                                                          \
			(b)->log(__VA_ARGS__);                                                                         \
	} while (0)

bool tarfs_number(const uint8_t *f, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	if (len && (f[0] & 0x80)) {
		/* GNU base-256: big-endian, the top bit of the first byte marks it,
		 * the next one is the sign. Negative sizes and times are refused. */
		if (f[0] & 0x40)
			return false;
		v = f[0] & 0x3f;
		for (size_t i = 1; i < len; i++) {
			if (v >> 55)
				return false; /* would not fit 63 bits */
			v = v << 8 | f[i];
		}
		*out = v;
		return true;
	}
	size_t i = 0;
	while (i < len && f[i] == ' ')
		i++;
	for (; i < len && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v >> 60)
			return false;
		v = v << 3 | (uint64_t)(f[i] - '0');
	}
	/* POSIX: "terminated by one or more <space> or NUL characters". */
	for (; i < len; i++)
		if (f[i] != ' ' && f[i] != '\0')
			return false;
	*out = v;
	return true;
}

/* POSIX: "the simple sum of all bytes in the header logical record", the
 * chksum field taken as spaces. Old archives summed signed chars; both pass. */
static bool checksum_ok(const uint8_t *h)
{
	uint64_t want;
	if (!tarfs_number(h + H_CHKSUM, 8, &want))
		return false;
	uint64_t u = 0;
	int64_t s = 0;
	for (int i = 0; i < BLOCK; i++) {
		uint8_t c = i >= H_CHKSUM && i < H_CHKSUM + 8 ? ' ' : h[i];
		u += c;
		s += (int8_t)c;
	}
	return u == want || (uint64_t)s == want;
}

static bool all_zero(const uint8_t *h)
{
	for (int i = 0; i < BLOCK; i++)
		if (h[i])
			return false;
	return true;
}

/* Normalises a name into out: components split on '/', "" and "." dropped.
 * Returns false for an absolute path, a ".." component, a NUL inside, or one
 * too long: such an entry would leave the root or cannot be named. */
static bool normalise(const char *in, size_t len, char *out, size_t cap, const char **why)
{
	size_t o = 0;
	if (len && in[0] == '/') {
		*why = "an absolute path";
		return false;
	}
	if (memchr(in, '\0', len)) {
		*why = "a NUL inside the name";
		return false;
	}
	for (size_t i = 0; i < len;) {
		size_t j = i;
		while (j < len && in[j] != '/')
			j++;
		size_t c = j - i;
		if (c == 2 && in[i] == '.' && in[i + 1] == '.') {
			*why = "a '..' component";
			return false;
		}
		if (c && !(c == 1 && in[i] == '.')) {
			if (o + (o ? 1 : 0) + c + 1 > cap) {
				*why = "a name too long";
				return false;
			}
			if (o)
				out[o++] = '/';
			memcpy(out + o, in + i, c);
			o += c;
		}
		i = j + 1;
	}
	out[o] = '\0';
	return true;
}

static int push(struct builder *b, const char *path, size_t seq, bool dir, uint64_t offset, uint64_t size,
                int64_t mtime, uint32_t mode)
{
	if (b->n >= MAX_ALL)
		return -E2BIG;
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct raw *r = realloc(b->r, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		b->r = r;
		b->cap = cap;
	}
	char *p = strdup(path);
	if (!p)
		return -ENOMEM;
	b->r[b->n++] = (struct raw){
	    .path = p, .offset = offset, .size = size, .mtime = mtime, .mode = mode, .dir = dir, .seq = seq};
	return 0;
}

/* pax extended header records: "%d %s=%s\n", the length counting itself
 * and the newline. A record whose length runs past the header, is too
 * short to hold its own digits, or does not end in '\n' is a lie: the
 * whole header is then refused (its entry skipped). */
struct pax {
	char *path;
	size_t path_len;
	bool has_size, has_mtime;
	uint64_t size;
	int64_t mtime;
};

static bool pax_decimal(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > 19)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > INT64_MAX)
		return false;
	*out = v;
	return true;
}

static bool pax_parse(char *buf, size_t n, struct pax *px)
{
	size_t pos = 0;
	while (pos < n) {
		size_t d = 0, len = 0;
		while (pos + d < n && buf[pos + d] >= '0' && buf[pos + d] <= '9' && d < 20) {
			len = len * 10 + (size_t)(buf[pos + d] - '0');
			d++;
		}
		if (d == 0 || d >= 20 || pos + d >= n || buf[pos + d] != ' ')
			return false;
		if (len < d + 3 || len > n - pos || buf[pos + len - 1] != '\n')
			return false; /* at least "N k\n" with '=': checked below */
		char *key = buf + pos + d + 1;
		char *end = buf + pos + len - 1; /* the '\n' */
		char *eq = memchr(key, '=', (size_t)(end - key));
		if (!eq || eq == key)
			return false;
		char *val = eq + 1;
		size_t klen = (size_t)(eq - key), vlen = (size_t)(end - val);
		if (klen == 4 && memcmp(key, "path", 4) == 0) {
			px->path = val;
			px->path_len = vlen;
		} else if (klen == 4 && memcmp(key, "size", 4) == 0) {
			if (!pax_decimal(val, vlen, &px->size))
				return false;
			px->has_size = true;
		} else if (klen == 5 && memcmp(key, "mtime", 5) == 0) {
			/* "seconds[.fraction]", maybe negative: the seconds are kept. */
			size_t i = 0;
			bool neg = vlen && val[0] == '-';
			i = neg;
			size_t digits = 0;
			while (i + digits < vlen && val[i + digits] >= '0' && val[i + digits] <= '9')
				digits++;
			uint64_t s;
			if (!pax_decimal(val + i, digits, &s))
				return false;
			px->mtime = neg ? -(int64_t)s : (int64_t)s;
			px->has_mtime = true;
		}
		pos += len;
	}
	return true;
}

/* Reads n (at most MAX_META) bytes of meta-data into a fresh NUL-terminated buffer. */
static int read_meta(tarfs_read_fn read, void *ctx, uint64_t off, uint64_t n, char **out)
{
	char *m = malloc(n + 1);
	if (!m)
		return -ENOMEM;
	int err = n ? read(ctx, off, m, n) : 0;
	if (err < 0) {
		free(m);
		return err;
	}
	m[n] = '\0';
	*out = m;
	return 0;
}

static int cmp_raw(const void *a, const void *b)
{
	const struct raw *x = a, *y = b;
	int c = strcmp(x->path, y->path);
	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct tarfs_entry *)a)->path, ((const struct tarfs_entry *)b)->path);
}

/* Adds every parent directory of every entry that nobody named. */
static int add_parents(struct builder *b)
{
	char path[TARFS_MAX_PATH + 1];
	size_t n = b->n;
	int err = push(b, "", SEQ_IMPLICIT, true, 0, 0, 0, 0755);
	for (size_t i = 0; i < n && !err; i++) {
		strcpy(path, b->r[i].path);
		for (char *s = strrchr(path, '/'); s && !err; s = strrchr(path, '/')) {
			*s = '\0';
			/* The previous entry usually lies under the same directory, whose
			 * parents were added for it: skip the repeats. (Only under it: a
			 * previous entry that is this very path may be a file.) */
			size_t l = strlen(path);
			if (i && strncmp(b->r[i - 1].path, path, l) == 0 && b->r[i - 1].path[l] == '/')
				break;
			err = push(b, path, SEQ_IMPLICIT, true, 0, 0, b->r[i].mtime, 0755);
		}
	}
	return err;
}

/* Sorts, and keeps one entry per path: a directory wins over a file of the
 * same name (the file could not be reached under it anyway), and among
 * files, as tar extracts them, the last one in the archive. */
static int finish(struct builder *b, struct tarfs *fs)
{
	qsort(b->r, b->n, sizeof(*b->r), cmp_raw);
	fs->e = calloc(b->n ? b->n : 1, sizeof(*fs->e));
	if (!fs->e)
		return -ENOMEM;
	for (size_t i = 0; i < b->n;) {
		size_t j = i;
		bool dir = false;
		for (; j < b->n && strcmp(b->r[j].path, b->r[i].path) == 0; j++)
			dir |= b->r[j].dir;
		/* Sorted by header number, implicit directories first: the last
		 * file, or the last directory an entry of its own named. */
		size_t keep = j;
		for (size_t k = i; k < j; k++)
			if (b->r[k].dir == dir && (keep == j || !dir || b->r[k].seq != SEQ_IMPLICIT))
				keep = k;
		for (size_t k = i; k < j; k++) {
			if (k == keep || b->r[k].seq == SEQ_IMPLICIT || b->r[k].dir)
				continue;
			LOG(b, "tarfs: entry %zu '%s': %s (skipped)", b->r[k].seq, b->r[k].path,
			    dir ? "a file where a directory is" : "a duplicate name; the later entry is kept");
			b->skipped++;
		}
		struct raw *r = &b->r[keep];
		fs->e[fs->n++] = (struct tarfs_entry){.path = r->path,
		                                      .offset = r->offset,
		                                      .size = r->dir ? 0 : r->size,
		                                      .mtime = r->mtime,
		                                      .mode = r->mode & 07777,
		                                      .dir = r->dir};
		if (!r->dir)
			fs->data_bytes += r->size;
		r->path = NULL; /* now the index's */
		i = j;
	}
	return 0;
}

static void builder_free(struct builder *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->r[i].path);
	free(b->r);
}

int tarfs_build(struct tarfs *fs, tarfs_read_fn read, void *ctx, uint64_t size, void (*log)(const char *fmt, ...))
{
	struct builder b = {.log = log};
	uint8_t h[BLOCK];
	char name[TARFS_MAX_PATH + 1], raw[256 + 2];
	char *longname = NULL, *paxbuf = NULL;
	struct pax px = {0};
	bool skip_next = false; /* the meta-data for the next entry was refused */
	size_t seq = 0, headers = 0;
	int zeros = 0, err = 0;
	uint64_t off = 0;

	memset(fs, 0, sizeof(*fs));
	while (size - off >= BLOCK && zeros < 2) {
		if ((err = read(ctx, off, h, BLOCK)) < 0)
			goto out;
		if (all_zero(h)) {
			zeros++; /* POSIX: two zero blocks end the archive */
			off += BLOCK;
			continue;
		}
		zeros = 0;
		seq++;
		if (++headers > TARFS_MAX_ENTRIES) {
			LOG(&b, "tarfs: more than %d entries (refused)", TARFS_MAX_ENTRIES);
			err = -E2BIG;
			goto out;
		}
		if (!checksum_ok(h)) {
			LOG(&b, "tarfs: header %zu at byte %llu: bad checksum (refused)", seq, (unsigned long long)off);
			err = -EINVAL;
			goto out;
		}
		uint64_t len, mtime, mode;
		if (!tarfs_number(h + H_SIZE, 12, &len) || !tarfs_number(h + H_MTIME, 12, &mtime) ||
		    !tarfs_number(h + H_MODE, 8, &mode)) {
			LOG(&b, "tarfs: header %zu: a number field is not a number (refused)", seq);
			err = -EINVAL;
			goto out;
		}
		char type = (char)h[H_TYPEFLAG];
		bool meta = type == 'L' || type == 'K' || type == 'x' || type == 'g';
		if (!meta && px.has_size)
			len = px.size; /* pax "size" overrides the header's */
		uint64_t data = off + BLOCK;
		/* The data, rounded up to whole blocks, must lie inside the archive:
		 * nothing past the end is ever read, or skipped to. */
		if (len > size - data || ((len + BLOCK - 1) & ~(uint64_t)(BLOCK - 1)) > size - data) {
			LOG(&b, "tarfs: header %zu: %llu bytes of data run past the end of the archive (refused)", seq,
			    (unsigned long long)len);
			err = -EINVAL;
			goto out;
		}
		uint64_t next = data + ((len + BLOCK - 1) & ~(uint64_t)(BLOCK - 1));

		if (type == 'L' || type == 'x') {
			char **dst = type == 'L' ? &longname : &paxbuf;
			if (type == 'x')
				memset(&px, 0, sizeof(px)); /* it points into the buffer freed next */
			free(*dst);
			*dst = NULL;
			if (len > MAX_META) {
				LOG(&b, "tarfs: header %zu: %llu bytes of %s (skipped, with its entry)", seq,
				    (unsigned long long)len, type == 'L' ? "long name" : "pax records");
				skip_next = true;
			} else if ((err = read_meta(read, ctx, data, len, dst)) < 0) {
				goto out;
			} else if (type == 'x') {
				memset(&px, 0, sizeof(px));
				if (!pax_parse(paxbuf, len, &px)) {
					LOG(&b,
					    "tarfs: header %zu: pax records that lie about their length (skipped, with "
					    "its entry)",
					    seq);
					memset(&px, 0, sizeof(px));
					skip_next = true;
				}
			}
			off = next;
			continue;
		}
		if (meta) { /* 'K' long link names, 'g' global pax headers: nothing we use */
			off = next;
			continue;
		}

		/* The entry's name: pax path, GNU long name, or ustar prefix/name. */
		const char *nm;
		size_t nlen;
		if (px.path) {
			nm = px.path;
			nlen = px.path_len;
		} else if (longname) {
			nm = longname;
			nlen = strnlen(longname, MAX_META);
		} else {
			size_t pl = memcmp(h + H_MAGIC, "ustar\0", 6) == 0 ? strnlen((char *)h + H_PREFIX, 155) : 0;
			size_t l = strnlen((char *)h + H_NAME, 100);
			memcpy(raw, h + H_PREFIX, pl);
			nlen = pl;
			if (pl)
				raw[nlen++] = '/';
			memcpy(raw + nlen, h + H_NAME, l);
			nlen += l;
			nm = raw;
		}
		if (px.has_mtime)
			mtime = (uint64_t)px.mtime;
		const char *why = NULL;
		bool file = type == '0' || type == '\0' || type == '7';
		if (skip_next)
			why = "its extended header was refused";
		else if (!file && type != '5')
			why = type == '1' || type == '2' ? "a link (not supported)" : "not a file or directory";
		else if (!normalise(nm, nlen, name, sizeof(name), &why))
			;
		else if (file && !name[0])
			why = "a file without a name";
		if (why) {
			char shown[201]; /* the name, cut short for the log */
			size_t sl = nlen < sizeof(shown) - 1 ? nlen : sizeof(shown) - 1;
			memcpy(shown, nm, sl);
			shown[sl] = '\0';
			LOG(&b, "tarfs: entry %zu '%s': %s (skipped)", seq, shown, why);
			b.skipped++;
		} else if ((err = push(&b, name, seq, !file, data, len, (int64_t)mtime, (uint32_t)mode)) < 0) {
			goto out;
		}
		free(longname);
		free(paxbuf);
		longname = paxbuf = NULL;
		memset(&px, 0, sizeof(px));
		skip_next = false;
		off = next;
	}
	if (zeros < 2 && log)
		log("tarfs: no end-of-archive marker: the archive may be truncated");
	if (seq == 0) {
		LOG(&b, "tarfs: not a tar archive (no header)");
		err = -EINVAL;
		goto out;
	}
	if ((err = add_parents(&b)) < 0 || (err = finish(&b, fs)) < 0)
		goto out;
	fs->skipped = b.skipped;
out:
	free(longname);
	free(paxbuf);
	builder_free(&b);
	if (err < 0)
		tarfs_free(fs);
	return err;
}

void tarfs_free(struct tarfs *fs)
{
	for (size_t i = 0; i < fs->n; i++)
		free((char *)fs->e[i].path);
	free(fs->e);
	memset(fs, 0, sizeof(*fs));
}

const struct tarfs_entry *tarfs_lookup(const struct tarfs *fs, const char *path)
{
	struct tarfs_entry key = {.path = path};
	return fs->n ? bsearch(&key, fs->e, fs->n, sizeof(*fs->e), cmp_entry) : NULL;
}

/* The first index whose path is >= s. */
static size_t lower_bound(const struct tarfs *fs, const char *s)
{
	size_t lo = 0, hi = fs->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(fs->e[mid].path, s) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct tarfs_entry *tarfs_next_child(const struct tarfs *fs, const struct tarfs_entry *d, size_t *cookie)
{
	size_t plen = strlen(d->path);
	size_t i = *cookie;
	if (i == 0) {
		/* Children sort after "P/" (not right after "P": "P-x" comes between). */
		char key[TARFS_MAX_PATH + 2];
		if (plen + 2 > sizeof(key))
			return NULL;
		memcpy(key, d->path, plen);
		key[plen] = '/';
		key[plen + 1] = '\0';
		i = plen ? lower_bound(fs, key) : 1;
	}
	for (; i < fs->n; i++) {
		const char *p = fs->e[i].path;
		if (plen && (strncmp(p, d->path, plen) != 0 || p[plen] != '/'))
			break; /* past the run of "P/..." */
		if (!strchr(p + (plen ? plen + 1 : 0), '/')) {
			*cookie = i + 1;
			return &fs->e[i];
		}
	}
	*cookie = fs->n;
	return NULL;
}
