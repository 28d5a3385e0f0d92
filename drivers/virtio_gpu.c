/*
 * virtio-gpu: polled 2D display driver.
 * Implements: Virtual I/O Device (VIRTIO) Version 1.2, §5.7 GPU Device (2D commands only).
 * Try it:     -device virtio-gpu-pci (or virtio-vga; virtio-gpu-device on microvm)
 *             (scripts/run --display vnc hello, then a VNC viewer on 127.0.0.1:5900)
 *
 * The device shows resources (images in host memory) on scanouts (the host's
 * windows or monitors). Ringlet makes one 2D resource the size of scanout 0,
 * backs it with pages of guest memory (ATTACH_BACKING), and puts it on the
 * scanout (SET_SCANOUT). The framebuffer is those pages: the kernel and the
 * application draw into them, and a frame reaches the window in two
 * commands per damaged rectangle: TRANSFER_TO_HOST_2D copies the rectangle
 * from the guest pages into the host's resource, RESOURCE_FLUSH makes the
 * host redraw that part of the window (docs/screen.md follows one frame).
 *
 * A command is one chain on the control queue: the request (a header and
 * the command's fields) for the device to read, the response for it to
 * write. One command is in flight at a time, with a fence so that the
 * answer comes when the work is done; the caller waits for it on the
 * control queue alone (see command()). Every answer is checked: at least a
 * header, the type the command calls for (an error type is an ordinary
 * failure), the length that type needs, the fence echoed. A device that
 * breaks those rules, or the ring's, or does not answer within
 * CMD_TIMEOUT_NS, is reset and not used again: the screen freezes and the
 * serial console carries on. The cursor queue is set up and left empty (the
 * console draws its own cursor). 3D (virgl) is not negotiated.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "../kernel/io.h"
#include "../kernel/kernel.h"
#include "../kernel/wait.h"
#include "virtio/virtio_dev.h"
#include "virtio/virtio_gpu.h"
#include "virtio_gpu.h"

/* How long one command may take; QEMU answers 2D commands at once, so a
 * silence this long is a dead device, even on a loaded TCG host. */
#define CMD_TIMEOUT_NS (5 * NSEC_PER_SEC)
/* How often the poll looks at events_read for a display change: a config
 * read traps to the host, so not on every pass of the wait loop. */
#define EVENT_CHECK_NS (100 * 1000000ull)
/* The largest side we accept from the host, and the size we use when the
 * host has no preference (scanout 0 disabled or 0x0). */
#define MAX_SIDE       8192
#define DEFAULT_WIDTH  1024
#define DEFAULT_HEIGHT 768

struct gpu {
	struct virtio_dev vd;
	struct virtq ctrl, cursor;
	char name[8];
	bool broken;
	uint32_t nscanouts;
	/* The framebuffer: resource res_id, backed by fb_pages pages at fb. */
	uint32_t res_id, width, height;
	uint32_t *fb;
	size_t fb_pages;
	uint32_t generation;
	/* The command in flight (at most one). */
	bool busy;
	uint64_t fence; /* the last fence id used */
	uint64_t next_event_check;
	uint64_t commands, flushes; /* since boot, for a debugger */
	struct wait_source source;
	/* Request and response memory the device reads and writes. Static, so
	 * identity-mapped RAM; the response is read into locals once. */
	union {
		struct virtio_gpu_ctrl_hdr hdr;
		struct virtio_gpu_resource_create_2d create;
		struct virtio_gpu_resource_unref unref;
		struct {
			struct virtio_gpu_resource_attach_backing a;
			struct virtio_gpu_mem_entry e[1];
		} attach;
		struct virtio_gpu_set_scanout scanout;
		struct virtio_gpu_get_edid get_edid;
		struct virtio_gpu_transfer_to_host_2d transfer;
		struct virtio_gpu_resource_flush flush;
	} req;
	union {
		struct virtio_gpu_ctrl_hdr hdr;
		struct virtio_gpu_resp_display_info info;
		struct virtio_gpu_resp_edid edid;
	} resp;
};

/* One GPU is driven: the first. Others are listed and left alone. */
static struct gpu gpu0;
static bool have_gpu;

/* ---- checking answers ---------------------------------------------------------------- */

/*
 * Judges the answer to a command sent with fence `fence`: the response is
 * `len` bytes (what the used ring says the device wrote) at resp. Returns
 * NULL when the device kept the rules, with *err 0 (success) or a negative
 * errno (the device refused the command: an error response, e.g. the host
 * is out of memory); otherwise the rule it broke, for the log.
 */
static const char *check_answer(const struct virtio_gpu_ctrl_hdr *resp, uint32_t len, uint32_t want_type,
                                uint32_t want_len, uint64_t fence, int *err, char *why, size_t why_len)
{
	*err = 0;
	if (len < sizeof(*resp)) {
		ksnprintf(why, why_len, "a response of %u bytes, shorter than its header", len);
		return why;
	}
	/* Read once: the device could change the memory under us. */
	uint32_t type = resp->type, flags = resp->flags;
	uint64_t fence_id = resp->fence_id;
	/* §5.7.6.7: "If the driver sets VIRTIO_GPU_FLAG_FENCE ... the device
	 * MUST set VIRTIO_GPU_FLAG_FENCE in the response and copy fence_id". */
	if (!(flags & VIRTIO_GPU_FLAG_FENCE) || fence_id != fence) {
		ksnprintf(why, why_len, "fence %lu not echoed (flags %#x, fence %lu)", (unsigned long)fence, flags,
		          (unsigned long)fence_id);
		return why;
	}
	if (type >= VIRTIO_GPU_RESP_ERR_UNSPEC && type <= VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER) {
		*err = type == VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
		return NULL;
	}
	if (type != want_type) {
		ksnprintf(why, why_len, "response type %#x where %#x was due", type, want_type);
		return why;
	}
	if (len < want_len) {
		ksnprintf(why, why_len, "a response of %u bytes where type %#x needs %u", len, type, want_len);
		return why;
	}
	return NULL;
}

/*
 * The size scanout 0 should have, from a GET_DISPLAY_INFO answer. Only
 * scanout 0 is used; a host that prefers no size (disabled, 0x0) or an
 * absurd one gets the default.
 */
static void preferred_size(const struct virtio_gpu_resp_display_info *info, uint32_t *w, uint32_t *h)
{
	const volatile struct virtio_gpu_display_one *m = &info->pmodes[0];
	uint32_t enabled = m->enabled, mw = m->r.width, mh = m->r.height;
	if (!enabled || mw == 0 || mh == 0 || mw > MAX_SIDE || mh > MAX_SIDE) {
		*w = DEFAULT_WIDTH;
		*h = DEFAULT_HEIGHT;
		return;
	}
	*w = mw;
	*h = mh;
}

/* ---- the control queue ------------------------------------------------------------------ */

static void abandon(struct gpu *g, const char *why)
{
	if (g->broken)
		return;
	g->broken = true;
	bool reset = virtio_reset(&g->vd);
	klog("%s: %s; the device is reset and not used again", g->name, why);
	if (!reset)
		klog("%s: the device did not reset: it may still read the framebuffer", g->name);
	g->busy = false;
}

static void look_for_events(struct gpu *g);

/* The wait loop's source: nothing is in flight between commands (each
 * waits for its own answer), so the loop only gives the driver a chance to
 * look for display changes. */
static bool gpu_poll(void *ctx)
{
	struct gpu *g = ctx;
	if (!g->broken && !g->busy && time_ns() >= g->next_event_check)
		look_for_events(g);
	return false;
}

/* Before the loop halts: no answer is ever outstanding here, so no wake-up
 * is needed (a display change is seen when the loop next runs). */
static bool gpu_arm(void *ctx)
{
	(void)ctx;
	return false;
}

/* How long a command spins before it halts for its answer: QEMU answers a
 * 2D command in tens of microseconds, a halt and wake-up cost about as
 * much. */
#define CMD_SPIN_NS 20000

/*
 * Sends the request in g->req (req_len bytes) and waits for the answer of
 * type want_type, at least want_len bytes, in g->resp. Returns 0, a negative
 * errno from an error response, -EIO (the device broke a rule and is now
 * stopped), -EBUSY (a command is already in flight: a log line printed
 * while a command waits) or -ENODEV.
 *
 * It waits on its own queue only, not in the wait loop: a command is sent
 * from console writes, and a console write can come from inside any wait
 * source's poll (a driver's log line). Running the loop there would poll
 * that source again from inside itself. So: spin briefly, then halt with
 * the control queue's notification on until the answer's interrupt (or,
 * without one, a timer tick) ends the halt.
 */
static int command(struct gpu *g, uint32_t req_len, uint32_t want_type, uint32_t want_len)
{
	if (g->broken)
		return -ENODEV;
	if (g->busy)
		return -EBUSY;
	g->req.hdr.flags = VIRTIO_GPU_FLAG_FENCE;
	g->req.hdr.fence_id = ++g->fence;
	g->req.hdr.ctx_id = 0;
	g->req.hdr.ring_idx = 0;
	memset(&g->resp, 0, sizeof(g->resp));
	struct virtq_buf b[2] = {{&g->req, req_len}, {&g->resp, want_len}};
	int err = virtq_add(&g->ctrl, b, 1, 1, g);
	if (err)
		return err == -EIO ? -EIO : -EBUSY; /* a free queue always has two descriptors */
	g->busy = true;
	g->commands++;
	virtq_kick(&g->ctrl);

	uint64_t start = time_ns();
	void *cookie;
	uint32_t len;
	int got;
	while ((got = virtq_get_used(&g->ctrl, &cookie, &len)) == 0) {
		uint64_t now = time_ns();
		if (now - start >= CMD_TIMEOUT_NS) {
			abandon(g, "no answer to a command within 5 s");
			return -EIO;
		}
		virtq_watchdog(&g->ctrl, now);
		if (now - start < CMD_SPIN_NS) {
			cpu_relax();
			continue;
		}
		/* virtq_enable_notify() says whether the answer came meanwhile. */
		if (!g->vd.irq_vector || !virtq_enable_notify(&g->ctrl))
			time_idle(now + VIRTQ_STALL_NS);
		virtq_disable_notify(&g->ctrl);
	}
	if (got < 0) {
		char why[96];
		ksnprintf(why, sizeof(why), "device broke the ring rules (%s)", virtq_broken_reason(&g->ctrl));
		abandon(g, why);
		return -EIO;
	}
	kassert(cookie == g); /* one command in flight, and it is ours */
	g->busy = false;
	char why[96];
	if (check_answer(&g->resp.hdr, len, want_type, want_len, g->fence, &err, why, sizeof(why))) {
		abandon(g, why);
		return -EIO;
	}
	if (err)
		klog("%s: command %#x refused (response %#x)", g->name, g->req.hdr.type, g->resp.hdr.type);
	return err;
}

/* A command whose answer is just a header. */
static int command_nodata(struct gpu *g, uint32_t type, uint32_t req_len)
{
	g->req.hdr.type = type;
	return command(g, req_len, VIRTIO_GPU_RESP_OK_NODATA, sizeof(struct virtio_gpu_ctrl_hdr));
}

/* ---- the framebuffer -------------------------------------------------------------------- */

/*
 * Makes a resource of w x h, backed by fresh zeroed pages, and shows it on
 * scanout 0; the old one (if any) is then released. On failure the old
 * framebuffer stays.
 */
static int make_framebuffer(struct gpu *g, uint32_t w, uint32_t h)
{
	uint64_t bytes = (uint64_t)w * h * 4; /* w, h <= MAX_SIDE: 256 MiB at most */
	size_t pages = (size_t)((bytes + PAGE_SIZE - 1) / PAGE_SIZE);
	uint32_t *fb = page_alloc(pages);
	if (!fb)
		return -ENOMEM;
	uint32_t id = g->res_id + 1;
	int err;

	memset(&g->req, 0, sizeof(g->req));
	g->req.create.resource_id = id;
	g->req.create.format = VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM;
	g->req.create.width = w;
	g->req.create.height = h;
	if ((err = command_nodata(g, VIRTIO_GPU_CMD_RESOURCE_CREATE_2D, sizeof(g->req.create))) != 0)
		goto fail;

	/* The pages are contiguous and identity-mapped: one entry. */
	memset(&g->req, 0, sizeof(g->req));
	g->req.attach.a.resource_id = id;
	g->req.attach.a.nr_entries = 1;
	g->req.attach.e[0].addr = virtq_dma_addr(fb);
	g->req.attach.e[0].length = (uint32_t)bytes;
	if ((err = command_nodata(g, VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING, sizeof(g->req.attach))) != 0)
		goto fail;

	memset(&g->req, 0, sizeof(g->req));
	g->req.scanout.r = (struct virtio_gpu_rect){0, 0, w, h};
	g->req.scanout.scanout_id = 0;
	g->req.scanout.resource_id = id;
	if ((err = command_nodata(g, VIRTIO_GPU_CMD_SET_SCANOUT, sizeof(g->req.scanout))) != 0)
		goto fail;

	/* The old resource is off the scanout: release it (UNREF also detaches its backing). */
	if (g->res_id && g->fb) {
		memset(&g->req, 0, sizeof(g->req));
		g->req.unref.resource_id = g->res_id;
		if (command_nodata(g, VIRTIO_GPU_CMD_RESOURCE_UNREF, sizeof(g->req.unref)) == 0)
			page_free(g->fb, g->fb_pages);
	}
	g->res_id = id;
	g->fb = fb;
	g->fb_pages = pages;
	g->width = w;
	g->height = h;
	g->generation++;
	return 0;
fail:
	if (!g->broken) /* the device may still hold the pages otherwise */
		page_free(fb, pages);
	g->res_id = id; /* never reuse an id the device may have seen */
	return err;
}

/* GET_DISPLAY_INFO: the size the host wants for scanout 0. */
static int display_size(struct gpu *g, uint32_t *w, uint32_t *h)
{
	memset(&g->req, 0, sizeof(g->req));
	g->req.hdr.type = VIRTIO_GPU_CMD_GET_DISPLAY_INFO;
	int err = command(g, sizeof(g->req.hdr), VIRTIO_GPU_RESP_OK_DISPLAY_INFO, sizeof(g->resp.info));
	if (err)
		return err;
	preferred_size(&g->resp.info, w, h);
	return 0;
}

/* The boot log's line of scanouts, from the GET_DISPLAY_INFO answer in
 * g->resp: "gpu0: scanouts: 0 1280x800, 1 off". */
static void log_scanouts(struct gpu *g)
{
	char line[200];
	int n = ksnprintf(line, sizeof(line), "%s: scanouts:", g->name);
	for (uint32_t i = 0; i < g->nscanouts && n < (int)sizeof(line); i++) {
		const struct virtio_gpu_display_one *m = &g->resp.info.pmodes[i];
		uint32_t enabled = m->enabled, w = m->r.width, h = m->r.height;
		const char *sep = i ? "," : "";
		if (enabled)
			n += ksnprintf(line + n, sizeof(line) - n, "%s %u %ux%u", sep, i, w, h);
		else
			n += ksnprintf(line + n, sizeof(line) - n, "%s %u off", sep, i);
	}
	klog("%s", line);
}

/*
 * GET_EDID (VIRTIO_GPU_F_EDID): the monitor description of scanout 0, for
 * the log: its name and preferred mode (VESA E-EDID 1.4 base block). The
 * device's size field is checked against the 1024 bytes it may fill; the
 * EDID's own checksum decides whether its contents are believed.
 */
static int read_edid(struct gpu *g)
{
	memset(&g->req, 0, sizeof(g->req));
	g->req.hdr.type = VIRTIO_GPU_CMD_GET_EDID;
	g->req.get_edid.scanout = 0;
	int err = command(g, sizeof(g->req.get_edid), VIRTIO_GPU_RESP_OK_EDID, sizeof(g->resp.edid));
	if (err)
		return err;
	uint32_t size = g->resp.edid.size; /* once */
	if (size > sizeof(g->resp.edid.edid)) {
		char why[64];
		ksnprintf(why, sizeof(why), "an EDID of %u bytes in a field of 1024", size);
		abandon(g, why);
		return -EIO;
	}
	uint8_t e[128];
	if (size < sizeof(e))
		return -EINVAL;
	memcpy(e, g->resp.edid.edid, sizeof(e));
	static const uint8_t magic[8] = {0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0};
	uint8_t sum = 0;
	for (unsigned i = 0; i < sizeof(e); i++)
		sum += e[i];
	if (memcmp(e, magic, sizeof(magic)) != 0 || sum != 0) {
		klog("%s: EDID without its header or checksum: ignored", g->name);
		return -EINVAL;
	}
	char name[14] = "?";
	/* Four 18-byte descriptors from byte 54; tag 0xfc is the monitor name. */
	for (unsigned d = 54; d + 18 <= 126; d += 18) {
		if (e[d] == 0 && e[d + 1] == 0 && e[d + 3] == 0xfc) {
			unsigned n = 0;
			for (; n < 13 && e[d + 5 + n] != '\n' && e[d + 5 + n] >= 0x20 && e[d + 5 + n] < 0x7f; n++)
				name[n] = (char)e[d + 5 + n];
			name[n] = 0;
		}
	}
	/* The first descriptor is the preferred timing when its pixel clock is not 0. */
	unsigned hactive = 0, vactive = 0;
	if (e[54] | e[55]) {
		hactive = e[56] | (e[58] & 0xf0u) << 4;
		vactive = e[59] | (e[61] & 0xf0u) << 4;
	}
	klog("%s: EDID: monitor \"%s\", preferred mode %ux%u", g->name, name, hactive, vactive);
	return 0;
}

/* §5.7.4.1: the device sets VIRTIO_GPU_EVENT_DISPLAY in events_read when
 * the display configuration changed; "The driver SHOULD write
 * events_clear" and fetch the new information. */
static void look_for_events(struct gpu *g)
{
	g->next_event_check = time_ns() + EVENT_CHECK_NS;
	uint32_t events;
	virtio_config_read(&g->vd, offsetof(struct virtio_gpu_config, events_read), &events, 4);
	if (!(events & VIRTIO_GPU_EVENT_DISPLAY))
		return;
	virtio_config_write32(&g->vd, offsetof(struct virtio_gpu_config, events_clear), VIRTIO_GPU_EVENT_DISPLAY);
	uint32_t w, h;
	if (display_size(g, &w, &h) != 0 || (w == g->width && h == g->height))
		return;
	int err = make_framebuffer(g, w, h);
	if (err)
		klog("%s: display is now %ux%u, but no framebuffer for it (error %d)", g->name, w, h, err);
	else
		klog("%s: display resized to %ux%u", g->name, w, h);
}

void virtio_gpu_check_display(void)
{
	if (have_gpu && !gpu0.broken && !gpu0.busy)
		look_for_events(&gpu0);
}

int virtio_gpu_fb(struct virtio_gpu_fb *fb)
{
	struct gpu *g = &gpu0;
	if (!have_gpu || g->broken || !g->fb)
		return -ENODEV;
	*fb = (struct virtio_gpu_fb){g->fb, g->width, g->height, g->width * 4, g->generation};
	return 0;
}

int virtio_gpu_flush(uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
	struct gpu *g = &gpu0;
	if (!have_gpu || g->broken || !g->fb)
		return -ENODEV;
	/* Clip in 64 bits: x + w must not wrap. */
	if (x >= g->width || y >= g->height || w == 0 || h == 0)
		return 0;
	if ((uint64_t)x + w > g->width)
		w = g->width - x;
	if ((uint64_t)y + h > g->height)
		h = g->height - y;
	struct virtio_gpu_rect r = {x, y, w, h};
	memset(&g->req, 0, sizeof(g->req));
	g->req.transfer.r = r;
	g->req.transfer.offset = (uint64_t)y * g->width * 4 + (uint64_t)x * 4;
	g->req.transfer.resource_id = g->res_id;
	int err = command_nodata(g, VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D, sizeof(g->req.transfer));
	if (err)
		return err;
	memset(&g->req, 0, sizeof(g->req));
	g->req.flush.r = r;
	g->req.flush.resource_id = g->res_id;
	err = command_nodata(g, VIRTIO_GPU_CMD_RESOURCE_FLUSH, sizeof(g->req.flush));
	if (!err)
		g->flushes++;
	return err;
}

/* ---- start-up ----------------------------------------------------------------------------- */

int virtio_gpu_probe(const struct virtio_dev *found, char *note, size_t note_len)
{
	int err;
	if (have_gpu) {
		ksnprintf(note, note_len, "not used: one GPU is driven");
		return 0;
	}
	struct gpu *g = &gpu0;
	memset(g, 0, sizeof(*g));
	g->vd = *found;
	g->vd.name = "virtio-gpu";
	ksnprintf(g->name, sizeof(g->name), "gpu0");

	/* §5.7.3: 2D needs no feature bit. VIRGL is 3D (out of scope). EDID
	 * describes the monitor; GET_DISPLAY_INFO's preferred size is what
	 * QEMU's window is, so the EDID only goes to the log. */
	if ((err = virtio_start(&g->vd, 1ull << VIRTIO_GPU_F_EDID, 0)) != 0)
		return err;
	/* §5.7.2: "0 controlq, 1 cursorq". */
	if ((err = virtio_queue_init(&g->vd, &g->ctrl, 0, 8)) != 0 ||
	    (err = virtio_queue_init(&g->vd, &g->cursor, 1, 8)) != 0) {
		virtio_fail(&g->vd, "cannot set up its queues");
		return err;
	}
	uint32_t n;
	virtio_config_read(&g->vd, offsetof(struct virtio_gpu_config, num_scanouts), &n, 4);
	/* §5.7.4: "num_scanouts specifies the maximum number of scanouts
	 * supported by the device. Minimum value is 1, maximum value is 16." */
	if (n < 1 || n > VIRTIO_GPU_MAX_SCANOUTS) {
		char why[64];
		ksnprintf(why, sizeof(why), "num_scanouts %u is outside 1..16", n);
		virtio_fail(&g->vd, why);
		return -EIO;
	}
	g->nscanouts = n;
	virtio_irq_setup(&g->vd, 1); /* the control queue's answers wake the loop */
	virtio_ready(&g->vd);

	/* The wait loop looks for display changes through this. */
	g->source = (struct wait_source){.name = g->name, .poll = gpu_poll, .arm = gpu_arm, .ctx = g};
	wait_add_source(&g->source);
	have_gpu = true;

	uint32_t w, h;
	if ((err = display_size(g, &w, &h)) == 0)
		log_scanouts(g);
	if (!err && (g->vd.features & (1ull << VIRTIO_GPU_F_EDID)))
		read_edid(g); /* for the log only: a bad one costs nothing but a device that lies */
	if (g->broken)
		err = -EIO;
	if (err || (err = make_framebuffer(g, w, h)) != 0) {
		ksnprintf(note, note_len, "%s: no framebuffer (error %d)", g->name, err);
		return 0; /* listed, but fbcon and fb_get() see -ENODEV */
	}
	/* Clear the screen the host may still show from firmware. */
	virtio_gpu_flush(0, 0, w, h);
	g->next_event_check = time_ns() + EVENT_CHECK_NS;
	ksnprintf(note, note_len, "%s %ux%u, %u scanout%s, %s", g->name, w, h, n, n == 1 ? "" : "s", g->vd.wake);
	return 0;
}
