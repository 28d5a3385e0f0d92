/*
 * apps/selftest: faults on purpose, so the tests can check the kernel's
 * reports. Run only by tests/integration/test_faults.py.
 *
 * Usage: selftest FAULT, where FAULT is one of
 *   null        read through a NULL pointer (page fault, CR2 = 0)
 *   rodata      write to a string constant (page fault on a read-only page)
 *   stack       unbounded recursion into the stack's guard page
 *   divide      integer divide by zero (#DE)
 *   abort       abort()
 *   assert      a failing assert()
 *   canary      overwrite a local array's canary (stack protector)
 *   smash       a classic overflow: a byte loop runs past a local buffer over
 *               the canary and the saved registers (stack protector; the
 *               canary comes from the kernel's seeded generator)
 *   exec        jump into a data page (no-execute)
 *   guard       no fault: print the stack canary's value ("selftest guard 0x...")
 *               and return 0
 *   ok          no fault: print "selftest ok" and return 0
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The faulting functions are noinline so that their names appear in the
 * backtrace; volatile keeps the compiler from proving the faults away. */
__attribute__((noinline)) static int fault_null(void)
{
	volatile int *p = NULL;
	return *p;
}

static const char message[] = "read-only";

__attribute__((noinline)) static void fault_rodata(void)
{
	volatile char *p = (volatile char *)message;
	p[0] = 'X';
}

/* The limit is never reached: the stack runs out long before. It is there
 * because the compiler (rightly) refuses recursion without an end. */
__attribute__((noinline)) static int fault_stack(int depth)
{
	volatile char pad[256];
	pad[0] = (char)depth;
	if (depth > 100000000)
		return 0;
	return fault_stack(depth + 1) + pad[0];
}

__attribute__((noinline)) static int fault_divide(volatile int divisor) { return 100 / divisor; }

__attribute__((noinline)) static void fault_canary(const char *src)
{
	char buf[16];
	/* Deliberately too long: the copy runs over the canary. */
	memcpy(buf, src, 64);
	__asm__ volatile("" ::"r"(buf) : "memory");
}

/* The loop's bound comes from outside the function, so the compiler can
 * neither warn nor stop it; it writes over the canary and beyond. */
__attribute__((noinline)) static void fault_smash(const char *src, volatile size_t n)
{
	char buf[8];
	for (size_t i = 0; i < n; i++)
		buf[i] = src[i % 8];
	__asm__ volatile("" ::"r"(buf) : "memory");
}

static unsigned char data_page[16] = {0xc3}; /* "ret", but in a non-executable page */

__attribute__((noinline)) static void fault_exec(void)
{
	void (*f)(void) = (void (*)(void))(void *)data_page;
	f();
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";
	printf("selftest: %s\n", what);
	fflush(stdout);

	if (strcmp(what, "null") == 0)
		return fault_null();
	if (strcmp(what, "rodata") == 0)
		fault_rodata();
	else if (strcmp(what, "stack") == 0)
		return fault_stack(0);
	else if (strcmp(what, "divide") == 0)
		return fault_divide(0);
	else if (strcmp(what, "abort") == 0)
		abort();
	else if (strcmp(what, "assert") == 0)
		assert(argc == 42);
	else if (strcmp(what, "canary") == 0) {
		static const char junk[64] = "0123456789abcdef0123456789abcdef0123456789abcdef012345678";
		fault_canary(junk);
	} else if (strcmp(what, "smash") == 0)
		fault_smash("AAAAAAAA", 40);
	else if (strcmp(what, "exec") == 0)
		fault_exec();
	else if (strcmp(what, "guard") == 0) {
		extern uintptr_t __stack_chk_guard; /* kernel/exit.c */
		printf("selftest guard 0x%016llx\n", (unsigned long long)__stack_chk_guard);
		return 0;
	} else if (strcmp(what, "ok") == 0) {
		printf("selftest ok\n");
		return 0;
	} else {
		fprintf(stderr, "selftest: unknown fault '%s'\n", what);
		return 2;
	}
	printf("selftest: %s did not fault\n", what);
	return 3;
}
