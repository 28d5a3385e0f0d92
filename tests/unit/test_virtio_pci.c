/*
 * test_virtio_pci: the virtio-pci transport (modern and legacy) and the device start-up of
 * virtio.c, against a PCI function played by the test: a configuration space, memory BARs
 * that are heap buffers of exactly the BAR's size (so ASan sees any access outside them), and
 * a legacy I/O BAR behind fake port I/O (tests/unit/fake_io.h) that counts every access
 * outside it. Honest devices (laid out like QEMU's) and hostile ones.
 * Implements: tests of Virtual I/O Device (VIRTIO) Version 1.2, §4.1 Virtio Over PCI Bus,
 *             §3.1.1 Device Initialization.
 * Try it:     make unit-test (build/tests/test_virtio_pci)
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kstubs.h"
#include "pci.h"
#include "virtio_dev.h"
#include "virtio_pci_caps.h"

/* ---- the simulated PCI function ----------------------------------------------------------- */

#define BAR4_SIZE 0x4000 /* QEMU's modern BAR: common, isr, device, notify, 4 KiB each */
#define IO_BASE   0xc000

static struct sim {
	uint8_t cfg[256];    /* PCI configuration space */
	uint8_t *bar[6];     /* memory BARs: heap buffers of exactly bar[i].size */
	unsigned stray_cfg;  /* configuration reads beyond 256 bytes */
	uint8_t io[256];     /* the legacy I/O BAR's registers */
	uint32_t io_size;    /* BAR0's size */
	bool status_stuck;   /* the device ignores writes of its status (never resets) */
	unsigned stray_port; /* port accesses outside the I/O BAR */
	unsigned port_writes;
} S;
static struct pci_dev P;

uint32_t pci_read32(const struct pci_dev *d, uint16_t off)
{
	(void)d;
	uint32_t v;
	if (off > 256 - 4) {
		S.stray_cfg++;
		return 0xffffffff;
	}
	memcpy(&v, &S.cfg[off & ~3], 4);
	return v;
}
uint16_t pci_read16(const struct pci_dev *d, uint16_t off)
{
	return (uint16_t)(pci_read32(d, off & ~3) >> (8 * (off & 2)));
}
uint8_t pci_read8(const struct pci_dev *d, uint16_t off)
{
	return (uint8_t)(pci_read32(d, off & ~3) >> (8 * (off & 3)));
}
void pci_write16(const struct pci_dev *d, uint16_t off, uint16_t v)
{
	(void)d;
	if (off <= 256 - 2)
		memcpy(&S.cfg[off], &v, 2);
}
void pci_write32(const struct pci_dev *d, uint16_t off, uint32_t v)
{
	(void)d;
	if (off <= 256 - 4)
		memcpy(&S.cfg[off], &v, 4);
}
void pci_probe_bars(struct pci_dev *d) { (void)d; }
void pci_enable(struct pci_dev *d, bool mem, bool io) { (void)d, (void)mem, (void)io; }

/* The same walk as kernel/pci.c's. */
uint8_t pci_find_cap(const struct pci_dev *d, uint8_t id, uint8_t start)
{
	if (!(pci_read16(d, PCI_STATUS) & PCI_STATUS_CAP_LIST))
		return 0;
	uint8_t p = start ? pci_read8(d, start + 1) : pci_read8(d, PCI_CAP_PTR);
	for (int n = 0; p >= 0x40 && n < 48; n++) {
		p &= 0xfc;
		if (pci_read8(d, p) == id)
			return p;
		p = pci_read8(d, p + 1);
	}
	return 0;
}

/* The same checks as kernel/pci.c's; the "physical address" is the heap buffer. */
volatile void *pci_map_bar(const struct pci_dev *d, int bar, uint64_t off, uint64_t len)
{
	if (bar < 0 || bar > 5)
		return NULL;
	const struct pci_bar *b = &d->bar[bar];
	if (b->io || !b->addr || off + len > b->size || off + len < off)
		return NULL;
	return (volatile uint8_t *)(uintptr_t)b->addr + off;
}

uint32_t fake_port_read(uint16_t port, int width)
{
	uint32_t v = 0;
	if (port < IO_BASE || (uint32_t)port + width > IO_BASE + S.io_size) {
		S.stray_port++;
		return 0xffffffff;
	}
	memcpy(&v, &S.io[port - IO_BASE], width);
	return v;
}

void fake_port_write(uint16_t port, int width, uint32_t v)
{
	S.port_writes++;
	if (port < IO_BASE || (uint32_t)port + width > IO_BASE + S.io_size) {
		S.stray_port++;
		return;
	}
	if (port - IO_BASE == VIRTIO_PCI_LEGACY_STATUS && S.status_stuck)
		return;
	if (port - IO_BASE == VIRTIO_PCI_LEGACY_QUEUE_SIZE)
		return; /* read-only */
	memcpy(&S.io[port - IO_BASE], &v, width);
}

static void sim_free(void)
{
	for (int i = 0; i < 6; i++)
		free(S.bar[i]);
	memset(&S, 0, sizeof(S));
	memset(&P, 0, sizeof(P));
	kstub_log[0] = '\0';
}

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static void sim_bar(int i, uint64_t size)
{
	S.bar[i] = calloc(1, size);
	P.bar[i] = (struct pci_bar){.addr = (uintptr_t)S.bar[i], .size = size};
}

/* A vendor capability at `at` (§4.1.4); for a notify capability (cap_len >= 20) the
 * multiplier follows. */
static void sim_cap(uint8_t at, uint8_t next, uint8_t type, uint8_t bar, uint32_t off, uint32_t len, uint8_t cap_len,
                    uint32_t mult)
{
	uint8_t c[20] = {VIRTIO_PCI_CAP_ID_VNDR, next, cap_len, type, bar};
	put32(c + 8, off);
	put32(c + 12, len);
	put32(c + 16, mult);
	/* What lies beyond config space is lost, as on a real device. */
	memcpy(&S.cfg[at], c, at + (unsigned)cap_len > 256 ? 256u - at : cap_len < 20 ? cap_len : 20u);
}

/* What QEMU's virtio-blk-pci (modern only, disable-legacy=on) shows: MSI-X first in the list,
 * then the PCI-config-access, notify, device, ISR and common capabilities, all in the
 * 64-bit memory BAR 4 (16 KiB), 4 KiB each; notify_off_multiplier 4, queue 0's offset 0. */
static void sim_modern(void)
{
	sim_free();
	put16(&S.cfg[PCI_VENDOR_ID], VIRTIO_PCI_VENDOR_ID);
	put16(&S.cfg[PCI_DEVICE_ID], 0x1042);
	put16(&S.cfg[PCI_STATUS], PCI_STATUS_CAP_LIST);
	S.cfg[PCI_CAP_PTR] = 0x98;
	S.cfg[0x98] = 0x11; /* MSI-X */
	S.cfg[0x99] = 0x84;
	sim_cap(0x84, 0x70, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, 0, 20, 0);
	sim_cap(0x70, 0x60, VIRTIO_PCI_CAP_NOTIFY_CFG, 4, 0x3000, 0x1000, 20, 4);
	sim_cap(0x60, 0x50, VIRTIO_PCI_CAP_DEVICE_CFG, 4, 0x2000, 0x1000, 16, 0);
	sim_cap(0x50, 0x40, VIRTIO_PCI_CAP_ISR_CFG, 4, 0x1000, 0x1000, 16, 0);
	sim_cap(0x40, 0x00, VIRTIO_PCI_CAP_COMMON_CFG, 4, 0x0000, 0x1000, 16, 0);
	sim_bar(1, 0x1000); /* MSI-X table */
	sim_bar(4, BAR4_SIZE);
	P.vendor = VIRTIO_PCI_VENDOR_ID;
	P.device = 0x1042;
	P.bar[4].is64 = true;

	/* The common configuration as plain memory: it echoes what is written, which is all
	 * the start-up needs. device_feature reads 1 through both selects: bit 0 and bit 32
	 * (VERSION_1). */
	volatile struct virtio_pci_common_cfg *c = (void *)S.bar[4];
	c->device_feature = 1;
	c->num_queues = 1;
	c->queue_size = 256;
	c->queue_notify_off = 0;
	put64(S.bar[4] + 0x2000, 0x123456789ull); /* virtio-blk capacity */
	memset(S.bar[4] + 0x3000, 0xee, 0x1000);  /* the notify area, to see the doorbell's bytes */
}

static volatile struct virtio_pci_common_cfg *sim_common(void) { return (void *)S.bar[4]; }

/* A transitional virtio-blk (0x1001) without modern capabilities (disable-modern=on): BAR0
 * is the legacy I/O BAR, config after the 20-byte header. */
static void sim_legacy(uint32_t io_size)
{
	sim_free();
	put16(&S.cfg[PCI_VENDOR_ID], VIRTIO_PCI_VENDOR_ID);
	put16(&S.cfg[PCI_DEVICE_ID], 0x1001);
	put16(&S.cfg[PCI_SUBSYSTEM_ID], VIRTIO_ID_BLOCK);
	P.vendor = VIRTIO_PCI_VENDOR_ID;
	P.device = 0x1001;
	P.subsys_id = VIRTIO_ID_BLOCK;
	P.bar[0] = (struct pci_bar){.addr = IO_BASE, .size = io_size, .io = true};
	S.io_size = io_size;
	put32(&S.io[VIRTIO_PCI_LEGACY_HOST_FEATURES], 0);
	put16(&S.io[VIRTIO_PCI_LEGACY_QUEUE_SIZE], 128);
	put16(&S.io[VIRTIO_PCI_LEGACY_QUEUE_NOTIFY], 0xeeee);
	for (uint32_t i = VIRTIO_PCI_LEGACY_CONFIG; i < io_size && i < sizeof(S.io); i++)
		S.io[i] = (uint8_t)(0x40 + i); /* recognisable config bytes */
}

/* Frees what virtio_queue_init() allocated (the ring pages). */
static void queue_free(struct virtq *q) { free((void *)q->desc); }

/* ---- the capability walk alone ---------------------------------------------------------- */

static uint32_t sim_read32(void *ctx, uint8_t off) { return pci_read32(ctx, off); }

static const char *sim_parse(struct virtio_pci_layout *l)
{
	struct virtio_pci_cfg_source src = {.read32 = sim_read32, .ctx = &P};
	for (int i = 0; i < 6; i++)
		src.bar_size[i] = P.bar[i].io ? 0 : P.bar[i].size;
	return virtio_pci_parse_caps(&src, l);
}

static void test_parse_qemu_layout(void)
{
	struct virtio_pci_layout l;
	uint32_t doorbell = 0;

	sim_modern();
	CHECK(sim_parse(&l) == NULL);
	CHECK_EQ(l.common.bar, 4);
	CHECK_EQ(l.common.off, 0);
	CHECK_EQ(l.common.len, 0x1000);
	CHECK_EQ(l.isr.off, 0x1000);
	CHECK_EQ(l.device.off, 0x2000);
	CHECK_EQ(l.device.len, 0x1000);
	CHECK_EQ(l.notify.off, 0x3000);
	CHECK_EQ(l.notify.len, 0x1000);
	CHECK_EQ(l.notify_mult, 4);
	CHECK(virtio_pci_notify_ok(&l, 0x3ff, &doorbell));
	CHECK_EQ(doorbell, 0xffc);
	CHECK(!virtio_pci_notify_ok(&l, 0x400, &doorbell));
	CHECK_EQ(doorbell, 0xffc); /* untouched when refused */

	/* No device configuration: still usable (it is optional). */
	S.cfg[0x71] = 0x50; /* the list skips the device capability */
	CHECK(sim_parse(&l) == NULL);
	CHECK_EQ(l.device.len, 0);

	/* Only an MSI-X capability (a legacy device under QEMU): refused, and nothing of
	 * virtio's was seen, so the transport does not log a refusal. */
	S.cfg[0x99] = 0;
	CHECK(sim_parse(&l) != NULL);
	CHECK(!l.any);
	/* No capability list at all. */
	S.cfg[PCI_STATUS] = 0;
	CHECK(sim_parse(&l) != NULL);
	CHECK(!l.any);
	CHECK_EQ(S.stray_cfg, 0);
	sim_free();
}

/* ---- modern: an honest device --------------------------------------------------------------- */

static void test_modern_qemu_like(void)
{
	struct virtio_dev vd;
	struct virtq q;
	uint64_t cap = 0;

	sim_modern();
	sim_common()->queue_notify_off = 3; /* doorbell at notify + 3 * 4 */
	CHECK_EQ(virtio_pci_probe(&vd, &P), 0);
	CHECK(vd.t && vd.t->modern);
	CHECK_EQ(virtio_start(&vd, 0, 0), 0);
	virtio_config_read(&vd, 0, &cap, 8);
	CHECK_EQ(cap, 0x123456789ull);
	CHECK_EQ(virtio_queue_init(&vd, &q, 0, 256), 0);
	CHECK_EQ(sim_common()->queue_enable, 1);
	CHECK_EQ(sim_common()->queue_size, 256);
	virtq_notify(&q);
	CHECK_EQ(S.bar[4][0x300c], 0); /* queue index 0, 16 bits, at off * mult */
	CHECK_EQ(S.bar[4][0x300d], 0);
	CHECK_EQ(S.bar[4][0x300b], 0xee);
	CHECK_EQ(S.bar[4][0x300e], 0xee);
	CHECK_EQ(S.stray_cfg, 0);
	queue_free(&q);
	sim_free();
}

/* ---- modern: the doorbell is the device's to choose --------------------------------------- */

static void test_modern_notify_offset_checked(void)
{
	static const struct {
		uint16_t off;
		uint32_t mult, len;
		int want;
	} cases[] = {
	    {0x3ff, 4, 0x1000, 0},           /* the last 2 bytes of the area: fine */
	    {0x400, 4, 0x1000, -EIO},        /* 2 bytes past the area (and the BAR) */
	    {0xffff, 0x10000, 0x1000, -EIO}, /* ~4 GiB past the mapping */
	    {2, 0x80000000u, 0x1000, -EIO},  /* 2^32: wraps to 0 in 32-bit arithmetic */
	    {0x8000, 0x20000, 0x1000, -EIO}, /* 2^32 again, another way */
	    {7, 0, 0x1000, 0},               /* multiplier 0: every queue at the start */
	    {0x3ff, 4, 0xffd, -EIO},         /* one byte short */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct virtio_dev vd;
		struct virtq q;
		sim_modern();
		sim_cap(0x70, 0x60, VIRTIO_PCI_CAP_NOTIFY_CFG, 4, 0x3000, cases[i].len, 20, cases[i].mult);
		sim_common()->queue_notify_off = cases[i].off;
		CHECK_EQ(virtio_pci_probe(&vd, &P), 0);
		CHECK_EQ(virtio_start(&vd, 0, 0), 0);
		int err = virtio_queue_init(&vd, &q, 0, 256);
		if (err != cases[i].want)
			fprintf(stderr, "case %zu: off %#x mult %#x len %#x\n", i, cases[i].off, cases[i].mult,
			        cases[i].len);
		CHECK_EQ(err, cases[i].want);
		if (err == 0) {
			virtq_notify(&q); /* inside the BAR buffer, or ASan says so */
			queue_free(&q);
		} else {
			CHECK_EQ(sim_common()->queue_enable, 0); /* the refused queue was never enabled */
		}
		sim_free();
	}
}

/* ---- modern: hostile capabilities ------------------------------------------------------------ */

/* Each case damages the honest layout; the modern interface must be refused (and, with no
 * legacy BAR, the whole device) without a configuration read beyond 256 bytes. */
static void test_modern_bad_caps(void)
{
	for (int i = 0;; i++) {
		sim_modern();
		switch (i) {
		case 0: /* common config shorter than its structure */
			sim_cap(0x40, 0, VIRTIO_PCI_CAP_COMMON_CFG, 4, 0, 0x30, 16, 0);
			break;
		case 1: /* common config running past the BAR's end */
			sim_cap(0x40, 0, VIRTIO_PCI_CAP_COMMON_CFG, 4, BAR4_SIZE - 0x20, 0x1000, 16, 0);
			break;
		case 2: /* offset + length wraps in 32 bits */
			sim_cap(0x40, 0, VIRTIO_PCI_CAP_COMMON_CFG, 4, 0xfffff000u, 0x2000, 16, 0);
			break;
		case 3: /* ISR of length 0 */
			sim_cap(0x50, 0x40, VIRTIO_PCI_CAP_ISR_CFG, 4, 0x1000, 0, 16, 0);
			break;
		case 4: /* notify capability too short to hold its multiplier */
			sim_cap(0x70, 0x60, VIRTIO_PCI_CAP_NOTIFY_CFG, 4, 0x3000, 0x1000, 16, 0);
			S.cfg[0x80] = 0x04; /* what the driver would read as the multiplier */
			break;
		case 5: /* notify area of 1 byte: no 16-bit doorbell fits */
			sim_cap(0x70, 0x60, VIRTIO_PCI_CAP_NOTIFY_CFG, 4, 0x3000, 1, 20, 4);
			break;
		case 6: /* notify multiplier neither 0 nor an even power of 2 (§4.1.4.4) */
			sim_cap(0x70, 0x60, VIRTIO_PCI_CAP_NOTIFY_CFG, 4, 0x3000, 0x1000, 20, 3);
			break;
		case 7: /* the only common config in a BAR that does not exist */
			sim_cap(0x40, 0, VIRTIO_PCI_CAP_COMMON_CFG, 2, 0, 0x1000, 16, 0);
			break;
		case 8: /* ... in an I/O BAR */
			sim_cap(0x40, 0, VIRTIO_PCI_CAP_COMMON_CFG, 0, 0, 0x1000, 16, 0);
			P.bar[0] = (struct pci_bar){.addr = 0, .size = 0x1000, .io = true};
			break;
		case 9: /* ... in a reserved BAR number */
			sim_cap(0x40, 0, VIRTIO_PCI_CAP_COMMON_CFG, 7, 0, 0x1000, 16, 0);
			break;
		case 10: /* the notify capability at the very end of config space, its multiplier
		          * (and more) beyond it */
			S.cfg[0x71] = 0;
			sim_cap(0x60, 0xf8, VIRTIO_PCI_CAP_DEVICE_CFG, 4, 0x2000, 0x1000, 16, 0);
			sim_cap(0x84, 0x60, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, 0, 20, 0);
			sim_cap(0xf8, 0x50, VIRTIO_PCI_CAP_NOTIFY_CFG, 4, 0x3000, 0x1000, 20, 4);
			break;
		case 11: /* device config past the BAR's end */
			sim_cap(0x60, 0x50, VIRTIO_PCI_CAP_DEVICE_CFG, 4, 0x3800, 0x1000, 16, 0);
			break;
		default:
			sim_free();
			return;
		}
		struct virtio_dev vd;
		int err = virtio_pci_probe(&vd, &P);
		if (err == 0)
			fprintf(stderr, "bad caps case %d accepted\n", i);
		CHECK_EQ(err, -ENODEV);
		CHECK_EQ(S.stray_cfg, 0);
		CHECK(strstr(kstub_log, "modern interface refused") != NULL);
	}
}

/* §4.1.4: the first instance of each type that the driver can use; instances in a reserved
 * or absent BAR are skipped, and a capability list that loops ends. */
static void test_modern_caps_skip_and_loop(void)
{
	struct virtio_dev vd;
	struct virtq q;

	sim_modern();
	/* A first common config in BAR 7 (reserved), then the real one. */
	sim_cap(0x40, 0xc0, VIRTIO_PCI_CAP_COMMON_CFG, 4, 0, 0x1000, 16, 0);
	sim_cap(0x84, 0xb0, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, 0, 20, 0);
	sim_cap(0xb0, 0x70, VIRTIO_PCI_CAP_COMMON_CFG, 7, 0, 0x1000, 16, 0);
	/* The list loops back on itself at the end. */
	sim_cap(0xc0, 0xc0, VIRTIO_PCI_CAP_VENDOR_CFG, 0, 0, 0, 16, 0);
	CHECK_EQ(virtio_pci_probe(&vd, &P), 0);
	CHECK(vd.t && vd.t->modern);
	CHECK_EQ(virtio_start(&vd, 0, 0), 0);
	CHECK_EQ(virtio_queue_init(&vd, &q, 0, 256), 0);
	CHECK_EQ(sim_common()->queue_enable, 1);
	queue_free(&q);
	sim_free();
}

/* The device config length is honoured on every access, in 64-bit arithmetic. */
static void test_modern_devcfg_bounds(void)
{
	struct virtio_dev vd;
	uint8_t buf[16];

	sim_modern();
	sim_cap(0x60, 0x50, VIRTIO_PCI_CAP_DEVICE_CFG, 4, 0x2ff0, 0x10, 16, 0); /* 16 bytes */
	memset(S.bar[4] + 0x2ff0, 0x5a, 0x10);
	CHECK_EQ(virtio_pci_probe(&vd, &P), 0);
	memset(buf, 0xcc, sizeof(buf));
	virtio_config_read(&vd, 8, buf, 8);
	CHECK_EQ(buf[0], 0x5a);
	CHECK_EQ(buf[7], 0x5a);
	virtio_config_read(&vd, 12, buf, 8); /* runs past the end: zeros */
	CHECK_EQ(buf[0], 0);
	CHECK_EQ(buf[7], 0);
	virtio_config_read(&vd, 0xfffffffcu, buf, 8); /* wraps in 32 bits */
	CHECK_EQ(buf[0], 0);
	/* Writes: past the end, and an offset that wraps to a small sum in 32 bits. */
	virtio_config_write32(&vd, 16, 0x11111111);
	virtio_config_write32(&vd, 0xfffffffeu, 0x22222222);
	virtio_config_write32(&vd, 0xfffffffcu, 0x33333333);
	for (int i = 0; i < 0x10; i++)
		CHECK_EQ(S.bar[4][0x2ff0 + i], 0x5a);
	CHECK_EQ(S.bar[4][0x3000], 0xee);           /* the next area (notify) is untouched */
	virtio_config_write32(&vd, 12, 0x01020304); /* the last word: allowed */
	CHECK_EQ(S.bar[4][0x2ffc], 0x04);
	sim_free();
}

/* ---- legacy ---------------------------------------------------------------------------------- */

static void test_legacy_good(void)
{
	struct virtio_dev vd;
	struct virtq q;
	uint32_t v = 0;

	sim_legacy(0x40);
	CHECK_EQ(virtio_pci_probe(&vd, &P), 0);
	CHECK(vd.t && !vd.t->modern);
	CHECK_EQ(virtio_start(&vd, 0, 0), 0);
	virtio_config_read(&vd, 4, &v, 4);
	CHECK_EQ(v, 0x5b5a5958); /* bytes 0x40 + (0x14 + 4) .. */
	CHECK_EQ(virtio_queue_init(&vd, &q, 0, 256), 0);
	CHECK_EQ(q.size, 128);
	CHECK(S.io[VIRTIO_PCI_LEGACY_QUEUE_PFN] != 0 || S.io[VIRTIO_PCI_LEGACY_QUEUE_PFN + 1] != 0);
	virtq_notify(&q);
	CHECK_EQ(S.io[VIRTIO_PCI_LEGACY_QUEUE_NOTIFY], 0);
	CHECK_EQ(S.stray_port, 0);
	queue_free(&q);
	sim_free();
}

/* Config accesses are bounded by BAR0's size, not by 256 bytes. */
static void test_legacy_config_bounded_by_bar(void)
{
	struct virtio_dev vd;
	uint8_t buf[8];

	sim_legacy(0x20); /* 12 bytes of config after the 20-byte header */
	CHECK_EQ(virtio_pci_probe(&vd, &P), 0);
	memset(buf, 0xcc, sizeof(buf));
	virtio_config_read(&vd, 4, buf, 8); /* bytes 4..11: inside */
	CHECK_EQ(buf[0], 0x40 + 0x18);
	CHECK_EQ(buf[7], 0x40 + 0x1f);
	memset(buf, 0xcc, sizeof(buf));
	virtio_config_read(&vd, 8, buf, 8); /* bytes 8..15: past the BAR */
	CHECK_EQ(buf[0], 0);
	CHECK_EQ(buf[7], 0);
	CHECK_EQ(S.stray_port, 0);
	virtio_config_write32(&vd, 12, 0xdeadbeef); /* right after the BAR */
	virtio_config_write32(&vd, 0x1000, 0xdeadbeef);
	virtio_config_write32(&vd, 0xfffffffeu, 0xdeadbeef);
	CHECK_EQ(S.stray_port, 0);
	virtio_config_write32(&vd, 8, 0x01020304); /* the last word: allowed */
	CHECK_EQ(S.io[0x1c], 0x04);
	CHECK_EQ(S.stray_port, 0);
	sim_free();
}

/* An I/O BAR too small for the legacy header, or running past port 0xffff, is refused. */
static void test_legacy_bar_too_small(void)
{
	struct virtio_dev vd;

	sim_legacy(0x10);
	CHECK_EQ(virtio_pci_probe(&vd, &P), -ENODEV);
	CHECK_EQ(S.stray_port, 0);
	sim_legacy(0x40);
	P.bar[0].addr = 0xffe0;
	CHECK_EQ(virtio_pci_probe(&vd, &P), -ENODEV);
	sim_free();
}

/* ---- virtio-mmio: the same config bounds ------------------------------------------------ */

/* A virtio-mmio v2 register block (§4.2.2) in a heap buffer of exactly its 0x200 bytes. */
static void test_mmio_config_bounds(void)
{
	uint8_t *regs = calloc(1, 0x200);
	struct virtio_dev vd;
	uint32_t v = 0;

	put32(regs + 0x000, 0x74726976); /* "virt" */
	put32(regs + 0x004, 2);
	put32(regs + 0x008, VIRTIO_ID_BLOCK);
	put32(regs + 0x100 + 0xfc, 0xabcdef01); /* the last config word */
	CHECK_EQ(virtio_mmio_probe(&vd, (uintptr_t)regs), 0);
	virtio_config_read(&vd, 0xfc, &v, 4);
	CHECK_EQ(v, 0xabcdef01);
	v = 1;
	virtio_config_read(&vd, 0xfd, &v, 4); /* past the block: zeros */
	CHECK_EQ(v, 0);
	virtio_config_read(&vd, 0xfffffffcu, &v, 4); /* wraps in 32 bits */
	CHECK_EQ(v, 0);
	/* Writes past the block, one of them wrapping to a small sum in 32 bits: nothing
	 * written (ASan would see a write outside the buffer). */
	virtio_config_write32(&vd, 0x100, 0x11111111);
	virtio_config_write32(&vd, 0xfffffffeu, 0x22222222);
	virtio_config_write32(&vd, 0xfffffffcu, 0x33333333);
	CHECK_EQ(regs[0x100], 0);
	virtio_config_write32(&vd, 0xfc, 0x01020304);
	CHECK_EQ(regs[0x1fc], 0x04);
	free(regs);
}

/* ---- reset: a device that never gets to status 0 is given up ---------------------------- */

static void test_legacy_reset_stuck(void)
{
	struct virtio_dev vd;

	sim_legacy(0x40);
	S.io[VIRTIO_PCI_LEGACY_STATUS] = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK;
	S.status_stuck = true;
	CHECK_EQ(virtio_pci_probe(&vd, &P), -EIO);
	CHECK(strstr(kstub_log, "reset") != NULL);
	sim_free();
}

/* A transport played through struct virtio_transport itself: status never reads 0. */
static struct fake {
	uint8_t status_reads_as;
	uint8_t writes[16];
	unsigned nwrites;
	unsigned feature_calls;
} F;

static uint8_t fake_get_status(struct virtio_dev *vd) { return (void)vd, F.status_reads_as; }
static void fake_set_status(struct virtio_dev *vd, uint8_t s)
{
	(void)vd;
	if (F.nwrites < sizeof(F.writes))
		F.writes[F.nwrites] = s;
	F.nwrites++;
}
static uint64_t fake_get_features(struct virtio_dev *vd) { return (void)vd, F.feature_calls++, ~0ull; }
static void fake_set_features(struct virtio_dev *vd, uint64_t f) { (void)vd, (void)f, F.feature_calls++; }

static void test_start_reset_stuck(void)
{
	static const struct virtio_transport t = {
	    .name = "fake",
	    .modern = true,
	    .get_status = fake_get_status,
	    .set_status = fake_set_status,
	    .get_features = fake_get_features,
	    .set_features = fake_set_features,
	};
	struct virtio_dev vd = {.name = "virtio-test", .t = &t, .modern = true};

	memset(&F, 0, sizeof(F));
	F.status_reads_as = VIRTIO_STATUS_DRIVER_OK;
	kstub_log[0] = '\0';
	CHECK_EQ(virtio_start(&vd, 0, 0), -EIO);
	CHECK(F.nwrites >= 1);
	CHECK_EQ(F.writes[0], 0); /* the reset */
	/* Nothing after it but FAILED: no ACKNOWLEDGE, no DRIVER, no feature negotiation. */
	for (unsigned i = 1; i < F.nwrites && i < sizeof(F.writes); i++)
		CHECK(F.writes[i] & VIRTIO_STATUS_FAILED);
	CHECK_EQ(F.feature_calls, 0);
	CHECK(strstr(kstub_log, "virtio-test") != NULL);

	/* The same device, resetting properly, gets through. */
	memset(&F, 0, sizeof(F));
	F.status_reads_as = 0;
	CHECK_EQ(virtio_start(&vd, 0, 0), -EIO); /* FEATURES_OK does not stick: status reads 0 */
	CHECK_EQ(F.writes[1], VIRTIO_STATUS_ACKNOWLEDGE);
	CHECK(F.feature_calls > 0);
	kstub_log[0] = '\0';
}

int main(void)
{
	RUN_TEST(test_parse_qemu_layout);
	RUN_TEST(test_modern_qemu_like);
	RUN_TEST(test_modern_notify_offset_checked);
	RUN_TEST(test_modern_bad_caps);
	RUN_TEST(test_modern_caps_skip_and_loop);
	RUN_TEST(test_modern_devcfg_bounds);
	RUN_TEST(test_legacy_good);
	RUN_TEST(test_legacy_config_bounded_by_bar);
	RUN_TEST(test_legacy_bar_too_small);
	RUN_TEST(test_legacy_reset_stuck);
	RUN_TEST(test_mmio_config_bounds);
	RUN_TEST(test_start_reset_stuck);
	return check_report();
}
