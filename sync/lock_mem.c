/* The in-memory lock: exclusive, or read-write (any number of readers or one
 * writer), on one priority wait queue.
 *
 * Invariants, true whenever no function of this file is running:
 *  1. excl != NULL (held exclusively or by a writer) implies readers == 0.
 *  2. The head of the queue cannot be granted: it wants exclusive/write and
 *     the lock is held, or it wants read and a writer holds it. (pump runs
 *     after every change that could make it grantable: a release, a waiter
 *     leaving without a grant.) Hence a free lock has an empty queue.
 *  3. Waiters are granted only from the head, in queue order; consecutive
 *     readers at the head are granted together. A new request is granted at
 *     once only if it is compatible with the holders and every queued waiter
 *     has a lower priority (it would be the head), so nothing barges past a
 *     waiter of equal or higher priority.
 *  4. The exclusive holder's grant is the record embedded in the lock; each
 *     reader's grant is a pooled record in held. The fast path (free lock,
 *     nobody queued) allocates nothing, arms no timer, makes no call. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "runtime/task.h"
#include "runtime/waitq.h"
#include "sync/guard.h"
#include "sync/lock_backend.h"
#include "sync/lock_mem.h"


static void mem_lock_first_use(void *rec)
{
    ((mem_lock *)rec)->xrec.gen = 1;
}

/* Lock objects embed their exclusive holder's grant record, so they come from
 * stable memory (a guard of a disposed lock still reads its record). A free
 * one links through base.ops; its xrec.gen keeps counting across reuses. */
static const rs__objpool_kind mem_lock_kind = {
    .slot = 1,
    .size = sizeof(mem_lock),
    .link = offsetof(mem_lock, base.ops),
    .per_slab = 16,
    .first_use = mem_lock_first_use,
};

static int release_excl(rs__grant *gr);
static int release_read(rs__grant *gr);

/* discard, held, token, lost, extend, resource: the defaults (not a lease).
 * rs_guard_release recognises the exclusive ops and releases inline. */
const rs__grant_ops rs__mem_excl_grant_ops = { .release = release_excl };
static const rs__grant_ops read_grant_ops = { .release = release_read };

#define grant_excl rs__mem_grant_excl

static rs__grant *grant_read(mem_lock *ml, rs_task *t)
{
    rs__grant *gr = rs__grant_alloc();
    if (__builtin_expect(!gr, 0))
        return NULL;
    gr->ops = &read_grant_ops;
    gr->obj = ml;
    gr->task = t;
    gr->n = RS_LOCK_READ;
    gr->token = ml->next_token++;
    rs__grant_link(&ml->held, gr);
    ml->readers++;
    return gr;
}

static inline rs__grant *grant_new(mem_lock *ml, rs_lock_mode mode, rs_task *t)
{
    return mode == RS_LOCK_READ ? grant_read(ml, t) : grant_excl(ml, mode, t);
}

static inline bool compatible(const mem_lock *ml, rs_lock_mode mode)
{
    return !ml->excl && (mode == RS_LOCK_READ || ml->readers == 0);
}

/* Grants the head while it can be granted (invariant 2). */
void rs__mem_pump(mem_lock *ml)
{
    rs__waiter *h;
    while ((h = rs__waitq_head(&ml->q)) && compatible(ml, (rs_lock_mode)h->n)) {
        rs_lock_mode mode = (rs_lock_mode)h->n;
        rs__grant *gr = grant_new(ml, mode, h->wait.task);
        if (!gr) {
            rs__waitq_grant(h, -ENOMEM);
            continue;
        }
        rs__slot_set(&((mem_waiter *)h)->slot, gr);
        rs__waitq_grant(h, 0);
        if (mode != RS_LOCK_READ)
            return;
    }
}

static int release_excl(rs__grant *gr)
{
    return rs__mem_release_excl(gr);
}

static int release_read(rs__grant *gr)
{
    mem_lock *ml = gr->obj;
    ml->readers--;
    rs__grant_unlink(&ml->held, gr);
    rs__grant_free(gr);
    if (rs__waitq_head(&ml->q))
        rs__mem_pump(ml);
    return 0;
}

/* A waiter leaves without a grant (deadline or cancellation): the ones
 * behind it may now be grantable. */
static void waiter_abort(rs__wait *w, int reason)
{
    mem_waiter *mw = (mem_waiter *)w;
    mem_lock *ml = mw->lock;
    rs__waitq_remove(&mw->w);
    rs__wait_wake(w, reason);
    rs__mem_pump(ml);
}

/* Queues the calling task t and parks it until a grant, its deadline or its
 * cancellation (rs__waitq_wait, unrolled: this is the path of every hand-off). */
static int wait_for_grant(mem_lock *ml, rs_lock_mode mode, const rs_acquire_opts *o, rs_guard *g, rs_task *t)
{
    mem_waiter mw;
    rs__wait_init_task(&mw.w.wait, t, waiter_abort);
    mw.w.n = mode;
    mw.lock = ml;
    rs__waitq_insert(&ml->q, &mw.w, o->priority);
    int rc = rs__wait_park(&mw.w.wait, o->timeout_ms ? rs__deadline_after_ms(o->timeout_ms) : 0);
    if (rc == 0)
        rs__guard_from_slot(g, &mw.slot);
    return rc;
}

/* excl is always the embedded record when set: no pointer to follow. */
static inline bool holds_exclusively(const mem_lock *ml, const rs_task *t)
{
    return ml->excl && ml->xrec.task == t;
}

/* Anything but "free and nobody queued": self-deadlock check, the priority
 * rule of invariant 3, and waiting. */
int rs__mem_acquire_slow(mem_lock *ml, rs_lock_mode mode, const rs_acquire_opts *o, rs_guard *g, rs_task *t)
{
    if (holds_exclusively(ml, t))
        return -EDEADLK;
    const rs__waiter *h = rs__waitq_head(&ml->q);
    if (compatible(ml, mode) && (!h || h->priority < o->priority)) {
        rs__grant *gr = grant_new(ml, mode, t);
        if (!gr)
            return -ENOMEM;
        rs__guard_set(g, gr);
        return 0;
    }
    return wait_for_grant(ml, mode, o, g, t);
}

static int mem_acquire(rs_lock *l, rs_lock_mode mode, const rs_acquire_opts *o, rs_guard *g)
{
    return rs__mem_acquire((mem_lock *)l, mode, o, g, rs__worker_get()->current);
}

static int mem_try_acquire(rs_lock *l, rs_lock_mode mode, rs_guard *g)
{
    mem_lock *ml = (mem_lock *)l;
    rs_task *t = rs__worker_get()->current;
    if (holds_exclusively(ml, t))
        return -EDEADLK;
    if (!compatible(ml, mode) || rs__waitq_head(&ml->q))
        return -EBUSY;
    rs__grant *gr = grant_new(ml, mode, t);
    if (!gr)
        return -ENOMEM;
    rs__guard_set(g, gr);
    return 0;
}

static void mem_stats(const rs_lock *l, rs_lock_stats *st)
{
    const mem_lock *ml = (const mem_lock *)l;
    st->readers = ml->readers;
    st->exclusive = ml->excl != NULL;
    st->writer = ml->excl && ml->excl->n == RS_LOCK_WRITE;
    st->pending = ml->q.len;
}

static void mem_dispose(rs_lock *l)
{
    mem_lock *ml = (mem_lock *)l;
    rs__waitq_wake_all(&ml->q, -ECANCELED);
    while (ml->held.head) {
        rs__grant *gr = ml->held.head;
        rs__grant_unlink(&ml->held, gr);
        rs__grant_free(gr);
    }
    ml->xrec.gen++; /* ends the exclusive grant, if any; the record stays readable */
    ml->excl = NULL;
    rs__objpool_free(&mem_lock_kind, ml);
}

const rs__lock_ops rs__mem_lock_ops = {
    .kind = "memory",
    .acquire = mem_acquire,
    .try_acquire = mem_try_acquire,
    .stats = mem_stats,
    .dispose = mem_dispose,
};

int rs__lock_mem_new(rs_scope *s, const rs_lock_opts *opts, rs_lock **out)
{
    (void)opts;
    mem_lock *ml = rs__objpool_alloc(&mem_lock_kind);
    if (!ml)
        return -ENOMEM;
    uint64_t gen = ml->xrec.gen;
    *ml = (mem_lock){ 0 };
    ml->base.ops = &rs__mem_lock_ops;
    ml->xrec.gen = gen;
    ml->xrec.ops = &rs__mem_excl_grant_ops;
    ml->xrec.obj = ml;
    ml->xrec.worker = s->worker;
    rs__waitq_init(&ml->q, NULL); /* waiters leave through waiter_abort */
    ml->next_token = 1;
    *out = &ml->base;
    return 0;
}
