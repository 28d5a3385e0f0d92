/*
 * boot/bootparse.h: the boot-information parsers, as pure functions.
 *
 * They read what a boot path was handed (PVH start info, a multiboot2 info
 * block) through a view of physical memory and fill a struct boot_info. They
 * call nothing in the kernel, so the host unit tests (tests/unit/test_bootinfo.c)
 * and the fuzzers (tests/fuzz/fuzz_pvh.c, fuzz_mb2.c) run exactly the code
 * the kernel runs at boot (boot/boot.c).
 */
#ifndef RINGLET_BOOTPARSE_H
#define RINGLET_BOOTPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "bootinfo.h"

/*
 * A window on physical memory: physical address a (a < size) is at host
 * address base + a. The kernel's view is the identity map of the first 4 GiB
 * that boot/entry.S builds (base 0, size 4 GiB); a test's view is a buffer.
 */
struct boot_phys {
	uintptr_t base;
	uint64_t size;
};

/* Room the multiboot2 parser needs for its copy of the ACPI RSDP. */
#define BOOT_RSDP_COPY 36

#define BOOT_PVH_MAGIC 0x336ec578 /* hvm_start_info.magic */
#define BOOT_MB2_MAGIC 0x36d76289 /* %eax at the multiboot2 entry */

/*
 * Fill *bi from the PVH start info at physical address start_info.
 * Returns NULL, or a message saying why the boot information is unusable.
 */
const char *boot_parse_pvh(struct boot_info *bi, const struct boot_phys *mem, uint64_t start_info);

/*
 * Fill *bi from the multiboot2 info block at physical address info, given the
 * magic the loader left in %eax. A copy of the RSDP goes to rsdp_copy
 * (BOOT_RSDP_COPY bytes that outlive the info block); bi->rsdp then points at it.
 * Returns NULL, or a message saying why the boot information is unusable.
 */
const char *boot_parse_mb2(struct boot_info *bi, const struct boot_phys *mem, uint32_t magic, uint64_t info,
                           uint8_t *rsdp_copy);

#endif
