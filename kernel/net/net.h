/*
 * kernel/net/net.h: the network as the rest of the kernel sees it: lwIP over every virtio-net
 * NIC (kernel/net/netif.c), its timers and the NICs polled from the wait loop, and each
 * NIC's configuration (DHCP by default; static from the kernel options ip= gw= dns=).
 *
 * lwIP itself (the raw API, NO_SYS) is for kernel/net/ only: the socket layer
 * (kernel/net/socket.c) calls it directly, and everything runs from the wait loop, so
 * nothing needs a lock. Before lwIP is touched from outside a wait-loop poll, net_init()
 * must have run.
 */
#ifndef RINGLET_NET_H
#define RINGLET_NET_H

#include <stdbool.h>
#include <stdint.h>

#include <ringlet/net.h>

/* Starts lwIP, adds every NIC the driver found, starts DHCP or applies the static
 * configuration, and registers the network with the wait loop. Once, after drivers_init(). */
void net_init(void);
/* net_init(), then up to wait_s seconds for an IPv4 address (DHCP), so that applications
 * start with the network configured. Weak: kernel/main.c calls it only when an application
 * that uses the network linked kernel/net/ in. */
void net_start(unsigned wait_s) __attribute__((weak));
/* Whether there is any NIC at all. */
bool net_present(void);
/* Waits until every NIC has an IPv4 address (DHCP answered, or static) or deadline_ns
 * (time_ns() clock) passes: 0, -ETIMEDOUT (some NIC has none yet: DHCP goes on in the
 * background), or -ENODEV when there is no NIC. */
int net_wait_configured(uint64_t deadline_ns);
/* Keeps the network going (frames answered, timers run) until deadline_ns. */
void net_run_until(uint64_t deadline_ns);
struct netif;
/* Frames the transmit ring of the NIC behind lwIP's netif can take now (UINT32_MAX for a
 * netif that is no NIC, such as loopback). */
unsigned net_tx_free(struct netif *nif);
/*
 * For a sender that found the ring too full for `frames` frames: waits in the wait loop, which
 * halts until the device has freed most of the ring (or `frames` slots, if more), as a Linux
 * sender waits for room in its socket's send buffer. 0, or -ETIMEDOUT at deadline_ns.
 */
int net_tx_wait(struct netif *nif, unsigned frames, uint64_t deadline_ns);
/* Whether the NIC behind nif (NULL: every NIC) has that much room: poll()'s POLLOUT for UDP. */
bool net_tx_writable(struct netif *nif);
/* The NICs, for the boot log and <ringlet/net.h>: 0, or -ENODEV for no NIC i. */
int net_if_info(int i, struct ringlet_netif *out);

#endif
