/*
 * <ringlet/ringlet.h>: what Ringlet offers an application beyond POSIX.
 *
 * Most of what an application needs comes through newlib's POSIX headers:
 * printf, malloc, clock_gettime(CLOCK_MONOTONIC) (time since the guest
 * started), nanosleep, open("/dev/vda"), ... This header adds the few things
 * POSIX has no name for.
 */
#ifndef RINGLET_RINGLET_H
#define RINGLET_RINGLET_H

#include <stdint.h>

/* Nanoseconds from the kernel's first instruction to the call of main(). */
uint64_t ringlet_main_ns(void);

#endif
