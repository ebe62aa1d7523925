/* The pool's background maintenance: health checks of idle resources only,
 * replacement of failed ones, shrinking idle resources down to min, and
 * background tasks that end with the pool.
 *
 * Each pool here belongs to the root scope, which disposes it after main
 * returned, and its maintainer may run a round until then: the callbacks'
 * context lives in the Test's frame, never in main's. */
#include <time.h>

#include "pool_support.h"
#include "sync/pool.h"

static int only_idle_checked(void *arg)
{
    res_ctx *ctx = arg;
    rs_pool *p;
    rs_pool_opts o = res_opts(ctx, 2, 2);
    o.check = res_check;
    o.check_interval_ms = 5;
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    RS_YIELD_UNTIL(pool_stats(p).idle == 2);
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_pool_acquire(p, NULL, &g));
    intptr_t held = (intptr_t)rs_guard_resource(&g);
    int before = ctx->nchecked;
    RS_CHECK_OK(rs_sleep(60));
    RS_CHECK(ctx->nchecked - before >= 3); /* several rounds ran */
    for (int i = before; i < ctx->nchecked; i++)
        RS_CHECK(ctx->checked_ids[i] != held);
    RS_CHECK_OK(rs_guard_release(&g));
    RS_CHECK_EQ(ctx->destroyed, 0);
    RS_CHECK_POOL_CONSISTENT(p, ctx, 2);
    return 0;
}

Test(pool_health, only_idle_resources_are_checked, .timeout = 10)
{
    res_ctx ctx = { 0 };
    RS_RUN_OK(only_idle_checked, &ctx);
}

static int failed_check_replaced(void *arg)
{
    res_ctx *ctx = arg;
    rs_pool *p;
    rs_pool_opts o = res_opts(ctx, 2, 3);
    o.check = res_check;
    o.check_interval_ms = 5;
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    RS_YIELD_UNTIL(ctx->destroyed == 1 && pool_stats(p).idle == 2);
    RS_CHECK_EQ(ctx->created, 3); /* the broken one was replaced to keep min */
    RS_CHECK_EQ(ctx->live, 2);
    RS_CHECK_POOL_CONSISTENT(p, ctx, 3);
    /* The broken resource is never handed out again. */
    for (int i = 0; i < 5; i++) {
        rs_guard g = RS_GUARD_INIT;
        RS_CHECK_OK(rs_pool_acquire(p, NULL, &g));
        RS_CHECK((intptr_t)rs_guard_resource(&g) != 1);
        RS_CHECK_OK(rs_guard_release(&g));
    }
    return 0;
}

Test(pool_health, failing_check_destroys_and_replaces, .timeout = 10)
{
    res_ctx ctx = { .bad_id = 1 };
    RS_RUN_OK(failed_check_replaced, &ctx);
}

/* A check round covers the resources idle when it begins: one that becomes
 * idle while the round runs waits for the next round. */
typedef struct round_ctx {
    res_ctx res; /* first: res_create and res_destroy take it */
    bool checking, go;
    intptr_t ids[16];
    int n;
} round_ctx;

static bool check_first_slowly(void *c, void *res)
{
    round_ctx *x = c;
    if (x->n < 16)
        x->ids[x->n++] = (intptr_t)res;
    if ((intptr_t)res == 1) {
        x->checking = true;
        while (!x->go && rs_yield() == 0)
            ;
        x->checking = false;
    }
    return true;
}

static int round_covers_idle_at_start(void *arg)
{
    round_ctx *x = arg;
    rs_pool *p;
    rs_pool_opts o = res_opts(&x->res, 0, 2);
    o.ctx = x;
    o.check = check_first_slowly;
    o.check_interval_ms = 20;
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    rs_guard g1 = RS_GUARD_INIT, g2 = RS_GUARD_INIT;
    RS_CHECK_OK(rs_pool_acquire(p, NULL, &g1));
    RS_CHECK_OK(rs_pool_acquire(p, NULL, &g2));
    RS_CHECK_EQ((intptr_t)rs_guard_resource(&g1), 1);
    RS_CHECK_OK(rs_guard_release(&g1));
    RS_YIELD_UNTIL(x->checking); /* a round began with only resource 1 idle */
    RS_CHECK_OK(rs_guard_release(&g2));
    x->go = true;
    /* Once the check of 1 returned the round goes on without suspending: had
     * it taken resource 2 as well, that check would have run by now. */
    RS_YIELD_UNTIL(!x->checking);
    RS_CHECK_EQ(x->n, 1);
    RS_YIELD_UNTIL(x->n == 3); /* the next round: both, oldest first */
    RS_CHECK_EQ(x->ids[1], 1);
    RS_CHECK_EQ(x->ids[2], 2);
    return 0;
}

Test(pool_health, a_round_checks_only_resources_idle_when_it_begins, .timeout = 10)
{
    round_ctx x = { 0 };
    RS_RUN_OK(round_covers_idle_at_start, &x);
}

static int shrink_to_min(void *arg)
{
    res_ctx *ctx = arg;
    rs_pool *p;
    rs_pool_opts o = res_opts(ctx, 1, 4);
    o.idle_timeout_ms = 200;
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    rs_guard g[4] = { RS_GUARD_INIT, RS_GUARD_INIT, RS_GUARD_INIT, RS_GUARD_INIT };
    for (int i = 0; i < 4; i++)
        RS_CHECK_OK(rs_pool_acquire(p, NULL, &g[i]));
    RS_CHECK_EQ(pool_stats(p).total, 4);
    for (int i = 0; i < 4; i++)
        RS_CHECK_OK(rs_guard_release(&g[i]));
    RS_CHECK_EQ(pool_stats(p).idle, 4);
    RS_CHECK_OK(rs_sleep(20));
    RS_CHECK_EQ(pool_stats(p).idle, 4); /* not idle long enough yet */
    RS_YIELD_UNTIL(pool_stats(p).total == 1);
    RS_CHECK_EQ(ctx->destroyed, 3);
    RS_CHECK_OK(rs_sleep(300));
    rs_pool_stats st = pool_stats(p);
    RS_CHECK_EQ(st.total, 1); /* never below min */
    RS_CHECK_EQ(st.idle, 1);
    RS_CHECK_EQ(ctx->live, 1);
    return 0;
}

Test(pool_health, idle_timeout_shrinks_down_to_min, .timeout = 10)
{
    res_ctx ctx = { 0 };
    RS_RUN_OK(shrink_to_min, &ctx);
}

static int recently_used_kept(void *arg)
{
    /* A resource in regular use never idles long enough to be destroyed. */
    res_ctx *ctx = arg;
    rs_pool *p;
    rs_pool_opts o = res_opts(ctx, 0, 2);
    o.idle_timeout_ms = 300;
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    for (int i = 0; i < 10; i++) {
        rs_guard g = RS_GUARD_INIT;
        RS_CHECK_OK(rs_pool_acquire(p, NULL, &g));
        RS_CHECK_OK(rs_sleep(1));
        RS_CHECK_OK(rs_guard_release(&g));
        RS_CHECK_OK(rs_sleep(10));
    }
    RS_CHECK_EQ(ctx->created, 1);
    RS_CHECK_EQ(ctx->destroyed, 0);
    RS_YIELD_UNTIL(pool_stats(p).total == 0); /* then it idles out (min 0) */
    RS_CHECK_EQ(ctx->destroyed, 1);
    return 0;
}

Test(pool_health, resources_in_use_do_not_idle_out, .timeout = 10)
{
    res_ctx ctx = { 0 };
    RS_RUN_OK(recently_used_kept, &ctx);
}

static int maintained_pool_in_root(void *arg)
{
    /* The pool lives until the root scope closes; its background tasks must
     * end with it so that rs_run returns. */
    res_ctx *ctx = arg;
    rs_pool *p;
    rs_pool_opts o = res_opts(ctx, 2, 3);
    o.check = res_check;
    o.check_interval_ms = 1000;
    o.idle_timeout_ms = 1000;
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    RS_YIELD_UNTIL(pool_stats(p).idle == 2);
    return 0;
}

Test(pool_health, background_tasks_end_with_the_pool, .timeout = 10)
{
    res_ctx ctx = { 0 };
    RS_RUN_OK(maintained_pool_in_root, &ctx);
    cr_assert_eq(ctx.created, 2);
    cr_assert_eq(ctx.destroyed, 2);
}

static int64_t cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int pool_huge_maintenance(void *arg)
{
    /* An idle timeout and a check interval too long to ever expire: the idle
     * resource is neither destroyed nor checked. */
    res_ctx *ctx = arg;
    rs_pool *p;
    rs_pool_opts o = res_opts(ctx, 0, 2);
    o.idle_timeout_ms = INT64_MAX;
    o.check_interval_ms = INT64_MAX;
    o.check = res_check;
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_pool_acquire(p, NULL, &g));
    RS_CHECK_OK(rs_guard_release(&g)); /* idle now: the maintainer is poked */
    RS_CHECK_OK(rs_sleep(20));          /* nothing to wait for: nothing may happen */
    RS_CHECK_EQ(ctx->destroyed, 0);
    RS_CHECK_EQ(ctx->checked, 0);
    RS_CHECK_EQ(pool_stats(p).idle, 1);
    return 0;
}

Test(pool_health, pool_idle_timeout_and_check_interval_too_long_to_expire, .timeout = 10)
{
    res_ctx ctx = { 0 };
    RS_RUN_OK(pool_huge_maintenance, &ctx);
}

static int maintainer_without_check(void *arg)
{
    /* check_interval_ms without a check function (check is optional) next
     * to an idle timeout: the maintainer must sleep, not spin on a check
     * time that never advances. */
    res_ctx *ctx = arg;
    rs_pool *p;
    rs_pool_opts o = res_opts(ctx, 0, 1);
    o.check_interval_ms = 1;
    o.idle_timeout_ms = 60000;
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    int64_t cpu0 = cpu_ms();
    RS_CHECK_OK(rs_sleep(300));
    int64_t used = cpu_ms() - cpu0;
    RS_CHECK(used < 60); /* a spinning maintainer burns about 300 ms here */
    return 0;
}

Test(pool_health, maintainer_without_a_check_function_does_not_spin, .timeout = 10)
{
    res_ctx ctx = { 0 };
    RS_RUN_OK(maintainer_without_check, &ctx);
}

/* ------------------------------------------------------------ refill to min */

/* The test resource, with the time of every create call. */
typedef struct timed_ctx {
    res_ctx res; /* first: the pool's destroy callback takes the context as a res_ctx */
    int64_t at[64];
    int n;
} timed_ctx;

static int timed_create(void *c, void **out)
{
    timed_ctx *t = c;
    if (t->n < 64)
        t->at[t->n++] = rs_now_ms();
    return res_create(&t->res, out);
}

static rs_pool_opts timed_opts(timed_ctx *t, unsigned min, unsigned max)
{
    rs_pool_opts o = res_opts(&t->res, min, max);
    o.create = timed_create;
    o.ctx = t;
    return o;
}

enum {
    REFILL_FIRST_MS = 20
};

/* While the server is down, the fill to min is tried again after 20, 40,
 * 80 ms ... (each try starts the creations min asks for, here two); once it
 * answers, the pool reaches min without any acquirer, and then stops. */
static int refill_backs_off(void *arg)
{
    timed_ctx *t = arg;
    t->res.fail_all = -ECONNREFUSED;
    rs_pool *p;
    rs_pool_opts o = timed_opts(t, 2, 2);
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    RS_YIELD_UNTIL(t->n >= 8); /* the first fill and three retries */
    for (int k = 1; k < 4; k++) {
        int64_t wait = (int64_t)REFILL_FIRST_MS << (k - 1);
        RS_CHECK(t->at[2 * k] - t->at[2 * k - 1] >= wait - 1);
        /* a try starts both creations at once: the same ms, or the next */
        RS_CHECK(t->at[2 * k + 1] - t->at[2 * k] <= 1);
    }
    RS_CHECK_EQ(pool_stats(p).total, 0);
    t->res.fail_all = 0;
    RS_YIELD_UNTIL(pool_stats(p).idle == 2);
    RS_CHECK_EQ(t->res.created, 2);
    RS_CHECK_POOL_CONSISTENT(p, &t->res, 2);
    int calls = t->res.create_calls;
    RS_CHECK_OK(rs_sleep(4 * REFILL_FIRST_MS)); /* at min: no further try may come */
    RS_CHECK_EQ(t->res.create_calls, calls);
    return 0;
}

Test(pool_health, a_failed_fill_to_min_is_tried_again_with_a_growing_wait, .timeout = 10)
{
    rs__pool_refill_first_ms = REFILL_FIRST_MS;
    timed_ctx t = { 0 };
    RS_RUN_OK(refill_backs_off, &t);
}

/* A creation that succeeds starts the wait over: after the waits grew to
 * 320 ms, a resource discarded while the server is down again is replaced
 * on a try 20 ms later, not 320. */
static int refill_wait_resets(void *arg)
{
    timed_ctx *t = arg;
    t->res.fail_all = -ECONNREFUSED;
    rs_pool *p;
    rs_pool_opts o = timed_opts(t, 1, 1);
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    RS_YIELD_UNTIL(t->n >= 5); /* waits of 20, 40, 80, 160 ms: the next would be 320 */
    t->res.fail_all = 0;
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_pool_acquire(p, NULL, &g)); /* created on demand at once */
    t->res.fail_all = -ECONNREFUSED;
    int before = t->n;
    RS_CHECK_OK(rs_guard_discard(&g)); /* below min: a fill, which fails */
    RS_YIELD_UNTIL(t->n >= before + 2);
    int64_t gap = t->at[before + 1] - t->at[before];
    RS_CHECK(gap >= REFILL_FIRST_MS - 1);
    RS_CHECK(gap < 250);
    t->res.fail_all = 0;
    RS_YIELD_UNTIL(pool_stats(p).idle == 1);
    return 0;
}

Test(pool_health, a_successful_creation_starts_the_refill_wait_over, .timeout = 10)
{
    rs__pool_refill_first_ms = REFILL_FIRST_MS;
    timed_ctx t = { 0 };
    RS_RUN_OK(refill_wait_resets, &t);
}

/* A replacement created for a waiter fails: the waiter gets the error, and
 * min is still owed (the creation counted towards it while it ran), so the
 * fill is tried again after the wait, as for a creation for nobody. */
typedef struct waiting_acquirer {
    rs_pool *pool;
    int rc;
    bool done;
} waiting_acquirer;

static int acquire_and_release(void *arg)
{
    waiting_acquirer *w = arg;
    rs_guard g = RS_GUARD_INIT;
    w->rc = rs_pool_acquire(w->pool, NULL, &g);
    if (w->rc == 0)
        rs_guard_release(&g);
    w->done = true;
    return 0;
}

static int refill_after_a_waiters_creation_fails(void *arg)
{
    timed_ctx *t = arg;
    rs_pool *p;
    rs_pool_opts o = timed_opts(t, 2, 2);
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    RS_YIELD_UNTIL(pool_stats(p).idle == 2);
    rs_guard a = RS_GUARD_INIT, b = RS_GUARD_INIT;
    RS_CHECK_OK(rs_pool_acquire(p, NULL, &a));
    RS_CHECK_OK(rs_pool_acquire(p, NULL, &b));
    waiting_acquirer w = { .pool = p };
    RS_CHECK_OK(rs_spawn(rs_current_scope(), acquire_and_release, &w, NULL, NULL));
    RS_YIELD_UNTIL(pool_stats(p).waiting == 1);
    t->res.fail_call = t->res.create_calls + 1; /* the replacement's creation */
    RS_CHECK_OK(rs_guard_discard(&a));
    RS_YIELD_UNTIL(w.done);
    RS_CHECK_EQ(w.rc, -ECONNREFUSED);
    RS_CHECK_OK(rs_guard_release(&b));
    RS_YIELD_UNTIL(pool_stats(p).total == 2); /* not left at 1 for good */
    RS_CHECK_POOL_CONSISTENT(p, &t->res, 2);
    return 0;
}

Test(pool_health, a_failed_creation_for_a_waiter_still_refills_to_min, .timeout = 10)
{
    rs__pool_refill_first_ms = REFILL_FIRST_MS;
    timed_ctx t = { 0 };
    RS_RUN_OK(refill_after_a_waiters_creation_fails, &t);
}

/* A pool closed while its fill waits for a retry ends at once, and no try
 * comes after. */
static int refill_ends_with_pool(void *arg)
{
    timed_ctx *t = arg;
    t->res.fail_all = -ECONNREFUSED;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    rs_pool *p;
    rs_pool_opts o = timed_opts(t, 1, 1);
    RS_CHECK_OK(rs_pool_new(s, &o, &p));
    RS_YIELD_UNTIL(t->n >= 2);
    int64_t t0 = rs_now_ms();
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK(rs_now_ms() - t0 < REFILL_FIRST_MS);
    int calls = t->n;
    RS_CHECK_OK(rs_sleep(4 * REFILL_FIRST_MS)); /* nothing to wait for: no try may come */
    RS_CHECK_EQ(t->n, calls);
    return 0;
}

Test(pool_health, a_refill_waiting_for_its_retry_ends_with_the_pool, .timeout = 10)
{
    rs__pool_refill_first_ms = REFILL_FIRST_MS;
    timed_ctx t = { 0 };
    RS_RUN_OK(refill_ends_with_pool, &t);
}
