/*
 * boot/bootparse.c: PVH start info and multiboot2 info → struct boot_info.
 *
 * Implements: the PVH boot ABI (Xen's arch-x86/hvm/start_info.h, version 1),
 *             the Multiboot2 specification (version 2.0, §3.6 boot information).
 * Try it:     make unit-test (tests/unit/test_bootinfo.c); make fuzz FUZZ=pvh (or mb2)
 *
 * Pure functions: no kernel calls, no globals (see bootparse.h). What the
 * loader or the VMM handed us is read through a view of physical memory and
 * trusted no further than the checks here: every number that says where
 * something is or how long it is is read once into a local and checked, in
 * 64-bit arithmetic, against the memory it will be used to read, before any
 * read. Boot information that fails a check is refused with a message (the
 * kernel prints it and stops: without a trustworthy memory map there is
 * nothing safe to do); what is merely too long (the command line, the memory
 * map) is cut to what boot_info keeps.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "bootparse.h"

/* Both formats are little-endian, as x86-64 is (and so is every host the tests run on). */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "boot/bootparse.c reads little-endian structures with plain loads"
#endif

/* The host address of [addr, addr + len) if all of it lies in the view, else NULL. */
static const void *phys(const struct boot_phys *mem, uint64_t addr, uint64_t len)
{
	if (len > mem->size || addr > mem->size - len)
		return NULL;
	/* In the kernel's view (base 0) physical address 0 would be the NULL
	 * pointer. Nothing is ever handed over there (the real-mode interrupt
	 * table is), so it counts as outside too. */
	if (mem->base + addr == 0)
		return NULL;
	return (const void *)(mem->base + (uintptr_t)addr);
}

/* Bytes from addr to the end of the view (0 if addr lies outside it). */
static uint64_t phys_left(const struct boot_phys *mem, uint64_t addr)
{
	return addr < mem->size ? mem->size - addr : 0;
}

/* Unaligned loads: the info may sit anywhere, and a tag's body is only
 * 8-byte aligned by the loader's good will (UBSan would rightly object). */
static uint32_t ld32(const void *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t ld64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static void add_mem(struct boot_info *bi, uint64_t addr, uint64_t len, uint32_t type)
{
	/* Nothing exists above BOOT_PHYS_LIMIT; clipping there also means
	 * addr + len can never wrap in the page allocator's arithmetic. */
	if (addr >= BOOT_PHYS_LIMIT)
		return;
	if (len > BOOT_PHYS_LIMIT - addr)
		len = BOOT_PHYS_LIMIT - addr;
	/* Some firmware lists empty ranges; they mean nothing and are skipped. */
	if (len == 0)
		return;
	if (bi->mem_count >= BOOT_MEM_MAX)
		return; /* kernel_main warns when the map is full */
	bi->mem[bi->mem_count++] = (struct boot_mem_entry){.addr = addr, .len = len, .type = type};
}

/* The string at s, at most n bytes long (shorter if a NUL comes first), cut
 * to what boot_info keeps. Reads nothing at or past s + n. */
static void copy_cmdline(struct boot_info *bi, const char *s, uint64_t n)
{
	if (n > BOOT_CMDLINE_MAX - 1)
		n = BOOT_CMDLINE_MAX - 1;
	n = strnlen(s, n);
	memcpy(bi->cmdline, s, n);
	bi->cmdline[n] = '\0';
}

static void bi_init(struct boot_info *bi, uint32_t source)
{
	memset(bi, 0, sizeof(*bi));
	bi->magic = BOOT_INFO_MAGIC;
	bi->source = source;
}

void boot_info_sanitize(struct boot_info *bi)
{
	uint32_t n = bi->mem_count < BOOT_MEM_MAX ? bi->mem_count : BOOT_MEM_MAX;
	bi->mem_count = 0;
	/* add_mem() writes entry k from entry i >= k: in place is safe. */
	for (uint32_t i = 0; i < n; i++) {
		struct boot_mem_entry e = bi->mem[i];
		add_mem(bi, e.addr, e.len, e.type);
	}
	bi->cmdline[BOOT_CMDLINE_MAX - 1] = '\0';
}

/* ---- PVH --------------------------------------------------------------- */

/* Xen's public/arch-x86/hvm/start_info.h; offsets fixed by the ABI. */
struct hvm_start_info {
	uint32_t magic;          /* BOOT_PVH_MAGIC */
	uint32_t version;        /* 0, or 1 when memmap_* are valid */
	uint32_t flags;          /* SIF_xxx */
	uint32_t nr_modules;     /* entries in modlist */
	uint64_t modlist_paddr;  /* not used by us */
	uint64_t cmdline_paddr;  /* NUL-terminated, 0 if none */
	uint64_t rsdp_paddr;     /* ACPI RSDP, 0 if none */
	uint64_t memmap_paddr;   /* version 1: array of struct hvm_memmap_table_entry */
	uint32_t memmap_entries; /* version 1 */
	uint32_t reserved;
};
#define HVM_START_INFO_V0_SIZE 40 /* version 0 ends before memmap_paddr */

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* E820 numbering */
	uint32_t reserved;
};

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info layout");
_Static_assert(__builtin_offsetof(struct hvm_start_info, memmap_paddr) == HVM_START_INFO_V0_SIZE,
               "hvm_start_info v0 size");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry layout");

const char *boot_parse_pvh(struct boot_info *bi, const struct boot_phys *mem, uint64_t start_info)
{
	struct hvm_start_info si = {0};
	const uint8_t *p;

	bi_init(bi, BOOT_SOURCE_PVH);
	/* A copy, read once: version 0 is shorter, so read what it has first. */
	p = phys(mem, start_info, HVM_START_INFO_V0_SIZE);
	if (!p)
		return "PVH: start info outside memory";
	memcpy(&si, p, HVM_START_INFO_V0_SIZE);
	if (si.magic != BOOT_PVH_MAGIC)
		return "PVH: bad start-info magic";
	if (si.version >= 1) {
		p = phys(mem, start_info, sizeof(si));
		if (!p)
			return "PVH: start info outside memory";
		memcpy(&si, p, sizeof(si));
	}

	if (si.rsdp_paddr) {
		/* acpi_init() reads the RSDP where it lies (36 bytes for ACPI 2.0+). */
		if (!phys(mem, si.rsdp_paddr, BOOT_RSDP_COPY))
			return "PVH: ACPI RSDP outside memory";
		bi->rsdp = si.rsdp_paddr;
	}
	if (si.cmdline_paddr) {
		const char *c = phys(mem, si.cmdline_paddr, 1);
		if (!c)
			return "PVH: command line outside memory";
		copy_cmdline(bi, c, phys_left(mem, si.cmdline_paddr));
	}
	if (si.version >= 1 && si.memmap_paddr) {
		uint64_t n = si.memmap_entries;
		if (n > BOOT_PVH_MEMMAP_MAX)
			n = BOOT_PVH_MEMMAP_MAX;
		p = phys(mem, si.memmap_paddr, n * sizeof(struct hvm_memmap_table_entry));
		if (!p)
			return "PVH: memory map outside memory";
		for (uint64_t i = 0; i < n && bi->mem_count < BOOT_MEM_MAX; i++) {
			const uint8_t *e = p + i * sizeof(struct hvm_memmap_table_entry);
			add_mem(bi, ld64(e), ld64(e + 8), ld32(e + 16));
		}
	}
	return NULL;
}

/* ---- Multiboot2 -------------------------------------------------------- */

enum {
	MB2_TAG_END = 0,
	MB2_TAG_CMDLINE = 1,   /* string */
	MB2_TAG_MODULE = 3,    /* mod_start, mod_end, string */
	MB2_TAG_MMAP = 6,      /* entry_size, entry_version, entries */
	MB2_TAG_ACPI_OLD = 14, /* a copy of the ACPI 1.0 RSDP */
	MB2_TAG_ACPI_NEW = 15, /* a copy of the ACPI 2.0 RSDP */
};

#define MB2_HDR        8  /* total_size, reserved; then the tags */
#define MB2_TAG_HDR    8  /* type, size (size counts this header, not the padding to 8) */
#define MB2_MMAP_HDR   8  /* entry_size, entry_version, after the tag header */
#define MB2_MMAP_MIN   24 /* base_addr, length, type, reserved */
#define MB2_MODULE_HDR 8  /* mod_start, mod_end, after the tag header */

const char *boot_parse_mb2(struct boot_info *bi, const struct boot_phys *mem, uint32_t magic, uint64_t info_paddr,
                           uint8_t *rsdp_copy)
{
	const char *cmd_tag = NULL, *cmd_module = NULL;
	uint64_t cmd_tag_len = 0, cmd_module_len = 0;
	bool have_acpi_new = false, have_module = false;
	const uint8_t *info;
	uint64_t total;

	bi_init(bi, BOOT_SOURCE_MULTIBOOT2);
	if (magic != BOOT_MB2_MAGIC)
		return "multiboot2: bad boot magic in %eax";
	info = phys(mem, info_paddr, MB2_HDR);
	if (!info)
		return "multiboot2: info block outside memory";
	total = ld32(info);
	if (total < MB2_HDR + MB2_TAG_HDR || total > BOOT_MB2_INFO_MAX)
		return "multiboot2: info block size out of range";
	info = phys(mem, info_paddr, total);
	if (!info)
		return "multiboot2: info block outside memory";

	/* Each tag must lie inside [0, total): first its header, then its
	 * size. The rounding up to 8 is done in 64 bits: in 32, a size of
	 * 0xfffffff9 rounds to 0 and the walk never moves on. */
	for (uint64_t off = MB2_HDR, size;; off += (size + 7) & ~7ull) {
		if (off + MB2_TAG_HDR > total)
			return "multiboot2: no end tag";
		const uint8_t *t = info + off, *body = t + MB2_TAG_HDR;
		uint32_t type = ld32(t);
		size = ld32(t + 4);
		if (size < MB2_TAG_HDR || size > total - off)
			return "multiboot2: tag size out of range";
		uint64_t blen = size - MB2_TAG_HDR; /* body bytes, all inside the block */

		if (type == MB2_TAG_END)
			break;
		switch (type) {
		case MB2_TAG_CMDLINE:
			cmd_tag = (const char *)body;
			cmd_tag_len = blen;
			break;
		case MB2_TAG_MODULE: {
			/* A module named "cmdline" holds the command line (a file
			 * on the ESP, so users can edit it without rebuilding). The
			 * name must be NUL-terminated inside the tag to match. */
			static const char name[] = "cmdline";
			if (blen < MB2_MODULE_HDR)
				return "multiboot2: module tag too short";
			if (blen - MB2_MODULE_HDR < sizeof(name) ||
			    memcmp(body + MB2_MODULE_HDR, name, sizeof(name)) != 0)
				break;
			uint64_t start = ld32(body), end = ld32(body + 4);
			/* GRUB hands an empty file over as start = end = 0: an
			 * empty command line, with nothing to read. */
			if (end < start || (end > start && !phys(mem, start, end - start)))
				return "multiboot2: command-line module outside memory";
			have_module = true;
			cmd_module = end > start ? phys(mem, start, end - start) : NULL;
			cmd_module_len = end - start;
			break;
		}
		case MB2_TAG_MMAP: {
			if (blen < MB2_MMAP_HDR)
				return "multiboot2: memory-map tag too short";
			uint64_t esize = ld32(body);
			/* Spec §3.6.8: entry_size is a multiple of 8 and at
			 * least the 24 bytes we read; larger entries are stepped
			 * over whole. */
			if (esize < MB2_MMAP_MIN)
				return "multiboot2: memory-map entry size too small";
			for (uint64_t e = MB2_MMAP_HDR; esize <= blen - e && bi->mem_count < BOOT_MEM_MAX; e += esize)
				add_mem(bi, ld64(body + e), ld64(body + e + 8), ld32(body + e + 16));
			break;
		}
		case MB2_TAG_ACPI_OLD:
		case MB2_TAG_ACPI_NEW:
			/* A copy shorter than an ACPI 1.0 RSDP is no RSDP. Prefer
			 * the ACPI 2.0 copy when both are given. */
			if (!rsdp_copy || blen < BOOT_RSDP_V1)
				break;
			if (type == MB2_TAG_ACPI_OLD && have_acpi_new)
				break;
			memset(rsdp_copy, 0, BOOT_RSDP_COPY);
			memcpy(rsdp_copy, body, blen < BOOT_RSDP_COPY ? blen : BOOT_RSDP_COPY);
			bi->rsdp = (uintptr_t)rsdp_copy;
			have_acpi_new |= type == MB2_TAG_ACPI_NEW;
			break;
		}
	}

	if (have_module && cmd_module_len == 0) {
		bi->cmdline[0] = '\0';
	} else if (have_module) {
		/* Only the part boot_info keeps is read; a file ends with a
		 * newline, so trailing white space is dropped. */
		uint64_t n = cmd_module_len < BOOT_CMDLINE_MAX - 1 ? cmd_module_len : BOOT_CMDLINE_MAX - 1;
		n = strnlen(cmd_module, n);
		while (n > 0 && (cmd_module[n - 1] == '\n' || cmd_module[n - 1] == '\r' || cmd_module[n - 1] == ' '))
			n--;
		copy_cmdline(bi, cmd_module, n);
	} else if (cmd_tag) {
		copy_cmdline(bi, cmd_tag, cmd_tag_len);
	}
	return NULL;
}
