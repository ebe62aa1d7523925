/* Per-worker record pools (see objpool.h).
 *
 * Invariants:
 *  1. Every record of a pool's slabs is on its free list or handed out.
 *  2. Slabs are never given back to the allocator while the process runs. A
 *     worker's teardown retires its pools (slabs and free records) to a
 *     process-wide store, and a later worker that runs dry adopts them. So a
 *     guard that outlived its runtime (kept in a static, released from an
 *     atexit handler or by the next rs_run) still reads a record whose
 *     generation has moved on, and answers -EALREADY instead of reading freed
 *     memory. The memory kept is what the busiest runtime once needed.
 *  3. Generations only grow, also across adoption: a stale guard never
 *     matches a grant made by a later runtime. */
#include "runtime/objpool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* Slab header; the records follow, max_align_t-aligned. */
typedef struct slab {
    struct slab *next;
    max_align_t records[];
} slab;

/* Pools of ended workers, per kind; guarded by retired_lock (workers on
 * different threads end and start independently). */
static struct retired_pool {
    void *free;
    slab *slabs;
} retired[RS__OBJPOOL_KINDS];
static pthread_mutex_t retired_lock = PTHREAD_MUTEX_INITIALIZER;

/* Chain b after the last slab of a; returns the joined chain. */
static slab *slab_chain_join(slab *a, slab *b)
{
    if (!a)
        return b;
    slab *last = a;
    while (last->next)
        last = last->next;
    last->next = b;
    return a;
}

/* Moves every free record and slab of the retired store into p. */
static void adopt_retired(const rs__objpool_kind *kind, rs__objpool *p)
{
    pthread_mutex_lock(&retired_lock);
    struct retired_pool *r = &retired[kind->slot];
    if (r->free) {
        p->free = r->free;
        p->slabs = slab_chain_join(p->slabs, r->slabs);
        r->free = NULL;
        r->slabs = NULL;
    }
    pthread_mutex_unlock(&retired_lock);
}

void *rs__objpool_alloc_slow(const rs__objpool_kind *kind)
{
    rs__worker *w = rs__worker_get();
    if (!w)
        return NULL;
    rs__objpool *p = &w->objpools[kind->slot];
    if (p->kind != kind && p->kind && (p->kind->size != kind->size || p->kind->link != kind->link)) {
        /* Two kinds claim one slot: a programming error of the library. */
        fprintf(stderr, "ringscope: record pool slot %u claimed by two kinds\n", kind->slot);
        abort();
    }
    p->kind = kind;
    if (!p->free)
        adopt_retired(kind, p);
    if (!p->free) {
        slab *s = calloc(1, sizeof *s + (size_t)kind->per_slab * kind->size);
        if (!s)
            return NULL;
        s->next = p->slabs;
        p->slabs = s;
        char *base = (char *)s->records;
        for (unsigned i = kind->per_slab; i-- > 0;) {
            void *rec = base + (size_t)i * kind->size;
            if (kind->first_use)
                kind->first_use(rec);
            *rs__objpool_link(kind, rec) = p->free;
            p->free = rec;
        }
    }
    void *rec = p->free;
    p->free = *rs__objpool_link(kind, rec);
    return rec;
}

void rs__objpool_retire_all(rs__worker *w)
{
    pthread_mutex_lock(&retired_lock);
    for (int i = 0; i < RS__OBJPOOL_KINDS; i++) {
        rs__objpool *p = &w->objpools[i];
        struct retired_pool *r = &retired[i];
        /* Free records go along even when p has no slab of its own (records
         * of another pool given back here), so none is lost for reuse. */
        if (p->free) {
            void **link = rs__objpool_link(p->kind, p->free);
            while (*link)
                link = rs__objpool_link(p->kind, *link);
            *link = r->free;
            r->free = p->free;
        }
        r->slabs = slab_chain_join(p->slabs, r->slabs);
        *p = (rs__objpool){ 0 };
    }
    pthread_mutex_unlock(&retired_lock);
}
