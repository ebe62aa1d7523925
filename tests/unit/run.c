/* rs_run: the runtime's entry point (and rs_strerror, for what it returns). */
#define _GNU_SOURCE
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include "support.h"

#include <criterion/redirect.h>

static int return_value(void *arg)
{
    return (int)(long)arg;
}

Test(run, returns_mains_value, .timeout = 10)
{
    cr_assert_eq(rs_run(return_value, (void *)0L, NULL), 0);
    cr_assert_eq(rs_run(return_value, (void *)42L, NULL), 42);
    cr_assert_eq(rs_run(return_value, (void *)(long)-ENOENT, NULL), -ENOENT);
}

static int failing_child(void *arg)
{
    (void)arg;
    return -EIO;
}

static int main_spawns_failing_child(void *arg)
{
    (void)arg;
    RS_CHECK_OK(rs_spawn(rs_current_scope(), failing_child, NULL, NULL, NULL));
    return 0;
}

Test(run, returns_root_scopes_first_error_when_main_returned_zero, .timeout = 10)
{
    cr_assert_eq(rs_run(main_spawns_failing_child, NULL, NULL), -EIO);
}

static int main_spawns_then_fails(void *arg)
{
    (void)arg;
    RS_CHECK_OK(rs_spawn(rs_current_scope(), failing_child, NULL, NULL, NULL));
    return 7;
}

Test(run, mains_own_value_wins_over_child_errors, .timeout = 10)
{
    cr_assert_eq(rs_run(main_spawns_then_fails, NULL, NULL), 7);
}

static int count;

static int bump(void *arg)
{
    (void)arg;
    count++;
    return 0;
}

static int main_spawns_bumpers(void *arg)
{
    for (long i = 0; i < (long)arg; i++)
        RS_CHECK_OK(rs_spawn(rs_current_scope(), bump, NULL, NULL, NULL));
    return 0;
}

Test(run, waits_for_every_task_of_the_root_scope, .timeout = 10)
{
    count = 0;
    RS_RUN_OK(main_spawns_bumpers, (void *)100L);
    cr_assert_eq(count, 100);
}

Test(run, can_run_again_after_returning, .timeout = 10)
{
    count = 0;
    for (int i = 0; i < 5; i++)
        RS_RUN_OK(main_spawns_bumpers, (void *)10L);
    cr_assert_eq(count, 50);
}

static void *thread_runs_runtime(void *arg)
{
    (void)arg;
    return (void *)(long)rs_run(main_spawns_bumpers, (void *)10L, NULL);
}

Test(run, runs_on_another_thread, .timeout = 10)
{
    count = 0;
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, thread_runs_runtime, NULL), 0);
    void *rc;
    pthread_join(th, &rc);
    cr_assert_eq((long)rc, 0);
    cr_assert_eq(count, 10);
}

static int nested_run(void *arg)
{
    (void)arg;
    RS_CHECK_EQ(rs_run(return_value, NULL, NULL), -EBUSY);
    return 0;
}

Test(run, refuses_a_nested_runtime_on_the_same_thread, .timeout = 10)
{
    RS_RUN_OK(nested_run, NULL);
}

/* Two threads, each starting runtime after runtime, each runtime spawning a
 * few tasks that suspend: stacks are unmapped by one runtime and mapped
 * again at the same addresses by the other. (Under ASan a stack's shadow
 * must be clean whichever runtime last used the memory.) */
static int sleeper(void *arg)
{
    (void)arg;
    return rs_sleep(1);
}

static int spawns_sleepers(void *arg)
{
    long n = (long)arg;
    for (long i = 0; i < n; i++)
        RS_CHECK_OK(rs_spawn(rs_current_scope(), sleeper, NULL, NULL, NULL));
    return 0;
}

static void *runtimes_in_a_row(void *arg)
{
    long failures = 0, offset = (long)arg;
    for (long i = 0; i < 50; i++)
        if (rs_run(spawns_sleepers, (void *)(i % 7 + 1 + offset), NULL) != 0)
            failures++;
    return (void *)failures;
}

Test(run, runtimes_in_two_threads_one_after_another, .timeout = 60)
{
    pthread_t a, b;
    cr_assert_eq(pthread_create(&a, NULL, runtimes_in_a_row, (void *)0L), 0);
    cr_assert_eq(pthread_create(&b, NULL, runtimes_in_a_row, (void *)3L), 0);
    void *fa, *fb;
    pthread_join(a, &fa);
    pthread_join(b, &fb);
    cr_assert_eq((long)fa + (long)fb, 0);
}

Test(run, rejects_bad_arguments, .timeout = 10)
{
    cr_assert_eq(rs_run(NULL, NULL, NULL), -EINVAL);
    cr_assert_eq(rs_run(return_value, NULL, &(rs_runtime_opts){ .workers = 2 }), -ENOTSUP);
}

static int check_options(void *arg)
{
    (void)arg;
    RS_CHECK_OK(rs_yield());
    return 0;
}

Test(run, accepts_ring_and_stack_options, .timeout = 10)
{
    cr_assert_eq(rs_run(check_options, NULL, &(rs_runtime_opts){ .ring_entries = 8, .stack_size = 64 * 1024 }), 0);
}

/* The kernel clamps a ring of any size to its maximum (the completion queue
 * too), so no value makes rs_run fail, even where 8 x ring_entries passes
 * 32 bits. */
Test(run, any_ring_size_is_clamped, .timeout = 10)
{
    static const unsigned sizes[] = { 1, 100000, 0x1fffffffu, 0x20000000u, 0x80000000u, 0xe0000800u, 0xffffffffu };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        cr_expect_eq(rs_run(check_options, NULL, &(rs_runtime_opts){ .ring_entries = sizes[i] }), 0, "ring_entries %#x",
                     sizes[i]);
}

Test(run, blocking_calls_outside_a_task_are_eperm, .timeout = 10)
{
    cr_assert_eq(rs_yield(), -EPERM);
    cr_assert_eq(rs_sleep(1), -EPERM);
    cr_assert_eq(rs_checkpoint(), -EPERM);
    rs_scope *s;
    cr_assert_eq(rs_scope_open(NULL, &s), -EPERM);
    cr_assert_null(rs_current_task());
    cr_assert_null(rs_current_scope());
    cr_assert_eq(rs_spawn((rs_scope *)&s, bump, NULL, NULL, NULL), -EPERM);
}

static int main_deadlocks(void *arg)
{
    (void)arg;
    return rs_test_deadlock_in_a_nested_scope();
}

Test(run, a_deadlock_is_broken_by_cancelling_the_root_scope, .timeout = 10)
{
    cr_redirect_stderr();
    int rc = rs_run(main_deadlocks, NULL, NULL);
    /* The child's wait on the signal ends with 0 (the signal fired), main's
     * close of the nested scope returns -ECANCELED (an enclosing scope was
     * cancelled): main's value is what rs_run returns. */
    cr_assert_eq(rc, -ECANCELED, "rs_run returned %d", rc);
}

static int main_deadlocks_alone(void *arg)
{
    (void)arg;
    rs_signal *sig = rs_scope_signal(rs_current_scope());
    int rc = rs_signal_wait(sig, 0);
    return rc == 0 ? 0 : rc;
}

Test(run, a_deadlock_of_main_itself_ends_with_edeadlk, .timeout = 10)
{
    cr_redirect_stderr();
    cr_assert_eq(rs_run(main_deadlocks_alone, NULL, NULL), -EDEADLK);
}

/* rs_strerror answers for every int: the library's own values, any other
 * errno, either sign, and values no errno has (INT_MIN included). */
Test(run, strerror_has_words_for_every_value, .timeout = 10)
{
    cr_assert_str_eq(rs_strerror(0), "success");
    cr_assert_str_eq(rs_strerror(-ECANCELED), rs_strerror(ECANCELED));
    cr_assert_not_null(strstr(rs_strerror(-ETIMEDOUT), "timeout"));
    cr_assert_str_eq(rs_strerror(-EACCES), strerrordesc_np(EACCES));
    const int odd[] = { INT_MIN, INT_MAX, -100000, 100000 };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
        cr_assert_str_eq(rs_strerror(odd[i]), "unknown error", "rs_strerror(%d)", odd[i]);
}
