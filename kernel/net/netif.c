/*
 * kernel/net/netif.c: the glue between lwIP and the virtio-net driver, one struct nic per NIC.
 * Implements: lwIP 2.1.3's netif driver interface (src/include/lwip/netif.h: init, input,
 *             linkoutput) over drivers/virtio_net.h.
 * Try it:     scripts/run --net user netinfo (the boot log shows eth0 and its DHCP address)
 *
 * The driver never calls lwIP; it calls the four functions registered here.
 *
 * Receive, without a copy: each receive buffer is the tail of a struct rx_buf that starts
 * with a pbuf_custom. A received frame goes to lwIP as a chain of PBUF_REF custom pbufs over
 * the buffers themselves (one per piece with mergeable buffers); when lwIP frees the last
 * reference, rx_pbuf_free() keeps the buffer for the next refill. The driver refills the ring
 * at once, so data lwIP holds on to (queued, out of order, fragments) costs memory, not ring
 * slots.
 *
 * Transmit, without a copy: the segments of lwIP's pbuf chain go to the device as they are,
 * with a reference held (pbuf_ref) until the device is done (tx_done); the virtio-net header
 * goes in the room lwIP leaves before the frame when there is some. lwIP does not
 * retransmit a segment whose pbuf we still hold, so the driver reclaims on every poll.
 *
 * Checksums: with VIRTIO_NET_F_CSUM lwIP stops computing TCP checksums for the netif and
 * tx_csum() (offload.c) puts the pseudo-header sum in the field for the device to complete; with
 * VIRTIO_NET_F_GUEST_CSUM a frame the device vouched for is given to lwIP with TCP and UDP
 * checksum checks off for just that frame (NO_SYS: ethernet_input() handles it to the end
 * before it returns).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../kernel.h"
#include "lwip/etharp.h"
#include "lwip/ethip6.h"
#include "lwip/pbuf.h"
#include "lwip/snmp.h"
#include "netif/ethernet.h"
#include "nic.h"
#include "offload.h"

struct rx_buf {
	struct pbuf_custom pc; /* first: lwIP's pbuf is our struct */
	struct rx_buf *next;   /* in the spare list */
	uint32_t size;         /* bytes of data[] */
	uint8_t data[] __attribute__((aligned(64)));
};

/* Buffers lwIP gave back, for the next refill: malloc and free cost more than a list. */
#define SPARE_MAX 1024
static struct rx_buf *spare;
static unsigned nspare;

static struct rx_buf *rx_buf_of(void *data)
{
	return (struct rx_buf *)((uint8_t *)data - offsetof(struct rx_buf, data));
}

static void rx_buf_release(struct rx_buf *rb)
{
	if (rb->size == VIRTIO_NET_RX_BUF && nspare < SPARE_MAX) {
		rb->next = spare;
		spare = rb;
		nspare++;
	} else
		free(rb);
}

/* lwIP freed the last reference to a received piece. */
static void rx_pbuf_free(struct pbuf *p) { rx_buf_release((struct rx_buf *)p); }

static void *rx_alloc(void *ctx, uint32_t size)
{
	(void)ctx;
	struct rx_buf *rb;
	if (size == VIRTIO_NET_RX_BUF && spare) {
		rb = spare;
		spare = rb->next;
		nspare--;
	} else {
		rb = malloc(sizeof(*rb) + size);
		if (!rb)
			return NULL;
		rb->size = size;
	}
	return rb->data;
}

static void rx_free(void *ctx, void *buf)
{
	(void)ctx;
	rx_buf_release(rx_buf_of(buf));
}

static void rx_frame(void *ctx, const struct virtio_net_piece *pieces, unsigned n, bool csum_valid)
{
	struct nic *nic = ctx;
	struct pbuf *head = NULL;
	for (unsigned i = 0; i < n; i++) {
		struct rx_buf *rb = rx_buf_of(pieces[i].buf);
		rb->pc.custom_free_function = rx_pbuf_free;
		/* The driver checked off + len against the buffer; len fits u16 (buffers are small). */
		struct pbuf *p = pbuf_alloced_custom(PBUF_RAW, (u16_t)pieces[i].len, PBUF_REF, &rb->pc,
		                                     rb->data + pieces[i].off, (u16_t)pieces[i].len);
		kassert(p); /* NULL only for a piece longer than its buffer, which the driver refused */
		if (head)
			pbuf_cat(head, p);
		else
			head = p;
	}
	u16_t saved = nic->netif.chksum_flags;
	if (csum_valid)
		nic->netif.chksum_flags &= ~(NETIF_CHECKSUM_CHECK_TCP | NETIF_CHECKSUM_CHECK_UDP);
	err_t err = nic->netif.input(head, &nic->netif);
	nic->netif.chksum_flags = saved;
	if (err != ERR_OK)
		pbuf_free(head);
}

static void tx_done(void *ctx, void *cookie)
{
	(void)ctx;
	pbuf_free(cookie);
}

static const struct virtio_net_ops ops = {rx_alloc, rx_frame, rx_free, tx_done};

/* A TCP segment's partial checksum for the device (offload.c). lwIP builds the Ethernet, IP
 * and TCP headers of a segment in its first pbuf. False for a frame that is not TCP: lwIP
 * computed that one's checksums itself. */
static bool tx_csum(struct pbuf *p, struct virtio_net_csum *c)
{
	return net_tcp_csum_partial(p->payload, p->len, p->tot_len, &c->start, &c->offset);
}

/* How long a sender waits for the device to free transmit room before it drops the frame. */
#define TX_WAIT_NS 10000000ull

static err_t linkoutput(struct netif *netif, struct pbuf *p)
{
	struct nic *nic = (struct nic *)netif;
	struct virtq_buf segs[VIRTIO_NET_MAX_TX_SEGS];
	unsigned n = 0;
	if (!virtio_net_link_up(nic->dev)) {
		nic->tx_dropped++;
		return ERR_IF;
	}
	for (struct pbuf *q = p; q; q = q->next)
		n += q->len != 0;
	struct pbuf *send = p;
	if (n > VIRTIO_NET_MAX_TX_SEGS) {
		/* A long chain (many small writes): one copy beats running out of descriptors. */
		send = pbuf_clone(PBUF_RAW, PBUF_RAM, p);
		if (!send) {
			nic->tx_dropped++;
			return ERR_MEM;
		}
	} else
		pbuf_ref(p);
	n = 0;
	for (struct pbuf *q = send; q; q = q->next)
		if (q->len)
			segs[n++] = (struct virtq_buf){q->payload, q->len};

	struct virtio_net_csum csum, *cs = NULL;
	if (nic->info.csum_tx && tx_csum(send, &csum))
		cs = &csum;

	/* lwIP allocates its frames with PBUF_LINK_ENCAPSULATION_HLEN bytes of room in front:
	 * the header goes there, in the frame's own descriptor, when the device allows it.
	 * (Asking to add the header and taking it off again is lwIP's way to ask for room.) */
	bool room = nic->info.hdr_inline && pbuf_add_header(send, nic->info.hdr_len) == 0;
	if (room)
		pbuf_remove_header(send, nic->info.hdr_len);
	int (*tx)(struct virtio_net *, const struct virtq_buf *, unsigned, const struct virtio_net_csum *, void *) =
	    room ? virtio_net_tx_inline : virtio_net_tx;
	int err = tx(nic->dev, segs, n, cs, send);
	if (err == -ENOSPC) {
		/* The ring is full of frames the device has not taken yet: reclaim while it
		 * works through them. Only reclaim: receiving here would re-enter lwIP. */
		uint64_t until = time_ns() + TX_WAIT_NS;
		do {
			virtio_net_reclaim(nic->dev);
			err = tx(nic->dev, segs, n, cs, send);
		} while (err == -ENOSPC && time_ns() < until);
	}
	if (err) {
		pbuf_free(send);
		nic->tx_dropped++;
		return err == -ENOSPC ? ERR_MEM : ERR_IF;
	}
	virtio_net_kick(nic->dev);
	return ERR_OK;
}

static err_t nic_netif_init(struct netif *netif)
{
	struct nic *nic = (struct nic *)netif;
	netif->name[0] = 'e';
	netif->name[1] = 'n';
	netif->hwaddr_len = ETH_HWADDR_LEN;
	memcpy(netif->hwaddr, nic->info.mac, ETH_HWADDR_LEN);
	netif->mtu = nic->info.mtu;
	netif->mtu6 = nic->info.mtu;
	netif->flags =
	    NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_IGMP | NETIF_FLAG_MLD6;
	netif->output = etharp_output;
	netif->output_ip6 = ethip6_output;
	netif->linkoutput = linkoutput;
	netif->hostname = "ringlet";
	uint16_t flags = NETIF_CHECKSUM_ENABLE_ALL;
	if (nic->info.csum_tx)
		flags &= ~NETIF_CHECKSUM_GEN_TCP; /* the device completes tx_csum()'s partial sum */
	NETIF_SET_CHECKSUM_CTRL(netif, flags);
	return ERR_OK;
}

int nic_add(struct nic *nic, struct virtio_net *dev)
{
	nic->dev = dev;
	virtio_net_info(dev, &nic->info);
	virtio_net_features(dev, nic->features, sizeof(nic->features));
	if (!netif_add(&nic->netif, IP4_ADDR_ANY4, IP4_ADDR_ANY4, IP4_ADDR_ANY4, nic, nic_netif_init, ethernet_input))
		return -ENOMEM;
	virtio_net_attach(dev, &ops, nic);
	return 0;
}

bool nic_poll(struct nic *nic) { return virtio_net_poll(nic->dev); }
