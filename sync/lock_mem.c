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
 *  4. Every live grant is in held; the fast path allocates nothing but a
 *     pooled record and arms no timer. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "runtime/task.h"
#include "runtime/waitq.h"
#include "sync/guard.h"
#include "sync/lock_backend.h"

typedef struct mem_lock {
    struct rs_lock base;
    rs__waitq q;
    rs__grant *excl;     /* the exclusive holder or the writer */
    unsigned readers;
    rs__grant_list held; /* every live grant, for disposal */
    uint64_t next_token; /* fencing tokens: 1, 2, 3 ... */
} mem_lock;

typedef struct mem_waiter {
    rs__waiter w; /* w.n: the mode */
    rs__grant_slot slot;
} mem_waiter;

static int mem_release(rs__grant *gr);

static const rs__grant_ops mem_grant_ops = {
    .release = mem_release,
    /* discard, held, token, lost, extend, resource: the defaults (not a lease) */
};

static inline rs__grant *grant_new(mem_lock *ml, rs_lock_mode mode, rs_task *t)
{
    rs__grant *gr = rs__grant_alloc();
    if (__builtin_expect(!gr, 0))
        return NULL;
    gr->ops = &mem_grant_ops;
    gr->obj = ml;
    gr->task = t;
    gr->n = mode;
    gr->token = ml->next_token++;
    rs__grant_link(&ml->held, gr);
    if (mode == RS_LOCK_READ)
        ml->readers++;
    else
        ml->excl = gr;
    return gr;
}

static inline bool compatible(const mem_lock *ml, rs_lock_mode mode)
{
    return !ml->excl && (mode == RS_LOCK_READ || ml->readers == 0);
}

/* Grants the head while it can be granted (invariant 2). */
static void pump(mem_lock *ml)
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

static void kick(rs__waitq *q)
{
    pump((mem_lock *)((char *)q - offsetof(mem_lock, q)));
}

static int mem_release(rs__grant *gr)
{
    mem_lock *ml = gr->obj;
    if (gr->n == RS_LOCK_READ)
        ml->readers--;
    else
        ml->excl = NULL;
    rs__grant_unlink(&ml->held, gr);
    rs__grant_free(gr);
    if (rs__waitq_head(&ml->q))
        pump(ml);
    return 0;
}

static inline bool holds_exclusively(const mem_lock *ml, const rs_task *t)
{
    return ml->excl && ml->excl->task == t;
}

static int mem_acquire(rs_lock *l, rs_lock_mode mode, const rs_acquire_opts *o, rs_guard *g)
{
    mem_lock *ml = (mem_lock *)l;
    rs_task *t = rs__worker_get()->current;
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
    mem_waiter mw;
    mw.w.n = mode;
    int rc = rs__waitq_wait(&ml->q, &mw.w, o->priority, rs__deadline_after_ms(o->timeout_ms));
    if (rc == 0)
        rs__guard_from_slot(g, &mw.slot);
    return rc;
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
    free(ml);
}

static const rs__lock_ops mem_lock_ops = {
    .kind = "memory",
    .acquire = mem_acquire,
    .try_acquire = mem_try_acquire,
    .stats = mem_stats,
    .dispose = mem_dispose,
};

int rs__lock_mem_new(rs_scope *s, const rs_lock_opts *opts, rs_lock **out)
{
    (void)s;
    (void)opts;
    mem_lock *ml = calloc(1, sizeof *ml);
    if (!ml)
        return -ENOMEM;
    ml->base.ops = &mem_lock_ops;
    rs__waitq_init(&ml->q, kick);
    ml->next_token = 1;
    *out = &ml->base;
    return 0;
}
