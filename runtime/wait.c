/* Parking and waking tasks; see wait.h for the protocol. */
#include "runtime/wait.h"

#include <errno.h>
#include <stddef.h>

#include "runtime/task.h"
#include "runtime/worker.h"

static void deadline_fired(rs__timer *t)
{
    rs__wait *w = (rs__wait *)((char *)t - offsetof(rs__wait, deadline));
    if (w->abort)
        w->abort(w, -ETIMEDOUT);
}

void rs__wait_init(rs__wait *w, rs__abort_fn abort)
{
    rs__worker *wk = rs__worker_get();
    w->task = wk ? wk->current : NULL;
    w->abort = abort;
    w->result = 0;
    w->woken = false;
    rs__timer_init(&w->deadline, deadline_fired);
}

int rs__wait_park(rs__wait *w, int64_t deadline_ns)
{
    rs_task *t = w->task;
    rs__worker *wk = t->worker;
    if (deadline_ns > 0 && rs__timer_arm(&wk->timers, &w->deadline, deadline_ns) != 0) {
        /* No memory for the heap slot: fail the wait rather than wait forever. */
        if (w->abort)
            w->abort(w, -ENOMEM);
    }
    if (!w->woken) {
        t->waiting = w;
        t->state = RS_TASK_WAITING;
        rs__switch_out(wk);
    }
    rs__timer_disarm(&wk->timers, &w->deadline);
    t->waiting = NULL;
    return w->result;
}

void rs__wait_wake(rs__wait *w, int result)
{
    rs_task *t = w->task;
    w->result = result;
    w->abort = NULL;
    rs__timer_disarm(&t->worker->timers, &w->deadline);
    w->woken = true;
    t->waiting = NULL;
    /* Not yet parked (an abort during rs__wait_park's own setup): the task is
     * still running and will not park at all. */
    if (t->state == RS_TASK_WAITING) {
        rs__make_ready(t->worker, t);
        /* The frames the switch will pop: fetch them while other tasks run
         * (a burst of wake-ups then overlaps its cache misses). */
        __builtin_prefetch(t->sp);
        __builtin_prefetch((char *)t->sp + 64);
    }
}

int64_t rs__deadline_after_ms(int64_t ms)
{
    return ms > 0 ? rs__clock_ns() + ms * 1000000 : 0;
}
