/* The distributed-lock engine over a backend whose operations suspend, as a
 * network store's do: a test backend that wraps the memory store and sleeps
 * before each operation (a cancellation point, like a round trip). It checks
 * what only such a backend exercises: one store attempt in flight per key,
 * renewal by a system task, release completing in a cancelled scope,
 * transient extend failures ending in a loss at the lease's end, release
 * cutting an in-flight renewal short, and waiters cancelled mid-attempt. */
#include <stdio.h>
#include <string.h>

#include "adapters/engine.h"
#include "adapters/store.h"
#include "support.h"

static struct {
    int64_t delay_ms;        /* before every operation */
    int64_t extend_delay_ms; /* extra, before extend */
    int extend_error;        /* extend answers this instead (0: normal) */
    int acquire_lost_answer; /* acquire is done, then answers this (the reply was lost) */
    unsigned extends;
    unsigned acquires_in_flight, max_acquires_in_flight;
} fake;

static int round_trip(int64_t ms)
{
    return ms ? rs_sleep(ms) : rs_yield();
}

static int f_acquire(rs_store *st, const char *key, rs_lock_mode mode, const char *owner, int64_t ttl_ms,
                     unsigned flags, rs__store_grant *out)
{
    fake.acquires_in_flight++;
    if (fake.acquires_in_flight > fake.max_acquires_in_flight)
        fake.max_acquires_in_flight = fake.acquires_in_flight;
    int rc = round_trip(fake.delay_ms);
    fake.acquires_in_flight--;
    if (rc)
        return rc;
    rc = rs__store_memory_ops.acquire(st, key, mode, owner, ttl_ms, flags, out);
    return fake.acquire_lost_answer ? fake.acquire_lost_answer : rc;
}

static int f_release(rs_store *st, const char *key, rs_lock_mode mode, const char *owner)
{
    int rc = round_trip(fake.delay_ms);
    return rc ? rc : rs__store_memory_ops.release(st, key, mode, owner);
}

static int f_extend(rs_store *st, const char *key, rs_lock_mode mode, const char *owner, int64_t ttl_ms)
{
    fake.extends++;
    int rc = round_trip(fake.delay_ms + fake.extend_delay_ms);
    if (rc)
        return rc;
    if (fake.extend_error)
        return fake.extend_error;
    return rs__store_memory_ops.extend(st, key, mode, owner, ttl_ms);
}

static int f_force_release(rs_store *st, const char *key)
{
    int rc = round_trip(fake.delay_ms);
    return rc ? rc : rs__store_memory_ops.force_release(st, key);
}

static int f_inspect(rs_store *st, const char *key, rs_lock_info *info)
{
    int rc = round_trip(fake.delay_ms);
    return rc ? rc : rs__store_memory_ops.inspect(st, key, info);
}

static int f_withdraw(rs_store *st, const char *key, const char *owner)
{
    int rc = round_trip(fake.delay_ms);
    return rc ? rc : rs__store_memory_ops.withdraw(st, key, owner);
}

/* No watch: waiting relies on the backoff alone. */
static const rs__store_ops slow_ops = {
    .scheme = "slow",
    .suspends = true,
    .acquire = f_acquire,
    .release = f_release,
    .extend = f_extend,
    .force_release = f_force_release,
    .inspect = f_inspect,
    .withdraw = f_withdraw,
};

static rs_store slow_store = {
    .ops = &slow_ops,
    .prefix = "slow:",
    .prefix_len = 5,
    .pool_size = 4,
    .connect_timeout_ms = 5000,
    .op_timeout_ms = 5000,
    .builtin = true,
};

typedef int (*body_fn)(rs_store *st);

static int body_main(void *arg)
{
    return ((body_fn)arg)(&slow_store);
}

static void run_slow(body_fn body)
{
    memset(&fake, 0, sizeof fake);
    rs__dlock_register();
    int rc = rs_run(body_main, (void *)body, NULL);
    cr_assert_eq(rc, 0, "rs_run returned %d (%s)", rc, rs_strerror(rc));
}

#define SLOW_TEST(name, seconds)                                                                              \
    static int name##_body(rs_store *st);                                                                     \
    Test(dlock_suspending, name, .timeout = (seconds))                                                        \
    {                                                                                                         \
        run_slow(name##_body);                                                                                \
    }                                                                                                         \
    static int name##_body(rs_store *st)

/* ------------------------------------------------------------ contention */

typedef struct crowd {
    rs_lock *l;
    int next_priority;
    unsigned inside, max_inside;
    uint64_t last_token;
    int bad_tokens;
} crowd;

static int crowd_member(void *arg)
{
    crowd *c = arg;
    int priority = c->next_priority++ % 3; /* later arrivals may queue in front of an attempt in flight */
    for (int i = 0; i < 10; i++) {
        rs_guard g = RS_GUARD_INIT;
        RS_CHECK_OK(rs_lock_acquire(c->l, &(rs_acquire_opts){ .timeout_ms = 10000, .priority = priority }, &g));
        if (rs_guard_token(&g) <= c->last_token)
            c->bad_tokens++;
        c->last_token = rs_guard_token(&g);
        if (++c->inside > c->max_inside)
            c->max_inside = c->inside;
        RS_CHECK_OK(rs_sleep(1));
        c->inside--;
        RS_CHECK_OK(rs_guard_release(&g));
    }
    return 0;
}

SLOW_TEST(one_attempt_in_flight_per_key, 30)
{
    fake.delay_ms = 1;
    crowd c = { 0 };
    RS_CHECK_OK(rs_lock_new(NULL, &(rs_lock_opts){ .store = st, .key = "crowd" }, &c.l));
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    for (int i = 0; i < 6; i++)
        RS_CHECK_OK(rs_spawn(s, crowd_member, &c, NULL, NULL));
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(c.max_inside, 1);
    RS_CHECK_EQ(c.bad_tokens, 0);
    RS_CHECK_EQ(fake.max_acquires_in_flight, 1); /* a second attempt of the same owner would share the lease */
    rs_lock_info info;
    RS_CHECK_EQ(rs_store_inspect(st, "crowd", &info), -ENOENT);
    return 0;
}

typedef struct contender {
    rs_lock *l;
    int rc;
} contender;

static int contender_main(void *arg)
{
    contender *c = arg;
    rs_guard g = RS_GUARD_INIT;
    c->rc = rs_lock_acquire(c->l, &(rs_acquire_opts){ .timeout_ms = 5000 }, &g);
    return c->rc == 0 ? rs_guard_release(&g) : 0;
}

SLOW_TEST(try_never_barges_past_a_waiter, 10)
{
    fake.delay_ms = 20;
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(NULL, &(rs_lock_opts){ .store = st, .key = "try" }, &l));
    RS_CHECK_OK(rs_store_acquire(st, "try", RS_LOCK_EXCLUSIVE, "other", 30000, NULL));
    contender c = { l, 1 };
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    RS_CHECK_OK(rs_spawn(s, contender_main, &c, NULL, NULL));
    RS_CHECK_OK(rs_sleep(30));
    rs_guard g = RS_GUARD_INIT;
    int64_t t0 = rs_now_ms();
    RS_CHECK_EQ(rs_lock_try_acquire(l, &g), -EBUSY); /* without a round trip: someone is queued */
    RS_CHECK(rs_now_ms() - t0 < 10);
    RS_CHECK_OK(rs_store_release(st, "try", RS_LOCK_EXCLUSIVE, "other"));
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(c.rc, 0);
    RS_CHECK_OK(rs_lock_try_acquire(l, &g)); /* one round trip on a free key */
    return rs_guard_release(&g);
}

SLOW_TEST(unanswered_attempt_is_given_back, 10)
{
    fake.delay_ms = 2;
    fake.acquire_lost_answer = -ECONNRESET; /* granted on the server, the answer never arrives */
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(NULL, &(rs_lock_opts){ .store = st, .key = "lost-answer" }, &l));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_EQ(rs_lock_acquire(l, NULL, &g), -ECONNRESET);
    RS_CHECK(!rs_guard_held(&g));
    fake.acquire_lost_answer = 0;
    rs_lock_info info;
    RS_CHECK_EQ(rs_store_inspect(st, "lost-answer", &info), -ENOENT); /* not left to block others for a TTL */
    RS_CHECK_OK(rs_store_acquire(st, "lost-answer", RS_LOCK_EXCLUSIVE, "other", 1000, NULL));
    return rs_store_release(st, "lost-answer", RS_LOCK_EXCLUSIVE, "other");
}

/* ------------------------------------------------------------ renewal */

SLOW_TEST(renewal_runs_in_a_system_task, 10)
{
    fake.delay_ms = 2;
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(NULL, &(rs_lock_opts){ .store = st, .key = "renew", .ttl_ms = 300 }, &l));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
    for (int i = 0; i < 12; i++) {
        RS_CHECK_OK(rs_sleep(100));
        RS_CHECK_EQ(rs_store_acquire(st, "renew", RS_LOCK_EXCLUSIVE, "other", 300, NULL), -EBUSY);
    }
    RS_CHECK(fake.extends >= 8);
    RS_CHECK(rs_guard_held(&g));
    return rs_guard_release(&g);
}

SLOW_TEST(transient_failures_end_in_loss_at_the_lease_end, 10)
{
    fake.delay_ms = 1;
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(NULL, &(rs_lock_opts){ .store = st, .key = "flaky", .ttl_ms = 400 }, &l));
    rs_guard g = RS_GUARD_INIT;
    int64_t t0 = rs_now_ms();
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
    fake.extend_error = -ECONNRESET; /* the server stops answering extends */
    RS_CHECK_OK(rs_signal_wait(rs_guard_lost(&g), 3000));
    int64_t at = rs_now_ms() - t0;
    RS_CHECK(at >= 350 && at < 400 + 200); /* retried until the known end, not given up before */
    RS_CHECK(fake.extends >= 3);
    RS_CHECK_EQ(rs_signal_reason(rs_guard_lost(&g)), -ENOLCK);
    RS_CHECK(!rs_guard_held(&g));
    RS_CHECK_EQ(rs_guard_release(&g), -ENOLCK);
    return 0;
}

SLOW_TEST(release_cuts_an_inflight_renewal_short, 10)
{
    fake.extend_delay_ms = 500;
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(NULL, &(rs_lock_opts){ .store = st, .key = "cut", .ttl_ms = 300 }, &l));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
    RS_CHECK_OK(rs_sleep(150)); /* the renewal started at 100 ms and sleeps 500 ms */
    RS_CHECK_EQ(fake.extends, 1);
    int64_t t0 = rs_now_ms();
    RS_CHECK_OK(rs_guard_release(&g));
    RS_CHECK(rs_now_ms() - t0 < 200); /* cancelled, not waited out */
    rs_lock_info info;
    RS_CHECK_EQ(rs_store_inspect(st, "cut", &info), -ENOENT);
    return 0;
}

/* ------------------------------------------------------------ cancellation */

SLOW_TEST(release_completes_in_a_cancelled_scope, 10)
{
    fake.delay_ms = 5;
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(NULL, &(rs_lock_opts){ .store = st, .key = "shield" }, &l));
    rs_guard g = RS_GUARD_INIT;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
    rs_scope_cancel(s);
    int rc = rs_guard_release(&g); /* the round trip must not be cut short */
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(rc, 0);
    rs_lock_info info;
    RS_CHECK_EQ(rs_store_inspect(st, "shield", &info), -ENOENT);
    return 0;
}

typedef struct writer {
    rs_lock *l;
    int rc;
} writer;

static int writer_main(void *arg)
{
    writer *w = arg;
    rs_guard g = RS_GUARD_INIT;
    w->rc = rs_lock_write(w->l, &(rs_acquire_opts){ .timeout_ms = 5000 }, &g);
    if (w->rc == 0)
        rs_guard_release(&g);
    return 0;
}

SLOW_TEST(waiter_cancelled_mid_attempt_leaves_nothing, 10)
{
    fake.delay_ms = 15;
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(NULL, &(rs_lock_opts){ .store = st, .key = "mid", .allow_multiple_readers = true }, &l));
    RS_CHECK_OK(rs_store_acquire(st, "mid", RS_LOCK_READ, "reader-1", 30000, NULL));
    writer w = { l, 1 };
    rs_scope *s;
    rs_task *t;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    RS_CHECK_OK(rs_spawn(s, writer_main, &w, NULL, &t));
    RS_CHECK_OK(rs_sleep(60)); /* a few attempts; most of the time is inside one */
    RS_CHECK_EQ(rs_store_acquire(st, "mid", RS_LOCK_READ, "reader-2", 30000, NULL), -EBUSY); /* intent */
    rs_task_cancel(t);
    RS_CHECK_OK(rs_task_join(t, NULL));
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(w.rc, -ECANCELED);
    RS_CHECK_OK(rs_store_acquire(st, "mid", RS_LOCK_READ, "reader-2", 30000, NULL)); /* intent withdrawn */
    rs_lock_info info;
    RS_CHECK_OK(rs_store_inspect(st, "mid", &info));
    RS_CHECK_EQ(info.holders, 2);
    RS_CHECK_OK(rs_store_force_release(st, "mid"));
    return 0;
}
