/*
 * tests/unit/test_bootinfo.c: host tests of boot/bootparse.c, the PVH and
 * multiboot2 boot-information parsers, with well-formed and hostile inputs.
 *
 * The test plays the boot loader: it lays out "physical memory" in a heap
 * buffer of exactly the size it claims, so AddressSanitizer catches any read
 * past it, and hands the parser a view of that buffer (physical address 0 is
 * its first byte). A walk that never ends is caught by an alarm.
 * Build and run: make unit-test; one case: build/tests/test_bootinfo NAME.
 */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "bootparse.h"

/* ---- "physical memory" ----------------------------------------------------- */

struct pmem {
	uint8_t *buf;
	struct boot_phys view;
};

static void pm_new(struct pmem *p, size_t size)
{
	p->buf = calloc(1, size);
	p->view = (struct boot_phys){.base = (uintptr_t)p->buf, .size = size};
}

static void pm_free(struct pmem *p) { free(p->buf); }

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* A fresh boot_info full of junk: the parser must set what it reports. */
static struct boot_info *bi_new(void)
{
	struct boot_info *bi = malloc(sizeof(*bi));
	memset(bi, 0, sizeof(*bi));
	return bi;
}

/* Every stored entry is non-empty and ends at or below BOOT_PHYS_LIMIT. */
static void check_mem_sane(const struct boot_info *bi)
{
	CHECK(bi->mem_count <= BOOT_MEM_MAX);
	for (uint32_t i = 0; i < bi->mem_count && i < BOOT_MEM_MAX; i++) {
		CHECK(bi->mem[i].len > 0);
		CHECK(bi->mem[i].addr < BOOT_PHYS_LIMIT);
		CHECK(bi->mem[i].len <= BOOT_PHYS_LIMIT - bi->mem[i].addr);
	}
	CHECK(memchr(bi->cmdline, 0, BOOT_CMDLINE_MAX) != NULL);
}

/* ---- PVH ---------------------------------------------------------------------- */

/* Physical layout: start info at SI, command line at CL, memory map at MM. */
#define SI 0x100
#define CL 0x200
#define MM 0x1000

static void pvh_start_info(struct pmem *p, uint32_t version, uint64_t cmdline, uint64_t rsdp, uint64_t memmap,
                           uint32_t entries)
{
	uint8_t *si = p->buf + SI;
	put32(si + 0, BOOT_PVH_MAGIC);
	put32(si + 4, version);
	put64(si + 24, cmdline);
	put64(si + 32, rsdp);
	put64(si + 40, memmap);
	put32(si + 48, entries);
}

static void pvh_entry(struct pmem *p, uint64_t at, unsigned i, uint64_t addr, uint64_t len, uint32_t type)
{
	uint8_t *e = p->buf + at + 24 * i;
	put64(e, addr);
	put64(e + 8, len);
	put32(e + 16, type);
}

static void test_pvh_good(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	pm_new(&p, MM + 4 * 24);
	strcpy((char *)p.buf + CL, "quiet -- a b");
	pvh_start_info(&p, 1, CL, 0x800, MM, 4);
	pvh_entry(&p, MM, 0, 0, 0x9fc00, BOOT_MEM_USABLE);
	pvh_entry(&p, MM, 1, 0x9fc00, 0, BOOT_MEM_RESERVED); /* empty: skipped */
	pvh_entry(&p, MM, 2, 0x100000, 0x7f00000, BOOT_MEM_USABLE);
	pvh_entry(&p, MM, 3, 0xfffc0000, 0x40000, BOOT_MEM_RESERVED);

	CHECK(boot_parse_pvh(bi, &p.view, SI) == NULL);
	CHECK_EQ(bi->magic, BOOT_INFO_MAGIC);
	CHECK_EQ(bi->source, BOOT_SOURCE_PVH);
	CHECK_EQ(bi->rsdp, 0x800);
	CHECK(strcmp(bi->cmdline, "quiet -- a b") == 0);
	CHECK_EQ(bi->mem_count, 3);
	CHECK_EQ(bi->mem[0].addr, 0);
	CHECK_EQ(bi->mem[0].len, 0x9fc00);
	CHECK_EQ(bi->mem[1].addr, 0x100000);
	CHECK_EQ(bi->mem[1].len, 0x7f00000);
	CHECK_EQ(bi->mem[1].type, BOOT_MEM_USABLE);
	CHECK_EQ(bi->mem[2].addr, 0xfffc0000);
	CHECK_EQ(bi->mem[2].type, BOOT_MEM_RESERVED);
	check_mem_sane(bi);
	free(bi);
	pm_free(&p);
}

/* Version 0 has no memory map fields: whatever lies there is not read as one. */
static void test_pvh_version0(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	pm_new(&p, MM + 24);
	pvh_start_info(&p, 0, 0, 0, MM, 1);
	pvh_entry(&p, MM, 0, 0, 0x100000, BOOT_MEM_USABLE);
	CHECK(boot_parse_pvh(bi, &p.view, SI) == NULL);
	CHECK_EQ(bi->mem_count, 0);
	CHECK_EQ(bi->cmdline[0], '\0');
	free(bi);
	pm_free(&p);
}

static void test_pvh_bad_magic(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	pm_new(&p, MM);
	pvh_start_info(&p, 1, 0, 0, 0, 0);
	put32(p.buf + SI, 0x336ec579);
	CHECK(boot_parse_pvh(bi, &p.view, SI) != NULL);
	free(bi);
	pm_free(&p);
}

/* The case: memmap_entries = 0xffffffff, one real entry at the end of memory. */
static void test_pvh_memmap_entries_huge(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	pm_new(&p, MM + 24);
	pvh_start_info(&p, 1, 0, 0, MM, 0xffffffff);
	pvh_entry(&p, MM, 0, 0x100000, 0x100000, BOOT_MEM_USABLE);
	CHECK(boot_parse_pvh(bi, &p.view, SI) != NULL);
	check_mem_sane(bi);
	free(bi);
	pm_free(&p);
}

/* More entries than boot_info keeps, all readable: the first BOOT_MEM_MAX are kept. */
static void test_pvh_memmap_long(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	unsigned n = 1000;
	pm_new(&p, MM + 24 * n);
	pvh_start_info(&p, 1, 0, 0, MM, n);
	for (unsigned i = 0; i < n; i++)
		pvh_entry(&p, MM, i, 0x100000ull * (i + 1), 0x1000, BOOT_MEM_USABLE);
	CHECK(boot_parse_pvh(bi, &p.view, SI) == NULL);
	CHECK_EQ(bi->mem_count, BOOT_MEM_MAX);
	CHECK_EQ(bi->mem[BOOT_MEM_MAX - 1].addr, 0x100000ull * BOOT_MEM_MAX);
	free(bi);
	pm_free(&p);
}

/* A map that claims more than BOOT_PVH_MEMMAP_MAX entries is read no further. */
static void test_pvh_memmap_capped(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	pm_new(&p, MM + 24 * BOOT_PVH_MEMMAP_MAX);
	pvh_start_info(&p, 1, 0, 0, MM, BOOT_PVH_MEMMAP_MAX + 1);
	for (unsigned i = 0; i < BOOT_PVH_MEMMAP_MAX; i++)
		pvh_entry(&p, MM, i, 0, 0, BOOT_MEM_USABLE); /* all empty */
	pvh_entry(&p, MM, BOOT_PVH_MEMMAP_MAX - 1, 0x100000, 0x1000, BOOT_MEM_USABLE);
	CHECK(boot_parse_pvh(bi, &p.view, SI) == NULL);
	CHECK_EQ(bi->mem_count, 1);
	free(bi);
	pm_free(&p);
}

static void test_pvh_memmap_outside(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	pm_new(&p, MM);
	pvh_start_info(&p, 1, 0, 0, 0x123456789000ull, 2);
	CHECK(boot_parse_pvh(bi, &p.view, SI) != NULL);
	/* An address whose end wraps past 2^64. */
	pvh_start_info(&p, 1, 0, 0, 0xfffffffffffffff0ull, 2);
	CHECK(boot_parse_pvh(bi, &p.view, SI) != NULL);
	free(bi);
	pm_free(&p);
}

static void test_pvh_cmdline_outside(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	pm_new(&p, MM);
	pvh_start_info(&p, 1, 0x100000000ull + CL, 0, 0, 0);
	CHECK(boot_parse_pvh(bi, &p.view, SI) != NULL);
	pvh_start_info(&p, 1, MM, 0, 0, 0); /* just past the end */
	CHECK(boot_parse_pvh(bi, &p.view, SI) != NULL);
	free(bi);
	pm_free(&p);
}

/* A command line without a NUL before the end of memory: cut there, not read past. */
static void test_pvh_cmdline_unterminated(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	pm_new(&p, CL + 5);
	memcpy(p.buf + CL, "hello", 5);
	pvh_start_info(&p, 1, CL, 0, 0, 0);
	CHECK(boot_parse_pvh(bi, &p.view, SI) == NULL);
	CHECK(strcmp(bi->cmdline, "hello") == 0);
	free(bi);
	pm_free(&p);
}

/* Longer than BOOT_CMDLINE_MAX: cut to BOOT_CMDLINE_MAX - 1 bytes. */
static void test_pvh_cmdline_long(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	pm_new(&p, CL + 3 * BOOT_CMDLINE_MAX);
	memset(p.buf + CL, 'x', 3 * BOOT_CMDLINE_MAX - 1);
	pvh_start_info(&p, 1, CL, 0, 0, 0);
	CHECK(boot_parse_pvh(bi, &p.view, SI) == NULL);
	CHECK_EQ(strlen(bi->cmdline), BOOT_CMDLINE_MAX - 1);
	free(bi);
	pm_free(&p);
}

/* The start info itself runs past the end of memory (or lies beyond it). */
static void test_pvh_start_info_outside(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	pm_new(&p, SI + 40);
	put32(p.buf + SI, BOOT_PVH_MAGIC);
	put32(p.buf + SI + 4, 1);
	CHECK(boot_parse_pvh(bi, &p.view, SI) != NULL);
	CHECK(boot_parse_pvh(bi, &p.view, 0xfffffff0u) != NULL);
	free(bi);
	pm_free(&p);
}

/* Version 1 is 56 bytes, version 0 only 40: a version-0 info may end there. */
static void test_pvh_version0_short(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	pm_new(&p, SI + 40);
	put32(p.buf + SI, BOOT_PVH_MAGIC);
	CHECK(boot_parse_pvh(bi, &p.view, SI) == NULL);
	put32(p.buf + SI + 4, 1);
	CHECK(boot_parse_pvh(bi, &p.view, SI) != NULL);
	free(bi);
	pm_free(&p);
}

static void test_pvh_rsdp_outside(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	pm_new(&p, MM);
	pvh_start_info(&p, 1, 0, MM - 20, 0, 0); /* 20 bytes left, an RSDP may be 36 */
	CHECK(boot_parse_pvh(bi, &p.view, SI) != NULL);
	pvh_start_info(&p, 1, 0, MM - 36, 0, 0);
	CHECK(boot_parse_pvh(bi, &p.view, SI) == NULL);
	CHECK_EQ(bi->rsdp, MM - 36);
	free(bi);
	pm_free(&p);
}

/* Ranges that wrap past 2^64 or lie beyond any physical address are clipped or dropped. */
static void test_pvh_wrapping_entries(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	pm_new(&p, MM + 3 * 24);
	pvh_start_info(&p, 1, 0, 0, MM, 3);
	pvh_entry(&p, MM, 0, 0xfffffffffffff000ull, 0x2000, BOOT_MEM_USABLE);   /* above the limit: dropped */
	pvh_entry(&p, MM, 1, 0x100000, 0xffffffffffffffffull, BOOT_MEM_USABLE); /* clipped */
	pvh_entry(&p, MM, 2, 0x1000, 0x1000, BOOT_MEM_USABLE);
	CHECK(boot_parse_pvh(bi, &p.view, SI) == NULL);
	CHECK_EQ(bi->mem_count, 2);
	CHECK_EQ(bi->mem[0].addr, 0x100000);
	CHECK_EQ(bi->mem[0].len, BOOT_PHYS_LIMIT - 0x100000);
	CHECK_EQ(bi->mem[1].addr, 0x1000);
	check_mem_sane(bi);
	free(bi);
	pm_free(&p);
}

/* ---- multiboot2 ------------------------------------------------------------------ */

/* Physical layout: module data in [0, IB), the info block at IB. */
#define IB 0x100

struct mb2 {
	uint8_t b[1 << 17];
	size_t len;
};

static void mb2_begin(struct mb2 *m)
{
	memset(m->b, 0, sizeof(m->b));
	m->len = 8;
}

/* A tag claiming `size`, with `n` bytes of body actually laid out. */
static uint8_t *mb2_tag(struct mb2 *m, uint32_t type, uint32_t size, const void *body, size_t n)
{
	uint8_t *t = m->b + m->len;
	put32(t, type);
	put32(t + 4, size);
	if (body)
		memcpy(t + 8, body, n);
	m->len += (8 + n + 7) & ~(size_t)7;
	return t;
}

static void mb2_end(struct mb2 *m) { mb2_tag(m, 0, 8, NULL, 0); }

/* Memory: `pre` (IB bytes, may be NULL) then the info block with total = its length,
 * or `total` when non-zero. Exactly as large as that. */
static void mb2_memory(struct pmem *p, struct mb2 *m, const void *pre, uint32_t total)
{
	put32(m->b, total ? total : (uint32_t)m->len);
	pm_new(p, IB + m->len);
	if (pre)
		memcpy(p->buf, pre, IB);
	memcpy(p->buf + IB, m->b, m->len);
}

static const char *mb2_parse(struct boot_info *bi, struct pmem *p, uint8_t *rsdp)
{
	return boot_parse_mb2(bi, &p->view, BOOT_MB2_MAGIC, IB, rsdp);
}

static struct mb2 mb;

static void mb2_mmap(struct mb2 *m, uint32_t esize, unsigned n, const uint64_t (*e)[3])
{
	uint8_t body[8 + 64 * 24] = {0};
	put32(body, esize);
	for (unsigned i = 0; i < n; i++) {
		put64(body + 8 + esize * i, e[i][0]);
		put64(body + 8 + esize * i + 8, e[i][1]);
		put32(body + 8 + esize * i + 16, (uint32_t)e[i][2]);
	}
	mb2_tag(m, 6, 16 + esize * n, body, 8 + esize * n);
}

static void test_mb2_good(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	uint8_t rsdp[BOOT_RSDP_COPY];
	uint8_t acpi1[20] = "RSD PTR v1", acpi2[36] = "RSD PTR v2";
	static const uint64_t map[3][3] = {
	    {0, 0x9fc00, BOOT_MEM_USABLE}, {0x9fc00, 0, BOOT_MEM_RESERVED}, {0x100000, 0x7ee0000, BOOT_MEM_USABLE}};

	mb2_begin(&mb);
	mb2_tag(&mb, 1, 8 + 9, "-- hello", 9);
	mb2_tag(&mb, 10, 8 + 4, "\x01\x02\x03\x04", 4); /* an unknown tag is skipped */
	mb2_mmap(&mb, 24, 3, map);
	mb2_tag(&mb, 15, 8 + 36, acpi2, 36);
	mb2_tag(&mb, 14, 8 + 20, acpi1, 20); /* the ACPI 2.0 copy wins */
	mb2_end(&mb);
	mb2_memory(&p, &mb, NULL, 0);

	CHECK(mb2_parse(bi, &p, rsdp) == NULL);
	CHECK_EQ(bi->magic, BOOT_INFO_MAGIC);
	CHECK_EQ(bi->source, BOOT_SOURCE_MULTIBOOT2);
	CHECK(strcmp(bi->cmdline, "-- hello") == 0);
	CHECK_EQ(bi->mem_count, 2);
	CHECK_EQ(bi->mem[0].len, 0x9fc00);
	CHECK_EQ(bi->mem[1].addr, 0x100000);
	CHECK_EQ(bi->mem[1].len, 0x7ee0000);
	CHECK_EQ(bi->rsdp, (uintptr_t)rsdp);
	CHECK(memcmp(rsdp, acpi2, 36) == 0);
	check_mem_sane(bi);
	free(bi);
	pm_free(&p);
}

/* Larger entries than 24 bytes (the spec allows it): stepped over by entry_size. */
static void test_mb2_mmap_wide_entries(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	static const uint64_t map[2][3] = {{0x1000, 0x1000, 1}, {0x200000, 0x3000, 2}};
	mb2_begin(&mb);
	mb2_mmap(&mb, 40, 2, map);
	mb2_end(&mb);
	mb2_memory(&p, &mb, NULL, 0);
	CHECK(mb2_parse(bi, &p, NULL) == NULL);
	CHECK_EQ(bi->mem_count, 2);
	CHECK_EQ(bi->mem[1].addr, 0x200000);
	CHECK_EQ(bi->mem[1].len, 0x3000);
	CHECK_EQ(bi->mem[1].type, 2);
	free(bi);
	pm_free(&p);
}

/* A module named "cmdline" is the command line, trailing white space dropped; it beats the tag. */
static void test_mb2_cmdline_module(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	uint8_t pre[IB] = {0}, body[8 + 8] = {0};
	memcpy(pre + 0x10, "-- from file \r\n", 15);
	put32(body, 0x10);
	put32(body + 4, 0x10 + 15);
	memcpy(body + 8, "cmdline", 8);
	mb2_begin(&mb);
	mb2_tag(&mb, 1, 8 + 7, "-- tag", 7);
	mb2_tag(&mb, 3, 8 + 16, body, 16);
	mb2_end(&mb);
	mb2_memory(&p, &mb, pre, 0);
	CHECK(mb2_parse(bi, &p, NULL) == NULL);
	CHECK(strcmp(bi->cmdline, "-- from file") == 0);
	free(bi);
	pm_free(&p);
}

/* An empty file: GRUB gives start = end = 0. An empty command line (the module still wins),
 * also in a view like the kernel's, where physical 0 is the NULL pointer (base 0: host
 * addresses are physical ones). */
static void test_mb2_cmdline_module_empty(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	struct boot_phys flat = {.base = 0, .size = 1ull << 47};
	uint8_t body[16] = {0};
	memcpy(body + 8, "cmdline", 8);
	mb2_begin(&mb);
	mb2_tag(&mb, 1, 8 + 7, "-- tag", 7);
	mb2_tag(&mb, 3, 8 + 16, body, 16);
	mb2_end(&mb);
	mb2_memory(&p, &mb, NULL, 0);
	CHECK(mb2_parse(bi, &p, NULL) == NULL);
	CHECK_EQ(bi->cmdline[0], '\0');
	memset(bi, 0xff, sizeof(*bi));
	CHECK(boot_parse_mb2(bi, &flat, BOOT_MB2_MAGIC, (uintptr_t)p.buf + IB, NULL) == NULL);
	CHECK_EQ(bi->cmdline[0], '\0');
	free(bi);
	pm_free(&p);
}

/* The case: size 0xfffffff9 rounds up to 2^32, 0 in 32 bits; the walk must still end. */
static void test_mb2_tag_size_wraps(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	mb2_begin(&mb);
	mb2_tag(&mb, 10, 0xfffffff9u, NULL, 8);
	mb2_end(&mb);
	mb2_memory(&p, &mb, NULL, 0);
	CHECK(mb2_parse(bi, &p, NULL) != NULL);
	free(bi);
	pm_free(&p);
}

/* A tag whose size runs past the total (and past the end of memory). */
static void test_mb2_tag_past_total(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	uint8_t body[8] = {0};
	put32(body, 24);
	mb2_begin(&mb);
	mb2_tag(&mb, 6, 16 + 24 * 100, body, 8); /* claims 100 entries, has none */
	mb2_memory(&p, &mb, NULL, 0);
	CHECK(mb2_parse(bi, &p, NULL) != NULL);
	CHECK_EQ(bi->mem_count, 0);
	free(bi);
	pm_free(&p);
}

/* The same, for a command-line tag whose string is cut by the end of memory. */
static void test_mb2_cmdline_tag_past_total(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	mb2_begin(&mb);
	mb2_tag(&mb, 1, 8 + 4000, "abcdefgh", 8); /* no NUL, and 3992 bytes short */
	mb2_memory(&p, &mb, NULL, 0);
	CHECK(mb2_parse(bi, &p, NULL) != NULL);
	free(bi);
	pm_free(&p);
}

static void test_mb2_tag_too_small(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	mb2_begin(&mb);
	mb2_tag(&mb, 1, 4, "abcd", 4);
	mb2_end(&mb);
	mb2_memory(&p, &mb, NULL, 0);
	CHECK(mb2_parse(bi, &p, NULL) != NULL);
	free(bi);
	pm_free(&p);
}

static void test_mb2_no_end_tag(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	mb2_begin(&mb);
	mb2_tag(&mb, 1, 8 + 3, "ab", 3);
	mb2_memory(&p, &mb, NULL, 0);
	CHECK(mb2_parse(bi, &p, NULL) != NULL);
	free(bi);
	pm_free(&p);
}

/* total claims more than there is memory, or more than BOOT_MB2_INFO_MAX, or less than a header. */
static void test_mb2_total_bad(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	mb2_begin(&mb);
	mb2_tag(&mb, 10, 8 + 8, NULL, 8);
	mb2_memory(&p, &mb, NULL, 0x8000); /* no end tag inside, memory ends at 24 + IB */
	CHECK(mb2_parse(bi, &p, NULL) != NULL);
	pm_free(&p);

	mb2_begin(&mb);
	mb.len = BOOT_MB2_INFO_MAX + 8;
	mb2_end(&mb);
	mb2_memory(&p, &mb, NULL, 0);
	CHECK(mb2_parse(bi, &p, NULL) != NULL);
	pm_free(&p);

	mb2_begin(&mb);
	mb2_end(&mb);
	mb2_memory(&p, &mb, NULL, 4);
	CHECK(mb2_parse(bi, &p, NULL) != NULL);
	pm_free(&p);

	/* The info block's own header outside memory. */
	mb2_begin(&mb);
	mb2_end(&mb);
	mb2_memory(&p, &mb, NULL, 0);
	CHECK(boot_parse_mb2(bi, &p.view, BOOT_MB2_MAGIC, IB + 12, NULL) != NULL);
	CHECK(boot_parse_mb2(bi, &p.view, BOOT_MB2_MAGIC, 0xfffffffffffffffcull, NULL) != NULL);
	pm_free(&p);
	free(bi);
}

static void test_mb2_bad_magic(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	mb2_begin(&mb);
	mb2_end(&mb);
	mb2_memory(&p, &mb, NULL, 0);
	CHECK(boot_parse_mb2(bi, &p.view, 0x2badb002, IB, NULL) != NULL);
	free(bi);
	pm_free(&p);
}

static void test_mb2_mmap_entry_size_bad(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	static const uint64_t map[1][3] = {{0x1000, 0x1000, 1}};
	uint8_t body[8] = {0};

	mb2_begin(&mb);
	mb2_mmap(&mb, 16, 1, map); /* smaller than an entry */
	mb2_end(&mb);
	mb2_memory(&p, &mb, NULL, 0);
	CHECK(mb2_parse(bi, &p, NULL) != NULL);
	pm_free(&p);

	mb2_begin(&mb);
	put32(body, 0xfffffff8u); /* e + esize would pass the end of the address space */
	mb2_tag(&mb, 6, 16, body, 8);
	mb2_end(&mb);
	mb2_memory(&p, &mb, NULL, 0);
	CHECK(mb2_parse(bi, &p, NULL) == NULL);
	CHECK_EQ(bi->mem_count, 0);
	pm_free(&p);

	mb2_begin(&mb);
	mb2_tag(&mb, 6, 12, body, 4); /* no room for entry_size and entry_version */
	mb2_end(&mb);
	mb2_memory(&p, &mb, NULL, 0);
	CHECK(mb2_parse(bi, &p, NULL) != NULL);
	pm_free(&p);
	free(bi);
}

/* The module's name is not NUL-terminated inside its tag: it is not "cmdline", and is not read past. */
static void test_mb2_module_name_unterminated(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	uint8_t body[8 + 7];
	put32(body, 0x10);
	put32(body + 4, 0x20);
	memcpy(body + 8, "cmdline", 7);
	mb2_begin(&mb);
	mb2_tag(&mb, 3, 8 + 15, body, 15); /* and the info block ends right after it: no end tag */
	put32(mb.b, 8 + 8 + 15);
	pm_new(&p, IB + 8 + 8 + 15);
	memcpy(p.buf + IB, mb.b, 8 + 8 + 15);
	CHECK(mb2_parse(bi, &p, NULL) != NULL);
	CHECK_EQ(bi->cmdline[0], '\0');
	free(bi);
	pm_free(&p);
}

/* The command-line module's [start, end) outside memory, or backwards. */
static void test_mb2_module_outside(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	uint8_t body[16] = {0};
	memcpy(body + 8, "cmdline", 8);

	put32(body, 0x10);
	put32(body + 4, 0xfffff000u);
	mb2_begin(&mb);
	mb2_tag(&mb, 3, 8 + 16, body, 16);
	mb2_end(&mb);
	mb2_memory(&p, &mb, NULL, 0);
	CHECK(mb2_parse(bi, &p, NULL) != NULL);
	pm_free(&p);

	put32(body, 0x20);
	put32(body + 4, 0x10);
	mb2_begin(&mb);
	mb2_tag(&mb, 3, 8 + 16, body, 16);
	mb2_end(&mb);
	mb2_memory(&p, &mb, NULL, 0);
	CHECK(mb2_parse(bi, &p, NULL) != NULL);
	pm_free(&p);
	free(bi);
}

/* A large command-line file is cut to BOOT_CMDLINE_MAX - 1 bytes; only that much is read. */
static void test_mb2_module_large(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	uint8_t body[16] = {0};
	memcpy(body + 8, "cmdline", 8);
	put32(body, 0);
	put32(body + 4, 0xf0000000u); /* a 3.75 GiB "file" at 0 */
	mb2_begin(&mb);
	mb2_tag(&mb, 3, 8 + 16, body, 16);
	mb2_end(&mb);
	put32(mb.b, (uint32_t)mb.len);
	pm_new(&p, 0x8000 + mb.len);
	memset(p.buf, 'y', 0x8000);
	memcpy(p.buf + 0x8000, mb.b, mb.len);
	/* The view claims the file's 3.75 GiB; ASan sees that only 32 KiB exist. */
	p.view.size = 0xf0000000u;
	CHECK(boot_parse_mb2(bi, &p.view, BOOT_MB2_MAGIC, 0x8000, NULL) == NULL);
	CHECK_EQ(strlen(bi->cmdline), BOOT_CMDLINE_MAX - 1);
	CHECK_EQ(bi->cmdline[0], 'y');
	free(bi);
	pm_free(&p);
}

/* An ACPI tag too short to hold an RSDP is not used; a short v1 copy is zero-padded. */
static void test_mb2_acpi_short(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	uint8_t rsdp[BOOT_RSDP_COPY];
	memset(rsdp, 0xaa, sizeof(rsdp));
	mb2_begin(&mb);
	mb2_tag(&mb, 14, 8 + 4, "RSD ", 4);
	mb2_end(&mb);
	mb2_memory(&p, &mb, NULL, 0);
	CHECK(mb2_parse(bi, &p, rsdp) == NULL);
	CHECK_EQ(bi->rsdp, 0);
	pm_free(&p);

	mb2_begin(&mb);
	mb2_tag(&mb, 14, 8 + 20, "RSD PTR 0123456789ab", 20);
	mb2_end(&mb);
	mb2_memory(&p, &mb, NULL, 0);
	CHECK(mb2_parse(bi, &p, rsdp) == NULL);
	CHECK_EQ(bi->rsdp, (uintptr_t)rsdp);
	CHECK(memcmp(rsdp, "RSD PTR 0123456789ab", 20) == 0);
	CHECK_EQ(rsdp[20], 0);
	CHECK_EQ(rsdp[35], 0);
	pm_free(&p);
	free(bi);
}

/* 200 entries in one tag: the first BOOT_MEM_MAX kept; wrapping ones clipped. */
static void test_mb2_mmap_many(void)
{
	struct pmem p;
	struct boot_info *bi = bi_new();
	static uint64_t map[64][3];
	for (unsigned i = 0; i < 64; i++) {
		map[i][0] = 0x100000ull * (i + 1);
		map[i][1] = 0x1000;
		map[i][2] = 1;
	}
	map[0][0] = 0xffffffffffff0000ull; /* beyond any physical address: dropped */
	map[1][1] = 0xffffffffffffffffull; /* wraps: clipped */
	mb2_begin(&mb);
	for (int t = 0; t < 4; t++)
		mb2_mmap(&mb, 24, 64, map);
	mb2_end(&mb);
	mb2_memory(&p, &mb, NULL, 0);
	CHECK(mb2_parse(bi, &p, NULL) == NULL);
	CHECK_EQ(bi->mem_count, BOOT_MEM_MAX);
	CHECK_EQ(bi->mem[0].addr, 0x200000);
	CHECK_EQ(bi->mem[0].len, BOOT_PHYS_LIMIT - 0x200000);
	check_mem_sane(bi);
	free(bi);
	pm_free(&p);
}

/* ---- loader hand-off ------------------------------------------------------------ */

static void test_loader_sanitize(void)
{
	struct boot_info *bi = bi_new();
	memset(bi, 0xff, sizeof(*bi));
	bi->mem_count = 3;
	bi->mem[0] = (struct boot_mem_entry){.addr = 0x1000, .len = 0x2000, .type = 1};
	bi->mem[1] = (struct boot_mem_entry){.addr = 0x100000, .len = ~0ull, .type = 1};
	bi->mem[2] = (struct boot_mem_entry){.addr = 0x3000, .len = 0, .type = 1};
	boot_info_sanitize(bi);
	CHECK_EQ(bi->mem_count, 2);
	CHECK_EQ(bi->mem[1].len, BOOT_PHYS_LIMIT - 0x100000);
	CHECK_EQ(bi->cmdline[BOOT_CMDLINE_MAX - 1], '\0');
	bi->mem_count = 0xffffffff;
	boot_info_sanitize(bi);
	check_mem_sane(bi);
	free(bi);
}

/* ---- running ------------------------------------------------------------------- */

static const char *running;

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "timed out (a walk that never ends?): ";
	write(2, msg, sizeof(msg) - 1);
	write(2, running, strlen(running));
	write(2, "\n", 1);
	_exit(2);
}

/* Runs fn if no name was given or it is the one named; 5 seconds each at most. */
#define RUN(fn)                                                                                                        \
	do {                                                                                                           \
		if (only == NULL || strcmp(only, #fn) == 0) {                                                          \
			running = #fn;                                                                                 \
			alarm(5);                                                                                      \
			RUN_TEST(fn);                                                                                  \
			alarm(0);                                                                                      \
		}                                                                                                      \
	} while (0)

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	signal(SIGALRM, on_alarm);
	RUN(test_pvh_good);
	RUN(test_pvh_version0);
	RUN(test_pvh_bad_magic);
	RUN(test_pvh_memmap_entries_huge);
	RUN(test_pvh_memmap_long);
	RUN(test_pvh_memmap_capped);
	RUN(test_pvh_memmap_outside);
	RUN(test_pvh_cmdline_outside);
	RUN(test_pvh_cmdline_unterminated);
	RUN(test_pvh_cmdline_long);
	RUN(test_pvh_start_info_outside);
	RUN(test_pvh_version0_short);
	RUN(test_pvh_rsdp_outside);
	RUN(test_pvh_wrapping_entries);
	RUN(test_mb2_good);
	RUN(test_mb2_mmap_wide_entries);
	RUN(test_mb2_cmdline_module);
	RUN(test_mb2_cmdline_module_empty);
	RUN(test_mb2_tag_size_wraps);
	RUN(test_mb2_tag_past_total);
	RUN(test_mb2_cmdline_tag_past_total);
	RUN(test_mb2_tag_too_small);
	RUN(test_mb2_no_end_tag);
	RUN(test_mb2_total_bad);
	RUN(test_mb2_bad_magic);
	RUN(test_mb2_mmap_entry_size_bad);
	RUN(test_mb2_module_name_unterminated);
	RUN(test_mb2_module_outside);
	RUN(test_mb2_module_large);
	RUN(test_mb2_acpi_short);
	RUN(test_mb2_mmap_many);
	RUN(test_loader_sanitize);
	return check_report();
}
