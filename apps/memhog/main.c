/*
 * apps/memhog: takes and gives back memory on command, so that the balloon
 * can be watched at work (docs/balloon.md).
 *
 *   scripts/run --balloon --qmp /tmp/q.sock -m 256M memhog
 *   scripts/run --balloon memhog -- bench=balloon    the shared harness's balloon workload
 *
 * Commands, one a line on the serial console; each answers with one line
 * that a test can parse (sizes in bytes):
 *
 *   alloc SIZE   one block of SIZE (suffix K, M or G), every page written:
 *                "alloc ok SIZE held N" or "alloc failed SIZE held N"
 *   fill         1 MiB blocks until malloc fails: "fill got N held N"
 *   free         frees every block, newest first (so malloc trims the heap
 *                and the pages reach the page allocator): "free ok held 0"
 *   stat         "stat total=.. free=.. heap=.. held=.. balloon=.. target=..
 *                oom_pages=.. oom_events=.. reported=.. stats_sent=.."
 *                (balloon, target: pages; the rest bytes or counts)
 *   spin SECS    computes for SECS seconds without a system call that waits
 *                (the balloon follows the host from the timer tick meanwhile):
 *                "spin start", then "spin done N" (N: loop iterations)
 *   quit         exits with status 0
 *
 * bench=balloon: prints BENCH-READY, then only waits on the console (the
 * balloon driver follows the host meanwhile) until a line contains
 * BENCH-STOP, prints BENCH-RESULT {} and exits with status 16 (QEMU 33).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ringlet/balloon.h>

#define BENCH_EXIT 16
#define MAX_BLOCKS 4096

static void *blocks[MAX_BLOCKS];
static size_t sizes[MAX_BLOCKS];
static int nblocks;
static uint64_t held;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* "100M" -> bytes; 0 when it is not a size. */
static uint64_t parse_size(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return 0;
	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10;
		end++;
		break;
	case 'm':
	case 'M':
		v <<= 20;
		end++;
		break;
	case 'g':
	case 'G':
		v <<= 30;
		end++;
		break;
	}
	return *end == '\0' || *end == '\n' || *end == 'B' || *end == 'i' ? v : 0;
}

/* One block, every page written (a page the guest never touched costs the
 * host nothing, and would prove nothing). */
static int take(size_t n)
{
	if (nblocks == MAX_BLOCKS)
		return -1;
	char *p = malloc(n);
	if (!p)
		return -1;
	for (size_t i = 0; i < n; i += 4096)
		p[i] = (char)(i >> 12 | 1);
	blocks[nblocks] = p;
	sizes[nblocks++] = n;
	held += n;
	return 0;
}

static void print_stat(void)
{
	struct ringlet_mem_info m;
	struct ringlet_balloon_info b;
	ringlet_mem_info(&m);
	ringlet_balloon_info(&b);
	printf("stat total=%llu free=%llu heap=%llu held=%llu balloon=%u target=%u oom_pages=%llu oom_events=%llu "
	       "reported=%llu stats_sent=%llu\n",
	       (unsigned long long)m.total_bytes, (unsigned long long)m.free_bytes, (unsigned long long)m.heap_bytes,
	       (unsigned long long)held, b.actual_pages, b.target_pages, (unsigned long long)b.oom_pages,
	       (unsigned long long)b.oom_events, (unsigned long long)b.reported_blocks,
	       (unsigned long long)b.stats_sent);
}

static int bench(void)
{
	char line[256];
	printf("BENCH-READY %llu\n", (unsigned long long)now_ns());
	while (fgets(line, sizeof(line), stdin))
		if (strstr(line, "BENCH-STOP"))
			break;
	printf("BENCH-RESULT {}\n");
	return BENCH_EXIT;
}

int main(int argc, char **argv)
{
	char line[256];
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "bench=balloon") == 0)
			return bench();
	printf("memhog ready\n");
	while (fgets(line, sizeof(line), stdin)) {
		char *cmd = strtok(line, " \t\r\n");
		char *a = strtok(NULL, " \t\r\n");
		if (!cmd)
			continue;
		if (strcmp(cmd, "alloc") == 0) {
			uint64_t n = a ? parse_size(a) : 0;
			if (!n || n > SIZE_MAX / 2) {
				printf("alloc bad size\n");
				continue;
			}
			int ok = take((size_t)n) == 0;
			printf("alloc %s %llu held %llu\n", ok ? "ok" : "failed", (unsigned long long)n,
			       (unsigned long long)held);
		} else if (strcmp(cmd, "fill") == 0) {
			uint64_t got = 0;
			while (take(1 << 20) == 0)
				got += 1 << 20;
			printf("fill got %llu held %llu\n", (unsigned long long)got, (unsigned long long)held);
		} else if (strcmp(cmd, "free") == 0) {
			while (nblocks > 0) {
				nblocks--;
				free(blocks[nblocks]);
				held -= sizes[nblocks];
			}
			printf("free ok held %llu\n", (unsigned long long)held);
		} else if (strcmp(cmd, "stat") == 0) {
			print_stat();
		} else if (strcmp(cmd, "spin") == 0) {
			uint64_t end = now_ns() + (uint64_t)(a ? atof(a) : 1) * 1000000000ull;
			volatile uint64_t n = 0;
			printf("spin start\n");
			while (now_ns() < end)
				n++;
			printf("spin done %llu\n", (unsigned long long)n);
		} else if (strcmp(cmd, "quit") == 0) {
			return 0;
		} else {
			printf("unknown command '%s' (alloc SIZE, fill, free, stat, spin SECS, quit)\n", cmd);
		}
	}
	return 0;
}
