/*
 * virtio: the device start-up every driver follows, over any transport.
 * Implements: Virtual I/O Device (VIRTIO) Version 1.2, §3.1.1 Driver
 *             Requirements: Device Initialization, §2.5 configuration space.
 *
 * The transports (virtio_pci.c, virtio_mmio.c) only move values in and out
 * of registers; the order of the steps, feature negotiation and queue sizing
 * live here once.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "../../kernel/io.h"
#include "../../kernel/irq.h"
#include "../../kernel/kernel.h"
#include "virtio_dev.h"

uint8_t virtio_status(struct virtio_dev *vd) { return vd->t->get_status(vd); }

bool virtio_reset(struct virtio_dev *vd)
{
	vd->t->set_status(vd, 0);
	/* §4.1.4.3.2 (and §4.2.2.1 for MMIO): "After writing 0 to
	 * device_status, the driver MUST wait for a read of device_status to
	 * return 0 before reinitializing the device." Bounded: a device that
	 * never resets is given up on (the caller's to do). */
	for (int i = 0; i < 1000000; i++) {
		if (virtio_status(vd) == 0)
			return true;
		cpu_relax();
	}
	return false;
}

void virtio_fail(struct virtio_dev *vd, const char *why)
{
	vd->t->set_status(vd, virtio_status(vd) | VIRTIO_STATUS_FAILED);
	klog("%s %s: %s", vd->name ? vd->name : "virtio", vd->where, why);
}

int virtio_start(struct virtio_dev *vd, uint64_t wanted, uint64_t required)
{
	/* 1. Reset the device (also one the firmware used to boot from), and
	 *    drive it no further if it does not: it may still be using memory
	 *    from before, and nothing it says can be trusted. */
	if (!virtio_reset(vd)) {
		virtio_fail(vd, "did not reset (status never read 0): given up");
		return -EIO;
	}
	/* 2. ACKNOWLEDGE: we have noticed the device. */
	vd->t->set_status(vd, VIRTIO_STATUS_ACKNOWLEDGE);
	/* 3. DRIVER: we know how to drive it. */
	vd->t->set_status(vd, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	/* 4. Read the offered features; write the subset we understand. A
	 *    modern device must also get VIRTIO_F_VERSION_1 (§6.1). */
	uint64_t offered = vd->t->get_features(vd);
	if (vd->t->modern) {
		wanted |= 1ull << VIRTIO_F_VERSION_1;
		required |= 1ull << VIRTIO_F_VERSION_1;
	}
	if ((offered & required) != required) {
		virtio_fail(vd, "does not offer a feature this driver requires");
		return -ENOTSUP;
	}
	vd->features = offered & wanted;
	vd->t->set_features(vd, vd->features);
	if (vd->t->modern) {
		/* 5. FEATURES_OK; 6. re-read it: "If it is not set, the device
		 *    does not support our subset of features". Legacy devices
		 *    have no such step. */
		vd->t->set_status(vd, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
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
	vd->t->set_status(vd, virtio_status(vd) | VIRTIO_STATUS_DRIVER_OK);
}

int virtio_queue_init(struct virtio_dev *vd, struct virtq *q, uint16_t index, uint16_t max_size)
{
	uint16_t size = vd->t->queue_max(vd, index);
	if (size == 0)
		return -ENOENT;
	if (max_size > VIRTQ_MAX_SIZE)
		max_size = VIRTQ_MAX_SIZE;
	if (vd->t->fixed_queues) {
		if (size > VIRTQ_MAX_SIZE || (size & (size - 1)))
			return -ENOTSUP; /* a legacy PCI queue's size cannot be changed */
	} else if (size > max_size || (size & (size - 1))) {
		/* The driver picks a smaller size; split rings want a power of two. */
		size = (uint16_t)(1u << (31 - __builtin_clz(size > max_size ? max_size : size)));
	}

	/* The doorbell first: the transport may refuse the queue. */
	void (*notify)(struct virtq *, void *);
	void *ctx;
	if (vd->t->queue_notify(vd, index, &notify, &ctx) != 0)
		return -EIO;
	size_t pages = ALIGN_UP(virtq_ring_bytes(size), PAGE_SIZE) / PAGE_SIZE;
	void *ring = page_alloc(pages);
	if (!ring)
		return -ENOMEM;
	int err = virtq_init(q, index, size, ring, virtio_has_feature(vd->features, VIRTIO_F_EVENT_IDX), notify, ctx);
	if (err) {
		page_free(ring, pages);
		return err;
	}
	vd->t->queue_enable(vd, q);
	return 0;
}

void virtio_config_read(struct virtio_dev *vd, uint32_t off, void *buf, uint32_t len)
{
	/* A device that keeps changing its config is read a bounded number
	 * of times: the last copy is used rather than spinning forever. */
	for (int tries = 0; tries < 64; tries++) {
		int gen = vd->t->config_generation(vd);
		if (!vd->t->config_copy(vd, off, buf, len)) {
			memset(buf, 0, len);
			return;
		}
		if (gen == vd->t->config_generation(vd))
			return;
	}
}

void virtio_config_write32(struct virtio_dev *vd, uint32_t off, uint32_t v) { vd->t->config_write32(vd, off, v); }
void virtio_config_write8(struct virtio_dev *vd, uint32_t off, uint8_t v) { vd->t->config_write8(vd, off, v); }

uint8_t virtio_isr(struct virtio_dev *vd) { return vd->t->isr(vd); }

void virtio_irq_setup(struct virtio_dev *vd, uint16_t nqueues)
{
	vd->irq_vector = 0;
	if (!vd->t->setup_irq || vd->t->setup_irq(vd, nqueues) != 0) {
		vd->irq_vector = 0;
		ksnprintf(vd->wake, sizeof(vd->wake), "timer only");
	}
	kdebug("%s %s: wake-up %s, vector 0x%x", vd->name, vd->where, vd->wake, vd->irq_vector);
}

uint64_t virtio_irq_count(const struct virtio_dev *vd) { return vd->irq_vector ? irq_count(vd->irq_vector) : 0; }
