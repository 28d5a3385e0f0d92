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
 * How long an idle loop polls before it halts: a window between SPIN_MIN_NS and SPIN_MAX_NS
 * that sizes itself, as KVM's halt polling does. A halt that ended soon after it began says a
 * longer spin would have caught the work without the halt and the interrupt (tens of
 * microseconds under TCG): the window doubles. A long halt says spinning would have been
 * wasted: it halves. So an exchange of requests and answers (a UDP echo, a disk at QD1) is
 * caught spinning, and a guest that waits long spins only the minimum before each halt.
 *
 * One trap: when QEMU's device model shares the guest's host core (bench --host-cpus 0) the
 * answer comes only once the guest halts and gives QEMU the core, so every halt is short and
 * every longer spin only delays the answer further. The sign: the window grew, yet the halt
 * after it did not get shorter by about as much. Then the window drops to nothing (halt at
 * once, as Linux does) and stays there for SPIN_HOLD halts before it may grow again.
 */
#define SPIN_MIN_NS 10000ull
#define SPIN_MAX_NS 160000ull
#define SPIN_HOLD   64

static struct {
	uint64_t ns;      /* the window */
	uint64_t grew_by; /* the last halt's change to it, if it grew; else 0 */
	uint64_t last_ns; /* how long the last halt lasted */
	unsigned hold;    /* halts to wait before growing again */
} spin = {.ns = SPIN_MIN_NS};

/* After a halt that lasted halted_ns, which followed a spin of spin.ns. */
static void spin_adapt(uint64_t halted_ns)
{
	uint64_t grew_by = spin.grew_by;
	spin.grew_by = 0;
	if (grew_by && halted_ns + grew_by / 2 > spin.last_ns) {
		spin.ns = 0; /* the answer waited for our halt, not for time: halt at once */
		spin.hold = SPIN_HOLD;
	} else if (spin.hold) {
		spin.hold--;
	} else if (spin.ns + halted_ns < SPIN_MAX_NS) {
		uint64_t ns = !spin.ns ? SPIN_MIN_NS : spin.ns * 2 < SPIN_MAX_NS ? spin.ns * 2 : SPIN_MAX_NS;
		spin.grew_by = ns - spin.ns;
		spin.ns = ns;
	} else {
		spin.ns = spin.ns / 2 > SPIN_MIN_NS ? spin.ns / 2 : SPIN_MIN_NS;
	}
	spin.last_ns = halted_ns;
}

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
		if (now - idle_since < spin.ns || kopt.idle_poll)
			continue; /* idle=poll: never halt, for as long as the wait lasts */
		/* Nothing for a while: arm, check once more (arm_all() does),
		 * halt until a wake-up or the next deadline. */
		bool halt = arm_all();
		if (halt)
			time_idle(next_deadline(now, deadline_ns));
		disarm_all();
		idle_since = time_ns();
		if (halt)
			spin_adapt(idle_since - now);
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
