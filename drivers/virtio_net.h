/*
 * drivers/virtio_net.h: what the virtio-net driver offers the network glue (kernel/net/netif.c).
 *
 * The driver moves Ethernet frames between memory and the device and never calls the TCP/IP
 * stack: the glue registers callbacks (struct virtio_net_ops) that hand it receive buffers,
 * take received frames and learn when a transmitted frame's memory is free again.
 */
#ifndef RINGLET_VIRTIO_NET_H
#define RINGLET_VIRTIO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio/virtq.h"

struct virtio_dev;
struct virtio_net;

/* Feature bits (Virtual I/O Device (VIRTIO) Version 1.2, §5.1.3). */
#define VIRTIO_NET_F_CSUM       0  /* the device completes partial transmit checksums */
#define VIRTIO_NET_F_GUEST_CSUM 1  /* the driver handles received packets with partial checksums */
#define VIRTIO_NET_F_MTU        3  /* config mtu is valid: the largest MTU the driver should use */
#define VIRTIO_NET_F_MAC        5  /* config mac is valid */
#define VIRTIO_NET_F_MRG_RXBUF  15 /* a received packet may span several buffers */
#define VIRTIO_NET_F_STATUS     16 /* config status is valid */

/* struct virtio_net_config (§5.1.4): byte offsets, read through virtio_config_read(). */
#define VIRTIO_NET_CFG_MAC    0  /* u8[6], RO, with VIRTIO_NET_F_MAC */
#define VIRTIO_NET_CFG_STATUS 6  /* le16, RO, with VIRTIO_NET_F_STATUS */
#define VIRTIO_NET_CFG_MTU    10 /* le16, RO, with VIRTIO_NET_F_MTU */
#define VIRTIO_NET_S_LINK_UP  1  /* status bit */

/* struct virtio_net_hdr (§5.1.6): before every frame, both ways. */
struct virtio_net_hdr {
	uint8_t flags;        /* VIRTIO_NET_HDR_F_* */
	uint8_t gso_type;     /* VIRTIO_NET_HDR_GSO_NONE: Ringlet negotiates no segmentation offload */
	uint16_t hdr_len;     /* with GSO only */
	uint16_t gso_size;    /* with GSO only */
	uint16_t csum_start;  /* NEEDS_CSUM: where checksumming starts (from the frame's first byte) */
	uint16_t csum_offset; /* NEEDS_CSUM: where after csum_start the sum is stored */
	uint16_t num_buffers; /* receive, with VIRTIO_F_VERSION_1 or MRG_RXBUF: buffers of the packet */
};
_Static_assert(sizeof(struct virtio_net_hdr) == 12, "virtio_net_hdr");
/* The header is 12 bytes with VIRTIO_F_VERSION_1 or MRG_RXBUF, else 10 (legacy: no num_buffers). */
#define VIRTIO_NET_HDR_LEGACY_LEN   10
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1 /* the checksum at csum_start + csum_offset is partial */
#define VIRTIO_NET_HDR_F_DATA_VALID 2 /* receive: the device checked the checksum */
#define VIRTIO_NET_HDR_GSO_NONE     0

#define VIRTIO_NET_MAX_NICS 8
/* Bytes of one receive buffer with mergeable buffers (and the least without). */
#define VIRTIO_NET_RX_BUF 2048
/* Pieces one received frame may come in: 64 KiB + headers in 2 KiB buffers. */
#define VIRTIO_NET_MAX_PIECES 34
/* Segments (besides the header) one transmitted frame may have. */
#define VIRTIO_NET_MAX_TX_SEGS 16

/* One piece of a received frame: bytes [off, off + len) of a buffer rx_alloc gave. */
struct virtio_net_piece {
	void *buf;
	uint32_t off, len;
};

struct virtio_net_ops {
	/* A buffer of `size` bytes for the receive queue (contiguous, identity mapped), or NULL
	 * when there is no memory: the driver tries again on a later poll. */
	void *(*rx_alloc)(void *ctx, uint32_t size);
	/* A frame arrived in n pieces; the buffers now belong to the glue. csum_valid: the
	 * device vouched for the checksums (DATA_VALID, or a partial sum the driver completed). */
	void (*rx_frame)(void *ctx, const struct virtio_net_piece *pieces, unsigned n, bool csum_valid);
	/* A buffer given back without a frame in it (a bad packet, a stopped device). */
	void (*rx_free)(void *ctx, void *buf);
	/* The device is done with a transmitted frame's memory. */
	void (*tx_done)(void *ctx, void *cookie);
};

/* Partial checksum for the device to complete (VIRTIO_NET_F_CSUM): the 16-bit ones'
 * complement sum from frame byte `start` to the end goes at `start + offset`. */
struct virtio_net_csum {
	uint16_t start, offset;
};

struct virtio_net_info {
	char name[8];          /* "eth0" */
	char where[24];        /* "00:02.0" or "mmio 0xfeb00e00" */
	const char *transport; /* "pci", "pci-legacy", "mmio", ... */
	uint8_t mac[6];
	bool mac_from_device; /* false: made up (locally administered), the device had none */
	uint16_t mtu;
	bool csum_tx, csum_rx, mrg_rxbuf, event_idx, modern;
	uint32_t rx_buf_size;
	uint16_t rx_queue, tx_queue; /* queue sizes */
	uint16_t hdr_len;            /* bytes of struct virtio_net_hdr in use: 12, or 10 (legacy) */
	bool hdr_inline;             /* virtio_net_tx_inline() may be used */
	char wake[16];               /* the wake-up interrupt: "msix", "irq 5", "timer only" */
};

/* Takes a device a transport found (and reset); note gets "eth0 52:54:00:12:34:56".
 * Returns 0 or a negative errno. */
int virtio_net_probe(const struct virtio_dev *found, char *note, size_t note_len);
int virtio_net_count(void);
struct virtio_net *virtio_net_get(int i);
void virtio_net_info(const struct virtio_net *n, struct virtio_net_info *info);
/* The features taken, as words for the log: "mac status mrg_rxbuf csum guest_csum". */
void virtio_net_features(const struct virtio_net *n, char *buf, size_t len);

/* Registers the glue's callbacks and fills the receive queue. */
void virtio_net_attach(struct virtio_net *n, const struct virtio_net_ops *ops, void *ctx);
/* Receives, reclaims transmit buffers, refills, watches the link. True when it did work. */
bool virtio_net_poll(struct virtio_net *n);
/* Queues one frame of nseg segments (<= VIRTIO_NET_MAX_TX_SEGS); the driver adds the
 * virtio-net header. csum: NULL, or a partial checksum (only with info.csum_tx). The memory
 * must stay until tx_done(cookie). 0, -ENOSPC (queue full: poll, then retry), -EINVAL,
 * -EIO (the device is stopped). */
int virtio_net_tx(struct virtio_net *n, const struct virtq_buf *segs, unsigned nseg, const struct virtio_net_csum *csum,
                  void *cookie);
/* The same, with the header in the info.hdr_len bytes just before segs[0].addr, which the
 * caller owns and the driver may write: header and frame then share a descriptor, and the
 * queue holds twice as many frames. Only when info.hdr_inline (the device accepts any
 * layout: VIRTIO_F_VERSION_1 or VIRTIO_F_ANY_LAYOUT, §5.1.6.2); else -EINVAL. */
int virtio_net_tx_inline(struct virtio_net *n, const struct virtq_buf *segs, unsigned nseg,
                         const struct virtio_net_csum *csum, void *cookie);
/* Reclaims used transmit chains only (tx_done for each); for a sender waiting for room,
 * which must not receive (it may be inside the stack). True when any came back. */
bool virtio_net_reclaim(struct virtio_net *n);
/* Notifies the device of the frames queued since the last kick (one exit per batch). */
void virtio_net_kick(struct virtio_net *n);
bool virtio_net_link_up(const struct virtio_net *n);
/* Whether the device has a wake-up interrupt (virtio_irq_setup()): only then is arming worth it. */
bool virtio_net_can_wake(const struct virtio_net *n);
/* Wake-up interrupts the device has raised since boot. */
uint64_t virtio_net_wakeups(const struct virtio_net *n);
/* Before the wait loop halts: used-buffer notifications on for the receive queue; true when
 * frames already wait (then poll, do not halt). After: off again. */
bool virtio_net_arm(struct virtio_net *n);
void virtio_net_disarm(struct virtio_net *n);
/* Frames the transmit ring can take now (one slot each; a frame of many pieces may still not
 * fit its descriptors, and then virtio_net_tx() says -ENOSPC). */
unsigned virtio_net_tx_free(const struct virtio_net *n);
/* For a sender waiting for room, before the loop halts (with virtio_net_arm()): the transmit
 * queue's notification on, to come when `want` slots will be free. True when they are
 * already, or can never be (a stopped device: the sender finds out when it sends). */
bool virtio_net_arm_tx(struct virtio_net *n, unsigned want);
/* The device broke the ring rules and was stopped. */
bool virtio_net_stopped(const struct virtio_net *n);

struct virtio_net_stats {
	uint64_t rx_frames, rx_bytes, rx_dropped, tx_frames, tx_bytes;
	uint32_t rx_posted, tx_inflight;
};
void virtio_net_stats(const struct virtio_net *n, struct virtio_net_stats *st);

#endif
