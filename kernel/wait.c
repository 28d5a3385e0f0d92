/*
 * kernel/wait.c: the one wait loop (see wait.h).
 *
 * A pass polls every source. While passes find work the loop keeps going;
 * when they stop finding it, it spins a little longer (completions usually
 * come within microseconds, and a halt and wake-up cost more than that),
 * then asks each source to arm its wake-up, polls once more, and halts
 * until an interrupt or the nearest deadline (time_idle()).
 */
#include <errno.h>

#include "kernel.h"
#include "wait.h"

/* How long an idle loop polls before it halts. */
#define SPIN_NS 200000ull

static struct wait_source *sources;

void wait_add_source(struct wait_source *s)
{
	struct wait_source **p = &sources;
	while (*p)
		p = &(*p)->next;
	s->next = NULL;
	*p = s;
}

bool wait_poll(void)
{
	bool any = false;
	for (struct wait_source *s = sources; s; s = s->next)
		any |= s->poll(s->ctx);
	return any;
}

/* The earliest deadline a source or the caller has. */
static uint64_t next_deadline(uint64_t deadline_ns)
{
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

int wait_until(bool (*cond)(void *arg), void *arg, uint64_t deadline_ns)
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
		if (now - idle_since < SPIN_NS)
			continue;
		/* Nothing for a while: halt until a wake-up or the next deadline. */
		if (arm_all())
			time_idle(next_deadline(deadline_ns));
		disarm_all();
		idle_since = time_ns();
	}
}
