/*
 * fuzz_mb2: libFuzzer target for boot/bootparse.c's multiboot2 info parser
 * (the info block comes from the boot loader, GRUB; the command-line module
 * from a file on the disk image that anyone with the image can edit).
 *
 *	make fuzz FUZZ=mb2 FUZZ_SECONDS=300
 *
 * The input is all of "physical memory" (address 0 is its first byte) and the
 * info block lies at address 0; a module's [start, end) may point anywhere.
 * libFuzzer's input buffer is exactly that large, so AddressSanitizer sees
 * any read outside it, and libFuzzer's -timeout any walk that never ends.
 * When the parser accepts, what it produced must be sane.
 */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bootparse.h"

static struct boot_info bi;
static uint8_t rsdp_copy[BOOT_RSDP_COPY];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct boot_phys mem = {.base = (uintptr_t)data, .size = size};

	if (boot_parse_mb2(&bi, &mem, BOOT_MB2_MAGIC, 0, rsdp_copy) != NULL)
		return 0;
	/* Accepted: the block's own size field is inside the input and bounded. */
	uint32_t total;
	memcpy(&total, data, 4);
	if (total > size || total > BOOT_MB2_INFO_MAX)
		abort();
	if (bi.magic != BOOT_INFO_MAGIC || bi.source != BOOT_SOURCE_MULTIBOOT2)
		abort();
	if (bi.mem_count > BOOT_MEM_MAX)
		abort();
	for (uint32_t i = 0; i < bi.mem_count; i++)
		if (bi.mem[i].len == 0 || bi.mem[i].addr >= BOOT_PHYS_LIMIT ||
		    bi.mem[i].len > BOOT_PHYS_LIMIT - bi.mem[i].addr)
			abort();
	size_t n = strnlen(bi.cmdline, BOOT_CMDLINE_MAX);
	if (n == BOOT_CMDLINE_MAX)
		abort();
	/* The command line's bytes are somewhere in the input. */
	if (n > 0 && memmem(data, size, bi.cmdline, n) == NULL)
		abort();
	if (bi.rsdp != 0 && bi.rsdp != (uintptr_t)rsdp_copy)
		abort();
	return 0;
}
