/*
 * virtio-net: polled network device driver.
 * Implements: Virtual I/O Device (VIRTIO) Version 1.2, §5.1 Network Device.
 * Try it:     -netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0
 *             (scripts/run --net user hello; the boot log names eth0, its MAC and features)
 *
 * Two queues (§5.1.2): receiveq1 (0) and transmitq1 (1); no control queue, no multiqueue.
 * Every frame, both ways, is preceded by a struct virtio_net_hdr (§5.1.6): 12 bytes with
 * VIRTIO_F_VERSION_1 or MRG_RXBUF, 10 on a legacy device without MRG_RXBUF.
 *
 * Receive: the queue is kept full of buffers the glue gives us (rx_alloc); each is one
 * descriptor holding the header and the frame (two descriptors over the same buffer on a
 * legacy device without ANY_LAYOUT, which wants the header alone). With MRG_RXBUF a large
 * packet spans num_buffers buffers, used one after another. A frame goes up as its pieces,
 * without a copy; the buffers are the glue's from then on, and the queue is refilled at once.
 *
 * Transmit: one chain per frame: our header, then the glue's segments as they are, read by the
 * device in place; tx_done() says when their memory is free again. The header sits in a slot
 * of ours (a descriptor of its own) or, when the glue has room before the frame and the device
 * takes any layout, just before the frame in the same descriptor. Used transmit chains are
 * reclaimed on every poll.
 *
 * The device is not trusted: the virtqueue refuses ids it never gave out and lengths beyond
 * a chain. On top, a packet whose num_buffers is 0, more than a frame can need, or more than
 * the device has used, is the device breaking the rules: the NIC is reset and stopped, and
 * every buffer goes back to the glue (after the reset, the device no longer touches memory).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "../kernel/kernel.h"
#include "virtio/virtio_dev.h"
#include "virtio_net.h"

#define RXQ 0
#define TXQ 1
/* How often the link status is read from config space (each read is a VM exit). */
#define LINK_CHECK_NS (250 * 1000000ull)
/* A larger MTU needs 64 KiB receive buffers without MRG_RXBUF; Ringlet's TCP stays at 1460. */
#define MTU_MAX 9000

struct rx_slot {
	void *buf; /* NULL while the slot is free */
	struct rx_slot *next_free;
};

struct tx_slot {
	struct virtio_net_hdr hdr;
	void *cookie; /* the glue's; NULL while the slot is free */
	struct tx_slot *next_free;
};

struct virtio_net {
	struct virtio_dev vd;
	struct virtq rxq, txq;
	char name[8];
	uint8_t mac[6];
	bool mac_from_device;
	uint16_t mtu;
	uint32_t hdr_len;     /* 10 or 12 */
	uint32_t rx_buf_size; /* bytes of one receive buffer */
	bool rx_split;        /* legacy without ANY_LAYOUT: the header in a descriptor of its own */
	bool link_up;
	uint64_t link_checked_ns;
	const char *stopped; /* why the device was stopped; NULL while it behaves */

	const struct virtio_net_ops *ops;
	void *ctx;

	struct rx_slot rx_slots[VIRTQ_MAX_SIZE], *rx_free;
	struct tx_slot *tx_slots, *tx_free; /* page memory: the device reads the headers */
	uint32_t rx_posted, tx_inflight;
	uint64_t rx_frames, rx_bytes, rx_dropped, tx_frames, tx_bytes;
	uint32_t renotified;
};

static struct virtio_net nics[VIRTIO_NET_MAX_NICS];
static int nnics;

int virtio_net_count(void) { return nnics; }
struct virtio_net *virtio_net_get(int i) { return i >= 0 && i < nnics ? &nics[i] : NULL; }
static bool has(const struct virtio_net *n, unsigned bit) { return virtio_has_feature(n->vd.features, bit); }

/*
 * A MAC for a device that has none: locally administered (bit 1 of the first byte) and
 * unicast (bit 0 clear), the rest a hash of where the device sits, so the same slot gets the
 * same address on every boot and two NICs get different ones.
 */
static void made_up_mac(const char *where, int index, uint8_t mac[6])
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const char *p = where; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h = (h ^ (uint32_t)index) * 16777619u;
	mac[0] = 0x02;
	mac[1] = 0x52; /* 'R' */
	mac[2] = (uint8_t)(h >> 24);
	mac[3] = (uint8_t)(h >> 16);
	mac[4] = (uint8_t)(h >> 8);
	mac[5] = (uint8_t)h;
}

static bool read_link(struct virtio_net *n)
{
	/* §5.1.4: without VIRTIO_NET_F_STATUS "the link should be assumed active". */
	if (!has(n, VIRTIO_NET_F_STATUS))
		return true;
	uint16_t status;
	virtio_config_read(&n->vd, VIRTIO_NET_CFG_STATUS, &status, 2);
	return (status & VIRTIO_NET_S_LINK_UP) != 0;
}

int virtio_net_probe(const struct virtio_dev *found, char *note, size_t note_len)
{
	int err;
	if (nnics == VIRTIO_NET_MAX_NICS)
		return -ENOSPC;
	struct virtio_net *n = &nics[nnics];
	memset(n, 0, sizeof(*n));
	n->vd = *found;
	n->vd.name = "virtio-net";
	ksnprintf(n->name, sizeof(n->name), "eth%d", nnics);

	/* 1-6. Features: what the driver can use; nothing is required. No GSO/TSO: lwIP
	 * neither makes nor takes segments larger than the MTU. */
	uint64_t wanted = 1ull << VIRTIO_NET_F_CSUM | 1ull << VIRTIO_NET_F_GUEST_CSUM | 1ull << VIRTIO_NET_F_MTU |
	                  1ull << VIRTIO_NET_F_MAC | 1ull << VIRTIO_NET_F_MRG_RXBUF | 1ull << VIRTIO_NET_F_STATUS |
	                  1ull << VIRTIO_F_EVENT_IDX | 1ull << VIRTIO_F_ANY_LAYOUT;
	if ((err = virtio_start(&n->vd, wanted, 0)) != 0)
		return err;

	/* The configuration, now that the features are settled. */
	if (has(n, VIRTIO_NET_F_MAC)) {
		virtio_config_read(&n->vd, VIRTIO_NET_CFG_MAC, n->mac, 6);
		n->mac_from_device = true;
	}
	/* A multicast or all-zero address is no address for a NIC. */
	static const uint8_t zero[6];
	if (!n->mac_from_device || (n->mac[0] & 1) || memcmp(n->mac, zero, 6) == 0) {
		made_up_mac(n->vd.where, nnics, n->mac);
		n->mac_from_device = false;
	}
	n->mtu = 1500;
	if (has(n, VIRTIO_NET_F_MTU)) {
		uint16_t mtu;
		virtio_config_read(&n->vd, VIRTIO_NET_CFG_MTU, &mtu, 2);
		/* §5.1.4.2: "The driver MUST NOT transmit frames larger than mtu"; 68 is IPv4's
		 * minimum. A larger MTU than we can receive is used only up to MTU_MAX. */
		if (mtu >= 68)
			n->mtu = mtu < MTU_MAX ? mtu : MTU_MAX;
	}
	n->hdr_len =
	    n->vd.modern || has(n, VIRTIO_NET_F_MRG_RXBUF) ? sizeof(struct virtio_net_hdr) : VIRTIO_NET_HDR_LEGACY_LEN;
	n->rx_split = !n->vd.modern && !has(n, VIRTIO_F_ANY_LAYOUT) && !has(n, VIRTIO_NET_F_MRG_RXBUF);
	/* §5.1.6.3.1: without MRG_RXBUF (and without GUEST_TSO/UFO, never taken) "the driver
	 * SHOULD populate the receive queue(s) with buffers of at least 1526 bytes": header,
	 * 14-byte Ethernet header, 4-byte VLAN tag and the MTU. */
	n->rx_buf_size = VIRTIO_NET_RX_BUF;
	if (!has(n, VIRTIO_NET_F_MRG_RXBUF) && n->hdr_len + 18 + n->mtu > n->rx_buf_size)
		n->rx_buf_size = ALIGN_UP(n->hdr_len + 18 + n->mtu, 64u);

	/* 7. The two queues. */
	if ((err = virtio_queue_init(&n->vd, &n->rxq, RXQ, VIRTQ_MAX_SIZE)) != 0 ||
	    (err = virtio_queue_init(&n->vd, &n->txq, TXQ, VIRTQ_MAX_SIZE)) != 0) {
		virtio_fail(&n->vd, "cannot set up its queues");
		return err;
	}
	size_t bytes = ALIGN_UP(n->txq.size * sizeof(struct tx_slot), PAGE_SIZE);
	n->tx_slots = page_alloc(bytes / PAGE_SIZE);
	if (!n->tx_slots) {
		virtio_fail(&n->vd, "no memory for transmit headers");
		return -ENOMEM;
	}
	for (int i = n->txq.size - 1; i >= 0; i--) {
		n->tx_slots[i].next_free = n->tx_free;
		n->tx_free = &n->tx_slots[i];
	}
	for (int i = n->rxq.size - 1; i >= 0; i--) {
		n->rx_slots[i].next_free = n->rx_free;
		n->rx_free = &n->rx_slots[i];
	}
	/* A wake-up interrupt for both queues (MSI-X or the IOAPIC), when the machine has one. */
	virtio_irq_setup(&n->vd, 2);
	/* 8. DRIVER_OK. Receive buffers come when the glue attaches; until then the device
	 * drops what arrives, as it would for a full queue. */
	virtio_ready(&n->vd);
	n->link_up = read_link(n);
	n->link_checked_ns = time_ns();

	ksnprintf(note, note_len, "%s %02x:%02x:%02x:%02x:%02x:%02x, %s", n->name, n->mac[0], n->mac[1], n->mac[2],
	          n->mac[3], n->mac[4], n->mac[5], n->vd.wake);
	nnics++;
	return 0;
}

void virtio_net_info(const struct virtio_net *n, struct virtio_net_info *info)
{
	memset(info, 0, sizeof(*info));
	memcpy(info->name, n->name, sizeof(info->name));
	memcpy(info->where, n->vd.where, sizeof(info->where));
	info->transport = n->vd.t->name;
	memcpy(info->mac, n->mac, 6);
	info->mac_from_device = n->mac_from_device;
	info->mtu = n->mtu;
	info->csum_tx = has(n, VIRTIO_NET_F_CSUM);
	info->csum_rx = has(n, VIRTIO_NET_F_GUEST_CSUM);
	info->mrg_rxbuf = has(n, VIRTIO_NET_F_MRG_RXBUF);
	info->event_idx = has(n, VIRTIO_F_EVENT_IDX);
	info->modern = n->vd.modern;
	info->rx_buf_size = n->rx_buf_size;
	info->rx_queue = n->rxq.size;
	info->tx_queue = n->txq.size;
	info->hdr_len = (uint16_t)n->hdr_len;
	info->hdr_inline = n->vd.modern || has(n, VIRTIO_F_ANY_LAYOUT);
	ksnprintf(info->wake, sizeof(info->wake), "%s", n->vd.wake);
}

void virtio_net_features(const struct virtio_net *n, char *buf, size_t len)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {
	    {VIRTIO_F_VERSION_1, "v1"},
	    {VIRTIO_NET_F_MAC, "mac"},
	    {VIRTIO_NET_F_STATUS, "status"},
	    {VIRTIO_NET_F_MTU, "mtu"},
	    {VIRTIO_NET_F_MRG_RXBUF, "mrg_rxbuf"},
	    {VIRTIO_NET_F_CSUM, "csum"},
	    {VIRTIO_NET_F_GUEST_CSUM, "guest_csum"},
	    {VIRTIO_F_EVENT_IDX, "event_idx"},
	    {VIRTIO_F_ANY_LAYOUT, "any_layout"},
	};
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (has(n, names[i].bit) && used < len)
			used += ksnprintf(buf + used, len - used, "%s%s", used ? " " : "", names[i].name);
}

bool virtio_net_link_up(const struct virtio_net *n) { return n->link_up && !n->stopped; }
bool virtio_net_stopped(const struct virtio_net *n) { return n->stopped != NULL; }
bool virtio_net_can_wake(const struct virtio_net *n) { return n->vd.irq_vector != 0; }
uint64_t virtio_net_wakeups(const struct virtio_net *n) { return virtio_irq_count(&n->vd); }

/* Frames that arrived before the notification was on are a reason not to halt. Transmit
 * completions are not: they are reclaimed on the next poll whenever that comes. */
bool virtio_net_arm(struct virtio_net *n) { return !n->stopped && virtq_enable_notify(&n->rxq); }

void virtio_net_disarm(struct virtio_net *n)
{
	if (!n->stopped) {
		virtq_disable_notify(&n->rxq);
		virtq_disable_notify(&n->txq);
	}
}

unsigned virtio_net_tx_free(const struct virtio_net *n) { return n->stopped ? 0 : n->txq.size - n->tx_inflight; }

bool virtio_net_arm_tx(struct virtio_net *n, unsigned want)
{
	if (n->stopped || want > n->txq.size)
		return true;
	unsigned free = n->txq.size - n->tx_inflight;
	if (free >= want)
		return true;
	/* The (want - free)-th completion from now frees the last slot wanted; the frames
	 * behind it keep the device busy while the sender refills. */
	return virtq_enable_notify_after(&n->txq, (uint16_t)(want - free));
}

void virtio_net_stats(const struct virtio_net *n, struct virtio_net_stats *st)
{
	*st = (struct virtio_net_stats){n->rx_frames, n->rx_bytes,  n->rx_dropped, n->tx_frames,
	                                n->tx_bytes,  n->rx_posted, n->tx_inflight};
}

/*
 * The device broke the rules: reset it, so it stops touching our memory, then hand every
 * buffer it held back to the glue. From here on the NIC neither receives nor sends.
 */
static void stop(struct virtio_net *n, const char *why)
{
	if (n->stopped)
		return;
	n->stopped = why;
	bool reset = virtio_reset(&n->vd);
	klog("%s: %s; the NIC is stopped", n->name, why);
	if (!reset) {
		/* A device that will not reset may still write into the buffers: keep them. */
		klog("%s: the device did not reset: its buffers are abandoned, not reused", n->name);
		return;
	}
	for (int i = 0; i < n->rxq.size; i++)
		if (n->rx_slots[i].buf) {
			void *buf = n->rx_slots[i].buf;
			n->rx_slots[i].buf = NULL;
			if (n->ops)
				n->ops->rx_free(n->ctx, buf);
		}
	n->rx_posted = 0;
	for (int i = 0; i < n->txq.size; i++)
		if (n->tx_slots[i].cookie) {
			void *cookie = n->tx_slots[i].cookie;
			n->tx_slots[i].cookie = NULL;
			n->ops->tx_done(n->ctx, cookie);
		}
	n->tx_inflight = 0;
}

static void stop_broken_queue(struct virtio_net *n, struct virtq *q)
{
	static char why[96];
	ksnprintf(why, sizeof(why), "device broke the ring rules on its %s queue (%s)",
	          q == &n->rxq ? "receive" : "transmit", virtq_broken_reason(q));
	stop(n, why);
}

/* Keeps the receive queue full; true when it added buffers. */
static bool refill(struct virtio_net *n)
{
	unsigned added = 0;
	unsigned per = n->rx_split ? 2 : 1;
	while (n->rx_free && virtq_free_count(&n->rxq) >= per && !n->stopped) {
		uint8_t *buf = n->ops->rx_alloc(n->ctx, n->rx_buf_size);
		if (!buf)
			break; /* no memory now: the next poll tries again */
		struct rx_slot *s = n->rx_free;
		struct virtq_buf b[2] = {{buf, n->rx_buf_size}};
		if (n->rx_split) {
			b[0].len = n->hdr_len;
			b[1] = (struct virtq_buf){buf + n->hdr_len, n->rx_buf_size - n->hdr_len};
		}
		int err = virtq_add(&n->rxq, b, 0, per, s);
		if (err) {
			n->ops->rx_free(n->ctx, buf);
			if (err == -EIO)
				stop_broken_queue(n, &n->rxq);
			break;
		}
		n->rx_free = s->next_free;
		s->buf = buf;
		n->rx_posted++;
		added++;
	}
	if (added)
		virtq_kick(&n->rxq);
	return added != 0;
}

void virtio_net_attach(struct virtio_net *n, const struct virtio_net_ops *ops, void *ctx)
{
	n->ops = ops;
	n->ctx = ctx;
	refill(n);
}

/* Takes one used receive buffer: 1 with *buf and *len, 0 for none, -1 when the device broke. */
static int rx_take(struct virtio_net *n, void **buf, uint32_t *len)
{
	void *cookie;
	/* Once stopped, the slots' buffers went back to the glue: what the reset device left on
	 * the used ring names nothing of ours any more. */
	if (n->stopped)
		return 0;
	int got = virtq_get_used(&n->rxq, &cookie, len);
	if (got < 0) {
		stop_broken_queue(n, &n->rxq);
		return -1;
	}
	if (got == 0)
		return 0;
	struct rx_slot *s = cookie;
	*buf = s->buf;
	s->buf = NULL;
	s->next_free = n->rx_free;
	n->rx_free = s;
	n->rx_posted--;
	return 1;
}

/*
 * Completes a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM, §5.1.6.4.1): the sum from
 * csum_start to the end of the frame goes at csum_start + csum_offset. Only for a frame in one
 * piece (the host marks only frames it made itself, and those fit one buffer); false when the
 * offsets do not fit the frame.
 */
static bool complete_csum(uint8_t *frame, uint32_t len, uint16_t start, uint16_t offset)
{
	uint64_t at = (uint64_t)start + offset;
	if (start >= len || at + 2 > len)
		return false;
	uint32_t sum = 0;
	for (uint32_t i = start; i + 1 < len; i += 2)
		sum += (uint32_t)frame[i] << 8 | frame[i + 1];
	if ((len - start) & 1)
		sum += (uint32_t)frame[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	uint16_t csum = (uint16_t)~sum;
	frame[at] = (uint8_t)(csum >> 8);
	frame[at + 1] = (uint8_t)csum;
	return true;
}

/* One received packet; false when there was none (or the device is stopped). */
static bool rx_one(struct virtio_net *n)
{
	struct virtio_net_piece p[VIRTIO_NET_MAX_PIECES];
	void *buf;
	uint32_t len;
	if (rx_take(n, &buf, &len) <= 0)
		return false;

	/* The header: copied out of the buffer once, so what we check is what we use. */
	struct virtio_net_hdr hdr = {.num_buffers = 1};
	if (len < n->hdr_len) {
		/* Shorter than its header: not a packet. Drop it, the ring is still sound. */
		n->rx_dropped++;
		n->ops->rx_free(n->ctx, buf);
		return true;
	}
	memcpy(&hdr, buf, n->hdr_len);
	uint32_t nbuf = has(n, VIRTIO_NET_F_MRG_RXBUF) ? hdr.num_buffers : 1;
	if (nbuf == 0 || nbuf > VIRTIO_NET_MAX_PIECES) {
		n->ops->rx_free(n->ctx, buf);
		stop(n, nbuf ? "num_buffers larger than any frame needs" : "num_buffers 0");
		return false;
	}
	p[0] = (struct virtio_net_piece){buf, n->hdr_len, len - n->hdr_len};
	uint64_t total = p[0].len;
	for (uint32_t i = 1; i < nbuf; i++) {
		/* §5.1.6.4: the device uses the num_buffers buffers of a packet together; one
		 * that is missing was never going to come. */
		int got = rx_take(n, &buf, &len);
		if (got <= 0) {
			for (uint32_t j = 0; j < i; j++)
				n->ops->rx_free(n->ctx, p[j].buf);
			if (got == 0)
				stop(n, "a packet's num_buffers exceeds the buffers the device used");
			return false;
		}
		p[i] = (struct virtio_net_piece){buf, 0, len};
		total += len;
	}

	bool valid = (hdr.flags & VIRTIO_NET_HDR_F_DATA_VALID) && has(n, VIRTIO_NET_F_GUEST_CSUM);
	if ((hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && has(n, VIRTIO_NET_F_GUEST_CSUM)) {
		valid = nbuf == 1 &&
		        complete_csum((uint8_t *)p[0].buf + p[0].off, p[0].len, hdr.csum_start, hdr.csum_offset);
		if (!valid) {
			for (uint32_t j = 0; j < nbuf; j++)
				n->ops->rx_free(n->ctx, p[j].buf);
			n->rx_dropped++;
			return true;
		}
	}
	/* Shorter than an Ethernet header, or with empty pieces: nothing the stack could use. */
	bool empty_piece = false;
	for (uint32_t i = 1; i < nbuf; i++)
		empty_piece |= p[i].len == 0;
	if (total < 14 || empty_piece) {
		for (uint32_t j = 0; j < nbuf; j++)
			n->ops->rx_free(n->ctx, p[j].buf);
		n->rx_dropped++;
		return true;
	}
	n->rx_frames++;
	n->rx_bytes += total;
	n->ops->rx_frame(n->ctx, p, nbuf, valid);
	return true;
}

/* Reclaims used transmit chains; true when any came back. */
static bool tx_reclaim(struct virtio_net *n)
{
	bool any = false;
	void *cookie;
	uint32_t len;
	/* A stop (here, or while receiving in the same poll) gave every frame in flight back. */
	while (!n->stopped) {
		int got = virtq_get_used(&n->txq, &cookie, &len);
		if (got < 0) {
			stop_broken_queue(n, &n->txq);
			return any;
		}
		if (got == 0)
			break;
		/* The length the device wrote is 0 for a read-only chain; nothing to check. */
		struct tx_slot *s = cookie;
		void *user = s->cookie;
		s->cookie = NULL;
		s->next_free = n->tx_free;
		n->tx_free = s;
		n->tx_inflight--;
		n->ops->tx_done(n->ctx, user);
		any = true;
	}
	if (!any && n->tx_inflight && !n->stopped && virtq_watchdog(&n->txq, time_ns()) && n->renotified++ == 0)
		kdebug("%s: no transmit completion for 1 ms: notifying again", n->name);
	return any;
}

bool virtio_net_reclaim(struct virtio_net *n) { return !n->stopped && n->ops && tx_reclaim(n); }

bool virtio_net_poll(struct virtio_net *n)
{
	bool any = false;
	if (n->stopped || !n->ops)
		return false;
	for (int budget = 64; budget > 0 && rx_one(n); budget--)
		any = true;
	any |= tx_reclaim(n);
	if (!n->stopped)
		any |= refill(n);
	if (!n->stopped && n->rx_posted)
		virtq_watchdog(&n->rxq, time_ns());
	uint64_t now = time_ns();
	if (now - n->link_checked_ns >= LINK_CHECK_NS) {
		n->link_checked_ns = now;
		bool up = read_link(n);
		if (up != n->link_up) {
			n->link_up = up;
			klog("%s: link %s", n->name, up ? "up" : "down");
		}
	}
	return any;
}

/* Queues one frame; the header goes in the slot (a descriptor of its own) or, inline, just
 * before the frame. */
static int tx_add(struct virtio_net *n, const struct virtq_buf *segs, unsigned nseg, const struct virtio_net_csum *csum,
                  void *cookie, bool inline_hdr)
{
	struct virtq_buf b[VIRTIO_NET_MAX_TX_SEGS + 1];
	if (n->stopped)
		return -EIO;
	if (nseg == 0 || nseg > VIRTIO_NET_MAX_TX_SEGS || !cookie || (csum && !has(n, VIRTIO_NET_F_CSUM)))
		return -EINVAL;
	/* §5.1.6.2 (legacy interface): without ANY_LAYOUT a legacy device wants the header in a
	 * descriptor of its own. */
	if (inline_hdr && !n->vd.modern && !has(n, VIRTIO_F_ANY_LAYOUT))
		return -EINVAL;
	uint64_t total = 0;
	for (unsigned i = 0; i < nseg; i++)
		total += segs[i].len;
	/* §5.1.6.2: "The driver MUST NOT send ... frames larger than mtu" (plus the
	 * Ethernet header and a VLAN tag). */
	if (total < 14 || total > 18u + n->mtu)
		return -EINVAL;
	if (csum && (csum->start >= total || (uint64_t)csum->start + csum->offset + 2 > total))
		return -EINVAL;
	struct tx_slot *s = n->tx_free;
	if (!s)
		return -ENOSPC;
	struct virtio_net_hdr hdr = {.gso_type = VIRTIO_NET_HDR_GSO_NONE};
	if (csum) {
		hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		hdr.csum_start = csum->start;
		hdr.csum_offset = csum->offset;
	}
	unsigned nb;
	if (inline_hdr) {
		uint8_t *at = (uint8_t *)segs[0].addr - n->hdr_len;
		memcpy(at, &hdr, n->hdr_len);
		b[0] = (struct virtq_buf){at, n->hdr_len + segs[0].len};
		memcpy(&b[1], segs + 1, (nseg - 1) * sizeof(*segs));
		nb = nseg;
	} else {
		s->hdr = hdr;
		b[0] = (struct virtq_buf){&s->hdr, n->hdr_len};
		memcpy(&b[1], segs, nseg * sizeof(*segs));
		nb = nseg + 1;
	}
	int err = virtq_add(&n->txq, b, nb, 0, s);
	if (err == -EIO)
		stop_broken_queue(n, &n->txq);
	if (err)
		return err;
	n->tx_free = s->next_free;
	s->cookie = cookie;
	n->tx_inflight++;
	n->tx_frames++;
	n->tx_bytes += total;
	return 0;
}

int virtio_net_tx(struct virtio_net *n, const struct virtq_buf *segs, unsigned nseg, const struct virtio_net_csum *csum,
                  void *cookie)
{
	return tx_add(n, segs, nseg, csum, cookie, false);
}

int virtio_net_tx_inline(struct virtio_net *n, const struct virtq_buf *segs, unsigned nseg,
                         const struct virtio_net_csum *csum, void *cookie)
{
	return tx_add(n, segs, nseg, csum, cookie, true);
}

void virtio_net_kick(struct virtio_net *n)
{
	if (!n->stopped)
		virtq_kick(&n->txq);
}
