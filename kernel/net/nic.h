/*
 * kernel/net/nic.h: between net.c (start-up, configuration, the wait loop) and netif.c (the
 * glue that passes frames between lwIP and the virtio-net driver). Private to kernel/net/.
 */
#ifndef RINGLET_NET_NIC_H
#define RINGLET_NET_NIC_H

#include <stdbool.h>

#include "../../drivers/virtio_net.h"
#include "lwip/netif.h"

struct nic {
	struct netif netif; /* first: lwIP hands us &nic->netif */
	struct virtio_net *dev;
	struct virtio_net_info info;
	char features[128]; /* virtio_net_features(), for the log */
	bool dhcp;          /* asks DHCP (no static configuration) */
	bool link_up;
	bool v4_logged;      /* the address line was printed */
	unsigned v6_logged;  /* bit per IPv6 address slot whose line was printed */
	uint64_t tx_dropped; /* frames lwIP gave us that could not be queued */
};

/* Registers nic->dev's callbacks and adds the lwIP netif (lwIP's name "en" + number); the
 * address is set later by net.c. 0, or -ENOMEM. */
int nic_add(struct nic *nic, struct virtio_net *dev);
/* Receives and reclaims; true when the NIC did work. */
bool nic_poll(struct nic *nic);

#endif
