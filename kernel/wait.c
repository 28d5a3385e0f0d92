/*
 * kernel/wait.c: the one wait loop (see wait.h and docs/wait.md).
 *
 * A pass polls every source. While passes find work the loop keeps going
 * with notifications off: polling is what finds the work. When a pass finds
 * nothing it spins a little longer (a completion that comes within
 * microseconds is cheaper to catch spinning than through a halt and an
 * interrupt), then asks each source to arm its wake-up, and halts
 * (`sti; hlt`) until an interrupt or the nearest deadline. An arm that
 * finds work already there means "do not halt": polling goes on. A
 * completion between the arm and the `hlt` is not lost: the interrupt stays
 * pending until `sti` lets it in, and `hlt` then returns at once.
 *
 * The kernel option idle=poll (Linux's name for the same) keeps the loop
 * polling for the whole wait: no arm, no halt, a host CPU busy throughout.
 * Deadlines still end waits (each pass checks the clock). It is the awake
 * control bench/net-latency measures the halting loop against, and a trade
 * of a host CPU for latency where that CPU is free.
 */
#include <errno.h>

#include "io.h"
#include "kernel.h"
#include "wait.h"

/*
 * How long an idle loop polls before it halts. Short: under TCG one poll
 * costs microseconds, and when QEMU's device model shares the guest's host
 * core (bench --host-cpus 0), every spin steals the time the device needs
 * to answer. Linux halts at once; a little spinning pays only when the
 * device runs on another core. Measured with bench/blk's blk-rand and
 * --host-cpus 0 (2026-12): 0, 10, 50 and 200 us were all 2-3.5x Linux at
 * QD1 and QD32, within this host's noise of each other.
 */
#define SPIN_NS 10000ull

/* A source without a wake-up interrupt (arm NULL) is polled at least this
 * often while the loop halts. */
#define TICK_NS 10000000ull

static struct wait_source *sources;
static bool any_unarmed; /* a source without an interrupt is registered */

void wait_add_source(struct wait_source *s)
{
	struct wait_source **p = &sources;
	while (*p)
		p = &(*p)->next;
	s->next = NULL;
	*p = s;
	if (!s->arm)
		any_unarmed = true;
}

bool wait_poll(void)
{
	bool any = false;
	for (struct wait_source *s = sources; s; s = s->next)
		any |= s->poll(s->ctx);
	return any;
}

/* The earliest deadline a source or the caller has. */
static uint64_t next_deadline(uint64_t now, uint64_t deadline_ns)
{
	if (any_unarmed && now + TICK_NS < deadline_ns)
		deadline_ns = now + TICK_NS;
	for (struct wait_source *s = sources; s; s = s->next) {
		uint64_t d = s->deadline ? s->deadline(s->ctx) : WAIT_FOREVER;
		if (d < deadline_ns)
			deadline_ns = d;
	}
	return deadline_ns;
}

/* Arms every source; false when one already has work (then do not halt). */
static bool arm_all(void)
{
	bool quiet = true;
	for (struct wait_source *s = sources; s; s = s->next)
		if (s->arm && s->arm(s->ctx))
			quiet = false;
	return quiet;
}

static void disarm_all(void)
{
	for (struct wait_source *s = sources; s; s = s->next)
		if (s->disarm)
			s->disarm(s->ctx);
}

static int wait_loop(bool (*cond)(void *arg), void *arg, uint64_t deadline_ns)
{
	uint64_t idle_since = time_ns();
	for (;;) {
		if (cond && cond(arg))
			return 0;
		uint64_t now = time_ns();
		if (now >= deadline_ns)
			return -ETIMEDOUT;
		if (wait_poll()) {
			idle_since = now;
			continue;
		}
		if (now - idle_since < SPIN_NS || kopt.idle_poll)
			continue; /* idle=poll: never halt, for as long as the wait lasts */
		/* Nothing for a while: arm, check once more (arm_all() does),
		 * halt until a wake-up or the next deadline. */
		if (arm_all())
			time_idle(next_deadline(now, deadline_ns));
		disarm_all();
		idle_since = time_ns();
	}
}

/* The loop runs with interrupts off, whatever its caller had (the
 * application may run with them on, kernel/time.c's tick): the arm, check,
 * `sti; hlt` sequence would lose a wake-up taken between the check and the
 * halt, and sources' polls must not meet the tick's work half-done. */
int wait_until(bool (*cond)(void *arg), void *arg, uint64_t deadline_ns)
{
	uint64_t flags = irq_save();
	int r = wait_loop(cond, arg, deadline_ns);
	irq_restore(flags);
	return r;
}
