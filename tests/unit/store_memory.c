/* The built-in memory store beyond the common contract: which URLs open it,
 * store options, and the one process-wide table shared by runtimes running
 * in different threads. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "support.h"

#include <criterion/redirect.h>

Test(store_memory, open_forms, .timeout = 5)
{
    rs_store *st;
    cr_assert_eq(rs_store_open("memory:", NULL, &st), 0);
    cr_assert_eq(rs_store_close(st), 0);
    cr_assert_eq(rs_store_open("MEMORY:", NULL, &st), 0);
    cr_assert_eq(rs_store_close(st), 0);

    static const char *const bad[] = {
        "memory",       "memory://",   "memory://host", "memory:x", "memory:?a=b", "memory:?", "memory:?&&",
        "nosuch://h:1", "unknown:",    "redis://",      "",         "://",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(rs_store_open(bad[i], NULL, &st), -EINVAL, "\"%s\"", bad[i]);
    cr_assert_eq(rs_store_open(NULL, NULL, &st), -EINVAL);
    cr_assert_eq(rs_store_open("memory:", NULL, NULL), -EINVAL);
}

Test(store_memory, options_are_checked, .timeout = 5)
{
    rs_store *st;
    char prefix[300];
    memset(prefix, 'p', sizeof prefix - 1);
    prefix[sizeof prefix - 1] = '\0';
    cr_assert_eq(rs_store_open("memory:", &(rs_store_opts){ .key_prefix = prefix }, &st), -EINVAL);
    prefix[256] = '\0';
    cr_assert_eq(rs_store_open("memory:", &(rs_store_opts){ .key_prefix = prefix }, &st), 0);
    cr_assert_eq(rs_store_close(st), 0);
    cr_assert_eq(rs_store_open("memory:", &(rs_store_opts){ .op_timeout_ms = -1 }, &st), -EINVAL);
    cr_assert_eq(rs_store_open("memory:", &(rs_store_opts){ .connect_timeout_ms = -1 }, &st), -EINVAL);
    cr_assert_eq(rs_store_open("memory:", &(rs_store_opts){ .key_prefix = "" }, &st), 0);
    cr_assert_eq(rs_store_close(st), 0);
    cr_assert_eq(rs_store_close(NULL), -EINVAL);
}

/* Two runtimes, each on its own thread, on the same key through their own
 * handles: the second sees the first's lease. The threads step in turn with a
 * barrier (a test harness, not part of either runtime's scheduling). */
typedef struct shared {
    pthread_barrier_t step;
    uint64_t token_a, token_b;
    int busy_rc;
} shared;

static int holder_main(void *arg)
{
    shared *sh = arg;
    rs_store *st;
    RS_CHECK_OK(rs_store_open("memory:", &(rs_store_opts){ .key_prefix = "xthread:" }, &st));
    RS_CHECK_OK(rs_store_acquire(st, "k", RS_LOCK_EXCLUSIVE, "thread-a", 30000, &sh->token_a));
    pthread_barrier_wait(&sh->step); /* 1: held */
    pthread_barrier_wait(&sh->step); /* 2: the other thread tried */
    RS_CHECK_OK(rs_store_release(st, "k", RS_LOCK_EXCLUSIVE, "thread-a"));
    pthread_barrier_wait(&sh->step); /* 3: released */
    return rs_store_close(st);
}

static int contender_main(void *arg)
{
    shared *sh = arg;
    rs_store *st;
    RS_CHECK_OK(rs_store_open("memory:", &(rs_store_opts){ .key_prefix = "xthread:" }, &st));
    pthread_barrier_wait(&sh->step);
    sh->busy_rc = rs_store_acquire(st, "k", RS_LOCK_EXCLUSIVE, "thread-b", 30000, NULL);
    pthread_barrier_wait(&sh->step);
    pthread_barrier_wait(&sh->step);
    RS_CHECK_OK(rs_store_acquire(st, "k", RS_LOCK_EXCLUSIVE, "thread-b", 30000, &sh->token_b));
    RS_CHECK_OK(rs_store_release(st, "k", RS_LOCK_EXCLUSIVE, "thread-b"));
    return rs_store_close(st);
}

Test(store_memory, one_table_for_every_runtime, .timeout = 10)
{
    shared sh = { 0 };
    pthread_barrier_init(&sh.step, NULL, 2);
    rs_test_run_two_threads(holder_main, &sh, contender_main, &sh);
    pthread_barrier_destroy(&sh.step);
    cr_assert_eq(sh.busy_rc, -EBUSY);
    cr_assert_gt(sh.token_b, sh.token_a);
}

/* Many distinct keys used once each: the table keeps nothing for a free key
 * (checked under ASan/LSan as no growth; here as correctness of reuse). */
static int churn_main(void *arg)
{
    (void)arg;
    rs_store *st;
    RS_CHECK_OK(rs_store_open("memory:", &(rs_store_opts){ .key_prefix = "churn:" }, &st));
    uint64_t last = 0;
    for (int i = 0; i < 20000; i++) {
        char key[32];
        snprintf(key, sizeof key, "job-%d", i);
        uint64_t t;
        RS_CHECK_OK(rs_store_acquire(st, key, i % 3 == 0 ? RS_LOCK_READ : RS_LOCK_EXCLUSIVE, "w", 10000, &t));
        RS_CHECK(t > last);
        last = t;
        RS_CHECK_OK(rs_store_release(st, key, i % 3 == 0 ? RS_LOCK_READ : RS_LOCK_EXCLUSIVE, "w"));
    }
    rs_lock_info info;
    RS_CHECK_EQ(rs_store_inspect(st, "job-7", &info), -ENOENT);
    return rs_store_close(st);
}

Test(store_memory, distinct_keys_churn, .timeout = 20)
{
    RS_RUN_OK(churn_main, NULL);
}

/* A waiter in one runtime is woken by a release in another runtime (another
 * thread) at once, not at its next backoff retry. The holder keeps the lock
 * long enough for the waiter's backoff to reach its ceiling (200 ms), then
 * releases; in every round the waiter must hold the lock within 50 ms.
 * Without the cross-thread wake-up the delay is spread over the whole backoff
 * interval, so all rounds under 50 ms would be a fluke (about 1 in 250). */
#define XWAKE_ROUNDS 5
#define XWAKE_HOLD_MS 700

typedef struct xwake {
    pthread_barrier_t step;
    int64_t released_ns[XWAKE_ROUNDS], acquired_ns[XWAKE_ROUNDS];
} xwake;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

typedef int (*xwake_rounds)(xwake *x, rs_lock *l);

/* Runs rounds on a lock of key "k" that lives in its own scope, closed
 * before the store handle is. */
static int xwake_run(xwake *x, xwake_rounds rounds)
{
    rs_store *st;
    rs_scope *s;
    rs_lock *l;
    RS_CHECK_OK(rs_store_open("memory:", &(rs_store_opts){ .key_prefix = "xwake:" }, &st));
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    RS_CHECK_OK(rs_lock_new(s, &(rs_lock_opts){ .store = st, .key = "k", .ttl_ms = 30000 }, &l));
    int rc = rounds(x, l);
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_OK(rs_store_close(st));
    return rc;
}

static int xwake_holder_rounds(xwake *x, rs_lock *l)
{
    for (int r = 0; r < XWAKE_ROUNDS; r++) {
        rs_guard g = RS_GUARD_INIT;
        RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
        pthread_barrier_wait(&x->step); /* held: the waiter starts waiting */
        RS_CHECK_OK(rs_sleep(XWAKE_HOLD_MS)); /* lets the waiter's backoff grow to its ceiling */
        x->released_ns[r] = mono_ns();
        RS_CHECK_OK(rs_guard_release(&g));
        pthread_barrier_wait(&x->step); /* the waiter had its turn */
    }
    return 0;
}

static int xwake_waiter_rounds(xwake *x, rs_lock *l)
{
    for (int r = 0; r < XWAKE_ROUNDS; r++) {
        pthread_barrier_wait(&x->step);
        rs_guard g = RS_GUARD_INIT;
        RS_CHECK_OK(rs_lock_acquire(l, &(rs_acquire_opts){ .timeout_ms = 10000 }, &g));
        x->acquired_ns[r] = mono_ns();
        RS_CHECK_OK(rs_guard_release(&g));
        pthread_barrier_wait(&x->step);
    }
    return 0;
}

static int xwake_holder(void *arg)
{
    return xwake_run(arg, xwake_holder_rounds);
}

static int xwake_waiter(void *arg)
{
    return xwake_run(arg, xwake_waiter_rounds);
}

Test(store_memory, a_release_in_another_runtime_wakes_the_waiter_at_once, .timeout = 20)
{
    xwake x = { 0 };
    pthread_barrier_init(&x.step, NULL, 2);
    rs_test_run_two_threads(xwake_holder, &x, xwake_waiter, &x);
    pthread_barrier_destroy(&x.step);
    for (int r = 0; r < XWAKE_ROUNDS; r++) {
        int64_t delay_ms = (x.acquired_ns[r] - x.released_ns[r]) / 1000000;
        cr_expect_lt(delay_ms, 50, "round %d: the waiter got the lock %lld ms after the release", r,
                     (long long)delay_ms);
        cr_expect_geq(x.acquired_ns[r], x.released_ns[r]);
    }
}

/* A worker that waited through the memory store keeps a read queued for
 * pokes from other runtimes for the rest of its run. That read must not hide
 * a deadlock: with every task blocked for good, the runtime still cancels the
 * root scope instead of sleeping in the kernel forever. */
static int take_lock_once(void *arg)
{
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_acquire(arg, NULL, &g));
    return rs_guard_release(&g);
}

static int poked_worker_then_deadlock(void *arg)
{
    (void)arg;
    rs_store *st;
    rs_scope *s;
    rs_lock *l;
    RS_CHECK_OK(rs_store_open("memory:", &(rs_store_opts){ .key_prefix = "pokedeadlock:" }, &st));
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    RS_CHECK_OK(rs_lock_new(s, &(rs_lock_opts){ .store = st, .key = "k" }, &l));
    /* Held by another owner, as another process would: the lock's task is
     * refused by the store itself, watches the key and parks. */
    RS_CHECK_OK(rs_store_acquire(st, "k", RS_LOCK_EXCLUSIVE, "someone-else", 30000, NULL));
    RS_CHECK_OK(rs_spawn(s, take_lock_once, l, NULL, NULL));
    RS_CHECK_OK(rs_yield());
    rs_lock_stats stats;
    RS_CHECK_OK(rs_lock_stats_get(l, &stats));
    RS_CHECK_EQ(stats.pending, 1);
    RS_CHECK_OK(rs_store_release(st, "k", RS_LOCK_EXCLUSIVE, "someone-else"));
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_OK(rs_store_close(st));
    return rs_test_deadlock_in_a_nested_scope();
}

Test(store_memory, a_worker_reachable_by_pokes_still_detects_a_deadlock, .timeout = 10)
{
    cr_redirect_stderr();
    int rc = rs_run(poked_worker_then_deadlock, NULL, NULL);
    cr_assert_eq(rc, -ECANCELED, "rs_run returned %d (%s)", rc, rs_strerror(rc));
}
