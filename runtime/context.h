/* Machine context switch between stacks.
 *
 * A context is one saved stack pointer: the callee-saved registers and the
 * resume address are pushed on the stack being left. rs__ctx_switch saves the
 * current context into *save and resumes the one whose stack pointer is load;
 * it returns when something switches back to the saved context.
 *
 * Not saved: the x87 control word and MXCSR. Tasks that change floating-point
 * control state must restore it before they suspend (this keeps a switch at a
 * handful of instructions; Boost.Context's default saves them). */
#ifndef RS_RUNTIME_CONTEXT_H
#define RS_RUNTIME_CONTEXT_H

#include <stddef.h>

#if !defined(__x86_64__)
#error "ringscope: the context switch is written for x86-64 only (runtime/context_x86_64.S); \
an aarch64 port needs runtime/context_aarch64.S and rs__ctx_make support"
#endif

/* Saves callee-saved registers on the current stack, stores the stack pointer
 * in *save, loads load and resumes there. */
void rs__ctx_switch(void **save, void *load);

/* Prepares a fresh stack whose top (exclusive, 16-byte aligned) is top, so
 * that switching to the returned stack pointer calls entry(arg) with a
 * correctly aligned stack. entry must never return. */
void *rs__ctx_make(void *top, void (*entry)(void *), void *arg);

#endif
