/* First frame of a new context (x86-64 System V).
 *
 * rs__ctx_make leaves, from the stack pointer up: the address of
 * rs__ctx_entry (the "resume address" rs__ctx_switch jumps to), rbp = 0, the
 * entry function and its argument. The switch pops the first two; this stub
 * pops the other two and calls entry(arg) with rsp 16-byte aligned. The call
 * leaves a return address so debuggers see a frame; entry never returns. */
#if defined(__x86_64__)
    .text
    .globl  rs__ctx_entry
    .hidden rs__ctx_entry
    .type   rs__ctx_entry, @function
    .p2align 4
rs__ctx_entry:
    .cfi_startproc
    .cfi_undefined rip
    popq    %rax
    popq    %rdi
    callq   *%rax
    ud2
    .cfi_endproc
    .size   rs__ctx_entry, .-rs__ctx_entry

    .section .note.GNU-stack, "", @progbits
#endif
