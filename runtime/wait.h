/* A wait: how a task suspends until something wakes it.
 *
 * The record lives in the waiting task's frame. Whoever ends the wait calls
 * rs__wait_wake exactly once with the result the task will see. While abort is
 * non-NULL the wait may also be ended early: by cancellation of the task
 * (reason -ECANCELED) or by its deadline (reason -ETIMEDOUT). abort must
 * detach the record from whatever it is queued on and then either wake the
 * task at once or arrange for it to be woken later (an I/O operation waits for
 * its kernel completion first). rs__wait_wake clears abort, so "granted",
 * "timed out" and "cancelled" can never all happen: the first one wins.
 *
 * The functions (rs__wait_init, rs__wait_park, rs__wait_wake,
 * rs__deadline_after_ms) are inline, in runtime/sched.h. */
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

/* The deadline timer's fire function (aborts the wait with -ETIMEDOUT). */
void rs__wait_deadline_fired(rs__timer *t);

/* The slow part of rs__wait_park: arming the deadline. 0 or -ENOMEM. */
int rs__wait_arm_deadline(rs__wait *w, int64_t deadline_ns);

#endif
