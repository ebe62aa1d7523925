/* Suite "lock": the in-memory lock.
 *
 *  - uncontended acquire+release: one task, rs_lock_acquire + rs_guard_release
 *    n times on a free lock; beside pthread_mutex lock+unlock and Boost.Fiber
 *    mutex lock+unlock, also uncontended.
 *  - hand-off with 2 and with 64 tasks: every task loops { acquire; release }
 *    and yields once, inside its first critical section, so that the others
 *    queue; from then on every release grants the head waiter and the
 *    releaser's next acquire parks behind it, switching to the new holder: one
 *    hand-off and one switch per acquisition. ns per acquisition, beside the
 *    cost of one switch (two tasks rs_yield()ing to each other) measured in
 *    the same rounds, so that hand-off / switch is a same-run ratio. Beside
 *    them the floor no hand-off can go below: the same two tasks looping
 *    { acquire; release; rs_yield() }, which makes the same API calls and
 *    the same one switch per acquisition but never queues (the lock is free
 *    at every acquire).
 *    Boost.Fiber cannot run this loop as a hand-off: its unlock does not give
 *    the mutex to the waiter, so the unlocking fiber takes it again.
 *  - contended with a yield in the critical section, 2 and 64 tasks: every
 *    task loops { acquire; rs_yield(); release }, beside the same loop on
 *    Boost.Fiber's mutex (where the yield forces the other fibers to run).
 *  - read-mostly read-write lock: 64 readers and 1 writer, each looping
 *    { read or write; rs_yield(); release }; acquisitions per second. Beside
 *    the same 65 fibers on one Boost.Fiber mutex (it has no shared mutex). */
#include <errno.h>
#include <pthread.h>

#include <ringscope.h>

#include "bench.h"
#include "peers/boost_fiber_sync.h"

/* ------------------------------------------------------------ uncontended */

typedef struct uncontended {
    uint64_t n;
    int64_t elapsed;
} uncontended;

static int uncontended_main(void *arg)
{
    uncontended *u = arg;
    rs_lock *l;
    int rc = rs_lock_new(NULL, NULL, &l);
    if (rc)
        return rc;
    int64_t t0 = rs_bench_now_ns();
    for (uint64_t i = 0; i < u->n; i++) {
        rs_guard g = RS_GUARD_INIT;
        rc = rs_lock_acquire(l, NULL, &g);
        if (rc)
            return rc;
        rs_guard_release(&g);
    }
    u->elapsed = rs_bench_now_ns() - t0;
    return 0;
}

static int ringscope_uncontended(void *arg, double *ns)
{
    uncontended u = { .n = *(const uint64_t *)arg };
    int rc = rs_run(uncontended_main, &u, NULL);
    if (rc)
        return rc;
    *ns = (double)u.elapsed / (double)u.n;
    return 0;
}

static int pthread_uncontended(void *arg, double *ns)
{
    uint64_t n = *(const uint64_t *)arg;
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    int64_t t0 = rs_bench_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        pthread_mutex_lock(&m);
        pthread_mutex_unlock(&m);
    }
    *ns = (double)(rs_bench_now_ns() - t0) / (double)n;
    pthread_mutex_destroy(&m);
    return 0;
}

static int fiber_uncontended(void *arg, double *ns)
{
    return rs_bench_fiber_mutex_uncontended(*(const uint64_t *)arg, ns);
}

/* ------------------------------------------------------------ contended */

typedef struct contended {
    unsigned tasks;
    uint64_t total;
    bool rw;        /* 1 writer, tasks - 1 readers */
    bool handoff;   /* yield only in the first critical section */
    bool floor;     /* yield after the release: never contended */
} contended;

typedef struct contended_run {
    const contended *c;
    rs_lock *lock;
    uint64_t per;
    int64_t elapsed;
} contended_run;

static int contender(void *arg)
{
    contended_run *r = arg;
    bool always = !r->c->handoff;
    for (uint64_t i = 0; i < r->per; i++) {
        rs_guard g = RS_GUARD_INIT;
        int rc = rs_lock_acquire(r->lock, NULL, &g);
        if (rc)
            return rc;
        if (r->c->floor) {
            rs_guard_release(&g);
            rc = rs_yield();
        } else {
            if (always || i == 0)
                rc = rs_yield();
            rs_guard_release(&g);
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int rw_contender(void *arg, bool write)
{
    contended_run *r = arg;
    for (uint64_t i = 0; i < r->per; i++) {
        rs_guard g = RS_GUARD_INIT;
        int rc = write ? rs_lock_write(r->lock, NULL, &g) : rs_lock_read(r->lock, NULL, &g);
        if (rc)
            return rc;
        rc = rs_yield();
        rs_guard_release(&g);
        if (rc)
            return rc;
    }
    return 0;
}

static int reader(void *arg)
{
    return rw_contender(arg, false);
}

static int writer(void *arg)
{
    return rw_contender(arg, true);
}

static int contended_main(void *arg)
{
    contended_run *r = arg;
    int rc = rs_lock_new(NULL, &(rs_lock_opts){ .allow_multiple_readers = r->c->rw }, &r->lock);
    if (rc)
        return rc;
    int64_t t0 = rs_bench_now_ns();
    rc = r->c->rw ? rs_bench_run_tasks(r->c->tasks, writer, reader, r)
                  : rs_bench_run_tasks(r->c->tasks, contender, contender, r);
    r->elapsed = rs_bench_now_ns() - t0;
    return rc;
}

static int ringscope_contended(void *arg, double *value)
{
    const contended *c = arg;
    contended_run r = { .c = c, .per = c->total / c->tasks };
    int rc = rs_run(contended_main, &r, NULL);
    if (rc)
        return rc;
    double ops = (double)(r.per * c->tasks);
    *value = c->rw ? ops * 1e9 / (double)r.elapsed : (double)r.elapsed / ops;
    return 0;
}

static int fiber_contended(void *arg, double *value)
{
    const contended *c = arg;
    if (c->rw)
        return rs_bench_fiber_rw_as_mutex(c->tasks - 1, c->total, value);
    return rs_bench_fiber_mutex_handoff(c->tasks, c->total, value);
}


/* ------------------------------------------------------------ the suite */

static int run_lock(rs_bench *b)
{
    uint64_t n = rs_bench_pick(b, 20000000, 2000000);
    rs_bench_note(b, "uncontended: %llu acquire+release per repetition; ratio = ringscope / peer (lower is better)",
                  (unsigned long long)n);
    const rs_bench_impl un[] = {
        { "ringscope", ringscope_uncontended, &n },
        { "pthread_mutex", pthread_uncontended, &n },
        { "boost.fiber", fiber_uncontended, &n },
    };
    int rc = rs_bench_compare(b, "uncontended acquire+release", "ns/op", un, 3);
    if (rc)
        return rc;

    uint64_t total = rs_bench_pick(b, 2000000, 200000);
    contended h2 = { .tasks = 2, .total = total, .handoff = true };
    contended h64 = { .tasks = 64, .total = total, .handoff = true };
    contended floor2 = { .tasks = 2, .total = total, .floor = true };
    uint64_t yields_per_task = total / 2; /* the same number of switches as hand-offs */
    rs_bench_note(b, "hand-off: %llu acquisitions per repetition, each one a hand-off to the head waiter; the switch "
                     "row is one rs_yield between 2 tasks in the same rounds (ratio = hand-off / switch, lower is "
                     "better); the floor row is 2 tasks looping { acquire; release; yield }: the same calls and "
                     "switch without queueing, the least a hand-off can cost",
                  (unsigned long long)total);
    const rs_bench_impl hi2[] = {
        { "ringscope", ringscope_contended, &h2 },
        { "ringscope switch", rs_bench_yield_switch, &yields_per_task },
        { "floor: acquire+release+yield", ringscope_contended, &floor2 },
    };
    rc = rs_bench_compare(b, "hand-off, 2 tasks", "ns/op", hi2, 3);
    if (rc)
        return rc;
    const rs_bench_impl hi64[] = {
        { "ringscope", ringscope_contended, &h64 },
        { "ringscope switch", rs_bench_yield_switch, &yields_per_task },
    };
    rc = rs_bench_compare(b, "hand-off, 64 tasks", "ns/op", hi64, 2);
    if (rc)
        return rc;

    contended two = { .tasks = 2, .total = total }, many = { .tasks = 64, .total = total };
    rs_bench_note(b, "yield in critical section: %llu acquisitions per repetition, each held across one yield, the "
                     "same loop on both sides (ratio = ringscope / boost.fiber, lower is better)",
                  (unsigned long long)total);
    const rs_bench_impl y2[] = {
        { "ringscope", ringscope_contended, &two },
        { "boost.fiber", fiber_contended, &two },
    };
    rc = rs_bench_compare(b, "yield in critical section, 2 tasks", "ns/op", y2, 2);
    if (rc)
        return rc;
    const rs_bench_impl y64[] = {
        { "ringscope", ringscope_contended, &many },
        { "boost.fiber", fiber_contended, &many },
    };
    rc = rs_bench_compare(b, "yield in critical section, 64 tasks", "ns/op", y64, 2);
    if (rc)
        return rc;

    contended rw = { .tasks = 65, .rw = true, .total = total };
    rs_bench_note(b, "read-mostly: 64 readers + 1 writer, %llu acquisitions per repetition; boost.fiber has no "
                     "shared mutex, so its 65 fibers share one fibers::mutex (ratio: higher is better)",
                  (unsigned long long)total);
    const rs_bench_impl rwi[] = {
        { "ringscope", ringscope_contended, &rw },
        { "boost.fiber", fiber_contended, &rw },
    };
    return rs_bench_compare(b, "read-mostly rwlock, 64 readers + 1 writer", "ops/s", rwi, 2);
}

RS_BENCH_SUITE("lock", 100, "mutex acquire+release, contended hand-off and read-mostly rwlock, beside "
                            "pthread_mutex and Boost.Fiber",
               run_lock)
