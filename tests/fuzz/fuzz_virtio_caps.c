/*
 * fuzz_virtio_caps: libFuzzer target for drivers/virtio/virtio_pci_caps.c, the modern
 * virtio-pci capability walk (the capability list and every number in it are the device's).
 * Implements: tests of Virtual I/O Device (VIRTIO) Version 1.2, §4.1.4.
 *
 *	make fuzz FUZZ=virtio_caps FUZZ_SECONDS=300
 *
 * Input: 256 bytes of PCI configuration space (shorter inputs are padded with zeros), then
 * optionally six little-endian 64-bit BAR sizes (else QEMU's: a 4 KiB BAR 1 and a 16 KiB
 * BAR 4), then 16-bit queue_notify_off values to try. The walk must read only aligned dwords
 * inside config space, a bounded number of them, and whatever it accepts must lie inside the
 * BARs and obey the spec's rules; a doorbell it accepts must fit in the notify area.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtio.h"
#include "virtio_pci_caps.h"

struct space {
	uint8_t cfg[256];
	unsigned reads;
};

static uint32_t read32(void *ctx, uint8_t off)
{
	struct space *s = ctx;
	uint32_t v;
	if (off % 4 != 0)
		abort(); /* the interface promises aligned dwords */
	s->reads++;
	memcpy(&v, &s->cfg[off], 4);
	return v;
}

static void check_region(const struct virtio_pci_cfg_source *src, const struct virtio_pci_region *r, uint32_t min)
{
	if (r->bar > 5 || src->bar_size[r->bar] == 0 || r->len < min ||
	    (uint64_t)r->off + r->len > src->bar_size[r->bar])
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct space s = {{0}, 0};
	struct virtio_pci_cfg_source src = {.read32 = read32, .ctx = &s, .bar_size = {0, 0x1000, 0, 0, 0x4000, 0}};
	struct virtio_pci_layout l;

	memcpy(s.cfg, data, size < 256 ? size : 256);
	if (size >= 256 + 48)
		memcpy(src.bar_size, data + 256, 48);
	const char *why = virtio_pci_parse_caps(&src, &l);
	/* 48 capabilities at most, each read in a handful of dwords, plus the header. */
	if (s.reads > 2 + 48 * 8)
		abort();
	if (why)
		return 0;
	check_region(&src, &l.common, VIRTIO_PCI_COMMON_CFG_MIN);
	check_region(&src, &l.notify, 2);
	check_region(&src, &l.isr, 1);
	if (l.device.len)
		check_region(&src, &l.device, 1);
	if (l.notify_mult == 1 || (l.notify_mult & (l.notify_mult - 1)) || l.notify.off % 2)
		abort();

	uint16_t offs[64] = {0, 1, 0xffff, 0x8000};
	size_t n = 4;
	for (size_t i = 256 + 48; i + 1 < size && n < 64; i += 2)
		offs[n++] = (uint16_t)(data[i] | data[i + 1] << 8);
	for (size_t i = 0; i < n; i++) {
		uint32_t doorbell = 0xffffffff;
		if (virtio_pci_notify_ok(&l, offs[i], &doorbell)) {
			if ((uint64_t)doorbell + 2 > l.notify.len || doorbell % 2 ||
			    doorbell != (uint64_t)offs[i] * l.notify_mult)
				abort();
		}
	}
	return 0;
}
