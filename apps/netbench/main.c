/*
 * apps/netbench: the `net-udp` workload of the shared benchmark harness
 * (../shared/bench/README.md, "Protocol for a target"), through the BSD
 * sockets, doing what the Linux guest's guest/bench-net.c does:
 *
 *   1. 64-byte UDP payloads to 10.0.2.2:bench_sink_port, flat out, bench_secs
 *   2. the same with 1472-byte payloads (one full 1500-byte IP packet each)
 *   3. bench_pings sequential 64-byte echoes to 10.0.2.2:bench_echo_port:
 *      round-trip median, p99 and minimum
 *
 * Try it:  ../shared/bench/run.sh net-udp --target build/netbench/ringlet.elf
 *
 * The harness gives every target the same command line, without Ringlet's
 * ip= option, and its peer runs no DHCP server: the app gives eth0 the
 * protocol's static 10.0.2.15/24 itself (ringlet_net_set_ipv4) before it
 * prints BENCH-READY. The figures keep the Linux guest's names
 * (udp64_tx_pps, echo_rtt_median_us, ...) so the harness compares them.
 * One echo to the echo port comes first (the peer's ARP entry; hostnet counts it among
 * its echoes; bench_warmup=0 leaves it out). bench_nonblock=1 sends from non-blocking sockets
 * and waits in poll() for POLLOUT on EAGAIN (udpN_eagain, udpN_poll_timeouts: the tests' check
 * of a full transmit ring). Words: bench=net-udp bench_secs=S bench_pings=N bench_sink_port=P
 * bench_echo_port=P [bench_peer=ADDR bench_warmup=0|1 bench_nonblock=0|1]; unknown ones are ignored.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ringlet/args.h>
#include <ringlet/net.h>

#define BENCH_EXIT 16 /* the harness wants QEMU's status 33 = (16 << 1) | 1 */
#define MAX_PINGS  100000

static uint64_t rtt[MAX_PINGS];
static char json[2048];
static size_t json_len;
static char error[160];

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void json_add(const char *fmt, ...)
{
	va_list ap;
	if (json_len >= sizeof(json) - 2)
		return;
	json[json_len] = json_len == 0 ? '{' : ',';
	json_len++;
	va_start(ap, fmt);
	int n = vsnprintf(json + json_len, sizeof(json) - 1 - json_len, fmt, ap);
	va_end(ap);
	if (n > 0)
		json_len += (size_t)n < sizeof(json) - 1 - json_len ? (size_t)n : sizeof(json) - 2 - json_len;
}

static int udp_connect(const char *ip, int port)
{
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0)
		return -1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, ip, &a.sin_addr) != 1 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(s);
		return -1;
	}
	return s;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The p-th percentile of the n sorted values (0 when there are none). */
static uint64_t pct(const uint64_t *v, int n, int p) { return n ? v[(size_t)(n - 1) * (size_t)p / 100] : 0; }

/* Phase 1 and 2: sz-byte datagrams flat out for secs. A non-blocking sender (nonblock) that
 * gets EAGAIN (the NIC's ring is full) waits in poll() for POLLOUT. */
static int blast(const char *peer, int port, int sz, double secs, bool nonblock)
{
	static char payload[2048];
	int s = udp_connect(peer, port);
	if (s < 0 || (nonblock && fcntl(s, F_SETFL, O_NONBLOCK) < 0)) {
		snprintf(error, sizeof(error), "udp socket to %s:%d: %s", peer, port, strerror(errno));
		return -1;
	}
	memset(payload, sz == 64 ? 'a' : 'b', sizeof(payload));
	uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(secs * 1e9), sent = 0, errs = 0;
	uint64_t eagain = 0, poll_timeouts = 0;
	do {
		/* The clock is read once per 64 sends, as the Linux guest does. */
		for (int k = 0; k < 64; k++) {
			memcpy(payload, &sent, sizeof(sent));
			if (send(s, payload, (size_t)sz, 0) == sz) {
				sent++;
			} else if (nonblock && errno == EAGAIN) {
				struct pollfd pfd = {.fd = s, .events = POLLOUT};
				eagain++;
				if (poll(&pfd, 1, 1000) != 1 || !(pfd.revents & POLLOUT))
					poll_timeouts++;
			} else {
				errs++;
			}
		}
	} while (now_ns() < deadline);
	double el = (double)(now_ns() - t0) / 1e9;
	close(s);
	json_add("\"udp%d_sent\":%llu", sz, (unsigned long long)sent);
	json_add("\"udp%d_send_errors\":%llu", sz, (unsigned long long)errs);
	if (nonblock) {
		json_add("\"udp%d_eagain\":%llu", sz, (unsigned long long)eagain);
		json_add("\"udp%d_poll_timeouts\":%llu", sz, (unsigned long long)poll_timeouts);
	}
	json_add("\"udp%d_tx_pps\":%.1f", sz, (double)sent / el);
	json_add("\"udp%d_tx_Mbps\":%.3f", sz, (double)sent * sz * 8.0 / el / 1e6);
	/* Let the last datagrams drain before the next phase (the Linux guest waits as long). */
	usleep(300000);
	return 0;
}

/* Phase 3: sequential 64-byte echoes. */
static int echoes(const char *peer, int port, int pings)
{
	static char payload[64], rb[2048];
	int s = udp_connect(peer, port);
	if (s < 0) {
		snprintf(error, sizeof(error), "udp socket to %s:%d: %s", peer, port, strerror(errno));
		return -1;
	}
	struct timeval tv = {.tv_sec = 0, .tv_usec = 500000};
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	int n = 0, lost = 0;
	for (int i = 0; i < pings; i++) {
		uint64_t seq = 0xec000000ull + (uint64_t)i;
		memset(payload, 'e', sizeof(payload));
		memcpy(payload, &seq, sizeof(seq));
		uint64_t t1 = now_ns();
		if (send(s, payload, sizeof(payload), 0) != (ssize_t)sizeof(payload)) {
			lost++;
			continue;
		}
		for (;;) {
			ssize_t r = recv(s, rb, sizeof(rb), 0);
			if (r < 0) {
				lost++; /* SO_RCVTIMEO: this one is gone */
				break;
			}
			uint64_t got;
			memcpy(&got, rb, sizeof(got));
			if (r >= 8 && got == seq) { /* a late answer to an earlier one is skipped */
				rtt[n++] = now_ns() - t1;
				break;
			}
		}
	}
	close(s);
	qsort(rtt, (size_t)n, sizeof(rtt[0]), cmp_u64);
	json_add("\"echo_pings\":%d", pings);
	json_add("\"echo_lost\":%d", lost);
	json_add("\"echo_rtt_median_us\":%.3f", (double)pct(rtt, n, 50) / 1e3);
	json_add("\"echo_rtt_p99_us\":%.3f", (double)pct(rtt, n, 99) / 1e3);
	json_add("\"echo_rtt_min_us\":%.3f", n ? (double)rtt[0] / 1e3 : 0.0);
	return 0;
}

/*
 * One echo before the timed phases, so that the peer's MAC is known when they start, as the
 * Linux guest's static ARP entry has it known: until the ARP reply is in, lwIP keeps only the
 * last few datagrams for the address and drops the rest while send() reports success.
 */
static void resolve_peer(const char *peer, int port)
{
	char b[16] = "netbench-warmup";
	int s = udp_connect(peer, port);
	if (s < 0)
		return;
	struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (int i = 0; i < 10; i++)
		if (send(s, b, sizeof(b), 0) == (ssize_t)sizeof(b) && recv(s, b, sizeof(b), 0) > 0)
			break;
	close(s);
}

int main(int argc, char **argv)
{
	const char *workload = ringlet_arg(argc, argv, "bench");
	const char *peer = ringlet_arg(argc, argv, "bench_peer");
	double secs = ringlet_arg_num(argc, argv, "bench_secs", 3);
	int sink_port = (int)ringlet_arg_num(argc, argv, "bench_sink_port", 9);
	int echo_port = (int)ringlet_arg_num(argc, argv, "bench_echo_port", 7);
	int pings = (int)ringlet_arg_num(argc, argv, "bench_pings", 1000);
	if (!peer)
		peer = "10.0.2.2";
	if (pings > MAX_PINGS)
		pings = MAX_PINGS;

	if (!workload) {
		fprintf(stderr, "usage: netbench bench=net-udp [bench_secs=S bench_pings=N ...]\n");
		return 2;
	}
	if (ringlet_net_count() == 0)
		snprintf(error, sizeof(error), "no network interface");
	else if (ringlet_net_set_ipv4(0, "10.0.2.15/24", NULL) != 0)
		snprintf(error, sizeof(error), "cannot configure eth0");
	printf("BENCH-READY %llu\n", (unsigned long long)now_ns());
	fflush(stdout);
	if (!error[0] && strcmp(workload, "net-udp") == 0) {
		json_add("\"secs\":%g", secs);
		const char *warm = ringlet_arg(argc, argv, "bench_warmup");
		if (!warm || strcmp(warm, "0") != 0)
			resolve_peer(peer, echo_port);
		const char *nb = ringlet_arg(argc, argv, "bench_nonblock");
		bool nonblock = nb && strcmp(nb, "1") == 0;
		if (blast(peer, sink_port, 64, secs, nonblock) == 0 &&
		    blast(peer, sink_port, 1472, secs, nonblock) == 0)
			echoes(peer, echo_port, pings);
	} else if (!error[0] && strcmp(workload, "boot") != 0) {
		snprintf(error, sizeof(error), "%s is not supported by netbench", workload);
	}
	if (error[0])
		printf("BENCH-RESULT {\"error\":\"%s\"}\n", error);
	else {
		json[json_len] = '}'; /* json_add leaves room for it */
		json[json_len + 1] = 0;
		printf("BENCH-RESULT %s\n", json_len ? json : "{}");
	}
	fflush(stdout);
	return BENCH_EXIT;
}
