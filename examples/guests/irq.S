/*
 * What every guest's interrupt entry points share (each guest's *_irq.S has its own stubs
 * that save the registers and call its handler, then jump to irq_return_no_iret).
 *
 * They return WITHOUT iret: this host's software KVM fails to emulate a 32-bit iret
 * (KVM internal error, emulation failure). The guests take interrupts only inside a
 * `sti; hlt; cli` (or `sti; nop; nop; cli`) window, where EFLAGS needs no restoring and IF
 * must end up clear anyway, so the frame's CS and EFLAGS are dropped and a plain ret goes
 * back to the saved EIP. Interrupt gates already cleared IF on entry.
 */
        .text
        .code32
        .globl irq_return_no_iret, irq_spurious_stub

/* A vector nobody expects: nothing to do but return. */
irq_spurious_stub:
        jmp     irq_return_no_iret

/* Stack: EIP, CS, EFLAGS. Move EIP over EFLAGS, drop the other two, ret. */
irq_return_no_iret:
        push    %eax
        mov     4(%esp), %eax
        mov     %eax, 12(%esp)
        pop     %eax
        add     $8, %esp
        ret
