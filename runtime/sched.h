/* The scheduler's fast paths, inline: the run queue, switching, parking and
 * waking. They sit on every yield, every lock hand-off and every I/O wait, so
 * they are written out here for the compiler to fold into their callers; the
 * invariants they keep are stated at the top of runtime/worker.c. */
#ifndef RS_RUNTIME_SCHED_H
#define RS_RUNTIME_SCHED_H

#include <errno.h>

#include "runtime/context.h"
#include "runtime/sanitizer.h"
#include "runtime/task.h"
#include "runtime/timer.h"
#include "runtime/wait.h"
#include "runtime/worker.h"

/* The calling task of a blocking call: 0 with *t set, -EPERM outside a
 * task, -ECANCELED for a cancelled task (*t set all the same). */
static inline int rs__blocking_caller(rs_task **t)
{
    rs__worker *w = rs__worker_get();
    if (__builtin_expect(!w || !w->current, 0))
        return -EPERM;
    *t = w->current;
    return __builtin_expect(rs__task_cancelled(*t), 0) ? -ECANCELED : 0;
}

/* 0, -ECANCELED for a cancelled calling task, -EPERM outside a task. */
static inline int rs__checkpoint(void)
{
    rs_task *t;
    return rs__blocking_caller(&t);
}

/* ------------------------------------------------------------ run queue */

/* Appends t to the run queue. t must not be running elsewhere or queued. */
static inline void rs__make_ready(rs__worker *w, rs_task *t)
{
    t->state = RS_TASK_ACTIVE;
    t->run_next = NULL;
    *w->runq_tailp = t;
    w->runq_tailp = &t->run_next;
}

static inline rs_task *rs__runq_pop(rs__worker *w)
{
    rs_task *t = w->runq_head;
    if (t) {
        w->runq_head = t->run_next;
        if (w->runq_timed_tailp == &t->run_next)
            w->runq_timed_tailp = &w->runq_head;
        if (!w->runq_head)
            w->runq_tailp = &w->runq_head;
    }
    return t;
}

/* ------------------------------------------------------------ switching */

/* Moves execution from the running context (task `from`, or the scheduler
 * when NULL) to `to` (a task, or the scheduler when NULL). Returns when
 * something switches back to `from`. */
static inline void rs__switch_to(rs__worker *w, rs_task *from, rs_task *to)
{
    void **save = from ? &from->sp : &w->sched_sp;
    w->current = to;
#ifdef RS_ASAN
    void **fake = from ? &from->asan_fake_stack : &w->sched_fake_stack;
    if (to)
        __sanitizer_start_switch_fiber(fake, to->stack->low, rs__stack_usable(to->stack));
    else
        __sanitizer_start_switch_fiber(fake, w->thread_stack_low, w->thread_stack_size);
#endif
    rs__ctx_switch(save, to ? to->sp : w->sched_sp);
#ifdef RS_ASAN
    __sanitizer_finish_switch_fiber(from ? from->asan_fake_stack : w->sched_fake_stack, NULL, NULL);
#endif
}

/* Invariant 6 (worker.c): checked on every switch out of a task whose stack
 * has no guard page (a guard page faults on its own, at no cost per switch). */
static inline void rs__check_stack(const rs_task *t)
{
    if (t->stack_unguarded && __builtin_expect(!rs__stack_redzone_intact(t->stack), 0))
        rs__overflow_report(t);
}

/* The next task to run, after a kernel trip when the dispatch budget ran
 * out; NULL: nothing is ready (the scheduler then waits in the kernel). */
static inline rs_task *rs__next_task(rs__worker *w)
{
    if (__builtin_expect(--w->budget < 0, 0))
        rs__worker_refill(w);
    return rs__runq_pop(w);
}

/* The running task gives up the CPU: it has queued itself (yield) or parked
 * on a wait. The next ready task runs directly, or the scheduler when none
 * is. Returns when the task is scheduled again. */
static inline void rs__switch_out_from(rs__worker *w, rs_task *cur)
{
    rs__check_stack(cur);
    rs_task *next = rs__next_task(w);
    if (next == cur)
        return;
    rs__switch_to(w, cur, next);
}

static inline void rs__switch_out(rs__worker *w)
{
    rs__switch_out_from(w, w->current);
}

/* ------------------------------------------------------------ waits */

/* Prepares a wait for task t, the calling task. abort NULL: not cancellable.
 * (The deadline timer's fire function is set when a deadline is armed.) */
static inline void rs__wait_init_task(rs__wait *w, rs_task *t, rs__abort_fn abort)
{
    w->task = t;
    w->abort = abort;
    w->result = 0;
    w->woken = false;
    w->deadline.handle = NULL;
}

/* Prepares a wait for the calling task. abort NULL: not cancellable. */
static inline void rs__wait_init(rs__wait *w, rs__abort_fn abort)
{
    rs__worker *wk = rs__worker_get();
    rs__wait_init_task(w, wk ? wk->current : NULL, abort);
}

/* Suspends the calling task until the wait is woken. deadline_ns (monotonic,
 * 0 = none) arms a timer that aborts the wait with -ETIMEDOUT. The caller has
 * already checked for cancellation and queued w where a waker will find it.
 * Returns the result passed to rs__wait_wake (which also disarmed the timer).
 * A wait that the caller's own setup already ended (woken before it parks)
 * returns at once and arms nothing: only a wake disarms the deadline, and
 * none would come, so the timer would fire into a returned call's frame. */
static inline int rs__wait_park(rs__wait *w, int64_t deadline_ns)
{
    rs_task *t = w->task;
    if (deadline_ns > 0 && !w->woken && rs__wait_arm_deadline(w, deadline_ns) != 0 && w->abort)
        w->abort(w, -ENOMEM); /* no heap slot: fail the wait rather than wait forever */
    if (!w->woken) {
        t->waiting = w;
        t->state = RS_TASK_WAITING;
        rs__switch_out_from(t->worker, t);
    }
    return w->result;
}

/* Ends the wait: the task becomes ready and rs__wait_park returns result. */
static inline void rs__wait_wake(rs__wait *w, int result)
{
    rs_task *t = w->task;
    w->result = result;
    w->abort = NULL;
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
    /* Last, so that the common case (no deadline) needs no saved registers
     * around a call in the middle of its callers. */
    if (rs__timer_armed(&w->deadline))
        rs__timer_disarm(&t->worker->timers, &w->deadline);
}

/* Converts a relative timeout in ms (0 = none) to a deadline for park.
 * A limit whose deadline would pass INT64_MAX ns (about 292 years of uptime)
 * is no limit: computed plainly, ms * 1000000 would overflow and wrap into
 * the past, so a wait asked to last "forever" would time out at once. */
static inline int64_t rs__deadline_after_ms(int64_t ms)
{
    int64_t ns, deadline;
    if (ms <= 0 || __builtin_mul_overflow(ms, (int64_t)1000000, &ns) ||
        __builtin_add_overflow(rs__clock_ns(), ns, &deadline))
        return 0;
    return deadline;
}

#endif
