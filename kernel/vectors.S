/*
 * kernel/vectors.S: the 256 interrupt entry stubs and the common path.
 *
 * Each stub is 16 bytes long, so the IDT entry for vector n points at
 * trap_stubs + 16 * n (kernel/trap.c). For vectors where the CPU does not
 * push an error code the stub pushes a zero, so every trap frame has the
 * same layout: struct trap_frame in kernel/trap.c.
 */
	.altmacro
	.macro stub n
	.balign 16
	/* Intel SDM vol. 3, §6.13: these exceptions push an error code. */
	.if (\n == 8) || ((\n >= 10) && (\n <= 14)) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30)
	.else
	pushq $0
	.endif
	pushq $\n
	jmp trap_common
	.endm

	.text
	.balign 16
	.globl trap_stubs
trap_stubs:
	.set i, 0
	.rept 256
	stub %i
	.set i, i + 1
	.endr

trap_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	/* 5 words pushed by the CPU, 2 by the stub, 15 here: 176 bytes, so the
	 * stack is 16-byte aligned again for the call, as the ABI wants. */
	movq %rsp, %rdi
	cld
	call trap_dispatch
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp		/* vector and error code */
	iretq

/*
 * stack_switch_call(top, fn): runs fn() on the stack whose top is `top`.
 * fn must not return (the application's start never does).
 */
	.globl stack_switch_call
stack_switch_call:
	movq %rdi, %rsp
	xorl %ebp, %ebp		/* a fresh frame-pointer chain */
	pushq $0		/* fake return address: keeps 16-byte alignment */
	jmp *%rsi
