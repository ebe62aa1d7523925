/* Leases: the grants of distributed locks, their renewal and their loss.
 *
 * Life of a lease (engine.h has the record):
 *   start    the store granted it at send_ns; its end is at least send_ns +
 *            ttl on the store's clock. A timer is armed for the first renewal
 *            (ttl/3 later), or for the end with no_renew.
 *   renewal  the timer fires on the worker. The memory store never suspends,
 *            so the extend runs right there; a backend that suspends gets a
 *            system task (no user scope waits for it) for the round trip.
 *            extend -> 0: the end moves on, next renewal in ttl/3; -ENOLCK:
 *            lost; anything else (the server did not answer): retried every
 *            ttl/10 (10 ms .. 1 s) but never past the end known so far, where
 *            the lease counts as lost.
 *   lost     the signal aborts with -ENOLCK, rs_guard_held turns false, the
 *            local slot is given back (the next local waiter may contend) and
 *            nothing renews it again: a lost lease is never re-acquired.
 *   release  renewal is stopped first (timer disarmed, a renewal task
 *            cancelled and waited for), then the store round trip (skipped
 *            when lost: -ENOLCK), then the local slot, then the records.
 * At most one extend of a lease is in flight (busy); release and
 * rs_guard_extend wait for it to end (quiesce) before their own round trip. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/engine.h"
#include "runtime/objpool.h"
#include "runtime/task.h"

#define NS_PER_MS 1000000
#define RETRY_MIN_NS (10 * NS_PER_MS)
#define RETRY_MAX_NS (1000 * NS_PER_MS)

/* ------------------------------------------------------------ records */

/* Leases hold their guard's grant record and stay readable after release (a
 * stale guard may still look at them): stable memory from the worker's pool,
 * linked through next_free while free. */
static const rs__objpool_kind lease_kind = {
    .slot = 2,
    .size = sizeof(lease),
    .link = offsetof(lease, next_free),
    .per_slab = 16,
};

static void timer_fired(rs__timer *t);

lease *rs__lease_alloc(dlock *l)
{
    lease *ls = rs__objpool_alloc(&lease_kind);
    if (!ls)
        return NULL;
    memset(ls, 0, offsetof(lease, owner));
    ls->owner[0] = '\0';
    ls->lock = l;
    rs__timer_init(&ls->timer, timer_fired);
    rs__signal_init(&ls->lost_sig, rs__worker_get());
    rs__waitq_init(&ls->idle, NULL);
    return ls;
}

void rs__lease_free(lease *ls)
{
    ls->lock = NULL;
    ls->gr = NULL;
    rs__objpool_free(&lease_kind, ls);
}

/* ------------------------------------------------------------ local state */

static int64_t end_after(int64_t from_ns, int64_t ttl_ms)
{
    if (ttl_ms > (INT64_MAX - from_ns) / NS_PER_MS)
        return INT64_MAX;
    return from_ns + ttl_ms * NS_PER_MS;
}

static void give_back_local(lease *ls)
{
    if (!ls->local_held)
        return;
    ls->local_held = false;
    dlock *l = ls->lock;
    dkey *dk = l->dk;
    if (ls->mode == RS_LOCK_READ) {
        l->readers--;
        if (ls->key_prev)
            ls->key_prev->key_next = ls->key_next;
        else
            dk->read_leases = ls->key_next;
        if (ls->key_next)
            ls->key_next->key_prev = ls->key_prev;
        ls->key_prev = ls->key_next = NULL;
    } else {
        if (dk->excl == ls->gr)
            dk->excl = NULL;
        if (l->excl == ls->gr)
            l->excl = NULL;
    }
    rs__dkey_kick(dk);
}

static void mark_lost(lease *ls)
{
    if (ls->lost)
        return;
    ls->lost = true;
    rs__timer_disarm(&rs__worker_get()->timers, &ls->timer);
    rs__signal_abort(&ls->lost_sig, -ENOLCK);
    give_back_local(ls);
}

void rs__lease_supersede_all(dkey *dk)
{
    if (dk->excl)
        mark_lost(dk->excl->data);
    while (dk->read_leases)
        mark_lost(dk->read_leases); /* unlinks it (give_back_local) */
}

/* ------------------------------------------------------------ renewal */

/* When to renew: a third of the lease length from now, counted in
 * nanoseconds (in whole milliseconds a 1 ms lease would renew only at its
 * end). The sum saturates, as end_after does: a lease of any length is
 * valid. */
static int64_t renew_at(const lease *ls, int64_t now)
{
    int64_t third_ns = ls->ttl_ms > INT64_MAX / NS_PER_MS ? INT64_MAX / 3 : ls->ttl_ms * NS_PER_MS / 3;
    return third_ns > INT64_MAX - now ? INT64_MAX : now + third_ns;
}

/* Clamped in milliseconds, before the conversion can overflow. */
static int64_t retry_period_ns(const lease *ls)
{
    int64_t ms = ls->ttl_ms / 10;
    int64_t p = ms > RETRY_MAX_NS / NS_PER_MS ? RETRY_MAX_NS : ms * NS_PER_MS;
    return p < RETRY_MIN_NS ? RETRY_MIN_NS : p;
}

static void arm(lease *ls, int64_t at)
{
    /* A lease that cannot be watched over cannot be trusted: without a
     * timer slot (no memory) it is reported lost rather than let expire
     * silently. */
    if (rs__timer_arm(&rs__worker_get()->timers, &ls->timer, at) != 0)
        mark_lost(ls);
}

static void schedule_next(lease *ls, int64_t now)
{
    if (ls->lost || ls->stop)
        return;
    if (ls->lock->no_renew) {
        arm(ls, ls->end_ns);
    } else if (ls->failing) {
        int64_t at = now + retry_period_ns(ls);
        arm(ls, at < ls->end_ns ? at : ls->end_ns);
    } else {
        arm(ls, renew_at(ls, now));
    }
}

/* The answer of an extend sent at send_ns asking for ttl_ms. */
static void apply_extend(lease *ls, int rc, int64_t send_ns, int64_t ttl_ms)
{
    if (rc == 0) {
        ls->end_ns = end_after(send_ns, ttl_ms);
        ls->failing = false;
    } else if (rc == -ENOLCK) {
        mark_lost(ls);
    } else {
        ls->failing = true;
    }
}

/* One renewal round trip (suspends when the backend does). */
static void renew_once(lease *ls)
{
    dlock *l = ls->lock;
    int64_t send = rs__clock_ns();
    if (ls->failing && send >= ls->end_ns) {
        mark_lost(ls); /* no answer until the known end: it may be anyone's now */
        return;
    }
    int rc = l->st->ops->extend(l->st, l->dk->key, ls->mode, ls->owner, ls->ttl_ms);
    if (rc == -ECANCELED && ls->stop)
        return; /* cut short by a release: it decides from here */
    apply_extend(ls, rc, send, ls->ttl_ms);
    schedule_next(ls, rs__clock_ns());
}

static void end_busy(lease *ls)
{
    ls->busy = false;
    ls->renewer = NULL;
    rs__waitq_wake_all(&ls->idle, 0);
}

static int renew_task(void *arg)
{
    lease *ls = arg;
    ls->renewer = rs__worker_get()->current;
    if (!ls->stop && !ls->lost)
        renew_once(ls);
    end_busy(ls);
    return 0;
}

static void timer_fired(rs__timer *t)
{
    lease *ls = (lease *)((char *)t - offsetof(lease, timer));
    if (ls->lost || ls->stop)
        return;
    int64_t now = rs__clock_ns();
    if (ls->lock->no_renew) {
        if (now >= ls->end_ns)
            mark_lost(ls);
        else
            arm(ls, ls->end_ns);
        return;
    }
    if (!ls->lock->st->ops->suspends) {
        renew_once(ls);
        return;
    }
    ls->busy = true;
    if (rs__spawn_system(renew_task, ls, "lease-renewal", NULL) != 0) {
        end_busy(ls);
        ls->failing = true; /* try again shortly; lost at the end if it never works */
        schedule_next(ls, now);
    }
}

/* Stops renewal and waits until no extend of ls is in flight. Afterwards
 * nothing touches the lease until the caller clears stop (extend) or ends it
 * (release). Waiting is not cancellable: it is bounded by the backend's
 * op_timeout_ms, and the renewal task is cancelled to cut it short. */
static int quiesce(lease *ls)
{
    rs__worker *w = rs__worker_get();
    for (;;) {
        ls->stop = true;
        rs__timer_disarm(&w->timers, &ls->timer);
        if (!ls->busy)
            return 0;
        if (!w->current)
            return -EPERM;
        if (ls->renewer)
            rs_task_cancel(ls->renewer);
        rs__waiter wt;
        rs__wait_init(&wt.wait, NULL);
        rs__waitq_insert(&ls->idle, &wt, 0);
        rs__wait_park(&wt.wait, 0);
    }
}

void rs__lease_start(lease *ls, rs__grant *gr, int64_t send_ns)
{
    dlock *l = ls->lock;
    dkey *dk = l->dk;
    ls->gr = gr;
    ls->mode = (rs_lock_mode)gr->n;
    ls->ttl_ms = l->ttl_ms;
    ls->end_ns = end_after(send_ns, l->ttl_ms);
    ls->local_held = true;
    if (ls->mode == RS_LOCK_READ) {
        l->readers++;
        ls->key_prev = NULL;
        ls->key_next = dk->read_leases;
        if (dk->read_leases)
            dk->read_leases->key_prev = ls;
        dk->read_leases = ls;
    } else {
        dk->excl = gr;
        l->excl = gr;
    }
    rs__grant_link(&l->held, gr);
    schedule_next(ls, send_ns); /* counted from the request: a little early, never late */
}

/* ------------------------------------------------------------ grant ops */

static void end_grant(lease *ls)
{
    rs__grant *gr = ls->gr;
    rs__grant_unlink(&ls->lock->held, gr);
    rs__signal_dispose(&ls->lost_sig);
    rs__lease_free(ls);
    rs__grant_free(gr);
}

int rs__lease_release(rs__grant *gr)
{
    lease *ls = gr->data;
    if (ls->releasing)
        return -EALREADY; /* another copy of the guard is releasing it */
    dlock *l = ls->lock;
    ls->releasing = true;
    l->active++; /* a disposal waits for this release to finish */
    int rc = quiesce(ls);
    if (rc) {
        ls->releasing = false;
        rs__dlock_leave(l);
        return rc;
    }
    if (ls->lost) {
        rc = -ENOLCK;
    } else {
        rs__shield sh;
        rs__shield_enter(&sh, l->st);
        rc = l->st->ops->release(l->st, l->dk->key, ls->mode, ls->owner);
        rs__shield_leave(&sh);
        give_back_local(ls);
    }
    end_grant(ls);
    rs__dlock_leave(l); /* may free an ephemeral lock: l is not used after this */
    return rc;
}

static int lease_extend(rs__grant *gr, int64_t ttl_ms)
{
    lease *ls = gr->data;
    if (ls->releasing)
        return -EALREADY;
    if (ls->lost)
        return -ENOLCK;
    int rc = rs__checkpoint();
    if (rc)
        return rc;
    if ((rc = quiesce(ls)) != 0)
        return rc;
    if (ls->lost || ls->releasing) {
        /* lost, or released through a copy of the guard, while we waited */
        return ls->lost ? -ENOLCK : -EALREADY;
    }
    ls->busy = true;
    dlock *l = ls->lock;
    int64_t send = rs__clock_ns();
    rc = l->st->ops->extend(l->st, l->dk->key, ls->mode, ls->owner, ttl_ms);
    if (rc == 0)
        ls->ttl_ms = ttl_ms; /* later renewals use the new length */
    apply_extend(ls, rc, send, ttl_ms);
    ls->stop = false;
    schedule_next(ls, rs__clock_ns());
    end_busy(ls);
    return rc;
}

/* Past its known end the lease is unconfirmed, even if no timer has said so
 * yet: there is no renewal (no_renew), or the worker's thread was busy or
 * blocked when renewals were due, and another owner may hold the key by now.
 * Never assumed: it counts as held again only if a late renewal confirms it
 * (the store had not let it go). */
static bool lease_held(const rs__grant *gr)
{
    const lease *ls = gr->data;
    return !ls->lost && rs__clock_ns() < ls->end_ns;
}

static rs_signal *lease_lost(rs__grant *gr)
{
    return &((lease *)gr->data)->lost_sig;
}

const rs__grant_ops rs__dlease_ops = {
    .release = rs__lease_release,
    .held = lease_held,
    .lost = lease_lost,
    .extend = lease_extend,
};
