/*
 * kernel/pci.c: finding devices on PCI.
 *
 * Configuration space is reached through the memory-mapped ECAM window that
 * ACPI's MCFG table names (q35, microvm with pcie=on), else through the two
 * legacy I/O ports 0xcf8/0xcfc (pc). The buses are walked from the first bus
 * of that window through every PCI-to-PCI bridge, and never past its last:
 * a bridge naming a bus beyond it would have us read, and write BAR sizing
 * patterns into, memory that is not configuration space.
 *
 * A device's BARs are sized when a driver takes it (every configuration
 * access traps to the hypervisor, and boot time counts). The address a BAR
 * holds is a number the device (or the firmware) chose, and mapping it means
 * writable uncached access wherever it points, so each is checked before it
 * is used: against RAM and the kernel image (mmio_refusal()), the fixed
 * device ranges (the ECAM window, the APICs, the HPET) or fixed I/O ports
 * (PCI configuration, the exit port, the ISA ports with the PIT and the
 * RTC, COM1, the ACPI PM blocks), and the BARs of every other device. A BAR that conflicts, or that
 * the firmware left unassigned (qboot and microvm assign nothing), gets an
 * address from the 32-bit window below the ECAM area (memory) or from
 * 0xc000-0xffff (I/O ports); what cannot be placed is refused, and that kind
 * of decoding stays off for the device. The first time a BAR must be placed,
 * every other device's BARs are sized too, so that the window avoids them.
 *
 * Implements: PCI Local Bus Specification 3.0, §6 (configuration space,
 *             §6.2.5.1 BAR sizing, capabilities); PCI Express Base 4.0,
 *             §7.2.2 (ECAM); PCI Firmware Specification 3.2, §4.1.2 (MCFG).
 */
#include <stdint.h>
#include <string.h>

#include "io.h"
#include "kernel.h"
#include "pci.h"

#define PCI_MAX_BARS (PCI_MAX_DEVICES * 6)

static struct pci_dev devices[PCI_MAX_DEVICES];
static int ndevices;
static struct pci_platform plat; /* what pci_setup() was given */
static struct pci_range mem_taken[PCI_MAX_BARS], io_taken[PCI_MAX_BARS];
static uint64_t buses_seen[4]; /* bit b: bus b was walked */
static bool all_sized;         /* every device's BARs have been sized */

/* ---- configuration space access ------------------------------------------ */

/* Every access goes through these two: the bus is one the window covers,
 * which scan_bus() made sure of before a device was ever added. */
static uint32_t cfg_read32(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off)
{
	kassert(bus >= plat.bus_start && bus <= plat.bus_end && dev < 32 && fn < 8 && off < 4096);
	return plat.cfg->read32(bus, dev, fn, off & 0xffc);
}

static void cfg_write32(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off, uint32_t v)
{
	kassert(bus >= plat.bus_start && bus <= plat.bus_end && dev < 32 && fn < 8 && off < 4096);
	plat.cfg->write32(bus, dev, fn, off & 0xffc, v);
}

uint32_t pci_read32(const struct pci_dev *d, uint16_t off) { return cfg_read32(d->bus, d->dev, d->fn, off); }
uint16_t pci_read16(const struct pci_dev *d, uint16_t off) { return pci_read32(d, off & ~3) >> (8 * (off & 2)); }
uint8_t pci_read8(const struct pci_dev *d, uint16_t off) { return pci_read32(d, off & ~3) >> (8 * (off & 3)); }
void pci_write32(const struct pci_dev *d, uint16_t off, uint32_t v) { cfg_write32(d->bus, d->dev, d->fn, off, v); }

void pci_write16(const struct pci_dev *d, uint16_t off, uint16_t v)
{
	/* Read-modify-write of the dword. Careful with registers whose bits
	 * clear on a write of 1 (the status register next to the command
	 * register): write those bits as 0. */
	uint32_t old = pci_read32(d, off & ~3), shift = 8 * (off & 2);
	if ((off & ~3) == PCI_COMMAND)
		old &= 0x0000ffff; /* never write status bits back */
	pci_write32(d, off & ~3, (old & ~(0xffffu << shift)) | (uint32_t)v << shift);
}

/* ECAM: 4 KiB of configuration space per function, 1 MiB per bus. */
static uint64_t ecam_base;

static uint64_t ecam_offset(uint8_t bus, uint8_t dev, uint8_t fn) { return (uint64_t)bus << 20 | dev << 15 | fn << 12; }

static bool ecam_map(uint8_t bus, uint8_t dev, uint8_t fn)
{
	return mmio_map(ecam_base + ecam_offset(bus, dev, fn), PAGE_SIZE) != NULL; /* else it said why */
}

static uint32_t ecam_read32(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off)
{
	return mmio_read32((volatile uint8_t *)(uintptr_t)(ecam_base + ecam_offset(bus, dev, fn) + off));
}

static void ecam_write32(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off, uint32_t v)
{
	mmio_write32((volatile uint8_t *)(uintptr_t)(ecam_base + ecam_offset(bus, dev, fn) + off), v);
}

static const struct pci_cfg_ops ecam_ops = {"ECAM", ecam_map, ecam_read32, ecam_write32};

/* The legacy mechanism (PCI 3.0 §3.2.2.3.2): the first 256 bytes only. */
static void cf8_select(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off)
{
	outl(0xcf8, 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (off & 0xfc));
}

static uint32_t cf8_read32(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off)
{
	cf8_select(bus, dev, fn, off);
	return inl(0xcfc);
}

static void cf8_write32(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off, uint32_t v)
{
	cf8_select(bus, dev, fn, off);
	outl(0xcfc, v);
}

static const struct pci_cfg_ops cf8_ops = {"ports 0xcf8/0xcfc", NULL, cf8_read32, cf8_write32};

uint8_t pci_find_cap(const struct pci_dev *d, uint8_t id, uint8_t start)
{
	if (!(pci_read16(d, PCI_STATUS) & PCI_STATUS_CAP_LIST))
		return 0;
	uint8_t p = start ? pci_read8(d, start + 1) : pci_read8(d, PCI_CAP_PTR);
	/* At most 48 capabilities fit in 256 bytes: a loop in a broken list
	 * ends here instead of spinning forever. */
	for (int n = 0; p >= 0x40 && n < 48; n++) {
		p &= 0xfc;
		if (pci_read8(d, p) == id)
			return p;
		p = pci_read8(d, p + 1);
	}
	return 0;
}

/* A kind of decoding (I/O or memory) that must stay off: one of the
 * device's BARs of that kind was refused or still has no checked address. */
static bool blocked(const struct pci_dev *d, bool io)
{
	if (io ? d->no_io : d->no_mem)
		return true;
	for (int i = 0; i < 6; i++)
		if ((d->pending & (1u << i)) && d->bar[i].io == io)
			return true;
	return false;
}

void pci_enable(struct pci_dev *d, bool mem, bool io)
{
	pci_probe_bars(d); /* decoding only ever turns on for checked BARs */
	uint16_t cmd = pci_read16(d, PCI_COMMAND);
	cmd |= PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE; /* we poll: no legacy interrupts */
	if (mem && !blocked(d, false))
		cmd |= PCI_COMMAND_MEMORY;
	if (io && !blocked(d, true))
		cmd |= PCI_COMMAND_IO;
	pci_write16(d, PCI_COMMAND, cmd);
}

volatile void *pci_map_bar(const struct pci_dev *d, int bar, uint64_t off, uint64_t len)
{
	if (bar < 0 || bar > 5)
		return NULL;
	const struct pci_bar *b = &d->bar[bar];
	if (d->bars_state != 2 || blocked(d, false) || b->io || !b->addr || len == 0 || off > b->size ||
	    len > b->size - off)
		return NULL;
	return (volatile uint8_t *)mmio_map(b->addr + off, len);
}

/* ---- BARs: the pure part (tests/unit/test_pci.c) ---------------------------- */

uint64_t pci_bar_size(uint32_t orig, uint32_t mask, uint32_t mask_hi, const char **why)
{
	uint64_t m, size;
	*why = NULL;
	if ((orig ^ mask) & 1) {
		*why = "its type bit changed while it was sized";
		return 0;
	}
	if (orig & 1) {
		/* "Devices that map control functions into I/O Space must not
		 * consume more than 256 bytes per I/O Base Address register"; the
		 * upper 16 bits may read 0 on a device that decodes 16 bits only. */
		m = mask & ~3u;
		if (!(m >> 16))
			m |= 0xffff0000u;
		size = (uint32_t)(~m + 1);
		/* ~mask + 1 is a power of two exactly when the mask is ones
		 * from the top down to one bit, then zeros. */
		if (size == 0 || (size & (size - 1))) {
			*why = "its size mask is not contiguous";
			return 0;
		}
		if (size > 256) {
			*why = "an I/O BAR larger than 256 bytes";
			return 0;
		}
		return size;
	}
	unsigned type = (orig >> 1) & 3;
	if (type != ((mask >> 1) & 3)) {
		*why = "its type bits changed while it was sized";
		return 0;
	}
	if (type == 1 || type == 3) {
		*why = type == 1 ? "a below-1-MiB BAR (obsolete)" : "a reserved BAR type";
		return 0;
	}
	/* Ones from the top down to the size bit, zeros below (§6.2.5.1): a
	 * 64-bit BAR whose upper dword reads 0 claims a nonsense size. */
	m = (type == 2 ? (uint64_t)mask_hi << 32 : 0xffffffff00000000ull) | (mask & ~0xfu);
	size = ~m + 1;
	if (m == 0 || (size & (size - 1)) != 0) {
		*why = "its size mask is not contiguous";
		return 0;
	}
	if (size >= (1ull << 32)) {
		/* Register blocks are KiB; an aperture this large is not
		 * something a Ringlet driver maps, and it would not fit a window. */
		*why = "it claims 4 GiB or more";
		return 0;
	}
	return size;
}

static bool overlaps(uint64_t start, uint64_t end, const struct pci_range *r)
{
	return start < r->end && end > r->start;
}

/* The first range [start, end) runs into: its name, and in *skip the first
 * address past it worth trying (the allocator's next candidate). */
static const char *conflict(const struct pci_space *s, uint64_t start, uint64_t end, uint64_t *skip)
{
	const char *why;
	for (int i = 0; i < s->nfixed; i++)
		if (overlaps(start, end, &s->fixed[i])) {
			*skip = s->fixed[i].end;
			return s->fixed[i].what;
		}
	for (int i = 0; i < s->ntaken; i++)
		if (overlaps(start, end, &s->taken[i])) {
			*skip = s->taken[i].end;
			return "another device's BAR";
		}
	*skip = end; /* unless the refusal says where its range ends */
	if (s->refusal && (why = s->refusal(start, end - start, skip)) != NULL)
		return why;
	return NULL;
}

/* [addr, addr+size) widened to whole granules: what a mapping covers. */
static void extent(const struct pci_space *s, uint64_t addr, uint64_t size, uint64_t *start, uint64_t *end)
{
	uint64_t g = s->granule ? s->granule : 1;
	*start = addr / g * g;
	*end = (addr + size + g - 1) / g * g;
}

const char *pci_bar_check(const struct pci_space *s, uint64_t addr, uint64_t size)
{
	uint64_t start, end, skip;
	if (size == 0 || (size & (size - 1)))
		return "a size that is not a power of two";
	if (addr == 0)
		return "unassigned";
	if (addr & (size - 1))
		return "an address not aligned to its size"; /* §6.2.5.1: BARs are naturally aligned */
	if (addr > s->limit || size > s->limit - addr)
		return s->limit == 0x10000 ? "past the 16-bit I/O port space" : "past the physical address space";
	extent(s, addr, size, &start, &end);
	return conflict(s, start, end, &skip);
}

bool pci_bar_take(struct pci_space *s, uint64_t addr, uint64_t size)
{
	if (s->ntaken >= s->max_taken)
		return false;
	struct pci_range *r = &s->taken[s->ntaken++];
	extent(s, addr, size, &r->start, &r->end);
	r->what = NULL;
	return true;
}

uint64_t pci_bar_alloc(struct pci_space *s, uint64_t size)
{
	if (!s->end || size == 0 || (size & (size - 1)) || s->ntaken >= s->max_taken)
		return 0;
	/* Naturally aligned, and never sharing a granule (a page) with anything:
	 * a mapping covers whole pages. */
	uint64_t align = size > s->granule ? size : (s->granule ? s->granule : 1);
	uint64_t a = s->next, skip;
	while (a <= s->end) {
		a = (a + align - 1) / align * align;
		if (a < s->next || a > s->end || align > s->end - a || a > s->limit || align > s->limit - a)
			return 0; /* past the window (or wrapped) */
		if (!conflict(s, a, a + align, &skip)) {
			pci_bar_take(s, a, align);
			s->next = a + align;
			return a;
		}
		if (skip <= a)
			return 0; /* cannot happen: conflicts end above their start */
		a = skip;
	}
	return 0;
}

/* ---- BARs: sizing, checking and placing ------------------------------------ */

static void bar_name(const struct pci_dev *d, int i, char *buf, size_t n)
{
	ksnprintf(buf, n, "pci %02x:%02x.%x BAR%d", d->bus, d->dev, d->fn, i);
}

/* The driver sees no BAR; that kind of decoding stays off (blocked()). */
static void bar_refuse(struct pci_dev *d, int i, const char *why)
{
	char name[32];
	bar_name(d, i, name, sizeof(name));
	klog("%s: %s: refused", name, why);
	if (d->bar[i].io)
		d->no_io = true;
	else
		d->no_mem = true;
	memset(&d->bar[i], 0, sizeof(d->bar[i]));
	d->pending &= ~(1u << i);
}

/* Sizes BAR i (PCI 3.0 §6.2.5.1: write all ones, read back the mask, put the
 * original back). Returns the number of BAR slots it used (2 for 64-bit). */
static int bar_size(struct pci_dev *d, int i)
{
	uint16_t reg = PCI_BAR0 + 4 * i;
	struct pci_bar *b = &d->bar[i];
	uint32_t orig = pci_read32(d, reg), orig_hi = 0, mask_hi = 0;

	pci_write32(d, reg, 0xffffffff);
	uint32_t mask = pci_read32(d, reg);
	pci_write32(d, reg, orig);
	if (mask == 0 || mask == 0xffffffff)
		return 1; /* no BAR here */

	b->io = orig & 1;
	b->is64 = !b->io && ((orig >> 1) & 3) == 2;
	if (b->is64 && i == 5) {
		bar_refuse(d, i, "a 64-bit BAR in the last slot (no upper half)");
		return 1;
	}
	if (b->is64) {
		orig_hi = pci_read32(d, reg + 4);
		pci_write32(d, reg + 4, 0xffffffff);
		mask_hi = pci_read32(d, reg + 4);
		pci_write32(d, reg + 4, orig_hi);
	}
	int slots = b->is64 ? 2 : 1;
	const char *why;
	b->size = pci_bar_size(orig, mask, mask_hi, &why);
	if (!b->size) {
		bar_refuse(d, i, why);
		return slots;
	}
	b->addr = b->io ? orig & ~3u : ((uint64_t)orig_hi << 32 | (orig & ~0xfu));
	return slots;
}

/* Sizes every BAR of d and keeps the ones whose address is fine; the rest
 * are left pending, with their kind of decoding off until they are placed. */
static void bars_check(struct pci_dev *d)
{
	if (d->bars_state)
		return;
	d->bars_state = 1;
	/* Bridges of every kind (host, ISA, PCI-to-PCI) are left alone: turning
	 * off a host bridge's decoding, even for a moment, may cut the CPU off
	 * from memory. XXX: so their own BARs and windows are not checked. */
	if (d->header != 0 || d->class == 0x06)
		return;
	/* Decoding off while the BARs hold all ones. */
	uint16_t cmd = pci_read16(d, PCI_COMMAND);
	pci_write16(d, PCI_COMMAND, cmd & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY));
	for (int i = 0; i < 6;)
		i += bar_size(d, i);
	for (int i = 0; i < 6; i++) {
		struct pci_bar *b = &d->bar[i];
		struct pci_space *s = b->io ? &plat.io : &plat.mem;
		if (!b->size)
			continue;
		const char *why = pci_bar_check(s, b->addr, b->size);
		if (!why && pci_bar_take(s, b->addr, b->size))
			continue;
		if (b->addr) {
			char name[32];
			bar_name(d, i, name, sizeof(name));
			klog("%s at 0x%lx (%lu bytes): %s", name, (unsigned long)b->addr, (unsigned long)b->size,
			     why ? why : "too many BARs to keep track of");
		}
		d->pending |= 1u << i;
	}
	/* Back on, except a kind whose BARs point where they must not. */
	if (blocked(d, true))
		cmd &= ~PCI_COMMAND_IO;
	if (blocked(d, false))
		cmd &= ~PCI_COMMAND_MEMORY;
	pci_write16(d, PCI_COMMAND, cmd);
}

/* Gives pending BAR i an address from the window; the device must take it. */
static void bar_place(struct pci_dev *d, int i)
{
	uint16_t reg = PCI_BAR0 + 4 * i;
	struct pci_bar *b = &d->bar[i];
	bool was_assigned = b->addr != 0;
	struct pci_space *s = b->io ? &plat.io : &plat.mem;
	if (!s->end && !was_assigned)
		return; /* no window for this kind (no I/O ports on microvm): stays unassigned, its decoding off */
	uint64_t a = pci_bar_alloc(s, b->size);
	if (!a) {
		if (!was_assigned) {
			char name[32];
			bar_name(d, i, name, sizeof(name));
			klog("%s: no room for %lu bytes in the window: left unassigned", name, (unsigned long)b->size);
			return;
		}
		bar_refuse(d, i, "no room in the window to move it to");
		return;
	}
	pci_write32(d, reg, (uint32_t)a);
	if (b->is64)
		pci_write32(d, reg + 4, (uint32_t)(a >> 32));
	/* Read back: a BAR that does not hold what we wrote is not where we
	 * would map it. */
	uint64_t got = pci_read32(d, reg) & (b->io ? ~3u : ~0xfu);
	if (b->is64)
		got |= (uint64_t)pci_read32(d, reg + 4) << 32;
	if (got != a) {
		bar_refuse(d, i, "it does not take the address it was given");
		return;
	}
	if (was_assigned) {
		char name[32];
		bar_name(d, i, name, sizeof(name));
		klog("%s moved to 0x%lx", name, (unsigned long)a);
	}
	b->addr = a;
	d->pending &= ~(1u << i);
}

void pci_probe_bars(struct pci_dev *d)
{
	if (d->bars_state == 2)
		return;
	bars_check(d);
	if (d->pending && !all_sized) {
		/* Before anything is placed, learn where every other device's
		 * BARs are, so that nothing is placed over them. Bridges are
		 * left alone (see bars_check()). */
		all_sized = true;
		for (int j = 0; j < ndevices; j++)
			bars_check(&devices[j]);
	}
	d->bars_state = 2;
	for (int i = 0; i < 6; i++)
		if (d->pending & (1u << i))
			bar_place(d, i);
	for (int i = 0; i < 6; i++)
		if (d->bar[i].size)
			kdebug("pci %02x:%02x.%x BAR%d 0x%lx, %lu KiB, %s", d->bus, d->dev, d->fn, i, d->bar[i].addr,
			       (unsigned long)(d->bar[i].size >> 10),
			       d->bar[i].io     ? "I/O ports"
			       : d->bar[i].is64 ? "64-bit memory"
			                        : "32-bit memory");
}

/* ---- the walk -------------------------------------------------------------- */

static void scan_bus(uint8_t bus, int depth);

static void add_function(uint8_t bus, uint8_t dev, uint8_t fn, int depth)
{
	if (ndevices == PCI_MAX_DEVICES) {
		klog("pci: more than %d devices; the rest are ignored", PCI_MAX_DEVICES);
		return;
	}
	struct pci_dev *d = &devices[ndevices++];
	memset(d, 0, sizeof(*d));
	d->bus = bus, d->dev = dev, d->fn = fn;
	uint32_t id = pci_read32(d, PCI_VENDOR_ID), cls = pci_read32(d, PCI_CLASS_REVISION);
	d->vendor = id & 0xffff;
	d->device = id >> 16;
	d->revision = cls & 0xff;
	d->prog_if = cls >> 8 & 0xff;
	d->subclass = cls >> 16 & 0xff;
	d->class = cls >> 24;
	d->header = pci_read8(d, PCI_HEADER_TYPE) & 0x7f;

	if (d->header == 0) {
		d->subsys_id = pci_read16(d, PCI_SUBSYSTEM_ID);
	} else if (d->header == 1) {
		/* A PCI-to-PCI bridge: the firmware numbered the bus behind it
		 * (0 means it did not, and we do not configure bridges). Buses
		 * only ever go up, and each is walked once, so a bridge cannot
		 * send the walk round in circles. */
		uint8_t secondary = pci_read8(d, PCI_SECONDARY_BUS);
		if (secondary > plat.bus_end)
			klog("pci %02x:%02x.%x: bridge to bus %u, past the configuration window's last bus %u: not "
			     "walked",
			     bus, dev, fn, secondary, plat.bus_end);
		else if (secondary > bus && depth < 8)
			scan_bus(secondary, depth + 1);
	}
}

static bool present(uint8_t bus, uint8_t dev, uint8_t fn)
{
	if (plat.cfg->map && !plat.cfg->map(bus, dev, fn))
		return false;
	return (cfg_read32(bus, dev, fn, PCI_VENDOR_ID) & 0xffff) != 0xffff;
}

static void scan_bus(uint8_t bus, int depth)
{
	if (bus < plat.bus_start || bus > plat.bus_end || (buses_seen[bus / 64] >> (bus % 64) & 1))
		return;
	buses_seen[bus / 64] |= 1ull << (bus % 64);
	for (uint8_t dev = 0; dev < 32; dev++) {
		if (!present(bus, dev, 0))
			continue;
		struct pci_dev probe = {.bus = bus, .dev = dev};
		bool multi = pci_read8(&probe, PCI_HEADER_TYPE) & 0x80;
		add_function(bus, dev, 0, depth);
		for (uint8_t fn = 1; multi && fn < 8; fn++)
			if (present(bus, dev, fn))
				add_function(bus, dev, fn, depth);
	}
}

void pci_setup(const struct pci_platform *p)
{
	plat = *p;
	plat.mem.taken = mem_taken;
	plat.mem.ntaken = 0;
	plat.mem.max_taken = PCI_MAX_BARS;
	plat.io.taken = io_taken;
	plat.io.ntaken = 0;
	plat.io.max_taken = PCI_MAX_BARS;
	ndevices = 0;
	all_sized = false;
	memset(buses_seen, 0, sizeof(buses_seen));
	if (plat.bus_start > plat.bus_end) {
		klog("pci: the configuration window covers no bus (%u-%u)", plat.bus_start, plat.bus_end);
		return;
	}
	scan_bus(plat.bus_start, 0);
}

/* ---- this machine ---------------------------------------------------------- */

/*
 * QEMU's microvm (with pcie=on) has an ECAM window at 0xe0000000 but lists it
 * in no MCFG table, only in its DSDT. Without the I/O ports and without an
 * MCFG, look there: a host bridge that answers with a real vendor ID at
 * 00:00.0 is taken as proof.
 */
#define MICROVM_ECAM      0xe0000000ull
#define MICROVM_ECAM_SIZE 0x10000000ull /* 256 buses */
static bool microvm_ecam(void)
{
	if (mmio_refusal(MICROVM_ECAM, MICROVM_ECAM_SIZE, NULL))
		return false; /* RAM there: not a microvm */
	volatile void *p = mmio_map(MICROVM_ECAM, PAGE_SIZE);
	if (!p)
		return false;
	uint32_t id = mmio_read32(p);
	if ((id & 0xffff) == 0xffff || (id & 0xffff) == 0)
		return false;
	ecam_base = MICROVM_ECAM;
	return true;
}

/* Where no BAR may go, besides RAM and the kernel (mmio_refusal()): the
 * fixed addresses of x86 devices, and the ECAM window (filled in below). */
static struct pci_range mem_fixed[] = {
    {0xfec00000ull, 0xfec01000ull, "the IOAPIC"},
    {0xfed00000ull, 0xfed01000ull, "the HPET"},
    {0xfee00000ull, 0xfef00000ull, "the local APIC"},
    {0, 0, "the PCI configuration window (ECAM)"},
};

/* The ports the kernel uses, the ISA motherboard's (DMA, PIC, PIT, keyboard,
 * RTC, POST, all below 0x100), then the ACPI PM and GPE blocks the FADT names
 * (q35: 0x600, pc: 0x600 and 0xafe0). The chipset's own BARs may lie below
 * 0x1000 (q35's SMBus at 0x700), so that is not refused as a whole. */
#define IO_FIXED_NAMED 7
#define IO_FIXED_MAX   (IO_FIXED_NAMED + 8)
static struct pci_range io_fixed[IO_FIXED_MAX] = {
    {0x40, 0x44, "the PIT"},
    {0x61, 0x62, "the PIT's gate (port 0x61)"},
    {0x70, 0x72, "the RTC"},
    {0xf4, 0xf8, "the exit port (isa-debug-exit)"},
    {0x3f8, 0x400, "COM1"},
    {0xcf8, 0xd00, "the PCI configuration ports"},
    {0, 0x100, "the ISA motherboard ports (below 0x100)"},
};

void pci_init(void)
{
	struct pci_platform p = {.bus_start = 0, .bus_end = 255};
	uint64_t mem_next, mem_end;
	uint8_t bus_end;
	outl(0xcf8, 0x80000000u);
	bool have_cf8 = inl(0xcf8) == 0x80000000u;
	if (acpi_mcfg(&ecam_base, &bus_end)) {
		/* The whole window must be device space, 1 MiB per bus and
		 * aligned like it: configuration writes go there. */
		uint64_t len = ((uint64_t)bus_end + 1) << 20;
		const char *why = ecam_base & 0xfffff ? "not aligned to 1 MiB" : mmio_refusal(ecam_base, len, NULL);
		if (why) {
			klog("pci: MCFG's window 0x%lx-0x%lx is %s: not used", (unsigned long)ecam_base,
			     (unsigned long)(ecam_base + len - 1), why);
			ecam_base = 0;
		}
	}
	if (ecam_base) {
		p.bus_end = bus_end;
		/* Unassigned memory BARs go below the ECAM area, from 3 GiB
		 * up (microvm's window; on pc/q35 firmware assigns them). */
		mem_end = ecam_base;
		mem_next = ecam_base > 0xc0000000ull ? 0xc0000000ull : ecam_base - 0x10000000ull;
	} else if (have_cf8) {
		mem_next = 0xc0000000ull;
		mem_end = 0xfec00000ull; /* the IOAPIC and friends live above */
	} else if (microvm_ecam()) {
		p.bus_end = MICROVM_ECAM_SIZE / (1 << 20) - 1;
		mem_next = 0xc0000000ull;
		mem_end = ecam_base;
	} else {
		klog("pci: none on this machine (no MCFG table, no ports 0xcf8/0xcfc)");
		return;
	}
	p.cfg = ecam_base ? &ecam_ops : &cf8_ops;
	/* RAM may reach into the window on a big pc guest: start above it. */
	if (pmem_top() > mem_next && pmem_top() < mem_end)
		mem_next = ALIGN_UP(pmem_top(), 0x10000000ull);

	int nmem_fixed = ARRAY_SIZE(mem_fixed) - 1;
	if (ecam_base) {
		mem_fixed[nmem_fixed].start = ecam_base + ((uint64_t)p.bus_start << 20);
		mem_fixed[nmem_fixed++].end = ecam_base + (((uint64_t)p.bus_end + 1) << 20);
	}
	p.mem = (struct pci_space){.next = mem_next,
	                           .end = mem_end,
	                           .limit = 1ull << 52, /* x86's widest; mmio_refusal() knows this CPU's */
	                           .granule = PAGE_SIZE,
	                           .fixed = mem_fixed,
	                           .nfixed = nmem_fixed,
	                           .refusal = mmio_refusal};

	uint32_t blocks[IO_FIXED_MAX - IO_FIXED_NAMED][2];
	int nio_fixed = IO_FIXED_NAMED, nblocks = acpi_fixed_ports(blocks, ARRAY_SIZE(blocks));
	for (int i = 0; i < nblocks; i++)
		io_fixed[nio_fixed++] =
		    (struct pci_range){blocks[i][0], blocks[i][0] + blocks[i][1], "an ACPI PM block"};
	p.io = (struct pci_space){.next = 0xc000,
	                          .end = have_cf8 ? 0x10000 : 0, /* I/O ports exist on pc/q35, not on microvm */
	                          .limit = 0x10000,
	                          .granule = 1,
	                          .fixed = io_fixed,
	                          .nfixed = nio_fixed};
	pci_setup(&p);
}

int pci_count(void) { return ndevices; }
struct pci_dev *pci_get(int i) { return i >= 0 && i < ndevices ? &devices[i] : NULL; }

static const char *class_name(const struct pci_dev *d)
{
	static const struct {
		uint8_t class, subclass;
		const char *name;
	} names[] = {
	    {0x01, 0x00, "SCSI"},       {0x01, 0x01, "IDE"},    {0x01, 0x06, "SATA"},        {0x01, 0x80, "storage"},
	    {0x02, 0x00, "Ethernet"},   {0x03, 0x00, "VGA"},    {0x06, 0x00, "host bridge"}, {0x06, 0x01, "ISA bridge"},
	    {0x06, 0x04, "PCI bridge"}, {0x0c, 0x05, "SMBus"},  {0x00, 0xff, "other"},       {0x05, 0x00, "RAM"},
	    {0xff, 0x00, "device"},     {0x10, 0x80, "crypto"}, {0x0c, 0x03, "USB"},
	};
	for (unsigned i = 0; i < ARRAY_SIZE(names); i++)
		if (names[i].class == d->class && names[i].subclass == d->subclass)
			return names[i].name;
	return "";
}

void pci_print(void)
{
	for (int i = 0; i < ndevices; i++) {
		const struct pci_dev *d = &devices[i];
		klog("pci %02x:%02x.%x %04x:%04x %02x%02x %s %s%s%s", d->bus, d->dev, d->fn, d->vendor, d->device,
		     d->class, d->subclass, class_name(d), d->driver ? d->driver : "-", d->note[0] ? " " : "", d->note);
	}
}
