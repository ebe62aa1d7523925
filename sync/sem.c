/* The weighted semaphore on one priority wait queue.
 *
 * Invariants, true whenever no function of this file is running:
 *  1. avail + (permits held by live grants) == total; 0 <= avail <= total.
 *  2. The head of the queue asks for more than avail (pump runs after every
 *     release and whenever a waiter leaves without a grant). Waiters are
 *     served strictly from the head: a large request at the head is never
 *     overtaken by smaller ones behind it.
 *  3. A new request is served at once only if it fits and every queued waiter
 *     has a lower priority; the try call only when nobody is queued.
 *  4. Permits go back only through a guard's release, once: a semaphore can
 *     never be over-released. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include <ringscope/sync.h>

#include "runtime/scope.h"
#include "runtime/task.h"
#include "runtime/waitq.h"
#include "sync/guard.h"

struct rs_sem {
    rs__scope_res res; /* in the owning scope; its close disposes the semaphore */
    rs__waitq q;
    int64_t total, avail;
    rs__grant_list held;
    uint64_t next_token;
    rs__worker *worker; /* the owning scope's: tasks of other runtimes get -EPERM */
};

typedef struct sem_waiter {
    rs__waiter w; /* w.n: permits asked for */
    rs__grant_slot slot;
} sem_waiter;

static int sem_release(rs__grant *gr);

static const rs__grant_ops sem_grant_ops = {
    .release = sem_release,
};

/* Makes gr (a free record) a grant of n permits to t. */
static inline rs__grant *grant_fill(rs_sem *sem, rs__grant *gr, int64_t n, rs_task *t)
{
    gr->ops = &sem_grant_ops;
    gr->obj = sem;
    gr->task = t;
    gr->worker = t->worker;
    gr->n = n;
    gr->token = sem->next_token++;
    rs__grant_link(&sem->held, gr);
    sem->avail -= n;
    return gr;
}

static rs__grant *grant_new(rs_sem *sem, int64_t n, rs_task *t)
{
    rs__grant *gr = rs__grant_alloc();
    return gr ? grant_fill(sem, gr, n, t) : NULL;
}

static void pump(rs_sem *sem)
{
    rs__waiter *h;
    while ((h = rs__waitq_head(&sem->q)) && h->n <= sem->avail) {
        rs__grant *gr = grant_new(sem, h->n, h->wait.task);
        if (!gr) {
            rs__waitq_grant(h, -ENOMEM);
            continue;
        }
        rs__slot_set(&((sem_waiter *)h)->slot, gr);
        rs__waitq_grant(h, 0);
    }
}

static void kick(rs__waitq *q)
{
    pump((rs_sem *)((char *)q - offsetof(rs_sem, q)));
}

static int sem_release(rs__grant *gr)
{
    rs_sem *sem = gr->obj;
    sem->avail += gr->n;
    rs__grant_unlink(&sem->held, gr);
    rs__grant_free(gr);
    if (rs__waitq_head(&sem->q))
        pump(sem);
    return 0;
}

static void sem_dispose(rs__scope_res *r)
{
    rs_sem *sem = (rs_sem *)r;
    rs__waitq_wake_all(&sem->q, -ECANCELED);
    while (sem->held.head) {
        rs__grant *gr = sem->held.head;
        rs__grant_unlink(&sem->held, gr);
        rs__grant_free(gr);
    }
    free(sem);
}

int rs_sem_new(rs_scope *s, int64_t permits, rs_sem **out)
{
    if (!out || permits <= 0)
        return -EINVAL;
    int rc = rs__owner_scope(&s);
    if (rc)
        return rc;
    rs_sem *sem = calloc(1, sizeof *sem);
    if (!sem)
        return -ENOMEM;
    rs__waitq_init(&sem->q, kick);
    sem->total = sem->avail = permits;
    sem->next_token = 1;
    sem->worker = s->worker;
    sem->res.dispose = sem_dispose;
    rs__scope_attach(s, &sem->res);
    *out = sem;
    return 0;
}

/* The grant of an acquisition that fits, when the record pool must carve a
 * new slab first. */
static __attribute__((noinline)) int grant_now_carving(rs_sem *sem, int64_t n, rs_guard *g, rs_task *t)
{
    rs__grant *gr = grant_new(sem, n, t);
    if (!gr)
        return -ENOMEM;
    rs__guard_set(g, gr);
    return 0;
}

/* Queues the calling task for n permits and waits for its grant. Out of line:
 * its frame (the waiter record) and the registers its switch clobbers are
 * not paid by the acquisitions that need no waiting. */
static __attribute__((noinline)) int wait_for_permits(rs_sem *sem, int64_t n, const rs_acquire_opts *o, rs_guard *g,
                                                      int priority)
{
    sem_waiter sw;
    sw.w.n = n;
    int rc = rs__waitq_wait(&sem->q, &sw.w, priority, rs__deadline_after_ms(o ? o->timeout_ms : 0));
    if (rc == 0)
        rs__guard_from_slot(g, &sw.slot);
    return rc;
}

int rs_sem_acquire(rs_sem *sem, int64_t n, const rs_acquire_opts *o, rs_guard *g)
{
    if (__builtin_expect(!sem || !g || n < 1 || n > sem->total || (o && o->timeout_ms < 0), 0))
        return -EINVAL;
    rs_task *t;
    int rc = rs__blocking_caller(&t);
    if (__builtin_expect(rc != 0, 0))
        return rc;
    if (__builtin_expect(t->worker != sem->worker, 0))
        return -EPERM;
    int priority = o ? o->priority : 0;
    const rs__waiter *h = rs__waitq_head(&sem->q);
    if (__builtin_expect(n <= sem->avail && (!h || h->priority < priority), 1)) {
        /* A leaf while the record pool has a record: no saved registers. */
        rs__grant *gr = rs__objpool_pop(t->worker, &rs__grant_kind);
        if (__builtin_expect(!gr, 0))
            return grant_now_carving(sem, n, g, t);
        rs__guard_set(g, grant_fill(sem, gr, n, t));
        return 0;
    }
    return wait_for_permits(sem, n, o, g, priority);
}

int rs_sem_try_acquire(rs_sem *sem, int64_t n, rs_guard *g)
{
    if (!sem || !g || n < 1 || n > sem->total)
        return -EINVAL;
    rs__worker *w = rs__worker_get();
    if (!w || !w->current || w != sem->worker)
        return -EPERM;
    if (n > sem->avail || rs__waitq_head(&sem->q))
        return -EBUSY;
    rs__grant *gr = grant_new(sem, n, w->current);
    if (!gr)
        return -ENOMEM;
    rs__guard_set(g, gr);
    return 0;
}

int64_t rs_sem_available(const rs_sem *sem)
{
    return sem ? sem->avail : -EINVAL;
}

int64_t rs_sem_waiting(const rs_sem *sem)
{
    return sem ? (int64_t)sem->q.len : -EINVAL;
}

int64_t rs_sem_total(const rs_sem *sem)
{
    return sem ? sem->total : -EINVAL;
}
