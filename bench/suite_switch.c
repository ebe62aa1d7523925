/* Suite "switch": ns per switch between two tasks yielding to each other,
 * beside Boost.Context continuations resuming each other.
 *
 * ringscope: tasks A and B each call rs_yield() n times; with nothing else
 * ready every yield switches to the other task (through the scheduler when
 * its dispatch budget runs out, as in any real program), so the interval from
 * A's start to B's end holds 2n switches. Boost.Context: n round trips of
 * resume(), also 2n switches. Both: ns per switch = elapsed / 2n. */
#include <errno.h>

#include <ringscope.h>

#include "bench.h"
#include "peers/boost.h"

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
    rs_scope *s;
    int rc = rs_scope_open(&(rs_scope_opts){ .name = "pingpong" }, &s);
    if (rc)
        return rc;
    for (int i = 0; i < 2 && !rc; i++)
        rc = rs_spawn(s, yielder, arg, NULL, NULL);
    if (rc)
        rs_scope_cancel(s);
    int crc = rs_scope_close(s);
    return rc ? rc : crc;
}

static int ringscope_switch(void *arg, double *ns)
{
    pingpong p = { .n = *(const uint64_t *)arg };
    int rc = rs_run(pingpong_main, &p, NULL);
    if (rc)
        return rc;
    *ns = (double)(p.t1 - p.t0) / (2.0 * (double)p.n);
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
        { "ringscope", ringscope_switch, &n },
        { "boost.context", boost_switch, &n },
    };
    return rs_bench_compare(b, "yield ping-pong, 2 tasks", "ns/switch", impls, 2);
}

RS_BENCH_SUITE("switch", 10, "ns per switch between two tasks yielding to each other, beside Boost.Context",
               run_switch)
