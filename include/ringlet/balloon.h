/*
 * <ringlet/balloon.h>: memory figures, and what the virtio-balloon driver
 * has done. The driver needs no help from the application: it follows the
 * host by itself (docs/balloon.md). These calls are for applications that
 * want to show or test it, such as apps/memhog.
 */
#ifndef RINGLET_BALLOON_H
#define RINGLET_BALLOON_H

#include <stdbool.h>
#include <stdint.h>

struct ringlet_mem_info {
	uint64_t total_bytes; /* usable RAM at boot */
	uint64_t free_bytes;  /* in the page allocator now */
	uint64_t heap_bytes;  /* pages the heap (malloc) holds now */
};

struct ringlet_balloon_info {
	bool present;             /* a virtio-balloon device was found and works */
	uint64_t features;        /* negotiated feature bits (VIRTIO_BALLOON_F_*) */
	uint32_t target_pages;    /* num_pages: what the host asks for, as last read */
	uint32_t actual_pages;    /* in the balloon (what `actual` says) */
	uint64_t inflated_pages;  /* given to the host since boot */
	uint64_t deflated_pages;  /* taken back since boot */
	uint64_t oom_pages;       /* of those, taken back for an allocation (deflate on OOM) */
	uint64_t oom_events;      /* allocations that needed it */
	uint64_t reported_blocks; /* free 2 MiB blocks reported to the host */
	uint64_t stats_sent;      /* statistics buffers the host received */
};

void ringlet_mem_info(struct ringlet_mem_info *info);
/* Fills info; returns 0, or -ENODEV (info->present false) without a balloon. */
int ringlet_balloon_info(struct ringlet_balloon_info *info);

#endif
