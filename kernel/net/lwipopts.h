/*
 * kernel/net/lwipopts.h: how Ringlet configures lwIP 2.1.3 (build/lwip/src, from Debian's
 * `lwip` source package; every option not set here keeps lwIP's default from lwip/opt.h).
 *
 * The shape: NO_SYS (no threads, the raw API only), lwIP entered only from the kernel's wait
 * loop (kernel/net/net.c), so nothing needs locks. IPv4 with ARP, ICMP, UDP, TCP, DHCP and
 * DNS; IPv6 with SLAAC. The numbers below follow /work/shared/NETWORK-NOTES.md: large windows
 * with window scaling for throughput, bounded pcb pools with a short TIME_WAIT so a load
 * generator cannot run a server out of pcbs, and caps on what out-of-order segments and
 * fragments may hold.
 */
#ifndef RINGLET_LWIPOPTS_H
#define RINGLET_LWIPOPTS_H

/* ---- the platform --------------------------------------------------------- */
#define NO_SYS                         1 /* no threads: the raw API, driven by kernel/net/net.c */
#define SYS_LIGHTWEIGHT_PROT           0 /* lwIP runs only from the wait loop, never from an interrupt */
#define LWIP_NETCONN                   0 /* sequential APIs need threads */
#define LWIP_SOCKET                    0 /* Ringlet's own socket layer sits on the raw API (kernel/net/socket.c) */
#define LWIP_ERRNO_STDINCLUDE          1 /* newlib's <errno.h> */
#define LWIP_TIMERS                    1
#define LWIP_NETIF_HOSTNAME            1
#define LWIP_NETIF_STATUS_CALLBACK     1 /* the boot log line when DHCP gives an address */
#define LWIP_NETIF_LINK_CALLBACK       1
#define LWIP_NETIF_EXT_STATUS_CALLBACK 1
#define LWIP_SINGLE_NETIF              0          /* eth0, eth1, ... */
#define LWIP_CHECKSUM_CTRL_PER_NETIF   1          /* a NIC with checksum offload skips lwIP's checksums */
#define LWIP_CHKSUM                    net_chksum /* offload.c: 8 bytes at a time */
unsigned short net_chksum(const void *data, int len);

/* ---- memory ---------------------------------------------------------------- */
/* The heap (newlib's malloc over the kernel's pages) for lwIP's variable-sized
 * allocations; fixed pools for pcbs and segments, so that their limits hold. */
#define MEM_LIBC_MALLOC 1
#define MEMP_MEM_MALLOC 0
#define MEM_ALIGNMENT   8
#define MEM_SIZE        (1024 * 1024) /* unused with MEM_LIBC_MALLOC; lwIP's sanity checks read it */
/* Received frames arrive as pbuf_custom over the driver's buffers (kernel/net/netif.c);
 * the pool serves what lwIP allocates itself (IP reassembly, some replies). */
#define LWIP_SUPPORT_CUSTOM_PBUF 1 /* received frames in the driver's buffers */
#define PBUF_POOL_SIZE           256
#define PBUF_POOL_BUFSIZE        1536
/* Room before an Ethernet frame for the virtio-net header, so the netif can send
 * header and frame from one buffer when lwIP allocated it. */
#define PBUF_LINK_ENCAPSULATION_HLEN 12

/* ---- IPv4, ARP, ICMP, DHCP, DNS ---------------------------------------------- */
#define LWIP_IPV4                     1
#define LWIP_ARP                      1
#define ARP_TABLE_SIZE                32
#define ARP_QUEUEING                  1
#define ETHARP_SUPPORT_STATIC_ENTRIES 0
#define LWIP_ICMP                     1
#define LWIP_RAW                      1 /* ICMP sockets for ping */
#define LWIP_DHCP                     1
#define LWIP_DHCP_DOES_ACD_CHECK      0
#define DHCP_DOES_ARP_CHECK           0 /* the probe costs seconds of boot for nothing on a virtual LAN */
#define LWIP_AUTOIP                   0
#define LWIP_IGMP                     1
#define LWIP_DNS                      1
#define DNS_MAX_SERVERS               2
/* The DNS servers' UDP port: 53 unless `dns=ADDR:PORT` says otherwise (kernel/net/net.c);
 * lwIP reads it once per query, so a variable serves. */
extern unsigned short ringlet_dns_port;
#define DNS_SERVER_PORT       ringlet_dns_port
#define LWIP_DHCP_GET_NTP_SRV 0
#define IP_REASSEMBLY         1
#define IP_FRAG               1
#define IP_REASS_MAX_PBUFS    64 /* a 64 KiB UDP datagram in 1500-byte fragments is 45 */
#define MEMP_NUM_REASSDATA    8
#define IP_REASS_MAXAGE       5 /* seconds a half-reassembled datagram may hold buffers */

/* ---- IPv6 (SLAAC) -------------------------------------------------------- */
#define LWIP_IPV6                     1
#define LWIP_IPV6_AUTOCONFIG          1
#define LWIP_IPV6_MLD                 1
#define LWIP_ICMP6                    1
#define LWIP_IPV6_DHCP6               0
#define LWIP_IPV6_NUM_ADDRESSES       3
#define LWIP_ND6_ALLOW_RA_UPDATES     1
#define LWIP_IPV6_SEND_ROUTER_SOLICIT 1
#define LWIP_IPV6_DUP_DETECT_ATTEMPTS 1
#define IPV6_FRAG_COPYHEADER          1 /* 64-bit pointers do not fit the fragment header (lwIP asserts) */

/* ---- UDP and TCP -------------------------------------------------------------- */
#define LWIP_UDP         1
#define MEMP_NUM_UDP_PCB 64
#define MEMP_NUM_RAW_PCB 16
#define LWIP_TCP         1
#define TCP_MSS          1460 /* 1500-byte MTU - 20 (IPv4) - 20 (TCP) */
#define LWIP_WND_SCALE   1
#define TCP_RCV_SCALE    2 /* windows up to 256 KiB */
#define TCP_WND          (128 * 1024)
#define TCP_SND_BUF      (128 * 1024)
/* lwIP's sanity check: the low-water mark must stay below 0xffff - 4 * MSS. */
#define TCP_SNDLOWAT            (0xffff - 4 * TCP_MSS - 1)
#define TCP_SND_QUEUELEN        (4 * TCP_SND_BUF / TCP_MSS)
#define TCP_SNDQUEUELOWAT       (TCP_SND_QUEUELEN / 2)
#define MEMP_NUM_TCP_SEG        2048 /* shared by all pcbs; at least TCP_SND_QUEUELEN */
#define MEMP_NUM_TCP_PCB        256
#define MEMP_NUM_TCP_PCB_LISTEN 16
#define TCP_LISTEN_BACKLOG      1
/* A SYN flood fills a listener's backlog with half-open connections, and lwIP then drops every
 * new SYN, a real client's too, until they time out (20 s). The hook (kernel/net/socket.c)
 * makes room by dropping the oldest half-open one instead. */
#define LWIP_HOOK_TCP_INPACKET_PCB(pcb, hdr, optlen, opt1len, opt2, p)                                                 \
	ringlet_tcp_inpacket((void *)(pcb), (const void *)(hdr))
signed char ringlet_tcp_inpacket(void *pcb, const void *tcphdr);
#define LWIP_TCP_SACK_OUT   0
#define TCP_QUEUE_OOSEQ     1
#define TCP_OOSEQ_MAX_PBUFS 64 /* out-of-order segments may not hold every receive buffer */
#define TCP_OOSEQ_MAX_BYTES (128 * 1024)
/* TIME_WAIT lasts 2 * TCP_MSL: 60 s by default, so a load generator that opens and closes
 * connections fills MEMP_NUM_TCP_PCB; lwIP then reuses the oldest TIME_WAIT pcb, which only
 * works because the pool is bounded (MEMP_MEM_MALLOC 0). */
#define TCP_MSL              5000
#define LWIP_TCP_KEEPALIVE   1
#define SO_REUSE             1 /* SO_REUSEADDR: a server binds again while old connections sit in TIME_WAIT */
#define LWIP_TCP_TIMESTAMPS  0
#define LWIP_CALLBACK_API    1
#define MEMP_NUM_PBUF        256 /* PBUF_REF/ROM: zero-copy tcp_write() of application data */
#define MEMP_NUM_SYS_TIMEOUT (LWIP_NUM_SYS_TIMEOUT_INTERNAL + 8)

/* ---- statistics and debugging ------------------------------------------------------- */
#define LWIP_STATS 0 /* Nanos found them in its CPU profiles */
#define LWIP_DEBUG 0
#define LWIP_PERF  0

#endif
