/* Machine context switch between stacks (x86-64 System V).
 *
 * A context is one saved stack pointer. The switch is inline assembly at each
 * switch site, not a called function:
 *  - no call and no ret, so the return-stack predictor stays paired with the
 *    program's own calls and returns on both sides of the switch;
 *  - it leaves through an indirect jmp to the resumed context's label, which
 *    the branch-target predictor learns per site;
 *  - every register the ABI lets a call clobber, and every callee-saved one,
 *    is declared clobbered, so the compiler saves just what is live at that
 *    site instead of all six callee-saved registers every time.
 * Measured on the 2-core machine here, two contexts switching back and forth:
 * about 2.5 ns per switch, against about 5 ns for a called push/pop/jmp
 * function and 20 ns for one leaving with ret between different call sites.
 *
 * Frame left on a suspended stack (low to high address): resume address,
 * rbp, then (unless compiled with -mno-red-zone, as the runtime is) the
 * 128-byte red zone of the suspended function, which the switch steps over
 * since the compiler may keep data there.
 *
 * Not saved: the x87 control word and MXCSR. Tasks that change floating-point
 * control state must restore it before they suspend. */
#ifndef RS_RUNTIME_CONTEXT_H
#define RS_RUNTIME_CONTEXT_H

#include <stddef.h>

#if !defined(__x86_64__)
#error "ringscope: the context switch is written for x86-64 only (runtime/context.h, runtime/context_x86_64.S); \
an aarch64 port needs its own switch sequence and initial frame"
#endif

/* Saves the current context's stack pointer in *save and resumes the context
 * whose stack pointer is load; returns when something switches back. */
#ifdef RS_NO_RED_ZONE
/* The runtime's own files are compiled with -mno-red-zone (CMakeLists.txt):
 * nothing lives below the stack pointer, so the switch need not step over. */
#define RS__RED_ZONE_ENTER ""
#define RS__RED_ZONE_LEAVE ""
#else
#define RS__RED_ZONE_ENTER "leaq -128(%%rsp), %%rsp\n\t"
#define RS__RED_ZONE_LEAVE "leaq 128(%%rsp), %%rsp\n\t"
#endif

static inline __attribute__((always_inline)) void rs__ctx_switch(void **save, void *load)
{
    __asm__ volatile(RS__RED_ZONE_ENTER
                     "pushq %%rbp\n\t"
                     "leaq 1f(%%rip), %%rax\n\t"
                     "pushq %%rax\n\t"
                     "movq %%rsp, (%%rdi)\n\t"
                     "movq %%rsi, %%rsp\n\t"
                     "popq %%rax\n\t"
                     "popq %%rbp\n\t"
                     "jmpq *%%rax\n\t"
                     "1:\n\t" RS__RED_ZONE_LEAVE
                     : "+D"(save), "+S"(load)
                     :
                     : "rax", "rbx", "rcx", "rdx", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "memory",
                       "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
                       "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}

/* Prepares a fresh stack whose top (exclusive) is top, so that switching to
 * the returned stack pointer calls entry(arg) on a correctly aligned stack.
 * entry must never return. */
void *rs__ctx_make(void *top, void (*entry)(void *), void *arg);

#endif
