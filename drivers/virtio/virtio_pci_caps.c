/*
 * virtio-pci capabilities: finding the modern register blocks (see virtio_pci_caps.h).
 * Implements: Virtual I/O Device (VIRTIO) Version 1.2, §4.1.4 Virtio Structure PCI
 *             Capabilities (§4.1.4.1 its driver requirements, §4.1.4.4 notification).
 * Try it:     make unit-test fuzz-test (test_virtio_pci, fuzz_virtio_caps)
 *
 * No register access here: configuration space comes through src->read32, so the same walk
 * runs in the kernel (kernel/pci.c's accessors) and on the host over a made-up device.
 */
#include "virtio_pci_caps.h"

#include <stddef.h>
#include <string.h>

#include "virtio.h"

#define CFG_SPACE   256  /* bytes of (conventional) PCI configuration space */
#define CAP_FIRST   0x40 /* capabilities live after the standard header */
#define MAX_CAPS    48   /* (256 - 64) / 4: more means the list loops */
#define CMD_STATUS  0x04 /* the dword of PCI command (low half) and status (high half) */
#define CAP_PTR     0x34
#define STATUS_CAPS 0x10 /* PCI status: the capability list is there */

static uint8_t cfg8(const struct virtio_pci_cfg_source *src, uint8_t off)
{
	return (uint8_t)(src->read32(src->ctx, off & 0xfc) >> (8 * (off & 3)));
}

static uint32_t cfg32(const struct virtio_pci_cfg_source *src, uint8_t off)
{
	return src->read32(src->ctx, off & 0xfc);
}

/* Whether a structure of at least `min` bytes lies inside its BAR's sized range. */
static bool region_ok(const struct virtio_pci_cfg_source *src, const struct virtio_pci_region *r, uint32_t min)
{
	/* 64-bit: offset and length are 32 bits each, so the sum cannot wrap. */
	return r->len >= min && (uint64_t)r->off + r->len <= src->bar_size[r->bar];
}

const char *virtio_pci_parse_caps(const struct virtio_pci_cfg_source *src, struct virtio_pci_layout *out)
{
	bool have[VIRTIO_PCI_CAP_DEVICE_CFG + 1] = {false};

	memset(out, 0, sizeof(*out));
	if (!((cfg32(src, CMD_STATUS) >> 16) & STATUS_CAPS))
		return "no capability list";

	uint8_t p = cfg8(src, CAP_PTR);
	for (int n = 0; n < MAX_CAPS; n++) {
		/* PCI 3.0 §6.7: the low two bits of a pointer are reserved; 0 ends the list and
		 * nothing below 0x40 is a capability (so a pointer there ends it too). */
		p &= 0xfc;
		if (p < CAP_FIRST)
			break;
		uint8_t id = cfg8(src, p), next = cfg8(src, p + 1);
		if (id != VIRTIO_PCI_CAP_ID_VNDR)
			goto next;
		out->any = true;
		/* The fields below are read only when the capability says it holds them and
		 * they lie inside configuration space: a capability at 0xf8 cannot. */
		uint8_t cap_len = cfg8(src, p + 2), type = cfg8(src, p + 3);
		if (cap_len < sizeof(struct virtio_pci_cap) || p + (unsigned)cap_len > CFG_SPACE)
			goto next;
		if (type < VIRTIO_PCI_CAP_COMMON_CFG || type > VIRTIO_PCI_CAP_DEVICE_CFG || have[type])
			goto next; /* §4.1.4: "SHOULD use the first instance of each ... type it can support" */
		struct virtio_pci_region r = {
		    .bar = cfg8(src, p + 4), .off = cfg32(src, p + 8), .len = cfg32(src, p + 12)};
		/* §4.1.4.1: "The driver MUST ignore any vendor-specific capability structure which
		 * has a reserved bar value." Ours also skips a BAR that is not a memory BAR
		 * with an address: nothing to reach the structure through. */
		if (r.bar > 5 || src->bar_size[r.bar] == 0)
			goto next;
		switch (type) {
		case VIRTIO_PCI_CAP_COMMON_CFG:
			if (!region_ok(src, &r, VIRTIO_PCI_COMMON_CFG_MIN))
				return "common configuration too short or outside its BAR";
			out->common = r;
			break;
		case VIRTIO_PCI_CAP_NOTIFY_CFG:
			if (cap_len < sizeof(struct virtio_pci_notify_cap))
				goto next; /* no multiplier in it: not a notify capability we can use */
			/* §4.1.4.4.1: "The device MUST either present notify_off_multiplier as an
			 * even power of 2, or present notify_off_multiplier as 0." With an even
			 * offset too, every doorbell is 16-bit aligned. */
			out->notify_mult = cfg32(src, p + 16);
			if (out->notify_mult & (out->notify_mult - 1) || out->notify_mult == 1 || r.off % 2)
				return "notify multiplier or offset not even";
			/* "The value cap.length presented by the device MUST be at least 2" */
			if (!region_ok(src, &r, 2))
				return "notify area too short or outside its BAR";
			out->notify = r;
			break;
		case VIRTIO_PCI_CAP_ISR_CFG:
			if (!region_ok(src, &r, 1))
				return "ISR status too short or outside its BAR";
			out->isr = r;
			break;
		case VIRTIO_PCI_CAP_DEVICE_CFG:
			if (!region_ok(src, &r, 0))
				return "device configuration outside its BAR";
			out->device = r;
			break;
		}
		have[type] = true;
	next:
		p = next;
	}
	if (!have[VIRTIO_PCI_CAP_COMMON_CFG])
		return "no usable common configuration capability";
	if (!have[VIRTIO_PCI_CAP_NOTIFY_CFG])
		return "no usable notify capability";
	if (!have[VIRTIO_PCI_CAP_ISR_CFG])
		return "no usable ISR capability";
	return NULL;
}

bool virtio_pci_notify_ok(const struct virtio_pci_layout *l, uint16_t queue_notify_off, uint32_t *doorbell)
{
	uint64_t at = (uint64_t)queue_notify_off * l->notify_mult;
	if (at + 2 > l->notify.len)
		return false;
	*doorbell = (uint32_t)at;
	return true;
}
