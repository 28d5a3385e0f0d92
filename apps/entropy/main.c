/*
 * apps/entropy: where Ringlet's random numbers come from, and what they
 * look like through every interface.
 *
 *   scripts/run --rng entropy                 the seeding report and 32 random bytes
 *   scripts/run --rng entropy -- check        every interface, with figures the tests check
 *   scripts/run --rng entropy -- bench=rng    the shared harness's rng workload
 *
 * Default: prints the seeding report (which sources seeded the generator at
 * boot) and `random: <64 hex digits>` from getentropy().
 *
 * check: getentropy() at and past its 256-byte limit, getrandom() with each
 * of Linux's flags and with bad ones, /dev/urandom, /dev/random and
 * /dev/hwrng through open/read, arc4random(), arc4random_uniform(), and
 * 1 MiB from getrandom() (past the reseed threshold): its share of one
 * bits and how many reseeds the kernel did.
 *
 * Benchmark harness mode (../shared/bench/README.md, "Protocol for a
 * target"): `bench=rng` prints `BENCH-READY <ns>`, times the first 32 bytes
 * from the device (/dev/hwrng, as the Linux guest does), then reads
 * bench_rng_mib MiB (default 4) from it in 1 MiB reads, prints
 * `BENCH-RESULT {"rng_first32_us":..,"rng_MiBps":..}` and exits with status
 * 16 (QEMU exits 33).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <ringlet/args.h>
#include <ringlet/random.h>

#define BENCH_EXIT 16 /* the harness wants QEMU's status 33 = (16 << 1) | 1 */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void print_hex(const char *label, const uint8_t *p, size_t n)
{
	printf("%s: ", label);
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
	printf("\n");
}

static void report(void)
{
	struct random_info ri;
	random_info(&ri);
	printf("entropy: seeded from %s\n", ri.seeded_from);
	printf("entropy: weak %s, virtio-rng %s, reseeds %llu, output %llu bytes\n", ri.weak ? "yes" : "no",
	       ri.virtio_rng ? "yes" : "no", (unsigned long long)ri.reseeds, (unsigned long long)ri.bytes);
}

static const char *err_name(int e)
{
	switch (e) {
	case 0:
		return "ok";
	case EIO:
		return "EIO";
	case EINVAL:
		return "EINVAL";
	case ENODEV:
		return "ENODEV";
	case ENOENT:
		return "ENOENT";
	default:
		return strerror(e);
	}
}

/* Reads n bytes of a device file; prints them or the error. */
static void read_file(const char *path, size_t n)
{
	uint8_t buf[64];
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		printf("%s: open %s\n", path, err_name(errno));
		return;
	}
	ssize_t r = read(fd, buf, n);
	if (r != (ssize_t)n)
		printf("%s: read %zd %s\n", path, r, err_name(r < 0 ? errno : 0));
	else
		print_hex(path, buf, n);
	close(fd);
}

static void grnd(const char *name, unsigned flags)
{
	uint8_t buf[64];
	errno = 0;
	ssize_t r = getrandom(buf, sizeof(buf), flags);
	printf("getrandom(64, %s): %zd %s\n", name, r, err_name(r < 0 ? errno : 0));
}

static int check(void)
{
	static uint8_t big[1 << 20];
	uint8_t buf[257];

	errno = 0;
	int r = getentropy(buf, 256);
	printf("getentropy(256): %d %s\n", r, err_name(r < 0 ? errno : 0));
	errno = 0;
	r = getentropy(buf, 257);
	printf("getentropy(257): %d %s\n", r, err_name(r < 0 ? errno : 0));

	grnd("0", 0);
	grnd("GRND_NONBLOCK", GRND_NONBLOCK);
	grnd("GRND_RANDOM", GRND_RANDOM);
	grnd("GRND_INSECURE", GRND_INSECURE);
	grnd("GRND_RANDOM|GRND_INSECURE", GRND_RANDOM | GRND_INSECURE);
	grnd("0x8", 0x8);

	read_file("/dev/urandom", 32);
	read_file("/dev/random", 32);
	read_file("/dev/hwrng", 32);

	/* Eight getentropy() calls: all different. */
	uint8_t seen[8][32];
	int distinct = 0;
	for (int i = 0; i < 8; i++) {
		getentropy(seen[i], 32);
		int dup = 0;
		for (int j = 0; j < i; j++)
			dup |= memcmp(seen[i], seen[j], 32) == 0;
		distinct += !dup;
	}
	printf("getentropy x8: %d distinct\n", distinct);

	printf("arc4random: %08lx %08lx\n", (unsigned long)arc4random(), (unsigned long)arc4random());
	unsigned counts[6] = {0}, out_of_range = 0;
	for (int i = 0; i < 6000; i++) {
		uint32_t v = arc4random_uniform(6);
		if (v < 6)
			counts[v]++;
		else
			out_of_range++;
	}
	printf("arc4random_uniform(6) x6000: %u %u %u %u %u %u, out of range %u\n", counts[0], counts[1], counts[2],
	       counts[3], counts[4], counts[5], out_of_range);

	/* 1 MiB: past RANDOM_RESEED_BYTES, so the next call reseeds. */
	ssize_t got = getrandom(big, sizeof(big), 0);
	unsigned long long ones = 0;
	for (size_t i = 0; i < sizeof(big); i++)
		ones += (unsigned)__builtin_popcount(big[i]);
	printf("getrandom(1 MiB): %zd bytes, %llu one bits of %llu\n", got, ones, 8ull * sizeof(big));
	getentropy(buf, 32);
	report();
	return 0;
}

/* Reads exactly n bytes from fd. */
static int read_full(int fd, uint8_t *buf, size_t n)
{
	while (n) {
		ssize_t r = read(fd, buf, n);
		if (r <= 0)
			return -1;
		buf += r;
		n -= (size_t)r;
	}
	return 0;
}

static int bench_rng(int argc, char **argv)
{
	const char *mib_s = ringlet_arg(argc, argv, "bench_rng_mib");
	double mib = mib_s ? atof(mib_s) : 4;
	uint64_t total = (uint64_t)(mib * 1048576);
	const size_t chunk = 1 << 20;
	uint8_t *buf = malloc(chunk);
	char error[96] = "";

	printf("BENCH-READY %llu\n", (unsigned long long)now_ns());
	fflush(stdout);
	int fd = open("/dev/hwrng", O_RDONLY);
	uint64_t t0 = now_ns(), t1 = 0, t2 = 0;
	if (!buf)
		snprintf(error, sizeof(error), "no memory");
	else if (fd < 0)
		snprintf(error, sizeof(error), "open /dev/hwrng: %s", strerror(errno));
	else if (read_full(fd, buf, 32) != 0)
		snprintf(error, sizeof(error), "read /dev/hwrng: %s", strerror(errno));
	else {
		t1 = now_ns();
		for (uint64_t left = total; left && !error[0];) {
			size_t n = left < chunk ? (size_t)left : chunk;
			if (read_full(fd, buf, n) != 0)
				snprintf(error, sizeof(error), "read /dev/hwrng: %s", strerror(errno));
			left -= n;
		}
		t2 = now_ns();
	}
	if (error[0])
		printf("BENCH-RESULT {\"error\":\"%s\"}\n", error);
	else
		printf("BENCH-RESULT {\"rng_bytes\":%llu,\"rng_first32_us\":%.1f,\"rng_MiBps\":%.1f}\n",
		       (unsigned long long)total, (t1 - t0) / 1e3, total / 1048576.0 / ((t2 - t1) / 1e9));
	fflush(stdout);
	return BENCH_EXIT;
}

int main(int argc, char **argv)
{
	const char *workload = ringlet_arg(argc, argv, "bench");
	if (workload) {
		if (strcmp(workload, "rng") == 0)
			return bench_rng(argc, argv);
		printf("BENCH-READY %llu\n", (unsigned long long)now_ns());
		if (strcmp(workload, "boot") == 0)
			printf("BENCH-RESULT {}\n");
		else
			printf("BENCH-RESULT {\"error\":\"not supported by apps/entropy\"}\n");
		fflush(stdout);
		return BENCH_EXIT;
	}
	report();
	if (argc > 1 && strcmp(argv[1], "check") == 0)
		return check();
	if (argc > 1) {
		fprintf(stderr, "entropy: unknown mode '%s' (check, bench=rng)\n", argv[1]);
		return 2;
	}
	uint8_t r[32];
	if (getentropy(r, sizeof(r)) != 0) {
		printf("entropy: getentropy: %s\n", strerror(errno));
		return 1;
	}
	print_hex("random", r, sizeof(r));
	return 0;
}
