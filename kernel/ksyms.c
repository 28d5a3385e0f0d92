/*
 * kernel/ksyms.c: function names for backtraces.
 *
 * The table is made at link time: the Makefile links the image once with an
 * empty table, lists its functions with `nm -n` (scripts/ksyms), assembles
 * the list and links again. The table lives at the end of .rodata, after all
 * code, so adding it does not move any function (the Makefile checks).
 */
#include <stdint.h>

#include "kernel.h"

/* Sorted by address; names[i] is an offset into ksyms_strings. */
extern const uint64_t ksyms_count;
extern const uint64_t ksyms_addrs[];
extern const uint32_t ksyms_names[];
extern const char ksyms_strings[];
extern char __text_start[], __text_end[];

const char *symbol_name(uintptr_t addr, uintptr_t *offset)
{
	if (addr < (uintptr_t)__text_start || addr >= (uintptr_t)__text_end || ksyms_count == 0)
		return NULL;
	/* The last symbol at or below addr. */
	uint64_t lo = 0, hi = ksyms_count;
	while (hi - lo > 1) {
		uint64_t mid = (lo + hi) / 2;
		if (ksyms_addrs[mid] <= addr)
			lo = mid;
		else
			hi = mid;
	}
	if (ksyms_addrs[lo] > addr)
		return NULL;
	*offset = addr - ksyms_addrs[lo];
	return ksyms_strings + ksyms_names[lo];
}
