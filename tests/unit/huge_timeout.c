/* A time limit too large to be a deadline in nanoseconds (beyond about 292
 * years) means no limit, for every waiting call of the runtime and the
 * locks: the wait ends by its event or by cancellation, never at once with
 * -ETIMEDOUT (computed plainly, ms * 1000000 overflows into the past). The
 * same holds for a scope's timeout and for lease lengths. */
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io_support.h"
#include "pool_support.h"

TestSuite(huge_timeout, .timeout = 20);

#define SCOPE_MS 50

static const int64_t huge[] = { INT64_MAX, INT64_MAX / 1000000 + 1 };

typedef int (*waiting_call)(int64_t ms, void *ctx);

/* Runs call(huge[i]) inside a scope that times out after SCOPE_MS: the
 * scope's cancellation must be what ends it. */
static int ends_only_by_cancellation(waiting_call call, void *ctx)
{
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        rs_scope *s;
        RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = SCOPE_MS }, &s));
        int64_t t0 = rs_now_ms();
        int rc = call(huge[i], ctx);
        int64_t took = rs_now_ms() - t0;
        RS_CHECK_EQ(rs_scope_close(s), -ETIMEDOUT);
        RS_CHECK_EQ(rc, -ECANCELED);
        RS_CHECK(took >= SCOPE_MS - 1);
    }
    return 0;
}

static int sleep_call(int64_t ms, void *ctx)
{
    (void)ctx;
    return rs_sleep(ms);
}

static int signal_call(int64_t ms, void *ctx)
{
    return rs_signal_wait(ctx, ms);
}

static int lock_call(int64_t ms, void *ctx)
{
    rs_guard g = RS_GUARD_INIT;
    return rs_lock_acquire(ctx, &(rs_acquire_opts){ .timeout_ms = ms }, &g);
}

static int sem_call(int64_t ms, void *ctx)
{
    rs_guard g = RS_GUARD_INIT;
    return rs_sem_acquire(ctx, 1, &(rs_acquire_opts){ .timeout_ms = ms }, &g);
}

static int pool_call(int64_t ms, void *ctx)
{
    rs_guard g = RS_GUARD_INIT;
    return rs_pool_acquire(ctx, &(rs_acquire_opts){ .timeout_ms = ms }, &g);
}

/* ms is the pool's own default (acquire_timeout_ms), set when it was made. */
static int pool_default_call(int64_t ms, void *ctx)
{
    rs_pool **by_default = ctx;
    rs_guard g = RS_GUARD_INIT;
    return rs_pool_acquire(ms == INT64_MAX ? by_default[0] : by_default[1], NULL, &g);
}

static int poll_call(int64_t ms, void *ctx)
{
    return rs_poll(*(int *)ctx, POLLIN, ms);
}

static int connect_call(int64_t ms, void *ctx)
{
    const rs_test_blackhole *b = ctx;
    int fd = rs_tcp_connect("127.0.0.1", b->port, ms);
    if (fd >= 0)
        close(fd);
    return fd;
}

static int sleep_main(void *arg)
{
    (void)arg;
    return ends_only_by_cancellation(sleep_call, NULL);
}

static int signal_main(void *arg)
{
    (void)arg;
    /* The root scope's signal: it is not aborted while the inner scopes time out. */
    return ends_only_by_cancellation(signal_call, rs_scope_signal(rs_current_scope()));
}

/* Holds the lock until its scope is cancelled. */
static int holder(void *arg)
{
    RS_GUARD(g);
    RS_CHECK_OK(rs_lock_acquire(arg, NULL, &g));
    rs_signal_wait(rs_scope_signal(rs_current_scope()), 0); /* ends when the scope is cancelled */
    return 0;
}

static bool lock_held(rs_lock *l)
{
    rs_lock_stats st;
    return rs_lock_stats_get(l, &st) == 0 && st.exclusive;
}

static int lock_main(void *arg)
{
    (void)arg;
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(NULL, NULL, &l));
    rs_scope *holding;
    RS_CHECK_OK(rs_scope_open(NULL, &holding));
    RS_CHECK_OK(rs_spawn(holding, holder, l, NULL, NULL));
    RS_YIELD_UNTIL(lock_held(l));
    int rc = ends_only_by_cancellation(lock_call, l);
    rs_scope_cancel(holding);
    rs_scope_close(holding);
    return rc;
}

static int sem_main(void *arg)
{
    (void)arg;
    rs_sem *sem;
    RS_CHECK_OK(rs_sem_new(NULL, 1, &sem));
    RS_GUARD(held);
    RS_CHECK_OK(rs_sem_acquire(sem, 1, NULL, &held));
    return ends_only_by_cancellation(sem_call, sem);
}

/* A pool of one resource, taken; its own default acquire timeout is huge. */
static int new_exhausted_pool(res_ctx *ctx, int64_t default_timeout_ms, rs_pool **p, rs_guard *g)
{
    rs_pool_opts o = res_opts(ctx, 0, 1);
    o.acquire_timeout_ms = default_timeout_ms;
    RS_CHECK_OK(rs_pool_new(NULL, &o, p));
    return rs_pool_acquire(*p, NULL, g);
}

static int pool_main(void *arg)
{
    (void)arg;
    static res_ctx ctx; /* outlives this task: see res_ctx */
    ctx = (res_ctx){ 0 };
    rs_pool *by_default[2];
    RS_GUARD(g0);
    RS_GUARD(g1);
    RS_CHECK_OK(new_exhausted_pool(&ctx, huge[0], &by_default[0], &g0));
    RS_CHECK_OK(new_exhausted_pool(&ctx, huge[1], &by_default[1], &g1));
    RS_CHECK_OK(ends_only_by_cancellation(pool_call, by_default[0]));
    return ends_only_by_cancellation(pool_default_call, by_default);
}

/* A poll of a silent socket. Readiness still ends such a poll. */
static int poll_main(void *arg)
{
    (void)arg;
    int sv[2];
    RS_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    RS_CHECK_OK(ends_only_by_cancellation(poll_call, &sv[0]));
    RS_CHECK_EQ(rs_send(sv[1], "r", 1, 0), 1);
    int rev = rs_poll(sv[0], POLLIN, INT64_MAX);
    RS_CHECK(rev > 0 && (rev & POLLIN));
    RS_CHECK_OK(rs_close(sv[0]));
    RS_CHECK_OK(rs_close(sv[1]));
    return 0;
}

/* A connect to a peer that never answers. */
static int connect_main(void *arg)
{
    (void)arg;
    rs_test_blackhole b = { 0 };
    RS_CHECK_OK(rs_test_blackhole_open(&b, "127.0.0.1"));
    int rc = ends_only_by_cancellation(connect_call, &b);
    rs_test_blackhole_close(&b);
    return rc;
}

/* A scope's own timeout: a huge one never fires. */
static int scope_main(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        rs_scope *s;
        RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = huge[i] }, &s));
        RS_CHECK_OK(rs_sleep(5)); /* timers due by now have fired */
        RS_CHECK(!rs_scope_cancelled(s));
        RS_CHECK_OK(rs_scope_close(s));
    }
    return 0;
}

Test(huge_timeout, scope_timeout)
{
    RS_RUN_OK(scope_main, NULL);
}

/* Lease lengths: a lease of any length is held, renewed and extended
 * (renewal is due a third of the length from now, a sum that must not
 * overflow), and a waiter told that the holder's lease ends in ~292 years
 * still ends at its own timeout. */
static int lease_main(void *arg)
{
    (void)arg;
    rs_store *st;
    RS_CHECK_OK(rs_store_open("memory:", NULL, &st));
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        rs_scope *s;
        rs_lock *l;
        RS_CHECK_OK(rs_scope_open(NULL, &s));
        RS_CHECK_OK(rs_lock_new(s, &(rs_lock_opts){ .store = st, .key = "huge-ttl", .ttl_ms = huge[i] }, &l));
        rs_guard g = RS_GUARD_INIT;
        RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
        RS_CHECK_OK(rs_sleep(5)); /* a renewal due by now has run */
        RS_CHECK(rs_guard_held(&g));
        RS_CHECK(!rs_signal_aborted(rs_guard_lost(&g)));
        RS_CHECK_OK(rs_guard_extend(&g, huge[i]));
        RS_CHECK_OK(rs_guard_release(&g));
        RS_CHECK_OK(rs_scope_close(s));

        uint64_t token;
        RS_CHECK_OK(rs_store_acquire(st, "held-elsewhere", RS_LOCK_EXCLUSIVE, "another-owner", huge[i], &token));
        RS_CHECK_OK(rs_scope_open(NULL, &s));
        RS_CHECK_OK(rs_lock_new(s, &(rs_lock_opts){ .store = st, .key = "held-elsewhere" }, &l));
        RS_CHECK_EQ(rs_lock_acquire(l, &(rs_acquire_opts){ .timeout_ms = 20 }, &g), -ETIMEDOUT);
        RS_CHECK_OK(rs_scope_close(s));
        RS_CHECK_OK(rs_store_release(st, "held-elsewhere", RS_LOCK_EXCLUSIVE, "another-owner"));
    }
    return rs_store_close(st);
}

Test(huge_timeout, lease_ttl)
{
    RS_RUN_OK(lease_main, NULL);
}

Test(huge_timeout, sleep)
{
    RS_RUN_OK(sleep_main, NULL);
}

Test(huge_timeout, signal_wait)
{
    RS_RUN_OK(signal_main, NULL);
}

Test(huge_timeout, lock_acquire)
{
    RS_RUN_OK(lock_main, NULL);
}

Test(huge_timeout, sem_acquire)
{
    RS_RUN_OK(sem_main, NULL);
}

Test(huge_timeout, poll)
{
    RS_RUN_OK(poll_main, NULL);
}

Test(huge_timeout, tcp_connect)
{
    RS_RUN_OK(connect_main, NULL);
}

Test(huge_timeout, pool_acquire)
{
    RS_RUN_OK(pool_main, NULL);
}
