/*
 * kernel/exit.c: ending the guest, and the stack protector's failure path.
 *
 * An exit status has to leave the virtual machine somehow. In order:
 *   1. QEMU's isa-debug-exit device (port 0xf4): QEMU exits at once with
 *      status (N << 1) | 1, which scripts/run turns back into N. Only 7 bits
 *      survive, so statuses 0..127 round-trip; the kernel's own failures
 *      use EXIT_PANIC (127).
 *   2. ACPI power-off (the status is lost, but the VM stops: libvirt, Proxmox).
 *   3. Halt forever after saying so, for machines with neither.
 */
#include <stdint.h>

#include "io.h"
#include "kernel.h"

#define DEBUG_EXIT_PORT 0xf4

/* isa-debug-exit reads as 0; an empty port reads as all ones. */
static bool debug_exit_present(void) { return inb(DEBUG_EXIT_PORT) != 0xff; }

_Noreturn void kernel_exit(int status)
{
	kdebug("exit: status %d after %lu us", status, (unsigned long)(time_ns() / 1000));
	console_drain(); /* virtio-console ports may hold output back */
	if (kopt.hold && status != EXIT_PANIC) {
		/* A screen that vanishes as soon as the program ends shows nothing:
		 * with `hold` the guest stays, halted, until the host stops it. */
		kprintf("ringlet: exit status %d; holding (kernel option hold)\n", status);
		console_flush();
		for (;;)
			time_idle(UINT64_MAX);
	}
	irq_disable();
	if (debug_exit_present())
		outl(DEBUG_EXIT_PORT, (uint32_t)status & 0x7f);
	acpi_poweroff();
	kprintf("ringlet: exit status %d; no way to power off, halting\n", status);
	for (;;)
		__asm__ volatile("cli; hlt");
}

_Noreturn void kernel_early_fail(const char *msg)
{
	console_init();
	kprintf("ringlet: cannot boot: %s\n", msg);
	kernel_exit(EXIT_PANIC);
}

_Noreturn void panic(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	kvsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	kprintf("\n*** kernel panic: %s\n", buf);
	backtrace_print((uintptr_t)__builtin_frame_address(0));
	kprintf("*** guest stopped by a kernel panic\n");
	kernel_exit(EXIT_PANIC);
}

/*
 * The stack protector (-fstack-protector-strong -mstack-protector-guard=global):
 * functions with arrays on the stack check this word on return. kernel_main
 * gives it a random value before anything that returns has run.
 */
uintptr_t __stack_chk_guard = 0x595e9fbd94fda766ull;

_Noreturn void __stack_chk_fail(void)
{
	kprintf("\n*** stack smashing detected: a function's canary was overwritten\n");
	backtrace_print((uintptr_t)__builtin_frame_address(0));
	kprintf("*** guest stopped by the stack protector\n");
	kernel_exit(EXIT_PANIC);
}
