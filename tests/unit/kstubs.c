/*
 * kstubs.c: the few kernel services the drivers call, for host-side tests
 * that link driver code (virtio.c, virtio_pci.c, virtio_blk.c): pages come
 * from aligned_alloc, the log goes to a buffer the test can read, time is a
 * counter the test moves.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>

#include "irq.h"
#include "wait.h"
#include "kernel.h"
#include "kstubs.h"

struct kernel_options kopt;
char kstub_log[4096];
uint64_t kstub_now_ns;

void *page_alloc(size_t npages)
{
	void *p = aligned_alloc(PAGE_SIZE, npages * PAGE_SIZE);
	if (p)
		memset(p, 0, npages * PAGE_SIZE);
	return p;
}

void page_free(void *p, size_t npages)
{
	(void)npages;
	free(p);
}

int ksnprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

/* Each line is appended to kstub_log (what a test checks) and, with
 * KSTUB_VERBOSE set in the environment, printed. */
void klog(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	size_t used = strlen(kstub_log);
	snprintf(kstub_log + used, sizeof(kstub_log) - used, "%s\n", line);
	if (getenv("KSTUB_VERBOSE"))
		fprintf(stderr, "klog: %s\n", line);
}

uint64_t time_ns(void) { return kstub_now_ns; }

volatile void *mmio_map(uint64_t phys, size_t len)
{
	(void)len;
	return (volatile void *)(uintptr_t)phys; /* the tests' "physical" addresses are heap pointers */
}

/* No interrupt controller on the host: every device is "timer only". */
int irq_alloc(const char *name, void (*ack)(void *ctx), void *ctx)
{
	(void)name, (void)ack, (void)ctx;
	return -ENOSPC;
}

void irq_free(int vector) { (void)vector; }

uint64_t irq_count(int vector)
{
	(void)vector;
	return 0;
}

uint64_t irq_msi_address(void) { return 0; }

uint32_t irq_msi_data(int vector) { return (uint32_t)vector; }

int irq_attach_gsi(uint32_t gsi, bool level, bool active_low, const char *name, void (*ack)(void *ctx), void *ctx)
{
	(void)gsi, (void)level, (void)active_low, (void)name, (void)ack, (void)ctx;
	return -ENODEV;
}

int acpi_virtio_mmio_irq(uint64_t base, struct acpi_irq *irq)
{
	(void)base, (void)irq;
	return -1;
}

/* Sources register but nothing runs the loop: a test polls the driver itself. */
void wait_add_source(struct wait_source *s) { s->next = NULL; }
