/*
 * kernel/main.c: the kernel's start-up, in order, and the call into the
 * application's main().
 *
 * Every boot path (boot/) ends in kernel_main() with a struct boot_info.
 * From there: a first stack canary, console, clock, CPU tables, ACPI,
 * memory (pages, page tables, heap), drivers, the random-number generator
 * (seeded from virtio-rng and the CPU) and a canary from it, then the
 * application on a stack of its own with a guard page below it. main()'s
 * return value ends the guest.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ringlet/random.h>

#include "../boot/bootinfo.h"
#include "fd.h"
#include "io.h"
#include "kernel.h"
#include "net/net.h"
#include "random.h"

struct kernel_options kopt = {.stack_size = 512 * 1024, .net_wait_s = 5};

extern int main(int argc, char **argv);
extern const char ringlet_app_name[]; /* build/APP/obj/appname.c, made by the Makefile */
extern uintptr_t __stack_chk_guard;
extern void (*__init_array_start[])(void), (*__init_array_end[])(void);
_Noreturn void stack_switch_call(uintptr_t top, void (*fn)(void)); /* kernel/vectors.S */
void drivers_init(void);                                           /* drivers/drivers.c */
void blk_init(void);                                               /* kernel/blk.c */
void fs_mount_option(const char *opt);                             /* kernel/fs.c */

#define MAX_ARGS 128
static char cmdline[BOOT_CMDLINE_MAX];
static char *app_argv[MAX_ARGS + 2];
static int app_argc;
static uint64_t main_ns; /* time from entry to main() */

static const char *const boot_source_names[] = {"?", "PVH", "multiboot2", "UEFI"};

/*
 * A first random canary, before any function that checks it can return.
 * This function itself must not be protected: it changes the value it would
 * check. stack_guard_reseed() replaces it from the CSPRNG before main().
 */
__attribute__((no_stack_protector)) static void stack_guard_init(void)
{
	uint32_t r[4];
	uint64_t v = 0;
	cpuid(1, 0, r);
	if (r[2] & (1u << 30)) { /* RDRAND */
		for (int i = 0; i < 10; i++) {
			unsigned char ok;
			__asm__ volatile("rdrand %0; setc %1" : "=r"(v), "=qm"(ok));
			if (ok)
				break;
		}
	}
	/* No RDRAND: the TSC at least differs from boot to boot. The CSPRNG
	 * (seeded from virtio-rng) is not running yet this early. */
	v ^= rdtsc() * 0x9e3779b97f4a7c15ull;
	v &= ~0xffull; /* a zero low byte stops string overflows reading it */
	__stack_chk_guard = v;
}

/*
 * The canary the application runs with, from the seeded CSPRNG. Every frame
 * below this one belongs to a function that never returns (kernel_main()
 * and the boot path that called it), and random_bytes() has returned before
 * the value changes, so no check ever compares against the old value.
 */
__attribute__((no_stack_protector)) static void stack_guard_reseed(void)
{
	uintptr_t v;
	random_bytes(&v, sizeof(v));
	__stack_chk_guard = v & ~0xffull; /* the zero low byte, as above */
}

/* Kernel options are the words before "--"; without "--", the words the
 * kernel knows are its own and the rest go to the application. */
static bool kernel_option(const char *w, bool warn)
{
	uint64_t size;
	if (strcmp(w, "quiet") == 0)
		kopt.quiet = true;
	else if (strcmp(w, "debug") == 0)
		kopt.debug = true;
	else if (strncmp(w, "ip=", 3) == 0 && w[3])
		kopt.net_ip = w + 3;
	else if (strncmp(w, "gw=", 3) == 0 && w[3])
		kopt.net_gw = w + 3;
	else if (strncmp(w, "dns=", 4) == 0 && w[4])
		kopt.net_dns = w + 4;
	else if (strncmp(w, "netwait=", 8) == 0 && cmdline_parse_size(w + 8, &size) == 0 && size <= 3600)
		kopt.net_wait_s = (unsigned)size;
	else if (strncmp(w, "mount=", 6) == 0 && w[6])
		kopt.mount = w + 6;
	else if (strncmp(w, "stack=", 6) == 0 && cmdline_parse_size(w + 6, &size) == 0 && size >= 16384 &&
	         size <= (1ull << 30))
		kopt.stack_size = size;
	else if (random_option(w))
		;
	else if (strncmp(w, "console=", 8) == 0 && console_option(w + 8))
		;
	else if (strcmp(w, "hold") == 0)
		kopt.hold = true;
	else if (strcmp(w, "idle=poll") == 0)
		kopt.idle_poll = true;
	else {
		if (warn)
			kprintf("ringlet: unknown kernel option '%s' (ignored)\n", w);
		return false;
	}
	return true;
}

/*
 * `virtio_mmio.device=SIZE@BASE:IRQ[:ID]`: a virtio-mmio device (Linux's
 * syntax). QEMU's microvm with acpi=off appends these at the very end of the
 * command line, after the application's arguments, so they are taken out of
 * the words wherever they are. A malformed one is refused, and boot goes on.
 */
#define VIRTIO_MMIO_OPT "virtio_mmio.device="
static bool virtio_mmio_option(const char *w)
{
	size_t n = sizeof(VIRTIO_MMIO_OPT) - 1;
	struct cmdline_virtio_mmio dev;
	const char *why;
	if (strncmp(w, VIRTIO_MMIO_OPT, n) != 0)
		return false;
	if (cmdline_virtio_mmio(w + n, &dev, &why) != 0)
		kprintf("ringlet: %s: %s (ignored)\n", w, why);
	else if (kopt.nvirtio_mmio == (int)ARRAY_SIZE(kopt.virtio_mmio))
		kprintf("ringlet: %s: more than %d devices (ignored)\n", w, (int)ARRAY_SIZE(kopt.virtio_mmio));
	else
		kopt.virtio_mmio[kopt.nvirtio_mmio++] = dev;
	return true;
}

static void parse_cmdline(const struct boot_info *bi)
{
	static char *words[MAX_ARGS];
	const char *err;
	memcpy(cmdline, bi->cmdline, sizeof(cmdline));
	int n = cmdline_split(cmdline, words, MAX_ARGS, &err);
	int dash = -1;
	for (int i = 0; i < n && dash < 0; i++)
		if (strcmp(words[i], "--") == 0)
			dash = i;

	app_argv[app_argc++] = (char *)ringlet_app_name;
	for (int i = 0; i < n; i++) {
		if (i != dash && virtio_mmio_option(words[i]))
			continue; /* a kernel option wherever it is */
		if (dash >= 0 && i < dash)
			kernel_option(words[i], true);
		else if (dash >= 0 && i > dash)
			app_argv[app_argc++] = words[i];
		else if (dash < 0 && !kernel_option(words[i], false))
			app_argv[app_argc++] = words[i];
	}
	app_argv[app_argc] = NULL;
	if (err)
		kprintf("ringlet: command line: %s\n", err);
}

static _Noreturn void app_start(void)
{
	/* C++-style constructors of the application and libraries. */
	for (void (**f)(void) = __init_array_start; f < __init_array_end; f++)
		(*f)();
	time_tick_begin(); /* interrupts on for the application, if a driver wants its tick */
	main_ns = time_ns();
	kdebug("main: %s after %lu.%03lu ms", ringlet_app_name, (unsigned long)(main_ns / 1000000),
	       (unsigned long)(main_ns / 1000 % 1000));
	exit(main(app_argc, app_argv));
}

uint64_t ringlet_main_ns(void) { return main_ns; }

__attribute__((no_stack_protector)) _Noreturn void kernel_main(struct boot_info *bi)
{
	stack_guard_init();
	console_init();
	parse_cmdline(bi);
	cpu_init(); /* first: a fault from here on gets a report */
	trap_init();
	time_init();
	/* Every character on the serial line costs tens of microseconds under
	 * emulation, so the boot log is a few short lines. */
	klog("Ringlet via %s: %s", bi->source < ARRAY_SIZE(boot_source_names) ? boot_source_names[bi->source] : "?",
	     bi->cmdline);
	if (bi->mem_count == BOOT_MEM_MAX)
		klog("warning: memory map truncated to %d entries", BOOT_MEM_MAX);

	acpi_init(bi->rsdp); /* while the boot page tables still map the tables */
	pmem_init(bi);
	paging_init(bi);
	time_lapic_init();
	heap_init();
	fd_init();
	klog("memory: %lu MiB, heap up to %lu MiB", (unsigned long)(pmem_total_pages() * PAGE_SIZE >> 20),
	     (unsigned long)(heap_max_bytes() >> 20));
	drivers_init();
	console_start_gpu();
	console_devices_done();
	blk_init();
	if (kopt.mount)
		fs_mount_option(kopt.mount);
	random_init();
	stack_guard_reseed();
	/* The network, when the application uses it (else net_start is not linked in). */
	if (net_start)
		net_start(kopt.net_wait_s);

	uintptr_t top = stack_alloc(kopt.stack_size, "main stack");
	console_boot_done();
	stack_switch_call(top, app_start);
}
