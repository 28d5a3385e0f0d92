/*
 * kernel/pmem.c: the physical page allocator.
 *
 * One bit per 4 KiB page of RAM, up to the highest usable address in the
 * memory map: 1 = not available (in use, reserved, or not RAM at all).
 * It owns all free RAM: page tables, stacks and DMA buffers come from here
 * (allocated from the top of memory down), the heap claims pages upwards from
 * the bottom of the largest free run, and the balloon driver takes pages
 * from here and gives them back.
 *
 * Addresses are physical and, since the kernel identity-maps RAM, usable as
 * pointers too.
 */
#include <stdint.h>
#include <string.h>

#include "../boot/bootinfo.h"
#include "io.h"
#include "kernel.h"

extern char __kernel_start[], __kernel_end[];

static uint64_t *bitmap;   /* bit i: page i is unavailable */
static size_t npages;      /* pages covered by the bitmap */
static size_t free_pages;  /* bits that are 0 */
static size_t total_pages; /* usable pages at boot */
static size_t search_hint; /* page index below which the last search ended */
static uintptr_t largest_start, largest_end;

/* Free page reporting (drivers/virtio_balloon.c): one bit per 2 MiB block
 * (PMEM_REPORT_PAGES pages, aligned) that was handed to the host while free
 * and has not been used since. The host dropped its backing; reporting it
 * again would be wasted work. Any allocation in the block clears the bit.
 * 64 GiB of RAM at most are tracked; blocks above are never reported. */
#define REPORT_BLOCKS 32768
static uint64_t reported[REPORT_BLOCKS / 64];

/* When an allocation cannot be met: the balloon's deflate-on-OOM (it gives
 * pages back and returns how many). NULL: nobody to ask. */
static size_t (*oom_hook)(size_t npages);

static bool test(size_t i) { return bitmap[i / 64] >> (i % 64) & 1; }
static void set(size_t i) { bitmap[i / 64] |= 1ull << (i % 64); }
static void clear(size_t i) { bitmap[i / 64] &= ~(1ull << (i % 64)); }

/* Pages [first, first + n) were just taken: their blocks are no longer
 * "reported and untouched". */
static void unreport(size_t first, size_t n)
{
	for (size_t b = first / PMEM_REPORT_PAGES; b <= (first + n - 1) / PMEM_REPORT_PAGES && b < REPORT_BLOCKS; b++)
		reported[b / 64] &= ~(1ull << (b % 64));
}

/* Sets (value 1) or clears pages [first, end) a word at a time where it can:
 * at boot this runs over every page of RAM. Returns how many bits changed. */
static size_t fill(size_t first, size_t end, int value)
{
	size_t changed = 0;
	if (end > npages)
		end = npages;
	for (size_t p = first; p < end;) {
		if (p % 64 == 0 && p + 64 <= end) {
			uint64_t old = bitmap[p / 64];
			bitmap[p / 64] = value ? ~0ull : 0;
			changed += __builtin_popcountll(value ? ~old : old);
			p += 64;
		} else {
			if (test(p) != value) {
				value ? set(p) : clear(p);
				changed++;
			}
			p++;
		}
	}
	return changed;
}

/* Marks [start, end) unavailable (rounded outwards to whole pages). */
static void reserve(uint64_t start, uint64_t end)
{
	free_pages -= fill(start / PAGE_SIZE, ALIGN_UP(end, PAGE_SIZE) / PAGE_SIZE, 1);
}

void pmem_init(const struct boot_info *bi)
{
	uint64_t top = 0;
	for (uint32_t i = 0; i < bi->mem_count; i++) {
		const struct boot_mem_entry *e = &bi->mem[i];
		if (e->type == BOOT_MEM_USABLE && e->addr + e->len > top)
			top = e->addr + e->len;
	}
	if (top == 0)
		panic("memory map has no usable RAM");
	npages = top / PAGE_SIZE;
	static const char *const type_names[] = {"?", "usable", "reserved", "ACPI reclaim", "ACPI NVS", "bad"};
	for (uint32_t i = 0; i < bi->mem_count; i++)
		kdebug("memory map: 0x%012lx-0x%012lx %s", bi->mem[i].addr, bi->mem[i].addr + bi->mem[i].len - 1,
		       type_names[bi->mem[i].type < ARRAY_SIZE(type_names) ? bi->mem[i].type : 0]);
	size_t bitmap_bytes = ALIGN_UP(npages, 64) / 8;

	/* The bitmap goes in the first usable range above the kernel that can
	 * hold it (a page-aligned piece of it). */
	uint64_t kend = ALIGN_UP((uintptr_t)__kernel_end, PAGE_SIZE);
	for (uint32_t i = 0; i < bi->mem_count && !bitmap; i++) {
		const struct boot_mem_entry *e = &bi->mem[i];
		uint64_t s = ALIGN_UP(e->addr, PAGE_SIZE), end = ALIGN_DOWN(e->addr + e->len, PAGE_SIZE);
		if (e->type != BOOT_MEM_USABLE)
			continue;
		if (s < kend && end > kend)
			s = kend;
		if (s >= kend && end > s && end - s >= bitmap_bytes && s + bitmap_bytes <= 0x100000000ull)
			bitmap = (uint64_t *)(uintptr_t)s;
	}
	if (!bitmap)
		panic("no room for the page bitmap (%zu bytes)", bitmap_bytes);

	/* Everything unavailable, then usable ranges freed, then anything the
	 * map also lists as not usable (entries may overlap) taken again. */
	memset(bitmap, 0xff, bitmap_bytes);
	free_pages = 0;
	for (uint32_t i = 0; i < bi->mem_count; i++) {
		const struct boot_mem_entry *e = &bi->mem[i];
		if (e->type == BOOT_MEM_USABLE)
			free_pages += fill(ALIGN_UP(e->addr, PAGE_SIZE) / PAGE_SIZE, (e->addr + e->len) / PAGE_SIZE, 0);
	}
	for (uint32_t i = 0; i < bi->mem_count; i++) {
		const struct boot_mem_entry *e = &bi->mem[i];
		if (e->type != BOOT_MEM_USABLE)
			reserve(e->addr, e->addr + e->len);
	}
	total_pages = free_pages;
	/* The first MiB (real-mode area, BIOS data, page 0), the kernel image
	 * and the bitmap itself. */
	reserve(0, 0x100000);
	reserve((uintptr_t)__kernel_start, (uintptr_t)__kernel_end);
	reserve((uintptr_t)bitmap, (uintptr_t)bitmap + bitmap_bytes);
	/* Until kernel/paging.c has built the real page tables only the first
	 * 4 GiB are mapped (boot/entry.S), so the first searches start there;
	 * memory above is handed out once that is used up. */
	search_hint = npages < (0x100000000ull / PAGE_SIZE) ? npages : 0x100000000ull / PAGE_SIZE;

	/* Find the largest free run: the heap will grow there. */
	size_t best = 0, run = 0;
	for (size_t p = 0; p <= npages; p++) {
		if (p % 64 == 0 && p + 64 <= npages && bitmap[p / 64] == 0) {
			run += 64; /* a whole word free */
			p += 63;
			continue;
		}
		if (p < npages && !test(p)) {
			run++;
			continue;
		}
		if (run > best) {
			best = run;
			largest_start = (p - run) * PAGE_SIZE;
			largest_end = p * PAGE_SIZE;
		}
		run = 0;
	}
}

static void *alloc_run(size_t n);

/*
 * Every function that changes the bitmap runs with interrupts off: the
 * application tick (kernel/time.c) may run the balloon, which takes and
 * gives pages, in the middle of an allocation the application made.
 */
void *page_alloc(size_t n)
{
	uint64_t flags = irq_save();
	void *mem = alloc_run(n);
	irq_restore(flags);
	/* Deflate on OOM: the balloon gives pages back, then one more try.
	 * (It gives back the pages it took last: the lowest it holds.) */
	if (!mem && n && oom_hook && oom_hook(n)) {
		flags = irq_save();
		mem = alloc_run(n);
		irq_restore(flags);
	}
	return mem;
}

static void *alloc_run(size_t n)
{
	if (n == 0 || n > free_pages)
		return NULL;
	/* Top-down, first fit, starting below where the last search ended and
	 * wrapping around once. The heap grows upwards from low memory, so the
	 * two meet only when memory is really full. */
	for (int pass = 0; pass < 2; pass++) {
		size_t run = 0;
		size_t p = pass == 0 ? search_hint : npages;
		size_t stop = pass == 0 ? 0 : search_hint;
		while (p > stop) {
			p--;
			if (run == 0 && p % 64 == 63 && bitmap[p / 64] == ~0ull) {
				p -= 63; /* a whole word in use: skip it */
				continue;
			}
			if (test(p)) {
				run = 0;
				continue;
			}
			if (++run == n) {
				for (size_t i = p; i < p + n; i++)
					set(i);
				unreport(p, n);
				free_pages -= n;
				search_hint = p;
				void *mem = (void *)(uintptr_t)(p * PAGE_SIZE);
				memset(mem, 0, n * PAGE_SIZE);
				return mem;
			}
		}
	}
	return NULL;
}

void page_free(void *mem, size_t n)
{
	size_t first = (uintptr_t)mem / PAGE_SIZE;
	kassert((uintptr_t)mem % PAGE_SIZE == 0 && first + n <= npages);
	uint64_t flags = irq_save();
	for (size_t i = first; i < first + n; i++) {
		kassert(test(i)); /* freeing a free page: a double free */
		clear(i);
	}
	free_pages += n;
	if (first + n > search_hint)
		search_hint = first + n;
	irq_restore(flags);
}

int pmem_claim(uintptr_t addr, size_t n)
{
	size_t first = addr / PAGE_SIZE;
	if (addr % PAGE_SIZE || first + n > npages)
		return -1;
	uint64_t flags = irq_save();
	for (size_t i = first; i < first + n; i++)
		if (test(i)) {
			irq_restore(flags);
			return -1;
		}
	for (size_t i = first; i < first + n; i++)
		set(i);
	unreport(first, n);
	free_pages -= n;
	irq_restore(flags);
	return 0;
}

size_t pmem_take(uint32_t *pfns, size_t n)
{
	size_t got = 0;
	uint64_t flags = irq_save();
	/* Top-down like page_alloc(), whole words in use skipped, and no
	 * memset: nobody will touch these pages. */
	for (int pass = 0; pass < 2 && got < n; pass++) {
		size_t p = pass == 0 ? search_hint : npages;
		size_t stop = pass == 0 ? 0 : search_hint;
		while (p > stop && got < n) {
			p--;
			if (p % 64 == 63 && bitmap[p / 64] == ~0ull) {
				p -= 63;
				continue;
			}
			if (test(p))
				continue;
			set(p);
			unreport(p, 1);
			pfns[got++] = (uint32_t)p;
			search_hint = p;
		}
	}
	free_pages -= got;
	irq_restore(flags);
	return got;
}

void pmem_give(const uint32_t *pfns, size_t n)
{
	uint64_t flags = irq_save();
	size_t top = search_hint;
	for (size_t i = 0; i < n; i++) {
		size_t p = pfns[i];
		kassert(p < npages && test(p)); /* giving back a free page: a double free */
		clear(p);
		if (p + 1 > top)
			top = p + 1;
	}
	free_pages += n;
	search_hint = top;
	irq_restore(flags);
}

size_t pmem_free_pages(void) { return free_pages; }

size_t pmem_taken_in(uintptr_t addr, size_t n)
{
	size_t first = addr / PAGE_SIZE, taken = 0;
	for (size_t i = first; i < first + n; i++)
		taken += i >= npages || test(i);
	return taken;
}

void pmem_set_oom_hook(size_t (*hook)(size_t npages)) { oom_hook = hook; }

uintptr_t pmem_report_take(void)
{
	/* A whole block is free when its PMEM_REPORT_PAGES / 64 bitmap words
	 * are all 0. From the top, like every other taker. */
	uint64_t flags = irq_save();
	size_t blocks = npages / PMEM_REPORT_PAGES;
	if (blocks > REPORT_BLOCKS)
		blocks = REPORT_BLOCKS;
	for (size_t b = blocks; b-- > 0;) {
		if (reported[b / 64] >> (b % 64) & 1)
			continue;
		const uint64_t *w = &bitmap[b * PMEM_REPORT_PAGES / 64];
		bool all_free = true;
		for (size_t i = 0; i < PMEM_REPORT_PAGES / 64 && all_free; i++)
			all_free = w[i] == 0;
		if (!all_free)
			continue;
		/* Taken while the host drops it, so nobody allocates it meanwhile. */
		fill(b * PMEM_REPORT_PAGES, (b + 1) * PMEM_REPORT_PAGES, 1);
		free_pages -= PMEM_REPORT_PAGES;
		irq_restore(flags);
		return b * PMEM_REPORT_PAGES * PAGE_SIZE;
	}
	irq_restore(flags);
	return 0;
}

void pmem_report_done(uintptr_t addr)
{
	size_t first = addr / PAGE_SIZE, b = first / PMEM_REPORT_PAGES;
	kassert(first % PMEM_REPORT_PAGES == 0 && b < REPORT_BLOCKS);
	uint64_t flags = irq_save();
	free_pages += fill(first, first + PMEM_REPORT_PAGES, 0);
	reported[b / 64] |= 1ull << (b % 64);
	irq_restore(flags);
}

size_t pmem_total_pages(void) { return total_pages; }
uintptr_t pmem_top(void) { return npages * PAGE_SIZE; }

void pmem_largest_free(uintptr_t *start, uintptr_t *end)
{
	*start = largest_start;
	*end = largest_end;
}
