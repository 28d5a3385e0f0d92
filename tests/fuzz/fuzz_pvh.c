/*
 * fuzz_pvh: libFuzzer target for boot/bootparse.c's PVH start-info parser
 * (the start info comes from whoever starts the guest: QEMU, Xen, Firecracker).
 *
 *	make fuzz FUZZ=pvh FUZZ_SECONDS=300
 *
 * The input is all of "physical memory" (address 0 is its first byte) and the
 * start info lies at address 0; the pointers in it (command line, memory map,
 * RSDP) are the fuzzer's to choose. libFuzzer's input buffer is exactly that
 * large, so AddressSanitizer sees any read outside it. When the parser
 * accepts, what it produced must be sane and come from the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bootparse.h"

static struct boot_info bi;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct boot_phys mem = {.base = (uintptr_t)data, .size = size};

	if (boot_parse_pvh(&bi, &mem, 0) != NULL)
		return 0;
	if (bi.magic != BOOT_INFO_MAGIC || bi.source != BOOT_SOURCE_PVH)
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
	/* The accepted start info is at least 40 bytes; the command line's
	 * address is at offset 24 and the RSDP's at 32. */
	uint64_t cl, rsdp;
	memcpy(&cl, data + 24, 8);
	memcpy(&rsdp, data + 32, 8);
	if (n > 0 && (cl >= size || n > size - cl || memcmp(bi.cmdline, data + cl, n) != 0))
		abort();
	if (bi.rsdp != rsdp || (rsdp && (rsdp > size || size - rsdp < BOOT_RSDP_COPY)))
		abort();
	return 0;
}
