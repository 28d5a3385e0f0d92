/*
 * kernel/fs.c: tar archives on disks as read-only directories.
 *
 * ringlet_mount_tar() indexes the archive (kernel/tarfs.c) and mounts the
 * index in the system-call layer's table (kernel/syscalls.c, fd_mount());
 * open() of a path under the mount point then lands in tar_open() here, and
 * read()/pread() of the file become one disk read at the data's offset,
 * clipped to the file's size: a file can never reach past its own data.
 *
 * Try it: scripts/run --disk site.tar --append mount=/www:vda httpd
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ringlet/blk.h>
#include <ringlet/fs.h>

#include "fd.h"
#include "kernel.h"
#include "tarfs.h"

#define MAX_MOUNTS 8

ssize_t blk_pread(int disk, void *buf, size_t n, uint64_t off); /* kernel/blk.c */

struct tar_mount {
	struct tarfs idx;
	int disk;
	char disk_name[8];
};

/* One open file or directory. */
struct tar_file {
	struct tar_mount *m;
	const struct tarfs_entry *e;
};

static struct tar_mount mounts[MAX_MOUNTS];
static int nmounts;

/* The index is built from 512-byte headers read one by one: they come
 * through a 64 KiB window, so a mount costs a disk request per 128 headers
 * rather than one per header. */
#define WINDOW (64 * 1024)
static uint8_t *window;
static uint64_t window_off = UINT64_MAX, window_len;

static int disk_read(void *ctx, uint64_t off, void *buf, size_t n)
{
	struct tar_mount *m = ctx;
	if (n <= 512 && window) {
		if (off < window_off || off + n > window_off + window_len) {
			ssize_t r = blk_pread(m->disk, window, WINDOW, off);
			if (r < 0)
				return (int)r;
			window_off = off;
			window_len = (uint64_t)r;
			if (n > window_len)
				return -EIO;
		}
		memcpy(buf, window + (off - window_off), n);
		return 0;
	}
	ssize_t r = blk_pread(m->disk, buf, n, off);
	return r < 0 ? (int)r : (size_t)r == n ? 0 : -EIO;
}

static ssize_t tar_read(void *ctx, void *buf, size_t n, uint64_t off)
{
	struct tar_file *f = ctx;
	if (f->e->dir)
		return -EISDIR;
	if (off >= f->e->size)
		return 0;
	if (n > f->e->size - off)
		n = f->e->size - off;
	return blk_pread(f->m->disk, buf, n, f->e->offset + off);
}

static uint64_t tar_size(void *ctx) { return ((struct tar_file *)ctx)->e->size; }
static uint32_t tar_block_size(void *ctx)
{
	(void)ctx;
	return 512;
}

static int tar_stat(void *ctx, struct stat *st)
{
	struct tar_file *f = ctx;
	const struct tarfs_entry *e = f->e;
	memset(st, 0, sizeof(*st));
	st->st_ino = (ino_t)(e - f->m->idx.e) + 1;
	st->st_dev = (dev_t)(f->m - mounts) + 1;
	st->st_mode = (e->dir ? S_IFDIR : S_IFREG) | (e->mode & 0777 & ~0222); /* read-only */
	st->st_nlink = 1;
	st->st_size = (off_t)e->size;
	st->st_blksize = 512;
	st->st_blocks = (blkcnt_t)((e->size + 511) / 512);
	st->st_mtim.tv_sec = (time_t)e->mtime;
	st->st_atim = st->st_ctim = st->st_mtim;
	return 0;
}

static int tar_readdir(void *ctx, uint64_t *cookie, struct dirent *de)
{
	struct tar_file *f = ctx;
	if (!f->e->dir)
		return -ENOTDIR;
	size_t c = (size_t)*cookie;
	const struct tarfs_entry *e = tarfs_next_child(&f->m->idx, f->e, &c);
	*cookie = c;
	if (!e)
		return 0;
	const char *slash = strrchr(e->path, '/');
	const char *name = slash ? slash + 1 : e->path;
	memset(de, 0, sizeof(*de));
	de->d_ino = (ino_t)(e - f->m->idx.e) + 1;
	de->d_type = e->dir ? DT_DIR : DT_REG;
	strncpy(de->d_name, name, sizeof(de->d_name) - 1);
	return 1;
}

static int tar_close(void *ctx)
{
	free(ctx);
	return 0;
}

static const struct fd_ops tar_file_ops = {
    .read = tar_read,
    .close = tar_close,
    .size = tar_size,
    .block_size = tar_block_size,
    .stat = tar_stat,
    .readdir = tar_readdir,
};

static int tar_open(void *fs, const char *rel, int flags, const struct fd_ops **ops, void **ctx)
{
	struct tar_mount *m = fs;
	const struct tarfs_entry *e = tarfs_lookup(&m->idx, rel);
	if (!e)
		return (flags & O_CREAT) ? -EROFS : -ENOENT;
	if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC))
		return e->dir ? -EISDIR : -EROFS;
	if ((flags & O_DIRECTORY) && !e->dir)
		return -ENOTDIR;
	if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
		return -EEXIST;
	struct tar_file *f = malloc(sizeof(*f));
	if (!f)
		return -ENOMEM;
	*f = (struct tar_file){.m = m, .e = e};
	*ops = &tar_file_ops;
	*ctx = f;
	return 0;
}

static const struct fs_ops tar_fs_ops = {.open = tar_open};

static void log_line(const char *fmt, ...)
{
	char line[320];
	va_list ap;
	va_start(ap, fmt);
	kvsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	klog("%s", line);
}

int ringlet_mount_tar(const char *dir, const char *disk)
{
	if (!dir || dir[0] != '/' || !disk)
		return -EINVAL;
	if (strncmp(disk, "/dev/", 5) == 0)
		disk += 5;
	int which = -1;
	struct blk_info info;
	for (int i = 0; i < blk_count(); i++)
		if (blk_info(i, &info) == 0 && strcmp(info.name, disk) == 0)
			which = i;
	if (which < 0 || blk_info(which, &info) != 0)
		return -ENODEV;
	if (fd_mounted(dir))
		return -EBUSY;
	if (nmounts == MAX_MOUNTS)
		return -ENOSPC;
	struct tar_mount *m = &mounts[nmounts];
	memset(m, 0, sizeof(*m));
	m->disk = which;
	ksnprintf(m->disk_name, sizeof(m->disk_name), "%s", info.name);
	window = malloc(WINDOW); /* without it, one read per header */
	window_off = UINT64_MAX;
	int err = tarfs_build(&m->idx, disk_read, m, info.size, log_line);
	free(window);
	window = NULL;
	if (err < 0) {
		klog("tarfs: %s: %s is not mounted (error %d)", dir, info.name, err);
		return err;
	}
	if ((err = fd_mount(dir, &tar_fs_ops, m)) < 0) {
		tarfs_free(&m->idx);
		return err;
	}
	nmounts++;
	size_t dirs = 0;
	for (size_t i = 0; i < m->idx.n; i++)
		dirs += m->idx.e[i].dir;
	klog("tarfs: %s: %s mounted read-only, %lu files, %lu directories, %lu KiB%s", dir, info.name,
	     (unsigned long)(m->idx.n - dirs), (unsigned long)dirs, (unsigned long)(m->idx.data_bytes >> 10),
	     m->idx.skipped ? ", some entries skipped (above)" : "");
	return 0;
}

bool ringlet_mounted(const char *dir) { return fd_mounted(dir); }

/* The kernel option mount=DIR:DISK[,DIR:DISK...], before main(). */
void fs_mount_option(const char *opt)
{
	char buf[128];
	while (opt && *opt) {
		size_t n = strcspn(opt, ",");
		if (n < sizeof(buf)) {
			memcpy(buf, opt, n);
			buf[n] = '\0';
			char *colon = strchr(buf, ':');
			int err = colon ? (*colon = '\0', ringlet_mount_tar(buf, colon + 1)) : -EINVAL;
			if (err < 0)
				klog("mount=%.*s: failed (error %d)", (int)n, opt, err);
		}
		opt += n + (opt[n] == ',');
	}
}
