/*
 * kernel/net/sys_arch.c: what lwIP (NO_SYS) asks of the platform: the clock, randomness
 * (the kernel's CSPRNG), and its diagnostics. lwIP 2.1.3, src/include/lwip/sys.h and arch.h.
 */
#include <stdarg.h>

#include <ringlet/random.h>

#include "../kernel.h"
#include "lwip/sys.h"

/* lwIP's clock: milliseconds from the kernel's monotonic clock. lwIP compares
 * with wrap-around arithmetic, so the truncation to 32 bits is harmless. */
u32_t sys_now(void) { return (u32_t)(time_ns() / 1000000); }

/* Ports, DHCP transaction ids, TCP initial sequence numbers: from the kernel's ChaCha20
 * generator (kernel/random.c), which never waits, so it may be called from the wait loop. */
uint32_t net_random32(void)
{
	uint32_t v;
	random_bytes(&v, sizeof(v));
	return v;
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
