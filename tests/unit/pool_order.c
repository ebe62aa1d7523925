/* Which waiter a newly created resource goes to: the head of the queue
 * (priority, then arrival), exactly as a released one, whichever waiter the
 * creation was started for. */
#include <stdint.h>

#include "pool_support.h"

typedef struct waiter_arg {
    rs_pool *pool;
    int id;
    int priority;
    order_log *log;
    int result;
    bool done;
} waiter_arg;

static int pool_waiter(void *p)
{
    waiter_arg *a = p;
    rs_guard g = RS_GUARD_INIT;
    a->result = rs_pool_acquire(a->pool, &(rs_acquire_opts){ .priority = a->priority },
                                &g);
    if (a->result == 0) {
        if (a->log)
            order_add(a->log, a->id);
        rs_guard_release(&g);
    }
    a->done = true;
    return 0;
}

static int created_goes_to_head(void *arg)
{
    (void)arg;
    /* max 1: a creation starts for the first (low-priority) waiter; a
     * higher-priority waiter queues ahead of it while it runs. The new
     * resource goes to the head waiter, as a released one would. */
    static res_ctx ctx; /* outlives this task: see res_ctx */
    ctx = (res_ctx){ .create_delay_ms = 20 };
    rs_pool *p;
    rs_pool_opts o = res_opts(&ctx, 0, 1);
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    order_log log = { 0 };
    waiter_arg lo = { .pool = p, .id = 1, .priority = 0, .log = &log, .result = 1 };
    waiter_arg hi = { .pool = p, .id = 2, .priority = 10, .log = &log, .result = 1 };
    RS_CHECK_OK(rs_spawn(rs_current_scope(), pool_waiter, &lo, NULL, NULL));
    RS_YIELD_UNTIL(pool_stats(p).creating == 1 && pool_stats(p).waiting == 1);
    RS_CHECK_OK(rs_spawn(rs_current_scope(), pool_waiter, &hi, NULL, NULL));
    RS_YIELD_UNTIL(pool_stats(p).waiting == 2);
    RS_YIELD_UNTIL(lo.done && hi.done);
    RS_CHECK_EQ(lo.result, 0);
    RS_CHECK_EQ(hi.result, 0);
    RS_CHECK_EQ(log.len, 2);
    RS_CHECK_EQ(log.ids[0], 2);
    RS_CHECK_EQ(log.ids[1], 1);
    RS_CHECK_EQ(ctx.created, 1);
    RS_CHECK_POOL_CONSISTENT(p, &ctx, 1);
    return 0;
}

Test(pool_order, a_new_resource_goes_to_the_head_waiter, .timeout = 10)
{
    RS_RUN_OK(created_goes_to_head, NULL);
}

/* Creations that finish out of order: the first arrival, at the head, is
 * served first (FIFO among equal priorities). */
typedef struct slow_first_ctx {
    int calls;
    int live;
} slow_first_ctx;

static int slow_first_create(void *c, void **out)
{
    slow_first_ctx *ctx = c;
    int call = ++ctx->calls;
    int rc = rs_sleep(call == 1 ? 60 : 5);
    if (rc)
        return rc;
    ctx->live++;
    *out = (void *)(intptr_t)call;
    return 0;
}

static void slow_first_destroy(void *c, void *res)
{
    (void)res;
    ((slow_first_ctx *)c)->live--;
}

static int created_fifo(void *arg)
{
    (void)arg;
    static slow_first_ctx ctx; /* outlives this task: see res_ctx */
    ctx = (slow_first_ctx){ 0 };
    rs_pool *p;
    rs_pool_opts o = { .create = slow_first_create, .destroy = slow_first_destroy, .ctx = &ctx, .max = 2 };
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    order_log log = { 0 };
    waiter_arg a = { .pool = p, .id = 1, .log = &log, .result = 1 };
    waiter_arg b = { .pool = p, .id = 2, .log = &log, .result = 1 };
    RS_CHECK_OK(rs_spawn(rs_current_scope(), pool_waiter, &a, NULL, NULL));
    RS_YIELD_UNTIL(pool_stats(p).creating == 1);
    RS_CHECK_OK(rs_spawn(rs_current_scope(), pool_waiter, &b, NULL, NULL));
    RS_YIELD_UNTIL(pool_stats(p).creating == 2);
    RS_YIELD_UNTIL(a.done && b.done);
    RS_CHECK_EQ(a.result, 0);
    RS_CHECK_EQ(b.result, 0);
    RS_CHECK_EQ(log.ids[0], 1);
    RS_CHECK_EQ(log.ids[1], 2);
    rs_pool_stats st = pool_stats(p);
    RS_CHECK(st.total <= 2 && st.in_use == 0 && st.waiting == 0);
    return 0;
}

Test(pool_order, creations_finishing_out_of_order_serve_waiters_in_fifo_order, .timeout = 10)
{
    RS_RUN_OK(created_fifo, NULL);
}
