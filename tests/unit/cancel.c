/* Cancellation: level-triggered, prompt, at every suspension point. */
#include "support.h"

static int64_t returned_after;
static int sleep_result;

static int long_sleeper(void *arg)
{
    (void)arg;
    int64_t t0 = rs_now_ms();
    sleep_result = rs_sleep(10000);
    returned_after = rs_now_ms() - t0;
    return sleep_result;
}

static int prompt_cancellation(void *arg)
{
    (void)arg;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 50 }, &s));
    RS_CHECK_OK(rs_spawn(s, long_sleeper, NULL, NULL, NULL));
    RS_CHECK_EQ(rs_scope_close(s), -ETIMEDOUT);
    RS_CHECK_EQ(sleep_result, -ECANCELED);
    cr_log_info("10 s sleeper returned after %lld ms", (long long)returned_after);
    RS_CHECK(returned_after >= 49);
    RS_CHECK(returned_after < 70);
    return 0;
}

Test(cancel, a_10s_sleeper_in_a_50ms_scope_returns_within_70ms, .timeout = 10)
{
    RS_RUN_OK(prompt_cancellation, NULL);
}

static int every_point(void *arg)
{
    rs_signal *sig = arg;
    RS_CHECK_EQ(rs_sleep(10000), -ECANCELED);
    RS_CHECK_EQ(rs_yield(), -ECANCELED);
    RS_CHECK_EQ(rs_checkpoint(), -ECANCELED);
    RS_CHECK_EQ(rs_sleep(0), -ECANCELED);
    RS_CHECK_EQ(rs_sleep(5), -ECANCELED);
    /* The scope's own signal is aborted: waiting on it returns 0 at once. */
    RS_CHECK_OK(rs_signal_wait(rs_scope_signal(rs_current_scope()), 0));
    /* Waiting on another, unaborted signal is a cancellation point. */
    RS_CHECK_EQ(rs_signal_wait(sig, 0), -ECANCELED);
    rs_scope *inner;
    RS_CHECK_OK(rs_scope_open(NULL, &inner));
    RS_CHECK_EQ(rs_sleep(1), -ECANCELED);
    RS_CHECK_EQ(rs_scope_close(inner), -ECANCELED);
    sleep_result = 1; /* reached the end */
    return -ECANCELED;
}

static int level_triggered(void *arg)
{
    (void)arg;
    rs_scope *other, *s;
    RS_CHECK_OK(rs_scope_open(NULL, &other));
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    sleep_result = 0;
    RS_CHECK_OK(rs_spawn(s, every_point, rs_scope_signal(other), NULL, NULL));
    RS_CHECK_OK(rs_yield());
    rs_scope_cancel(s);
    /* The task's -ECANCELED is not an error: close returns 0 (own cancel). */
    RS_CHECK_EQ(rs_scope_close(s), 0);
    RS_CHECK_EQ(sleep_result, 1);
    RS_CHECK_OK(rs_scope_close(other));
    return 0;
}

Test(cancel, every_later_cancellation_point_returns_ecanceled, .timeout = 10)
{
    RS_RUN_OK(level_triggered, NULL);
}

static int task_cancel_and_shield(void *arg)
{
    (void)arg;
    rs_scope *sh;
    RS_CHECK_EQ(rs_sleep(10000), -ECANCELED);
    /* A shielded scope protects cleanup work from the task's own cancellation. */
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .shield = true }, &sh));
    RS_CHECK_OK(rs_sleep(1));
    RS_CHECK_OK(rs_scope_close(sh));
    RS_CHECK_EQ(rs_checkpoint(), -ECANCELED);
    return 0;
}

static int task_cancel_shield(void *arg)
{
    (void)arg;
    rs_task *t;
    RS_CHECK_OK(rs_spawn(rs_current_scope(), task_cancel_and_shield, NULL, NULL, &t));
    RS_CHECK_OK(rs_yield());
    rs_task_cancel(t);
    int r = -1;
    RS_CHECK_OK(rs_task_join(t, &r));
    RS_CHECK_EQ(r, 0);
    return 0;
}

Test(cancel, a_shield_protects_from_the_tasks_own_cancellation, .timeout = 10)
{
    RS_RUN_OK(task_cancel_shield, NULL);
}

static int cancel_before_start(void *arg)
{
    (void)arg;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    sleep_result = 0;
    returned_after = -1;
    RS_CHECK_OK(rs_spawn(s, long_sleeper, NULL, NULL, NULL));
    rs_scope_cancel(s); /* before the task ever ran */
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(sleep_result, -ECANCELED);
    RS_CHECK(returned_after >= 0 && returned_after < 5);
    return 0;
}

Test(cancel, a_task_cancelled_before_it_ran_sees_it_at_its_first_point, .timeout = 10)
{
    RS_RUN_OK(cancel_before_start, NULL);
}

static int waiter_on_signal(void *arg)
{
    return rs_signal_wait(arg, 0);
}

static int signal_semantics(void *arg)
{
    (void)arg;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 20 }, &s));
    rs_signal *sig = rs_scope_signal(s);
    RS_CHECK(!rs_signal_aborted(sig));
    RS_CHECK_EQ(rs_signal_reason(sig), 0);
    /* A waiter inside the scope is woken by the same abort that cancels it:
     * it sees 0. */
    rs_task *inside;
    RS_CHECK_OK(rs_spawn(s, waiter_on_signal, sig, NULL, &inside));
    /* Waiting with a timeout that ends first. */
    RS_CHECK_EQ(rs_signal_wait(sig, 5), -ETIMEDOUT);
    RS_CHECK_OK(rs_signal_wait(sig, 0));
    RS_CHECK(rs_signal_aborted(sig));
    RS_CHECK_EQ(rs_signal_reason(sig), -ETIMEDOUT);
    /* The opener is in the cancelled scope too: its join is cancelled, and
     * a shield lets it collect the result. */
    int r = -1;
    RS_CHECK_EQ(rs_task_join(inside, &r), -ECANCELED);
    rs_scope *shield;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .shield = true }, &shield));
    RS_CHECK_OK(rs_task_join(inside, &r));
    RS_CHECK_OK(rs_scope_close(shield));
    RS_CHECK_EQ(r, 0);
    RS_CHECK_EQ(rs_scope_close(s), -ETIMEDOUT);
    RS_CHECK_EQ(rs_signal_wait(NULL, 0), -EINVAL);
    RS_CHECK_EQ(rs_signal_wait(rs_scope_signal(rs_current_scope()), -1), -EINVAL);
    RS_CHECK(!rs_signal_aborted(NULL));
    return 0;
}

Test(cancel, scope_signal_aborts_with_the_reason, .timeout = 10)
{
    RS_RUN_OK(signal_semantics, NULL);
}
