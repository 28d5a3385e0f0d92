/*
 * test_pci: kernel/pci.c against a PCI bus played by the test, honest and hostile.
 * Implements: tests of PCI Local Bus Specification 3.0, §6.2.5.1 (BAR sizing) and of
 *             PCI Express Base 4.0, §7.2.2 (the ECAM window's bus range).
 * Build and run: make unit-test.
 *
 * The "bus" answers configuration reads and writes the way QEMU's devices do: a BAR keeps
 * only its writable bits, so writing all ones reads back the size mask. Its devices can be
 * hostile: a BAR over RAM, over a fixed port or over another device's BAR, a size mask with a
 * hole, a 64-bit BAR whose upper half reads 0, a BAR that ignores the address it is given,
 * a bridge that names a bus past the configuration window. The test checks what the kernel
 * keeps (the BARs it would map), what it writes back into the devices, and that it never
 * touches a bus outside the window.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernel.h"
#include "pci.h"

/* ---- what pci.c needs from the rest of the kernel --------------------------------------------- */

struct kernel_options kopt;
static char log_text[16384]; /* every klog() line since log_clear() */

static void log_clear(void) { log_text[0] = 0; }
static int log_has(const char *s) { return strstr(log_text, s) != NULL; }

int ksnprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

void klog(const char *fmt, ...)
{
	size_t used = strlen(log_text);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(log_text + used, sizeof(log_text) - used, fmt, ap);
	va_end(ap);
	used = strlen(log_text);
	if (used + 1 < sizeof(log_text))
		strcat(log_text, "\n");
}

void panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "panic: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

#include "pci_stubs.h"

/* ---- the platform: RAM, fixed ranges, windows -------------------------------------------------- */

#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* RAM at [1 MiB, 3 GiB + 256 MiB) (reaching into the window on purpose) and [4, 6) GiB. */
static const char *fake_refusal(uint64_t base, uint64_t size, uint64_t *past)
{
	uint64_t end = base + size, dummy;
	if (!past)
		past = &dummy;
	if (end > (1ull << 40) || end < base) {
		*past = ~0ull;
		return "beyond the CPU's physical address width";
	}
	if (base < MiB) {
		*past = MiB;
		return "the first MiB";
	}
	if (base < 3 * GiB + 256 * MiB && end > MiB) {
		*past = 3 * GiB + 256 * MiB;
		return "usable RAM";
	}
	if (base < 6 * GiB && end > 4 * GiB) {
		*past = 6 * GiB;
		return "usable RAM";
	}
	return NULL;
}

static const struct pci_range mem_fixed[] = {
    {0xfec00000ull, 0xfec01000ull, "the IOAPIC"},
    {0xfed00000ull, 0xfed01000ull, "the HPET"},
    {0xfee00000ull, 0xfef00000ull, "the local APIC"},
    {0xb0000000ull, 0xc0000000ull, "the PCI configuration window (ECAM)"},
};
static const struct pci_range io_fixed[] = {
    {0x40, 0x44, "the PIT"},
    {0x61, 0x62, "the PIT's gate (port 0x61)"},
    {0x70, 0x72, "the RTC"},
    {0xf4, 0xf8, "the exit port (isa-debug-exit)"},
    {0x3f8, 0x400, "COM1"},
    {0xcf8, 0xd00, "the PCI configuration ports"},
    {0, 0x100, "the ISA motherboard ports (below 0x100)"},
    {0xafe0, 0xafe4, "an ACPI PM block"},
};

static struct pci_range mem_taken[256], io_taken[256];

static struct pci_space mem_space(void)
{
	return (struct pci_space){.next = 3 * GiB,
	                          .end = 0xb0000000ull + 0x10000000ull * 3, /* runs over ECAM and the APICs */
	                          .limit = 1ull << 52,
	                          .granule = 4096,
	                          .fixed = mem_fixed,
	                          .nfixed = ARRAY_SIZE(mem_fixed),
	                          .taken = mem_taken,
	                          .max_taken = ARRAY_SIZE(mem_taken),
	                          .refusal = fake_refusal};
}

static struct pci_space io_space(void)
{
	return (struct pci_space){.next = 0xc000,
	                          .end = 0x10000,
	                          .limit = 0x10000,
	                          .granule = 1,
	                          .fixed = io_fixed,
	                          .nfixed = ARRAY_SIZE(io_fixed),
	                          .taken = io_taken,
	                          .max_taken = ARRAY_SIZE(io_taken)};
}

/* ---- the simulated bus -------------------------------------------------------------------------- */

struct sim_fn {
	uint8_t bus, dev, fn;
	uint32_t cfg[64];      /* the first 256 bytes */
	uint32_t bar_wmask[6]; /* the writable bits of each BAR dword (upper halves included) */
	uint32_t bar_only[6];  /* nonzero: the BAR takes only all ones (sizing) and this value */
	int writes;            /* configuration writes it received */
};

static struct sim_fn sim[16];
static int nsim;
static int sim_bus_end;       /* the window the simulation has: accesses past it are errors */
static int sim_out_of_window; /* accesses to a bus past sim_bus_end */
static int sim_accesses;

static struct sim_fn *sim_find(uint8_t bus, uint8_t dev, uint8_t fn)
{
	for (int i = 0; i < nsim; i++)
		if (sim[i].bus == bus && sim[i].dev == dev && sim[i].fn == fn)
			return &sim[i];
	return NULL;
}

static uint32_t sim_read32(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off)
{
	sim_accesses++;
	if (bus > sim_bus_end) {
		sim_out_of_window++;
		return 0; /* memory past the window: anything at all */
	}
	struct sim_fn *f = sim_find(bus, dev, fn);
	if (!f)
		return 0xffffffff;
	return off < 256 ? f->cfg[off / 4] : 0;
}

static void sim_write32(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off, uint32_t v)
{
	sim_accesses++;
	if (bus > sim_bus_end) {
		sim_out_of_window++;
		return;
	}
	struct sim_fn *f = sim_find(bus, dev, fn);
	if (!f || off >= 256)
		return;
	f->writes++;
	int bar = (off - PCI_BAR0) / 4;
	if (off >= PCI_BAR0 && bar < 6 && (f->cfg[3] >> 16 & 0x7f) == 0) {
		if (f->bar_only[bar] && v != 0xffffffff && v != f->bar_only[bar])
			return;
		/* Only the writable bits change; the type bits are read-only. */
		f->cfg[off / 4] = (f->cfg[off / 4] & ~f->bar_wmask[bar]) | (v & f->bar_wmask[bar]);
		return;
	}
	if (off == PCI_COMMAND)
		v &= 0xffff; /* status bits are write-1-to-clear: keep none */
	if (off == 0 || off == 8)
		return; /* IDs and class are read-only */
	f->cfg[off / 4] = v;
}

static const struct pci_cfg_ops sim_ops = {"simulated", NULL, sim_read32, sim_write32};

static void sim_reset(int bus_end)
{
	memset(sim, 0, sizeof(sim));
	nsim = 0;
	sim_bus_end = bus_end;
	sim_out_of_window = 0;
	sim_accesses = 0;
	log_clear();
}

static struct sim_fn *sim_add(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t vendor, uint16_t device, uint8_t class,
                              uint8_t subclass, uint8_t header)
{
	struct sim_fn *f = &sim[nsim++];
	f->bus = bus, f->dev = dev, f->fn = fn;
	f->cfg[0] = (uint32_t)device << 16 | vendor;
	f->cfg[1] = PCI_COMMAND_MEMORY | PCI_COMMAND_IO; /* the firmware turned decoding on */
	f->cfg[2] = (uint32_t) class << 24 | (uint32_t)subclass << 16;
	f->cfg[3] = (uint32_t)header << 16;
	return f;
}

/* A memory BAR of `size` bytes (64-bit: two slots) holding `addr`. */
static void sim_mem_bar(struct sim_fn *f, int i, uint64_t addr, uint64_t size, bool is64)
{
	uint64_t mask = ~(size - 1);
	f->cfg[4 + i] = (uint32_t)(addr & mask & ~0xfull) | (is64 ? 0x4 : 0);
	f->bar_wmask[i] = (uint32_t)mask & ~0xfu;
	if (is64) {
		f->cfg[5 + i] = (uint32_t)((addr & mask) >> 32);
		f->bar_wmask[i + 1] = (uint32_t)(mask >> 32);
	}
}

static void sim_io_bar(struct sim_fn *f, int i, uint32_t addr, uint32_t size)
{
	f->cfg[4 + i] = (addr & ~(size - 1)) | 1;
	f->bar_wmask[i] = ~(size - 1) & ~3u;
}

static uint64_t sim_bar(const struct sim_fn *f, int i, bool is64)
{
	uint64_t lo = f->cfg[4 + i] & (f->cfg[4 + i] & 1 ? ~3u : ~0xfu);
	return is64 ? lo | (uint64_t)f->cfg[5 + i] << 32 : lo;
}

static struct pci_platform platform(uint8_t bus_end)
{
	struct pci_platform p = {.cfg = &sim_ops, .bus_start = 0, .bus_end = bus_end};
	p.mem = mem_space();
	p.io = io_space();
	p.mem.taken = p.io.taken = NULL; /* pci.c's own */
	return p;
}

static struct pci_dev *find(uint8_t bus, uint8_t dev)
{
	for (int i = 0; i < pci_count(); i++)
		if (pci_get(i)->bus == bus && pci_get(i)->dev == dev)
			return pci_get(i);
	return NULL;
}

/* ---- sizing ---------------------------------------------------------------------------------- */

static void test_size_honest(void)
{
	const char *why;
	CHECK_EQ(pci_bar_size(0xfebff000, 0xfffff000, 0, &why), 4096); /* 32-bit memory */
	CHECK(why == NULL);
	CHECK_EQ(pci_bar_size(0x0000000c, 0xffffc00c, 0xffffffff, &why), 16384); /* 64-bit prefetchable */
	CHECK_EQ(pci_bar_size(0x0000000c, 0x0000000c, 0xffffff00, &why), 0);     /* 4 GiB: refused */
	CHECK_EQ(pci_bar_size(0x0000c001, 0x0000ffe1, 0, &why), 32);             /* I/O, 16-bit decoder */
	CHECK_EQ(pci_bar_size(0x0000c001, 0xffffffe1, 0, &why), 32);             /* I/O, 32-bit decoder */
	CHECK_EQ(pci_bar_size(0x00000000, 0xfffffff0, 0, &why), 16);             /* the smallest memory BAR */
	CHECK_EQ(pci_bar_size(0x80000000, 0x80000000, 0, &why), 2 * GiB);        /* the largest 32-bit one */
	CHECK_EQ(pci_bar_size(0x00000004, 0x00000004, 0x80000000, &why), 0);     /* 2^63: refused */
}

static void test_size_hostile(void)
{
	const char *why;
	/* The upper half of a 64-bit BAR reads 0: the old code made 0xffffffff00004000 of it. */
	CHECK_EQ(pci_bar_size(0x00000004, 0xffffc004, 0x00000000, &why), 0);
	CHECK(why && strstr(why, "contiguous"));
	/* A hole in the mask. */
	CHECK_EQ(pci_bar_size(0x00000000, 0xfff0f000, 0, &why), 0);
	CHECK_EQ(pci_bar_size(0x00000004, 0xffffc004, 0xfffeffff, &why), 0);
	CHECK_EQ(pci_bar_size(0x00000001, 0xffff0f01, 0, &why), 0);
	/* A 32-bit BAR with no writable address bit claims 4 GiB. */
	CHECK_EQ(pci_bar_size(0x00000008, 0x00000008, 0, &why), 0);
	CHECK(why && strstr(why, "4 GiB"));
	/* I/O: more than 256 bytes; no writable bit at all. */
	CHECK_EQ(pci_bar_size(0x00000001, 0xfffffc01, 0, &why), 0);
	CHECK_EQ(pci_bar_size(0x00000001, 0x00000001, 0, &why), 0);
	/* Reserved and obsolete types; type bits that change while sized. */
	CHECK_EQ(pci_bar_size(0x00000006, 0xfffff006, 0, &why), 0);
	CHECK_EQ(pci_bar_size(0x00000002, 0xfffff002, 0, &why), 0);
	CHECK_EQ(pci_bar_size(0x00000001, 0xfffff000, 0, &why), 0);
	CHECK_EQ(pci_bar_size(0x00000000, 0xfffff004, 0xffffffff, &why), 0);
	/* Every mask a 32-bit memory BAR can return: a size is a power of two, never 4 GiB. */
	for (uint64_t m = 0; m <= 0xffffffffull; m += 0x10 * 0x10001ull) {
		uint64_t size = pci_bar_size(0, (uint32_t)m, 0, &why);
		CHECK(size == 0 ||
		      ((size & (size - 1)) == 0 && size < 4 * GiB && (uint32_t) ~(size - 1) == (uint32_t)m));
	}
}

/* ---- checking and placing ------------------------------------------------------------------- */

static void test_check(void)
{
	struct pci_space m = mem_space(), io = io_space();
	CHECK(pci_bar_check(&m, 0xd0000000ull, 16384) == NULL);
	CHECK(pci_bar_check(&m, 0x8000000000ull, 16384) == NULL); /* above 4 GiB, above RAM */
	CHECK(strcmp(pci_bar_check(&m, 0, 4096), "unassigned") == 0);
	CHECK(strcmp(pci_bar_check(&m, 0x100000, 4096), "usable RAM") == 0); /* the kernel's home */
	CHECK(strcmp(pci_bar_check(&m, 5 * GiB, 16384), "usable RAM") == 0); /* RAM above 4 GiB */
	CHECK(strcmp(pci_bar_check(&m, 0xfee00000ull, 4096), "the local APIC") == 0);
	CHECK(strcmp(pci_bar_check(&m, 0xb0100000ull, 4096), "the PCI configuration window (ECAM)") == 0);
	CHECK(strcmp(pci_bar_check(&m, 0xfed00000ull, 16), "the HPET") == 0);
	/* 16 bytes at the end of the IOAPIC's page: a mapping covers the whole page. */
	CHECK(strcmp(pci_bar_check(&m, 0xfec00ff0ull, 16), "the IOAPIC") == 0);
	/* A BAR as large as all the 32-bit space above 2 GiB covers the APICs. */
	CHECK(pci_bar_check(&m, 0x80000000ull, 2 * GiB) != NULL);
	CHECK(strcmp(pci_bar_check(&m, 0xd0001000ull, 16384), "an address not aligned to its size") == 0);
	CHECK(pci_bar_check(&m, 0xd0000000ull, 3000) != NULL); /* not a power of two */
	CHECK(pci_bar_check(&m, 0xd0000000ull, 0) != NULL);
	CHECK(pci_bar_check(&m, 0xfffffffffffff000ull, 4096) != NULL); /* past the address space */
	CHECK(pci_bar_check(&m, 1ull << 40, 4096) != NULL);            /* beyond this CPU */
	/* Another device's BAR, once accepted. */
	CHECK(pci_bar_take(&m, 0xd0000000ull, 16384));
	CHECK(strcmp(pci_bar_check(&m, 0xd0000000ull, 4096), "another device's BAR") == 0);
	CHECK(strcmp(pci_bar_check(&m, 0xd0002000ull, 8192), "another device's BAR") == 0);
	CHECK(pci_bar_check(&m, 0xd0004000ull, 16384) == NULL);

	CHECK(pci_bar_check(&io, 0xc000, 32) == NULL);
	CHECK(strcmp(pci_bar_check(&io, 0x3f8, 8), "COM1") == 0);
	CHECK(strcmp(pci_bar_check(&io, 0x40, 4), "the PIT") == 0);
	CHECK(strcmp(pci_bar_check(&io, 0xf4, 4), "the exit port (isa-debug-exit)") == 0);
	CHECK(strcmp(pci_bar_check(&io, 0xcf8, 8), "the PCI configuration ports") == 0);
	CHECK(strcmp(pci_bar_check(&io, 0x80, 16), "the ISA motherboard ports (below 0x100)") == 0);
	CHECK(pci_bar_check(&io, 0x700, 64) == NULL); /* q35's SMBus: a chipset BAR below 0x1000 */
	CHECK(strcmp(pci_bar_check(&io, 0xafe0, 4), "an ACPI PM block") == 0);
	/* What the old code truncated to 16 bits (0x1c000 became 0xc000). */
	CHECK(strcmp(pci_bar_check(&io, 0x1c000, 32), "past the 16-bit I/O port space") == 0);
	CHECK(pci_bar_check(&io, 0xffe0, 64) != NULL); /* misaligned, and would run past 0xffff */
	CHECK(pci_bar_check(&io, 0xffc0, 64) == NULL);
}

static void test_alloc(void)
{
	struct pci_space m = mem_space(), io = io_space();
	/* RAM reaches 256 MiB into the window, the first candidate: skipped. */
	uint64_t a = pci_bar_alloc(&m, 16384);
	CHECK_EQ(a, 3 * GiB + 256 * MiB);
	uint64_t b = pci_bar_alloc(&m, 4096);
	CHECK_EQ(b, a + 16384);
	uint64_t c = pci_bar_alloc(&m, 16); /* a whole page of its own */
	CHECK_EQ(c, b + 4096);
	CHECK_EQ(pci_bar_alloc(&m, 16384), c + 3 * 4096); /* aligned to its size */
	CHECK_EQ(pci_bar_alloc(&m, 3000), 0);             /* not a power of two */
	CHECK_EQ(pci_bar_alloc(&m, 0), 0);
	/* Everything it hands out passes its own check against what came before. */
	for (int n = 0; n < 40; n++) {
		uint64_t size = 4096ull << (n % 12);
		uint64_t x = pci_bar_alloc(&m, size);
		if (!x)
			break;
		CHECK(x % size == 0 && x >= 3 * GiB && x + size <= m.end);
		CHECK(fake_refusal(x, size, NULL) == NULL);
		for (unsigned f = 0; f < ARRAY_SIZE(mem_fixed); f++)
			CHECK(x >= mem_fixed[f].end || x + size <= mem_fixed[f].start);
		for (int t = 0; t < m.ntaken - 1; t++)
			CHECK(x >= m.taken[t].end || x + size <= m.taken[t].start);
	}
	/* A 1 GiB BAR: the window has no gap that large left. */
	CHECK_EQ(pci_bar_alloc(&m, GiB), 0);

	/* I/O ports: from 0xc000, around a block in the way, until 0xffff. */
	CHECK(pci_bar_take(&io, 0xc000, 0x40));
	CHECK_EQ(pci_bar_alloc(&io, 0x20), 0xc040);
	int n = 0;
	while (pci_bar_alloc(&io, 0x100))
		n++;
	CHECK_EQ(n, (0x10000 - 0xc100) / 0x100);
	CHECK_EQ(pci_bar_alloc(&io, 0x100), 0);

	/* A window at the very top of the space: no wrap-around to address 0. */
	struct pci_space top = mem_space();
	top.ntaken = 0;
	top.next = 0xffffffffffff0000ull;
	top.end = ~0ull;
	top.limit = ~0ull;
	top.refusal = NULL;
	CHECK_EQ(pci_bar_alloc(&top, 1ull << 20), 0);
	/* No window at all (microvm's I/O ports). */
	struct pci_space none = io_space();
	none.ntaken = 0;
	none.end = 0;
	CHECK_EQ(pci_bar_alloc(&none, 32), 0);
}

/* ---- the walk: a bridge past the window (issue 11, part 7) ------------------------------------ */

static void test_walk_stays_in_the_window(void)
{
	sim_reset(0); /* the MCFG covers bus 0 only */
	sim_add(0, 0, 0, 0x8086, 0x29c0, 0x06, 0x00, 0);
	struct sim_fn *bridge = sim_add(0, 1, 0, 0x1b36, 0x000c, 0x06, 0x04, 1);
	bridge->cfg[PCI_SECONDARY_BUS / 4] = 255u << 8 | 0; /* primary 0, secondary 255 */
	struct sim_fn *dev = sim_add(0, 2, 0, 0x1af4, 0x1042, 0x01, 0x00, 0);
	sim_mem_bar(dev, 4, 0xd0000000ull, 16384, true);
	struct pci_platform p = platform(0);
	pci_setup(&p);
	CHECK_EQ(sim_out_of_window, 0);
	CHECK_EQ(pci_count(), 3);
	CHECK(log_has("bridge to bus 255, past the configuration window's last bus 0: not walked"));
	/* Sizing BARs then touches only the devices found. */
	pci_probe_bars(find(0, 2));
	CHECK_EQ(sim_out_of_window, 0);
	CHECK_EQ(find(0, 2)->bar[4].addr, 0xd0000000ull);
	CHECK_EQ(find(0, 2)->bar[4].size, 16384);
}

static void test_walk_behind_bridges(void)
{
	/* Bus 255 inside the window: the device behind the bridge is found. */
	sim_reset(255);
	sim_add(0, 0, 0, 0x8086, 0x29c0, 0x06, 0x00, 0);
	struct sim_fn *bridge = sim_add(0, 1, 0, 0x1b36, 0x000c, 0x06, 0x04, 1);
	bridge->cfg[PCI_SECONDARY_BUS / 4] = 255u << 8;
	sim_add(255, 3, 0, 0x1af4, 0x1042, 0x01, 0x00, 0);
	struct pci_platform p = platform(255);
	pci_setup(&p);
	CHECK_EQ(pci_count(), 3);
	CHECK(find(255, 3) != NULL);

	/* Two bridges naming the same bus, a bridge naming its own bus or one below:
	 * every bus is walked once and the walk ends. */
	sim_reset(255);
	struct sim_fn *b1 = sim_add(0, 1, 0, 0x1b36, 0x000c, 0x06, 0x04, 1);
	struct sim_fn *b2 = sim_add(0, 2, 0, 0x1b36, 0x000c, 0x06, 0x04, 1);
	b1->cfg[PCI_SECONDARY_BUS / 4] = 1u << 8;
	b2->cfg[PCI_SECONDARY_BUS / 4] = 1u << 8;
	struct sim_fn *b3 = sim_add(1, 0, 0, 0x1b36, 0x000c, 0x06, 0x04, 1);
	b3->cfg[PCI_SECONDARY_BUS / 4] = 1u << 8;
	struct sim_fn *b4 = sim_add(1, 1, 0, 0x1b36, 0x000c, 0x06, 0x04, 1);
	b4->cfg[PCI_SECONDARY_BUS / 4] = 0u << 8;
	sim_add(1, 5, 0, 0x1af4, 0x1042, 0x01, 0x00, 0);
	p = platform(255);
	pci_setup(&p);
	CHECK_EQ(pci_count(), 5); /* b1, b2, then bus 1 once: b3, b4, the device */
}

/* ---- probing hostile BARs on the simulated bus --------------------------------------------- */

static void test_probe_moves_and_refuses(void)
{
	sim_reset(0);
	struct sim_fn *good = sim_add(0, 1, 0, 0x1af4, 0x1042, 0x01, 0x00, 0);
	sim_mem_bar(good, 4, 0xd0000000ull, 16384, true);
	/* BAR1 over RAM (the kernel at 1 MiB), BAR4 over the good device's BAR4. */
	struct sim_fn *bad = sim_add(0, 2, 0, 0x1af4, 0x1042, 0x01, 0x00, 0);
	sim_mem_bar(bad, 1, 0x100000, 4096, false);
	sim_mem_bar(bad, 4, 0xd0000000ull, 16384, true);
	sim_io_bar(bad, 0, 0x3f8, 8); /* on COM1 */
	/* A legacy device whose I/O BAR sits past 0xffff (the old code used 0x1c000 as 0xc000). */
	struct sim_fn *wide = sim_add(0, 3, 0, 0x1af4, 0x1001, 0x01, 0x00, 0);
	sim_io_bar(wide, 0, 0x1c000, 64);
	/* A 64-bit BAR whose upper half has no writable bit, and a 32-bit one
	 * that ignores any address written to it. */
	struct sim_fn *liar = sim_add(0, 4, 0, 0x1af4, 0x1042, 0x01, 0x00, 0);
	sim_mem_bar(liar, 2, 0xd1000000ull, 16384, true);
	liar->bar_wmask[3] = 0;
	struct sim_fn *stuck = sim_add(0, 5, 0, 0x1af4, 0x1042, 0x01, 0x00, 0);
	sim_mem_bar(stuck, 0, 0xfee00000ull, 4096, false); /* on the local APIC */
	stuck->bar_only[0] = 0xfee00000;                   /* sized honestly, but it will not move */
	struct pci_platform p = platform(0);
	pci_setup(&p);

	struct pci_dev *g = find(0, 1), *d = find(0, 2), *w = find(0, 3), *l = find(0, 4), *s = find(0, 5);
	pci_probe_bars(g);
	CHECK_EQ(g->bar[4].addr, 0xd0000000ull); /* honest: kept where it was */

	pci_probe_bars(d);
	CHECK(log_has("BAR1 at 0x100000 (4096 bytes): usable RAM"));
	CHECK(d->bar[1].addr >= 3 * GiB && fake_refusal(d->bar[1].addr, 4096, NULL) == NULL);
	CHECK_EQ(sim_bar(bad, 1, false), d->bar[1].addr); /* the device was told */
	CHECK(log_has("BAR4 at 0xd0000000 (16384 bytes): another device's BAR"));
	CHECK(d->bar[4].addr != 0xd0000000ull && d->bar[4].addr % 16384 == 0 && d->bar[4].size == 16384);
	CHECK_EQ(sim_bar(bad, 4, true), d->bar[4].addr);
	CHECK(log_has("BAR0 at 0x3f8 (8 bytes): COM1"));
	CHECK(d->bar[0].io && d->bar[0].addr >= 0xc000 && d->bar[0].addr + 8 <= 0x10000);
	CHECK_EQ(sim_bar(bad, 0, false), d->bar[0].addr);
	CHECK(pci_map_bar(d, 4, 0, 16384) != NULL);
	pci_enable(d, true, true);
	CHECK_EQ(bad->cfg[1] & 3, 3);

	pci_probe_bars(w);
	CHECK(log_has("BAR0 at 0x1c000 (64 bytes): past the 16-bit I/O port space"));
	CHECK(w->bar[0].addr >= 0xc000 && w->bar[0].addr < 0x10000 && w->bar[0].addr % 64 == 0);
	CHECK(w->bar[0].addr + 64 <= d->bar[0].addr || w->bar[0].addr >= d->bar[0].addr + 8);

	/* Refused: the driver sees no BAR, nothing maps it, memory decoding stays off. */
	pci_probe_bars(l);
	CHECK(log_has("BAR2: its size mask is not contiguous: refused"));
	CHECK_EQ(l->bar[2].size, 0);
	CHECK(pci_map_bar(l, 2, 0, 4096) == NULL);
	pci_enable(l, true, true);
	CHECK_EQ(liar->cfg[1] & PCI_COMMAND_MEMORY, 0);

	pci_probe_bars(s);
	CHECK(log_has("BAR0 at 0xfee00000 (4096 bytes): the local APIC"));
	CHECK(log_has("BAR0: it does not take the address it was given: refused"));
	CHECK_EQ(s->bar[0].size, 0);
	CHECK(pci_map_bar(s, 0, 0, 4096) == NULL);
	pci_enable(s, true, false);
	CHECK_EQ(stuck->cfg[1] & PCI_COMMAND_MEMORY, 0);
	CHECK_EQ(sim_out_of_window, 0);
}

static void test_probe_avoids_undriven_devices(void)
{
	/* The device a driver takes first has an unassigned BAR; another device
	 * that no driver takes sits at the start of the window. The first must
	 * not be placed over it. */
	sim_reset(0);
	struct sim_fn *first = sim_add(0, 1, 0, 0x1af4, 0x1042, 0x01, 0x00, 0);
	sim_mem_bar(first, 4, 0, 16384, true);
	struct sim_fn *other = sim_add(0, 2, 0, 0x8086, 0x2922, 0x01, 0x06, 0);
	sim_mem_bar(other, 5, 3 * GiB + 256 * MiB, 4096, false);
	struct sim_fn *bridge = sim_add(0, 3, 0, 0x8086, 0x2918, 0x06, 0x01, 0); /* left alone */
	sim_mem_bar(bridge, 0, 3 * GiB + 256 * MiB + 4096, 4096, false);
	struct pci_platform p = platform(0);
	pci_setup(&p);
	int bridge_writes = bridge->writes;
	pci_probe_bars(find(0, 1));
	uint64_t a = find(0, 1)->bar[4].addr;
	CHECK(a != 0 && (a >= 3 * GiB + 256 * MiB + 4096 || a + 16384 <= 3 * GiB + 256 * MiB));
	CHECK_EQ(sim_bar(first, 4, true), a);
	CHECK_EQ(bridge->writes, bridge_writes); /* never sized */

	/* An unassigned I/O BAR with no I/O window (microvm): left unassigned,
	 * and I/O decoding is not turned on for it (it would decode port 0). */
	sim_reset(0);
	struct sim_fn *legacy = sim_add(0, 1, 0, 0x1af4, 0x1001, 0x01, 0x00, 0);
	sim_io_bar(legacy, 0, 0, 64);
	sim_mem_bar(legacy, 4, 0, 16384, true);
	legacy->cfg[1] = 0;
	p = platform(0);
	p.io.end = 0;
	pci_setup(&p);
	struct pci_dev *l = find(0, 1);
	pci_enable(l, true, true);
	CHECK(l->bar[0].io && l->bar[0].addr == 0 && l->bar[0].size == 64);
	CHECK(l->bar[4].addr >= 3 * GiB);
	CHECK_EQ(legacy->cfg[1] & (PCI_COMMAND_IO | PCI_COMMAND_MEMORY), PCI_COMMAND_MEMORY);
}

int main(void)
{
	RUN_TEST(test_size_honest);
	RUN_TEST(test_size_hostile);
	RUN_TEST(test_check);
	RUN_TEST(test_alloc);
	RUN_TEST(test_walk_stays_in_the_window);
	RUN_TEST(test_walk_behind_bridges);
	RUN_TEST(test_probe_moves_and_refuses);
	RUN_TEST(test_probe_avoids_undriven_devices);
	return check_report();
}
