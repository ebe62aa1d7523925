/* Suite "sem": the weighted semaphore.
 *
 *  - uncontended acquire(1)+release: one task on a free semaphore; beside a
 *    POSIX sem_t (sem_wait+sem_post, uncontended) and the semaphore a
 *    Boost.Fiber user builds from fibers::mutex + condition_variable.
 *  - contended, 64 tasks on 4 permits: every task loops
 *    { acquire 1; rs_yield(); release }; ns per acquisition; beside the same
 *    loop on the Boost.Fiber semaphore.
 *  - weighted, 64 tasks asking 1..4 of 8 permits (strict queue order, so a
 *    large request at the head holds the smaller ones behind it); ns per
 *    acquisition, ringscope only (neither peer has weighted acquisition). */
#include <errno.h>
#include <semaphore.h>

#include <ringscope.h>

#include "bench.h"
#include "peers/boost_fiber_sync.h"

typedef struct sem_case {
    uint64_t total;   /* acquisitions in all */
    unsigned tasks;
    int64_t permits;
    bool weighted;
} sem_case;

typedef struct sem_run {
    const sem_case *c;
    rs_sem *sem;
    uint64_t per;
    int64_t elapsed;
} sem_run;

static int sem_user(void *arg)
{
    sem_run *r = arg;
    uint32_t seed = (uint32_t)(uintptr_t)rs_current_task() | 1u;
    for (uint64_t i = 0; i < r->per; i++) {
        int64_t n = 1;
        if (r->c->weighted) {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            n = 1 + seed % 4;
        }
        rs_guard g = RS_GUARD_INIT;
        int rc = rs_sem_acquire(r->sem, n, NULL, &g);
        if (rc)
            return rc;
        if (r->c->tasks > 1)
            rc = rs_yield();
        rs_guard_release(&g);
        if (rc)
            return rc;
    }
    return 0;
}

static int sem_main(void *arg)
{
    sem_run *r = arg;
    int rc = rs_sem_new(NULL, r->c->permits, &r->sem);
    if (rc)
        return rc;
    int64_t t0 = rs_bench_now_ns();
    if (r->c->tasks == 1) {
        rc = sem_user(r);
        r->elapsed = rs_bench_now_ns() - t0;
        return rc;
    }
    rc = rs_bench_run_tasks(r->c->tasks, sem_user, sem_user, r);
    r->elapsed = rs_bench_now_ns() - t0;
    return rc;
}

static int ringscope_sem(void *arg, double *ns)
{
    const sem_case *c = arg;
    sem_run r = { .c = c, .per = c->total / c->tasks };
    int rc = rs_run(sem_main, &r, NULL);
    if (rc)
        return rc;
    *ns = (double)r.elapsed / (double)(r.per * c->tasks);
    return 0;
}

static int posix_sem(void *arg, double *ns)
{
    const sem_case *c = arg;
    sem_t s;
    if (sem_init(&s, 0, (unsigned)c->permits) != 0)
        return -EIO;
    int64_t t0 = rs_bench_now_ns();
    for (uint64_t i = 0; i < c->total; i++) {
        sem_wait(&s);
        sem_post(&s);
    }
    *ns = (double)(rs_bench_now_ns() - t0) / (double)c->total;
    sem_destroy(&s);
    return 0;
}

static int fiber_sem(void *arg, double *ns)
{
    const sem_case *c = arg;
    if (c->tasks == 1)
        return rs_bench_fiber_sem_uncontended(c->total, ns);
    return rs_bench_fiber_sem_handoff(c->tasks, (unsigned)c->permits, c->total, ns);
}

static int run_sem(rs_bench *b)
{
    sem_case un = { .total = rs_bench_pick(b, 20000000, 2000000), .tasks = 1, .permits = 1 };
    rs_bench_note(b, "uncontended: %llu acquire(1)+release per repetition; ratio = ringscope / peer (lower is better)",
                  (unsigned long long)un.total);
    const rs_bench_impl u[] = {
        { "ringscope", ringscope_sem, &un },
        { "posix sem_t", posix_sem, &un },
        { "boost.fiber mutex+cv", fiber_sem, &un },
    };
    int rc = rs_bench_compare(b, "uncontended acquire+release", "ns/op", u, 3);
    if (rc)
        return rc;

    uint64_t total = rs_bench_pick(b, 2000000, 200000);
    sem_case con = { .total = total, .tasks = 64, .permits = 4 };
    rs_bench_note(b, "contended: 64 tasks on 4 permits, %llu acquisitions per repetition, each held across one "
                     "yield; boost.fiber has no semaphore: mutex + condition_variable",
                  (unsigned long long)total);
    const rs_bench_impl cimpl[] = {
        { "ringscope", ringscope_sem, &con },
        { "boost.fiber mutex+cv", fiber_sem, &con },
    };
    rc = rs_bench_compare(b, "contended, 64 tasks, 4 permits", "ns/op", cimpl, 2);
    if (rc)
        return rc;

    sem_case w = { .total = total, .tasks = 64, .permits = 8, .weighted = true };
    rs_bench_note(b, "weighted: 64 tasks asking 1..4 of 8 permits, served strictly in queue order; no peer has "
                     "weighted acquisition");
    const rs_bench_impl wimpl[] = { { "ringscope", ringscope_sem, &w } };
    return rs_bench_compare(b, "weighted, 64 tasks, 1..4 of 8 permits", "ns/op", wimpl, 1);
}

RS_BENCH_SUITE("sem", 110, "weighted semaphore: uncontended, contended and weighted, beside POSIX sem_t and a "
                           "Boost.Fiber semaphore",
               run_sem)
