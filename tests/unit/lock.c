/* The in-memory exclusive lock: acquire/release, stats, RS_GUARD, no barging,
 * hand-off to waiters, timeouts, priority order, self-deadlock, validation. */
#include <string.h>

#include "sync_support.h"
#include "sync/lock_backend.h"

/* ------------------------------------------------------------ basics */

static int acquire_release_stats(void *arg)
{
    (void)arg;
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(NULL, NULL, &l));
    rs_lock_stats st;
    RS_CHECK_OK(rs_lock_stats_get(l, &st));
    RS_CHECK(!st.exclusive && !st.writer && st.readers == 0 && st.pending == 0);

    rs_guard g = RS_GUARD_INIT;
    RS_CHECK(!rs_guard_held(&g));
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
    RS_CHECK(rs_guard_held(&g));
    RS_CHECK_OK(rs_lock_stats_get(l, &st));
    RS_CHECK(st.exclusive && !st.writer && st.readers == 0 && st.pending == 0);

    RS_CHECK_OK(rs_guard_release(&g));
    RS_CHECK(!rs_guard_held(&g));
    RS_CHECK_OK(rs_lock_stats_get(l, &st));
    RS_CHECK(!st.exclusive);
    RS_CHECK_EQ(rs_guard_release(&g), -EALREADY);
    return 0;
}

Test(lock, acquire_release_and_stats, .timeout = 10)
{
    RS_RUN_OK(acquire_release_stats, NULL);
}

static int guard_macro(void *arg)
{
    (void)arg;
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(NULL, &(rs_lock_opts){ .name = "macro" }, &l));
    {
        RS_GUARD(g);
        RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
        rs_lock_stats st;
        RS_CHECK_OK(rs_lock_stats_get(l, &st));
        RS_CHECK(st.exclusive);
    }
    rs_lock_stats st;
    RS_CHECK_OK(rs_lock_stats_get(l, &st));
    RS_CHECK(!st.exclusive);
    /* A guard released by hand is left alone by its cleanup. */
    {
        RS_GUARD(g);
        RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
        RS_CHECK_OK(rs_guard_release(&g));
    }
    RS_GUARD(g);
    RS_CHECK_OK(rs_lock_try_acquire(l, &g));
    return 0;
}

Test(lock, rs_guard_releases_at_block_end, .timeout = 10)
{
    RS_RUN_OK(guard_macro, NULL);
}

static int sequential(void *arg)
{
    (void)arg;
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(NULL, NULL, &l));
    uint64_t last = 0;
    for (int i = 0; i < 1000; i++) {
        RS_GUARD(g);
        RS_CHECK_OK(i % 2 ? rs_lock_acquire(l, NULL, &g) : rs_lock_try_acquire(l, &g));
        RS_CHECK(rs_guard_token(&g) > last);
        last = rs_guard_token(&g);
    }
    return 0;
}

Test(lock, sequential_acquisitions, .timeout = 10)
{
    RS_RUN_OK(sequential, NULL);
}

/* ------------------------------------------------------------ contention */

typedef struct holder_arg {
    rs_lock *lock;
    int id;
    int priority;
    int64_t timeout_ms;
    order_log *log;
    int result;
    bool release;   /* release right after acquiring */
} holder_arg;

static int take_and_log(void *p)
{
    holder_arg *a = p;
    rs_guard g = RS_GUARD_INIT;
    a->result = rs_lock_acquire(a->lock, &(rs_acquire_opts){ .priority = a->priority, .timeout_ms = a->timeout_ms },
                                &g);
    if (a->result == 0) {
        if (a->log)
            order_add(a->log, a->id);
        RS_CHECK_OK(rs_yield()); /* hold across a switch */
        RS_CHECK_OK(rs_guard_release(&g));
    }
    return 0;
}

/* Waits for the task t, which ran with a, to end and checks what its acquire returned. */
static int join_holder(rs_task *t, const holder_arg *a, int expected_result)
{
    int rc;
    RS_CHECK_OK(rs_task_join(t, &rc));
    RS_CHECK_EQ(a->result, expected_result);
    return 0;
}

static int try_while_held(void *arg)
{
    (void)arg;
    rs_lock *l;
    RS_GUARD(g);
    RS_CHECK_OK(new_held_lock(&l, &g));

    /* Another task's try fails while the lock is held. */
    holder_arg a = { .lock = l, .result = 1 };
    rs_task *t;
    RS_CHECK_OK(spawn_queued(l, take_and_log, &a, &t, 1));

    /* The holder releases with a waiter queued: the lock goes to the waiter,
     * and the releaser cannot barge back in before the waiter ran. */
    RS_CHECK_OK(rs_guard_release(&g));
    rs_lock_stats st;
    RS_CHECK_OK(rs_lock_stats_get(l, &st));
    RS_CHECK(st.exclusive && st.pending == 0);
    rs_guard g2 = RS_GUARD_INIT;
    RS_CHECK_EQ(rs_lock_try_acquire(l, &g2), -EBUSY);
    RS_CHECK(!rs_guard_held(&g2));
    RS_CHECK_OK(join_holder(t, &a, 0));
    RS_CHECK_OK(rs_lock_try_acquire(l, &g2));
    RS_CHECK_OK(rs_guard_release(&g2));
    return 0;
}

Test(lock, try_acquire_busy_while_held_and_no_barging, .timeout = 10)
{
    RS_RUN_OK(try_while_held, NULL);
}

static int try_other_task(void *p)
{
    holder_arg *a = p;
    rs_guard g = RS_GUARD_INIT;
    a->result = rs_lock_try_acquire(a->lock, &g);
    if (a->result == 0)
        rs_guard_release(&g);
    return 0;
}

static int try_busy_queued(void *arg)
{
    (void)arg;
    rs_lock *l;
    RS_GUARD(g);
    RS_CHECK_OK(new_held_lock(&l, &g));
    holder_arg w = { .lock = l, .result = 1 };
    rs_task *wt;
    RS_CHECK_OK(spawn_queued(l, take_and_log, &w, &wt, 1));
    holder_arg t = { .lock = l, .result = 1 };
    rs_task *tt;
    RS_CHECK_OK(rs_spawn(rs_current_scope(), try_other_task, &t, NULL, &tt));
    RS_CHECK_OK(join_holder(tt, &t, -EBUSY));
    RS_CHECK_OK(rs_guard_release(&g));
    return join_holder(wt, &w, 0);
}

Test(lock, try_acquire_busy_while_someone_is_queued, .timeout = 10)
{
    RS_RUN_OK(try_busy_queued, NULL);
}

static int waiter_gets_it(void *arg)
{
    (void)arg;
    rs_lock *l;
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(new_held_lock(&l, &g));
    order_log log = { 0 };
    holder_arg a = { .lock = l, .id = 7, .log = &log, .result = 1 };
    rs_task *t;
    RS_CHECK_OK(rs_spawn(rs_current_scope(), take_and_log, &a, NULL, &t));
    for (int i = 0; i < 10; i++)
        RS_CHECK_OK(rs_yield());
    RS_CHECK_EQ(log.len, 0); /* still waiting while held */
    RS_CHECK_EQ(lock_pending(l), 1u);
    RS_CHECK_OK(rs_guard_release(&g));
    RS_CHECK_OK(join_holder(t, &a, 0));
    RS_CHECK_EQ(log.len, 1);
    RS_CHECK_EQ(log.ids[0], 7);
    return 0;
}

Test(lock, waiter_gets_the_lock_when_the_holder_releases, .timeout = 10)
{
    RS_RUN_OK(waiter_gets_it, NULL);
}

/* ------------------------------------------------------------ timeout */

static int times_out(void *arg)
{
    (void)arg;
    rs_lock *l;
    RS_GUARD(g);
    RS_CHECK_OK(new_held_lock(&l, &g));
    holder_arg a = { .lock = l, .timeout_ms = 20, .result = 1 };
    rs_task *t;
    int64_t start = rs_now_ms();
    RS_CHECK_OK(rs_spawn(rs_current_scope(), take_and_log, &a, NULL, &t));
    RS_CHECK_OK(join_holder(t, &a, -ETIMEDOUT));
    int64_t waited = rs_now_ms() - start;
    RS_CHECK(waited >= 19 && waited < 2000);
    RS_CHECK(strstr(rs_strerror(-ETIMEDOUT), "timeout") != NULL);
    RS_CHECK_EQ(lock_pending(l), 0u);
    rs_lock_stats st;
    RS_CHECK_OK(rs_lock_stats_get(l, &st));
    RS_CHECK(st.exclusive); /* still ours */
    RS_CHECK(rs_guard_held(&g));
    return 0;
}

Test(lock, acquire_times_out, .timeout = 10)
{
    RS_RUN_OK(times_out, NULL);
}

/* ------------------------------------------------------------ priority */

/* Queues one waiter per entry of prios behind the held lock l, in index
 * order (waiter i has id i), releases it and waits until all got it in turn. */
static int run_order(rs_lock *l, const int *prios, int n, order_log *log)
{
    RS_GUARD(g);
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
    holder_arg a[64];
    for (int i = 0; i < n; i++) {
        a[i] = (holder_arg){ .lock = l, .id = i, .priority = prios[i], .log = log, .result = 1 };
        /* queue in spawn order, so that arrival order is known */
        RS_CHECK_OK(spawn_queued(l, take_and_log, &a[i], NULL, (unsigned)i + 1));
    }
    RS_CHECK_OK(rs_guard_release(&g));
    RS_YIELD_UNTIL(log->len == n);
    for (int i = 0; i < n; i++)
        RS_CHECK_EQ(a[i].result, 0);
    return 0;
}

/* run_order, then checks that the waiters got the lock in the order of the ids in granted_ids. */
static int check_grant_order(rs_lock *l, const int *prios, const int *granted_ids, int n)
{
    order_log log = { 0 };
    RS_CHECK_OK(run_order(l, prios, n, &log));
    for (int i = 0; i < n; i++)
        RS_CHECK_EQ(log.ids[i], granted_ids[i]);
    return 0;
}

static int priority_order(void *arg)
{
    (void)arg;
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(NULL, NULL, &l));
    static const int prios[] = { 1, 10, 5 };
    static const int granted_ids[] = { 1, 2, 0 }; /* priority 10, then 5, then 1 */
    return check_grant_order(l, prios, granted_ids, 3);
}

Test(lock, waiters_granted_by_priority, .timeout = 10)
{
    RS_RUN_OK(priority_order, NULL);
}

static int fifo_order(void *arg)
{
    (void)arg;
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(NULL, NULL, &l));
    static const int prios[] = { 3, 3, 3, 3, 3, 3 };
    static const int granted_ids[] = { 0, 1, 2, 3, 4, 5 };
    return check_grant_order(l, prios, granted_ids, 6);
}

Test(lock, fifo_among_equal_priorities, .timeout = 10)
{
    RS_RUN_OK(fifo_order, NULL);
}

static int many_waiters(void *arg)
{
    (void)arg;
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(NULL, NULL, &l));
    order_log log = { 0 };
    int prios[64];
    for (int i = 0; i < 64; i++)
        prios[i] = (i * 7) % 5; /* 0..4, interleaved */
    RS_CHECK_OK(run_order(l, prios, 64, &log));
    /* Priorities never increase along the grant order; equal ones keep arrival order. */
    for (int i = 1; i < 64; i++) {
        int a = log.ids[i - 1], b = log.ids[i];
        RS_CHECK(prios[a] > prios[b] || (prios[a] == prios[b] && a < b));
    }
    /* Two waiters (the case that deadlocks elsewhere). */
    static const int p2[] = { 0, 1 };
    static const int granted_ids[] = { 1, 0 };
    return check_grant_order(l, p2, granted_ids, 2);
}

Test(lock, priority_order_with_many_waiters, .timeout = 20)
{
    RS_RUN_OK(many_waiters, NULL);
}

/* ------------------------------------------------------------ self-deadlock, validation */

static int self_deadlock(void *arg)
{
    (void)arg;
    rs_lock *l;
    RS_GUARD(g);
    RS_CHECK_OK(new_held_lock(&l, &g));
    rs_guard g2 = RS_GUARD_INIT;
    RS_CHECK_EQ(rs_lock_acquire(l, NULL, &g2), -EDEADLK);
    RS_CHECK_EQ(rs_lock_acquire(l, &(rs_acquire_opts){ .timeout_ms = 5 }, &g2), -EDEADLK);
    RS_CHECK_EQ(rs_lock_try_acquire(l, &g2), -EDEADLK);
    RS_CHECK(!rs_guard_held(&g2));
    RS_CHECK(rs_guard_held(&g));
    RS_CHECK_OK(rs_guard_release(&g));
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g2));
    RS_CHECK_OK(rs_guard_release(&g2));
    return 0;
}

Test(lock, reacquire_by_holder_is_edeadlk, .timeout = 10)
{
    RS_RUN_OK(self_deadlock, NULL);
}

static int validation(void *arg)
{
    (void)arg;
    rs_lock *l;
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_EQ(rs_lock_new(NULL, NULL, NULL), -EINVAL);
    RS_CHECK_OK(rs_lock_new(NULL, NULL, &l));
    RS_CHECK_EQ(rs_lock_acquire(NULL, NULL, &g), -EINVAL);
    RS_CHECK_EQ(rs_lock_acquire(l, NULL, NULL), -EINVAL);
    RS_CHECK_EQ(rs_lock_acquire(l, &(rs_acquire_opts){ .timeout_ms = -1 }, &g), -EINVAL);
    RS_CHECK_EQ(rs_lock_try_acquire(NULL, &g), -EINVAL);
    RS_CHECK_EQ(rs_lock_try_acquire(l, NULL), -EINVAL);
    /* wrong mode */
    RS_CHECK_EQ(rs_lock_read(l, NULL, &g), -EINVAL);
    RS_CHECK_EQ(rs_lock_write(l, NULL, &g), -EINVAL);
    RS_CHECK_EQ(rs_lock_try_read(l, &g), -EINVAL);
    RS_CHECK_EQ(rs_lock_try_write(l, &g), -EINVAL);
    RS_CHECK_EQ(rs_lock_stats_get(NULL, &(rs_lock_stats){ 0 }), -EINVAL);
    RS_CHECK_EQ(rs_lock_stats_get(l, NULL), -EINVAL);
    RS_CHECK(!rs_guard_held(&g));
    /* Store-only options are ignored without a store; a negative ttl is still a bad duration. */
    rs_lock *l2;
    RS_CHECK_OK(rs_lock_new(NULL, &(rs_lock_opts){ .key = "k", .ttl_ms = 5, .owner = "me", .no_renew = true }, &l2));
    RS_CHECK_EQ(rs_lock_new(NULL, &(rs_lock_opts){ .ttl_ms = -1 }, &l2), -EINVAL);
    /* With a store: a key is required, and without a distributed engine it is not supported. */
    struct rs_store *fake = (struct rs_store *)&g;
    RS_CHECK_EQ(rs_lock_new(NULL, &(rs_lock_opts){ .store = fake }, &l2), -EINVAL);
    RS_CHECK_EQ(rs_lock_new(NULL, &(rs_lock_opts){ .store = fake, .key = "" }, &l2), -EINVAL);
    char longkey[600];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    RS_CHECK_EQ(rs_lock_new(NULL, &(rs_lock_opts){ .store = fake, .key = longkey }, &l2), -EINVAL);
    rs__lock_register_distributed(NULL);
    RS_CHECK_EQ(rs_lock_new(NULL, &(rs_lock_opts){ .store = fake, .key = "k" }, &l2), -ENOTSUP);
    return 0;
}

Test(lock, bad_arguments_are_einval, .timeout = 10)
{
    RS_RUN_OK(validation, NULL);
}

Test(lock, outside_a_task_is_eperm, .timeout = 10)
{
    rs_lock *l;
    cr_assert_eq(rs_lock_new(NULL, NULL, &l), -EPERM);
}

static int cancelled_fast_path(void *arg)
{
    (void)arg;
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(NULL, NULL, &l));
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    rs_scope_cancel(s);
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_EQ(rs_lock_acquire(l, NULL, &g), -ECANCELED); /* free, but the task is cancelled */
    RS_CHECK(!rs_guard_held(&g));
    rs_lock_stats st;
    RS_CHECK_OK(rs_lock_stats_get(l, &st));
    RS_CHECK(!st.exclusive);
    /* The try call is not a cancellation point: it never suspends. */
    RS_CHECK_OK(rs_lock_try_acquire(l, &g));
    RS_CHECK_OK(rs_guard_release(&g));
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
    RS_CHECK_OK(rs_guard_release(&g));
    return 0;
}

Test(lock, acquire_is_a_cancellation_point_even_when_free, .timeout = 10)
{
    RS_RUN_OK(cancelled_fast_path, NULL);
}
