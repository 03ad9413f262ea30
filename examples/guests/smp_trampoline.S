/*
 * Application-processor start-up code for the smp guest.
 *
 * ap_tramp_start..ap_tramp_end is copied by the BSP to a page below 1 MiB; a SIPI with
 * vector = page >> 12 starts each AP there in real mode with CS = page >> 4, IP = 0.
 * Only position-independent code lives in the copy: it loads a GDT through a descriptor
 * addressed relative to CS (= DS), sets CR0.PE and far-jumps straight to ap_entry32 in
 * the 1 MiB image (a 32-bit offset in a 32-bit code segment with base 0).
 */
        .section .rodata
        .code16
        .globl ap_tramp_start, ap_tramp_end
ap_tramp_start:
        cli
        mov     %cs, %ax
        mov     %ax, %ds
        lgdtl   (ap_gdt_desc - ap_tramp_start)
        mov     %cr0, %eax
        or      $1, %eax
        mov     %eax, %cr0
        ljmpl   $0x08, $ap_entry32
        .align 4
ap_gdt_desc:
        .word   ap_gdt_end - ap_gdt - 1
        .long   ap_gdt
ap_tramp_end:

        .align 8
ap_gdt:
        .quad   0
        .quad   0x00cf9a000000ffff      /* 0x08: code, flat 4 GiB, 32-bit */
        .quad   0x00cf92000000ffff      /* 0x10: data, flat 4 GiB */
ap_gdt_end:

        .text
        .code32
        .globl ap_entry32
ap_entry32:
        mov     $0x10, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        mov     $1, %eax
        lock xaddl %eax, ap_slot        /* claim a slot: eax = my index */
        mov     0xfee00020, %edx        /* local APIC ID register */
        shr     $24, %edx
        cmp     $64, %eax
        jae     1f
        mov     %edx, ap_ids(,%eax,4)
1:      lock incl ap_done               /* after the ID store: the BSP may read it now */
2:      cli
        hlt
        jmp     2b
