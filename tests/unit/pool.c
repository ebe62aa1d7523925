/* The resource pool: min resources in the background, max with waiters,
 * timeouts, discard and re-creation, create errors to the right acquirer,
 * priority order, no barging, consistent stats, disposal at scope close. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "pool_support.h"
#include "runtime/timer.h"
#include "runtime/worker.h"

typedef struct user_arg {
    rs_pool *pool;
    int id;
    int priority;
    int64_t timeout_ms;
    volatile bool *go; /* hold until *go */
    order_log *log;
    int result;
    void *res;
    bool done;
} user_arg;

static int pool_user(void *p)
{
    user_arg *a = p;
    rs_guard g = RS_GUARD_INIT;
    a->result = rs_pool_acquire(a->pool, &(rs_acquire_opts){ .priority = a->priority, .timeout_ms = a->timeout_ms },
                                &g);
    if (a->result == 0) {
        a->res = rs_guard_resource(&g);
        if (a->log)
            order_add(a->log, a->id);
        for (int i = 0; a->go && !*a->go && i < 5000; i++)
            rs_sleep(1);
        int rc = rs_guard_release(&g);
        RS_CHECK(rc == 0 || rc == -EALREADY); /* -EALREADY: the pool was disposed meanwhile */
    }
    a->done = true;
    return 0;
}

static int spawn_user(user_arg *a)
{
    return rs_spawn(rs_current_scope(), pool_user, a, NULL, NULL);
}

/* ------------------------------------------------------------ min, max */

static int min_in_background(void *arg)
{
    (void)arg;
    static res_ctx ctx; /* outlives this task: see res_ctx */
    ctx = (res_ctx){ 0 };
    rs_pool *p;
    rs_pool_opts o = res_opts(&ctx, 2, 4);
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    /* rs_pool_new returned at once: the creations run in the background. */
    RS_CHECK_EQ(ctx.created, 0);
    rs_pool_stats st = pool_stats(p);
    RS_CHECK_EQ(st.creating, 2);
    RS_CHECK_EQ(st.total, 2);
    RS_CHECK_POOL_CONSISTENT(p, &ctx, 4);
    RS_YIELD_UNTIL(pool_stats(p).idle == 2);
    RS_CHECK_EQ(ctx.created, 2);
    RS_CHECK_POOL_CONSISTENT(p, &ctx, 4);

    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_pool_acquire(p, NULL, &g));
    intptr_t id = (intptr_t)rs_guard_resource(&g);
    RS_CHECK(id == 1 || id == 2);
    st = pool_stats(p);
    RS_CHECK(st.in_use == 1 && st.idle == 1 && st.total == 2);
    RS_CHECK_OK(rs_guard_release(&g));
    RS_CHECK(rs_guard_resource(&g) == NULL);
    st = pool_stats(p);
    RS_CHECK(st.in_use == 0 && st.idle == 2);
    RS_CHECK_EQ(ctx.created, 2);
    RS_CHECK_EQ(rs_guard_release(&g), -EALREADY);
    return 0;
}

Test(pool, min_resources_are_created_in_the_background_and_handed_out, .timeout = 10)
{
    RS_RUN_OK(min_in_background, NULL);
}

static int max_with_waiters(void *arg)
{
    (void)arg;
    static res_ctx ctx; /* outlives this task: see res_ctx */
    ctx = (res_ctx){ 0 };
    rs_pool *p;
    rs_pool_opts o = res_opts(&ctx, 0, 2);
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    volatile bool go1 = false, go2 = false;
    order_log log = { 0 };
    user_arg a = { .pool = p, .id = 1, .go = &go1, .log = &log, .result = 1 };
    user_arg b = { .pool = p, .id = 2, .go = &go2, .log = &log, .result = 1 };
    user_arg c = { .pool = p, .id = 3, .go = &go2, .log = &log, .result = 1 };
    RS_CHECK_OK(spawn_user(&a));
    RS_CHECK_OK(spawn_user(&b));
    RS_CHECK_OK(spawn_user(&c));
    RS_YIELD_UNTIL(log.len == 2);
    rs_pool_stats st = pool_stats(p);
    RS_CHECK_EQ(st.in_use, 2);
    RS_CHECK_EQ(st.waiting, 1);
    RS_CHECK_EQ(st.total, 2);
    RS_CHECK_EQ(ctx.create_calls, 2); /* no third creation past max */
    RS_CHECK_POOL_CONSISTENT(p, &ctx, 2);
    go1 = true;
    RS_YIELD_UNTIL(c.result == 0);
    RS_CHECK(c.res == a.res); /* the released resource went to the waiter */
    RS_CHECK_EQ(ctx.create_calls, 2);
    RS_CHECK_POOL_CONSISTENT(p, &ctx, 2);
    go2 = true;
    RS_YIELD_UNTIL(a.done && b.done && c.done);
    st = pool_stats(p);
    RS_CHECK(st.idle == 2 && st.in_use == 0 && st.waiting == 0);
    RS_CHECK_EQ(ctx.max_live, 2);
    return 0;
}

Test(pool, max_is_enforced_and_waiters_get_released_resources, .timeout = 10)
{
    RS_RUN_OK(max_with_waiters, NULL);
}

static int acquire_timeout(void *arg)
{
    (void)arg;
    static res_ctx ctx; /* outlives this task: see res_ctx */
    ctx = (res_ctx){ 0 };
    rs_pool *p;
    rs_pool_opts o = res_opts(&ctx, 0, 1);
    o.acquire_timeout_ms = 100;
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    rs_guard g = RS_GUARD_INIT, h = RS_GUARD_INIT;
    RS_CHECK_OK(rs_pool_acquire(p, NULL, &g));
    int64_t start = rs_now_ms();
    RS_CHECK_EQ(rs_pool_acquire(p, NULL, &h), -ETIMEDOUT); /* the pool's default */
    RS_CHECK(rs_now_ms() - start >= 99);
    start = rs_now_ms();
    RS_CHECK_EQ(rs_pool_acquire(p, &(rs_acquire_opts){ .timeout_ms = 0 }, &h), -ETIMEDOUT);
    RS_CHECK(rs_now_ms() - start >= 99);
    start = rs_now_ms();
    RS_CHECK_EQ(rs_pool_acquire(p, &(rs_acquire_opts){ .timeout_ms = 5 }, &h), -ETIMEDOUT);
    RS_CHECK(rs_now_ms() - start < 90); /* an explicit timeout wins */
    RS_CHECK(!rs_guard_held(&h));
    RS_CHECK_EQ(pool_stats(p).waiting, 0);
    RS_CHECK_OK(rs_guard_release(&g));
    RS_CHECK_OK(rs_pool_acquire(p, NULL, &h));
    RS_CHECK_OK(rs_guard_release(&h));
    return 0;
}

Test(pool, acquire_timeout_default_and_explicit, .timeout = 10)
{
    RS_RUN_OK(acquire_timeout, NULL);
}

/* ------------------------------------------------------------ discard */

static int discard(void *arg)
{
    (void)arg;
    static res_ctx ctx; /* outlives this task: see res_ctx */
    ctx = (res_ctx){ 0 };
    rs_pool *p;
    rs_pool_opts o = res_opts(&ctx, 0, 1);
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_pool_acquire(p, NULL, &g));
    intptr_t first = (intptr_t)rs_guard_resource(&g);
    RS_CHECK_OK(rs_guard_discard(&g));
    RS_CHECK_EQ(ctx.destroyed, 1); /* destroyed by the time discard returns */
    RS_CHECK(!rs_guard_held(&g));
    RS_CHECK_EQ(rs_guard_release(&g), -EALREADY);
    RS_CHECK_EQ(rs_guard_discard(&g), -EALREADY);
    rs_pool_stats st = pool_stats(p);
    RS_CHECK_EQ(st.total, 0);
    RS_CHECK_POOL_CONSISTENT(p, &ctx, 1);
    /* On demand, a new one. */
    RS_CHECK_OK(rs_pool_acquire(p, NULL, &g));
    RS_CHECK((intptr_t)rs_guard_resource(&g) != first);
    RS_CHECK_EQ(ctx.created, 2);
    RS_CHECK_OK(rs_guard_release(&g));
    return 0;
}

Test(pool, discard_destroys_and_the_pool_recreates_on_demand, .timeout = 10)
{
    RS_RUN_OK(discard, NULL);
}

static int discard_refills_min(void *arg)
{
    (void)arg;
    static res_ctx ctx; /* outlives this task: see res_ctx */
    ctx = (res_ctx){ 0 };
    rs_pool *p;
    rs_pool_opts o = res_opts(&ctx, 1, 2);
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    RS_YIELD_UNTIL(pool_stats(p).idle == 1);
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_pool_acquire(p, NULL, &g));
    RS_CHECK_OK(rs_guard_discard(&g));
    RS_YIELD_UNTIL(pool_stats(p).idle == 1);
    RS_CHECK_EQ(ctx.created, 2);
    RS_CHECK_EQ(ctx.destroyed, 1);
    RS_CHECK_POOL_CONSISTENT(p, &ctx, 2);
    return 0;
}

Test(pool, discard_below_min_creates_a_replacement, .timeout = 10)
{
    RS_RUN_OK(discard_refills_min, NULL);
}

/* ------------------------------------------------------------ create errors */

static int create_fails(void *arg)
{
    (void)arg;
    static res_ctx ctx; /* outlives this task: see res_ctx */
    ctx = (res_ctx){ .fail_call = 1, .fail_error = -ECONNREFUSED };
    rs_pool *p;
    rs_pool_opts o = res_opts(&ctx, 0, 1);
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_EQ(rs_pool_acquire(p, NULL, &g), -ECONNREFUSED);
    RS_CHECK(!rs_guard_held(&g));
    rs_pool_stats st = pool_stats(p);
    RS_CHECK(st.total == 0 && st.creating == 0 && st.waiting == 0);
    /* The pool is still usable. */
    RS_CHECK_OK(rs_pool_acquire(p, NULL, &g));
    RS_CHECK(rs_guard_resource(&g) != NULL);
    RS_CHECK_OK(rs_guard_release(&g));
    /* A positive return from create is an error too. */
    ctx.fail_all = 5;
    RS_CHECK_OK(rs_pool_acquire(p, NULL, &g)); /* the idle one */
    rs_guard h = RS_GUARD_INIT;
    RS_CHECK_OK(rs_guard_discard(&g));
    RS_CHECK(rs_pool_acquire(p, NULL, &h) < 0);
    RS_CHECK(!rs_guard_held(&h));
    return 0;
}

Test(pool, create_error_goes_to_the_acquirer_and_the_pool_stays_usable, .timeout = 10)
{
    RS_RUN_OK(create_fails, NULL);
}

/* The process's mapped address space now (VmSize), in bytes. */
static size_t address_space_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    cr_assert(f);
    char line[256];
    size_t kib = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmSize:", 7) == 0)
            kib = strtoull(line + 7, NULL, 10);
    fclose(f);
    cr_assert_gt(kib, 0);
    return kib << 10;
}

/* The task that would run create cannot even be started (its stack cannot
 * be mapped: the address space is capped for the call): the acquirer gets
 * -ENOMEM at once, its time limit leaves no timer behind (one left armed
 * would fire into the returned call's frame), and the pool stays usable. */
static int create_cannot_start(void *arg)
{
    (void)arg;
    static res_ctx ctx;
    ctx = (res_ctx){ 0 };
    rs_pool *p;
    rs_pool_opts o = res_opts(&ctx, 0, 1);
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    rs__worker *w = rs__worker_get();
    uint32_t timers_before = rs__timer_count(&w->timers);
    struct rlimit old, capped;
    RS_CHECK_EQ(getrlimit(RLIMIT_AS, &old), 0);
    capped = old;
    capped.rlim_cur = (rlim_t)address_space_bytes() + (16u << 20); /* room for small allocations, not a stack */
    RS_CHECK_EQ(setrlimit(RLIMIT_AS, &capped), 0);
    rs_guard g = RS_GUARD_INIT;
    int rc = rs_pool_acquire(p, &(rs_acquire_opts){ .timeout_ms = 50 }, &g);
    RS_CHECK_EQ(setrlimit(RLIMIT_AS, &old), 0);
    RS_CHECK_EQ(rc, -ENOMEM);
    RS_CHECK(!rs_guard_held(&g));
    RS_CHECK_EQ(rs__timer_count(&w->timers), timers_before);
    RS_CHECK_EQ(ctx.create_calls, 0);
    rs_pool_stats st = pool_stats(p);
    RS_CHECK(st.total == 0 && st.creating == 0 && st.waiting == 0);
    RS_CHECK_OK(rs_pool_acquire(p, &(rs_acquire_opts){ .timeout_ms = 5000 }, &g));
    RS_CHECK_OK(rs_guard_release(&g));
    return 0;
}

Test(pool, a_creation_that_cannot_start_is_enomem_and_leaves_no_timer, .timeout = 10)
{
    /* Stacks large enough that the capped address space cannot hold one. */
    int rc = rs_run(create_cannot_start, NULL, &(rs_runtime_opts){ .stack_size = (size_t)64 << 20 });
    cr_assert_eq(rc, 0, "rs_run returned %d", rc);
}

/* A destroy callback that opens a scope and forgets to close it: the scope
 * is closed for it, and the caller leaves the library's shielded scope, so
 * that it is cancellable again and can close its own scope. */
static void destroy_leaving_a_scope_open(void *ctx, void *res)
{
    (void)ctx;
    (void)res;
    rs_scope *forgotten;
    rs_scope_open(NULL, &forgotten);
}

static int destroy_leaves_scope(void *arg)
{
    (void)arg;
    static res_ctx ctx;
    ctx = (res_ctx){ 0 };
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    rs_pool *p;
    rs_pool_opts o = res_opts(&ctx, 0, 1);
    o.destroy = destroy_leaving_a_scope_open;
    RS_CHECK_OK(rs_pool_new(s, &o, &p));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_pool_acquire(p, NULL, &g));
    RS_CHECK_OK(rs_guard_discard(&g));
    RS_CHECK(rs_current_scope() == s);
    rs_scope_cancel(s);
    RS_CHECK_EQ(rs_checkpoint(), -ECANCELED);
    RS_CHECK_EQ(rs_scope_close(s), 0);
    return 0;
}

Test(pool, a_scope_destroy_leaves_open_is_closed_for_it, .timeout = 10)
{
    RS_RUN_OK(destroy_leaves_scope, NULL);
}

/* A create or check callback that cancels rs_current_scope() cancels a scope
 * of its own: that creation (or check) ends, and the pool's background work
 * goes on (before, it cancelled the runtime's background scope, after which
 * no creation could start for the rest of the run). */
static int cancelling_calls;

static int create_cancelling_itself(void *ctx, void **out)
{
    res_ctx *c = ctx;
    if (cancelling_calls-- > 0) {
        rs_scope_cancel(rs_current_scope());
        return rs_checkpoint(); /* -ECANCELED */
    }
    return res_create(c, out);
}

static bool check_cancelling_itself(void *ctx, void *res)
{
    (void)ctx;
    (void)res;
    rs_scope_cancel(rs_current_scope());
    return rs_checkpoint() == 0; /* false: the resource is destroyed */
}

static int callbacks_cancel_their_scope(void *arg)
{
    (void)arg;
    static res_ctx ctx;
    ctx = (res_ctx){ 0 };
    cancelling_calls = 1;
    rs_pool *p;
    rs_pool_opts o = res_opts(&ctx, 0, 1);
    o.create = create_cancelling_itself;
    o.check = check_cancelling_itself;
    o.check_interval_ms = 1;
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_EQ(rs_pool_acquire(p, NULL, &g), -ECANCELED); /* that creation's own cancellation */
    RS_CHECK_OK(rs_pool_acquire(p, &(rs_acquire_opts){ .timeout_ms = 5000 }, &g));
    RS_CHECK_OK(rs_guard_release(&g)); /* idle: the check round finds it and fails it */
    RS_YIELD_UNTIL(ctx.destroyed == 1);
    RS_CHECK_OK(rs_pool_acquire(p, &(rs_acquire_opts){ .timeout_ms = 5000 }, &g)); /* created anew */
    RS_CHECK_OK(rs_guard_release(&g));
    return 0;
}

Test(pool, callbacks_that_cancel_their_scope_stop_only_themselves, .timeout = 10)
{
    RS_RUN_OK(callbacks_cancel_their_scope, NULL);
}

static int error_to_the_right_waiter(void *arg)
{
    (void)arg;
    /* Two acquirers, each with a creation of its own; the first creation fails. */
    static res_ctx ctx; /* outlives this task: see res_ctx */
    ctx = (res_ctx){ .fail_call = 1, .create_delay_ms = 10 };
    rs_pool *p;
    rs_pool_opts o = res_opts(&ctx, 0, 2);
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    volatile bool go = false;
    user_arg a = { .pool = p, .id = 1, .go = &go, .result = 1 };
    user_arg b = { .pool = p, .id = 2, .go = &go, .result = 1 };
    RS_CHECK_OK(spawn_user(&a));
    RS_YIELD_UNTIL(pool_stats(p).creating == 1);
    RS_CHECK_OK(spawn_user(&b));
    RS_YIELD_UNTIL(pool_stats(p).creating == 2);
    RS_CHECK_EQ(pool_stats(p).waiting, 2);
    RS_CHECK_POOL_CONSISTENT(p, &ctx, 2);
    RS_YIELD_UNTIL(a.done && b.result == 0);
    RS_CHECK_EQ(a.result, -ECONNREFUSED);
    RS_CHECK(b.res == (void *)(intptr_t)2);
    go = true;
    RS_YIELD_UNTIL(b.done);

    /* The acquirer a creation was for left (timeout): its error goes to nobody,
     * and the next waiter gets a creation of its own. */
    static res_ctx ctx2; /* outlives this task: see res_ctx */
    ctx2 = (res_ctx){ .fail_call = 1, .create_delay_ms = 30 };
    rs_pool *p2;
    rs_pool_opts o2 = res_opts(&ctx2, 0, 1);
    RS_CHECK_OK(rs_pool_new(NULL, &o2, &p2));
    user_arg c = { .pool = p2, .id = 3, .timeout_ms = 10, .result = 1 };
    user_arg d = { .pool = p2, .id = 4, .result = 1 };
    RS_CHECK_OK(spawn_user(&c));
    RS_YIELD_UNTIL(pool_stats(p2).creating == 1);
    RS_CHECK_OK(spawn_user(&d));
    RS_YIELD_UNTIL(pool_stats(p2).waiting == 2);
    RS_YIELD_UNTIL(c.done && d.done);
    RS_CHECK_EQ(c.result, -ETIMEDOUT);
    RS_CHECK_EQ(d.result, 0);
    RS_CHECK(d.res == (void *)(intptr_t)2);
    RS_CHECK_POOL_CONSISTENT(p2, &ctx2, 1);
    return 0;
}

Test(pool, create_error_goes_only_to_the_acquirer_it_was_for, .timeout = 10)
{
    RS_RUN_OK(error_to_the_right_waiter, NULL);
}

/* ------------------------------------------------------------ order, try */

static int priority_and_try(void *arg)
{
    (void)arg;
    static res_ctx ctx; /* outlives this task: see res_ctx */
    ctx = (res_ctx){ 0 };
    rs_pool *p;
    rs_pool_opts o = res_opts(&ctx, 0, 1);
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    rs_guard g = RS_GUARD_INIT, t = RS_GUARD_INIT;
    RS_CHECK_EQ(rs_pool_try_acquire(p, &t), -EBUSY); /* nothing idle: try never creates */
    RS_CHECK_OK(rs_pool_acquire(p, NULL, &g));
    order_log log = { 0 };
    static const int prios[] = { 1, 10, 5 };
    user_arg a[3];
    for (int i = 0; i < 3; i++) {
        a[i] = (user_arg){ .pool = p, .id = i, .priority = prios[i], .log = &log, .result = 1 };
        RS_CHECK_OK(spawn_user(&a[i]));
        RS_YIELD_UNTIL(pool_stats(p).waiting == (unsigned)i + 1);
    }
    RS_CHECK_OK(rs_guard_release(&g));
    /* Handed to the head waiter at the release: the releaser cannot barge back. */
    RS_CHECK_EQ(rs_pool_try_acquire(p, &t), -EBUSY);
    RS_YIELD_UNTIL(a[0].done && a[1].done && a[2].done);
    RS_CHECK_EQ(log.ids[0], 1);
    RS_CHECK_EQ(log.ids[1], 2);
    RS_CHECK_EQ(log.ids[2], 0);
    RS_CHECK_EQ(ctx.created, 1);
    RS_CHECK_OK(rs_pool_try_acquire(p, &t));
    RS_CHECK(rs_guard_held(&t));
    RS_CHECK_OK(rs_guard_release(&t));
    return 0;
}

Test(pool, waiters_by_priority_and_try_acquire_never_barges, .timeout = 10)
{
    RS_RUN_OK(priority_and_try, NULL);
}

static int consistent_stats(void *arg)
{
    (void)arg;
    /* A busy mix of users; the invariants hold at every step. */
    static res_ctx ctx; /* outlives this task: see res_ctx */
    ctx = (res_ctx){ .create_delay_ms = 1 };
    rs_pool *p;
    rs_pool_opts o = res_opts(&ctx, 1, 3);
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    user_arg a[12];
    volatile bool go = false;
    for (int i = 0; i < 12; i++) {
        a[i] = (user_arg){ .pool = p, .id = i, .priority = i % 3, .timeout_ms = i % 4 == 3 ? 2 : 0,
                           .go = &go, .result = 1 };
        RS_CHECK_OK(spawn_user(&a[i]));
        RS_CHECK_POOL_CONSISTENT(p, &ctx, 3);
        RS_CHECK_OK(rs_yield());
        RS_CHECK_POOL_CONSISTENT(p, &ctx, 3);
    }
    for (int step = 0; step < 200; step++) {
        if (step == 20)
            go = true;
        RS_CHECK_POOL_CONSISTENT(p, &ctx, 3);
        bool all = true;
        for (int i = 0; i < 12; i++)
            all = all && a[i].done;
        if (all)
            break;
        RS_CHECK_OK(rs_sleep(1));
    }
    for (int i = 0; i < 12; i++) {
        RS_YIELD_UNTIL(a[i].done);
        RS_CHECK(a[i].result == 0 || (a[i].timeout_ms && a[i].result == -ETIMEDOUT));
    }
    rs_pool_stats st = pool_stats(p);
    RS_CHECK_EQ(st.in_use, 0);
    RS_CHECK_EQ(st.waiting, 0);
    RS_CHECK_EQ(st.total, st.idle);
    RS_CHECK_EQ(ctx.live, (int)st.total);
    RS_CHECK(ctx.max_live <= 3);
    return 0;
}

Test(pool, stats_are_consistent_at_every_step, .timeout = 20)
{
    RS_RUN_OK(consistent_stats, NULL);
}

/* ------------------------------------------------------------ validation */

static int validation(void *arg)
{
    (void)arg;
    static res_ctx ctx; /* outlives this task: see res_ctx */
    ctx = (res_ctx){ 0 };
    rs_pool *p;
    rs_pool_opts o = res_opts(&ctx, 0, 2);
    RS_CHECK_EQ(rs_pool_new(NULL, NULL, &p), -EINVAL);
    RS_CHECK_EQ(rs_pool_new(NULL, &o, NULL), -EINVAL);
    rs_pool_opts bad = o;
    bad.create = NULL;
    RS_CHECK_EQ(rs_pool_new(NULL, &bad, &p), -EINVAL);
    bad = o;
    bad.max = 0;
    RS_CHECK_EQ(rs_pool_new(NULL, &bad, &p), -EINVAL);
    bad = o;
    bad.min = 3;
    RS_CHECK_EQ(rs_pool_new(NULL, &bad, &p), -EINVAL);
    bad = o;
    bad.acquire_timeout_ms = -1;
    RS_CHECK_EQ(rs_pool_new(NULL, &bad, &p), -EINVAL);
    bad = o;
    bad.check_interval_ms = -1;
    RS_CHECK_EQ(rs_pool_new(NULL, &bad, &p), -EINVAL);
    bad = o;
    bad.idle_timeout_ms = -1;
    RS_CHECK_EQ(rs_pool_new(NULL, &bad, &p), -EINVAL);
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_EQ(rs_pool_acquire(NULL, NULL, &g), -EINVAL);
    RS_CHECK_EQ(rs_pool_acquire(p, NULL, NULL), -EINVAL);
    RS_CHECK_EQ(rs_pool_acquire(p, &(rs_acquire_opts){ .timeout_ms = -1 }, &g), -EINVAL);
    RS_CHECK_EQ(rs_pool_try_acquire(NULL, &g), -EINVAL);
    RS_CHECK_EQ(rs_pool_try_acquire(p, NULL), -EINVAL);
    RS_CHECK_EQ(rs_pool_stats_get(NULL, &(rs_pool_stats){ 0 }), -EINVAL);
    RS_CHECK_EQ(rs_pool_stats_get(p, NULL), -EINVAL);
    /* cancellation point */
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    rs_scope_cancel(s);
    RS_CHECK_EQ(rs_pool_acquire(p, NULL, &g), -ECANCELED);
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(pool_stats(p).total, 0);
    return 0;
}

Test(pool, bad_arguments_are_einval, .timeout = 10)
{
    RS_RUN_OK(validation, NULL);
}

Test(pool, outside_a_task_is_eperm, .timeout = 10)
{
    res_ctx ctx = { 0 };
    rs_pool *p;
    rs_pool_opts o = res_opts(&ctx, 0, 2);
    cr_assert_eq(rs_pool_new(NULL, &o, &p), -EPERM);
}

/* ------------------------------------------------------------ disposal */

static int disposal(void *arg)
{
    (void)arg;
    res_ctx ctx = { 0 };
    rs_guard out = RS_GUARD_INIT;
    volatile bool go = false;
    user_arg w = { .go = &go, .result = 1 }, w2 = { .result = 1 };
    rs_scope *outer = rs_current_scope();
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    rs_pool *p;
    rs_pool_opts o = res_opts(&ctx, 2, 2);
    RS_CHECK_OK(rs_pool_new(s, &o, &p));
    RS_YIELD_UNTIL(pool_stats(p).idle == 2);
    RS_CHECK_OK(rs_pool_acquire(p, NULL, &out));
    /* Tasks of the outer scope: one holds a resource, one waits for it. */
    w.pool = w2.pool = p;
    RS_CHECK_OK(rs_spawn(outer, pool_user, &w, NULL, NULL));
    RS_YIELD_UNTIL(w.result == 0);
    RS_CHECK_OK(rs_spawn(outer, pool_user, &w2, NULL, NULL));
    RS_YIELD_UNTIL(pool_stats(p).waiting == 1);
    void *res = rs_guard_resource(&out);
    RS_CHECK_OK(rs_scope_close(s));
    RS_YIELD_UNTIL(w2.done);
    RS_CHECK_EQ(w2.result, -ECANCELED);
    /* Checked-out resources survive until their guards are released. */
    RS_CHECK_EQ(ctx.destroyed, 0);
    RS_CHECK(!rs_guard_held(&out));
    RS_CHECK(rs_guard_resource(&out) == res);
    RS_CHECK_EQ(rs_guard_release(&out), -EALREADY);
    RS_CHECK_EQ(ctx.destroyed, 1);
    RS_CHECK_EQ(rs_guard_release(&out), -EALREADY);
    RS_CHECK_EQ(ctx.destroyed, 1);
    go = true;
    RS_YIELD_UNTIL(w.done); /* its release destroyed the other one */
    RS_CHECK_EQ(ctx.destroyed, 2);
    RS_CHECK_EQ(ctx.live, 0);
    return 0;
}

Test(pool, scope_close_cancels_waiters_and_destroys_resources_as_released, .timeout = 10)
{
    RS_RUN_OK(disposal, NULL);
}

static int disposal_idle(void *arg)
{
    (void)arg;
    res_ctx ctx = { 0 };
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    rs_pool *p;
    rs_pool_opts o = res_opts(&ctx, 3, 3);
    RS_CHECK_OK(rs_pool_new(s, &o, &p));
    RS_YIELD_UNTIL(pool_stats(p).idle == 3);
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(ctx.destroyed, 3); /* idle ones: at once */

    /* A creation still in flight at the close is cancelled, and its resource never leaks. */
    res_ctx slow = { .create_delay_ms = 5000 };
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    rs_pool_opts o2 = res_opts(&slow, 2, 2);
    RS_CHECK_OK(rs_pool_new(s, &o2, &p));
    RS_CHECK_OK(rs_yield());
    int64_t start = rs_now_ms();
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK(rs_now_ms() - start < 1000);
    RS_CHECK_EQ(slow.created, 0);
    RS_CHECK_EQ(slow.live, 0);
    return 0;
}

Test(pool, scope_close_destroys_idle_resources_and_cancels_creations, .timeout = 10)
{
    RS_RUN_OK(disposal_idle, NULL);
}

static int creating_counted(void *arg)
{
    (void)arg;
    static res_ctx ctx; /* outlives this task: see res_ctx */
    ctx = (res_ctx){ .create_delay_ms = 20 };
    rs_pool *p;
    rs_pool_opts o = res_opts(&ctx, 0, 3);
    RS_CHECK_OK(rs_pool_new(NULL, &o, &p));
    user_arg a = { .pool = p, .result = 1 };
    RS_CHECK_OK(spawn_user(&a));
    RS_YIELD_UNTIL(pool_stats(p).waiting == 1);
    rs_pool_stats st = pool_stats(p);
    RS_CHECK_EQ(st.creating, 1);
    RS_CHECK_EQ(st.total, 1);
    RS_YIELD_UNTIL(a.done);
    RS_CHECK_EQ(a.result, 0);
    st = pool_stats(p);
    RS_CHECK(st.creating == 0 && st.idle == 1 && st.total == 1);
    return 0;
}

Test(pool, a_creation_for_a_waiter_counts_as_creating, .timeout = 10)
{
    RS_RUN_OK(creating_counted, NULL);
}

typedef struct discard_arg {
    rs_guard g;
    int result;
    bool done;
} discard_arg;

static int discard_slowly(void *p)
{
    discard_arg *a = p;
    a->result = rs_guard_discard(&a->g);
    a->done = true;
    return 0;
}

static int discard_during_close(void *arg)
{
    (void)arg;
    /* A destroy still running when the pool's scope closes: the close waits
     * for it, then finishes; nothing leaks. */
    res_ctx ctx = { .destroy_delay_ms = 30 };
    discard_arg d = { .g = RS_GUARD_INIT, .result = 1 };
    rs_scope *outer = rs_current_scope();
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    rs_pool *p;
    rs_pool_opts o = res_opts(&ctx, 0, 2);
    RS_CHECK_OK(rs_pool_new(s, &o, &p));
    RS_CHECK_OK(rs_pool_acquire(p, NULL, &d.g));
    RS_CHECK_OK(rs_spawn(outer, discard_slowly, &d, NULL, NULL));
    RS_CHECK_OK(rs_yield()); /* the discard runs and suspends inside destroy */
    RS_CHECK(!d.done);
    int64_t start = rs_now_ms();
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK(rs_now_ms() - start < 2000);
    RS_YIELD_UNTIL(d.done);
    RS_CHECK_EQ(d.result, 0);
    RS_CHECK_EQ(ctx.destroyed, 1);
    RS_CHECK_EQ(ctx.live, 0);
    return 0;
}

Test(pool, scope_close_waits_for_a_destroy_in_flight, .timeout = 10)
{
    RS_RUN_OK(discard_during_close, NULL);
}
