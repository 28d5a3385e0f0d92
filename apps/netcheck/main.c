/*
 * netcheck: what a client sees when it reaches out, by errno name. Plain
 * POSIX: builds for Ringlet and for Linux alike.
 *
 *	netcheck connect HOST PORT TIMEOUT_MS
 *	    a non-blocking connect(), poll() for at most TIMEOUT_MS, then
 *	    SO_ERROR; prints "connect HOST:PORT: NAME" with NAME one of
 *	    OK, ECONNREFUSED, ETIMEDOUT (nothing answered in time), ...
 *	netcheck resolve NAME...
 *	    getaddrinfo() for each; prints "resolve NAME: ADDRESS" or the
 *	    gai_strerror()
 *	netcheck api PEER PORT
 *	    the socket API's answers, one "what: result" line each, in
 *	    situations whose answer is fixed (an errno name, a value): the
 *	    same lines on Ringlet and on Linux. PEER:PORT is a test peer that
 *	    reads one byte per connection and then: 'F' sends "bye" and
 *	    closes, 'R' resets, 'S' stays silent until the client closes;
 *	    PORT + 1 on PEER must be closed.
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
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
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
	    {ENOTCONN, "ENOTCONN"},
	    {EISCONN, "EISCONN"},
	    {EALREADY, "EALREADY"},
	    {EOPNOTSUPP, "EOPNOTSUPP"},
	    {EDESTADDRREQ, "EDESTADDRREQ"},
	    {EAFNOSUPPORT, "EAFNOSUPPORT"},
	    {ENOTSOCK, "ENOTSOCK"},
	    {EBADF, "EBADF"},
	    {ENOPROTOOPT, "ENOPROTOOPT"},
	    {ENETDOWN, "ENETDOWN"},
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
		printf("socket: %s\n", errno_name(errno));
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

/* ---- api: the answers a program relies on ------------------------------------------ */

static struct sockaddr_in peer;

/* "what: OK" for a call that returned r >= 0, else its errno's name. */
static void report(const char *what, long r) { printf("%s: %s\n", what, r < 0 ? errno_name(errno) : "OK"); }

static int tcp_to_peer(char cmd)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&peer, sizeof(peer)) < 0) {
		printf("connect to peer: %s\n", errno_name(errno));
		exit(1);
	}
	if (send(fd, &cmd, 1, 0) != 1) {
		printf("send to peer: %s\n", errno_name(errno));
		exit(1);
	}
	return fd;
}

static void api_unconnected(void)
{
	char c;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	report("tcp send unconnected", send(fd, "x", 1, MSG_NOSIGNAL));
	report("tcp recv unconnected", recv(fd, &c, 1, 0));
	report("tcp shutdown unconnected", shutdown(fd, SHUT_WR));
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	report("tcp getpeername unconnected", getpeername(fd, (struct sockaddr *)&sin, &len));
	report("tcp accept unlistening", accept(fd, NULL, NULL));
	close(fd);

	int u = socket(AF_INET, SOCK_DGRAM, 0);
	report("udp listen", listen(u, 1));
	report("udp send unconnected", send(u, "x", 1, 0));
	report("udp shutdown unconnected", shutdown(u, SHUT_RD));
	close(u);
	report("recv on a file", recv(1, &c, 1, MSG_DONTWAIT));
	report("recv on a closed descriptor", recv(u, &c, 1, 0));
}

static void api_local(void)
{
	/* Two sockets on one port, the first listening. */
	int a = socket(AF_INET, SOCK_STREAM, 0), b = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in any = {.sin_family = AF_INET};
	report("bind port 0", bind(a, (struct sockaddr *)&any, sizeof(any)));
	socklen_t len = sizeof(any);
	getsockname(a, (struct sockaddr *)&any, &len);
	printf("getsockname: %s, port %s\n", any.sin_addr.s_addr == htonl(INADDR_ANY) ? "0.0.0.0" : "?",
	       any.sin_port ? "chosen" : "0");
	report("bind again", bind(a, (struct sockaddr *)&any, sizeof(any)));
	struct sockaddr_in foreign = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a090909)};
	report("bind an address not ours", bind(b, (struct sockaddr *)&foreign, sizeof(foreign)));
	report("listen", listen(a, 4));
	report("bind the same port", bind(b, (struct sockaddr *)&any, sizeof(any)));
	report("connect a listener", connect(a, (struct sockaddr *)&peer, sizeof(peer)));
	report("send on a listener", send(a, "x", 1, MSG_NOSIGNAL));
	int v = 0;
	len = sizeof(v);
	getsockopt(a, SOL_SOCKET, SO_ACCEPTCONN, &v, &len);
	printf("SO_ACCEPTCONN: %d\n", v);
	getsockopt(a, SOL_SOCKET, SO_TYPE, &v, &len);
	printf("SO_TYPE: %d\n", v);
	report("fcntl F_SETFL O_NONBLOCK", fcntl(a, F_SETFL, fcntl(a, F_GETFL) | O_NONBLOCK));
	printf("F_GETFL O_NONBLOCK: %d\n", (fcntl(a, F_GETFL) & O_NONBLOCK) != 0);
	report("accept non-blocking", accept(a, NULL, NULL));
	close(a);
	close(b);

	int u = socket(AF_INET, SOCK_DGRAM, 0);
	struct timeval tv = {0, 200000};
	report("SO_RCVTIMEO", setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
	struct timeval back = {0, 0};
	len = sizeof(back);
	getsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &back, &len);
	printf("SO_RCVTIMEO back: %ld.%06ld\n", (long)back.tv_sec, (long)back.tv_usec);
	char buf[16];
	report("udp recv with SO_RCVTIMEO", recv(u, buf, sizeof(buf), 0));
	report("udp recv MSG_DONTWAIT", recv(u, buf, sizeof(buf), MSG_DONTWAIT));
	struct pollfd p[2] = {{.fd = u, .events = POLLIN}, {.fd = 1, .events = POLLOUT}};
	int n = poll(p, 1, 100);
	printf("poll idle udp: %d\n", n);
	n = poll(p, 2, 100);
	printf("poll udp + stdout: %d, stdout revents POLLOUT %d\n", n, (p[1].revents & POLLOUT) != 0);
	struct pollfd bad = {.fd = 60, .events = POLLIN};
	n = poll(&bad, 1, 0);
	printf("poll closed descriptor: %d, POLLNVAL %d\n", n, (bad.revents & POLLNVAL) != 0);
	struct pollfd skip = {.fd = -1, .events = POLLIN, .revents = POLLIN};
	n = poll(&skip, 1, 0);
	printf("poll fd -1: %d, revents %d\n", n, skip.revents);

	fd_set rd, wr;
	FD_ZERO(&rd);
	FD_ZERO(&wr);
	FD_SET(u, &rd);
	FD_SET(1, &wr);
	struct timeval stv = {0, 100000};
	n = select(u + 1, &rd, &wr, NULL, &stv);
	printf("select udp + stdout: %d, udp readable %d, stdout writable %d\n", n, FD_ISSET(u, &rd) != 0,
	       FD_ISSET(1, &wr) != 0);
	FD_ZERO(&rd);
	FD_SET(u, &rd);
	stv = (struct timeval){0, 50000};
	n = select(u + 1, &rd, NULL, NULL, &stv);
	printf("select idle: %d, still set %d, time left %ld.%06ld\n", n, FD_ISSET(u, &rd) != 0, (long)stv.tv_sec,
	       (long)stv.tv_usec);
	FD_ZERO(&rd);
	FD_SET(60, &rd);
	stv = (struct timeval){0, 0};
	report("select a closed descriptor", select(61, &rd, NULL, NULL, &stv));
	printf("F_GETFL O_RDWR: %d\n", (fcntl(u, F_GETFL) & O_ACCMODE) == O_RDWR);
	report("fcntl unknown command", fcntl(u, 12345));
	report("fcntl closed descriptor", fcntl(60, F_GETFL));
	close(u);
}

static void api_peer(int port)
{
	char buf[16];
	struct sockaddr_in closed = peer;
	closed.sin_port = htons((unsigned short)(port + 1));
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	report("connect to a closed port", connect(fd, (struct sockaddr *)&closed, sizeof(closed)));
	close(fd);

	/* The peer sends "bye" and closes. */
	fd = tcp_to_peer('F');
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	getpeername(fd, (struct sockaddr *)&sin, &len);
	printf("getpeername: %s\n",
	       sin.sin_port == peer.sin_port && sin.sin_addr.s_addr == peer.sin_addr.s_addr ? "the peer" : "?");
	report("connect again", connect(fd, (struct sockaddr *)&peer, sizeof(peer)));
	int one = 1, v = 0;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	len = sizeof(v);
	getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len);
	printf("TCP_NODELAY: %d\n", v != 0);
	fd_set rd;
	FD_ZERO(&rd);
	FD_SET(fd, &rd);
	struct timeval tv = {30, 0};
	int n = select(fd + 1, &rd, NULL, NULL, &tv);
	printf("select readable: %d %d\n", n, FD_ISSET(fd, &rd) != 0);
	ssize_t r = recv(fd, buf, sizeof(buf), MSG_PEEK);
	printf("recv MSG_PEEK: %zd\n", r);
	r = recv(fd, buf, 2, 0);
	printf("recv 2: %zd %.2s\n", r, buf);
	r = recv(fd, buf, sizeof(buf), MSG_WAITALL);
	printf("recv the rest: %zd %.*s\n", r, (int)(r > 0 ? r : 0), buf);
	r = recv(fd, buf, sizeof(buf), 0);
	printf("recv at the end: %zd\n", r);
	close(fd);

	/* The peer resets. */
	fd = tcp_to_peer('R');
	r = recv(fd, buf, sizeof(buf), 0);
	report("recv after a reset", r);
	r = recv(fd, buf, sizeof(buf), 0);
	printf("recv after that: %zd\n", r);
	report("send after a reset", send(fd, "x", 1, MSG_NOSIGNAL));
	close(fd);

	/* The peer says nothing. */
	fd = tcp_to_peer('S');
	struct timeval t = {0, 300000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof(t));
	report("recv from a silent peer, SO_RCVTIMEO", recv(fd, buf, sizeof(buf), 0));
	report("recv MSG_DONTWAIT", recv(fd, buf, sizeof(buf), MSG_DONTWAIT));
	report("shutdown SHUT_WR", shutdown(fd, SHUT_WR));
	report("send after SHUT_WR", send(fd, "x", 1, MSG_NOSIGNAL));
	close(fd);

	/* The port of a connection we closed first, now in TIME_WAIT: taken
	 * without SO_REUSEADDR, free with it (on both sockets). */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&peer, sizeof(peer)) < 0 || send(fd, "S", 1, 0) != 1) {
		printf("connect to peer: %s\n", errno_name(errno));
		exit(1);
	}
	struct sockaddr_in local;
	len = sizeof(local);
	getsockname(fd, (struct sockaddr *)&local, &len);
	shutdown(fd, SHUT_WR);
	printf("recv after both closed: %zd\n", recv(fd, buf, sizeof(buf), 0));
	close(fd);
	local.sin_addr.s_addr = htonl(INADDR_ANY);
	int b = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0);
	report("bind a TIME_WAIT port", bind(b, (struct sockaddr *)&local, sizeof(local)));
	setsockopt(c, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	report("bind it with SO_REUSEADDR", bind(c, (struct sockaddr *)&local, sizeof(local)));
	close(b);
	close(c);

	/* SO_LINGER on with 0: close() resets (the peer counts it). */
	fd = tcp_to_peer('S');
	struct linger lg = {1, 0};
	report("SO_LINGER 0", setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	struct linger lb = {0, 1};
	len = sizeof(lb);
	getsockopt(fd, SOL_SOCKET, SO_LINGER, &lb, &len);
	printf("SO_LINGER back: %d %d\n", lb.l_onoff != 0, lb.l_linger);
	report("close with SO_LINGER 0", close(fd));
}

static void api_names(void)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
	int err = getaddrinfo("10.1.2.3", "http", &hints, &res);
	if (err == 0) {
		struct sockaddr_in *sin = (struct sockaddr_in *)res->ai_addr;
		char a[INET_ADDRSTRLEN];
		printf("getaddrinfo 10.1.2.3 http: %s %u type %d proto %d next %d\n",
		       inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a)), ntohs(sin->sin_port), res->ai_socktype,
		       res->ai_protocol, res->ai_next != NULL);
		freeaddrinfo(res);
	}
	hints = (struct addrinfo){.ai_flags = AI_PASSIVE, .ai_family = AF_INET, .ai_socktype = SOCK_DGRAM};
	err = getaddrinfo(NULL, "7", &hints, &res);
	if (err == 0) {
		struct sockaddr_in *sin = (struct sockaddr_in *)res->ai_addr;
		printf("getaddrinfo passive: %s %u\n", inet_ntoa(sin->sin_addr), ntohs(sin->sin_port));
		freeaddrinfo(res);
	}
	hints = (struct addrinfo){.ai_flags = AI_NUMERICHOST};
	printf("getaddrinfo not numeric: %s\n", gai_strerror(getaddrinfo("no.such.name", NULL, &hints, &res)));
	printf("getaddrinfo bad service: %s\n", gai_strerror(getaddrinfo("1.2.3.4", "no-such-service", NULL, &res)));
	printf("getaddrinfo nothing: %s\n", gai_strerror(getaddrinfo(NULL, NULL, NULL, &res)));

	static const char *v4[] = {"1.2.3.4",   "255.255.255.255", "1.2.3.04", "1.2.3",
	                           "1.2.3.4.5", "256.1.1.1",       " 1.2.3.4", ""};
	for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++) {
		struct in_addr in;
		char a[INET_ADDRSTRLEN];
		int ok = inet_pton(AF_INET, v4[i], &in);
		printf("inet_pton \"%s\": %d %s\n", v4[i], ok, ok == 1 ? inet_ntop(AF_INET, &in, a, sizeof(a)) : "");
	}
	static const char *v6[] = {"::",
	                           "::1",
	                           "1::",
	                           "2001:db8::1",
	                           "2001:0db8:0:0:1:0:0:1",
	                           "1:0:0:2:0:0:0:3",
	                           "::ffff:1.2.3.4",
	                           "fe80::1:2:3:4:5",
	                           "1:2:3:4:5:6:7:8",
	                           "1:2:3:4:5:6:7::",
	                           "::1:2:3:4:5:6:7",
	                           "1::2::3",
	                           "1:2:3:4:5:6:7:8:9",
	                           "12345::",
	                           ":1::",
	                           "1:",
	                           "::g"};
	for (size_t i = 0; i < sizeof(v6) / sizeof(v6[0]); i++) {
		unsigned char in6[16];
		char a[INET6_ADDRSTRLEN];
		int ok = inet_pton(AF_INET6, v6[i], in6);
		printf("inet_pton6 \"%s\": %d %s\n", v6[i], ok, ok == 1 ? inet_ntop(AF_INET6, in6, a, sizeof(a)) : "");
	}
	char small[4];
	struct in_addr in = {htonl(0x01020304)};
	report("inet_ntop too small", inet_ntop(AF_INET, &in, small, sizeof(small)) ? 0 : -1);
	report("inet_pton AF_UNIX", inet_pton(AF_UNIX, "x", &in));
}

static int check_api(const char *host, const char *port)
{
	signal(SIGPIPE, SIG_IGN);
	peer = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port))};
	if (inet_pton(AF_INET, host, &peer.sin_addr) != 1) {
		fprintf(stderr, "netcheck: %s: not an IPv4 address\n", host);
		return 2;
	}
	api_unconnected();
	api_local();
	api_peer(atoi(port));
	api_names();
	printf("api: done\n");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 5 && strcmp(argv[1], "connect") == 0)
		return check_connect(argv[2], argv[3], atoi(argv[4]));
	if (argc >= 3 && strcmp(argv[1], "resolve") == 0) {
		for (int i = 2; i < argc; i++)
			check_resolve(argv[i]);
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "api") == 0)
		return check_api(argv[2], argv[3]);
	fprintf(stderr, "usage: netcheck connect HOST PORT TIMEOUT_MS | resolve NAME... | api PEER PORT\n");
	return 2;
}
