/*
 * kernel/net/sys_arch.c: what lwIP (NO_SYS) asks of the platform: the clock, randomness,
 * and its diagnostics. lwIP 2.1.3, src/include/lwip/sys.h and arch.h.
 */
#include <stdarg.h>

#include "../io.h"
#include "../kernel.h"
#include "lwip/sys.h"

/* lwIP's clock: milliseconds from the kernel's monotonic clock. lwIP compares
 * with wrap-around arithmetic, so the truncation to 32 bits is harmless. */
u32_t sys_now(void) { return (u32_t)(time_ns() / 1000000); }

static bool have_rdrand(void)
{
	static int known = -1;
	if (known < 0) {
		uint32_t r[4];
		cpuid(1, 0, r);
		known = !!(r[2] & (1u << 30));
	}
	return known;
}

uint32_t net_random32(void)
{
	if (have_rdrand()) {
		for (int i = 0; i < 10; i++) {
			uint32_t v;
			unsigned char ok;
			__asm__ volatile("rdrand %0; setc %1" : "=r"(v), "=qm"(ok));
			if (ok)
				return v;
		}
	}
	/* XXX: no RDRAND: the TSC through a multiplicative hash, predictable to
	 * an attacker who can time us; the CSPRNG issue replaces this. */
	static uint64_t state;
	state += rdtsc() * 0x9e3779b97f4a7c15ull;
	uint64_t z = state;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (uint32_t)(z ^ (z >> 31));
}

void net_diag(const char *fmt, ...)
{
	char buf[200];
	va_list ap;
	va_start(ap, fmt);
	kvsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	kprintf("lwip: %s", buf);
}

_Noreturn void net_assert(const char *msg, const char *file, int line)
{
	panic("lwIP assertion failed: %s (%s:%d)", msg, file, line);
}
