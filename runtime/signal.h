/* Signals: the observable side of a cancellation (a scope's) or of a lost
 * lease (a distributed guard's). Aborting is one-shot: the first reason
 * sticks, and every task waiting in rs_signal_wait is woken with 0. */
#ifndef RS_RUNTIME_SIGNAL_H
#define RS_RUNTIME_SIGNAL_H

#include <ringscope/runtime.h>

#include "runtime/waitq.h"

struct rs__worker;

struct rs_signal {
    int reason; /* 0 while not aborted, else a negative errno */
    rs__waitq waiters;
    struct rs__worker *owner; /* the runtime whose tasks may wait on it; NULL: a thread's own (never aborted) */
};

void rs__signal_init(rs_signal *sig, struct rs__worker *owner);
void rs__signal_abort(rs_signal *sig, int reason);
/* Wakes waiters with -ECANCELED: the object the signal belongs to is going away. */
void rs__signal_dispose(rs_signal *sig);

#endif
