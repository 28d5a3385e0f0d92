/*
 * apps/posixedge: POSIX edge cases of the file calls, one line per case.
 *
 * The same source builds as a Ringlet application and with the host's gcc
 * for Linux, so the two can be compared line by line: Linux is the
 * reference. Run it on a file (Linux) and on a disk of the same size and
 * contents (Ringlet); tests/integration/test_posix.py does both.
 *
 *   CASE ret=VALUE errno=NAME [data=HASH]
 *
 * errno is set to 0 before each call, so a success shows errno=0; data is
 * an FNV-1a hash of the bytes a read returned. The program writes 8 bytes
 * at offset 4096 of the file and nothing else; it closes 0 and 1 on the way
 * (to see the lowest free number reused), so it prints everything at the
 * end, on descriptor 2.
 *
 * Try it:
 *   scripts/run --disk disk.img posixedge -- /dev/vda
 *   gcc -o /tmp/posixedge apps/posixedge/main.c && /tmp/posixedge disk-copy.img
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char out[8192];
static size_t used;

static const char *errno_name(int e)
{
	static const struct {
		int e;
		const char *name;
	} names[] = {
	    {0, "0"},           {EBADF, "EBADF"},   {EINVAL, "EINVAL"},
	    {ENOENT, "ENOENT"}, {EEXIST, "EEXIST"}, {ENOTDIR, "ENOTDIR"},
	    {EISDIR, "EISDIR"}, {ESPIPE, "ESPIPE"}, {EOVERFLOW, "EOVERFLOW"},
	    {EROFS, "EROFS"},   {ENOSPC, "ENOSPC"}, {ENOSYS, "ENOSYS"},
	    {EACCES, "EACCES"}, {EMFILE, "EMFILE"}, {EIO, "EIO"},
	    {ENOTTY, "ENOTTY"},
	};
	static char other[16];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].e == e)
			return names[i].name;
	snprintf(other, sizeof(other), "E#%d", e);
	return other;
}

static uint32_t fnv1a(const void *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ ((const uint8_t *)p)[i]) * 16777619u;
	return h;
}

/* One result line; data/n: the bytes a read returned (n = its result). */
static void line(const char *what, long long ret, int err, const void *data)
{
	if (used >= sizeof(out))
		return;
	int k = snprintf(out + used, sizeof(out) - used, "%s ret=%lld errno=%s", what, ret, errno_name(err));
	if (k > 0)
		used += (size_t)k;
	if (data && ret > 0 && used < sizeof(out)) {
		k = snprintf(out + used, sizeof(out) - used, " data=%08x", fnv1a(data, (size_t)ret));
		if (k > 0)
			used += (size_t)k;
	}
	if (used < sizeof(out))
		out[used++] = '\n';
}

/* Runs one call with errno cleared first and records what it gave. */
#define CASE(what, call)                                                                                               \
	do {                                                                                                           \
		errno = 0;                                                                                             \
		long long r_ = (long long)(call);                                                                      \
		line(what, r_, errno, NULL);                                                                           \
	} while (0)
#define CASE_DATA(what, call, buf)                                                                                     \
	do {                                                                                                           \
		errno = 0;                                                                                             \
		long long r_ = (long long)(call);                                                                      \
		line(what, r_, errno, buf);                                                                            \
	} while (0)

int main(int argc, char **argv)
{
	char buf[64], missing[256];
	struct stat st;
	if (argc != 2) {
		fprintf(stderr, "usage: posixedge FILE\n");
		return 2;
	}
	const char *path = argv[1];
	snprintf(missing, sizeof(missing), "%s-missing", path);

	/* ---- open ---- */
	errno = 0;
	int fd = open(path, O_RDWR);
	line("open_rdwr", fd, errno, NULL);
	if (fd < 0) {
		fprintf(stderr, "%s", out);
		return 1;
	}
	errno = 0;
	long long size = fstat(fd, &st) == 0 ? (long long)st.st_size : -1;
	line("fstat_size", size, errno, NULL);
	CASE("open_missing", open(missing, O_RDONLY));
	CASE("open_creat_excl", open(path, O_RDWR | O_CREAT | O_EXCL, 0600));
	CASE("open_directory", open(path, O_RDONLY | O_DIRECTORY));
	errno = 0;
	int bad = open(path, O_ACCMODE); /* "3": none of O_RDONLY, O_WRONLY, O_RDWR */
	line("open_accmode3", bad, errno, NULL);
	if (bad >= 0) {
		/* Linux's own extension: a descriptor for neither reading nor writing. */
		CASE("accmode3_read", read(bad, buf, 16));
		CASE("accmode3_write", write(bad, "x", 1));
		close(bad);
	}

	/* ---- lseek ---- */
	CASE("lseek_end_0", lseek(fd, 0, SEEK_END));
	CASE("lseek_end_max", lseek(fd, INT64_MAX, SEEK_END));
	CASE("lseek_end_min", lseek(fd, INT64_MIN, SEEK_END));
	CASE("lseek_end_before_start", lseek(fd, -size - 1, SEEK_END));
	CASE("lseek_end_to_start", lseek(fd, -size, SEEK_END));
	CASE("lseek_set_100", lseek(fd, 100, SEEK_SET));
	CASE("lseek_cur_max", lseek(fd, INT64_MAX, SEEK_CUR));
	CASE("lseek_cur_min", lseek(fd, INT64_MIN, SEEK_CUR));
	CASE("lseek_cur_unchanged", lseek(fd, 0, SEEK_CUR));
	CASE("lseek_set_negative", lseek(fd, -1, SEEK_SET));
	CASE("lseek_bad_whence", lseek(fd, 0, 42));
	CASE("lseek_console", lseek(2, 0, SEEK_CUR));
	CASE("fsync_console", fsync(2));
	CASE("lseek_past_end", lseek(fd, size + 4096, SEEK_SET));
	CASE("read_past_end", read(fd, buf, 16));
	CASE("lseek_cur_after_read", lseek(fd, 0, SEEK_CUR));
	CASE("lseek_set_near_end", lseek(fd, size - 10, SEEK_SET));
	CASE_DATA("read_to_end", read(fd, buf, 16), buf);
	CASE("read_at_end", read(fd, buf, 16));

	/* ---- pread, pwrite ---- */
	CASE_DATA("pread_start", pread(fd, buf, 32, 0), buf);
	CASE("pread_negative", pread(fd, buf, 16, -1));
	CASE("pwrite_negative", pwrite(fd, buf, 16, -1));
	CASE("pread_at_end", pread(fd, buf, 16, size));
	CASE("pread_past_end", pread(fd, buf, 16, size + 1000));
	CASE_DATA("pread_short", pread(fd, buf, 16, size - 10), buf);
	CASE("pwrite_zero_past_end", pwrite(fd, buf, 0, size + 100));
	CASE("pwrite_4096", pwrite(fd, "ringlet!", 8, 4096));
	CASE_DATA("pread_4096", pread(fd, buf, 12, 4094), buf);
	CASE("fsync_file", fsync(fd));
	CASE("isatty_file", isatty(fd));

	/* ---- access modes ---- */
	errno = 0;
	int ro = open(path, O_RDONLY);
	line("open_rdonly", ro, errno, NULL);
	CASE("write_rdonly", write(ro, "x", 1));
	CASE("pwrite_rdonly", pwrite(ro, "x", 1, 0));
	CASE_DATA("read_rdonly", read(ro, buf, 16), buf);
	errno = 0;
	int wo = open(path, O_WRONLY);
	line("open_wronly", wo, errno, NULL);
	CASE("read_wronly", read(wo, buf, 16));
	CASE("pread_wronly", pread(wo, buf, 16, 0));
	CASE("read_zero_wronly", read(wo, buf, 0));

	/* ---- descriptors that are not open ---- */
	CASE("close_wronly", close(wo));
	CASE("close_again", close(wo));
	CASE("fstat_closed", fstat(wo, &st));
	CASE("lseek_closed", lseek(wo, 0, SEEK_SET));
	CASE("read_closed", read(wo, buf, 16));
	CASE("pread_closed", pread(wo, buf, 16, 0));
	CASE("pread_closed_negative", pread(wo, buf, 16, -1));
	CASE("pwrite_closed_negative", pwrite(wo, buf, 16, -1));
	CASE("write_closed", write(wo, "x", 1));
	CASE("fsync_closed", fsync(wo));
	CASE("isatty_closed", isatty(wo));
	CASE("read_negative_fd", read(-1, buf, 16));
	CASE("close_negative_fd", close(-1));
	CASE("read_fd_1000", read(1000, buf, 16));

	/* ---- the lowest free number, 0-2 included ---- */
	CASE("close_rdonly", close(ro));
	CASE("open_reuses_lowest", open(path, O_RDONLY)); /* ro's number again */
	fflush(stdout);
	CASE("close_0", close(0));
	CASE("fstat_0_closed", fstat(0, &st));
	CASE("open_gets_0", open(path, O_RDONLY));
	CASE_DATA("read_new_0", read(0, buf, 16), buf);
	CASE("close_1", close(1));
	CASE("write_1_closed", write(1, "lost\n", 5));
	CASE("open_gets_1", open(path, O_RDONLY));
	CASE("close_new_1", close(1));
	CASE("close_new_0", close(0));

	/* Descriptor 2 is still the console (or Linux's stderr). */
	fprintf(stderr, "%s", out);
	fprintf(stderr, "posixedge done\n");
	return 0;
}
