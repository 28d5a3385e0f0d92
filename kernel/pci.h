/*
 * kernel/pci.h: PCI devices as the drivers see them.
 */
#ifndef RINGLET_PCI_H
#define RINGLET_PCI_H

#include <stdbool.h>
#include <stdint.h>

#define PCI_MAX_DEVICES 64

/* Configuration-space registers (PCI Local Bus Specification 3.0, §6.1). */
#define PCI_VENDOR_ID      0x00
#define PCI_DEVICE_ID      0x02
#define PCI_COMMAND        0x04
#define PCI_STATUS         0x06
#define PCI_CLASS_REVISION 0x08
#define PCI_HEADER_TYPE    0x0e
#define PCI_BAR0           0x10
#define PCI_SUBSYSTEM_ID   0x2e
#define PCI_CAP_PTR        0x34
#define PCI_SECONDARY_BUS  0x19 /* bridges (header type 1) */

#define PCI_COMMAND_IO           0x1
#define PCI_COMMAND_MEMORY       0x2
#define PCI_COMMAND_MASTER       0x4
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS_CAP_LIST      0x10

struct pci_bar {
	uint64_t addr; /* bus address (== physical); 0 when unassigned */
	uint64_t size; /* bytes; 0 when the BAR does not exist */
	bool io;       /* an I/O-port BAR */
	bool is64;     /* a 64-bit memory BAR (takes two BAR slots) */
};

struct pci_dev {
	uint8_t bus, dev, fn;
	uint16_t vendor, device;
	uint16_t subsys_id;
	uint8_t class, subclass, prog_if, revision;
	struct pci_bar bar[6];
	bool bars_probed;
	const char *driver; /* set by the driver that took the device, for the boot listing */
	char note[40];      /* the driver's few words about it ("vda 64 MiB") */
};

/* Finds every device. */
void pci_init(void);
/* Sizes the device's BARs (once) and assigns the ones the firmware left
 * unassigned: a driver calls this when it takes the device. */
void pci_probe_bars(struct pci_dev *d);
int pci_count(void);
struct pci_dev *pci_get(int i);
/* One line per device, like a short lspci. */
void pci_print(void);

uint8_t pci_read8(const struct pci_dev *d, uint16_t off);
uint16_t pci_read16(const struct pci_dev *d, uint16_t off);
uint32_t pci_read32(const struct pci_dev *d, uint16_t off);
void pci_write16(const struct pci_dev *d, uint16_t off, uint16_t v);
void pci_write32(const struct pci_dev *d, uint16_t off, uint32_t v);

/* Offset of the first capability with this ID at or after `start` (0 to
 * begin), or 0 when there is none. */
uint8_t pci_find_cap(const struct pci_dev *d, uint8_t id, uint8_t start);
/* Turns on memory and/or I/O decoding and bus mastering (DMA). */
void pci_enable(const struct pci_dev *d, bool mem, bool io);
/* Maps a memory BAR uncached and returns a pointer to offset `off` in it. */
volatile void *pci_map_bar(const struct pci_dev *d, int bar, uint64_t off, uint64_t len);

#endif
