/*
 * fuzz_virtio_net: libFuzzer target for drivers/virtio_net.c against a device whose every
 * move comes from the fuzzer: used entries with any id and length, any header bytes, any
 * num_buffers, frames of any size, transmit completions right or wrong, the link going up
 * and down, in any order.
 *
 *	make fuzz FUZZ=virtio_net FUZZ_SECONDS=300
 *
 * The device and the glue are tests/unit/test_virtio_net.c's (included without its main).
 * What must hold whatever the device does: no memory error (ASan: the buffers are malloc'd at
 * their exact size, so a piece reaching past its buffer is caught), no buffer handed back
 * twice, the driver never holding more buffers than its ring, and none at all once stopped;
 * no transmitted frame handed back twice, and every one of them once stopped.
 */
#pragma GCC diagnostic ignored "-Wunused-function" /* the unit tests' own cases */
#define VIRTIO_NET_NO_MAIN
#include "../unit/test_virtio_net.c"

static unsigned tx_added; /* frames the driver took */

struct input {
	const uint8_t *p;
	size_t n;
};

static uint8_t byte(struct input *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

static uint16_t u16(struct input *in) { return (uint16_t)(byte(in) | byte(in) << 8); }

static void check_invariants(struct virtio_net *n)
{
	if (double_frees)
		abort();
	if (owned_count() > QSIZE)
		abort();
	if (virtio_net_stopped(n) && owned_count() != 0)
		abort();
	/* Each frame comes back once at most; all of them once the NIC is stopped. */
	if (ntx_done > tx_added || (virtio_net_stopped(n) && ntx_done != tx_added))
		abort();
}

/* The device writes a header and frame bytes into the next receive buffer and uses it,
 * honestly or not. */
static void dev_rx(struct input *in)
{
	struct chain c;
	if (!dev.q[0] || !dev_pop(0, &c))
		return;
	uint8_t mode = byte(in);
	uint32_t room = 0;
	for (unsigned i = 0; i < c.n; i++)
		room += c.len[i];
	uint32_t len = u16(in) % (room + 1);
	/* Fill what the device may write, descriptor by descriptor, from the input. */
	uint32_t left = len;
	for (unsigned i = 0; i < c.n && left; i++) {
		uint32_t k = c.len[i] < left ? c.len[i] : left;
		for (uint32_t j = 0; j < k; j++)
			c.addr[i][j] = byte(in);
		left -= k;
	}
	uint32_t id = c.head, used_len = len;
	if (mode & 1)
		id = u16(in); /* maybe one never given out */
	if (mode & 2)
		used_len = (uint32_t)u16(in) << (mode & 4 ? 4 : 0); /* maybe beyond the buffer */
	dev_push(0, id, used_len);
}

static void dev_tx_done(struct input *in)
{
	struct chain c;
	if (!dev.q[1] || !dev_pop(1, &c))
		return;
	uint8_t mode = byte(in);
	dev_push(1, mode & 1 ? u16(in) : c.head, mode & 2 ? u16(in) : 0);
}

static void driver_tx(struct virtio_net *n, struct input *in)
{
	static uint8_t frame[12 + 9100];
	static int cookies[64];
	uint8_t mode = byte(in);
	uint32_t len = u16(in) % (9000 + 18);
	struct virtq_buf seg = {frame + 12, len ? len : 1};
	struct virtio_net_csum cs = {u16(in), u16(in)};
	int err =
	    (mode & 1 ? virtio_net_tx_inline : virtio_net_tx)(n, &seg, 1, mode & 2 ? &cs : NULL, &cookies[mode % 64]);
	if (err != 0 && err != -ENOSPC && err != -EINVAL && err != -EIO)
		abort();
	tx_added += err == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {data, size};
	uint8_t f = byte(&in);
	uint64_t offered = (f & 1 ? F(VIRTIO_NET_F_MRG_RXBUF) : 0) | (f & 2 ? F(VIRTIO_NET_F_GUEST_CSUM) : 0) |
	                   (f & 4 ? F(VIRTIO_NET_F_CSUM) : 0) | (f & 8 ? F(VIRTIO_NET_F_MTU) : 0) |
	                   (f & 16 ? F(VIRTIO_NET_F_STATUS) : 0) | (f & 32 ? F(VIRTIO_F_ANY_LAYOUT) : 0) |
	                   F(VIRTIO_NET_F_MAC);
	struct virtio_net *n = setup(offered, !(f & 64), MAC, u16(&in));
	tx_added = 0;
	if (!n)
		abort();
	while (in.n) {
		switch (byte(&in) % 6) {
		case 0:
			dev_rx(&in);
			break;
		case 1:
			if (dev.q[0])
				dev_push(0, u16(&in), u16(&in));
			break;
		case 2:
			virtio_net_poll(n);
			break;
		case 3:
			driver_tx(n, &in);
			break;
		case 4:
			dev_tx_done(&in);
			break;
		case 5: {
			uint16_t st = byte(&in) & 1;
			memcpy(dev.config + VIRTIO_NET_CFG_STATUS, &st, 2);
			now_ns += 300000000ull;
			break;
		}
		}
		check_invariants(n);
	}
	virtio_net_poll(n);
	check_invariants(n);
	return 0;
}
