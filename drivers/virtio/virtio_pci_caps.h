/*
 * drivers/virtio/virtio_pci_caps.h: the modern virtio-pci capability walk, apart from any
 * register access, so that the host can test it (tests/unit/test_virtio_pci.c) and fuzz it
 * (tests/fuzz/fuzz_virtio_caps.c) over a configuration space it makes up.
 * Implements: Virtual I/O Device (VIRTIO) Version 1.2, §4.1.4 Virtio Structure PCI Capabilities.
 *
 * Everything here comes from the device: the capability list, each structure's BAR, offset
 * and length, the notify multiplier. The walk reads configuration space only inside its 256
 * bytes, ends on any list (loops included), and returns regions that lie inside their BAR's
 * sized range, or refuses the device with the reason.
 */
#ifndef RINGLET_VIRTIO_PCI_CAPS_H
#define RINGLET_VIRTIO_PCI_CAPS_H

#include <stdbool.h>
#include <stdint.h>

/* What the walk sees of a PCI function. */
struct virtio_pci_cfg_source {
	/* A dword of configuration space; `off` is a multiple of 4 below 256. */
	uint32_t (*read32)(void *ctx, uint8_t off);
	void *ctx;
	/* Each BAR's size in bytes when it is a memory BAR that is there (assigned); 0 for an
	 * I/O BAR, an absent one, or the upper half of a 64-bit BAR. */
	uint64_t bar_size[6];
};

/* One structure: [off, off + len) of BAR `bar`, checked to lie inside the BAR. */
struct virtio_pci_region {
	uint8_t bar;
	uint32_t off;
	uint32_t len; /* 0: not there (the device configuration is optional) */
};

struct virtio_pci_layout {
	struct virtio_pci_region common; /* at least the virtio 1.0 struct virtio_pci_common_cfg */
	struct virtio_pci_region notify; /* at least 2 bytes: one 16-bit doorbell */
	struct virtio_pci_region isr;    /* at least 1 byte */
	struct virtio_pci_region device; /* optional */
	uint32_t notify_mult;            /* notify_off_multiplier: 0 or an even power of 2 */
	bool any;                        /* a virtio structure capability was seen at all (set
	                                  * even on refusal: a legacy-only device has none) */
};

/* The common configuration a driver needs: virtio 1.0's structure, up to queue_device
 * (queue_notify_data and queue_reset came later and are not used here). */
#define VIRTIO_PCI_COMMON_CFG_MIN 0x38

/* Walks the vendor capabilities and fills *out. Returns NULL, or why the modern interface
 * cannot be used (a short English phrase for the log). */
const char *virtio_pci_parse_caps(const struct virtio_pci_cfg_source *src, struct virtio_pci_layout *out);

/* Whether a queue's 16-bit doorbell at queue_notify_off * notify_mult lies inside the notify
 * area (then *doorbell is its offset there). §4.1.4.4.1: "For all queues, the value
 * cap.length presented by the device MUST satisfy: cap.length >= queue_notify_off *
 * notify_off_multiplier + 2"; checked in 64-bit arithmetic, as Linux does. */
bool virtio_pci_notify_ok(const struct virtio_pci_layout *l, uint16_t queue_notify_off, uint32_t *doorbell);

#endif
