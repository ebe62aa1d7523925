/* Guards: release exactly once (also through copies), disposal of a lock at
 * its scope's close (held guards released, waiters cancelled, later releases
 * harmless), fencing tokens, and what the lease-only calls answer in memory. */
#include <string.h>

#include "sync_support.h"

static int double_release(void *arg)
{
    (void)arg;
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(NULL, NULL, &l));
    rs_guard empty = RS_GUARD_INIT;
    static const rs_guard zero;
    RS_CHECK(memcmp(&empty, &zero, sizeof zero) == 0);
    RS_CHECK_EQ(rs_guard_release(&empty), -EALREADY);
    RS_CHECK_EQ(rs_guard_release(NULL), -EINVAL);
    rs_guard_cleanup(NULL);
    rs_guard_cleanup(&empty);

    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
    RS_CHECK_OK(rs_guard_release(&g));
    RS_CHECK_EQ(rs_guard_release(&g), -EALREADY);
    RS_CHECK_EQ(rs_guard_release(&g), -EALREADY);
    return 0;
}

Test(guard, double_release_is_ealready, .timeout = 10)
{
    RS_RUN_OK(double_release, NULL);
}

static int copies(void *arg)
{
    (void)arg;
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(NULL, NULL, &l));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
    rs_guard copy = g;
    RS_CHECK(rs_guard_held(&copy));
    RS_CHECK_OK(rs_guard_release(&g));
    RS_CHECK(!rs_guard_held(&copy));
    RS_CHECK_EQ(rs_guard_release(&copy), -EALREADY);

    /* A stale copy must not release the next holder, even if its record was reused. */
    rs_guard again = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &again));
    rs_guard stale = g;
    stale.rs_private_grant = copy.rs_private_grant; /* names the (possibly reused) record */
    stale.rs_private_gen = copy.rs_private_gen;
    RS_CHECK_EQ(rs_guard_release(&stale), -EALREADY);
    rs_lock_stats st;
    RS_CHECK_OK(rs_lock_stats_get(l, &st));
    RS_CHECK(st.exclusive);
    RS_CHECK(rs_guard_held(&again));
    RS_CHECK_OK(rs_guard_release(&again));
    return 0;
}

Test(guard, copy_of_a_guard_does_not_release_twice, .timeout = 10)
{
    RS_RUN_OK(copies, NULL);
}

/* ------------------------------------------------------------ disposal */

typedef struct wait_arg {
    rs_lock *lock;
    int result;
    bool done;
} wait_arg;

static int wait_for_lock(void *p)
{
    wait_arg *a = p;
    rs_guard g = RS_GUARD_INIT;
    a->result = rs_lock_acquire(a->lock, NULL, &g);
    if (a->result == 0)
        rs_guard_release(&g);
    a->done = true;
    return 0;
}

static int disposal(void *arg)
{
    (void)arg;
    RS_GUARD(kept); /* its cleanup runs after the lock is gone: must be harmless */
    rs_guard g = RS_GUARD_INIT;
    wait_arg w = { .result = 1 };
    rs_scope *outer = rs_current_scope();
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(s, NULL, &l));
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
    kept = g;
    w.lock = l;
    /* The waiter belongs to the outer scope: closing s does not wait for it. */
    RS_CHECK_OK(rs_spawn(outer, wait_for_lock, &w, NULL, NULL));
    RS_YIELD_UNTIL(lock_pending(l) == 1);
    RS_CHECK_OK(rs_scope_close(s)); /* disposes the lock: frees it */
    RS_CHECK(!rs_guard_held(&g));
    RS_CHECK_EQ(rs_guard_release(&g), -EALREADY);
    RS_YIELD_UNTIL(w.done);
    RS_CHECK_EQ(w.result, -ECANCELED);
    RS_CHECK(!rs_guard_held(&kept));
    /* Records are reused by the next grants; the old guards stay released. */
    rs_lock *l2;
    RS_CHECK_OK(rs_lock_new(NULL, NULL, &l2));
    rs_guard h = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_acquire(l2, NULL, &h));
    RS_CHECK_EQ(rs_guard_release(&kept), -EALREADY);
    RS_CHECK(rs_guard_held(&h));
    RS_CHECK_OK(rs_guard_release(&h));
    return 0;
}

Test(guard, scope_close_releases_held_guards_and_cancels_waiters, .timeout = 10)
{
    RS_RUN_OK(disposal, NULL);
}

static int dispose_rwlock_and_sem(void *arg)
{
    (void)arg;
    rs_guard r1 = RS_GUARD_INIT, r2 = RS_GUARD_INIT, p = RS_GUARD_INIT;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(s, &(rs_lock_opts){ .allow_multiple_readers = true }, &l));
    RS_CHECK_OK(rs_lock_read(l, NULL, &r1));
    RS_CHECK_OK(rs_lock_read(l, NULL, &r2));
    rs_sem *sem;
    RS_CHECK_OK(rs_sem_new(s, 3, &sem));
    RS_CHECK_OK(rs_sem_acquire(sem, 2, NULL, &p));
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(rs_guard_release(&r1), -EALREADY);
    RS_CHECK_EQ(rs_guard_release(&r2), -EALREADY);
    RS_CHECK_EQ(rs_guard_release(&p), -EALREADY);
    return 0;
}

Test(guard, disposal_of_rwlock_and_semaphore_releases_every_guard, .timeout = 10)
{
    RS_RUN_OK(dispose_rwlock_and_sem, NULL);
}

static int recycled_locks(void *arg)
{
    (void)arg;
    /* Lock objects are recycled after disposal: guards of the earlier locks
     * must stay released even when their memory now serves a live lock. */
    rs_guard stale[100];
    for (int i = 0; i < 100; i++) {
        rs_scope *s;
        RS_CHECK_OK(rs_scope_open(NULL, &s));
        rs_lock *l;
        RS_CHECK_OK(rs_lock_new(s, &(rs_lock_opts){ .allow_multiple_readers = i % 2 == 1 }, &l));
        stale[i] = (rs_guard)RS_GUARD_INIT;
        RS_CHECK_OK(i % 2 ? rs_lock_write(l, NULL, &stale[i]) : rs_lock_acquire(l, NULL, &stale[i]));
        RS_CHECK_OK(rs_scope_close(s));
    }
    rs_lock *live[4];
    rs_guard held[4] = { RS_GUARD_INIT, RS_GUARD_INIT, RS_GUARD_INIT, RS_GUARD_INIT };
    for (int i = 0; i < 4; i++) {
        RS_CHECK_OK(rs_lock_new(NULL, NULL, &live[i]));
        RS_CHECK_OK(rs_lock_acquire(live[i], NULL, &held[i]));
    }
    for (int i = 0; i < 100; i++) {
        RS_CHECK(!rs_guard_held(&stale[i]));
        RS_CHECK_EQ(rs_guard_release(&stale[i]), -EALREADY);
    }
    for (int i = 0; i < 4; i++) {
        rs_lock_stats st;
        RS_CHECK_OK(rs_lock_stats_get(live[i], &st));
        RS_CHECK(st.exclusive);
        RS_CHECK(rs_guard_held(&held[i]));
        RS_CHECK_OK(rs_guard_release(&held[i]));
    }
    return 0;
}

Test(guard, guards_of_disposed_locks_stay_released_when_the_memory_is_reused, .timeout = 10)
{
    RS_RUN_OK(recycled_locks, NULL);
}

/* ------------------------------------------------------------ tokens */

typedef struct token_arg {
    rs_lock *lock;
    uint64_t *tokens;
    int *n;
} token_arg;

static int take_token(void *p)
{
    token_arg *a = p;
    for (int i = 0; i < 50; i++) {
        RS_GUARD(g);
        RS_CHECK_OK(rs_lock_acquire(a->lock, NULL, &g));
        a->tokens[(*a->n)++] = rs_guard_token(&g);
        RS_CHECK_OK(rs_yield());
    }
    return 0;
}

static int tokens(void *arg)
{
    (void)arg;
    rs_lock *l, *other;
    RS_CHECK_OK(rs_lock_new(NULL, NULL, &l));
    RS_CHECK_OK(rs_lock_new(NULL, NULL, &other));
    uint64_t seen[200];
    int n = 0;
    token_arg a = { l, seen, &n };
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    for (int i = 0; i < 4; i++)
        RS_CHECK_OK(rs_spawn(s, take_token, &a, NULL, NULL));
    /* Another lock's grants in between do not disturb this lock's sequence. */
    for (int i = 0; i < 30; i++) {
        RS_GUARD(o);
        RS_CHECK_OK(rs_lock_acquire(other, NULL, &o));
        RS_CHECK(rs_guard_token(&o) > 0);
        RS_CHECK_OK(rs_yield());
    }
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(n, 200);
    RS_CHECK(seen[0] > 0);
    for (int i = 1; i < n; i++)
        RS_CHECK(seen[i] > seen[i - 1]);
    /* The token stays readable after the release. */
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_EQ(rs_guard_token(&g), 0);
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
    uint64_t t = rs_guard_token(&g);
    RS_CHECK(t > seen[n - 1]);
    RS_CHECK_OK(rs_guard_release(&g));
    RS_CHECK_EQ(rs_guard_token(&g), t);
    return 0;
}

Test(guard, fencing_tokens_strictly_increase_per_lock, .timeout = 10)
{
    RS_RUN_OK(tokens, NULL);
}

/* ------------------------------------------------------------ lease-only calls */

static int not_a_lease(void *arg)
{
    (void)arg;
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(NULL, NULL, &l));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
    RS_CHECK_EQ(rs_guard_extend(&g, 1000), -EINVAL);
    RS_CHECK_EQ(rs_guard_extend(&g, -1), -EINVAL);
    rs_signal *lost = rs_guard_lost(&g);
    RS_CHECK(lost != NULL);
    RS_CHECK(!rs_signal_aborted(lost));
    RS_CHECK_EQ(rs_signal_reason(lost), 0);
    RS_CHECK_EQ(rs_signal_wait(lost, 5), -ETIMEDOUT);
    RS_CHECK(rs_guard_resource(&g) == NULL);
    RS_CHECK_EQ(rs_guard_discard(&g), -EINVAL);
    RS_CHECK(rs_guard_held(&g)); /* a failed discard leaves it held */
    RS_CHECK_OK(rs_guard_release(&g));
    RS_CHECK_EQ(rs_guard_extend(&g, 1000), -EALREADY);
    RS_CHECK_EQ(rs_guard_discard(&g), -EALREADY);
    RS_CHECK(!rs_signal_aborted(rs_guard_lost(&g)));
    RS_CHECK(rs_guard_lost(NULL) == NULL);
    RS_CHECK(!rs_guard_held(NULL));
    RS_CHECK_EQ(rs_guard_token(NULL), 0);
    return 0;
}

Test(guard, lease_calls_on_an_in_memory_guard, .timeout = 10)
{
    RS_RUN_OK(not_a_lease, NULL);
}

/* A guard kept past the end of its runtime: the root scope's close released
 * it (a pool's resource is destroyed when the runtime ends, as no release can
 * come any more), and after rs_run returned it reads as released without
 * touching freed memory (the address sanitizer build checks that), also once
 * a later runtime reuses the records. */
#define KEPT 5
static rs_guard kept_guards[KEPT];
static uint64_t kept_tokens[KEPT];
static int kept_created, kept_destroyed;

static int kept_create(void *ctx, void **res)
{
    (void)ctx;
    *res = &kept_created;
    kept_created++;
    return 0;
}

static void kept_destroy(void *ctx, void *res)
{
    (void)ctx;
    (void)res;
    kept_destroyed++;
}

static int fill_kept_guards(void *arg)
{
    (void)arg;
    rs_lock *l, *rw;
    rs_sem *sem;
    rs_pool *pool;
    RS_CHECK_OK(rs_lock_new(NULL, NULL, &l));
    RS_CHECK_OK(rs_lock_new(NULL, &(rs_lock_opts){ .allow_multiple_readers = true }, &rw));
    RS_CHECK_OK(rs_sem_new(NULL, 3, &sem));
    RS_CHECK_OK(rs_pool_new(NULL, &(rs_pool_opts){ .create = kept_create, .destroy = kept_destroy, .max = 2 }, &pool));
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &kept_guards[0]));
    RS_CHECK_OK(rs_lock_read(rw, NULL, &kept_guards[1]));
    RS_CHECK_OK(rs_sem_acquire(sem, 2, NULL, &kept_guards[2]));
    RS_CHECK_OK(rs_pool_acquire(pool, NULL, &kept_guards[3]));
    RS_CHECK_OK(rs_pool_acquire(pool, NULL, &kept_guards[4]));
    for (int i = 0; i < KEPT; i++) {
        RS_CHECK(rs_guard_held(&kept_guards[i]));
        kept_tokens[i] = rs_guard_token(&kept_guards[i]);
    }
    return 0;
}

/* Many grants and locks, so that the records of the first runtime are reused. */
static int churn_records(void *arg)
{
    (void)arg;
    for (int round = 0; round < 200; round++) {
        rs_lock *l;
        RS_CHECK_OK(rs_lock_new(NULL, &(rs_lock_opts){ .allow_multiple_readers = true }, &l));
        rs_guard g[8];
        for (int i = 0; i < 8; i++) {
            g[i] = (rs_guard)RS_GUARD_INIT;
            RS_CHECK_OK(rs_lock_read(l, NULL, &g[i]));
        }
        for (int i = 0; i < 8; i++)
            RS_CHECK_OK(rs_guard_release(&g[i]));
    }
    for (int i = 0; i < KEPT; i++)
        RS_CHECK(!rs_guard_held(&kept_guards[i]));
    return 0;
}

static void check_kept_guards_released(void)
{
    cr_expect_eq(kept_created, 2);
    cr_expect_eq(kept_destroyed, 2, "the pool's resources were destroyed %d times", kept_destroyed);
    for (int i = 0; i < KEPT; i++) {
        cr_expect(!rs_guard_held(&kept_guards[i]), "guard %d still reads as held", i);
        cr_expect_eq(rs_guard_token(&kept_guards[i]), kept_tokens[i]);
        cr_expect_null(rs_guard_resource(&kept_guards[i]));
        cr_expect_eq(rs_guard_extend(&kept_guards[i], 1000), -EALREADY);
    }
}

Test(guard, guards_kept_past_the_end_of_their_runtime_read_as_released, .timeout = 10)
{
    RS_RUN_OK(fill_kept_guards, NULL);
    check_kept_guards_released();
    RS_RUN_OK(churn_records, NULL);
    check_kept_guards_released();
    for (int i = 0; i < KEPT; i++) {
        rs_guard copy = kept_guards[i];
        cr_expect_eq(rs_guard_release(&kept_guards[i]), -EALREADY);
        rs_guard_cleanup(&copy);
        cr_expect(!rs_guard_held(&copy));
    }
}
