/* The distributed lock object: rs_lock with a store (objects and invariants
 * in engine.h).
 *
 * Acquiring: the task queues on the key's local priority queue of this
 * thread. Only the head contends through the store, and only one contender
 * at a time (invariant 1). A contender that gets -EBUSY waits for the first
 * of: a store wake-up (watch), a local change (a release here, someone
 * queueing in front of it), or a jittered exponential backoff
 * (RS__DLOCK_BACKOFF_MIN_MS .. _MAX_MS, cut short by the store's hint of when
 * the leases in the way end); then it tries again. Its exclusive-class
 * attempts leave a write intent so that new readers everywhere keep out while
 * it waits. The acquire's timeout and the task's cancellation end the wait at
 * any point; a waiter that leaves without a grant withdraws its intent and
 * leaves nothing in the queue.
 *
 * Every grant is its own lease with its own token: exclusive/write grants use
 * the lock's owner (one at a time per key on this thread, so a same-owner
 * re-acquire can never merge two of them), read grants the owner plus "#r"
 * and 64 random bits, so that tasks sharing one lock object, lock objects
 * sharing an owner id, and processes sharing one all hold separate read
 * leases (a number counted per object would repeat across objects, and the
 * store would take the second reader for the first refreshing its lease). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/engine.h"
#include "runtime/task.h"

#define NS_PER_MS 1000000

/* ------------------------------------------------------------ waiting */

static void waiter_abort(rs__wait *w, int reason)
{
    rs__dwaiter_wake((dwaiter *)w, reason); /* the waiter leaves the queue itself */
}

/* Parks until woken (0: re-check), the time until passes (-ETIMEDOUT,
 * whether acquire deadline or backoff: the caller compares clocks), or the
 * task is cancelled (-ECANCELED). */
static int park(dwaiter *dw, int64_t until)
{
    rs__wait_init(&dw->w.wait, waiter_abort);
    dw->parked = true;
    int rc = rs__wait_park(&dw->w.wait, until);
    dw->parked = false;
    return rc;
}

static int64_t jittered_ns(int64_t backoff_ms)
{
    int64_t half = backoff_ms * NS_PER_MS / 2;
    return half + (int64_t)(rs__dlock_random() % (uint64_t)(half + 1));
}

/* A waiter that stops contending without a grant takes back what its
 * attempts may have left in the store: its write intent, and a lease that an
 * attempt without an answer may have been granted (its owner is this
 * waiter's alone: exclusive grants of the key are one at a time here, read
 * owners are numbered). */
static void withdraw_intent(dlock *l, dwaiter *dw, const lease *ls)
{
    if (!dw->intent && !dw->unsure)
        return;
    rs__shield sh;
    rs__shield_enter(&sh, l->st);
    if (dw->unsure)
        l->st->ops->release(l->st, l->dk->key, (rs_lock_mode)dw->w.n, ls->owner);
    if (dw->intent)
        l->st->ops->withdraw(l->st, l->dk->key, ls->owner);
    rs__shield_leave(&sh);
    dw->intent = dw->unsure = false;
}

static void give_back(dlock *l, const lease *ls, rs_lock_mode mode);

/* Whether a grant the store just made is an old lease of this thread's: one
 * the engine gave up as lost (renewal failed, or could not be scheduled)
 * while the store kept it, so that this exclusive/write attempt, under the
 * same owner, was answered as a same-owner refresh with the old token. A
 * lost lease is never taken back: it is given back and the caller tries
 * again, which then gets a new grant with a larger token. (Read grants have
 * owners of their own and are never refreshes.) */
static bool taken_back(dlock *l, const lease *ls, rs_lock_mode mode, uint64_t token)
{
    if (mode == RS_LOCK_READ || token > l->dk->top_token)
        return false;
    give_back(l, ls, mode);
    return true;
}

static bool my_turn(const dkey *dk, const dwaiter *dw)
{
    return rs__waitq_head(&dk->q) == &dw->w && rs__dkey_eligible(dk, (rs_lock_mode)dw->w.n, dw->lock->owner) &&
           (!dk->contender || dk->contender == dw);
}

/* Someone queued in front of the contender: it hands over. */
static void step_back(dlock *l, dwaiter *dw, const lease *ls)
{
    withdraw_intent(l, dw, ls);
    l->dk->contender = NULL;
    rs__dkey_kick(l->dk);
}

/* One store attempt by the contender; on -EBUSY sets *until to the end of
 * its backoff (bounded by deadline). */
static int attempt(dlock *l, dwaiter *dw, const lease *ls, int64_t deadline, int64_t *backoff_ms, int64_t *send,
                   uint64_t *token, int64_t *until)
{
    dkey *dk = l->dk;
    rs_lock_mode mode = (rs_lock_mode)dw->w.n;
    unsigned flags = mode == RS_LOCK_READ ? 0 : RS__ACQ_INTENT;
    rs__store_grant res = { 0, -1 };
    unsigned seen = dk->changes;
    *send = rs__clock_ns();
    int rc = l->st->ops->acquire(l->st, dk->key, mode, ls->owner, l->ttl_ms, flags, &res);
    if (rc == 0 && taken_back(l, ls, mode, res.token))
        return -EAGAIN;
    if (rc == 0) {
        *token = res.token;
        return 0;
    }
    if (flags)
        dw->intent = true;
    if (rc != -EBUSY) {
        /* No answer (connection lost, cancelled mid-flight): the server may
         * have granted it. Leaving will give that lease back. */
        dw->unsure = l->st->ops->suspends;
        return rc;
    }
    /* Watch from the first refusal on, then look again: a release between
     * the refusal and the watch would otherwise go unnoticed. */
    if (!dk->watching && dk->st->ops->watch && rs__dkey_watch(dk) == 0)
        return -EAGAIN;
    if (dk->changes != seen) {
        *backoff_ms = RS__DLOCK_BACKOFF_MIN_MS;
        return -EAGAIN;
    }
    int64_t wait = jittered_ns(*backoff_ms);
    /* Compared in ms first: retry_ms can be as long as a lease (any int64). */
    if (res.retry_ms >= 0 && res.retry_ms < wait / NS_PER_MS)
        wait = res.retry_ms * NS_PER_MS + NS_PER_MS;
    *backoff_ms = *backoff_ms * 2 > RS__DLOCK_BACKOFF_MAX_MS ? RS__DLOCK_BACKOFF_MAX_MS : *backoff_ms * 2;
    int64_t b = rs__clock_ns() + wait;
    *until = deadline && deadline < b ? deadline : b;
    return -EBUSY;
}

/* Waits for the turn and contends until granted (0), or -ETIMEDOUT,
 * -ECANCELED, -ENOMEM, a backend's error. */
static int contend(dlock *l, dwaiter *dw, const lease *ls, int64_t deadline, int64_t *send, uint64_t *token)
{
    dkey *dk = l->dk;
    rs_task *self = rs__worker_get()->current;
    int64_t backoff_ms = RS__DLOCK_BACKOFF_MIN_MS;
    for (;;) {
        if (l->disposing || rs__task_cancelled(self))
            return -ECANCELED;
        if (deadline && rs__clock_ns() >= deadline)
            return -ETIMEDOUT;
        int64_t until = deadline;
        if (my_turn(dk, dw)) {
            dk->contender = dw;
            int rc = attempt(l, dw, ls, deadline, &backoff_ms, send, token, &until);
            if (rc == -EAGAIN)
                continue;
            if (rc != -EBUSY)
                return rc;
        } else if (dk->contender == dw) {
            step_back(l, dw, ls);
            continue;
        }
        int rc = park(dw, until);
        if (rc != 0 && rc != -ETIMEDOUT)
            return rc;
    }
}

/* ------------------------------------------------------------ grants */

static int prepare(dlock *l, rs_lock_mode mode, lease **ls_out, rs__grant **gr_out)
{
    lease *ls = rs__lease_alloc(l);
    rs__grant *gr = ls ? rs__grant_alloc() : NULL;
    if (!gr) {
        if (ls)
            rs__lease_free(ls);
        return -ENOMEM;
    }
    if (mode == RS_LOCK_READ)
        snprintf(ls->owner, sizeof ls->owner, "%s#r%016llx", l->owner, (unsigned long long)rs__dlock_random());
    else
        strcpy(ls->owner, l->owner);
    *ls_out = ls;
    *gr_out = gr;
    return 0;
}

static void discard(lease *ls, rs__grant *gr)
{
    rs__lease_free(ls);
    rs__grant_free(gr);
}

static void install(dlock *l, lease *ls, rs__grant *gr, rs_lock_mode mode, uint64_t token, int64_t send)
{
    gr->ops = &rs__dlease_ops;
    gr->obj = l;
    gr->task = rs__worker_get()->current;
    gr->n = mode;
    gr->data = ls;
    gr->token = token;
    if (token > l->dk->top_token)
        l->dk->top_token = token;
    if (mode != RS_LOCK_READ)
        rs__lease_supersede_all(l->dk); /* the store says they are gone: the new grant is the only holder here */
    rs__lease_start(ls, gr, send);
}

/* The store granted (or may have granted) a lease that nobody will hold:
 * give it straight back. */
static void give_back(dlock *l, const lease *ls, rs_lock_mode mode)
{
    rs__shield sh;
    rs__shield_enter(&sh, l->st);
    l->st->ops->release(l->st, l->dk->key, mode, ls->owner);
    rs__shield_leave(&sh);
}

void rs__dlock_leave(dlock *l)
{
    if (--l->active)
        return;
    if (l->disposer) {
        rs__wait *w = l->disposer;
        l->disposer = NULL;
        rs__wait_wake(w, 0);
    } else if (l->ephemeral && !l->disposing && !l->held.head) {
        rs__scope_detach(l->base.scope, &l->base.res);
        rs__dkey_put(l->dk);
        rs__store_unref(l->st);
        free(l);
    }
}

/* ------------------------------------------------------------ lock ops */

static bool self_deadlock(const dlock *l)
{
    const rs__grant *ex = l->dk->excl;
    return ex && ex->task == rs__worker_get()->current;
}

static void leave_queue(dlock *l, dwaiter *dw, const lease *ls, int rc)
{
    dkey *dk = l->dk;
    if (rc != 0)
        withdraw_intent(l, dw, ls);
    rs__waitq_remove(&dw->w);
    l->pending--;
    if (dk->contender == dw)
        dk->contender = NULL;
    rs__dkey_unwatch_if_idle(dk);
    rs__dkey_kick(dk);
}

static int dl_acquire(rs_lock *base, rs_lock_mode mode, const rs_acquire_opts *o, rs_guard *g)
{
    dlock *l = (dlock *)base;
    dkey *dk = l->dk;
    if (self_deadlock(l))
        return -EDEADLK;
    if (l->disposing)
        return -ECANCELED;
    lease *ls;
    rs__grant *gr;
    int rc = prepare(l, mode, &ls, &gr);
    if (rc)
        return rc;
    dwaiter dw = { .lock = l };
    dw.w.n = mode;
    l->active++;
    l->pending++;
    rs__waitq_insert(&dk->q, &dw.w, o->priority);
    if (dk->contender && rs__waitq_head(&dk->q) == &dw.w)
        rs__dwaiter_wake(dk->contender, 0); /* it steps back for us */
    int64_t send = 0;
    uint64_t token = 0;
    rc = contend(l, &dw, ls, rs__deadline_after_ms(o->timeout_ms), &send, &token);
    if (rc == 0 && l->disposing) {
        give_back(l, ls, mode);
        rc = -ECANCELED;
    }
    if (rc == 0)
        install(l, ls, gr, mode, token, send); /* before the kick: the next head sees this holder */
    leave_queue(l, &dw, ls, rc);
    if (rc == 0)
        rs__guard_set(g, gr);
    else
        discard(ls, gr);
    rs__dlock_leave(l);
    return rc;
}

static int dl_try_acquire(rs_lock *base, rs_lock_mode mode, rs_guard *g)
{
    dlock *l = (dlock *)base;
    dkey *dk = l->dk;
    if (self_deadlock(l))
        return -EDEADLK;
    if (l->disposing)
        return -ECANCELED;
    if (dk->q.len || dk->contender || dk->excl)
        return -EBUSY; /* no barging past waiters, and certainly busy */
    lease *ls;
    rs__grant *gr;
    int rc = prepare(l, mode, &ls, &gr);
    if (rc)
        return rc;
    dwaiter dw = { .lock = l };
    dk->contender = &dw;
    l->active++;
    rs__store_grant res = { 0, -1 };
    int64_t send = rs__clock_ns();
    rc = l->st->ops->acquire(l->st, dk->key, mode, ls->owner, l->ttl_ms, 0, &res);
    if (rc == 0 && taken_back(l, ls, mode, res.token)) {
        send = rs__clock_ns();
        rc = l->st->ops->acquire(l->st, dk->key, mode, ls->owner, l->ttl_ms, 0, &res); /* the lost one is gone now */
    }
    if (rc != 0 && rc != -EBUSY && l->st->ops->suspends)
        give_back(l, ls, mode); /* no answer: it may have been granted */
    if (rc == 0 && l->disposing) {
        give_back(l, ls, mode);
        rc = -ECANCELED;
    }
    if (rc == 0)
        install(l, ls, gr, mode, res.token, send);
    dk->contender = NULL;
    rs__dkey_kick(dk);
    if (rc == 0)
        rs__guard_set(g, gr);
    else
        discard(ls, gr);
    rs__dlock_leave(l);
    return rc;
}

static void dl_stats(const rs_lock *base, rs_lock_stats *st)
{
    const dlock *l = (const dlock *)base;
    st->readers = l->readers;
    st->exclusive = l->excl != NULL;
    st->writer = l->excl && l->excl->n == RS_LOCK_WRITE;
    st->pending = l->pending;
}

static void dl_dispose(rs_lock *base)
{
    dlock *l = (dlock *)base;
    l->disposing = true;
    for (rs__waiter *w = l->dk->q.head; w; w = w->next)
        if (((dwaiter *)w)->lock == l)
            rs__dwaiter_wake((dwaiter *)w, -ECANCELED);
    /* Tasks still inside an acquire or a release of l leave first (a
     * contender may be in a store round trip); then the grants still held
     * are given back. While active == 0 no release is in flight, so each
     * grant left is released here exactly once. */
    for (;;) {
        while (l->active) {
            rs__wait w;
            rs__wait_init(&w, NULL);
            l->disposer = &w;
            rs__wait_park(&w, 0);
        }
        if (!l->held.head)
            break;
        rs__lease_release(l->held.head);
    }
    rs__dkey_put(l->dk);
    rs__store_unref(l->st);
    free(l);
}

static const rs__lock_ops dlock_ops = {
    .kind = "store",
    .acquire = dl_acquire,
    .try_acquire = dl_try_acquire,
    .stats = dl_stats,
    .dispose = dl_dispose,
};

/* ------------------------------------------------------------ creation */

int rs__dlock_create(rs_scope *s, rs_store *st, const rs_lock_opts *opts, rs_lock **out)
{
    (void)s;
    if (opts->ttl_ms < 0)
        return -EINVAL;
    if (opts->owner) {
        size_t n = strnlen(opts->owner, RS__DLOCK_OWNER_MAX + 1);
        if (n == 0 || n > RS__DLOCK_OWNER_MAX)
            return -EINVAL;
    }
    char full[RS__STORE_FULL_KEY_MAX + 1];
    int rc = rs__store_full_key(st, opts->key, full);
    if (rc)
        return rc;
    dlock *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    l->dk = rs__dkey_get(st, full);
    if (!l->dk) {
        free(l);
        return -ENOMEM;
    }
    l->st = st;
    l->ttl_ms = opts->ttl_ms ? opts->ttl_ms : RS__DLOCK_TTL_DEFAULT;
    l->no_renew = opts->no_renew;
    if (opts->owner)
        strcpy(l->owner, opts->owner);
    else
        rs__dlock_default_owner(l->owner);
    l->base.ops = &dlock_ops;
    rs__store_ref(st);
    *out = &l->base;
    return 0;
}

static int factory(rs_scope *s, const rs_lock_opts *opts, rs_lock **out)
{
    return rs__dlock_create(s, opts->store, opts, out);
}

void rs__dlock_register(void)
{
    rs__lock_register_distributed(factory);
}
