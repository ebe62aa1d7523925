/* The weighted semaphore: bounded concurrency, priority order, weights,
 * head-of-line order, no barging, timeouts and cancellation, validation,
 * no over-release. */
#include "sync_support.h"

typedef struct sem_arg {
    rs_sem *sem;
    int id;
    int64_t n;
    int priority;
    int64_t timeout_ms;
    int *active, *max_active;
    order_log *log;
    volatile bool *go; /* hold until *go (NULL: hold for a few yields) */
    int result;
    bool done;
} sem_arg;

static int sem_task(void *p)
{
    sem_arg *a = p;
    rs_guard g = RS_GUARD_INIT;
    a->result = rs_sem_acquire(a->sem, a->n ? a->n : 1,
                               &(rs_acquire_opts){ .priority = a->priority, .timeout_ms = a->timeout_ms }, &g);
    if (a->result == 0) {
        if (a->log)
            order_add(a->log, a->id);
        if (a->active) {
            (*a->active)++;
            if (*a->active > *a->max_active)
                *a->max_active = *a->active;
        }
        for (int i = 0; i < 5; i++)
            rs_yield();
        for (int i = 0; a->go && !*a->go && i < 5000; i++)
            rs_sleep(1);
        if (a->active)
            (*a->active)--;
        RS_CHECK_OK(rs_guard_release(&g));
    }
    a->done = true;
    return 0;
}

static int limit_two(void *arg)
{
    (void)arg;
    rs_sem *sem;
    RS_CHECK_OK(rs_sem_new(NULL, 2, &sem));
    RS_CHECK_EQ(rs_sem_total(sem), 2);
    int active = 0, max_active = 0;
    sem_arg a[4];
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    for (int i = 0; i < 4; i++) {
        a[i] = (sem_arg){ .sem = sem, .id = i, .active = &active, .max_active = &max_active, .result = 1 };
        RS_CHECK_OK(rs_spawn(s, sem_task, &a[i], NULL, NULL));
    }
    RS_YIELD_UNTIL(rs_sem_waiting(sem) == 2);
    RS_CHECK_EQ(rs_sem_available(sem), 0);
    RS_CHECK_OK(rs_scope_close(s));
    for (int i = 0; i < 4; i++)
        RS_CHECK_EQ(a[i].result, 0);
    RS_CHECK_EQ(max_active, 2);
    RS_CHECK_EQ(rs_sem_available(sem), 2);
    return 0;
}

Test(sem, limit_two_with_four_tasks_runs_two_at_a_time, .timeout = 10)
{
    RS_RUN_OK(limit_two, NULL);
}

static int priority(void *arg)
{
    (void)arg;
    rs_sem *sem;
    RS_CHECK_OK(rs_sem_new(NULL, 1, &sem));
    order_log log = { 0 };
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_sem_acquire(sem, 1, NULL, &g));
    static const int prios[] = { 1, 10, 5, 5 };
    sem_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (sem_arg){ .sem = sem, .id = i, .priority = prios[i], .log = &log, .result = 1 };
        RS_CHECK_OK(rs_spawn(rs_current_scope(), sem_task, &a[i], NULL, NULL));
        RS_YIELD_UNTIL(rs_sem_waiting(sem) == i + 1);
    }
    RS_CHECK_OK(rs_guard_release(&g));
    RS_YIELD_UNTIL(a[0].done && a[1].done && a[2].done && a[3].done);
    RS_CHECK_EQ(log.len, 4);
    RS_CHECK_EQ(log.ids[0], 1);
    RS_CHECK_EQ(log.ids[1], 2);
    RS_CHECK_EQ(log.ids[2], 3);
    RS_CHECK_EQ(log.ids[3], 0);
    return 0;
}

Test(sem, waiters_served_by_priority_then_arrival, .timeout = 10)
{
    RS_RUN_OK(priority, NULL);
}

static int weighted(void *arg)
{
    (void)arg;
    rs_sem *sem;
    RS_CHECK_OK(rs_sem_new(NULL, 5, &sem));
    rs_guard three = RS_GUARD_INIT, two = RS_GUARD_INIT, one = RS_GUARD_INIT;
    RS_CHECK_OK(rs_sem_acquire(sem, 3, NULL, &three));
    RS_CHECK_EQ(rs_sem_available(sem), 2);
    RS_CHECK_EQ(rs_sem_try_acquire(sem, 3, &one), -EBUSY);
    RS_CHECK_OK(rs_sem_try_acquire(sem, 2, &two));
    RS_CHECK_EQ(rs_sem_available(sem), 0);
    RS_CHECK_EQ(rs_sem_try_acquire(sem, 1, &one), -EBUSY);
    RS_CHECK_OK(rs_guard_release(&three));
    RS_CHECK_EQ(rs_sem_available(sem), 3);
    RS_CHECK_OK(rs_guard_release(&two));
    RS_CHECK_EQ(rs_sem_available(sem), 5);
    RS_CHECK_OK(rs_sem_acquire(sem, 5, NULL, &one));
    RS_CHECK_EQ(rs_sem_available(sem), 0);
    RS_CHECK_OK(rs_guard_release(&one));
    return 0;
}

Test(sem, weighted_acquire_takes_n_permits, .timeout = 10)
{
    RS_RUN_OK(weighted, NULL);
}

static int head_of_line(void *arg)
{
    (void)arg;
    rs_sem *sem;
    RS_CHECK_OK(rs_sem_new(NULL, 5, &sem));
    order_log log = { 0 };
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_sem_acquire(sem, 3, NULL, &g));
    volatile bool go = false;
    sem_arg big = { .sem = sem, .id = 1, .n = 3, .log = &log, .go = &go, .result = 1 };
    sem_arg small = { .sem = sem, .id = 2, .n = 1, .log = &log, .go = &go, .result = 1 };
    RS_CHECK_OK(rs_spawn(rs_current_scope(), sem_task, &big, NULL, NULL));
    RS_YIELD_UNTIL(rs_sem_waiting(sem) == 1);
    RS_CHECK_OK(rs_spawn(rs_current_scope(), sem_task, &small, NULL, NULL));
    RS_YIELD_UNTIL(rs_sem_waiting(sem) == 2);
    /* Two permits are free, but the request at the head needs three: nobody overtakes it. */
    for (int i = 0; i < 10; i++)
        RS_CHECK_OK(rs_yield());
    RS_CHECK_EQ(log.len, 0);
    RS_CHECK_EQ(rs_sem_available(sem), 2);
    rs_guard t = RS_GUARD_INIT;
    RS_CHECK_EQ(rs_sem_try_acquire(sem, 1, &t), -EBUSY); /* no barging either */
    RS_CHECK_OK(rs_guard_release(&g));
    /* Both are served at the release: 3 + 1 of 5. */
    RS_CHECK_EQ(rs_sem_waiting(sem), 0);
    RS_CHECK_EQ(rs_sem_available(sem), 1);
    go = true;
    RS_YIELD_UNTIL(big.done && small.done);
    RS_CHECK_EQ(log.ids[0], 1);
    RS_CHECK_EQ(log.ids[1], 2);
    RS_CHECK_EQ(rs_sem_available(sem), 5);
    return 0;
}

Test(sem, large_request_at_the_head_is_not_overtaken, .timeout = 10)
{
    RS_RUN_OK(head_of_line, NULL);
}

static int head_leaves(void *arg)
{
    (void)arg;
    rs_sem *sem;
    RS_CHECK_OK(rs_sem_new(NULL, 4, &sem));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_sem_acquire(sem, 2, NULL, &g));
    volatile bool go = false;
    sem_arg big = { .sem = sem, .id = 1, .n = 4, .timeout_ms = 15, .result = 1 };
    sem_arg small = { .sem = sem, .id = 2, .n = 2, .go = &go, .result = 1 };
    RS_CHECK_OK(rs_spawn(rs_current_scope(), sem_task, &big, NULL, NULL));
    RS_YIELD_UNTIL(rs_sem_waiting(sem) == 1);
    RS_CHECK_OK(rs_spawn(rs_current_scope(), sem_task, &small, NULL, NULL));
    RS_YIELD_UNTIL(rs_sem_waiting(sem) == 2);
    /* When the large head times out, the small request behind it is served at once. */
    RS_CHECK_OK(rs_sleep(30));
    RS_CHECK(big.done);
    RS_CHECK_EQ(big.result, -ETIMEDOUT);
    RS_CHECK_EQ(rs_sem_waiting(sem), 0);
    RS_CHECK_EQ(rs_sem_available(sem), 0);
    go = true;
    RS_YIELD_UNTIL(small.done);
    RS_CHECK_EQ(small.result, 0);
    RS_CHECK_OK(rs_guard_release(&g));
    RS_CHECK_EQ(rs_sem_available(sem), 4);
    return 0;
}

Test(sem, head_timing_out_lets_smaller_requests_through, .timeout = 10)
{
    RS_RUN_OK(head_leaves, NULL);
}

static int cancelled_waiter(void *arg)
{
    (void)arg;
    rs_sem *sem;
    RS_CHECK_OK(rs_sem_new(NULL, 1, &sem));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_sem_acquire(sem, 1, NULL, &g));
    sem_arg a = { .sem = sem, .result = 1 };
    rs_task *t;
    RS_CHECK_OK(rs_spawn(rs_current_scope(), sem_task, &a, NULL, &t));
    RS_YIELD_UNTIL(rs_sem_waiting(sem) == 1);
    rs_task_cancel(t);
    int rc;
    RS_CHECK_OK(rs_task_join(t, &rc));
    RS_CHECK_EQ(a.result, -ECANCELED);
    RS_CHECK_EQ(rs_sem_waiting(sem), 0);
    RS_CHECK_OK(rs_guard_release(&g));
    RS_CHECK_EQ(rs_sem_available(sem), 1);
    /* Timeout of the caller's own acquire. */
    RS_CHECK_OK(rs_sem_acquire(sem, 1, NULL, &g));
    rs_guard h = RS_GUARD_INIT;
    RS_CHECK_EQ(rs_sem_acquire(sem, 1, &(rs_acquire_opts){ .timeout_ms = 5 }, &h), -ETIMEDOUT);
    RS_CHECK(!rs_guard_held(&h));
    RS_CHECK_OK(rs_guard_release(&g));
    return 0;
}

Test(sem, cancelled_or_timed_out_waiter_gets_nothing, .timeout = 10)
{
    RS_RUN_OK(cancelled_waiter, NULL);
}

static int validation(void *arg)
{
    (void)arg;
    rs_sem *sem;
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_EQ(rs_sem_new(NULL, 0, &sem), -EINVAL);
    RS_CHECK_EQ(rs_sem_new(NULL, -3, &sem), -EINVAL);
    RS_CHECK_EQ(rs_sem_new(NULL, 3, NULL), -EINVAL);
    RS_CHECK_OK(rs_sem_new(NULL, 3, &sem));
    RS_CHECK_EQ(rs_sem_acquire(sem, 0, NULL, &g), -EINVAL);
    RS_CHECK_EQ(rs_sem_acquire(sem, 4, NULL, &g), -EINVAL);
    RS_CHECK_EQ(rs_sem_acquire(sem, -1, NULL, &g), -EINVAL);
    RS_CHECK_EQ(rs_sem_acquire(sem, 1, &(rs_acquire_opts){ .timeout_ms = -1 }, &g), -EINVAL);
    RS_CHECK_EQ(rs_sem_acquire(NULL, 1, NULL, &g), -EINVAL);
    RS_CHECK_EQ(rs_sem_acquire(sem, 1, NULL, NULL), -EINVAL);
    RS_CHECK_EQ(rs_sem_try_acquire(sem, 0, &g), -EINVAL);
    RS_CHECK_EQ(rs_sem_try_acquire(sem, 4, &g), -EINVAL);
    RS_CHECK_EQ(rs_sem_try_acquire(NULL, 1, &g), -EINVAL);
    RS_CHECK_EQ(rs_sem_available(NULL), -EINVAL);
    RS_CHECK_EQ(rs_sem_waiting(NULL), -EINVAL);
    RS_CHECK_EQ(rs_sem_total(NULL), -EINVAL);
    RS_CHECK(!rs_guard_held(&g));
    RS_CHECK_EQ(rs_sem_available(sem), 3);
    return 0;
}

Test(sem, bad_arguments_are_einval, .timeout = 10)
{
    RS_RUN_OK(validation, NULL);
}

Test(sem, outside_a_task_is_eperm, .timeout = 10)
{
    rs_sem *sem;
    cr_assert_eq(rs_sem_new(NULL, 1, &sem), -EPERM);
}

static int no_over_release(void *arg)
{
    (void)arg;
    rs_sem *sem;
    RS_CHECK_OK(rs_sem_new(NULL, 3, &sem));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_sem_acquire(sem, 2, NULL, &g));
    rs_guard copy = g;
    RS_CHECK_OK(rs_guard_release(&g));
    RS_CHECK_EQ(rs_guard_release(&g), -EALREADY);
    RS_CHECK_EQ(rs_guard_release(&copy), -EALREADY);
    rs_guard_cleanup(&copy);
    RS_CHECK_EQ(rs_sem_available(sem), 3);
    RS_CHECK_EQ(rs_sem_total(sem), 3);
    /* Cancelled before the call: nothing taken. */
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    rs_scope_cancel(s);
    RS_CHECK_EQ(rs_sem_acquire(sem, 1, NULL, &g), -ECANCELED);
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(rs_sem_available(sem), 3);
    return 0;
}

Test(sem, guards_cannot_over_release, .timeout = 10)
{
    RS_RUN_OK(no_over_release, NULL);
}
