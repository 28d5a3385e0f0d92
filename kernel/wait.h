/*
 * kernel/wait.h: the one wait loop (DESIGN.md, "Polling model").
 *
 * Every call that blocks (a socket call, poll(), a block request, nanosleep,
 * a console read) waits here and nowhere else. The loop polls every
 * registered source (each device's used rings, lwIP's timers, the balloon),
 * returns as soon as the caller's condition holds or its deadline passes,
 * and when nothing is happening gives the host CPU back: it spins only as
 * long as that pays, then arms the sources' wake-up notifications, checks
 * once more and halts until a device interrupt or the next timer deadline.
 *
 *	static bool done(void *arg) { return ((struct blk_request *)arg)->status != -EINPROGRESS; }
 *	int err = wait_until(done, &req, time_ns() + 30 * NSEC_PER_SEC);  // 0 or -ETIMEDOUT
 *
 * Sources are drivers and kernel services; they register once at start-up.
 * A source's functions run only from the loop (never from an interrupt
 * handler), one at a time, so they need no locks.
 */
#ifndef RINGLET_WAIT_H
#define RINGLET_WAIT_H

#include <stdbool.h>
#include <stdint.h>

#define NSEC_PER_SEC 1000000000ull
#define WAIT_FOREVER UINT64_MAX

struct wait_source {
	const char *name; /* for the debug log: "vda", "eth0", "lwip timers" */
	/* Finds and does work that is ready (completions, received frames,
	 * expired timers), or finds work its waiters will do themselves in
	 * their cond (a disk's new completions). Returns true when there was
	 * any: the loop then stays awake. Keep it cheap: it runs in every pass. */
	bool (*poll)(void *ctx);
	/* Just before the loop halts: turn the source's wake-up notifications
	 * on (virtq_enable_notify()) and return true when work arrived
	 * meanwhile, so the loop polls again instead of halting. NULL: the
	 * source has no interrupt; the loop then halts at most 10 ms at a time
	 * (or less, through deadline()). */
	bool (*arm)(void *ctx);
	/* After a halt, and whenever the loop is busy: notifications off. */
	void (*disarm)(void *ctx);
	/* The time (time_ns() clock) by which poll() wants to run again, e.g.
	 * lwIP's next timer; WAIT_FOREVER for none. NULL: none. */
	uint64_t (*deadline)(void *ctx);
	void *ctx;
	struct wait_source *next; /* private to wait.c */
};

/* Adds a source; called once per source at start-up. */
void wait_add_source(struct wait_source *s);

/* One pass over every source without waiting; true when any did work. */
bool wait_poll(void);

/* Waits until cond(arg) is true (checked before the first poll and after
 * every pass) or deadline_ns (time_ns() clock; WAIT_FOREVER) passes.
 * cond NULL: only the deadline. Returns 0, or -ETIMEDOUT at the deadline
 * with cond still false. */
int wait_until(bool (*cond)(void *arg), void *arg, uint64_t deadline_ns);

#endif
