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

/* A BAR as pci_probe_bars() left it: checked, and safe to map or use. */
struct pci_bar {
	uint64_t addr; /* bus address (== physical); 0 when unassigned */
	uint64_t size; /* bytes; 0 when the BAR does not exist or was refused */
	bool io;       /* an I/O-port BAR */
	bool is64;     /* a 64-bit memory BAR (takes two BAR slots) */
};

struct pci_dev {
	uint8_t bus, dev, fn;
	uint16_t vendor, device;
	uint16_t subsys_id;
	uint8_t class, subclass, prog_if, revision;
	uint8_t header; /* header type without the multi-function bit: 0 device, 1 PCI bridge */
	struct pci_bar bar[6];
	uint8_t bars_state; /* 0: not looked at, 1: sized and checked, 2: placed (pci_probe_bars() done) */
	uint8_t pending;    /* BARs (bit i) sized but still without a usable address */
	/* A BAR of this kind was refused: that decoding stays off (as it does
	 * while a BAR of the kind is pending), else the device would answer where
	 * the BAR points (over RAM, a fixed port, another device). */
	bool no_mem, no_io;
	const char *driver; /* set by the driver that took the device, for the boot listing */
	char note[40];      /* the driver's few words about it ("vda 64 MiB") */
};

/* Finds every device. */
void pci_init(void);
/* Sizes the device's BARs (once), checks each against RAM, the kernel, the
 * fixed device ranges and ports and the other devices' BARs, and moves the
 * ones that conflict or that the firmware left unassigned into the window;
 * what cannot be made safe is refused (size 0, with a log line). A driver
 * calls this when it takes the device. */
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
/* Turns on memory and/or I/O decoding and bus mastering (DMA); the BARs are
 * checked first, and a kind with a refused or unplaced BAR stays off. */
void pci_enable(struct pci_dev *d, bool mem, bool io);
/* Maps a memory BAR uncached and returns a pointer to offset `off` in it,
 * or NULL (no such BAR, out of its bounds, or refused). */
volatile void *pci_map_bar(const struct pci_dev *d, int bar, uint64_t off, uint64_t len);

/* ---- the pieces pci_init() is made of, offered for tests/unit/test_pci.c -- */

/* How configuration space is reached: ECAM or the 0xcf8 ports, or a test's
 * simulated bus. Only buses in the platform's [bus_start, bus_end] are ever
 * passed in. */
struct pci_cfg_ops {
	const char *name;
	/* Makes the function's configuration space reachable (maps its page);
	 * false if it cannot be. NULL: nothing to do. */
	bool (*map)(uint8_t bus, uint8_t dev, uint8_t fn);
	uint32_t (*read32)(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off);
	void (*write32)(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t off, uint32_t v);
};

/* A range of addresses or ports, [start, end), and what lives there. */
struct pci_range {
	uint64_t start, end;
	const char *what;
};

/* One kind of BAR space (memory or I/O ports): what a BAR may not overlap,
 * the BARs accepted so far, and the window BARs are (re)assigned from. */
struct pci_space {
	uint64_t next, end;            /* the window: [next, end); end 0: none */
	uint64_t limit;                /* a BAR must end at or below this */
	uint64_t granule;              /* smallest unit placed and checked (a page for memory) */
	const struct pci_range *fixed; /* never a BAR's: the APICs, the ECAM window; fixed ports */
	int nfixed;
	struct pci_range *taken; /* BARs accepted or placed so far */
	int ntaken, max_taken;
	/* Why [base, base+size) is not device space (RAM, the kernel), or NULL,
	 * and the first address past what refused it; the kernel passes
	 * mmio_refusal(). NULL: no such check. */
	const char *(*refusal)(uint64_t base, uint64_t size, uint64_t *past);
};

/* What pci_setup() needs to know about the machine. */
struct pci_platform {
	const struct pci_cfg_ops *cfg;
	uint8_t bus_start, bus_end; /* the buses cfg reaches (MCFG's range) */
	struct pci_space mem, io;   /* their taken arrays are pci.c's own: leave them NULL */
};

/* Forgets every device and walks the buses anew (pci_init() calls it). */
void pci_setup(const struct pci_platform *p);

/* The size a BAR claims (PCI 3.0 §6.2.5.1), from its original value and the
 * masks read back after writing all ones (mask_hi: the upper dword of a
 * 64-bit BAR, else ignored). 0 with *why when the answer makes no sense: a
 * mask that is not contiguous ones from the top, a reserved type, a memory
 * BAR of 4 GiB or more, an I/O BAR over 256 bytes. */
uint64_t pci_bar_size(uint32_t orig, uint32_t mask, uint32_t mask_hi, const char **why);
/* Why a BAR of `size` bytes may not stay at `addr` (a few words: "unassigned",
 * "usable RAM", "another device's BAR", ...), or NULL when it may. */
const char *pci_bar_check(const struct pci_space *s, uint64_t addr, uint64_t size);
/* Records an accepted BAR as taken; false when the table is full. */
bool pci_bar_take(struct pci_space *s, uint64_t addr, uint64_t size);
/* An address in the window for a BAR of `size` bytes that pci_bar_check()
 * accepts, recorded as taken; 0 when there is no room. */
uint64_t pci_bar_alloc(struct pci_space *s, uint64_t size);

#endif
