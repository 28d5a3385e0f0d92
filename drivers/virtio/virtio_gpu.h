/*
 * drivers/virtio/virtio_gpu.h: the virtio-gpu structures Ringlet's 2D driver
 * uses, named as the spec names them.
 * Implements: Virtual I/O Device (VIRTIO) Version 1.2, §5.7 GPU Device.
 *
 * Every command is a request the device reads (a struct virtio_gpu_ctrl_hdr
 * first, then the command's fields) and a response it writes (again a header
 * first). All fields are little-endian; virtio.h already insists the CPU is.
 * 3D (virgl, VIRTIO_GPU_F_VIRGL) is not here: Ringlet drives 2D only.
 */
#ifndef RINGLET_VIRTIO_GPU_SPEC_H
#define RINGLET_VIRTIO_GPU_SPEC_H

#include <stdint.h>

/* Feature bits (§5.7.3). */
#define VIRTIO_GPU_F_VIRGL 0 /* 3D: not negotiated */
#define VIRTIO_GPU_F_EDID  1 /* GET_EDID works */

/* Configuration layout (§5.7.4). */
struct virtio_gpu_config {
	uint32_t events_read;  /* read-only: pending events (VIRTIO_GPU_EVENT_*) */
	uint32_t events_clear; /* write-only: writing a bit clears it in events_read */
	uint32_t num_scanouts; /* read-only: 1..16 */
	uint32_t num_capsets;  /* read-only: 3D capability sets (unused here) */
};
_Static_assert(sizeof(struct virtio_gpu_config) == 16, "virtio_gpu_config");
#define VIRTIO_GPU_EVENT_DISPLAY 1u /* the host's displays changed: ask GET_DISPLAY_INFO again */

#define VIRTIO_GPU_MAX_SCANOUTS 16

/* Command and response types (§5.7.6.7). */
enum virtio_gpu_ctrl_type {
	VIRTIO_GPU_CMD_GET_DISPLAY_INFO = 0x0100,
	VIRTIO_GPU_CMD_RESOURCE_CREATE_2D,
	VIRTIO_GPU_CMD_RESOURCE_UNREF,
	VIRTIO_GPU_CMD_SET_SCANOUT,
	VIRTIO_GPU_CMD_RESOURCE_FLUSH,
	VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D,
	VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING,
	VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING,
	VIRTIO_GPU_CMD_GET_CAPSET_INFO,
	VIRTIO_GPU_CMD_GET_CAPSET,
	VIRTIO_GPU_CMD_GET_EDID,

	VIRTIO_GPU_RESP_OK_NODATA = 0x1100,
	VIRTIO_GPU_RESP_OK_DISPLAY_INFO,
	VIRTIO_GPU_RESP_OK_CAPSET_INFO,
	VIRTIO_GPU_RESP_OK_CAPSET,
	VIRTIO_GPU_RESP_OK_EDID,

	VIRTIO_GPU_RESP_ERR_UNSPEC = 0x1200,
	VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY,
	VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID,
	VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID,
	VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID,
	VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER,
};

#define VIRTIO_GPU_FLAG_FENCE 1u /* the response waits until the command is done, and echoes fence_id */

struct virtio_gpu_ctrl_hdr {
	uint32_t type;     /* enum virtio_gpu_ctrl_type */
	uint32_t flags;    /* VIRTIO_GPU_FLAG_* */
	uint64_t fence_id; /* with FLAG_FENCE: the device copies it into the response */
	uint32_t ctx_id;   /* 3D only: 0 */
	uint8_t ring_idx;  /* with VIRTIO_GPU_F_CONTEXT_INIT only: 0 */
	uint8_t padding[3];
};
_Static_assert(sizeof(struct virtio_gpu_ctrl_hdr) == 24, "virtio_gpu_ctrl_hdr");

struct virtio_gpu_rect {
	uint32_t x, y, width, height;
};

/* VIRTIO_GPU_RESP_OK_DISPLAY_INFO (§5.7.6.8). */
struct virtio_gpu_resp_display_info {
	struct virtio_gpu_ctrl_hdr hdr;
	struct virtio_gpu_display_one {
		struct virtio_gpu_rect r; /* the preferred position and size */
		uint32_t enabled;         /* the host shows this scanout */
		uint32_t flags;
	} pmodes[VIRTIO_GPU_MAX_SCANOUTS];
};
_Static_assert(sizeof(struct virtio_gpu_resp_display_info) == 24 + 16 * 24, "display_info");

/* VIRTIO_GPU_CMD_GET_EDID and its response. */
struct virtio_gpu_get_edid {
	struct virtio_gpu_ctrl_hdr hdr;
	uint32_t scanout;
	uint32_t padding;
};
struct virtio_gpu_resp_edid {
	struct virtio_gpu_ctrl_hdr hdr;
	uint32_t size; /* bytes of edid[] the device filled; untrusted */
	uint32_t padding;
	uint8_t edid[1024];
};

/* Pixel formats: the byte order in memory. */
#define VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM 2 /* a little-endian uint32_t 0x00RRGGBB */

struct virtio_gpu_resource_create_2d {
	struct virtio_gpu_ctrl_hdr hdr;
	uint32_t resource_id; /* ours to choose, not 0 */
	uint32_t format;
	uint32_t width, height;
};

struct virtio_gpu_resource_unref {
	struct virtio_gpu_ctrl_hdr hdr;
	uint32_t resource_id;
	uint32_t padding;
};

struct virtio_gpu_mem_entry {
	uint64_t addr; /* guest-physical */
	uint32_t length;
	uint32_t padding;
};

/* Followed in the same request by nr_entries struct virtio_gpu_mem_entry. */
struct virtio_gpu_resource_attach_backing {
	struct virtio_gpu_ctrl_hdr hdr;
	uint32_t resource_id;
	uint32_t nr_entries;
};

struct virtio_gpu_set_scanout {
	struct virtio_gpu_ctrl_hdr hdr;
	struct virtio_gpu_rect r;
	uint32_t scanout_id;
	uint32_t resource_id; /* 0 turns the scanout off */
};

struct virtio_gpu_transfer_to_host_2d {
	struct virtio_gpu_ctrl_hdr hdr;
	struct virtio_gpu_rect r;
	uint64_t offset; /* where r's first pixel is in the backing */
	uint32_t resource_id;
	uint32_t padding;
};

struct virtio_gpu_resource_flush {
	struct virtio_gpu_ctrl_hdr hdr;
	struct virtio_gpu_rect r;
	uint32_t resource_id;
	uint32_t padding;
};

#endif
