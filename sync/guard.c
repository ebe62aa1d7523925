/* Guards: the public rs_guard_* functions and the grant records' pool kind.
 *
 * Invariant: a pooled record is either free (ops == NULL, on its worker's
 * free list) or live (ops != NULL); an embedded record keeps its ops. Either
 * way the generation changes exactly when a grant through the record ends.
 * Records (and the objects embedding one) are never freed while the process
 * runs (runtime/objpool.c), so reading a stale guard's record is always safe,
 * also after its runtime ended. */
#include "sync/guard.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "runtime/signal.h"
#include "runtime/worker.h"
#include "sync/lock_mem.h"

void rs__grant_first_use(void *rec)
{
    ((rs__grant *)rec)->gen = 1;
}

static __thread rs_signal never_signal; /* all-zero: not aborted, no waiters */

rs_signal *rs__signal_never(void)
{
    return &never_signal;
}

/* A grant is ended or changed only on the runtime (thread) that made it:
 * from another one, or from no runtime, rs_guard_release, _discard and
 * _extend return -EPERM and leave the guard as it was. */
static inline bool foreign(const rs__grant *gr)
{
    return __builtin_expect(gr->worker != rs__worker_get(), 0);
}

/* ------------------------------------------------------------ public */

int rs_guard_release(rs_guard *g)
{
    if (!g)
        return -EINVAL;
    rs__grant *gr = rs__guard_grant(g);
    if (!gr) {
        g->rs_private_grant = NULL;
        return -EALREADY;
    }
    if (foreign(gr))
        return -EPERM;
    g->rs_private_grant = NULL;
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
    if (foreign(gr))
        return -EPERM;
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
    if (foreign(gr))
        return -EPERM;
    if (!gr->ops->discard)
        return -EINVAL;
    g->rs_private_grant = NULL;
    return gr->ops->discard(gr);
}
