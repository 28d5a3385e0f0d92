/*
 * apps/blkbench: how fast a disk (the first, or dev=NAME) is, through <ringlet/blk.h>'s
 * asynchronous calls (submit many, poll for completions).
 *
 * Phases, each bounded in time (secs=N, default 3):
 *   seq read    128 KiB requests from offset 0 on, wrapping, seq_qd in flight
 *   seq write   128 KiB requests, the same way, one flush at the end
 *   qd1         4 KiB random reads one at a time: IOPS, median and p99 latency
 *   qdN         4 KiB random reads with qd=N (default 32) in flight
 *   randwrite   4 KiB random writes one at a time, a flush after every 64
 * then one JSON line with the figures. The writes overwrite the disk: give it
 * a scratch image.
 *
 *   scripts/run --disk scratch.img blkbench -- secs=1 qd=32
 *
 * Options (key=value words): dev=NAME (vda, sda, ...; default the first
 * disk; bench_dev= in harness mode), secs, qd, seq_qd (default 1), only=PHASE[,...]
 * (seqread,seqwrite,qd1,qdN,randwrite), and wait= how to wait for a
 * completion: block (default) calls blk_wait(), which waits in the kernel's
 * one wait loop (polls briefly, then halts until the disk's interrupt);
 * spin calls blk_poll() in a tight loop; pause does the same with a PAUSE
 * instruction between polls (under TCG every PAUSE leaves the translated
 * code, which is slow). Spinning in the application keeps the vCPU busy, and
 * on a host core shared with QEMU that takes the time QEMU needs to complete
 * the requests. A spinning wait that sees nothing for 1 s falls back to
 * blk_wait().
 *
 * Benchmark harness mode (../shared/bench/README.md, "Protocol for a
 * target"): a `bench=WORKLOAD` word on the command line (the kernel hands
 * words it does not know to the application) runs that workload with
 * bench_secs=, bench_qd= (and bench_wait=, as wait= above), between a `BENCH-READY <ns>` and a
 * `BENCH-RESULT {json}` line, and exits with status 16 (QEMU exits 33).
 * The workloads do what the Linux guest's bench-blk.c does: blk-seq reads
 * the whole disk at least once at QD1; blk-rand is qd1 then qdN; blk-write is
 * randwrite.
 */
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ringlet/args.h>
#include <ringlet/blk.h>

#define SEQ_BYTES  (128u * 1024)
#define RAND_BYTES 4096u
#define MAX_QD     256
#define MAX_LAT    (1u << 20) /* latency samples kept (8 MiB) */
#define BENCH_EXIT 16         /* the harness wants QEMU's status 33 = (16 << 1) | 1 */

static int disk_index; /* the disk's index: the first, or dev=NAME */
static struct blk_info disk;
static enum { SPIN, PAUSE, BLOCK } wait_mode; /* wait= */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static bool harness_names; /* bench=: also the harness's qdN_* keys */
static uint64_t *lat;      /* QD1 latencies, ns */
static size_t nlat;

/* ---- small helpers -------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift64(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

/* A random 4 KiB-aligned offset on the disk. */
static uint64_t rand_offset(void) { return (xorshift64() % (disk.size / RAND_BYTES)) * RAND_BYTES; }

static void *dma_alloc(size_t bytes)
{
	/* This newlib declares posix_memalign() and aligned_alloc() but
	 * links neither (aligned_alloc calls the missing posix_memalign). */
	void *p = memalign(4096, bytes);
	if (!p)
		return NULL;
	memset(p, 0xa5, bytes); /* touch it: no first-use cost inside a phase */
	return p;
}

/* The JSON object being built, printed whole at the end. */
static char json[2048];
static size_t json_len;

static void json_add(const char *fmt, ...)
{
	va_list ap;
	if (json_len >= sizeof(json))
		return;
	json[json_len] = json_len == 0 ? '{' : ',';
	json_len++;
	va_start(ap, fmt);
	int n = vsnprintf(json + json_len, sizeof(json) - json_len, fmt, ap);
	va_end(ap);
	if (n > 0)
		json_len += (size_t)n;
}

static const char *json_end(void)
{
	if (json_len == 0)
		return "{}";
	if (json_len < sizeof(json) - 1) {
		json[json_len++] = '}';
		json[json_len] = 0;
	}
	return json;
}

static void json_num(const char *key, double v) { json_add("\"%s\":%.1f", key, v); }
static void json_int(const char *key, unsigned long long v) { json_add("\"%s\":%llu", key, v); }

/* The phase that failed and why, for the error figure. */
static char error[128];

static int failed(const char *what, int err)
{
	snprintf(error, sizeof(error), "%s: %s", what, strerror(-err));
	return err;
}

/* ---- the request engine --------------------------------------------------- */

/* Waits for at least one completion; returns how many are in done[], or a
 * negative errno (a failed request counts as an error). */
static int reap(struct blk_request **done, int max)
{
	int n;
	if (wait_mode != BLOCK) {
		uint64_t t0 = now_ns();
		for (unsigned i = 1; (n = blk_poll(disk_index, done, max)) == 0; i++) {
			if (wait_mode == PAUSE)
				__builtin_ia32_pause();
			if (i % 4096 == 0 && now_ns() - t0 > 1000000000ull) {
				/* A request this late is not normal: let blk_wait()
				 * (which gives up on the device after 30 s) decide. */
				printf("blkbench: no completion for 1 s; waiting in blk_wait()\n");
				n = blk_wait(disk_index, done, max);
				printf("blkbench: blk_wait() returned %d after %llu ms\n", n,
				       (unsigned long long)(now_ns() - t0) / 1000000);
				break;
			}
		}
	} else {
		n = blk_wait(disk_index, done, max);
	}
	if (n < 0)
		return n;
	if (n == 0)
		return -EIO; /* nothing in flight, yet we waited: a bug here */
	for (int i = 0; i < n; i++)
		if (done[i]->status)
			return done[i]->status;
	return n;
}

/* Runs op-requests of len bytes at offsets from next_offset() with qd in
 * flight until the deadline (and, with min_bytes, until that many bytes are
 * done); a flush after every flush_every requests (0: never), waited for with
 * nothing else in flight, as a synchronous fsync() would be. Records
 * latencies when qd == 1. Returns completed requests or a negative errno. */
struct phase {
	enum blk_op op;
	uint32_t len;
	int qd;
	uint64_t (*next_offset)(void);
	uint64_t deadline_ns;
	uint64_t min_bytes;
	unsigned flush_every;
	uint8_t *bufs; /* qd buffers of len bytes */
};

static uint64_t seq_pos;
static uint64_t seq_offset(void)
{
	if (seq_pos + SEQ_BYTES > disk.size)
		seq_pos = 0;
	uint64_t off = seq_pos;
	seq_pos += SEQ_BYTES;
	return off;
}

static int flush_now(void)
{
	struct blk_request f = {.op = BLK_FLUSH}, *done[1];
	int err = blk_submit(disk_index, &f);
	if (err)
		return err;
	err = reap(done, 1);
	return err < 0 ? err : 0;
}

static long long run_phase(const struct phase *p)
{
	static struct blk_request reqs[MAX_QD];
	struct blk_request *done[MAX_QD];
	uint64_t submitted = 0, completed = 0, bytes = 0, since_flush = 0;
	int inflight = 0, err;
	bool stop = false;

	for (int i = 0; i < p->qd; i++)
		reqs[i] = (struct blk_request){.op = p->op, .len = p->len, .buf = p->bufs + (size_t)i * p->len};
	/* Free request slots: a stack of indices. */
	int free_idx[MAX_QD], nfree = p->qd;
	for (int i = 0; i < p->qd; i++)
		free_idx[i] = p->qd - 1 - i;

	for (;;) {
		while (!stop && nfree > 0) {
			struct blk_request *r = &reqs[free_idx[nfree - 1]];
			r->offset = p->next_offset();
			r->user = (void *)(uintptr_t)now_ns();
			if ((err = blk_submit(disk_index, r)) == -EAGAIN)
				break;
			if (err)
				return failed("submit", err);
			nfree--;
			inflight++;
			submitted++;
		}
		if (inflight == 0)
			break;
		int n = reap(done, MAX_QD);
		uint64_t t = now_ns();
		if (n < 0)
			return failed(p->op == BLK_READ ? "read" : "write", n);
		for (int i = 0; i < n; i++) {
			if (p->qd == 1 && lat && nlat < MAX_LAT)
				lat[nlat++] = t - (uint64_t)(uintptr_t)done[i]->user;
			free_idx[nfree++] = (int)(done[i] - reqs);
			inflight--;
			completed++;
			bytes += p->len;
		}
		since_flush += (uint64_t)n;
		if (!stop && t >= p->deadline_ns && bytes >= p->min_bytes)
			stop = true;
		if (p->flush_every && since_flush >= p->flush_every) {
			/* Like fsync(): the writes before it complete first, and
			 * nothing new starts until it is done. */
			while (inflight > 0) {
				if ((n = reap(done, MAX_QD)) < 0)
					return failed("write", n);
				for (int i = 0; i < n; i++)
					free_idx[nfree++] = (int)(done[i] - reqs);
				inflight -= n;
				completed += (uint64_t)n;
				bytes += (uint64_t)n * p->len;
			}
			if ((err = flush_now()) != 0)
				return failed("flush", err);
			since_flush = 0;
		}
	}
	if (p->op == BLK_WRITE && disk.flush && (err = flush_now()) != 0)
		return failed("flush", err);
	return (long long)completed;
}

/* ---- phases ---------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct_us(unsigned pct)
{
	if (nlat == 0)
		return 0;
	size_t i = nlat * pct / 100;
	return (double)lat[i < nlat ? i : nlat - 1] / 1e3;
}

static double secs_since(uint64_t t0) { return (double)(now_ns() - t0) / 1e9; }

/* Runs phase p for `secs` with its own qd buffers; sets *per_s to requests
 * per second. Returns 0 or a negative errno (already reported). */
static int timed_phase(struct phase *p, double secs, double *per_s)
{
	p->bufs = dma_alloc((size_t)p->qd * p->len);
	if (!p->bufs)
		return failed("malloc", -ENOMEM);
	uint64_t t0 = now_ns();
	p->deadline_ns = t0 + (uint64_t)(secs * 1e9);
	long long n = run_phase(p);
	double el = secs_since(t0);
	free(p->bufs);
	if (n < 0)
		return (int)n;
	*per_s = (double)n / el;
	return 0;
}

static int seq(enum blk_op op, double secs, int qd, bool full_pass, const char *key)
{
	double per_s;
	seq_pos = 0;
	struct phase p = {.op = op,
	                  .len = SEQ_BYTES,
	                  .qd = qd,
	                  .next_offset = seq_offset,
	                  .min_bytes = full_pass ? disk.size / SEQ_BYTES * SEQ_BYTES : 0};
	int err = timed_phase(&p, secs, &per_s);
	if (err)
		return err;
	json_num(key, per_s * SEQ_BYTES / 1e6);
	return 0;
}

static int rand_read(double secs, int qd, bool qd1_figures)
{
	char key[32];
	double per_s;
	nlat = 0;
	struct phase p = {.op = BLK_READ, .len = RAND_BYTES, .qd = qd, .next_offset = rand_offset};
	int err = timed_phase(&p, secs, &per_s);
	if (err)
		return err;
	snprintf(key, sizeof(key), "qd%d_iops", qd);
	json_num(key, per_s);
	if (qd != 1 && harness_names) { /* the harness's names for the deep queue */
		json_num("qdN_iops", per_s);
		json_int("qdN", (unsigned long long)qd);
	}
	if (qd == 1 && qd1_figures) {
		qsort(lat, nlat, sizeof(lat[0]), cmp_u64);
		json_num("qd1_lat_median_us", pct_us(50));
		json_num("qd1_lat_p99_us", pct_us(99));
	}
	return 0;
}

static int rand_write(double secs)
{
	double per_s;
	struct phase p = {.op = BLK_WRITE,
	                  .len = RAND_BYTES,
	                  .qd = 1,
	                  .next_offset = rand_offset,
	                  .flush_every = disk.flush ? 64 : 0};
	int err = timed_phase(&p, secs, &per_s);
	if (err)
		return err;
	json_num("randwrite_4k_iops", per_s);
	return 0;
}

/* ---- command line ----------------------------------------------------------- */

static int clamp_qd(double qd) { return qd < 1 ? 1 : qd > MAX_QD ? MAX_QD : (int)qd; }

static bool want(const char *only, const char *phase)
{
	if (!only)
		return true;
	size_t n = strlen(phase);
	for (const char *p = only; (p = strstr(p, phase)) != NULL; p += n)
		if ((p == only || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
			return true;
	return false;
}

static int open_disk(const char *name)
{
	if (blk_count() == 0) {
		snprintf(error, sizeof(error), "no disk attached");
		return -1;
	}
	for (disk_index = 0; name && disk_index < blk_count(); disk_index++)
		if (blk_info(disk_index, &disk) == 0 && !strcmp(disk.name, name))
			break;
	if (disk_index == blk_count()) {
		snprintf(error, sizeof(error), "no disk %s", name);
		return -1;
	}
	blk_info(disk_index, &disk);
	if (disk.size < 1024 * 1024) {
		snprintf(error, sizeof(error), "disk %s is smaller than 1 MiB", disk.name);
		return -1;
	}
	lat = malloc(MAX_LAT * sizeof(*lat));
	return 0;
}

/* bench=WORKLOAD: one workload between BENCH-READY and BENCH-RESULT. */
static int harness(const char *workload, int argc, char **argv)
{
	double secs = ringlet_arg_num(argc, argv, "bench_secs", 3);
	int qd = clamp_qd(ringlet_arg_num(argc, argv, "bench_qd", 32));
	int err = 0;

	harness_names = true;
	printf("BENCH-READY %llu\n", (unsigned long long)now_ns());
	fflush(stdout);
	const char *w = ringlet_arg(argc, argv, "bench_wait");
	wait_mode = !w || !strcmp(w, "block") ? BLOCK : !strcmp(w, "pause") ? PAUSE : SPIN;
	if (!strcmp(workload, "boot")) {
		/* nothing to measure in the guest */
	} else if (strncmp(workload, "blk-", 4) != 0) {
		snprintf(error, sizeof(error), "not supported by blkbench");
	} else if (open_disk(ringlet_arg(argc, argv, "bench_dev")) != 0) {
		err = -1;
	} else if (json_int("disk_bytes", disk.size), !strcmp(workload, "blk-seq")) {
		err = seq(BLK_READ, secs, 1, true, "seq_read_MBps");
	} else if (!strcmp(workload, "blk-rand")) {
		if ((err = rand_read(secs, 1, true)) == 0)
			err = rand_read(secs, qd, false);
	} else if (!strcmp(workload, "blk-write")) {
		err = rand_write(secs);
	} else {
		snprintf(error, sizeof(error), "not supported by blkbench");
	}
	if (error[0])
		printf("BENCH-RESULT {\"error\":\"%s\"}\n", error);
	else
		printf("BENCH-RESULT %s\n", json_end());
	fflush(stdout);
	(void)err;
	return BENCH_EXIT;
}

int main(int argc, char **argv)
{
	const char *workload = ringlet_arg(argc, argv, "bench");
	if (workload)
		return harness(workload, argc, argv);

	double secs = ringlet_arg_num(argc, argv, "secs", 3);
	int qd = clamp_qd(ringlet_arg_num(argc, argv, "qd", 32));
	int seq_qd = clamp_qd(ringlet_arg_num(argc, argv, "seq_qd", 1));
	const char *w = ringlet_arg(argc, argv, "wait");
	const char *only = ringlet_arg(argc, argv, "only");
	wait_mode = !w || !strcmp(w, "block") ? BLOCK : !strcmp(w, "pause") ? PAUSE : SPIN;
	char qd_phase[16];
	snprintf(qd_phase, sizeof(qd_phase), "qd%d", qd);

	int err = open_disk(ringlet_arg(argc, argv, "dev"));
	if (!err && want(only, "seqread"))
		err = seq(BLK_READ, secs, seq_qd, false, "seq_read_MBps");
	if (!err && want(only, "seqwrite"))
		err = seq(BLK_WRITE, secs, seq_qd, false, "seq_write_MBps");
	if (!err && want(only, "qd1"))
		err = rand_read(secs, 1, true);
	if (!err && qd != 1 && (want(only, "qdN") || want(only, qd_phase)))
		err = rand_read(secs, qd, false);
	if (!err && want(only, "randwrite"))
		err = rand_write(secs);
	if (err) {
		printf("error: blkbench: %s\n", error);
		return 1;
	}
	printf("%s\n", json_end());
	return 0;
}
