/*
 * Interrupt entry points of the virtio guests (the same shape as echo_irq.S): they
 * return WITHOUT iret, because this host's software KVM fails to emulate a 32-bit iret.
 * The guests take interrupts only inside `sti; hlt; cli` (virtio.c virtio_wait), where
 * EFLAGS needs no restoring and IF must end up clear anyway; so the stub drops CS and
 * EFLAGS from the frame and returns to the saved EIP with a plain ret.
 */
        .text
        .code32
        .globl virtio_irq_stub, virtio_spurious_stub
virtio_irq_stub:
        pushal
        cld
        call    virtio_irq
        popal
        jmp     virtio_return_no_iret

virtio_spurious_stub:
        jmp     virtio_return_no_iret

/* Stack: EIP, CS, EFLAGS. Move EIP over EFLAGS, drop the other two, ret. */
virtio_return_no_iret:
        push    %eax
        mov     4(%esp), %eax
        mov     %eax, 12(%esp)
        pop     %eax
        add     $8, %esp
        ret
