/* Stress for the semaphore and the pool: many tasks, weighted and random
 * requests, timeouts and cancellations. Capacity is never exceeded, every
 * waiter ends, counts return to their start, nothing leaks (ASan). */
#include <stdint.h>

#include "support.h"

#define TASKS 64

static uint32_t next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* ------------------------------------------------------------ workers */

/* What the workers of one stress test do to the shared resource: attempt
 * makes one acquire of it (without waiting when timeout_ms is 0), holds and
 * returns it, and counts the outcome in shared. */
typedef struct chaos_plan {
    void (*attempt)(void *shared, uint32_t *seed, int64_t timeout_ms);
    void *shared;
    uint32_t seed_factor;    /* each worker's seed: its task's address times this */
    int rounds;              /* attempts per worker */
    uint32_t max_timeout_ms; /* a timed attempt waits 1 to this many ms */
} chaos_plan;

/* One attempt in a task of its own, which its worker cancels. */
typedef struct victim_arg {
    uint32_t seed;
    const chaos_plan *plan;
} victim_arg;

static int victim(void *p)
{
    victim_arg *a = p;
    a->plan->attempt(a->plan->shared, &a->seed, 0);
    return 0;
}

/* Each round, at random: an attempt without waiting, one with a short
 * timeout, or one in a task of its own that is cancelled after a few yields. */
static int chaos_worker(void *p)
{
    const chaos_plan *plan = p;
    uint32_t seed = (uint32_t)(uintptr_t)rs_current_task() * plan->seed_factor | 1u;
    for (int i = 0; i < plan->rounds; i++) {
        uint32_t kind = next_rand(&seed) % 3;
        if (kind == 0) {
            plan->attempt(plan->shared, &seed, 0);
        } else if (kind == 1) {
            plan->attempt(plan->shared, &seed, 1 + next_rand(&seed) % plan->max_timeout_ms);
        } else {
            victim_arg a = { .seed = next_rand(&seed), .plan = plan };
            rs_task *t;
            RS_CHECK_OK(rs_spawn(rs_current_scope(), victim, &a, NULL, &t));
            for (uint32_t k = 0; k < next_rand(&seed) % 4; k++)
                RS_CHECK_OK(rs_yield());
            rs_task_cancel(t);
            int rc;
            RS_CHECK_OK(rs_task_join(t, &rc));
        }
    }
    return 0;
}

/* Runs TASKS workers of plan in a scope of their own until they all end. */
static int run_chaos_workers(chaos_plan *plan)
{
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    for (int i = 0; i < TASKS; i++)
        RS_CHECK_OK(rs_spawn(s, chaos_worker, plan, NULL, NULL));
    return rs_scope_close(s);
}

/* ------------------------------------------------------------ semaphore */

typedef struct sem_shared {
    rs_sem *sem;
    int64_t in_use; /* permits held right now, counted by the holders */
    long overuse, bad;
    long granted, timed_out, cancelled;
} sem_shared;

static void sem_attempt(void *shared, uint32_t *seed, int64_t timeout_ms)
{
    sem_shared *sh = shared;
    int64_t n = 1 + next_rand(seed) % 4;
    rs_guard g = RS_GUARD_INIT;
    int rc = rs_sem_acquire(sh->sem, n, &(rs_acquire_opts){ .timeout_ms = timeout_ms,
                                                            .priority = (int)(next_rand(seed) % 3) }, &g);
    if (rc == 0) {
        sh->granted++;
        sh->in_use += n;
        /* Granted waiters that have not run yet hold permits too: at most total. */
        if (sh->in_use + rs_sem_available(sh->sem) > rs_sem_total(sh->sem) || rs_sem_available(sh->sem) < 0)
            sh->overuse++;
        uint32_t r = next_rand(seed);
        if (r % 32 == 0)
            rs_sleep(1);
        for (uint32_t i = 0; i < r % 3; i++)
            rs_yield();
        sh->in_use -= n;
        if (rs_guard_release(&g) != 0)
            sh->bad++;
    } else if (rc == -ETIMEDOUT) {
        sh->timed_out++;
    } else if (rc == -ECANCELED) {
        sh->cancelled++;
    } else {
        sh->bad++;
    }
}

static int sem_chaos(void *arg)
{
    (void)arg;
    sem_shared sh = { 0 };
    RS_CHECK_OK(rs_sem_new(NULL, 6, &sh.sem));
    RS_CHECK_OK(run_chaos_workers(&(chaos_plan){
        .attempt = sem_attempt, .shared = &sh, .seed_factor = 2654435761u, .rounds = 1000, .max_timeout_ms = 2 }));
    cr_log_info("sem: %ld granted, %ld timed out, %ld cancelled", sh.granted, sh.timed_out, sh.cancelled);
    RS_CHECK_EQ(sh.overuse, 0);
    RS_CHECK_EQ(sh.bad, 0);
    RS_CHECK(sh.granted > 0 && sh.timed_out > 0 && sh.cancelled > 0);
    RS_CHECK_EQ(rs_sem_available(sh.sem), 6);
    RS_CHECK_EQ(rs_sem_waiting(sh.sem), 0);
    return 0;
}

Test(sync_stress, weighted_semaphore_with_timeouts_and_cancellations, .timeout = 300)
{
    RS_RUN_OK(sem_chaos, NULL);
}

/* ------------------------------------------------------------ pool */

typedef struct pool_shared {
    rs_pool *pool;
    int live, max_live, created, destroyed, create_calls;
    long granted, timed_out, cancelled, failed, bad, inconsistent;
} pool_shared;

#define POOL_MAX 4

static int p_create(void *c, void **out)
{
    pool_shared *sh = c;
    uint32_t seed = (uint32_t)++sh->create_calls * 2654435761u | 1u;
    uint32_t r = next_rand(&seed);
    if (r % 4 == 0) {
        int rc = rs_sleep(1);
        if (rc)
            return rc;
    }
    if (r % 7 == 0)
        return -ECONNREFUSED;
    sh->created++;
    sh->live++;
    if (sh->live > sh->max_live)
        sh->max_live = sh->live;
    *out = (void *)(intptr_t)sh->create_calls;
    return 0;
}

static void p_destroy(void *c, void *res)
{
    pool_shared *sh = c;
    (void)res;
    sh->destroyed++;
    sh->live--;
    rs_yield(); /* destroy may suspend */
}

static bool p_check(void *c, void *res)
{
    (void)c;
    return (intptr_t)res % 5 != 0;
}

static void pool_consistency(pool_shared *sh)
{
    rs_pool_stats st;
    if (rs_pool_stats_get(sh->pool, &st) != 0 || st.total != st.idle + st.in_use + st.creating ||
        st.total > POOL_MAX || sh->live > POOL_MAX)
        sh->inconsistent++;
}

static void pool_attempt(void *shared, uint32_t *seed, int64_t timeout_ms)
{
    pool_shared *sh = shared;
    rs_guard g = RS_GUARD_INIT;
    int rc = rs_pool_acquire(sh->pool, &(rs_acquire_opts){ .timeout_ms = timeout_ms,
                                                           .priority = (int)(next_rand(seed) % 3) }, &g);
    pool_consistency(sh);
    if (rc == 0) {
        sh->granted++;
        if (!rs_guard_resource(&g))
            sh->bad++;
        uint32_t r = next_rand(seed);
        if (r % 16 == 0)
            rs_sleep(1);
        for (uint32_t i = 0; i < r % 3; i++)
            rs_yield();
        rc = r % 9 == 0 ? rs_guard_discard(&g) : rs_guard_release(&g);
        if (rc != 0)
            sh->bad++;
    } else if (rc == -ETIMEDOUT) {
        sh->timed_out++;
    } else if (rc == -ECANCELED) {
        sh->cancelled++;
    } else if (rc == -ECONNREFUSED) {
        sh->failed++;
    } else {
        sh->bad++;
    }
    pool_consistency(sh);
}

static int pool_chaos(void *arg)
{
    (void)arg;
    pool_shared sh = { 0 };
    rs_scope *owner;
    RS_CHECK_OK(rs_scope_open(NULL, &owner));
    RS_CHECK_OK(rs_pool_new(owner, &(rs_pool_opts){ .create = p_create, .destroy = p_destroy, .check = p_check,
                                                    .ctx = &sh, .min = 1, .max = POOL_MAX,
                                                    .check_interval_ms = 2, .idle_timeout_ms = 3 },
                            &sh.pool));
    RS_CHECK_OK(run_chaos_workers(&(chaos_plan){
        .attempt = pool_attempt, .shared = &sh, .seed_factor = 2246822519u, .rounds = 300, .max_timeout_ms = 3 }));
    cr_log_info("pool: %ld granted, %ld timed out, %ld cancelled, %ld create errors, %d created", sh.granted,
                sh.timed_out, sh.cancelled, sh.failed, sh.created);
    RS_CHECK_EQ(sh.bad, 0);
    RS_CHECK_EQ(sh.inconsistent, 0);
    RS_CHECK(sh.max_live <= POOL_MAX);
    RS_CHECK(sh.granted > 0 && sh.timed_out > 0 && sh.cancelled > 0 && sh.failed > 0);
    rs_pool_stats st;
    RS_CHECK_OK(rs_pool_stats_get(sh.pool, &st));
    RS_CHECK(st.in_use == 0 && st.waiting == 0);
    RS_CHECK_OK(rs_scope_close(owner)); /* disposes the pool */
    RS_CHECK_EQ(sh.live, 0);
    RS_CHECK_EQ(sh.created, sh.destroyed);
    return 0;
}

Test(sync_stress, pool_with_failures_discards_timeouts_and_cancellations, .timeout = 300)
{
    RS_RUN_OK(pool_chaos, NULL);
}
