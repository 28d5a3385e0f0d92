/*
 * drivers/virtio/virtio_dev.h: one virtio device, whatever transport carries
 * it. A driver calls these and never touches the transport's registers, so
 * the same driver works over modern and legacy virtio-pci.
 *
 * Start-up, in the order of Virtual I/O Device (VIRTIO) Version 1.2, §3.1.1:
 *
 *	virtio_pci_probe(&vd, pci, "virtio-blk");      // find the transport, reset
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

/* Device types (§5): the modern PCI device ID is 0x1040 + type. */
#define VIRTIO_ID_NET     1
#define VIRTIO_ID_BLOCK   2
#define VIRTIO_ID_RNG     4
#define VIRTIO_ID_BALLOON 5

struct virtio_dev {
	const char *name; /* for log lines: "virtio-blk" */
	struct pci_dev *pci;
	bool modern;       /* virtio 1.0+ registers; else the legacy I/O BAR */
	uint64_t features; /* negotiated */

	/* Modern: the structures the capabilities point at (§4.1.4). */
	volatile struct virtio_pci_common_cfg *common;
	volatile uint8_t *notify_base;
	uint32_t notify_mult;
	volatile uint8_t *isr;
	volatile uint8_t *devcfg;
	uint32_t devcfg_len;

	/* Legacy: the I/O port base of BAR0 (§4.1.4.8). */
	uint16_t io;
};

/* The device type of a virtio PCI function, or 0 when it is not one. */
int virtio_pci_type(const struct pci_dev *pci);
/* Picks the transport (modern when offered), maps it and resets the device.
 * Returns 0 or a negative errno (the device is then left alone). */
int virtio_pci_probe(struct virtio_dev *vd, struct pci_dev *pci, const char *name);
/* Reset, ACKNOWLEDGE, DRIVER, feature negotiation, FEATURES_OK. Accepts the
 * offered subset of `wanted`; fails with -ENOTSUP when a `required` bit is
 * not offered and -EIO when the device refuses FEATURES_OK. */
int virtio_start(struct virtio_dev *vd, uint64_t wanted, uint64_t required);
/* Sets up queue `index` with at most max_size descriptors (memory from the
 * page allocator). Returns 0, -ENOENT (no such queue), -ENOTSUP (a legacy
 * queue larger than VIRTQ_MAX_SIZE), -ENOMEM. */
int virtio_queue_init(struct virtio_dev *vd, struct virtq *q, uint16_t index, uint16_t max_size);
void virtio_ready(struct virtio_dev *vd);
/* Gives up on the device: FAILED status and a log line. */
void virtio_fail(struct virtio_dev *vd, const char *why);
void virtio_reset(struct virtio_dev *vd);
uint8_t virtio_status(struct virtio_dev *vd);
/* Copies `len` bytes of the device-specific configuration from `off`,
 * retrying until the device's config generation is stable (§2.5.1). */
void virtio_config_read(struct virtio_dev *vd, uint32_t off, void *buf, uint32_t len);
void virtio_config_write32(struct virtio_dev *vd, uint32_t off, uint32_t v);
/* Reads (and so clears) the ISR status: bit 1 is a config change (§4.1.4.5). */
uint8_t virtio_isr(struct virtio_dev *vd);

#endif
