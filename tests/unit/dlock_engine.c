/* The distributed-lock engine: rs_lock with a store (here the memory store),
 * rs_guard_* on leases, rs_scope_acquire_lock. Local priority order, lease
 * renewal and loss, waiters that time out or are cancelled, read-write
 * ordering across lock objects, and the scope helper's memory use. */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "support.h"
#include "adapters/engine.h"
#include "runtime/worker.h"

#define LONG_TTL 30000

static const char *unique_prefix(void)
{
    static char buf[64];
    static unsigned seq;
    snprintf(buf, sizeof buf, "dlock:%ld:%u:", (long)getpid(), seq++);
    return buf;
}

typedef struct env {
    rs_store *st;
    int (*body)(struct env *e);
} env;

static int env_main(void *arg)
{
    env *e = arg;
    return e->body(e);
}

/* Runs body under a runtime with a fresh memory store handle. */
static void run_with_store(int (*body)(env *e))
{
    env e = { .body = body };
    cr_assert_eq(rs_store_open("memory:", &(rs_store_opts){ .key_prefix = unique_prefix() }, &e.st), 0);
    int rc = rs_run(env_main, &e, NULL);
    cr_assert_eq(rc, 0, "rs_run returned %d (%s)", rc, rs_strerror(rc));
    cr_assert_eq(rs_store_close(e.st), 0);
}

#define ENGINE_TEST(name, seconds)                                                                            \
    static int name##_body(env *e);                                                                           \
    Test(dlock_engine, name, .timeout = (seconds))                                                            \
    {                                                                                                         \
        run_with_store(name##_body);                                                                          \
    }                                                                                                         \
    static int name##_body(env *e)

static int new_lock(env *e, const char *key, int64_t ttl, bool rw, rs_lock **out)
{
    return rs_lock_new(NULL, &(rs_lock_opts){ .store = e->st, .key = key, .ttl_ms = ttl, .allow_multiple_readers = rw },
                       out);
}

static unsigned pending_of(rs_lock *l)
{
    rs_lock_stats st;
    rs_lock_stats_get(l, &st);
    return st.pending;
}

/* Lets spawned tasks run until l has n queued waiters (bounded). */
static int wait_pending(rs_lock *l, unsigned n)
{
    for (int i = 0; i < 10000 && pending_of(l) != n; i++)
        rs_yield();
    return pending_of(l) == n ? 0 : -ETIMEDOUT;
}

/* ------------------------------------------------------------ basics */

ENGINE_TEST(acquire_release_through_the_store, 10)
{
    rs_lock *l;
    RS_CHECK_OK(new_lock(e, "basic", LONG_TTL, false, &l));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
    RS_CHECK(rs_guard_held(&g));
    rs_lock_info info;
    RS_CHECK_OK(rs_store_inspect(e->st, "basic", &info));
    RS_CHECK_EQ(info.token, rs_guard_token(&g));
    RS_CHECK_EQ(info.mode, RS_LOCK_EXCLUSIVE);
    char host[64];
    gethostname(host, sizeof host);
    RS_CHECK(strncmp(info.owner, host, strlen(host)) == 0); /* host:pid:random */
    RS_CHECK(info.ttl_left_ms > LONG_TTL - 5000);
    RS_CHECK(!rs_signal_aborted(rs_guard_lost(&g)));
    rs_lock_stats st;
    RS_CHECK_OK(rs_lock_stats_get(l, &st));
    RS_CHECK(st.exclusive && !st.writer && st.readers == 0 && st.pending == 0);
    /* another owner is kept out */
    RS_CHECK_EQ(rs_store_acquire(e->st, "basic", RS_LOCK_EXCLUSIVE, "other", 1000, NULL), -EBUSY);
    RS_CHECK_OK(rs_guard_release(&g));
    RS_CHECK(!rs_guard_held(&g));
    RS_CHECK_EQ(rs_guard_release(&g), -EALREADY);
    RS_CHECK_EQ(rs_store_inspect(e->st, "basic", &info), -ENOENT);
    return 0;
}

ENGINE_TEST(try_acquire_makes_one_attempt, 10)
{
    rs_lock *l;
    RS_CHECK_OK(new_lock(e, "try", LONG_TTL, false, &l));
    RS_CHECK_OK(rs_store_acquire(e->st, "try", RS_LOCK_EXCLUSIVE, "other", LONG_TTL, NULL));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_EQ(rs_lock_try_acquire(l, &g), -EBUSY);
    RS_CHECK(!rs_guard_held(&g));
    RS_CHECK_OK(rs_store_release(e->st, "try", RS_LOCK_EXCLUSIVE, "other"));
    RS_CHECK_OK(rs_lock_try_acquire(l, &g));
    RS_CHECK_EQ(rs_lock_try_acquire(l, &(rs_guard)RS_GUARD_INIT), -EDEADLK);
    RS_CHECK_OK(rs_guard_release(&g));
    return 0;
}

ENGINE_TEST(bad_options_are_einval, 10)
{
    rs_lock *l;
    char owner[300];
    memset(owner, 'o', sizeof owner - 1);
    owner[sizeof owner - 1] = '\0';
    RS_CHECK_EQ(rs_lock_new(NULL, &(rs_lock_opts){ .store = e->st }, &l), -EINVAL);
    RS_CHECK_EQ(rs_lock_new(NULL, &(rs_lock_opts){ .store = e->st, .key = "" }, &l), -EINVAL);
    RS_CHECK_EQ(rs_lock_new(NULL, &(rs_lock_opts){ .store = e->st, .key = "k", .ttl_ms = -1 }, &l), -EINVAL);
    RS_CHECK_EQ(rs_lock_new(NULL, &(rs_lock_opts){ .store = e->st, .key = "k", .owner = "" }, &l), -EINVAL);
    RS_CHECK_EQ(rs_lock_new(NULL, &(rs_lock_opts){ .store = e->st, .key = "k", .owner = owner }, &l), -EINVAL);
    RS_CHECK_OK(rs_lock_new(NULL, &(rs_lock_opts){ .store = e->st, .key = "k", .owner = "me" }, &l));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_EQ(rs_lock_read(l, NULL, &g), -EINVAL); /* not a read-write lock */
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
    RS_CHECK_EQ(rs_lock_acquire(l, NULL, &(rs_guard)RS_GUARD_INIT), -EDEADLK);
    RS_CHECK_EQ(rs_guard_extend(&g, 0), -EINVAL);
    rs_lock_info info;
    RS_CHECK_OK(rs_store_inspect(e->st, "k", &info));
    RS_CHECK(strcmp(info.owner, "me") == 0);
    RS_CHECK(info.ttl_left_ms > 25000); /* ttl 0: 30000 */
    return rs_guard_release(&g);
}

/* ------------------------------------------------------------ priority */

typedef struct prio_run {
    int order[8];
    int n;
} prio_run;

typedef struct prio_waiter {
    prio_run *run;
    rs_lock *l;
    int priority;
} prio_waiter;

static int prio_waiter_main(void *arg)
{
    prio_waiter *pw = arg;
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_acquire(pw->l, &(rs_acquire_opts){ .priority = pw->priority, .timeout_ms = 5000 }, &g));
    pw->run->order[pw->run->n++] = pw->priority;
    RS_CHECK_OK(rs_yield()); /* let the others see it held */
    return rs_guard_release(&g);
}

/* Waiters with priorities 1, 5, 3 queue on two lock objects of one key while
 * the key is held; they must be served 5, 3, 1. hold_locally: the holder is a
 * guard of this thread, else another owner through the store. */
static int priority_order(env *e, bool hold_locally)
{
    rs_lock *a, *b;
    RS_CHECK_OK(new_lock(e, "prio", LONG_TTL, false, &a));
    RS_CHECK_OK(new_lock(e, "prio", LONG_TTL, false, &b));
    rs_guard held = RS_GUARD_INIT;
    if (hold_locally)
        RS_CHECK_OK(rs_lock_acquire(a, NULL, &held));
    else
        RS_CHECK_OK(rs_store_acquire(e->st, "prio", RS_LOCK_EXCLUSIVE, "remote", LONG_TTL, NULL));
    prio_run run = { .n = 0 };
    prio_waiter w[3] = { { &run, a, 1 }, { &run, b, 5 }, { &run, a, 3 } };
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    for (int i = 0; i < 3; i++) {
        RS_CHECK_OK(rs_spawn(s, prio_waiter_main, &w[i], NULL, NULL));
        RS_CHECK_OK(wait_pending(w[i].l, pending_of(w[i].l) + 1));
    }
    RS_CHECK_OK(rs_sleep(30)); /* contenders go through a backoff round or two */
    RS_CHECK_EQ(run.n, 0);
    if (hold_locally)
        RS_CHECK_OK(rs_guard_release(&held));
    else
        RS_CHECK_OK(rs_store_release(e->st, "prio", RS_LOCK_EXCLUSIVE, "remote"));
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(run.n, 3);
    RS_CHECK_EQ(run.order[0], 5);
    RS_CHECK_EQ(run.order[1], 3);
    RS_CHECK_EQ(run.order[2], 1);
    return 0;
}

ENGINE_TEST(priority_order_behind_a_local_holder, 10)
{
    return priority_order(e, true);
}

ENGINE_TEST(priority_order_behind_a_remote_holder, 10)
{
    return priority_order(e, false);
}

/* ------------------------------------------------------------ leases */

ENGINE_TEST(lost_signal_when_force_released, 10)
{
    rs_lock *l;
    RS_CHECK_OK(new_lock(e, "lost", 300, false, &l));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
    uint64_t t1 = rs_guard_token(&g);
    RS_CHECK_OK(rs_store_force_release(e->st, "lost"));
    uint64_t t2;
    RS_CHECK_OK(rs_store_acquire(e->st, "lost", RS_LOCK_EXCLUSIVE, "thief", LONG_TTL, &t2));
    RS_CHECK(t2 > t1);
    int64_t t0 = rs_now_ms();
    RS_CHECK_OK(rs_signal_wait(rs_guard_lost(&g), 2000));
    int64_t took = rs_now_ms() - t0;
    RS_CHECK(took <= 100 + 150); /* one renewal period (ttl/3), plus scheduling slack on a busy machine */
    RS_CHECK_EQ(rs_signal_reason(rs_guard_lost(&g)), -ENOLCK);
    RS_CHECK(!rs_guard_held(&g));
    RS_CHECK_EQ(rs_guard_extend(&g, 1000), -ENOLCK);
    RS_CHECK_EQ(rs_guard_release(&g), -ENOLCK);
    /* the thief's lease is untouched, and never silently re-acquired by us */
    rs_lock_info info;
    RS_CHECK_OK(rs_store_inspect(e->st, "lost", &info));
    RS_CHECK(strcmp(info.owner, "thief") == 0);
    RS_CHECK_EQ(info.token, t2);
    RS_CHECK_OK(rs_store_release(e->st, "lost", RS_LOCK_EXCLUSIVE, "thief"));
    return 0;
}

ENGINE_TEST(renewal_keeps_a_short_lease_alive, 10)
{
    rs_lock *l;
    RS_CHECK_OK(new_lock(e, "renew", 300, false, &l));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
    for (int i = 0; i < 20; i++) { /* 2 s: almost seven lease lengths */
        RS_CHECK_OK(rs_sleep(100));
        RS_CHECK_EQ(rs_store_acquire(e->st, "renew", RS_LOCK_EXCLUSIVE, "other", 300, NULL), -EBUSY);
        RS_CHECK(rs_guard_held(&g));
    }
    RS_CHECK(!rs_signal_aborted(rs_guard_lost(&g)));
    RS_CHECK_OK(rs_guard_release(&g));
    rs_lock_info info;
    RS_CHECK_EQ(rs_store_inspect(e->st, "renew", &info), -ENOENT);
    return 0;
}

/* The worker's thread is blocked (it computes without suspending) past the
 * lease's end: no renewal went out in time, so the lease may have been
 * someone else's meanwhile. It is lost, never assumed held, even though the
 * store, which nobody else asked, would still take an extend. */
ENGINE_TEST(a_lease_whose_renewal_came_too_late_is_lost, 10)
{
    rs_lock *l;
    RS_CHECK_OK(new_lock(e, "late", 150, false, &l));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
    int64_t until = rs_now_ms() + 400;
    while (rs_now_ms() < until)
        ; /* no suspension, no checkpoint: the renewal timer cannot fire */
    RS_CHECK(!rs_guard_held(&g));
    RS_CHECK_EQ(rs_signal_reason(rs_guard_lost(&g)), -ENOLCK);
    RS_CHECK_EQ(rs_guard_extend(&g, 150), -ENOLCK);
    RS_CHECK_EQ(rs_guard_release(&g), -ENOLCK);
    return 0;
}

/* The shortest lease renews a third of a millisecond after its grant,
 * well before its end (in whole milliseconds its first renewal fell on its
 * end, too late every time). The schedule is read from the lease itself:
 * keeping a 1 ms lease alive also depends on the machine's wake-up delays. */
ENGINE_TEST(a_one_millisecond_lease_renews_before_its_end, 10)
{
    rs_lock *l;
    RS_CHECK_OK(new_lock(e, "ttl1", 1, false, &l));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
    const lease *ls = ((const rs__grant *)g.rs_private_grant)->data;
    RS_CHECK(rs__timer_armed(&ls->timer));
    RS_CHECK(ls->end_ns - rs__timer_deadline(&ls->timer) >= 600000); /* 2/3 ms ahead of the end */
    RS_CHECK_OK(rs_guard_release(&g));
    return 0;
}

ENGINE_TEST(no_renew_lets_the_lease_end, 10)
{
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(NULL, &(rs_lock_opts){ .store = e->st, .key = "norenew", .ttl_ms = 200, .no_renew = true },
                            &l));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
    RS_CHECK_OK(rs_sleep(350));
    RS_CHECK(!rs_guard_held(&g));
    RS_CHECK_OK(rs_store_acquire(e->st, "norenew", RS_LOCK_EXCLUSIVE, "other", LONG_TTL, NULL));
    RS_CHECK_EQ(rs_guard_release(&g), -ENOLCK);
    RS_CHECK_OK(rs_store_release(e->st, "norenew", RS_LOCK_EXCLUSIVE, "other"));
    return 0;
}

ENGINE_TEST(guard_extend_sets_the_lease_end, 10)
{
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(NULL, &(rs_lock_opts){ .store = e->st, .key = "ext", .ttl_ms = 200, .no_renew = true },
                            &l));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
    RS_CHECK_OK(rs_guard_extend(&g, 5000));
    rs_lock_info info;
    RS_CHECK_OK(rs_store_inspect(e->st, "ext", &info));
    RS_CHECK(info.ttl_left_ms > 4000);
    RS_CHECK_OK(rs_sleep(400)); /* past the first 200 ms */
    RS_CHECK(rs_guard_held(&g));
    RS_CHECK_EQ(rs_store_acquire(e->st, "ext", RS_LOCK_EXCLUSIVE, "other", 300, NULL), -EBUSY);
    RS_CHECK_OK(rs_store_force_release(e->st, "ext"));
    RS_CHECK_EQ(rs_guard_extend(&g, 5000), -ENOLCK);
    RS_CHECK(rs_signal_aborted(rs_guard_lost(&g)));
    RS_CHECK_EQ(rs_guard_release(&g), -ENOLCK);
    return 0;
}

ENGINE_TEST(extend_changes_the_renewal_length, 10)
{
    rs_lock *l;
    RS_CHECK_OK(new_lock(e, "relen", 300, false, &l));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
    RS_CHECK_OK(rs_guard_extend(&g, 3000));
    RS_CHECK_OK(rs_sleep(1100)); /* a renewal at 1 s must use 3000, not 300 */
    rs_lock_info info;
    RS_CHECK_OK(rs_store_inspect(e->st, "relen", &info));
    RS_CHECK(info.ttl_left_ms > 1000);
    return rs_guard_release(&g);
}

ENGINE_TEST(lost_lease_lets_the_next_local_waiter_in, 10)
{
    rs_lock *l;
    RS_CHECK_OK(new_lock(e, "handover", 300, false, &l));
    rs_guard g = RS_GUARD_INIT, g2 = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
    RS_CHECK_OK(rs_store_force_release(e->st, "handover"));
    /* this task cannot wait for itself; another task does */
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    RS_CHECK_OK(rs_signal_wait(rs_guard_lost(&g), 2000));
    RS_CHECK_OK(rs_lock_acquire(l, &(rs_acquire_opts){ .timeout_ms = 2000 }, &g2));
    RS_CHECK(rs_guard_token(&g2) > rs_guard_token(&g));
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(rs_guard_release(&g), -ENOLCK);
    RS_CHECK(rs_guard_held(&g2)); /* the old guard's release did not touch the new lease */
    return rs_guard_release(&g2);
}

/* ------------------------------------------------------------ waiters leaving */

typedef struct leaver {
    rs_lock *l;
    rs_lock_mode mode;
    int64_t timeout_ms;
    int rc;
    int64_t took_ms;
} leaver;

static int leaver_main(void *arg)
{
    leaver *lv = arg;
    rs_guard g = RS_GUARD_INIT;
    int64_t t0 = rs_now_ms();
    rs_acquire_opts o = { .timeout_ms = lv->timeout_ms };
    lv->rc = lv->mode == RS_LOCK_WRITE ? rs_lock_write(lv->l, &o, &g) : rs_lock_acquire(lv->l, &o, &g);
    lv->took_ms = rs_now_ms() - t0;
    if (lv->rc == 0)
        rs_guard_release(&g);
    return 0;
}

/* A writer waits behind a reader of another owner (so its attempts leave a
 * write intent), then leaves by cancellation or timeout: nothing may remain,
 * neither in the local queue nor in the store (no lease, no intent: a new
 * reader gets in at once). */
static int writer_leaves(env *e, bool cancel)
{
    rs_lock *rw;
    RS_CHECK_OK(new_lock(e, "leave", LONG_TTL, true, &rw));
    RS_CHECK_OK(rs_store_acquire(e->st, "leave", RS_LOCK_READ, "reader-1", LONG_TTL, NULL));
    leaver lv = { .l = rw, .mode = RS_LOCK_WRITE, .timeout_ms = cancel ? 3000 : 150, .rc = 1 };
    rs_task *t;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    RS_CHECK_OK(rs_spawn(s, leaver_main, &lv, NULL, &t));
    RS_CHECK_OK(wait_pending(rw, 1));
    RS_CHECK_OK(rs_sleep(50)); /* several attempts: the intent is in place */
    RS_CHECK_EQ(rs_store_acquire(e->st, "leave", RS_LOCK_READ, "reader-2", LONG_TTL, NULL), -EBUSY);
    if (cancel)
        rs_task_cancel(t);
    int rc;
    RS_CHECK_OK(rs_task_join(t, &rc));
    RS_CHECK_OK(rs_scope_close(s));
    if (cancel) {
        RS_CHECK_EQ(lv.rc, -ECANCELED);
    } else {
        RS_CHECK_EQ(lv.rc, -ETIMEDOUT);
        RS_CHECK(lv.took_ms >= 140 && lv.took_ms < 400);
    }
    RS_CHECK_EQ(pending_of(rw), 0);
    RS_CHECK_OK(rs_store_acquire(e->st, "leave", RS_LOCK_READ, "reader-2", LONG_TTL, NULL)); /* no intent left */
    rs_lock_info info;
    RS_CHECK_OK(rs_store_inspect(e->st, "leave", &info));
    RS_CHECK_EQ(info.holders, 2); /* the two readers, no writer */
    RS_CHECK_OK(rs_store_force_release(e->st, "leave"));
    /* and the lock object still works */
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_try_write(rw, &g));
    return rs_guard_release(&g);
}

ENGINE_TEST(cancelled_waiter_leaves_nothing, 10)
{
    return writer_leaves(e, true);
}

ENGINE_TEST(timed_out_waiter_leaves_nothing, 10)
{
    return writer_leaves(e, false);
}

ENGINE_TEST(cancelled_scope_before_the_call, 10)
{
    rs_lock *l;
    RS_CHECK_OK(new_lock(e, "precancel", LONG_TTL, false, &l));
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    rs_scope_cancel(s);
    rs_guard g = RS_GUARD_INIT;
    int rc = rs_lock_acquire(l, NULL, &g);
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(rc, -ECANCELED);
    rs_lock_info info;
    RS_CHECK_EQ(rs_store_inspect(e->st, "precancel", &info), -ENOENT);
    return 0;
}

/* ------------------------------------------------------------ read-write */

typedef struct rw_task {
    rs_lock *l;
    rs_lock_mode mode;
    int *log;
    int *n;
    int id;
} rw_task;

static int rw_task_main(void *arg)
{
    rw_task *rt = arg;
    rs_guard g = RS_GUARD_INIT;
    rs_acquire_opts o = { .timeout_ms = 5000 };
    RS_CHECK_OK(rt->mode == RS_LOCK_WRITE ? rs_lock_write(rt->l, &o, &g) : rs_lock_read(rt->l, &o, &g));
    rt->log[(*rt->n)++] = rt->id;
    RS_CHECK_OK(rs_sleep(20));
    return rs_guard_release(&g);
}

/* Three lock objects on one key through three handles (as three processes
 * would be): a reader holds, a writer queues, a later reader must wait for
 * the writer. */
ENGINE_TEST(waiting_writer_keeps_new_readers_out, 15)
{
    (void)e;
    rs_store *h1, *h2, *h3;
    rs_lock *r1, *w, *r2;
    RS_CHECK_OK(rs_store_open("memory:", &(rs_store_opts){ .key_prefix = "dlock-rw-shared:" }, &h1));
    RS_CHECK_OK(rs_store_open("memory:", &(rs_store_opts){ .key_prefix = "dlock-rw-shared:" }, &h2));
    RS_CHECK_OK(rs_store_open("memory:", &(rs_store_opts){ .key_prefix = "dlock-rw-shared:" }, &h3));
    rs_scope *objs;
    RS_CHECK_OK(rs_scope_open(NULL, &objs));
    RS_CHECK_OK(rs_lock_new(objs, &(rs_lock_opts){ .store = h1, .key = "rw", .allow_multiple_readers = true }, &r1));
    RS_CHECK_OK(rs_lock_new(objs, &(rs_lock_opts){ .store = h2, .key = "rw", .allow_multiple_readers = true }, &w));
    RS_CHECK_OK(rs_lock_new(objs, &(rs_lock_opts){ .store = h3, .key = "rw", .allow_multiple_readers = true }, &r2));

    rs_guard rg = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_read(r1, NULL, &rg));
    int log[4], n = 0;
    rw_task wt = { w, RS_LOCK_WRITE, log, &n, 1 }, rt = { r2, RS_LOCK_READ, log, &n, 2 };
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    RS_CHECK_OK(rs_spawn(s, rw_task_main, &wt, NULL, NULL));
    RS_CHECK_OK(wait_pending(w, 1));
    RS_CHECK_OK(rs_sleep(30));
    /* a new reader elsewhere cannot get in while the writer waits ... */
    rs_guard tg = RS_GUARD_INIT;
    RS_CHECK_EQ(rs_lock_try_read(r2, &tg), -EBUSY);
    RS_CHECK_OK(rs_spawn(s, rw_task_main, &rt, NULL, NULL));
    RS_CHECK_OK(wait_pending(r2, 1));
    RS_CHECK_OK(rs_sleep(30));
    RS_CHECK_EQ(n, 0);
    /* ... and the reader that holds keeps its lease (it may extend it) */
    RS_CHECK_OK(rs_guard_extend(&rg, LONG_TTL));
    RS_CHECK_OK(rs_guard_release(&rg));
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(n, 2);
    RS_CHECK_EQ(log[0], 1); /* the writer first */
    RS_CHECK_EQ(log[1], 2);
    RS_CHECK_OK(rs_scope_close(objs));
    RS_CHECK_OK(rs_store_close(h1));
    RS_CHECK_OK(rs_store_close(h2));
    RS_CHECK_OK(rs_store_close(h3));
    return 0;
}

typedef struct shared_reader {
    rs_lock *l;
    uint64_t token;
    rs_guard *g;
} shared_reader;

static int shared_reader_main(void *arg)
{
    shared_reader *sr = arg;
    RS_CHECK_OK(rs_lock_read(sr->l, NULL, sr->g));
    sr->token = rs_guard_token(sr->g);
    return 0;
}

ENGINE_TEST(tasks_sharing_a_lock_object_get_their_own_grants, 10)
{
    rs_lock *rw, *ex;
    RS_CHECK_OK(new_lock(e, "share", LONG_TTL, true, &rw));
    rs_guard g1 = RS_GUARD_INIT, g2 = RS_GUARD_INIT;
    shared_reader a = { rw, 0, &g1 }, b = { rw, 0, &g2 };
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    RS_CHECK_OK(rs_spawn(s, shared_reader_main, &a, NULL, NULL));
    RS_CHECK_OK(rs_spawn(s, shared_reader_main, &b, NULL, NULL));
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK(a.token && b.token && a.token != b.token);
    rs_lock_info info;
    RS_CHECK_OK(rs_store_inspect(e->st, "share", &info));
    RS_CHECK_EQ(info.holders, 2);
    rs_lock_stats st;
    RS_CHECK_OK(rs_lock_stats_get(rw, &st));
    RS_CHECK_EQ(st.readers, 2);
    RS_CHECK_OK(rs_guard_release(&g1));
    RS_CHECK_OK(rs_store_inspect(e->st, "share", &info));
    RS_CHECK_EQ(info.holders, 1); /* one release frees one grant */
    RS_CHECK_OK(rs_guard_release(&g2));

    /* exclusive: one grant at a time, each with a larger token */
    RS_CHECK_OK(new_lock(e, "share-x", LONG_TTL, false, &ex));
    uint64_t last = 0;
    for (int i = 0; i < 3; i++) {
        rs_guard g = RS_GUARD_INIT;
        RS_CHECK_OK(rs_lock_acquire(ex, NULL, &g));
        RS_CHECK(rs_guard_token(&g) > last);
        last = rs_guard_token(&g);
        RS_CHECK_OK(rs_guard_release(&g));
    }
    return 0;
}

/* Two lock objects given the same owner id (two handles in one process, or
 * two processes of one service) still hold separate read grants: their own
 * leases and tokens, and a writer stays out until both are released. */
ENGINE_TEST(read_grants_of_objects_sharing_an_owner_stay_apart, 10)
{
    rs_lock *a, *b, *w;
    rs_lock_opts o = { .store = e->st, .key = "same-owner", .ttl_ms = LONG_TTL, .allow_multiple_readers = true,
                       .owner = "svc" };
    RS_CHECK_OK(rs_lock_new(NULL, &o, &a));
    RS_CHECK_OK(rs_lock_new(NULL, &o, &b));
    RS_CHECK_OK(new_lock(e, "same-owner", LONG_TTL, true, &w));
    rs_guard ga = RS_GUARD_INIT, gb = RS_GUARD_INIT, gw = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_read(a, NULL, &ga));
    RS_CHECK_OK(rs_lock_read(b, NULL, &gb));
    RS_CHECK(rs_guard_token(&gb) > rs_guard_token(&ga));
    rs_lock_info info;
    RS_CHECK_OK(rs_store_inspect(e->st, "same-owner", &info));
    RS_CHECK_EQ(info.holders, 2);
    RS_CHECK_OK(rs_guard_release(&ga));
    RS_CHECK_OK(rs_store_inspect(e->st, "same-owner", &info));
    RS_CHECK_EQ(info.holders, 1);
    RS_CHECK_EQ(rs_lock_try_write(w, &gw), -EBUSY);
    RS_CHECK_OK(rs_guard_release(&gb));
    RS_CHECK_OK(rs_lock_try_write(w, &gw));
    RS_CHECK_OK(rs_guard_release(&gw));
    return 0;
}

/* A lease the engine gives up while the store still has it (here its
 * renewal timer cannot be re-armed: no memory) is lost for good. The next
 * acquire of the same lock object, the same owner to the store, must not
 * take that lease back as a same-owner refresh with its old token: it gets
 * a new grant with a larger token, and the old guard stays lost. */
ENGINE_TEST(a_lease_lost_while_the_store_keeps_it_is_not_taken_back, 10)
{
    rs_lock *l;
    RS_CHECK_OK(new_lock(e, "relost", 300, false, &l));
    rs_guard old = RS_GUARD_INIT, fresh = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &old));
    uint64_t t1 = rs_guard_token(&old);
    rs__worker_get()->timers.arm_refusals = 1; /* the re-arm after the first renewal */
    RS_CHECK_OK(rs_signal_wait(rs_guard_lost(&old), 0)); /* no limit of its own: that would arm a timer */
    RS_CHECK_EQ(rs_signal_reason(rs_guard_lost(&old)), -ENOLCK);
    rs_lock_info info;
    RS_CHECK_OK(rs_store_inspect(e->st, "relost", &info)); /* the store still has it */
    RS_CHECK_EQ(info.token, t1);
    RS_CHECK_OK(rs_lock_acquire(l, &(rs_acquire_opts){ .timeout_ms = 2000 }, &fresh));
    RS_CHECK(rs_guard_token(&fresh) > t1);
    RS_CHECK(!rs_guard_held(&old));
    RS_CHECK_OK(rs_store_inspect(e->st, "relost", &info));
    RS_CHECK_EQ(info.token, rs_guard_token(&fresh));
    RS_CHECK_EQ(info.holders, 1);
    RS_CHECK_EQ(rs_guard_release(&old), -ENOLCK);
    RS_CHECK(rs_guard_held(&fresh));
    RS_CHECK_OK(rs_guard_release(&fresh));
    RS_CHECK_EQ(rs_store_inspect(e->st, "relost", &info), -ENOENT);
    return 0;
}

/* ------------------------------------------------------------ objects and stores */

ENGINE_TEST(store_close_is_busy_while_locks_use_it, 10)
{
    (void)e;
    rs_store *h;
    RS_CHECK_OK(rs_store_open("memory:", &(rs_store_opts){ .key_prefix = "busy:" }, &h));
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(s, &(rs_lock_opts){ .store = h, .key = "k" }, &l));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
    RS_CHECK_EQ(rs_store_close(h), -EBUSY);
    RS_CHECK_OK(rs_guard_release(&g));
    RS_CHECK_EQ(rs_store_close(h), -EBUSY); /* the object still exists */
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_OK(rs_store_close(h));
    return 0;
}

/* A scope naming a store (its own, or inherited) keeps it open: closing it
 * then would leave rs_scope_acquire_lock with a freed handle. */
ENGINE_TEST(store_close_is_busy_while_a_scope_names_it, 10)
{
    (void)e;
    rs_store *h;
    RS_CHECK_OK(rs_store_open("memory:", &(rs_store_opts){ .key_prefix = "named:" }, &h));
    rs_scope *outer, *inner;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .store = h }, &outer));
    RS_CHECK_OK(rs_scope_open(NULL, &inner)); /* inherits h */
    RS_CHECK_EQ(rs_store_close(h), -EBUSY);
    RS_CHECK_OK(rs_scope_close(inner));
    RS_CHECK_EQ(rs_store_close(h), -EBUSY);
    RS_CHECK_OK(rs_scope_close(outer));
    RS_CHECK_OK(rs_store_close(h));
    return 0;
}

static int close_default_store(void *arg)
{
    rs_store *h = arg;
    RS_CHECK_EQ(rs_store_close(h), -EBUSY);
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_scope_acquire_lock(NULL, "still-there", 0, NULL, &g)); /* the handle is still usable */
    RS_CHECK_OK(rs_guard_release(&g));
    return 0;
}

/* The same for a runtime's default store, while the runtime runs. */
Test(dlock_engine, store_close_is_busy_while_a_runtime_names_it_as_default, .timeout = 10)
{
    rs_store *h;
    cr_assert_eq(rs_store_open("memory:", &(rs_store_opts){ .key_prefix = unique_prefix() }, &h), 0);
    cr_assert_eq(rs_run(close_default_store, h, &(rs_runtime_opts){ .store = h }), 0);
    cr_assert_eq(rs_store_close(h), 0);
}

typedef struct disposal {
    rs_lock *l;
    int rc;
} disposal;

static int disposal_waiter(void *arg)
{
    disposal *d = arg;
    rs_guard g = RS_GUARD_INIT;
    d->rc = rs_lock_acquire(d->l, NULL, &g);
    return 0;
}

ENGINE_TEST(disposal_cancels_waiters_and_releases_guards, 10)
{
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .keep_going = true }, &s));
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(s, &(rs_lock_opts){ .store = e->st, .key = "dispose", .ttl_ms = 300 }, &l));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
    disposal d = { l, 1 };
    RS_CHECK_OK(rs_spawn(s, disposal_waiter, &d, NULL, NULL));
    RS_CHECK_OK(wait_pending(l, 1));
    rs_scope_cancel(s);
    rs_scope_close(s);
    RS_CHECK_EQ(d.rc, -ECANCELED);
    RS_CHECK(!rs_guard_held(&g));
    RS_CHECK_EQ(rs_guard_release(&g), -EALREADY);
    rs_lock_info info;
    RS_CHECK_EQ(rs_store_inspect(e->st, "dispose", &info), -ENOENT);
    RS_CHECK_OK(rs_sleep(250)); /* no renewal of a disposed lease is left behind */
    return 0;
}

/* ------------------------------------------------------------ scope helper */

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks;
}

typedef struct excl_probe {
    const char *key;
    int rc;
} excl_probe;

static int scope_lock_probe(void *arg)
{
    excl_probe *p = arg;
    rs_guard g = RS_GUARD_INIT;
    p->rc = rs_scope_acquire_lock(NULL, p->key, 0, &(rs_acquire_opts){ .timeout_ms = 50 }, &g);
    if (p->rc == 0)
        rs_guard_release(&g);
    return 0;
}

ENGINE_TEST(scope_lock_uses_the_default_memory_store, 10)
{
    (void)e;
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_scope_acquire_lock(rs_current_scope(), "resource:123", 30000, NULL, &g));
    /* the built-in store: any "memory:" handle with the default prefix sees it */
    rs_store *def;
    RS_CHECK_OK(rs_store_open("memory:", NULL, &def));
    rs_lock_info info;
    RS_CHECK_OK(rs_store_inspect(def, "resource:123", &info));
    RS_CHECK_EQ(info.token, rs_guard_token(&g));
    /* another task of the process is kept out */
    excl_probe p = { "resource:123", 1 };
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    RS_CHECK_OK(rs_spawn(s, scope_lock_probe, &p, NULL, NULL));
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(p.rc, -ETIMEDOUT);
    RS_CHECK_EQ(rs_scope_acquire_lock(NULL, "resource:123", 0, NULL, &(rs_guard)RS_GUARD_INIT), -EDEADLK);
    RS_CHECK_OK(rs_guard_release(&g));
    RS_CHECK_EQ(rs_store_inspect(def, "resource:123", &info), -ENOENT);
    RS_CHECK_OK(rs_store_close(def));
    return 0;
}

ENGINE_TEST(scope_lock_loop_does_not_grow, 20)
{
    (void)e;
    rs_guard g = RS_GUARD_INIT;
    for (int i = 0; i < 1000; i++) { /* warm the pools */
        RS_CHECK_OK(rs_scope_acquire_lock(NULL, "loop", 0, NULL, &g));
        RS_CHECK_OK(rs_guard_release(&g));
    }
    size_t before = heap_in_use();
    for (int i = 0; i < 50000; i++) {
        char key[32];
        snprintf(key, sizeof key, "loop:%d", i % 7);
        RS_CHECK_OK(rs_scope_acquire_lock(NULL, key, 0, NULL, &g));
        RS_CHECK_OK(rs_guard_release(&g));
    }
    size_t after = heap_in_use();
    RS_CHECK(after <= before + 64 * 1024); /* a per-call leak would be megabytes */
    return 0;
}

ENGINE_TEST(scope_lock_released_when_the_scope_closes, 10)
{
    rs_store *own;
    RS_CHECK_OK(rs_store_open("memory:", &(rs_store_opts){ .key_prefix = "own-store:" }, &own));
    rs_scope *outer, *inner;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .store = own }, &outer));
    RS_CHECK_OK(rs_scope_open(NULL, &inner)); /* inherits own */
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_scope_acquire_lock(inner, "job", 0, NULL, &g));
    rs_lock_info info;
    RS_CHECK_OK(rs_store_inspect(own, "job", &info));
    RS_CHECK_EQ(rs_store_inspect(e->st, "job", &info), -ENOENT);
    RS_CHECK_OK(rs_scope_close(inner));
    RS_CHECK(!rs_guard_held(&g));
    RS_CHECK_EQ(rs_guard_release(&g), -EALREADY);
    RS_CHECK_EQ(rs_store_inspect(own, "job", &info), -ENOENT);
    RS_CHECK_OK(rs_scope_close(outer));
    RS_CHECK_OK(rs_store_close(own));
    RS_CHECK_EQ(rs_scope_acquire_lock(NULL, "", 0, NULL, &g), -EINVAL);
    RS_CHECK_EQ(rs_scope_acquire_lock(NULL, "k", -1, NULL, &g), -EINVAL);
    RS_CHECK_EQ(rs_scope_acquire_lock(NULL, "k", 0, NULL, NULL), -EINVAL);
    return 0;
}

static int runtime_store_main(void *arg)
{
    rs_store *st = arg;
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_scope_acquire_lock(NULL, "rt", 0, NULL, &g));
    rs_lock_info info;
    RS_CHECK_OK(rs_store_inspect(st, "rt", &info));
    RS_CHECK_EQ(info.token, rs_guard_token(&g));
    return rs_guard_release(&g);
}

Test(dlock_engine, scope_lock_uses_the_runtime_store, .timeout = 10)
{
    rs_store *st;
    cr_assert_eq(rs_store_open("memory:", &(rs_store_opts){ .key_prefix = "runtime-store:" }, &st), 0);
    int rc = rs_run(runtime_store_main, st, &(rs_runtime_opts){ .store = st });
    cr_assert_eq(rc, 0);
    cr_assert_eq(rs_store_close(st), 0);
}

Test(dlock_engine, scope_lock_outside_a_task_is_eperm, .timeout = 5)
{
    rs_guard g = RS_GUARD_INIT;
    cr_assert_eq(rs_scope_acquire_lock(NULL, "k", 0, NULL, &g), -EPERM);
}

/* ------------------------------------------------------------ runtimes in threads */

typedef struct xt {
    pthread_barrier_t held;
    int64_t waited_ms;
    uint64_t token_a, token_b;
} xt;

static int xt_holder(void *arg)
{
    xt *x = arg;
    rs_store *st;
    RS_CHECK_OK(rs_store_open("memory:", &(rs_store_opts){ .key_prefix = "xt:" }, &st));
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(s, &(rs_lock_opts){ .store = st, .key = "k" }, &l));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_acquire(l, NULL, &g));
    x->token_a = rs_guard_token(&g);
    pthread_barrier_wait(&x->held);
    RS_CHECK_OK(rs_sleep(200));
    RS_CHECK_OK(rs_guard_release(&g));
    RS_CHECK_OK(rs_scope_close(s));
    return rs_store_close(st);
}

static int xt_waiter(void *arg)
{
    xt *x = arg;
    rs_store *st;
    RS_CHECK_OK(rs_store_open("memory:", &(rs_store_opts){ .key_prefix = "xt:" }, &st));
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    rs_lock *l;
    RS_CHECK_OK(rs_lock_new(s, &(rs_lock_opts){ .store = st, .key = "k" }, &l));
    pthread_barrier_wait(&x->held);
    int64_t t0 = rs_now_ms();
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_acquire(l, &(rs_acquire_opts){ .timeout_ms = 5000 }, &g));
    x->waited_ms = rs_now_ms() - t0;
    x->token_b = rs_guard_token(&g);
    RS_CHECK_OK(rs_guard_release(&g));
    RS_CHECK_OK(rs_scope_close(s));
    return rs_store_close(st);
}

Test(dlock_engine, runtimes_in_two_threads_share_the_memory_store, .timeout = 10)
{
    xt x = { 0 };
    pthread_barrier_init(&x.held, NULL, 2);
    rs_test_run_two_threads(xt_holder, &x, xt_waiter, &x);
    pthread_barrier_destroy(&x.held);
    cr_assert_gt(x.token_b, x.token_a);
    /* held for 200 ms; the release pokes the waiting runtime at once (its
     * promptness is checked in store_memory.c; here only the bounds) */
    cr_assert(x.waited_ms >= 150 && x.waited_ms < 200 + 200 + 200, "waited %ld ms", (long)x.waited_ms);
}

/* ------------------------------------------------------------ writer intent across runtimes */

/* Runtime B: W1 holds the key for writing; W2, another lock object of B (its
 * own owner id), queues for it. Runtime A: a reader R queues after that.
 * Then W1 releases while its task keeps B's thread busy for 5 ms, and the
 * memory store wakes R at once: R must still find W2's write intent and let
 * W2 in first (a writer waiting anywhere keeps new readers out). */
typedef struct wi {
    rs_store *st;
    pthread_barrier_t step;
    _Atomic int order;     /* grants so far */
    int w2_place, r_place; /* 1-based order of the grants */
    rs_lock *w2_lock;
    rs_lock *r_lock;
} wi;

static rs_lock *wi_lock(wi *x)
{
    rs_lock *l = NULL;
    rs_lock_new(NULL, &(rs_lock_opts){ .store = x->st, .key = "wi", .allow_multiple_readers = true }, &l);
    return l;
}

static int wi_w2(void *arg)
{
    wi *x = arg;
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_write(x->w2_lock, &(rs_acquire_opts){ .timeout_ms = 5000 }, &g));
    x->w2_place = ++x->order;
    return rs_guard_release(&g);
}

static int wi_runtime_b(void *arg)
{
    wi *x = arg;
    rs_lock *l1 = wi_lock(x);
    RS_CHECK(l1 != NULL);
    rs_guard g1 = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_write(l1, NULL, &g1));
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    x->w2_lock = wi_lock(x);
    RS_CHECK(x->w2_lock != NULL);
    RS_CHECK_OK(rs_spawn(s, wi_w2, x, NULL, NULL));
    /* W2 queues and, contending at once, leaves its intent before it parks. */
    RS_CHECK_OK(wait_pending(x->w2_lock, 1));
    pthread_barrier_wait(&x->step); /* 1: A's reader may come */
    pthread_barrier_wait(&x->step); /* 2: it is queued in A */
    RS_CHECK_OK(rs_guard_release(&g1));
    int64_t until = rs_now_ms() + 5;
    while (rs_now_ms() < until)
        ; /* B's thread stays busy: W2 cannot try before R is woken */
    return rs_scope_close(s);
}

static int wi_reader(void *arg)
{
    wi *x = arg;
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_read(x->r_lock, &(rs_acquire_opts){ .timeout_ms = 5000 }, &g));
    x->r_place = ++x->order;
    return rs_guard_release(&g);
}

static int wi_runtime_a(void *arg)
{
    wi *x = arg;
    x->r_lock = wi_lock(x);
    RS_CHECK(x->r_lock != NULL);
    pthread_barrier_wait(&x->step); /* 1 */
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    RS_CHECK_OK(rs_spawn(s, wi_reader, x, NULL, NULL));
    rs_lock_stats st;
    do {
        RS_CHECK_OK(rs_yield());
        RS_CHECK_OK(rs_lock_stats_get(x->r_lock, &st));
    } while (st.pending == 0);
    pthread_barrier_wait(&x->step); /* 2 */
    return rs_scope_close(s);
}

Test(dlock_engine, a_writer_queued_behind_its_runtimes_writer_keeps_later_readers_out, .timeout = 20)
{
    wi x = { .order = 0 };
    cr_assert_eq(rs_store_open("memory:", &(rs_store_opts){ .key_prefix = unique_prefix() }, &x.st), 0);
    cr_assert_eq(pthread_barrier_init(&x.step, NULL, 2), 0);
    rs_test_run_two_threads(wi_runtime_b, &x, wi_runtime_a, &x);
    cr_expect_eq(x.w2_place, 1, "W2 was granted in place %d, the later reader in place %d", x.w2_place, x.r_place);
    cr_expect_eq(x.r_place, 2);
    pthread_barrier_destroy(&x.step);
    cr_assert_eq(rs_store_close(x.st), 0);
}

/* Takes l for writing (waiting for it) and gives it back. */
static int superseding_writer(void *arg)
{
    rs_lock *l = arg;
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_write(l, &(rs_acquire_opts){ .timeout_ms = 5000 }, &g));
    return rs_guard_release(&g);
}

/* A writer of another owner waits while W1 holds; the store's lease of W1 is
 * force-released before W1's renewal can tell. The waiter's grant proves W1
 * gone: W1 is lost at once (never two exclusive grants in one runtime), its
 * release does not touch the store, and a later grant under W1's owner id
 * is a lease of its own that W1 cannot renew or release. */
ENGINE_TEST(a_grant_to_another_owner_supersedes_a_taken_over_local_holder, 10)
{
    rs_lock_opts o = {
        .store = e->st, .key = "super", .ttl_ms = 600, .owner = "owner-a", .allow_multiple_readers = true
    };
    rs_lock *a1, *a2, *b;
    RS_CHECK_OK(rs_lock_new(NULL, &o, &a1));
    RS_CHECK_OK(rs_lock_new(NULL, &o, &a2));
    o.owner = "owner-b";
    RS_CHECK_OK(rs_lock_new(NULL, &o, &b));
    rs_guard w1 = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_write(a1, NULL, &w1));
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    RS_CHECK_OK(rs_spawn(s, superseding_writer, b, NULL, NULL));
    RS_CHECK_OK(wait_pending(b, 1));
    RS_CHECK_OK(rs_store_force_release(e->st, "super"));
    RS_CHECK_OK(rs_scope_close(s)); /* the waiter got the key and gave it back */
    RS_CHECK(!rs_guard_held(&w1));
    RS_CHECK_EQ(rs_signal_reason(rs_guard_lost(&w1)), -ENOLCK);
    rs_guard w3 = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_write(a2, &(rs_acquire_opts){ .timeout_ms = 1000 }, &w3));
    RS_CHECK_EQ(rs_guard_release(&w1), -ENOLCK);
    rs_lock_info info;
    RS_CHECK_OK(rs_store_inspect(e->st, "super", &info)); /* w3's lease is untouched */
    RS_CHECK_EQ(info.token, rs_guard_token(&w3));
    RS_CHECK_OK(rs_guard_release(&w3));
    return 0;
}

/* The same with local readers: a writer of another lock object contends
 * while they hold, and its grant after a force-release proves their read
 * leases gone too. */
ENGINE_TEST(a_write_grant_supersedes_taken_over_local_readers, 10)
{
    rs_lock_opts o = { .store = e->st, .key = "super-rw", .ttl_ms = 600, .allow_multiple_readers = true };
    rs_lock *r, *w;
    RS_CHECK_OK(rs_lock_new(NULL, &o, &r));
    RS_CHECK_OK(rs_lock_new(NULL, &o, &w));
    rs_guard r1 = RS_GUARD_INIT, r2 = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_read(r, NULL, &r1));
    RS_CHECK_OK(rs_lock_read(r, NULL, &r2));
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    RS_CHECK_OK(rs_spawn(s, superseding_writer, w, NULL, NULL));
    RS_CHECK_OK(wait_pending(w, 1));
    RS_CHECK_OK(rs_store_force_release(e->st, "super-rw"));
    RS_CHECK_OK(rs_scope_close(s)); /* the writer got the key and gave it back */
    RS_CHECK(!rs_guard_held(&r1) && !rs_guard_held(&r2));
    RS_CHECK_EQ(rs_signal_reason(rs_guard_lost(&r1)), -ENOLCK);
    RS_CHECK_EQ(rs_signal_reason(rs_guard_lost(&r2)), -ENOLCK);
    RS_CHECK_EQ(rs_guard_release(&r1), -ENOLCK);
    RS_CHECK_EQ(rs_guard_release(&r2), -ENOLCK);
    rs_lock_stats st;
    RS_CHECK_OK(rs_lock_stats_get(r, &st));
    RS_CHECK_EQ(st.readers, 0u);
    return 0;
}
