/*
 * <ringlet/net.h>: the network interfaces as an application sees them, beyond the BSD
 * sockets: their names, MACs and addresses, and a wait for the network to be configured.
 *
 *	struct ringlet_netif nif;
 *	if (ringlet_net_wait(5000000000ull) == 0 && ringlet_net_info(0, &nif) == 0)
 *		printf("%s %s\n", nif.name, nif.ipv4);
 */
#ifndef RINGLET_NET_H_PUBLIC
#define RINGLET_NET_H_PUBLIC

#include <stdbool.h>
#include <stdint.h>

struct ringlet_netif {
	char name[8];       /* "eth0" */
	uint8_t mac[6];     /* from the device, or made up (locally administered) when it had none */
	uint16_t mtu;       /* bytes of IP packet */
	bool link_up;       /* the device reports its link up (and has not been stopped) */
	bool dhcp;          /* the IPv4 address came (or is to come) from DHCP */
	char ipv4[16];      /* dotted quad; "0.0.0.0" while there is none */
	unsigned prefix;    /* IPv4 prefix length */
	char gateway[16];   /* "0.0.0.0": none */
	char ipv6[48];      /* the first valid IPv6 address (link-local first), or "" */
	char features[128]; /* the virtio features taken: "v1 mac status mrg_rxbuf ..." */
	/* Counters since boot: frames the device gave us and we gave it, received frames the
	 * driver dropped (malformed), frames lwIP sent that could not be queued. */
	uint64_t rx_frames, tx_frames, rx_dropped, tx_dropped;
	uint32_t rx_posted; /* receive buffers the device holds now (the ring kept full) */
	char wake[16];      /* how the NIC wakes a halted guest: "msix", "irq 5", "timer only" */
	uint64_t wakeups;   /* interrupts it raised to do so */
};

/* Number of network interfaces. */
int ringlet_net_count(void);
/* Interface i: 0, or -1 when there is none. */
int ringlet_net_info(int i, struct ringlet_netif *out);
/* Waits up to timeout_ns until every interface has an IPv4 address: 0, or -1 (timed out,
 * or no interface at all). */
int ringlet_net_wait(uint64_t timeout_ns);
/* What the network holds in memory now, to compare before and after a load: the heap (newlib's
 * malloc: lwIP's variable-sized allocations and the driver's receive buffers come from it) and
 * lwIP's fixed pools, as elements in use. */
struct ringlet_net_mem {
	uint64_t heap_used;      /* bytes malloc has handed out and not had back */
	uint64_t heap_arena;     /* bytes the heap has taken from the kernel */
	uint32_t pbuf_pool_used; /* PBUF_POOL buffers (lwIP's own: reassembly, replies) */
	uint32_t pbuf_ref_used;  /* PBUF_REF/ROM headers */
	uint32_t tcp_pcb_used, tcp_seg_used, reass_used;
	uint32_t memp_used; /* elements in use over every pool */
};
/* Fills *out: 0. */
int ringlet_net_mem(struct ringlet_net_mem *out);
/* Gives interface i the static IPv4 address cidr ("10.0.2.15/24") and gateway gw (NULL: none)
 * in place of DHCP: 0, or -1 (no such interface, or not an address). */
int ringlet_net_set_ipv4(int i, const char *cidr, const char *gw);
/* Keeps the network running (answers ARP and ping, runs the timers) for ns nanoseconds. */
void ringlet_net_run(uint64_t ns);

#endif
