/*
 * apps/blktool: a small disk utility. It runs the commands given as its
 * arguments in order, printing one result line for each, and stops with
 * `error: ...` and a non-zero status at the first that fails.
 *
 *   info                         one line per disk
 *   sha256 DEV OFFSET LENGTH     SHA-256 of that byte range
 *   fill DEV OFFSET LENGTH BYTE  write BYTE over the range
 *   zero DEV OFFSET LENGTH       the device's write-zeroes command
 *   discard DEV OFFSET LENGTH    the device's discard command
 *   flush DEV                    empty the device's write cache
 *   id DEV                       the device's serial (get-id), or (none)
 *   parallel DEV COUNT           COUNT 4 KiB reads of the disk's start, all
 *                                submitted before any is waited for (and one
 *                                synchronous read among them); prints how
 *                                many were in flight and the SHA-256 of the
 *                                data in disk order
 *   rounds DEV COUNT             COUNT rounds of: fill the queue with 4 KiB
 *                                reads, then one synchronous read, without
 *                                reaping; then take every completion and
 *                                check each came back exactly once; prints
 *                                the SHA-256 of the asynchronous data in
 *                                disk order and of the synchronous reads
 *   twin DEV DEV2 COUNT          COUNT 4 KiB reads of each of two disks, in
 *                                flight together (and a synchronous read of
 *                                DEV2 among them): each must come back once,
 *                                from its own disk; prints both SHA-256s
 *   eof DEV                      fstat's size, then read() from 0 until it
 *                                returns 0: prints both, the SHA-256 of what
 *                                was read and what a pread at the size gives
 *   sleep SECONDS                wait (tests use it to kill a running guest)
 *
 * DEV is a disk's name: vda, vdb, ... (virtio-blk), sda, sdb, ... (virtio-scsi
 * LUNs); numbers are decimal or 0x-hex, with an optional
 * K, M or G suffix. Try it:
 *   scripts/run --disk disk.img blktool -- info sha256 vda 0 1M
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ringlet/blk.h>

#include "sha256.h"

#define CHUNK (1u << 20)

static int fail(const char *cmd, const char *dev, int err)
{
	printf("error: %s %s: %s\n", cmd, dev ? dev : "", strerror(err));
	return 1;
}

/* Decimal or 0x-hex (a leading 0 is not octal), optional K/M/G. */
static int number(const char *s, unsigned long long *out)
{
	char *end;
	int base = 10;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		base = 16;
	else if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, base);
	if (errno || end == s)
		return -1;
	unsigned shift = 0;
	if (*end == 'K' || *end == 'k')
		shift = 10;
	else if (*end == 'M' || *end == 'm')
		shift = 20;
	else if (*end == 'G' || *end == 'g')
		shift = 30;
	if (shift)
		end++;
	if (*end || (shift && v > (~0ull >> shift)))
		return -1;
	*out = v << shift;
	return 0;
}

/* The index of the disk named dev ("vda", "sdb"); -1 if there is none. */
static int disk_of(const char *dev)
{
	for (int i = 0; i < blk_count(); i++) {
		struct blk_info in;
		if (blk_info(i, &in) == 0 && !strcmp(in.name, dev))
			return i;
	}
	return -1;
}

static int cmd_info(void)
{
	for (int i = 0; i < blk_count(); i++) {
		struct blk_info in;
		blk_info(i, &in);
		printf("info %s size=%llu block=%u ro=%s features=0x%llx transport=%s bus=%s flush=%s discard=%s "
		       "write_zeroes=%s queue=%u wakeup=%s wakeups=%llu\n",
		       in.name, (unsigned long long)in.size, in.block_size, in.read_only ? "yes" : "no",
		       (unsigned long long)in.features, in.modern ? "modern" : "legacy", in.bus,
		       in.flush ? "yes" : "no", in.discard ? "yes" : "no", in.write_zeroes ? "yes" : "no",
		       in.queue_size, in.wakeup, (unsigned long long)in.wakeups);
	}
	if (blk_count() == 0)
		printf("info no disks\n");
	return 0;
}

static int cmd_sha256(const char *dev, unsigned long long off, unsigned long long len)
{
	char path[16];
	snprintf(path, sizeof(path), "/dev/%s", dev);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return fail("sha256", dev, errno);
	uint8_t *buf = malloc(CHUNK), digest[32];
	struct sha256 s;
	sha256_init(&s);
	for (unsigned long long done = 0; done < len;) {
		size_t n = len - done < CHUNK ? (size_t)(len - done) : CHUNK;
		ssize_t got = pread(fd, buf, n, (off_t)(off + done));
		if (got <= 0) {
			int err = got == 0 ? EINVAL : errno; /* 0: past the end of the disk */
			free(buf);
			close(fd);
			return fail("sha256", dev, err);
		}
		sha256_update(&s, buf, (size_t)got);
		done += (unsigned long long)got;
	}
	sha256_final(&s, digest);
	free(buf);
	close(fd);
	printf("sha256 %s %llu %llu ", dev, off, len);
	for (int i = 0; i < 32; i++)
		printf("%02x", digest[i]);
	printf("\n");
	return 0;
}

static int cmd_fill(const char *dev, unsigned long long off, unsigned long long len, unsigned long long byte)
{
	char path[16];
	if (byte > 255)
		return fail("fill", dev, EINVAL);
	snprintf(path, sizeof(path), "/dev/%s", dev);
	int fd = open(path, O_RDWR);
	if (fd < 0)
		return fail("fill", dev, errno);
	uint8_t *buf = malloc(CHUNK);
	memset(buf, (int)byte, CHUNK);
	for (unsigned long long done = 0; done < len;) {
		size_t n = len - done < CHUNK ? (size_t)(len - done) : CHUNK;
		ssize_t put = pwrite(fd, buf, n, (off_t)(off + done));
		if (put <= 0) {
			int err = errno;
			free(buf);
			close(fd);
			return fail("fill", dev, err);
		}
		done += (unsigned long long)put;
	}
	free(buf);
	close(fd);
	printf("ok fill %s %llu %llu 0x%02llx\n", dev, off, len, byte);
	return 0;
}

/* Many requests in flight at once: the block API's asynchronous side. The
 * completions come back in any order; each request's buffer is its place. */
static int cmd_parallel(int disk, const char *dev, unsigned long long count)
{
	if (count == 0 || count > 4096)
		return fail("parallel", dev, EINVAL);
	struct blk_request *reqs = calloc(count, sizeof(*reqs)), *done[64];
	uint8_t *data = memalign(4096, count * 4096), digest[32], first[4096];
	unsigned submitted = 0, completed = 0, most = 0;
	bool sync_done = false;
	int err = 0;
	if (!reqs || !data)
		return fail("parallel", dev, ENOMEM);
	while (completed < count && !err) {
		/* Submit until the queue is full (or all are out), then reap. */
		while (submitted < count) {
			struct blk_request *r = &reqs[submitted];
			*r = (struct blk_request){.op = BLK_READ,
			                          .offset = submitted * 4096ull,
			                          .buf = data + submitted * 4096ull,
			                          .len = 4096};
			int e = blk_submit(disk, r);
			if (e == -EAGAIN)
				break;
			if (e) {
				err = -e;
				break;
			}
			submitted++;
		}
		if (submitted - completed > most)
			most = submitted - completed;
		/* Once, with the queue full: a synchronous read in the middle of
		 * the asynchronous ones. The completions it meets on the way
		 * must still reach us below. */
		if (!sync_done && submitted - completed > 1) {
			sync_done = true;
			int e = blk_read(disk, 0, first, 4096);
			if (e)
				err = -e;
		}
		int n = blk_wait(disk, done, 64);
		if (n == 0 && submitted == count) {
			printf("error: parallel %s: %llu requests never came back\n", dev, count - completed);
			err = EIO;
		}
		for (int k = 0; k < n; k++)
			if (done[k]->status)
				err = -done[k]->status;
		completed += n > 0 ? (unsigned)n : 0;
		if (n < 0)
			err = -n;
	}
	if (!err && memcmp(first, data, 4096) != 0)
		err = EIO; /* the synchronous read saw other bytes than the asynchronous one */
	if (err) {
		free(reqs);
		free(data);
		return fail("parallel", dev, err);
	}
	struct sha256 s;
	sha256_init(&s);
	sha256_update(&s, data, count * 4096);
	sha256_final(&s, digest);
	printf("parallel %s %llu inflight=%u sha256=", dev, count, most);
	for (int i = 0; i < 32; i++)
		printf("%02x", digest[i]);
	printf("\n");
	free(reqs);
	free(data);
	return 0;
}

/*
 * Two disks at once (two LUNs of one virtio-scsi controller share its queue,
 * so a poll of one finds the other's completions): COUNT 4 KiB reads of each,
 * submitted alternately, a synchronous read of the second disk among them,
 * then everything reaped. Each request must come back exactly once, from the
 * disk it went to, with its own block's bytes.
 */
static int cmd_twin(int d0, const char *dev0, int d1, unsigned long long count)
{
	int disk[2] = {d0, d1};
	if (count == 0 || count > 4096)
		return fail("twin", dev0, EINVAL);
	struct blk_request *reqs[2], *done[64];
	uint8_t *data[2], first[4096], digest[32];
	unsigned char *seen[2];
	unsigned long long submitted[2] = {0, 0}, completed[2] = {0, 0};
	bool sync_done = false;
	int err = 0;
	for (int d = 0; d < 2; d++) {
		reqs[d] = calloc(count, sizeof(*reqs[d]));
		data[d] = memalign(4096, count * 4096);
		seen[d] = calloc(count, 1);
		if (!reqs[d] || !data[d] || !seen[d])
			return fail("twin", dev0, ENOMEM);
	}
	while (!err && completed[0] + completed[1] < 2 * count) {
		/* Alternately, while either disk takes more. */
		for (bool took = true; took && !err;) {
			took = false;
			for (int d = 0; d < 2 && !err; d++) {
				if (submitted[d] == count)
					continue;
				struct blk_request *r = &reqs[d][submitted[d]];
				*r = (struct blk_request){.op = BLK_READ,
				                          .offset = submitted[d] * 4096ull,
				                          .buf = data[d] + submitted[d] * 4096ull,
				                          .len = 4096};
				int e = blk_submit(disk[d], r);
				if (e && e != -EAGAIN)
					err = -e;
				if (!e) {
					submitted[d]++;
					took = true;
				}
			}
		}
		if (!err && !sync_done && submitted[0] > completed[0] && submitted[1] > completed[1]) {
			sync_done = true;
			int e = blk_read(disk[1], 0, first, 4096);
			if (e)
				err = -e;
		}
		/* Reap both; wait on one that has requests out when neither had any. */
		int got = 0;
		for (int d = 0; d < 2 && !err; d++) {
			bool out = submitted[d] > completed[d];
			int n = out ? blk_poll(disk[d], done, 64) : 0;
			if (n == 0 && out && got == 0 && d == 1)
				n = blk_wait(disk[d], done, 64);
			if (n < 0) {
				err = -n;
				break;
			}
			for (int k = 0; k < n; k++) {
				unsigned long long idx = (unsigned long long)(done[k] - reqs[d]);
				if (done[k] < reqs[d] || idx >= submitted[d] || seen[d][idx]++) {
					printf("error: twin: a request came back twice, or from the other disk\n");
					err = EIO;
					break;
				}
				if (done[k]->status)
					err = -done[k]->status;
			}
			completed[d] += (unsigned)n;
			got += n;
		}
	}
	if (!err && memcmp(first, data[1], 4096) != 0)
		err = EIO; /* the synchronous read saw other bytes than the asynchronous one */
	if (err)
		return fail("twin", dev0, err);
	printf("twin %s %llu", dev0, count);
	for (int d = 0; d < 2; d++) {
		struct sha256 h;
		sha256_init(&h);
		sha256_update(&h, data[d], count * 4096);
		sha256_final(&h, digest);
		printf(" sha256=");
		for (int i = 0; i < 32; i++)
			printf("%02x", digest[i]);
		free(reqs[d]);
		free(data[d]);
		free(seen[d]);
	}
	printf("\n");
	return 0;
}

/*
 * The held completions of synchronous calls: a synchronous call that meets
 * others' completions keeps them for their owner, who has already got their
 * slots back and may fill the queue again before reaping anything. Round k
 * submits reads of the next 4 KiB blocks until the queue is full, then reads
 * block k synchronously; only at the end are the completions collected, and
 * each request must come back exactly once, with its own block's bytes.
 */
static int cmd_rounds(int disk, const char *dev, unsigned long long rounds)
{
	struct blk_info in;
	blk_info(disk, &in);
	unsigned long long max = rounds * in.queue_size;
	/* One request more than the queues can take in all: a queue that
	 * takes it took more than it holds. */
	if (rounds == 0 || rounds > 64 || (max + 1) * 4096 > in.size)
		return fail("rounds", dev, EINVAL);
	struct blk_request *reqs = calloc(max + 1, sizeof(*reqs)), *done[64];
	uint8_t *data = memalign(4096, (max + 1) * 4096), *sync = malloc(rounds * 4096), digest[32];
	unsigned *seen = calloc(max + 1, sizeof(*seen));
	unsigned long long submitted = 0, completed = 0;
	int err = 0;
	if (!reqs || !data || !sync || !seen)
		return fail("rounds", dev, ENOMEM);
	for (unsigned long long k = 0; k < rounds && !err; k++) {
		for (;;) {
			if (submitted > max) {
				err = ENOSPC; /* the queue took more than it holds */
				break;
			}
			struct blk_request *r = &reqs[submitted];
			*r = (struct blk_request){.op = BLK_READ,
			                          .offset = submitted * 4096ull,
			                          .buf = data + submitted * 4096ull,
			                          .len = 4096};
			int e = blk_submit(disk, r);
			if (e == -EAGAIN)
				break; /* full */
			if (e) {
				err = -e;
				break;
			}
			submitted++;
		}
		int e = err ? 0 : blk_read(disk, k * 4096, sync + k * 4096, 4096);
		if (e)
			err = -e;
	}
	/* Every completion, held or not, exactly once. */
	while (!err && completed < submitted) {
		int n = blk_wait(disk, done, 64);
		if (n < 0) {
			err = -n;
			break;
		}
		if (n == 0) {
			printf("error: rounds %s: %llu requests never came back\n", dev, submitted - completed);
			err = EIO;
		}
		for (int i = 0; i < n; i++) {
			unsigned long long idx = (unsigned long long)(done[i] - reqs);
			if (done[i] < reqs || idx >= submitted || seen[idx]++) {
				printf("error: rounds %s: request %lld came back twice or was never sent\n", dev,
				       (long long)(done[i] - reqs));
				err = EIO;
				break;
			}
			if (done[i]->status)
				err = -done[i]->status;
		}
		completed += n > 0 ? (unsigned)n : 0;
	}
	/* The synchronous reads must agree with the asynchronous ones. */
	for (unsigned long long k = 0; !err && k < rounds; k++)
		if (memcmp(sync + k * 4096, data + k * 4096, 4096) != 0)
			err = EIO;
	if (!err) {
		printf("rounds %s %llu requests=%llu completed=%llu sha256=", dev, rounds, submitted, completed);
		struct sha256 s;
		sha256_init(&s);
		sha256_update(&s, data, submitted * 4096);
		sha256_final(&s, digest);
		for (int i = 0; i < 32; i++)
			printf("%02x", digest[i]);
		sha256_init(&s);
		sha256_update(&s, sync, rounds * 4096);
		sha256_final(&s, digest);
		printf(" sync=");
		for (int i = 0; i < 32; i++)
			printf("%02x", digest[i]);
		printf("\n");
	}
	free(reqs);
	free(data);
	free(sync);
	free(seen);
	return err ? fail("rounds", dev, err) : 0;
}

/* The size a file reports must be the bytes it gives: read to the end. */
static int cmd_eof(const char *dev)
{
	char path[16];
	struct stat st;
	snprintf(path, sizeof(path), "/dev/%s", dev);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return fail("eof", dev, errno);
	uint8_t *buf = malloc(CHUNK), digest[32];
	if (!buf || fstat(fd, &st) != 0) {
		int err = buf ? errno : ENOMEM;
		free(buf);
		close(fd);
		return fail("eof", dev, err);
	}
	struct sha256 s;
	sha256_init(&s);
	unsigned long long total = 0;
	ssize_t got;
	/* An odd length, so that the reads do not stay block aligned. */
	while ((got = read(fd, buf, CHUNK - 1000)) > 0) {
		sha256_update(&s, buf, (size_t)got);
		total += (unsigned long long)got;
	}
	int err = got < 0 ? errno : 0;
	ssize_t at_end = err ? 0 : pread(fd, buf, 512, st.st_size);
	if (at_end < 0)
		err = errno;
	free(buf);
	close(fd);
	if (err)
		return fail("eof", dev, err);
	sha256_final(&s, digest);
	printf("eof %s size=%lld read=%llu at_end=%zd sha256=", dev, (long long)st.st_size, total, at_end);
	for (int i = 0; i < 32; i++)
		printf("%02x", digest[i]);
	printf("\n");
	return 0;
}

/* Each command and how many operands it takes; -1 for an unknown one. */
static int operands(const char *cmd)
{
	static const struct {
		const char *name;
		int operands;
	} commands[] = {
	    {"info", 0}, {"flush", 1},  {"id", 1},   {"sleep", 1},   {"parallel", 2}, {"rounds", 2},
	    {"eof", 1},  {"sha256", 3}, {"zero", 3}, {"discard", 3}, {"fill", 4},     {"twin", 3},
	};
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(cmd, commands[i].name))
			return commands[i].operands;
	return -1;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc;) {
		const char *cmd = argv[i];
		int want = operands(cmd);
		if (want < 0) {
			printf("error: unknown command '%s' (see apps/blktool/main.c)\n", cmd);
			return 2;
		}
		if (i + want >= argc) {
			printf("error: %s needs %d operand%s\n", cmd, want, want == 1 ? "" : "s");
			return 2;
		}
		char **a = argv + i + 1;
		/* Operands: a disk name first (except for info and sleep), then numbers. */
		bool has_disk = strcmp(cmd, "info") && strcmp(cmd, "sleep");
		int disk = -1;
		unsigned long long n[3] = {0, 0, 0};
		if (has_disk && (disk = disk_of(a[0])) < 0) {
			printf("error: %s: no disk '%s' (%d attached)\n", cmd, a[0], blk_count());
			return 1;
		}
		int names = has_disk + !strcmp(cmd, "twin"); /* twin: a second disk name */
		for (int k = names; k < want; k++)
			if (number(a[k], &n[k - names]) != 0) {
				printf("error: %s: '%s' is not a number\n", cmd, a[k]);
				return 2;
			}
		i += want + 1;

		int rc = 0, err;
		if (!strcmp(cmd, "info"))
			rc = cmd_info();
		else if (!strcmp(cmd, "sha256"))
			rc = cmd_sha256(a[0], n[0], n[1]);
		else if (!strcmp(cmd, "fill"))
			rc = cmd_fill(a[0], n[0], n[1], n[2]);
		else if (!strcmp(cmd, "parallel"))
			rc = cmd_parallel(disk, a[0], n[0]);
		else if (!strcmp(cmd, "eof"))
			rc = cmd_eof(a[0]);
		else if (!strcmp(cmd, "rounds"))
			rc = cmd_rounds(disk, a[0], n[0]);
		else if (!strcmp(cmd, "twin")) {
			int other = disk_of(a[1]);
			if (other < 0 || other == disk) {
				printf("error: twin: no other disk '%s'\n", a[1]);
				return 1;
			}
			rc = cmd_twin(disk, a[0], other, n[0]);
		} else if (!strcmp(cmd, "zero") || !strcmp(cmd, "discard")) {
			err = !strcmp(cmd, "zero") ? blk_write_zeroes(disk, n[0], n[1]) : blk_discard(disk, n[0], n[1]);
			if (err)
				return fail(cmd, a[0], -err);
			printf("ok %s %s %llu %llu\n", cmd, a[0], n[0], n[1]);
		} else if (!strcmp(cmd, "flush")) {
			if ((err = blk_flush(disk)) != 0)
				return fail(cmd, a[0], -err);
			printf("ok flush %s\n", a[0]);
		} else if (!strcmp(cmd, "id")) {
			char id[21];
			if ((err = blk_get_id(disk, id)) != 0)
				return fail(cmd, a[0], -err);
			printf("id %s %s\n", a[0], id[0] ? id : "(none)");
		} else if (!strcmp(cmd, "sleep")) {
			printf("ok sleep %llu\n", n[0]);
			fflush(stdout);
			sleep((unsigned)n[0]);
		}
		fflush(stdout);
		if (rc)
			return rc;
	}
	return 0;
}
