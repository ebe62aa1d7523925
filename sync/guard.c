/* Guards: the public rs_guard_* functions, the grant-record pool and the
 * stable memory of objects that embed a record.
 *
 * Invariant: a pooled record is either free (ops == NULL, on its worker's
 * free list) or live (ops != NULL); an embedded record keeps its ops. Either
 * way the generation changes exactly when a grant through the record ends.
 * Records and stable blocks stay allocated until rs_run tears the worker
 * down, so reading a stale guard's record is always safe. */
#include "sync/guard.h"

#include <errno.h>
#include <stdlib.h>

#include "runtime/signal.h"
#include "runtime/worker.h"
#include "sync/lock_mem.h"

#define GRANT_SLAB_RECORDS 64

struct rs__grant_slab {
    rs__grant_slab *next;
    rs__grant recs[GRANT_SLAB_RECORDS];
};

__thread rs__grant_pool *rs__tls_grants __attribute__((tls_model("initial-exec")));

static __thread rs_signal never_signal; /* all-zero: not aborted, no waiters */

rs_signal *rs__signal_never(void)
{
    return &never_signal;
}

struct rs__stable_block {
    rs__stable_block *all_next;  /* every block of the worker */
    rs__stable_block *free_next; /* recycled blocks */
    size_t size;
    max_align_t payload[];
};

/* The top scope is disposed last in rs_run, after every user scope and the
 * system scope: no primitive is left that could still end a grant. */
static void pool_dispose(rs__scope_res *r)
{
    rs__grant_pool *p = (rs__grant_pool *)r;
    while (p->slabs) {
        rs__grant_slab *s = p->slabs;
        p->slabs = s->next;
        free(s);
    }
    while (p->blocks) {
        rs__stable_block *b = p->blocks;
        p->blocks = b->all_next;
        free(b);
    }
    if (rs__tls_grants == p)
        rs__tls_grants = NULL;
    free(p);
}

static rs__grant_pool *pool_get(void)
{
    if (rs__tls_grants)
        return rs__tls_grants;
    rs__worker *w = rs__worker_get();
    if (!w || !w->top)
        return NULL;
    rs__grant_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->res.dispose = pool_dispose;
    rs__scope_attach(w->top, &p->res);
    rs__tls_grants = p;
    return p;
}

rs__grant *rs__grant_alloc_slow(void)
{
    rs__grant_pool *p = pool_get();
    if (!p)
        return NULL;
    if (!p->free) {
        rs__grant_slab *s = calloc(1, sizeof *s);
        if (!s)
            return NULL;
        s->next = p->slabs;
        p->slabs = s;
        for (int i = GRANT_SLAB_RECORDS - 1; i >= 0; i--) {
            s->recs[i].gen = 1;
            s->recs[i].next = p->free;
            p->free = &s->recs[i];
        }
    }
    rs__grant *gr = p->free;
    p->free = gr->next;
    return gr;
}

/* The free list of blocks of this size: one class per kind of object. NULL
 * when every class is taken (such blocks are then never recycled). */
static rs__stable_block **stable_class(rs__grant_pool *p, size_t size)
{
    for (int i = 0; i < RS__STABLE_CLASSES; i++) {
        if (p->classes[i].size == 0)
            p->classes[i].size = size;
        if (p->classes[i].size == size)
            return &p->classes[i].free;
    }
    return NULL;
}

void *rs__stable_alloc(size_t size, bool *recycled)
{
    rs__grant_pool *p = pool_get();
    if (!p)
        return NULL;
    rs__stable_block **cls = stable_class(p, size);
    if (cls && *cls) {
        rs__stable_block *b = *cls;
        *cls = b->free_next;
        b->free_next = NULL;
        *recycled = true;
        return b->payload;
    }
    rs__stable_block *b = calloc(1, sizeof *b + size);
    if (!b)
        return NULL;
    b->size = size;
    b->all_next = p->blocks;
    p->blocks = b;
    *recycled = false;
    return b->payload;
}

void rs__stable_free(void *obj)
{
    rs__stable_block *b = (rs__stable_block *)((char *)obj - offsetof(rs__stable_block, payload));
    rs__grant_pool *p = rs__tls_grants;
    rs__stable_block **cls = p ? stable_class(p, b->size) : NULL;
    if (!cls)
        return; /* kept until teardown */
    b->free_next = *cls;
    *cls = b;
}

/* ------------------------------------------------------------ public */

int rs_guard_release(rs_guard *g)
{
    if (!g)
        return -EINVAL;
    rs__grant *gr = rs__guard_grant(g);
    g->rs_private_grant = NULL;
    if (!gr)
        return -EALREADY;
    if (gr->ops == &rs__mem_excl_grant_ops) /* the in-memory lock's fast path, inline */
        return rs__mem_release_excl(gr);
    return gr->ops->release(gr);
}

void rs_guard_cleanup(rs_guard *g)
{
    if (g && g->rs_private_grant)
        rs_guard_release(g);
}

bool rs_guard_held(const rs_guard *g)
{
    if (!g)
        return false;
    const rs__grant *gr = rs__guard_grant(g);
    return gr && (!gr->ops->held || gr->ops->held(gr));
}

uint64_t rs_guard_token(const rs_guard *g)
{
    if (!g)
        return 0;
    const rs__grant *gr = rs__guard_grant(g);
    if (gr && gr->ops->token)
        return gr->ops->token(gr);
    return g->rs_private_token;
}

rs_signal *rs_guard_lost(rs_guard *g)
{
    if (!g)
        return NULL;
    rs__grant *gr = rs__guard_grant(g);
    if (gr && gr->ops->lost)
        return gr->ops->lost(gr);
    return rs__signal_never();
}

int rs_guard_extend(rs_guard *g, int64_t ttl_ms)
{
    if (!g || ttl_ms <= 0)
        return -EINVAL;
    rs__grant *gr = rs__guard_grant(g);
    if (!gr)
        return -EALREADY;
    if (!gr->ops->extend)
        return -EINVAL;
    return gr->ops->extend(gr, ttl_ms);
}

void *rs_guard_resource(const rs_guard *g)
{
    if (!g)
        return NULL;
    const rs__grant *gr = rs__guard_grant(g);
    return gr && gr->ops->resource ? gr->ops->resource(gr) : NULL;
}

int rs_guard_discard(rs_guard *g)
{
    if (!g)
        return -EINVAL;
    rs__grant *gr = rs__guard_grant(g);
    if (!gr) {
        g->rs_private_grant = NULL;
        return -EALREADY;
    }
    if (!gr->ops->discard)
        return -EINVAL;
    g->rs_private_grant = NULL;
    return gr->ops->discard(gr);
}
