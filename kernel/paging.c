/*
 * kernel/paging.c: the kernel's page tables.
 *
 * Everything is identity mapped (virtual address == physical address), which
 * keeps DMA simple: a pointer is the address a device needs. What paging adds
 * is protection:
 *   - kernel text read+execute, rodata read-only, everything else never
 *     executable (W^X), with CR0.WP so that even the kernel cannot write
 *     to read-only pages;
 *   - page 0 unmapped, so a NULL dereference faults;
 *   - an unmapped guard page below every stack;
 *   - device registers mapped uncached, on demand, wherever a PCI BAR is
 *     (also above 4 GiB); RAM is mapped write-back.
 * RAM is mapped with 2 MiB pages except where finer rights are needed.
 *
 * mmio_map() is where a number a device or firmware handed us (a BAR, an
 * ACPI address) becomes a writable mapping, so it refuses anything it is not
 * sure is device space: RAM of any kind the boot memory map lists, the first
 * MiB, the kernel image, and addresses the CPU cannot reach. Remapping RAM
 * uncached and writable would let a device steer our writes into page
 * tables, stacks or the kernel itself.
 *
 * Implements: Intel SDM vol. 3A, §4.5 (4-level paging), §11.12 (PAT: PCD/PWT).
 */
#include <stdint.h>
#include <string.h>

#include "../boot/bootinfo.h"
#include "io.h"
#include "kernel.h"

#define PTE_P    (1ull << 0)
#define PTE_W    (1ull << 1)
#define PTE_PWT  (1ull << 3)
#define PTE_PCD  (1ull << 4)
#define PTE_PS   (1ull << 7) /* a 2 MiB page, in a page-directory entry */
#define PTE_NX   (1ull << 63)
#define PTE_ADDR 0x000ffffffffff000ull
#define HUGE     (2ul << 20)

extern char __kernel_start[], __text_start[], __text_end[], __rodata_start[], __rodata_end[], __kernel_end[];
extern char boot_stack_guard[];

static uint64_t *pml4;

/* The RAM the boot memory map lists (usable, ACPI reclaim/NVS, bad), kept
 * for mmio_map()'s refusals: the boot_info struct does not outlive boot. */
struct ram_range {
	uint64_t start, end;
	uint32_t type;
};
static struct ram_range ram[BOOT_MEM_MAX];
static int nram;
static uint64_t phys_limit; /* 1 << MAXPHYADDR */

static uint64_t *table_alloc(void)
{
	uint64_t *t = page_alloc(1);
	if (!t)
		panic("out of memory for page tables");
	return t;
}

/* The entry for va at `level` (3 = PML4 ... 0 = PT), creating tables on the
 * way; a 2 MiB page met on the way to level 0 is split into 4 KiB pages
 * with the same rights. */
static uint64_t *walk(uintptr_t va, int level)
{
	uint64_t *t = pml4;
	for (int l = 3; l > level; l--) {
		uint64_t *e = &t[(va >> (12 + 9 * l)) & 511];
		if (!(*e & PTE_P)) {
			*e = (uintptr_t)table_alloc() | PTE_P | PTE_W;
		} else if (*e & PTE_PS) {
			uint64_t *pt = table_alloc();
			uint64_t base = *e & PTE_ADDR & ~(HUGE - 1), flags = *e & ~PTE_ADDR & ~PTE_PS;
			for (int i = 0; i < 512; i++)
				pt[i] = (base + i * PAGE_SIZE) | flags;
			*e = (uintptr_t)pt | PTE_P | PTE_W;
		}
		t = (uint64_t *)(uintptr_t)(*e & PTE_ADDR);
	}
	return &t[(va >> (12 + 9 * level)) & 511];
}

static void flush(uintptr_t va) { __asm__ volatile("invlpg (%0)" ::"r"(va) : "memory"); }

static void map_page(uintptr_t va, uint64_t flags) { *walk(va, 0) = (va & PTE_ADDR) | flags; }

/* The registry of stacks and their guard pages, for reports. */
struct guard {
	uintptr_t page;
	const char *name;
};
static struct guard guards[16];
static int nguards;

static void guard_add(uintptr_t page, const char *name)
{
	kassert(nguards < (int)ARRAY_SIZE(guards));
	guards[nguards++] = (struct guard){page, name};
	if (pml4)
		paging_unmap_page(page);
}

const char *stack_guard_name(uintptr_t addr)
{
	for (int i = 0; i < nguards; i++)
		if (addr >= guards[i].page && addr < guards[i].page + PAGE_SIZE)
			return guards[i].name;
	return NULL;
}

static bool is_ram(uint64_t type)
{
	return type == BOOT_MEM_USABLE || type == BOOT_MEM_ACPI_RECLAIM || type == BOOT_MEM_ACPI_NVS;
}

/* What mmio_map() must never map as a device: RAM of every kind, and any
 * type this kernel does not know (it cannot be sure that is device space).
 * Only "reserved" may hold devices (the ECAM window, firmware's MMIO). */
static bool not_device(uint32_t type) { return type != BOOT_MEM_RESERVED; }

static void remember_ram(const struct boot_info *bi)
{
	for (uint32_t i = 0; i < bi->mem_count && nram < (int)ARRAY_SIZE(ram); i++) {
		const struct boot_mem_entry *e = &bi->mem[i];
		if (not_device(e->type) && e->len && e->addr + e->len > e->addr)
			ram[nram++] = (struct ram_range){e->addr, e->addr + e->len, e->type};
	}
	/* Intel SDM vol. 3A §4.1.4: CPUID 0x80000008 EAX[7:0] is MAXPHYADDR;
	 * 36 bits when the leaf is missing. Bits above it in a page-table
	 * entry are reserved: such a mapping would fault on first use. */
	uint32_t r[4];
	cpuid(0x80000000, 0, r);
	unsigned bits = 36;
	if (r[0] >= 0x80000008) {
		cpuid(0x80000008, 0, r);
		if ((r[0] & 0xff) >= 32 && (r[0] & 0xff) <= 52)
			bits = r[0] & 0xff;
	}
	phys_limit = 1ull << bits;
}

void paging_init(const struct boot_info *bi)
{
	pml4 = table_alloc();
	remember_ram(bi);

	/* RAM, in 2 MiB pages, read/write, never executable. A 2 MiB chunk is
	 * mapped when any RAM lies in it; holes between are left unmapped. */
	for (uint32_t i = 0; i < bi->mem_count; i++) {
		const struct boot_mem_entry *e = &bi->mem[i];
		if (!is_ram(e->type) && e->addr >= 0x100000)
			continue; /* reserved ranges below 1 MiB are the BIOS area, which we read */
		for (uint64_t a = ALIGN_DOWN(e->addr, HUGE); a < e->addr + e->len; a += HUGE) {
			uint64_t *pde = walk(a, 1);
			if (!(*pde & PTE_P))
				*pde = a | PTE_P | PTE_W | PTE_PS | PTE_NX;
		}
	}

	/* The first 2 MiB (or more, if the kernel is larger) page by page:
	 * page 0 unmapped, the kernel's sections with their own rights. */
	uintptr_t fine_end = ALIGN_UP((uintptr_t)__kernel_end, HUGE);
	for (uintptr_t va = 0; va < fine_end; va += PAGE_SIZE) {
		uint64_t flags = PTE_P | PTE_W | PTE_NX;
		if (va >= (uintptr_t)__text_start && va < (uintptr_t)__text_end)
			flags = PTE_P;
		else if (va >= (uintptr_t)__rodata_start && va < (uintptr_t)__rodata_end)
			flags = PTE_P | PTE_NX;
		map_page(va, flags);
	}
	*walk(0, 0) = 0;

	guard_add((uintptr_t)boot_stack_guard, "boot stack");
	uintptr_t ist[3];
	cpu_ist_guards(ist);
	guard_add(ist[0], "page-fault stack");
	guard_add(ist[1], "double-fault stack");
	guard_add(ist[2], "NMI stack");
	for (int i = 0; i < nguards; i++)
		*walk(guards[i].page, 0) = 0;

	write_cr3((uintptr_t)pml4);
}

const char *mmio_refusal(uint64_t phys, uint64_t len, uint64_t *past)
{
	static const char *const names[] = {"?",      "usable RAM", "reserved", "ACPI tables (RAM)", "ACPI NVS (RAM)",
	                                    "bad RAM"};
	uint64_t dummy;
	if (!past)
		past = &dummy;
	*past = ~0ull;
	if (!phys_limit)
		return "too early: the kernel's page tables are not built yet";
	if (len == 0)
		return "an empty range";
	if (phys + len < phys || phys + len > phys_limit)
		return "beyond the CPU's physical address width";
	/* The mapping covers whole pages: so does the check (RAM that shares
	 * a page with a device's registers would be mapped with them). */
	uint64_t end = ALIGN_UP(phys + len, PAGE_SIZE);
	phys = ALIGN_DOWN(phys, PAGE_SIZE);
	if (phys < 0x100000) {
		*past = 0x100000;
		return "the first MiB (BIOS and real-mode area)";
	}
	if (phys < (uintptr_t)__kernel_end && end > (uintptr_t)__kernel_start) {
		*past = ALIGN_UP((uintptr_t)__kernel_end, PAGE_SIZE);
		return "the kernel image";
	}
	for (int i = 0; i < nram; i++)
		if (phys < ram[i].end && end > ram[i].start) {
			*past = ALIGN_UP(ram[i].end, PAGE_SIZE);
			return ram[i].type < ARRAY_SIZE(names) ? names[ram[i].type] : "memory of an unknown type";
		}
	return NULL;
}

volatile void *mmio_map(uint64_t phys, size_t len)
{
	const char *why = mmio_refusal(phys, len, NULL);
	if (why) {
		klog("mmio_map: refused 0x%lx-0x%lx: %s", (unsigned long)phys, (unsigned long)(phys + len - 1), why);
		return NULL;
	}
	/* Uncached (PCD|PWT): device registers must see every access, in order. */
	for (uint64_t a = ALIGN_DOWN(phys, PAGE_SIZE); a < phys + len; a += PAGE_SIZE) {
		map_page(a, PTE_P | PTE_W | PTE_PCD | PTE_PWT | PTE_NX);
		flush(a);
	}
	return (volatile void *)(uintptr_t)phys;
}

void paging_unmap_page(uintptr_t va)
{
	*walk(va, 0) = 0;
	flush(va);
}

bool paging_is_mapped(uintptr_t va)
{
	uint64_t *t = pml4;
	if (!t)
		return va < 0x100000000ull; /* the boot tables map the first 4 GiB */
	if (va >= 0x0000800000000000ull)
		return false; /* non-canonical or upper half: never mapped */
	for (int l = 3; l >= 0; l--) {
		uint64_t e = t[(va >> (12 + 9 * l)) & 511];
		if (!(e & PTE_P))
			return false;
		if (l == 0 || (e & PTE_PS))
			return true;
		t = (uint64_t *)(uintptr_t)(e & PTE_ADDR);
	}
	return false;
}

uintptr_t stack_alloc(size_t bytes, const char *name)
{
	size_t n = ALIGN_UP(bytes, PAGE_SIZE) / PAGE_SIZE;
	uint8_t *base = page_alloc(n + 1);
	if (!base)
		panic("out of memory for the %s (%zu KiB)", name, bytes / 1024);
	guard_add((uintptr_t)base, name);
	return (uintptr_t)base + (n + 1) * PAGE_SIZE;
}
