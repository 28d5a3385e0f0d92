/*
 * apps/portecho: echoes what the host writes into a virtio-serial port.
 *
 * Waits for the host to connect, sends every byte back, and at end of file
 * (the host disconnected) says how many bytes it echoed; with -r N it then
 * waits for the host to come back, N times. -n uses O_NONBLOCK (set with
 * fcntl) and poll() instead of blocking reads and writes. -s echoes lines
 * from stdin to stdout instead ("stdin: LINE"), until "quit": the console's
 * input, whichever console it is (the UART, or virtio with console=virtio).
 * Try it: scripts/run --port org.example.data:/tmp/p1 portecho
 *         (then: socat - UNIX-CONNECT:/tmp/p1)
 *
 * Output (what tests/integration/test_console.py reads):
 *   portecho: /dev/virtio-ports/NAME open
 *   portecho: EOF after N bytes            (one per connection)
 *   portecho: done, N bytes in C connections
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int nonblocking;

/* Waits until the host side is connected: POLLHUP clears. */
static int wait_host(int fd)
{
	for (int i = 0; i < 60000; i++) { /* 10 minutes */
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 0) < 0)
			return -1;
		if (p.revents & POLLERR)
			return -1;
		if (!(p.revents & POLLHUP))
			return 0;
		usleep(10000);
	}
	return -1;
}

/* Writes all of buf; 0, or -1 when the host went away (EPIPE) or an error. */
static int write_all(int fd, const char *buf, size_t n)
{
	while (n) {
		ssize_t w = write(fd, buf, n);
		if (w < 0 && errno == EAGAIN && nonblocking) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			if (poll(&p, 1, -1) < 0)
				return -1;
			continue;
		}
		if (w < 0)
			return -1;
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

static int echo_stdin(void)
{
	char line[256];
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line, "quit") == 0)
			return 0;
		printf("stdin: %s\n", line);
	}
	printf("portecho: stdin ended\n");
	return 1;
}

int main(int argc, char **argv)
{
	const char *path = "/dev/virtio-ports/org.example.data";
	int reconnects = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-s") == 0)
			return echo_stdin();
		if (strcmp(argv[i], "-n") == 0)
			nonblocking = 1;
		else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc)
			reconnects = atoi(argv[++i]);
		else
			path = argv[i];
	}
	int fd = open(path, O_RDWR);
	if (fd < 0) {
		printf("portecho: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (nonblocking && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
		printf("portecho: fcntl: %s\n", strerror(errno));
		return 1;
	}
	printf("portecho: %s open%s\n", path, nonblocking ? " (non-blocking)" : "");
	static char buf[16384];
	unsigned long long total = 0;
	int conns = 0;
	for (;;) {
		if (wait_host(fd) != 0) {
			printf("portecho: the host never came\n");
			return 1;
		}
		conns++;
		unsigned long long n = 0;
		for (;;) {
			ssize_t r = read(fd, buf, sizeof(buf));
			if (r < 0 && errno == EAGAIN && nonblocking) {
				struct pollfd p = {.fd = fd, .events = POLLIN};
				if (poll(&p, 1, -1) < 0) {
					printf("portecho: poll: %s\n", strerror(errno));
					return 1;
				}
				continue;
			}
			if (r < 0) {
				printf("portecho: read: %s\n", strerror(errno));
				return 1;
			}
			if (r == 0)
				break;
			n += (unsigned long long)r;
			if (write_all(fd, buf, (size_t)r) != 0) {
				if (errno != EPIPE) {
					printf("portecho: write: %s\n", strerror(errno));
					return 1;
				}
				/* The host left mid-write: the next read says EOF. */
			}
		}
		printf("portecho: EOF after %llu bytes\n", n);
		total += n;
		if (reconnects-- <= 0)
			break;
	}
	printf("portecho: done, %llu bytes in %d connections\n", total, conns);
	close(fd);
	return 0;
}
