/* The in-memory lock against a reference model, in both modes (exclusive, and
 * read-write): seeded random steps, after each of which the model predicts
 * exactly who holds the lock, who waits, in what order the grants were made
 * (their fencing tokens increase in that order) and what every call returned.
 *
 * The steps: client tasks that acquire with a random priority (few values, so
 * that ties happen, and now and then INT_MIN or INT_MAX) and hold until the
 * test task tells them to release; the test task's own try and immediate
 * acquires; releases (twice, through a copy of the guard, by
 * rs_guard_cleanup, by RS_GUARD at block end); cancellation (of the task, or
 * of a scope the client opened) of queued clients, of holders, of clients
 * granted but not yet run (they still return success and hold) and of
 * clients that have not run at all (their acquire is a cancellation point,
 * their try is not); a waiter's own short timeout; re-acquires by an
 * exclusive holder (-EDEADLK); wrong-mode calls (-EINVAL);
 * rs_lock_stats_get. A second test closes the lock's scope while guards are
 * held and waiters queued, then uses a new lock (the same recycled object)
 * while the stale guards are still around.
 *
 * One worker schedules deterministically (FIFO; rs_yield queues the caller
 * at the tail), so a seed replays exactly: a failure names its seed and step.
 * After each step the test task yields until a whole round of the run queue
 * changed nothing (no client made progress), then compares. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "sync_support.h"

#define SEEDS        30
#define STEPS        400
#define MAX_CLIENTS  512 /* spawned in one round */
#define MAX_LIVE     10  /* queued or holding at once */
#define SLOTS        4   /* guards the test task holds itself */
#define MODEL_MAX    64
#define RC_PENDING   1     /* an acquire that has not returned */
#define REL_NOT_SEEN 2     /* a release whose result the client cannot see (RS_GUARD, rs_guard_cleanup) */
#define SKIP         1     /* a step that does not apply in this state */
#define LONG_TIMEOUT 60000 /* never expires within the test: only arms and disarms a timer */

/* ------------------------------------------------------------ the model */

/* A holder or waiter: who >= 0 is client `who`; who < 0 is the test task's
 * guard slot -1 - who (one task for every slot). */
typedef struct m_entry {
    int who;
    rs_lock_mode mode;
    int priority;
} m_entry;

typedef struct model {
    m_entry held[MODEL_MAX];
    int nheld;
    m_entry queue[MODEL_MAX]; /* priority descending, FIFO among equals */
    int nqueue;
    int granted[4 * MODEL_MAX]; /* who, in grant order, since the last check */
    int ngranted;
} model;

enum {
    M_GRANTED,
    M_QUEUED,
    M_BUSY,
    M_DEADLK
};

static bool m_compatible(const model *m, rs_lock_mode mode)
{
    for (int i = 0; i < m->nheld; i++)
        if (m->held[i].mode != RS_LOCK_READ)
            return false;
    return mode == RS_LOCK_READ || m->nheld == 0;
}

static bool m_holds_exclusively(const model *m, int who)
{
    for (int i = 0; i < m->nheld; i++) {
        int h = m->held[i].who;
        if (m->held[i].mode != RS_LOCK_READ && (h == who || (who < 0 && h < 0)))
            return true;
    }
    return false;
}

static void m_grant(model *m, m_entry e)
{
    m->held[m->nheld++] = e;
    m->granted[m->ngranted++] = e.who;
}

/* Grants the head while it is compatible: consecutive readers together, an
 * exclusive or write waiter alone. */
static void m_pump(model *m)
{
    while (m->nqueue > 0 && m_compatible(m, m->queue[0].mode)) {
        m_entry h = m->queue[0];
        memmove(&m->queue[0], &m->queue[1], (size_t)(m->nqueue - 1) * sizeof h);
        m->nqueue--;
        m_grant(m, h);
    }
}

/* A request by `who`: granted at once only if compatible with the holders
 * and ahead of every waiter (a try: nobody waits at all); else queued behind
 * every waiter of equal or higher priority (a try: busy). */
static int m_request(model *m, int who, rs_lock_mode mode, int priority, bool try_only)
{
    if (m_holds_exclusively(m, who))
        return M_DEADLK;
    bool ahead = m->nqueue == 0 || (!try_only && m->queue[0].priority < priority);
    if (ahead && m_compatible(m, mode)) {
        m_grant(m, (m_entry){ who, mode, priority });
        return M_GRANTED;
    }
    if (try_only)
        return M_BUSY;
    int at = m->nqueue;
    while (at > 0 && m->queue[at - 1].priority < priority)
        at--;
    memmove(&m->queue[at + 1], &m->queue[at], (size_t)(m->nqueue - at) * sizeof m->queue[0]);
    m->queue[at] = (m_entry){ who, mode, priority };
    m->nqueue++;
    return M_QUEUED;
}

static int m_find(const m_entry *v, int n, int who)
{
    for (int i = 0; i < n; i++)
        if (v[i].who == who)
            return i;
    return -1;
}

static void m_remove(m_entry *v, int *n, int i)
{
    memmove(&v[i], &v[i + 1], (size_t)(*n - i - 1) * sizeof v[0]);
    (*n)--;
}

/* A holder releases. */
static void m_release(model *m, int who)
{
    m_remove(m->held, &m->nheld, m_find(m->held, m->nheld, who));
    m_pump(m);
}

/* A waiter leaves without a grant (cancelled). */
static void m_leave(model *m, int who)
{
    m_remove(m->queue, &m->nqueue, m_find(m->queue, m->nqueue, who));
    m_pump(m);
}

/* ------------------------------------------------------------ clients */

enum {
    C_NEW,
    C_WAITING,
    C_HOLDING,
    C_DONE
};
enum {
    CMD_NONE,
    CMD_RELEASE,
    CMD_REACQUIRE
};
enum {
    REL_TWICE,
    REL_COPY,
    REL_CLEANUP,
    REL_BLOCK_END,
    REL_STYLES
};

typedef struct round round;

typedef struct client {
    round *r;
    int id;
    rs_lock_mode mode;
    bool wrong_mode; /* calls the other mode's function: -EINVAL */
    int priority;
    int64_t timeout_ms;
    bool null_opts; /* priority 0 and no timeout, asked with o == NULL */
    bool try_first; /* cancelled before it runs: tries first (not a cancellation point), releases at once */
    bool own_scope; /* acquires and holds inside a scope of its own, which is what gets cancelled */
    int style;      /* how it releases */
    rs_task *task;
    bool finished; /* checked done and joined */

    /* from the test task */
    int cmd;

    /* from the client */
    int state;
    rs_scope *scope; /* its own scope, once it runs */
    int close_rc;    /* what closing it returned */
    rs_guard *guard; /* while waiting or holding */
    int rc;          /* what the acquire returned, RC_PENDING before */
    bool held_at_return;
    uint64_t token;
    bool cancelled_holding; /* left its hold because it was cancelled */
    int rel[2];             /* the first release's result, then a second release's */
    bool held_after_release;
    uint64_t token_after_release;
    int try_rc; /* the try_first call's result */
    uint64_t try_token;
    int reacquired;    /* re-acquire commands served */
    int reacquire_bad; /* first re-acquire call that did not return -EDEADLK: its result, or 1 for 0 */

    /* what the model expects */
    int want_rc; /* RC_PENDING while undecided */
    bool want_cancel_exit;
    bool want_unheld; /* granted, but its lock was disposed before it ran */
    int want_rel0;
    int want_try_rc;
    int reacquire_sent;
} client;

typedef struct coverage {
    long try_ok, try_busy, deadlk, immediate, cancelled_waiters, cancelled_holders, granted_then_cancelled;
    long batch_grants, overtaking_readers, prio_over_fifo, timed_out, timeout_grants, scope_cancels, cancelled_tries;
    long disposed_waiters, disposed_holders, disposed_before_run, reused_after_disposal;
} coverage;

struct round {
    uint32_t seed;
    bool rw;
    bool dispose; /* the second test: close the lock's scope while it is busy */
    uint64_t rng;
    int step;
    char what[160];
    rs_scope *clients_scope, *lock_scope;
    rs_lock *lock;
    bool disposed;
    int release_rc;       /* what a release returns: 0, -EALREADY once the lock is disposed */
    unsigned long events; /* bumped by every client's progress */
    client c[MAX_CLIENTS];
    int nc;
    rs_guard slot[SLOTS];
    bool slot_used[SLOTS];
    uint64_t slot_token[SLOTS];
    uint64_t last_token;
    model m;
    coverage cov;
};

static int call_acquire(client *c, rs_guard *g)
{
    const rs_acquire_opts opts = { .priority = c->priority, .timeout_ms = c->timeout_ms };
    const rs_acquire_opts *o = c->null_opts ? NULL : &opts;
    rs_lock *l = c->r->lock;
    if (c->wrong_mode)
        return c->r->rw ? rs_lock_acquire(l, o, g) : rs_lock_read(l, o, g);
    switch (c->mode) {
    case RS_LOCK_READ: return rs_lock_read(l, o, g);
    case RS_LOCK_WRITE: return rs_lock_write(l, o, g);
    default: return rs_lock_acquire(l, o, g);
    }
}

/* An exclusive holder asks again, every way its mode allows: each -EDEADLK. */
static void reacquire(client *c)
{
    rs_lock *l = c->r->lock;
    const rs_acquire_opts o = { .priority = INT_MAX, .timeout_ms = LONG_TIMEOUT };
    rs_guard g = RS_GUARD_INIT;
    int rcs[4], n = 0;
    if (c->r->rw) {
        rcs[n++] = rs_lock_read(l, &o, &g);
        rcs[n++] = rs_lock_write(l, &o, &g);
        rcs[n++] = rs_lock_try_read(l, &g);
        rcs[n++] = rs_lock_try_write(l, &g);
    } else {
        rcs[n++] = rs_lock_acquire(l, &o, &g);
        rcs[n++] = rs_lock_try_acquire(l, &g);
    }
    for (int i = 0; i < n && !c->reacquire_bad; i++)
        if (rcs[i] != -EDEADLK)
            c->reacquire_bad = rcs[i] ? rcs[i] : 1;
    c->reacquired++;
}

/* Holds until the test task says release, serving its re-acquire commands;
 * a cancelled client lets go at once (rs_yield refuses to wait for it). */
static void hold(client *c)
{
    for (;;) {
        if (c->cmd == CMD_RELEASE)
            return;
        if (c->cmd == CMD_REACQUIRE) {
            reacquire(c);
            c->cmd = CMD_NONE;
            c->r->events++;
        } else if (rs_yield() != 0) {
            c->cancelled_holding = true;
            return;
        }
    }
}

/* Acquires into g and holds what it was granted; false if not granted. */
static bool acquire_and_hold(client *c, rs_guard *g)
{
    c->guard = g;
    c->state = C_WAITING;
    c->r->events++;
    c->rc = call_acquire(c, g);
    c->held_at_return = rs_guard_held(g);
    c->token = rs_guard_token(g);
    if (c->rc != 0)
        return false;
    c->state = C_HOLDING;
    c->r->events++;
    hold(c);
    return true;
}

static void note_released(client *c, const rs_guard *g)
{
    c->held_after_release = rs_guard_held(g);
    c->token_after_release = rs_guard_token(g);
}

static void acquire_hold_release(client *c)
{
    if (c->style == REL_BLOCK_END) {
        rs_guard copy = RS_GUARD_INIT;
        bool held;
        {
            RS_GUARD(g);
            held = acquire_and_hold(c, &g);
            copy = g; /* the same grant: reads as released once g's cleanup ran */
        }
        if (held) {
            c->rel[0] = REL_NOT_SEEN;
            c->rel[1] = rs_guard_release(&copy);
            note_released(c, &copy);
        }
    } else {
        rs_guard g = RS_GUARD_INIT;
        if (acquire_and_hold(c, &g)) {
            rs_guard copy = g;
            switch (c->style) {
            case REL_TWICE:
                c->rel[0] = rs_guard_release(&g);
                c->rel[1] = rs_guard_release(&g);
                break;
            case REL_COPY:
                c->rel[0] = rs_guard_release(&copy);
                c->rel[1] = rs_guard_release(&g);
                break;
            default:
                rs_guard_cleanup(&g);
                c->rel[0] = REL_NOT_SEEN;
                c->rel[1] = rs_guard_release(&copy);
                break;
            }
            note_released(c, &g);
        }
    }
}

static int try_call(rs_lock *l, bool rw, rs_lock_mode mode, rs_guard *g)
{
    if (!rw)
        return rs_lock_try_acquire(l, g);
    return mode == RS_LOCK_READ ? rs_lock_try_read(l, g) : rs_lock_try_write(l, g);
}

static int client_main(void *p)
{
    client *c = p;
    if (c->try_first) {
        rs_guard g = RS_GUARD_INIT;
        c->try_rc = try_call(c->r->lock, c->r->rw, c->mode, &g);
        c->try_token = rs_guard_token(&g);
        if (c->try_rc == 0 && rs_guard_release(&g) != 0)
            c->try_rc = INT_MIN; /* reported as a mismatch */
    }
    if (c->own_scope && (c->close_rc = rs_scope_open(NULL, &c->scope)) != 0)
        c->scope = NULL;
    acquire_hold_release(c);
    if (c->scope)
        c->close_rc = rs_scope_close(c->scope);
    c->guard = NULL;
    c->state = C_DONE;
    c->r->events++;
    return 0;
}

/* ------------------------------------------------------------ checking */

static const char *mode_name(rs_lock_mode m)
{
    return m == RS_LOCK_READ ? "R" : m == RS_LOCK_WRITE ? "W" : "X";
}

static void dump_entries(const char *title, const m_entry *v, int n)
{
    fprintf(stderr, "  %s:", title);
    for (int i = 0; i < n; i++) {
        if (v[i].who >= 0)
            fprintf(stderr, " c%d", v[i].who);
        else
            fprintf(stderr, " slot%d", -1 - v[i].who);
        fprintf(stderr, "/%s/p%d", mode_name(v[i].mode), v[i].priority);
    }
    fprintf(stderr, "\n");
}

static int model_fail(round *r, const char *what, int line)
{
    cr_expect_fail("%s lock, seed %u, step %d (%s): %s (line %d)", r->rw ? "read-write" : "exclusive", r->seed, r->step,
                   r->what, what, line);
    fprintf(stderr, "model after seed %u step %d:\n", r->seed, r->step);
    dump_entries("holders", r->m.held, r->m.nheld);
    dump_entries("queue  ", r->m.queue, r->m.nqueue);
    fprintf(stderr, "  clients not finished:");
    for (int i = 0; i < r->nc; i++)
        if (!r->c[i].finished)
            fprintf(stderr, " c%d/%s/p%d state %d rc %d", i, mode_name(r->c[i].mode), r->c[i].priority, r->c[i].state,
                    r->c[i].rc);
    fprintf(stderr, "\n");
    return -1;
}

#define MCHECK(r, cond)                                                                                                \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            return model_fail((r), #cond, __LINE__);                                                                   \
    } while (0)

#define MCHECK_EQ(r, actual, expected)                                                                                 \
    do {                                                                                                               \
        long long m_a_ = (long long)(actual), m_e_ = (long long)(expected);                                            \
        if (m_a_ != m_e_) {                                                                                            \
            char m_msg_[256];                                                                                          \
            snprintf(m_msg_, sizeof m_msg_, "%s == %s: %lld != %lld", #actual, #expected, m_a_, m_e_);                 \
            return model_fail((r), m_msg_, __LINE__);                                                                  \
        }                                                                                                              \
    } while (0)

/* A call that has reported its own failure. */
#define MCHECK_OK(call)                                                                                                \
    do {                                                                                                               \
        if ((call) != 0)                                                                                               \
            return -1;                                                                                                 \
    } while (0)

static int check_stats(round *r)
{
    if (r->disposed)
        return 0; /* the lock is gone */
    rs_lock_stats st;
    MCHECK_EQ(r, rs_lock_stats_get(r->lock, &st), 0);
    unsigned readers = 0;
    bool exclusive = false, writer = false;
    for (int i = 0; i < r->m.nheld; i++) {
        readers += r->m.held[i].mode == RS_LOCK_READ;
        exclusive |= r->m.held[i].mode != RS_LOCK_READ;
        writer |= r->m.held[i].mode == RS_LOCK_WRITE;
    }
    MCHECK_EQ(r, st.readers, readers);
    MCHECK_EQ(r, st.exclusive, exclusive);
    MCHECK_EQ(r, st.writer, writer);
    MCHECK_EQ(r, st.pending, r->m.nqueue);
    return 0;
}

/* The grants of this step, in the model's order, carry increasing tokens. */
static int check_tokens(round *r)
{
    for (int i = 0; i < r->m.ngranted; i++) {
        int who = r->m.granted[i];
        uint64_t token;
        if (who < 0) {
            token = r->slot_token[-1 - who];
        } else if (r->c[who].try_first) {
            token = r->c[who].try_token; /* its try, released at once */
        } else {
            token = r->c[who].token;
            r->c[who].want_rc = 0;
        }
        MCHECK(r, token > r->last_token);
        r->last_token = token;
    }
    r->m.ngranted = 0;
    return 0;
}

static int check_client(round *r, client *c)
{
    if (m_find(r->m.held, r->m.nheld, c->id) >= 0) {
        MCHECK_EQ(r, c->state, C_HOLDING);
        MCHECK_EQ(r, c->rc, 0);
        MCHECK_EQ(r, c->held_at_return, !c->want_unheld);
        MCHECK_EQ(r, rs_guard_held(c->guard), !r->disposed);
        MCHECK(r, c->token != 0);
        MCHECK_EQ(r, c->cmd, CMD_NONE);
        MCHECK_EQ(r, c->reacquired, c->reacquire_sent);
        MCHECK_EQ(r, c->reacquire_bad, 0);
        return 0;
    }
    if (m_find(r->m.queue, r->m.nqueue, c->id) >= 0) {
        MCHECK_EQ(r, c->state, C_WAITING);
        MCHECK_EQ(r, c->rc, RC_PENDING);
        MCHECK(r, !rs_guard_held(c->guard));
        return 0;
    }
    MCHECK_EQ(r, c->state, C_DONE);
    MCHECK_EQ(r, c->rc, c->want_rc);
    if (c->try_first)
        MCHECK_EQ(r, c->try_rc, c->want_try_rc);
    if (c->want_rc == 0) {
        MCHECK_EQ(r, c->held_at_return, !c->want_unheld);
        MCHECK(r, c->token != 0);
        MCHECK_EQ(r, c->cancelled_holding, c->want_cancel_exit);
        if (c->rel[0] != REL_NOT_SEEN)
            MCHECK_EQ(r, c->rel[0], c->want_rel0);
        MCHECK_EQ(r, c->rel[1], -EALREADY);
        MCHECK(r, !c->held_after_release);
        MCHECK_EQ(r, c->token_after_release, c->token);
        MCHECK_EQ(r, c->reacquire_bad, 0);
    } else {
        MCHECK(r, !c->held_at_return);
        MCHECK_EQ(r, c->token, 0); /* a failed acquire leaves the guard alone */
    }
    MCHECK_EQ(r, c->close_rc, 0); /* also after rs_scope_cancel of that scope itself */
    int result = -1;
    MCHECK_EQ(r, rs_task_join(c->task, &result), 0);
    MCHECK_EQ(r, result, 0);
    c->finished = true;
    return 0;
}

/* Everything the model predicts, once the runtime has settled. */
static int check_all(round *r)
{
    MCHECK_OK(check_tokens(r));
    for (int i = 0; i < r->nc; i++)
        if (!r->c[i].finished)
            MCHECK_OK(check_client(r, &r->c[i]));
    for (int k = 0; k < SLOTS; k++)
        MCHECK_EQ(r, rs_guard_held(&r->slot[k]), r->slot_used[k] && !r->disposed);
    return check_stats(r);
}

/* Yields until a whole round of the run queue changed nothing: every task
 * that was woken has run and is waiting, holding or done. */
static int settle(round *r)
{
    for (int i = 0; i < 100000; i++) {
        unsigned long before = r->events;
        MCHECK_EQ(r, rs_yield(), 0);
        if (r->events == before)
            return 0;
    }
    MCHECK(r, !"the runtime never settled");
    return -1;
}

/* ------------------------------------------------------------ steps */

static int rnd_below(round *r, int n)
{
    return rs_test_rand_below(&r->rng, n);
}

/* Few values, so that ties happen; now and then an extreme one. */
static int rnd_priority(round *r)
{
    static const int p[] = { 0, 0, 1, 2, -1, 0, 1, 0, 2, INT_MIN, 0, 1, 0, INT_MAX };
    return p[rnd_below(r, (int)(sizeof p / sizeof p[0]))];
}

static rs_lock_mode rnd_mode(round *r)
{
    if (!r->rw)
        return RS_LOCK_EXCLUSIVE;
    return rnd_below(r, 5) < 3 ? RS_LOCK_READ : RS_LOCK_WRITE;
}

static int live_clients(const round *r)
{
    return r->m.nqueue + r->m.nheld;
}

/* Counts a reader granted at once while someone waits (a higher priority
 * than every waiter's), after the model took the request. */
static void note_request(round *r, rs_lock_mode mode, int outcome)
{
    if (outcome == M_GRANTED && r->m.nqueue > 0 && mode == RS_LOCK_READ && r->m.nheld > 1)
        r->cov.overtaking_readers++;
}

/* Cancels client c: through its own scope if it has one, else the task. */
static void cancel_client(round *r, client *c)
{
    if (c->scope) {
        rs_scope_cancel(c->scope);
        r->cov.scope_cancels++;
    } else {
        rs_task_cancel(c->task);
    }
}

enum {
    SPAWN_PLAIN,
    SPAWN_CANCELLED,
    SPAWN_TIMED
};

static int act_spawn(round *r, int kind);

/* A timed client that had to queue, and half the time a plain client spawned
 * right behind it: nothing else changes while it waits, so its deadline is
 * what ends the wait (-ETIMEDOUT, never having held), and the waiters behind
 * it are granted if they now can be. (Should the deadline pass before the
 * second client asks, the outcome is the same: that client then finds the
 * queue without the first one, and is granted at once exactly when it would
 * have been granted at the head.) */
static int wait_for_expiry(round *r, client *c)
{
    char first[sizeof r->what], second[sizeof r->what];
    memcpy(first, r->what, sizeof first);
    int rc = rnd_below(r, 2) ? act_spawn(r, SPAWN_PLAIN) : SKIP;
    MCHECK(r, rc >= 0);
    if (rc == 0) {
        memcpy(second, r->what, sizeof second);
        snprintf(r->what, sizeof r->what, "%.70s, then %.70s", first, second);
    }
    MCHECK_OK(settle(r));
    int64_t until = rs_now_ms() + 10000;
    while (c->state != C_DONE && rs_now_ms() < until)
        MCHECK_EQ(r, rs_yield(), 0);
    MCHECK_EQ(r, c->state, C_DONE);
    c->want_rc = -ETIMEDOUT;
    r->cov.timed_out++;
    int from = r->m.ngranted;
    m_leave(&r->m, c->id);
    r->cov.timeout_grants += r->m.ngranted > from;
    return 0;
}

/* Spawns a client that asks for the lock in a random mode and priority;
 * SPAWN_CANCELLED: cancelled before it runs (-ECANCELED at once, the acquire
 * is a cancellation point); SPAWN_TIMED: with a deadline of a few ms. */
static int act_spawn(round *r, int kind)
{
    if (r->nc == MAX_CLIENTS || live_clients(r) >= MAX_LIVE)
        return SKIP;
    client *c = &r->c[r->nc];
    *c = (client){ .r = r, .id = r->nc, .rc = RC_PENDING, .want_rc = RC_PENDING };
    c->mode = rnd_mode(r);
    c->wrong_mode = kind == SPAWN_PLAIN && rnd_below(r, 25) == 0;
    c->priority = rnd_priority(r);
    if (kind == SPAWN_TIMED)
        c->timeout_ms = 1 + rnd_below(r, 3);
    else
        c->timeout_ms = rnd_below(r, 3) == 0 ? LONG_TIMEOUT : 0;
    c->null_opts = c->priority == 0 && c->timeout_ms == 0 && rnd_below(r, 2) == 0;
    c->own_scope = kind != SPAWN_CANCELLED && rnd_below(r, 4) == 0;
    c->style = rnd_below(r, REL_STYLES);
    snprintf(r->what, sizeof r->what, "spawn c%d %s p%d%s%s%s", c->id, mode_name(c->mode), c->priority,
             c->wrong_mode ? " in the wrong mode" : "", kind == SPAWN_CANCELLED ? ", cancelled before it runs" : "",
             kind == SPAWN_TIMED ? ", with a short timeout" : "");
    MCHECK_EQ(r, rs_spawn(r->clients_scope, client_main, c, NULL, &c->task), 0);
    r->nc++;
    if (c->wrong_mode) {
        c->want_rc = -EINVAL;
        return 0;
    }
    if (kind == SPAWN_CANCELLED) {
        rs_task_cancel(c->task);
        c->want_rc = -ECANCELED;
        c->try_first = rnd_below(r, 2);
        if (c->try_first) {
            static const int want[] = { [M_GRANTED] = 0, [M_BUSY] = -EBUSY };
            int outcome = m_request(&r->m, c->id, c->mode, c->priority, true);
            MCHECK(r, outcome == M_GRANTED || outcome == M_BUSY);
            c->want_try_rc = want[outcome];
            if (outcome == M_GRANTED) {
                r->cov.cancelled_tries++;
                m_release(&r->m, c->id);
            }
        }
        return 0;
    }
    bool ahead_of_equal = r->m.nqueue > 0 && r->m.queue[r->m.nqueue - 1].priority < c->priority;
    int outcome = m_request(&r->m, c->id, c->mode, c->priority, false);
    MCHECK(r, outcome == M_GRANTED || outcome == M_QUEUED);
    note_request(r, c->mode, outcome);
    if (outcome == M_QUEUED && ahead_of_equal)
        r->cov.prio_over_fifo++;
    if (outcome == M_QUEUED && kind == SPAWN_TIMED)
        return wait_for_expiry(r, c);
    return 0;
}

static int free_slot(round *r)
{
    int start = rnd_below(r, SLOTS);
    for (int i = 0; i < SLOTS; i++)
        if (!r->slot_used[(start + i) % SLOTS])
            return (start + i) % SLOTS;
    return -1;
}

static int blocking_call(round *r, rs_lock_mode mode, const rs_acquire_opts *o, rs_guard *g)
{
    switch (mode) {
    case RS_LOCK_READ: return rs_lock_read(r->lock, o, g);
    case RS_LOCK_WRITE: return rs_lock_write(r->lock, o, g);
    default: return rs_lock_acquire(r->lock, o, g);
    }
}

/* The outcome of a call by the test task into slot k: the guard is filled
 * exactly on success, and its token is new. */
static int took_slot(round *r, int k, int outcome, int rc)
{
    static const int want[] = { [M_GRANTED] = 0, [M_BUSY] = -EBUSY, [M_DEADLK] = -EDEADLK };
    MCHECK_EQ(r, rc, want[outcome]);
    if (rc == 0) {
        r->slot_used[k] = true;
        r->slot_token[k] = rs_guard_token(&r->slot[k]);
        MCHECK(r, rs_guard_held(&r->slot[k]));
    } else {
        MCHECK(r, !rs_guard_held(&r->slot[k]));
        MCHECK_EQ(r, rs_guard_token(&r->slot[k]), 0);
        r->cov.deadlk += rc == -EDEADLK;
    }
    return check_stats(r);
}

/* The test task tries in a random mode: granted exactly when compatible and
 * nobody is queued; -EDEADLK while it holds the lock exclusively. */
static int act_try(round *r)
{
    int k = free_slot(r);
    if (k < 0)
        return SKIP;
    rs_lock_mode mode = rnd_mode(r);
    snprintf(r->what, sizeof r->what, "try %s into slot%d", mode_name(mode), k);
    int outcome = m_request(&r->m, -1 - k, mode, 0, true);
    r->slot[k] = (rs_guard)RS_GUARD_INIT;
    int rc = try_call(r->lock, r->rw, mode, &r->slot[k]);
    r->cov.try_ok += rc == 0;
    r->cov.try_busy += rc == -EBUSY;
    return took_slot(r, k, outcome, rc);
}

/* The test task makes a blocking call that the model says does not wait:
 * granted at once (a priority above every waiter's) or -EDEADLK. */
static int act_acquire_now(round *r)
{
    int k = free_slot(r);
    if (k < 0)
        return SKIP;
    rs_lock_mode mode = rnd_mode(r);
    int priority = rnd_priority(r);
    model probe = r->m;
    int outcome = m_request(&probe, -1 - k, mode, priority, false);
    if (outcome == M_QUEUED && r->m.nqueue > 0 && r->m.queue[0].priority < INT_MAX) {
        priority = r->m.queue[0].priority + 1;
        probe = r->m;
        outcome = m_request(&probe, -1 - k, mode, priority, false);
    }
    if (outcome == M_QUEUED)
        return SKIP;
    snprintf(r->what, sizeof r->what, "acquire %s p%d into slot%d (no wait)", mode_name(mode), priority, k);
    r->m = probe;
    note_request(r, mode, outcome);
    r->cov.immediate += outcome == M_GRANTED;
    r->slot[k] = (rs_guard)RS_GUARD_INIT;
    /* A timeout so that a wrong wait fails the test instead of hanging it. */
    int rc = blocking_call(r, mode, &(rs_acquire_opts){ .priority = priority, .timeout_ms = 5000 }, &r->slot[k]);
    return took_slot(r, k, outcome, rc);
}

/* Right after a synchronous step granted clients (they have not run yet),
 * cancels none, the first or all of them: each still returns success and
 * holds, then lets go when it next runs (in grant order). */
static void cancel_some_granted(round *r, int from)
{
    int choice = rnd_below(r, 3);
    int cancelled[MODEL_MAX], n = 0;
    for (int i = from; i < r->m.ngranted && choice && n < MODEL_MAX; i++) {
        int who = r->m.granted[i];
        if (who < 0)
            continue;
        cancel_client(r, &r->c[who]);
        r->c[who].want_cancel_exit = true;
        r->c[who].want_rel0 = r->release_rc;
        cancelled[n++] = who;
        r->cov.granted_then_cancelled++;
        if (choice == 1)
            break;
    }
    for (int i = 0; i < n; i++)
        m_release(&r->m, cancelled[i]);
}

static void note_batch(round *r, int from)
{
    int readers = 0;
    for (int i = from; i < r->m.ngranted; i++)
        readers += r->m.granted[i] >= 0 && r->c[r->m.granted[i]].mode == RS_LOCK_READ;
    r->cov.batch_grants += readers > 1;
}

/* The test task releases its slot k, one of several ways; 0, then -EALREADY. */
static int release_slot(round *r, int k)
{
    rs_guard *g = &r->slot[k];
    rs_guard copy = *g;
    switch (rnd_below(r, 3)) {
    case 0:
        MCHECK_EQ(r, rs_guard_release(g), r->release_rc);
        MCHECK_EQ(r, rs_guard_release(g), -EALREADY);
        break;
    case 1:
        MCHECK_EQ(r, rs_guard_release(&copy), r->release_rc);
        MCHECK_EQ(r, rs_guard_release(g), -EALREADY);
        break;
    default:
        rs_guard_cleanup(g);
        MCHECK_EQ(r, rs_guard_release(&copy), -EALREADY);
        break;
    }
    MCHECK(r, !rs_guard_held(g) && !rs_guard_held(&copy));
    MCHECK_EQ(r, rs_guard_token(&copy), r->slot_token[k]);
    r->slot_used[k] = false;
    return 0;
}

/* Releases a random holder: a client is told to (it releases when it next
 * runs), a slot of the test task is released at once. */
static int act_release(round *r, bool slots_only)
{
    int candidates[MODEL_MAX], n = 0;
    for (int i = 0; i < r->m.nheld; i++)
        if (!slots_only || r->m.held[i].who < 0)
            candidates[n++] = r->m.held[i].who;
    if (n == 0)
        return SKIP;
    int who = candidates[rnd_below(r, n)];
    if (who >= 0) {
        client *c = &r->c[who];
        snprintf(r->what, sizeof r->what, "c%d releases", who);
        c->cmd = CMD_RELEASE;
        c->want_rel0 = r->release_rc;
        int from = r->m.ngranted;
        m_release(&r->m, who);
        note_batch(r, from);
        return 0;
    }
    int k = -1 - who;
    snprintf(r->what, sizeof r->what, "slot%d releases", k);
    MCHECK_OK(release_slot(r, k));
    int from = r->m.ngranted;
    m_release(&r->m, who);
    note_batch(r, from);
    MCHECK_OK(check_stats(r)); /* a release hands the lock on at once */
    cancel_some_granted(r, from);
    return 0;
}

/* Cancels a random queued client: it leaves at once with -ECANCELED, never
 * having held, and the waiters behind it are granted if they now can be. */
static int act_cancel_queued(round *r)
{
    if (r->m.nqueue == 0)
        return SKIP;
    int who = r->m.queue[rnd_below(r, r->m.nqueue)].who;
    snprintf(r->what, sizeof r->what, "cancel queued c%d", who);
    cancel_client(r, &r->c[who]);
    r->c[who].want_rc = -ECANCELED;
    r->cov.cancelled_waiters++;
    int from = r->m.ngranted;
    m_leave(&r->m, who);
    note_batch(r, from);
    MCHECK_OK(check_stats(r));
    cancel_some_granted(r, from);
    return 0;
}

static int random_client_holder(round *r, bool exclusive_only)
{
    int candidates[MODEL_MAX], n = 0;
    for (int i = 0; i < r->m.nheld; i++)
        if (r->m.held[i].who >= 0 && (!exclusive_only || r->m.held[i].mode != RS_LOCK_READ))
            candidates[n++] = r->m.held[i].who;
    return n ? candidates[rnd_below(r, n)] : -1;
}

/* Cancels a holding client: it lets go when it next runs. */
static int act_cancel_holder(round *r)
{
    int who = random_client_holder(r, false);
    if (who < 0)
        return SKIP;
    snprintf(r->what, sizeof r->what, "cancel holder c%d", who);
    cancel_client(r, &r->c[who]);
    r->c[who].want_cancel_exit = true;
    r->c[who].want_rel0 = r->release_rc;
    r->cov.cancelled_holders++;
    m_release(&r->m, who);
    return 0;
}

/* An exclusive or write holder asks again: -EDEADLK, nothing changes. */
static int act_reacquire(round *r)
{
    int who = random_client_holder(r, true);
    if (who < 0)
        return SKIP;
    snprintf(r->what, sizeof r->what, "c%d re-acquires", who);
    r->c[who].cmd = CMD_REACQUIRE;
    r->c[who].reacquire_sent++;
    r->cov.deadlk++;
    return 0;
}

/* Calls of the other mode, and a negative timeout: -EINVAL, guard untouched,
 * nothing changes (also while the test task holds the lock itself). */
static int act_wrong_mode(round *r)
{
    snprintf(r->what, sizeof r->what, "wrong-mode calls");
    rs_lock *l = r->lock;
    rs_guard g = RS_GUARD_INIT;
    const rs_acquire_opts o = { .priority = rnd_priority(r) };
    if (r->rw) {
        MCHECK_EQ(r, rs_lock_acquire(l, &o, &g), -EINVAL);
        MCHECK_EQ(r, rs_lock_try_acquire(l, &g), -EINVAL);
        MCHECK_EQ(r, rs_lock_write(l, &(rs_acquire_opts){ .timeout_ms = -1 }, &g), -EINVAL);
        MCHECK_EQ(r, rs_lock_read(l, &(rs_acquire_opts){ .timeout_ms = -1 }, &g), -EINVAL);
    } else {
        MCHECK_EQ(r, rs_lock_read(l, &o, &g), -EINVAL);
        MCHECK_EQ(r, rs_lock_write(l, &o, &g), -EINVAL);
        MCHECK_EQ(r, rs_lock_try_read(l, &g), -EINVAL);
        MCHECK_EQ(r, rs_lock_try_write(l, &g), -EINVAL);
        MCHECK_EQ(r, rs_lock_acquire(l, &(rs_acquire_opts){ .timeout_ms = -1 }, &g), -EINVAL);
    }
    MCHECK(r, !rs_guard_held(&g));
    return check_stats(r);
}

static int random_step(round *r)
{
    for (int tries = 0; tries < 50; tries++) {
        int x = rnd_below(r, 100), rc;
        if (x < 28)
            rc = act_spawn(r, SPAWN_PLAIN);
        else if (x < 30)
            rc = act_spawn(r, SPAWN_TIMED);
        else if (x < 33)
            rc = act_spawn(r, SPAWN_CANCELLED);
        else if (x < 43)
            rc = act_try(r);
        else if (x < 48)
            rc = act_acquire_now(r);
        else if (x < 63)
            rc = act_release(r, false);
        else if (x < 70)
            rc = act_release(r, true);
        else if (x < 80)
            rc = act_cancel_queued(r);
        else if (x < 85)
            rc = act_cancel_holder(r);
        else if (x < 92)
            rc = act_reacquire(r);
        else
            rc = act_wrong_mode(r);
        if (rc != SKIP)
            return rc;
    }
    snprintf(r->what, sizeof r->what, "stats only");
    return check_stats(r);
}

static int step_and_check(round *r, int (*step)(round *))
{
    r->step++;
    snprintf(r->what, sizeof r->what, "?");
    int rc = step(r);
    MCHECK(r, rc != SKIP); /* only steps that apply are asked for */
    MCHECK_OK(rc);
    MCHECK_OK(settle(r));
    return check_all(r);
}

static int release_any(round *r)
{
    return act_release(r, false);
}

/* ------------------------------------------------------------ rounds */

/* Random steps, then every holder releases until the lock is idle: nobody
 * waits forever, and the lock is free for a try afterwards. */
static int run_model(round *r)
{
    for (int i = 0; i < STEPS; i++)
        MCHECK_OK(step_and_check(r, random_step));
    for (int i = 0; i < 10 * MAX_CLIENTS && (r->m.nheld || r->m.nqueue); i++)
        MCHECK_OK(step_and_check(r, release_any));
    MCHECK(r, r->m.nheld == 0 && r->m.nqueue == 0);
    for (int i = 0; i < r->nc; i++)
        MCHECK(r, r->c[i].finished);
    rs_guard g = RS_GUARD_INIT;
    MCHECK_EQ(r, try_call(r->lock, r->rw, RS_LOCK_WRITE, &g), 0);
    MCHECK(r, rs_guard_token(&g) > r->last_token);
    MCHECK_EQ(r, rs_guard_release(&g), 0);
    return 0;
}

/* A slot of the test task whose release would grant a client, or -1. */
static int slot_release_grants(const round *r)
{
    for (int k = 0; k < SLOTS; k++) {
        if (!r->slot_used[k])
            continue;
        model probe = r->m;
        m_release(&probe, -1 - k);
        if (probe.ngranted > r->m.ngranted)
            return k;
    }
    return -1;
}

/* Closes the lock's scope while the lock is busy (release_first >= 0: right
 * after that slot's release granted clients, who have not run yet): waiters
 * return -ECANCELED, holders (also the ones granted but not yet run) find
 * their guards released, and every later release is -EALREADY. */
static int dispose_busy_lock(round *r, int release_first)
{
    r->step++;
    snprintf(r->what, sizeof r->what, "close the lock's scope%s",
             release_first >= 0 ? " right after a release granted clients" : "");
    if (release_first >= 0) {
        MCHECK_OK(release_slot(r, release_first));
        m_release(&r->m, -1 - release_first);
    }
    for (int i = 0; i < r->m.nheld; i++) {
        int who = r->m.held[i].who;
        if (who >= 0 && r->c[who].state == C_WAITING) {
            r->c[who].want_unheld = true;
            r->cov.disposed_before_run++;
        }
        r->cov.disposed_holders++;
    }
    for (int i = 0; i < r->m.nqueue; i++) {
        r->c[r->m.queue[i].who].want_rc = -ECANCELED;
        r->cov.disposed_waiters++;
    }
    r->m.nqueue = 0;
    rs_lock *old = r->lock;
    MCHECK_EQ(r, rs_scope_close(r->lock_scope), 0);
    r->lock_scope = NULL;
    r->lock = NULL;
    r->disposed = true;
    r->release_rc = -EALREADY;
    MCHECK_OK(settle(r));
    MCHECK_OK(check_all(r));

    /* A new lock, most likely the disposed one's recycled object (and
     * recycled grant records), granted again and again, more times than the
     * old one was: the stale guards never read as held (their generations
     * never come back), and their releases leave the new lock alone. */
    MCHECK_EQ(r, rs_scope_open(&(rs_scope_opts){ .name = "second lock" }, &r->lock_scope), 0);
    rs_lock *l;
    MCHECK_EQ(r, rs_lock_new(r->lock_scope, &(rs_lock_opts){ .allow_multiple_readers = r->rw }, &l), 0);
    r->cov.reused_after_disposal += l == old;
    rs_guard g = RS_GUARD_INIT;
    bool read = false;
    for (uint64_t i = 0; i <= r->last_token + 1; i++) {
        if (i > 0)
            MCHECK_EQ(r, rs_guard_release(&g), 0);
        read = r->rw && rnd_below(r, 2);
        MCHECK_EQ(r, try_call(l, r->rw, read ? RS_LOCK_READ : RS_LOCK_WRITE, &g), 0);
        MCHECK(r, rs_guard_held(&g));
        for (int j = 0; j < r->m.nheld; j++) {
            int who = r->m.held[j].who;
            MCHECK(r, !rs_guard_held(who >= 0 ? r->c[who].guard : &r->slot[-1 - who]));
        }
    }
    while (r->m.nheld > 0)
        MCHECK_OK(step_and_check(r, release_any));
    for (int i = 0; i < r->nc; i++)
        MCHECK(r, r->c[i].finished);
    rs_lock_stats st;
    MCHECK_EQ(r, rs_lock_stats_get(l, &st), 0);
    MCHECK(r, rs_guard_held(&g));
    MCHECK_EQ(r, st.readers, read);
    MCHECK_EQ(r, st.exclusive, !read);
    MCHECK_EQ(r, st.pending, 0);
    MCHECK_EQ(r, rs_guard_release(&g), 0);
    return 0;
}

/* Random steps, then the disposal; in half the rounds not before a release
 * by the test task would grant clients, who then run only after it. */
static int run_dispose(round *r)
{
    int steps = 10 + rnd_below(r, 140);
    for (int i = 0; i < steps; i++)
        MCHECK_OK(step_and_check(r, random_step));
    if (rnd_below(r, 2))
        return dispose_busy_lock(r, -1);
    for (int i = 0; i < STEPS && slot_release_grants(r) < 0; i++)
        MCHECK_OK(step_and_check(r, random_step));
    return dispose_busy_lock(r, slot_release_grants(r));
}

/* After a failed check: every client is cancelled and ends (a holder lets
 * go) before the lock is disposed, so that none uses it afterwards. The test
 * task itself stays uncancelled, to yield to them. */
static void abandon(round *r)
{
    for (int i = 0; i < r->nc; i++)
        if (!r->c[i].finished)
            rs_task_cancel(r->c[i].task);
    for (int spin = 0; spin < 100000; spin++) {
        bool all_done = true;
        for (int i = 0; i < r->nc; i++)
            all_done &= r->c[i].finished || r->c[i].state == C_DONE;
        if (all_done || rs_yield() != 0)
            return;
    }
}

static int round_main(void *arg)
{
    round *r = arg;
    r->rng = r->seed * 0x2545f4914f6cdd1dull + (r->rw ? 7 : 3) + (r->dispose ? 11 : 0);
    for (int k = 0; k < SLOTS; k++)
        r->slot[k] = (rs_guard)RS_GUARD_INIT;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .name = "clients" }, &r->clients_scope));
    int rc = rs_scope_open(&(rs_scope_opts){ .name = "lock" }, &r->lock_scope);
    if (rc == 0)
        rc = rs_lock_new(r->lock_scope, &(rs_lock_opts){ .allow_multiple_readers = r->rw }, &r->lock);
    if (rc == 0)
        rc = r->dispose ? run_dispose(r) : run_model(r);
    if (rc)
        abandon(r);
    if (r->lock_scope) {
        int close_rc = rs_scope_close(r->lock_scope);
        if (rc == 0)
            rc = close_rc;
    }
    int close_rc = rs_scope_close(r->clients_scope);
    if (rc == 0)
        rc = close_rc;
    return rc;
}

static void run_seeds(bool rw, bool dispose, coverage *total)
{
    *total = (coverage){ 0 };
    for (uint32_t seed = 1; seed <= SEEDS; seed++) {
        round *r = calloc(1, sizeof *r);
        cr_assert(r);
        r->seed = seed;
        r->rw = rw;
        r->dispose = dispose;
        int rc = rs_run(round_main, r, NULL);
        cr_assert_eq(rc, 0, "%s lock, seed %u: the round failed (%d)", rw ? "read-write" : "exclusive", seed, rc);
        long *sum = (long *)total;
        const long *add = (const long *)&r->cov;
        for (size_t i = 0; i < sizeof *total / sizeof(long); i++)
            sum[i] += add[i];
        free(r);
    }
}

/* The steps did happen: a model test whose interesting cases never occur
 * would pass whatever the lock did. */
static void check_coverage(const coverage *c, bool rw, bool dispose)
{
    cr_expect_gt(c->try_ok, 0);
    cr_expect_gt(c->try_busy, 0);
    cr_expect_gt(c->deadlk, 0);
    cr_expect_gt(c->immediate, 0);
    cr_expect_gt(c->cancelled_waiters, 0);
    cr_expect_gt(c->cancelled_holders, 0);
    cr_expect_gt(c->granted_then_cancelled, 0);
    cr_expect_gt(c->prio_over_fifo, 0);
    cr_expect_gt(c->timed_out, 0);
    cr_expect_gt(c->scope_cancels, 0);
    cr_expect_gt(c->cancelled_tries, 0);
    if (rw) {
        cr_expect_gt(c->batch_grants, 0);
        cr_expect_gt(c->overtaking_readers, 0);
        cr_expect_gt(c->timeout_grants, 0);
    }
    if (dispose) {
        cr_expect_gt(c->disposed_waiters, 0);
        cr_expect_gt(c->disposed_holders, 0);
        cr_expect_gt(c->disposed_before_run, 0);
        cr_expect_gt(c->reused_after_disposal, 0);
    }
}

Test(lock_model, exclusive_lock_matches_the_model, .timeout = 30)
{
    coverage c;
    run_seeds(false, false, &c);
    check_coverage(&c, false, false);
}

Test(lock_model, read_write_lock_matches_the_model, .timeout = 30)
{
    coverage c;
    run_seeds(true, false, &c);
    check_coverage(&c, true, false);
}

Test(lock_model, closing_the_scope_of_a_busy_lock, .timeout = 30)
{
    coverage c, d;
    run_seeds(false, true, &c);
    run_seeds(true, true, &d);
    check_coverage(&c, false, true);
    check_coverage(&d, true, true);
}
