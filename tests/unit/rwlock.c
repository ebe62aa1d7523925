/* The in-memory read-write lock: shared readers, one writer, strict queue
 * order (no writer starvation, higher-priority readers first), no barging,
 * batch grants of consecutive readers, self-deadlock and mode checks. */
#include "sync_support.h"

typedef struct rw_arg {
    rs_lock *lock;
    int id;
    bool write;
    int priority;
    int64_t timeout_ms;
    order_log *log;
    volatile bool *go; /* hold until *go (NULL: release at once) */
    int result;
    bool done;
} rw_arg;

static int rw_task(void *p)
{
    rw_arg *a = p;
    rs_guard g = RS_GUARD_INIT;
    rs_acquire_opts o = { .priority = a->priority, .timeout_ms = a->timeout_ms };
    a->result = a->write ? rs_lock_write(a->lock, &o, &g) : rs_lock_read(a->lock, &o, &g);
    if (a->result == 0) {
        if (a->log)
            order_add(a->log, a->id);
        /* bounded: at most about 5 s */
        for (int i = 0; a->go && !*a->go && i < 5000; i++)
            rs_sleep(1);
        RS_CHECK_OK(rs_guard_release(&g));
    }
    a->done = true;
    return 0;
}

static rs_lock *new_rw(void)
{
    rs_lock *l = NULL;
    if (rs_lock_new(NULL, &(rs_lock_opts){ .allow_multiple_readers = true }, &l) != 0)
        return NULL;
    return l;
}

/* A new read-write lock, which the calling task then holds through g in the
 * mode of acquire (rs_lock_read or rs_lock_write). */
static int new_held_rw(rs_lock **l, int (*acquire)(rs_lock *, const rs_acquire_opts *, rs_guard *), rs_guard *g)
{
    *l = new_rw();
    RS_CHECK(*l);
    return acquire(*l, NULL, g);
}

static int spawn_rw(rw_arg *a)
{
    return rs_spawn(rs_current_scope(), rw_task, a, NULL, NULL);
}

/* spawn_rw, then waits until the lock's queue holds `queued` waiters. */
static int spawn_rw_queued(rw_arg *a, unsigned queued)
{
    return spawn_queued(a->lock, rw_task, a, NULL, queued);
}

/* The test task holds the lock through held; a task asking for it in the
 * mode waiter_writes says queues and stays queued while other tasks run,
 * then gets the lock once held is released. */
static int check_waits_for_release(rs_lock *l, rs_guard *held, bool waiter_writes)
{
    rw_arg a = { .lock = l, .write = waiter_writes, .result = 1 };
    RS_CHECK_OK(spawn_rw_queued(&a, 1));
    for (int i = 0; i < 5; i++)
        RS_CHECK_OK(rs_yield());
    RS_CHECK(!a.done);
    RS_CHECK_OK(rs_guard_release(held));
    RS_YIELD_UNTIL(a.done);
    RS_CHECK_EQ(a.result, 0);
    return 0;
}

static int stats_of(rs_lock *l, rs_lock_stats *st)
{
    return rs_lock_stats_get(l, st);
}

/* ------------------------------------------------------------ sharing */

static int three_readers(void *arg)
{
    (void)arg;
    rs_lock *l = new_rw();
    RS_CHECK(l);
    volatile bool go = false;
    rw_arg r[3];
    for (int i = 0; i < 3; i++) {
        r[i] = (rw_arg){ .lock = l, .id = i, .go = &go, .result = 1 };
        RS_CHECK_OK(spawn_rw(&r[i]));
    }
    rs_lock_stats st = { 0 };
    RS_YIELD_UNTIL(stats_of(l, &st) == 0 && st.readers == 3);
    RS_CHECK(!st.writer && !st.exclusive && st.pending == 0);
    go = true;
    RS_YIELD_UNTIL(r[0].done && r[1].done && r[2].done);
    RS_CHECK_OK(stats_of(l, &st));
    RS_CHECK_EQ(st.readers, 0);
    return 0;
}

Test(rwlock, three_concurrent_readers, .timeout = 10)
{
    RS_RUN_OK(three_readers, NULL);
}

static int writer_blocks_reader(void *arg)
{
    (void)arg;
    rs_lock *l;
    RS_GUARD(w);
    RS_CHECK_OK(new_held_rw(&l, rs_lock_write, &w));
    rs_lock_stats st;
    RS_CHECK_OK(stats_of(l, &st));
    RS_CHECK(st.writer && st.exclusive && st.readers == 0);
    return check_waits_for_release(l, &w, false); /* a reader waits */
}

Test(rwlock, writer_blocks_readers, .timeout = 10)
{
    RS_RUN_OK(writer_blocks_reader, NULL);
}

static int reader_blocks_writer(void *arg)
{
    (void)arg;
    rs_lock *l;
    RS_GUARD(r);
    RS_CHECK_OK(new_held_rw(&l, rs_lock_read, &r));
    return check_waits_for_release(l, &r, true); /* a writer waits */
}

Test(rwlock, reader_blocks_writer, .timeout = 10)
{
    RS_RUN_OK(reader_blocks_writer, NULL);
}

/* ------------------------------------------------------------ try */

static int try_calls(void *arg)
{
    (void)arg;
    rs_lock *l = new_rw();
    RS_CHECK(l);
    rs_guard g = RS_GUARD_INIT, h = RS_GUARD_INIT;

    /* try_read fails while a writer holds it (held by another task here). */
    volatile bool go = false;
    rw_arg w = { .lock = l, .write = true, .go = &go, .result = 1 };
    RS_CHECK_OK(spawn_rw(&w));
    rs_lock_stats st = { 0 };
    RS_YIELD_UNTIL(stats_of(l, &st) == 0 && st.writer);
    RS_CHECK_EQ(rs_lock_try_read(l, &g), -EBUSY);
    RS_CHECK_EQ(rs_lock_try_write(l, &g), -EBUSY);
    go = true;
    RS_YIELD_UNTIL(w.done);

    /* try_write fails while a reader holds it; try_read still works then. */
    RS_CHECK_OK(rs_lock_try_read(l, &g));
    RS_CHECK_EQ(rs_lock_try_write(l, &h), -EBUSY);
    RS_CHECK_OK(rs_lock_try_read(l, &h));
    RS_CHECK_OK(stats_of(l, &st));
    RS_CHECK_EQ(st.readers, 2);
    RS_CHECK_OK(rs_guard_release(&h));

    /* try_read fails while any waiter is queued, even though readers could share. */
    rw_arg qw = { .lock = l, .write = true, .result = 1 };
    RS_CHECK_OK(spawn_rw_queued(&qw, 1));
    RS_CHECK_EQ(rs_lock_try_read(l, &h), -EBUSY);
    RS_CHECK_OK(rs_guard_release(&g));
    RS_YIELD_UNTIL(qw.done);
    RS_CHECK_EQ(qw.result, 0);

    /* Exclusive mode on a read-write lock is the wrong mode. */
    RS_CHECK_EQ(rs_lock_acquire(l, NULL, &g), -EINVAL);
    RS_CHECK_EQ(rs_lock_try_acquire(l, &g), -EINVAL);
    RS_CHECK_EQ(rs_lock_write(l, &(rs_acquire_opts){ .timeout_ms = -5 }, &g), -EINVAL);
    RS_CHECK_OK(rs_lock_try_write(l, &g));
    RS_CHECK_OK(stats_of(l, &st));
    RS_CHECK(st.writer && st.exclusive);
    RS_CHECK_OK(rs_guard_release(&g));
    return 0;
}

Test(rwlock, try_read_and_try_write_busy_cases, .timeout = 10)
{
    RS_RUN_OK(try_calls, NULL);
}

/* ------------------------------------------------------------ ordering */

static int writer_not_starved(void *arg)
{
    (void)arg;
    rs_lock *l;
    order_log log = { 0 };
    RS_GUARD(r0);
    RS_CHECK_OK(new_held_rw(&l, rs_lock_read, &r0));
    rw_arg w = { .lock = l, .id = 1, .write = true, .log = &log, .result = 1 };
    rw_arg r = { .lock = l, .id = 2, .log = &log, .result = 1 };
    RS_CHECK_OK(spawn_rw_queued(&w, 1));
    RS_CHECK_OK(spawn_rw_queued(&r, 2)); /* the later reader queues behind the writer */
    rs_lock_stats st;
    RS_CHECK_OK(stats_of(l, &st));
    RS_CHECK_EQ(st.readers, 1);
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_EQ(rs_lock_try_read(l, &g), -EBUSY);
    RS_CHECK_OK(rs_guard_release(&r0));
    RS_YIELD_UNTIL(w.done && r.done);
    RS_CHECK_EQ(log.len, 2);
    RS_CHECK_EQ(log.ids[0], 1);
    RS_CHECK_EQ(log.ids[1], 2);
    return 0;
}

Test(rwlock, queued_writer_keeps_later_readers_out, .timeout = 10)
{
    RS_RUN_OK(writer_not_starved, NULL);
}

static int high_priority_reader(void *arg)
{
    (void)arg;
    rs_lock *l;
    order_log log = { 0 };
    /* Readers hold, a writer waits: a reader of higher priority joins them at once. */
    RS_GUARD(r0);
    RS_CHECK_OK(new_held_rw(&l, rs_lock_read, &r0));
    rw_arg w = { .lock = l, .id = 1, .write = true, .log = &log, .result = 1 };
    RS_CHECK_OK(spawn_rw_queued(&w, 1));
    RS_GUARD(r1);
    RS_CHECK_OK(rs_lock_read(l, &(rs_acquire_opts){ .priority = 5 }, &r1));
    rs_lock_stats st;
    RS_CHECK_OK(stats_of(l, &st));
    RS_CHECK(st.readers == 2 && st.pending == 1);
    /* An equal-priority reader does not. */
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_EQ(rs_lock_read(l, &(rs_acquire_opts){ .timeout_ms = 5 }, &g), -ETIMEDOUT);
    RS_CHECK_OK(rs_guard_release(&r0));
    RS_CHECK_OK(rs_guard_release(&r1));
    RS_YIELD_UNTIL(w.done);

    /* A writer holds, a writer waits: a higher-priority reader goes before it. */
    log.len = 0;
    RS_GUARD(w0);
    RS_CHECK_OK(rs_lock_write(l, NULL, &w0));
    rw_arg w2 = { .lock = l, .id = 2, .write = true, .log = &log, .result = 1 };
    rw_arg r3 = { .lock = l, .id = 3, .priority = 5, .log = &log, .result = 1 };
    RS_CHECK_OK(spawn_rw_queued(&w2, 1));
    RS_CHECK_OK(spawn_rw_queued(&r3, 2));
    RS_CHECK_OK(rs_guard_release(&w0));
    RS_YIELD_UNTIL(w2.done && r3.done);
    RS_CHECK_EQ(log.ids[0], 3);
    RS_CHECK_EQ(log.ids[1], 2);
    return 0;
}

Test(rwlock, higher_priority_reader_goes_before_a_queued_writer, .timeout = 10)
{
    RS_RUN_OK(high_priority_reader, NULL);
}

static int batch_readers(void *arg)
{
    (void)arg;
    rs_lock *l;
    volatile bool go = false;
    RS_GUARD(w0);
    RS_CHECK_OK(new_held_rw(&l, rs_lock_write, &w0));
    rw_arg a[5];
    for (int i = 0; i < 5; i++) {
        a[i] = (rw_arg){ .lock = l, .id = i, .write = i == 3, .go = &go, .result = 1 };
        RS_CHECK_OK(spawn_rw_queued(&a[i], (unsigned)i + 1));
    }
    /* queue: R0 R1 R2 W3 R4 */
    RS_CHECK_OK(rs_guard_release(&w0));
    rs_lock_stats st;
    RS_CHECK_OK(stats_of(l, &st));
    RS_CHECK_EQ(st.readers, 3); /* granted together, at the release */
    RS_CHECK_EQ(st.pending, 2);
    go = true;
    RS_YIELD_UNTIL(a[0].done && a[1].done && a[2].done && a[3].done && a[4].done);
    for (int i = 0; i < 5; i++)
        RS_CHECK_EQ(a[i].result, 0);
    return 0;
}

Test(rwlock, consecutive_readers_at_the_head_are_granted_together, .timeout = 10)
{
    RS_RUN_OK(batch_readers, NULL);
}

static int leaving_writer_lets_readers_in(void *arg)
{
    (void)arg;
    rs_lock *l;
    RS_GUARD(r0);
    RS_CHECK_OK(new_held_rw(&l, rs_lock_read, &r0));
    rw_arg w = { .lock = l, .write = true, .timeout_ms = 20, .result = 1 };
    volatile bool go = false;
    rw_arg r = { .lock = l, .go = &go, .result = 1 };
    RS_CHECK_OK(spawn_rw_queued(&w, 1));
    RS_CHECK_OK(spawn_rw_queued(&r, 2));
    /* The writer at the head times out: the reader behind it joins the holder at once. */
    RS_CHECK_OK(rs_sleep(40));
    RS_CHECK(w.done);
    RS_CHECK_EQ(w.result, -ETIMEDOUT);
    rs_lock_stats st;
    RS_CHECK_OK(stats_of(l, &st));
    RS_CHECK_EQ(st.readers, 2);
    RS_CHECK_EQ(st.pending, 0);
    go = true;
    RS_YIELD_UNTIL(r.done);
    RS_CHECK_EQ(r.result, 0);
    return 0;
}

Test(rwlock, waiter_leaving_the_head_lets_the_next_ones_in, .timeout = 10)
{
    RS_RUN_OK(leaving_writer_lets_readers_in, NULL);
}

/* ------------------------------------------------------------ self-deadlock */

static int writer_self_deadlock(void *arg)
{
    (void)arg;
    rs_lock *l;
    RS_GUARD(w);
    RS_CHECK_OK(new_held_rw(&l, rs_lock_write, &w));
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_EQ(rs_lock_write(l, NULL, &g), -EDEADLK);
    RS_CHECK_EQ(rs_lock_read(l, NULL, &g), -EDEADLK);
    RS_CHECK_EQ(rs_lock_try_write(l, &g), -EDEADLK);
    RS_CHECK_EQ(rs_lock_try_read(l, &g), -EDEADLK);
    RS_CHECK_OK(rs_guard_release(&w));
    /* Recursive reading is not checked: with nobody queued it simply shares. */
    RS_GUARD(r1);
    RS_GUARD(r2);
    RS_CHECK_OK(rs_lock_read(l, NULL, &r1));
    RS_CHECK_OK(rs_lock_read(l, NULL, &r2));
    rs_lock_stats st;
    RS_CHECK_OK(stats_of(l, &st));
    RS_CHECK_EQ(st.readers, 2);
    return 0;
}

Test(rwlock, writer_reacquiring_is_edeadlk, .timeout = 10)
{
    RS_RUN_OK(writer_self_deadlock, NULL);
}
