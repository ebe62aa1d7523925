/* Reporting stack overflows: a guard-page hit (SIGSEGV on an alternate signal
 * stack) or a damaged red zone found at a switch. Either way the task's name
 * and stack size go to stderr and the process aborts with SIGABRT. */
#ifndef RS_RUNTIME_OVERFLOW_H
#define RS_RUNTIME_OVERFLOW_H

#include "runtime/worker.h"

void rs__overflow_worker_init(rs__worker *w);
void rs__overflow_worker_destroy(rs__worker *w);
__attribute__((noreturn)) void rs__overflow_report(const rs_task *t);

#endif
