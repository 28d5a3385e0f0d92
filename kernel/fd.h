/*
 * kernel/fd.h: how a device becomes a file that open()/read()/write() reach.
 *
 * A driver registers a path ("/dev/vda") with a table of operations; the
 * system-call layer (kernel/syscalls.c) keeps the descriptors and offsets.
 * Operations return a byte count or a negative errno.
 */
#ifndef RINGLET_FD_H
#define RINGLET_FD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct stat;
struct dirent;

struct fd_ops {
	int (*open)(void *ctx, int flags); /* optional: refuse e.g. writes */
	ssize_t (*read)(void *ctx, void *buf, size_t n, uint64_t off);
	ssize_t (*write)(void *ctx, const void *buf, size_t n, uint64_t off); /* NULL: read-only */
	int (*fsync)(void *ctx);                                              /* optional (else EINVAL) */
	int (*close)(void *ctx);                                              /* optional */
	uint64_t (*size)(void *ctx);                                          /* optional: bytes */
	uint32_t (*block_size)(void *ctx);                                    /* optional */
	/* optional: which of POLLIN, POLLOUT, POLLERR, POLLHUP (<poll.h>)
	 * hold now; without it a file is always readable and writable. */
	short (*poll)(void *ctx);
	/* optional: fcntl(F_SETFL) changed the flags (O_NONBLOCK). */
	void (*set_flags)(void *ctx, int flags);
	/* optional: fstat() fills st itself (a file in a filesystem); without
	 * it the file is a block device of size() bytes. */
	int (*stat)(void *ctx, struct stat *st);
	/* optional (a directory): the next entry after *cookie (0 at the
	 * start) into de; 1, 0 at the end, or a negative errno. */
	int (*readdir)(void *ctx, uint64_t *cookie, struct dirent *de);
	bool is_tty;
};

/* A filesystem mounted at a directory: open() and stat() of a path under it
 * reach open() here with the rest of the path, normalised ("a/b", "" for
 * the mount point itself), which installs nothing and returns the file's
 * ops and ctx, or a negative errno. */
struct fs_ops {
	int (*open)(void *fs, const char *rel, int flags, const struct fd_ops **ops, void **ctx);
};
/* Mounts fs at dir (absolute, normalised): 0, -EBUSY (something is there
 * already), -ENOSPC (the table is full) or -EINVAL. */
int fd_mount(const char *dir, const struct fs_ops *ops, void *fs);
/* Whether something is mounted at exactly dir. */
bool fd_mounted(const char *dir);

void fd_init(void);
int fd_register_device(const char *path, const struct fd_ops *ops, void *ctx);
/* Opens ctx as a descriptor of its own (a socket, say): the lowest free
 * number, as POSIX asks, or -EMFILE. flags: O_RDWR, O_NONBLOCK, ... */
int fd_install(const struct fd_ops *ops, void *ctx, int flags);
/* The ctx behind fd when it was installed with these ops, else NULL
 * (errno EBADF for no such descriptor, ENOTSOCK-style checks are the
 * caller's: it knows what it expected). */
void *fd_ctx(int fd, const struct fd_ops *ops);
/* poll()'s view of fd (kernel/poll.c): which of POLLIN, POLLOUT, POLLERR,
 * POLLHUP hold now, or POLLNVAL when fd is not open. */
short fd_poll(int fd);

#endif
