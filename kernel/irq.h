/*
 * kernel/irq.h: device interrupts as wake-ups for the wait loop (kernel/wait.c).
 *
 * Ringlet does its device work by polling; an interrupt only ends a halt
 * (`sti; hlt`) early. So a handler does nothing but acknowledge: the
 * device's own acknowledgement (a virtio-mmio InterruptACK, say) through
 * the ack function given here, then the LAPIC EOI. Interrupts are enabled
 * only inside that halt, so a handler never interrupts anything else.
 */
#ifndef RINGLET_IRQ_H
#define RINGLET_IRQ_H

#include <stdbool.h>
#include <stdint.h>

/* Vectors handed out for devices: above the exceptions, the legacy PIC's
 * range and TIMER_VECTOR, below SPURIOUS_VECTOR. */
#define IRQ_VECTOR_FIRST 0x40
#define IRQ_VECTOR_LAST  0xef

/* A vector whose handler calls ack(ctx) (may be NULL) and then sends the
 * EOI. Returns the vector, or -ENOSPC when they are all taken. */
int irq_alloc(const char *name, void (*ack)(void *ctx), void *ctx);
/* Gives back a vector from irq_alloc() that was never routed or enabled. */
void irq_free(int vector);
/* Interrupts that arrived on the vector since boot: a device's wake-ups. */
uint64_t irq_count(int vector);

/* The MSI/MSI-X message that delivers `vector` to this CPU (Intel SDM vol.
 * 3A §10.11: fixed delivery, physical destination = the BSP's APIC ID). */
uint64_t irq_msi_address(void);
uint32_t irq_msi_data(int vector);

/* Routes global system interrupt `gsi` through the IOAPIC that serves it to
 * `vector` on this CPU, unmasked. Returns 0, or -ENODEV when no IOAPIC has
 * that input. */
int irq_route_gsi(uint32_t gsi, int vector, bool level, bool active_low);

/* ---- what irq.c needs from ACPI (kernel/acpi.c) and the LAPIC (time.c) -- */
struct acpi_ioapic {
	uint64_t addr;     /* its register page */
	uint32_t gsi_base; /* the global system interrupt of its input 0 */
};
/* The IOAPICs the MADT lists (the usual one at 0xfec00000 without a MADT). */
int acpi_ioapics(struct acpi_ioapic *out, int max);
struct acpi_irq {
	uint32_t gsi;
	bool level, active_low;
};
/* The interrupt of the virtio-mmio device at `base`, from its _CRS; 0, or
 * -1 when the DSDT names none. */
int acpi_virtio_mmio_irq(uint64_t base, struct acpi_irq *irq);
/* This CPU's local APIC ID. */
uint32_t lapic_id(void);

/* A vector for IOAPIC input `gsi`, routed; a line already routed (PCI INTx
 * is shared) gets one more ack function on its vector. Returns the vector,
 * -ENOSPC, or -ENODEV when no IOAPIC has that input. */
int irq_attach_gsi(uint32_t gsi, bool level, bool active_low, const char *name, void (*ack)(void *ctx), void *ctx);

/* Called by trap_dispatch(); true when the vector was one of ours. */
bool irq_dispatch(unsigned vector);

#endif
