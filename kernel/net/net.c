/*
 * kernel/net/net.c: the network's start-up and its place in the wait loop.
 * Implements: lwIP 2.1.3 with NO_SYS (doc/NO_SYS_SampleCode.c's shape: netif_add, then
 *             input from the driver and sys_check_timeouts() from one loop), RFC 2131 DHCP
 *             through lwIP's client, RFC 4862 SLAAC through lwIP's.
 * Try it:     scripts/run --net user netinfo         (DHCP: eth0 10.0.2.15/24)
 *             scripts/run --net user --append 'ip=10.0.2.20/24 gw=10.0.2.2 dns=10.0.2.3' netinfo
 *
 * One wait source covers the network: its poll runs every NIC (frames in, transmit buffers
 * reclaimed, the receive ring refilled) and then lwIP's timers; its deadline is lwIP's next
 * timer. When every NIC has a wake-up interrupt (MSI-X, or the IOAPIC on microvm), arm turns
 * the receive queues' used-buffer notifications on before the loop halts, so a frame ends the
 * halt; a NIC without one caps the deadline at NET_POLL_NS instead, so a frame waits at most
 * that long in a halted loop.
 *
 * Each NIC takes a static address from the kernel option ip= (a comma list: eth0's, eth1's,
 * ...; "dhcp" or nothing: ask DHCP), and eth0 the gateway gw= and name server dns=. Every NIC
 * also gets an IPv6 link-local address and SLAAC.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../kernel.h"
#include "../wait.h"

#include "lwip/dhcp.h"
#include "lwip/memp.h"
#include "lwip/priv/memp_priv.h"
#include "lwip/dns.h"
#include "lwip/init.h"
#include "lwip/ip4_addr.h"
#include "lwip/netif.h"
#include "lwip/timeouts.h"
#include "net.h"
#include "nic.h"

static struct nic nics[VIRTIO_NET_MAX_NICS];
static int nnics;
static bool started;
static bool addresses_changed; /* set by lwIP's callback; the log line waits for the whole change */

static void log_addresses(struct nic *nic);

bool net_present(void) { return nnics > 0; }

static bool net_poll(void *ctx)
{
	(void)ctx;
	bool any = false;
	for (int i = 0; i < nnics; i++) {
		struct nic *nic = &nics[i];
		any |= nic_poll(nic);
		bool up = virtio_net_link_up(nic->dev);
		if (up != nic->link_up) {
			nic->link_up = up;
			if (up)
				netif_set_link_up(&nic->netif);
			else
				netif_set_link_down(&nic->netif);
		}
	}
	sys_check_timeouts();
	/* lwIP reports an address, then the netmask, then the gateway, one callback each:
	 * log once the pass is over and all three are in. */
	if (addresses_changed) {
		addresses_changed = false;
		for (int i = 0; i < nnics; i++)
			log_addresses(&nics[i]);
	}
	return any;
}

/*
 * lwIP's next timer; and, when some NIC cannot wake the loop (see the top), at most
 * NET_POLL_NS away, so that a frame arriving while the loop halts waits that long at most.
 */
#define NET_POLL_NS 1000000ull
static bool all_can_wake; /* every NIC has a wake-up interrupt: arm, and no cap */

static uint64_t net_deadline(void *ctx)
{
	(void)ctx;
	uint64_t now = time_ns();
	u32_t ms = sys_timeouts_sleeptime();
	uint64_t next = ms == SYS_TIMEOUTS_SLEEPTIME_INFINITE ? WAIT_FOREVER : now + (uint64_t)ms * 1000000;
	if (all_can_wake)
		return next;
	return next < now + NET_POLL_NS ? next : now + NET_POLL_NS;
}

/*
 * Transmit room. A sender that finds a NIC's ring full waits for most of it to be free again
 * (tx_room_wanted()), not for one slot: the loop then halts while the device works through
 * the frames queued, and the frames still queued when it wakes keep the device busy while the
 * sender refills. poll() calls a UDP socket writable at the same mark, as Linux calls a socket
 * writable when half its send buffer is free. Spinning beside the device instead took, on a
 * host core shared with QEMU, the time QEMU needed to send the frames.
 */
static unsigned tx_frames_waited; /* net_tx_wait(): frames the waiting sender needs */

static unsigned tx_room_wanted(const struct nic *nic)
{
	unsigned size = nic->info.tx_queue, want = size - size / 4;
	unsigned need = tx_frames_waited > size ? size : tx_frames_waited;
	return need > want ? need : want;
}

static struct nic *nic_of(struct netif *nif)
{
	for (int i = 0; i < nnics; i++)
		if (&nics[i].netif == nif)
			return &nics[i];
	return NULL;
}

unsigned net_tx_free(struct netif *nif)
{
	struct nic *nic = nic_of(nif);
	return nic ? virtio_net_tx_free(nic->dev) : UINT32_MAX;
}

bool net_tx_writable(struct netif *nif)
{
	for (int i = 0; i < nnics; i++)
		if ((!nif || &nics[i].netif == nif) && virtio_net_link_up(nics[i].dev) &&
		    virtio_net_tx_free(nics[i].dev) < tx_room_wanted(&nics[i]))
			return false;
	return true;
}

static bool cond_tx_room(void *arg)
{
	struct nic *nic = arg;
	return virtio_net_tx_free(nic->dev) >= tx_room_wanted(nic) || virtio_net_stopped(nic->dev);
}

int net_tx_wait(struct netif *nif, unsigned frames, uint64_t deadline_ns)
{
	struct nic *nic = nic_of(nif);
	if (!nic)
		return 0;
	tx_frames_waited = frames;
	int r = wait_until(cond_tx_room, nic, deadline_ns);
	tx_frames_waited = 0;
	return r;
}

static bool net_arm(void *ctx)
{
	(void)ctx;
	bool pending = false;
	for (int i = 0; i < nnics; i++) {
		pending |= virtio_net_arm(nics[i].dev);
		/* A ring this full may have a sender waiting, in send() or poll(): wake it when
		 * the room it waits for is there. */
		unsigned want = tx_room_wanted(&nics[i]);
		if (virtio_net_tx_free(nics[i].dev) < want)
			pending |= virtio_net_arm_tx(nics[i].dev, want);
	}
	return pending;
}

static void net_disarm(void *ctx)
{
	(void)ctx;
	for (int i = 0; i < nnics; i++)
		virtio_net_disarm(nics[i].dev);
}

static struct wait_source net_source = {.name = "net", .poll = net_poll, .deadline = net_deadline};

static const char *mac_text(const uint8_t *m, char buf[18])
{
	ksnprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
	return buf;
}

/* "10.0.2.15/24", "fe80::..." etc. for the log: one line per new address. */
static void log_addresses(struct nic *nic)
{
	struct netif *nif = &nic->netif;
	if (!ip4_addr_isany_val(*netif_ip4_addr(nif)) && !nic->v4_logged) {
		char ip[16], gw[16], dns[16] = "none";
		ip4addr_ntoa_r(netif_ip4_addr(nif), ip, sizeof(ip));
		ip4addr_ntoa_r(netif_ip4_gw(nif), gw, sizeof(gw));
		const ip_addr_t *d = dns_getserver(0);
		if (IP_IS_V4(d) && !ip4_addr_isany_val(*ip_2_ip4(d)))
			ip4addr_ntoa_r(ip_2_ip4(d), dns, sizeof(dns));
		int prefix = __builtin_popcount(ip4_addr_get_u32(netif_ip4_netmask(nif)));
		klog("%s: %s/%d gateway %s dns %s (%s)", nic->info.name, ip, prefix, gw, dns,
		     nic->dhcp ? "DHCP" : "static");
		nic->v4_logged = true;
	} else if (ip4_addr_isany_val(*netif_ip4_addr(nif)))
		nic->v4_logged = false;
	for (int i = 0; i < LWIP_IPV6_NUM_ADDRESSES; i++) {
		bool valid = ip6_addr_isvalid(netif_ip6_addr_state(nif, i));
		if (valid && !(nic->v6_logged & (1u << i))) {
			char a[48];
			ip6addr_ntoa_r(netif_ip6_addr(nif, i), a, sizeof(a));
			klog("%s: %s (IPv6 %s)", nic->info.name, a, i == 0 ? "link-local" : "SLAAC");
		}
		if (valid)
			nic->v6_logged |= 1u << i;
		else
			nic->v6_logged &= ~(1u << i);
	}
}

static void ext_status(struct netif *nif, netif_nsc_reason_t reason, const netif_ext_callback_args_t *args)
{
	(void)args;
	(void)nif;
	if (reason &
	    (LWIP_NSC_IPV4_SETTINGS_CHANGED | LWIP_NSC_IPV4_ADDRESS_CHANGED | LWIP_NSC_IPV6_ADDR_STATE_CHANGED))
		addresses_changed = true;
}

unsigned short ringlet_dns_port = 53; /* lwipopts.h's DNS_SERVER_PORT */

/* "ADDR" or "ADDR<sep>N" (N in decimal, at most max) into addr and *n (left alone when the
 * word has no sep); false when it is neither. */
static bool parse_addr_number(const char *s, char sep, ip4_addr_t *addr, unsigned long max, unsigned long *n)
{
	char buf[24];
	const char *at = strchr(s, sep);
	size_t len = at ? (size_t)(at - s) : strlen(s);
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (!ip4addr_aton(buf, addr))
		return false;
	if (!at)
		return true;
	const char *c = at + 1;
	unsigned long v = 0;
	if (!*c)
		return false;
	for (; *c; c++) {
		if (*c < '0' || *c > '9' || v > max)
			return false;
		v = v * 10 + (unsigned long)(*c - '0');
	}
	if (v > max)
		return false;
	*n = v;
	return true;
}

/* "10.0.2.3" or "10.0.2.2:5353" into addr and port (left alone when the
 * word names none); false when it is neither. */
static bool parse_dns(const char *s, ip4_addr_t *addr, unsigned short *port)
{
	unsigned long p = *port;
	if (!parse_addr_number(s, ':', addr, 65535, &p) || p == 0)
		return false;
	*port = (unsigned short)p;
	return true;
}

/* "10.0.2.15/24" (no prefix: /24) into addr and netmask; false when it is not that. */
static bool parse_cidr(const char *s, ip4_addr_t *addr, ip4_addr_t *mask)
{
	unsigned long prefix = 24;
	if (!parse_addr_number(s, '/', addr, 32, &prefix))
		return false;
	ip4_addr_set_u32(mask, prefix ? lwip_htonl(0xffffffffu << (32 - prefix)) : 0);
	return true;
}

/*
 * The static configuration of NIC `index`: the index-th word of ip=ADDR/PREFIX[,ADDR/PREFIX...]
 * ("dhcp" for one that asks DHCP); gw= and dns= go with eth0. False (with a log line for a
 * malformed one) when the NIC is to ask DHCP.
 */
static bool static_config(struct nic *nic, int index)
{
	ip4_addr_t addr, mask, gw = {0}, dns;
	char word[24];
	const char *s = kopt.net_ip;
	for (int i = 0; s && i < index; i++) {
		s = strchr(s, ',');
		s = s ? s + 1 : NULL;
	}
	if (!s || !*s)
		return false;
	size_t n = strcspn(s, ",");
	if (n >= sizeof(word)) {
		klog("%s: ip= word too long: asking DHCP instead", nic->info.name);
		return false;
	}
	memcpy(word, s, n);
	word[n] = '\0';
	if (strcmp(word, "dhcp") == 0)
		return false;
	if (!parse_cidr(word, &addr, &mask)) {
		klog("%s: ip=%s is not ADDR/PREFIX: asking DHCP instead", nic->info.name, word);
		return false;
	}
	if (index == 0 && kopt.net_gw && !ip4addr_aton(kopt.net_gw, &gw)) {
		klog("%s: gw=%s is not an address: no gateway", nic->info.name, kopt.net_gw);
		ip4_addr_set_zero(&gw);
	}
	if (index == 0 && kopt.net_dns) {
		if (parse_dns(kopt.net_dns, &dns, &ringlet_dns_port)) {
			ip_addr_t d;
			ip_addr_copy_from_ip4(d, dns);
			dns_setserver(0, &d);
		} else
			klog("dns=%s is not ADDR or ADDR:PORT (ignored)", kopt.net_dns);
	}
	netif_set_addr(&nic->netif, &addr, &mask, &gw);
	return true;
}

void net_init(void)
{
	static netif_ext_callback_t ext_cb;
	if (started)
		return;
	started = true;
	if (virtio_net_count() == 0)
		return; /* no NIC: lwIP stays unstarted, and costs nothing */
	lwip_init();
	netif_add_ext_callback(&ext_cb, ext_status);
	for (int i = 0; i < virtio_net_count() && nnics < VIRTIO_NET_MAX_NICS; i++) {
		struct nic *nic = &nics[nnics];
		memset(nic, 0, sizeof(*nic));
		if (nic_add(nic, virtio_net_get(i)) != 0) {
			klog("eth%d: lwIP has no room for another interface", i);
			continue;
		}
		nnics++;
		char mac[18];
		klog("%s: %s %s, mtu %u, %s%s", nic->info.name, nic->info.transport, nic->info.where, nic->info.mtu,
		     mac_text(nic->info.mac, mac), nic->info.mac_from_device ? "" : " (made up)");
		klog("%s: features: %s", nic->info.name, nic->features[0] ? nic->features : "none");
		if (i == 0)
			netif_set_default(&nic->netif);
		nic->link_up = virtio_net_link_up(nic->dev);
		if (nic->link_up)
			netif_set_link_up(&nic->netif);
		netif_set_up(&nic->netif);
		nic->dhcp = !static_config(nic, i);
		if (nic->dhcp)
			dhcp_start(&nic->netif);
		netif_create_ip6_linklocal_address(&nic->netif, 1);
		netif_set_ip6_autoconfig_enabled(&nic->netif, 1);
		log_addresses(nic);
	}
	all_can_wake = nnics > 0;
	for (int i = 0; i < nnics; i++)
		all_can_wake &= virtio_net_can_wake(nics[i].dev);
	if (all_can_wake) {
		net_source.arm = net_arm;
		net_source.disarm = net_disarm;
	}
	if (nnics)
		wait_add_source(&net_source);
}

void net_start(unsigned wait_s)
{
	net_init();
	/* A LAN without a DHCP server must not hold the boot up for long: a few seconds. */
	if (nnics && wait_s && net_wait_configured(time_ns() + wait_s * NSEC_PER_SEC) != 0)
		for (int i = 0; i < nnics; i++)
			if (ip4_addr_isany_val(*netif_ip4_addr(&nics[i].netif)))
				klog("%s: no IPv4 address after %u s; starting the application anyway",
				     nics[i].info.name, wait_s);
}

/* Every NIC has its IPv4 address (static, or from DHCP). */
static bool configured(void *arg)
{
	(void)arg;
	for (int i = 0; i < nnics; i++)
		if (ip4_addr_isany_val(*netif_ip4_addr(&nics[i].netif)))
			return false;
	return true;
}

int net_wait_configured(uint64_t deadline_ns)
{
	if (!nnics)
		return -ENODEV;
	return wait_until(configured, NULL, deadline_ns);
}

void net_run_until(uint64_t deadline_ns)
{
	if (nnics)
		wait_until(NULL, NULL, deadline_ns);
	else
		time_sleep_ns(deadline_ns > time_ns() ? deadline_ns - time_ns() : 0);
}

int net_if_info(int i, struct ringlet_netif *out)
{
	if (i < 0 || i >= nnics)
		return -ENODEV;
	struct nic *nic = &nics[i];
	struct netif *nif = &nic->netif;
	memset(out, 0, sizeof(*out));
	memcpy(out->name, nic->info.name, sizeof(out->name));
	memcpy(out->mac, nic->info.mac, 6);
	out->mtu = nif->mtu;
	out->link_up = virtio_net_link_up(nic->dev);
	out->dhcp = nic->dhcp;
	ip4addr_ntoa_r(netif_ip4_addr(nif), out->ipv4, sizeof(out->ipv4));
	out->prefix = (unsigned)__builtin_popcount(ip4_addr_get_u32(netif_ip4_netmask(nif)));
	ip4addr_ntoa_r(netif_ip4_gw(nif), out->gateway, sizeof(out->gateway));
	for (int a = 0; a < LWIP_IPV6_NUM_ADDRESSES; a++)
		if (ip6_addr_isvalid(netif_ip6_addr_state(nif, a))) {
			ip6addr_ntoa_r(netif_ip6_addr(nif, a), out->ipv6, sizeof(out->ipv6));
			break;
		}
	memcpy(out->features, nic->features, sizeof(out->features));
	struct virtio_net_stats st;
	virtio_net_stats(nic->dev, &st);
	out->rx_frames = st.rx_frames;
	out->tx_frames = st.tx_frames;
	out->rx_dropped = st.rx_dropped;
	out->tx_dropped = nic->tx_dropped;
	out->rx_posted = st.rx_posted;
	struct virtio_net_info info;
	virtio_net_info(nic->dev, &info);
	memcpy(out->wake, info.wake, sizeof(out->wake));
	out->wakeups = virtio_net_wakeups(nic->dev);
	return 0;
}

/* ---- <ringlet/net.h> ---------------------------------------------------------------- */

/*
 * A static IPv4 address for NIC i at run time, for applications that must not depend on
 * the command line (the benchmark harness passes the same one to every target): the NIC
 * stops asking DHCP. gw may be NULL (no gateway).
 */
int ringlet_net_set_ipv4(int i, const char *cidr, const char *gw)
{
	ip4_addr_t addr, mask, gwa = {0};
	if (i < 0 || i >= nnics || !cidr || !parse_cidr(cidr, &addr, &mask) || (gw && !ip4addr_aton(gw, &gwa)))
		return -1;
	struct nic *nic = &nics[i];
	if (nic->dhcp) {
		dhcp_release_and_stop(&nic->netif);
		nic->dhcp = false;
	}
	netif_set_addr(&nic->netif, &addr, &mask, &gwa);
	return 0;
}

/* Elements of one lwIP pool in use: its size less the length of its free list (LWIP_STATS is
 * off for speed, so the free list is the only count there is; MEMP_MEM_MALLOC is 0). */
static uint32_t pool_used(memp_t t)
{
	const struct memp_desc *d = memp_pools[t];
	uint32_t free = 0;
	for (struct memp *m = *d->tab; m && free < d->num; m = m->next)
		free++;
	return d->num - free;
}

/*
 * newlib 3's mallinfo() (libc/stdlib/mallocr.c) returns its own SVID struct of ten ints, not
 * the size_t one its <malloc.h> declares: _mallinfo_r copies out 40 bytes, and a caller of the
 * header's 80-byte struct reads uordblks from beyond them. Declared here as it really is.
 */
struct svid_mallinfo {
	int arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};
extern struct svid_mallinfo newlib_mallinfo(void) __asm__("mallinfo");

int ringlet_net_mem(struct ringlet_net_mem *out)
{
	struct svid_mallinfo mi = newlib_mallinfo();
	memset(out, 0, sizeof(*out));
	out->heap_used = (uint64_t)(unsigned)mi.uordblks;
	out->heap_arena = (uint64_t)(unsigned)mi.arena;
	if (!started || !nnics)
		return 0;
	out->pbuf_pool_used = pool_used(MEMP_PBUF_POOL);
	out->pbuf_ref_used = pool_used(MEMP_PBUF);
	out->tcp_pcb_used = pool_used(MEMP_TCP_PCB);
	out->tcp_seg_used = pool_used(MEMP_TCP_SEG);
	out->reass_used = pool_used(MEMP_REASSDATA);
	for (int t = 0; t < MEMP_MAX; t++)
		out->memp_used += pool_used((memp_t)t);
	return 0;
}

int ringlet_net_count(void) { return nnics; }
int ringlet_net_info(int i, struct ringlet_netif *out) { return net_if_info(i, out) == 0 ? 0 : -1; }
int ringlet_net_wait(uint64_t timeout_ns) { return net_wait_configured(time_ns() + timeout_ns) == 0 ? 0 : -1; }
void ringlet_net_run(uint64_t ns) { net_run_until(time_ns() + ns); }
