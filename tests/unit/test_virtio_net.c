/*
 * test_virtio_net: the virtio-net driver against a device played by the test, honest and hostile.
 * Implements: tests of Virtual I/O Device (VIRTIO) Version 1.2, §5.1 Network Device.
 * Try it:     make unit-test (or build/tests/test_virtio_net after `make build/tests/test_virtio_net`)
 *
 * The driver runs unchanged over drivers/virtio/virtio.c and virtq.c; the transport underneath
 * is a fake one whose "device" reads the rings through the addresses the driver programmed,
 * writes frames into the receive buffers it finds there and used entries by hand: right ones,
 * and wrong ids, lengths and num_buffers that must stop the NIC without a buffer leaking or
 * going back twice. The glue's side (rx_alloc, rx_frame, rx_free, tx_done) is played too, and
 * keeps account of every buffer.
 *
 * The driver file is included (not linked) so that each test can start from no NICs.
 * tests/fuzz/fuzz_virtio_net.c includes this file in turn (without main) for its device.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../drivers/virtio_net.c"
#include "check.h"
#include "klog_stub.h"

#define VIRTIO_NET_F_GUEST_TSO4 7 /* offered by the fake device; the driver must not take it */

/* ---- what the kernel would provide ---------------------------------------------------------- */

static uint64_t now_ns;

uint64_t time_ns(void) { return now_ns; }
uint64_t irq_count(int vector)
{
	(void)vector;
	return 0;
}

/* Pages the driver took (rings, transmit headers); a NIC lives for ever, so the test frees them
 * when it starts the next one. */
static void *pages[16];
static unsigned npages_out;

void *page_alloc(size_t npages)
{
	void *p = aligned_alloc(4096, npages * 4096);
	if (p)
		memset(p, 0, npages * 4096);
	if (p && npages_out < 16)
		pages[npages_out++] = p;
	return p;
}

void page_free(void *p, size_t npages)
{
	(void)npages;
	for (unsigned i = 0; i < npages_out; i++)
		if (pages[i] == p)
			pages[i] = NULL;
	free(p);
}

static void pages_release(void)
{
	for (unsigned i = 0; i < npages_out; i++)
		free(pages[i]);
	npages_out = 0;
}

/* ---- the fake device and its transport ------------------------------------------------------- */

#define QSIZE 8

static struct fake {
	uint8_t status;
	uint64_t offered;
	uint64_t features;
	bool modern;
	uint8_t config[16];
	struct virtq *q[2];
	uint16_t last_avail[2];
	unsigned resets;
	unsigned notifies[2];
} dev;

static uint8_t t_get_status(struct virtio_dev *vd)
{
	(void)vd;
	return dev.status;
}
static void t_set_status(struct virtio_dev *vd, uint8_t s)
{
	(void)vd;
	if (s == 0) {
		dev.resets++;
		dev.q[0] = dev.q[1] = NULL;
	}
	dev.status = s;
}
static uint64_t t_get_features(struct virtio_dev *vd)
{
	(void)vd;
	return dev.offered;
}
static void t_set_features(struct virtio_dev *vd, uint64_t f)
{
	(void)vd;
	dev.features = f;
}
static uint16_t t_queue_max(struct virtio_dev *vd, uint16_t index)
{
	(void)vd;
	return index < 2 ? QSIZE : 0;
}
static void t_notify(struct virtq *q, void *ctx)
{
	(void)ctx;
	dev.notifies[q->index]++;
}
static int t_queue_notify(struct virtio_dev *vd, uint16_t index, void (**fn)(struct virtq *, void *), void **ctx)
{
	(void)vd;
	(void)index;
	*fn = t_notify;
	*ctx = NULL;
	return 0;
}
static void t_queue_enable(struct virtio_dev *vd, struct virtq *q)
{
	(void)vd;
	dev.q[q->index] = q;
	dev.last_avail[q->index] = 0;
}
static bool t_config_copy(struct virtio_dev *vd, uint32_t off, uint8_t *out, uint32_t len)
{
	(void)vd;
	if ((uint64_t)off + len > sizeof(dev.config))
		return false;
	memcpy(out, dev.config + off, len);
	return true;
}
static int t_config_generation(struct virtio_dev *vd)
{
	(void)vd;
	return 0;
}

static const struct virtio_transport modern_t = {
    .name = "fake",
    .modern = true,
    .get_status = t_get_status,
    .set_status = t_set_status,
    .get_features = t_get_features,
    .set_features = t_set_features,
    .queue_max = t_queue_max,
    .queue_notify = t_queue_notify,
    .queue_enable = t_queue_enable,
    .config_copy = t_config_copy,
    .config_generation = t_config_generation,
};
static const struct virtio_transport legacy_t = {
    .name = "fake-legacy",
    .modern = false,
    .fixed_queues = true,
    .get_status = t_get_status,
    .set_status = t_set_status,
    .get_features = t_get_features,
    .set_features = t_set_features,
    .queue_max = t_queue_max,
    .queue_notify = t_queue_notify,
    .queue_enable = t_queue_enable,
    .config_copy = t_config_copy,
    .config_generation = t_config_generation,
};

/* One chain as the device finds it. */
struct chain {
	uint16_t head;
	unsigned n;
	uint8_t *addr[VIRTQ_MAX_SIZE];
	uint32_t len[VIRTQ_MAX_SIZE];
	uint16_t flags[VIRTQ_MAX_SIZE];
};

static bool dev_pop(int qi, struct chain *c)
{
	struct virtq *q = dev.q[qi];
	volatile struct virtq_avail *avail = (void *)(uintptr_t)virtq_avail_addr(q);
	volatile struct virtq_desc *desc = (void *)(uintptr_t)virtq_desc_addr(q);
	if (avail->idx == dev.last_avail[qi])
		return false;
	memset(c, 0, sizeof(*c));
	c->head = avail->ring[dev.last_avail[qi]++ % q->size];
	for (uint16_t i = c->head;; i = desc[i].next) {
		c->addr[c->n] = (uint8_t *)(uintptr_t)desc[i].addr;
		c->len[c->n] = desc[i].len;
		c->flags[c->n] = desc[i].flags;
		c->n++;
		if (!(desc[i].flags & VIRTQ_DESC_F_NEXT) || c->n == q->size)
			break;
	}
	return true;
}

static void dev_push(int qi, uint32_t id, uint32_t len)
{
	struct virtq *q = dev.q[qi];
	volatile struct virtq_used *used = (void *)(uintptr_t)virtq_used_addr(q);
	used->ring[used->idx % q->size].id = id;
	used->ring[used->idx % q->size].len = len;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	used->idx++;
}

/* Puts hdr + frame into the next receive buffer; returns that chain's head. */
static uint16_t dev_receive(const struct virtio_net_hdr *hdr, uint32_t hdr_len, const uint8_t *frame, uint32_t len,
                            bool push)
{
	struct chain c;
	CHECK(dev_pop(0, &c));
	uint8_t *p = c.addr[0];
	CHECK(c.flags[0] & VIRTQ_DESC_F_WRITE);
	memcpy(p, hdr, hdr_len);
	uint32_t room0 = c.len[0] - hdr_len;
	if (c.n == 2) { /* header alone in the first descriptor */
		p = c.addr[1];
		room0 = c.len[1];
	} else
		p += hdr_len;
	CHECK(len <= room0);
	memcpy(p, frame, len);
	if (push)
		dev_push(0, c.head, hdr_len + len);
	return c.head;
}

/* ---- the glue's side ------------------------------------------------------------------------------ */

#define MAX_BUFS 256
static void *owned[MAX_BUFS]; /* buffers the driver holds */
static unsigned allocs, frees, double_frees;
static struct {
	unsigned n;
	struct virtio_net_piece p[VIRTIO_NET_MAX_PIECES];
	uint8_t bytes[70000];
	uint32_t len;
	bool csum_valid;
} got;
static unsigned frames;
static void *tx_done_cookies[64];
static unsigned ntx_done;

static void *g_rx_alloc(void *ctx, uint32_t size)
{
	(void)ctx;
	for (int i = 0; i < MAX_BUFS; i++)
		if (!owned[i]) {
			owned[i] = malloc(size);
			memset(owned[i], 0xee, size);
			allocs++;
			return owned[i];
		}
	return NULL;
}

static bool take(void *buf)
{
	for (int i = 0; i < MAX_BUFS; i++)
		if (owned[i] == buf) {
			owned[i] = NULL;
			free(buf);
			return true;
		}
	double_frees++;
	return false;
}

static void g_rx_frame(void *ctx, const struct virtio_net_piece *p, unsigned n, bool csum_valid)
{
	(void)ctx;
	frames++;
	got.n = n;
	got.len = 0;
	got.csum_valid = csum_valid;
	for (unsigned i = 0; i < n; i++) {
		got.p[i] = p[i];
		memcpy(got.bytes + got.len, (uint8_t *)p[i].buf + p[i].off, p[i].len);
		got.len += p[i].len;
	}
	for (unsigned i = 0; i < n; i++)
		take(p[i].buf);
}

static void g_rx_free(void *ctx, void *buf)
{
	(void)ctx;
	frees++;
	take(buf);
}

static void g_tx_done(void *ctx, void *cookie)
{
	(void)ctx;
	tx_done_cookies[ntx_done++ % 64] = cookie;
}

static const struct virtio_net_ops gops = {g_rx_alloc, g_rx_frame, g_rx_free, g_tx_done};

static unsigned owned_count(void)
{
	unsigned n = 0;
	for (int i = 0; i < MAX_BUFS; i++)
		n += owned[i] != NULL;
	return n;
}

/* A fresh device offering `offered`, probed and attached. */
static struct virtio_net *setup(uint64_t offered, bool modern, const uint8_t *mac, uint16_t mtu)
{
	for (int i = 0; i < MAX_BUFS; i++)
		if (owned[i])
			take(owned[i]);
	memset(&dev, 0, sizeof(dev));
	memset(&got, 0, sizeof(got));
	allocs = frees = double_frees = frames = ntx_done = 0;
	nnics = 0;
	pages_release();
	dev.offered = offered | (modern ? 1ull << VIRTIO_F_VERSION_1 : 0);
	dev.modern = modern;
	if (mac)
		memcpy(dev.config + VIRTIO_NET_CFG_MAC, mac, 6);
	uint16_t st = VIRTIO_NET_S_LINK_UP;
	memcpy(dev.config + VIRTIO_NET_CFG_STATUS, &st, 2);
	memcpy(dev.config + VIRTIO_NET_CFG_MTU, &mtu, 2);

	struct virtio_dev vd = {.t = modern ? &modern_t : &legacy_t, .type = VIRTIO_ID_NET, .modern = modern};
	snprintf(vd.where, sizeof(vd.where), "00:0%d.0", 3);
	char note[64];
	int err = virtio_net_probe(&vd, note, sizeof(note));
	CHECK_EQ(err, 0);
	if (err)
		return NULL;
	struct virtio_net *n = virtio_net_get(0);
	virtio_net_attach(n, &gops, NULL);
	return n;
}

static const uint8_t MAC[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
#define F(bit) (1ull << (bit))

static void fill(uint8_t *b, uint32_t len, uint8_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		b[i] = (uint8_t)(i * 13 + seed);
}

/* ---- tests -------------------------------------------------------------------------------------- */

static void test_probe_and_rx_ring_full(void)
{
	struct virtio_net *n = setup(F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_STATUS) | F(VIRTIO_NET_F_MRG_RXBUF) |
	                                 F(VIRTIO_NET_F_MTU) | F(VIRTIO_NET_F_GUEST_TSO4) /* not wanted */,
	                             true, MAC, 1400);
	struct virtio_net_info info;
	virtio_net_info(n, &info);
	CHECK(memcmp(info.mac, MAC, 6) == 0);
	CHECK(info.mac_from_device);
	CHECK_EQ(info.mtu, 1400);
	CHECK(info.mrg_rxbuf);
	CHECK(!(dev.features & F(VIRTIO_NET_F_GUEST_TSO4)));
	CHECK(dev.status & VIRTIO_STATUS_DRIVER_OK);
	CHECK_EQ(info.rx_buf_size, VIRTIO_NET_RX_BUF);
	/* Every receive descriptor holds a buffer, one descriptor each, device-writable. */
	CHECK_EQ(owned_count(), QSIZE);
	struct chain c;
	unsigned chains = 0;
	while (dev_pop(0, &c)) {
		chains++;
		CHECK_EQ(c.n, 1);
		CHECK_EQ(c.len[0], VIRTIO_NET_RX_BUF);
		CHECK(c.flags[0] & VIRTQ_DESC_F_WRITE);
	}
	CHECK_EQ(chains, QSIZE);
	CHECK(virtio_net_link_up(n));
}

static void test_rx_one_frame_and_refill(void)
{
	struct virtio_net *n = setup(F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_MRG_RXBUF), true, MAC, 0);
	uint8_t frame[60];
	fill(frame, sizeof(frame), 1);
	struct virtio_net_hdr hdr = {.num_buffers = 1};
	dev_receive(&hdr, 12, frame, sizeof(frame), true);
	CHECK(virtio_net_poll(n));
	CHECK_EQ(frames, 1);
	CHECK_EQ(got.n, 1);
	CHECK_EQ(got.p[0].off, 12);
	CHECK_EQ(got.len, 60);
	CHECK(memcmp(got.bytes, frame, 60) == 0);
	CHECK(!got.csum_valid);
	/* The ring was refilled at once: the driver holds QSIZE buffers again. */
	CHECK_EQ(owned_count(), QSIZE);
	CHECK(!virtio_net_stopped(n));
	CHECK_EQ(double_frees, 0);
}

static void test_rx_mergeable_frame_in_pieces(void)
{
	struct virtio_net *n = setup(F(VIRTIO_NET_F_MRG_RXBUF), true, MAC, 0);
	static uint8_t frame[5000];
	fill(frame, sizeof(frame), 7);
	struct chain c[3];
	uint32_t off = 0;
	for (int i = 0; i < 3; i++) {
		CHECK(dev_pop(0, &c[i]));
		uint32_t hl = i == 0 ? 12 : 0;
		uint32_t room = c[i].len[0] - hl, take_len = sizeof(frame) - off < room ? sizeof(frame) - off : room;
		if (i == 0) {
			struct virtio_net_hdr hdr = {.num_buffers = 3};
			memcpy(c[i].addr[0], &hdr, 12);
		}
		memcpy(c[i].addr[0] + hl, frame + off, take_len);
		off += take_len;
		dev_push(0, c[i].head, hl + take_len);
	}
	CHECK_EQ(off, sizeof(frame));
	virtio_net_poll(n);
	CHECK_EQ(frames, 1);
	CHECK_EQ(got.n, 3);
	CHECK_EQ(got.len, sizeof(frame));
	CHECK(memcmp(got.bytes, frame, sizeof(frame)) == 0);
	CHECK_EQ(got.p[1].off, 0);
	CHECK_EQ(owned_count(), QSIZE);
}

/* A legacy device without MRG_RXBUF or ANY_LAYOUT: a 10-byte header, alone in a descriptor. */
static void test_rx_legacy_split_header(void)
{
	struct virtio_net *n = setup(F(VIRTIO_NET_F_MAC), false, MAC, 0);
	struct virtio_net_info info;
	virtio_net_info(n, &info);
	CHECK(!info.modern);
	struct chain c;
	CHECK(dev_pop(0, &c));
	CHECK_EQ(c.n, 2);
	CHECK_EQ(c.len[0], VIRTIO_NET_HDR_LEGACY_LEN);
	CHECK(c.addr[1] == c.addr[0] + VIRTIO_NET_HDR_LEGACY_LEN);
	uint8_t frame[100];
	fill(frame, sizeof(frame), 3);
	memset(c.addr[0], 0, 10);
	memcpy(c.addr[1], frame, sizeof(frame));
	dev_push(0, c.head, 10 + sizeof(frame));
	virtio_net_poll(n);
	CHECK_EQ(frames, 1);
	CHECK_EQ(got.p[0].off, 10);
	CHECK(memcmp(got.bytes, frame, sizeof(frame)) == 0 && got.len == sizeof(frame));
}

/* After a stop every buffer is back with the glue exactly once, and nothing else happens. */
static void check_stopped_clean(struct virtio_net *n, unsigned resets_before)
{
	CHECK(virtio_net_stopped(n));
	CHECK(dev.resets > resets_before);
	CHECK_EQ(owned_count(), 0);
	CHECK_EQ(double_frees, 0);
	CHECK_EQ(frames, 0);
	CHECK(!virtio_net_poll(n));
	struct virtq_buf b = {MAC, 60};
	CHECK_EQ(virtio_net_tx(n, &b, 1, NULL, &b), -EIO);
	CHECK(!virtio_net_link_up(n));
}

static void test_hostile_used_len_beyond_buffer(void)
{
	struct virtio_net *n = setup(F(VIRTIO_NET_F_MRG_RXBUF), true, MAC, 0);
	unsigned resets = dev.resets;
	struct chain c;
	CHECK(dev_pop(0, &c));
	dev_push(0, c.head, VIRTIO_NET_RX_BUF + 1);
	virtio_net_poll(n);
	check_stopped_clean(n, resets);
}

static void test_hostile_id_never_given_out(void)
{
	struct virtio_net *n = setup(F(VIRTIO_NET_F_MRG_RXBUF), true, MAC, 0);
	unsigned resets = dev.resets;
	dev_push(0, 200, 64); /* no such descriptor */
	virtio_net_poll(n);
	check_stopped_clean(n, resets);
}

static void test_hostile_id_used_twice(void)
{
	struct virtio_net *n = setup(F(VIRTIO_NET_F_MRG_RXBUF), true, MAC, 0);
	uint8_t frame[60] = {0};
	struct virtio_net_hdr hdr = {.num_buffers = 1};
	uint16_t head = dev_receive(&hdr, 12, frame, sizeof(frame), true);
	virtio_net_poll(n); /* one good frame; the slot is refilled, maybe with the same head */
	CHECK_EQ(frames, 1);
	frames = 0;
	/* Every buffer used once, honestly: all delivered. */
	struct chain c;
	while (dev_pop(0, &c)) {
		memcpy(c.addr[0], &hdr, 12);
		dev_push(0, c.head, 12 + 60);
	}
	virtio_net_poll(n);
	CHECK_EQ(frames, QSIZE);
	CHECK(!virtio_net_stopped(n));
	frames = 0;
	while (dev_pop(0, &c)) /* the refill: outstanding again */
		;
	/* Used twice in a row: the second names a chain already returned. */
	dev_push(0, head, 72);
	dev_push(0, head, 72);
	unsigned resets = dev.resets;
	virtio_net_poll(n);
	CHECK(virtio_net_stopped(n));
	CHECK(dev.resets > resets);
	CHECK_EQ(owned_count(), 0);
	CHECK_EQ(double_frees, 0);
}

static void test_hostile_num_buffers_zero(void)
{
	struct virtio_net *n = setup(F(VIRTIO_NET_F_MRG_RXBUF), true, MAC, 0);
	unsigned resets = dev.resets;
	uint8_t frame[60] = {0};
	struct virtio_net_hdr hdr = {.num_buffers = 0};
	dev_receive(&hdr, 12, frame, sizeof(frame), true);
	virtio_net_poll(n);
	check_stopped_clean(n, resets);
}

static void test_hostile_num_buffers_beyond_used(void)
{
	struct virtio_net *n = setup(F(VIRTIO_NET_F_MRG_RXBUF), true, MAC, 0);
	unsigned resets = dev.resets;
	uint8_t frame[60] = {0};
	struct virtio_net_hdr hdr = {.num_buffers = 4};
	dev_receive(&hdr, 12, frame, sizeof(frame), true);
	struct chain c;
	CHECK(dev_pop(0, &c));
	dev_push(0, c.head, 100); /* two of the four buffers, and no more */
	virtio_net_poll(n);
	check_stopped_clean(n, resets);
}

static void test_hostile_num_buffers_huge(void)
{
	struct virtio_net *n = setup(F(VIRTIO_NET_F_MRG_RXBUF), true, MAC, 0);
	unsigned resets = dev.resets;
	uint8_t frame[60] = {0};
	struct virtio_net_hdr hdr = {.num_buffers = 0xffff};
	dev_receive(&hdr, 12, frame, sizeof(frame), true);
	virtio_net_poll(n);
	check_stopped_clean(n, resets);
}

/* Runt packets are dropped, not delivered, and the NIC goes on. */
static void test_short_packets_dropped(void)
{
	struct virtio_net *n = setup(F(VIRTIO_NET_F_MRG_RXBUF), true, MAC, 0);
	struct chain c;
	CHECK(dev_pop(0, &c));
	dev_push(0, c.head, 5); /* shorter than the header */
	CHECK(dev_pop(0, &c));
	struct virtio_net_hdr hdr = {.num_buffers = 1};
	memcpy(c.addr[0], &hdr, 12);
	dev_push(0, c.head, 12 + 10); /* shorter than an Ethernet header */
	virtio_net_poll(n);
	CHECK_EQ(frames, 0);
	CHECK(!virtio_net_stopped(n));
	struct virtio_net_stats st;
	virtio_net_stats(n, &st);
	CHECK_EQ(st.rx_dropped, 2);
	CHECK_EQ(owned_count(), QSIZE);
	CHECK_EQ(double_frees, 0);
}

static uint16_t inet_sum(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* GUEST_CSUM: a frame with NEEDS_CSUM arrives with the pseudo-header sum only; the driver
 * completes it, and says the frame's checksum can be trusted. */
static void test_rx_needs_csum_completed(void)
{
	struct virtio_net *n = setup(F(VIRTIO_NET_F_MRG_RXBUF) | F(VIRTIO_NET_F_GUEST_CSUM), true, MAC, 0);
	uint8_t f[14 + 20 + 8 + 11] = {0};
	f[12] = 0x08;
	f[14] = 0x45;
	f[14 + 9] = 17;
	uint8_t src[4] = {10, 0, 2, 2}, dst[4] = {10, 0, 2, 15};
	memcpy(f + 14 + 12, src, 4);
	memcpy(f + 14 + 16, dst, 4);
	uint8_t *udp = f + 34;
	udp[0] = 0x30, udp[1] = 0x39, udp[2] = 0x00, udp[3] = 0x35;
	udp[5] = 8 + 11;
	memcpy(udp + 8, "hello world", 11);
	/* The full checksum, computed independently. */
	uint32_t pseudo = inet_sum(src, 4, 0) + inet_sum(dst, 4, 0) + 17 + 19;
	uint16_t want = (uint16_t)~inet_sum(udp, 19, pseudo);
	/* What the host sends: the folded pseudo-header sum in the field. */
	uint16_t partial = inet_sum(NULL, 0, pseudo);
	udp[6] = (uint8_t)(partial >> 8), udp[7] = (uint8_t)partial;
	struct virtio_net_hdr hdr = {
	    .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 6, .num_buffers = 1};
	dev_receive(&hdr, 12, f, sizeof(f), true);
	virtio_net_poll(n);
	CHECK_EQ(frames, 1);
	CHECK(got.csum_valid);
	CHECK_EQ((got.bytes[40] << 8) | got.bytes[41], want);

	/* Offsets outside the frame: dropped, not trusted, and no write past it. */
	frames = 0;
	hdr.csum_start = 50;
	hdr.csum_offset = 6;
	dev_receive(&hdr, 12, f, sizeof(f), true);
	virtio_net_poll(n);
	CHECK_EQ(frames, 0);
	CHECK(!virtio_net_stopped(n));

	/* DATA_VALID: passed on as valid, untouched. */
	struct virtio_net_hdr ok = {.flags = VIRTIO_NET_HDR_F_DATA_VALID, .num_buffers = 1};
	dev_receive(&ok, 12, f, sizeof(f), true);
	virtio_net_poll(n);
	CHECK_EQ(frames, 1);
	CHECK(got.csum_valid);
	CHECK(memcmp(got.bytes, f, sizeof(f)) == 0);
}

/* Without GUEST_CSUM negotiated, the flags mean nothing and the frame is not trusted. */
static void test_rx_flags_ignored_without_guest_csum(void)
{
	struct virtio_net *n = setup(F(VIRTIO_NET_F_MRG_RXBUF), true, MAC, 0);
	uint8_t f[60];
	fill(f, sizeof(f), 9);
	struct virtio_net_hdr hdr = {.flags = VIRTIO_NET_HDR_F_DATA_VALID | VIRTIO_NET_HDR_F_NEEDS_CSUM,
	                             .csum_start = 20,
	                             .csum_offset = 4,
	                             .num_buffers = 1};
	dev_receive(&hdr, 12, f, sizeof(f), true);
	virtio_net_poll(n);
	CHECK_EQ(frames, 1);
	CHECK(!got.csum_valid);
	CHECK(memcmp(got.bytes, f, sizeof(f)) == 0);
}

static void test_tx_chain_header_and_reclaim(void)
{
	struct virtio_net *n = setup(F(VIRTIO_NET_F_MRG_RXBUF) | F(VIRTIO_NET_F_CSUM), true, MAC, 0);
	uint8_t a[54], b[1000];
	fill(a, sizeof(a), 1);
	fill(b, sizeof(b), 2);
	struct virtq_buf segs[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
	struct virtio_net_csum cs = {34, 16};
	int cookie;
	CHECK_EQ(virtio_net_tx(n, segs, 2, &cs, &cookie), 0);
	virtio_net_kick(n);
	struct chain c;
	CHECK(dev_pop(1, &c));
	CHECK_EQ(c.n, 3);
	CHECK_EQ(c.len[0], 12);
	for (unsigned i = 0; i < 3; i++)
		CHECK(!(c.flags[i] & VIRTQ_DESC_F_WRITE));
	struct virtio_net_hdr h;
	memcpy(&h, c.addr[0], 12);
	CHECK_EQ(h.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
	CHECK_EQ(h.csum_start, 34);
	CHECK_EQ(h.csum_offset, 16);
	CHECK_EQ(h.gso_type, VIRTIO_NET_HDR_GSO_NONE);
	CHECK(c.addr[1] == a && c.len[1] == sizeof(a));
	CHECK(c.addr[2] == b && c.len[2] == sizeof(b));
	CHECK_EQ(ntx_done, 0);
	dev_push(1, c.head, 0);
	virtio_net_poll(n);
	CHECK_EQ(ntx_done, 1);
	CHECK(tx_done_cookies[0] == &cookie);

	/* Too large for the MTU, a checksum outside the frame, too many segments: refused. */
	static uint8_t big[1600];
	struct virtq_buf bigseg = {big, sizeof(big)};
	CHECK_EQ(virtio_net_tx(n, &bigseg, 1, NULL, &cookie), -EINVAL);
	struct virtio_net_csum bad = {1050, 16};
	CHECK_EQ(virtio_net_tx(n, segs, 2, &bad, &cookie), -EINVAL);
	struct virtq_buf many[VIRTIO_NET_MAX_TX_SEGS + 1];
	for (int i = 0; i <= VIRTIO_NET_MAX_TX_SEGS; i++)
		many[i] = (struct virtq_buf){a, 14};
	CHECK_EQ(virtio_net_tx(n, many, VIRTIO_NET_MAX_TX_SEGS + 1, NULL, &cookie), -EINVAL);
}

/* The header in the caller's room just before the frame: one descriptor a frame. */
static void test_tx_inline_header(void)
{
	struct virtio_net *n = setup(F(VIRTIO_NET_F_MRG_RXBUF) | F(VIRTIO_NET_F_CSUM), true, MAC, 0);
	struct virtio_net_info info;
	virtio_net_info(n, &info);
	CHECK(info.hdr_inline);
	CHECK_EQ(info.hdr_len, 12);
	uint8_t room[12 + 60], tail[40];
	memset(room, 0x77, sizeof(room));
	fill(room + 12, 60, 4);
	fill(tail, sizeof(tail), 5);
	struct virtq_buf segs[2] = {{room + 12, 60}, {tail, sizeof(tail)}};
	struct virtio_net_csum cs = {34, 16};
	int cookie;
	CHECK_EQ(virtio_net_tx_inline(n, segs, 2, &cs, &cookie), 0);
	struct chain c;
	CHECK(dev_pop(1, &c));
	CHECK_EQ(c.n, 2);
	CHECK(c.addr[0] == room);
	CHECK_EQ(c.len[0], 12 + 60);
	CHECK(c.addr[1] == tail && c.len[1] == sizeof(tail));
	struct virtio_net_hdr h;
	memcpy(&h, room, 12);
	CHECK_EQ(h.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
	CHECK_EQ(h.csum_start, 34);
	CHECK_EQ(h.num_buffers, 0);
	uint8_t want[60];
	fill(want, 60, 4);
	CHECK(memcmp(room + 12, want, 60) == 0); /* the frame itself untouched */
	/* One descriptor a one-segment frame: the first frame took two, the rest fill the queue. */
	int ok = 0;
	while (virtio_net_tx_inline(n, segs, 1, NULL, &cookie) == 0)
		ok++;
	CHECK_EQ(ok, QSIZE - 2);
}

/* A legacy device without ANY_LAYOUT wants the header alone: inline is refused. */
static void test_tx_inline_refused_on_legacy_without_any_layout(void)
{
	struct virtio_net *n = setup(F(VIRTIO_NET_F_MAC), false, MAC, 0);
	struct virtio_net_info info;
	virtio_net_info(n, &info);
	CHECK(!info.hdr_inline);
	CHECK_EQ(info.hdr_len, VIRTIO_NET_HDR_LEGACY_LEN);
	uint8_t room[10 + 60] = {0};
	struct virtq_buf seg = {room + 10, 60};
	int cookie;
	CHECK_EQ(virtio_net_tx_inline(n, &seg, 1, NULL, &cookie), -EINVAL);
	CHECK_EQ(virtio_net_tx(n, &seg, 1, NULL, &cookie), 0);
	struct chain c;
	CHECK(dev_pop(1, &c));
	CHECK_EQ(c.n, 2);
	CHECK_EQ(c.len[0], VIRTIO_NET_HDR_LEGACY_LEN);
}

static void test_tx_full_queue_and_no_csum_without_feature(void)
{
	struct virtio_net *n = setup(F(VIRTIO_NET_F_MRG_RXBUF), true, MAC, 0);
	uint8_t a[60] = {0};
	struct virtq_buf seg = {a, sizeof(a)};
	struct virtio_net_csum cs = {34, 16};
	int cookies[QSIZE];
	CHECK_EQ(virtio_net_tx(n, &seg, 1, &cs, &cookies[0]), -EINVAL); /* CSUM not negotiated */
	int ok = 0;
	while (ok < QSIZE && virtio_net_tx(n, &seg, 1, NULL, &cookies[ok]) == 0)
		ok++;
	CHECK_EQ(ok, QSIZE / 2); /* two descriptors a frame */
	CHECK_EQ(virtio_net_tx(n, &seg, 1, NULL, &cookies[0]), -ENOSPC);
	/* The device takes them all; the glue gets every cookie back once. */
	struct chain c;
	while (dev_pop(1, &c))
		dev_push(1, c.head, 0);
	CHECK(virtio_net_reclaim(n));
	CHECK_EQ(ntx_done, (unsigned)ok);
	CHECK_EQ(virtio_net_tx(n, &seg, 1, NULL, &cookies[0]), 0);
}

/* A transmit used entry with an id never given out stops the NIC; frames in flight come back. */
static void test_hostile_tx_id(void)
{
	struct virtio_net *n = setup(F(VIRTIO_NET_F_MRG_RXBUF), true, MAC, 0);
	uint8_t a[60] = {0};
	struct virtq_buf seg = {a, sizeof(a)};
	int cookie;
	CHECK_EQ(virtio_net_tx(n, &seg, 1, NULL, &cookie), 0);
	unsigned resets = dev.resets;
	dev_push(1, 7, 0); /* descriptor 7 heads no chain */
	virtio_net_poll(n);
	CHECK(virtio_net_stopped(n));
	CHECK(dev.resets > resets);
	CHECK_EQ(ntx_done, 1); /* the frame in flight was handed back */
	CHECK(tx_done_cookies[0] == &cookie);
	CHECK_EQ(owned_count(), 0);
}

/* The device breaks the receive rules while a transmit completion is also waiting: the stop
 * hands the frame in flight back once, and the poll must not hand it back again from the used
 * ring of a device it has just reset. */
static void test_stop_with_completions_pending(void)
{
	struct virtio_net *n = setup(F(VIRTIO_NET_F_MRG_RXBUF), true, MAC, 0);
	uint8_t a[60] = {0};
	struct virtq_buf seg = {a, sizeof(a)};
	int cookie;
	CHECK_EQ(virtio_net_tx(n, &seg, 1, NULL, &cookie), 0);
	struct chain c;
	CHECK(dev_pop(1, &c));
	dev_push(1, c.head, 0); /* the frame was sent */
	uint8_t frame[60] = {0};
	struct virtio_net_hdr bad = {.num_buffers = 0};
	dev_receive(&bad, 12, frame, sizeof(frame), true);
	struct virtio_net_hdr good = {.num_buffers = 1};
	dev_receive(&good, 12, frame, sizeof(frame), true); /* and a frame after the bad one */
	virtio_net_poll(n);
	CHECK(virtio_net_stopped(n));
	CHECK_EQ(ntx_done, 1);
	CHECK(tx_done_cookies[0] == &cookie);
	CHECK_EQ(frames, 0);
	CHECK_EQ(owned_count(), 0);
	CHECK_EQ(double_frees, 0);
	struct virtio_net_stats st;
	virtio_net_stats(n, &st);
	CHECK_EQ(st.tx_inflight, 0);
	CHECK_EQ(st.rx_posted, 0);
}

static void test_made_up_mac(void)
{
	struct virtio_net *n = setup(F(VIRTIO_NET_F_MRG_RXBUF), true, NULL, 0);
	struct virtio_net_info a, b;
	virtio_net_info(n, &a);
	CHECK(!a.mac_from_device);
	CHECK_EQ(a.mac[0] & 3, 2); /* locally administered, unicast */
	n = setup(F(VIRTIO_NET_F_MRG_RXBUF), true, NULL, 0);
	virtio_net_info(n, &b);
	CHECK(memcmp(a.mac, b.mac, 6) == 0); /* the same slot, the same MAC */
	/* A multicast MAC from the device is no MAC either. */
	const uint8_t mcast[6] = {0x01, 0, 0x5e, 0, 0, 1};
	n = setup(F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_MRG_RXBUF), true, mcast, 0);
	virtio_net_info(n, &b);
	CHECK(!b.mac_from_device);
	CHECK_EQ(b.mac[0] & 1, 0);
}

static void test_mtu_bounds(void)
{
	struct virtio_net_info info;
	struct virtio_net *n = setup(F(VIRTIO_NET_F_MTU), true, MAC, 20); /* below IPv4's 68 */
	virtio_net_info(n, &info);
	CHECK_EQ(info.mtu, 1500);
	n = setup(F(VIRTIO_NET_F_MTU), true, MAC, 65535);
	virtio_net_info(n, &info);
	CHECK_EQ(info.mtu, MTU_MAX);
	/* Without mergeable buffers each buffer holds a whole frame of that MTU. */
	CHECK(info.rx_buf_size >= 12 + 18 + MTU_MAX);
	struct chain c;
	CHECK(dev_pop(0, &c));
	CHECK_EQ(c.len[0], info.rx_buf_size);
}

static void test_link_status(void)
{
	struct virtio_net *n = setup(F(VIRTIO_NET_F_STATUS) | F(VIRTIO_NET_F_MRG_RXBUF), true, MAC, 0);
	CHECK(virtio_net_link_up(n));
	uint16_t down = 0;
	memcpy(dev.config + VIRTIO_NET_CFG_STATUS, &down, 2);
	now_ns += 1000000000ull;
	virtio_net_poll(n);
	CHECK(!virtio_net_link_up(n));
	CHECK(strstr(last_log, "link down") != NULL);
}

#ifndef VIRTIO_NET_NO_MAIN /* tests/fuzz/fuzz_virtio_net.c reuses the device and glue above */
int main(void)
{
	RUN_TEST(test_probe_and_rx_ring_full);
	RUN_TEST(test_rx_one_frame_and_refill);
	RUN_TEST(test_rx_mergeable_frame_in_pieces);
	RUN_TEST(test_rx_legacy_split_header);
	RUN_TEST(test_hostile_used_len_beyond_buffer);
	RUN_TEST(test_hostile_id_never_given_out);
	RUN_TEST(test_hostile_id_used_twice);
	RUN_TEST(test_hostile_num_buffers_zero);
	RUN_TEST(test_hostile_num_buffers_beyond_used);
	RUN_TEST(test_hostile_num_buffers_huge);
	RUN_TEST(test_short_packets_dropped);
	RUN_TEST(test_rx_needs_csum_completed);
	RUN_TEST(test_rx_flags_ignored_without_guest_csum);
	RUN_TEST(test_tx_chain_header_and_reclaim);
	RUN_TEST(test_tx_inline_header);
	RUN_TEST(test_tx_inline_refused_on_legacy_without_any_layout);
	RUN_TEST(test_tx_full_queue_and_no_csum_without_feature);
	RUN_TEST(test_hostile_tx_id);
	RUN_TEST(test_stop_with_completions_pending);
	RUN_TEST(test_made_up_mac);
	RUN_TEST(test_mtu_bounds);
	RUN_TEST(test_link_status);
	setup(0, true, MAC, 0); /* frees the last NIC's buffers... */
	for (int i = 0; i < MAX_BUFS; i++)
		if (owned[i])
			take(owned[i]);
	pages_release(); /* ...and pages */
	return check_report();
}
#endif
