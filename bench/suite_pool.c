/* Suite "pool": the resource pool.
 *
 *  - uncontended acquire+release of an idle resource (one task, a pool of one
 *    ready resource); beside the pool a Boost.Fiber user builds (a free list
 *    under fibers::mutex + condition_variable).
 *  - contended, 64 tasks on 4 resources: every task loops
 *    { acquire; rs_yield(); release }; ns per acquisition; beside the same
 *    loop on the Boost.Fiber pool.
 *  - create on demand: acquire + discard, so that every acquisition waits
 *    for a background creation (create and destroy do nothing but count);
 *    ns per acquisition, ringscope only: the cost of a creation in a library
 *    task handed to its waiter. */
#include <errno.h>

#include <ringscope.h>

#include "bench.h"
#include "peers/boost_fiber_sync.h"

typedef struct pool_case {
    uint64_t total;
    unsigned tasks;
    unsigned size;
    bool discard;
} pool_case;

typedef struct pool_run {
    const pool_case *c;
    rs_pool *pool;
    uint64_t per;
    uint64_t created;
    int64_t elapsed;
} pool_run;

static int make(void *ctx, void **res)
{
    pool_run *r = ctx;
    r->created++;
    *res = &r->created;
    return 0;
}

static void unmake(void *ctx, void *res)
{
    (void)ctx;
    (void)res;
}

static int pool_user(void *arg)
{
    pool_run *r = arg;
    for (uint64_t i = 0; i < r->per; i++) {
        rs_guard g = RS_GUARD_INIT;
        int rc = rs_pool_acquire(r->pool, NULL, &g);
        if (rc)
            return rc;
        if (r->c->tasks > 1)
            rc = rs_yield();
        if (r->c->discard)
            rs_guard_discard(&g);
        else
            rs_guard_release(&g);
        if (rc)
            return rc;
    }
    return 0;
}

static int pool_main(void *arg)
{
    pool_run *r = arg;
    const pool_case *c = r->c;
    rs_pool_opts o = { .create = make, .destroy = unmake, .ctx = r, .min = c->discard ? 0 : c->size,
                       .max = c->size };
    int rc = rs_pool_new(NULL, &o, &r->pool);
    if (rc)
        return rc;
    for (int spins = 0; !c->discard && spins < 1000; spins++) { /* let the min resources be made */
        rs_pool_stats st;
        rs_pool_stats_get(r->pool, &st);
        if (st.idle == c->size)
            break;
        rs_yield();
    }
    int64_t t0 = rs_bench_now_ns();
    if (c->tasks == 1) {
        rc = pool_user(r);
        r->elapsed = rs_bench_now_ns() - t0;
        return rc;
    }
    rc = rs_bench_run_tasks(c->tasks, pool_user, pool_user, r);
    r->elapsed = rs_bench_now_ns() - t0;
    return rc;
}

static int ringscope_pool(void *arg, double *ns)
{
    const pool_case *c = arg;
    pool_run r = { .c = c, .per = c->total / c->tasks };
    int rc = rs_run(pool_main, &r, NULL);
    if (rc)
        return rc;
    *ns = (double)r.elapsed / (double)(r.per * c->tasks);
    return 0;
}

static int fiber_pool(void *arg, double *ns)
{
    const pool_case *c = arg;
    if (c->tasks == 1)
        return rs_bench_fiber_pool_uncontended(c->total, ns);
    return rs_bench_fiber_pool_handoff(c->tasks, c->size, c->total, ns);
}

static int run_pool(rs_bench *b)
{
    pool_case un = { .total = rs_bench_pick(b, 10000000, 1000000), .tasks = 1, .size = 1 };
    rs_bench_note(b, "uncontended: %llu acquire+release of an idle resource per repetition; boost.fiber has no "
                     "pool: a free list under mutex + condition_variable",
                  (unsigned long long)un.total);
    const rs_bench_impl u[] = {
        { "ringscope", ringscope_pool, &un },
        { "boost.fiber mutex+cv", fiber_pool, &un },
    };
    int rc = rs_bench_compare(b, "uncontended acquire+release", "ns/op", u, 2);
    if (rc)
        return rc;

    uint64_t total = rs_bench_pick(b, 2000000, 200000);
    pool_case con = { .total = total, .tasks = 64, .size = 4 };
    rs_bench_note(b, "contended: 64 tasks on 4 resources, %llu acquisitions per repetition, each held across one "
                     "yield",
                  (unsigned long long)total);
    const rs_bench_impl cimpl[] = {
        { "ringscope", ringscope_pool, &con },
        { "boost.fiber mutex+cv", fiber_pool, &con },
    };
    rc = rs_bench_compare(b, "contended, 64 tasks, 4 resources", "ns/op", cimpl, 2);
    if (rc)
        return rc;

    pool_case d = { .total = rs_bench_pick(b, 500000, 50000), .tasks = 1, .size = 1, .discard = true };
    rs_bench_note(b, "create on demand: acquire + discard, every acquisition waits for a creation in a background "
                     "task; ringscope only");
    const rs_bench_impl dimpl[] = { { "ringscope", ringscope_pool, &d } };
    return rs_bench_compare(b, "create on demand (acquire + discard)", "ns/op", dimpl, 1);
}

RS_BENCH_SUITE("pool", 120, "resource pool: uncontended, contended and create-on-demand, beside a Boost.Fiber pool",
               run_pool)
