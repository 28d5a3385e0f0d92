/*
 * echo: a TCP and UDP echo server (RFC 862) for many clients at once, with
 * poll(). Plain POSIX: the same file builds for Ringlet and for Linux
 * (gcc -O2 -Wall -o echo apps/echo/main.c).
 *
 *	echo [PORT [ADDRESS]]   PORT defaults to 7, ADDRESS to every address
 *
 * Try it:  make run APP=echo RUNFLAGS="--hostfwd 7007:7" and `nc 127.0.0.1 7007`
 *
 * Prints "listening on PORT" once it accepts connections, then one line per
 * connection opened and closed. A client's data is echoed as it comes; when
 * the client does not read its echo, the server stops reading from it (and
 * only from it) until it does.
 *
 * On Ringlet only (the file still builds for Linux without it): a UDP datagram
 * that is exactly "ringlet-mem" is answered not with its echo but with one
 * line of what the network holds in memory (<ringlet/net.h>'s
 * ringlet_net_mem: heap bytes, lwIP pool elements in use), so that a test can
 * compare the numbers before and after a flood of bad frames.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#if defined(__has_include)
#if __has_include(<ringlet/net.h>)
#include <ringlet/net.h>
#define HAVE_RINGLET_NET_MEM 1
#endif
#endif

#define MAX_CLIENTS 48
#define BUF_SIZE    65536

struct client {
	int fd;
	char name[32]; /* ADDR:PORT */
	char *buf;     /* read but not yet echoed: buf[off..len) */
	size_t off, len;
	unsigned long long bytes; /* echoed in all */
};

static struct client clients[MAX_CLIENTS];
static int nclients;

static void die(const char *what)
{
	fprintf(stderr, "echo: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		die("fcntl");
}

static void drop(int i, const char *why)
{
	struct client *c = &clients[i];
	printf("close %s: %llu bytes%s%s\n", c->name, c->bytes, why ? ", " : "", why ? why : "");
	close(c->fd);
	free(c->buf);
	clients[i] = clients[--nclients];
}

static void accept_one(int lfd)
{
	struct sockaddr_in peer;
	socklen_t len = sizeof(peer);
	int fd = accept(lfd, (struct sockaddr *)&peer, &len);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED)
			fprintf(stderr, "echo: accept: %s\n", strerror(errno));
		return;
	}
	if (nclients == MAX_CLIENTS) {
		close(fd); /* full: the client sees its connection closed */
		return;
	}
	set_nonblock(fd);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct client *c = &clients[nclients];
	*c = (struct client){.fd = fd, .buf = malloc(BUF_SIZE)};
	if (!c->buf)
		die("malloc");
	char addr[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &peer.sin_addr, addr, sizeof(addr));
	snprintf(c->name, sizeof(c->name), "%s:%u", addr, ntohs(peer.sin_port));
	nclients++;
	printf("open %s (%d clients)\n", c->name, nclients);
}

/* Returns false when the client is gone. */
static int serve(struct client *c, short revents, const char **why)
{
	if (c->off < c->len) {
		ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			*why = strerror(errno);
			return 0;
		}
		c->off += (size_t)n;
		c->bytes += (unsigned long long)n;
		return 1;
	}
	if (!(revents & (POLLIN | POLLHUP | POLLERR)))
		return 1;
	ssize_t n = recv(c->fd, c->buf, BUF_SIZE, 0);
	if (n == 0)
		return 0;
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 1;
		*why = strerror(errno);
		return 0;
	}
	c->off = 0;
	c->len = (size_t)n;
	return 1;
}

#define MEM_QUERY "ringlet-mem"

/* The answer to MEM_QUERY in buf (BUF_SIZE bytes): its length, or 0 where there is none. */
static size_t mem_answer(char *buf)
{
#ifdef HAVE_RINGLET_NET_MEM
	struct ringlet_net_mem m;
	struct ringlet_netif nif = {0};
	if (ringlet_net_mem(&m) != 0)
		return 0;
	ringlet_net_info(0, &nif); /* eth0's frame counters, to show the frames got here */
	int n = snprintf(buf, BUF_SIZE,
	                 "heap_used=%llu heap_arena=%llu pbuf_pool_used=%u pbuf_ref_used=%u tcp_pcb_used=%u "
	                 "tcp_seg_used=%u reass_used=%u memp_used=%u rx_frames=%llu rx_dropped=%llu\n",
	                 (unsigned long long)m.heap_used, (unsigned long long)m.heap_arena, (unsigned)m.pbuf_pool_used,
	                 (unsigned)m.pbuf_ref_used, (unsigned)m.tcp_pcb_used, (unsigned)m.tcp_seg_used,
	                 (unsigned)m.reass_used, (unsigned)m.memp_used, (unsigned long long)nif.rx_frames,
	                 (unsigned long long)nif.rx_dropped);
	return n > 0 ? (size_t)n : 0;
#else
	(void)buf;
	return 0;
#endif
}

static void echo_datagrams(int ufd)
{
	static char buf[BUF_SIZE];
	for (;;) {
		struct sockaddr_in from;
		socklen_t len = sizeof(from);
		ssize_t n = recvfrom(ufd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len);
		if (n < 0)
			return; /* EAGAIN: all read */
		if ((size_t)n == strlen(MEM_QUERY) && memcmp(buf, MEM_QUERY, (size_t)n) == 0) {
			size_t m = mem_answer(buf);
			if (m)
				n = (ssize_t)m;
		}
		if (sendto(ufd, buf, (size_t)n, 0, (struct sockaddr *)&from, len) < 0)
			fprintf(stderr, "echo: sendto: %s\n", strerror(errno));
	}
}

int main(int argc, char **argv)
{
	int port = argc > 1 ? atoi(argv[1]) : 7;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
	if (port <= 0 || port > 65535 || (argc > 2 && inet_pton(AF_INET, argv[2], &sin.sin_addr) != 1)) {
		fprintf(stderr, "usage: echo [PORT [ADDRESS]]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN); /* Linux: a client gone mid-send is an error, not a death */
	setvbuf(stdout, NULL, _IOLBF, 0);

	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	int ufd = socket(AF_INET, SOCK_DGRAM, 0);
	if (lfd < 0 || ufd < 0)
		die("socket");
	int one = 1;
	if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		die("setsockopt");
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || bind(ufd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		die("bind");
	if (listen(lfd, 64) < 0)
		die("listen");
	set_nonblock(lfd);
	set_nonblock(ufd);
	printf("listening on %d\n", port);

	static struct pollfd fds[2 + MAX_CLIENTS];
	for (;;) {
		fds[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
		fds[1] = (struct pollfd){.fd = ufd, .events = POLLIN};
		for (int i = 0; i < nclients; i++) {
			struct client *c = &clients[i];
			/* Echo what is pending before reading more. */
			fds[2 + i] = (struct pollfd){.fd = c->fd, .events = c->off < c->len ? POLLOUT : POLLIN};
		}
		int n = nclients;
		if (poll(fds, (nfds_t)(2 + n), -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		/* Clients first: drop() moves the last into the freed slot, so
		 * walk backwards over the ones polled. */
		for (int i = n - 1; i >= 0; i--) {
			const char *why = NULL;
			if (fds[2 + i].revents && !serve(&clients[i], fds[2 + i].revents, &why))
				drop(i, why);
		}
		if (fds[1].revents & POLLIN)
			echo_datagrams(ufd);
		if (fds[0].revents & POLLIN)
			accept_one(lfd);
	}
}
