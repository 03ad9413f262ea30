/*
 * Interrupt entry points for the echo guest.
 *
 * They return WITHOUT iret: this host's software KVM fails to emulate a 32-bit iret
 * (KVM internal error, emulation failure). The guest only takes interrupts inside its
 * `sti; hlt; cli` sequence, where EFLAGS needs no restoring and IF must end up clear
 * anyway, so the stub drops CS and EFLAGS from the frame and returns to the saved EIP
 * with a plain ret. Interrupt gates already cleared IF on entry.
 */
        .text
        .code32
        .globl serial_irq_stub, spurious_stub
serial_irq_stub:
        pushal
        cld
        call    serial_irq
        popal
        jmp     return_no_iret

spurious_stub:
        jmp     return_no_iret

/* Stack: EIP, CS, EFLAGS. Move EIP over EFLAGS, drop the other two, ret. */
return_no_iret:
        push    %eax
        mov     4(%esp), %eax
        mov     %eax, 12(%esp)
        pop     %eax
        add     $8, %esp
        ret
