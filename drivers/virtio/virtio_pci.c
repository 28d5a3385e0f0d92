/*
 * virtio-pci: the PCI transport, modern and legacy, behind virtio_dev.h.
 * Implements: Virtual I/O Device (VIRTIO) Version 1.2, §4.1 Virtio Over PCI Bus
 *             (§4.1.4 modern capabilities, §4.1.4.8 legacy interface),
 *             §3.1.1 Driver Requirements: Device Initialization.
 * Try it:     scripts/run --virtio modern|legacy --disk disk.img blktool -- info
 *
 * A transitional device offers both interfaces; the modern one is used when
 * its capabilities are there (QEMU's default, and `disable-legacy=on`), the
 * legacy I/O BAR otherwise (`disable-modern=on`).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "../../kernel/io.h"
#include "../../kernel/kernel.h"
#include "../../kernel/pci.h"
#include "virtio_dev.h"

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

static volatile uint8_t *map_cap(struct pci_dev *pci, uint8_t cap, uint32_t *len)
{
	uint8_t bar = pci_read8(pci, cap + 4);
	uint32_t off = pci_read32(pci, cap + 8), length = pci_read32(pci, cap + 12);
	if (bar > 5 || pci->bar[bar].io || length == 0)
		return NULL;
	if (len)
		*len = length;
	return pci_map_bar(pci, bar, off, length);
}

static bool modern_probe(struct virtio_dev *vd)
{
	struct pci_dev *pci = vd->pci;
	/* §4.1.4: "The driver SHOULD use the first instance of each virtio
	 * structure type it can support." */
	for (uint8_t cap = pci_find_cap(pci, VIRTIO_PCI_CAP_ID_VNDR, 0); cap;
	     cap = pci_find_cap(pci, VIRTIO_PCI_CAP_ID_VNDR, cap)) {
		uint8_t type = pci_read8(pci, cap + 3);
		if (type == VIRTIO_PCI_CAP_COMMON_CFG && !vd->common) {
			uint32_t len;
			vd->common = (volatile void *)map_cap(pci, cap, &len);
			if (vd->common && len < sizeof(struct virtio_pci_common_cfg))
				vd->common = NULL;
		} else if (type == VIRTIO_PCI_CAP_NOTIFY_CFG && !vd->notify_base) {
			vd->notify_base = map_cap(pci, cap, NULL);
			vd->notify_mult = pci_read32(pci, cap + 16);
		} else if (type == VIRTIO_PCI_CAP_ISR_CFG && !vd->isr) {
			vd->isr = map_cap(pci, cap, NULL);
		} else if (type == VIRTIO_PCI_CAP_DEVICE_CFG && !vd->devcfg) {
			vd->devcfg = map_cap(pci, cap, &vd->devcfg_len);
		}
	}
	return vd->common && vd->notify_base && vd->isr;
}

int virtio_pci_probe(struct virtio_dev *vd, struct pci_dev *pci, const char *name)
{
	memset(vd, 0, sizeof(*vd));
	vd->name = name;
	vd->pci = pci;
	pci_probe_bars(pci);
	pci_enable(pci, true, true);
	if (modern_probe(vd)) {
		vd->modern = true;
	} else if (pci->bar[0].io && pci->bar[0].addr) {
		vd->io = (uint16_t)pci->bar[0].addr;
	} else if (pci->bar[0].io) {
		/* A legacy-only device on a machine without I/O port routing (microvm). */
		klog("%s %02x:%02x.%x: legacy-only, and this machine has no I/O port window for it: use modern virtio "
		     "(disable-legacy=on)",
		     name, pci->bus, pci->dev, pci->fn);
		return -ENODEV;
	} else {
		klog("%s %02x:%02x.%x: neither modern capabilities nor a legacy I/O BAR", name, pci->bus, pci->dev,
		     pci->fn);
		return -ENODEV;
	}
	virtio_reset(vd);
	return 0;
}

/* ---- status and features ------------------------------------------------ */

uint8_t virtio_status(struct virtio_dev *vd)
{
	return vd->modern ? mmio_read8(&vd->common->device_status) : inb(vd->io + VIRTIO_PCI_LEGACY_STATUS);
}

static void set_status(struct virtio_dev *vd, uint8_t s)
{
	if (vd->modern)
		mmio_write8(&vd->common->device_status, s);
	else
		outb(vd->io + VIRTIO_PCI_LEGACY_STATUS, s);
}

void virtio_reset(struct virtio_dev *vd)
{
	set_status(vd, 0);
	/* §4.1.4.3.2: "After writing 0 to device_status, the driver MUST wait
	 * for a read of device_status to return 0 before reinitializing the
	 * device." Bounded: a device that never resets is given up on. */
	for (int i = 0; i < 1000000 && virtio_status(vd) != 0; i++)
		cpu_relax();
}

void virtio_fail(struct virtio_dev *vd, const char *why)
{
	set_status(vd, virtio_status(vd) | VIRTIO_STATUS_FAILED);
	klog("%s %02x:%02x.%x: %s", vd->name, vd->pci->bus, vd->pci->dev, vd->pci->fn, why);
}

static uint64_t device_features(struct virtio_dev *vd)
{
	if (!vd->modern)
		return inl(vd->io + VIRTIO_PCI_LEGACY_HOST_FEATURES); /* 32 bits only */
	uint64_t f = 0;
	for (uint32_t half = 0; half < 2; half++) {
		mmio_write32(&vd->common->device_feature_select, half);
		f |= (uint64_t)mmio_read32(&vd->common->device_feature) << (32 * half);
	}
	return f;
}

static void driver_features(struct virtio_dev *vd, uint64_t f)
{
	if (!vd->modern) {
		outl(vd->io + VIRTIO_PCI_LEGACY_GUEST_FEATURES, (uint32_t)f);
		return;
	}
	for (uint32_t half = 0; half < 2; half++) {
		mmio_write32(&vd->common->driver_feature_select, half);
		mmio_write32(&vd->common->driver_feature, (uint32_t)(f >> (32 * half)));
	}
}

int virtio_start(struct virtio_dev *vd, uint64_t wanted, uint64_t required)
{
	/* 1. Reset the device (also one the firmware used to boot from). */
	virtio_reset(vd);
	/* 2. ACKNOWLEDGE: we have noticed the device. */
	set_status(vd, VIRTIO_STATUS_ACKNOWLEDGE);
	/* 3. DRIVER: we know how to drive it. */
	set_status(vd, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	/* 4. Read the offered features; write the subset we understand. A
	 *    modern device must also get VIRTIO_F_VERSION_1 (§6.1). */
	uint64_t offered = device_features(vd);
	if (vd->modern) {
		wanted |= 1ull << VIRTIO_F_VERSION_1;
		required |= 1ull << VIRTIO_F_VERSION_1;
	}
	if ((offered & required) != required) {
		virtio_fail(vd, "does not offer a feature this driver requires");
		return -ENOTSUP;
	}
	vd->features = offered & wanted;
	driver_features(vd, vd->features);
	if (vd->modern) {
		/* 5. FEATURES_OK; 6. re-read it: "If it is not set, the device
		 *    does not support our subset of features". Legacy devices
		 *    have no such step. */
		set_status(vd, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
		if (!(virtio_status(vd) & VIRTIO_STATUS_FEATURES_OK)) {
			virtio_fail(vd, "refused our features (FEATURES_OK not kept)");
			return -EIO;
		}
	}
	return 0;
}

void virtio_ready(struct virtio_dev *vd)
{
	/* 8. DRIVER_OK: the device is live from here on. */
	set_status(vd, virtio_status(vd) | VIRTIO_STATUS_DRIVER_OK);
}

/* ---- queues --------------------------------------------------------------- */

static void notify_modern(struct virtq *q, void *ctx)
{
	(void)q;
	virtio_wmb(); /* the avail index is visible before the doorbell rings */
	mmio_write16(ctx, q->index);
}

static void notify_legacy(struct virtq *q, void *ctx)
{
	virtio_wmb();
	outw((uint16_t)(uintptr_t)ctx, q->index);
}

int virtio_queue_init(struct virtio_dev *vd, struct virtq *q, uint16_t index, uint16_t max_size)
{
	uint16_t size;
	if (vd->modern) {
		mmio_write16(&vd->common->queue_select, index);
		size = mmio_read16(&vd->common->queue_size);
	} else {
		outw(vd->io + VIRTIO_PCI_LEGACY_QUEUE_SELECT, index);
		size = inw(vd->io + VIRTIO_PCI_LEGACY_QUEUE_SIZE);
	}
	if (size == 0)
		return -ENOENT;
	if (max_size > VIRTQ_MAX_SIZE)
		max_size = VIRTQ_MAX_SIZE;
	if (vd->modern) {
		/* A modern device takes a smaller size; split rings want a power of two. */
		while (size > max_size || (size & (size - 1)))
			size = (uint16_t)(1u << (31 - __builtin_clz(size > max_size ? max_size : size)));
	} else if (size > VIRTQ_MAX_SIZE || (size & (size - 1))) {
		return -ENOTSUP; /* a legacy queue's size cannot be changed */
	}

	size_t pages = ALIGN_UP(virtq_ring_bytes(size), PAGE_SIZE) / PAGE_SIZE;
	void *ring = page_alloc(pages);
	if (!ring)
		return -ENOMEM;
	bool event_idx = virtio_has_feature(vd->features, VIRTIO_F_EVENT_IDX);

	if (vd->modern) {
		volatile uint8_t *doorbell =
		    vd->notify_base + (uint32_t)mmio_read16(&vd->common->queue_notify_off) * vd->notify_mult;
		int err = virtq_init(q, index, size, ring, event_idx, notify_modern, (void *)doorbell);
		if (err)
			return err;
		mmio_write16(&vd->common->queue_size, size);
		mmio_write64(&vd->common->queue_desc_lo, virtq_desc_addr(q));
		mmio_write64(&vd->common->queue_driver_lo, virtq_avail_addr(q));
		mmio_write64(&vd->common->queue_device_lo, virtq_used_addr(q));
		mmio_write16(&vd->common->queue_enable, 1);
	} else {
		int err = virtq_init(q, index, size, ring, event_idx, notify_legacy,
		                     (void *)(uintptr_t)(vd->io + VIRTIO_PCI_LEGACY_QUEUE_NOTIFY));
		if (err)
			return err;
		outl(vd->io + VIRTIO_PCI_LEGACY_QUEUE_PFN,
		     (uint32_t)(virtq_desc_addr(q) >> VIRTIO_PCI_LEGACY_QUEUE_ADDR_SHIFT));
	}
	return 0;
}

/* ---- configuration space ---------------------------------------------------- */

/*
 * §4.1.3.1: "the driver MUST use 8-bit wide accesses for 8-bit wide fields,
 * 16-bit wide and aligned accesses for 16-bit wide fields and 32-bit wide and
 * aligned accesses for 32-bit and 64-bit wide fields." Callers read whole
 * fields, so the widest aligned access that fits is the field's own.
 */
static void config_copy(struct virtio_dev *vd, uint32_t off, uint8_t *out, uint32_t len)
{
	for (uint32_t i = 0; i < len;) {
		uint32_t o = off + i, v, w = (len - i >= 4 && o % 4 == 0) ? 4 : (len - i >= 2 && o % 2 == 0) ? 2 : 1;
		if (vd->modern)
			v = w == 4   ? mmio_read32(vd->devcfg + o)
			    : w == 2 ? mmio_read16(vd->devcfg + o)
			             : mmio_read8(vd->devcfg + o);
		else {
			/* MSI-X is never enabled, so the config starts at 0x14. */
			uint16_t port = vd->io + VIRTIO_PCI_LEGACY_CONFIG + o;
			v = w == 4 ? inl(port) : w == 2 ? inw(port) : inb(port);
		}
		memcpy(out + i, &v, w); /* little-endian: the low bytes first */
		i += w;
	}
}

void virtio_config_read(struct virtio_dev *vd, uint32_t off, void *buf, uint32_t len)
{
	if (!vd->modern) {
		config_copy(vd, off, buf, len); /* legacy has no generation counter */
		return;
	}
	if (!vd->devcfg || off + len > vd->devcfg_len) {
		memset(buf, 0, len);
		return;
	}
	/* A device that keeps changing its config is read a bounded number
	 * of times: the last copy is used rather than spinning forever. */
	for (int tries = 0; tries < 64; tries++) {
		uint8_t gen = mmio_read8(&vd->common->config_generation);
		config_copy(vd, off, buf, len);
		if (gen == mmio_read8(&vd->common->config_generation))
			break;
	}
}

void virtio_config_write32(struct virtio_dev *vd, uint32_t off, uint32_t v)
{
	if (!vd->modern)
		outl(vd->io + VIRTIO_PCI_LEGACY_CONFIG + off, v);
	else if (vd->devcfg && off + 4 <= vd->devcfg_len)
		mmio_write32(vd->devcfg + off, v);
}

uint8_t virtio_isr(struct virtio_dev *vd)
{
	return vd->modern ? mmio_read8(vd->isr) : inb(vd->io + VIRTIO_PCI_LEGACY_ISR);
}
