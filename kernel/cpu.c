/*
 * kernel/cpu.c: the CPU's own tables and modes: the GDT with a TSS (for the
 * separate exception stacks), the IDT, and the control-register bits the
 * rest of the kernel relies on.
 *
 * Implements: Intel SDM vol. 3A, §3 (segments), §6 (interrupts), §7.7 (TSS),
 *             §13 (SSE state).
 */
#include <stdint.h>
#include <string.h>

#include "io.h"
#include "kernel.h"

#define CR0_MP         (1ul << 1)
#define CR0_EM         (1ul << 2)
#define CR0_TS         (1ul << 3)
#define CR0_WP         (1ul << 16)
#define CR4_OSFXSR     (1ul << 9)
#define CR4_OSXMMEXCPT (1ul << 10)
#define MSR_EFER       0xc0000080
#define EFER_NXE       (1ul << 11)

#define SEL_CODE 0x08
#define SEL_DATA 0x10
#define SEL_TSS  0x18

struct tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7]; /* ist[0] is "IST1" in the IDT */
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));
_Static_assert(sizeof(struct tss) == 104, "TSS layout");

struct idt_entry {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t ist;
	uint8_t type_attr;
	uint16_t offset_mid;
	uint32_t offset_hi;
	uint32_t zero;
} __attribute__((packed));
_Static_assert(sizeof(struct idt_entry) == 16, "IDT entry layout");

struct table_ptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

static struct tss tss;
static uint64_t gdt[5] = {
    0,
    0x00af9a000000ffff, /* 0x08: code, 64-bit */
    0x00cf92000000ffff, /* 0x10: data */
    0,                  /* 0x18: TSS, low half (filled in below) */
    0,                  /* TSS, high half */
};
static struct idt_entry idt[256];

/*
 * Separate stacks for the exceptions whose handler cannot trust the current
 * stack: a page fault may be a stack overflow into a guard page, and a
 * double fault means the stack is already gone. Each has a guard page below.
 */
#define IST_SIZE (16 * 1024)
static uint8_t ist_stack[3][PAGE_SIZE + IST_SIZE] __attribute__((aligned(4096)));
enum { IST_PF = 1, IST_DF = 2, IST_NMI_MC = 3 };

extern char trap_stubs[];

static void gdt_load(void)
{
	uint64_t base = (uintptr_t)&tss, limit = sizeof(tss) - 1;
	gdt[3] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ul << 40) /* present, 64-bit TSS */ |
	         ((base >> 24 & 0xff) << 56);
	gdt[4] = base >> 32;

	struct table_ptr p = {sizeof(gdt) - 1, (uintptr_t)gdt};
	__asm__ volatile("lgdt %0\n\t"
	                 /* Reload CS with a far return, then the data segments. */
	                 "pushq %1\n\t"
	                 "leaq 1f(%%rip), %%rax\n\t"
	                 "pushq %%rax\n\t"
	                 "lretq\n"
	                 "1:\tmovl %2, %%eax\n\t"
	                 "movl %%eax, %%ds\n\t"
	                 "movl %%eax, %%es\n\t"
	                 "movl %%eax, %%ss\n\t"
	                 "ltr %w3"
	                 :
	                 : "m"(p), "i"(SEL_CODE), "i"(SEL_DATA), "r"(SEL_TSS)
	                 : "rax", "memory");
}

static void idt_set(int vec, int ist)
{
	uintptr_t handler = (uintptr_t)trap_stubs + 16 * vec;
	idt[vec] = (struct idt_entry){
	    .offset_lo = handler & 0xffff,
	    .selector = SEL_CODE,
	    .ist = ist,
	    .type_attr = 0x8e, /* present, DPL 0, 64-bit interrupt gate */
	    .offset_mid = handler >> 16 & 0xffff,
	    .offset_hi = handler >> 32,
	};
}

/* The legacy 8259 PICs: moved off the exception vectors and masked, since
 * nothing here uses them (a stray IRQ 7 would otherwise look like #NM). */
static void pic_disable(void)
{
	outb(0x20, 0x11);
	outb(0xa0, 0x11);
	outb(0x21, 0x20); /* master: vectors 0x20-0x27 */
	outb(0xa1, 0x28); /* slave: 0x28-0x2f */
	outb(0x21, 0x04);
	outb(0xa1, 0x02);
	outb(0x21, 0x01);
	outb(0xa1, 0x01);
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
}

void cpu_init(void)
{
	/* Supervisor writes to read-only pages fault (rodata, text), and
	 * no-execute bits in page tables take effect. */
	write_cr0((read_cr0() | CR0_WP | CR0_MP) & ~(CR0_EM | CR0_TS));
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_NXE);

	/* SSE for newlib and the application. The kernel itself is built with
	 * -mgeneral-regs-only and takes interrupts only while halted, so no
	 * FPU/SSE state needs saving anywhere. */
	write_cr4(read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT);
	__asm__ volatile("fninit");
	uint32_t mxcsr = 0x1f80; /* all SSE exceptions masked: the reset value */
	__asm__ volatile("ldmxcsr %0" ::"m"(mxcsr));

	for (int i = 0; i < 3; i++)
		tss.ist[i] = (uintptr_t)&ist_stack[i][sizeof(ist_stack[i])];
	tss.iomap_base = sizeof(tss); /* no I/O permission bitmap */
	gdt_load();
	pic_disable();
}

void trap_init(void)
{
	for (int v = 0; v < 256; v++)
		idt_set(v, 0);
	idt_set(2, IST_NMI_MC);
	idt_set(8, IST_DF);
	idt_set(14, IST_PF);
	idt_set(18, IST_NMI_MC);
	struct table_ptr p = {sizeof(idt) - 1, (uintptr_t)idt};
	__asm__ volatile("lidt %0" ::"m"(p));
}

/* The exception stacks' guard pages, for kernel/paging.c to unmap. */
void cpu_ist_guards(uintptr_t guards[3])
{
	for (int i = 0; i < 3; i++)
		guards[i] = (uintptr_t)ist_stack[i];
}
