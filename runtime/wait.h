/* A wait: how a task suspends until something wakes it.
 *
 * The record lives in the waiting task's frame. Whoever ends the wait calls
 * rs__wait_wake exactly once with the result the task will see. While abort is
 * non-NULL the wait may also be ended early: by cancellation of the task
 * (reason -ECANCELED) or by its deadline (reason -ETIMEDOUT). abort must
 * detach the record from whatever it is queued on and then either wake the
 * task at once or arrange for it to be woken later (an I/O operation waits for
 * its kernel completion first). rs__wait_wake clears abort, so "granted",
 * "timed out" and "cancelled" can never all happen: the first one wins. */
#ifndef RS_RUNTIME_WAIT_H
#define RS_RUNTIME_WAIT_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/timer.h"

typedef struct rs_task rs_task;
typedef struct rs__wait rs__wait;
typedef void (*rs__abort_fn)(rs__wait *w, int reason);

struct rs__wait {
    rs_task *task;
    rs__abort_fn abort; /* NULL: the wait cannot be ended early (any more) */
    int result;
    bool woken;
    rs__timer deadline;
};

/* Prepares a wait for the calling task. abort NULL: not cancellable. */
void rs__wait_init(rs__wait *w, rs__abort_fn abort);

/* Suspends the calling task until the wait is woken. deadline_ns (monotonic,
 * 0 = none) arms a timer that aborts the wait with -ETIMEDOUT. The caller has
 * already checked for cancellation and queued w where a waker will find it.
 * Returns the result passed to rs__wait_wake. */
int rs__wait_park(rs__wait *w, int64_t deadline_ns);

/* Ends the wait: the task becomes ready and rs__wait_park returns result. */
void rs__wait_wake(rs__wait *w, int result);

/* Converts a relative timeout in ms (0 = none) to a deadline for park. */
int64_t rs__deadline_after_ms(int64_t ms);

#endif
