/*
 * kernel/heap.c: memory for newlib's malloc, through sbrk().
 *
 * newlib's malloc asks for more memory by moving the "program break". The
 * break starts at the bottom of the largest free run of RAM and moves up;
 * each page it passes is claimed from the page allocator, so the heap, page
 * tables, stacks, DMA buffers and the balloon all share one pool of pages.
 * Because RAM is identity mapped, heap memory can be handed to a device as
 * it is. When malloc trims the heap (sbrk with a negative increment), the
 * whole pages above the new break go back to the page allocator.
 */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>

#include "kernel.h"

static uintptr_t heap_start, heap_brk, heap_claimed, heap_limit;
static size_t (*heap_oom_hook)(size_t npages);

void heap_set_oom_hook(size_t (*hook)(size_t npages)) { heap_oom_hook = hook; }

size_t heap_claimed_bytes(void) { return heap_claimed - heap_start; }

void heap_init(void)
{
	pmem_largest_free(&heap_start, &heap_limit);
	heap_brk = heap_claimed = heap_start;
}

void *sbrk(ptrdiff_t incr)
{
	uintptr_t old = heap_brk;
	if (incr < 0) {
		/* newlib's malloc trims the heap when more than its trim
		 * threshold (128 KiB) is free at the top: the whole pages above
		 * the new break go back to the page allocator, where the
		 * balloon (and free page reporting) can give them to the host. */
		if ((uintptr_t)-incr > heap_brk - heap_start) {
			errno = EINVAL;
			return (void *)-1;
		}
		heap_brk += incr;
		uintptr_t keep = ALIGN_UP(heap_brk, PAGE_SIZE);
		if (keep < heap_claimed) {
			page_free((void *)keep, (heap_claimed - keep) / PAGE_SIZE);
			heap_claimed = keep;
		}
		return (void *)old;
	}
	uintptr_t want = heap_brk + (uintptr_t)incr;
	if (want > heap_limit || want < heap_brk) {
		errno = ENOMEM;
		return (void *)-1;
	}
	if (want > heap_claimed) {
		size_t n = (ALIGN_UP(want, PAGE_SIZE) - heap_claimed) / PAGE_SIZE;
		/* Fails when something else (a stack, the balloon) has taken
		 * pages in the way: then the heap is full. */
		while (pmem_claim(heap_claimed, n) != 0) {
			/* Deflate on OOM: the balloon gives back the lowest pages it
			 * holds, which are the ones in the heap's way; as many as
			 * are in the way, not the whole growth. */
			if (!heap_oom_hook || !heap_oom_hook(pmem_taken_in(heap_claimed, n))) {
				errno = ENOMEM;
				return (void *)-1;
			}
		}
		heap_claimed += n * PAGE_SIZE;
	}
	heap_brk = want;
	return (void *)old;
}

size_t heap_max_bytes(void) { return heap_limit - heap_start; }

/*
 * newlib 3.3 declares posix_memalign() (and builds aligned_alloc() on it)
 * but does not define it for this target; its memalign() does the work.
 */
int posix_memalign(void **out, size_t align, size_t size)
{
	if (align < sizeof(void *) || (align & (align - 1)))
		return EINVAL;
	void *p = memalign(align, size);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}
