/*
 * check.h: the smallest test framework that does the job, for host-side unit tests.
 *
 *	static void test_something(void) { CHECK(x > 0); CHECK_EQ(f(2), 4); }
 *	int main(void) { RUN_TEST(test_something); return check_report(); }
 *
 * CHECK and CHECK_EQ print file:line (and both values) when they fail and let the test go on;
 * a test case fails if any of its checks failed. check_report() prints the final line,
 * exactly "N passed, M failed" (test cases), and returns the exit status: non-zero if M > 0.
 */
#ifndef RINGLET_TEST_CHECK_H
#define RINGLET_TEST_CHECK_H

#include <stdio.h>

static unsigned check_passed, check_failed; /* test cases */
static unsigned check_errors;               /* failed checks in the running test case */

#define CHECK(cond)                                                                                                    \
	do {                                                                                                           \
		if (!(cond)) {                                                                                         \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                       \
			check_errors++;                                                                                \
		}                                                                                                      \
	} while (0)

/* Both sides are evaluated once and compared as long long (pointers and -errno included). */
#define CHECK_EQ(a, b)                                                                                                 \
	do {                                                                                                           \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);                                        \
		if (check_a_ != check_b_) {                                                                            \
			fprintf(stderr,                                                                                \
			        "%s:%d: CHECK_EQ failed: %s == %s (%lld vs %lld, "                                     \
			        "%#llx vs %#llx)\n",                                                                   \
			        __FILE__, __LINE__, #a, #b, check_a_, check_b_, (unsigned long long)check_a_,          \
			        (unsigned long long)check_b_);                                                         \
			check_errors++;                                                                                \
		}                                                                                                      \
	} while (0)

#define RUN_TEST(fn)                                                                                                   \
	do {                                                                                                           \
		check_errors = 0;                                                                                      \
		fn();                                                                                                  \
		if (check_errors == 0) {                                                                               \
			check_passed++;                                                                                \
		} else {                                                                                               \
			check_failed++;                                                                                \
			fprintf(stderr, "FAIL %s (%u checks)\n", #fn, check_errors);                                   \
		}                                                                                                      \
	} while (0)

static inline int check_report(void)
{
	printf("%u passed, %u failed\n", check_passed, check_failed);
	return check_failed > 0 ? 1 : 0;
}

#endif /* RINGLET_TEST_CHECK_H */
