/*
 * kernel/poll.c: poll() and select() over every kind of descriptor.
 * Implements: POSIX.1-2017 XSH poll(), select() and pselect().
 *
 * Each descriptor says what holds for it now through fd_poll() (a socket
 * from its queues, a file is always ready); when nothing the caller asked
 * for holds, the call waits in the one wait loop (kernel/wait.h), whose
 * passes deliver packets to the sockets, and looks again after every pass.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/select.h>
#include <sys/time.h>

#include "fd.h"
#include "kernel.h"
#include "wait.h"

struct poll_args {
	struct pollfd *fds;
	nfds_t n;
	int ready; /* descriptors with revents != 0 after the last scan */
};

/* Fills every revents; POLLERR, POLLHUP and POLLNVAL need not be asked for. */
static bool poll_scan(void *arg)
{
	struct poll_args *a = arg;
	a->ready = 0;
	for (nfds_t i = 0; i < a->n; i++) {
		struct pollfd *p = &a->fds[i];
		p->revents = 0;
		if (p->fd < 0)
			continue;
		short mask = fd_poll(p->fd);
		/* The RDNORM/WRNORM spellings mean the same as IN/OUT here. */
		short want = p->events;
		if (want & POLLRDNORM)
			want |= POLLIN;
		if (want & POLLWRNORM)
			want |= POLLOUT;
		if (mask & POLLIN)
			mask |= POLLRDNORM;
		if (mask & POLLOUT)
			mask |= POLLWRNORM;
		p->revents = mask & (want | POLLERR | POLLHUP | POLLNVAL);
		if (p->revents)
			a->ready++;
	}
	return a->ready > 0;
}

/* The wait loop's deadline for a timeout in ns; negative: none. */
static uint64_t deadline_after(int64_t ns) { return ns < 0 ? WAIT_FOREVER : time_ns() + (uint64_t)ns; }

int poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
	if (n > 1024 || (n && !fds)) {
		errno = EINVAL;
		return -1;
	}
	struct poll_args a = {.fds = fds, .n = n};
	/* One pass first, so that poll(..., 0) in a loop sees packets arrive. */
	if (!poll_scan(&a)) {
		wait_poll();
		if (timeout_ms != 0)
			wait_until(poll_scan, &a, deadline_after(timeout_ms < 0 ? -1 : (int64_t)timeout_ms * 1000000));
		else
			poll_scan(&a);
	}
	return a.ready;
}

struct select_args {
	int n;
	fd_set *in, *out, *ex;    /* the caller's sets, filled at the end */
	fd_set want_in, want_out; /* what was asked */
	int ready;
};

/* Readable: data, end of file, an error or a hang-up (a read will not
 * block); writable: room or an error (a write will not block). */
static bool select_scan(void *arg)
{
	struct select_args *a = arg;
	fd_set in, out;
	FD_ZERO(&in);
	FD_ZERO(&out);
	a->ready = 0;
	for (int fd = 0; fd < a->n; fd++) {
		bool r = FD_ISSET(fd, &a->want_in), w = FD_ISSET(fd, &a->want_out);
		if (!r && !w)
			continue;
		short mask = fd_poll(fd);
		if (r && (mask & (POLLIN | POLLHUP | POLLERR))) {
			FD_SET(fd, &in);
			a->ready++;
		}
		if (w && (mask & (POLLOUT | POLLERR))) {
			FD_SET(fd, &out);
			a->ready++;
		}
	}
	if (a->ready) {
		if (a->in)
			*a->in = in;
		if (a->out)
			*a->out = out;
	}
	return a->ready > 0;
}

static int do_select(int n, fd_set *in, fd_set *out, fd_set *ex, int64_t timeout_ns)
{
	if (n < 0 || n > FD_SETSIZE) {
		errno = EINVAL;
		return -1;
	}
	struct select_args a = {.n = n, .in = in, .out = out, .ex = ex};
	FD_ZERO(&a.want_in);
	FD_ZERO(&a.want_out);
	for (int fd = 0; fd < n; fd++) {
		bool r = in && FD_ISSET(fd, in), w = out && FD_ISSET(fd, out), e = ex && FD_ISSET(fd, ex);
		if ((r || w || e) && fd_poll(fd) == POLLNVAL) {
			errno = EBADF;
			return -1;
		}
		if (r)
			FD_SET(fd, &a.want_in);
		if (w)
			FD_SET(fd, &a.want_out);
	}
	/* Nothing here has out-of-band data: the exception set comes back empty. */
	if (ex)
		FD_ZERO(ex);
	if (!select_scan(&a)) {
		wait_poll();
		if (timeout_ns != 0)
			wait_until(select_scan, &a, deadline_after(timeout_ns));
		else
			select_scan(&a);
	}
	if (!a.ready) {
		if (in)
			FD_ZERO(in);
		if (out)
			FD_ZERO(out);
	}
	return a.ready;
}

int select(int n, fd_set *in, fd_set *out, fd_set *ex, struct timeval *tv)
{
	if (tv && (tv->tv_sec < 0 || tv->tv_usec < 0 || tv->tv_usec >= 1000000)) {
		errno = EINVAL;
		return -1;
	}
	int64_t ns = tv ? (int64_t)tv->tv_sec * 1000000000 + (int64_t)tv->tv_usec * 1000 : -1;
	int r = do_select(n, in, out, ex, ns);
	/* Linux writes back the time not slept; 0 is true when it timed out. */
	if (tv && r == 0)
		*tv = (struct timeval){0, 0};
	return r;
}

/* No signals in Ringlet: the mask has nothing to block. */
int pselect(int n, fd_set *in, fd_set *out, fd_set *ex, const struct timespec *ts, const sigset_t *mask)
{
	(void)mask;
	if (ts && (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000)) {
		errno = EINVAL;
		return -1;
	}
	return do_select(n, in, out, ex, ts ? (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec : -1);
}
