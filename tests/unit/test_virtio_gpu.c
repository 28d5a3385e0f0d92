/*
 * test_virtio_gpu: drivers/virtio_gpu.c against a GPU played by the test,
 * honest and hostile. The kernel services the driver calls (the transport's
 * start-up steps, configuration reads, the wait loop, pages, the clock, the
 * log) are small stand-ins here; the virtqueue is the real
 * drivers/virtio/virtq.c.
 *
 * The honest device answers every command as QEMU's does: the display info
 * it is told, OK_NODATA otherwise, the fence echoed; it remembers the
 * resources, backing and rectangles it was sent. The hostile ones: a
 * response shorter than a header, a display-info answer shorter than its
 * type needs, a fence not echoed, the wrong response type, silence, and a
 * scanout count past the spec's maximum. Each must stop the device (reset,
 * no framebuffer) without the driver reading or writing outside its memory
 * (the sanitizers watch that).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../drivers/virtio_gpu.c"
#include "check.h"
#include "klog_stub.h"

/* ---- stand-ins for the kernel -------------------------------------------- */

static uint64_t fake_ns;

uint64_t time_ns(void) { return fake_ns += 100000; }

/* Pages handed out and not given back: fresh() frees them (a broken
 * device keeps its framebuffer, as the kernel must). */
static void *pages_out[16];

void *page_alloc(size_t npages)
{
	void *p = aligned_alloc(PAGE_SIZE, npages * PAGE_SIZE);
	if (!p)
		return NULL;
	memset(p, 0, npages * PAGE_SIZE);
	for (int i = 0; i < 16; i++)
		if (!pages_out[i]) {
			pages_out[i] = p;
			return p;
		}
	abort();
}

void page_free(void *p, size_t npages)
{
	(void)npages;
	for (int i = 0; i < 16; i++)
		if (pages_out[i] == p) {
			pages_out[i] = NULL;
			free(p);
			return;
		}
	abort(); /* freed twice, or never ours */
}

/* ---- the device ------------------------------------------------------------ */

enum behaviour { HONEST, SHORT_HDR, SHORT_INFO, NO_FENCE, WRONG_TYPE, SILENT, OOM, EDID_HUGE, EDID_BAD_SUM };

static struct {
	struct virtq *q;
	enum behaviour how;
	int bad_from; /* misbehave from this command on (0: the first) */
	int commands; /* answered so far */
	uint16_t last_avail, used_idx;
	struct virtio_gpu_config cfg;
	uint32_t disp_w, disp_h, disp_enabled;
	uint32_t resources, res_w, res_h; /* the last resource created */
	uint64_t backing_addr;
	uint32_t backing_len;
	uint32_t scanout_res;
	struct virtio_gpu_rect last_transfer, last_flush;
	uint64_t last_offset;
	bool reset;
	bool edid_offered;
	void *rings[2];
	int nrings;
} dev;

static void dev_notify(struct virtq *q, void *ctx) { (void)q, (void)ctx; }

static void answer(volatile struct virtq_desc *rd, volatile struct virtq_desc *wd, uint32_t *wrote)
{
	const struct virtio_gpu_ctrl_hdr *req = (const void *)(uintptr_t)rd->addr;
	uint8_t *resp = (uint8_t *)(uintptr_t)wd->addr;
	uint32_t room = wd->len;
	struct virtio_gpu_ctrl_hdr h = {
	    .type = VIRTIO_GPU_RESP_OK_NODATA, .flags = req->flags & VIRTIO_GPU_FLAG_FENCE, .fence_id = req->fence_id};
	uint32_t len = sizeof(h);
	bool bad = dev.commands >= dev.bad_from;
	switch (req->type) {
	case VIRTIO_GPU_CMD_GET_DISPLAY_INFO: {
		struct virtio_gpu_resp_display_info info = {0};
		info.pmodes[0].r = (struct virtio_gpu_rect){0, 0, dev.disp_w, dev.disp_h};
		info.pmodes[0].enabled = dev.disp_enabled;
		h.type = VIRTIO_GPU_RESP_OK_DISPLAY_INFO;
		info.hdr = h;
		len = sizeof(info);
		if (bad && dev.how == SHORT_INFO)
			len = sizeof(h) + sizeof(info.pmodes[0]); /* one scanout's worth */
		CHECK(room >= sizeof(info));
		memcpy(resp, &info, room < sizeof(info) ? room : sizeof(info));
		*wrote = len;
		return;
	}
	case VIRTIO_GPU_CMD_GET_EDID: {
		static struct virtio_gpu_resp_edid e;
		memset(&e, 0, sizeof(e));
		h.type = VIRTIO_GPU_RESP_OK_EDID;
		e.hdr = h;
		e.size = bad && dev.how == EDID_HUGE ? 0x10000 : 128;
		static const uint8_t head[8] = {0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0};
		memcpy(e.edid, head, 8);
		/* Preferred 1920x1080 (0x780 x 0x438), a name descriptor "Test Screen". */
		e.edid[54] = 0x02, e.edid[55] = 0x3a;
		e.edid[56] = 0x80, e.edid[58] = 0x70, e.edid[59] = 0x38, e.edid[61] = 0x40;
		e.edid[75] = 0xfc;
		memcpy(&e.edid[77], "Test Screen\n ", 13);
		uint8_t sum = 0;
		for (int i = 0; i < 127; i++)
			sum += e.edid[i];
		e.edid[127] = (uint8_t)(0x100 - sum);
		if (bad && dev.how == EDID_BAD_SUM)
			e.edid[127]++;
		CHECK(room >= sizeof(e));
		memcpy(resp, &e, sizeof(e));
		*wrote = sizeof(e);
		return;
	}
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D: {
		const struct virtio_gpu_resource_create_2d *c = (const void *)req;
		CHECK(rd->len >= sizeof(*c));
		CHECK_EQ(c->format, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM);
		if (bad && dev.how == OOM) {
			h.type = VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
			break;
		}
		dev.resources++;
		dev.res_w = c->width;
		dev.res_h = c->height;
		break;
	}
	case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING: {
		const struct virtio_gpu_resource_attach_backing *a = (const void *)req;
		CHECK_EQ(a->nr_entries, 1);
		const struct virtio_gpu_mem_entry *e = (const void *)(a + 1);
		dev.backing_addr = e->addr;
		dev.backing_len = e->length;
		break;
	}
	case VIRTIO_GPU_CMD_SET_SCANOUT: {
		const struct virtio_gpu_set_scanout *s = (const void *)req;
		dev.scanout_res = s->resource_id;
		break;
	}
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D: {
		const struct virtio_gpu_transfer_to_host_2d *t = (const void *)req;
		dev.last_transfer = t->r;
		dev.last_offset = t->offset;
		break;
	}
	case VIRTIO_GPU_CMD_RESOURCE_FLUSH: {
		const struct virtio_gpu_resource_flush *f = (const void *)req;
		dev.last_flush = f->r;
		break;
	}
	default:
		break;
	}
	if (bad && dev.how == SHORT_HDR)
		len = 16;
	if (bad && dev.how == NO_FENCE)
		h.fence_id++;
	if (bad && dev.how == WRONG_TYPE)
		h.type = VIRTIO_GPU_RESP_OK_EDID;
	memcpy(resp, &h, sizeof(h));
	*wrote = len;
}

/* Answers every command that is available, as the behaviour says. */
static void dev_step(void)
{
	struct virtq *q = dev.q;
	if (!q || dev.reset)
		return;
	while (dev.last_avail != q->avail->idx) {
		if (dev.how == SILENT && dev.commands >= dev.bad_from)
			return;
		uint16_t head = q->avail->ring[dev.last_avail % q->size];
		dev.last_avail++;
		volatile struct virtq_desc *rd = &q->desc[head];
		CHECK(!(rd->flags & VIRTQ_DESC_F_WRITE) && (rd->flags & VIRTQ_DESC_F_NEXT));
		volatile struct virtq_desc *wd = &q->desc[rd->next];
		CHECK(wd->flags & VIRTQ_DESC_F_WRITE);
		uint32_t wrote = 0;
		answer(rd, wd, &wrote);
		q->used->ring[dev.used_idx % q->size].id = head;
		q->used->ring[dev.used_idx % q->size].len = wrote;
		__atomic_thread_fence(__ATOMIC_RELEASE);
		q->used->idx = ++dev.used_idx;
		dev.commands++;
	}
}

/* ---- stand-ins for the transport and the wait loop ------------------------ */

static struct wait_source *source;

int virtio_start(struct virtio_dev *vd, uint64_t wanted, uint64_t required)
{
	(void)required;
	vd->features = wanted & (dev.edid_offered ? 1ull << VIRTIO_GPU_F_EDID : 0);
	return 0;
}

int virtio_queue_init(struct virtio_dev *vd, struct virtq *q, uint16_t index, uint16_t max_size)
{
	(void)vd;
	void *mem = aligned_alloc(VIRTQ_RING_ALIGN, ALIGN_UP(virtq_ring_bytes(max_size), VIRTQ_RING_ALIGN));
	memset(mem, 0, virtq_ring_bytes(max_size));
	dev.rings[dev.nrings++] = mem;
	if (index == 0)
		dev.q = q;
	return virtq_init(q, index, max_size, mem, false, dev_notify, NULL);
}

void virtio_ready(struct virtio_dev *vd) { (void)vd; }
void virtio_irq_setup(struct virtio_dev *vd, uint16_t nqueues)
{
	(void)nqueues;
	strcpy(vd->wake, "timer only");
}
void virtio_fail(struct virtio_dev *vd, const char *why)
{
	(void)vd;
	snprintf(last_log, sizeof(last_log), "%s", why);
}
bool virtio_reset(struct virtio_dev *vd)
{
	(void)vd;
	dev.reset = true;
	return true;
}

void virtio_config_read(struct virtio_dev *vd, uint32_t off, void *buf, uint32_t len)
{
	(void)vd;
	CHECK(off + len <= sizeof(dev.cfg));
	memcpy(buf, (uint8_t *)&dev.cfg + off, len);
}

void virtio_config_write32(struct virtio_dev *vd, uint32_t off, uint32_t v)
{
	(void)vd;
	if (off == offsetof(struct virtio_gpu_config, events_clear))
		dev.cfg.events_read &= ~v;
}

void wait_add_source(struct wait_source *s) { source = s; }

/* A command must not run the wait loop: it may be sent from inside another
 * source's poll (a log line drawn on the screen), and the loop would poll
 * that source again from inside itself. */
static int loop_runs;
int wait_until(bool (*cond)(void *arg), void *arg, uint64_t deadline_ns)
{
	(void)cond, (void)arg, (void)deadline_ns;
	loop_runs++;
	return -ETIMEDOUT;
}
bool wait_poll(void)
{
	loop_runs++;
	return false;
}

/* A command waits on its own queue and halts here: the device gets its turn. */
void time_idle(uint64_t deadline_ns)
{
	(void)deadline_ns;
	dev_step();
}

/* ---- the tests ------------------------------------------------------------- */

static char note[64];

static bool offer_edid;

static int fresh(enum behaviour how, int bad_from, uint32_t nscanouts, uint32_t w, uint32_t h)
{
	for (int i = 0; i < dev.nrings; i++)
		free(dev.rings[i]);
	for (int i = 0; i < 16; i++) {
		free(pages_out[i]);
		pages_out[i] = NULL;
	}
	memset(&dev, 0, sizeof(dev));
	memset(&gpu0, 0, sizeof(gpu0));
	have_gpu = false;
	last_log[0] = 0;
	note[0] = 0;
	dev.how = how;
	dev.bad_from = bad_from;
	dev.cfg.num_scanouts = nscanouts;
	dev.disp_w = w;
	dev.disp_h = h;
	dev.disp_enabled = 1;
	dev.edid_offered = offer_edid;
	struct virtio_dev vd = {.modern = true};
	return virtio_gpu_probe(&vd, note, sizeof(note));
}

static void test_honest(void)
{
	CHECK_EQ(fresh(HONEST, 0, 1, 1280, 800), 0);
	CHECK(strcmp(note, "gpu0 1280x800, 1 scanout, timer only") == 0);
	struct virtio_gpu_fb fb;
	CHECK_EQ(virtio_gpu_fb(&fb), 0);
	CHECK_EQ(fb.width, 1280);
	CHECK_EQ(fb.height, 800);
	CHECK_EQ(fb.stride, 1280 * 4);
	/* The device was given the framebuffer's pages, whole, and shows the resource. */
	CHECK_EQ(dev.resources, 1);
	CHECK_EQ(dev.res_w, 1280);
	CHECK_EQ(dev.res_h, 800);
	CHECK_EQ(dev.backing_addr, (uintptr_t)fb.pixels);
	CHECK_EQ(dev.backing_len, 1280 * 800 * 4);
	CHECK_EQ(dev.scanout_res, gpu0.res_id);
	/* A damaged rectangle: transferred from its offset, flushed, nothing more. */
	CHECK_EQ(virtio_gpu_flush(16, 32, 8, 16), 0);
	CHECK_EQ(dev.last_transfer.x, 16);
	CHECK_EQ(dev.last_transfer.y, 32);
	CHECK_EQ(dev.last_transfer.width, 8);
	CHECK_EQ(dev.last_transfer.height, 16);
	CHECK_EQ(dev.last_offset, 32 * 1280 * 4 + 16 * 4);
	CHECK_EQ(dev.last_flush.width, 8);
	/* Clipped at the edges, in 64 bits: x + w would wrap in 32. */
	CHECK_EQ(virtio_gpu_flush(1270, 790, 0xfffffff0u, 0xfffffff0u), 0);
	CHECK_EQ(dev.last_flush.width, 10);
	CHECK_EQ(dev.last_flush.height, 10);
	CHECK(!dev.reset);
	CHECK_EQ(loop_runs, 0);
}

static void test_display_change_event(void)
{
	CHECK_EQ(fresh(HONEST, 0, 1, 1280, 800), 0);
	struct virtio_gpu_fb before, after;
	CHECK_EQ(virtio_gpu_fb(&before), 0);
	dev.disp_w = 800;
	dev.disp_h = 600;
	dev.cfg.events_read = VIRTIO_GPU_EVENT_DISPLAY;
	fake_ns += EVENT_CHECK_NS;
	CHECK(!source->poll(source->ctx)); /* the wait loop's pass finds the event */
	CHECK_EQ(dev.cfg.events_read, 0);  /* cleared through events_clear */
	CHECK_EQ(virtio_gpu_fb(&after), 0);
	CHECK_EQ(after.width, 800);
	CHECK_EQ(after.height, 600);
	CHECK(after.generation != before.generation);
	CHECK_EQ(dev.res_w, 800);
	CHECK_EQ(dev.backing_len, 800 * 600 * 4);
	CHECK_EQ(dev.scanout_res, gpu0.res_id);
	/* No event: nothing changes. */
	virtio_gpu_check_display();
	CHECK_EQ(dev.resources, 2);
}

static void test_no_preference_or_absurd_size(void)
{
	CHECK_EQ(fresh(HONEST, 0, 1, 0, 0), 0);
	CHECK(strcmp(note, "gpu0 1024x768, 1 scanout, timer only") == 0);
	CHECK_EQ(fresh(HONEST, 0, 1, 100000, 5), 0);
	CHECK(strcmp(note, "gpu0 1024x768, 1 scanout, timer only") == 0);
}

static void test_scanout_count_past_maximum(void)
{
	CHECK_EQ(fresh(HONEST, 0, 17, 1280, 800), -EIO);
	CHECK(strstr(last_log, "num_scanouts 17") != NULL);
	struct virtio_gpu_fb fb;
	CHECK_EQ(virtio_gpu_fb(&fb), -ENODEV);
	CHECK_EQ(fresh(HONEST, 0, 0, 1280, 800), -EIO);
	CHECK_EQ(fresh(HONEST, 0, 0xffffffffu, 1280, 800), -EIO);
	CHECK_EQ(dev.commands, 0); /* refused before any command */
}

/* A hostile answer to command number bad_from: the device is reset and the
 * framebuffer is gone (or never came). */
static void hostile(enum behaviour how, int bad_from, const char *log_part)
{
	fresh(how, bad_from, 1, 1280, 800);
	if (bad_from >= 6) /* after start-up (6 commands): break it with a flush */
		CHECK_EQ(virtio_gpu_flush(0, 0, 8, 8), -EIO);
	CHECK(dev.reset);
	CHECK(gpu0.broken);
	struct virtio_gpu_fb fb;
	CHECK_EQ(virtio_gpu_fb(&fb), -ENODEV);
	CHECK_EQ(virtio_gpu_flush(0, 0, 8, 8), -ENODEV);
	if (!strstr(last_log, log_part))
		fprintf(stderr, "log: %s\n", last_log);
	CHECK(strstr(last_log, log_part) != NULL);
}

static void test_short_header(void)
{
	hostile(SHORT_HDR, 0, "16 bytes, shorter than its header");
	hostile(SHORT_HDR, 5, "16 bytes, shorter than its header"); /* the first flush */
	hostile(SHORT_HDR, 7, "16 bytes, shorter than its header");
}

static void test_short_display_info(void) { hostile(SHORT_INFO, 0, "needs 408"); }

static void test_fence_not_echoed(void) { hostile(NO_FENCE, 2, "not echoed"); }
static void test_wrong_type(void) { hostile(WRONG_TYPE, 3, "where 0x1100 was due"); }
static void test_silent(void) { hostile(SILENT, 6, "no answer"); }

/* An error response is an ordinary failure: no framebuffer, the device is not blamed. */
static void test_out_of_memory(void)
{
	CHECK_EQ(fresh(OOM, 1, 1, 1280, 800), 0);
	CHECK(strstr(note, "no framebuffer (error -12)") != NULL);
	CHECK(!dev.reset);
	CHECK(!gpu0.broken);
}

/* GET_EDID when offered: the monitor's name and mode reach the log. */
static void test_edid(void)
{
	offer_edid = true;
	CHECK_EQ(fresh(HONEST, 0, 1, 1280, 800), 0);
	CHECK(!dev.reset);
	struct virtio_gpu_fb fb;
	CHECK_EQ(virtio_gpu_fb(&fb), 0);
	CHECK_EQ(fb.width, 1280); /* the display info decides, not the EDID */
	/* The log's last line is the framebuffer's; look at the EDID alone. */
	CHECK_EQ(read_edid(&gpu0), 0);
	CHECK(strcmp(last_log, "gpu0: EDID: monitor \"Test Screen\", preferred mode 1920x1080") == 0);

	/* A bad checksum: ignored, the device is not blamed. */
	CHECK_EQ(fresh(EDID_BAD_SUM, 0, 1, 1280, 800), 0);
	CHECK(!dev.reset);
	CHECK_EQ(read_edid(&gpu0), -EINVAL);
	CHECK(strstr(last_log, "checksum") != NULL);

	/* A size past the 1024-byte field: a broken rule, the device is stopped. */
	CHECK_EQ(fresh(EDID_HUGE, 0, 1, 1280, 800), 0);
	CHECK(strstr(note, "no framebuffer (error -5)") != NULL);
	CHECK(dev.reset);
	CHECK(strstr(last_log, "an EDID of 65536 bytes") != NULL);
	CHECK_EQ(virtio_gpu_fb(&fb), -ENODEV);
	offer_edid = false;
}

int main(void)
{
	RUN_TEST(test_honest);
	RUN_TEST(test_display_change_event);
	RUN_TEST(test_no_preference_or_absurd_size);
	RUN_TEST(test_scanout_count_past_maximum);
	RUN_TEST(test_short_header);
	RUN_TEST(test_short_display_info);
	RUN_TEST(test_fence_not_echoed);
	RUN_TEST(test_wrong_type);
	RUN_TEST(test_silent);
	RUN_TEST(test_out_of_memory);
	RUN_TEST(test_edid);
	fresh(HONEST, 0, 0, 0, 0); /* frees what the last test left */
	return check_report();
}
