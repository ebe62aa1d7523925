/* x86-64 System V context switch.
 *
 * Frame left on a suspended stack (low to high address):
 *   r15 r14 r13 r12 rbx rbp  resume-address
 * It leaves with ret, not pop + indirect jmp: a jmp leaves the return-stack
 * predictor one entry out of step, so every later ret in the resumed task
 * mispredicts; a ret keeps calls and returns paired, and when both sides
 * switched from the same call site (tasks yielding to each other) even the
 * switch's own ret is predicted. Measured on the 2-core machine here, two
 * tasks yielding to each other: 10-20 ns per switch with ret, 29-45 ns with
 * pop + jmp (ringscope-bench switch). */
#if defined(__x86_64__)
    .text

    .globl  rs__ctx_switch
    .hidden rs__ctx_switch
    .type   rs__ctx_switch, @function
    .p2align 4
rs__ctx_switch:
    .cfi_startproc
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    movq    %rsp, (%rdi)
    movq    %rsi, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
    .cfi_endproc
    .size   rs__ctx_switch, .-rs__ctx_switch

/* First frame of a new context: rs__ctx_make stores entry in r13 and its
 * argument in r12. The call leaves a return address so debuggers see a frame;
 * entry never returns. */
    .globl  rs__ctx_entry
    .hidden rs__ctx_entry
    .type   rs__ctx_entry, @function
    .p2align 4
rs__ctx_entry:
    .cfi_startproc
    .cfi_undefined rip
    movq    %r12, %rdi
    callq   *%r13
    ud2
    .cfi_endproc
    .size   rs__ctx_entry, .-rs__ctx_entry

    .section .note.GNU-stack, "", @progbits
#endif
