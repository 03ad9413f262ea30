/*
 * PVH entry: the runtime enters here in 32-bit protected mode, paging off, flat
 * segments, EBX = guest-physical address of struct hvm_start_info.
 * We clear .bss (the loader may or may not), take our own stack, and call
 * guest_main(info). If it returns, its value goes to the debug-exit port.
 */
        .section .note.Xen, "a", @note
        .align 4
        .long 4                 /* namesz: "Xen\0" */
        .long 4                 /* descsz: one 32-bit entry address */
        .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
        .asciz "Xen"
        .align 4
        .long _start

        .section .text.start, "ax"
        .code32
        .globl _start
_start:
        cli
        cld
        mov     %ebx, %esi              /* keep the start-info pointer */
        mov     $__bss_start, %edi
        mov     $__bss_end, %ecx
        sub     %edi, %ecx
        xor     %eax, %eax
        rep stosb
        mov     $stack_top, %esp
        xor     %ebp, %ebp
        push    %esi
        call    guest_main
        push    %eax
        call    debug_exit              /* does not return */
1:      hlt
        jmp     1b

        .section .bss
        .align 16
stack:
        .space 16384
stack_top:
