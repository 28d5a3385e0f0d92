/* kstubs.h: what tests/unit/kstubs.c lets a test see of the fake kernel. */
#ifndef RINGLET_TEST_KSTUBS_H
#define RINGLET_TEST_KSTUBS_H

#include <stdint.h>

extern char kstub_log[4096];  /* every klog() line since the test cleared it */
extern uint64_t kstub_now_ns; /* what time_ns() returns */
struct wait_source;
extern struct wait_source *kstub_wait_sources[8]; /* what drivers gave wait_add_source() */
extern int kstub_nwait_sources;
struct blk_dev_ops;
extern const struct blk_dev_ops *kstub_blk_ops; /* what disk drivers gave blk_register() */
extern void *kstub_blk_dev[16];
extern int kstub_nblk;

#endif
