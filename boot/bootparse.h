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

/* Room the multiboot2 parser needs for its copy of the ACPI RSDP (the
 * ACPI 2.0 RSDP is 36 bytes, the 1.0 one the first 20 of them). */
#define BOOT_RSDP_COPY 36
#define BOOT_RSDP_V1   20

/*
 * No x86-64 CPU has physical addresses of more than 52 bits (Intel SDM
 * vol. 3A §4.1.4, MAXPHYADDR <= 52), so a memory-map range past 2^52 is a
 * lie; clipping there also keeps every addr + len far from wrapping.
 */
#define BOOT_PHYS_LIMIT (1ull << 52)

/*
 * The most PVH memory-map entries read. QEMU passes its e820 table (a
 * handful of entries), Xen at most a few hundred; boot_info keeps only
 * BOOT_MEM_MAX. The bound keeps a hostile count from walking 96 GiB.
 */
#define BOOT_PVH_MEMMAP_MAX 1024

/*
 * The largest multiboot2 info block accepted. GRUB's largest tags are the
 * EFI memory map (a few hundred 48-byte descriptors on big machines) and the
 * ELF section headers (ours: ~30 of 64 bytes): real blocks are a few KiB,
 * 64 KiB is over ten times that. A larger total means a corrupt block, and
 * the walk would wander through unrelated memory.
 */
#define BOOT_MB2_INFO_MAX (64u * 1024)

#define BOOT_PVH_MAGIC 0x336ec578 /* hvm_start_info.magic */
#define BOOT_MB2_MAGIC 0x36d76289 /* %eax at the multiboot2 entry */

/*
 * Fill *bi from the PVH start info at physical address start_info.
 * Returns NULL, or a message saying why the boot information is unusable
 * (bi is then partly filled and must not be used).
 * Every pointer in the start info must lie inside mem, with what it points
 * at; the memory map is read up to BOOT_PVH_MEMMAP_MAX entries.
 */
const char *boot_parse_pvh(struct boot_info *bi, const struct boot_phys *mem, uint64_t start_info);

/*
 * Fill *bi from the multiboot2 info block at physical address info, given the
 * magic the loader left in %eax. A copy of the RSDP goes to rsdp_copy
 * (BOOT_RSDP_COPY bytes that outlive the info block); bi->rsdp then points at it
 * (rsdp_copy NULL: ACPI tags are ignored).
 * Returns NULL, or a message saying why the boot information is unusable.
 * The block must lie inside mem and be at most BOOT_MB2_INFO_MAX bytes; every
 * tag must fit inside it and the last must be the end tag.
 */
const char *boot_parse_mb2(struct boot_info *bi, const struct boot_phys *mem, uint32_t magic, uint64_t info,
                           uint8_t *rsdp_copy);

/*
 * Make a struct boot_info handed over by the UEFI loader (our own code, but
 * built from what firmware said) as safe as the parsers' output: at most
 * BOOT_MEM_MAX entries, none empty, none past BOOT_PHYS_LIMIT, and a
 * NUL-terminated command line.
 */
void boot_info_sanitize(struct boot_info *bi);

#endif
