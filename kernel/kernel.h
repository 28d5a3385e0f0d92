/*
 * kernel/kernel.h: what the kernel core offers the rest of the kernel and the
 * drivers: start-up and exit, the console and log, memory, time.
 */
#ifndef RINGLET_KERNEL_H
#define RINGLET_KERNEL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct boot_info;

#define PAGE_SIZE        4096ul
#define ALIGN_UP(x, a)   (((x) + (a)-1) & ~((__typeof__(x))(a)-1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a)-1))
#define ARRAY_SIZE(a)    (sizeof(a) / sizeof((a)[0]))

/* Exit status the kernel uses for a panic or a CPU exception. Statuses
 * 0..127 round-trip through QEMU's isa-debug-exit; see kernel/exit.c. */
#define EXIT_PANIC 127

/* ---- start-up and exit (kernel/main.c, kernel/exit.c) ------------------ */
_Noreturn void kernel_main(struct boot_info *bi);
_Noreturn void kernel_early_fail(const char *msg);
_Noreturn void kernel_exit(int status);
_Noreturn void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A broken invariant of ours: stop loudly (tier 2 of DESIGN.md's errors). */
#define kassert(cond)                                                                                                  \
	do {                                                                                                           \
		if (!(cond))                                                                                           \
			panic("assertion failed: %s (%s:%d)", #cond, __FILE__, __LINE__);                              \
	} while (0)

/* One virtio-mmio device a monitor without ACPI describes on the command
 * line, Linux's `virtio_mmio.device=SIZE@BASE:IRQ[:ID]` (SIZE with K/M/G,
 * BASE and IRQ decimal or 0x-hex; QEMU's microvm with acpi=off appends
 * `virtio_mmio.device=512@0xfeb00e00:12`). */
struct cmdline_virtio_mmio {
	uint64_t base, size;
	uint32_t irq;
	int32_t id; /* -1 when not given */
};

/* Kernel options from the command line (before `--`). */
struct kernel_options {
	bool quiet;          /* quiet: no kernel log lines, only the app's output */
	bool debug;          /* debug: more log lines */
	size_t stack_size;   /* stack=SIZE: the application's stack */
	unsigned net_wait_s; /* netwait=SECONDS: how long main() waits for DHCP (0: not at all) */
	/* Static network configuration (kernel/net/net.c); NULL: ask DHCP. */
	const char *net_ip;  /* ip=10.0.2.15/24[,eth1's,...]: "dhcp" for one that asks */
	const char *net_gw;  /* gw=10.0.2.2 */
	const char *net_dns; /* dns=10.0.2.3 */
	const char *mount;   /* mount=/www:vda[,DIR:DISK...]: tar disks to mount (kernel/fs.c) */
	/* virtio_mmio.device=...: virtio-mmio devices the command line names,
	 * wherever they stand in it (drivers/drivers.c probes them) */
	struct cmdline_virtio_mmio virtio_mmio[32]; /* microvm has 24 slots */
	int nvirtio_mmio;
	bool hold;      /* hold: at exit, keep the guest (and its screen) up instead of powering off */
	bool idle_poll; /* idle=poll: the wait loop never halts, it polls (kernel/wait.c; burns a host CPU) */
};
extern struct kernel_options kopt;

/* ---- console and log (kernel/console.c) -------------------------------- */
void console_init(void);
void console_write(const char *s, size_t n);
/* Reads up to n bytes typed on the serial line or a virtio keyboard, or
 * on the virtio console port when it is the console; waits for at least one. */
size_t console_read(char *buf, size_t n);
/* Whether a typed byte waits to be read (poll()'s POLLIN on descriptor 0). */
bool console_rx_ready(void);
/* console=serial|uart|gpu|virtio, or several ("gpu,serial"): true when v is one of those. */
bool console_option(const char *v);
/* After drivers_init(): the screen takes its share of the console. */
void console_start_gpu(void);
/* The devices are probed: with console=virtio and no port, the UART takes
 * over (and gets what was held back for the port). */
void console_devices_done(void);
/* Sends what the console holds back (virtio-console batches). */
void console_flush(void);
/* At exit: flush, and give the devices up to 100 ms to take every byte. */
void console_drain(void);
/* main() is about to run: the boot log is complete (sent, and its cost
 * logged with `debug`); from now on each write is sent at once. */
void console_boot_done(void);
/* kernel/fbcon.c: the console on the screen. */
bool fbcon_init(void);
void fbcon_write(const char *s, size_t n);
void fbcon_early(const char *s, size_t n);
/* The log kept for the screen (and forgets it): for serial, when there is no screen after all. */
size_t fbcon_early_take(const char **p);
int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int ksnprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Raw output, no prefix. */
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* One log line: "[   0.001234] text\n" (seconds since entry). */
void klog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define kdebug(...)                                                                                                    \
	do {                                                                                                           \
		if (kopt.debug)                                                                                        \
			klog(__VA_ARGS__);                                                                             \
	} while (0)

/* ---- CPU (kernel/cpu.c, kernel/trap.c) --------------------------------- */
void cpu_init(void);
void trap_init(void);
/* Prints "Backtrace:" and the return addresses found from frame pointer rbp
 * on; backtrace_print_from() prints just the frames, numbered from depth. */
void backtrace_print(uintptr_t rbp);
void backtrace_print_from(uintptr_t rbp, int depth);
void cpu_ist_guards(uintptr_t guards[3]);
/* The interrupt vectors in use: the LAPIC timer (a wake-up from hlt) and
 * the LAPIC's spurious vector. */
#define TIMER_VECTOR    0x30
#define SPURIOUS_VECTOR 0xff
void lapic_eoi(void);
/* "name+0x12" for a code address, from the symbol table made at link time. */
const char *symbol_name(uintptr_t addr, uintptr_t *offset);

/* ---- memory (kernel/pmem.c, kernel/paging.c, kernel/heap.c) ------------ */
void pmem_init(const struct boot_info *bi);
/* n contiguous zeroed pages, identity mapped (address == physical), or NULL. */
void *page_alloc(size_t npages);
void page_free(void *p, size_t npages);
/* Takes the given free pages for the caller (the heap grows this way). */
int pmem_claim(uintptr_t addr, size_t npages);
size_t pmem_total_pages(void);
uintptr_t pmem_top(void); /* end of the highest usable RAM */
/* The largest free run of pages at boot: where the heap grows. */
void pmem_largest_free(uintptr_t *start, uintptr_t *end);
size_t pmem_free_pages(void);
/* How many of the n pages from addr are not free (or not RAM). */
size_t pmem_taken_in(uintptr_t addr, size_t n);
/* For the balloon: up to n free pages (not zeroed), highest first, as page
 * frame numbers; returns how many. pmem_give() takes them back. */
size_t pmem_take(uint32_t *pfns, size_t n);
void pmem_give(const uint32_t *pfns, size_t n);
/* Called when page_alloc() cannot find n pages; returns pages it freed. */
void pmem_set_oom_hook(size_t (*hook)(size_t npages));
/* Free page reporting: a free, aligned block of PMEM_REPORT_PAGES pages not
 * reported since it was last used, taken (address), or 0 when there is
 * none; pmem_report_done() frees it again and remembers it was reported. */
#define PMEM_REPORT_PAGES 512 /* 2 MiB */
uintptr_t pmem_report_take(void);
void pmem_report_done(uintptr_t addr);

void paging_init(const struct boot_info *bi);
/* Maps device registers uncached (identity); returns the address to use, or
 * NULL (with a log line) when [phys, phys+len) is not surely device space:
 * RAM the memory map lists, the first MiB, the kernel image, beyond the
 * CPU's address width. Every caller copes with NULL. */
volatile void *mmio_map(uint64_t phys, size_t len);
/* Why mmio_map() would refuse the range (a few words), or NULL if it would
 * not; then *past (if not NULL) is the first address after what refused it. */
const char *mmio_refusal(uint64_t phys, uint64_t len, uint64_t *past);
/* Makes one page fault on any access (guard pages). */
void paging_unmap_page(uintptr_t va);
bool paging_is_mapped(uintptr_t va);
/* A stack of `bytes` with an unmapped guard page below; returns its top. */
uintptr_t stack_alloc(size_t bytes, const char *name);
/* Names the stack whose guard page holds addr, or NULL. */
const char *stack_guard_name(uintptr_t addr);

void heap_init(void);
size_t heap_max_bytes(void);     /* how far the break may move */
size_t heap_claimed_bytes(void); /* pages the heap holds now, in bytes */
/* Called when the break cannot move up because a page is taken; returns
 * pages it freed (the balloon's deflate-on-OOM). */
void heap_set_oom_hook(size_t (*hook)(size_t npages));

/* ---- time (kernel/time.c) ---------------------------------------------- */
extern uint64_t boot_tsc; /* TSC at entry (boot/entry.S) */
void time_init(void);
uint64_t time_ns(void);          /* nanoseconds since entry */
uint64_t time_realtime_ns(void); /* nanoseconds since 1970, from the RTC at boot */
void time_sleep_ns(uint64_t ns); /* waits in the wait loop (kernel/wait.h) */
/* The wait loop's halt: `sti; hlt` until a device interrupt or deadline_ns
 * (time_ns() clock; at most a second ahead); a deadline under 20 us away is
 * spun out instead. Only kernel/wait.c should call this. */
void time_idle(uint64_t deadline_ns);
void time_lapic_init(void);
/*
 * The application tick: fn runs every period_ns from the APIC timer
 * interrupt while the application computes, so that a driver (the balloon)
 * follows its device even when nothing waits in the loop. Registered at
 * start-up; time_tick_begin() (just before main) turns interrupts on for
 * the application when a tick is registered, and only then. fn runs in
 * interrupt context with interrupts off: it must only touch state whose
 * other users either run with interrupts off (the page allocator, the wait
 * loop) or are fenced by fn's own busy flag.
 */
void time_tick_set(void (*fn)(void), uint64_t period_ns);
void time_tick_begin(void);
void time_timer_interrupt(void); /* trap.c: TIMER_VECTOR */

/* ---- ACPI (kernel/acpi.c) ---------------------------------------------- */
void acpi_init(uint64_t rsdp);
/* Powers off through the FADT's PM1 control registers; returns on failure. */
void acpi_poweroff(void);
/* The memory-mapped PCI configuration space of segment 0 (from MCFG). */
bool acpi_mcfg(uint64_t *base, uint8_t *bus_end);
/* The I/O port blocks the FADT names (SMI command, PM1a/b event and control,
 * PM2 control, PM timer, GPE0/1), as [first port, length]; returns how many. */
int acpi_fixed_ports(uint32_t (*blocks)[2], int max);
/* The virtio-mmio register blocks the DSDT lists; returns how many. */
int acpi_virtio_mmio(uint64_t *bases, int max);

/* ---- command line (kernel/cmdline.c) ------------------------------------ */
/* Splits s in place into at most max words, shell-like: white space
 * separates; "..." groups with backslash escapes inside; '...' groups
 * literally; a backslash outside quotes escapes the next character.
 * Returns the number of words; *err is set to a message for malformed input
 * (an unterminated quote, too many words) and NULL otherwise. */
int cmdline_split(char *s, char **words, int max, const char **err);
/* Parses "123", "0x1f", "64K", "16M", "1G" into *out; returns 0 or -1. */
int cmdline_parse_size(const char *s, uint64_t *out);
/* Parses the value after `virtio_mmio.device=`; 0, or -1 with *why saying
 * what is wrong (bad size, base, IRQ, ID, trailing junk). */
int cmdline_virtio_mmio(const char *s, struct cmdline_virtio_mmio *out, const char **why);

#endif
