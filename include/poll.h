/*
 * <poll.h>: poll() (POSIX.1-2017, XBD <poll.h>) over sockets and files
 * together; kernel/poll.c. Linux's values.
 */
#ifndef _POLL_H
#define _POLL_H

#ifdef __cplusplus
extern "C" {
#endif

typedef unsigned long nfds_t;

struct pollfd {
	int fd;        /* negative: ignored, revents 0 */
	short events;  /* asked for */
	short revents; /* what holds; POLLERR, POLLHUP, POLLNVAL always reported */
};

#define POLLIN     0x001
#define POLLPRI    0x002
#define POLLOUT    0x004
#define POLLERR    0x008
#define POLLHUP    0x010
#define POLLNVAL   0x020
#define POLLRDNORM 0x040
#define POLLRDBAND 0x080
#define POLLWRNORM 0x100
#define POLLWRBAND 0x200

int poll(struct pollfd *fds, nfds_t nfds, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif
