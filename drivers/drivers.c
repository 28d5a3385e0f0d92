/*
 * drivers/drivers.c: which driver takes which device.
 *
 * The kernel calls drivers_init() once at boot: PCI is scanned, each virtio
 * device is handed to the driver for its type, and the devices are listed,
 * one line each, with the driver that took them.
 */
#include "../kernel/kernel.h"
#include "../kernel/pci.h"
#include "virtio/virtio_dev.h"
#include "virtio_blk.h"

void drivers_init(void)
{
	pci_init();
	for (int i = 0; i < pci_count(); i++) {
		struct pci_dev *pci = pci_get(i);
		int err = 0;
		switch (virtio_pci_type(pci)) {
		case VIRTIO_ID_BLOCK:
			err = virtio_blk_probe(pci);
			break;
		default:
			continue;
		}
		if (err) {
			pci->driver = "virtio (failed)";
			ksnprintf(pci->note, sizeof(pci->note), "error %d", err);
		}
	}
	pci_print();
}
