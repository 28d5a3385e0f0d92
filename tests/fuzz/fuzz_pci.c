/*
 * fuzz_pci: libFuzzer target for kernel/pci.c: the bus walk and BAR probing against a PCI bus
 * whose every configuration register comes from the input (a hostile device model).
 *
 *	make fuzz FUZZ=pci FUZZ_SECONDS=300
 *
 * The input names the configuration window's last bus and up to 8 functions: where each sits
 * (any bus, in the window or not), its class and header type, the bus a bridge names, and for
 * each BAR its value and which bits are writable (a BAR may also refuse any address but its
 * own). pci_setup() walks the bus and every device is probed and enabled, as a driver would.
 * Then, from the simulated devices' own registers:
 *   - no configuration access ever went to a bus past the window;
 *   - every BAR the kernel would use holds, in the device, the address the kernel keeps, which
 *     is aligned, inside the space, clear of RAM, the fixed ranges and ports, and of every other
 *     such BAR;
 *   - a device decodes a kind (memory, I/O) only if the kernel kept every BAR of that kind.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"
#include "pci.h"

/* ---- what pci.c needs from the rest of the kernel --------------------------------------------- */

struct kernel_options kopt;

int ksnprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

void klog(const char *fmt, ...) { (void)fmt; }

void panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	abort();
}

#include "pci_stubs.h" /* tests/unit/ */

/* ---- the platform ----------------------------------------------------------------------------- */

#define GiB (1ull << 30)

static const char *fake_refusal(uint64_t base, uint64_t size, uint64_t *past)
{
	uint64_t end = base + size, dummy;
	if (!past)
		past = &dummy;
	*past = ~0ull;
	if (end < base || end > (1ull << 40))
		return "beyond";
	*past = 3 * GiB + (1ull << 28);
	if (base < 3 * GiB + (1ull << 28))
		return "RAM"; /* the first MiB, the kernel, RAM: all of it up to 3.25 GiB */
	*past = 6 * GiB;
	if (base < 6 * GiB && end > 4 * GiB)
		return "RAM";
	return NULL;
}

static const struct pci_range mem_fixed[] = {
    {0xfec00000ull, 0xfec01000ull, "IOAPIC"},
    {0xfed00000ull, 0xfed01000ull, "HPET"},
    {0xfee00000ull, 0xfef00000ull, "LAPIC"},
    {0xb0000000ull, 0xc0000000ull, "ECAM"},
};
static const struct pci_range io_fixed[] = {
    {0, 0x100, "ISA"},
    {0x3f8, 0x400, "COM1"},
    {0xcf8, 0xd00, "PCI"},
};

/* ---- the simulated bus ------------------------------------------------------------------------- */

struct fn {
	uint8_t bus, dev, fnum;
	uint32_t cfg[64];
	uint32_t wmask[6];
	uint32_t only[6]; /* nonzero: takes only all ones and this value */
	uint32_t orig[6]; /* the BARs as the input set them (their type bits) */
};
static struct fn fns[8];
static int nfns, bus_end, out_of_window;

static struct fn *lookup(uint8_t bus, uint8_t dev, uint8_t f)
{
	for (int i = 0; i < nfns; i++)
		if (fns[i].bus == bus && fns[i].dev == dev && fns[i].fnum == f)
			return &fns[i];
	return NULL;
}

static uint32_t rd(uint8_t bus, uint8_t dev, uint8_t f, uint16_t off)
{
	if (bus > bus_end) {
		out_of_window++;
		return 0;
	}
	struct fn *x = lookup(bus, dev, f);
	return !x ? 0xffffffff : off < 256 ? x->cfg[off / 4] : 0;
}

static void wr(uint8_t bus, uint8_t dev, uint8_t f, uint16_t off, uint32_t v)
{
	if (bus > bus_end) {
		out_of_window++;
		return;
	}
	struct fn *x = lookup(bus, dev, f);
	if (!x || off >= 256 || off == 0 || off == 8)
		return;
	int i = (off - 0x10) / 4;
	if (off >= 0x10 && i < 6 && (x->cfg[3] >> 16 & 0x7f) == 0) {
		if (x->only[i] && v != 0xffffffff && v != x->only[i])
			return;
		x->cfg[off / 4] = (x->cfg[off / 4] & ~x->wmask[i]) | (v & x->wmask[i]);
		return;
	}
	if (off == 4)
		v &= 0xffff;
	x->cfg[off / 4] = v;
}

static const struct pci_cfg_ops ops = {"fuzz", NULL, rd, wr};

static struct pci_range mine[PCI_MAX_DEVICES * 6];
static int nmine;

static void check_range(uint64_t start, uint64_t end, bool io)
{
	const struct pci_range *fixed = io ? io_fixed : mem_fixed;
	int n = io ? (int)ARRAY_SIZE(io_fixed) : (int)ARRAY_SIZE(mem_fixed);
	for (int i = 0; i < n; i++)
		if (start < fixed[i].end && end > fixed[i].start)
			abort();
	if (!io && fake_refusal(start, end - start, NULL))
		abort();
	if (io && end > 0x10000)
		abort();
	for (int i = 0; i < nmine; i++)
		if (start < mine[i].end && end > mine[i].start)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const size_t per_fn = 8 + 6 * 9;
	if (size < 2)
		return 0;
	memset(fns, 0, sizeof(fns));
	bus_end = data[0];
	bool io_window = data[1] & 1;
	data += 2, size -= 2;
	for (nfns = 0; nfns < 8 && size >= per_fn; nfns++, data += per_fn, size -= per_fn) {
		struct fn *x = &fns[nfns];
		x->bus = data[0], x->dev = data[1] & 31, x->fnum = (data[1] >> 5) & 7;
		x->cfg[0] = 0x10001af4u + data[2];
		x->cfg[1] = data[3] & 7;
		x->cfg[2] = (uint32_t)data[4] << 24;
		x->cfg[3] = (uint32_t)(data[5] & 0x81) << 16; /* header type 0 or 1, multi-function bit */
		x->cfg[PCI_SECONDARY_BUS / 4] = (uint32_t)data[6] << 8;
		for (int i = 0; i < 6; i++) {
			const uint8_t *b = data + 8 + 9 * i;
			memcpy(&x->cfg[4 + i], b, 4);
			memcpy(&x->wmask[i], b + 4, 4);
			if (b[8] & 1)
				x->only[i] = x->cfg[4 + i];
			x->orig[i] = x->cfg[4 + i];
		}
	}

	struct pci_platform p = {.cfg = &ops, .bus_start = 0, .bus_end = (uint8_t)bus_end};
	p.mem = (struct pci_space){.next = 3 * GiB,
	                           .end = 0xfec00000ull,
	                           .limit = 1ull << 52,
	                           .granule = 4096,
	                           .fixed = mem_fixed,
	                           .nfixed = ARRAY_SIZE(mem_fixed),
	                           .refusal = fake_refusal};
	p.io = (struct pci_space){.next = 0xc000,
	                          .end = io_window ? 0x10000 : 0,
	                          .limit = 0x10000,
	                          .granule = 1,
	                          .fixed = io_fixed,
	                          .nfixed = ARRAY_SIZE(io_fixed)};
	pci_setup(&p);
	for (int i = 0; i < pci_count(); i++)
		pci_enable(pci_get(i), true, true);
	if (out_of_window)
		abort();

	nmine = 0;
	for (int i = 0; i < pci_count(); i++) {
		struct pci_dev *d = pci_get(i);
		struct fn *x = lookup(d->bus, d->dev, d->fn);
		if (!x)
			abort(); /* found a function that is not there */
		if (d->header != 0 || d->class == 0x06)
			continue; /* left alone, as the firmware set it */
		uint32_t cmd = x->cfg[1];
		for (int b = 0; b < 6; b++) {
			const struct pci_bar *bar = &d->bar[b];
			bool decoding = cmd & (bar->io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY);
			if (!bar->size || !decoding)
				continue;
			/* In use: the device holds what the kernel keeps, and it is safe. */
			uint64_t reg = x->cfg[4 + b] & (bar->io ? ~3u : ~0xfu);
			if (bar->is64)
				reg |= (uint64_t)x->cfg[5 + b] << 32;
			if (!bar->addr || reg != bar->addr || (bar->size & (bar->size - 1)) || bar->addr % bar->size)
				abort();
			uint64_t start = bar->addr, end = bar->addr + bar->size;
			if (!bar->io)
				start &= ~4095ull, end = (end + 4095) & ~4095ull;
			check_range(start, end, bar->io);
			mine[nmine++] = (struct pci_range){start, end, NULL};
			if (pci_map_bar(d, b, 0, bar->size) == NULL && !bar->io)
				abort(); /* decoding on, yet not mappable */
		}
		/* Decoding on means every BAR of that kind was kept: a slot that still
		 * answers sizing as a BAR but has no size in the kernel's view is one
		 * the kernel refused or left pending. */
		bool upper = false; /* this slot is the upper half of a 64-bit BAR */
		for (int b = 0; b < 6; b++) {
			uint32_t probe = (x->orig[b] & ~x->wmask[b]) | x->wmask[b]; /* what sizing read */
			if (upper || probe == 0 || probe == 0xffffffff) {
				upper = false;
				continue;
			}
			upper = !(x->orig[b] & 1) && (x->orig[b] & 6) == 4;
			if (d->bar[b].size)
				continue;
			if (cmd & ((x->orig[b] & 1) ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY))
				abort();
		}
	}
	return 0;
}
