/*
 * kernel/pci.c: finding devices on PCI.
 *
 * Configuration space is reached through the memory-mapped ECAM window that
 * ACPI's MCFG table names (q35, microvm with pcie=on), else through the two
 * legacy I/O ports 0xcf8/0xcfc (pc). The buses are walked from bus 0 through
 * every PCI-to-PCI bridge. A device's BARs are sized when a driver takes it
 * (every configuration access traps to the hypervisor, and boot time counts);
 * the ones the firmware left unassigned (qboot and microvm assign nothing) get an address
 * from the 32-bit window below the ECAM area (memory) or from 0xc000-0xffff
 * (I/O ports), and decoding is turned on when a driver asks for it.
 *
 * Implements: PCI Local Bus Specification 3.0, §6 (configuration space,
 *             BAR sizing, capabilities); PCI Express Base 4.0, §7.2.2 (ECAM).
 */
#include <stdint.h>
#include <string.h>

#include "io.h"
#include "kernel.h"
#include "pci.h"

static struct pci_dev devices[PCI_MAX_DEVICES];
static int ndevices;
static uint64_t ecam_base;                /* 0: use the I/O ports */
static uint64_t mem_next, mem_end;        /* the window for unassigned memory BARs */
static uint64_t io_next = 0xc000, io_end; /* the same for I/O BARs; io_end 0: none */

/* ---- configuration space access ------------------------------------------ */

static volatile uint8_t *ecam(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off)
{
	return (volatile uint8_t *)(uintptr_t)(ecam_base + ((uint64_t)bus << 20 | dev << 15 | fn << 12)) + off;
}

static void cf8_select(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off)
{
	outl(0xcf8, 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (off & 0xfc));
}

static uint32_t cfg_read32(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off)
{
	if (ecam_base)
		return mmio_read32(ecam(bus, dev, fn, off));
	cf8_select(bus, dev, fn, off);
	return inl(0xcfc);
}

static void cfg_write32(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off, uint32_t v)
{
	if (ecam_base) {
		mmio_write32(ecam(bus, dev, fn, off), v);
		return;
	}
	cf8_select(bus, dev, fn, off);
	outl(0xcfc, v);
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

void pci_enable(const struct pci_dev *d, bool mem, bool io)
{
	uint16_t cmd = pci_read16(d, PCI_COMMAND);
	cmd |= PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE; /* we poll: no legacy interrupts */
	if (mem)
		cmd |= PCI_COMMAND_MEMORY;
	if (io)
		cmd |= PCI_COMMAND_IO;
	pci_write16(d, PCI_COMMAND, cmd);
}

volatile void *pci_map_bar(const struct pci_dev *d, int bar, uint64_t off, uint64_t len)
{
	const struct pci_bar *b = &d->bar[bar];
	if (bar < 0 || bar > 5 || b->io || !b->addr || off + len > b->size || off + len < off)
		return NULL;
	return (volatile uint8_t *)mmio_map(b->addr + off, len);
}

/* ---- BARs ---------------------------------------------------------------- */

static uint64_t alloc_aligned(uint64_t *next, uint64_t end, uint64_t size)
{
	uint64_t a = ALIGN_UP(*next, size);
	if (a + size > end || a + size < a)
		return 0;
	*next = a + size;
	return a;
}

/* Sizes BAR i (PCI 3.0 §6.2.5.1: write all ones, read back the mask) and
 * assigns an address when the firmware did not. Returns the number of BAR
 * slots it used (2 for a 64-bit BAR). */
static int bar_probe(struct pci_dev *d, int i)
{
	uint16_t reg = PCI_BAR0 + 4 * i;
	uint32_t orig = pci_read32(d, reg);
	struct pci_bar *b = &d->bar[i];

	pci_write32(d, reg, 0xffffffff);
	uint32_t mask = pci_read32(d, reg);
	pci_write32(d, reg, orig);
	if (mask == 0 || mask == 0xffffffff)
		return 1; /* no BAR here */

	if (orig & 1) {
		b->io = true;
		b->size = (~(mask & ~3u) + 1) & 0xffff;
		b->addr = orig & ~3u;
		if (!b->addr && b->size && io_end) {
			b->addr = alloc_aligned(&io_next, io_end, b->size);
			if (b->addr)
				pci_write32(d, reg, (uint32_t)b->addr);
		}
		return 1;
	}

	b->is64 = ((orig >> 1) & 3) == 2;
	uint64_t full_mask = 0xffffffff00000000ull | (mask & ~0xfu), addr = orig & ~0xfu;
	if (b->is64 && i < 5) {
		uint32_t orig_hi = pci_read32(d, reg + 4);
		pci_write32(d, reg + 4, 0xffffffff);
		full_mask = (uint64_t)pci_read32(d, reg + 4) << 32 | (mask & ~0xfu);
		pci_write32(d, reg + 4, orig_hi);
		addr |= (uint64_t)orig_hi << 32;
	}
	b->size = ~full_mask + 1;
	b->addr = addr;
	if (!b->addr && b->size) {
		b->addr = alloc_aligned(&mem_next, mem_end, b->size);
		if (b->addr) {
			pci_write32(d, reg, (uint32_t)b->addr | (orig & 0xf));
			if (b->is64)
				pci_write32(d, reg + 4, (uint32_t)(b->addr >> 32));
		}
	}
	return b->is64 ? 2 : 1;
}

void pci_probe_bars(struct pci_dev *d)
{
	if (d->bars_probed)
		return;
	d->bars_probed = true;
	if ((pci_read8(d, PCI_HEADER_TYPE) & 0x7f) != 0)
		return; /* bridges' BARs are not ours to use */
	/* Decoding off while the BARs hold all ones. */
	uint16_t cmd = pci_read16(d, PCI_COMMAND);
	pci_write16(d, PCI_COMMAND, cmd & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY));
	for (int i = 0; i < 6;)
		i += bar_probe(d, i);
	pci_write16(d, PCI_COMMAND, cmd);
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
	uint8_t header = pci_read8(d, PCI_HEADER_TYPE) & 0x7f;

	if (header == 0) {
		d->subsys_id = pci_read16(d, PCI_SUBSYSTEM_ID);
	} else if (header == 1) {
		/* A PCI-to-PCI bridge: the firmware numbered the bus behind it
		 * (0 means it did not, and we do not configure bridges). */
		uint8_t secondary = pci_read8(d, PCI_SECONDARY_BUS);
		if (secondary > bus && depth < 8)
			scan_bus(secondary, depth + 1);
	}
}

static bool present(uint8_t bus, uint8_t dev, uint8_t fn)
{
	if (ecam_base && !mmio_map(ecam_base + ((uint64_t)bus << 20 | dev << 15 | fn << 12), PAGE_SIZE))
		return false; /* mmio_map() said why */
	return (cfg_read32(bus, dev, fn, PCI_VENDOR_ID) & 0xffff) != 0xffff;
}

static void scan_bus(uint8_t bus, int depth)
{
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

/*
 * QEMU's microvm (with pcie=on) has an ECAM window at 0xe0000000 but lists it
 * in no MCFG table, only in its DSDT. Without the I/O ports and without an
 * MCFG, look there: a host bridge that answers with a real vendor ID at
 * 00:00.0 is taken as proof.
 */
#define MICROVM_ECAM 0xe0000000ull
static bool microvm_ecam(void)
{
	volatile void *p = mmio_map(MICROVM_ECAM, PAGE_SIZE);
	if (!p)
		return false;
	uint32_t id = mmio_read32(p);
	if ((id & 0xffff) == 0xffff || (id & 0xffff) == 0)
		return false;
	ecam_base = MICROVM_ECAM;
	return true;
}

void pci_init(void)
{
	uint8_t bus_end;
	bool have_cf8 = false;
	outl(0xcf8, 0x80000000u);
	have_cf8 = inl(0xcf8) == 0x80000000u;
	if (acpi_mcfg(&ecam_base, &bus_end)) {
		/* Unassigned memory BARs go below the ECAM area, from 3 GiB
		 * up (microvm's window; on pc/q35 firmware assigns them). */
		mem_end = ecam_base;
		mem_next = ecam_base > 0xc0000000ull ? 0xc0000000ull : ecam_base - 0x10000000ull;
	} else if (have_cf8) {
		mem_next = 0xc0000000ull;
		mem_end = 0xfec00000ull; /* the IOAPIC and friends live above */
	} else if (microvm_ecam()) {
		mem_next = 0xc0000000ull;
		mem_end = ecam_base;
	} else {
		klog("pci: none on this machine (no MCFG table, no ports 0xcf8/0xcfc)");
		return;
	}
	/* RAM may reach into the window on a big pc guest: start above it. */
	if (pmem_top() > mem_next && pmem_top() < mem_end)
		mem_next = ALIGN_UP(pmem_top(), 0x10000000ull);
	if (have_cf8)
		io_end = 0x10000; /* I/O ports exist on pc/q35, not on microvm */
	scan_bus(0, 0);
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
