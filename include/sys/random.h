/*
 * <sys/random.h>: getrandom() and getentropy(), as on Linux (glibc). newlib
 * declares getentropy() in <unistd.h> (with __BSD_VISIBLE) and has no
 * <sys/random.h>; Ringlet's kernel provides both (kernel/random.c).
 */
#ifndef _SYS_RANDOM_H
#define _SYS_RANDOM_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Flags of getrandom(), Linux's values. Ringlet's generator is seeded
 * before main(), so none of them changes what comes back: GRND_NONBLOCK
 * never matters, GRND_RANDOM and GRND_INSECURE draw from the same
 * generator (together they are EINVAL, as on Linux). */
#define GRND_NONBLOCK 0x01
#define GRND_RANDOM   0x02
#define GRND_INSECURE 0x04

/* Fills buf with n random bytes (at most 0x7ffff000 per call, as Linux);
 * returns the count, or -1 with errno EINVAL for bad flags. */
ssize_t getrandom(void *buf, size_t n, unsigned int flags);

/* At most 256 bytes; 0, or -1 with errno EIO when n is larger. */
int getentropy(void *buf, size_t n);

#ifdef __cplusplus
}
#endif

#endif
