/* Tasks: spawn, join, cancel, reclaim. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

static int value_after_yields(void *arg)
{
    for (int i = 0; i < 3; i++)
        RS_CHECK_OK(rs_yield());
    return (int)(long)arg;
}

static int join_returns_value(void *arg)
{
    (void)arg;
    rs_task *a, *b;
    RS_CHECK_OK(rs_spawn(rs_current_scope(), value_after_yields, (void *)11L, NULL, &a));
    RS_CHECK_OK(rs_spawn(rs_current_scope(), value_after_yields, (void *)22L, NULL, &b));
    int ra = 0, rb = 0;
    RS_CHECK_OK(rs_task_join(b, &rb));
    RS_CHECK_EQ(rb, 22);
    /* a has finished by now: its handle is still valid and join returns at once. */
    RS_CHECK_OK(rs_yield());
    RS_CHECK_OK(rs_task_join(a, &ra));
    RS_CHECK_EQ(ra, 11);
    return 0;
}

Test(task, join_returns_the_tasks_value, .timeout = 10)
{
    RS_RUN_OK(join_returns_value, NULL);
}

static int join_self(void *arg)
{
    (void)arg;
    int r;
    return rs_task_join(rs_current_task(), &r) == -EDEADLK ? 0 : -1;
}

static int join_misuse(void *arg)
{
    (void)arg;
    RS_CHECK_EQ(rs_task_join(NULL, NULL), -EINVAL);
    rs_task *t;
    RS_CHECK_OK(rs_spawn(rs_current_scope(), join_self, NULL, NULL, &t));
    int r = -1;
    RS_CHECK_OK(rs_task_join(t, &r));
    RS_CHECK_EQ(r, 0);
    RS_CHECK_EQ(rs_spawn(NULL, join_self, NULL, NULL, NULL), -EINVAL);
    RS_CHECK_EQ(rs_spawn(rs_current_scope(), NULL, NULL, NULL, NULL), -EINVAL);
    return 0;
}

Test(task, join_misuse_is_reported, .timeout = 10)
{
    RS_RUN_OK(join_misuse, NULL);
}

static int sleeper(void *arg)
{
    (void)arg;
    return rs_sleep(10000);
}

static int joiner(void *arg)
{
    int r;
    return rs_task_join(arg, &r);
}

static int join_is_a_cancellation_point(void *arg)
{
    (void)arg;
    rs_scope *s;
    rs_task *target;
    RS_CHECK_OK(rs_spawn(rs_current_scope(), sleeper, NULL, NULL, &target));
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 20 }, &s));
    rs_task *j;
    RS_CHECK_OK(rs_spawn(s, joiner, target, NULL, &j));
    RS_CHECK_EQ(rs_scope_close(s), -ETIMEDOUT);
    /* The joiner was cancelled: target's handle is still valid. */
    rs_task_cancel(target);
    int r = 0;
    RS_CHECK_OK(rs_task_join(target, &r));
    RS_CHECK_EQ(r, -ECANCELED);
    return 0;
}

Test(task, join_is_a_cancellation_point_and_keeps_the_handle, .timeout = 10)
{
    RS_RUN_OK(join_is_a_cancellation_point, NULL);
}

static int return_42(void *arg)
{
    (void)arg;
    return 42;
}

/* Level-triggered even with nothing to wait for: a cancelled task's join of
 * a finished task is -ECANCELED, and the handle keeps the result for a join
 * made where the cancellation does not reach (here a shielded scope). */
static int join_finished_while_cancelled(void *arg)
{
    (void)arg;
    rs_task *done;
    RS_CHECK_OK(rs_spawn(rs_current_scope(), return_42, NULL, NULL, &done));
    RS_CHECK_OK(rs_yield()); /* it runs and finishes */
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    rs_scope_cancel(s);
    int r = 0;
    RS_CHECK_EQ(rs_task_join(done, &r), -ECANCELED);
    RS_CHECK_EQ(r, 0); /* untouched */
    rs_scope *shield;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .shield = true }, &shield));
    RS_CHECK_OK(rs_task_join(done, &r));
    RS_CHECK_EQ(r, 42);
    RS_CHECK_OK(rs_scope_close(shield));
    RS_CHECK_OK(rs_scope_close(s));
    return 0;
}

Test(task, joining_a_finished_task_is_a_cancellation_point_too, .timeout = 10)
{
    RS_RUN_OK(join_finished_while_cancelled, NULL);
}

static int cancel_one_task(void *arg)
{
    (void)arg;
    rs_task *a, *b;
    RS_CHECK_OK(rs_spawn(rs_current_scope(), sleeper, NULL, NULL, &a));
    RS_CHECK_OK(rs_spawn(rs_current_scope(), value_after_yields, (void *)5L, NULL, &b));
    RS_CHECK_OK(rs_yield());
    int64_t t0 = rs_now_ms();
    rs_task_cancel(a);
    int ra = 0, rb = 0;
    RS_CHECK_OK(rs_task_join(a, &ra));
    RS_CHECK_EQ(ra, -ECANCELED);
    RS_CHECK(rs_now_ms() - t0 < 100);
    RS_CHECK_OK(rs_task_join(b, &rb));
    RS_CHECK_EQ(rb, 5); /* the sibling was not affected */
    RS_CHECK(!rs_scope_cancelled(rs_current_scope()));
    rs_task_cancel(NULL); /* harmless */
    return 0;
}

Test(task, rs_task_cancel_cancels_one_task, .timeout = 10)
{
    RS_RUN_OK(cancel_one_task, NULL);
}

static int cancelled_error_is_not_a_failure(void *arg)
{
    (void)arg;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    rs_task *t;
    RS_CHECK_OK(rs_spawn(s, sleeper, NULL, NULL, &t));
    RS_CHECK_OK(rs_yield());
    rs_task_cancel(t);
    /* The task returns -ECANCELED because it was cancelled: no scope error. */
    RS_CHECK_OK(rs_scope_close(s));
    return 0;
}

Test(task, a_cancelled_task_returning_ecanceled_has_not_failed, .timeout = 10)
{
    RS_RUN_OK(cancelled_error_is_not_a_failure, NULL);
}

static int noop(void *arg)
{
    (void)arg;
    return 0;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static int million_spawns(void *arg)
{
    (void)arg;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    long after_warmup = 0;
    for (long i = 0; i < 1000000; i++) {
        RS_CHECK_OK(rs_spawn(s, noop, NULL, NULL, NULL));
        if (i % 100 == 99)
            RS_CHECK_OK(rs_yield());
        if (i == 100000)
            after_warmup = rss_kib();
    }
    RS_CHECK_OK(rs_scope_close(s));
    long growth = rss_kib() - after_warmup;
    cr_log_info("RSS after 100k spawns %ld KiB, growth over the next 900k: %ld KiB", after_warmup, growth);
    RS_CHECK(growth < 4096);
    return 0;
}

Test(task, a_million_reclaimed_tasks_keep_memory_flat, .timeout = 120)
{
    RS_RUN_OK(million_spawns, NULL);
}

static int handles_until_close(void *arg)
{
    (void)arg;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    rs_task *handles[100];
    for (int i = 0; i < 100; i++)
        RS_CHECK_OK(rs_spawn(s, value_after_yields, (void *)(long)i, NULL, &handles[i]));
    for (int i = 0; i < 10; i++)
        RS_CHECK_OK(rs_yield());
    /* All finished; their handles stay valid until joined or until close. */
    for (int i = 0; i < 50; i++) {
        int r = -1;
        RS_CHECK_OK(rs_task_join(handles[i], &r));
        RS_CHECK_EQ(r, i);
    }
    RS_CHECK_OK(rs_scope_close(s)); /* frees the 50 unjoined handles */
    return 0;
}

Test(task, handles_stay_valid_until_join_or_close, .timeout = 10)
{
    RS_RUN_OK(handles_until_close, NULL);
}

/* A join that has started keeps its handle even when the task's scope is
 * closed between the task's end and the joiner's next run: the joiner gets
 * the result, and the record is freed once (two later spawns get two
 * records). A second join meanwhile is -EBUSY, not a second free. */
static rs_task *joined_target;

static int yield_then_42(void *arg)
{
    (void)arg;
    RS_CHECK_OK(rs_yield());
    return 42;
}

static int join_target(void *arg)
{
    int *out = arg;
    return rs_task_join(joined_target, out);
}

static int parked(void *arg)
{
    (void)arg;
    return rs_sleep(INT64_MAX / 2) == -ECANCELED ? 0 : -1;
}

static int join_across_close(void *arg)
{
    (void)arg;
    rs_scope *root = rs_current_scope(), *a;
    RS_CHECK_OK(rs_scope_open(NULL, &a));
    RS_CHECK_OK(rs_spawn(a, yield_then_42, NULL, NULL, &joined_target)); /* run queue: target */
    int result = -1;
    rs_task *joiner;
    RS_CHECK_OK(rs_spawn(root, join_target, &result, NULL, &joiner)); /* target, joiner */
    RS_CHECK_OK(rs_yield()); /* the target yields, the joiner parks in its join */
    RS_CHECK_OK(rs_yield()); /* the target finishes and wakes the joiner, which has not run yet */
    RS_CHECK_EQ(rs_task_join(joined_target, NULL), -EBUSY);
    RS_CHECK_OK(rs_scope_close(a)); /* nothing left to wait for */
    int joiner_rc = -1;
    RS_CHECK_OK(rs_task_join(joiner, &joiner_rc));
    RS_CHECK_EQ(joiner_rc, 0);
    RS_CHECK_EQ(result, 42);
    rs_task *x, *y;
    RS_CHECK_OK(rs_spawn(rs_current_scope(), parked, NULL, NULL, &x));
    RS_CHECK_OK(rs_spawn(rs_current_scope(), parked, NULL, NULL, &y));
    RS_CHECK(x != y);
    rs_task_cancel(x);
    rs_task_cancel(y);
    RS_CHECK_OK(rs_task_join(x, NULL));
    RS_CHECK_OK(rs_task_join(y, NULL));
    return 0;
}

Test(task, a_join_in_progress_survives_the_close_of_the_tasks_scope, .timeout = 10)
{
    RS_RUN_OK(join_across_close, NULL);
}

/* A task waiting for a max_concurrency slot whose stack then cannot be had
 * ends with -ENOMEM without running, and a join waiting for it returns. */
static int never_runs(void *arg)
{
    (void)arg;
    return 7;
}

static int join_unstartable(void *arg)
{
    (void)arg;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .max_concurrency = 1, .keep_going = true }, &s));
    RS_CHECK_OK(rs_spawn(s, yield_then_42, NULL, NULL, NULL)); /* takes the one slot */
    rs_task *t;
    RS_CHECK_OK(rs_spawn(s, never_runs, NULL, &(rs_spawn_opts){ .stack_size = SIZE_MAX / 2 + 1 }, &t));
    int r = 0;
    RS_CHECK_OK(rs_task_join(t, &r)); /* parks until the slot frees and the start fails */
    RS_CHECK_EQ(r, -ENOMEM);
    RS_CHECK_EQ(rs_scope_close(s), -ENOMEM); /* the scope's first error */
    return 0;
}

Test(task, a_join_of_a_pending_task_that_cannot_start_returns, .timeout = 10)
{
    RS_RUN_OK(join_unstartable, NULL);
}

static int named(void *arg)
{
    (void)arg;
    RS_CHECK(rs_current_task() != NULL);
    return 0;
}

static int spawn_options(void *arg)
{
    (void)arg;
    char long_name[100];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    RS_CHECK_OK(rs_spawn(rs_current_scope(), named, NULL,
                         &(rs_spawn_opts){ .name = long_name, .stack_size = 1000 }, NULL));
    RS_CHECK_OK(rs_spawn(rs_current_scope(), named, NULL, &(rs_spawn_opts){ .stack_size = 1 << 20 }, NULL));
    return 0;
}

Test(task, spawn_options_are_accepted_and_clamped, .timeout = 10)
{
    RS_RUN_OK(spawn_options, NULL);
}

/* A stack no address space can hold is -ENOMEM, for one task or for every
 * task of a runtime (rs_run's first task included); the runtime goes on. */
static int impossible_stacks(void *arg)
{
    (void)arg;
    size_t sizes[] = { SIZE_MAX, SIZE_MAX - 4095, SIZE_MAX / 2 + 1 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        RS_CHECK_EQ(rs_spawn(rs_current_scope(), named, NULL, &(rs_spawn_opts){ .stack_size = sizes[i] }, NULL),
                    -ENOMEM);
    RS_CHECK_OK(rs_spawn(rs_current_scope(), named, NULL, NULL, NULL));
    return 0;
}

Test(task, a_stack_too_large_for_any_address_space_is_enomem, .timeout = 10)
{
    RS_RUN_OK(impossible_stacks, NULL);
    cr_assert_eq(rs_run(named, NULL, &(rs_runtime_opts){ .stack_size = SIZE_MAX }), -ENOMEM);
}

static int ping_pong_count;

static int ping_pong(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        ping_pong_count++;
        RS_CHECK_OK(rs_yield());
    }
    return 0;
}

static int yield_interleaves(void *arg)
{
    (void)arg;
    ping_pong_count = 0;
    rs_task *a, *b;
    RS_CHECK_OK(rs_spawn(rs_current_scope(), ping_pong, NULL, NULL, &a));
    RS_CHECK_OK(rs_spawn(rs_current_scope(), ping_pong, NULL, NULL, &b));
    int r;
    RS_CHECK_OK(rs_task_join(a, &r));
    RS_CHECK_OK(rs_task_join(b, &r));
    RS_CHECK_EQ(ping_pong_count, 2000);
    return 0;
}

Test(task, yield_lets_other_tasks_run, .timeout = 10)
{
    RS_RUN_OK(yield_interleaves, NULL);
}

static int sleep_accuracy(void *arg)
{
    (void)arg;
    int64_t t0 = rs_now_ms();
    RS_CHECK_OK(rs_sleep(30));
    int64_t took = rs_now_ms() - t0;
    RS_CHECK(took >= 30);
    RS_CHECK(took < 200);
    RS_CHECK_EQ(rs_sleep(-1), -EINVAL);
    RS_CHECK_OK(rs_sleep(0));
    return 0;
}

Test(task, sleep_sleeps_at_least_the_given_time, .timeout = 10)
{
    RS_RUN_OK(sleep_accuracy, NULL);
}
