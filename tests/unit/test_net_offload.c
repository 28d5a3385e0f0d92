/*
 * test_net_offload: the transmit checksum offload preparation (kernel/net/offload.c) against
 * checksums computed here from RFC 793's definition, with the device's part played too.
 * Implements: tests of Virtual I/O Device (VIRTIO) Version 1.2, §5.1.6.2 (partial checksums).
 * Try it:     make unit-test
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "net/offload.h"

/* The ones'-complement sum of big-endian words, folded (odd length: a zero byte added). */
static uint32_t add(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}
static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* What the device does with NEEDS_CSUM: sum from start to the end, store the complement. */
static void device_complete(uint8_t *f, size_t len, uint16_t start, uint16_t offset)
{
	uint16_t c = (uint16_t)~fold(add(f + start, len - start, 0));
	f[start + offset] = (uint8_t)(c >> 8);
	f[start + offset + 1] = (uint8_t)c;
}

static size_t ipv4_tcp(uint8_t *f, unsigned ihl_words, size_t payload)
{
	memset(f, 0, 2000);
	f[12] = 0x08, f[13] = 0x00;
	uint8_t *ip = f + 14;
	unsigned ihl = ihl_words * 4;
	ip[0] = (uint8_t)(0x40 | ihl_words);
	size_t total = ihl + 20 + payload;
	ip[2] = (uint8_t)(total >> 8), ip[3] = (uint8_t)total;
	ip[8] = 64, ip[9] = 6;
	const uint8_t src[4] = {10, 0, 2, 15}, dst[4] = {10, 0, 2, 2};
	memcpy(ip + 12, src, 4), memcpy(ip + 16, dst, 4);
	uint8_t *tcp = ip + ihl;
	tcp[0] = 0x1f, tcp[1] = 0x90, tcp[2] = 0xc3, tcp[3] = 0x50; /* ports */
	tcp[4] = 0x12, tcp[7] = 0x34, tcp[12] = 0x50, tcp[13] = 0x18, tcp[14] = 0xff;
	for (size_t i = 0; i < payload; i++)
		tcp[20 + i] = (uint8_t)(i * 31 + 5);
	return 14 + total;
}

/* RFC 793: the complement of the sum of the pseudo-header and the segment (field 0). */
static uint16_t want_v4(const uint8_t *f, unsigned ihl)
{
	const uint8_t *ip = f + 14;
	size_t tcp_len = (size_t)(ip[2] << 8 | ip[3]) - ihl;
	uint8_t seg[2000];
	memcpy(seg, ip + ihl, tcp_len);
	seg[16] = seg[17] = 0;
	uint32_t s = add(ip + 12, 8, 0) + 6 + (uint32_t)tcp_len;
	return (uint16_t)~fold(add(seg, tcp_len, s));
}

static uint16_t field(const uint8_t *f, size_t at) { return (uint16_t)(f[at] << 8 | f[at + 1]); }

static void test_ipv4(void)
{
	uint8_t f[2000];
	for (size_t payload = 0; payload < 1460; payload += 97) { /* odd and even lengths */
		size_t len = ipv4_tcp(f, 5, payload);
		uint16_t start = 0, offset = 0;
		CHECK(net_tcp_csum_partial(f, 54, (uint32_t)len, &start, &offset));
		CHECK_EQ(start, 34);
		CHECK_EQ(offset, 16);
		device_complete(f, len, start, offset);
		CHECK_EQ(field(f, 34 + 16), want_v4(f, 20));
	}
}

static void test_ipv4_with_options(void)
{
	uint8_t f[2000];
	size_t len = ipv4_tcp(f, 7, 333);
	uint16_t start, offset;
	CHECK(net_tcp_csum_partial(f, 14 + 28 + 20, (uint32_t)len, &start, &offset));
	CHECK_EQ(start, 14 + 28);
	device_complete(f, len, start, offset);
	CHECK_EQ(field(f, start + 16), want_v4(f, 28));
}

static void test_ipv6(void)
{
	uint8_t f[2000] = {0};
	f[12] = 0x86, f[13] = 0xdd;
	uint8_t *ip6 = f + 14;
	ip6[0] = 0x60;
	size_t tcp_len = 20 + 1001;
	ip6[4] = (uint8_t)(tcp_len >> 8), ip6[5] = (uint8_t)tcp_len, ip6[6] = 6, ip6[7] = 64;
	for (int i = 0; i < 32; i++)
		ip6[8 + i] = (uint8_t)(0xfe + i * 3);
	uint8_t *tcp = ip6 + 40;
	tcp[12] = 0x50;
	for (size_t i = 20; i < tcp_len; i++)
		tcp[i] = (uint8_t)(i ^ 0x5a);
	uint32_t s = add(ip6 + 8, 32, 0) + 6 + (uint32_t)tcp_len; /* RFC 8200 §8.1 */
	uint16_t want = (uint16_t)~fold(add(tcp, tcp_len, s));
	uint16_t start, offset;
	size_t len = 14 + 40 + tcp_len;
	CHECK(net_tcp_csum_partial(f, 74, (uint32_t)len, &start, &offset));
	CHECK_EQ(start, 54);
	device_complete(f, len, start, offset);
	CHECK_EQ(field(f, 54 + 16), want);
}

/* Frames it must leave alone (byte for byte). */
static void test_refused(void)
{
	uint8_t f[2000], copy[2000];
	uint16_t start, offset;
	size_t len = ipv4_tcp(f, 5, 100);

	f[14 + 9] = 17; /* UDP */
	memcpy(copy, f, sizeof(f));
	CHECK(!net_tcp_csum_partial(f, 54, (uint32_t)len, &start, &offset));
	CHECK(memcmp(f, copy, sizeof(f)) == 0);

	len = ipv4_tcp(f, 5, 100);
	f[14 + 6] = 0x20; /* more fragments */
	CHECK(!net_tcp_csum_partial(f, 54, (uint32_t)len, &start, &offset));
	len = ipv4_tcp(f, 5, 100);
	f[14 + 7] = 1; /* a fragment offset */
	CHECK(!net_tcp_csum_partial(f, 54, (uint32_t)len, &start, &offset));

	len = ipv4_tcp(f, 5, 100);
	CHECK(!net_tcp_csum_partial(f, 53, (uint32_t)len, &start, &offset));     /* headers not in the first piece */
	CHECK(!net_tcp_csum_partial(f, 54, (uint32_t)len - 1, &start, &offset)); /* IP length beyond the frame */
	CHECK(!net_tcp_csum_partial(f, 60, 50, &start, &offset));                /* head longer than the frame */

	len = ipv4_tcp(f, 15, 0); /* ihl 60: the TCP header would end past the head */
	CHECK(!net_tcp_csum_partial(f, 54, (uint32_t)len, &start, &offset));
	len = ipv4_tcp(f, 4, 0); /* ihl 16: impossible */
	CHECK(!net_tcp_csum_partial(f, 54, (uint32_t)len, &start, &offset));

	len = ipv4_tcp(f, 5, 10);
	f[12] = 0x08, f[13] = 0x06; /* ARP */
	CHECK(!net_tcp_csum_partial(f, 54, (uint32_t)len, &start, &offset));
	CHECK(!net_tcp_csum_partial(f, 10, 10, &start, &offset)); /* a runt */
}

/* net_chksum() against RFC 1071's definition (big-endian words, here byte-swapped: it sums in
 * the CPU's order), at every start alignment, every length to 300 and some long ones, on
 * pseudo-random bytes, on all-ones (the sum that is 0xffff) and on zeros. */
static void test_chksum(void)
{
	static uint8_t buf[4096 + 64];
	uint32_t x = 2463534242u;
	for (size_t i = 0; i < sizeof(buf); i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5; /* xorshift32 */
		buf[i] = (uint8_t)x;
	}
	for (int pass = 0; pass < 3; pass++) {
		if (pass == 1)
			memset(buf, 0xff, sizeof(buf));
		if (pass == 2)
			memset(buf, 0, sizeof(buf));
		for (size_t off = 0; off < 16; off++)
			for (int len = 0; len <= 4096; len = len < 300 ? len + 1 : len * 2 - 1) {
				uint16_t want = fold(add(buf + off, (size_t)len, 0));
				want = (uint16_t)(want << 8 | want >> 8);
				CHECK_EQ(net_chksum(buf + off, len), want);
			}
	}
}

int main(void)
{
	RUN_TEST(test_chksum);
	RUN_TEST(test_ipv4);
	RUN_TEST(test_ipv4_with_options);
	RUN_TEST(test_ipv6);
	RUN_TEST(test_refused);
	return check_report();
}
