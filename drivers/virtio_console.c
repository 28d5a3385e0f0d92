/*
 * virtio-console: polled console and serial-port driver.
 * Implements: Virtual I/O Device (VIRTIO) Version 1.2, §5.3 Console Device.
 * Try it:     -device virtio-serial-pci -chardev stdio,mux=on,id=c0 -device virtconsole,chardev=c0
 *             -chardev socket,id=p1,path=/tmp/p1,server=on,wait=off
 *             -device virtserialport,chardev=p1,name=org.example.data
 *             (scripts/run --console virtio --port org.example.data:/tmp/p1 portecho)
 *
 * Every port has two queues: receiveq (the host's bytes to us) and
 * transmitq (ours to the host). Without VIRTIO_CONSOLE_F_MULTIPORT there is
 * one port, 0, and it is a console. With it (QEMU always offers it), queues
 * 2 and 3 carry control messages (§5.3.6.2), and port N > 0 has queues
 * 2N+2 and 2N+3; the device announces each port (DEVICE_ADD), its name
 * (PORT_NAME), which one is the console (CONSOLE_PORT) and when the host
 * side opens and closes it (PORT_OPEN).
 *
 * A port keeps RX_BUFS receive buffers at the device; a used one joins the
 * port's FIFO of received data and goes back to the device once read out.
 * Writes are copied into one of TX_BUFS transmit buffers; the console port
 * fills a buffer across many writes and sends it on a flush, so a whole
 * boot log is a few requests instead of one trap per byte as on the UART.
 *
 * The device is not trusted: control messages are checked for their length,
 * port id, event and name before anything is done with them; a ring broken
 * under virtq's rules stops the whole device (reset, every port EIO).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>

#include "../kernel/fd.h"
#include "../kernel/io.h"
#include "../kernel/kernel.h"
#include "../kernel/wait.h"
#include "virtio/virtio_dev.h"
#include "virtio_console.h"

/* Feature bits (§5.3.3). */
#define VIRTIO_CONSOLE_F_SIZE        0
#define VIRTIO_CONSOLE_F_MULTIPORT   1
#define VIRTIO_CONSOLE_F_EMERG_WRITE 2

/* struct virtio_console_config (§5.3.4): cols, rows, then max_nr_ports. */
#define CFG_MAX_NR_PORTS 4

/* Control events (§5.3.6.2). */
#define VIRTIO_CONSOLE_DEVICE_READY  0
#define VIRTIO_CONSOLE_DEVICE_ADD    1
#define VIRTIO_CONSOLE_DEVICE_REMOVE 2
#define VIRTIO_CONSOLE_PORT_READY    3
#define VIRTIO_CONSOLE_CONSOLE_PORT  4
#define VIRTIO_CONSOLE_RESIZE        5
#define VIRTIO_CONSOLE_PORT_OPEN     6
#define VIRTIO_CONSOLE_PORT_NAME     7

struct virtio_console_control {
	uint32_t id;    /* port number */
	uint16_t event; /* the kind of control event */
	uint16_t value; /* extra information for the event */
};
_Static_assert(sizeof(struct virtio_console_control) == 8, "virtio_console_control");

#define MAX_CONSOLES 2
/* Ports driven per device: ids 0..MAX_PORTS-1 (QEMU offers 31 by default;
 * queues are set up only for these, so 2 * MAX_PORTS + 2 of them). */
#define MAX_PORTS 8
#define BUF_SIZE  4096u
#define RX_BUFS   16
#define TX_BUFS   8
/* Control buffers: a header and a port name (QEMU's names are short). */
#define CTRL_RX_BUFS 16
#define CTRL_BUF     128u
#define CTRL_TX_BUFS 8
#define NAME_MAX_LEN 48
/* How long the console may spin for a transmit buffer before dropping. */
#define CONSOLE_SPIN_NS 1000000000ull
/* Start-up: QEMU answers a control message (DEVICE_READY with a DEVICE_ADD
 * per port, PORT_READY with the port's name, console and open state) before
 * it gives the message's buffer back, so the answers are all in once every
 * message we sent came back and every one received was handled. That is
 * waited for (at most SETTLE_MAX_NS), and then SETTLE_NS more for a device
 * that answers later. */
#define SETTLE_NS     5000000ull
#define SETTLE_MAX_NS 500000000ull

struct vcon;

struct port {
	struct vcon *dev;
	uint32_t id;
	bool present;    /* DEVICE_ADD seen (or port 0 without MULTIPORT) */
	bool has_path;   /* /dev/vportDpN registered (a port added again keeps it) */
	bool is_console; /* CONSOLE_PORT seen */
	bool host_open;  /* the host side is connected (PORT_OPEN from the device) */
	bool guest_open; /* open() here; told to the device with PORT_OPEN */
	bool nonblock;   /* O_NONBLOCK of the (one) open descriptor */
	bool named;      /* registered under /dev/virtio-ports/ */
	char name[NAME_MAX_LEN];
	struct virtq rxq, txq;
	uint8_t *rx_mem, *tx_mem; /* RX_BUFS and TX_BUFS buffers of BUF_SIZE */
	/* Received buffers in the order they came: index and length. */
	uint8_t fifo[RX_BUFS];
	uint32_t fifo_len[RX_BUFS];
	unsigned fifo_head, fifo_count;
	uint32_t fifo_off;  /* bytes of the head buffer already read */
	unsigned rx_at_dev; /* receive buffers the device holds */
	bool tx_busy[TX_BUFS];
	unsigned tx_inflight;
	int tx_open;      /* the console's buffer being filled, -1 none */
	uint32_t tx_fill; /* ... and its bytes */
	uint64_t tx_bytes, tx_requests, tx_dropped, rx_bytes;
};

struct vcon {
	struct virtio_dev vd;
	char name[8];
	int index;
	bool broken;
	bool multiport;
	uint32_t nports; /* ports whose queues exist: 0..nports-1 */
	struct virtq crxq, ctxq;
	uint8_t *crx_mem;
	struct virtio_console_control ctx_msg[CTRL_TX_BUFS];
	bool ctx_busy[CTRL_TX_BUFS];
	unsigned ctrl_seen; /* control messages taken, for the start-up settle */
	struct port ports[MAX_PORTS];
	struct wait_source source;
};

static struct vcon cons[MAX_CONSOLES];
static int ncons;
static struct port *console_port; /* the one kernel/console.c writes to */

void console_virtio_ready(void); /* kernel/console.c: a console port is there */

/* Stops a device for good: reset first, so that it writes no more into
 * buffers it was given; every port then fails with EIO. */
static void abandon(struct vcon *d, const char *why)
{
	if (d->broken)
		return;
	d->broken = true;
	if (console_port && console_port->dev == d)
		console_port = NULL; /* kernel/console.c falls back to the UART */
	bool reset = virtio_reset(&d->vd);
	klog("%s: %s; the device is reset and not used again", d->name, why);
	if (!reset)
		klog("%s: the device did not reset: it may still write to memory it was given", d->name);
}

static void broke(struct vcon *d, struct virtq *q)
{
	char why[96];
	ksnprintf(why, sizeof(why), "device broke the ring rules (%s)", virtq_broken_reason(q));
	abandon(d, why);
}

/* ---- control queue ------------------------------------------------------- */

static void ctrl_tx_reap(struct vcon *d)
{
	void *cookie;
	uint32_t len;
	int got;
	while (!d->broken && (got = virtq_get_used(&d->ctxq, &cookie, &len)) != 0) {
		if (got < 0) {
			broke(d, &d->ctxq);
			return;
		}
		d->ctx_busy[(struct virtio_console_control *)cookie - d->ctx_msg] = false;
	}
}

/* Sends one control message (§5.3.6.2); the device takes them at once, so
 * a full queue is waited for by spinning, bounded. */
static void ctrl_send(struct vcon *d, uint32_t id, uint16_t event, uint16_t value)
{
	if (!d->multiport || d->broken)
		return;
	uint64_t until = time_ns() + CONSOLE_SPIN_NS;
	for (;;) {
		ctrl_tx_reap(d);
		if (d->broken)
			return;
		for (int i = 0; i < CTRL_TX_BUFS; i++) {
			if (d->ctx_busy[i])
				continue;
			d->ctx_msg[i] = (struct virtio_console_control){.id = id, .event = event, .value = value};
			struct virtq_buf b = {&d->ctx_msg[i], sizeof(d->ctx_msg[i])};
			if (virtq_add(&d->ctxq, &b, 1, 0, &d->ctx_msg[i]) != 0)
				break;
			d->ctx_busy[i] = true;
			virtq_kick(&d->ctxq);
			return;
		}
		if (time_ns() > until) {
			abandon(d, "control queue stuck");
			return;
		}
		virtq_watchdog(&d->ctxq, time_ns());
		cpu_relax();
	}
}

static int ctrl_rx_offer(struct vcon *d, unsigned i)
{
	struct virtq_buf b = {d->crx_mem + i * CTRL_BUF, CTRL_BUF};
	return virtq_add(&d->crxq, &b, 0, 1, d->crx_mem + i * CTRL_BUF);
}

/* ---- ports ---------------------------------------------------------------- */

static int rx_offer(struct port *p, unsigned i)
{
	struct virtq_buf b = {p->rx_mem + i * BUF_SIZE, BUF_SIZE};
	int err = virtq_add(&p->rxq, &b, 0, 1, p->rx_mem + i * BUF_SIZE);
	if (err == 0)
		p->rx_at_dev++;
	return err;
}

/* Gives a read-out receive buffer back. When the device held none it may
 * have stopped taking input for want of one: notify it whatever its
 * suppression fields say, so that a lost kick cannot stall the port. */
static void rx_return(struct port *p, unsigned i)
{
	bool starved = p->rx_at_dev == 0;
	if (rx_offer(p, i) != 0) {
		broke(p->dev, &p->rxq);
		return;
	}
	if (starved)
		virtq_notify(&p->rxq);
	else
		virtq_kick(&p->rxq);
}

/* Takes the receive buffers the device filled into the FIFO. */
static bool rx_reap(struct port *p)
{
	bool any = false;
	void *cookie;
	uint32_t len;
	int got;
	while (!p->dev->broken && (got = virtq_get_used(&p->rxq, &cookie, &len)) != 0) {
		if (got < 0) {
			broke(p->dev, &p->rxq);
			return true;
		}
		/* The cookie is a buffer we offered (virtq returns only those),
		 * and virtq refused len > BUF_SIZE already. */
		unsigned i = (unsigned)(((uint8_t *)cookie - p->rx_mem) / BUF_SIZE);
		kassert(i < RX_BUFS && len <= BUF_SIZE && p->rx_at_dev > 0);
		p->rx_at_dev--;
		any = true;
		if (len == 0) {
			rx_return(p, i);
			continue;
		}
		kassert(p->fifo_count < RX_BUFS);
		unsigned slot = (p->fifo_head + p->fifo_count) % RX_BUFS;
		p->fifo[slot] = (uint8_t)i;
		p->fifo_len[slot] = len;
		p->fifo_count++;
		p->rx_bytes += len;
	}
	return any;
}

static bool tx_reap(struct port *p)
{
	bool any = false;
	void *cookie;
	uint32_t len;
	int got;
	while (!p->dev->broken && p->tx_inflight && (got = virtq_get_used(&p->txq, &cookie, &len)) != 0) {
		if (got < 0) {
			broke(p->dev, &p->txq);
			return true;
		}
		unsigned i = (unsigned)(((uint8_t *)cookie - p->tx_mem) / BUF_SIZE);
		kassert(i < TX_BUFS && p->tx_busy[i]);
		p->tx_busy[i] = false;
		p->tx_inflight--;
		any = true;
	}
	return any;
}

/* A free transmit buffer that is not the console's open one, or -1. */
static int tx_free(struct port *p)
{
	for (int i = 0; i < TX_BUFS; i++)
		if (!p->tx_busy[i] && i != p->tx_open)
			return i;
	return -1;
}

static int tx_send(struct port *p, int i, uint32_t len)
{
	struct virtq_buf b = {p->tx_mem + (unsigned)i * BUF_SIZE, len};
	int err = virtq_add(&p->txq, &b, 1, 0, p->tx_mem + (unsigned)i * BUF_SIZE);
	if (err) {
		if (err == -EIO)
			broke(p->dev, &p->txq);
		return err;
	}
	p->tx_busy[i] = true;
	p->tx_inflight++;
	p->tx_requests++;
	p->tx_bytes += len;
	return 0;
}

/* Allocates a port's buffers and offers the receive ones. */
static int port_start(struct port *p)
{
	if (!p->rx_mem) {
		p->rx_mem = page_alloc(RX_BUFS * BUF_SIZE / PAGE_SIZE);
		p->tx_mem = page_alloc(TX_BUFS * BUF_SIZE / PAGE_SIZE);
		if (!p->rx_mem || !p->tx_mem)
			return -ENOMEM;
		for (unsigned i = 0; i < RX_BUFS; i++)
			if (rx_offer(p, i) != 0)
				return -EIO;
		virtq_kick(&p->rxq);
	}
	p->tx_open = -1;
	p->present = true;
	return 0;
}

static void port_path(const struct port *p, char *buf, size_t len)
{
	ksnprintf(buf, len, "/dev/vport%dp%u", p->dev->index, (unsigned)p->id);
}

static const struct fd_ops port_ops;

/* A name from the device becomes a path: letters, digits and . _ - only,
 * never "." or "..", so it cannot reach outside /dev/virtio-ports/. */
static bool name_ok(const char *s, size_t n)
{
	if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* ---- control messages from the device -------------------------------------- */

static void ctrl_handle(struct vcon *d, const uint8_t *buf, uint32_t len)
{
	struct virtio_console_control m;
	if (len < sizeof(m)) {
		klog("%s: control message of %u bytes ignored (a header is 8)", d->name, (unsigned)len);
		return;
	}
	memcpy(&m, buf, sizeof(m)); /* read once: the device may change the buffer */
	d->ctrl_seen++;
	uint32_t id = m.id;
	if (m.event == VIRTIO_CONSOLE_DEVICE_READY || m.event == VIRTIO_CONSOLE_PORT_READY) {
		klog("%s: control event %u is the driver's to send; ignored", d->name, m.event);
		return;
	}
	/* An id we have no queues for: refuse the port once, ignore the rest. */
	if (id >= d->nports) {
		if (m.event == VIRTIO_CONSOLE_DEVICE_ADD) {
			klog("%s: port %u is beyond the %u ports driven; refused", d->name, (unsigned)id,
			     (unsigned)d->nports);
			/* §5.3.6.2: "... VIRTIO_CONSOLE_PORT_READY message ... value 0 on failure". */
			ctrl_send(d, id, VIRTIO_CONSOLE_PORT_READY, 0);
		}
		return;
	}
	struct port *p = &d->ports[virtq_index_nospec(id, d->nports)];
	char path[80];
	switch (m.event) {
	case VIRTIO_CONSOLE_DEVICE_ADD: {
		if (p->present)
			return; /* twice: nothing new */
		int err = port_start(p);
		ctrl_send(d, id, VIRTIO_CONSOLE_PORT_READY, err == 0);
		if (err) {
			klog("%s: port %u cannot start, error %d", d->name, (unsigned)id, err);
			return;
		}
		/* A console port too, as on Linux; open() refuses it (EBUSY):
		 * the console is the kernel's. */
		port_path(p, path, sizeof(path));
		if (!p->has_path && fd_register_device(path, &port_ops, p) != 0)
			klog("%s: no room to register %s", d->name, path);
		p->has_path = true;
		break;
	}
	case VIRTIO_CONSOLE_DEVICE_REMOVE:
		/* Hot-unplug: the port's readers see EOF, its writers EPIPE, and
		 * open() ENODEV; its buffers stay ours (the device is done with
		 * the port). */
		p->present = false;
		p->host_open = false;
		klog("%s: port %u (%s) removed", d->name, (unsigned)id, p->name[0] ? p->name : "-");
		if (p == console_port)
			console_port = NULL;
		break;
	case VIRTIO_CONSOLE_CONSOLE_PORT:
		if (!p->present || !m.value)
			return;
		p->is_console = true;
		p->guest_open = true;
		/* The console is open for as long as the guest runs (Linux does the same). */
		ctrl_send(d, id, VIRTIO_CONSOLE_PORT_OPEN, 1);
		if (!console_port) {
			console_port = p;
			console_virtio_ready();
		}
		break;
	case VIRTIO_CONSOLE_RESIZE:
		break; /* no terminal size here */
	case VIRTIO_CONSOLE_PORT_OPEN:
		if (!p->present)
			return;
		if (p->host_open != (m.value != 0))
			kdebug("%s: port %u host %s", d->name, (unsigned)id, m.value ? "connected" : "disconnected");
		p->host_open = m.value != 0;
		break;
	case VIRTIO_CONSOLE_PORT_NAME: {
		if (!p->present || p->named)
			return;
		/* The name follows the header, up to the message's end or a NUL. */
		size_t n = 0;
		const char *s = (const char *)buf + sizeof(m);
		while (n < len - sizeof(m) && s[n])
			n++;
		if (n >= sizeof(p->name) || !name_ok(s, n)) {
			klog("%s: port %u: a name of %lu bytes that is no file name; ignored", d->name, (unsigned)id,
			     (unsigned long)n);
			return;
		}
		memcpy(p->name, s, n);
		p->name[n] = '\0';
		p->named = true;
		if (!p->is_console) {
			ksnprintf(path, sizeof(path), "/dev/virtio-ports/%s", p->name);
			if (fd_register_device(path, &port_ops, p) != 0)
				klog("%s: no room to register %s", d->name, path);
		}
		break;
	}
	default:
		klog("%s: unknown control event %u ignored", d->name, m.event);
	}
}

static bool ctrl_poll(struct vcon *d)
{
	bool any = false;
	void *cookie;
	uint32_t len;
	int got;
	while (!d->broken && (got = virtq_get_used(&d->crxq, &cookie, &len)) != 0) {
		if (got < 0) {
			broke(d, &d->crxq);
			return true;
		}
		uint8_t *buf = cookie;
		ctrl_handle(d, buf, len); /* len <= CTRL_BUF: virtq checked it */
		if (d->broken)
			return true;
		if (virtq_add(&d->crxq, &(struct virtq_buf){buf, CTRL_BUF}, 0, 1, buf) != 0) {
			broke(d, &d->crxq);
			return true;
		}
		virtq_kick(&d->crxq);
		any = true;
	}
	return any;
}

/* ---- the wait source -------------------------------------------------------- */

static bool con_poll(void *ctx)
{
	struct vcon *d = ctx;
	bool any = false;
	if (d->broken)
		return false;
	if (d->multiport) {
		any |= ctrl_poll(d);
		ctrl_tx_reap(d);
	}
	for (uint32_t i = 0; i < d->nports && !d->broken; i++) {
		struct port *p = &d->ports[i];
		if (!p->rx_mem)
			continue;
		any |= rx_reap(p);
		bool sent = tx_reap(p);
		any |= sent;
		if (!sent && p->tx_inflight)
			virtq_watchdog(&p->txq, time_ns());
	}
	return any;
}

static bool con_arm(void *ctx)
{
	struct vcon *d = ctx;
	bool pending = false;
	if (d->broken)
		return false;
	if (d->multiport)
		pending |= virtq_enable_notify(&d->crxq);
	for (uint32_t i = 0; i < d->nports; i++) {
		struct port *p = &d->ports[i];
		if (!p->rx_mem)
			continue;
		pending |= virtq_enable_notify(&p->rxq);
		if (p->tx_inflight)
			pending |= virtq_enable_notify(&p->txq);
	}
	return pending;
}

static void con_disarm(void *ctx)
{
	struct vcon *d = ctx;
	if (d->broken)
		return;
	if (d->multiport)
		virtq_disable_notify(&d->crxq);
	for (uint32_t i = 0; i < d->nports; i++)
		if (d->ports[i].rx_mem) {
			virtq_disable_notify(&d->ports[i].rxq);
			virtq_disable_notify(&d->ports[i].txq);
		}
}

/* Transmit requests at the device: look within the watchdog's period. */
static uint64_t con_deadline(void *ctx)
{
	struct vcon *d = ctx;
	for (uint32_t i = 0; i < d->nports && !d->broken; i++)
		if (d->ports[i].tx_inflight)
			return time_ns() + VIRTQ_STALL_NS;
	return WAIT_FOREVER;
}

/* ---- ports as files ------------------------------------------------------------ */

static int port_open(void *ctx, int flags)
{
	struct port *p = ctx;
	if (p->dev->broken)
		return -EIO;
	if (!p->present)
		return -ENODEV;
	/* One descriptor per port, as on Linux: its O_NONBLOCK is the port's. */
	if (p->guest_open)
		return -EBUSY;
	p->guest_open = true;
	p->nonblock = (flags & O_NONBLOCK) != 0;
	/* The host may send only once the guest side is open (QEMU holds the
	 * bytes back until then). */
	ctrl_send(p->dev, p->id, VIRTIO_CONSOLE_PORT_OPEN, 1);
	return 0;
}

static int port_close(void *ctx)
{
	struct port *p = ctx;
	p->guest_open = false;
	if (p->present && !p->dev->broken)
		ctrl_send(p->dev, p->id, VIRTIO_CONSOLE_PORT_OPEN, 0);
	return 0;
}

static void port_set_flags(void *ctx, int flags)
{
	struct port *p = ctx;
	p->nonblock = (flags & O_NONBLOCK) != 0;
}

static bool readable(void *ctx)
{
	const struct port *p = ctx;
	return p->fifo_count || !p->host_open || !p->present || p->dev->broken;
}

static bool writable(void *ctx)
{
	struct port *p = ctx;
	return tx_free(p) >= 0 || !p->host_open || !p->present || p->dev->broken;
}

/* Copies out of the FIFO; buffers read out go back to the device. */
static size_t fifo_take(struct port *p, uint8_t *buf, size_t n)
{
	size_t got = 0;
	while (got < n && p->fifo_count && !p->dev->broken) {
		unsigned slot = p->fifo_head;
		uint32_t left = p->fifo_len[slot] - p->fifo_off;
		size_t take = n - got < left ? n - got : left;
		memcpy(buf + got, p->rx_mem + (size_t)p->fifo[slot] * BUF_SIZE + p->fifo_off, take);
		got += take;
		p->fifo_off += (uint32_t)take;
		if (p->fifo_off == p->fifo_len[slot]) {
			p->fifo_off = 0;
			p->fifo_head = (p->fifo_head + 1) % RX_BUFS;
			p->fifo_count--;
			rx_return(p, p->fifo[slot]);
		}
	}
	return got;
}

static ssize_t port_read(void *ctx, void *buf, size_t n, uint64_t off)
{
	struct port *p = ctx;
	(void)off;
	con_poll(p->dev);
	for (;;) {
		if (p->dev->broken)
			return -EIO;
		if (p->fifo_count)
			return (ssize_t)fifo_take(p, buf, n);
		/* Linux: with no data and the host gone, read() is end of file. */
		if (!p->host_open || !p->present)
			return 0;
		if (p->nonblock)
			return -EAGAIN;
		wait_until(readable, p, WAIT_FOREVER);
	}
}

static ssize_t port_write(void *ctx, const void *buf, size_t n, uint64_t off)
{
	struct port *p = ctx;
	(void)off;
	size_t done = 0;
	bool added = false;
	con_poll(p->dev);
	while (done < n) {
		if (p->dev->broken)
			return done ? (ssize_t)done : -EIO;
		/* Nobody on the host side: the bytes would be dropped there. */
		if (!p->host_open || !p->present)
			return done ? (ssize_t)done : -EPIPE;
		tx_reap(p);
		int i = tx_free(p);
		if (i < 0) {
			if (added)
				virtq_kick(&p->txq);
			added = false;
			if (p->nonblock)
				return done ? (ssize_t)done : -EAGAIN;
			wait_until(writable, p, WAIT_FOREVER);
			continue;
		}
		uint32_t len = n - done < BUF_SIZE ? (uint32_t)(n - done) : BUF_SIZE;
		memcpy(p->tx_mem + (unsigned)i * BUF_SIZE, (const uint8_t *)buf + done, len);
		if (tx_send(p, i, len) != 0)
			return done ? (ssize_t)done : -EIO;
		added = true;
		done += len;
	}
	if (added)
		virtq_kick(&p->txq);
	return (ssize_t)done;
}

static short port_poll(void *ctx)
{
	struct port *p = ctx;
	if (p->dev->broken)
		return POLLERR;
	/* As Linux: with the host gone a read does not block (it is end of
	 * file), so POLLIN with POLLHUP; a write would fail, so no POLLOUT. */
	if (!p->host_open || !p->present)
		return POLLIN | POLLHUP;
	short mask = 0;
	if (p->fifo_count)
		mask |= POLLIN;
	if (tx_free(p) >= 0)
		mask |= POLLOUT;
	return mask;
}

static const struct fd_ops port_ops = {
    .open = port_open,
    .read = port_read,
    .write = port_write,
    .close = port_close,
    .poll = port_poll,
    .set_flags = port_set_flags,
};

/* ---- the console port ------------------------------------------------------------ */

bool virtio_console_available(void) { return console_port && !console_port->dev->broken; }

/* A transmit buffer for the console, spinning (never the wait loop) while
 * all are at the device. -1 when none came back in time. */
static int console_buffer(struct port *p)
{
	uint64_t until = 0;
	for (;;) {
		tx_reap(p);
		if (p->dev->broken)
			return -1;
		int i = tx_free(p);
		if (i >= 0)
			return i;
		uint64_t now = time_ns();
		if (!until)
			until = now + CONSOLE_SPIN_NS;
		else if (now > until)
			return -1;
		virtq_watchdog(&p->txq, now);
		cpu_relax();
	}
}

void virtio_console_flush(void)
{
	struct port *p = console_port;
	if (!p || p->dev->broken || p->tx_open < 0)
		return;
	int i = p->tx_open;
	p->tx_open = -1;
	if (tx_send(p, i, p->tx_fill) == 0)
		virtq_kick(&p->txq);
	p->tx_fill = 0;
}

bool virtio_console_write(const char *s, size_t n)
{
	struct port *p = console_port;
	if (!p || p->dev->broken)
		return false;
	while (n) {
		if (p->tx_open < 0) {
			int i = console_buffer(p);
			if (i < 0) {
				p->tx_dropped += n;
				return !p->dev->broken;
			}
			p->tx_open = i;
			p->tx_fill = 0;
		}
		uint32_t room = BUF_SIZE - p->tx_fill;
		uint32_t take = n < room ? (uint32_t)n : room;
		memcpy(p->tx_mem + (unsigned)p->tx_open * BUF_SIZE + p->tx_fill, s, take);
		p->tx_fill += take;
		s += take;
		n -= take;
		if (p->tx_fill == BUF_SIZE)
			virtio_console_flush();
		if (p->dev->broken)
			return false;
	}
	return true;
}

void virtio_console_drain(uint64_t max_ns)
{
	uint64_t until = time_ns() + max_ns;
	for (int c = 0; c < ncons; c++) {
		struct vcon *d = &cons[c];
		for (uint32_t i = 0; i < d->nports && !d->broken; i++) {
			struct port *p = &d->ports[i];
			while (p->rx_mem && p->tx_inflight && !d->broken && time_ns() < until) {
				if (!tx_reap(p))
					virtq_watchdog(&p->txq, time_ns());
				cpu_relax();
			}
		}
	}
}

size_t virtio_console_read(char *buf, size_t n)
{
	struct port *p = console_port;
	if (!p || p->dev->broken)
		return 0;
	return fifo_take(p, (uint8_t *)buf, n);
}

bool virtio_console_readable(void *unused)
{
	(void)unused;
	return !virtio_console_available() || console_port->fifo_count;
}

void virtio_console_stats(struct virtio_console_stats *st)
{
	*st = (struct virtio_console_stats){0};
	if (console_port) {
		st->bytes = console_port->tx_bytes;
		st->requests = console_port->tx_requests;
		st->dropped = console_port->tx_dropped;
	}
}

/* ---- start-up ---------------------------------------------------------------------- */

static uint16_t rxq_index(uint32_t port) { return port == 0 ? 0 : (uint16_t)(2 * port + 2); }

/* Start-up: every control message sent came back and every one received
 * was handled (or the device broke). */
static bool control_settled(void *arg)
{
	struct vcon *d = arg;
	return d->broken || (virtq_inflight(&d->ctxq) == 0 && virtq_used_pending(&d->crxq) == 0);
}

/* ... and then: a message came (or the device broke). */
struct settle {
	struct vcon *d;
	unsigned seen;
};

static bool control_moved(void *arg)
{
	const struct settle *s = arg;
	return s->d->broken || s->d->ctrl_seen != s->seen;
}

int virtio_console_probe(const struct virtio_dev *found, char *note, size_t note_len)
{
	int err;
	if (ncons == MAX_CONSOLES)
		return -ENOSPC;
	struct vcon *d = &cons[ncons];
	memset(d, 0, sizeof(*d));
	d->vd = *found;
	d->vd.name = "virtio-console";
	d->index = ncons;
	ksnprintf(d->name, sizeof(d->name), "con%d", ncons);

	if ((err = virtio_start(&d->vd, 1ull << VIRTIO_CONSOLE_F_MULTIPORT, 0)) != 0)
		return err;
	d->multiport = virtio_has_feature(d->vd.features, VIRTIO_CONSOLE_F_MULTIPORT);
	d->nports = 1;
	if (d->multiport) {
		/* §5.3.4: max_nr_ports is there with MULTIPORT. Read once, and
		 * bounded by what we drive: it sizes loops and queue numbers. */
		uint32_t max = 0;
		virtio_config_read(&d->vd, CFG_MAX_NR_PORTS, &max, sizeof(max));
		if (max == 0) {
			virtio_fail(&d->vd, "offers MULTIPORT with max_nr_ports 0");
			return -EIO;
		}
		d->nports = max < MAX_PORTS ? max : MAX_PORTS;
	}
	/* §5.3.2: "0 receiveq(port0) 1 transmitq(port0) 2 control receiveq
	 * 3 control transmitq 4 receiveq(port1) 5 transmitq(port1) ...". */
	uint16_t nqueues = 2;
	for (uint32_t i = 0; i < d->nports; i++) {
		struct port *p = &d->ports[i];
		p->dev = d;
		p->id = i;
		p->tx_open = -1;
		if ((err = virtio_queue_init(&d->vd, &p->rxq, rxq_index(i), RX_BUFS)) != 0 ||
		    (err = virtio_queue_init(&d->vd, &p->txq, rxq_index(i) + 1, TX_BUFS)) != 0) {
			if (i == 0) {
				virtio_fail(&d->vd, "cannot set up port 0's queues");
				return err;
			}
			klog("%s: ports from %u on have no queues (error %d); driving %u", d->name, (unsigned)i, err,
			     (unsigned)i);
			d->nports = i;
			break;
		}
		nqueues = rxq_index(i) + 2;
		if (i == 0 && d->multiport) {
			if ((err = virtio_queue_init(&d->vd, &d->crxq, 2, CTRL_RX_BUFS)) != 0 ||
			    (err = virtio_queue_init(&d->vd, &d->ctxq, 3, CTRL_TX_BUFS)) != 0) {
				virtio_fail(&d->vd, "cannot set up its control queues");
				return err;
			}
			nqueues = 4;
		}
	}
	if (d->multiport) {
		d->crx_mem = page_alloc(ALIGN_UP(CTRL_RX_BUFS * CTRL_BUF, PAGE_SIZE) / PAGE_SIZE);
		if (!d->crx_mem) {
			virtio_fail(&d->vd, "no memory for control buffers");
			return -ENOMEM;
		}
		for (unsigned i = 0; i < CTRL_RX_BUFS; i++)
			if (ctrl_rx_offer(d, i) != 0) {
				virtio_fail(&d->vd, "cannot offer control buffers");
				return -EIO;
			}
	} else {
		/* Without MULTIPORT port 0 is there, a console, and open. */
		if ((err = port_start(&d->ports[0])) != 0) {
			virtio_fail(&d->vd, "cannot start port 0");
			return err;
		}
		d->ports[0].is_console = d->ports[0].host_open = d->ports[0].guest_open = true;
	}
	virtio_irq_setup(&d->vd, nqueues);
	virtio_ready(&d->vd);
	if (d->multiport)
		virtq_kick(&d->crxq);
	d->source = (struct wait_source){.name = d->name,
	                                 .poll = con_poll,
	                                 .arm = d->vd.irq_vector ? con_arm : NULL,
	                                 .disarm = con_disarm,
	                                 .deadline = con_deadline,
	                                 .ctx = d};
	wait_add_source(&d->source);
	ncons++;

	if (d->multiport) {
		/* §5.3.6.1: "... the driver SHOULD send a VIRTIO_CONSOLE_DEVICE_READY
		 * message to the device with value 1." The device answers with a
		 * DEVICE_ADD per port, then names, console and open events. */
		ctrl_send(d, 0, VIRTIO_CONSOLE_DEVICE_READY, 1);
		uint64_t start = time_ns();
		for (;;) {
			if (wait_until(control_settled, d, start + SETTLE_MAX_NS) != 0)
				break;
			struct settle st = {d, d->ctrl_seen};
			if (wait_until(control_moved, &st, time_ns() + SETTLE_NS) != 0 || d->broken ||
			    time_ns() - start > SETTLE_MAX_NS)
				break; /* quiet: done */
		}
	} else if (!console_port && !d->broken) {
		console_port = &d->ports[0];
		console_virtio_ready();
	}
	if (d->broken)
		return -EIO;

	unsigned present = 0;
	for (uint32_t i = 0; i < d->nports; i++) {
		struct port *p = &d->ports[i];
		if (!p->present)
			continue;
		present++;
		char path[24];
		port_path(p, path, sizeof(path));
		klog("%s: port %u %s%s%s%s", d->name, (unsigned)i, p->is_console ? "console" : path,
		     p->name[0] ? " name " : "", p->name, p->host_open ? ", host connected" : "");
	}
	ksnprintf(note, note_len, "%s %u port%s%s, %s", d->name, present, present == 1 ? "" : "s",
	          d->vd.modern ? "" : " (legacy)", d->vd.wake);
	return 0;
}
