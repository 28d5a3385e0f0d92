/*
 * kernel/time.c: clocks and waiting.
 *
 * The clock is the TSC, counted from the reading boot/entry.S took at entry.
 * Its rate is measured once against the 8254 PIT (1.193182 MHz, the same on
 * every PC), channel 2, read back by latching its count (see cal_pit()).
 * Without a PIT the CPU may say its
 * TSC rate (CPUID 0x15/0x16, or the hypervisor leaf 0x40000010).
 *
 * Waiting must not burn a host CPU: time_idle() programs the local APIC
 * timer for the next deadline and halts until it fires or a device's
 * wake-up interrupt comes (kernel/wait.c decides when to call it).
 *
 * Implements: Intel 8254 PIT datasheet (modes 0 and 2, read-back by latch),
 *             Intel SDM vol. 3A §10.5.4 (APIC timer), §17.17 (TSC).
 */
#include <stdint.h>

#include "io.h"
#include "irq.h"
#include "kernel.h"
#include "wait.h"

#define PIT_HZ  1193182ull
#define PIT_CH0 0x40
#define PIT_CH2 0x42
#define PIT_CMD 0x43
#define PORT_61 0x61 /* bit 0: channel 2 gate, bit 1: speaker, bit 5: OUT2 */

#define LAPIC_ID         0x020
#define LAPIC_EOI        0x0b0
#define LAPIC_SVR        0x0f0
#define LAPIC_LVT_TIMER  0x320
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR  0x390
#define LAPIC_TIMER_DIV  0x3e0
#define MSR_APIC_BASE    0x1b

static uint64_t tsc_hz;
static uint64_t tsc_mult; /* ns = ticks * tsc_mult >> 32 (up to ~4 GHz) */
static const char *tsc_source = "none";
static volatile uint32_t *lapic;
static uint64_t lapic_hz;
static uint64_t realtime_at_boot_ns;

/* The application tick (time_tick_set()). */
static void (*tick_fn)(void);
static uint64_t tick_period_ns;
static uint32_t tick_count; /* APIC timer counts per period */
static bool tick_on;
static bool in_idle; /* time_idle() owns the timer */

/* 0.5 ms of PIT ticks: with each reading timed at its midpoint this gives
 * the rate within about 0.1%, and boot time matters. */
#define CAL_TICKS 597

/* ---- the local APIC timer: a wake-up for hlt --------------------------- */

static uint32_t lapic_read(uint32_t reg) { return lapic[reg / 4]; }
static void lapic_write(uint32_t reg, uint32_t v) { lapic[reg / 4] = v; }

void lapic_eoi(void)
{
	if (lapic)
		lapic_write(LAPIC_EOI, 0);
}

uint32_t lapic_id(void) { return lapic ? lapic_read(LAPIC_ID) >> 24 : 0; }

/*
 * Starts the APIC timer counting down from the top, so time_init() can
 * measure its rate in the same PIT window as the TSC's. At this point the
 * boot page tables (or the UEFI loader's) identity-map the APIC's page.
 */
static void lapic_start(void)
{
	uint64_t base = rdmsr(MSR_APIC_BASE);
	wrmsr(MSR_APIC_BASE, base | (1 << 11)); /* globally enabled */
	lapic = (volatile uint32_t *)(uintptr_t)(base & ~0xfffull);
	lapic_write(LAPIC_SVR, 0x100 | SPURIOUS_VECTOR); /* software enable */
	lapic_write(LAPIC_TIMER_DIV, 0xb);               /* divide by 1 */
	lapic_write(LAPIC_LVT_TIMER, 1 << 16);           /* masked while measuring */
	lapic_write(LAPIC_TIMER_INIT, 0xffffffff);
}

static uint16_t pit_read_ch2(void)
{
	outb(PIT_CMD, 0x80); /* latch channel 2's count */
	uint8_t lo = inb(PIT_CH2);
	return lo | (uint16_t)inb(PIT_CH2) << 8;
}

/* A PIT reading and the TSC at its middle: a latched read is three port
 * accesses, each slow under emulation, so the midpoint is what matches. */
static uint16_t pit_read_at(uint64_t *tsc)
{
	uint64_t a = rdtsc();
	uint16_t v = pit_read_ch2();
	*tsc = a + (rdtsc() - a) / 2;
	return v;
}

/*
 * TSC ticks during CAL_TICKS PIT ticks, or 0 without a PIT. Channel 2 counts
 * only while its gate (port 0x61 bit 0) is high; where port 0x61 exists we
 * raise it (and keep the speaker off). microvm has no port 0x61, and QEMU's
 * channel 2 counts there anyway. The count is read back by latching rather
 * than by watching OUT2 in port 0x61: under QEMU's TCG that bit was seen to
 * rise several times too late.
 */
static uint64_t cal_pit(uint32_t *lapic_ticks)
{
	uint8_t p61 = inb(PORT_61);
	bool have_61 = p61 != 0xff;
	if (have_61)
		outb(PORT_61, (p61 & ~0x02) | 0x01);
	outb(PIT_CMD, 0xb4); /* channel 2, lobyte/hibyte, mode 2 (rate generator) */
	outb(PIT_CH2, 0xff);
	outb(PIT_CH2, 0xff);
	uint64_t t0, t1;
	uint16_t first = pit_read_at(&t0), start;
	/* Start on a tick boundary: wait for the count to change once. */
	for (uint32_t i = 0; (start = pit_read_at(&t0)) == first; i++)
		if (i > 100000)
			return 0; /* the counter does not move: no PIT */
	uint32_t apic0 = lapic_read(LAPIC_TIMER_CUR);
	for (;;) {
		uint16_t now = pit_read_at(&t1);
		if ((uint16_t)(start - now) >= CAL_TICKS) {
			uint32_t apic1 = lapic_read(LAPIC_TIMER_CUR);
			if (have_61)
				outb(PORT_61, p61);
			/* Scale to exactly CAL_TICKS PIT ticks. */
			uint16_t ticks = (uint16_t)(start - now);
			*lapic_ticks = (uint32_t)((uint64_t)(apic0 - apic1) * CAL_TICKS / ticks);
			return (t1 - t0) * CAL_TICKS / ticks;
		}
	}
}

static void set_rate(uint64_t hz, const char *source)
{
	tsc_hz = hz;
	tsc_mult = (1000000000ull << 32) / hz;
	tsc_source = source;
}

static uint64_t bcd(uint8_t v, bool binary) { return binary ? v : (v & 15) + (v >> 4) * 10; }

static uint8_t cmos(uint8_t reg)
{
	outb(0x70, reg);
	return inb(0x71);
}

/* Wall-clock time from the CMOS RTC, once; 0 when there is no RTC. */
static uint64_t rtc_read_ns(void)
{
	if (cmos(0x0b) == 0xff)
		return 0;
	for (int i = 0; i < 100000 && (cmos(0x0a) & 0x80); i++)
		cpu_relax(); /* an update is in progress */
	bool binary = cmos(0x0b) & 0x04;
	uint64_t s = bcd(cmos(0x00), binary), m = bcd(cmos(0x02), binary), h = bcd(cmos(0x04), binary);
	uint64_t d = bcd(cmos(0x07), binary), mo = bcd(cmos(0x08), binary), y = bcd(cmos(0x09), binary);
	y += y < 70 ? 2000 : 1900;
	if (mo < 1 || mo > 12 || d < 1 || d > 31)
		return 0;
	/* Days since 1970-01-01 (civil-from-days, Howard Hinnant's method). */
	uint64_t yy = y - (mo <= 2);
	uint64_t era = yy / 400, yoe = yy - era * 400;
	uint64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	uint64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	uint64_t days = era * 146097 + doe - 719468;
	return ((days * 24 + h) * 3600 + m * 60 + s) * 1000000000ull;
}

void time_init(void)
{
	uint64_t ticks = 0;
	uint32_t lapic_ticks = 0;
	lapic_start();
	if ((ticks = cal_pit(&lapic_ticks)) != 0) {
		set_rate(ticks * PIT_HZ / CAL_TICKS, "PIT channel 2");
		lapic_hz = (uint64_t)lapic_ticks * PIT_HZ / CAL_TICKS;
	} else {
		uint32_t r[4];
		cpuid(0, 0, r);
		uint32_t max = r[0];
		if (max >= 0x15) {
			cpuid(0x15, 0, r); /* TSC/crystal ratio and crystal Hz */
			if (r[0] && r[1] && r[2])
				set_rate((uint64_t)r[2] * r[1] / r[0], "CPUID 0x15");
		}
		if (!tsc_hz && max >= 0x16) {
			cpuid(0x16, 0, r); /* base MHz */
			if (r[0])
				set_rate((uint64_t)r[0] * 1000000, "CPUID 0x16");
		}
		if (!tsc_hz) {
			cpuid(0x40000000, 0, r);
			if (r[0] >= 0x40000010) {
				cpuid(0x40000010, 0, r); /* TSC kHz */
				if (r[0])
					set_rate((uint64_t)r[0] * 1000, "hypervisor CPUID leaf");
			}
		}
		if (!tsc_hz)
			set_rate(2000000000ull, "a guess (no PIT, no CPUID leaf): times are wrong");
		/* No PIT window to measure the APIC timer in: use the TSC, over
		 * 100 us, so that waits can still halt. */
		uint32_t a0 = lapic_read(LAPIC_TIMER_CUR);
		uint64_t t0 = rdtsc(), span = tsc_hz / 10000;
		while (rdtsc() - t0 < span)
			cpu_relax();
		lapic_hz = (uint64_t)(a0 - lapic_read(LAPIC_TIMER_CUR)) * 10000;
	}
	realtime_at_boot_ns = rtc_read_ns();
}

uint64_t time_ns(void)
{
	if (!tsc_hz)
		return 0;
	uint64_t d = rdtsc() - boot_tsc;
	return (uint64_t)(((unsigned __int128)d * tsc_mult) >> 32);
}

uint64_t time_realtime_ns(void)
{
	/* The RTC was read some time after entry; close enough for a clock
	 * that counts seconds. */
	return realtime_at_boot_ns + time_ns();
}

/*
 * The IOAPIC routes device interrupt lines to vectors. Every line starts
 * masked: firmware may have left some routed (OVMF's timer, say). Drivers
 * unmask the ones their wake-ups use (kernel/irq.c).
 * Implements: Intel 82093AA IOAPIC datasheet, §3.2 (IOREGSEL/IOWIN, IOREDTBL).
 */
#define IOAPIC_BASE 0xfec00000ull
static void ioapic_mask_all(void)
{
	volatile uint32_t *io = (volatile uint32_t *)mmio_map(IOAPIC_BASE, PAGE_SIZE);
	if (!io)
		return; /* mmio_map() said why; nothing routed can reach us unmapped either */
	io[0] = 1;      /* IOAPICVER */
	uint32_t ver = io[4];
	if (ver == 0xffffffff)
		return; /* no IOAPIC here */
	unsigned entries = ((ver >> 16) & 0xff) + 1;
	for (unsigned i = 0; i < entries; i++) {
		io[0] = 0x10 + 2 * i;       /* low half of redirection entry i */
		io[4] = io[4] | (1u << 16); /* mask */
	}
}

/* Once the kernel's page tables are in: the APIC's page mapped uncached,
 * its timer armed as a one-shot wake-up, the IOAPIC quiet. */
void time_lapic_init(void)
{
	ioapic_mask_all();
	lapic = (volatile uint32_t *)mmio_map((uintptr_t)lapic, PAGE_SIZE);
	if (!lapic) {
		/* The memory map calls the APIC's page RAM: a broken platform.
		 * Waits then spin instead of halting (time_idle() checks lapic_hz). */
		lapic_hz = 0;
		klog("time: TSC %lu MHz (%s), no APIC timer: idle waits will spin", tsc_hz / 1000000, tsc_source);
		return;
	}
	lapic_write(LAPIC_TIMER_INIT, 0);
	lapic_write(LAPIC_LVT_TIMER, TIMER_VECTOR); /* one-shot, unmasked */
	klog("time: TSC %lu MHz (%s), APIC timer %lu MHz", tsc_hz / 1000000, tsc_source, lapic_hz / 1000000);
}

void time_idle(uint64_t deadline_ns)
{
	uint64_t now = time_ns();
	if (deadline_ns <= now)
		return;
	uint64_t wait = deadline_ns - now;
	/* Short waits spin: a halt and wake-up costs more than they last. */
	if (wait < 20000 || !lapic_hz) {
		for (int i = 0; i < 64 && time_ns() < deadline_ns; i++)
			cpu_relax();
		return;
	}
	if (wait > 1000000000)
		wait = 1000000000; /* the caller (the wait loop) looks again at least once a second */
	uint64_t count = wait * lapic_hz / 1000000000ull;
	in_idle = true;
	lapic_write(LAPIC_TIMER_INIT, count > 0xffffffff ? 0xffffffff : (count ? (uint32_t)count : 1));
	irq_enable_and_halt();
	/* Stopped, or back to the application tick's period. */
	lapic_write(LAPIC_TIMER_INIT, tick_on ? tick_count : 0);
	in_idle = false;
}

void time_tick_set(void (*fn)(void), uint64_t period_ns)
{
	tick_fn = fn;
	tick_period_ns = period_ns;
}

void time_tick_begin(void)
{
	if (!tick_fn || !lapic || !lapic_hz)
		return; /* no tick wanted, or no timer: the application runs with interrupts off */
	uint64_t count = tick_period_ns * lapic_hz / 1000000000ull;
	tick_count = count > 0xffffffff ? 0xffffffff : (count ? (uint32_t)count : 1);
	tick_on = true;
	lapic_write(LAPIC_TIMER_INIT, tick_count);
	kdebug("time: application tick every %lu us", (unsigned long)(tick_period_ns / 1000));
	irq_enable();
}

/*
 * The APIC timer fired. In time_idle() it only ends the halt (the wait
 * loop then polls every source itself). Otherwise it is the application
 * tick: it interrupted the application or kernel code the application
 * called with interrupts on, never the wait loop or the page allocator
 * (they run with interrupts off); the tick function fences off the rest.
 * The timer is one-shot, re-armed after the work, so a slow tick function
 * cannot pile up interrupts.
 */
void time_timer_interrupt(void)
{
	lapic_eoi();
	if (!tick_on || in_idle)
		return;
	tick_fn();
	lapic_write(LAPIC_TIMER_INIT, tick_count);
}

void time_sleep_ns(uint64_t ns) { wait_until(NULL, NULL, time_ns() + ns); }
