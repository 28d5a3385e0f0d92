/*
 * kernel/net/offload.c: the transmit side of checksum offload (see offload.h).
 * Implements: Virtual I/O Device (VIRTIO) Version 1.2, §5.1.6.2 Packet Transmission (partial
 *             checksums); RFC 793 §3.1 and RFC 8200 §8.1 (the TCP pseudo-headers).
 *
 * Stock lwIP 2.1.3 either computes a checksum in full or leaves the field 0 (with the netif's
 * NETIF_CHECKSUM_GEN_TCP off); the device wants the pseudo-header sum there instead. The glue
 * (netif.c) calls this on each outgoing frame of a NIC that offloads.
 */
#include "offload.h"

#define ETHTYPE_IPV4 0x0800
#define ETHTYPE_IPV6 0x86dd
#define PROTO_TCP    6
#define ETH_HLEN     14
#define TCP_HLEN     20
#define TCP_CSUM_OFF 16

/* Adds big-endian 16-bit words to a ones'-complement accumulator. */
static uint32_t sum16(const uint8_t *p, unsigned len, uint32_t sum)
{
	for (unsigned i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	return sum;
}

bool net_tcp_csum_partial(uint8_t *f, uint32_t head_len, uint32_t total_len, uint16_t *start, uint16_t *offset)
{
	uint32_t sum, tcp_len, at;
	if (head_len > total_len || head_len < ETH_HLEN)
		return false;
	uint16_t type = (uint16_t)(f[12] << 8 | f[13]);
	if (type == ETHTYPE_IPV4) {
		const uint8_t *ip = f + ETH_HLEN;
		if (head_len < ETH_HLEN + 20)
			return false;
		uint32_t ihl = (ip[0] & 15u) * 4;
		if ((ip[0] >> 4) != 4 || ihl < 20 || (uint64_t)ETH_HLEN + ihl + TCP_HLEN > head_len ||
		    ip[9] != PROTO_TCP)
			return false;
		if ((ip[6] & 0x3f) || ip[7]) /* a fragment (MF or an offset): the sum spans datagrams */
			return false;
		uint32_t total = (uint32_t)ip[2] << 8 | ip[3];
		if (total < ihl + TCP_HLEN || (uint64_t)ETH_HLEN + total > total_len)
			return false;
		tcp_len = total - ihl;
		sum = sum16(ip + 12, 8, 0); /* source and destination addresses */
		at = ETH_HLEN + ihl;
	} else if (type == ETHTYPE_IPV6) {
		const uint8_t *ip6 = f + ETH_HLEN;
		if (ETH_HLEN + 40 + TCP_HLEN > head_len || (ip6[0] >> 4) != 6 || ip6[6] != PROTO_TCP)
			return false;
		tcp_len = (uint32_t)ip6[4] << 8 | ip6[5];
		if (tcp_len < TCP_HLEN || (uint64_t)ETH_HLEN + 40 + tcp_len > total_len)
			return false;
		sum = sum16(ip6 + 8, 32, 0);
		at = ETH_HLEN + 40;
	} else
		return false;
	sum += PROTO_TCP + tcp_len; /* the 16-bit length fits: at most 0xffff */
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	f[at + TCP_CSUM_OFF] = (uint8_t)(sum >> 8);
	f[at + TCP_CSUM_OFF + 1] = (uint8_t)sum;
	*start = (uint16_t)at;
	*offset = TCP_CSUM_OFF;
	return true;
}

/* Adds v to a 64-bit ones'-complement accumulator: the carry out comes back in at the bottom. */
static inline uint64_t add64(uint64_t sum, uint64_t v)
{
	sum += v;
	return sum + (sum < v);
}

uint16_t net_chksum(const void *data, int len)
{
	const uint8_t *p = data;
	uint64_t sum = 0, v;
	/* 2^16 = 1 in ones'-complement arithmetic modulo 2^16 - 1, so a sum of 64-bit words
	 * folds to the sum of their 16-bit halves. x86-64 adds with the carry chained through
	 * (adc): five instructions per 32 bytes, where C's carry test takes three per word.
	 * Unaligned loads are fine on x86. */
	for (; len >= 32; len -= 32, p += 32)
		__asm__("addq 0(%[p]), %[s]\n\t"
		        "adcq 8(%[p]), %[s]\n\t"
		        "adcq 16(%[p]), %[s]\n\t"
		        "adcq 24(%[p]), %[s]\n\t"
		        "adcq $0, %[s]"
		        : [s] "+r"(sum)
		        : [p] "r"(p), "m"(*(const uint8_t(*)[32])p)
		        : "cc");
	for (; len >= 8; len -= 8, p += 8) {
		__builtin_memcpy(&v, p, 8); /* an unaligned load, not a call */
		sum = add64(sum, v);
	}
	v = 0; /* the tail, zero-padded: a last odd byte is the low half of its word */
	for (int i = 0; i < len; i++)
		v |= (uint64_t)p[i] << (8 * i);
	sum = add64(sum, v);
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}
