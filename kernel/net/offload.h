/*
 * kernel/net/offload.h: checksum offload helpers that need no lwIP (host-testable:
 * tests/unit/test_net_offload.c). Private to kernel/net/.
 */
#ifndef RINGLET_NET_OFFLOAD_H
#define RINGLET_NET_OFFLOAD_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Prepares a TCP segment in an Ethernet frame for transmit checksum offload
 * (VIRTIO_NET_F_CSUM, virtio 1.2 §5.1.6.2): writes the pseudo-header sum, not complemented,
 * into the TCP checksum field, and sets *start (the TCP header's offset in the frame) and
 * *offset (16: the field's offset in it) for the device, which sums from *start to the end of
 * the frame and stores the complement there. The headers must lie in the first head_len bytes
 * of the frame; total_len is the frame's whole length. IPv4 (not a fragment) and IPv6 without
 * extension headers. False, with the frame untouched, for anything else.
 */
bool net_tcp_csum_partial(uint8_t *frame, uint32_t head_len, uint32_t total_len, uint16_t *start, uint16_t *offset);

/*
 * lwIP's LWIP_CHKSUM (lwipopts.h): the Internet checksum's sum (RFC 1071), not complemented,
 * of len bytes at data, which may start at any address: the sum of the bytes taken as 16-bit
 * words in the CPU's (little-endian) order, a last odd byte as the low half of a word, folded
 * to 16 bits. What lwip_standard_chksum() returns, 8 bytes at a time instead of 4: with no
 * offload (QEMU's user networking and dgram backends offer none) every UDP and TCP byte sent
 * and received is summed here.
 */
uint16_t net_chksum(const void *data, int len);

#endif
