/*
 * boot/bootparse.c: PVH start info and multiboot2 info → struct boot_info.
 *
 * Implements: the PVH boot ABI (Xen's arch-x86/hvm/start_info.h, version 1),
 *             the Multiboot2 specification (version 2.0, §3.6 boot information).
 * Try it:     make unit-test (tests/unit/test_bootinfo.c), make fuzz FUZZ=pvh
 *
 * Pure functions: no kernel calls, no globals (see bootparse.h).
 */
#include <stdint.h>
#include <string.h>

#include "bootparse.h"

static const void *phys(const struct boot_phys *mem, uint64_t addr) { return (const void *)(mem->base + addr); }

static void add_mem(struct boot_info *bi, uint64_t addr, uint64_t len, uint32_t type)
{
	/* Some firmware lists empty ranges; they mean nothing and are skipped. */
	if (len == 0)
		return;
	if (bi->mem_count == BOOT_MEM_MAX)
		return; /* kernel_main warns when the map is full */
	bi->mem[bi->mem_count++] = (struct boot_mem_entry){.addr = addr, .len = len, .type = type};
}

static void copy_cmdline(struct boot_info *bi, const char *s, size_t n)
{
	if (n >= BOOT_CMDLINE_MAX)
		n = BOOT_CMDLINE_MAX - 1;
	memcpy(bi->cmdline, s, n);
	bi->cmdline[n] = '\0';
}

/* ---- PVH --------------------------------------------------------------- */

struct hvm_start_info {
	uint32_t magic;   /* BOOT_PVH_MAGIC */
	uint32_t version; /* 0, or 1 when memmap_* are valid */
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr; /* NUL-terminated, 0 if none */
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr; /* array of struct hvm_memmap_table_entry */
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* E820 numbering */
	uint32_t reserved;
};

const char *boot_parse_pvh(struct boot_info *bi, const struct boot_phys *mem, uint64_t start_info)
{
	const struct hvm_start_info *si = phys(mem, start_info);

	bi->magic = BOOT_INFO_MAGIC;
	bi->source = BOOT_SOURCE_PVH;
	if (si->magic != BOOT_PVH_MAGIC)
		return "PVH: bad start-info magic";
	bi->rsdp = si->rsdp_paddr;
	if (si->cmdline_paddr) {
		const char *c = phys(mem, si->cmdline_paddr);
		copy_cmdline(bi, c, strnlen(c, BOOT_CMDLINE_MAX));
	}
	if (si->version >= 1 && si->memmap_paddr) {
		const struct hvm_memmap_table_entry *e = phys(mem, si->memmap_paddr);
		for (uint32_t i = 0; i < si->memmap_entries; i++)
			add_mem(bi, e[i].addr, e[i].size, e[i].type);
	}
	return NULL;
}

/* ---- Multiboot2 -------------------------------------------------------- */

enum {
	MB2_TAG_END = 0,
	MB2_TAG_CMDLINE = 1,
	MB2_TAG_MODULE = 3,
	MB2_TAG_MMAP = 6,
	MB2_TAG_ACPI_OLD = 14,
	MB2_TAG_ACPI_NEW = 15,
};

struct mb2_tag {
	uint32_t type;
	uint32_t size; /* including this header, excluding padding to 8 */
};

const char *boot_parse_mb2(struct boot_info *bi, const struct boot_phys *mem, uint32_t magic, uint64_t info_paddr,
                           uint8_t *rsdp_copy)
{
	const uint8_t *info = phys(mem, info_paddr);
	uint32_t total = *(const uint32_t *)info;
	const char *cmd_tag = NULL, *cmd_module = NULL;
	size_t cmd_module_len = 0;

	if (magic != BOOT_MB2_MAGIC)
		return "multiboot2: bad boot magic in %eax";
	bi->magic = BOOT_INFO_MAGIC;
	bi->source = BOOT_SOURCE_MULTIBOOT2;

	for (uint32_t off = 8; off + 8 <= total;) {
		const struct mb2_tag *t = (const void *)(info + off);
		const uint8_t *body = (const uint8_t *)(t + 1);
		if (t->type == MB2_TAG_END || t->size < 8)
			break;
		switch (t->type) {
		case MB2_TAG_CMDLINE:
			cmd_tag = (const char *)body;
			break;
		case MB2_TAG_MODULE: {
			/* mod_start, mod_end, then the module's string. A module
			 * named "cmdline" holds the command line (a file on the
			 * ESP, so users can edit it without rebuilding). */
			uint32_t start = ((const uint32_t *)body)[0];
			uint32_t end = ((const uint32_t *)body)[1];
			const char *name = (const char *)(body + 8);
			if (strcmp(name, "cmdline") == 0 && end >= start) {
				cmd_module = phys(mem, start);
				cmd_module_len = end - start;
			}
			break;
		}
		case MB2_TAG_MMAP: {
			uint32_t esize = ((const uint32_t *)body)[0];
			const uint8_t *e = body + 8;
			if (esize < 24)
				break;
			for (; e + esize <= (const uint8_t *)t + t->size; e += esize) {
				const struct hvm_memmap_table_entry *m = (const void *)e;
				add_mem(bi, m->addr, m->size, m->type);
			}
			break;
		}
		case MB2_TAG_ACPI_OLD:
		case MB2_TAG_ACPI_NEW: {
			size_t n = t->size - 8;
			if (n > BOOT_RSDP_COPY)
				n = BOOT_RSDP_COPY;
			/* Prefer the ACPI 2.0 copy when both are given. */
			if (t->type == MB2_TAG_ACPI_NEW || bi->rsdp == 0) {
				memcpy(rsdp_copy, body, n);
				bi->rsdp = (uintptr_t)rsdp_copy;
			}
			break;
		}
		}
		off += (t->size + 7) & ~7u;
	}

	if (cmd_module) {
		/* A file ends with a newline; drop trailing white space. */
		while (cmd_module_len > 0 &&
		       (cmd_module[cmd_module_len - 1] == '\n' || cmd_module[cmd_module_len - 1] == '\r' ||
		        cmd_module[cmd_module_len - 1] == ' '))
			cmd_module_len--;
		copy_cmdline(bi, cmd_module, cmd_module_len);
	} else if (cmd_tag) {
		copy_cmdline(bi, cmd_tag, strnlen(cmd_tag, BOOT_CMDLINE_MAX));
	}
	return NULL;
}
