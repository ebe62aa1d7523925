/* Scopes: nursery (waits for its tasks) and cancel scope (cancels them). */
#include "support.h"

static int finished;

static int yield_then_count(void *arg)
{
    for (long i = 0; i < (long)arg; i++)
        RS_CHECK_OK(rs_yield());
    finished++;
    return 0;
}

static int close_waits_for_all_tasks(void *arg)
{
    (void)arg;
    finished = 0;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    for (long i = 0; i < 10; i++)
        RS_CHECK_OK(rs_spawn(s, yield_then_count, (void *)(i * 3), NULL, NULL));
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(finished, 10);
    return 0;
}

Test(scope, close_waits_for_all_tasks, .timeout = 10)
{
    RS_RUN_OK(close_waits_for_all_tasks, NULL);
}

static int sleep_long(void *arg)
{
    (void)arg;
    int rc = rs_sleep(10000);
    /* Level-triggered: every later cancellation point fails too. */
    if (rc == -ECANCELED && rs_yield() == -ECANCELED && rs_checkpoint() == -ECANCELED &&
        rs_sleep(1) == -ECANCELED)
        finished++;
    return rc;
}

static int fail_after_yield(void *arg)
{
    RS_CHECK_OK(rs_yield());
    return (int)(long)arg;
}

static int first_error_cancels_siblings(void *arg)
{
    (void)arg;
    finished = 0;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    for (int i = 0; i < 3; i++)
        RS_CHECK_OK(rs_spawn(s, sleep_long, NULL, NULL, NULL));
    RS_CHECK_OK(rs_spawn(s, fail_after_yield, (void *)(long)-EIO, NULL, NULL));
    RS_CHECK_OK(rs_spawn(s, fail_after_yield, (void *)(long)-ENOENT, NULL, NULL));
    int64_t t0 = rs_now_ms();
    RS_CHECK_EQ(rs_scope_close(s), -EIO);
    RS_CHECK(rs_now_ms() - t0 < 1000);
    RS_CHECK_EQ(finished, 3);
    return 0;
}

Test(scope, first_task_error_cancels_siblings_and_is_returned, .timeout = 10)
{
    RS_RUN_OK(first_error_cancels_siblings, NULL);
}

static int short_sleep(void *arg)
{
    (void)arg;
    RS_CHECK_OK(rs_sleep(20));
    finished++;
    return 0;
}

static int keep_going_keeps_siblings(void *arg)
{
    (void)arg;
    finished = 0;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .keep_going = true }, &s));
    RS_CHECK_OK(rs_spawn(s, fail_after_yield, (void *)(long)-EIO, NULL, NULL));
    RS_CHECK_OK(rs_spawn(s, short_sleep, NULL, NULL, NULL));
    RS_CHECK_OK(rs_spawn(s, short_sleep, NULL, NULL, NULL));
    RS_CHECK_EQ(rs_scope_close(s), -EIO);
    RS_CHECK_EQ(finished, 2);
    return 0;
}

Test(scope, keep_going_does_not_cancel_siblings_but_returns_the_error, .timeout = 10)
{
    RS_RUN_OK(keep_going_keeps_siblings, NULL);
}

static int timeout_cancels(void *arg)
{
    (void)arg;
    finished = 0;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 50 }, &s));
    RS_CHECK_OK(rs_spawn(s, sleep_long, NULL, NULL, NULL));
    int64_t t0 = rs_now_ms();
    RS_CHECK_EQ(rs_scope_close(s), -ETIMEDOUT);
    int64_t took = rs_now_ms() - t0;
    RS_CHECK(took >= 49);
    RS_CHECK(took < 70);
    RS_CHECK_EQ(finished, 1);
    return 0;
}

Test(scope, timeout_cancels_the_scope_and_close_returns_etimedout, .timeout = 10)
{
    RS_RUN_OK(timeout_cancels, NULL);
}

static int timeout_not_reached(void *arg)
{
    (void)arg;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 5000 }, &s));
    RS_CHECK_OK(rs_spawn(s, short_sleep, NULL, NULL, NULL));
    RS_CHECK_OK(rs_scope_close(s));
    return 0;
}

Test(scope, a_timeout_that_does_not_expire_changes_nothing, .timeout = 10)
{
    RS_RUN_OK(timeout_not_reached, NULL);
}

static int explicit_cancel(void *arg)
{
    (void)arg;
    finished = 0;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    RS_CHECK_OK(rs_spawn(s, sleep_long, NULL, NULL, NULL));
    RS_CHECK_OK(rs_spawn(s, sleep_long, NULL, NULL, NULL));
    RS_CHECK_OK(rs_yield());
    RS_CHECK(!rs_scope_cancelled(s));
    rs_scope_cancel(s);
    RS_CHECK(rs_scope_cancelled(s));
    RS_CHECK_EQ(rs_signal_reason(rs_scope_signal(s)), -ECANCELED);
    /* The opener is inside s too. */
    RS_CHECK_EQ(rs_checkpoint(), -ECANCELED);
    RS_CHECK_EQ(rs_scope_close(s), 0);
    RS_CHECK_EQ(finished, 2);
    /* Out of s again: no longer cancelled. */
    RS_CHECK_OK(rs_checkpoint());
    return 0;
}

Test(scope, rs_scope_cancel_cancels_its_tasks_and_close_returns_0, .timeout = 10)
{
    RS_RUN_OK(explicit_cancel, NULL);
}

static int nested_opener(void *arg)
{
    (void)arg;
    rs_scope *inner;
    RS_CHECK_OK(rs_scope_open(NULL, &inner));
    RS_CHECK_OK(rs_spawn(inner, sleep_long, NULL, NULL, NULL));
    int rc = rs_sleep(10000);
    RS_CHECK_EQ(rc, -ECANCELED);
    RS_CHECK_EQ(rs_scope_close(inner), -ECANCELED);
    finished++;
    return rc;
}

static int nested_inherit(void *arg)
{
    (void)arg;
    finished = 0;
    rs_scope *outer;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 30 }, &outer));
    RS_CHECK_OK(rs_spawn(outer, nested_opener, NULL, NULL, NULL));
    RS_CHECK_EQ(rs_scope_close(outer), -ETIMEDOUT);
    RS_CHECK_EQ(finished, 2); /* the nested sleeper and the opener */
    return 0;
}

Test(scope, nested_scopes_inherit_cancellation, .timeout = 10)
{
    RS_RUN_OK(nested_inherit, NULL);
}

static int shielded_worker(void *arg)
{
    (void)arg;
    rs_scope *cleanup;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .shield = true }, &cleanup));
    /* The enclosing scope times out while we sleep; the shield keeps us going. */
    RS_CHECK_OK(rs_sleep(80));
    RS_CHECK_OK(rs_checkpoint());
    RS_CHECK(!rs_scope_cancelled(cleanup));
    RS_CHECK_OK(rs_scope_close(cleanup));
    /* Outside the shield the cancellation is visible again. */
    RS_CHECK_EQ(rs_checkpoint(), -ECANCELED);
    finished++;
    return 0;
}

static int shield_protects(void *arg)
{
    (void)arg;
    finished = 0;
    rs_scope *outer;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 20 }, &outer));
    RS_CHECK_OK(rs_spawn(outer, shielded_worker, NULL, NULL, NULL));
    RS_CHECK_EQ(rs_scope_close(outer), -ETIMEDOUT);
    RS_CHECK_EQ(finished, 1);
    return 0;
}

Test(scope, shield_ignores_outer_cancellation, .timeout = 10)
{
    RS_RUN_OK(shield_protects, NULL);
}

static int shield_own_cancel(void *arg)
{
    (void)arg;
    rs_scope *sh;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .shield = true, .timeout_ms = 10 }, &sh));
    RS_CHECK_EQ(rs_sleep(10000), -ECANCELED);
    RS_CHECK_EQ(rs_scope_close(sh), -ETIMEDOUT);
    return 0;
}

Test(scope, a_shielded_scope_still_honours_its_own_timeout, .timeout = 10)
{
    RS_RUN_OK(shield_own_cancel, NULL);
}

static int order[8];
static int norder;

static void record(void *arg)
{
    order[norder++] = (int)(long)arg;
}

static int defer_lifo(void *arg)
{
    (void)arg;
    norder = 0;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    for (long i = 1; i <= 4; i++)
        RS_CHECK_OK(rs_scope_defer(s, record, (void *)i));
    RS_CHECK_EQ(norder, 0);
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(norder, 4);
    for (int i = 0; i < 4; i++)
        RS_CHECK_EQ(order[i], 4 - i);
    RS_CHECK_EQ(rs_scope_defer(NULL, record, NULL), -EINVAL);
    return 0;
}

Test(scope, defer_runs_lifo_at_close, .timeout = 10)
{
    RS_RUN_OK(defer_lifo, NULL);
}

static void record_after_tasks(void *arg)
{
    (void)arg;
    order[norder++] = finished;
}

static int defer_after_tasks(void *arg)
{
    (void)arg;
    norder = 0;
    finished = 0;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    RS_CHECK_OK(rs_scope_defer(s, record_after_tasks, NULL));
    RS_CHECK_OK(rs_spawn(s, short_sleep, NULL, NULL, NULL));
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(norder, 1);
    RS_CHECK_EQ(order[0], 1); /* the task had finished when the deferred function ran */
    return 0;
}

Test(scope, deferred_functions_run_after_the_tasks_finished, .timeout = 10)
{
    RS_RUN_OK(defer_after_tasks, NULL);
}

static int foreign_result;

static int try_close(void *arg)
{
    foreign_result = rs_scope_close(arg);
    return 0;
}

static int close_misuse(void *arg)
{
    (void)arg;
    rs_scope *a, *b;
    RS_CHECK_OK(rs_scope_open(NULL, &a));
    RS_CHECK_OK(rs_scope_open(NULL, &b));
    RS_CHECK_EQ(rs_scope_close(a), -EINVAL); /* out of order: b is innermost */
    RS_CHECK_EQ(rs_scope_close(NULL), -EINVAL);
    rs_task *t;
    foreign_result = 0;
    RS_CHECK_OK(rs_spawn(b, try_close, b, NULL, &t)); /* the wrong task */
    int result = -1;
    RS_CHECK_OK(rs_task_join(t, &result));
    RS_CHECK_EQ(foreign_result, -EINVAL);
    RS_CHECK_OK(rs_scope_close(b));
    RS_CHECK_OK(rs_scope_close(a));
    RS_CHECK_EQ(rs_scope_open(&(rs_scope_opts){ .timeout_ms = -1 }, &a), -EINVAL);
    RS_CHECK_EQ(rs_scope_open(NULL, NULL), -EINVAL);
    return 0;
}

Test(scope, closing_from_the_wrong_task_or_out_of_order_is_einval, .timeout = 10)
{
    RS_RUN_OK(close_misuse, NULL);
}

static int open_in_cancelled(void *arg)
{
    (void)arg;
    rs_scope *outer, *inner, *shielded;
    RS_CHECK_OK(rs_scope_open(NULL, &outer));
    rs_scope_cancel(outer);
    RS_CHECK_OK(rs_scope_open(NULL, &inner));
    RS_CHECK(rs_scope_cancelled(inner));
    RS_CHECK(rs_signal_aborted(rs_scope_signal(inner)));
    RS_CHECK_EQ(rs_spawn(inner, short_sleep, NULL, NULL, NULL), -ECANCELED);
    RS_CHECK_EQ(rs_scope_close(inner), -ECANCELED);
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .shield = true }, &shielded));
    RS_CHECK(!rs_scope_cancelled(shielded));
    RS_CHECK_OK(rs_sleep(1));
    RS_CHECK_OK(rs_scope_close(shielded));
    RS_CHECK_OK(rs_scope_close(outer));
    return 0;
}

Test(scope, a_scope_opened_inside_a_cancelled_scope_starts_cancelled, .timeout = 10)
{
    RS_RUN_OK(open_in_cancelled, NULL);
}

static int running_now, running_max;

static int concurrency_probe(void *arg)
{
    (void)arg;
    running_now++;
    if (running_now > running_max)
        running_max = running_now;
    RS_CHECK_OK(rs_sleep(2));
    running_now--;
    return 0;
}

static int priority_probe(void *arg)
{
    order[norder++] = (int)(long)arg;
    return 0;
}

static int max_concurrency(void *arg)
{
    (void)arg;
    running_now = running_max = 0;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .max_concurrency = 3 }, &s));
    for (int i = 0; i < 20; i++)
        RS_CHECK_OK(rs_spawn(s, concurrency_probe, NULL, NULL, NULL));
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(running_max, 3);

    /* Tasks waiting for a slot start in priority order, FIFO among equals. */
    norder = 0;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .max_concurrency = 1 }, &s));
    RS_CHECK_OK(rs_spawn(s, concurrency_probe, NULL, NULL, NULL)); /* takes the slot */
    RS_CHECK_OK(rs_spawn(s, priority_probe, (void *)1L, &(rs_spawn_opts){ .priority = 1 }, NULL));
    RS_CHECK_OK(rs_spawn(s, priority_probe, (void *)10L, &(rs_spawn_opts){ .priority = 10 }, NULL));
    RS_CHECK_OK(rs_spawn(s, priority_probe, (void *)5L, &(rs_spawn_opts){ .priority = 5 }, NULL));
    RS_CHECK_OK(rs_spawn(s, priority_probe, (void *)6L, &(rs_spawn_opts){ .priority = 5 }, NULL));
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(norder, 4);
    RS_CHECK_EQ(order[0], 10);
    RS_CHECK_EQ(order[1], 5);
    RS_CHECK_EQ(order[2], 6);
    RS_CHECK_EQ(order[3], 1);
    return 0;
}

Test(scope, max_concurrency_limits_running_tasks_in_priority_order, .timeout = 10)
{
    RS_RUN_OK(max_concurrency, NULL);
}

static int spawn_later(void *arg)
{
    rs_scope *s = arg;
    RS_CHECK_OK(rs_sleep(5));
    /* A task of the scope may still spawn into it while close waits. */
    RS_CHECK_OK(rs_spawn(s, short_sleep, NULL, NULL, NULL));
    return 0;
}

static int outsider(void *arg)
{
    foreign_result = rs_spawn(arg, short_sleep, NULL, NULL, NULL);
    return 0;
}

static int spawn_while_closing(void *arg)
{
    (void)arg;
    finished = 0;
    rs_scope *holder, *s;
    RS_CHECK_OK(rs_scope_open(NULL, &holder));
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    RS_CHECK_OK(rs_spawn(s, spawn_later, s, NULL, NULL));
    /* A task outside s tries to spawn into it while it is closing. */
    rs_task *out;
    RS_CHECK_OK(rs_spawn(holder, outsider, s, NULL, &out));
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(finished, 1);
    int rc = -1;
    RS_CHECK_OK(rs_task_join(out, &rc));
    RS_CHECK_EQ(foreign_result, -ECANCELED);
    RS_CHECK_OK(rs_scope_close(holder));
    return 0;
}

Test(scope, while_closing_only_its_own_tasks_may_spawn_into_it, .timeout = 10)
{
    RS_RUN_OK(spawn_while_closing, NULL);
}

/* A deferred function runs after the close stopped waiting for tasks: a task
 * it spawned into the scope would be waited for by nobody and outlive the
 * scope's memory, so the spawn is refused. */
typedef struct late_spawn {
    rs_scope *s;
    int rc;
} late_spawn;

static void spawn_from_defer(void *arg)
{
    late_spawn *l = arg;
    l->rc = rs_spawn(l->s, short_sleep, NULL, NULL, NULL);
}

static int defer_spawns(void *arg)
{
    (void)arg;
    late_spawn l = { .rc = 1 };
    RS_CHECK_OK(rs_scope_open(NULL, &l.s));
    RS_CHECK_OK(rs_scope_defer(l.s, spawn_from_defer, &l));
    RS_CHECK_OK(rs_scope_close(l.s));
    RS_CHECK_EQ(l.rc, -ECANCELED);
    return 0;
}

Test(scope, a_deferred_function_cannot_spawn_into_the_closing_scope, .timeout = 10)
{
    RS_RUN_OK(defer_spawns, NULL);
}

static int forgets_to_close(void *arg)
{
    (void)arg;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    RS_CHECK_OK(rs_spawn(s, short_sleep, NULL, NULL, NULL));
    return 0; /* the runtime closes s for it, waiting for the sleeper */
}

static int forgotten_close(void *arg)
{
    (void)arg;
    finished = 0;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    RS_CHECK_OK(rs_spawn(s, forgets_to_close, NULL, NULL, NULL));
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(finished, 1);
    return 0;
}

Test(scope, scopes_a_task_leaves_open_are_closed_when_it_ends, .timeout = 10)
{
    RS_RUN_OK(forgotten_close, NULL);
}

/* A scope a deferred function opens and leaves open is closed for it before
 * the scope whose close ran the function: its tasks are waited for, and the
 * closing task is back in the parent scope afterwards. */
static void opens_a_scope_and_spawns(void *arg)
{
    (void)arg;
    rs_scope *inner;
    if (rs_scope_open(NULL, &inner) == 0)
        rs_spawn(inner, short_sleep, NULL, NULL, NULL);
}

static int defer_opens(void *arg)
{
    (void)arg;
    finished = 0;
    rs_scope *root = rs_current_scope(), *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    RS_CHECK_OK(rs_scope_defer(s, opens_a_scope_and_spawns, NULL));
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(finished, 1);
    RS_CHECK(rs_current_scope() == root);
    return 0;
}

Test(scope, scopes_a_deferred_function_leaves_open_are_closed_with_its_scope, .timeout = 10)
{
    RS_RUN_OK(defer_opens, NULL);
}

/* A task cancelled through a scope it opened, returning -ECANCELED without
 * closing that scope, was cancelled when it returned: no error, its sibling
 * goes on, and the scope they share closes with 0. */
static int cancelled_inside_an_open_scope(void *arg)
{
    (void)arg;
    rs_scope *inner;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 10 }, &inner));
    int rc = rs_sleep(10000);
    return rc == -ECANCELED ? rc : -1; /* and leaves inner open */
}

static int sibling_sleeps(void *arg)
{
    int *rc = arg;
    *rc = rs_sleep(100);
    return 0;
}

static int leaves_cancelled_scope_open(void *arg)
{
    (void)arg;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    int sibling_rc = -1;
    RS_CHECK_OK(rs_spawn(s, cancelled_inside_an_open_scope, NULL, NULL, NULL));
    RS_CHECK_OK(rs_spawn(s, sibling_sleeps, &sibling_rc, NULL, NULL));
    RS_CHECK_EQ(rs_scope_close(s), 0);
    RS_CHECK_EQ(sibling_rc, 0);
    return 0;
}

Test(scope, ecanceled_from_a_cancelled_scope_left_open_is_no_error, .timeout = 10)
{
    RS_RUN_OK(leaves_cancelled_scope_open, NULL);
}

static int current_scope(void *arg)
{
    (void)arg;
    rs_scope *root = rs_current_scope();
    RS_CHECK(root != NULL);
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .name = "inner" }, &s));
    RS_CHECK(rs_current_scope() == s);
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK(rs_current_scope() == root);
    return 0;
}

Test(scope, rs_current_scope_is_the_innermost_entered_scope, .timeout = 10)
{
    RS_RUN_OK(current_scope, NULL);
}
