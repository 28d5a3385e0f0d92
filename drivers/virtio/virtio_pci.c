/*
 * virtio-pci: the PCI transport, modern and legacy, behind virtio_dev.h.
 * Implements: Virtual I/O Device (VIRTIO) Version 1.2, §4.1 Virtio Over PCI Bus
 *             (§4.1.4 modern capabilities, §4.1.4.8 legacy interface).
 * Try it:     scripts/run --virtio modern|legacy --disk disk.img blktool -- info
 *
 * A transitional device offers both interfaces; the modern one is used when
 * its capabilities are there (QEMU's default, and `disable-legacy=on`), the
 * legacy I/O BAR otherwise (`disable-modern=on`). The steps of start-up are
 * in virtio.c; here are only the two register layouts.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "../../kernel/io.h"
#include "../../kernel/irq.h"
#include "../../kernel/kernel.h"
#include "../../kernel/pci.h"
#include "virtio_dev.h"
#include "virtio_pci_caps.h"

int virtio_pci_type(const struct pci_dev *pci)
{
	if (pci->vendor != VIRTIO_PCI_VENDOR_ID)
		return 0;
	if (pci->device >= VIRTIO_PCI_MODERN_DEVICE_BASE && pci->device <= VIRTIO_PCI_MODERN_DEVICE_BASE + 0x3f)
		return pci->device - VIRTIO_PCI_MODERN_DEVICE_BASE;
	if (pci->device >= VIRTIO_PCI_LEGACY_DEVICE_FIRST && pci->device <= VIRTIO_PCI_LEGACY_DEVICE_LAST)
		return pci->subsys_id; /* transitional: the subsystem ID is the type */
	return 0;
}

/* ---- finding the modern structures ------------------------------------- */

static uint32_t cfg_read32(void *ctx, uint8_t off) { return pci_read32(ctx, off); }

/* The capability walk and its checks are in virtio_pci_caps.c; here the
 * validated regions are mapped. */
static bool modern_probe(struct virtio_dev *vd)
{
	struct pci_dev *pci = vd->pci;
	struct virtio_pci_cfg_source src = {.read32 = cfg_read32, .ctx = pci};
	struct virtio_pci_layout l;

	for (int i = 0; i < 6; i++)
		src.bar_size[i] = pci->bar[i].io || !pci->bar[i].addr ? 0 : pci->bar[i].size;
	const char *why = virtio_pci_parse_caps(&src, &l);
	if (why) {
		if (l.any) /* silent for a legacy-only device: it has nothing to refuse */
			klog("virtio %s: modern interface refused: %s", vd->where, why);
		return false;
	}
	vd->common = pci_map_bar(pci, l.common.bar, l.common.off, l.common.len);
	vd->notify_base = pci_map_bar(pci, l.notify.bar, l.notify.off, l.notify.len);
	vd->notify_len = l.notify.len;
	vd->notify_mult = l.notify_mult;
	vd->isr_reg = pci_map_bar(pci, l.isr.bar, l.isr.off, l.isr.len);
	if (l.device.len) {
		vd->devcfg = pci_map_bar(pci, l.device.bar, l.device.off, l.device.len);
		vd->devcfg_len = vd->devcfg ? l.device.len : 0;
	}
	return vd->common && vd->notify_base && vd->isr_reg;
}

/* ---- modern: registers in memory BARs ----------------------------------- */

static uint8_t modern_get_status(struct virtio_dev *vd) { return mmio_read8(&vd->common->device_status); }
static void modern_set_status(struct virtio_dev *vd, uint8_t s) { mmio_write8(&vd->common->device_status, s); }

static uint64_t modern_get_features(struct virtio_dev *vd)
{
	uint64_t f = 0;
	for (uint32_t half = 0; half < 2; half++) {
		mmio_write32(&vd->common->device_feature_select, half);
		f |= (uint64_t)mmio_read32(&vd->common->device_feature) << (32 * half);
	}
	return f;
}

static void modern_set_features(struct virtio_dev *vd, uint64_t f)
{
	for (uint32_t half = 0; half < 2; half++) {
		mmio_write32(&vd->common->driver_feature_select, half);
		mmio_write32(&vd->common->driver_feature, (uint32_t)(f >> (32 * half)));
	}
}

static uint16_t modern_queue_max(struct virtio_dev *vd, uint16_t index)
{
	mmio_write16(&vd->common->queue_select, index);
	return mmio_read16(&vd->common->queue_size);
}

static void notify_modern(struct virtq *q, void *doorbell)
{
	virtio_wmb(); /* the avail index is visible before the doorbell rings */
	mmio_write16(doorbell, q->index);
}

static int modern_queue_notify(struct virtio_dev *vd, uint16_t index, void (**fn)(struct virtq *, void *), void **ctx)
{
	struct virtio_pci_layout l = {.notify = {.len = vd->notify_len}, .notify_mult = vd->notify_mult};
	uint32_t doorbell;

	mmio_write16(&vd->common->queue_select, index);
	/* The device picks the doorbell: checked against the notify area as
	 * it is read, in 64-bit arithmetic, or every kick would write there. */
	uint16_t off = mmio_read16(&vd->common->queue_notify_off);
	if (!virtio_pci_notify_ok(&l, off, &doorbell)) {
		klog("virtio %s: queue %u's doorbell (%u x %u) is outside the %u-byte notify area", vd->where, index,
		     off, vd->notify_mult, vd->notify_len);
		return -EIO;
	}
	*fn = notify_modern;
	*ctx = (void *)(vd->notify_base + doorbell);
	return 0;
}

static void modern_queue_enable(struct virtio_dev *vd, struct virtq *q)
{
	mmio_write16(&vd->common->queue_select, q->index);
	mmio_write16(&vd->common->queue_size, q->size);
	mmio_write64(&vd->common->queue_desc_lo, virtq_desc_addr(q));
	mmio_write64(&vd->common->queue_driver_lo, virtq_avail_addr(q));
	mmio_write64(&vd->common->queue_device_lo, virtq_used_addr(q));
	mmio_write16(&vd->common->queue_enable, 1);
}

/* The widest aligned access that fits a field: callers read whole fields,
 * so that is the field's own width, as §4.1.3.1 asks. */
static uint32_t field_width(uint32_t off, uint32_t left)
{
	return (left >= 4 && off % 4 == 0) ? 4 : (left >= 2 && off % 2 == 0) ? 2 : 1;
}

static bool modern_config_copy(struct virtio_dev *vd, uint32_t off, uint8_t *out, uint32_t len)
{
	if (!vd->devcfg || (uint64_t)off + len > vd->devcfg_len)
		return false;
	for (uint32_t i = 0, w; i < len; i += w) {
		uint32_t o = off + i, v;
		w = field_width(o, len - i);
		v = w == 4   ? mmio_read32(vd->devcfg + o)
		    : w == 2 ? mmio_read16(vd->devcfg + o)
		             : mmio_read8(vd->devcfg + o);
		memcpy(out + i, &v, w); /* little-endian: the low bytes first */
	}
	return true;
}

static int modern_config_generation(struct virtio_dev *vd) { return mmio_read8(&vd->common->config_generation); }

static void modern_config_write32(struct virtio_dev *vd, uint32_t off, uint32_t v)
{
	if (vd->devcfg && (uint64_t)off + 4 <= vd->devcfg_len) /* 64-bit: off + 4 must not wrap */
		mmio_write32(vd->devcfg + off, v);
}

static void modern_config_write8(struct virtio_dev *vd, uint32_t off, uint8_t v)
{
	if (vd->devcfg && (uint64_t)off + 1 <= vd->devcfg_len)
		mmio_write8(vd->devcfg + off, v);
}

static uint8_t modern_isr(struct virtio_dev *vd) { return mmio_read8(vd->isr_reg); }

/* ---- MSI-X: the wait loop's wake-up (§4.1.5.1.2) ------------------------- */

#define PCI_INTERRUPT_LINE   0x3c
#define PCI_INTERRUPT_PIN    0x3d
#define PCI_CAP_ID_MSIX      0x11
#define MSIX_CTRL_TABLE_SIZE 0x07ff /* entries - 1 */
#define MSIX_CTRL_MASKALL    (1u << 14)
#define MSIX_CTRL_ENABLE     (1u << 15)
#define VIRTIO_MSI_NO_VECTOR 0xffff

/*
 * Table entry 0 sends `vector` to this CPU; MSI-X on. PCI Local Bus 3.0
 * §6.8.2: the capability's message control says the table size, its table
 * offset/BIR word where the table is; the mapping is bounds-checked against
 * the BAR. Returns 0 or -ENODEV.
 */
static int msix_enable(struct virtio_dev *vd, int vector)
{
	struct pci_dev *pci = vd->pci;
	uint8_t cap = pci_find_cap(pci, PCI_CAP_ID_MSIX, 0);
	if (!cap)
		return -ENODEV;
	uint16_t ctrl = pci_read16(pci, cap + 2);
	uint32_t entries = (ctrl & MSIX_CTRL_TABLE_SIZE) + 1u, where = pci_read32(pci, cap + 4);
	int bir = (int)(where & 7);
	if (bir > 5)
		return -ENODEV;
	volatile uint32_t *t = (volatile uint32_t *)pci_map_bar(pci, bir, where & ~7u, (uint64_t)entries * 16);
	if (!t)
		return -ENODEV;
	/* Function masked while the entry is written, then enabled. */
	pci_write16(pci, cap + 2, (uint16_t)(ctrl | MSIX_CTRL_MASKALL));
	uint64_t addr = irq_msi_address();
	mmio_write32(&t[0], (uint32_t)addr);
	mmio_write32(&t[1], (uint32_t)(addr >> 32));
	mmio_write32(&t[2], irq_msi_data(vector));
	mmio_write32(&t[3], 0); /* vector control: unmasked */
	pci_write16(pci, cap + 2, (uint16_t)((ctrl & ~MSIX_CTRL_MASKALL) | MSIX_CTRL_ENABLE));
	vd->msix_cap = cap;
	if (!vd->t->modern) /* §4.1.4.8: two vector registers now come first */
		vd->legacy_cfg = VIRTIO_PCI_LEGACY_CONFIG_MSIX;
	return 0;
}

static void msix_disable(struct virtio_dev *vd)
{
	uint16_t ctrl = pci_read16(vd->pci, vd->msix_cap + 2);
	pci_write16(vd->pci, vd->msix_cap + 2, (uint16_t)(ctrl & ~MSIX_CTRL_ENABLE));
	if (!vd->t->modern)
		vd->legacy_cfg = VIRTIO_PCI_LEGACY_CONFIG;
}

/* The INTx handler: reading the ISR status resets it and makes the device
 * de-assert its line (§4.1.4.5), which must happen before the EOI. */
static void intx_ack(void *ctx)
{
	struct virtio_dev *vd = ctx;
	(void)vd->t->isr(vd);
}

/*
 * A device without MSI-X: its INTx line, as the firmware routed it
 * (interrupt line register 0x3c, an ISA IRQ number, which QEMU's pc and q35
 * also feed to the same IOAPIC input). Level-triggered and active high, as
 * QEMU's ACPI tables describe PCI links; shared with other devices.
 */
static int intx_setup(struct virtio_dev *vd)
{
	struct pci_dev *pci = vd->pci;
	uint8_t pin = pci_read8(pci, PCI_INTERRUPT_PIN), irq = pci_read8(pci, PCI_INTERRUPT_LINE);
	if (pin == 0 || irq == 0 || irq >= 16)
		return -ENODEV; /* no pin, or the firmware did not route it */
	int vector = irq_attach_gsi(irq, true, false, vd->name, intx_ack, vd);
	if (vector < 0)
		return -ENODEV;
	pci_write16(pci, PCI_COMMAND, pci_read16(pci, PCI_COMMAND) & ~PCI_COMMAND_INTX_DISABLE);
	vd->irq_vector = vector;
	ksnprintf(vd->wake, sizeof(vd->wake), "intx irq %u", irq);
	return 0;
}

/* Every queue gets table entry 0, config changes none. "The device MUST
 * return vector mapped to a given event, (NO_VECTOR if unmapped) on read"
 * (§4.1.5.1.2.1): one that could not take it answers NO_VECTOR, and then
 * the device goes without MSI-X. Without MSI-X, INTx. */
static int pci_setup_irq(struct virtio_dev *vd, uint16_t nqueues)
{
	/* A legacy BAR too small for the two vector registers: no MSI-X. */
	if (!vd->t->modern && vd->io_size < VIRTIO_PCI_LEGACY_CONFIG_MSIX)
		return intx_setup(vd);
	int vector = irq_alloc(vd->name, NULL, NULL);
	if (vector < 0)
		return -ENODEV;
	if (msix_enable(vd, vector) != 0) {
		irq_free(vector);
		return intx_setup(vd);
	}
	bool ok = true;
	if (vd->t->modern) {
		mmio_write16(&vd->common->config_msix_vector, VIRTIO_MSI_NO_VECTOR);
		for (uint16_t i = 0; i < nqueues && ok; i++) {
			mmio_write16(&vd->common->queue_select, i);
			mmio_write16(&vd->common->queue_msix_vector, 0);
			ok = mmio_read16(&vd->common->queue_msix_vector) == 0;
		}
	} else {
		outw(vd->io + VIRTIO_PCI_LEGACY_CONFIG_MSIX_VECTOR, VIRTIO_MSI_NO_VECTOR);
		for (uint16_t i = 0; i < nqueues && ok; i++) {
			outw(vd->io + VIRTIO_PCI_LEGACY_QUEUE_SELECT, i);
			outw(vd->io + VIRTIO_PCI_LEGACY_QUEUE_MSIX_VECTOR, 0);
			ok = inw(vd->io + VIRTIO_PCI_LEGACY_QUEUE_MSIX_VECTOR) == 0;
		}
	}
	if (!ok) {
		klog("%s %s: the device refused an MSI-X vector; trying INTx", vd->name, vd->where);
		msix_disable(vd);
		irq_free(vector);
		return intx_setup(vd);
	}
	vd->irq_vector = vector;
	ksnprintf(vd->wake, sizeof(vd->wake), "msix");
	return 0;
}

static const struct virtio_transport pci_modern = {
    .name = "pci",
    .modern = true,
    .get_status = modern_get_status,
    .set_status = modern_set_status,
    .get_features = modern_get_features,
    .set_features = modern_set_features,
    .queue_max = modern_queue_max,
    .queue_notify = modern_queue_notify,
    .queue_enable = modern_queue_enable,
    .config_copy = modern_config_copy,
    .config_generation = modern_config_generation,
    .config_write32 = modern_config_write32,
    .config_write8 = modern_config_write8,
    .isr = modern_isr,
    .setup_irq = pci_setup_irq,
};

/* ---- legacy: registers in an I/O BAR ------------------------------------ */

static uint8_t legacy_get_status(struct virtio_dev *vd) { return inb(vd->io + VIRTIO_PCI_LEGACY_STATUS); }
static void legacy_set_status(struct virtio_dev *vd, uint8_t s) { outb(vd->io + VIRTIO_PCI_LEGACY_STATUS, s); }

static uint64_t legacy_get_features(struct virtio_dev *vd)
{
	return inl(vd->io + VIRTIO_PCI_LEGACY_HOST_FEATURES); /* 32 bits only */
}

static void legacy_set_features(struct virtio_dev *vd, uint64_t f)
{
	outl(vd->io + VIRTIO_PCI_LEGACY_GUEST_FEATURES, (uint32_t)f);
}

static uint16_t legacy_queue_max(struct virtio_dev *vd, uint16_t index)
{
	outw(vd->io + VIRTIO_PCI_LEGACY_QUEUE_SELECT, index);
	return inw(vd->io + VIRTIO_PCI_LEGACY_QUEUE_SIZE);
}

static void notify_legacy(struct virtq *q, void *port)
{
	virtio_wmb(); /* the avail index is visible before the doorbell rings */
	outw((uint16_t)(uintptr_t)port, q->index);
}

static int legacy_queue_notify(struct virtio_dev *vd, uint16_t index, void (**fn)(struct virtq *, void *), void **ctx)
{
	(void)index;
	*fn = notify_legacy;
	*ctx = (void *)(uintptr_t)(vd->io + VIRTIO_PCI_LEGACY_QUEUE_NOTIFY); /* one port for all queues */
	return 0;
}

static void legacy_queue_enable(struct virtio_dev *vd, struct virtq *q)
{
	/* The size is the device's; the rings are where the page number says,
	 * in the legacy layout (used ring on the next 4096 boundary). */
	outw(vd->io + VIRTIO_PCI_LEGACY_QUEUE_SELECT, q->index);
	outl(vd->io + VIRTIO_PCI_LEGACY_QUEUE_PFN,
	     (uint32_t)(virtq_desc_addr(q) >> VIRTIO_PCI_LEGACY_QUEUE_ADDR_SHIFT));
}

/* Whether [off, off + len) of the device configuration lies inside BAR0,
 * after the header: 64-bit, so that no sum wraps. */
static bool legacy_config_fits(const struct virtio_dev *vd, uint32_t off, uint32_t len)
{
	return (uint64_t)vd->legacy_cfg + off + len <= vd->io_size;
}

static bool legacy_config_copy(struct virtio_dev *vd, uint32_t off, uint8_t *out, uint32_t len)
{
	if (!legacy_config_fits(vd, off, len))
		return false;
	for (uint32_t i = 0, w; i < len; i += w) {
		uint16_t port = (uint16_t)(vd->io + vd->legacy_cfg + off + i);
		uint32_t v;
		w = field_width(off + i, len - i);
		v = w == 4 ? inl(port) : w == 2 ? inw(port) : inb(port);
		memcpy(out + i, &v, w);
	}
	return true;
}

static int legacy_config_generation(struct virtio_dev *vd)
{
	(void)vd;
	return -1; /* legacy devices have no generation counter */
}

static void legacy_config_write32(struct virtio_dev *vd, uint32_t off, uint32_t v)
{
	if (legacy_config_fits(vd, off, 4))
		outl((uint16_t)(vd->io + vd->legacy_cfg + off), v);
}

static void legacy_config_write8(struct virtio_dev *vd, uint32_t off, uint8_t v)
{
	if (legacy_config_fits(vd, off, 1))
		outb((uint16_t)(vd->io + vd->legacy_cfg + off), v);
}

static uint8_t legacy_isr(struct virtio_dev *vd) { return inb(vd->io + VIRTIO_PCI_LEGACY_ISR); }

static const struct virtio_transport pci_legacy = {
    .name = "pci-legacy",
    .fixed_queues = true,
    .get_status = legacy_get_status,
    .set_status = legacy_set_status,
    .get_features = legacy_get_features,
    .set_features = legacy_set_features,
    .queue_max = legacy_queue_max,
    .queue_notify = legacy_queue_notify,
    .queue_enable = legacy_queue_enable,
    .config_copy = legacy_config_copy,
    .config_generation = legacy_config_generation,
    .config_write32 = legacy_config_write32,
    .config_write8 = legacy_config_write8,
    .isr = legacy_isr,
    .setup_irq = pci_setup_irq,
};

/* ---- finding the device ------------------------------------------------- */

int virtio_pci_probe(struct virtio_dev *vd, struct pci_dev *pci)
{
	memset(vd, 0, sizeof(*vd));
	vd->pci = pci;
	vd->type = virtio_pci_type(pci);
	ksnprintf(vd->where, sizeof(vd->where), "%02x:%02x.%x", pci->bus, pci->dev, pci->fn);
	pci_probe_bars(pci);
	pci_enable(pci, true, true);
	if (modern_probe(vd)) {
		vd->t = &pci_modern;
	} else if (pci->bar[0].io && pci->bar[0].addr) {
		/* The registers are reached as io + offset in 16-bit port
		 * numbers: the BAR must hold the header and end below 64 Ki. */
		uint64_t base = pci->bar[0].addr, size = pci->bar[0].size;
		if (size < VIRTIO_PCI_LEGACY_CONFIG || base + size > 0x10000) {
			klog("virtio %s: legacy I/O BAR 0x%lx+0x%lx is too small or out of port range", vd->where,
			     (unsigned long)base, (unsigned long)size);
			return -ENODEV;
		}
		vd->io = (uint16_t)base;
		vd->io_size = (uint32_t)size;
		/* MSI-X is never enabled here, so the config starts after the
		 * 20-byte header (0x18 with MSI-X: the two vector registers). */
		vd->legacy_cfg = VIRTIO_PCI_LEGACY_CONFIG;
		vd->t = &pci_legacy;
	} else if (pci->bar[0].io) {
		/* A legacy-only device on a machine without I/O port routing (microvm). */
		klog("virtio %s: legacy-only, and this machine has no I/O port window for it: use modern virtio "
		     "(disable-legacy=on)",
		     vd->where);
		return -ENODEV;
	} else {
		klog("virtio %s: neither modern capabilities nor a legacy I/O BAR", vd->where);
		return -ENODEV;
	}
	vd->modern = vd->t->modern;
	if (!virtio_reset(vd)) {
		klog("virtio %s: did not reset (status never read 0): given up", vd->where);
		return -EIO;
	}
	return 0;
}
