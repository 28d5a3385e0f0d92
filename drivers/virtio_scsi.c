/*
 * virtio-scsi: polled SCSI host driver; each disk LUN becomes a block-layer disk (sda, sdb, ...).
 * Implements: Virtual I/O Device (VIRTIO) Version 1.2, §5.6 SCSI Host Device;
 *             SCSI Primary Commands (SPC-4) and SCSI Block Commands (SBC-3) for the commands.
 * Try it:     -device virtio-scsi-pci,id=s0 -drive file=disk.img,if=none,id=d0,format=raw
 *             -device scsi-hd,drive=d0,bus=s0.0,lun=0
 *             (scripts/run --scsi disk.img blktool -- info)
 *
 * One request is one descriptor chain (§5.6.6): the device reads a command header (the LUN,
 * a tag, the CDB) and the data of a write, then writes a response (SCSI status, sense data,
 * residual) and the data of a read. Each request in flight has a slot in DMA memory holding
 * its header, response and indirect table; the slot is the chain's cookie. All LUNs of a
 * controller share its one request queue, so a completion found while polling one disk may
 * belong to another: its slot waits on that disk's list, holding the outcome, until the
 * block layer polls that disk. So that one disk's unreaped completions cannot take every
 * slot from the others, each LUN may hold at most its share of the slots.
 *
 * At start-up the driver asks every target for its LUNs (REPORT LUNS), and each LUN what it
 * is (INQUIRY: only direct-access block devices are used), how big (READ CAPACITY(16)),
 * whether it is writable (MODE SENSE's WP bit) and whether it can unmap (the logical block
 * provisioning VPD pages). Errors come back as sense data, decoded into an errno and a log
 * line; a unit attention or a busy target is retried.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "../kernel/blkdev.h"
#include "../kernel/kernel.h"
#include "../kernel/wait.h"
#include "virtio/virtio_dev.h"
#include "virtio_scsi.h"

/* Feature bits (§5.6.3). */
#define VIRTIO_SCSI_F_INOUT   0 /* bidirectional commands: not used */
#define VIRTIO_SCSI_F_HOTPLUG 1 /* events when LUNs come and go */

/* Offsets in struct virtio_scsi_config (§5.6.4). */
#define CFG_NUM_QUEUES  0  /* le32 RO: request queues */
#define CFG_SEG_MAX     4  /* le32 RO: data segments per command */
#define CFG_MAX_SECTORS 8  /* le32 RO: a hint: the most 512-byte sectors per command */
#define CFG_SENSE_SIZE  20 /* le32 RW: sense bytes in a response */
#define CFG_CDB_SIZE    24 /* le32 RW: CDB bytes in a request */
#define CFG_MAX_TARGET  30 /* le16 RO */
#define CFG_MAX_LUN     32 /* le32 RO */

/* Queues (§5.6.2): control, event, then the request queues; one request queue is used. */
#define QUEUE_EVENT   1
#define QUEUE_REQUEST 2

/* The sizes this driver tells the device (the spec's defaults, written anyway so that the
 * structs below are right whatever the device started with). */
#define CDB_SIZE   32
#define SENSE_SIZE 96

/* §5.6.6 Device Operation: Request Queues. */
struct virtio_scsi_req_cmd {
	uint8_t lun[8];    /* 1, target, 0x40 | lun >> 8, lun & 0xff, 0... */
	uint64_t id;       /* the command's tag: our slot's index */
	uint8_t task_attr; /* 0: SIMPLE */
	uint8_t prio;
	uint8_t crn;
	uint8_t cdb[CDB_SIZE];
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_scsi_req_cmd) == 19 + CDB_SIZE, "virtio_scsi_req_cmd");

struct virtio_scsi_resp_cmd {
	uint32_t sense_len;        /* RO: valid bytes of sense[] */
	uint32_t resid;            /* RO: data bytes not transferred */
	uint16_t status_qualifier; /* RO */
	uint8_t status;            /* RO: SCSI status (SAM) */
	uint8_t response;          /* RO: VIRTIO_SCSI_S_* */
	uint8_t sense[SENSE_SIZE]; /* RO */
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_scsi_resp_cmd) == 12 + SENSE_SIZE, "virtio_scsi_resp_cmd");

/* §5.6.6.3 Device Operation: eventq. */
struct virtio_scsi_event {
	uint32_t event;  /* RO: VIRTIO_SCSI_T_*, | VIRTIO_SCSI_T_EVENTS_MISSED */
	uint8_t lun[8];  /* RO */
	uint32_t reason; /* RO */
};
_Static_assert(sizeof(struct virtio_scsi_event) == 16, "virtio_scsi_event");

#define VIRTIO_SCSI_S_OK                0
#define VIRTIO_SCSI_S_OVERRUN           1
#define VIRTIO_SCSI_S_ABORTED           2
#define VIRTIO_SCSI_S_BAD_TARGET        3
#define VIRTIO_SCSI_S_RESET             4
#define VIRTIO_SCSI_S_BUSY              5
#define VIRTIO_SCSI_S_TRANSPORT_FAILURE 6
#define VIRTIO_SCSI_S_TARGET_FAILURE    7
#define VIRTIO_SCSI_S_NEXUS_FAILURE     8
#define VIRTIO_SCSI_S_FAILURE           9
#define VIRTIO_SCSI_S_INCORRECT_LUN     12

#define VIRTIO_SCSI_T_TRANSPORT_RESET 1
#define VIRTIO_SCSI_T_EVENTS_MISSED   0x80000000u
#define VIRTIO_SCSI_EVT_RESET_RESCAN  1
#define VIRTIO_SCSI_EVT_RESET_REMOVED 2

/* SCSI status codes (SAM-5) and sense keys (SPC-4 §4.5.6). */
#define SAM_GOOD            0x00
#define SAM_CHECK_CONDITION 0x02
#define SAM_BUSY            0x08
#define SAM_TASK_SET_FULL   0x28
#define KEY_NO_SENSE        0x0
#define KEY_RECOVERED_ERROR 0x1
#define KEY_NOT_READY       0x2
#define KEY_MEDIUM_ERROR    0x3
#define KEY_HARDWARE_ERROR  0x4
#define KEY_ILLEGAL_REQUEST 0x5
#define KEY_UNIT_ATTENTION  0x6
#define KEY_DATA_PROTECT    0x7
#define KEY_ABORTED_COMMAND 0xb

/* Operation codes (SPC-4, SBC-3). */
#define OP_TEST_UNIT_READY 0x00
#define OP_INQUIRY         0x12
#define OP_MODE_SENSE_6    0x1a
#define OP_READ_10         0x28
#define OP_WRITE_10        0x2a
#define OP_SYNC_CACHE_10   0x35
#define OP_UNMAP           0x42
#define OP_READ_16         0x88
#define OP_WRITE_16        0x8a
#define OP_WRITE_SAME_16   0x93
#define OP_SERVICE_IN_16   0x9e /* READ CAPACITY(16) is its service action 0x10 */
#define OP_REPORT_LUNS     0xa0

#define MAX_CTRLS      8
#define MAX_LUNS       16
#define MAX_RETRIES    5 /* unit attentions, busy targets, aborted commands */
#define MAX_XFER       (4u << 20)
#define CMD_TIMEOUT_NS (5ull * 1000000000ull) /* the driver's own commands at start-up */

enum dir { DIR_NONE, DIR_OUT, DIR_IN };

struct lun;

/* One command in flight. */
struct slot {
	struct virtq_desc table[4]; /* first: it must be 16-byte aligned */
	struct virtio_scsi_req_cmd cmd;
	struct virtio_scsi_resp_cmd resp;
	/* UNMAP's parameter list (a header and one block descriptor); the unit serial
	 * number VPD page for BLK_GET_ID */
	uint8_t param[64];
	struct lun *lun;
	struct blk_request *req; /* NULL: the driver's own command (then `done` and `result`) */
	void *data;
	uint32_t data_len;
	enum dir dir;
	uint8_t retries;
	bool done;              /* completed: the outcome is in result */
	int result;             /* 0 or a negative errno */
	struct slot *next_done; /* on its LUN's list of completions */
	uint32_t got;           /* the driver's own data-in commands: bytes delivered */
	uint64_t submitted_ns;
	struct slot *next_free;
} __attribute__((aligned(16)));

struct scsi_ctrl {
	struct virtio_dev vd;
	struct virtq reqq, evq;
	struct virtio_scsi_event *events; /* buffers offered on the event queue */
	unsigned nevents;
	struct slot *slots, *free_slots;
	uint16_t nslots;
	bool broken;
	uint32_t max_xfer; /* bytes per command, from max_sectors */
	unsigned nluns;
	struct wait_source ws;
};

struct lun {
	struct scsi_ctrl *c;
	char name[8];
	uint16_t target, lun;
	uint64_t blocks;
	uint32_t block_size;
	bool read_only, unmap, write_same, gone;
	uint32_t max_xfer_blocks;  /* from the block limits VPD page; 0: no limit */
	uint32_t max_unmap_blocks; /* 0: no limit given */
	uint64_t max_ws_blocks;
	uint8_t *zeroes; /* one block of zeros: WRITE SAME's data */
	unsigned held;   /* slots this LUN's requests hold: in flight, or completed and not reaped */
	unsigned share;  /* the most it may hold */
	/* Completed requests' slots, oldest first, until the block layer polls this disk. A
	 * request's status is set only then: until it is handed back it stays in progress. */
	struct slot *done_head, *done_tail;
};

static struct scsi_ctrl ctrls[MAX_CTRLS];
static int nctrls;
static struct lun luns[MAX_LUNS];
static int nluns;
static const struct blk_dev_ops scsi_ops;

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | p[2] << 8 | p[3]; }
static uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }
static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static void put_be32(uint8_t *p, uint32_t v)
{
	put_be16(p, (uint16_t)(v >> 16));
	put_be16(p + 2, (uint16_t)v);
}
static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

/* ---- sense data ----------------------------------------------------------------------- */

static const char *const key_names[16] = {
    "NO SENSE",       "RECOVERED ERROR", "NOT READY",   "MEDIUM ERROR",    "HARDWARE ERROR", "ILLEGAL REQUEST",
    "UNIT ATTENTION", "DATA PROTECT",    "BLANK CHECK", "VENDOR SPECIFIC", "COPY ABORTED",   "ABORTED COMMAND",
    "RESERVED (0xc)", "VOLUME OVERFLOW", "MISCOMPARE",  "COMPLETED",
};

struct sense {
	uint8_t key, asc, ascq;
	bool valid;
};

/* The sense key and additional sense code of fixed-format (0x70/0x71) or descriptor-format
 * (0x72/0x73) sense data (SPC-4 §4.5). len is already checked against the buffer. */
static struct sense sense_decode(const uint8_t *s, uint32_t len)
{
	struct sense d = {0};
	uint8_t code = len ? s[0] & 0x7f : 0;
	if ((code == 0x70 || code == 0x71) && len >= 14)
		d = (struct sense){s[2] & 0xf, s[12], s[13], true};
	else if ((code == 0x70 || code == 0x71) && len >= 3)
		d = (struct sense){s[2] & 0xf, 0, 0, true};
	else if ((code == 0x72 || code == 0x73) && len >= 4)
		d = (struct sense){s[1] & 0xf, s[2], s[3], true};
	return d;
}

/* What a CHECK CONDITION means to the caller: 0 (recovered), a negative errno, or 1 (retry). */
static int sense_errno(struct sense s)
{
	switch (s.key) {
	case KEY_NO_SENSE:
	case KEY_RECOVERED_ERROR:
		return 0;
	case KEY_UNIT_ATTENTION: /* a reset, a capacity change: the command did not run */
	case KEY_ABORTED_COMMAND:
		return 1;
	case KEY_NOT_READY:
		return s.asc == 0x04 && s.ascq == 0x01 ? 1 : -EIO; /* "becoming ready" */
	case KEY_ILLEGAL_REQUEST:
		/* Invalid command operation code, invalid field in CDB or in the parameter
		 * list: the LUN does not do this. Anything else (an LBA out of range): ours. */
		return s.asc == 0x20 || s.asc == 0x24 || s.asc == 0x26 ? -EOPNOTSUPP : -EINVAL;
	case KEY_DATA_PROTECT:
		return -EROFS;
	default: /* MEDIUM ERROR, HARDWARE ERROR, and whatever else */
		return -EIO;
	}
}

static const char *errno_name(int err)
{
	switch (err) {
	case -EIO:
		return "EIO";
	case -EINVAL:
		return "EINVAL";
	case -EOPNOTSUPP:
		return "EOPNOTSUPP";
	case -EROFS:
		return "EROFS";
	default:
		return "error";
	}
}

/* ---- the request queue ---------------------------------------------------------------- */

static void set_lun(uint8_t out[8], uint16_t target, uint16_t lun)
{
	/* §5.6.6: the only LUN format the device takes is 1, the target, the LUN as a
	 * single-level LUN structure (flat space addressing: 0x4000 | lun, big-endian),
	 * then four zero bytes: up to 256 targets of 16384 LUNs. */
	memset(out, 0, 8);
	out[0] = 1;
	out[1] = (uint8_t)target;
	put_be16(out + 2, (uint16_t)(0x4000 | (lun & 0x3fff)));
}

/* Offers a prepared slot to the device. 0, -EAGAIN (no room), -EIO (broken). */
static int queue_slot(struct scsi_ctrl *c, struct slot *s)
{
	struct virtq_buf b[4];
	unsigned n_out = 0, n_in = 0;
	b[n_out++] = (struct virtq_buf){&s->cmd, sizeof(s->cmd)};
	if (s->dir == DIR_OUT)
		b[n_out++] = (struct virtq_buf){s->data, s->data_len};
	/* Not a valid response: the device must overwrite it. */
	s->resp.response = 0xff;
	s->resp.sense_len = 0;
	s->resp.resid = 0;
	b[n_out + n_in++] = (struct virtq_buf){&s->resp, sizeof(s->resp)};
	if (s->dir == DIR_IN)
		b[n_out + n_in++] = (struct virtq_buf){s->data, s->data_len};
	int err = virtio_has_feature(c->vd.features, VIRTIO_F_INDIRECT_DESC)
	              ? virtq_add_indirect(&c->reqq, b, n_out, n_in, s, s->table)
	              : virtq_add(&c->reqq, b, n_out, n_in, s);
	if (err == -ENOSPC)
		return -EAGAIN;
	if (err)
		return err;
	s->submitted_ns = time_ns();
	virtq_kick(&c->reqq);
	return 0;
}

/* A free slot with the command header filled in for this LUN and CDB, or NULL. */
static struct slot *slot_take(struct lun *l, const uint8_t *cdb, unsigned cdb_len, void *data, uint32_t len,
                              enum dir dir)
{
	struct scsi_ctrl *c = l->c;
	struct slot *s = c->free_slots;
	if (!s)
		return NULL;
	memset(&s->cmd, 0, sizeof(s->cmd));
	set_lun(s->cmd.lun, l->target, l->lun);
	s->cmd.id = (uint64_t)(s - c->slots);
	memcpy(s->cmd.cdb, cdb, cdb_len);
	s->lun = l;
	s->data = data;
	s->data_len = len;
	s->dir = len ? dir : DIR_NONE;
	s->retries = 0;
	s->done = false;
	s->req = NULL;
	s->got = 0;
	return s;
}

static void slot_give(struct scsi_ctrl *c, struct slot *s)
{
	s->lun = NULL;
	s->req = NULL;
	s->next_free = c->free_slots;
	c->free_slots = s;
}

static void ctrl_stop(struct scsi_ctrl *c, const char *why)
{
	if (c->broken)
		return;
	c->broken = true;
	/* Reset first: after this the device no longer touches our memory, so the requests'
	 * buffers can go back to their owners. */
	bool reset = virtio_reset(&c->vd);
	klog("virtio-scsi %s: %s; the controller is stopped and its requests fail", c->vd.where, why);
	if (!reset)
		klog("virtio-scsi %s: the device did not reset: it may still write to memory it was given",
		     c->vd.where);
}

/* The outcome of a used chain: 0, a negative errno, or 1 to send the command again. Logs
 * what the sense data says. Stops the controller for a response that breaks the rules. */
static int outcome(struct scsi_ctrl *c, struct slot *s, uint32_t len)
{
	/* Each field the device wrote, read once. */
	uint8_t response = s->resp.response, status = s->resp.status;
	uint32_t sense_len = s->resp.sense_len, resid = s->resp.resid;
	if (len < offsetof(struct virtio_scsi_resp_cmd, sense)) {
		ctrl_stop(c, "device returned a command without its response");
		return -EIO;
	}
	if (sense_len > SENSE_SIZE) {
		ctrl_stop(c, "device claimed more sense data than the buffer holds");
		return -EIO;
	}
	if (resid > s->data_len) {
		ctrl_stop(c, "device claimed a residual larger than the data buffer");
		return -EIO;
	}
	switch (response) {
	case VIRTIO_SCSI_S_OK:
		break;
	case VIRTIO_SCSI_S_BUSY:
		return 1;
	case VIRTIO_SCSI_S_BAD_TARGET:
	case VIRTIO_SCSI_S_INCORRECT_LUN:
	case VIRTIO_SCSI_S_TRANSPORT_FAILURE:
		/* The LUN went away (hot-unplug): its requests fail from now on. */
		if (s->lun && !s->lun->gone && s->req) {
			s->lun->gone = true;
			klog("%s: the LUN is gone (response %u): its requests fail", s->lun->name, response);
		}
		return -EIO;
	default:
		return -EIO; /* ABORTED, RESET, failures, or a value the spec does not have */
	}
	if (status == SAM_BUSY || status == SAM_TASK_SET_FULL)
		return 1;
	if (status == SAM_CHECK_CONDITION) {
		struct sense d = sense_decode(s->resp.sense, sense_len);
		int err = d.valid ? sense_errno(d) : -EIO;
		/* The driver's own commands at start-up meet the power-on unit attention and
		 * unsupported pages as a matter of course, and a LUN without a serial number
		 * refuses its page: no log line for those. */
		if (s->req && s->req->op != BLK_GET_ID && (err < 0 || s->retries + 1 >= MAX_RETRIES))
			klog("%s: command 0x%02x failed: %s, asc 0x%02x ascq 0x%02x%s -> %s", s->lun->name,
			     s->cmd.cdb[0], d.valid ? key_names[d.key] : "no sense data", d.asc, d.ascq,
			     err > 0 ? " (retries exhausted)" : "", errno_name(err > 0 ? -EIO : err));
		return err;
	}
	if (status != SAM_GOOD)
		return -EIO;
	s->got = s->data_len - resid;
	/* A read that claims success must have delivered every byte. */
	if (s->req && s->dir == DIR_IN && resid != 0)
		return -EIO;
	return 0;
}

/* Puts a completed request's slot on its LUN's list. */
static void lun_done(struct lun *l, struct slot *s, int status)
{
	s->result = status;
	s->done = true;
	s->next_done = NULL;
	if (l->done_tail)
		l->done_tail->next_done = s;
	else
		l->done_head = s;
	l->done_tail = s;
}

static void complete(struct scsi_ctrl *c, struct slot *s, uint32_t len)
{
	int r = outcome(c, s, len);
	if (r > 0 && ++s->retries < MAX_RETRIES && !c->broken) {
		if (queue_slot(c, s) == 0)
			return; /* in flight again, same slot */
	}
	if (r > 0)
		r = -EIO;
	if (!s->req) {
		s->result = r;
		s->done = true; /* the caller of run_cmd() gives the slot back */
		return;
	}
	lun_done(s->lun, s, r);
}

/* The device announced a LUN change (§5.6.6.3.1). Removed LUNs fail their requests; new
 * ones are noted: XXX: a LUN added at run time is not attached until the next boot. */
static void event(struct scsi_ctrl *c, const struct virtio_scsi_event *e)
{
	uint32_t type = e->event, reason = e->reason;
	uint8_t lun0 = e->lun[0], target = e->lun[1];
	uint16_t lun = be16(e->lun + 2) & 0x3fff;
	if (type & VIRTIO_SCSI_T_EVENTS_MISSED)
		klog("virtio-scsi %s: events were missed", c->vd.where);
	if ((type & ~VIRTIO_SCSI_T_EVENTS_MISSED) != VIRTIO_SCSI_T_TRANSPORT_RESET || lun0 != 1)
		return;
	for (int i = 0; i < nluns; i++) {
		struct lun *l = &luns[i];
		if (l->c != c || l->target != target || l->lun != lun)
			continue;
		if (reason == VIRTIO_SCSI_EVT_RESET_REMOVED && !l->gone) {
			l->gone = true;
			klog("%s: LUN %u:%u removed: its requests fail", l->name, target, lun);
		}
		return;
	}
	if (reason == VIRTIO_SCSI_EVT_RESET_RESCAN)
		klog("virtio-scsi %s: LUN %u:%u added (used after a reboot)", c->vd.where, target, lun);
}

/* Takes in what the device used on both queues; true when there was anything. */
static bool ctrl_poll(struct scsi_ctrl *c)
{
	void *cookie;
	uint32_t len;
	bool any = false;
	while (!c->broken) {
		int got = virtq_get_used(&c->reqq, &cookie, &len);
		if (got == 0) {
			virtq_watchdog(&c->reqq, time_ns());
			break;
		}
		if (got < 0) {
			char why[96];
			ksnprintf(why, sizeof(why), "device broke the ring rules (%s)", virtq_broken_reason(&c->reqq));
			ctrl_stop(c, why);
			break;
		}
		complete(c, cookie, len);
		any = true;
	}
	while (!c->broken && c->nevents) {
		int got = virtq_get_used(&c->evq, &cookie, &len);
		if (got <= 0)
			break; /* a broken event queue only loses events */
		struct virtio_scsi_event *e = cookie;
		if (len >= sizeof(*e))
			event(c, e);
		struct virtq_buf b = {e, sizeof(*e)};
		if (virtq_add(&c->evq, &b, 0, 1, e) == 0)
			virtq_kick(&c->evq);
		any = true;
	}
	return any;
}

/* ---- the controller as a wait source (kernel/wait.h) ----------------------------------
 * Unlike a virtio-blk disk, a controller's completions are taken in by the source itself:
 * they only move to their LUN's list (the block layer hands them out when it polls that
 * disk), and an event (a LUN removed) must be seen even while nobody waits for a disk. */

static bool src_poll(void *ctx) { return ctrl_poll(ctx); }

static bool src_arm(void *ctx)
{
	struct scsi_ctrl *c = ctx;
	if (c->broken)
		return false;
	bool pending = virtq_enable_notify(&c->reqq);
	if (c->nevents)
		pending |= virtq_enable_notify(&c->evq);
	return pending;
}

static void src_disarm(void *ctx)
{
	struct scsi_ctrl *c = ctx;
	if (c->broken)
		return;
	virtq_disable_notify(&c->reqq);
	if (c->nevents)
		virtq_disable_notify(&c->evq);
}

/* With commands at the device, the watchdog wants a look once per stall period; without an
 * interrupt, the completions want one sooner. */
static uint64_t src_deadline(void *ctx)
{
	struct scsi_ctrl *c = ctx;
	if (c->broken || virtq_inflight(&c->reqq) <= virtq_used_pending(&c->reqq))
		return WAIT_FOREVER;
	return time_ns() + (c->vd.irq_vector ? VIRTQ_STALL_NS : 100000);
}

/* ---- the driver's own commands (start-up) -------------------------------------------- */

/* Runs one command and waits for it. Returns 0 or a negative errno; *got: data bytes. */
static int run_cmd(struct lun *l, const uint8_t *cdb, unsigned cdb_len, void *data, uint32_t len, enum dir dir,
                   uint32_t *got)
{
	struct scsi_ctrl *c = l->c;
	if (c->broken)
		return -EIO;
	struct slot *s = slot_take(l, cdb, cdb_len, data, len, dir);
	if (!s)
		return -EAGAIN;
	c->free_slots = s->next_free;
	int err = queue_slot(c, s);
	if (err) {
		slot_give(c, s);
		return err;
	}
	uint64_t deadline = time_ns() + CMD_TIMEOUT_NS;
	while (!s->done && !c->broken) {
		ctrl_poll(c);
		if (!s->done && time_ns() > deadline)
			ctrl_stop(c, "a command at start-up got no answer for 5 s");
	}
	if (!s->done)
		return -EIO; /* the controller was stopped; the slot stays out of use */
	if (got)
		*got = s->got;
	err = s->result;
	slot_give(c, s);
	return err;
}

/* ---- the block layer's operations ----------------------------------------------------- */

static void op_info(void *dev, struct blk_info *info)
{
	struct lun *l = dev;
	/* Every LUN of the controller is known by now: each gets its share of the slots. */
	l->share = l->c->nslots / (l->c->nluns ? l->c->nluns : 1);
	if (l->share == 0)
		l->share = 1;
	memset(info, 0, sizeof(*info));
	memcpy(info->name, l->name, sizeof(info->name));
	info->size = l->blocks * l->block_size;
	info->block_size = l->block_size;
	info->read_only = l->read_only;
	info->flush = true; /* SYNCHRONIZE CACHE: harmless where there is no cache */
	info->discard = l->unmap;
	info->write_zeroes = l->write_same;
	uint64_t max = l->c->max_xfer;
	if (l->max_xfer_blocks && (uint64_t)l->max_xfer_blocks * l->block_size < max)
		max = (uint64_t)l->max_xfer_blocks * l->block_size;
	info->max_transfer = (uint32_t)ALIGN_DOWN(max, (uint64_t)l->block_size);
	if (info->max_transfer < l->block_size)
		info->max_transfer = l->block_size;
	info->max_discard = (uint64_t)l->max_unmap_blocks * l->block_size;
	info->max_zeroes = l->max_ws_blocks * l->block_size;
	info->queue_size = (uint16_t)l->share;
	info->features = l->c->vd.features;
	info->modern = l->c->vd.modern;
	ksnprintf(info->bus, sizeof(info->bus), "%s", l->c->vd.pci ? "pci" : "mmio");
	/* The first word of the controller's wake-up: msix, intx, irq, timer. */
	size_t w = strcspn(l->c->vd.wake, " ");
	ksnprintf(info->wakeup, sizeof(info->wakeup), "%.*s", (int)w, l->c->vd.wake);
}

/* The controller's interrupts: its LUNs share them. */
static uint64_t op_wakeups(void *dev) { return virtio_irq_count(&((struct lun *)dev)->c->vd); }

static int op_submit(void *dev, struct blk_request *r)
{
	struct lun *l = dev;
	struct scsi_ctrl *c = l->c;
	uint8_t cdb[16] = {0};
	unsigned cdb_len = 10;
	enum dir dir = DIR_NONE;
	void *data = NULL;
	uint32_t len = 0;
	uint64_t lba = r->offset / l->block_size, n = r->len / l->block_size;
	if (c->broken || l->gone)
		return -EIO;
	if (l->held >= l->share)
		return -EAGAIN;
	switch (r->op) {
	case BLK_READ:
	case BLK_WRITE:
		data = r->buf;
		len = r->len;
		dir = r->op == BLK_READ ? DIR_IN : DIR_OUT;
		if (lba + n <= UINT32_MAX && n <= UINT16_MAX) {
			cdb[0] = r->op == BLK_READ ? OP_READ_10 : OP_WRITE_10;
			put_be32(cdb + 2, (uint32_t)lba);
			put_be16(cdb + 7, (uint16_t)n);
		} else {
			cdb[0] = r->op == BLK_READ ? OP_READ_16 : OP_WRITE_16;
			put_be64(cdb + 2, lba);
			put_be32(cdb + 10, (uint32_t)n);
			cdb_len = 16;
		}
		break;
	case BLK_FLUSH:
		cdb[0] = OP_SYNC_CACHE_10; /* LBA 0, 0 blocks: the whole medium */
		break;
	case BLK_DISCARD:
		if (!l->unmap)
			return -EOPNOTSUPP;
		if (n > UINT32_MAX)
			return -EINVAL;
		cdb[0] = OP_UNMAP;
		put_be16(cdb + 7, 24); /* parameter list length */
		dir = DIR_OUT;
		len = 24;
		break;
	case BLK_WRITE_ZEROES:
		if (!l->write_same)
			return -EOPNOTSUPP;
		if (n > UINT32_MAX)
			return -EINVAL;
		/* WRITE SAME(16) with UNMAP off: the blocks are written, not deallocated. */
		cdb[0] = OP_WRITE_SAME_16;
		put_be64(cdb + 2, lba);
		put_be32(cdb + 10, (uint32_t)n);
		cdb_len = 16;
		data = l->zeroes;
		len = l->block_size;
		dir = DIR_OUT;
		break;
	case BLK_GET_ID:
		/* INQUIRY, the unit serial number VPD page (SPC-4 §7.8.18): the LUN's serial,
		 * copied into the caller's 20 bytes when it is handed back. */
		cdb[0] = OP_INQUIRY;
		cdb[1] = 1; /* EVPD */
		cdb[2] = 0x80;
		put_be16(cdb + 3, 64);
		cdb_len = 6;
		dir = DIR_IN;
		len = 64;
		break;
	default:
		return -EINVAL;
	}
	struct slot *s = slot_take(l, cdb, cdb_len, data, len, dir);
	if (!s)
		return -EAGAIN;
	if (r->op == BLK_GET_ID) {
		memset(s->param, 0, sizeof(s->param));
		s->data = s->param;
	}
	if (r->op == BLK_DISCARD) {
		/* SBC-3 §5.28.2: an 8-byte header, then one 16-byte block descriptor. */
		memset(s->param, 0, sizeof(s->param));
		put_be16(s->param, 22);     /* UNMAP data length: the bytes after this field */
		put_be16(s->param + 2, 16); /* block descriptor data length */
		put_be64(s->param + 8, lba);
		put_be32(s->param + 16, (uint32_t)n);
		s->data = s->param;
	}
	int err = queue_slot(c, s);
	if (err)
		return err; /* the slot is still on the free list */
	s->req = r;
	c->free_slots = s->next_free;
	l->held++;
	return 0;
}

/* The serial from a unit serial number VPD page, without the spaces that pad it, into id
 * (VIRTIO_BLK_ID_BYTES, 20 bytes, NUL-terminated only when shorter: as virtio-blk's). */
static void copy_serial(char *id, const uint8_t *page, uint32_t got)
{
	uint32_t len = got >= 4 ? page[3] : 0; /* page length, after the 4-byte header */
	if (len > got - 4)
		len = got - 4;
	const uint8_t *p = page + 4, *end = p + len;
	while (p < end && *p == ' ')
		p++;
	while (end > p && (end[-1] == ' ' || end[-1] == 0))
		end--;
	size_t n = 0;
	for (; p < end && n < 20; p++)
		id[n++] = *p >= ' ' && *p < 127 ? (char)*p : '?';
	if (n < 20)
		id[n] = 0;
}

static int op_poll(void *dev, struct blk_request **done, int max)
{
	struct lun *l = dev;
	struct scsi_ctrl *c = l->c;
	int n = 0;
	ctrl_poll(c);
	if (c->broken) {
		/* Everything of this LUN still at the device fails. */
		for (uint16_t i = 0; i < c->nslots; i++) {
			struct slot *s = &c->slots[i];
			if (s->req && s->lun == l && !s->done)
				lun_done(l, s, -EIO);
		}
	}
	while (n < max && l->done_head) {
		struct slot *s = l->done_head;
		l->done_head = s->next_done;
		if (!l->done_head)
			l->done_tail = NULL;
		struct blk_request *r = s->req;
		r->status = s->result;
		if (r->op == BLK_GET_ID && r->status == -EOPNOTSUPP)
			r->status = 0; /* no serial number page: an empty ID, as virtio-blk's */
		else if (r->op == BLK_GET_ID && r->status == 0)
			copy_serial(r->buf, s->param, s->got);
		slot_give(c, s);
		l->held--;
		done[n++] = r;
	}
	return n;
}

static unsigned op_inflight(void *dev) { return ((struct lun *)dev)->held; }

static uint64_t op_oldest_ns(void *dev)
{
	struct lun *l = dev;
	uint64_t oldest = UINT64_MAX;
	for (uint16_t i = 0; i < l->c->nslots && l->held; i++) {
		const struct slot *s = &l->c->slots[i];
		if (s->req && s->lun == l && !s->done && s->submitted_ns < oldest)
			oldest = s->submitted_ns;
	}
	return oldest == UINT64_MAX ? time_ns() : oldest;
}

static void op_abandon(void *dev, const char *why)
{
	struct lun *l = dev;
	ctrl_stop(l->c, why);
}

static const struct blk_dev_ops scsi_ops = {
    .info = op_info,
    .submit = op_submit,
    .poll = op_poll,
    .inflight = op_inflight,
    .oldest_ns = op_oldest_ns,
    .wakeups = op_wakeups,
    .abandon = op_abandon,
};

/* ---- finding the LUNs ------------------------------------------------------------------ */

/* Asks a LUN what it is; 0 and l filled in for a usable disk, else a negative errno (and
 * *what says why, for the log). buf is a page of DMA memory. */
static int lun_setup(struct lun *l, uint8_t *buf, const char **what)
{
	uint8_t cdb[16];
	uint32_t got = 0;
	int err;

	/* INQUIRY (SPC-4 §6.6): peripheral qualifier 0 and device type 0, a block device. */
	memset(cdb, 0, sizeof(cdb));
	cdb[0] = OP_INQUIRY;
	put_be16(cdb + 3, 96);
	memset(buf, 0, 96);
	if ((err = run_cmd(l, cdb, 6, buf, 96, DIR_IN, &got)) != 0 || got < 36) {
		*what = "INQUIRY failed";
		return err ? err : -EIO;
	}
	if ((buf[0] >> 5) != 0) {
		*what = "no LUN here";
		return -ENODEV;
	}
	if ((buf[0] & 0x1f) != 0) {
		*what = "not a disk (device type not 0)";
		return -ENODEV;
	}

	/* TEST UNIT READY until the power-on unit attention has been reported. */
	memset(cdb, 0, sizeof(cdb));
	for (int i = 0; i < 3 && run_cmd(l, cdb, 6, NULL, 0, DIR_NONE, NULL) != 0; i++)
		;

	/* READ CAPACITY(16) (SBC-3 §5.16): the last LBA, the block length, LBPME. */
	memset(cdb, 0, sizeof(cdb));
	cdb[0] = OP_SERVICE_IN_16;
	cdb[1] = 0x10;
	put_be32(cdb + 10, 32);
	memset(buf, 0, 32);
	if ((err = run_cmd(l, cdb, 16, buf, 32, DIR_IN, &got)) != 0 || got < 16) {
		*what = "READ CAPACITY(16) failed";
		return err ? err : -EIO;
	}
	uint64_t last = be64(buf);
	uint32_t bs = be32(buf + 8);
	bool lbpme = buf[14] & 0x80;
	if (bs < 512 || bs > 65536 || (bs & (bs - 1))) {
		*what = "unusable block size";
		return -ENODEV;
	}
	l->block_size = bs;
	/* Byte offsets are 64-bit and files' off_t signed. */
	l->blocks = last >= (uint64_t)INT64_MAX / bs ? (uint64_t)INT64_MAX / bs : last + 1;

	/* MODE SENSE(6), no block descriptors: the header's WP bit (SBC-3 §6.5.1). */
	memset(cdb, 0, sizeof(cdb));
	cdb[0] = OP_MODE_SENSE_6;
	cdb[1] = 0x08; /* DBD */
	cdb[2] = 0x3f; /* all pages */
	cdb[4] = 0xff;
	memset(buf, 0, 255);
	if (run_cmd(l, cdb, 6, buf, 255, DIR_IN, &got) == 0 && got >= 4)
		l->read_only = buf[2] & 0x80;

	/* Logical block provisioning (SBC-3 §6.6.4) and block limits (§6.6.3) VPD pages. */
	if (lbpme) {
		memset(cdb, 0, sizeof(cdb));
		cdb[0] = OP_INQUIRY;
		cdb[1] = 1; /* EVPD */
		cdb[2] = 0xb2;
		put_be16(cdb + 3, 64);
		memset(buf, 0, 64);
		if (run_cmd(l, cdb, 6, buf, 64, DIR_IN, &got) == 0 && got >= 6 && buf[1] == 0xb2) {
			l->unmap = buf[5] & 0x80; /* LBPU */
		}
	}
	l->write_same = true; /* WRITE SAME(16) is mandatory-ish for SBC-3 disks; a refusal is EOPNOTSUPP */
	memset(cdb, 0, sizeof(cdb));
	cdb[0] = OP_INQUIRY;
	cdb[1] = 1;
	cdb[2] = 0xb0;
	put_be16(cdb + 3, 64);
	memset(buf, 0, 64);
	if (run_cmd(l, cdb, 6, buf, 64, DIR_IN, &got) == 0 && got >= 44 && buf[1] == 0xb0) {
		l->max_xfer_blocks = be32(buf + 8);
		l->max_unmap_blocks = be32(buf + 20);
		l->max_ws_blocks = be64(buf + 36);
		if (be32(buf + 24) == 0)
			l->unmap = false; /* no block descriptors at all: UNMAP cannot be used */
	}
	if (l->max_unmap_blocks == UINT32_MAX)
		l->max_unmap_blocks = 0; /* "no limit" */

	l->zeroes = page_alloc(ALIGN_UP(bs, PAGE_SIZE) / PAGE_SIZE);
	if (!l->zeroes) {
		*what = "no memory";
		return -ENOMEM;
	}
	return 0;
}

/* One LUN found by REPORT LUNS (or the fallback, LUN 0): made a disk if it is one. */
static void lun_add(struct scsi_ctrl *c, uint16_t target, uint16_t lun, uint8_t *buf, int *found)
{
	const char *what = "";
	if (nluns == MAX_LUNS) {
		klog("virtio-scsi %s: LUN %u:%u: no room for more than %d LUNs", c->vd.where, target, lun, MAX_LUNS);
		return;
	}
	struct lun *l = &luns[nluns];
	memset(l, 0, sizeof(*l));
	l->c = c;
	l->target = target;
	l->lun = lun;
	ksnprintf(l->name, sizeof(l->name), "sd%c", 'a' + nluns);
	int err = lun_setup(l, buf, &what);
	if (err) {
		if (err != -ENODEV || strcmp(what, "no LUN here") != 0)
			klog("virtio-scsi %s: LUN %u:%u: %s (%d)", c->vd.where, target, lun, what, err);
		return;
	}
	/* Vendor and product from the INQUIRY data, read again (buf was reused). */
	uint8_t cdb[6] = {OP_INQUIRY, 0, 0, 0, 36, 0};
	char vendor[9] = "", product[17] = "";
	if (run_cmd(l, cdb, 6, buf, 36, DIR_IN, NULL) == 0) {
		for (int i = 0; i < 8; i++)
			vendor[i] = buf[8 + i] >= ' ' && buf[8 + i] < 127 ? (char)buf[8 + i] : '?';
		for (int i = 0; i < 16; i++)
			product[i] = buf[16 + i] >= ' ' && buf[16 + i] < 127 ? (char)buf[16 + i] : '?';
		for (int i = 7; i >= 0 && vendor[i] == ' '; i--)
			vendor[i] = 0;
		for (int i = 15; i >= 0 && product[i] == ' '; i--)
			product[i] = 0;
	}
	if (blk_register(&scsi_ops, l) != 0) {
		klog("virtio-scsi %s: LUN %u:%u: the block layer has no room", c->vd.where, target, lun);
		return;
	}
	klog("virtio-scsi %s: target %u lun %u %s %lu MiB, %u-byte blocks%s%s, %s %s", c->vd.where, target, lun,
	     l->name, (unsigned long)(l->blocks * l->block_size >> 20), l->block_size, l->read_only ? ", ro" : "",
	     l->unmap ? ", unmap" : "", vendor, product);
	l->share = c->nslots;
	c->nluns++;
	nluns++;
	(*found)++;
}

/* Every LUN of every target, through REPORT LUNS (SPC-4 §6.33) sent to LUN 0 of each target
 * (QEMU answers it for the target even when LUN 0 itself is missing). */
static int scan(struct scsi_ctrl *c, unsigned max_target)
{
	uint8_t *buf = page_alloc(1);
	int found = 0;
	if (!buf)
		return 0;
	for (unsigned t = 0; t <= max_target && !c->broken; t++) {
		struct lun probe = {.c = c, .target = (uint16_t)t, .lun = 0, .name = "scan"};
		uint8_t cdb[12] = {OP_REPORT_LUNS};
		uint32_t got = 0;
		put_be32(cdb + 6, PAGE_SIZE);
		memset(buf, 0, PAGE_SIZE);
		int err = run_cmd(&probe, cdb, 12, buf, PAGE_SIZE, DIR_IN, &got);
		if (err || got < 8) {
			if (err != -EIO)
				lun_add(c, (uint16_t)t, 0, buf, &found); /* no REPORT LUNS: try LUN 0 */
			continue;                                        /* -EIO: no such target */
		}
		/* An 8-byte header (the list's length), then 8 bytes a LUN. */
		uint64_t list = be32(buf);
		if (list > got - 8)
			list = got - 8;
		static uint16_t lunlist[64];
		unsigned nl = 0;
		for (uint64_t off = 8; off + 8 <= 8 + list && nl < ARRAY_SIZE(lunlist); off += 8) {
			const uint8_t *e = buf + off;
			unsigned method = e[0] >> 6;
			if (method == 0 && e[0] == 0) /* peripheral device addressing, bus 0 */
				lunlist[nl++] = e[1];
			else if (method == 1) /* flat space addressing */
				lunlist[nl++] = (uint16_t)((e[0] & 0x3f) << 8 | e[1]);
		}
		for (unsigned i = 0; i < nl; i++)
			lun_add(c, (uint16_t)t, lunlist[i], buf, &found);
	}
	page_free(buf, 1);
	return found;
}

int virtio_scsi_probe(const struct virtio_dev *found, char *note, size_t note_len)
{
	int err;
	if (nctrls == MAX_CTRLS)
		return -ENOSPC;
	struct scsi_ctrl *c = &ctrls[nctrls];
	memset(c, 0, sizeof(*c));
	c->vd = *found;
	c->vd.name = "virtio-scsi";

	uint64_t wanted = 1ull << VIRTIO_SCSI_F_HOTPLUG | 1ull << VIRTIO_F_EVENT_IDX | 1ull << VIRTIO_F_INDIRECT_DESC;
	if ((err = virtio_start(&c->vd, wanted, 0)) != 0)
		return err;

	/* §5.6.4: "The driver MUST NOT write to device configuration fields other than
	 * sense_size and cdb_size." Those two it may set: to our structs' sizes, re-read. */
	virtio_config_write32(&c->vd, CFG_SENSE_SIZE, SENSE_SIZE);
	virtio_config_write32(&c->vd, CFG_CDB_SIZE, CDB_SIZE);
	uint32_t sense_size, cdb_size, max_sectors, seg_max;
	uint16_t max_target;
	virtio_config_read(&c->vd, CFG_SENSE_SIZE, &sense_size, 4);
	virtio_config_read(&c->vd, CFG_CDB_SIZE, &cdb_size, 4);
	if (sense_size != SENSE_SIZE || cdb_size != CDB_SIZE) {
		virtio_fail(&c->vd, "did not take our sense and CDB sizes");
		return -ENOTSUP;
	}
	virtio_config_read(&c->vd, CFG_MAX_SECTORS, &max_sectors, 4);
	virtio_config_read(&c->vd, CFG_SEG_MAX, &seg_max, 4);
	virtio_config_read(&c->vd, CFG_MAX_TARGET, &max_target, 2);
	/* Each command carries its data in one buffer (contiguous physical memory), so
	 * seg_max only matters when it is 0; max_sectors bounds a command's size. */
	c->max_xfer = MAX_XFER;
	if (max_sectors && (uint64_t)max_sectors * 512 < c->max_xfer)
		c->max_xfer = max_sectors * 512;
	if (c->max_xfer < 4096)
		c->max_xfer = 4096; /* a device that allows less: it will refuse, we will see */
	(void)seg_max;
	/* QEMU says 255 targets; asking each costs one command, so stay with the ones QEMU and
	 * Proxmox use (scsi-id 0..), up to 31. XXX: a target beyond that is not found. */
	if (max_target > 31)
		max_target = 31;

	/* 7. The event queue and one request queue (the control queue stays unused: a stuck
	 * command is handled by resetting the whole controller). */
	if ((err = virtio_queue_init(&c->vd, &c->reqq, QUEUE_REQUEST, VIRTQ_MAX_SIZE)) != 0) {
		virtio_fail(&c->vd, "cannot set up its request queue");
		return err;
	}
	c->reqq.used_len_total = true; /* QEMU counts a write's data in the used len */
	if (virtio_has_feature(c->vd.features, VIRTIO_SCSI_F_HOTPLUG) &&
	    virtio_queue_init(&c->vd, &c->evq, QUEUE_EVENT, 8) == 0) {
		c->events = page_alloc(1);
		if (c->events)
			c->nevents = c->evq.size < 8 ? c->evq.size : 8;
	}
	c->nslots = c->reqq.size;
	size_t bytes = ALIGN_UP(c->nslots * sizeof(struct slot), PAGE_SIZE);
	c->slots = page_alloc(bytes / PAGE_SIZE);
	if (!c->slots) {
		virtio_fail(&c->vd, "no memory for request slots");
		return -ENOMEM;
	}
	for (int i = c->nslots - 1; i >= 0; i--)
		slot_give(c, &c->slots[i]);
	/* One wake-up for the three queues (the control queue has none set up). */
	virtio_irq_setup(&c->vd, 3);
	virtio_ready(&c->vd);
	/* §5.6.6.3: the driver keeps the event queue stocked with device-writable buffers
	 * of at least sizeof(struct virtio_scsi_event); events that find none are lost
	 * (and flagged VIRTIO_SCSI_T_EVENTS_MISSED on the next). */
	for (unsigned i = 0; i < c->nevents; i++) {
		struct virtq_buf b = {&c->events[i], sizeof(c->events[i])};
		virtq_add(&c->evq, &b, 0, 1, &c->events[i]);
	}
	if (c->nevents)
		virtq_kick(&c->evq);

	nctrls++;
	int first = nluns;
	int n = scan(c, max_target);
	c->ws = (struct wait_source){.name = "virtio-scsi",
	                             .poll = src_poll,
	                             .arm = c->vd.irq_vector ? src_arm : NULL,
	                             .disarm = src_disarm,
	                             .deadline = src_deadline,
	                             .ctx = c};
	wait_add_source(&c->ws);
	char *p = note;
	size_t left = note_len;
	int w = ksnprintf(p, left, "%d LUN%s", n, n == 1 ? "" : "s");
	for (int i = first; i < nluns && w > 0 && (size_t)w < left; i++) {
		p += w;
		left -= (size_t)w;
		w = ksnprintf(p, left, "%s%s", i == first ? ": " : " ", luns[i].name);
	}
	return 0;
}
