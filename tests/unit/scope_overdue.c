/* A scope's timeout reaches tasks that compute without suspending: the
 * deadline is noticed by rs_checkpoint, rs_scope_cancelled, the scope's
 * signal and rs_scope_close, not only by the scheduler's next trip to the
 * kernel. */
#include <stdlib.h>
#include <time.h>

#include "support.h"

/* Longer than any deadline below by far: a loop that reaches it has missed
 * its deadline for good. */
#define GIVE_UP_MS 5000

/* Calls point (a cancellation point that does not wait) until it reports a
 * cancellation or GIVE_UP_MS pass. */
static int loop_on(int (*point)(void))
{
    int64_t give_up = rs_now_ms() + GIVE_UP_MS;
    int rc;
    while ((rc = point()) == 0 && rs_now_ms() < give_up)
        ;
    return rc;
}

static int compute_with_checkpoints(void)
{
    return loop_on(rs_checkpoint);
}

/* Computes until ms have passed, calling nothing that could notice anything. */
static void compute_for(int64_t ms)
{
    int64_t until = rs_now_ms() + ms;
    while (rs_now_ms() < until)
        ;
}

static int checkpoint_loop_in_the_opener(void *arg)
{
    (void)arg;
    rs_scope *s;
    int64_t start = rs_now_ms();
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 50 }, &s));
    RS_CHECK_EQ(compute_with_checkpoints(), -ECANCELED);
    RS_CHECK(rs_now_ms() - start >= 50); /* not before the deadline */
    RS_CHECK(rs_scope_cancelled(s));
    RS_CHECK_EQ(rs_scope_close(s), -ETIMEDOUT);
    return 0;
}

Test(scope_overdue, a_checkpoint_loop_ends_at_its_scopes_timeout, .timeout = 10)
{
    RS_RUN_OK(checkpoint_loop_in_the_opener, NULL);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* How late the checkpoint notices: the coarse clock alone would notice one
 * or two ticks late (4-8 ms here). The median of several loops keeps a
 * preemption of the test process out of the verdict. */
static int checkpoint_lateness(void *arg)
{
    (void)arg;
    int64_t late_us[21];
    const int LOOPS = (int)(sizeof late_us / sizeof late_us[0]);
    for (int i = 0; i < LOOPS; i++) {
        rs_scope *s;
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 5 }, &s));
        RS_CHECK_EQ(compute_with_checkpoints(), -ECANCELED);
        clock_gettime(CLOCK_MONOTONIC, &b);
        late_us[i] = ((int64_t)(b.tv_sec - a.tv_sec) * 1000000000 + (b.tv_nsec - a.tv_nsec)) / 1000 - 5000;
        RS_CHECK(late_us[i] >= 0);
        RS_CHECK_EQ(rs_scope_close(s), -ETIMEDOUT);
    }
    qsort(late_us, LOOPS, sizeof late_us[0], cmp_i64);
    RS_CHECK(late_us[LOOPS / 2] < 2000);
    return 0;
}

Test(scope_overdue, a_checkpoint_loop_notices_the_deadline_well_within_a_clock_tick, .timeout = 10)
{
    RS_RUN_OK(checkpoint_lateness, NULL);
}

static bool task_saw_the_cancellation;

static int checkpoint_loop_task(void *arg)
{
    (void)arg;
    int rc = compute_with_checkpoints();
    task_saw_the_cancellation = rc == -ECANCELED;
    return rc;
}

/* The opener waits in rs_scope_close while its only task computes: nothing
 * suspends until the task's checkpoint notices the timeout. */
static int checkpoint_loop_in_a_task(void *arg)
{
    (void)arg;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 50 }, &s));
    task_saw_the_cancellation = false;
    RS_CHECK_OK(rs_spawn(s, checkpoint_loop_task, NULL, NULL, NULL));
    RS_CHECK_EQ(rs_scope_close(s), -ETIMEDOUT);
    RS_CHECK(task_saw_the_cancellation);
    return 0;
}

Test(scope_overdue, a_task_computing_with_checkpoints_is_stopped_by_the_timeout, .timeout = 10)
{
    RS_RUN_OK(checkpoint_loop_in_a_task, NULL);
}

static int yield_loop(void *arg)
{
    (void)arg;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 50 }, &s));
    RS_CHECK_EQ(loop_on(rs_yield), -ECANCELED);
    RS_CHECK_EQ(rs_scope_close(s), -ETIMEDOUT);
    return 0;
}

/* The scheduler's trip to the kernel every 64 dispatches fires timers too. */
Test(scope_overdue, a_yield_loop_ends_at_its_scopes_timeout, .timeout = 10)
{
    RS_RUN_OK(yield_loop, NULL);
}

static int overrun_then_query(void *arg)
{
    (void)arg;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 30 }, &s));
    compute_for(60);
    RS_CHECK(rs_scope_cancelled(s));
    RS_CHECK_EQ(rs_signal_reason(rs_scope_signal(s)), -ETIMEDOUT);
    RS_CHECK_EQ(rs_checkpoint(), -ECANCELED);
    RS_CHECK_EQ(rs_scope_close(s), -ETIMEDOUT);
    return 0;
}

Test(scope_overdue, rs_scope_cancelled_reports_a_deadline_passed_while_computing, .timeout = 10)
{
    RS_RUN_OK(overrun_then_query, NULL);
}

static int overrun_then_poll_the_signal(void *arg)
{
    (void)arg;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 30 }, &s));
    compute_for(60);
    RS_CHECK(rs_signal_aborted(rs_scope_signal(s)));
    RS_CHECK_EQ(rs_signal_reason(rs_scope_signal(s)), -ETIMEDOUT);
    RS_CHECK_EQ(rs_scope_close(s), -ETIMEDOUT);
    return 0;
}

Test(scope_overdue, a_scopes_signal_polled_after_the_deadline_is_aborted, .timeout = 10)
{
    RS_RUN_OK(overrun_then_poll_the_signal, NULL);
}

static int overrun_then_close(void *arg)
{
    (void)arg;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 30 }, &s));
    compute_for(60);
    RS_CHECK_EQ(rs_scope_close(s), -ETIMEDOUT);
    return 0;
}

Test(scope_overdue, closing_a_scope_after_its_deadline_returns_etimedout, .timeout = 10)
{
    RS_RUN_OK(overrun_then_close, NULL);
}

static int finisher(void *arg)
{
    compute_for((int64_t)(intptr_t)arg);
    return 0;
}

/* The deadline passes while the opener already waits in rs_scope_close and
 * the task finishes without suspending: no kernel trip fires the timer. */
static int overrun_during_close(void *arg)
{
    (void)arg;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 30 }, &s));
    RS_CHECK_OK(rs_spawn(s, finisher, (void *)(intptr_t)60, NULL, NULL));
    RS_CHECK_EQ(rs_scope_close(s), -ETIMEDOUT);
    return 0;
}

Test(scope_overdue, a_deadline_passed_while_close_waits_returns_etimedout, .timeout = 10)
{
    RS_RUN_OK(overrun_during_close, NULL);
}

static int short_sleeper(void *arg)
{
    (void)arg;
    return rs_sleep(10);
}

/* More timers came due than the scheduler fires in one round (64), the
 * scope's timeout last of them: closing still counts it. */
static int overrun_behind_many_timers(void *arg)
{
    (void)arg;
    rs_scope *sleepers, *s;
    RS_CHECK_OK(rs_scope_open(NULL, &sleepers));
    for (int i = 0; i < 100; i++)
        RS_CHECK_OK(rs_spawn(sleepers, short_sleeper, NULL, NULL, NULL));
    RS_CHECK_OK(rs_yield()); /* each sleeper arms its timer */
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 30 }, &s));
    compute_for(60);
    RS_CHECK_EQ(rs_scope_close(s), -ETIMEDOUT);
    RS_CHECK_OK(rs_scope_close(sleepers));
    return 0;
}

Test(scope_overdue, a_deadline_due_behind_a_round_of_other_timers_still_counts, .timeout = 10)
{
    RS_RUN_OK(overrun_behind_many_timers, NULL);
}

static int parent_overrun(void *arg)
{
    (void)arg;
    rs_scope *outer, *inner;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 30 }, &outer));
    RS_CHECK_OK(rs_scope_open(NULL, &inner));
    RS_CHECK_EQ(compute_with_checkpoints(), -ECANCELED);
    RS_CHECK_EQ(rs_scope_close(inner), -ECANCELED);
    RS_CHECK_EQ(rs_scope_close(outer), -ETIMEDOUT);
    return 0;
}

Test(scope_overdue, an_enclosing_scopes_timeout_reaches_a_checkpoint_loop, .timeout = 10)
{
    RS_RUN_OK(parent_overrun, NULL);
}

static int not_due_yet(void *arg)
{
    (void)arg;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 60000 }, &s));
    compute_for(20);
    RS_CHECK_OK(rs_checkpoint());
    RS_CHECK(!rs_scope_cancelled(s));
    RS_CHECK_OK(rs_scope_close(s));
    return 0;
}

Test(scope_overdue, a_deadline_still_ahead_is_not_fired_early, .timeout = 10)
{
    RS_RUN_OK(not_due_yet, NULL);
}
