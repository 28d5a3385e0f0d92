/*
 * drivers/virtio_scsi.h: what the virtio-scsi driver offers drivers/drivers.c.
 * Each disk LUN behind a controller is registered with the block layer
 * (kernel/blkdev.h) as sda, sdb, ..., which is the only caller of the rest.
 */
#ifndef RINGLET_VIRTIO_SCSI_H
#define RINGLET_VIRTIO_SCSI_H

#include <stddef.h>

struct virtio_dev;

/* Takes a controller a transport found (and reset), finds its LUNs (one log
 * line each) and writes a few words about it ("2 LUNs: sda sdb") into note.
 * Returns 0 or a negative errno. */
int virtio_scsi_probe(const struct virtio_dev *found, char *note, size_t note_len);

#endif
