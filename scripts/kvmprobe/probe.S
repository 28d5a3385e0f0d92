/*
 * KVM probe guest: does this host's KVM run x87 and SSE instructions?
 *
 * Some nested-virtualisation setups accept KVM guests but kill them with
 * "KVM internal error ... emulation failure" as soon as they touch the
 * FPU or SSE.  Ringlet's applications (newlib) use SSE, so scripts/run
 * boots this tiny guest under -accel kvm first and uses KVM only when it
 * exits with status 0x2a (QEMU exit status (0x2a << 1) | 1 = 85).
 *
 * Boot protocol: PVH.  QEMU enters probe_start in 32-bit protected mode,
 * paging off, with a flat code and data segment; we need nothing else.
 * Exit: isa-debug-exit at port 0xf4 (-device isa-debug-exit,iobase=0xf4,iosize=0x04).
 * Built by scripts/run with: gcc -m32 -c probe.S; ld -m elf_i386 -T link.ld.
 */

#define CR0_MP          (1 << 1)    /* monitor coprocessor: fwait honours CR0.TS */
#define CR0_EM          (1 << 2)    /* emulate FPU: must be 0 for x87/SSE */
#define CR0_TS          (1 << 3)    /* task switched: must be 0 or FPU use traps */
#define CR4_OSFXSR      (1 << 9)    /* OS supports fxsave/fxrstor: enables SSE */
#define CR4_OSXMMEXCPT  (1 << 10)   /* OS handles #XM (SIMD FP exceptions) */

#define DEBUG_EXIT_PORT 0xf4
#define PROBE_OK        0x2a

    .code32
    .section .text
    .globl probe_start
probe_start:
    cli
    movl    $stack_top, %esp

    /* Enable the FPU and SSE. */
    movl    %cr0, %eax
    andl    $~(CR0_EM | CR0_TS), %eax
    orl     $CR0_MP, %eax
    movl    %eax, %cr0
    movl    %cr4, %eax
    orl     $(CR4_OSFXSR | CR4_OSXMMEXCPT), %eax
    movl    %eax, %cr4

    /* x87: 1.0 + 1.0, stored as an integer. */
    fninit
    fld1
    fld1
    faddp
    fistpl  scratch

    /* SSE: load, add and store 16 aligned bytes on the stack. */
    subl    $16, %esp
    andl    $~15, %esp
    xorps   %xmm0, %xmm0
    movaps  %xmm0, (%esp)
    movaps  (%esp), %xmm1
    addps   %xmm0, %xmm1
    movaps  %xmm1, (%esp)

    /* Both worked: report PROBE_OK, unless x87 got 1 + 1 wrong. */
    movl    $PROBE_OK, %eax
    cmpl    $2, scratch
    je      1f
    movl    $1, %eax
1:  outl    %eax, $DEBUG_EXIT_PORT

    /* Without isa-debug-exit we get here: halt forever. */
2:  hlt
    jmp     2b

/*
 * The PVH entry point note that QEMU looks for (Xen's ELF note,
 * XEN_ELFNOTE_PHYS32_ENTRY = 18): a 32-bit physical entry address.
 */
    .section .note.Xen, "a", @note
    .p2align 2
    .long   4f - 3f         /* name size */
    .long   6f - 5f         /* descriptor size */
    .long   18              /* type: XEN_ELFNOTE_PHYS32_ENTRY */
3:  .asciz  "Xen"
4:  .p2align 2
5:  .long   probe_start
6:  .p2align 2

    .section .bss
    .p2align 4
scratch:
    .skip   16
stack:
    .skip   4096
stack_top:
