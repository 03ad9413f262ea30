/*
 * The virtio guests' interrupt entry point (see irq.S for how it returns): they take
 * interrupts only inside `sti; hlt; cli` (virtio.c virtio_wait).
 */
        .text
        .code32
        .globl virtio_irq_stub
virtio_irq_stub:
        pushal
        cld
        call    virtio_irq
        popal
        jmp     irq_return_no_iret
