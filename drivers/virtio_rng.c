/*
 * virtio-rng: polled entropy device driver.
 * Implements: Virtual I/O Device (VIRTIO) Version 1.2, §5.4 Entropy Device.
 * Try it:     -object rng-builtin,id=rng0 -device virtio-rng-pci,rng=rng0
 *             (scripts/run --rng entropy)
 *
 * The device has one queue and no configuration and no feature bits (§5.4.3,
 * §5.4.4). A request is one device-writable buffer; the device fills some or
 * all of it with random bytes and says how many in the used length. A read
 * of any size is cut into requests of at most CHUNK bytes, up to SLOTS of
 * them in flight, straight into the caller's buffer (RAM is identity-mapped);
 * a request answered short is offered again for the bytes still missing.
 * The device is not trusted: a used length above the buffer is refused by
 * the queue (virtq_get_used() marks it broken), a device that goes silent is
 * reset after the caller's deadline; either way it is not used again.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "../kernel/kernel.h"
#include "../kernel/wait.h"
#include "virtio/virtio_dev.h"
#include "virtio_rng.h"

#define MAX_RNGS 4
/* Requests in flight at most (QEMU's queue has 8 descriptors) and the size
 * of one: big requests mean few round trips, and QEMU's rng-builtin fills
 * every buffer it has in one go. */
#define SLOTS 8
#define CHUNK (64u * 1024)

struct slot {
	uint8_t *p;   /* where the device writes */
	uint32_t len; /* how much it may write */
	bool busy;    /* offered to the device, not yet used */
};

struct virtio_rng {
	struct virtio_dev vd;
	struct virtq q;
	char name[8];
	bool broken;
	struct slot slots[SLOTS];
	uint16_t nslots;
	unsigned inflight;
	/* The read in progress: bytes [next, want) not yet offered, `got`
	 * received so far. */
	uint8_t *buf;
	size_t want, next, got;
	uint64_t total; /* bytes received since boot, for the log */
	struct wait_source source;
};

static struct virtio_rng rngs[MAX_RNGS];
static int nrngs;

/* The first device that still works. */
static struct virtio_rng *current(void)
{
	for (int i = 0; i < nrngs; i++)
		if (!rngs[i].broken)
			return &rngs[i];
	return NULL;
}

bool virtio_rng_available(void) { return current() != NULL; }

/* Stops a device for good: reset first, so that it no longer writes into
 * buffers it was given (they belong to the caller again when we return). */
static void abandon(struct virtio_rng *d, const char *why)
{
	if (d->broken)
		return;
	d->broken = true;
	bool reset = virtio_reset(&d->vd);
	klog("%s: %s; the device is reset and not used again", d->name, why);
	if (!reset)
		klog("%s: the device did not reset: it may still write to memory it was given", d->name);
	for (uint16_t i = 0; i < d->nslots; i++)
		d->slots[i].busy = false;
	d->inflight = 0;
}

/* Offers one request: [p, p + len) for the device to fill. */
static int offer(struct virtio_rng *d, struct slot *s, uint8_t *p, uint32_t len)
{
	struct virtq_buf b = {p, len};
	int err = virtq_add(&d->q, &b, 0, 1, s);
	if (err)
		return err;
	*s = (struct slot){.p = p, .len = len, .busy = true};
	d->inflight++;
	return 0;
}

/* Offers what the read still needs, as far as slots and descriptors go. */
static void refill(struct virtio_rng *d)
{
	bool added = false;
	for (uint16_t i = 0; i < d->nslots && d->next < d->want; i++) {
		struct slot *s = &d->slots[i];
		if (s->busy)
			continue;
		size_t left = d->want - d->next;
		uint32_t len = left < CHUNK ? (uint32_t)left : CHUNK;
		if (offer(d, s, d->buf + d->next, len) != 0)
			break; /* -ENOSPC: wait for a completion */
		d->next += len;
		added = true;
	}
	if (added)
		virtq_kick(&d->q);
}

/* The wait source's poll: takes what the device used, asks again for what
 * a short answer left out, and offers more of the read. */
static bool rng_poll(void *ctx)
{
	struct virtio_rng *d = ctx;
	bool any = false, again = false;
	void *cookie;
	uint32_t len;
	while (!d->broken && d->inflight) {
		int got = virtq_get_used(&d->q, &cookie, &len);
		if (got == 0)
			break;
		if (got < 0) {
			char why[96];
			ksnprintf(why, sizeof(why), "device broke the ring rules (%s)", virtq_broken_reason(&d->q));
			abandon(d, why);
			return true;
		}
		struct slot *s = cookie;
		/* virtq_get_used() has refused len > s->len already (it knows
		 * the chain's room); this is our own invariant. */
		kassert(s->busy && len <= s->len);
		s->busy = false;
		d->inflight--;
		d->got += len;
		d->total += len;
		any = true;
		/* §5.4.6: "The driver MUST examine the length written by the
		 * device to determine how many random bytes were received." */
		if (len < s->len) {
			if (offer(d, s, s->p + len, s->len - len) == 0)
				again = true;
			else /* cannot happen: this request's descriptor was just freed */
				abandon(d, "cannot offer a request again");
		}
	}
	if (!d->broken) {
		if (again)
			virtq_kick(&d->q);
		refill(d);
		if (!any && d->inflight)
			virtq_watchdog(&d->q, time_ns());
	}
	return any;
}

static bool rng_arm(void *ctx)
{
	struct virtio_rng *d = ctx;
	return !d->broken && virtq_enable_notify(&d->q);
}

static void rng_disarm(void *ctx)
{
	struct virtio_rng *d = ctx;
	if (!d->broken)
		virtq_disable_notify(&d->q);
}

/* Requests at the device: look within the watchdog's period, so a lost
 * notification costs a millisecond, not the read's silence deadline. */
static uint64_t rng_deadline(void *ctx)
{
	struct virtio_rng *d = ctx;
	return !d->broken && d->inflight ? time_ns() + VIRTQ_STALL_NS : WAIT_FOREVER;
}

static bool read_done(void *ctx)
{
	const struct virtio_rng *d = ctx;
	return d->broken || d->got >= d->want;
}

/* Progress since the caller last looked, or the end. */
struct progress {
	struct virtio_rng *d;
	size_t got;
};

static bool progressed(void *arg)
{
	const struct progress *p = arg;
	return read_done(p->d) || p->d->got != p->got;
}

ssize_t virtio_rng_read(void *buf, size_t n, uint64_t silence_ns)
{
	struct virtio_rng *d = current();
	if (!d)
		return -ENODEV;
	if (n == 0)
		return 0;
	if (n > SIZE_MAX / 2)
		return -EINVAL;    /* not representable in the return value */
	kassert(d->inflight == 0); /* one read at a time: no threads, and reads finish before they return */
	d->buf = buf;
	d->want = n;
	d->next = d->got = 0;
	refill(d);
	while (!read_done(d)) {
		struct progress p = {d, d->got};
		if (wait_until(progressed, &p, time_ns() + silence_ns) == -ETIMEDOUT && !progressed(&p)) {
			char why[64];
			ksnprintf(why, sizeof(why), "no random bytes for %lu ms",
			          (unsigned long)(silence_ns / 1000000));
			abandon(d, why);
			return -ETIMEDOUT;
		}
	}
	d->buf = NULL;
	return d->broken ? -EIO : (ssize_t)n;
}

int virtio_rng_probe(const struct virtio_dev *found, char *note, size_t note_len)
{
	int err;
	if (nrngs == MAX_RNGS)
		return -ENOSPC;
	struct virtio_rng *d = &rngs[nrngs];
	memset(d, 0, sizeof(*d));
	d->vd = *found;
	d->vd.name = "virtio-rng";

	/* §5.4.3: no device-specific feature bits; only the transport's. */
	if ((err = virtio_start(&d->vd, 0, 0)) != 0)
		return err;
	/* §5.4.2: "0 requestq". */
	if ((err = virtio_queue_init(&d->vd, &d->q, 0, SLOTS)) != 0) {
		virtio_fail(&d->vd, "cannot set up its request queue");
		return err;
	}
	d->nslots = d->q.size < SLOTS ? d->q.size : SLOTS;
	virtio_irq_setup(&d->vd, 1);
	virtio_ready(&d->vd);

	ksnprintf(d->name, sizeof(d->name), "rng%d", nrngs);
	/* With a wake-up interrupt the loop halts until the device answers;
	 * without one (arm NULL) the timer wakes it. */
	d->source = (struct wait_source){.name = d->name,
	                                 .poll = rng_poll,
	                                 .arm = d->vd.irq_vector ? rng_arm : NULL,
	                                 .disarm = rng_disarm,
	                                 .deadline = rng_deadline,
	                                 .ctx = d};
	wait_add_source(&d->source);
	ksnprintf(note, note_len, "%s queue %u%s, %s", d->name, d->q.size, d->vd.modern ? "" : " (legacy)", d->vd.wake);
	nrngs++;
	return 0;
}
