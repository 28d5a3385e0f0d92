/*
 * kernel/syscalls.c: the system calls newlib needs, by their POSIX names
 * (newlib's *-elf configuration calls write(), sbrk(), ... directly).
 *
 * There is no user mode and no process: a "system call" is a function call.
 * File descriptors 0-2 start as the serial console and close like any other
 * (the kernel's own log writes to the console directly); devices registered
 * with fd_register_device() (the disks: /dev/vda, ...) can be opened by
 * name, and paths under a mount point (fd_mount(): the tar filesystem,
 * kernel/fs.c) reach that filesystem, directories included (opendir()).
 * What Ringlet cannot do (fork, exec, links, ...) fails with ENOSYS.
 * Where POSIX leaves room, Linux's behaviour is the model (apps/posixedge
 * compares the two).
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/times.h>
#include <time.h>
#include <unistd.h>

#include "fd.h"
#include "kernel.h"
#include "wait.h"

#define MAX_FDS     512 /* select() sees the first FD_SETSIZE (64); poll() all: a server holds many */
#define MAX_DEVICES 32
#define MAX_MOUNTS  8
#define MAX_PATH    1024

struct open_file {
	const struct fd_ops *ops; /* NULL: the slot is free */
	void *ctx;
	uint64_t offset;
	int flags; /* O_RDONLY, O_WRONLY, O_RDWR, O_APPEND */
};

struct device {
	char path[64]; /* "/dev/virtio-ports/NAME" */
	const struct fd_ops *ops;
	void *ctx;
};

struct mount {
	char dir[64]; /* absolute, normalised; "" when the slot is free */
	const struct fs_ops *ops;
	void *fs;
};

static struct open_file files[MAX_FDS];
static struct device devices[MAX_DEVICES];
static struct mount mounts[MAX_MOUNTS];

/* ---- the console as a file --------------------------------------------- */

static ssize_t console_fd_read(void *ctx, void *buf, size_t n, uint64_t off)
{
	(void)ctx, (void)off;
	return (ssize_t)console_read(buf, n);
}

static ssize_t console_fd_write(void *ctx, const void *buf, size_t n, uint64_t off)
{
	(void)ctx, (void)off;
	console_write(buf, n);
	return (ssize_t)n;
}

/* Readable only when a byte waits, so that poll() on 0 beside sockets works. */
static short console_fd_poll(void *ctx)
{
	(void)ctx;
	return (short)(POLLOUT | (console_rx_ready() ? POLLIN : 0));
}

static const struct fd_ops console_ops = {
    .read = console_fd_read,
    .write = console_fd_write,
    .poll = console_fd_poll,
    .is_tty = true,
};

void fd_init(void)
{
	for (int i = 0; i < 3; i++)
		files[i] = (struct open_file){.ops = &console_ops, .flags = i == 0 ? O_RDONLY : O_WRONLY};
}

int fd_register_device(const char *path, const struct fd_ops *ops, void *ctx)
{
	for (int i = 0; i < MAX_DEVICES; i++)
		if (!devices[i].ops) {
			strncpy(devices[i].path, path, sizeof(devices[i].path) - 1);
			devices[i].ops = ops;
			devices[i].ctx = ctx;
			return 0;
		}
	return -ENOSPC;
}

static struct open_file *file_get(int fd)
{
	if (fd < 0 || fd >= MAX_FDS || !files[fd].ops) {
		errno = EBADF;
		return NULL;
	}
	return &files[fd];
}

/* ---- files ------------------------------------------------------------- */

/* ---- mount points --------------------------------------------------------- */

int fd_mount(const char *dir, const struct fs_ops *ops, void *fs)
{
	if (dir[0] != '/' || strlen(dir) >= sizeof(mounts[0].dir))
		return -EINVAL;
	if (fd_mounted(dir))
		return -EBUSY;
	for (int i = 0; i < MAX_MOUNTS; i++)
		if (!mounts[i].dir[0]) {
			strcpy(mounts[i].dir, dir);
			mounts[i].ops = ops;
			mounts[i].fs = fs;
			return 0;
		}
	return -ENOSPC;
}

bool fd_mounted(const char *dir)
{
	for (int i = 0; i < MAX_MOUNTS; i++)
		if (mounts[i].dir[0] && strcmp(mounts[i].dir, dir) == 0)
			return true;
	return false;
}

/* The path as an absolute one without "", "." or ".." components (the
 * working directory is always "/", and ".." of "/" is "/", as POSIX says):
 * "/www/../www//a/./b" is "/www/a/b". -ENAMETOOLONG, or 0. */
static int normalise(const char *in, char *out, size_t cap)
{
	size_t o = 0;
	out[o++] = '/';
	while (*in) {
		while (*in == '/')
			in++;
		size_t c = strcspn(in, "/");
		if (c == 0)
			break;
		if (c == 1 && in[0] == '.') {
			/* nothing */
		} else if (c == 2 && in[0] == '.' && in[1] == '.') {
			while (o > 1 && out[o - 1] != '/')
				o--;
			if (o > 1)
				o--; /* the slash before the last component */
		} else {
			if (o + (o > 1) + c + 1 > cap)
				return -ENAMETOOLONG;
			if (o > 1)
				out[o++] = '/';
			memcpy(out + o, in, c);
			o += c;
		}
		in += c;
	}
	out[o] = '\0';
	return 0;
}

/* The longest mount point that holds path (normalised), and the rest of the
 * path inside it ("" for the mount point itself); NULL when none does. */
static const struct mount *mount_find(const char *path, const char **rel)
{
	const struct mount *best = NULL;
	size_t best_len = 0;
	for (int i = 0; i < MAX_MOUNTS; i++) {
		size_t l = strlen(mounts[i].dir);
		bool holds = l == 1 || (l && strncmp(path, mounts[i].dir, l) == 0 && (!path[l] || path[l] == '/'));
		if (holds && l > best_len) {
			best = &mounts[i];
			best_len = l;
		}
	}
	if (best)
		*rel = path + (best_len == 1 ? 1 : best_len + (path[best_len] == '/'));
	return best;
}

/* A path under a mount point: the filesystem opens it. */
static int open_mounted(const char *path, int flags)
{
	char norm[MAX_PATH];
	const char *rel;
	int err = normalise(path, norm, sizeof(norm));
	if (err < 0)
		return err;
	const struct mount *m = mount_find(norm, &rel);
	if (!m)
		return -ENOENT;
	const struct fd_ops *ops;
	void *ctx;
	if ((err = m->ops->open(m->fs, rel, flags, &ops, &ctx)) < 0)
		return err;
	int fd = fd_install(ops, ctx, flags);
	if (fd < 0 && ops->close)
		ops->close(ctx);
	return fd;
}

int open(const char *path, int flags, ...)
{
	const struct device *d = NULL;
	if (!path) {
		errno = EFAULT;
		return -1;
	}
	if (!path[0]) {
		errno = ENOENT; /* POSIX: an empty path names nothing */
		return -1;
	}
	for (int i = 0; i < MAX_DEVICES; i++)
		if (devices[i].ops && strcmp(devices[i].path, path) == 0)
			d = &devices[i];
	if (!d) {
		int fd = open_mounted(path, flags);
		if (fd < 0) {
			errno = -fd;
			return -1;
		}
		return fd;
	}
	int acc = flags & O_ACCMODE;
	/* Every path there is exists already and none is a directory. */
	if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) {
		errno = EEXIST;
		return -1;
	}
	if (flags & O_DIRECTORY) {
		errno = ENOTDIR;
		return -1;
	}
	/* POSIX: "[EINVAL] The value of the oflag argument is not valid."
	 * (Linux instead opens mode 3 for neither reading nor writing.) */
	if (acc != O_RDONLY && acc != O_WRONLY && acc != O_RDWR) {
		errno = EINVAL;
		return -1;
	}
	if (acc != O_RDONLY && !d->ops->write) {
		errno = EROFS;
		return -1;
	}
	if (d->ops->open) {
		int err = d->ops->open(d->ctx, flags);
		if (err < 0) {
			errno = -err;
			return -1;
		}
	}
	int fd = fd_install(d->ops, d->ctx, flags);
	if (fd < 0) {
		if (d->ops->close)
			d->ops->close(d->ctx);
		errno = -fd;
		return -1;
	}
	return fd;
}

int fd_install(const struct fd_ops *ops, void *ctx, int flags)
{
	for (int fd = 0; fd < MAX_FDS; fd++)
		if (!files[fd].ops) {
			files[fd] = (struct open_file){.ops = ops, .ctx = ctx, .flags = flags};
			return fd;
		}
	return -EMFILE;
}

void *fd_ctx(int fd, const struct fd_ops *ops)
{
	struct open_file *f = file_get(fd);
	return f && f->ops == ops ? f->ctx : NULL;
}

short fd_poll(int fd)
{
	if (fd < 0 || fd >= MAX_FDS || !files[fd].ops)
		return POLLNVAL;
	const struct open_file *f = &files[fd];
	return f->ops->poll ? f->ops->poll(f->ctx) : POLLIN | POLLOUT;
}

/* F_GETFL and F_SETFL for every descriptor: only O_NONBLOCK and O_APPEND
 * change, as on Linux; the descriptor's ops hear of it (sockets wait or
 * not by it). Descriptors have no close-on-exec: there is no exec. */
int fcntl(int fd, int cmd, ...)
{
	struct open_file *f = file_get(fd);
	if (!f)
		return -1;
	va_list ap;
	va_start(ap, cmd);
	int arg = cmd == F_SETFL || cmd == F_SETFD ? va_arg(ap, int) : 0;
	va_end(ap);
	switch (cmd) {
	case F_GETFL:
		return f->flags;
	case F_SETFL: {
		const int changeable = O_NONBLOCK | O_APPEND;
		f->flags = (f->flags & ~changeable) | (arg & changeable);
		if (f->ops->set_flags)
			f->ops->set_flags(f->ctx, f->flags);
		return 0;
	}
	case F_GETFD:
	case F_SETFD:
		return 0;
	default:
		errno = EINVAL;
		return -1;
	}
}

int close(int fd)
{
	struct open_file *f = file_get(fd);
	if (!f)
		return -1;
	int err = f->ops->close ? f->ops->close(f->ctx) : 0;
	/* 0-2 too: the next open() takes the lowest free number, as POSIX
	 * asks. The console itself stays usable: klog() does not go
	 * through descriptors. */
	f->ops = NULL;
	if (err < 0) {
		errno = -err;
		return -1;
	}
	return 0;
}

/* read() and write() differ only in direction; so do pread() and pwrite(). */
static ssize_t do_io(struct open_file *f, bool write, void *buf, size_t n, uint64_t off)
{
	int refused = write ? O_RDONLY : O_WRONLY;
	if ((f->flags & O_ACCMODE) == refused || (write ? !f->ops->write : !f->ops->read)) {
		errno = EBADF;
		return -1;
	}
	if (n == 0)
		return 0; /* nothing to move, even past the end of a disk */
	ssize_t r = write ? f->ops->write(f->ctx, buf, n, off) : f->ops->read(f->ctx, buf, n, off);
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

static ssize_t stream_io(int fd, bool write, void *buf, size_t n)
{
	struct open_file *f = file_get(fd);
	if (!f)
		return -1;
	if (write && (f->flags & O_APPEND) && f->ops->size)
		f->offset = f->ops->size(f->ctx);
	ssize_t r = do_io(f, write, buf, n, f->offset);
	if (r > 0)
		f->offset += r;
	return r;
}

static ssize_t positioned_io(int fd, bool write, void *buf, size_t n, off_t off)
{
	/* The offset first, as Linux: a negative one is EINVAL even on a
	 * descriptor that is not open. */
	if (off < 0) {
		errno = EINVAL;
		return -1;
	}
	struct open_file *f = file_get(fd);
	if (!f)
		return -1;
	if (f->ops->is_tty) {
		errno = ESPIPE;
		return -1;
	}
	return do_io(f, write, buf, n, (uint64_t)off);
}

_READ_WRITE_RETURN_TYPE read(int fd, void *buf, size_t n) { return stream_io(fd, false, buf, n); }
_READ_WRITE_RETURN_TYPE write(int fd, const void *buf, size_t n) { return stream_io(fd, true, (void *)buf, n); }
ssize_t pread(int fd, void *buf, size_t n, off_t off) { return positioned_io(fd, false, buf, n, off); }
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) { return positioned_io(fd, true, (void *)buf, n, off); }

off_t lseek(int fd, off_t off, int whence)
{
	struct open_file *f = file_get(fd);
	if (!f)
		return -1;
	if (f->ops->is_tty) {
		errno = ESPIPE;
		return -1;
	}
	/* Offsets and sizes stay at most INT64_MAX (see virtio_blk_probe()),
	 * so base fits; base + off may not. Like Linux, a result that is
	 * negative or does not fit an off_t is EINVAL, and the offset stays. */
	int64_t base = whence == SEEK_SET                   ? 0
	               : whence == SEEK_CUR                 ? (int64_t)f->offset
	               : whence == SEEK_END && f->ops->size ? (int64_t)f->ops->size(f->ctx)
	                                                    : -1;
	int64_t pos;
	if (base < 0 || __builtin_add_overflow(base, (int64_t)off, &pos) || pos < 0) {
		errno = EINVAL;
		return -1;
	}
	f->offset = (uint64_t)pos;
	return (off_t)pos;
}

int fsync(int fd)
{
	struct open_file *f = file_get(fd);
	if (!f)
		return -1;
	/* Linux: EINVAL for "a special file which does not support
	 * synchronization" (the console, a socket). */
	int err = f->ops->fsync ? f->ops->fsync(f->ctx) : -EINVAL;
	if (err < 0) {
		errno = -err;
		return -1;
	}
	return 0;
}

int fstat(int fd, struct stat *st)
{
	struct open_file *f = file_get(fd);
	if (!f)
		return -1;
	if (f->ops->stat) {
		int err = f->ops->stat(f->ctx, st);
		if (err < 0) {
			errno = -err;
			return -1;
		}
		return 0;
	}
	memset(st, 0, sizeof(*st));
	if (f->ops->is_tty) {
		st->st_mode = S_IFCHR | 0620;
	} else {
		st->st_mode = S_IFBLK | 0660;
		st->st_size = f->ops->size ? (off_t)f->ops->size(f->ctx) : 0;
		st->st_blksize = f->ops->block_size ? f->ops->block_size(f->ctx) : 512;
		st->st_blocks = st->st_size / 512;
	}
	return 0;
}

int stat(const char *path, struct stat *st)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	int r = fstat(fd, st);
	close(fd);
	return r;
}

/* ---- directories (<dirent.h>) ---------------------------------------------- */

struct ringlet_dir {
	int fd;
	uint64_t cookie;
	struct dirent de;
};

DIR *fdopendir(int fd)
{
	struct open_file *f = file_get(fd);
	if (!f)
		return NULL;
	if (!f->ops->readdir) {
		errno = ENOTDIR;
		return NULL;
	}
	DIR *d = calloc(1, sizeof(*d));
	if (!d) {
		errno = ENOMEM;
		return NULL;
	}
	d->fd = fd;
	return d;
}

DIR *opendir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return NULL;
	DIR *d = fdopendir(fd);
	if (!d)
		close(fd);
	return d;
}

struct dirent *readdir(DIR *d)
{
	struct open_file *f = d ? file_get(d->fd) : NULL;
	if (!f)
		return NULL;
	int r = f->ops->readdir(f->ctx, &d->cookie, &d->de);
	if (r < 0)
		errno = -r; /* and NULL; at the end, NULL with errno untouched */
	return r > 0 ? &d->de : NULL;
}

void rewinddir(DIR *d)
{
	if (d)
		d->cookie = 0;
}

int dirfd(DIR *d)
{
	if (!d) {
		errno = EINVAL;
		return -1;
	}
	return d->fd;
}

int closedir(DIR *d)
{
	if (!d) {
		errno = EBADF;
		return -1;
	}
	int r = close(d->fd);
	free(d);
	return r;
}

int isatty(int fd)
{
	struct open_file *f = file_get(fd);
	if (!f)
		return 0;
	if (!f->ops->is_tty) {
		errno = ENOTTY;
		return 0;
	}
	return 1;
}

/* ---- process ----------------------------------------------------------- */

void *sbrk(ptrdiff_t incr); /* kernel/heap.c */

int getpid(void) { return 1; }

_Noreturn void _exit(int status) { kernel_exit(status); }

int kill(int pid, int sig)
{
	if (pid != 1) {
		errno = ESRCH;
		return -1;
	}
	/* abort() and raise() end here: report like a fault, with a backtrace
	 * of who called abort(). */
	kprintf("\n*** signal %d (%s) raised by the application\n", sig, sig == 6 ? "SIGABRT, abort()" : "fatal");
	backtrace_print((uintptr_t)__builtin_frame_address(0));
	kprintf("*** guest stopped by signal %d\n", sig);
	kernel_exit(EXIT_PANIC);
}

clock_t times(struct tms *t)
{
	clock_t ticks = (clock_t)(time_ns() / (1000000000ull / CLOCKS_PER_SEC));
	if (t)
		*t = (struct tms){.tms_utime = ticks, .tms_stime = 0};
	return ticks;
}

/* ---- time -------------------------------------------------------------- */

int gettimeofday(struct timeval *tv, void *tz)
{
	(void)tz;
	uint64_t ns = time_realtime_ns();
	tv->tv_sec = (time_t)(ns / 1000000000);
	tv->tv_usec = (suseconds_t)(ns / 1000 % 1000000);
	return 0;
}

int clock_gettime(clockid_t clock, struct timespec *ts)
{
	uint64_t ns;
	if (clock == CLOCK_REALTIME)
		ns = time_realtime_ns();
	else if (clock == CLOCK_MONOTONIC)
		ns = time_ns();
	else {
		errno = EINVAL;
		return -1;
	}
	ts->tv_sec = (time_t)(ns / 1000000000);
	ts->tv_nsec = (long)(ns % 1000000000);
	return 0;
}

int clock_getres(clockid_t clock, struct timespec *ts)
{
	if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) {
		errno = EINVAL;
		return -1;
	}
	if (ts)
		*ts = (struct timespec){0, 1};
	return 0;
}

int nanosleep(const struct timespec *req, struct timespec *rem)
{
	if (!req || req->tv_nsec < 0 || req->tv_nsec >= 1000000000 || req->tv_sec < 0) {
		errno = EINVAL;
		return -1;
	}
	/* In the wait loop, so devices and timers go on while the app sleeps. */
	wait_until(NULL, NULL, time_ns() + (uint64_t)req->tv_sec * 1000000000ull + (uint64_t)req->tv_nsec);
	if (rem)
		*rem = (struct timespec){0, 0};
	return 0;
}

int usleep(useconds_t us)
{
	wait_until(NULL, NULL, time_ns() + (uint64_t)us * 1000);
	return 0;
}

unsigned sleep(unsigned s)
{
	wait_until(NULL, NULL, time_ns() + (uint64_t)s * 1000000000ull);
	return 0;
}

/* ---- what a unikernel does not have ------------------------------------ */

/* The arguments are not looked at: there is nothing to do with them. */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#define NOSYS(proto)                                                                                                   \
	proto                                                                                                          \
	{                                                                                                              \
		errno = ENOSYS;                                                                                        \
		return -1;                                                                                             \
	}
NOSYS(int fork(void))
NOSYS(int execve(const char *p, char *const a[], char *const e[]))
NOSYS(int wait(int *s))
NOSYS(int link(const char *a, const char *b))
NOSYS(int unlink(const char *p))
NOSYS(int mkdir(const char *p, mode_t m))
