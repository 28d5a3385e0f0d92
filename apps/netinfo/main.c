/*
 * netinfo: prints the network interfaces, then keeps the network running for a while.
 * Try it: scripts/run --net user netinfo                  (eth0 with its DHCP address)
 *         scripts/run --net dgram:/tmp/n.sock --append 'ip=10.0.3.15/24' netinfo -- 30
 *                                                         (answers ARP and ping for 30 s)
 *
 * One line per interface, "key=value" words the integration tests read:
 *	netif eth0 mac=52:54:00:12:34:56 ipv4=10.0.2.15/24 gw=0.0.0.0 mtu=1500 link=up dhcp=yes ...
 */
#include <stdio.h>
#include <stdlib.h>

#include <ringlet/net.h>

static void print_all(void)
{
	int n = ringlet_net_count();
	printf("netifs %d\n", n);
	for (int i = 0; i < n; i++) {
		struct ringlet_netif nif;
		if (ringlet_net_info(i, &nif) != 0)
			continue;
		printf("netif %s mac=%02x:%02x:%02x:%02x:%02x:%02x ipv4=%s/%u gw=%s mtu=%u link=%s dhcp=%s ipv6=%s "
		       "features=%s\n",
		       nif.name, nif.mac[0], nif.mac[1], nif.mac[2], nif.mac[3], nif.mac[4], nif.mac[5], nif.ipv4,
		       nif.prefix, nif.gateway, nif.mtu, nif.link_up ? "up" : "down", nif.dhcp ? "yes" : "no",
		       nif.ipv6[0] ? nif.ipv6 : "-", nif.features[0] ? nif.features : "-");
		printf("stats %s rx=%llu tx=%llu rx_dropped=%llu tx_dropped=%llu rx_posted=%u wake=%s wakeups=%llu\n",
		       nif.name, (unsigned long long)nif.rx_frames, (unsigned long long)nif.tx_frames,
		       (unsigned long long)nif.rx_dropped, (unsigned long long)nif.tx_dropped, nif.rx_posted,
		       nif.wake[0] ? nif.wake : "-", (unsigned long long)nif.wakeups);
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	/* The kernel waited (netwait=, 5 s by default) for DHCP before main(). */
	print_all();
	if (argc > 1) {
		unsigned long secs = strtoul(argv[1], NULL, 10);
		printf("serving for %lu s\n", secs);
		fflush(stdout);
		ringlet_net_run(secs * 1000000000ull);
		print_all();
	}
	return ringlet_net_count() > 0 ? 0 : 1;
}
