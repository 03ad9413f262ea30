/*
 * Interrupt and exception entry points of the fuzzing guest (fuzz.c).
 *
 * Vectors 0-31 are exceptions: the fuzzer never causes one on purpose (it programs no
 * interrupt source that could deliver a vector below 0x20), so an exception means its own
 * state was corrupted; fuzz_exception(vector, eip) reports it and ends the run.
 *
 * Vectors 32-255 are interrupts (MSI-X of the virtio functions, at whatever vector the
 * fuzzer wrote), taken only inside a `sti; hlt; cli` or `sti; nop; nop; cli` window; they
 * return as irq.S says (without iret).
 */
        .text
        .code32

/* One stub per exception vector: push the vector, join the common path. */
        .macro exc v
        .globl fuzz_exc_\v
fuzz_exc_\v:
        push    $\v
        jmp     fuzz_exc_common
        .endm
        .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        exc     \v
        .endr

/* Stack: vector, [error code], EIP, ... The EIP is where the error code is not; both
 * are printed by fuzz_exception, which never returns. */
fuzz_exc_common:
        cld
        pop     %eax                    /* vector */
        mov     (%esp), %edx            /* EIP, or the error code for 8, 10-14, 17 */
        push    %edx
        push    %eax
        call    fuzz_exception
1:      cli
        hlt
        jmp     1b

        .globl fuzz_irq_stub
fuzz_irq_stub:
        pushal
        cld
        call    fuzz_irq
        popal
        jmp     irq_return_no_iret

/* The table of exception stubs, for fuzz.c's IDT. */
        .section .rodata
        .align 4
        .globl fuzz_exc_stubs
fuzz_exc_stubs:
        .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        .long   fuzz_exc_\v
        .endr
