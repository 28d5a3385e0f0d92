/*
 * kernel/syscalls.c: the system calls newlib needs, by their POSIX names
 * (newlib's *-elf configuration calls write(), sbrk(), ... directly).
 *
 * There is no user mode and no process: a "system call" is a function call.
 * File descriptors 0-2 start as the serial console and close like any other
 * (the kernel's own log writes to the console directly); devices registered
 * with fd_register_device() (the disks: /dev/vda, ...) can be opened by
 * name. What Ringlet cannot do (fork, exec, links, ...) fails with ENOSYS.
 * Where POSIX leaves room, Linux's behaviour is the model (apps/posixedge
 * compares the two).
 */
#include <errno.h>
#include <stdbool.h>
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

#define MAX_FDS     64 /* FD_SETSIZE in newlib's <sys/select.h> */
#define MAX_DEVICES 32

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

static struct open_file files[MAX_FDS];
static struct device devices[MAX_DEVICES];

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

static const struct fd_ops console_ops = {
    .read = console_fd_read,
    .write = console_fd_write,
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

int open(const char *path, int flags, ...)
{
	const struct device *d = NULL;
	for (int i = 0; i < MAX_DEVICES && path; i++)
		if (devices[i].ops && strcmp(devices[i].path, path) == 0)
			d = &devices[i];
	if (!d) {
		errno = ENOENT;
		return -1;
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
