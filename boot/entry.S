/*
 * boot/entry.S: the three ways into the kernel.
 *
 *   _start_pvh  QEMU `-kernel` (PVH boot protocol): 32-bit protected mode,
 *               paging off, %ebx = physical address of struct hvm_start_info.
 *   _start_mb2  GRUB `multiboot2`: 32-bit protected mode, paging off,
 *               %eax = 0x36d76289, %ebx = physical address of the info block.
 *   _start64    the UEFI loader (boot/efi/loader.c): already in long mode,
 *               %rdi = struct boot_info * (see boot/bootinfo.h).
 *
 * The 32-bit paths build temporary page tables that identity-map the first
 * 4 GiB with 2 MiB pages, switch to long mode and call boot_from_pvh() or
 * boot_from_multiboot2() (boot/boot.c). kernel/paging.c replaces these
 * tables with proper ones (per-section rights, page 0 unmapped) soon after.
 */

#define CR0_PE (1 << 0)
#define CR0_PG (1 << 31)
#define CR4_PAE (1 << 5)
#define MSR_EFER 0xc0000080
#define EFER_LME (1 << 8)
#define EFER_NXE (1 << 11)
#define PTE_P 0x1
#define PTE_W 0x2
#define PTE_PS 0x80

#define BOOT_SOURCE_PVH 1
#define BOOT_SOURCE_MULTIBOOT2 2

/* ---- Multiboot2 header (Multiboot2 spec §3.1), read by GRUB ---------- */
#define MB2_MAGIC 0xe85250d6
#define MB2_ARCH_I386 0
	.section .multiboot2, "a"
	.balign 8
mb2_header:
	.long MB2_MAGIC
	.long MB2_ARCH_I386
	.long mb2_header_end - mb2_header
	.long -(MB2_MAGIC + MB2_ARCH_I386 + (mb2_header_end - mb2_header))
	/* Entry address tag (type 3): e_entry is the 64-bit _start64, so tell
	 * GRUB where the 32-bit multiboot2 entry is. */
	.balign 8
	.short 3, 0
	.long 12
	.long _start_mb2
	/* End tag. */
	.balign 8
	.short 0, 0
	.long 8
mb2_header_end:

/* ---- PVH note: XEN_ELFNOTE_PHYS32_ENTRY (18), name "Xen" ------------ */
	.section .note.pvh, "a", @note
	.balign 4
	.long 4			/* namesz */
	.long 4			/* descsz */
	.long 18		/* type: XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long _start_pvh	/* 32-bit physical entry point */
	.balign 4

/* ---- 32-bit entries ---------------------------------------------------- */
	.section .text.boot, "ax"
	.code32
	.globl _start_pvh
_start_pvh:
	cli
	cld
	/* Time since entry is measured from this TSC reading. */
	rdtsc
	movl %eax, boot_tsc
	movl %edx, boot_tsc + 4
	movl $BOOT_SOURCE_PVH, %esi
	jmp common32

	.globl _start_mb2
_start_mb2:
	cli
	cld
	movl %eax, %edi		/* keep the magic for the C code to check */
	rdtsc
	movl %eax, boot_tsc
	movl %edx, boot_tsc + 4
	movl %edi, boot_mb2_magic
	movl $BOOT_SOURCE_MULTIBOOT2, %esi

common32:
	/* %esi = source, %ebx = info pointer; both survive to 64-bit code. */
	movl $boot_stack_top, %esp

	/* PML4[0] -> PDPT. */
	movl $boot_pdpt, %eax
	orl $(PTE_P | PTE_W), %eax
	movl %eax, boot_pml4

	/* With 1 GiB pages (CPUID 0x80000001 EDX bit 26) four PDPT entries map
	 * the first 4 GiB; without, four page directories of 2 MiB pages do. */
	movl %ebx, %edi		/* cpuid clobbers %ebx, which holds the info pointer */
	movl $0x80000000, %eax
	cpuid
	cmpl $0x80000001, %eax
	jb 3f
	movl $0x80000001, %eax
	cpuid
	btl $26, %edx
	jnc 3f
	xorl %ecx, %ecx
1:	movl %ecx, %eax
	shll $30, %eax
	orl $(PTE_P | PTE_W | PTE_PS), %eax
	movl %eax, boot_pdpt(, %ecx, 8)
	incl %ecx
	cmpl $4, %ecx
	jne 1b
	jmp 5f

3:	xorl %ecx, %ecx
4:	movl %ecx, %eax
	shll $12, %eax
	addl $boot_pd, %eax
	orl $(PTE_P | PTE_W), %eax
	movl %eax, boot_pdpt(, %ecx, 8)
	incl %ecx
	cmpl $4, %ecx
	jne 4b
	/* 2048 entries, entry i maps i * 2 MiB. */
	xorl %ecx, %ecx
2:	movl %ecx, %eax
	shll $21, %eax
	orl $(PTE_P | PTE_W | PTE_PS), %eax
	movl %eax, boot_pd(, %ecx, 8)
	movl $0, boot_pd + 4(, %ecx, 8)
	incl %ecx
	cmpl $2048, %ecx
	jne 2b
5:	movl %edi, %ebx

	/* Long mode: PAE on, CR3, EFER.LME (+NXE for later), then paging. */
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $boot_pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $(EFER_LME | EFER_NXE), %eax
	wrmsr
	movl %cr0, %eax
	orl $(CR0_PG | CR0_PE), %eax
	movl %eax, %cr0

	lgdt boot_gdt_ptr
	ljmp $0x08, $long_mode

	.code64
long_mode:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	xorl %eax, %eax
	movl %eax, %fs
	movl %eax, %gs
	movq $boot_stack_top, %rsp
	xorl %ebp, %ebp		/* ends the frame-pointer chain for backtraces */
	movl %ebx, %edi		/* info pointer */
	cmpl $BOOT_SOURCE_PVH, %esi
	jne 6f
	call boot_from_pvh
	jmp halt
6:	call boot_from_multiboot2
	jmp halt

/* ---- 64-bit entry from the UEFI loader -------------------------------- */
	.globl _start64
_start64:
	cli
	cld
	movq %rdi, %rbx
	rdtsc
	movl %eax, boot_tsc
	movl %edx, boot_tsc + 4
	movq $boot_stack_top, %rsp
	xorl %ebp, %ebp
	movq %rbx, %rdi
	call boot_from_loader
halt:
	cli
	hlt
	jmp halt

/* ---- Temporary GDT: null, 64-bit code, data ---------------------------- */
	.section .rodata
	.balign 16
boot_gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* 0x08: code, long mode */
	.quad 0x00cf92000000ffff	/* 0x10: data */
boot_gdt_end:
boot_gdt_ptr:
	.short boot_gdt_end - boot_gdt - 1
	.quad boot_gdt

/* ---- Boot-time data ---------------------------------------------------- */
	.section .data
	.balign 8
	.globl boot_tsc
boot_tsc:
	.quad 0
	.globl boot_mb2_magic
boot_mb2_magic:
	.long 0

	.section .bss
	.balign 4096
boot_pml4:
	.skip 4096
boot_pdpt:
	.skip 4096
boot_pd:
	.skip 4096 * 4
	/* The boot stack, with a guard page below it that kernel/paging.c
	 * leaves unmapped: an overflow faults instead of eating the tables. */
	.globl boot_stack_guard
boot_stack_guard:
	.skip 4096
	.globl boot_stack_bottom
boot_stack_bottom:
	.skip 65536
	.globl boot_stack_top
boot_stack_top:
