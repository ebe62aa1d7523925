/* Grants: what a guard points at, and how rs_guard_* reach the primitive that
 * granted it.
 *
 * A grant record describes one thing a primitive handed out: a lock hold, n
 * permits of a semaphore, a pool resource, a distributed lease. A guard
 * (struct rs_guard, a value on the user's stack) names a record and the
 * record's generation at the time of the grant:
 *
 *     guard.rs_private_grant == record   and   guard.rs_private_gen == record->gen
 *
 * is what "this guard holds its grant" means. Ending a grant changes the
 * record's generation (rs__grant_free), and records are recycled but never
 * returned to the allocator while the process runs (a runtime's pools are
 * retired for later runtimes when it ends). So a guard that outlived its grant
 * -- released twice, copied by value and released through the other copy,
 * released by the disposal of its primitive when the owning scope closed, or
 * kept past the end of its rs_run -- is recognised by a generation mismatch
 * without touching freed memory, and its release is a harmless -EALREADY.
 *
 * Each kind of primitive gives its records an rs__grant_ops table; rs_guard_*
 * check the generation and dispatch through it. A kind fills a guard only with
 * rs__guard_set, and ends a grant only with rs__grant_free.
 *
 * Threading: records come from a pool of the calling thread's worker (one
 * worker per rs_run today). A grant must be made and ended on the worker that
 * owns the primitive. Objects that embed a record (the in-memory lock embeds
 * its exclusive holder's) come from such pools too, for the same reason. */
#ifndef RS_SYNC_GUARD_H
#define RS_SYNC_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ringscope/runtime.h>
#include <ringscope/sync.h>

#include "runtime/objpool.h"
#include "runtime/scope.h"

typedef struct rs__grant rs__grant;

/* What a kind implements for its grants. Every function is called only for a
 * record whose generation matched the guard's (the grant is live), on the
 * primitive's worker. NULL entries take the documented default. */
typedef struct rs__grant_ops {
    /* Ends the grant; required. The guard has already been emptied. Must call
     * rs__grant_free(gr) (at once, or after a suspension such as a store round
     * trip: the generation still matches until then, so a copy of the guard
     * still reads as held meanwhile). Returns 0, or -ENOLCK for a lease that
     * was lost first, or -EALREADY when the grant had already been given up by
     * a disposal that could not end it (a pool resource still in use). */
    int (*release)(rs__grant *gr);
    /* Ends the grant destroying what it held (a pool resource); NULL: -EINVAL
     * and the guard stays held. Same duties as release. */
    int (*discard)(rs__grant *gr);
    /* Still held? NULL: yes while the generation matches. A lease known lost
     * answers false. */
    bool (*held)(const rs__grant *gr);
    /* Fencing token while held; NULL: gr->token (also copied into the guard,
     * where rs_guard_token finds it after the grant ended). */
    uint64_t (*token)(const rs__grant *gr);
    /* Signal that aborts with -ENOLCK when the lease is lost; NULL: a signal
     * that never aborts (rs__signal_never). */
    rs_signal *(*lost)(rs__grant *gr);
    /* Sets the lease to expire ttl_ms from now (ttl_ms > 0, checked by the
     * caller); NULL: -EINVAL (not a lease). Returns 0 or -ENOLCK. */
    int (*extend)(rs__grant *gr, int64_t ttl_ms);
    /* The resource of a pool grant; NULL: NULL. */
    void *(*resource)(const rs__grant *gr);
} rs__grant_ops;

struct rs__grant {
    uint64_t gen;              /* changes when the grant ends */
    const rs__grant_ops *ops;  /* the kind that made the grant; NULL while free */
    void *obj;                 /* the primitive that granted it */
    rs_task *task;             /* the task it was granted to (self-deadlock checks) */
    rs__worker *worker;        /* the runtime that made it: only there can it end */
    rs__grant *prev, *next;    /* the primitive's list of live grants; next links the free list */
    int64_t n;                 /* the kind's own: a lock mode, a number of permits */
    void *data;                /* the kind's own: a pool resource, a lease */
    uint64_t token;            /* fencing token; never 0 for a lock */
};

/* ------------------------------------------------------------ records */

/* Records come from the worker's pool of this kind (runtime/objpool.h):
 * stable memory for the life of the process, generation 1 when first carved,
 * linked through next while free. */
void rs__grant_first_use(void *rec);

static const rs__objpool_kind rs__grant_kind = {
    .slot = 0,
    .size = sizeof(rs__grant),
    .link = offsetof(rs__grant, next),
    .per_slab = 64,
    .first_use = rs__grant_first_use,
};

/* A free record with ops == NULL, a fresh generation and worker set to the
 * calling thread's, or NULL (-ENOMEM, or no runtime on this thread). The
 * caller sets every other field it uses. */
static inline rs__grant *rs__grant_alloc(void)
{
    rs__grant *gr = rs__objpool_alloc(&rs__grant_kind);
    if (__builtin_expect(gr != NULL, 1))
        gr->worker = rs__worker_get();
    return gr;
}

/* Ends a grant: every guard naming it reads as released from now on, and the
 * record goes back to the pool (its prev/next are reused: unlink it from any
 * list first). Not for a record embedded in an object: bump its gen instead. */
static inline void rs__grant_free(rs__grant *gr)
{
    gr->gen++;
    gr->ops = NULL;
    gr->obj = NULL;
    gr->data = NULL;
    rs__objpool_free(&rs__grant_kind, gr);
}

/* ------------------------------------------------------------ guards */

static inline void rs__guard_set(rs_guard *g, rs__grant *gr)
{
    g->rs_private_grant = gr;
    g->rs_private_gen = gr->gen;
    g->rs_private_token = gr->token;
}

/* The live grant g names, or NULL (empty, released, or outlived). */
static inline rs__grant *rs__guard_grant(const rs_guard *g)
{
    rs__grant *gr = g->rs_private_grant;
    return gr && gr->gen == g->rs_private_gen ? gr : NULL;
}

/* What a queued waiter was granted, written by the granter before it wakes
 * the waiter: the record may already be ended and recycled by the time the
 * waiter runs (its primitive disposed), so the waiter fills its guard from
 * this copy, never from the record. */
typedef struct rs__grant_slot {
    rs__grant *grant;
    uint64_t gen, token;
} rs__grant_slot;

static inline void rs__slot_set(rs__grant_slot *s, rs__grant *gr)
{
    s->grant = gr;
    s->gen = gr->gen;
    s->token = gr->token;
}

static inline void rs__guard_from_slot(rs_guard *g, const rs__grant_slot *s)
{
    g->rs_private_grant = s->grant;
    g->rs_private_gen = s->gen;
    g->rs_private_token = s->token;
}

/* ------------------------------------------------------------ live lists */

/* A primitive's live grants, so that its disposal can end them. */
typedef struct rs__grant_list {
    rs__grant *head;
    unsigned len;
} rs__grant_list;

static inline void rs__grant_link(rs__grant_list *l, rs__grant *gr)
{
    gr->prev = NULL;
    gr->next = l->head;
    if (l->head)
        l->head->prev = gr;
    l->head = gr;
    l->len++;
}

static inline void rs__grant_unlink(rs__grant_list *l, rs__grant *gr)
{
    if (gr->prev)
        gr->prev->next = gr->next;
    else
        l->head = gr->next;
    if (gr->next)
        gr->next->prev = gr->prev;
    gr->prev = gr->next = NULL;
    l->len--;
}

/* A signal that never aborts: rs_guard_lost of a grant that is not a lease.
 * One per thread (waiting on it only ends by timeout or cancellation). */
rs_signal *rs__signal_never(void);

#endif
