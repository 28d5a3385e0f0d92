/*
 * pci_stubs.h: the platform services kernel/pci.c calls besides the log, for the host programs
 * that link it (tests/unit/test_pci.c, tests/fuzz/fuzz_pci.c): MMIO is identity-mapped and
 * refused nowhere, and ACPI names no configuration window, no fixed ports and no RAM top. Only
 * pci_init() and pci_map_bar() reach these; the programs drive pci_setup() with a platform of
 * their own.
 */
#ifndef RINGLET_TEST_PCI_STUBS_H
#define RINGLET_TEST_PCI_STUBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

volatile void *mmio_map(uint64_t phys, size_t len)
{
	(void)len;
	return (volatile void *)(uintptr_t)phys;
}
const char *mmio_refusal(uint64_t phys, uint64_t len, uint64_t *past)
{
	(void)phys, (void)len, (void)past;
	return NULL;
}
bool acpi_mcfg(uint64_t *base, uint8_t *bus_end)
{
	*base = 0, *bus_end = 0;
	return false;
}
int acpi_fixed_ports(uint32_t (*blocks)[2], int max)
{
	(void)blocks, (void)max;
	return 0;
}
uintptr_t pmem_top(void) { return 0; }

#endif
