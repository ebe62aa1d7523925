/* The resource pool: idle resources handed out in priority order, new ones
 * created in the background for the waiter that needs them, health checks,
 * idle shrinking and the retries of a failed fill to min in a background
 * task (the maintainer), disposal at scope close.
 *
 * Counts: idle (in the idle list, or taken out of it for a health check),
 * in_use (held by a guard), creating (a background task runs create),
 * destroying (destroy runs). stats.total = idle + in_use + creating; a new
 * creation starts only while idle + in_use + creating + destroying < max, so
 * max bounds the resources that exist at any moment.
 *
 * Invariants, true whenever no function of this file is running:
 *  1. The idle list is non-empty only while the queue is empty (pump hands
 *     idle resources to the head waiters after every change).
 *  2. A creation is either for one queued waiter (job->for_waiter and
 *     waiter->job name each other) or for nobody (the min fill, or its waiter
 *     left). Its resource goes to the head waiter (priority, then arrival,
 *     exactly like a released one; the waiter it was for, if not the head,
 *     stays queued and pump starts another creation for it when there is
 *     room), else to the idle list; its error goes to the waiter it was for
 *     only, else nowhere.
 *  3. Every callback (create, destroy, check) runs in a task: create in a
 *     background task per creation, check and idle destruction in the
 *     maintainer task, other destroys in the task that caused them (discard,
 *     disposal), inside a shielded scope so that a cancelled caller does not
 *     interrupt the cleanup.
 *  4. busy counts the background tasks and destroys in flight. Disposal
 *     cancels the background tasks and waits until busy is 0; the pool's
 *     memory is freed once disposal finished and no resource is checked out
 *     (a resource still in use at disposal is destroyed when its guard is
 *     released).
 *  5. refill_at != 0 only while the maintainer runs and wakes by then: a
 *     failed fill to min always has a retry coming (unless the wait is
 *     "never"), and a success brings it forward to now. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <ringscope/sync.h>

#include "runtime/scope.h"
#include "runtime/task.h"
#include "runtime/timer.h"
#include "runtime/waitq.h"
#include "sync/guard.h"
#include "sync/pool.h"

/* The wait before a failed min fill is tried again: the first, doubled after
 * each failure in a row, never longer than the last. */
int64_t rs__pool_refill_first_ms = 100;
#define REFILL_LONGEST_MS 10000

typedef struct pool_item {
    struct pool_item *prev, *next; /* idle list: most recently used first */
    void *res;
    int64_t idle_since;            /* ns */
    uint64_t checked_round;
} pool_item;

typedef struct pool_waiter pool_waiter;

typedef struct pool_job {
    struct pool_job *prev, *next;
    rs_pool *pool;
    rs_task *task;           /* while it runs: disposal cancels it */
    pool_waiter *for_waiter; /* the waiter a creation is for, or NULL */
    pool_item *item;         /* preallocated for the created resource */
} pool_job;

struct pool_waiter {
    rs__waiter w;
    rs__grant_slot slot;
    rs_pool *pool;
    pool_job *job; /* the creation running for this waiter */
};

typedef struct maint_wait {
    rs__wait wait;
    rs_pool *pool;
} maint_wait;

struct rs_pool {
    rs__scope_res res;
    rs_pool_opts o;
    rs__waitq q;
    pool_item *idle_head, *idle_tail;
    unsigned idle, in_use, creating, destroying;
    rs__grant_list held;
    pool_job *jobs;
    unsigned busy;
    rs__wait *disposer;       /* disposal waiting for busy == 0 */
    maint_wait *maint;        /* the maintainer, while it sleeps */
    int64_t maint_deadline;   /* when it wakes up by itself (0: never) */
    int64_t next_check;       /* ns */
    int64_t refill_at;        /* ns: a failed min fill is tried again then (0: none due) */
    int64_t refill_wait_ms;   /* the wait after the next failure (0: the first) */
    bool maintained;          /* the maintainer task runs */
    uint64_t round;
    uint64_t next_token;
    rs__worker *worker; /* the owning scope's: tasks of other runtimes get -EPERM */
    bool disposed, dispose_done;
    /* A disposed pool with resources still checked out waits for their
     * releases; if its runtime ends first, this resource of the runtime's
     * system scope destroys them then (no release can come any more). */
    rs__scope_res remnant;
    rs_scope *remnant_scope;
};

static int pool_release(rs__grant *gr);
static int pool_discard(rs__grant *gr);
static bool pool_held(const rs__grant *gr);
static void *pool_resource(const rs__grant *gr);

static const rs__grant_ops pool_grant_ops = {
    .release = pool_release,
    .discard = pool_discard,
    .held = pool_held,
    .resource = pool_resource,
};

static void pump(rs_pool *p);
static void ensure_min(rs_pool *p);
static void refill_later(rs_pool *p);
static void refill_now(rs_pool *p);

static inline unsigned total(const rs_pool *p)
{
    return p->idle + p->in_use + p->creating;
}

static inline bool may_create(const rs_pool *p)
{
    return !p->disposed && total(p) + p->destroying < p->o.max;
}

/* base_ns + ms milliseconds, or INT64_MAX ("never") when that does not fit
 * in an int64_t: a huge option (INT64_MAX ms) must not overflow and wrap into
 * the past, which would expire idle resources at once. */
static int64_t ns_after(int64_t base_ns, int64_t ms)
{
    int64_t ns, t;
    if (__builtin_mul_overflow(ms, (int64_t)1000000, &ns) || __builtin_add_overflow(base_ns, ns, &t))
        return INT64_MAX;
    return t;
}

/* ------------------------------------------------------------ idle list */

/* Keeps the list ordered by idle_since, newest first (the tail expires first). */
static void idle_insert(rs_pool *p, pool_item *it)
{
    pool_item *after = NULL, *before = p->idle_head;
    while (before && before->idle_since > it->idle_since) {
        after = before;
        before = before->next;
    }
    it->prev = after;
    it->next = before;
    if (after)
        after->next = it;
    else
        p->idle_head = it;
    if (before)
        before->prev = it;
    else
        p->idle_tail = it;
}

static void idle_unlink(rs_pool *p, pool_item *it)
{
    if (it->prev)
        it->prev->next = it->next;
    else
        p->idle_head = it->next;
    if (it->next)
        it->next->prev = it->prev;
    else
        p->idle_tail = it->prev;
    it->prev = it->next = NULL;
}

static void poke_maintainer(rs_pool *p, int64_t when);

/* A resource becomes idle (counted by the caller). */
static void idle_put(rs_pool *p, pool_item *it)
{
    it->idle_since = rs__clock_ns();
    idle_insert(p, it);
    if (p->o.idle_timeout_ms > 0)
        poke_maintainer(p, ns_after(it->idle_since, p->o.idle_timeout_ms));
}

/* ------------------------------------------------------------ callbacks */

/* The user's callbacks each run in a scope of their own: what they see as
 * rs_current_scope(). Cancelling it stops that callback, not the runtime's
 * background scope that the pool's tasks run in; a scope the callback opened
 * and left open is closed (waiting for its tasks) before its own, which
 * otherwise could not be closed. NULL: no scope (outside a task, or none
 * could be opened), and the callback runs where the caller is. */
static rs_scope *callback_scope_open(const char *name, bool shield)
{
    rs_scope *s = NULL;
    if (rs_current_task() && rs_scope_open(&(rs_scope_opts){ .name = name, .shield = shield }, &s) != 0)
        s = NULL;
    return s;
}

static void callback_scope_close(rs_scope *s)
{
    if (!s)
        return;
    rs__scope_close_down_to(rs_current_task(), s);
    rs_scope_close(s);
}

/* Shielded, so that a cancelled caller does not interrupt the cleanup. */
static void call_destroy(rs_pool *p, void *res)
{
    if (!p->o.destroy)
        return;
    rs_scope *s = callback_scope_open("pool-destroy", true);
    p->o.destroy(p->o.ctx, res);
    callback_scope_close(s);
}

static int call_create(rs_pool *p, void **res)
{
    rs_scope *s = callback_scope_open("pool-create", false);
    int rc = p->o.create(p->o.ctx, res);
    callback_scope_close(s);
    return rc;
}

static bool call_check(rs_pool *p, void *res)
{
    rs_scope *s = callback_scope_open("pool-check", false);
    bool ok = p->o.check(p->o.ctx, res);
    callback_scope_close(s);
    return ok;
}

/* Frees the pool once nothing can reach it any more. Last use of p. */
static void maybe_finish(rs_pool *p)
{
    if (!p->disposed || p->busy)
        return;
    if (p->disposer) {
        rs__wait *w = p->disposer;
        p->disposer = NULL;
        rs__wait_wake(w, 0);
    } else if (p->dispose_done && p->in_use == 0) {
        if (p->remnant_scope)
            rs__scope_detach(p->remnant_scope, &p->remnant);
        free(p);
    }
}

/* Destroys a resource that no count holds any more. May suspend, and the
 * pool may be disposed meanwhile: then this may be the last use of p (the
 * caller must not touch p afterwards unless it holds a busy count). Not
 * inlined: its callers that go on using p hold a busy count (a job), which
 * GCC cannot see, and inlined it would report their use of p as a use after
 * the free in maybe_finish. (A cold path: a destruction.) */
static __attribute__((noinline)) void destroy_item(rs_pool *p, pool_item *it)
{
    p->busy++;
    p->destroying++;
    call_destroy(p, it->res);
    free(it);
    p->destroying--;
    p->busy--;
    if (!p->disposed) {
        pump(p);
        ensure_min(p);
    } else {
        maybe_finish(p);
    }
}

/* ------------------------------------------------------------ granting */

static rs__grant *grant_new(rs_pool *p, pool_item *it, rs_task *t)
{
    rs__grant *gr = rs__grant_alloc();
    if (!gr)
        return NULL;
    gr->ops = &pool_grant_ops;
    gr->obj = p;
    gr->task = t;
    gr->n = 0;
    gr->data = it;
    gr->token = p->next_token++;
    rs__grant_link(&p->held, gr);
    p->in_use++;
    return gr;
}

static void unbind(pool_waiter *pw)
{
    if (pw->job) {
        pw->job->for_waiter = NULL;
        pw->job = NULL;
    }
}

/* Hands it (counted as idle by the caller, now leaving idle) to a queued waiter. */
static void give(rs_pool *p, pool_waiter *pw, pool_item *it)
{
    unbind(pw);
    rs__grant *gr = grant_new(p, it, pw->w.wait.task);
    if (!gr) {
        p->idle++;
        idle_put(p, it);
        rs__waitq_grant(&pw->w, -ENOMEM);
        return;
    }
    rs__slot_set(&pw->slot, gr);
    rs__waitq_grant(&pw->w, 0);
}

static int start_create(rs_pool *p, pool_waiter *pw);

/* Restores invariants 1 and 2 after any change. Never suspends. */
static void pump(rs_pool *p)
{
    if (p->disposed)
        return;
    rs__waiter *h;
    while ((h = rs__waitq_head(&p->q)) && p->idle_head) {
        pool_item *it = p->idle_head;
        idle_unlink(p, it);
        p->idle--;
        give(p, (pool_waiter *)h, it);
    }
    /* Waiters that nothing is being created for, in queue order, while there is room. */
    for (h = rs__waitq_head(&p->q); h && may_create(p);) {
        pool_waiter *pw = (pool_waiter *)h;
        h = h->next;
        if (pw->job)
            continue;
        int rc = start_create(p, pw);
        if (rc)
            rs__waitq_grant(&pw->w, rc);
    }
}

/* ------------------------------------------------------------ background tasks */

static void job_link(rs_pool *p, pool_job *j)
{
    j->prev = NULL;
    j->next = p->jobs;
    if (p->jobs)
        p->jobs->prev = j;
    p->jobs = j;
    p->busy++;
}

/* Last use of the job; may free the pool. */
static void job_end(pool_job *j)
{
    rs_pool *p = j->pool;
    if (j->prev)
        j->prev->next = j->next;
    else
        p->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    free(j);
    p->busy--;
    pump(p);
    maybe_finish(p);
}

static int create_task(void *arg)
{
    pool_job *j = arg;
    rs_pool *p = j->pool;
    pool_item *it = j->item;
    j->task = rs_current_task();
    void *res = NULL;
    int rc = p->disposed ? -ECANCELED : call_create(p, &res);
    if (rc > 0)
        rc = -EIO; /* create must return 0 or a negative errno */
    j->task = NULL;
    p->creating--;
    pool_waiter *pw = j->for_waiter;
    if (pw)
        unbind(pw);
    rs__waiter *h;
    if (rc == 0) {
        it->res = res;
        refill_now(p); /* the server answers again */
        if (p->disposed) {
            destroy_item(p, it);
        } else if ((h = rs__waitq_head(&p->q))) {
            give(p, (pool_waiter *)h, it); /* invariant 2: the head, not necessarily pw */
        } else {
            p->idle++;
            idle_put(p, it);
        }
    } else {
        free(it);
        if (pw)
            rs__waitq_grant(&pw->w, rc); /* the waiter's error ... */
        refill_later(p);                 /* ... and min is still owed, also if this creation counted towards it */
    }
    job_end(j);
    return 0; /* a background task never fails its (system) scope */
}

/* Starts a creation, for pw or (NULL) for nobody. 0 or a negative errno. */
static int start_create(rs_pool *p, pool_waiter *pw)
{
    pool_job *j = calloc(1, sizeof *j);
    pool_item *it = calloc(1, sizeof *it);
    if (!j || !it) {
        free(j);
        free(it);
        return -ENOMEM;
    }
    j->pool = p;
    j->item = it;
    int rc = rs__spawn_system(create_task, j, "pool-create", NULL);
    if (rc) {
        free(j);
        free(it);
        return rc;
    }
    job_link(p, j);
    p->creating++;
    if (pw) {
        j->for_waiter = pw;
        pw->job = j;
    }
    return 0;
}

static void ensure_min(rs_pool *p)
{
    while (may_create(p) && total(p) < p->o.min)
        if (start_create(p, NULL) != 0)
            return;
}

/* ------------------------------------------------------------ maintainer */

static void maint_abort(rs__wait *w, int reason)
{
    maint_wait *mw = (maint_wait *)w;
    mw->pool->maint = NULL;
    rs__wait_wake(w, reason);
}

/* Wakes the sleeping maintainer if it would sleep past `when` (ns). */
static void poke_maintainer(rs_pool *p, int64_t when)
{
    if (p->maint && (p->maint_deadline == 0 || when < p->maint_deadline)) {
        maint_wait *mw = p->maint;
        p->maint = NULL;
        rs__wait_wake(&mw->wait, 0);
    }
}

/* When the maintainer must wake by itself (0: never). Only for work it will
 * do then: a check time counts only with a check function (maintain_task
 * advances next_check only after a round), or a past next_check would make
 * it spin; INT64_MAX (a time too far to express) is never. */
static int64_t next_wakeup(const rs_pool *p)
{
    int64_t t = p->o.check_interval_ms > 0 && p->o.check ? p->next_check : 0;
    if (p->o.idle_timeout_ms > 0 && p->idle_tail && total(p) > p->o.min) {
        int64_t expiry = ns_after(p->idle_tail->idle_since, p->o.idle_timeout_ms);
        if (!t || expiry < t)
            t = expiry;
    }
    if (p->refill_at && (!t || p->refill_at < t))
        t = p->refill_at;
    return t == INT64_MAX ? 0 : t;
}

/* Destroys the resources idle longer than idle_timeout_ms, down to min. */
static void shrink(rs_pool *p)
{
    while (!p->disposed && p->idle_tail && total(p) > p->o.min &&
           rs__clock_ns() >= ns_after(p->idle_tail->idle_since, p->o.idle_timeout_ms)) {
        pool_item *it = p->idle_tail;
        idle_unlink(p, it);
        p->idle--;
        destroy_item(p, it);
    }
}

/* Checks every resource that was idle when the round began, oldest first.
 * A resource under check counts as idle but cannot be handed out. One that
 * became idle during the round (idle_since after its start: the list is
 * ordered by idle_since) waits for the next round. */
static void check_round(rs_pool *p)
{
    uint64_t round = ++p->round;
    int64_t began = rs__clock_ns();
    for (;;) {
        pool_item *it = p->idle_tail;
        while (it && it->checked_round == round)
            it = it->prev;
        if (!it || it->idle_since > began || p->disposed)
            return;
        it->checked_round = round;
        idle_unlink(p, it);
        bool ok = call_check(p, it->res);
        if (ok && !p->disposed) {
            idle_insert(p, it); /* keeps its idle_since */
            pump(p);
        } else {
            p->idle--;
            destroy_item(p, it);
        }
    }
}

static int maintain_task(void *arg)
{
    pool_job *j = arg;
    rs_pool *p = j->pool;
    j->task = rs_current_task();
    while (!p->disposed && rs__checkpoint() == 0) {
        maint_wait mw = { .pool = p };
        rs__wait_init(&mw.wait, maint_abort);
        p->maint = &mw;
        p->maint_deadline = next_wakeup(p);
        int rc = rs__wait_park(&mw.wait, p->maint_deadline);
        p->maint = NULL;
        if (rc == -ECANCELED || p->disposed)
            break;
        if (p->refill_at && rs__clock_ns() >= p->refill_at) {
            p->refill_at = 0;
            ensure_min(p);
        }
        if (p->o.idle_timeout_ms > 0)
            shrink(p);
        if (p->o.check_interval_ms > 0 && p->o.check && rs__clock_ns() >= p->next_check) {
            check_round(p);
            p->next_check = ns_after(rs__clock_ns(), p->o.check_interval_ms);
        }
    }
    j->task = NULL;
    job_end(j);
    return 0;
}

static int start_maintainer(rs_pool *p)
{
    pool_job *j = calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    j->pool = p;
    int rc = rs__spawn_system(maintain_task, j, "pool-maintain", NULL);
    if (rc) {
        free(j);
        return rc;
    }
    job_link(p, j);
    p->maintained = true;
    return 0;
}

/* A creation for nobody failed: while below min, the maintainer tries the
 * fill again after a wait that doubles with each failure in a row (a server
 * that is down costs a creation now and then, not a busy loop). Demand and
 * destructions still start creations meanwhile, as they always do. */
static void refill_later(rs_pool *p)
{
    if (p->disposed || p->refill_at || total(p) >= p->o.min)
        return;
    int64_t wait = p->refill_wait_ms ? p->refill_wait_ms : rs__pool_refill_first_ms;
    int64_t at = ns_after(rs__clock_ns(), wait);
    if (wait <= 0 || at == INT64_MAX)
        return; /* never */
    p->refill_wait_ms = wait >= REFILL_LONGEST_MS / 2 ? REFILL_LONGEST_MS : wait * 2;
    if (!p->maintained && start_maintainer(p) != 0)
        return; /* no task to wait in: demand and destructions still refill */
    p->refill_at = at;
    poke_maintainer(p, at);
}

/* A creation succeeded: the next failure waits the first wait again, and a
 * fill still waiting for its retry is tried at once. */
static void refill_now(rs_pool *p)
{
    p->refill_wait_ms = 0;
    if (p->refill_at) {
        p->refill_at = rs__clock_ns();
        poke_maintainer(p, p->refill_at);
    }
}

/* ------------------------------------------------------------ guards */

static int pool_release(rs__grant *gr)
{
    rs_pool *p = gr->obj;
    pool_item *it = gr->data;
    rs__grant_unlink(&p->held, gr);
    rs__grant_free(gr);
    if (p->disposed) {
        /* The pool is gone: the resource it lent is destroyed now. */
        p->busy++;
        p->destroying++;
        call_destroy(p, it->res);
        free(it);
        p->destroying--;
        p->busy--;
        p->in_use--;
        maybe_finish(p);
        return -EALREADY;
    }
    p->in_use--;
    rs__waiter *h = rs__waitq_head(&p->q);
    if (h) {
        give(p, (pool_waiter *)h, it); /* straight to the head waiter: no barging */
    } else {
        p->idle++;
        idle_put(p, it);
    }
    return 0;
}

static int pool_discard(rs__grant *gr)
{
    rs_pool *p = gr->obj;
    if (p->disposed)
        return pool_release(gr);
    pool_item *it = gr->data;
    rs__grant_unlink(&p->held, gr);
    rs__grant_free(gr);
    p->in_use--;
    destroy_item(p, it);
    return 0;
}

static bool pool_held(const rs__grant *gr)
{
    const rs_pool *p = gr->obj;
    return !p->disposed;
}

static void *pool_resource(const rs__grant *gr)
{
    const pool_item *it = gr->data;
    return it->res;
}

/* ------------------------------------------------------------ disposal */

/* The runtime ends (its system scope is finished) while guards of a disposed
 * pool are still held: nothing can release them in this runtime any more.
 * Each grant ends (its guard then reads as released: -EALREADY) and its
 * resource is destroyed, here, in the runtime's last task. */
static void pool_remnant_dispose(rs__scope_res *r)
{
    rs_pool *p = (rs_pool *)((char *)r - offsetof(rs_pool, remnant));
    p->remnant_scope = NULL; /* detached already by the scope */
    /* A release of a disposed pool's grant does exactly that; the release
     * of the last one (held is never empty here) frees the pool. */
    for (bool last = false; !last;) {
        rs__grant *gr = p->held.head;
        last = gr->next == NULL;
        pool_release(gr);
    }
}

static void pool_dispose(rs__scope_res *r)
{
    rs_pool *p = (rs_pool *)r;
    p->disposed = true;
    rs__waiter *h;
    while ((h = rs__waitq_head(&p->q))) {
        unbind((pool_waiter *)h);
        rs__waitq_grant(h, -ECANCELED);
    }
    for (pool_job *j = p->jobs; j; j = j->next)
        if (j->task)
            rs_task_cancel(j->task);
    if (p->maint) {
        maint_wait *mw = p->maint;
        p->maint = NULL;
        rs__wait_wake(&mw->wait, -ECANCELED);
    }
    p->busy++; /* the destroys below must not finish the pool under us */
    while (p->idle_head) {
        pool_item *it = p->idle_head;
        idle_unlink(p, it);
        p->idle--;
        destroy_item(p, it);
    }
    p->busy--;
    while (p->busy) {
        rs__wait w;
        rs__wait_init(&w, NULL);
        p->disposer = &w;
        rs__wait_park(&w, 0);
    }
    p->dispose_done = true;
    /* Resources still checked out are destroyed when their guards are
     * released, or when the runtime ends if that comes first. */
    if (p->in_use == 0) {
        free(p);
        return;
    }
    rs_scope *system = rs__worker_get()->system;
    if (system) {
        p->remnant.dispose = pool_remnant_dispose;
        p->remnant_scope = system;
        rs__scope_attach(system, &p->remnant);
    }
}

/* ------------------------------------------------------------ public */

static bool opts_valid(const rs_pool_opts *o)
{
    return o && o->create && o->max > 0 && o->min <= o->max && o->acquire_timeout_ms >= 0 &&
           o->check_interval_ms >= 0 && o->idle_timeout_ms >= 0;
}

int rs_pool_new(rs_scope *s, const rs_pool_opts *opts, rs_pool **out)
{
    if (!out || !opts_valid(opts))
        return -EINVAL;
    rs__worker *w = rs__worker_get();
    if (!w || !w->current)
        return -EPERM; /* its creations run in tasks: a pool always needs one */
    int rc = rs__owner_scope(&s);
    if (rc)
        return rc;
    rs_pool *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->o = *opts;
    p->worker = w;
    rs__waitq_init(&p->q, NULL);
    p->next_token = 1;
    if (opts->check_interval_ms > 0)
        p->next_check = ns_after(rs__clock_ns(), opts->check_interval_ms);
    if ((opts->check_interval_ms > 0 && opts->check) || opts->idle_timeout_ms > 0) {
        rc = start_maintainer(p);
        if (rc) {
            free(p);
            return rc;
        }
    }
    p->res.dispose = pool_dispose;
    rs__scope_attach(s, &p->res);
    ensure_min(p);
    *out = p;
    return 0;
}

static void pool_waiter_abort(rs__wait *w, int reason)
{
    pool_waiter *pw = (pool_waiter *)w;
    unbind(pw);
    rs__waitq_remove(&pw->w);
    rs__wait_wake(w, reason);
    pump(pw->pool);
}

int rs_pool_acquire(rs_pool *p, const rs_acquire_opts *o, rs_guard *g)
{
    if (!p || !g || (o && o->timeout_ms < 0))
        return -EINVAL;
    int rc = rs__checkpoint();
    if (rc)
        return rc;
    rs__worker *w = rs__worker_get();
    if (w != p->worker)
        return -EPERM;
    if (p->disposed)
        return -ECANCELED;
    rs_task *t = w->current;
    int priority = o ? o->priority : 0;
    int64_t timeout = o && o->timeout_ms ? o->timeout_ms : p->o.acquire_timeout_ms;
    const rs__waiter *h = rs__waitq_head(&p->q);
    if (p->idle_head && (!h || h->priority < priority)) {
        pool_item *it = p->idle_head;
        rs__grant *gr = grant_new(p, it, t);
        if (!gr)
            return -ENOMEM;
        idle_unlink(p, it);
        p->idle--;
        rs__guard_set(g, gr);
        return 0;
    }
    pool_waiter pw = { .pool = p };
    rs__wait_init(&pw.w.wait, pool_waiter_abort);
    rs__waitq_insert(&p->q, &pw.w, priority);
    pump(p);
    rc = rs__wait_park(&pw.w.wait, rs__deadline_after_ms(timeout));
    if (rc == 0)
        rs__guard_from_slot(g, &pw.slot);
    return rc;
}

int rs_pool_try_acquire(rs_pool *p, rs_guard *g)
{
    if (!p || !g)
        return -EINVAL;
    rs__worker *w = rs__worker_get();
    if (!w || !w->current || w != p->worker)
        return -EPERM;
    if (p->disposed || !p->idle_head || rs__waitq_head(&p->q))
        return -EBUSY;
    pool_item *it = p->idle_head;
    rs__grant *gr = grant_new(p, it, w->current);
    if (!gr)
        return -ENOMEM;
    idle_unlink(p, it);
    p->idle--;
    rs__guard_set(g, gr);
    return 0;
}

int rs_pool_stats_get(const rs_pool *p, rs_pool_stats *st)
{
    if (!p || !st)
        return -EINVAL;
    st->idle = p->idle;
    st->in_use = p->in_use;
    st->creating = p->creating;
    st->total = total(p);
    st->waiting = p->q.len;
    return 0;
}
