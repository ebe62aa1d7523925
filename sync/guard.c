/* Guards: the public rs_guard_* functions and the grant-record pool.
 *
 * Invariant: a record is either free (ops == NULL, on its worker's free list)
 * or live (ops != NULL); its generation changes exactly when it goes from live
 * to free. Records are allocated in slabs that stay mapped until rs_run tears
 * the worker down, so reading a stale guard's record is always safe. */
#include "sync/guard.h"

#include <errno.h>
#include <stdlib.h>

#include "runtime/signal.h"
#include "runtime/worker.h"

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

/* ------------------------------------------------------------ public */

int rs_guard_release(rs_guard *g)
{
    if (!g)
        return -EINVAL;
    rs__grant *gr = rs__guard_grant(g);
    g->rs_private_grant = NULL;
    if (!gr)
        return -EALREADY;
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
