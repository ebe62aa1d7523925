/* Suite "switch": ns per switch between two tasks yielding to each other,
 * beside Boost.Context continuations resuming each other.
 *
 * ringscope: tasks A and B each call rs_yield() n times; with nothing else
 * ready every yield switches to the other task (through the scheduler when
 * its dispatch budget runs out, as in any real program), so the interval from
 * A's start to B's end holds 2n switches. Boost.Context: n round trips of
 * resume(), also 2n switches. Both: ns per switch = elapsed / 2n.
 *
 * A second case isolates the machine switch under rs_yield (the runtime's
 * inline rs__ctx_switch between two contexts, no scheduler) beside the same
 * Boost.Context ping-pong: what a yield costs beyond it is the scheduling
 * (run queue, cancellation check, dispatch budget). */
#include <errno.h>
#include <stdlib.h>

#include <ringscope.h>

#include "bench.h"
#include "peers/boost.h"
#include "runtime/context.h"

typedef struct pingpong {
    uint64_t n;
    int64_t t0, t1; /* stamped by the first task to start and the last to end */
} pingpong;

static int yielder(void *arg)
{
    pingpong *p = arg;
    if (!p->t0)
        p->t0 = rs_bench_now_ns();
    for (uint64_t i = 0; i < p->n; i++) {
        int rc = rs_yield();
        if (rc)
            return rc;
    }
    p->t1 = rs_bench_now_ns();
    return 0;
}

static int pingpong_main(void *arg)
{
    return rs_bench_run_tasks(2, yielder, yielder, arg);
}

int rs_bench_yield_switch(void *arg, double *ns)
{
    pingpong p = { .n = *(const uint64_t *)arg };
    int rc = rs_run(pingpong_main, &p, NULL);
    if (rc)
        return rc;
    *ns = (double)(p.t1 - p.t0) / (2.0 * (double)p.n);
    return 0;
}

/* Two bare contexts switching back and forth with the runtime's switch. */
typedef struct bare_pair {
    void *main_sp, *other_sp;
} bare_pair;

static void bare_other(void *arg)
{
    bare_pair *p = arg;
    for (;;)
        rs__ctx_switch(&p->other_sp, p->main_sp);
}

static int bare_switch(void *arg, double *ns)
{
    uint64_t n = *(const uint64_t *)arg;
    enum { STACK = 64 * 1024 };
    char *stack = malloc(STACK);
    if (!stack)
        return -ENOMEM;
    bare_pair p = { 0 };
    p.other_sp = rs__ctx_make(stack + STACK, bare_other, &p);
    int64_t t0 = rs_bench_now_ns();
    for (uint64_t i = 0; i < n; i++)
        rs__ctx_switch(&p.main_sp, p.other_sp);
    int64_t t1 = rs_bench_now_ns();
    free(stack); /* the other context is parked for good: nothing runs on it */
    *ns = (double)(t1 - t0) / (2.0 * (double)n);
    return 0;
}

static int boost_switch(void *arg, double *ns)
{
    return rs_bench_boost_context_switch(*(const uint64_t *)arg, ns);
}

static int run_switch(rs_bench *b)
{
    uint64_t n = rs_bench_pick(b, 10000000, 1000000);
    rs_bench_note(b, "2 x %llu switches per repetition; ratio = ringscope / boost.context (lower is better)",
                  (unsigned long long)n);
    const rs_bench_impl impls[] = {
        { "ringscope", rs_bench_yield_switch, &n },
        { "boost.context", boost_switch, &n },
    };
    int rc = rs_bench_compare(b, "yield ping-pong, 2 tasks", "ns/switch", impls, 2);
    const rs_bench_impl bare[] = {
        { "ringscope", bare_switch, &n },
        { "boost.context", boost_switch, &n },
    };
    int rc2 = rs_bench_compare(b, "context switch alone, no scheduler", "ns/switch", bare, 2);
    return rc ? rc : rc2;
}

RS_BENCH_SUITE("switch", 10, "ns per switch between two tasks yielding to each other, beside Boost.Context",
               run_switch)
