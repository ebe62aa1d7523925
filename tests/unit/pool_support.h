/* A test resource for the pool tests: integer ids, counters of every
 * callback, creation that may suspend or fail on demand. */
#ifndef RS_TESTS_POOL_SUPPORT_H
#define RS_TESTS_POOL_SUPPORT_H

#include <stdint.h>

#include "sync_support.h"

/* A pool created in the scope a test's main task runs in (the root scope)
 * is disposed after that task returned, and its destroy callback still
 * writes to the context then: such a context is static, not on the task's
 * stack. */
typedef struct res_ctx {
    int created, destroyed, checked, create_calls;
    int live, max_live;
    int fail_call;           /* the create call with this number (1-based) fails ... */
    int fail_error;          /* ... with this error (0: -ECONNREFUSED) */
    int fail_all;            /* every create fails with this error while non-zero */
    int64_t create_delay_ms; /* create sleeps this long first */
    int64_t destroy_delay_ms; /* destroy sleeps this long first */
    intptr_t bad_id;         /* check fails for this resource */
    intptr_t checked_ids[64];
    int nchecked;
} res_ctx;

static inline int res_create(void *c, void **out)
{
    res_ctx *ctx = c;
    int call = ++ctx->create_calls;
    if (ctx->create_delay_ms > 0) {
        int rc = rs_sleep(ctx->create_delay_ms);
        if (rc)
            return rc;
    }
    if (ctx->fail_all)
        return ctx->fail_all;
    if (call == ctx->fail_call)
        return ctx->fail_error ? ctx->fail_error : -ECONNREFUSED;
    *out = (void *)(intptr_t)call;
    ctx->created++;
    ctx->live++;
    if (ctx->live > ctx->max_live)
        ctx->max_live = ctx->live;
    return 0;
}

static inline void res_destroy(void *c, void *res)
{
    res_ctx *ctx = c;
    (void)res;
    if (ctx->destroy_delay_ms > 0)
        rs_sleep(ctx->destroy_delay_ms); /* runs shielded: not cut short by a cancelled caller */
    ctx->destroyed++;
    ctx->live--;
}

static inline bool res_check(void *c, void *res)
{
    res_ctx *ctx = c;
    ctx->checked++;
    if (ctx->nchecked < 64)
        ctx->checked_ids[ctx->nchecked++] = (intptr_t)res;
    return (intptr_t)res != ctx->bad_id;
}

static inline rs_pool_opts res_opts(res_ctx *ctx, unsigned min, unsigned max)
{
    return (rs_pool_opts){ .create = res_create, .destroy = res_destroy, .ctx = ctx, .min = min, .max = max };
}

/* total == idle + in_use + creating <= max, and the resources that exist
 * (created and not destroyed) never exceed max. */
#define RS_CHECK_POOL_CONSISTENT(p, ctx, max)                                                                 \
    do {                                                                                                      \
        rs_pool_stats st_;                                                                                    \
        RS_CHECK_OK(rs_pool_stats_get((p), &st_));                                                            \
        RS_CHECK_EQ(st_.total, st_.idle + st_.in_use + st_.creating);                                         \
        RS_CHECK(st_.total <= (max));                                                                         \
        RS_CHECK((ctx)->live <= (int)(max));                                                                  \
    } while (0)

static inline rs_pool_stats pool_stats(const rs_pool *p)
{
    rs_pool_stats st = { 0 };
    rs_pool_stats_get(p, &st);
    return st;
}

#endif
