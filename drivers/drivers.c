/*
 * drivers/drivers.c: which driver takes which device.
 *
 * The kernel calls drivers_init() once at boot. Virtio devices are found on
 * PCI (every machine but a plain microvm) and as virtio-mmio register blocks
 * that ACPI lists or the command line names (microvm); each is handed to the
 * driver for its type. The
 * PCI devices are then listed, one line each, with the driver that took
 * them; virtio-mmio devices get a line each too.
 */
#include "../kernel/kernel.h"
#include "../kernel/pci.h"
#include "virtio/virtio_dev.h"
#include "virtio_balloon.h"
#include "virtio_blk.h"
#include "virtio_console.h"
#include "virtio_gpu.h"
#include "virtio_input.h"
#include "virtio_net.h"
#include "virtio_rng.h"
#include "virtio_scsi.h"

/* Gives a found device to its driver; 0, or a negative errno. */
static int attach(struct virtio_dev *vd, const char **driver, char *note, size_t note_len)
{
	switch (vd->type) {
	case VIRTIO_ID_NET:
		*driver = "virtio-net";
		return virtio_net_probe(vd, note, note_len);
	case VIRTIO_ID_BLOCK:
		*driver = "virtio-blk";
		return virtio_blk_probe(vd, note, note_len);
	case VIRTIO_ID_CONSOLE:
		*driver = "virtio-console";
		return virtio_console_probe(vd, note, note_len);
	case VIRTIO_ID_BALLOON:
		*driver = "virtio-balloon";
		return virtio_balloon_probe(vd, note, note_len);
	case VIRTIO_ID_RNG:
		*driver = "virtio-rng";
		return virtio_rng_probe(vd, note, note_len);
	case VIRTIO_ID_SCSI:
		*driver = "virtio-scsi";
		return virtio_scsi_probe(vd, note, note_len);
	case VIRTIO_ID_GPU:
		*driver = "virtio-gpu";
		return virtio_gpu_probe(vd, note, note_len);
	case VIRTIO_ID_INPUT:
		*driver = "virtio-input";
		return virtio_input_probe(vd, note, note_len);
	default:
		*driver = NULL; /* a type Ringlet has no driver for */
		return 0;
	}
}

/*
 * virtio-mmio register blocks: those the ACPI DSDT lists, then those the
 * command line names (virtio_mmio.device=, for a monitor without ACPI), each
 * base once. The command line's IRQ is logged here and routed by the mmio
 * transport's setup_irq() (drivers/virtio/virtio_mmio.c) when ACPI names none.
 */
static void virtio_mmio_init(void)
{
	uint64_t bases[32];
	int irqs[32];
	int n = acpi_virtio_mmio(bases, 32);
	for (int i = 0; i < n; i++)
		irqs[i] = -1;
	for (int k = 0; k < kopt.nvirtio_mmio && n < 32; k++) {
		int i = 0;
		while (i < n && bases[i] != kopt.virtio_mmio[k].base)
			i++;
		if (i == n)
			bases[n++] = kopt.virtio_mmio[k].base;
		irqs[i] = (int)kopt.virtio_mmio[k].irq;
	}
	for (int i = 0; i < n; i++) {
		struct virtio_dev vd;
		const char *driver;
		char note[40] = "", irq[16] = "";
		if (virtio_mmio_probe(&vd, bases[i]) != 0)
			continue; /* an empty slot */
		if (irqs[i] >= 0)
			ksnprintf(irq, sizeof(irq), " irq %d", irqs[i]);
		int err = attach(&vd, &driver, note, sizeof(note));
		if (err)
			klog("virtio %s%s %s type %d: %s failed, error %d", vd.where, irq, vd.t->name, vd.type, driver,
			     err);
		else
			klog("virtio %s%s %s type %d %s %s", vd.where, irq, vd.t->name, vd.type, driver ? driver : "-",
			     note);
	}
}

void drivers_init(void)
{
	pci_init();
	for (int i = 0; i < pci_count(); i++) {
		struct pci_dev *pci = pci_get(i);
		struct virtio_dev vd;
		if (!virtio_pci_type(pci))
			continue;
		int err = virtio_pci_probe(&vd, pci);
		if (!err)
			err = attach(&vd, &pci->driver, pci->note, sizeof(pci->note));
		if (err) {
			pci->driver = "virtio (failed)";
			ksnprintf(pci->note, sizeof(pci->note), "error %d", err);
		}
	}
	pci_print();
	virtio_mmio_init();
}
