/*
 * netcheck: what a client sees when it reaches out, by errno name. Plain
 * POSIX: builds for Ringlet and for Linux alike.
 *
 *	netcheck connect HOST PORT TIMEOUT_MS
 *	    a non-blocking connect(), poll() for at most TIMEOUT_MS, then
 *	    SO_ERROR; prints "connect HOST:PORT: NAME" with NAME one of
 *	    OK, ECONNREFUSED, ETIMEDOUT (nothing answered in time), ...
 *	netcheck resolve NAME
 *	    getaddrinfo(); prints "resolve NAME: ADDRESS" or the gai_strerror()
 *
 * Try it:  make run APP=netcheck RUNFLAGS="--net user" ARGS="connect 10.0.2.2 9 2000"
 *
 * The exit status is 0 when the check ran (whatever it found), 1 when a
 * call that should not fail did, 2 for a usage error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *errno_name(int e)
{
	static const struct {
		int e;
		const char *name;
	} names[] = {
	    {0, "OK"},
	    {ECONNREFUSED, "ECONNREFUSED"},
	    {ETIMEDOUT, "ETIMEDOUT"},
	    {ECONNRESET, "ECONNRESET"},
	    {ECONNABORTED, "ECONNABORTED"},
	    {ENETUNREACH, "ENETUNREACH"},
	    {EHOSTUNREACH, "EHOSTUNREACH"},
	    {EADDRINUSE, "EADDRINUSE"},
	    {EADDRNOTAVAIL, "EADDRNOTAVAIL"},
	    {EINPROGRESS, "EINPROGRESS"},
	    {EAGAIN, "EAGAIN"},
	    {EPIPE, "EPIPE"},
	    {EINVAL, "EINVAL"},
	    {ENOBUFS, "ENOBUFS"},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].e == e)
			return names[i].name;
	return strerror(e);
}

static int check_connect(const char *host, const char *port, int timeout_ms)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port))};
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
		fprintf(stderr, "netcheck: %s: not an IPv4 address\n", host);
		return 2;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		perror("netcheck: socket");
		return 1;
	}
	int err = 0;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		err = errno;
		if (err == EINPROGRESS) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			int n = poll(&p, 1, timeout_ms);
			if (n < 0) {
				perror("netcheck: poll");
				return 1;
			}
			socklen_t len = sizeof(err);
			if (n == 0)
				err = ETIMEDOUT; /* the deadline this program set */
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
				perror("netcheck: getsockopt");
				return 1;
			}
		}
	}
	printf("connect %s:%s: %s\n", host, port, errno_name(err));
	close(fd);
	return 0;
}

static int check_resolve(const char *name)
{
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res;
	int err = getaddrinfo(name, NULL, &hints, &res);
	if (err) {
		printf("resolve %s: %s\n", name, gai_strerror(err));
		return 0;
	}
	char addr[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, addr, sizeof(addr));
	printf("resolve %s: %s\n", name, addr);
	freeaddrinfo(res);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 5 && strcmp(argv[1], "connect") == 0)
		return check_connect(argv[2], argv[3], atoi(argv[4]));
	if (argc == 3 && strcmp(argv[1], "resolve") == 0)
		return check_resolve(argv[2]);
	fprintf(stderr, "usage: netcheck connect HOST PORT TIMEOUT_MS | netcheck resolve NAME\n");
	return 2;
}
