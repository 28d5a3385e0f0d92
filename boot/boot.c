/*
 * boot/boot.c: turn what each boot path was given into one struct boot_info.
 *
 * The parsing itself is in boot/bootparse.c (pure functions, tested on the
 * host); this file is the kernel's side: where the information lies, and
 * what to do when it is unusable. It also implements the contract of
 * boot/bootinfo.h for the UEFI loader.
 *
 * Everything here runs before the kernel owns memory, so the first job of
 * each path is to copy what it needs into boot_info (in our own .bss) before
 * the page allocator may hand the original pages out again.
 */
#include <stdint.h>
#include <string.h>

#include "bootinfo.h"
#include "bootparse.h"
#include "../kernel/kernel.h"

/* The one copy the kernel keeps. */
static struct boot_info boot_info;

/* What the 32-bit entries' page tables map (boot/entry.S): the first 4 GiB,
 * identity-mapped. Boot information outside it cannot be read. */
static const struct boot_phys boot_low4g = {.base = 0, .size = 0x100000000ull};

/* Called from boot/entry.S in long mode, on the boot stack. */
void boot_from_pvh(uint32_t start_info_paddr)
{
	const char *err = boot_parse_pvh(&boot_info, &boot_low4g, start_info_paddr);
	if (err)
		kernel_early_fail(err);
	kernel_main(&boot_info);
}

extern uint32_t boot_mb2_magic; /* boot/entry.S */

/* The info block may be overwritten later, so the RSDP tag's copy of the
 * RSDP is copied once more, into memory we keep. */
static uint8_t mb2_rsdp_copy[BOOT_RSDP_COPY] __attribute__((aligned(16)));

void boot_from_multiboot2(uint32_t info_paddr)
{
	const char *err = boot_parse_mb2(&boot_info, &boot_low4g, boot_mb2_magic, info_paddr, mb2_rsdp_copy);
	if (err)
		kernel_early_fail(err);
	kernel_main(&boot_info);
}

/* ---- UEFI loader ------------------------------------------------------- */

void boot_from_loader(const struct boot_info *given)
{
	if (given->magic != BOOT_INFO_MAGIC)
		kernel_early_fail("loader: bad boot_info magic");
	boot_info = *given;
	/* Entries are trusted no further than the other paths' are. */
	boot_info_sanitize(&boot_info);
	kernel_main(&boot_info);
}
