/*
 * virtio-mmio: the memory-mapped transport, version 2 (virtio 1.0+) and
 * version 1 (legacy), behind virtio_dev.h.
 * Implements: Virtual I/O Device (VIRTIO) Version 1.2, §4.2 Virtio Over MMIO
 *             (§4.2.2 register layout, §4.2.4 legacy interface).
 * Try it:     scripts/run -M microvm --virtio mmio --disk disk.img blktool -- info
 *
 * QEMU's microvm has no PCI unless asked (pcie=on); its devices sit in
 * 512-byte register blocks that the ACPI DSDT lists (kernel/acpi.c finds
 * them). An empty block reads as device ID 0.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "../../kernel/io.h"
#include "../../kernel/irq.h"
#include "../../kernel/kernel.h"
#include "virtio_dev.h"

/* §4.2.2: register offsets. "v1" ones exist only in the legacy layout. */
#define MMIO_MAGIC_VALUE         0x000 /* "virt" */
#define MMIO_VERSION             0x004 /* 2, or 1 for legacy */
#define MMIO_DEVICE_ID           0x008 /* 0: no device in this block */
#define MMIO_DEVICE_FEATURES     0x010
#define MMIO_DEVICE_FEATURES_SEL 0x014
#define MMIO_DRIVER_FEATURES     0x020
#define MMIO_DRIVER_FEATURES_SEL 0x024
#define MMIO_GUEST_PAGE_SIZE     0x028 /* v1 */
#define MMIO_QUEUE_SEL           0x030
#define MMIO_QUEUE_NUM_MAX       0x034
#define MMIO_QUEUE_NUM           0x038
#define MMIO_QUEUE_ALIGN         0x03c /* v1 */
#define MMIO_QUEUE_PFN           0x040 /* v1 */
#define MMIO_QUEUE_READY         0x044
#define MMIO_QUEUE_NOTIFY        0x050
#define MMIO_INTERRUPT_STATUS    0x060
#define MMIO_INTERRUPT_ACK       0x064
#define MMIO_STATUS              0x070
#define MMIO_QUEUE_DESC          0x080 /* low, then high at +4 */
#define MMIO_QUEUE_DRIVER        0x090
#define MMIO_QUEUE_DEVICE        0x0a0
#define MMIO_CONFIG_GENERATION   0x0fc
#define MMIO_CONFIG              0x100
#define MMIO_SIZE                0x200

#define MMIO_MAGIC 0x74726976 /* "virt", little-endian */

static uint32_t rd(struct virtio_dev *vd, uint32_t reg) { return mmio_read32(vd->mmio + reg); }
static void wr(struct virtio_dev *vd, uint32_t reg, uint32_t v) { mmio_write32(vd->mmio + reg, v); }

static uint8_t get_status(struct virtio_dev *vd) { return (uint8_t)rd(vd, MMIO_STATUS); }
static void set_status(struct virtio_dev *vd, uint8_t s) { wr(vd, MMIO_STATUS, s); }

static uint64_t get_features(struct virtio_dev *vd)
{
	uint64_t f = 0;
	for (uint32_t half = 0; half < 2; half++) {
		wr(vd, MMIO_DEVICE_FEATURES_SEL, half);
		f |= (uint64_t)rd(vd, MMIO_DEVICE_FEATURES) << (32 * half);
	}
	return f;
}

static void set_features(struct virtio_dev *vd, uint64_t f)
{
	for (uint32_t half = 0; half < 2; half++) {
		wr(vd, MMIO_DRIVER_FEATURES_SEL, half);
		wr(vd, MMIO_DRIVER_FEATURES, (uint32_t)(f >> (32 * half)));
	}
}

static uint16_t queue_max(struct virtio_dev *vd, uint16_t index)
{
	wr(vd, MMIO_QUEUE_SEL, index);
	uint32_t max = rd(vd, MMIO_QUEUE_NUM_MAX);
	return max > 0x8000 ? 0x8000 : (uint16_t)max;
}

static void notify(struct virtq *q, void *reg)
{
	virtio_wmb(); /* the avail index is visible before the doorbell rings */
	mmio_write32(reg, q->index);
}

static int queue_notify(struct virtio_dev *vd, uint16_t index, void (**fn)(struct virtq *, void *), void **ctx)
{
	(void)index;
	*fn = notify;
	*ctx = (void *)(vd->mmio + MMIO_QUEUE_NOTIFY); /* one register for all queues */
	return 0;
}

static void queue_enable(struct virtio_dev *vd, struct virtq *q)
{
	wr(vd, MMIO_QUEUE_SEL, q->index);
	wr(vd, MMIO_QUEUE_NUM, q->size);
	if (vd->t->modern) {
		mmio_write64(vd->mmio + MMIO_QUEUE_DESC, virtq_desc_addr(q));
		mmio_write64(vd->mmio + MMIO_QUEUE_DRIVER, virtq_avail_addr(q));
		mmio_write64(vd->mmio + MMIO_QUEUE_DEVICE, virtq_used_addr(q));
		wr(vd, MMIO_QUEUE_READY, 1);
	} else {
		/* §4.2.4: the legacy layout, with the used ring on the next
		 * page boundary, located by a page frame number in units of
		 * the guest page size (set again here: a reset may clear it). */
		wr(vd, MMIO_GUEST_PAGE_SIZE, PAGE_SIZE);
		wr(vd, MMIO_QUEUE_ALIGN, VIRTQ_RING_ALIGN);
		wr(vd, MMIO_QUEUE_PFN, (uint32_t)(virtq_desc_addr(q) / PAGE_SIZE));
	}
}

static bool config_copy(struct virtio_dev *vd, uint32_t off, uint8_t *out, uint32_t len)
{
	if ((uint64_t)off + len > MMIO_SIZE - MMIO_CONFIG)
		return false;
	/* §4.2.2.2: field-width accesses, as for PCI. */
	for (uint32_t i = 0, w; i < len; i += w) {
		uint32_t o = off + i, left = len - i, v;
		volatile uint8_t *p = vd->mmio + MMIO_CONFIG + o;
		w = (left >= 4 && o % 4 == 0) ? 4 : (left >= 2 && o % 2 == 0) ? 2 : 1;
		v = w == 4 ? mmio_read32(p) : w == 2 ? mmio_read16(p) : mmio_read8(p);
		memcpy(out + i, &v, w);
	}
	return true;
}

static int config_generation(struct virtio_dev *vd) { return vd->t->modern ? (int)rd(vd, MMIO_CONFIG_GENERATION) : -1; }

static void config_write32(struct virtio_dev *vd, uint32_t off, uint32_t v)
{
	if ((uint64_t)off + 4 <= MMIO_SIZE - MMIO_CONFIG) /* 64-bit: off + 4 must not wrap */
		wr(vd, MMIO_CONFIG + off, v);
}

static void config_write8(struct virtio_dev *vd, uint32_t off, uint8_t v)
{
	/* §4.2.2.2: "8 bit wide accesses for 8 bit wide fields". */
	if ((uint64_t)off + 1 <= MMIO_SIZE - MMIO_CONFIG)
		mmio_write8(vd->mmio + MMIO_CONFIG + off, v);
}

static uint8_t isr(struct virtio_dev *vd)
{
	uint32_t s = rd(vd, MMIO_INTERRUPT_STATUS);
	wr(vd, MMIO_INTERRUPT_ACK, s);
	return (uint8_t)s;
}

/* The wake-up interrupt's handler: "the driver MUST write a value with bits
 * set [...] to InterruptACK" for the events it handled (§4.2.3.4): that
 * also lowers a level-triggered line before the EOI. The work itself is
 * left to the wait loop's polling. */
static void irq_ack(void *ctx)
{
	struct virtio_dev *vd = ctx;
	uint32_t s = rd(vd, MMIO_INTERRUPT_STATUS);
	if (s)
		wr(vd, MMIO_INTERRUPT_ACK, s);
}

/* The device's interrupt line as its _CRS in the DSDT names it, through the
 * IOAPIC; one line covers every queue, so nqueues does not matter. */
/* A device the command line named (virtio_mmio.device=SIZE@BASE:IRQ) has
 * its interrupt there. Linux treats such an IRQ as an IOAPIC input, edge
 * triggered and active high (the way microvm wires them); so do we. */
static int cmdline_irq(uint64_t base, struct acpi_irq *irq)
{
	for (int i = 0; i < kopt.nvirtio_mmio; i++)
		if (kopt.virtio_mmio[i].base == base) {
			*irq = (struct acpi_irq){.gsi = kopt.virtio_mmio[i].irq, .level = false, .active_low = false};
			return 0;
		}
	return -1;
}

static int setup_irq(struct virtio_dev *vd, uint16_t nqueues)
{
	struct acpi_irq irq;
	(void)nqueues;
	if (acpi_virtio_mmio_irq(vd->mmio_phys, &irq) != 0 && cmdline_irq(vd->mmio_phys, &irq) != 0)
		return -ENODEV;
	int vector = irq_attach_gsi(irq.gsi, irq.level, irq.active_low, vd->name, irq_ack, vd);
	if (vector < 0)
		return -ENODEV;
	vd->irq_vector = vector;
	ksnprintf(vd->wake, sizeof(vd->wake), "irq %u", irq.gsi);
	return 0;
}

#define MMIO_TRANSPORT(tname, is_modern)                                                                               \
	{                                                                                                              \
		.name = tname, .modern = is_modern, .get_status = get_status, .set_status = set_status,                \
		.get_features = get_features, .set_features = set_features, .queue_max = queue_max,                    \
		.queue_notify = queue_notify, .queue_enable = queue_enable, .config_copy = config_copy,                \
		.config_generation = config_generation, .config_write32 = config_write32,                              \
		.config_write8 = config_write8, .isr = isr, .setup_irq = setup_irq,                                    \
	}
static const struct virtio_transport mmio_modern = MMIO_TRANSPORT("mmio", true);
static const struct virtio_transport mmio_legacy = MMIO_TRANSPORT("mmio-legacy", false);

int virtio_mmio_probe(struct virtio_dev *vd, uint64_t base)
{
	memset(vd, 0, sizeof(*vd));
	vd->mmio = (volatile uint8_t *)mmio_map(base, MMIO_SIZE);
	vd->mmio_phys = base;
	ksnprintf(vd->where, sizeof(vd->where), "mmio 0x%lx", (unsigned long)base);
	if (!vd->mmio)
		return -ENODEV; /* RAM or the kernel's own range: mmio_map said why */
	if (rd(vd, MMIO_MAGIC_VALUE) != MMIO_MAGIC)
		return -ENODEV;
	uint32_t version = rd(vd, MMIO_VERSION);
	vd->type = (int)rd(vd, MMIO_DEVICE_ID);
	if (vd->type == 0)
		return -ENODEV; /* an empty slot */
	if (version == 2) {
		vd->t = &mmio_modern;
	} else if (version == 1) {
		vd->t = &mmio_legacy;
	} else {
		klog("virtio %s: unknown register layout version %u", vd->where, version);
		return -ENODEV;
	}
	vd->modern = vd->t->modern;
	if (!virtio_reset(vd)) {
		klog("virtio %s: did not reset (status never read 0): given up", vd->where);
		return -EIO;
	}
	return 0;
}
