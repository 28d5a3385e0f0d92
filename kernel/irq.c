/*
 * kernel/irq.c: vectors for device wake-ups, IOAPIC routing, MSI messages.
 * Implements: Intel SDM vol. 3A §10.11 (message signalled interrupts: address
 *             and data format), Intel 82093AA IOAPIC datasheet §3.2
 *             (IOREGSEL/IOWIN, IOREDTBL), ACPI 6.4 §5.2.12 (MADT IOAPIC entries).
 * Try it:     scripts/run -q --accel tcg --disk disk.img blktool -- info
 *             (the boot log says which wake-up each virtio device got)
 *
 * See irq.h for why a handler does nothing but acknowledge. One vector per
 * device is enough: a wake-up only has to end the halt; which queue has
 * work, the loop finds out by polling them all.
 */
#include <errno.h>

#include "io.h"
#include "irq.h"
#include "kernel.h"

/* A line shared by several devices (PCI INTx) acknowledges each of them. */
#define MAX_SHARED 4

struct irq_line {
	const char *name;
	struct {
		void (*ack)(void *ctx);
		void *ctx;
	} handler[MAX_SHARED];
	unsigned nhandlers;
	uint64_t count;
	bool used;
	bool has_gsi; /* routed from this IOAPIC input: */
	uint32_t gsi;
};

static struct irq_line lines[IRQ_VECTOR_LAST - IRQ_VECTOR_FIRST + 1];

int irq_alloc(const char *name, void (*ack)(void *ctx), void *ctx)
{
	for (unsigned i = 0; i < ARRAY_SIZE(lines); i++) {
		if (lines[i].used)
			continue;
		lines[i] = (struct irq_line){.name = name, .handler = {{ack, ctx}}, .nhandlers = 1, .used = true};
		return IRQ_VECTOR_FIRST + (int)i;
	}
	return -ENOSPC;
}

static struct irq_line *line(unsigned vector);

void irq_free(int vector)
{
	struct irq_line *l = vector >= 0 ? line((unsigned)vector) : NULL;
	kassert(l && !l->has_gsi); /* routed lines stay: others may share them */
	l->used = false;
}

static struct irq_line *line(unsigned vector)
{
	if (vector < IRQ_VECTOR_FIRST || vector > IRQ_VECTOR_LAST || !lines[vector - IRQ_VECTOR_FIRST].used)
		return NULL;
	return &lines[vector - IRQ_VECTOR_FIRST];
}

uint64_t irq_count(int vector)
{
	struct irq_line *l = vector >= 0 ? line((unsigned)vector) : NULL;
	return l ? l->count : 0;
}

bool irq_dispatch(unsigned vector)
{
	struct irq_line *l = line(vector);
	if (!l)
		return false;
	l->count++;
	/* The devices' acknowledgements first, so that a level-triggered line
	 * is low again when the EOI makes the IOAPIC look at it. */
	for (unsigned i = 0; i < l->nhandlers; i++)
		if (l->handler[i].ack)
			l->handler[i].ack(l->handler[i].ctx);
	lapic_eoi();
	return true;
}

/* §10.11.1: 0xFEE in bits 31-20, the destination APIC ID in bits 19-12,
 * RH = DM = 0 (physical destination, no redirection). */
uint64_t irq_msi_address(void) { return 0xfee00000ull | (uint64_t)lapic_id() << 12; }
/* §10.11.2: fixed delivery mode (000), edge; the vector in bits 7-0. */
uint32_t irq_msi_data(int vector) { return (uint32_t)vector & 0xff; }

/* ---- IOAPIC ------------------------------------------------------------- */

#define IOREGSEL    0x00
#define IOWIN       0x10
#define IOAPICVER   0x01
#define IOREDTBL(i) (0x10 + 2 * (i))
#define RTE_MASKED  (1u << 16)
#define RTE_LEVEL   (1u << 15)
#define RTE_LOW     (1u << 13)

static uint32_t ioapic_read(volatile uint8_t *io, uint32_t reg)
{
	mmio_write32(io + IOREGSEL, reg);
	return mmio_read32(io + IOWIN);
}

static void ioapic_write(volatile uint8_t *io, uint32_t reg, uint32_t v)
{
	mmio_write32(io + IOREGSEL, reg);
	mmio_write32(io + IOWIN, v);
}

int irq_route_gsi(uint32_t gsi, int vector, bool level, bool active_low)
{
	struct acpi_ioapic ioapics[8];
	int n = acpi_ioapics(ioapics, ARRAY_SIZE(ioapics));
	for (int i = 0; i < n; i++) {
		volatile uint8_t *io = (volatile uint8_t *)mmio_map(ioapics[i].addr, PAGE_SIZE);
		if (!io)
			continue; /* mmio_map() said why */
		uint32_t ver = ioapic_read(io, IOAPICVER);
		if (ver == 0xffffffff)
			continue; /* nothing answers there */
		uint32_t entries = ((ver >> 16) & 0xff) + 1;
		if (gsi < ioapics[i].gsi_base || gsi - ioapics[i].gsi_base >= entries)
			continue;
		uint32_t pin = gsi - ioapics[i].gsi_base;
		uint32_t low = (uint32_t)vector | (level ? RTE_LEVEL : 0) | (active_low ? RTE_LOW : 0);
		/* Destination first, with the entry still masked; then unmask. */
		ioapic_write(io, IOREDTBL(pin), RTE_MASKED);
		ioapic_write(io, IOREDTBL(pin) + 1, lapic_id() << 24);
		ioapic_write(io, IOREDTBL(pin), low);
		return 0;
	}
	return -ENODEV;
}

int irq_attach_gsi(uint32_t gsi, bool level, bool active_low, const char *name, void (*ack)(void *ctx), void *ctx)
{
	/* A line already routed (PCI INTx is shared): one more handler. */
	for (unsigned i = 0; i < ARRAY_SIZE(lines); i++) {
		struct irq_line *l = &lines[i];
		if (!l->used || !l->has_gsi || l->gsi != gsi)
			continue;
		if (l->nhandlers == MAX_SHARED)
			return -ENOSPC;
		l->handler[l->nhandlers].ack = ack;
		l->handler[l->nhandlers++].ctx = ctx;
		return IRQ_VECTOR_FIRST + (int)i;
	}
	int vector = irq_alloc(name, ack, ctx);
	if (vector < 0)
		return vector;
	struct irq_line *l = line((unsigned)vector);
	if (irq_route_gsi(gsi, vector, level, active_low) != 0) {
		l->used = false; /* give the vector back */
		return -ENODEV;
	}
	l->has_gsi = true;
	l->gsi = gsi;
	return vector;
}
