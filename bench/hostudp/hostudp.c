/*
 * bench/hostudp: the host's own limit for the net-udp figures: the same UDP
 * traffic as the harness's net-udp workload between two host processes on
 * 127.0.0.1 (no QEMU, no guest): 64-byte then 1472-byte datagrams flat out
 * for SECS each (receiver counts what arrives), then PINGS sequential 64-byte
 * echoes. bench/net builds and runs it; one JSON line on stdout.
 *
 *	gcc -O2 -o hostudp bench/hostudp/hostudp.c && ./hostudp [SECS [PINGS]]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* A UDP socket bound to 127.0.0.1, any port: its port in *port. */
static int bound(uint16_t *port)
{
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	int big = 4 << 20;
	setsockopt(s, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || getsockname(s, (struct sockaddr *)&a, &l) < 0) {
		perror("hostudp: socket");
		exit(1);
	}
	*port = ntohs(a.sin_port);
	return s;
}

static void to(int s, uint16_t port)
{
	struct sockaddr_in a = {
	    .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("hostudp: connect");
		exit(1);
	}
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 3;
	int pings = argc > 2 ? atoi(argv[2]) : 1000;
	static char buf[2048];
	static uint64_t rtt[100000];
	if (pings > 100000)
		pings = 100000;
	printf("{\"secs\":%g", secs);
	for (int size = 64; size; size = size == 64 ? 1472 : 0) {
		uint16_t rport, sport;
		int r = bound(&rport), s = bound(&sport);
		to(s, rport);
		int pipefd[2];
		if (pipe(pipefd) < 0)
			return 1;
		pid_t pid = fork();
		if (pid == 0) { /* receiver: counts until the sender's 1-byte "done" */
			uint64_t got = 0;
			close(pipefd[0]);
			for (;;) {
				ssize_t n = recv(r, buf, sizeof(buf), 0);
				if (n == 1)
					break;
				got += n == size;
			}
			if (write(pipefd[1], &got, sizeof(got)) != sizeof(got))
				_exit(1);
			_exit(0);
		}
		close(pipefd[1]);
		memset(buf, 'a', sizeof(buf));
		uint64_t sent = 0, t0 = now_ns(), end = t0 + (uint64_t)(secs * 1e9);
		do {
			for (int k = 0; k < 64; k++)
				sent += send(s, buf, (size_t)size, 0) == size;
		} while (now_ns() < end);
		double el = (double)(now_ns() - t0) / 1e9;
		usleep(200000);
		uint64_t got = 0;
		for (int i = 0; i < 50 && !got; i++) { /* "done" may itself be dropped: repeat */
			send(s, "x", 1, 0);
			struct timeval tv = {0, 100000};
			fd_set fds;
			FD_ZERO(&fds);
			FD_SET(pipefd[0], &fds);
			if (select(pipefd[0] + 1, &fds, NULL, NULL, &tv) == 1 &&
			    read(pipefd[0], &got, sizeof(got)) != sizeof(got))
				got = 0;
		}
		waitpid(pid, NULL, 0);
		printf(",\"udp%d_tx_pps\":%.1f,\"udp%d_rx_pps\":%.1f", size, sent / el, size, got / el);
		close(r);
		close(s);
		close(pipefd[0]);
	}
	uint16_t eport, cport;
	int e = bound(&eport), c = bound(&cport);
	to(c, eport);
	pid_t pid = fork();
	if (pid == 0) { /* echo server */
		for (;;) {
			struct sockaddr_in from;
			socklen_t l = sizeof(from);
			ssize_t n = recvfrom(e, buf, sizeof(buf), 0, (struct sockaddr *)&from, &l);
			if (n > 0)
				sendto(e, buf, (size_t)n, 0, (struct sockaddr *)&from, l);
		}
	}
	int n = 0;
	for (int i = 0; i < pings; i++) {
		uint64_t t = now_ns();
		send(c, buf, 64, 0);
		if (recv(c, buf, sizeof(buf), 0) == 64)
			rtt[n++] = now_ns() - t;
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	qsort(rtt, (size_t)n, sizeof(rtt[0]), cmp_u64);
	printf(",\"echo_rtt_median_us\":%.3f}\n", n ? rtt[n / 2] / 1e3 : 0.0);
	return 0;
}
