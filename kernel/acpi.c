/*
 * kernel/acpi.c: the little of ACPI the kernel needs: where to write to
 * power the machine off, and (for PCI) where the MCFG table says the
 * configuration space is memory mapped.
 *
 * Powering off means writing SLP_TYPa | SLP_EN to the PM1a control register
 * named in the FADT, where SLP_TYPa is the first value of the \_S5 package in
 * the DSDT. Finding \_S5 without an AML interpreter is the usual shortcut:
 * look for the bytes "_S5_" followed by a Package opcode.
 *
 * Implements: ACPI Specification 6.4, §5.2.5 (RSDP), §5.2.7-8 (RSDT/XSDT),
 *             §5.2.9 (FADT), §7.4.2 (\_Sx objects), §20 (AML encoding);
 *             PCI Firmware Specification 3.2, §4.1.2 (MCFG).
 */
#include <stdint.h>
#include <string.h>

#include "io.h"
#include "irq.h"
#include "kernel.h"

struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	uint32_t creator_id;
	uint32_t creator_revision;
} __attribute__((packed));

struct rsdp {
	char signature[8]; /* "RSD PTR " */
	uint8_t checksum;
	char oem_id[6];
	uint8_t revision; /* 0: ACPI 1.0 (RSDT only), 2: XSDT too */
	uint32_t rsdt;
	uint32_t length;
	uint64_t xsdt;
	uint8_t ext_checksum;
	uint8_t reserved[3];
} __attribute__((packed));

static uint16_t pm1a_cnt; /* I/O port of PM1a_CNT, 0 if unknown */
/* Hardware-reduced ACPI (microvm) has no PM1 block; it sleeps through the
 * FADT's SLEEP_CONTROL_REG, a generic address in memory or I/O space. */
static uint8_t sleep_ctl_space; /* 0: memory, 1: I/O */
static uint64_t sleep_ctl_addr; /* 0 if none */
static uint16_t slp_typ_s5;     /* SLP_TYPa for S5 */
static bool s5_found;
static uint64_t mcfg_base; /* ECAM base for segment 0 */
/* virtio-mmio register blocks the DSDT lists (microvm), with their interrupts. */
#define MAX_VIRTIO_MMIO 32
static uint64_t virtio_mmio_base[MAX_VIRTIO_MMIO];
static struct acpi_irq virtio_mmio_irq[MAX_VIRTIO_MMIO]; /* gsi UINT32_MAX: none found */
static int nvirtio_mmio;
/* IOAPICs the MADT lists. */
#define MAX_IOAPICS 8
static struct acpi_ioapic ioapics[MAX_IOAPICS];
static int nioapics;
static uint8_t mcfg_bus_end;
/* The FADT's fixed I/O port blocks, [start, length], for kernel/pci.c: no
 * I/O BAR may land on them. */
#define MAX_PORT_BLOCKS 8
static uint32_t port_blocks[MAX_PORT_BLOCKS][2];
static int nport_blocks;

static bool checksum_ok(const void *p, size_t n)
{
	uint8_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += ((const uint8_t *)p)[i];
	return sum == 0;
}

/* The BIOS puts the RSDP on a 16-byte boundary in 0xe0000-0xfffff. */
static const struct rsdp *rsdp_scan(void)
{
	for (uintptr_t a = 0xe0000; a < 0x100000; a += 16)
		if (memcmp((const void *)a, "RSD PTR ", 8) == 0 && checksum_ok((const void *)a, 20))
			return (const struct rsdp *)a;
	return NULL;
}

/* A table's checksum covers all of it; the DSDT is large and only searched
 * for a few bytes, so its checksum is skipped (it costs a millisecond of
 * boot time under emulation). */
static const struct acpi_header *table_at(uint64_t addr, bool check)
{
	const struct acpi_header *h = (const void *)(uintptr_t)addr;
	if (!addr || addr >= 0x100000000ull || !paging_is_mapped(addr))
		return NULL;
	if (h->length < sizeof(*h) || h->length > (16u << 20) || (check && !checksum_ok(h, h->length)))
		return NULL;
	return h;
}

static void parse_s5(const struct acpi_header *dsdt)
{
	const uint8_t *p = (const uint8_t *)dsdt, *end = p + dsdt->length;
	for (p += sizeof(*dsdt); p + 8 < end; p++) {
		if (p[0] != '_' || p[1] != 'S' || p[2] != '5' || p[3] != '_' || p[4] != 0x12) /* PackageOp */
			continue;
		const uint8_t *q = p + 5;
		q += 1 + (*q >> 6); /* PkgLength: 1 to 4 bytes */
		q++;                /* NumElements */
		if (*q == 0x0a)     /* BytePrefix */
			slp_typ_s5 = q[1];
		else if (*q == 0x00 || *q == 0x01) /* ZeroOp, OneOp */
			slp_typ_s5 = *q;
		else
			continue;
		s5_found = true;
		return;
	}
}

/*
 * virtio-mmio devices in the DSDT (QEMU's microvm): a Device whose _HID is the
 * string "LNRO0005", followed by a _CRS resource template holding a
 * Memory32Fixed descriptor (tag 0x86, length 9: flags, base, size) for its
 * registers and an Extended Interrupt descriptor (§6.4.3.6: tag 0x89, a
 * 16-bit length, flags, a count, then 32-bit GSIs) for its interrupt.
 * Without an AML interpreter, look for the string and take the first such
 * descriptors within the next few dozen bytes.
 */
static void parse_virtio_mmio(const struct acpi_header *dsdt)
{
	const uint8_t *p = (const uint8_t *)dsdt, *end = p + dsdt->length;
	for (p += sizeof(*dsdt); p + 9 < end && nvirtio_mmio < MAX_VIRTIO_MMIO; p++) {
		if (p[0] != 'L' || memcmp(p, "LNRO0005", 9) != 0) /* with its NUL */
			continue;
		for (const uint8_t *q = p + 9; q + 12 <= end && q < p + 96; q++) {
			if (q[0] != 0x86 || q[1] != 0x09 || q[2] != 0x00)
				continue;
			struct acpi_irq irq = {.gsi = UINT32_MAX};
			for (const uint8_t *r = q + 12; r + 9 <= end && r < q + 48; r++) {
				uint16_t len = (uint16_t)(r[1] | r[2] << 8);
				if (r[0] != 0x89 || len < 6 || r[4] < 1)
					continue;
				/* Flags bit 1: edge (else level); bit 2: active low. */
				irq = (struct acpi_irq){.gsi = *(const uint32_t *)(r + 5),
				                        .level = !(r[3] & 2),
				                        .active_low = (r[3] & 4) != 0};
				break;
			}
			virtio_mmio_irq[nvirtio_mmio] = irq;
			virtio_mmio_base[nvirtio_mmio++] = *(const uint32_t *)(q + 4);
			break;
		}
	}
}

int acpi_virtio_mmio(uint64_t *bases, int max)
{
	int n = nvirtio_mmio < max ? nvirtio_mmio : max;
	for (int i = 0; i < n; i++)
		bases[i] = virtio_mmio_base[i];
	return n;
}

int acpi_virtio_mmio_irq(uint64_t base, struct acpi_irq *irq)
{
	for (int i = 0; i < nvirtio_mmio; i++) {
		if (virtio_mmio_base[i] != base || virtio_mmio_irq[i].gsi == UINT32_MAX)
			continue;
		*irq = virtio_mmio_irq[i];
		return 0;
	}
	return -1;
}

/* MADT (§5.2.12): after the 44-byte header (APIC address, flags), entries
 * of (type, length, ...); type 1 is an IOAPIC: id, reserved, its 32-bit
 * address and the first global system interrupt it serves. */
static void parse_madt(const struct acpi_header *madt)
{
	const uint8_t *e = (const uint8_t *)madt + 44, *end = (const uint8_t *)madt + madt->length;
	for (; e + 2 <= end && e[1] >= 2 && e + e[1] <= end; e += e[1])
		if (e[0] == 1 && e[1] >= 12 && nioapics < MAX_IOAPICS)
			ioapics[nioapics++] = (struct acpi_ioapic){.addr = *(const uint32_t *)(e + 4),
			                                           .gsi_base = *(const uint32_t *)(e + 8)};
}

int acpi_ioapics(struct acpi_ioapic *out, int max)
{
	if (nioapics == 0) {
		/* No MADT: the one IOAPIC every PC has, where it always is. */
		if (max > 0)
			out[0] = (struct acpi_ioapic){.addr = 0xfec00000, .gsi_base = 0};
		return max > 0;
	}
	int n = nioapics < max ? nioapics : max;
	for (int i = 0; i < n; i++)
		out[i] = ioapics[i];
	return n;
}

static void parse_fadt(const struct acpi_header *fadt)
{
	const uint8_t *f = (const uint8_t *)fadt;
	uint32_t pm1a = *(const uint32_t *)(f + 64);
	uint64_t dsdt = *(const uint32_t *)(f + 40);
	if (fadt->length >= 148 && *(const uint64_t *)(f + 140))
		dsdt = *(const uint64_t *)(f + 140); /* X_DSDT */
	if (pm1a < 0x10000)
		pm1a_cnt = (uint16_t)pm1a;
	/* §5.2.9 Table 5.9: SMI_CMD at 48; the PM1a/b event, PM1a/b control,
	 * PM2 control, PM timer, GPE0 and GPE1 blocks at 56..84, their lengths
	 * (one byte each; PM1 event and control lengths shared by a and b) at
	 * 88..93. A block of address 0 is absent. */
	if (fadt->length >= 94) {
		static const uint8_t len_at[8] = {88, 88, 89, 89, 90, 91, 92, 93};
		uint32_t smi = *(const uint32_t *)(f + 48);
		if (smi && smi < 0x10000)
			port_blocks[nport_blocks][0] = smi, port_blocks[nport_blocks++][1] = 1;
		for (int i = 0; i < 8 && nport_blocks < MAX_PORT_BLOCKS; i++) {
			uint32_t base = *(const uint32_t *)(f + 56 + 4 * i), len = f[len_at[i]];
			if (base && len && base < 0x10000)
				port_blocks[nport_blocks][0] = base, port_blocks[nport_blocks++][1] = len;
		}
	}
	/* SLEEP_CONTROL_REG at offset 244 (ACPI 5.0+, §5.2.9 Table 5.9). */
	if (fadt->length >= 256 && f[244] <= 1) {
		sleep_ctl_space = f[244];
		sleep_ctl_addr = *(const uint64_t *)(f + 248);
	}
	const struct acpi_header *d = table_at(dsdt, false);
	if (d) {
		parse_s5(d);
		parse_virtio_mmio(d);
	}
}

static void parse_mcfg(const struct acpi_header *mcfg)
{
	/* 8 reserved bytes, then 16-byte entries: base, segment, bus range. */
	const uint8_t *e = (const uint8_t *)mcfg + sizeof(*mcfg) + 8;
	for (; e + 16 <= (const uint8_t *)mcfg + mcfg->length; e += 16) {
		uint16_t segment = *(const uint16_t *)(e + 8);
		if (segment == 0 && e[10] == 0) {
			mcfg_base = *(const uint64_t *)e;
			mcfg_bus_end = e[11];
		}
	}
}

void acpi_init(uint64_t rsdp_addr)
{
	const struct rsdp *r = rsdp_addr ? (const void *)(uintptr_t)rsdp_addr : rsdp_scan();
	if (!r || memcmp(r->signature, "RSD PTR ", 8) != 0) {
		klog("acpi: no RSDP found");
		return;
	}
	bool x = r->revision >= 2 && r->xsdt;
	const struct acpi_header *root = table_at(x ? r->xsdt : r->rsdt, true);
	if (!root) {
		klog("acpi: root table unreadable");
		return;
	}
	size_t n = (root->length - sizeof(*root)) / (x ? 8 : 4);
	const uint8_t *entries = (const uint8_t *)(root + 1);
	for (size_t i = 0; i < n; i++) {
		uint64_t a = x ? *(const uint64_t *)(entries + 8 * i) : *(const uint32_t *)(entries + 4 * i);
		const struct acpi_header *t = table_at(a, true);
		if (!t)
			continue;
		if (memcmp(t->signature, "FACP", 4) == 0)
			parse_fadt(t);
		else if (memcmp(t->signature, "MCFG", 4) == 0)
			parse_mcfg(t);
		else if (memcmp(t->signature, "APIC", 4) == 0)
			parse_madt(t);
	}
	kdebug("acpi: PM1a_CNT 0x%x, sleep control 0x%lx, S5 %s (SLP_TYP %u), MCFG 0x%lx", pm1a_cnt, sleep_ctl_addr,
	       s5_found ? "found" : "missing", slp_typ_s5, mcfg_base);
}

int acpi_fixed_ports(uint32_t (*blocks)[2], int max)
{
	int n = nport_blocks < max ? nport_blocks : max;
	for (int i = 0; i < n; i++)
		blocks[i][0] = port_blocks[i][0], blocks[i][1] = port_blocks[i][1];
	return n;
}

bool acpi_mcfg(uint64_t *base, uint8_t *bus_end)
{
	*base = mcfg_base;
	*bus_end = mcfg_bus_end;
	return mcfg_base != 0;
}

void acpi_poweroff(void)
{
	if (!s5_found)
		return;
	if (pm1a_cnt) {
		outw(pm1a_cnt, (uint16_t)(slp_typ_s5 << 10 | 1 << 13)); /* SLP_TYP, SLP_EN */
	} else if (sleep_ctl_addr) {
		/* §4.8.3.7: SLP_TYPx in bits 2-4, SLP_EN in bit 5. */
		uint8_t v = (uint8_t)((slp_typ_s5 & 7) << 2 | 1 << 5);
		volatile void *reg = sleep_ctl_space == 1 ? NULL : mmio_map(sleep_ctl_addr, 1);
		if (sleep_ctl_space == 1)
			outb((uint16_t)sleep_ctl_addr, v);
		else if (reg)
			mmio_write8(reg, v);
		else
			return; /* mmio_map() said why; the caller falls back */
	} else {
		return;
	}
	/* The write takes effect at once in QEMU; allow real hardware a moment. */
	time_sleep_ns(100000000);
}
