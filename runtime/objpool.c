/* Per-worker record pools (see objpool.h). Invariant: every record of a
 * pool's slabs is either on its free list or handed out; slabs are freed only
 * with the worker. */
#include "runtime/objpool.h"

#include <stdio.h>
#include <stdlib.h>

/* Slab header; the records follow, max_align_t-aligned. */
typedef struct slab {
    struct slab *next;
    max_align_t records[];
} slab;

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

void rs__objpool_destroy_all(rs__worker *w)
{
    for (int i = 0; i < RS__OBJPOOL_KINDS; i++) {
        rs__objpool *p = &w->objpools[i];
        while (p->slabs) {
            slab *s = p->slabs;
            p->slabs = s->next;
            free(s);
        }
        *p = (rs__objpool){ 0 };
    }
}
