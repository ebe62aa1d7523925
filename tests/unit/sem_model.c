/* The weighted semaphore against a reference model, in seeded random runs.
 *
 * Client tasks ask for random weights at a few distinct priorities (so ties
 * happen) and hold until the driver tells them to release; the driver task
 * also tries and acquires on its own, releases, cancels queued and holding
 * clients (also right after they were served, before they ran), lets queued
 * requests time out and passes bad arguments. The model replays every step
 * on a queue of its own (priority descending, FIFO among equals, served
 * strictly from the head, no barging) and, once the tasks have settled,
 * everything the test can see is compared with it: who holds, who waits, how
 * each client ended, the order of the grants and their tokens,
 * rs_sem_available, rs_sem_waiting and rs_sem_total. A run ends by releasing
 * everything, or by closing the semaphore's scope while it is in use.
 *
 * One worker runs ready tasks in FIFO order and rs_yield goes to the tail, so
 * a seed replays the same way every time. Timeouts are the one thing the
 * clock decides: a step with a short timeout waits for that deadline while
 * nothing else moves (or, for a deadline racing one arrival, asks the
 * arriving client which came first). A failure names its seed, its step and
 * the steps before it. */
#include "sync_support.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum {
    MAX_CLIENTS = 320,
    MAX_LIVE = 40,
    MAX_DRIVER_GUARDS = 6,
    MAX_GRANTS = 1024,
    TRACE_LEN = 8,
    DRIVER_ID = -1, /* the driver's own grants in the grant logs */
    LONG_TIMEOUT_MS = 600000,
    TOP_PRIORITY = 3, /* above every priority rnd_priority picks */
};

typedef enum {
    M_QUEUED,
    M_HOLDING,
    M_DONE
} model_state;

typedef struct sem_model sem_model;

/* How often each interesting case came up (reported, so that a change that
 * makes the runs miss them shows). */
typedef struct model_stats {
    long served_at_once, passed_queue, queued, served_later; /* passed_queue: at once past a queue */
    long held_back;                                          /* queued although it fitted */
    long cancelled_queued, cancelled_holding, cancelled_just_served, cancelled_unstarted;
    long timed_out, timeout_let_through, timeout_first, tries_ok, tries_busy, bad_arguments;
    long disposed_queued, disposed_holding, disposed_unseen; /* at the disposal */
} model_stats;

typedef struct client {
    sem_model *m;
    int id;
    int64_t n;
    int priority;
    int64_t timeout_ms;
    bool scoped;  /* releases by leaving an RS_GUARD block instead of rs_guard_release */
    bool no_opts; /* passes NULL options (priority 0, no timeout) */
    rs_task *task;
    bool go; /* set by the driver: release now */
    /* What the task saw. */
    bool started, returned, holding, done;
    bool saw_cancel;      /* its hold ended because a yield returned -ECANCELED */
    bool held_after;      /* rs_guard_held right after rs_sem_acquire returned */
    int64_t waiting_seen; /* rs_sem_waiting just before rs_sem_acquire */
    int result;           /* of rs_sem_acquire */
    int release_rc;       /* of rs_guard_release (not seen for an RS_GUARD block) */
    int again_rc;         /* of a second rs_guard_release of the same guard */
    int copy_rc;          /* of releasing a copy of the guard taken while held */
    rs_guard copy;
    /* What the model expects. */
    model_state st;
    int expect;             /* rs_sem_acquire's result */
    int64_t expect_waiting; /* rs_sem_waiting just before rs_sem_acquire */
    int expect_release;     /* 0, or -EALREADY once the semaphore was disposed */
    bool cancelled;         /* rs_task_cancel was called on it */
    bool told;              /* go was set */
    bool disposed_unseen;   /* granted, but the semaphore was disposed before the task ran */
} client;

struct sem_model {
    uint64_t rng;
    unsigned seed;
    int step;
    rs_sem *sem;
    rs_scope *clients; /* the scope the clients run in */
    int64_t total;
    int64_t avail; /* the model's */
    client c[MAX_CLIENTS];
    int nclients;
    int queue[MAX_CLIENTS]; /* the model's queue: client ids, head first */
    int qlen;
    rs_guard dg[MAX_DRIVER_GUARDS]; /* the driver's own grants */
    int64_t dn[MAX_DRIVER_GUARDS];
    int ndg;
    int want[MAX_GRANTS]; /* grants in the order the model makes them */
    int nwant;
    int seen[MAX_GRANTS]; /* grants in the order the tasks saw them */
    uint64_t seen_token[MAX_GRANTS];
    int nseen;
    int arriving;    /* the client the model is queueing (-1: none) */
    int64_t in_use;  /* permits held, as the holders count them */
    bool over;       /* in_use exceeded total at some moment */
    uint64_t events; /* bumped by every change a client makes */
    model_stats stats;
    char trace[TRACE_LEN][160];
};

/* ------------------------------------------------------------ randomness */

static int below(sem_model *m, int k)
{
    return rs_test_rand_below(&m->rng, k);
}

static int64_t rnd_weight(sem_model *m)
{
    /* Small requests mostly, the whole semaphore now and then. */
    return below(m, 5) == 0 ? m->total : 1 + below(m, (int)m->total);
}

static int rnd_priority(sem_model *m)
{
    static const int prios[] = { 0, 0, 1, 2, -1 };
    return prios[below(m, (int)(sizeof prios / sizeof prios[0]))];
}

static void trace(sem_model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void trace(sem_model *m, const char *fmt, ...)
{
    char *line = m->trace[m->step % TRACE_LEN];
    int len = snprintf(line, sizeof m->trace[0], "step %d: ", m->step);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + len, sizeof m->trace[0] - (size_t)len, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ clients */

static void log_seen(sem_model *m, int id, const rs_guard *g, int64_t n)
{
    if (m->nseen < MAX_GRANTS) {
        m->seen[m->nseen] = id;
        m->seen_token[m->nseen] = rs_guard_token(g);
        m->nseen++;
    }
    m->in_use += n;
    if (m->in_use > m->total)
        m->over = true;
}

static void client_returned(client *c, int rc, rs_guard *g)
{
    c->result = rc;
    c->returned = true;
    c->held_after = rs_guard_held(g);
    c->m->events++;
    if (rc == 0) {
        c->holding = true;
        c->copy = *g;
        log_seen(c->m, c->id, g, c->n);
    }
}

/* Holds until told to release. A cancelled task cannot wait any more (every
 * yield returns -ECANCELED at once): it releases at once. */
static void client_hold(client *c)
{
    while (!c->go) {
        if (rs_yield() != 0) {
            c->saw_cancel = true;
            break;
        }
    }
}

static void client_released(client *c)
{
    c->holding = false;
    c->m->in_use -= c->n;
    c->copy_rc = rs_guard_release(&c->copy);
}

static int client_task(void *p)
{
    client *c = p;
    sem_model *m = c->m;
    const rs_acquire_opts opts = { .timeout_ms = c->timeout_ms, .priority = c->priority };
    const rs_acquire_opts *o = c->no_opts ? NULL : &opts;
    c->started = true;
    c->waiting_seen = rs_sem_waiting(m->sem);
    m->events++;
    if (c->scoped) {
        {
            RS_GUARD(g);
            client_returned(c, rs_sem_acquire(m->sem, c->n, o, &g), &g);
            if (c->result == 0)
                client_hold(c);
        }
        if (c->result == 0) {
            c->again_rc = -EALREADY;
            client_released(c);
        }
    } else {
        rs_guard g = RS_GUARD_INIT;
        client_returned(c, rs_sem_acquire(m->sem, c->n, o, &g), &g);
        if (c->result == 0) {
            client_hold(c);
            c->release_rc = rs_guard_release(&g);
            c->again_rc = rs_guard_release(&g);
            client_released(c);
        }
    }
    c->done = true;
    m->events++;
    return 0;
}

/* A new client (not spawned yet). timeout_ms 0: none, or now and then one
 * that never expires while the test runs (its timer is armed all the same). */
static client *client_new(sem_model *m, int64_t n, int priority, int64_t timeout_ms)
{
    client *c = &m->c[m->nclients];
    if (timeout_ms == 0 && below(m, 4) == 0)
        timeout_ms = LONG_TIMEOUT_MS;
    *c = (client){ .m = m, .id = m->nclients, .n = n, .priority = priority, .timeout_ms = timeout_ms };
    c->scoped = below(m, 2) == 0;
    c->st = M_DONE;
    c->expect_waiting = m->qlen;
    c->no_opts = priority == 0 && timeout_ms == 0 && below(m, 2) == 0;
    m->nclients++;
    return c;
}

/* ------------------------------------------------------------ the model */

static void model_insert(sem_model *m, client *c)
{
    int i = m->qlen;
    while (i > 0 && m->c[m->queue[i - 1]].priority < c->priority)
        i--;
    memmove(&m->queue[i + 1], &m->queue[i], (size_t)(m->qlen - i) * sizeof m->queue[0]);
    m->queue[i] = c->id;
    m->qlen++;
    c->st = M_QUEUED;
}

static void model_remove(sem_model *m, const client *c)
{
    int i = 0;
    while (m->queue[i] != c->id)
        i++;
    memmove(&m->queue[i], &m->queue[i + 1], (size_t)(m->qlen - i - 1) * sizeof m->queue[0]);
    m->qlen--;
}

static void log_want(sem_model *m, int id)
{
    if (m->nwant < MAX_GRANTS)
        m->want[m->nwant++] = id;
}

/* Grants from the head of the queue while the head fits. */
static void model_pump(sem_model *m)
{
    while (m->qlen > 0 && m->c[m->queue[0]].n <= m->avail) {
        client *c = &m->c[m->queue[0]];
        model_remove(m, c);
        m->avail -= c->n;
        c->st = M_HOLDING;
        c->expect = 0;
        c->expect_release = 0;
        log_want(m, c->id);
        if (c->id != m->arriving)
            m->stats.served_later++;
    }
}

/* A request arrives: queued in its place, then served if it is the head and fits. */
static void model_arrive(sem_model *m, client *c)
{
    bool fits = c->n <= m->avail, queue = m->qlen > 0;
    c->expect_waiting = m->qlen;
    m->arriving = c->id;
    model_insert(m, c);
    model_pump(m);
    m->arriving = -1;
    if (c->st == M_HOLDING) {
        m->stats.served_at_once++;
        m->stats.passed_queue += queue;
    } else {
        m->stats.queued++;
        m->stats.held_back += fits;
    }
}

/* A waiter leaves without a grant (cancelled or timed out). */
static void model_leave(sem_model *m, client *c, int result)
{
    model_remove(m, c);
    c->st = M_DONE;
    c->expect = result;
    model_pump(m);
}

/* What the tasks do once they run: holders told to release, and holders that
 * were cancelled, give their permits back, and the queue is served. */
static void model_settle(sem_model *m)
{
    for (bool again = true; again;) {
        again = false;
        for (int i = 0; i < m->nclients; i++) {
            client *c = &m->c[i];
            if (c->st == M_HOLDING && (c->told || c->cancelled)) {
                c->st = M_DONE;
                m->avail += c->n;
                model_pump(m);
                again = true;
            }
        }
    }
}

static bool model_would_grant_now(const sem_model *m, int64_t n, int priority)
{
    return n <= m->avail && (m->qlen == 0 || m->c[m->queue[0]].priority < priority);
}

static int live_clients(const sem_model *m)
{
    int live = 0;
    for (int i = 0; i < m->nclients; i++)
        live += m->c[i].st != M_DONE;
    return live;
}

/* A random client in state st (NULL: none). */
static client *pick(sem_model *m, model_state st)
{
    int count = 0;
    for (int i = 0; i < m->nclients; i++)
        count += m->c[i].st == st && !m->c[i].told && !m->c[i].cancelled;
    if (count == 0)
        return NULL;
    int k = below(m, count);
    for (int i = 0; i < m->nclients; i++)
        if (m->c[i].st == st && !m->c[i].told && !m->c[i].cancelled && k-- == 0)
            return &m->c[i];
    return NULL;
}

/* ------------------------------------------------------------ checks */

/* Yields until no client changed anything for three yields in a row (one
 * yield lets every ready task run once; a task woken meanwhile runs at the
 * next); bounded. */
static int settle(sem_model *m)
{
    int quiet = 0;
    for (int i = 0; i < 5000 && quiet < 3; i++) {
        uint64_t before = m->events;
        RS_CHECK_OK(rs_yield());
        quiet = m->events == before ? quiet + 1 : 0;
    }
    RS_CHECK(quiet >= 3);
    return 0;
}

/* The counters, right after a call of the driver: hand-offs are synchronous. */
static int check_counts(sem_model *m)
{
    RS_CHECK_EQ(rs_sem_total(m->sem), m->total);
    RS_CHECK_EQ(rs_sem_available(m->sem), m->avail);
    RS_CHECK_EQ(rs_sem_waiting(m->sem), m->qlen);
    return 0;
}

static int check_client(const client *c)
{
    switch (c->st) {
    case M_QUEUED:
        RS_CHECK(c->started);
        RS_CHECK_EQ(c->waiting_seen, c->expect_waiting);
        RS_CHECK(!c->returned);
        break;
    case M_HOLDING:
        RS_CHECK_EQ(c->waiting_seen, c->expect_waiting);
        RS_CHECK(c->returned);
        RS_CHECK_EQ(c->result, 0);
        RS_CHECK(c->held_after);
        RS_CHECK(c->holding);
        RS_CHECK(!c->done);
        RS_CHECK(rs_guard_held(&c->copy));
        break;
    case M_DONE:
        RS_CHECK_EQ(c->waiting_seen, c->expect_waiting);
        RS_CHECK(c->done);
        RS_CHECK(!c->holding);
        RS_CHECK_EQ(c->result, c->expect);
        RS_CHECK_EQ(c->held_after, c->expect == 0 && !c->disposed_unseen);
        RS_CHECK(!rs_guard_held(&c->copy));
        if (c->expect == 0) {
            if (!c->scoped)
                RS_CHECK_EQ(c->release_rc, c->expect_release);
            RS_CHECK_EQ(c->again_rc, -EALREADY);
            RS_CHECK_EQ(c->copy_rc, -EALREADY);
            /* Cancelled while granted: the grant stands, and the hold ends. */
            RS_CHECK_EQ(c->saw_cancel, c->cancelled && !c->told);
        }
        break;
    }
    return 0;
}

static int check_clients(const sem_model *m)
{
    for (int i = 0; i < m->nclients; i++) {
        const client *c = &m->c[i];
        int rc = check_client(c);
        if (rc) {
            cr_log_error("seed %u step %d: client %d (n %lld, priority %d, %s) does not match the model", m->seed,
                         m->step, c->id, (long long)c->n, c->priority, c->scoped ? "RS_GUARD" : "explicit");
            return rc;
        }
    }
    return 0;
}

/* Everything after the tasks settled. */
static int check_all(sem_model *m)
{
    RS_CHECK(!m->over);
    RS_CHECK_OK(check_counts(m));
    RS_CHECK(m->avail >= 0 && m->avail <= m->total);
    int64_t held = 0;
    for (int k = 0; k < m->ndg; k++) {
        RS_CHECK(rs_guard_held(&m->dg[k]));
        held += m->dn[k];
    }
    RS_CHECK_OK(check_clients(m));
    for (int i = 0; i < m->nclients; i++)
        if (m->c[i].st == M_HOLDING)
            held += m->c[i].n;
    /* The model's books and the holders' own count both balance. */
    RS_CHECK_EQ(held + m->avail, m->total);
    RS_CHECK_EQ(m->in_use + rs_sem_available(m->sem), m->total);
    /* Grants in the model's order, with increasing tokens. */
    RS_CHECK_EQ(m->nseen, m->nwant);
    for (int i = 0; i < m->nseen; i++) {
        if (m->seen[i] != m->want[i]) {
            cr_log_error("seed %u step %d: grant %d went to %d, the model expected %d", m->seed, m->step, i, m->seen[i],
                         m->want[i]);
            return -1;
        }
        if (i > 0)
            RS_CHECK(m->seen_token[i] > m->seen_token[i - 1]);
    }
    return 0;
}

/* ------------------------------------------------------------ steps */

static int spawn_client(sem_model *m, client *c)
{
    return rs_spawn(m->clients, client_task, c, NULL, &c->task);
}

static int step_spawn(sem_model *m, int64_t timeout_ms)
{
    client *c = client_new(m, rnd_weight(m), rnd_priority(m), timeout_ms);
    trace(m, "client %d asks for %lld at priority %d%s (avail %lld, queued %d)", c->id, (long long)c->n, c->priority,
          timeout_ms ? " with a timeout" : "", (long long)m->avail, m->qlen);
    RS_CHECK_OK(spawn_client(m, c));
    model_arrive(m, c);
    RS_CHECK_OK(settle(m));
    if (timeout_ms && c->st == M_QUEUED) {
        /* Nothing else moves meanwhile: its own deadline is the next event. */
        RS_YIELD_UNTIL(c->done);
        model_leave(m, c, -ETIMEDOUT);
        m->stats.timed_out++;
        RS_CHECK_OK(check_counts(m));
        RS_CHECK_OK(settle(m));
    }
    return 0;
}

/* A request of the whole semaphore at the head times out while a smaller one
 * waits behind it: the smaller one is served then if it fits. Whether the
 * deadline or the second arrival came first is up to the clock; the second
 * client saw which (rs_sem_waiting right before its acquire; timers fire only
 * between tasks), and the model takes the events in that order. */
static int step_timed_head(sem_model *m)
{
    client *t = client_new(m, m->total, TOP_PRIORITY, 1 + below(m, 3));
    trace(m,
          "client %d asks for all %lld at the top priority with a timeout, a smaller one follows (avail %lld, "
          "queued %d)",
          t->id, (long long)t->n, (long long)m->avail, m->qlen);
    RS_CHECK_OK(spawn_client(m, t));
    model_arrive(m, t);
    RS_CHECK_OK(settle(m));
    if (t->st != M_QUEUED)
        return 0; /* served at once: a holder like any other */
    client *s = client_new(m, 1 + below(m, (int)m->total), TOP_PRIORITY - 1, 0);
    RS_CHECK_OK(spawn_client(m, s));
    RS_CHECK_OK(settle(m));
    RS_YIELD_UNTIL(t->done);
    int first = m->nwant;
    if (s->waiting_seen == m->qlen) {
        model_arrive(m, s);
        model_leave(m, t, -ETIMEDOUT);
        m->stats.timeout_let_through += m->nwant > first;
    } else {
        model_leave(m, t, -ETIMEDOUT);
        model_arrive(m, s);
        m->stats.timeout_first++;
    }
    m->stats.timed_out++;
    RS_CHECK_OK(check_counts(m));
    return settle(m);
}

/* Cancelled before it ever ran: its acquire returns -ECANCELED at once. */
static int step_spawn_cancelled(sem_model *m)
{
    client *c = client_new(m, rnd_weight(m), rnd_priority(m), 0);
    trace(m, "client %d asks for %lld, cancelled before it runs", c->id, (long long)c->n);
    RS_CHECK_OK(spawn_client(m, c));
    rs_task_cancel(c->task);
    c->cancelled = true;
    c->expect = -ECANCELED;
    m->stats.cancelled_unstarted++;
    return settle(m);
}

static int step_tell(sem_model *m)
{
    client *c = pick(m, M_HOLDING);
    if (!c)
        return 0;
    trace(m, "client %d (holding %lld) releases", c->id, (long long)c->n);
    c->told = true;
    c->go = true;
    model_settle(m);
    return settle(m);
}

/* Cancels one of the clients served since want[first], before it ran. */
static int cancel_just_served(sem_model *m, int first)
{
    client *c = &m->c[m->want[first + below(m, m->nwant - first)]];
    RS_CHECK(c->st == M_HOLDING && !c->returned);
    rs_task_cancel(c->task);
    c->cancelled = true;
    m->stats.cancelled_just_served++;
    return check_counts(m);
}

static int step_cancel(sem_model *m)
{
    client *c;
    if (below(m, 8) == 0 && m->nclients > 0) {
        c = &m->c[below(m, m->nclients)]; /* any: a finished or cancelled task ignores it */
    } else {
        c = pick(m, below(m, 3) == 0 ? M_HOLDING : M_QUEUED);
        if (!c)
            return 0;
    }
    static const char *const names[] = { [M_QUEUED] = "queued", [M_HOLDING] = "holding", [M_DONE] = "done" };
    trace(m, "cancel client %d (%s, n %lld)", c->id, names[c->st], (long long)c->n);
    rs_task_cancel(c->task);
    if (c->st == M_QUEUED) {
        int first = m->nwant;
        model_leave(m, c, -ECANCELED);
        m->stats.cancelled_queued++;
        RS_CHECK_OK(check_counts(m));
        if (m->nwant > first && below(m, 2) == 0)
            RS_CHECK_OK(cancel_just_served(m, first));
    } else if (c->st == M_HOLDING) {
        c->cancelled = true;
        m->stats.cancelled_holding++;
    }
    RS_CHECK_OK(check_counts(m));
    model_settle(m);
    return settle(m);
}

static int driver_granted(sem_model *m, int64_t n)
{
    rs_guard *g = &m->dg[m->ndg];
    RS_CHECK(rs_guard_held(g));
    m->dn[m->ndg++] = n;
    m->avail -= n;
    log_want(m, DRIVER_ID);
    log_seen(m, DRIVER_ID, g, n);
    return 0;
}

static int step_try(sem_model *m)
{
    if (m->ndg == MAX_DRIVER_GUARDS)
        return 0;
    int64_t n = rnd_weight(m);
    bool fits = m->qlen == 0 && n <= m->avail;
    trace(m, "driver tries %lld (avail %lld, queued %d)", (long long)n, (long long)m->avail, m->qlen);
    m->dg[m->ndg] = (rs_guard)RS_GUARD_INIT;
    int rc = rs_sem_try_acquire(m->sem, n, &m->dg[m->ndg]);
    RS_CHECK_EQ(rc, fits ? 0 : -EBUSY);
    if (rc == 0)
        m->stats.tries_ok++;
    else
        m->stats.tries_busy++;
    if (rc == 0)
        RS_CHECK_OK(driver_granted(m, n));
    else
        RS_CHECK(!rs_guard_held(&m->dg[m->ndg]));
    return check_counts(m);
}

/* The driver's own acquire: granted at once when the model says so, else it
 * waits and times out (nothing else moves while it waits). */
static int step_acquire(sem_model *m)
{
    if (m->ndg == MAX_DRIVER_GUARDS)
        return 0;
    int64_t n = rnd_weight(m);
    int priority = rnd_priority(m);
    bool now = model_would_grant_now(m, n, priority);
    trace(m, "driver acquires %lld at priority %d (avail %lld, queued %d)", (long long)n, priority, (long long)m->avail,
          m->qlen);
    m->dg[m->ndg] = (rs_guard)RS_GUARD_INIT;
    uint64_t before = m->events;
    int rc = rs_sem_acquire(m->sem, n, &(rs_acquire_opts){ .timeout_ms = now ? 5000 : 2, .priority = priority },
                            &m->dg[m->ndg]);
    RS_CHECK_EQ(rc, now ? 0 : -ETIMEDOUT);
    RS_CHECK_EQ(m->events, before); /* nobody was served meanwhile */
    if (rc == 0)
        RS_CHECK_OK(driver_granted(m, n));
    else
        RS_CHECK(!rs_guard_held(&m->dg[m->ndg]));
    return check_counts(m);
}

static int driver_release(sem_model *m, int k)
{
    RS_CHECK_OK(rs_guard_release(&m->dg[k]));
    RS_CHECK_EQ(rs_guard_release(&m->dg[k]), -EALREADY);
    m->in_use -= m->dn[k];
    m->avail += m->dn[k];
    m->ndg--;
    m->dg[k] = m->dg[m->ndg];
    m->dn[k] = m->dn[m->ndg];
    model_pump(m);
    return check_counts(m);
}

static int step_release(sem_model *m)
{
    if (m->ndg == 0)
        return 0;
    int k = below(m, m->ndg);
    trace(m, "driver releases %lld (avail %lld, queued %d)", (long long)m->dn[k], (long long)m->avail, m->qlen);
    RS_CHECK_OK(driver_release(m, k));
    return settle(m);
}

/* A waiter granted just before its cancellation: the grant stands. */
static int step_release_then_cancel(sem_model *m)
{
    if (m->ndg == 0)
        return 0;
    int k = below(m, m->ndg);
    int first = m->nwant;
    trace(m, "driver releases %lld and cancels a waiter it served", (long long)m->dn[k]);
    RS_CHECK_OK(driver_release(m, k));
    if (m->nwant > first)
        RS_CHECK_OK(cancel_just_served(m, first));
    model_settle(m);
    return settle(m);
}

static int step_bad_arguments(sem_model *m)
{
    rs_guard g = RS_GUARD_INIT;
    static const int64_t bad_offsets[] = { 0, -1, 1 }; /* n = 0, n = -1, n = total + 1 */
    int64_t off = bad_offsets[below(m, 3)];
    int64_t n = off == 1 ? m->total + 1 : off;
    trace(m, "bad arguments (n %lld)", (long long)n);
    m->stats.bad_arguments++;
    switch (below(m, 4)) {
    case 0:
        RS_CHECK_EQ(rs_sem_acquire(m->sem, n, &(rs_acquire_opts){ .priority = rnd_priority(m) }, &g), -EINVAL);
        break;
    case 1: RS_CHECK_EQ(rs_sem_try_acquire(m->sem, n, &g), -EINVAL); break;
    case 2: RS_CHECK_EQ(rs_sem_acquire(m->sem, 1, &(rs_acquire_opts){ .timeout_ms = -1 }, &g), -EINVAL); break;
    default: {
        /* A client's bad request fails without ever queueing. */
        client *c = client_new(m, n, rnd_priority(m), 0);
        c->expect = -EINVAL;
        RS_CHECK_OK(spawn_client(m, c));
        RS_CHECK_OK(settle(m));
        break;
    }
    }
    RS_CHECK(!rs_guard_held(&g));
    return check_counts(m);
}

static int random_step(sem_model *m)
{
    int r = below(m, 100);
    /* Phases of 40 steps: one of every three drains (no new clients), so
     * that runs pass through an empty queue as well as a long one. */
    bool full = live_clients(m) >= MAX_LIVE || m->nclients >= MAX_CLIENTS - 2 || (m->step / 40) % 3 == 2;
    if (r < 26)
        return full ? step_tell(m) : step_spawn(m, 0);
    if (r < 29)
        return full ? step_tell(m) : step_spawn(m, 1 + below(m, 3));
    if (r < 31)
        return full ? step_tell(m) : step_spawn_cancelled(m);
    if (r < 34)
        return full ? step_tell(m) : step_timed_head(m);
    if (r < 56)
        return step_tell(m);
    if (r < 67)
        return step_cancel(m);
    if (r < 75)
        return step_try(m);
    if (r < 81)
        return step_acquire(m);
    if (r < 88)
        return step_release(m);
    if (r < 94)
        return step_release_then_cancel(m);
    if (r < 97 && m->nclients < MAX_CLIENTS - 2)
        return step_bad_arguments(m);
    return step_tell(m);
}

/* ------------------------------------------------------------ runs */

typedef struct run_params {
    sem_model *m;
    int steps;
    bool dispose; /* end by closing the semaphore's scope while it is in use */
} run_params;

/* Releases everything: the driver's grants, then every holder, round after
 * round, until every client has finished. */
static int end_by_release(sem_model *m)
{
    trace(m, "release everything");
    while (m->ndg > 0)
        RS_CHECK_OK(driver_release(m, m->ndg - 1));
    for (int round = 0; live_clients(m) > 0; round++) {
        RS_CHECK(round <= MAX_CLIENTS);
        for (int i = 0; i < m->nclients; i++) {
            if (m->c[i].st == M_HOLDING) {
                m->c[i].told = true;
                m->c[i].go = true;
            }
        }
        model_settle(m);
        RS_CHECK_OK(settle(m));
        RS_CHECK_OK(check_all(m));
    }
    RS_CHECK_EQ(m->avail, m->total);
    RS_CHECK_EQ(rs_sem_available(m->sem), m->total);
    RS_CHECK_EQ(rs_sem_waiting(m->sem), 0);
    return 0;
}

/* Closes the scope that owns the semaphore while clients hold and wait:
 * waiters return -ECANCELED, held guards are released by the disposal, and
 * their own release later is a harmless -EALREADY. */
static int end_by_dispose(sem_model *m, rs_scope *owner)
{
    /* Waiters served by a release of the driver or by the cancellation of
     * the head have not run yet when the semaphore goes: their acquire
     * succeeds, with a guard that the disposal already released. */
    int first = m->nwant;
    if (m->ndg > 0)
        RS_CHECK_OK(driver_release(m, m->ndg - 1));
    if (m->qlen > 0 && below(m, 2) == 0) {
        client *head = &m->c[m->queue[0]];
        rs_task_cancel(head->task);
        model_leave(m, head, -ECANCELED);
        RS_CHECK_OK(check_counts(m));
    }
    for (int i = first; i < m->nwant; i++)
        m->c[m->want[i]].disposed_unseen = true;
    m->stats.disposed_unseen += m->nwant - first;
    trace(m, "close the semaphore's scope (%d queued, %d served unseen)", m->qlen, m->nwant - first);
    RS_CHECK_OK(rs_scope_close(owner));
    for (int i = first; i < m->nwant; i++)
        RS_CHECK(!m->c[m->want[i]].returned);
    m->sem = NULL;
    for (int k = 0; k < m->ndg; k++) {
        RS_CHECK(!rs_guard_held(&m->dg[k]));
        RS_CHECK_EQ(rs_guard_release(&m->dg[k]), -EALREADY);
        m->in_use -= m->dn[k];
    }
    m->ndg = 0;
    for (int i = 0; i < m->nclients; i++) {
        client *c = &m->c[i];
        if (c->st == M_QUEUED) {
            c->st = M_DONE;
            c->expect = -ECANCELED;
            m->stats.disposed_queued++;
        } else if (c->st == M_HOLDING) {
            RS_CHECK(!rs_guard_held(&c->copy));
            m->stats.disposed_holding++;
            c->st = M_DONE;
            c->told = true;
            c->go = true;
            c->expect_release = -EALREADY;
        }
    }
    m->qlen = 0;
    RS_CHECK_OK(settle(m));
    return check_clients(m);
}

static int model_run(run_params *rp)
{
    sem_model *m = rp->m;
    rs_scope *owner = NULL;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .name = "clients" }, &m->clients));
    if (rp->dispose)
        RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .name = "semaphore" }, &owner));
    /* Owned by the driver's innermost scope: "semaphore" when there is one,
     * else "clients" (which closes only after every client finished). */
    RS_CHECK_OK(rs_sem_new(NULL, m->total, &m->sem));
    m->avail = m->total;
    RS_CHECK_OK(check_all(m));
    for (m->step = 1; m->step <= rp->steps; m->step++) {
        trace(m, "nothing to do");
        RS_CHECK_OK(random_step(m));
        RS_CHECK_OK(check_all(m));
    }
    if (rp->dispose)
        RS_CHECK_OK(end_by_dispose(m, owner));
    else
        RS_CHECK_OK(end_by_release(m));
    for (int i = 0; i < m->nclients; i++) {
        int result = -1;
        RS_CHECK_OK(rs_task_join(m->c[i].task, &result));
        RS_CHECK_EQ(result, 0);
    }
    RS_CHECK(m->in_use == 0);
    if (!rp->dispose)
        RS_CHECK_EQ(rs_sem_available(m->sem), m->total);
    rs_scope *clients = m->clients;
    m->clients = NULL;
    RS_CHECK_OK(rs_scope_close(clients));
    return 0;
}

static int model_main(void *arg)
{
    run_params *rp = arg;
    int rc = model_run(rp);
    /* After a failed check, the clients still hold or wait: cancelled, they
     * end at once and the run returns instead of waiting for them. */
    if (rc != 0 && rp->m->clients)
        rs_scope_cancel(rp->m->clients);
    return rc;
}

static void stats_add(model_stats *sum, const model_stats *s)
{
    long *d = (long *)sum;
    const long *a = (const long *)s;
    for (size_t i = 0; i < sizeof *s / sizeof(long); i++)
        d[i] += a[i];
}

static void run_seeds(unsigned first_seed, int seeds, int steps, bool dispose)
{
    sem_model *m = malloc(sizeof *m);
    cr_assert(m);
    model_stats sum = { 0 };
    for (unsigned seed = first_seed; seed < first_seed + (unsigned)seeds; seed++) {
        memset(m, 0, sizeof *m);
        m->arriving = -1;
        m->seed = seed;
        m->rng = 0x9e3779b97f4a7c15ull * (seed + 1);
        m->total = 1 + below(m, 8);
        run_params rp = { .m = m, .steps = steps, .dispose = dispose };
        int rc = rs_run(model_main, &rp, NULL);
        if (rc != 0) {
            for (int i = TRACE_LEN - 1; i >= 0; i--) {
                int s = m->step - i;
                if (s >= 1 && m->trace[s % TRACE_LEN][0])
                    cr_log_error("seed %u (total %lld): %s", seed, (long long)m->total, m->trace[s % TRACE_LEN]);
            }
        }
        cr_assert_eq(rc, 0, "seed %u (total %lld) failed at step %d: rs_run returned %d", seed, (long long)m->total,
                     m->step, rc);
        stats_add(&sum, &m->stats);
    }
    free(m);
    cr_log_info("served at once %ld (past a queue %ld), queued %ld (held back although they fitted %ld), served "
                "later %ld; cancelled: queued %ld, holding %ld, just served %ld, before running %ld; timed out %ld "
                "(letting others through %ld, before the next arrival %ld); tries %ld ok, %ld busy; bad arguments %ld; "
                "at disposal: queued %ld, "
                "holding %ld, served unseen %ld",
                sum.served_at_once, sum.passed_queue, sum.queued, sum.held_back, sum.served_later, sum.cancelled_queued,
                sum.cancelled_holding, sum.cancelled_just_served, sum.cancelled_unstarted, sum.timed_out,
                sum.timeout_let_through, sum.timeout_first, sum.tries_ok, sum.tries_busy, sum.bad_arguments,
                sum.disposed_queued, sum.disposed_holding, sum.disposed_unseen);
}

Test(sem_model, random_steps_match_the_model_then_everything_is_released, .timeout = 30)
{
    run_seeds(1, 20, 300, false);
}

Test(sem_model, random_steps_match_the_model_then_the_owning_scope_closes, .timeout = 30)
{
    run_seeds(101, 20, 190, true);
}
