/* The resource pool against a model of docs/SYNC.md, with random moves.
 *
 * A driver task makes moves drawn from a seeded PRNG (fixed seeds): it spawns
 * clients that acquire with random priorities (some with a timeout that never
 * expires, so a deadline is armed and disarmed) and hold until it tells them
 * to release or discard, takes idle resources with try_acquire, cancels
 * clients (mostly waiting ones). The pool's create and destroy callbacks
 * succeed at once, suspend for a few yields, or (create) fail, as the same
 * PRNG decides. A round ends in one of two ways: everything given back, then
 * the pool's scope closes; or the scope closes with waiters, holders,
 * creations and destroys in flight.
 *
 * The model predicts every decision at the moment the pool makes it: which
 * waiter a released or created resource goes to (the head: priority, then
 * arrival), which acquirer a creation is for and therefore gets its error,
 * when creations start (for waiters while fewer than max exist, up to min
 * after a destruction). One worker runs every task in FIFO order and each
 * hook below runs with no suspension between it and the pool's own change,
 * so model and pool change together: after every move the driver compares
 * rs_pool_stats_get with the model, and every client compares what its
 * acquire returned with the prediction.
 *
 * Independently of the model the resources are counted objects: never more
 * than max exist (counted through create and destroy), none is handed to two
 * holders at once, used after its destruction or destroyed twice, and once
 * the pool's scope closed and every guard was released each one was
 * destroyed exactly once, in the task the documentation names, shielded
 * from that task's cancellation. Grant tokens increase in grant order. A
 * failure reports the seed and the step. Health checks, idle shrinking and
 * the timed retry of a failed fill to min are time-driven and stay out
 * (tests/unit/pool_health.c covers them): the retry is switched off here. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pool_support.h"
#include "sync/pool.h"

enum {
    MAX_CLIENTS = 40, /* client records, reused once a client ended */
    MAX_SLOTS = 3,    /* resources the driver holds itself (try_acquire) */
    MAX_IDLE = 64,
    MAX_RES = 2048,
    MAX_JOBS = 2048,
    MAX_GRANTS = 4096,
    NPRIO = 3,              /* few distinct priorities (-1, 0, 1): many ties, FIFO matters */
    SETTLE_YIELDS = 5000,   /* far more than any sequence of moves needs */
    DRIVER_HOLDER = 100000, /* + slot: the driver as a holder */
    HOUR_MS = 3600000       /* a timeout that never expires during a test */
};

typedef struct model model;

typedef enum {
    RES_NEW,
    RES_IDLE,
    RES_HELD,
    RES_GIVEN_BACK,
    RES_DESTROYED
} res_state;

/* A resource. state and holder are the model's view; user, destroy_calls and
 * destroys are what the test saw happen. */
typedef struct mres {
    int id;
    res_state state;
    int holder;
    int user;       /* the holder that saw it granted and has not given it back, or -1 */
    rs_task *giver; /* the task that discarded it, or released it after the disposal */
    int destroy_calls, destroys;
} mres;

typedef enum {
    CL_FREE,
    CL_SPAWNED,
    CL_QUEUED,
    CL_RESOLVED,
    CL_HOLDING,
    CL_ACTING,
    CL_DONE
} cl_state;
typedef enum {
    CMD_NONE,
    CMD_RELEASE,
    CMD_DISCARD
} command;

typedef struct client {
    model *m;
    int id; /* unique in the round */
    int prio;
    int64_t timeout_ms; /* 0 or an hour: a deadline armed that never fires */
    rs_task *task;
    cl_state state;
    bool cancelled;
    int job;       /* model: the creation running for it, or -1 */
    int expect_rc; /* model, once resolved: what its acquire returns */
    mres *expect_res;
    int grant; /* model: the grant's number, or -1 */
    command cmd;
} client;

typedef struct slot {
    bool used;
    rs_guard g;
    mres *r;
} slot;

typedef enum {
    JOB_PENDING,
    JOB_RUNNING,
    JOB_DONE
} job_state;

/* A creation the pool started: pending until its create call begins (tasks
 * start in spawn order), for a client or for nobody. */
typedef struct mjob {
    client *for_client;
    job_state state;
} mjob;

/* How often each path ran, summed over a test's seeds: a test that never
 * reached a path could not have caught a defect in it. */
typedef struct coverage {
    int handoffs, created_to_other, errors_to_waiter, errors_dropped, cancels_queued, cancels_granted, cancels_holding,
        discards, min_refills, tries, disposals_in_flight;
} coverage;

typedef struct scenario {
    const char *name;
    unsigned max_lo, max_hi;
    int fail_pct, steps, seeds;
    uint64_t seed0;
} scenario;

struct model {
    uint64_t seed, rng;
    int step, steps;
    unsigned min, max;
    int fail_pct, slow_pct, discard_pct;
    int64_t acquire_timeout_ms; /* the pool's default: 0 or an hour */
    bool abrupt_end;
    rs_pool *pool;
    rs_task *driver;
    rs_scope *clients_scope;
    bool stop, disposed;
    int nfail;
    coverage *cov;

    /* The model of the pool. */
    client *queue[MAX_CLIENTS]; /* priority descending, arrival ascending */
    int nqueue;
    mres *idle[MAX_IDLE]; /* the most recently used last */
    int nidle;
    unsigned in_use, creating, destroying;
    mjob jobs[MAX_JOBS];
    int njobs, next_enter;
    int grants;
    int fails_since_destroy; /* creations that failed since the last destruction */

    /* What the test saw. */
    mres res[MAX_RES];
    int nres, live, in_create;
    uint64_t tokens[MAX_GRANTS];
    bool token_seen[MAX_GRANTS];
    client clients[MAX_CLIENTS];
    int next_client_id;
    slot slots[MAX_SLOTS];
};

/* ------------------------------------------------------------ failures, PRNG */

__attribute__((format(printf, 4, 5))) static void model_fail(model *m, int line, const char *cond, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m->nfail++ == 0) /* later failures of the round follow from the first */
        cr_expect_fail("pool model, seed %#llx (max %u, min %u, %s end), step %d: %s [%s] (%s:%d)",
                       (unsigned long long)m->seed, m->max, m->min, m->abrupt_end ? "abrupt" : "orderly", m->step, msg,
                       cond, __FILE__, line);
    m->stop = true;
}

/* True if cond holds; else reports (with seed and step) and stops the round. */
#define MCHECK(m, cond, ...)                                                                                           \
    __extension__({                                                                                                    \
        bool mcheck_ok_ = (cond);                                                                                      \
        if (!mcheck_ok_)                                                                                               \
            model_fail((m), __LINE__, #cond, __VA_ARGS__);                                                             \
        mcheck_ok_;                                                                                                    \
    })

static int rnd(model *m, int n)
{
    return rs_test_rand_below(&m->rng, n);
}

static bool chance(model *m, int pct)
{
    return rnd(m, 100) < pct;
}

static int res_id(const model *m, const mres *r)
{
    return r >= m->res && r < m->res + m->nres ? r->id : -1;
}

/* ------------------------------------------------------------ the model */

static unsigned m_total(const model *m)
{
    return (unsigned)m->nidle + m->in_use + m->creating;
}

static bool m_room(const model *m)
{
    return m_total(m) + m->destroying < m->max;
}

static client *m_head(const model *m)
{
    return m->nqueue ? m->queue[0] : NULL;
}

static void m_enqueue(model *m, client *c)
{
    int i = m->nqueue;
    while (i > 0 && m->queue[i - 1]->prio < c->prio) {
        m->queue[i] = m->queue[i - 1];
        i--;
    }
    m->queue[i] = c;
    m->nqueue++;
    c->state = CL_QUEUED;
}

static void m_dequeue(model *m, client *c)
{
    int i = 0;
    while (i < m->nqueue && m->queue[i] != c)
        i++;
    if (!MCHECK(m, i < m->nqueue, "model: client %d is not queued", c->id))
        return;
    memmove(&m->queue[i], &m->queue[i + 1], (size_t)(m->nqueue - i - 1) * sizeof m->queue[0]);
    m->nqueue--;
}

static void m_unbind(model *m, client *c)
{
    if (c->job >= 0) {
        m->jobs[c->job].for_client = NULL;
        c->job = -1;
    }
}

static int m_new_grant(model *m)
{
    MCHECK(m, m->grants < MAX_GRANTS, "test capacity: too many grants");
    return m->grants++;
}

static void m_hand(model *m, mres *r, int holder)
{
    MCHECK(m, r->state == RES_NEW || r->state == RES_IDLE, "model: resource %d handed out in state %d", r->id,
           (int)r->state);
    r->state = RES_HELD;
    r->holder = holder;
    m->in_use++;
}

/* The client's acquire returns rc (and r when rc is 0) from now on. */
static void m_resolve(model *m, client *c, int rc, mres *r)
{
    c->state = CL_RESOLVED;
    c->expect_rc = rc;
    c->expect_res = r;
    c->grant = -1;
    if (rc == 0) {
        c->grant = m_new_grant(m);
        m_hand(m, r, c->id);
    }
}

static void m_give(model *m, client *c, mres *r)
{
    m_unbind(m, c);
    m_dequeue(m, c);
    m_resolve(m, c, 0, r);
}

static void m_idle_push(model *m, mres *r)
{
    if (!MCHECK(m, m->nidle < MAX_IDLE, "test capacity: idle list"))
        return;
    r->state = RES_IDLE;
    r->holder = -1;
    m->idle[m->nidle++] = r;
}

static mres *m_idle_pop(model *m)
{
    return m->idle[--m->nidle];
}

/* A released or created resource: to the head waiter, else idle. */
static void m_put(model *m, mres *r)
{
    client *h = m_head(m);
    if (h) {
        r->state = RES_IDLE;
        m_give(m, h, r);
    } else {
        m_idle_push(m, r);
    }
}

static void m_start(model *m, client *c)
{
    if (!MCHECK(m, m->njobs < MAX_JOBS, "test capacity: too many creations"))
        return;
    m->jobs[m->njobs] = (mjob){ .for_client = c, .state = JOB_PENDING };
    if (c)
        c->job = m->njobs;
    m->njobs++;
    m->creating++;
}

/* Idle resources to the head waiters, then a creation for each waiter that
 * has none, in queue order, while fewer than max exist. */
static void m_pump(model *m)
{
    while (m->nqueue && m->nidle && !m->stop)
        m_give(m, m_head(m), m_idle_pop(m));
    for (int i = 0; i < m->nqueue && m_room(m) && !m->stop; i++)
        if (m->queue[i]->job < 0)
            m_start(m, m->queue[i]);
}

static void m_ensure_min(model *m)
{
    while (m_room(m) && m_total(m) < m->min && !m->stop) {
        m_start(m, NULL);
        m->cov->min_refills++;
    }
}

/* Right before the client's rs_pool_acquire (which decides without suspending). */
static void m_acquire(model *m, client *c)
{
    if (c->cancelled) {
        m_resolve(m, c, -ECANCELED, NULL);
        return;
    }
    client *h = m_head(m);
    if (m->nidle && (!h || h->prio < c->prio)) {
        m_resolve(m, c, 0, m_idle_pop(m));
        return;
    }
    c->job = -1;
    m_enqueue(m, c);
    m_pump(m);
}

static void m_create_done(model *m, int job, int rc, mres *r)
{
    mjob *j = &m->jobs[job];
    j->state = JOB_DONE;
    m->creating--;
    client *c = j->for_client;
    if (c)
        m_unbind(m, c);
    if (rc == 0) {
        client *h = m_head(m);
        if (h && h != c)
            m->cov->created_to_other++;
        m_put(m, r);
    } else {
        m->fails_since_destroy++;
        if (c) {
            m_dequeue(m, c);
            m_resolve(m, c, rc, NULL);
            m->cov->errors_to_waiter++;
        } else {
            m->cov->errors_dropped++;
        }
    }
    m_pump(m);
}

static void m_release(model *m, mres *r, int holder)
{
    if (!MCHECK(m, r->state == RES_HELD && r->holder == holder,
                "model: holder %d releases resource %d it does not hold", holder, r->id))
        return;
    m->in_use--;
    if (m->nqueue)
        m->cov->handoffs++;
    m_put(m, r);
}

static void m_discard_begin(model *m, mres *r, int holder)
{
    if (!MCHECK(m, r->state == RES_HELD && r->holder == holder,
                "model: holder %d discards resource %d it does not hold", holder, r->id))
        return;
    m->in_use--;
    m->destroying++;
    r->state = RES_GIVEN_BACK;
    r->holder = -1;
    m->cov->discards++;
}

/* After the discard returned: destroy ran, then the pool refilled. */
static void m_discard_end(model *m)
{
    if (m->disposed)
        return;
    m->destroying--;
    m->fails_since_destroy = 0;
    m_pump(m);
    m_ensure_min(m);
}

/* Right after rs_task_cancel: a queued client leaves at once. */
static void m_cancel(model *m, client *c)
{
    c->cancelled = true;
    if (c->state == CL_QUEUED) {
        m_unbind(m, c);
        m_dequeue(m, c);
        m_resolve(m, c, -ECANCELED, NULL);
        m_pump(m);
        m->cov->cancels_queued++;
    } else if (c->state == CL_RESOLVED && c->expect_rc == 0) {
        m->cov->cancels_granted++;
    } else if (c->state == CL_HOLDING) {
        m->cov->cancels_holding++;
    }
}

/* ------------------------------------------------------------ callbacks */

static bool in_user_task(const model *m)
{
    rs_task *t = rs_current_task();
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (m->clients[i].state != CL_FREE && m->clients[i].task == t)
            return true;
    return t == m->driver;
}

static const int create_errors[] = { -ECONNREFUSED, -ECONNRESET, -EHOSTUNREACH, 5 /* positive: -EIO */ };

static int model_create(void *ctx, void **out)
{
    model *m = ctx;
    if (m->stop)
        return -ECANCELED;
    int job = -1;
    if (!m->disposed && MCHECK(m, m->next_enter < m->njobs, "create called for a creation the pool did not start")) {
        job = m->next_enter++;
        MCHECK(m, m->jobs[job].state == JOB_PENDING, "model: creation %d began twice", job);
        m->jobs[job].state = JOB_RUNNING;
    }
    MCHECK(m, !in_user_task(m), "create runs in a task of the test, not in a background task");
    m->in_create++;
    MCHECK(m, m->live + m->in_create <= (int)m->max, "%d resources exist and %d are being created: more than max %u",
           m->live, m->in_create, m->max);
    int yields = chance(m, m->slow_pct) ? 1 + rnd(m, 4) : 0;
    int rc = chance(m, m->fail_pct) ? create_errors[rnd(m, 4)] : 0;
    for (int i = 0; i < yields; i++) {
        if (rs_yield() != 0) {
            /* Cancelled by the pool's disposal: give up, or produce it anyway. */
            rc = chance(m, 50) ? -ECANCELED : 0;
            break;
        }
    }
    m->in_create--;
    mres *r = NULL;
    if (rc == 0) {
        if (!MCHECK(m, m->nres < MAX_RES, "test capacity: too many resources"))
            return -ENOMEM;
        r = &m->res[m->nres];
        *r = (mres){ .id = m->nres, .state = RES_NEW, .holder = -1, .user = -1 };
        m->nres++;
        m->live++;
        *out = r;
    }
    if (job >= 0 && !m->disposed && !m->stop)
        m_create_done(m, job, rc > 0 ? -EIO : rc, r);
    return rc;
}

static void model_destroy(void *ctx, void *res)
{
    model *m = ctx;
    mres *r = res;
    if (!MCHECK(m, res_id(m, r) >= 0, "destroy of %p, not a resource this pool created", res))
        return;
    MCHECK(m, r->destroy_calls++ == 0, "resource %d destroyed twice", r->id);
    MCHECK(m, r->user < 0, "resource %d destroyed while holder %d uses it", r->id, r->user);
    if (!m->disposed)
        MCHECK(m, r->state == RES_GIVEN_BACK, "resource %d destroyed in state %d without a discard", r->id,
               (int)r->state);
    /* In the task that caused it: the discard, the release after the
     * disposal, or the disposal itself (the scope's close, for idle ones). */
    if (r->state == RES_GIVEN_BACK)
        MCHECK(m, rs_current_task() == r->giver, "resource %d destroyed outside the task that gave it back", r->id);
    else if (r->state == RES_IDLE)
        MCHECK(m, rs_current_task() == m->driver, "idle resource %d destroyed outside the closing task", r->id);
    int yields = !m->stop && chance(m, m->slow_pct) ? 1 + rnd(m, 3) : 0;
    for (int i = 0; i < yields && !m->stop; i++)
        MCHECK(m, rs_yield() == 0, "destroy of resource %d interrupted: it must run shielded", r->id);
    r->destroys++;
    r->state = RES_DESTROYED;
    m->live--;
}

/* ------------------------------------------------------------ holders */

/* A holder saw r granted (grant number grant, token). */
static void seen_grant(model *m, mres *r, int holder, int grant, uint64_t token)
{
    if (!MCHECK(m, res_id(m, r) >= 0, "holder %d got %p, not a resource this pool created", holder, (void *)r))
        return;
    MCHECK(m, r->destroy_calls == 0, "holder %d got resource %d after it was destroyed", holder, r->id);
    MCHECK(m, r->user < 0, "resource %d handed to holder %d while holder %d uses it", r->id, holder, r->user);
    r->user = holder;
    if (grant >= 0 && grant < MAX_GRANTS) {
        m->tokens[grant] = token;
        m->token_seen[grant] = true;
    }
}

/* Ends a holder's grant of r: release, or discard. */
static void holder_end(model *m, int holder, rs_guard *g, mres *r, bool discard)
{
    if (m->stop) {
        rs_guard_release(g);
        return;
    }
    MCHECK(m, r->user == holder, "holder %d gives back resource %d, used by %d", holder, r->id, r->user);
    MCHECK(m, r->destroy_calls == 0, "holder %d still uses resource %d, which was destroyed", holder, r->id);
    bool disposed = m->disposed;
    /* Held until given back; after the disposal no longer held, but still valid. */
    MCHECK(m, rs_guard_resource(g) == r, "holder %d: rs_guard_resource changed", holder);
    MCHECK(m, rs_guard_held(g) == !disposed, "holder %d: rs_guard_held is %d with the pool %s", holder,
           (int)rs_guard_held(g), disposed ? "disposed" : "open");
    r->user = -1;
    r->giver = rs_current_task();
    if (disposed) {
        r->state = RES_GIVEN_BACK;
        r->holder = -1;
    }
    int rc;
    if (discard) {
        if (!disposed)
            m_discard_begin(m, r, holder);
        rc = rs_guard_discard(g);
        MCHECK(m, rc == 0 || (disposed && rc == -EALREADY), "holder %d: discard returned %d", holder, rc);
        MCHECK(m, r->destroys == 1, "holder %d: discard of resource %d returned before destroy ran", holder, r->id);
        if (!disposed)
            m_discard_end(m);
    } else {
        if (!disposed)
            m_release(m, r, holder);
        rc = rs_guard_release(g);
        MCHECK(m, rc == (disposed ? -EALREADY : 0), "holder %d: release returned %d (pool %s)", holder, rc,
               disposed ? "disposed" : "open");
        if (disposed)
            MCHECK(m, r->destroys == 1, "resource %d released after the disposal was not destroyed", r->id);
    }
    MCHECK(m, !rs_guard_held(g), "holder %d: guard still held after giving back", holder);
    MCHECK(m, rs_guard_release(g) == -EALREADY, "holder %d: a second release did not answer -EALREADY", holder);
}

static const char *state_name(cl_state s)
{
    static const char *const names[] = { "free", "spawned", "queued", "resolved", "holding", "acting", "done" };
    return names[s];
}

/* A client: acquire, compare with the model, hold until told, give back. */
static int client_main(void *arg)
{
    client *c = arg;
    model *m = c->m;
    if (m->disposed) { /* only when the round stopped early: the pool may be gone */
        c->state = CL_DONE;
        return 0;
    }
    MCHECK(m, c->state == CL_SPAWNED, "client %d began in state %s", c->id, state_name(c->state));
    m_acquire(m, c);
    rs_guard g = RS_GUARD_INIT;
    int rc = rs_pool_acquire(m->pool, &(rs_acquire_opts){ .priority = c->prio, .timeout_ms = c->timeout_ms }, &g);
    if (!m->stop &&
        MCHECK(m, c->state == CL_RESOLVED,
               "client %d (priority %d) returned %d from acquire while the model has it %s (head: client %d)", c->id,
               c->prio, rc, state_name(c->state), m_head(m) ? m_head(m)->id : -1))
        MCHECK(m, rc == c->expect_rc, "client %d (priority %d): acquire returned %d, the model expected %d", c->id,
               c->prio, rc, c->expect_rc);
    if (rc != 0) {
        MCHECK(m, !rs_guard_held(&g), "client %d: a failed acquire filled the guard", c->id);
        c->state = CL_DONE;
        return 0;
    }
    mres *r = rs_guard_resource(&g);
    if (!m->stop) {
        if (MCHECK(m, r == c->expect_res, "client %d (priority %d) got resource %d, the model expected %d", c->id,
                   c->prio, res_id(m, r), res_id(m, c->expect_res)))
            seen_grant(m, r, c->id, c->grant, rs_guard_token(&g));
        MCHECK(m, rs_guard_held(&g) == !m->disposed, "client %d: rs_guard_held is %d with the pool %s", c->id,
               (int)rs_guard_held(&g), m->disposed ? "disposed" : "open");
    }
    c->state = CL_HOLDING;
    /* Shielded: a cancellation after the grant must not end the hold early
     * (and rs_yield would return at once in a cancelled task). The resource
     * is given back outside, so that a cancelled holder gives it back too. */
    rs_scope *hold;
    if (rs_scope_open(&(rs_scope_opts){ .name = "hold", .shield = true }, &hold) != 0) {
        MCHECK(m, false, "client %d: cannot open a shielded scope", c->id);
        rs_guard_release(&g);
        c->state = CL_DONE;
        return 0;
    }
    while (c->cmd == CMD_NONE && !m->stop)
        rs_yield();
    rs_scope_close(hold);
    holder_end(m, c->id, &g, r, c->cmd == CMD_DISCARD);
    c->state = CL_DONE;
    return 0;
}

/* ------------------------------------------------------------ driver moves */

static bool client_active(const client *c)
{
    return c->state == CL_SPAWNED || c->state == CL_RESOLVED || c->state == CL_ACTING;
}

/* Something will still happen without a move of the driver. */
static bool pending(const model *m)
{
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (client_active(&m->clients[i]))
            return true;
    if (m->in_create)
        return true;
    return !m->disposed && (m->creating || m->destroying);
}

static void settle(model *m)
{
    for (int i = 0; i < SETTLE_YIELDS && pending(m) && !m->stop; i++)
        rs_yield();
    MCHECK(m, m->stop || !pending(m), "no progress after %d yields (model: %d queued, %u creating, %u destroying)",
           SETTLE_YIELDS, m->nqueue, m->creating, m->destroying);
}

static void check_stats(model *m)
{
    if (m->stop || m->disposed)
        return;
    rs_pool_stats st;
    if (!MCHECK(m, rs_pool_stats_get(m->pool, &st) == 0, "rs_pool_stats_get failed"))
        return;
    MCHECK(m, st.total == st.idle + st.in_use + st.creating, "stats: total %u != idle %u + in_use %u + creating %u",
           st.total, st.idle, st.in_use, st.creating);
    MCHECK(m, st.total <= m->max, "stats: total %u over max %u", st.total, m->max);
    MCHECK(m,
           st.idle == (unsigned)m->nidle && st.in_use == m->in_use && st.creating == m->creating &&
               st.waiting == (unsigned)m->nqueue,
           "stats: idle %u in_use %u creating %u waiting %u; the model: %d %u %u %d", st.idle, st.in_use, st.creating,
           st.waiting, m->nidle, m->in_use, m->creating, m->nqueue);
    MCHECK(m, m->live + m->in_create <= (int)m->max, "%d resources exist and %d are being created: more than max %u",
           m->live, m->in_create, m->max);
}

/* Once nothing moves: waiters only while every resource is in use, and min
 * is kept unless a creation failed since the last destruction (a failed
 * background fill is not retried at once). */
static void check_settled(model *m)
{
    settle(m);
    check_stats(m);
    if (m->stop || m->disposed)
        return;
    rs_pool_stats st = pool_stats(m->pool);
    if (st.waiting)
        MCHECK(m, st.idle == 0 && st.in_use == m->max, "%u waiters queued while %u of max %u are in use, %u idle",
               st.waiting, st.in_use, m->max, st.idle);
    if (m->fails_since_destroy == 0)
        MCHECK(m, st.total >= m->min, "total %u below min %u with no failed creation since the last destruction",
               st.total, m->min);
    MCHECK(m, m->live == (int)st.total, "%d resources exist, the pool counts %u", m->live, st.total);
}

/* A client record to reuse: free, or ended (its task then finished too). */
static client *free_client(model *m)
{
    for (int i = 0; i < MAX_CLIENTS; i++) {
        client *c = &m->clients[i];
        if (c->state == CL_DONE) {
            int result = -1;
            MCHECK(m, rs_task_join(c->task, &result) == 0 && result == 0, "client %d: join", c->id);
            c->state = CL_FREE;
        }
        if (c->state == CL_FREE)
            return c;
    }
    return NULL;
}

static void move_spawn(model *m)
{
    client *c = free_client(m);
    if (!c)
        return;
    *c = (client){ .m = m,
                   .id = ++m->next_client_id,
                   .prio = rnd(m, NPRIO) - 1,
                   .timeout_ms = chance(m, 30) ? HOUR_MS : 0,
                   .state = CL_SPAWNED,
                   .job = -1,
                   .grant = -1 };
    if (!MCHECK(m, rs_spawn(m->clients_scope, client_main, c, NULL, &c->task) == 0, "spawn"))
        c->state = CL_FREE;
}

static void move_try(model *m)
{
    int i = 0;
    while (i < MAX_SLOTS && m->slots[i].used)
        i++;
    if (i == MAX_SLOTS)
        return;
    slot *s = &m->slots[i];
    mres *expect = m->nidle && !m->nqueue ? m->idle[m->nidle - 1] : NULL;
    s->g = (rs_guard)RS_GUARD_INIT;
    int rc = rs_pool_try_acquire(m->pool, &s->g);
    s->used = rc == 0;
    s->r = rc == 0 ? rs_guard_resource(&s->g) : NULL;
    if (!MCHECK(m, rc == (expect ? 0 : -EBUSY), "try_acquire returned %d, the model expected %d", rc,
                expect ? 0 : -EBUSY) ||
        rc)
        return;
    m->cov->tries++;
    if (!MCHECK(m, s->r == expect, "try_acquire got resource %d, the model expected %d (the most recently used)",
                res_id(m, s->r), res_id(m, expect)))
        return;
    m_idle_pop(m);
    m_hand(m, expect, DRIVER_HOLDER + i);
    seen_grant(m, expect, DRIVER_HOLDER + i, m_new_grant(m), rs_guard_token(&s->g));
}

/* Release or discard one resource, held by a client or by the driver. */
static void move_end_one(model *m)
{
    int holders[MAX_CLIENTS + MAX_SLOTS], n = 0;
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (m->clients[i].state == CL_HOLDING)
            holders[n++] = i;
    for (int i = 0; i < MAX_SLOTS; i++)
        if (m->slots[i].used)
            holders[n++] = MAX_CLIENTS + i;
    if (!n)
        return;
    int k = holders[rnd(m, n)];
    bool discard = chance(m, m->discard_pct);
    if (k < MAX_CLIENTS) {
        m->clients[k].cmd = discard ? CMD_DISCARD : CMD_RELEASE;
        m->clients[k].state = CL_ACTING;
    } else {
        slot *s = &m->slots[k - MAX_CLIENTS];
        holder_end(m, DRIVER_HOLDER + k - MAX_CLIENTS, &s->g, s->r, discard);
        s->used = false;
    }
}

/* Cancel a client: mostly one that waits; sometimes one granted but not run
 * yet (it must still get the resource), one not started yet, or a holder
 * (it keeps what it holds and gives it back cancelled). */
static void move_cancel(model *m)
{
    client *cands[MAX_CLIENTS];
    int n = 0;
    bool queued_only = chance(m, 75);
    for (int i = 0; i < MAX_CLIENTS; i++) {
        client *c = &m->clients[i];
        if (!c->cancelled &&
            (c->state == CL_QUEUED ||
             (!queued_only && (c->state == CL_SPAWNED || c->state == CL_RESOLVED || c->state == CL_HOLDING))))
            cands[n++] = c;
    }
    if (!n)
        return;
    client *c = cands[rnd(m, n)];
    rs_task_cancel(c->task);
    m_cancel(m, c);
}

static void move(model *m)
{
    int k = rnd(m, 100);
    if (k < 30) {
        move_spawn(m);
    } else if (k < 37) {
        move_try(m);
    } else if (k < 62) {
        move_end_one(m);
    } else if (k < 72) {
        move_cancel(m);
    } else if (k < 95) {
        for (int i = rnd(m, 6); i > 0; i--)
            rs_yield();
    } else {
        check_settled(m);
    }
}

/* ------------------------------------------------------------ a round */

static void close_pool(model *m, rs_scope *pool_scope)
{
    if (m->nqueue)
        m->cov->disposals_in_flight++;
    m->disposed = true;
    /* Disposal cancels the waiters still queued. */
    for (int i = 0; i < m->nqueue; i++)
        m_resolve(m, m->queue[i], -ECANCELED, NULL);
    m->nqueue = 0;
    MCHECK(m, rs_scope_close(pool_scope) == 0, "closing the pool's scope failed");
}

/* Every holder gives back what it holds, until nobody holds or waits. */
static void give_back_all(model *m)
{
    for (int round = 0; round < 4 * MAX_CLIENTS && !m->stop; round++) {
        settle(m);
        bool any = false;
        for (int i = 0; i < MAX_CLIENTS; i++) {
            client *c = &m->clients[i];
            if (c->state == CL_HOLDING) {
                c->cmd = chance(m, m->discard_pct) ? CMD_DISCARD : CMD_RELEASE;
                c->state = CL_ACTING;
                any = true;
            }
        }
        for (int i = 0; i < MAX_SLOTS; i++) {
            if (m->slots[i].used) {
                holder_end(m, DRIVER_HOLDER + i, &m->slots[i].g, m->slots[i].r, chance(m, m->discard_pct));
                m->slots[i].used = false;
                any = true;
            }
        }
        if (!any && !m->nqueue)
            break;
    }
    settle(m);
}

/* Orderly: everything given back first; the close destroys the idle ones. */
static void end_orderly(model *m, rs_scope *pool_scope)
{
    give_back_all(m);
    check_settled(m);
    if (m->stop)
        return;
    rs_pool_stats st = pool_stats(m->pool);
    MCHECK(m, st.waiting == 0 && st.in_use == 0 && st.idle == st.total, "after every release: %u waiting, %u in use",
           st.waiting, st.in_use);
    close_pool(m, pool_scope);
    MCHECK(m, m->live == 0, "%d resources still exist after the pool's scope closed with none in use", m->live);
}

/* Abrupt: the scope closes with waiters, holders, creations and destroys in
 * flight. Waiters get -ECANCELED; the close waits for the background work;
 * a resource still checked out is destroyed when its holder gives it back,
 * every other one by the time the close returns. */
static void end_abrupt(model *m, rs_scope *pool_scope)
{
    /* A client that has not called acquire yet would call it on a pool that is gone. */
    bool spawned = true;
    for (int i = 0; i < SETTLE_YIELDS && spawned; i++) {
        spawned = false;
        for (int j = 0; j < MAX_CLIENTS; j++)
            spawned = spawned || m->clients[j].state == CL_SPAWNED;
        if (spawned)
            rs_yield();
    }
    MCHECK(m, !spawned, "clients never started");
    check_stats(m);
    if (m->stop)
        return;
    close_pool(m, pool_scope);
    MCHECK(m, m->in_create == 0, "%d creations still run after the pool's scope closed", m->in_create);
    for (int i = 0; i < m->nres && !m->stop; i++) {
        mres *r = &m->res[i];
        if (r->state == RES_HELD)
            MCHECK(m, r->destroys == 0, "resource %d destroyed at the close while checked out", i);
        else
            MCHECK(m, r->destroys == 1, "resource %d (state %d) not destroyed by the close", i, (int)r->state);
    }
    give_back_all(m);
}

static int round_main(void *arg)
{
    model *m = arg;
    rs_scope *pool_scope = NULL;
    m->driver = rs_current_task();
    if (rs_scope_open(&(rs_scope_opts){ .name = "clients" }, &m->clients_scope) != 0 ||
        rs_scope_open(&(rs_scope_opts){ .name = "pool" }, &pool_scope) != 0)
        return -1;
    rs_pool_opts o = { .create = model_create,
                       .destroy = model_destroy,
                       .ctx = m,
                       .min = m->min,
                       .max = m->max,
                       .acquire_timeout_ms = m->acquire_timeout_ms };
    if (!MCHECK(m, rs_pool_new(pool_scope, &o, &m->pool) == 0, "rs_pool_new"))
        return -1;
    m_ensure_min(m);
    check_stats(m);
    for (m->step = 0; m->step < m->steps && !m->stop; m->step++) {
        move(m);
        check_stats(m);
    }
    if (!m->stop) {
        if (m->abrupt_end)
            end_abrupt(m, pool_scope);
        else
            end_orderly(m, pool_scope);
    }
    if (m->stop) {
        /* Wind down after a failure: holders give back, waiters are cancelled. */
        for (int i = 0; i < MAX_SLOTS; i++)
            if (m->slots[i].used)
                rs_guard_release(&m->slots[i].g);
        if (!m->disposed) {
            m->disposed = true;
            rs_scope_close(pool_scope);
        }
    }
    int rc = rs_scope_close(m->clients_scope);
    if (m->stop)
        return -1;
    MCHECK(m, rc == 0, "closing the clients' scope returned %d", rc);
    MCHECK(m, m->live == 0 && m->in_create == 0, "%d resources left, %d creations running", m->live, m->in_create);
    for (int i = 0; i < m->nres; i++)
        MCHECK(m, m->res[i].destroys == 1, "resource %d destroyed %d times", i, m->res[i].destroys);
    int prev = -1;
    for (int i = 0; i < m->grants; i++) {
        if (!m->token_seen[i])
            continue;
        MCHECK(m, prev < 0 || m->tokens[i] > m->tokens[prev], "grant %d has token %llu, not above grant %d's %llu", i,
               (unsigned long long)m->tokens[i], prev, prev < 0 ? 0ull : (unsigned long long)m->tokens[prev]);
        prev = i;
    }
    return m->stop ? -1 : 0;
}

static void run_scenario(const scenario *sc, coverage *cov)
{
    model *m = malloc(sizeof *m);
    cr_assert(m);
    rs__pool_refill_first_ms = INT64_MAX; /* a failed fill waits for demand or a destruction */
    for (int i = 0; i < sc->seeds; i++) {
        memset(m, 0, sizeof *m);
        m->seed = m->rng = sc->seed0 + (uint64_t)i;
        m->cov = cov;
        m->max = sc->max_lo + (unsigned)rnd(m, (int)(sc->max_hi - sc->max_lo + 1));
        m->min = (unsigned)rnd(m, (int)m->max + 1);
        m->fail_pct = sc->fail_pct;
        m->slow_pct = 40;
        m->discard_pct = 30;
        m->acquire_timeout_ms = chance(m, 50) ? HOUR_MS : 0;
        m->abrupt_end = i % 2;
        m->steps = sc->steps;
        int rc = rs_run(round_main, m, NULL);
        cr_assert_eq(rc, 0, "%s: seed %#llx failed (rs_run returned %d)", sc->name, (unsigned long long)m->seed, rc);
    }
    free(m);
}

Test(pool_model, one_resource, .timeout = 30)
{
    coverage cov = { 0 };
    run_scenario(&(scenario){ "one_resource", 1, 1, 10, 400, 200, 0x5eed0100 }, &cov);
    cr_assert(cov.handoffs && cov.created_to_other && cov.errors_to_waiter && cov.cancels_queued && cov.discards &&
              cov.tries && cov.disposals_in_flight);
}

Test(pool_model, small_pools, .timeout = 30)
{
    coverage cov = { 0 };
    run_scenario(&(scenario){ "small_pools", 2, 4, 10, 400, 200, 0x5eed0200 }, &cov);
    cr_assert(cov.handoffs && cov.created_to_other && cov.errors_to_waiter && cov.errors_dropped &&
              cov.cancels_queued && cov.cancels_granted && cov.cancels_holding && cov.discards && cov.min_refills &&
              cov.tries && cov.disposals_in_flight);
}

Test(pool_model, failing_creations, .timeout = 30)
{
    coverage cov = { 0 };
    run_scenario(&(scenario){ "failing_creations", 1, 4, 45, 400, 200, 0x5eed0300 }, &cov);
    cr_assert(cov.errors_to_waiter && cov.errors_dropped && cov.cancels_queued && cov.min_refills);
}

Test(pool_model, larger_pools, .timeout = 30)
{
    coverage cov = { 0 };
    run_scenario(&(scenario){ "larger_pools", 5, 8, 5, 500, 150, 0x5eed0400 }, &cov);
    cr_assert(cov.handoffs && cov.created_to_other && cov.cancels_queued && cov.discards && cov.min_refills);
}
