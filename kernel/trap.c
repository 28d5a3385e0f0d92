/*
 * kernel/trap.c: what happens on an interrupt or a CPU exception.
 *
 * Interrupts are only ever enabled while the CPU is halted in the wait loop
 * (kernel/wait.c, time_idle()), so the interrupts handled here are wake-ups:
 * the APIC timer's and the devices' (kernel/irq.c), and all they do is
 * acknowledge. Every CPU exception is fatal: it prints a report a student can read
 * (which exception, the registers, the faulting address, a backtrace with
 * function names) and ends the guest with EXIT_PANIC.
 */
#include <stdint.h>

#include "io.h"
#include "irq.h"
#include "kernel.h"

struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

static const char *const exception_names[32] = {
    [0] = "#DE divide error",
    [1] = "#DB debug",
    [2] = "NMI",
    [3] = "#BP breakpoint",
    [4] = "#OF overflow",
    [5] = "#BR bound range",
    [6] = "#UD invalid opcode",
    [7] = "#NM device not available",
    [8] = "#DF double fault",
    [10] = "#TS invalid TSS",
    [11] = "#NP segment not present",
    [12] = "#SS stack fault",
    [13] = "#GP general protection",
    [14] = "#PF page fault",
    [16] = "#MF x87 floating-point error",
    [17] = "#AC alignment check",
    [18] = "#MC machine check",
    [19] = "#XM SIMD floating-point error",
    [20] = "#VE virtualization exception",
    [21] = "#CP control protection",
};

/* Set while a report is being printed: a fault inside the report (a bad
 * frame pointer, say) must not start another one. */
static volatile int in_report;

static void print_addr(const char *label, uintptr_t addr)
{
	uintptr_t off;
	const char *name = symbol_name(addr, &off);
	if (name)
		kprintf("%s0x%016lx <%s+0x%lx>\n", label, addr, name, off);
	else
		kprintf("%s0x%016lx\n", label, addr);
}

void backtrace_print_from(uintptr_t rbp, int depth)
{
	for (; depth < 24 && rbp; depth++) {
		/* Walk only frames that are aligned and mapped: a corrupt chain
		 * ends the backtrace instead of faulting again. */
		if ((rbp & 7) || !paging_is_mapped(rbp) || !paging_is_mapped(rbp + 15))
			break;
		uintptr_t ret = ((uintptr_t *)rbp)[1], off;
		if (ret == 0)
			break;
		if (!symbol_name(ret, &off)) {
			kprintf("  (the frame chain is corrupt here: return address 0x%lx)\n", ret);
			break;
		}
		char label[24];
		ksnprintf(label, sizeof(label), "  #%-2d ", depth);
		print_addr(label, ret);
		rbp = ((uintptr_t *)rbp)[0];
	}
}

void backtrace_print(uintptr_t rbp)
{
	kprintf("Backtrace:\n");
	backtrace_print_from(rbp, 0);
}

static void page_fault_detail(const struct trap_frame *f)
{
	uint64_t cr2 = read_cr2();
	const char *stack = stack_guard_name(cr2);
	/* Error code bits: 0 page present, 1 write, 4 instruction fetch. */
	const char *access = f->error & 16 ? "instruction fetch" : f->error & 2 ? "write" : "read";
	kprintf("CR2 0x%016lx: %s %s%s\n", cr2, access,
	        f->error & 1 ? "not allowed on this page (it is mapped)" : "of an unmapped page",
	        cr2 < PAGE_SIZE ? " (NULL pointer dereference)" : "");
	if (stack)
		kprintf("CR2 is in the guard page of the %s: stack overflow\n", stack);
}

/*
 * The caller of the faulting function, when the frame-pointer chain would
 * skip it: a fault on the function's first instructions, before
 * "push %rbp; mov %rsp,%rbp" has run, in a leaf function the compiler
 * built without a frame, or after a call to an address outside the code.
 * Then the return address is on top of the stack.
 * Returns 0 when the chain from RBP already starts with the caller.
 */
static uintptr_t frameless_caller(const struct trap_frame *f)
{
	uintptr_t off;
	if (!paging_is_mapped(f->rsp) || (f->rsp & 7))
		return 0;
	if (!symbol_name(f->rip, &off)) {
		/* A call through a bad pointer: the caller's return address
		 * is the last thing pushed. */
		uintptr_t ret = *(uintptr_t *)f->rsp;
		return symbol_name(ret, &off) ? ret : 0;
	}
	const uint8_t *start = (const uint8_t *)(f->rip - off);
	bool prologue = start[0] == 0x55 && start[1] == 0x48 && start[2] == 0x89 && start[3] == 0xe5;
	if (prologue && off >= 4)
		return 0; /* the frame is set up: RBP is this function's */
	uintptr_t ret = ((uintptr_t *)f->rsp)[prologue && off == 1 ? 1 : 0];
	return symbol_name(ret, &off) ? ret : 0;
}

static _Noreturn void exception_report(const struct trap_frame *f)
{
	if (in_report++) {
		kprintf("\n*** CPU exception %lu while reporting a fault; giving up\n", f->vector);
		kernel_exit(EXIT_PANIC);
	}
	const char *name = f->vector < 32 && exception_names[f->vector] ? exception_names[f->vector] : "unknown";
	kprintf("\n*** CPU exception %lu (%s), error code 0x%lx\n", f->vector, name, f->error);
	print_addr("RIP 0x0008:", f->rip);
	if (f->vector == 14)
		page_fault_detail(f);
	kprintf("RAX %016lx RBX %016lx RCX %016lx RDX %016lx\n", f->rax, f->rbx, f->rcx, f->rdx);
	kprintf("RSI %016lx RDI %016lx RBP %016lx RSP %016lx\n", f->rsi, f->rdi, f->rbp, f->rsp);
	kprintf("R8  %016lx R9  %016lx R10 %016lx R11 %016lx\n", f->r8, f->r9, f->r10, f->r11);
	kprintf("R12 %016lx R13 %016lx R14 %016lx R15 %016lx\n", f->r12, f->r13, f->r14, f->r15);
	kprintf("RFLAGS %016lx CS %04lx SS %04lx CR0 %08lx CR3 %08lx CR4 %08lx\n", f->rflags, f->cs, f->ss, read_cr0(),
	        read_cr3(), read_cr4());
	/* The faulting function itself, then its callers. */
	kprintf("Backtrace:\n");
	print_addr("  #0  ", f->rip);
	uintptr_t caller = frameless_caller(f);
	if (caller)
		print_addr("  #1  ", caller);
	backtrace_print_from(f->rbp, caller ? 2 : 1);
	kprintf("*** guest stopped by CPU exception %lu (%s)\n", f->vector, name);
	kernel_exit(EXIT_PANIC);
}

void trap_dispatch(struct trap_frame *f)
{
	if (f->vector == TIMER_VECTOR) {
		time_timer_interrupt();
		return;
	}
	if (irq_dispatch((unsigned)f->vector))
		return;
	if (f->vector == SPURIOUS_VECTOR)
		return; /* no EOI for spurious interrupts */
	if (f->vector >= 0x20 && f->vector < 0x30)
		return; /* a masked legacy PIC can still raise a spurious IRQ 7 or 15 */
	if (f->vector >= 32) {
		/* An interrupt nobody asked for: firmware (OVMF) may leave a
		 * timer routed to some vector. Acknowledge it and go on. */
		static int reported;
		if (!reported++)
			klog("trap: unexpected interrupt on vector %lu (ignored)", f->vector);
		lapic_eoi();
		return;
	}
	exception_report(f);
}
