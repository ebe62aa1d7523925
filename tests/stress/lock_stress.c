/* Stress: many tasks hammering one lock (exclusive and read-write) with
 * switches inside the critical section, then the same with random timeouts,
 * task cancellations and scope timeouts (both kinds of lock). Fencing tokens
 * increase in grant order. Mutual exclusion never breaks, no
 * wake-up is lost (every waiter ends), nothing leaks (ASan), and the lock is
 * free and empty at the end. */
#include "support.h"

#define TASKS 64
#define ROUNDS 10000

typedef struct shared {
    rs_lock *lock;
    int inside;     /* tasks in the exclusive critical section */
    int readers;    /* tasks in a read section */
    long entries;
    long overlaps;  /* must stay 0 */
    uint64_t last_token;        /* the largest token that entered */
    uint64_t last_writer_token; /* the token of the last exclusive holder or writer that entered */
    long token_errors;
} shared;

/* A writer is granted only once every earlier grant has ended, so its token
 * exceeds every token that entered before it. */
static void enter_exclusive(shared *sh, const rs_guard *g)
{
    if (sh->inside != 0 || sh->readers != 0)
        sh->overlaps++;
    sh->inside++;
    sh->entries++;
    uint64_t t = rs_guard_token(g);
    if (t <= sh->last_token)
        sh->token_errors++;
    sh->last_token = sh->last_writer_token = t;
}

static void leave_exclusive(shared *sh)
{
    sh->inside--;
}

/* Readers granted together may enter in any order, but none can have been
 * granted before a writer that entered earlier: that writer waited for it. */
static void enter_read(shared *sh, const rs_guard *g)
{
    if (sh->inside != 0)
        sh->overlaps++;
    sh->readers++;
    sh->entries++;
    uint64_t t = rs_guard_token(g);
    if (t <= sh->last_writer_token)
        sh->token_errors++;
    if (t > sh->last_token)
        sh->last_token = t;
}

static void leave_read(shared *sh)
{
    sh->readers--;
}

/* ------------------------------------------------------------ plain */

static int hammer(void *p)
{
    shared *sh = p;
    for (int i = 0; i < ROUNDS; i++) {
        RS_GUARD(g);
        RS_CHECK_OK(rs_lock_acquire(sh->lock, NULL, &g));
        enter_exclusive(sh, &g);
        RS_CHECK_OK(rs_yield());
        leave_exclusive(sh);
    }
    return 0;
}

static int plain(void *arg)
{
    (void)arg;
    shared sh = { 0 };
    RS_CHECK_OK(rs_lock_new(NULL, NULL, &sh.lock));
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    for (int i = 0; i < TASKS; i++)
        RS_CHECK_OK(rs_spawn(s, hammer, &sh, NULL, NULL));
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(sh.overlaps, 0);
    RS_CHECK_EQ(sh.token_errors, 0);
    RS_CHECK_EQ(sh.entries, (long)TASKS * ROUNDS);
    rs_lock_stats st;
    RS_CHECK_OK(rs_lock_stats_get(sh.lock, &st));
    RS_CHECK(!st.exclusive && st.pending == 0);
    return 0;
}

Test(lock_stress, sixty_four_tasks_ten_thousand_acquisitions_never_overlap, .timeout = 300)
{
    RS_RUN_OK(plain, NULL);
}

/* ------------------------------------------------------------ read-write */

static int rw_hammer(void *p)
{
    shared *sh = p;
    uint64_t seed = (uint64_t)(uintptr_t)rs_current_task();
    for (int i = 0; i < ROUNDS / 4; i++) {
        RS_GUARD(g);
        bool write = rs_test_rand(&seed) % 8 == 0;
        int prio = (int)(rs_test_rand(&seed) % 3);
        if (write) {
            RS_CHECK_OK(rs_lock_write(sh->lock, &(rs_acquire_opts){ .priority = prio }, &g));
            enter_exclusive(sh, &g);
            RS_CHECK_OK(rs_yield());
            leave_exclusive(sh);
        } else {
            RS_CHECK_OK(rs_lock_read(sh->lock, &(rs_acquire_opts){ .priority = prio }, &g));
            enter_read(sh, &g);
            RS_CHECK_OK(rs_yield());
            leave_read(sh);
        }
    }
    return 0;
}

static int readers_writers(void *arg)
{
    (void)arg;
    shared sh = { 0 };
    RS_CHECK_OK(rs_lock_new(NULL, &(rs_lock_opts){ .allow_multiple_readers = true }, &sh.lock));
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    for (int i = 0; i < TASKS; i++)
        RS_CHECK_OK(rs_spawn(s, rw_hammer, &sh, NULL, NULL));
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(sh.overlaps, 0);
    RS_CHECK_EQ(sh.token_errors, 0);
    rs_lock_stats st;
    RS_CHECK_OK(rs_lock_stats_get(sh.lock, &st));
    RS_CHECK(!st.exclusive && st.readers == 0 && st.pending == 0);
    return 0;
}

Test(lock_stress, readers_and_writers_never_overlap, .timeout = 300)
{
    RS_RUN_OK(readers_writers, NULL);
}

/* ------------------------------------------------------------ chaos */

typedef struct chaos {
    shared sh;
    bool rw; /* a read-write lock: a quarter of the attempts write, the rest read */
    long attempts, granted, timed_out, cancelled;
    long bad_results;
} chaos;

typedef struct attempt {
    chaos *c;
    uint64_t seed;
} attempt;

/* One acquisition that may time out or be cancelled; counts its outcome. */
static int one_attempt(chaos *c, uint64_t *seed, int64_t timeout_ms)
{
    rs_guard g = RS_GUARD_INIT;
    const rs_acquire_opts o = { .priority = (int)(rs_test_rand(seed) % 4), .timeout_ms = timeout_ms };
    bool read = c->rw && rs_test_rand(seed) % 4 != 0;
    int rc = !c->rw ? rs_lock_acquire(c->sh.lock, &o, &g)
             : read ? rs_lock_read(c->sh.lock, &o, &g)
                    : rs_lock_write(c->sh.lock, &o, &g);
    c->attempts++;
    if (rc == 0) {
        c->granted++;
        if (read)
            enter_read(&c->sh, &g);
        else
            enter_exclusive(&c->sh, &g);
        /* Switches inside, now and then a sleep so that queues grow long and
         * timeouts expire; a cancellation meanwhile does not take the lock away. */
        uint64_t r = rs_test_rand(seed);
        if (r % 64 == 0)
            rs_sleep(1);
        for (uint64_t i = 0; i < r % 3; i++)
            rs_yield();
        if (read)
            leave_read(&c->sh);
        else
            leave_exclusive(&c->sh);
        if (rs_guard_release(&g) != 0)
            c->bad_results++;
    } else if (rc == -ETIMEDOUT) {
        c->timed_out++;
    } else if (rc == -ECANCELED) {
        c->cancelled++;
    } else {
        c->bad_results++;
    }
    if (rc != 0 && rs_guard_held(&g))
        c->bad_results++;
    return rc;
}

static int victim(void *p)
{
    attempt *a = p;
    one_attempt(a->c, &a->seed, 0);
    return 0;
}

static int chaos_worker(void *p)
{
    chaos *c = p;
    uint64_t seed = (uint64_t)(uintptr_t)rs_current_task() * 2654435761u;
    for (int i = 0; i < ROUNDS / 10; i++) {
        switch (rs_test_rand(&seed) % 4) {
        case 0: /* plain */
            one_attempt(c, &seed, 0);
            break;
        case 1: /* own timeout */
            one_attempt(c, &seed, 1 + rs_test_rand(&seed) % 2);
            break;
        case 2: { /* inside a scope with a timeout */
            rs_scope *s;
            RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 1 + rs_test_rand(&seed) % 2 }, &s));
            one_attempt(c, &seed, 0);
            int rc = rs_scope_close(s);
            RS_CHECK(rc == 0 || rc == -ETIMEDOUT);
            break;
        }
        default: { /* a task cancelled after a few switches */
            attempt a = { c, rs_test_rand(&seed) };
            rs_task *t;
            RS_CHECK_OK(rs_spawn(rs_current_scope(), victim, &a, NULL, &t));
            int n = (int)(rs_test_rand(&seed) % 4);
            for (int k = 0; k < n; k++)
                RS_CHECK_OK(rs_yield());
            rs_task_cancel(t);
            int rc;
            RS_CHECK_OK(rs_task_join(t, &rc));
            break;
        }
        }
    }
    return 0;
}

static int chaos_run(void *arg)
{
    chaos c = { .rw = *(const bool *)arg };
    RS_CHECK_OK(rs_lock_new(NULL, &(rs_lock_opts){ .allow_multiple_readers = c.rw }, &c.sh.lock));
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    for (int i = 0; i < TASKS; i++)
        RS_CHECK_OK(rs_spawn(s, chaos_worker, &c, NULL, NULL));
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(c.sh.overlaps, 0);
    RS_CHECK_EQ(c.sh.token_errors, 0);
    RS_CHECK_EQ(c.bad_results, 0);
    RS_CHECK_EQ(c.attempts, c.granted + c.timed_out + c.cancelled);
    RS_CHECK_EQ(c.sh.entries, c.granted);
    cr_log_info("chaos: %ld attempts, %ld granted, %ld timed out, %ld cancelled", c.attempts, c.granted,
                c.timed_out, c.cancelled);
    RS_CHECK(c.granted > 0 && c.timed_out > 0 && c.cancelled > 0);
    rs_lock_stats st;
    RS_CHECK_OK(rs_lock_stats_get(c.sh.lock, &st));
    RS_CHECK(!st.exclusive && st.readers == 0 && st.pending == 0);
    /* Still a working lock. */
    RS_GUARD(g);
    RS_CHECK_OK(c.rw ? rs_lock_try_write(c.sh.lock, &g) : rs_lock_try_acquire(c.sh.lock, &g));
    return 0;
}

Test(lock_stress, random_timeouts_and_cancellations_lose_no_wakeup, .timeout = 300)
{
    static const bool exclusive = false;
    RS_RUN_OK(chaos_run, (void *)&exclusive);
}

Test(lock_stress, read_write_random_timeouts_and_cancellations_lose_no_wakeup, .timeout = 300)
{
    static const bool rw = true;
    RS_RUN_OK(chaos_run, (void *)&rw);
}
