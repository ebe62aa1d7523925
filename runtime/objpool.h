/* Per-worker pools of fixed-size records whose memory outlives their use.
 *
 * A record handed out and given back stays allocated, on its worker's free
 * list, and when the worker ends at the end of rs_run its pools are retired
 * to a process-wide store that later workers adopt (objpool.c): record
 * memory is never freed while the process runs. So a stale pointer to a
 * record (a guard that outlived its grant, a copy of one, a guard kept past
 * the end of its runtime) can still be read safely, and a generation number
 * inside the record tells it that the record has moved on. Allocation and
 * return are a free-list pop and push; a slab of records is carved when the
 * list runs dry.
 *
 * A kind describes one type of record; the layer that uses it defines it as
 * a static const object (in a header, so that the slot and the link offset
 * are constants on the fast path): its slot in the worker (each kind its own,
 * below RS__OBJPOOL_KINDS), its size, where a free record keeps its
 * free-list link (a field stale readers do not look at), how many records a
 * slab holds, and what to do once per record when its slab is carved (memory
 * is zeroed first). Records must be given back on the worker that handed them
 * out. Slots in use: 0 grant records (sync/guard.h), 1 in-memory lock objects
 * (sync/lock_mem.c), 2 distributed-lock leases (adapters/engine_lease.c). */
#ifndef RS_RUNTIME_OBJPOOL_H
#define RS_RUNTIME_OBJPOOL_H

#include <stddef.h>

#include "runtime/worker.h"

typedef struct rs__objpool_kind {
    unsigned slot;                  /* index in rs__worker.objpools, unique per kind */
    size_t size;                    /* bytes per record */
    size_t link;                    /* offset of the free-list link (a void *) in a free record */
    unsigned per_slab;              /* records carved at a time */
    void (*first_use)(void *rec);   /* once per record, after zeroing; may be NULL */
} rs__objpool_kind;

/* A worker's pool of one kind (struct in worker.h, embedded in the worker):
 * free records linked through the kind's link, every slab for teardown, and
 * the kind that owns the slot (checked when a slab is carved). */
typedef struct rs__objpool rs__objpool;

/* Carves a slab and pops a record. NULL outside a runtime or without memory. */
void *rs__objpool_alloc_slow(const rs__objpool_kind *kind);

static inline void **rs__objpool_link(const rs__objpool_kind *kind, void *rec)
{
    return (void **)((char *)rec + kind->link);
}

/* The fast half of rs__objpool_alloc: a record from w's free list, or NULL
 * when it is empty (then call rs__objpool_alloc). Never calls anything, so a
 * caller's fast path can stay a leaf. */
static inline void *rs__objpool_pop(rs__worker *w, const rs__objpool_kind *kind)
{
    rs__objpool *p = &w->objpools[kind->slot];
    void *rec = p->free;
    if (__builtin_expect(rec != NULL, 1))
        p->free = *rs__objpool_link(kind, rec);
    return rec;
}

static inline void *rs__objpool_alloc(const rs__objpool_kind *kind)
{
    rs__worker *w = rs__worker_get();
    void *rec = __builtin_expect(w != NULL, 1) ? rs__objpool_pop(w, kind) : NULL;
    return __builtin_expect(rec != NULL, 1) ? rec : rs__objpool_alloc_slow(kind);
}

/* Gives rec back to the calling worker's pool of its kind (the memory stays
 * readable for good). Outside a runtime it is kept. */
static inline void rs__objpool_free(const rs__objpool_kind *kind, void *rec)
{
    rs__worker *w = rs__worker_get();
    if (!w)
        return;
    rs__objpool *p = &w->objpools[kind->slot];
    *rs__objpool_link(kind, rec) = p->free;
    p->free = rec;
}

/* Worker teardown: retires every pool of w (its slabs and free records) to
 * the process-wide store, where the next worker that runs dry adopts them. */
void rs__objpool_retire_all(rs__worker *w);

#endif
