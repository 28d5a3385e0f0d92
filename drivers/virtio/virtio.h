/*
 * virtio: the structures and constants of the specification, named as it names them.
 * Implements: Virtual I/O Device (VIRTIO) Version 1.2, §2.1 Device Status Field,
 *             §2.7 Split Virtqueues, §4.1 Virtio Over PCI Bus, §6 Reserved Feature Bits.
 * Try it:     make test (tests/unit/test_virtq.c plays the device against these structs)
 *
 * Field types: the spec writes le16/le32/le64 for the device-visible fields of a modern
 * device and "guest native" for a legacy one. x86-64 is little-endian, so both are plain
 * uintN_t here and no access ever converts (checked once, just below).
 *
 * "RO" in a comment marks a field the driver only reads: the device writes it.
 */
#ifndef RINGLET_VIRTIO_H
#define RINGLET_VIRTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "virtio.h: Ringlet assumes a little-endian CPU and does no le16/le32/le64 conversion"
#endif

/*
 * Memory barriers, for memory shared with a device.
 *
 * Even a guest with one vCPU needs them: the device is not on our CPU. QEMU's device model
 * (or vhost) runs in another host thread, on another host CPU, and reads the rings while we
 * write them. So the rules of a multiprocessor apply between us and the device.
 *
 * x86-64 is TSO: stores become visible in program order, loads are not reordered with other
 * loads, and the only reordering the CPU does is a later load passing an earlier store (the
 * store buffer). Therefore:
 *   virtio_wmb()  store/store: the CPU keeps that order; only the compiler must be stopped.
 *   virtio_rmb()  load/load:   the same.
 *   virtio_mb()   store/load:  needs a real fence. `mfence` is the plain choice (a locked
 *                 add to the stack is a little faster on some CPUs, but says less to a reader).
 * The "memory" clobber also keeps the compiler from caching ring fields across the barrier.
 * `mfence` touches no SSE register, so it is fine under -mgeneral-regs-only.
 *
 * Ring memory is ordinary write-back RAM, so no weaker-ordered memory types (WC, non-temporal
 * stores) are involved; were they, wmb would need `sfence`.
 */
#if !defined(__x86_64__)
#error "virtio.h: the barrier macros below are written for x86-64"
#endif
#define virtio_mb()  __asm__ __volatile__("mfence" ::: "memory")
#define virtio_rmb() __asm__ __volatile__("" ::: "memory")
#define virtio_wmb() __asm__ __volatile__("" ::: "memory")

/* §2.1 Device Status Field: bits the driver sets, in this order, as initialisation proceeds. */
#define VIRTIO_STATUS_ACKNOWLEDGE        1   /* the guest found the device and knows it is virtio */
#define VIRTIO_STATUS_DRIVER             2   /* the guest knows how to drive the device */
#define VIRTIO_STATUS_DRIVER_OK          4   /* the driver is set up and ready to drive the device */
#define VIRTIO_STATUS_FEATURES_OK        8   /* feature negotiation is complete (re-read it!) */
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64  /* set by the device: unrecoverable error */
#define VIRTIO_STATUS_FAILED             128 /* the driver gave up on the device */

/*
 * Feature bits (§2.2; the device-independent ones are listed in §6 Reserved Feature Bits).
 * Always bit NUMBERS, never masks: test them with virtio_has_feature(), build a mask with
 * (1ull << VIRTIO_F_...). Device-specific bits (0 to 23) live in each driver's header.
 */
#define VIRTIO_F_NOTIFY_ON_EMPTY   24 /* legacy only: notify when the avail ring runs empty */
#define VIRTIO_F_ANY_LAYOUT        27 /* legacy only: no assumptions about message framing */
#define VIRTIO_F_INDIRECT_DESC     28 /* VIRTQ_DESC_F_INDIRECT may be used (§2.7.5.3) */
#define VIRTIO_F_EVENT_IDX         29 /* used_event / avail_event replace the flags (§2.7.7) */
#define VIRTIO_F_VERSION_1         32 /* a modern (1.0+) device; absent on legacy ones */
#define VIRTIO_F_ACCESS_PLATFORM   33 /* device access to memory may be limited/translated */
#define VIRTIO_F_RING_PACKED       34 /* packed virtqueues (§2.8) are supported */
#define VIRTIO_F_IN_ORDER          35 /* buffers are used in the order they were made available */
#define VIRTIO_F_ORDER_PLATFORM    36 /* use the platform's barriers for real hardware */
#define VIRTIO_F_SR_IOV            37 /* PCI SR-IOV is supported */
#define VIRTIO_F_NOTIFICATION_DATA 38 /* driver notifications carry extra data (§2.9) */
#define VIRTIO_F_NOTIF_CONFIG_DATA 39 /* notify with queue_notify_data instead of the index */
#define VIRTIO_F_RING_RESET        40 /* single queues can be reset (§2.6.1) */

/* The one way to test a feature bit. */
static inline bool virtio_has_feature(uint64_t features, unsigned bit)
{
	return bit < 64 && ((features >> bit) & 1) != 0;
}

/* §5 Device Types: the device IDs of the devices Ringlet drives. */
#define VIRTIO_ID_NET     1
#define VIRTIO_ID_BLOCK   2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_ENTROPY 4
#define VIRTIO_ID_BALLOON 5

/*
 * §2.7 Split Virtqueues. Three parts in guest memory; alignment / size (§2.7, table):
 *   Descriptor Table  16 / 16 * Queue Size
 *   Available Ring     2 /  6 +  2 * Queue Size   (flags, idx, ring[], used_event)
 *   Used Ring          4 /  6 +  8 * Queue Size   (flags, idx, ring[], avail_event)
 * The driver writes the descriptor table and the available ring; the device writes the used
 * ring. Queue Size is a power of two, at most 32768.
 */

/* §2.7.5 The Virtqueue Descriptor Table: one buffer (or one indirect table). */
struct virtq_desc {
	uint64_t addr;  /* guest-physical address of the buffer */
	uint32_t len;   /* length of the buffer in bytes */
	uint16_t flags; /* VIRTQ_DESC_F_* */
	uint16_t next;  /* index of the next descriptor of the chain, if flags & NEXT */
};
#define VIRTQ_DESC_F_NEXT     1 /* the chain continues with desc[next] */
#define VIRTQ_DESC_F_WRITE    2 /* device write-only (otherwise device read-only) */
#define VIRTQ_DESC_F_INDIRECT 4 /* the buffer is a table of descriptors (§2.7.5.3) */

/* §2.7.6 The Virtqueue Available Ring: written by the driver only, read by the device. */
struct virtq_avail {
	uint16_t flags;  /* VIRTQ_AVAIL_F_*; must be 0 when VIRTIO_F_EVENT_IDX is negotiated */
	uint16_t idx;    /* where the driver puts the next entry (mod Queue Size); free-running */
	uint16_t ring[]; /* [Queue Size] heads of descriptor chains offered to the device */

	/* then uint16_t used_event, after ring[Queue Size], only with VIRTIO_F_EVENT_IDX (§2.7.7) */
};
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1 /* the driver needs no used buffer notification */

/* §2.7.8 The Virtqueue Used Ring: one completed chain. RO: written by the device. */
struct virtq_used_elem {
	uint32_t id;  /* RO: head index of the used descriptor chain (32 bits for padding) */
	uint32_t len; /* RO: bytes written into the chain's device-writable part */
};

/* §2.7.8 The Virtqueue Used Ring: written by the device only, read by the driver. */
struct virtq_used {
	uint16_t flags;                /* RO: VIRTQ_USED_F_*; 0 with VIRTIO_F_EVENT_IDX */
	uint16_t idx;                  /* RO: where the device puts the next entry; free-running */
	struct virtq_used_elem ring[]; /* RO: [Queue Size] completed chains */

	/* then uint16_t avail_event, after ring[Queue Size], RO, only with VIRTIO_F_EVENT_IDX (§2.7.10) */
};
#define VIRTQ_USED_F_NO_NOTIFY 1 /* the device needs no available buffer notification */

_Static_assert(sizeof(struct virtq_desc) == 16, "virtq_desc is 16 bytes");
_Static_assert(sizeof(struct virtq_avail) == 4, "virtq_avail header is flags + idx");
_Static_assert(sizeof(struct virtq_used_elem) == 8, "virtq_used_elem is 8 bytes");
_Static_assert(sizeof(struct virtq_used) == 4, "virtq_used header is flags + idx");

/*
 * §4.1.2 PCI Device Discovery: vendor 0x1AF4; device 0x1040 + device ID for a modern device,
 * 0x1000..0x103F for a transitional one (then the PCI subsystem ID is the device ID).
 */
#define VIRTIO_PCI_VENDOR_ID           0x1af4
#define VIRTIO_PCI_MODERN_DEVICE_BASE  0x1040
#define VIRTIO_PCI_LEGACY_DEVICE_FIRST 0x1000
#define VIRTIO_PCI_LEGACY_DEVICE_LAST  0x103f

/*
 * §4.1.4 Virtio Structure PCI Capabilities: each modern register block is found through a
 * vendor-specific PCI capability (capability ID 0x09) that says which BAR holds it and where.
 */
#define VIRTIO_PCI_CAP_ID_VNDR 0x09

/* cfg_type values (§4.1.4) */
#define VIRTIO_PCI_CAP_COMMON_CFG        1 /* struct virtio_pci_common_cfg */
#define VIRTIO_PCI_CAP_NOTIFY_CFG        2 /* queue notification area (struct virtio_pci_notify_cap) */
#define VIRTIO_PCI_CAP_ISR_CFG           3 /* one byte of ISR status */
#define VIRTIO_PCI_CAP_DEVICE_CFG        4 /* device-specific configuration */
#define VIRTIO_PCI_CAP_PCI_CFG           5 /* access to the other blocks through PCI config space */
#define VIRTIO_PCI_CAP_SHARED_MEMORY_CFG 8 /* a shared memory region (struct virtio_pci_cap64) */
#define VIRTIO_PCI_CAP_VENDOR_CFG        9 /* vendor data, ignored by drivers */

/* §4.1.4 The capability itself, in PCI configuration space. All RO. */
struct virtio_pci_cap {
	uint8_t cap_vndr;   /* RO: PCI capability ID, VIRTIO_PCI_CAP_ID_VNDR */
	uint8_t cap_next;   /* RO: offset of the next capability, 0 at the end of the list */
	uint8_t cap_len;    /* RO: length of this capability, including any extra fields */
	uint8_t cfg_type;   /* RO: VIRTIO_PCI_CAP_*_CFG */
	uint8_t bar;        /* RO: which BAR (0-5) holds the structure */
	uint8_t id;         /* RO: identifies several capabilities of one type (shared memory) */
	uint8_t padding[2]; /* RO: pad to a full dword */
	uint32_t offset;    /* RO: offset of the structure within the BAR */
	uint32_t length;    /* RO: length of the structure in bytes */
};
_Static_assert(sizeof(struct virtio_pci_cap) == 16, "virtio_pci_cap is 16 bytes");

/* §4.1.4: the capability for structures that need 64-bit offsets (shared memory regions). */
struct virtio_pci_cap64 {
	struct virtio_pci_cap cap; /* RO: cap.offset/length hold the low 32 bits */
	uint32_t offset_hi;        /* RO: high 32 bits of the offset within the BAR */
	uint32_t length_hi;        /* RO: high 32 bits of the length */
};
_Static_assert(sizeof(struct virtio_pci_cap64) == 24, "virtio_pci_cap64 is 24 bytes");

/* §4.1.4.4 Notification structure layout: the notify capability carries a multiplier. */
struct virtio_pci_notify_cap {
	struct virtio_pci_cap cap;      /* RO: cfg_type VIRTIO_PCI_CAP_NOTIFY_CFG */
	uint32_t notify_off_multiplier; /* RO: queue notify address = BAR + cap.offset +
	                                 *     queue_notify_off * notify_off_multiplier */
};
_Static_assert(sizeof(struct virtio_pci_notify_cap) == 20, "notify cap is 20 bytes");

/* §4.1.4 "PCI configuration access capability": BAR access through PCI config space. */
struct virtio_pci_cfg_cap {
	struct virtio_pci_cap cap; /* cap.bar/offset/length select what pci_cfg_data reaches */
	uint8_t pci_cfg_data[4];   /* data window for BAR access */
};
_Static_assert(sizeof(struct virtio_pci_cfg_cap) == 20, "cfg access cap is 20 bytes");

/* §4.1.4.5 ISR status: a byte; reading it clears it (used with INTx only). */
#define VIRTIO_PCI_ISR_QUEUE  0x1 /* a used buffer notification */
#define VIRTIO_PCI_ISR_CONFIG 0x2 /* a configuration change notification */

/*
 * §4.1.4.3 Common configuration structure layout, overlaid on the BAR:
 *   volatile struct virtio_pci_common_cfg *cfg = bar_base + cap.offset;
 * Every access is a single MMIO access of the field's width. The spec's le64 queue_desc,
 * queue_driver and queue_device are split here into _lo/_hi 32-bit halves, written low then
 * high: wider accesses are not promised to be atomic, 32-bit ones work on every transport and
 * device, and it keeps the struct's alignment (and size) at the spec's 4 bytes. The queue_*
 * fields refer to the queue chosen by queue_select.
 */
struct virtio_pci_common_cfg {
	/* About the whole device. */
	uint32_t device_feature_select; /* 0x00 RW: which 32 bits device_feature shows */
	uint32_t device_feature;        /* 0x04 RO: offered feature bits, 32 at a time */
	uint32_t driver_feature_select; /* 0x08 RW: which 32 bits driver_feature sets */
	uint32_t driver_feature;        /* 0x0c RW: accepted feature bits, 32 at a time */
	uint16_t config_msix_vector;    /* 0x10 RW: MSI-X vector for config changes */
	uint16_t num_queues;            /* 0x12 RO: number of virtqueues */
	uint8_t device_status;          /* 0x14 RW: VIRTIO_STATUS_*; writing 0 resets */
	uint8_t config_generation;      /* 0x15 RO: changes whenever the config may have changed */

	/* About a specific virtqueue. */
	uint16_t queue_select;      /* 0x16 RW: which queue the fields below refer to */
	uint16_t queue_size;        /* 0x18 RW: reads the maximum, 0 = no such queue */
	uint16_t queue_msix_vector; /* 0x1a RW: MSI-X vector for this queue */
	uint16_t queue_enable;      /* 0x1c RW: write 1 after programming the queue */
	uint16_t queue_notify_off;  /* 0x1e RO: this queue's notify offset (in multipliers) */
	uint32_t queue_desc_lo;     /* 0x20 RW: queue_desc, device address of the descriptor table */
	uint32_t queue_desc_hi;     /* 0x24 RW:   (high half) */
	uint32_t queue_driver_lo;   /* 0x28 RW: queue_driver, device address of the avail ring */
	uint32_t queue_driver_hi;   /* 0x2c RW:   (high half) */
	uint32_t queue_device_lo;   /* 0x30 RW: queue_device, device address of the used ring */
	uint32_t queue_device_hi;   /* 0x34 RW:   (high half) */
	uint16_t queue_notify_data; /* 0x38 RO: with VIRTIO_F_NOTIF_CONFIG_DATA */
	uint16_t queue_reset;       /* 0x3a RW: with VIRTIO_F_RING_RESET */
};
_Static_assert(sizeof(struct virtio_pci_common_cfg) == 0x3c, "common cfg is 60 bytes");
_Static_assert(offsetof(struct virtio_pci_common_cfg, device_status) == 0x14, "device_status");
_Static_assert(offsetof(struct virtio_pci_common_cfg, queue_desc_lo) == 0x20, "queue_desc");
_Static_assert(offsetof(struct virtio_pci_common_cfg, queue_reset) == 0x3a, "queue_reset");

/*
 * §4.1.4 "Legacy Interfaces: A Note on PCI Device Layout" (its subsection number moves between
 * versions). A legacy or transitional device has these registers in BAR0, an I/O BAR, at these
 * byte offsets (guest-native endian).
 */
#define VIRTIO_PCI_LEGACY_HOST_FEATURES      0x00 /* 32 RO: device features, bits 0-31 only */
#define VIRTIO_PCI_LEGACY_GUEST_FEATURES     0x04 /* 32 RW: driver features */
#define VIRTIO_PCI_LEGACY_QUEUE_PFN          0x08 /* 32 RW: ring address >> 12, 0 disables */
#define VIRTIO_PCI_LEGACY_QUEUE_SIZE         0x0c /* 16 RO: size of the selected queue */
#define VIRTIO_PCI_LEGACY_QUEUE_SELECT       0x0e /* 16 RW: which queue */
#define VIRTIO_PCI_LEGACY_QUEUE_NOTIFY       0x10 /* 16 RW: write a queue index to notify */
#define VIRTIO_PCI_LEGACY_STATUS             0x12 /* 8 RW: VIRTIO_STATUS_*; 0 resets */
#define VIRTIO_PCI_LEGACY_ISR                0x13 /* 8 RO: ISR status, cleared on read */
#define VIRTIO_PCI_LEGACY_CONFIG_MSIX_VECTOR 0x14 /* 16 RW: only when MSI-X is enabled */
#define VIRTIO_PCI_LEGACY_QUEUE_MSIX_VECTOR  0x16 /* 16 RW: only when MSI-X is enabled */
#define VIRTIO_PCI_LEGACY_CONFIG             0x14 /* device config, MSI-X disabled */
#define VIRTIO_PCI_LEGACY_CONFIG_MSIX        0x18 /* device config, MSI-X enabled */

/* The legacy queue address is a page frame number; the used ring starts on such a page. */
#define VIRTIO_PCI_LEGACY_QUEUE_ADDR_SHIFT 12
#define VIRTIO_PCI_LEGACY_VRING_ALIGN      4096

#endif /* RINGLET_VIRTIO_H */
