/* kstubs.h: what tests/unit/kstubs.c lets a test see of the fake kernel. */
#ifndef RINGLET_TEST_KSTUBS_H
#define RINGLET_TEST_KSTUBS_H

#include <stdint.h>

extern char kstub_log[4096];  /* every klog() line since the test cleared it */
extern uint64_t kstub_now_ns; /* what time_ns() returns */

#endif
