/*
 * kernel/net/arch/cc.h: lwIP's compiler and platform glue for Ringlet (lwIP 2.1.3,
 * src/include/lwip/arch.h lists what a port may define here).
 */
#ifndef RINGLET_LWIP_ARCH_CC_H
#define RINGLET_LWIP_ARCH_CC_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h> /* newlib's ssize_t and BYTE_ORDER */

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "Ringlet runs on x86-64: little-endian"
#endif
#ifndef BYTE_ORDER
#define BYTE_ORDER LITTLE_ENDIAN
#endif
/* newlib has ssize_t (long); lwIP would typedef its own int one without this. */
#ifndef SSIZE_MAX
#define SSIZE_MAX LONG_MAX
#endif

/* struct timeval comes from newlib's <sys/time.h>: lwIP must not define its own. */
#define LWIP_TIMEVAL_PRIVATE 0

/* Byte swaps as single instructions (Nanos found lwip_htons in its profiles). */
#define lwip_htons(x) ((u16_t)__builtin_bswap16((u16_t)(x)))
#define lwip_htonl(x) ((u32_t)__builtin_bswap32((u32_t)(x)))

/* Randomness for ports, DHCP transaction ids, TCP ISNs: the kernel's CSPRNG (sys_arch.c). */
uint32_t net_random32(void);
#define LWIP_RAND() ((u32_t)net_random32())

/* lwIP's messages and its asserts (a broken invariant inside the stack is ours: panic). */
void net_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void net_assert(const char *msg, const char *file, int line);
#define LWIP_PLATFORM_DIAG(x)                                                                                          \
	do {                                                                                                           \
		net_diag x;                                                                                            \
	} while (0)
#define LWIP_PLATFORM_ASSERT(x) net_assert((x), __FILE__, __LINE__)

#endif
