/*
 * tests/unit/test_cmdline.c: host tests of kernel/cmdline.c, the kernel
 * command line's word splitter, size parser and virtio_mmio.device= parser.
 *
 * Every input is copied into a heap buffer of exactly its own size, so
 * AddressSanitizer catches a read or write one byte past the terminating NUL
 * (the parser works in place). Build and run: make unit-test.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernel.h"

#define MAXW 16

/* The result of one cmdline_split() call on a private copy of the input. */
struct split {
	char *buf; /* the exact-size copy, split in place */
	char *w[MAXW + 1];
	int n;
	const char *err;
};

static void split(struct split *r, const char *s, int max)
{
	size_t len = strlen(s) + 1;
	r->buf = malloc(len);
	memcpy(r->buf, s, len);
	for (int i = 0; i <= MAXW; i++)
		r->w[i] = NULL;
	r->err = "not set";
	r->n = cmdline_split(r->buf, r->w, max, &r->err);
	/* Every word lies inside the buffer. */
	for (int i = 0; i < r->n && i < MAXW; i++)
		CHECK(r->w[i] >= r->buf && r->w[i] < r->buf + len);
	/* No slot past the words was written. */
	for (int i = r->n; i <= MAXW; i++)
		CHECK(r->w[i] == NULL);
}

static void done(struct split *r) { free(r->buf); }

/* Word i equals want (compared as bytes, so a failure message names the test line). */
#define WORD(r, i, want) CHECK((r).n > (i) && strcmp((r).w[i], (want)) == 0)

/* ---- splitting ----------------------------------------------------------- */

static void test_plain_words(void)
{
	struct split r;
	split(&r, "hello a bc --exit 3", MAXW);
	CHECK_EQ(r.n, 5);
	CHECK(r.err == NULL);
	WORD(r, 0, "hello");
	WORD(r, 1, "a");
	WORD(r, 2, "bc");
	WORD(r, 3, "--exit");
	WORD(r, 4, "3");
	done(&r);

	split(&r, "one", MAXW);
	CHECK_EQ(r.n, 1);
	CHECK(r.err == NULL);
	WORD(r, 0, "one");
	done(&r);
}

static void test_whitespace(void)
{
	struct split r;
	split(&r, "  \t a \t\t b\n\nc\r\n  d\t", MAXW);
	CHECK_EQ(r.n, 4);
	CHECK(r.err == NULL);
	WORD(r, 0, "a");
	WORD(r, 1, "b");
	WORD(r, 2, "c");
	WORD(r, 3, "d");
	done(&r);
}

static void test_double_quotes(void)
{
	struct split r;
	split(&r, "\"a b\" \"  spaced  \" \"tab\there\"", MAXW);
	CHECK_EQ(r.n, 3);
	CHECK(r.err == NULL);
	WORD(r, 0, "a b");
	WORD(r, 1, "  spaced  ");
	WORD(r, 2, "tab\there");
	done(&r);

	/* \" and \\ inside double quotes; a single quote is literal there. */
	split(&r, "\"say \\\"hi\\\"\" \"back\\\\slash\" \"it's\" \"\\\\\"", MAXW);
	CHECK_EQ(r.n, 4);
	CHECK(r.err == NULL);
	WORD(r, 0, "say \"hi\"");
	WORD(r, 1, "back\\slash");
	WORD(r, 2, "it's");
	WORD(r, 3, "\\");
	done(&r);
}

static void test_single_quotes_literal(void)
{
	struct split r;
	/* No escapes inside '...': backslashes and double quotes stay as they are. */
	split(&r, "'a b' 'back\\slash' 'say \"hi\"' 'x\\'", MAXW);
	CHECK_EQ(r.n, 4);
	CHECK(r.err == NULL);
	WORD(r, 0, "a b");
	WORD(r, 1, "back\\slash");
	WORD(r, 2, "say \"hi\"");
	WORD(r, 3, "x\\");
	done(&r);
}

static void test_backslash_outside_quotes(void)
{
	struct split r;
	split(&r, "a\\ b c\\\"d \\'e\\' f\\\\g", MAXW);
	CHECK_EQ(r.n, 4);
	CHECK(r.err == NULL);
	WORD(r, 0, "a b");
	WORD(r, 1, "c\"d");
	WORD(r, 2, "'e'");
	WORD(r, 3, "f\\g");
	done(&r);

	/* A backslash at the very end has nothing to escape: it stays. */
	split(&r, "end\\", MAXW);
	CHECK_EQ(r.n, 1);
	CHECK(r.err == NULL);
	WORD(r, 0, "end\\");
	done(&r);
}

static void test_empty_argument(void)
{
	struct split r;
	split(&r, "\"\" a '' \"\"", MAXW);
	CHECK_EQ(r.n, 4);
	CHECK(r.err == NULL);
	WORD(r, 0, "");
	WORD(r, 1, "a");
	WORD(r, 2, "");
	WORD(r, 3, "");
	done(&r);

	split(&r, "\"\"", MAXW);
	CHECK_EQ(r.n, 1);
	CHECK(r.err == NULL);
	WORD(r, 0, "");
	done(&r);
}

static void test_adjacent_parts_one_word(void)
{
	struct split r;
	split(&r, "a\"b c\"d x'y z'\"w\"v \"\"q", MAXW);
	CHECK_EQ(r.n, 3);
	CHECK(r.err == NULL);
	WORD(r, 0, "ab cd");
	WORD(r, 1, "xy zwv");
	WORD(r, 2, "q");
	done(&r);
}

static void test_unterminated_quotes(void)
{
	struct split r;
	split(&r, "a \"bc d", MAXW);
	CHECK(r.err != NULL);
	CHECK(r.n >= 1 && r.n <= 2);
	WORD(r, 0, "a");
	done(&r);

	split(&r, "a 'bc d", MAXW);
	CHECK(r.err != NULL);
	CHECK(r.n >= 1 && r.n <= 2);
	WORD(r, 0, "a");
	done(&r);

	/* A lone quote, a quote at the very end, a backslash before the end. */
	const char *bad[] = {"\"", "'", "x\"", "x'", "\"abc\\", "\"\\\"", "'\\'\\''", "a \"b\"\""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		split(&r, bad[i], MAXW);
		if (r.err == NULL)
			fprintf(stderr, "  (no error for input [%s])\n", bad[i]);
		CHECK(r.err != NULL);
		CHECK(r.n >= 0 && r.n <= 2);
		done(&r);
	}
}

static void test_too_many_words(void)
{
	struct split r;
	split(&r, "a b c d", 3);
	CHECK_EQ(r.n, 3);
	CHECK(r.err != NULL);
	WORD(r, 0, "a");
	WORD(r, 1, "b");
	WORD(r, 2, "c");
	done(&r);

	/* Exactly max words, trailing white space included, is fine. */
	split(&r, "a b c  \t", 3);
	CHECK_EQ(r.n, 3);
	CHECK(r.err == NULL);
	done(&r);

	split(&r, "a", 0);
	CHECK_EQ(r.n, 0);
	CHECK(r.err != NULL);
	done(&r);
}

static void test_empty_input(void)
{
	struct split r;
	split(&r, "", MAXW);
	CHECK_EQ(r.n, 0);
	CHECK(r.err == NULL);
	done(&r);

	split(&r, " \t\n\r  ", MAXW);
	CHECK_EQ(r.n, 0);
	CHECK(r.err == NULL);
	done(&r);

	split(&r, "", 0);
	CHECK_EQ(r.n, 0);
	CHECK(r.err == NULL);
	done(&r);
}

static void test_non_ascii(void)
{
	struct split r;
	/* UTF-8 (é, ☃) and bytes that are not UTF-8 at all pass through untouched. */
	split(&r, "\xc3\xa9t\xc3\xa9 \"\xe2\x98\x83 x\" \xff\x80\x01 '\xa0'", MAXW);
	CHECK_EQ(r.n, 4);
	CHECK(r.err == NULL);
	WORD(r, 0, "\xc3\xa9t\xc3\xa9");
	WORD(r, 1, "\xe2\x98\x83 x");
	WORD(r, 2, "\xff\x80\x01");
	WORD(r, 3, "\xa0");
	done(&r);
}

static void test_kernel_options_then_argv(void)
{
	/* What scripts/run builds: kernel options, `--`, then the quoted argv. */
	struct split r;
	split(&r, "debug stack=64K -- hello \"a b\" \"\" \"--\" \"q\\\"\\\\\"", MAXW);
	CHECK_EQ(r.n, 8);
	CHECK(r.err == NULL);
	WORD(r, 0, "debug");
	WORD(r, 1, "stack=64K");
	WORD(r, 2, "--");
	WORD(r, 3, "hello");
	WORD(r, 4, "a b");
	WORD(r, 5, "");
	WORD(r, 6, "--");
	WORD(r, 7, "q\"\\");
	done(&r);
}

/* ---- sizes ---------------------------------------------------------------- */

#define SENTINEL 0x5a5a5a5a5a5a5a5aull

static uint64_t size_ok(const char *s, int *rc)
{
	uint64_t v = SENTINEL;
	*rc = cmdline_parse_size(s, &v);
	return v;
}

/* s parses to want. */
#define SIZE_IS(s, want)                                                                                               \
	do {                                                                                                           \
		int rc_;                                                                                               \
		uint64_t v_ = size_ok((s), &rc_);                                                                      \
		CHECK_EQ(rc_, 0);                                                                                      \
		CHECK_EQ(v_, (want));                                                                                  \
	} while (0)

/* s is refused and *out is left alone. */
#define SIZE_BAD(s)                                                                                                    \
	do {                                                                                                           \
		int rc_;                                                                                               \
		uint64_t v_ = size_ok((s), &rc_);                                                                      \
		if (rc_ != -1)                                                                                         \
			fprintf(stderr, "  (size [%s] accepted as %llu)\n", (s), (unsigned long long)v_);              \
		CHECK_EQ(rc_, -1);                                                                                     \
		CHECK_EQ(v_, SENTINEL);                                                                                \
	} while (0)

static void test_size_decimal(void)
{
	SIZE_IS("0", 0);
	SIZE_IS("1", 1);
	SIZE_IS("123", 123);
	SIZE_IS("4096", 4096);
	SIZE_IS("007", 7);
	SIZE_IS("18446744073709551615", UINT64_MAX);
}

static void test_size_hex(void)
{
	SIZE_IS("0x0", 0);
	SIZE_IS("0x1f", 31);
	SIZE_IS("0X1F", 31);
	SIZE_IS("0xdeadBEEF", 0xdeadbeefull);
	SIZE_IS("0xffffffffffffffff", UINT64_MAX);
	SIZE_IS("0x10M", 16ull << 20);
}

static void test_size_suffixes(void)
{
	SIZE_IS("64K", 64ull << 10);
	SIZE_IS("64k", 64ull << 10);
	SIZE_IS("16M", 16ull << 20);
	SIZE_IS("16m", 16ull << 20);
	SIZE_IS("1G", 1ull << 30);
	SIZE_IS("3g", 3ull << 30);
	SIZE_IS("0K", 0);
	SIZE_IS("17179869183G", ((1ull << 34) - 1) << 30);
}

static void test_size_overflow(void)
{
	SIZE_BAD("18446744073709551616");
	SIZE_BAD("99999999999999999999999");
	SIZE_BAD("0x10000000000000000");
	SIZE_BAD("17179869184G");
	SIZE_BAD("18014398509481984K");
	SIZE_BAD("17592186044416M");
}

static void test_size_junk(void)
{
	SIZE_BAD("12x");
	SIZE_BAD("abc");
	SIZE_BAD("1KB");
	SIZE_BAD("1KK");
	SIZE_BAD("1 K");
	SIZE_BAD(" 1");
	SIZE_BAD("1 ");
	SIZE_BAD("-1");
	SIZE_BAD("+1");
	SIZE_BAD("1.5M");
	SIZE_BAD("0x");
	SIZE_BAD("0xz");
	SIZE_BAD("1T");
	SIZE_BAD("\xff");
}

static void test_size_suffix_without_digits(void)
{
	/* A suffix needs a number in front of it. */
	SIZE_BAD("K");
	SIZE_BAD("m");
	SIZE_BAD("G");
	SIZE_BAD("0xK");
	SIZE_BAD("0xg"); /* not a hex digit: the G suffix with no number */
}

static void test_size_empty(void)
{
	SIZE_BAD("");
	int rc = cmdline_parse_size(NULL, &(uint64_t){0});
	CHECK_EQ(rc, -1);
}

/* ---- virtio_mmio.device= ------------------------------------------------------ */

/* Parses a private exact-size copy (ASan sees a read past its NUL). */
static int mmio(const char *s, struct cmdline_virtio_mmio *d, const char **why)
{
	size_t len = strlen(s) + 1;
	char *copy = malloc(len);
	memcpy(copy, s, len);
	*d = (struct cmdline_virtio_mmio){0, 0, 0, 0};
	int rc = cmdline_virtio_mmio(copy, d, why);
	free(copy);
	return rc;
}

static void test_virtio_mmio_good(void)
{
	struct cmdline_virtio_mmio d;
	const char *why = "not set";
	CHECK_EQ(mmio("512@0xfeb00e00:12", &d, &why), 0);
	CHECK(why == NULL);
	CHECK_EQ(d.size, 512);
	CHECK_EQ(d.base, 0xfeb00e00);
	CHECK_EQ(d.irq, 12);
	CHECK_EQ(d.id, -1);
	CHECK_EQ(mmio("4K@0xFEB00000:0x17:3", &d, &why), 0);
	CHECK_EQ(d.size, 4096);
	CHECK_EQ(d.base, 0xfeb00000);
	CHECK_EQ(d.irq, 23);
	CHECK_EQ(d.id, 3);
	CHECK_EQ(mmio("1M@4273995264:5", &d, &why), 0); /* a decimal base */
	CHECK_EQ(d.size, 1 << 20);
	CHECK_EQ(d.base, 4273995264ull);
}

#define MMIO_BAD(s, reason)                                                                                            \
	do {                                                                                                           \
		struct cmdline_virtio_mmio d_;                                                                         \
		const char *why_ = NULL;                                                                               \
		CHECK_EQ(mmio(s, &d_, &why_), -1);                                                                     \
		CHECK(why_ != NULL && strcmp(why_, reason) == 0);                                                      \
	} while (0)

static void test_virtio_mmio_bad(void)
{
	MMIO_BAD("", "no '@' after the size");
	MMIO_BAD("512", "no '@' after the size");
	MMIO_BAD("12345678901234567890123456789@0x1000:5", "no '@' after the size");
	MMIO_BAD("@0xfeb00e00:12", "bad size");
	MMIO_BAD("5x@0xfeb00e00:12", "bad size");
	MMIO_BAD("99999999999999999999@0xfeb00e00:12", "bad size");
	MMIO_BAD("255@0xfeb00e00:12", "size smaller than the 0x100 bytes of registers");
	MMIO_BAD("512@:12", "bad base address");
	MMIO_BAD("512@0x:12", "bad base address");
	MMIO_BAD("512@0:12", "bad base address");
	MMIO_BAD("512@0xfeb00e02:12", "bad base address");
	MMIO_BAD("512@0xffffffffffffffffff:12", "bad base address"); /* overflow */
	MMIO_BAD("512@0x10000000000000:12", "base address and size run past physical memory");
	MMIO_BAD("16G@0xffffffff000000:12", "base address and size run past physical memory");
	MMIO_BAD("512@0xfeb00e00", "bad IRQ (want 1 to 255)");
	MMIO_BAD("512@0xfeb00e00:", "bad IRQ (want 1 to 255)");
	MMIO_BAD("512@0xfeb00e00:0", "bad IRQ (want 1 to 255)");
	MMIO_BAD("512@0xfeb00e00:256", "bad IRQ (want 1 to 255)");
	MMIO_BAD("512@0xfeb00e00;12", "bad IRQ (want 1 to 255)");
	MMIO_BAD("512@0xfeb00e00:12:", "bad device ID");
	MMIO_BAD("512@0xfeb00e00:12:-1", "bad device ID");
	MMIO_BAD("512@0xfeb00e00:12:4294967296", "bad device ID");
	MMIO_BAD("512@0xfeb00e00:12x", "junk after the IRQ");
	MMIO_BAD("512@0xfeb00e00:12:3:4", "junk after the IRQ");
}

int main(void)
{
	RUN_TEST(test_plain_words);
	RUN_TEST(test_whitespace);
	RUN_TEST(test_double_quotes);
	RUN_TEST(test_single_quotes_literal);
	RUN_TEST(test_backslash_outside_quotes);
	RUN_TEST(test_empty_argument);
	RUN_TEST(test_adjacent_parts_one_word);
	RUN_TEST(test_unterminated_quotes);
	RUN_TEST(test_too_many_words);
	RUN_TEST(test_empty_input);
	RUN_TEST(test_non_ascii);
	RUN_TEST(test_kernel_options_then_argv);
	RUN_TEST(test_size_decimal);
	RUN_TEST(test_size_hex);
	RUN_TEST(test_size_suffixes);
	RUN_TEST(test_size_overflow);
	RUN_TEST(test_size_junk);
	RUN_TEST(test_size_suffix_without_digits);
	RUN_TEST(test_size_empty);
	RUN_TEST(test_virtio_mmio_good);
	RUN_TEST(test_virtio_mmio_bad);
	return check_report();
}
