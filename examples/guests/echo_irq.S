/* The echo guest's serial interrupt entry point (see irq.S for how it returns). */
        .text
        .code32
        .globl serial_irq_stub
serial_irq_stub:
        pushal
        cld
        call    serial_irq
        popal
        jmp     irq_return_no_iret
