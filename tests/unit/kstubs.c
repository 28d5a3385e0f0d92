/*
 * kstubs.c: the few kernel services the drivers call, for host-side tests
 * that link driver code (virtio.c, virtio_pci.c, virtio_blk.c): pages come
 * from aligned_alloc, the log goes to a buffer the test can read, time is a
 * counter the test moves. kernel/irq.c is linked as it is, over a machine
 * without IOAPICs (routing fails: a device gets MSI-X or the timer).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "irq.h"
#include "kernel.h"
#include "kstubs.h"
#include "wait.h"

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

_Noreturn void panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "panic: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

void lapic_eoi(void) {}
uint32_t lapic_id(void) { return 0; }

int acpi_ioapics(struct acpi_ioapic *out, int max)
{
	(void)out;
	(void)max;
	return 0;
}

int acpi_virtio_mmio_irq(uint64_t base, struct acpi_irq *irq)
{
	(void)base;
	(void)irq;
	return -1;
}

/* The wait loop is not linked: a driver's registration is only recorded. */
struct wait_source *kstub_wait_sources[8];
int kstub_nwait_sources;

void wait_add_source(struct wait_source *s)
{
	if (kstub_nwait_sources < 8)
		kstub_wait_sources[kstub_nwait_sources++] = s;
}

/* The block layer is not linked: a disk driver's registration is only recorded, and the
 * test drives the disk through the operations it registered. */
const struct blk_dev_ops *kstub_blk_ops;
void *kstub_blk_dev[16];
int kstub_nblk;

int blk_register(const struct blk_dev_ops *ops, void *dev)
{
	if (kstub_nblk == 16)
		return -ENOSPC;
	kstub_blk_ops = ops;
	kstub_blk_dev[kstub_nblk++] = dev;
	return 0;
}
