/*
 * drivers/virtio/virtio_dev.h: one virtio device, whatever transport carries
 * it. A driver calls these and never touches the transport's registers, so
 * the same driver works over modern and legacy virtio-pci and virtio-mmio.
 *
 * Start-up, in the order of Virtual I/O Device (VIRTIO) Version 1.2, §3.1.1,
 * once a transport has found the device (virtio_pci_probe, virtio_mmio_probe):
 *
 *	virtio_start(&vd, wanted, required);           // steps 1-6: features, FEATURES_OK
 *	virtio_queue_init(&vd, &q, 0, 256);            // step 7: queues
 *	virtio_ready(&vd);                             // step 8: DRIVER_OK
 */
#ifndef RINGLET_VIRTIO_DEV_H
#define RINGLET_VIRTIO_DEV_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio.h"
#include "virtq.h"

struct pci_dev;
struct virtio_dev;

/* Device types (§5): the modern PCI device ID is 0x1040 + type. */
#define VIRTIO_ID_NET     1
#define VIRTIO_ID_BLOCK   2
#define VIRTIO_ID_RNG     4
#define VIRTIO_ID_BALLOON 5
#define VIRTIO_ID_SCSI    8
#define VIRTIO_ID_GPU     16
#define VIRTIO_ID_INPUT   18

/*
 * What a transport does; drivers/virtio/virtio.c builds the spec's steps on
 * these. Queue functions work on the queue queue_max() selected.
 */
struct virtio_transport {
	const char *name;  /* "pci", "pci-legacy", "mmio", "mmio-legacy" */
	bool modern;       /* virtio 1.0+: VERSION_1 and the FEATURES_OK step */
	bool fixed_queues; /* the device's queue size cannot be changed (legacy PCI) */
	uint8_t (*get_status)(struct virtio_dev *vd);
	void (*set_status)(struct virtio_dev *vd, uint8_t status);
	uint64_t (*get_features)(struct virtio_dev *vd);
	void (*set_features)(struct virtio_dev *vd, uint64_t features);
	/* Selects queue `index`; returns its largest size, 0 if there is none. */
	uint16_t (*queue_max)(struct virtio_dev *vd, uint16_t index);
	/* The notify function and context virtq_init() gets for that queue: 0, or -EIO when
	 * the device puts the queue's doorbell where we cannot ring it (the queue is refused). */
	int (*queue_notify)(struct virtio_dev *vd, uint16_t index, void (**fn)(struct virtq *, void *), void **ctx);
	/* Programs the selected queue's size and ring addresses and enables it. */
	void (*queue_enable)(struct virtio_dev *vd, struct virtq *q);
	/* Copies device-specific configuration with the field widths §4.1.3.1
	 * asks for; false when [off, off+len) is not there. */
	bool (*config_copy)(struct virtio_dev *vd, uint32_t off, uint8_t *out, uint32_t len);
	int (*config_generation)(struct virtio_dev *vd); /* -1: the transport has none */
	void (*config_write32)(struct virtio_dev *vd, uint32_t off, uint32_t v);
	void (*config_write8)(struct virtio_dev *vd, uint32_t off, uint8_t v);
	uint8_t (*isr)(struct virtio_dev *vd);
	/* Gives the device a wake-up interrupt for its queues 0..nqueues-1
	 * (set up already) and none for config changes: sets irq_vector and
	 * wake. Returns 0, or a negative errno when there is none to be had
	 * (then the device stays as it was). NULL: the transport has none. */
	int (*setup_irq)(struct virtio_dev *vd, uint16_t nqueues);
};

struct virtio_dev {
	const char *name; /* for log lines: "virtio-blk" */
	char where[24];   /* "00:01.0" or "mmio 0xfeb00e00" */
	const struct virtio_transport *t;
	int type;            /* VIRTIO_ID_* */
	bool modern;         /* == t->modern */
	uint64_t features;   /* negotiated */
	struct pci_dev *pci; /* NULL for virtio-mmio */

	/* Modern PCI: the structures the capabilities point at (§4.1.4). */
	volatile struct virtio_pci_common_cfg *common;
	volatile uint8_t *notify_base;
	uint32_t notify_len;  /* bytes of the notify area: every doorbell lies inside */
	uint32_t notify_mult; /* notify_off_multiplier: 0 or an even power of 2 */
	volatile uint8_t *isr_reg;
	volatile uint8_t *devcfg;
	uint32_t devcfg_len; /* every access is checked against it */

	/* Legacy PCI: the I/O port base of BAR0 (§4.1.4.8), its size, and where the device
	 * configuration starts in it (0x14, or 0x18 once MSI-X is enabled). */
	uint16_t io;
	uint32_t io_size;
	uint32_t legacy_cfg;

	/* virtio-mmio: the register block (§4.2.2). */
	volatile uint8_t *mmio;
	uint64_t mmio_phys;

	/* The wait loop's wake-up (virtio_irq_setup()): a vector (kernel/irq.c)
	 * or 0 when only the timer wakes the loop for this device. */
	int irq_vector;
	char wake[16];    /* for the boot log: "msix", "intx irq 11", "irq 5", "timer only" */
	uint8_t msix_cap; /* PCI: the MSI-X capability, when it is enabled */
};

/* The device type of a virtio PCI function, or 0 when it is not one. */
int virtio_pci_type(const struct pci_dev *pci);
/* Picks the PCI transport (modern when its capabilities check out), maps it
 * and resets the device. Returns 0, -ENODEV (no usable interface) or -EIO
 * (it does not reset); the device is then left alone. */
int virtio_pci_probe(struct virtio_dev *vd, struct pci_dev *pci);
/* A virtio-mmio register block at `base` (§4.2): 0 and vd filled in, or
 * -ENODEV when there is no device there (an empty slot) or it is unusable,
 * -EIO when it does not reset. */
int virtio_mmio_probe(struct virtio_dev *vd, uint64_t base);

/* Reset, ACKNOWLEDGE, DRIVER, feature negotiation, FEATURES_OK. Accepts the
 * offered subset of `wanted`; fails with -ENOTSUP when a `required` bit is
 * not offered and -EIO when the device does not reset or refuses FEATURES_OK. */
int virtio_start(struct virtio_dev *vd, uint64_t wanted, uint64_t required);
/* Sets up queue `index` with at most max_size descriptors (memory from the
 * page allocator). Returns 0, -ENOENT (no such queue), -ENOTSUP (a fixed
 * queue larger than VIRTQ_MAX_SIZE), -ENOMEM, -EIO (the transport refuses
 * the queue: its doorbell is outside the notify area). */
int virtio_queue_init(struct virtio_dev *vd, struct virtq *q, uint16_t index, uint16_t max_size);
void virtio_ready(struct virtio_dev *vd);
/* Gives up on the device: FAILED status and a log line. */
void virtio_fail(struct virtio_dev *vd, const char *why);
/* Writes status 0 and waits, bounded, for it to read back 0: true when the
 * device did reset, false when it must be given up. */
bool virtio_reset(struct virtio_dev *vd);
uint8_t virtio_status(struct virtio_dev *vd);
/* Copies `len` bytes of the device-specific configuration from `off`,
 * retrying until the device's config generation is stable (§2.5.1); zeros
 * for a range the device does not have. */
void virtio_config_read(struct virtio_dev *vd, uint32_t off, void *buf, uint32_t len);
void virtio_config_write32(struct virtio_dev *vd, uint32_t off, uint32_t v);
/* An 8-bit field (virtio-input's select and subsel): §4.1.3.1 and §4.2.2.2
 * want each field written with its own width. */
void virtio_config_write8(struct virtio_dev *vd, uint32_t off, uint8_t v);
/* Reads (and so clears) the interrupt status: bit 1 is a config change. */
uint8_t virtio_isr(struct virtio_dev *vd);
/* After the queues are set up, before virtio_ready(): a wake-up interrupt
 * for queues 0..nqueues-1 if the transport can give one (vd->irq_vector,
 * vd->wake say which); otherwise "timer only". vd must stay where it is. */
void virtio_irq_setup(struct virtio_dev *vd, uint16_t nqueues);
/* Device interrupts (wake-ups) taken so far. */
uint64_t virtio_irq_count(const struct virtio_dev *vd);

#endif
