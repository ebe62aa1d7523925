/* Suite "spawn": ns per spawn+run+reclaim of an empty task, beside Boost.Fiber
 * create+join of an empty fiber.
 *
 * ringscope: a task spawns `batch` empty tasks with out == NULL into a scope,
 * then yields so that they run (the run queue is FIFO: every one of them runs
 * to its end, and its record and stack go back to the worker's pools, before
 * the spawner runs again); after the last batch it closes the scope. The
 * figure is the whole interval divided by the number of tasks, so it includes
 * running and reclaiming them. Boost.Fiber: `batch` fibers constructed, then
 * joined, the same number of times. */
#include <errno.h>
#include <stdio.h>

#include <ringscope.h>

#include "bench.h"
#include "peers/boost.h"

typedef struct spawn_case {
    uint64_t n;
    unsigned batch;
} spawn_case;

typedef struct spawn_run {
    const spawn_case *c;
    int64_t elapsed_ns;
} spawn_run;

static int empty_task(void *arg)
{
    (void)arg;
    return 0;
}

static int spawn_batches(const spawn_case *c, rs_scope *s)
{
    for (uint64_t done = 0; done < c->n;) {
        uint64_t k = c->n - done < c->batch ? c->n - done : c->batch;
        for (uint64_t i = 0; i < k; i++) {
            int rc = rs_spawn(s, empty_task, NULL, NULL, NULL);
            if (rc)
                return rc;
        }
        int rc = rs_yield();
        if (rc)
            return rc;
        done += k;
    }
    return 0;
}

static int spawn_main(void *arg)
{
    spawn_run *r = arg;
    int64_t t0 = rs_bench_now_ns();
    rs_scope *s;
    int rc = rs_scope_open(&(rs_scope_opts){ .name = "spawned" }, &s);
    if (rc)
        return rc;
    rc = spawn_batches(r->c, s);
    if (rc)
        rs_scope_cancel(s);
    int crc = rs_scope_close(s);
    r->elapsed_ns = rs_bench_now_ns() - t0;
    return rc ? rc : crc;
}

static int ringscope_spawn(void *arg, double *ns)
{
    spawn_run r = { .c = arg };
    int rc = rs_run(spawn_main, &r, NULL);
    if (rc)
        return rc;
    *ns = (double)r.elapsed_ns / (double)r.c->n;
    return 0;
}

static int boost_spawn(void *arg, double *ns)
{
    const spawn_case *c = arg;
    return rs_bench_boost_fiber_spawn(c->n, c->batch, ns);
}

static int boost_spawn_pooled(void *arg, double *ns)
{
    const spawn_case *c = arg;
    return rs_bench_boost_fiber_spawn_pooled(c->n, c->batch, ns);
}

static int run_spawn(rs_bench *b)
{
    uint64_t n = rs_bench_pick(b, 1000000, 100000);
    rs_bench_note(b, "%llu empty tasks (fibers) per repetition; default stack sizes (ringscope 256 KiB, "
                     "Boost.Fiber's fixedsize_stack default, and the same size from pooled_fixedsize_stack); "
                     "ratio = ringscope / peer (lower is better)",
                  (unsigned long long)n);
    static const unsigned batches[] = { 1, 100 };
    for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++) {
        spawn_case c = { n, batches[i] };
        char name[64];
        snprintf(name, sizeof name, "spawn+run+reclaim, batch %u", c.batch);
        const rs_bench_impl impls[] = {
            { "ringscope", ringscope_spawn, &c },
            { "boost.fiber", boost_spawn, &c },
            { "boost.fiber pooled", boost_spawn_pooled, &c },
        };
        int rc = rs_bench_compare(b, name, "ns/task", impls, 3);
        if (rc)
            return rc;
    }
    return 0;
}

RS_BENCH_SUITE("spawn", 20, "ns per spawn+run+reclaim of an empty task, beside Boost.Fiber create+join", run_spawn)
