/*
 * test_virtio_console: drivers/virtio_console.c against a device played by the test, honest and
 * hostile. Implements: tests of Virtual I/O Device (VIRTIO) Version 1.2, §5.3 Console Device.
 * Try it:     make unit-test (or build/tests/test_virtio_console)
 *
 * The kernel services the driver calls (the transport's start-up steps, the wait loop, the clock,
 * the log, the file table) are small stand-ins here; the virtqueue is the real
 * drivers/virtio/virtq.c. The device reads the rings through the addresses the queues were given,
 * as QEMU's would: it takes transmit buffers when notified (the driver's control messages and
 * data), and the test makes it send control messages and data into the receive buffers the
 * driver offered. Hostile: short control messages, port numbers past max_nr_ports, names that are
 * paths, events the device must not send, a max_nr_ports of 0 or 2^32-1, a used length past the
 * buffer. The driver must do the right thing with the honest ones and survive every other.
 *
 * The driver file is included (not linked) so that each test can start from no devices.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../drivers/virtio_console.c"
#include "check.h"

/* ---- stand-ins for the kernel -------------------------------------------- */

struct kernel_options kopt;
static uint64_t fake_ns;
static char log_text[8192];
static int resets, console_ready_calls;
static char paths[32][80];
static int npaths;

uint64_t time_ns(void) { return fake_ns += 1000; }

int ksnprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

void klog(const char *fmt, ...)
{
	size_t len = strlen(log_text);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(log_text + len, sizeof(log_text) - len - 1, fmt, ap);
	va_end(ap);
	strncat(log_text, "\n", sizeof(log_text) - strlen(log_text) - 1);
}

_Noreturn void panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	abort();
}

void *page_alloc(size_t npages)
{
	void *p = aligned_alloc(PAGE_SIZE, npages * PAGE_SIZE);
	memset(p, 0, npages * PAGE_SIZE);
	return p;
}
void page_free(void *p, size_t npages) { (void)npages, free(p); }

int fd_register_device(const char *path, const struct fd_ops *ops, void *ctx)
{
	(void)ops, (void)ctx;
	if (npaths == 32)
		return -ENOSPC;
	snprintf(paths[npaths++], sizeof(paths[0]), "%s", path);
	return 0;
}

static bool registered(const char *path)
{
	for (int i = 0; i < npaths; i++)
		if (strcmp(paths[i], path) == 0)
			return true;
	return false;
}

void console_virtio_ready(void) { console_ready_calls++; }

/* ---- the device ------------------------------------------------------------ */

#define NQ 64
static struct {
	uint64_t features;   /* offered */
	uint32_t max_ports;  /* config */
	struct virtq *q[NQ]; /* by queue index */
	void *mem[NQ];
	uint16_t last_avail[NQ], used_idx[NQ];
	int max_queue; /* the highest queue index the driver set up */
	bool reset;
	/* What the driver sent on the control queue. */
	struct virtio_console_control out[64];
	int nout;
	/* Data the driver sent, per port. */
	uint8_t tx[4][16384];
	size_t ntx[4];
	/* Sent back when the driver says DEVICE_READY. */
	struct {
		uint32_t id;
		uint16_t event, value;
		const char *name;
	} script[16];
	int nscript;
} dev;

/* A transmit queue's buffers are taken as soon as the driver notifies. */
static void dev_notify(struct virtq *q, void *ctx);

/* Puts bytes into the next receive buffer of queue qi; claims `claim` bytes written. */
static bool dev_receive(int qi, const void *data, uint32_t len, uint32_t claim)
{
	struct virtq *q = dev.q[qi];
	if (!q || dev.reset || dev.last_avail[qi] == q->avail->idx)
		return false;
	uint16_t head = q->avail->ring[dev.last_avail[qi]++ % q->size];
	volatile struct virtq_desc *d = &q->desc[head];
	CHECK(d->flags == VIRTQ_DESC_F_WRITE);
	CHECK(len <= d->len);
	memcpy((void *)(uintptr_t)d->addr, data, len);
	q->used->ring[dev.used_idx[qi] % q->size].id = head;
	q->used->ring[dev.used_idx[qi] % q->size].len = claim;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	q->used->idx = ++dev.used_idx[qi];
	return true;
}

static bool dev_control(uint32_t id, uint16_t event, uint16_t value, const char *name, uint32_t len)
{
	uint8_t buf[CTRL_BUF];
	struct virtio_console_control m = {id, event, value};
	memcpy(buf, &m, sizeof(m));
	size_t n = name ? strlen(name) : 0;
	memcpy(buf + sizeof(m), name ? name : "", n);
	if (!len)
		len = (uint32_t)(sizeof(m) + n);
	return dev_receive(2, buf, len, len);
}

static void dev_notify(struct virtq *q, void *ctx)
{
	(void)ctx;
	int qi = q->index;
	if (dev.reset || !(qi & 1))
		return; /* receive queues: the test fills them */
	while (dev.last_avail[qi] != q->avail->idx) {
		uint16_t head = q->avail->ring[dev.last_avail[qi]++ % q->size];
		volatile struct virtq_desc *d = &q->desc[head];
		CHECK(!(d->flags & VIRTQ_DESC_F_WRITE));
		const uint8_t *p = (const uint8_t *)(uintptr_t)d->addr;
		if (qi == 3) {
			CHECK_EQ(d->len, sizeof(struct virtio_console_control));
			struct virtio_console_control m;
			memcpy(&m, p, sizeof(m));
			if (dev.nout < 64)
				dev.out[dev.nout++] = m;
			if (m.event == VIRTIO_CONSOLE_DEVICE_READY)
				for (int i = 0; i < dev.nscript; i++)
					dev_control(dev.script[i].id, dev.script[i].event, dev.script[i].value,
					            dev.script[i].name, 0);
		} else {
			int port = qi == 1 ? 0 : (qi - 3) / 2;
			if (port < 4 && dev.ntx[port] + d->len <= sizeof(dev.tx[0])) {
				memcpy(dev.tx[port] + dev.ntx[port], p, d->len);
				dev.ntx[port] += d->len;
			}
		}
		q->used->ring[dev.used_idx[qi] % q->size].id = head;
		q->used->ring[dev.used_idx[qi] % q->size].len = 0;
		__atomic_thread_fence(__ATOMIC_RELEASE);
		q->used->idx = ++dev.used_idx[qi];
	}
}

/* Whether the driver sent this control message. */
static bool sent(uint32_t id, uint16_t event, uint16_t value)
{
	for (int i = 0; i < dev.nout; i++)
		if (dev.out[i].id == id && dev.out[i].event == event && dev.out[i].value == value)
			return true;
	return false;
}

/* ---- stand-ins for the transport and the wait loop ------------------------ */

static struct wait_source *source;

int virtio_start(struct virtio_dev *vd, uint64_t wanted, uint64_t required)
{
	(void)required;
	vd->features = wanted & dev.features;
	return 0;
}

void virtio_config_read(struct virtio_dev *vd, uint32_t off, void *buf, uint32_t len)
{
	(void)vd;
	CHECK_EQ(off, CFG_MAX_NR_PORTS);
	CHECK_EQ(len, 4);
	memcpy(buf, &dev.max_ports, 4);
}

int virtio_queue_init(struct virtio_dev *vd, struct virtq *q, uint16_t index, uint16_t max_size)
{
	(void)vd;
	/* QEMU's virtio-serial has 2 + 2 * max_ports queues. */
	if (index >= NQ || index >= 2 + 2 * (uint64_t)(dev.max_ports ? dev.max_ports : 1))
		return -ENOENT;
	uint16_t size = max_size < 32 ? max_size : 32;
	dev.mem[index] = aligned_alloc(VIRTQ_RING_ALIGN, ALIGN_UP(virtq_ring_bytes(size), VIRTQ_RING_ALIGN));
	memset(dev.mem[index], 0, virtq_ring_bytes(size));
	dev.q[index] = q;
	if (index > dev.max_queue)
		dev.max_queue = index;
	return virtq_init(q, index, size, dev.mem[index], false, dev_notify, NULL);
}

void virtio_ready(struct virtio_dev *vd) { (void)vd; }
void virtio_irq_setup(struct virtio_dev *vd, uint16_t nqueues)
{
	(void)nqueues;
	vd->irq_vector = 0;
	snprintf(vd->wake, sizeof(vd->wake), "timer only");
}
void virtio_fail(struct virtio_dev *vd, const char *why) { (void)vd, klog("failed: %s", why); }
bool virtio_reset(struct virtio_dev *vd)
{
	(void)vd;
	dev.reset = true;
	resets++;
	return true;
}

void wait_add_source(struct wait_source *s) { source = s; }

int wait_until(bool (*cond)(void *arg), void *arg, uint64_t deadline_ns)
{
	for (;;) {
		if (cond && cond(arg))
			return 0;
		if (time_ns() >= deadline_ns)
			return -ETIMEDOUT;
		source->poll(source->ctx);
	}
}

/* ---- the tests ------------------------------------------------------------- */

/* The driver's buffers of the last test (a device lives for ever in the kernel). */
static void release(void)
{
	for (int i = 0; i < NQ; i++)
		free(dev.mem[i]);
	for (int c = 0; c < ncons; c++) {
		free(cons[c].crx_mem);
		for (int i = 0; i < MAX_PORTS; i++) {
			free(cons[c].ports[i].rx_mem);
			free(cons[c].ports[i].tx_mem);
		}
	}
}

static void fresh(uint64_t features, uint32_t max_ports)
{
	release();
	memset(&dev, 0, sizeof(dev));
	memset(cons, 0, sizeof(cons));
	ncons = 0;
	console_port = NULL;
	resets = console_ready_calls = npaths = 0;
	log_text[0] = 0;
	dev.features = features;
	dev.max_ports = max_ports;
}

static void script(uint32_t id, uint16_t event, uint16_t value, const char *name)
{
	dev.script[dev.nscript++] = (typeof(dev.script[0])){id, event, value, name};
}

static int probe(char *note)
{
	struct virtio_dev vd = {.modern = true};
	return virtio_console_probe(&vd, note, 40);
}

#define MULTI (1ull << VIRTIO_CONSOLE_F_MULTIPORT)

/* QEMU's virtio-serial with a virtconsole and one virtserialport. */
static void honest_device(void)
{
	fresh(MULTI, 31);
	script(0, VIRTIO_CONSOLE_DEVICE_ADD, 1, NULL);
	script(1, VIRTIO_CONSOLE_DEVICE_ADD, 1, NULL);
	script(0, VIRTIO_CONSOLE_CONSOLE_PORT, 1, NULL);
	script(0, VIRTIO_CONSOLE_PORT_OPEN, 1, NULL);
	script(1, VIRTIO_CONSOLE_PORT_NAME, 1, "org.example.data");
	char note[40];
	CHECK_EQ(probe(note), 0);
	CHECK(strcmp(note, "con0 2 ports, timer only") == 0);
}

static void test_honest_ports(void)
{
	honest_device();
	/* Queues for the ports driven only: 0-3 and ports 1..7. */
	CHECK_EQ(dev.max_queue, 2 * (MAX_PORTS - 1) + 3);
	CHECK(sent(0, VIRTIO_CONSOLE_DEVICE_READY, 1));
	CHECK(sent(0, VIRTIO_CONSOLE_PORT_READY, 1));
	CHECK(sent(1, VIRTIO_CONSOLE_PORT_READY, 1));
	CHECK(sent(0, VIRTIO_CONSOLE_PORT_OPEN, 1));  /* the console is open */
	CHECK(!sent(1, VIRTIO_CONSOLE_PORT_OPEN, 1)); /* not yet: nobody opened it */
	CHECK(registered("/dev/vport0p1"));
	CHECK(registered("/dev/virtio-ports/org.example.data"));
	CHECK_EQ(console_ready_calls, 1);
	CHECK(virtio_console_available());
	CHECK(strstr(log_text, "con0: port 0 console, host connected") != NULL);
	CHECK(strstr(log_text, "con0: port 1 /dev/vport0p1 name org.example.data") != NULL);

	struct port *p = &cons[0].ports[1];
	CHECK_EQ(port_open(p, O_RDWR), 0);
	CHECK_EQ(port_open(p, O_RDWR), -EBUSY); /* one at a time */
	CHECK(sent(1, VIRTIO_CONSOLE_PORT_OPEN, 1));
	CHECK_EQ(port_open(&cons[0].ports[0], O_RDWR), -EBUSY); /* the console is the kernel's */

	/* Host not connected yet: end of file, EPIPE, POLLHUP. */
	char buf[64];
	CHECK_EQ(port_read(p, buf, sizeof(buf), 0), 0);
	CHECK_EQ(port_write(p, "x", 1, 0), -EPIPE);
	CHECK_EQ(port_poll(p), POLLIN | POLLHUP);

	CHECK(dev_control(1, VIRTIO_CONSOLE_PORT_OPEN, 1, NULL, 0));
	con_poll(&cons[0]);
	CHECK_EQ(port_poll(p), POLLOUT);
	port_set_flags(p, O_NONBLOCK);
	CHECK_EQ(port_read(p, buf, sizeof(buf), 0), -EAGAIN);
	port_set_flags(p, 0);

	/* Two receive buffers, read across both and in pieces. */
	CHECK(dev_receive(4, "hello ", 6, 6));
	CHECK(dev_receive(4, "world", 5, 5));
	CHECK_EQ(port_read(p, buf, 4, 0), 4);
	CHECK(memcmp(buf, "hell", 4) == 0);
	CHECK_EQ(port_read(p, buf, sizeof(buf), 0), 7);
	CHECK(memcmp(buf, "o world", 7) == 0);
	CHECK_EQ(p->rx_at_dev, RX_BUFS); /* every buffer back at the device */

	/* A write bigger than a buffer: in order, all of it. */
	static char big[10000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7);
	CHECK_EQ(port_write(p, big, sizeof(big), 0), sizeof(big));
	CHECK_EQ(dev.ntx[1], sizeof(big));
	CHECK(memcmp(dev.tx[1], big, sizeof(big)) == 0);

	/* Data still queued when the host leaves is read first, then EOF. */
	CHECK(dev_receive(4, "tail", 4, 4));
	CHECK(dev_control(1, VIRTIO_CONSOLE_PORT_OPEN, 0, NULL, 0));
	con_poll(&cons[0]);
	CHECK_EQ(port_poll(p), POLLIN | POLLHUP);
	CHECK_EQ(port_read(p, buf, sizeof(buf), 0), 4);
	CHECK(memcmp(buf, "tail", 4) == 0);
	CHECK_EQ(port_read(p, buf, sizeof(buf), 0), 0);
	CHECK_EQ(port_write(p, "x", 1, 0), -EPIPE);
	CHECK_EQ(port_close(p), 0);
	CHECK(sent(1, VIRTIO_CONSOLE_PORT_OPEN, 0));
	CHECK_EQ(resets, 0);
}

/* The console port batches: one request per full buffer and one per flush. */
static void test_console_batches(void)
{
	honest_device();
	static char line[100];
	memset(line, 'a', sizeof(line));
	for (int i = 0; i < 100; i++)
		CHECK(virtio_console_write(line, sizeof(line)));
	CHECK_EQ(cons[0].ports[0].tx_requests, 2); /* 10000 bytes: two full buffers so far */
	virtio_console_flush();
	CHECK_EQ(cons[0].ports[0].tx_requests, 3);
	CHECK_EQ(dev.ntx[0], 10000);
	struct virtio_console_stats st;
	virtio_console_stats(&st);
	CHECK_EQ(st.bytes, 10000);
	CHECK_EQ(st.requests, 3);
	CHECK_EQ(st.dropped, 0);
	/* Input on port 0. */
	CHECK(dev_receive(0, "ls\r", 3, 3));
	con_poll(&cons[0]);
	CHECK(virtio_console_readable(NULL));
	char buf[8];
	CHECK_EQ(virtio_console_read(buf, sizeof(buf)), 3);
	CHECK(memcmp(buf, "ls\r", 3) == 0);
}

/* Control messages that break the rules are refused, each on its own. */
static void test_hostile_control(void)
{
	fresh(MULTI, 31);
	script(1, VIRTIO_CONSOLE_DEVICE_ADD, 1, NULL);
	script(0, VIRTIO_CONSOLE_DEVICE_READY, 1, NULL);       /* the driver's to send */
	script(20, VIRTIO_CONSOLE_DEVICE_ADD, 1, NULL);        /* past the ports driven */
	script(0xffffffff, VIRTIO_CONSOLE_PORT_OPEN, 1, NULL); /* past every port */
	script(5, VIRTIO_CONSOLE_PORT_NAME, 1, "early");       /* a port never added */
	script(1, VIRTIO_CONSOLE_PORT_NAME, 1, "../../dev/vda");
	script(1, 999, 1, NULL);
	char note[40];
	CHECK_EQ(probe(note), 0);
	CHECK(sent(20, VIRTIO_CONSOLE_PORT_READY, 0));
	CHECK(strstr(log_text, "port 20 is beyond the 8 ports driven") != NULL);
	CHECK(strstr(log_text, "control event 0 is the driver's to send") != NULL);
	CHECK(strstr(log_text, "unknown control event 999") != NULL);
	CHECK(strstr(log_text, "no file name") != NULL);
	CHECK(!registered("/dev/virtio-ports/early"));
	CHECK_EQ(npaths, 1); /* /dev/vport0p1 and nothing else */
	CHECK(registered("/dev/vport0p1"));
	/* A short header, a name that does not fit, a name that is ".": ignored too. */
	CHECK(dev_control(1, VIRTIO_CONSOLE_PORT_OPEN, 1, NULL, 4));
	static char longname[CTRL_BUF];
	memset(longname, 'n', CTRL_BUF - 9);
	CHECK(dev_control(1, VIRTIO_CONSOLE_PORT_NAME, 1, longname, 0));
	CHECK(dev_control(1, VIRTIO_CONSOLE_PORT_NAME, 1, ".", 0));
	con_poll(&cons[0]);
	CHECK(strstr(log_text, "control message of 4 bytes ignored") != NULL);
	CHECK(!cons[0].ports[1].host_open);
	CHECK_EQ(npaths, 1);
	/* The honest name still works after all that. */
	CHECK(dev_control(1, VIRTIO_CONSOLE_PORT_NAME, 1, "ok.name", 0));
	con_poll(&cons[0]);
	CHECK(registered("/dev/virtio-ports/ok.name"));
	CHECK_EQ(resets, 0);
	CHECK(!virtio_console_available()); /* no console port was announced */
}

static void test_max_ports(void)
{
	char note[40];
	fresh(MULTI, 0);
	CHECK_EQ(probe(note), -EIO);
	fresh(MULTI, 0xffffffff);
	CHECK_EQ(probe(note), 0);
	CHECK_EQ(cons[0].nports, MAX_PORTS);
	CHECK_EQ(dev.max_queue, 2 * (MAX_PORTS - 1) + 3);
	/* A device with queues for 3 ports only, claiming 31. */
	fresh(MULTI, 3);
	dev.max_ports = 3;
	CHECK_EQ(probe(note), 0);
	CHECK_EQ(cons[0].nports, 3);
	/* Without MULTIPORT: port 0 alone, a console, no control queue. */
	fresh(0, 0);
	CHECK_EQ(probe(note), 0);
	CHECK(strcmp(note, "con0 1 port, timer only") == 0);
	CHECK_EQ(dev.max_queue, 1);
	CHECK_EQ(console_ready_calls, 1);
	CHECK(virtio_console_write("hi\n", 3));
	virtio_console_flush();
	CHECK_EQ(dev.ntx[0], 3);
}

/* A used length past the buffer: the device is reset, the ports fail, the console is gone. */
static void test_liar_is_stopped(void)
{
	honest_device();
	struct port *p = &cons[0].ports[1];
	CHECK_EQ(port_open(p, O_RDWR), 0);
	CHECK(dev_control(1, VIRTIO_CONSOLE_PORT_OPEN, 1, NULL, 0));
	CHECK(dev_receive(4, "x", 1, BUF_SIZE + 1));
	char buf[8];
	CHECK_EQ(port_read(p, buf, sizeof(buf), 0), -EIO);
	CHECK_EQ(resets, 1);
	CHECK(strstr(log_text, "con0: device broke the ring rules") != NULL);
	CHECK(!virtio_console_available());
	CHECK(!virtio_console_write("x", 1)); /* kernel/console.c goes back to the UART */
	CHECK_EQ(port_write(p, "x", 1, 0), -EIO);
	CHECK_EQ(port_poll(p), POLLERR);
	CHECK_EQ(port_open(&cons[0].ports[1], O_RDWR), -EIO);
}

int main(void)
{
	RUN_TEST(test_honest_ports);
	RUN_TEST(test_console_batches);
	RUN_TEST(test_hostile_control);
	RUN_TEST(test_max_ports);
	RUN_TEST(test_liar_is_stopped);
	release();
	return check_report();
}
