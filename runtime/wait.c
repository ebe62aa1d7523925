/* The out-of-line parts of waits (see wait.h and sched.h). */
#include "runtime/sched.h"

#include <stddef.h>

void rs__wait_deadline_fired(rs__timer *t)
{
    rs__wait *w = (rs__wait *)((char *)t - offsetof(rs__wait, deadline));
    if (w->abort)
        w->abort(w, -ETIMEDOUT);
}

int rs__wait_arm_deadline(rs__wait *w, int64_t deadline_ns)
{
    rs__timer_init(&w->deadline, rs__wait_deadline_fired);
    return rs__timer_arm(&w->task->worker->timers, &w->deadline, deadline_ns);
}
