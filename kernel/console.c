/*
 * kernel/console.c: the console (a 16550 UART on COM1, the screen, a
 * virtio-console port) and the kernel's log.
 *
 * console= (a kernel option) says where output goes: serial (the default;
 * "uart" says the same), gpu (the screen, kernel/fbcon.c), virtio (a
 * virtio-console port, drivers/virtio_console.c), or several, as in
 * "console=gpu,serial". Input is the serial line and any virtio keyboard,
 * merged; or the virtio console port when there is one.
 *
 * With virtio the output is held back (EARLY_BYTES of it) until the driver
 * finds a console port, and then sent there first, so the port carries the
 * whole boot log. With console=virtio alone the UART gets nothing; it is the
 * fallback: it gets the held lines when no port is found once the devices
 * are probed, when the guest stops before (a panic) or when they do not
 * fit, and everything after, should the device break. The port's output is
 * batched: one request per 4 KiB buffer until main() starts
 * (console_boot_done()); after that every write is sent when it returns.
 *
 * The kernel formats with its own small printf (kvsnprintf below) rather
 * than newlib's: it is used on the panic path, which must work even when the
 * heap or newlib's state is what broke.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <ringlet/input.h>

#include "../drivers/virtio_console.h"
#include "../drivers/virtio_input.h"
#include "io.h"
#include "kernel.h"
#include "wait.h"

#define COM1           0x3f8
#define UART_DATA      0 /* receive / transmit holding register */
#define UART_IER       1 /* interrupt enable */
#define UART_FCR       2 /* FIFO control */
#define UART_LCR       3 /* line control */
#define UART_MCR       4 /* modem control */
#define UART_LSR       5 /* line status */
#define UART_SCRATCH   7
#define LSR_DATA_READY 0x01
#define LSR_THR_EMPTY  0x20

static bool uart_present;
/* console=: output to the UART, to the screen. Until the screen is there,
 * its share is kept by fbcon_early(). */
static bool out_serial = true, out_gpu;

/* console=virtio asked for; the virtio sink is on; the boot log is still
 * being written (batched). */
static bool want_virtio, use_virtio, booting = true;
/* What was written before the port was up, held for it (see holding()). */
#define EARLY_BYTES 16384
static char early[EARLY_BYTES];
static size_t early_len;
/* The boot log's cost on each sink (time spent in console_write), for
 * `debug`'s "console:" line and bench/console. */
static uint64_t uart_ns, uart_bytes, virtio_ns, virtio_bytes;

bool console_option(const char *v)
{
	bool serial = false, gpu = false, virtio = false;
	for (const char *p = v; *p;) {
		size_t n = strcspn(p, ",");
		if ((n == 6 && strncmp(p, "serial", 6) == 0) || (n == 4 && strncmp(p, "uart", 4) == 0))
			serial = true;
		else if (n == 3 && strncmp(p, "gpu", 3) == 0)
			gpu = true;
		else if (n == 6 && strncmp(p, "virtio", 6) == 0)
			virtio = true;
		else
			return false;
		p += n + (p[n] == ',');
	}
	if (!serial && !gpu && !virtio)
		return false;
	out_serial = serial;
	out_gpu = gpu;
	want_virtio = virtio;
	return true;
}

void console_start_gpu(void)
{
	if (!out_gpu)
		return;
	if (!fbcon_init()) {
		bool had_serial = out_serial;
		out_serial = true;
		out_gpu = false;
		if (!had_serial) { /* what the screen would have shown, on serial after all */
			const char *p;
			size_t n = fbcon_early_take(&p);
			console_write(p, n);
		}
		klog("console=gpu: no screen (no working virtio-gpu); the console stays on serial");
	}
}

void console_init(void)
{
	/* A UART keeps what is written to its scratch register; an empty
	 * port (no serial device configured) reads back 0xff. */
	outb(COM1 + UART_SCRATCH, 0x5a);
	uart_present = inb(COM1 + UART_SCRATCH) == 0x5a;
	if (!uart_present)
		return;
	outb(COM1 + UART_IER, 0x00);  /* we poll: no interrupts */
	outb(COM1 + UART_LCR, 0x80);  /* DLAB on to set the divisor */
	outb(COM1 + UART_DATA, 0x01); /* 115200 baud */
	outb(COM1 + UART_IER, 0x00);
	outb(COM1 + UART_LCR, 0x03); /* 8 data bits, no parity, 1 stop bit */
	outb(COM1 + UART_FCR, 0xc7); /* FIFOs on and cleared */
	outb(COM1 + UART_MCR, 0x03); /* DTR, RTS */
}

/* Bytes that may go out before the line status is checked again: when
 * the transmitter is empty its 16-byte FIFO (enabled in console_init) takes
 * that many. Each register access traps to the hypervisor, so checking once
 * per 16 bytes instead of once per byte matters for boot time. */
#define UART_FIFO 16
static int fifo_room;

static void uart_putc(char c)
{
	if (fifo_room == 0) {
		/* Bounded wait: a wedged UART must not hang the kernel. */
		for (int i = 0; i < 100000 && !(inb(COM1 + UART_LSR) & LSR_THR_EMPTY); i++)
			cpu_relax();
		fifo_room = UART_FIFO;
	}
	fifo_room--;
	outb(COM1 + UART_DATA, (uint8_t)c);
}

static void uart_write(const char *s, size_t n)
{
	if (!uart_present)
		return;
	uint64_t t0 = booting ? time_ns() : 0;
	for (size_t i = 0; i < n; i++) {
		/* Terminals want CR LF; programs write LF. */
		if (s[i] == '\n')
			uart_putc('\r');
		uart_putc(s[i]);
	}
	if (booting) {
		uart_ns += time_ns() - t0;
		uart_bytes += n;
	}
}

static bool virtio_write(const char *s, size_t n)
{
	uint64_t t0 = booting ? time_ns() : 0;
	bool ok = virtio_console_write(s, n);
	if (ok && !booting)
		virtio_console_flush();
	if (booting) {
		virtio_ns += time_ns() - t0;
		virtio_bytes += n;
	}
	return ok;
}

/* With console=virtio, what is written before the port is up is held here:
 * the port gets it first thing, and the UART (where every byte is a trap)
 * gets it, unless it is a console anyway, only if there turns out to be no
 * port (console_devices_done()), the guest stops first (a panic, a fault:
 * console_drain()) or the buffer fills. */
static bool holding(void) { return want_virtio && !use_virtio; }

/* The UART becomes a console after all, and gets what was held. */
static void to_serial(void)
{
	if (!out_serial)
		uart_write(early, early_len);
	out_serial = true;
	early_len = 0;
}

void console_write(const char *s, size_t n)
{
	if (use_virtio && !virtio_write(s, n)) {
		use_virtio = want_virtio = false; /* the device broke: back to the UART */
		if (!out_serial) {
			static const char lost[] = "console: virtio console lost, back on the UART\n";
			to_serial();
			uart_write(lost, sizeof(lost) - 1);
		}
	} else if (holding()) {
		if (n <= EARLY_BYTES - early_len) {
			memcpy(early + early_len, s, n);
			early_len += n;
		} else {
			to_serial(); /* too much before the port: the UART has it all */
		}
	}
	if (out_gpu) {
		fbcon_early(s, n); /* kept until the screen is there */
		fbcon_write(s, n);
	}
	if (out_serial)
		uart_write(s, n);
}

void console_virtio_ready(void)
{
	if (!holding())
		return;
	use_virtio = true;
	virtio_write(early, early_len);
	early_len = 0;
}

void console_devices_done(void)
{
	if (!holding())
		return;
	want_virtio = false;
	bool had_serial = out_serial;
	to_serial();
	if (!had_serial)
		klog("console: console=virtio but no virtio console port: the UART stays");
}

void console_flush(void)
{
	if (use_virtio)
		virtio_console_flush();
}

void console_drain(void)
{
	if (holding())
		to_serial(); /* stopping before the port came up: say it somewhere */
	console_flush();
	virtio_console_drain(100000000ull);
}

void console_boot_done(void)
{
	if (use_virtio) { /* the last request of the boot log is part of its cost */
		uint64_t t0 = time_ns();
		console_flush();
		virtio_ns += time_ns() - t0;
	}
	booting = false;
	struct virtio_console_stats st;
	virtio_console_stats(&st);
	kdebug("console: boot log on the UART %lu B in %lu us; on virtio-console %lu B in %lu us, %lu requests",
	       (unsigned long)uart_bytes, (unsigned long)(uart_ns / 1000), (unsigned long)virtio_bytes,
	       (unsigned long)(virtio_ns / 1000), (unsigned long)st.requests);
	console_flush();
}

/* The next byte from the serial line or a keyboard, or -1. */
static int next_byte(void)
{
	if (uart_present && (inb(COM1 + UART_LSR) & LSR_DATA_READY))
		return inb(COM1 + UART_DATA);
	return virtio_input_getc();
}

static int pending = -1; /* a byte taken by stdin_ready(), not yet read */

static bool stdin_ready(void *arg)
{
	(void)arg;
	if (pending < 0)
		pending = next_byte();
	return pending >= 0;
}

bool input_stdin_ready(void)
{
	wait_poll();
	return stdin_ready(NULL);
}

/* poll() on descriptor 0: a byte taken here waits in pending for console_read(). */
bool console_rx_ready(void) { return stdin_ready(NULL); }

/* The UART has no wake-up interrupt here: the wait loop looks at it every
 * 10 ms (and after every device wake-up) while a read waits. */
#define CONSOLE_TICK_NS 10000000ull

size_t console_read(char *buf, size_t n)
{
	size_t got = 0;
	if (use_virtio && virtio_console_available()) {
		console_flush(); /* a prompt goes out before the wait */
		while (n && !(got = virtio_console_read(buf, n)) && virtio_console_available())
			wait_until(virtio_console_readable, NULL, WAIT_FOREVER);
		for (size_t i = 0; i < got; i++)
			if (buf[i] == '\r')
				buf[i] = '\n';
		return got;
	}
	if ((!uart_present && !virtio_input_have_keyboard()) || n == 0)
		return 0;
	while (got < n) {
		if (stdin_ready(NULL)) {
			char c = (char)pending;
			pending = -1;
			buf[got++] = c == '\r' ? '\n' : c;
			if (c == '\r' || c == '\n')
				break;
		} else if (got > 0) {
			break; /* return what has arrived */
		} else {
			wait_until(stdin_ready, NULL, time_ns() + CONSOLE_TICK_NS);
		}
	}
	return got;
}

/* ---- formatting -------------------------------------------------------- */

struct out {
	char *buf;
	size_t size; /* capacity including the NUL */
	size_t len;  /* characters produced (may exceed size) */
};

static void put(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void put_num(struct out *o, uint64_t v, unsigned base, bool upper, bool neg, int width, char pad, bool left)
{
	char tmp[24];
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	int n = 0;
	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	if (neg)
		tmp[n++] = '-';
	/* With zero padding the sign goes before the zeros. */
	if (neg && pad == '0') {
		put(o, '-');
		n--;
		width--;
	}
	if (!left) /* left-justified fields are padded by the caller */
		for (int i = n; i < width; i++)
			put(o, pad);
	while (n > 0)
		put(o, tmp[--n]);
}

int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = {buf, size, 0};
	for (const char *p = fmt; *p; p++) {
		if (*p != '%') {
			put(&o, *p);
			continue;
		}
		p++;
		bool left = false;
		char pad = ' ';
		for (;; p++) {
			if (*p == '-')
				left = true;
			else if (*p == '0')
				pad = '0';
			else
				break;
		}
		int width = 0, prec = -1;
		if (*p == '*') {
			width = va_arg(ap, int);
			p++;
		}
		while (*p >= '0' && *p <= '9')
			width = width * 10 + (*p++ - '0');
		if (*p == '.') {
			p++;
			prec = 0;
			if (*p == '*') {
				prec = va_arg(ap, int);
				p++;
			}
			while (*p >= '0' && *p <= '9')
				prec = prec * 10 + (*p++ - '0');
		}
		int lng = 0; /* 0 int, 1 long, 2 long long / size_t */
		while (*p == 'l' || *p == 'z' || *p == 'h') {
			if (*p == 'l')
				lng++;
			else if (*p == 'z')
				lng = 1;
			p++;
		}
		size_t start = o.len;
		switch (*p) {
		case 'd':
		case 'i': {
			int64_t v = lng ? va_arg(ap, long) : va_arg(ap, int);
			put_num(&o, v < 0 ? -(uint64_t)v : (uint64_t)v, 10, false, v < 0, width, pad, left);
			break;
		}
		case 'u':
		case 'x':
		case 'X': {
			uint64_t v = lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
			put_num(&o, v, *p == 'u' ? 10 : 16, *p == 'X', false, width, pad, left);
			break;
		}
		case 'p':
			put(&o, '0');
			put(&o, 'x');
			put_num(&o, (uintptr_t)va_arg(ap, void *), 16, false, false, width, pad, left);
			break;
		case 'c':
			put(&o, (char)va_arg(ap, int));
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			int n = 0;
			while (s[n] && (prec < 0 || n < prec))
				n++;
			if (!left)
				for (int i = n; i < width; i++)
					put(&o, ' ');
			for (int i = 0; i < n; i++)
				put(&o, s[i]);
			break;
		}
		case '%':
			put(&o, '%');
			break;
		case '\0':
			p--;
			break;
		default:
			put(&o, '%');
			put(&o, *p);
		}
		/* Left-justified fields are padded after the fact. */
		if (left)
			for (size_t i = o.len - start; (int)i < width; i++)
				put(&o, ' ');
	}
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return (int)o.len;
}

int ksnprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = kvsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

void kprintf(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = kvsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	console_write(buf, n < (int)sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

void klog(const char *fmt, ...)
{
	char buf[512];
	if (kopt.quiet)
		return;
	uint64_t ns = time_ns();
	int n = ksnprintf(buf, sizeof(buf), "[%5lu.%06lu] ", (unsigned long)(ns / 1000000000),
	                  (unsigned long)(ns / 1000 % 1000000));
	va_list ap;
	va_start(ap, fmt);
	n += kvsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	console_write(buf, n);
}
