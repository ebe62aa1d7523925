/* Waiters that leave a lock's queue without the lock: timeouts, task
 * cancellation, scope cancellation, scope timeouts. They never hold it, the
 * next waiter gets it, and a waiter granted before its cancellation returns
 * success. */
#include "sync_support.h"

typedef struct waiter_arg {
    rs_lock *lock;
    int id;
    int64_t timeout_ms;    /* the acquire's own timeout */
    int64_t scope_timeout; /* >0: acquire inside a scope with this timeout */
    rs_scope *scope;       /* set when the waiter opened a scope */
    order_log *log;
    int result;
    int close_result;
    bool held;             /* rs_guard_held right after the acquire returned */
    bool done;
} waiter_arg;

static int waiter(void *p)
{
    waiter_arg *a = p;
    if (a->scope_timeout > 0 || a->scope_timeout == -1)
        RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = a->scope_timeout > 0 ? a->scope_timeout : 0 },
                                  &a->scope));
    rs_guard g = RS_GUARD_INIT;
    a->result = rs_lock_acquire(a->lock, &(rs_acquire_opts){ .timeout_ms = a->timeout_ms }, &g);
    a->held = rs_guard_held(&g);
    if (a->result == 0 && a->log)
        order_add(a->log, a->id);
    if (a->result == 0)
        rs_guard_release(&g);
    if (a->scope) {
        a->close_result = rs_scope_close(a->scope);
        a->scope = NULL;
    }
    a->done = true;
    return 0;
}

/* The test task holds a lock with two waiters queued behind it, in this
 * order: `leaving` (id 1), which the test makes leave the queue, and `next`
 * (id 2), which must get the lock after it. */
typedef struct two_waiters {
    rs_lock *lock;
    rs_guard held;
    order_log log;
    waiter_arg leaving, next;
    rs_task *leaving_task;
} two_waiters;

/* Sets q up; the leaving waiter waits as leaving_waits says (its timeout_ms
 * and scope_timeout; its other fields are not read). */
static int queue_two_waiters(two_waiters *q, const waiter_arg *leaving_waits)
{
    *q = (two_waiters){ .held = RS_GUARD_INIT };
    RS_CHECK_OK(new_held_lock(&q->lock, &q->held));
    q->leaving = (waiter_arg){ .lock = q->lock, .id = 1, .log = &q->log, .result = 1 };
    q->leaving.timeout_ms = leaving_waits->timeout_ms;
    q->leaving.scope_timeout = leaving_waits->scope_timeout;
    q->next = (waiter_arg){ .lock = q->lock, .id = 2, .log = &q->log, .result = 1 };
    RS_CHECK_OK(spawn_queued(q->lock, waiter, &q->leaving, &q->leaving_task, 1));
    RS_CHECK_OK(spawn_queued(q->lock, waiter, &q->next, NULL, 2));
    return 0;
}

/* The leaving waiter ended without ever holding the lock, and the next one
 * gets it, first, once the test task releases it. */
static int check_next_gets_it(two_waiters *q)
{
    RS_YIELD_UNTIL(q->leaving.done);
    RS_CHECK(!q->leaving.held);
    RS_CHECK_EQ(lock_pending(q->lock), 1u);
    RS_CHECK_OK(rs_guard_release(&q->held));
    RS_YIELD_UNTIL(q->next.done);
    RS_CHECK_EQ(q->next.result, 0);
    RS_CHECK_EQ(q->log.len, 1);
    RS_CHECK_EQ(q->log.ids[0], q->next.id);
    return 0;
}

static int after_timeout(void *arg)
{
    (void)arg;
    two_waiters q;
    RS_CHECK_OK(queue_two_waiters(&q, &(waiter_arg){ .timeout_ms = 15 }));
    RS_CHECK_OK(rs_sleep(30));
    RS_CHECK_EQ(q.leaving.result, -ETIMEDOUT);
    return check_next_gets_it(&q);
}

Test(lock_cancel, timed_out_waiter_never_holds_and_next_gets_it, .timeout = 10)
{
    RS_RUN_OK(after_timeout, NULL);
}

static int after_task_cancel(void *arg)
{
    (void)arg;
    two_waiters q;
    RS_CHECK_OK(queue_two_waiters(&q, &(waiter_arg){ 0 })); /* a plain acquire, without a timeout */
    rs_task_cancel(q.leaving_task);
    RS_CHECK_EQ(lock_pending(q.lock), 1u); /* left the queue at once */
    RS_YIELD_UNTIL(q.leaving.done);
    RS_CHECK_EQ(q.leaving.result, -ECANCELED);
    return check_next_gets_it(&q);
}

Test(lock_cancel, cancelled_task_never_holds_and_next_gets_it, .timeout = 10)
{
    RS_RUN_OK(after_task_cancel, NULL);
}

static int after_scope_cancel(void *arg)
{
    (void)arg;
    /* The leaving waiter waits inside a scope of its own (scope_timeout -1: no timeout), which we cancel. */
    two_waiters q;
    RS_CHECK_OK(queue_two_waiters(&q, &(waiter_arg){ .scope_timeout = -1 }));
    RS_CHECK(q.leaving.scope);
    rs_scope_cancel(q.leaving.scope);
    RS_CHECK_EQ(lock_pending(q.lock), 1u);
    RS_YIELD_UNTIL(q.leaving.done);
    RS_CHECK_EQ(q.leaving.result, -ECANCELED);
    RS_CHECK_EQ(q.leaving.close_result, 0);
    return check_next_gets_it(&q);
}

Test(lock_cancel, scope_cancel_wakes_the_waiter_without_the_lock, .timeout = 10)
{
    RS_RUN_OK(after_scope_cancel, NULL);
}

static int after_scope_timeout(void *arg)
{
    (void)arg;
    two_waiters q;
    RS_CHECK_OK(queue_two_waiters(&q, &(waiter_arg){ .scope_timeout = 15 }));
    RS_CHECK_OK(rs_sleep(30));
    RS_CHECK(q.leaving.done);
    RS_CHECK_EQ(q.leaving.result, -ECANCELED);
    RS_CHECK_EQ(q.leaving.close_result, -ETIMEDOUT);
    return check_next_gets_it(&q);
}

Test(lock_cancel, scope_timeout_wakes_the_waiter_without_the_lock, .timeout = 10)
{
    RS_RUN_OK(after_scope_timeout, NULL);
}

static int granted_then_cancelled(void *arg)
{
    (void)arg;
    rs_lock *l;
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(new_held_lock(&l, &g));
    order_log log = { 0 };
    waiter_arg w = { .lock = l, .id = 1, .log = &log, .result = 1 };
    rs_task *wt;
    RS_CHECK_OK(spawn_queued(l, waiter, &w, &wt, 1));
    /* The release grants the waiter; the cancellation comes before it runs. */
    RS_CHECK_OK(rs_guard_release(&g));
    rs_task_cancel(wt);
    RS_YIELD_UNTIL(w.done);
    RS_CHECK_EQ(w.result, 0);
    RS_CHECK(w.held);
    RS_CHECK_EQ(log.len, 1);
    rs_lock_stats st;
    RS_CHECK_OK(rs_lock_stats_get(l, &st));
    RS_CHECK(!st.exclusive); /* it released what it was given */
    RS_CHECK_OK(rs_lock_try_acquire(l, &g));
    RS_CHECK_OK(rs_guard_release(&g));
    return 0;
}

Test(lock_cancel, granted_waiter_returns_success_despite_a_later_cancel, .timeout = 10)
{
    RS_RUN_OK(granted_then_cancelled, NULL);
}

static int cancel_many(void *arg)
{
    (void)arg;
    /* Every other waiter of a long queue is cancelled: the rest get the lock in order. */
    rs_lock *l;
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(new_held_lock(&l, &g));
    order_log log = { 0 };
    waiter_arg a[20];
    rs_task *t[20];
    for (int i = 0; i < 20; i++) {
        a[i] = (waiter_arg){ .lock = l, .id = i, .log = &log, .result = 1 };
        RS_CHECK_OK(spawn_queued(l, waiter, &a[i], &t[i], (unsigned)i + 1));
    }
    for (int i = 0; i < 20; i += 2)
        rs_task_cancel(t[i]);
    RS_CHECK_EQ(lock_pending(l), 10u);
    RS_CHECK_OK(rs_guard_release(&g));
    for (int i = 0; i < 20; i++) {
        int rc;
        RS_CHECK_OK(rs_task_join(t[i], &rc));
        RS_CHECK_EQ(a[i].result, i % 2 ? 0 : -ECANCELED);
    }
    RS_CHECK_EQ(log.len, 10);
    for (int i = 0; i < 10; i++)
        RS_CHECK_EQ(log.ids[i], 2 * i + 1);
    return 0;
}

Test(lock_cancel, cancelling_many_waiters_keeps_the_order_of_the_rest, .timeout = 10)
{
    RS_RUN_OK(cancel_many, NULL);
}
