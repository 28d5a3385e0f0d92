/*
 * apps/selftest: faults on purpose, so the tests can check the kernel's
 * reports. Run only by tests/integration/test_faults.py.
 *
 * Usage: selftest FAULT, where FAULT is one of
 *   null        read through a NULL pointer (page fault, CR2 = 0)
 *   rodata      write to a string constant (page fault on a read-only page)
 *   stack       unbounded recursion into the stack's guard page
 *   divide      integer divide by zero (#DE)
 *   abort       abort()
 *   assert      a failing assert()
 *   canary      overwrite a local array's canary (stack protector)
 *   smash       a classic overflow: a byte loop runs past a local buffer over
 *               the canary and the saved registers (stack protector; the
 *               canary comes from the kernel's seeded generator)
 *   exec        jump into a data page (no-execute)
 *   guard       no fault: print the stack canary's value ("selftest guard 0x...")
 *               and return 0
 *   ok          no fault: print "selftest ok" and return 0
 *   mmio        no fault: ask the kernel's mmio_map() for RAM, the kernel image
 *               and an address beyond the CPU's reach (each must be refused)
 *               and for the IOAPIC's page (must be mapped; its version
 *               register is printed); run by tests/integration/test_pci.py
 *   pcibar      no fault: on q35, point the AHCI controller's BARs (which no
 *               driver takes) at RAM and at COM1, as hostile firmware might,
 *               then let the kernel probe them: it must move both, and the
 *               controller must answer at its new address; run by
 *               tests/integration/test_pci.py
 */
#include <assert.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernel/kernel.h" /* mmio_map(): one image, so the app may call it */
#include "../../kernel/pci.h"

/* The faulting functions are noinline so that their names appear in the
 * backtrace; volatile keeps the compiler from proving the faults away. */
__attribute__((noinline)) static int fault_null(void)
{
	volatile int *p = NULL;
	return *p;
}

static const char message[] = "read-only";

__attribute__((noinline)) static void fault_rodata(void)
{
	volatile char *p = (volatile char *)message;
	p[0] = 'X';
}

/* The limit is never reached: the stack runs out long before. It is there
 * because the compiler (rightly) refuses recursion without an end. */
__attribute__((noinline)) static int fault_stack(int depth)
{
	volatile char pad[256];
	pad[0] = (char)depth;
	if (depth > 100000000)
		return 0;
	return fault_stack(depth + 1) + pad[0];
}

__attribute__((noinline)) static int fault_divide(volatile int divisor) { return 100 / divisor; }

__attribute__((noinline)) static void fault_canary(const char *src)
{
	char buf[16];
	/* Deliberately too long: the copy runs over the canary. */
	memcpy(buf, src, 64);
	__asm__ volatile("" ::"r"(buf) : "memory");
}

/* The loop's bound comes from outside the function, so the compiler can
 * neither warn nor stop it; it writes over the canary and beyond. */
__attribute__((noinline)) static void fault_smash(const char *src, volatile size_t n)
{
	char buf[8];
	for (size_t i = 0; i < n; i++)
		buf[i] = src[i % 8];
	__asm__ volatile("" ::"r"(buf) : "memory");
}

static unsigned char data_page[16] = {0xc3}; /* "ret", but in a non-executable page */

__attribute__((noinline)) static void fault_exec(void)
{
	void (*f)(void) = (void (*)(void))(void *)data_page;
	f();
}

/* One line per attempt: "mmio NAME 0xADDR refused" or "mmio NAME 0xADDR mapped". */
static volatile void *try_map(const char *name, uint64_t addr, size_t len)
{
	volatile void *p = mmio_map(addr, len);
	printf("mmio %s 0x%llx %s\n", name, (unsigned long long)addr, p ? "mapped" : "refused");
	return p;
}

static int mmio_selftest(void)
{
	static char kernel_data[64]; /* the kernel image holds the app's data too */
	char *heap = malloc(8192);
	if (!heap)
		return 4;
	memset(heap, 0x5a, 8192);
	try_map("ram", (uintptr_t)heap, 8192);
	try_map("kernel", (uintptr_t)kernel_data, sizeof(kernel_data));
	try_map("beyond", 1ull << 60, 4096);
	volatile uint32_t *io = try_map("ioapic", 0xfec00000ull, 4096);
	if (io) {
		io[0] = 1; /* IOREGSEL: IOAPICVER */
		printf("mmio ioapic version 0x%08x\n", (unsigned)io[4]);
	}
	/* Refused means untouched: the heap still holds what we wrote. */
	for (int i = 0; i < 8192; i++)
		if (heap[i] != 0x5a)
			return 5;
	printf("mmio heap intact\n");
	return 0;
}

#define AHCI_ABAR 5 /* the HBA's registers (AHCI 1.3.1 §2.1.11), 32-bit memory */
#define AHCI_IDP  4 /* the index/data pair, I/O ports */
#define AHCI_VS   0x10

static int pcibar_selftest(void)
{
	struct pci_dev *d = NULL;
	for (int i = 0; i < pci_count(); i++)
		if (pci_get(i)->vendor == 0x8086 && pci_get(i)->device == 0x2922)
			d = pci_get(i); /* q35's ICH9 AHCI controller */
	if (!d || d->driver) {
		printf("pcibar: no free AHCI controller\n");
		return 6;
	}
	uint8_t *ram = memalign(4096, 4096);
	if (!ram)
		return 4;
	memset(ram, 0x5a, 4096);
	/* Decoding off, then the BARs where they must not be. */
	pci_write16(d, PCI_COMMAND, pci_read16(d, PCI_COMMAND) & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY));
	pci_write32(d, PCI_BAR0 + 4 * AHCI_ABAR, (uint32_t)(uintptr_t)ram);
	pci_write32(d, PCI_BAR0 + 4 * AHCI_IDP, 0x3f8 | 1);
	printf("pcibar ram 0x%lx\n", (unsigned long)(uintptr_t)ram);
	pci_probe_bars(d);
	pci_enable(d, true, true);
	for (int i = AHCI_IDP; i <= AHCI_ABAR; i++)
		printf("pcibar BAR%d 0x%llx size %llu register 0x%08x\n", i, (unsigned long long)d->bar[i].addr,
		       (unsigned long long)d->bar[i].size, (unsigned)pci_read32(d, PCI_BAR0 + 4 * i));
	volatile uint32_t *hba = (volatile uint32_t *)pci_map_bar(d, AHCI_ABAR, 0, 4096);
	if (hba)
		printf("pcibar AHCI version 0x%08x\n", (unsigned)hba[AHCI_VS / 4]);
	for (int i = 0; i < 4096; i++)
		if (ram[i] != 0x5a)
			return 5;
	printf("pcibar ram intact\n");
	return 0;
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";
	printf("selftest: %s\n", what);
	fflush(stdout);

	if (strcmp(what, "null") == 0)
		return fault_null();
	if (strcmp(what, "rodata") == 0)
		fault_rodata();
	else if (strcmp(what, "stack") == 0)
		return fault_stack(0);
	else if (strcmp(what, "divide") == 0)
		return fault_divide(0);
	else if (strcmp(what, "abort") == 0)
		abort();
	else if (strcmp(what, "assert") == 0)
		assert(argc == 42);
	else if (strcmp(what, "canary") == 0) {
		static const char junk[64] = "0123456789abcdef0123456789abcdef0123456789abcdef012345678";
		fault_canary(junk);
	} else if (strcmp(what, "smash") == 0)
		fault_smash("AAAAAAAA", 40);
	else if (strcmp(what, "exec") == 0)
		fault_exec();
	else if (strcmp(what, "guard") == 0) {
		extern uintptr_t __stack_chk_guard; /* kernel/exit.c */
		printf("selftest guard 0x%016llx\n", (unsigned long long)__stack_chk_guard);
		return 0;
	} else if (strcmp(what, "mmio") == 0)
		return mmio_selftest();
	else if (strcmp(what, "pcibar") == 0)
		return pcibar_selftest();
	else if (strcmp(what, "ok") == 0) {
		printf("selftest ok\n");
		return 0;
	} else {
		fprintf(stderr, "selftest: unknown fault '%s'\n", what);
		return 2;
	}
	printf("selftest: %s did not fault\n", what);
	return 3;
}
