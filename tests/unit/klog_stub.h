/*
 * klog_stub.h: the kernel's log and panic, for a host test that #includes a
 * driver's .c file (test_virtio_gpu.c, _input, _balloon, _rng, _net) or links
 * only the driver and the virtqueue (test_virtio_scsi.c). klog() keeps
 * the last line in last_log, for the test to check what the driver said;
 * ksnprintf() is vsnprintf(); panic() prints and aborts. Tests that link the
 * virtio core instead use kstubs.c.
 */
#ifndef RINGLET_TEST_KLOG_STUB_H
#define RINGLET_TEST_KLOG_STUB_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

struct kernel_options kopt;
static char last_log[256];

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
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_log, sizeof(last_log), fmt, ap);
	va_end(ap);
}

_Noreturn void panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	abort();
}

#endif
