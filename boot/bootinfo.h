/*
 * The one boot-info struct every way in hands to the kernel.
 *
 * PVH (qemu -kernel), multiboot2 (GRUB) and the UEFI loader each translate
 * what their firmware or loader gave them into this struct, so the kernel
 * proper never needs to know how it was started.
 *
 * Contract for a loader entering the kernel at its ELF entry point
 * (`_start64`, e_entry of ringlet.elf):
 *   - 64-bit long mode, interrupts off, paging on with an identity mapping
 *     that covers the kernel image, the boot_info struct and the current stack;
 *   - %rdi = physical (= virtual) address of a struct boot_info;
 *   - every PT_LOAD segment of the ELF copied to its p_paddr and the rest of
 *     p_memsz zeroed; the kernel is linked to run where it is loaded.
 * The kernel copies the struct before it reuses any memory, then builds its
 * own GDT, IDT, page tables and stack.
 */
#ifndef RINGLET_BOOTINFO_H
#define RINGLET_BOOTINFO_H

#include <stdint.h>

#define BOOT_INFO_MAGIC 0x52494e47u /* "RING" */

/* Memory-map entry types: the E820 numbering, which PVH uses as-is. */
enum boot_mem_type {
	BOOT_MEM_USABLE = 1,       /* free RAM, ours to allocate */
	BOOT_MEM_RESERVED = 2,     /* never touch */
	BOOT_MEM_ACPI_RECLAIM = 3, /* ACPI tables: free once they have been read */
	BOOT_MEM_ACPI_NVS = 4,     /* firmware-owned, never touch */
	BOOT_MEM_BAD = 5,          /* faulty RAM */
};

/* Where the boot came from; printed at boot, otherwise informative only. */
enum boot_source {
	BOOT_SOURCE_PVH = 1,
	BOOT_SOURCE_MULTIBOOT2 = 2,
	BOOT_SOURCE_UEFI = 3,
};

struct boot_mem_entry {
	uint64_t addr; /* physical start */
	uint64_t len;  /* bytes; entries of length 0 are never stored */
	uint32_t type; /* enum boot_mem_type */
	uint32_t pad;
};

#define BOOT_MEM_MAX     128
#define BOOT_CMDLINE_MAX 2048

struct boot_info {
	uint32_t magic;     /* BOOT_INFO_MAGIC */
	uint32_t source;    /* enum boot_source */
	uint64_t rsdp;      /* physical address of the ACPI RSDP, 0 if unknown */
	uint32_t mem_count; /* valid entries in mem[] */
	uint32_t pad;
	struct boot_mem_entry mem[BOOT_MEM_MAX];
	char cmdline[BOOT_CMDLINE_MAX]; /* NUL-terminated, may be empty */
};

_Static_assert(sizeof(struct boot_mem_entry) == 24, "boot_mem_entry layout");

#endif
