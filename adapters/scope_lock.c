/* rs_scope_acquire_lock: the exclusive lock `key` through the scope's store.
 *
 * The store is the scope's own, else the inherited one, else the runtime's
 * (rs__scope_store); where none is configured, the built-in memory store with
 * the default prefix, so the same key is the same lock everywhere in the
 * process. Each call makes a one-grant ("ephemeral") lock object with its own
 * owner id, attached to the scope: the grant's release frees it (a loop of
 * acquire/release in a long-lived scope does not grow), and if the scope
 * closes first its disposal releases the grant. A failed acquire frees it at
 * once. A task calling it again for a key it holds this way gets -EDEADLK. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <ringscope/sync.h>

#include "adapters/engine.h"
#include "runtime/scope.h"
#include "runtime/task.h"

static const rs_acquire_opts no_opts;

static void ephemeral_dispose(rs__scope_res *r)
{
    rs_lock *l = (rs_lock *)((char *)r - offsetof(rs_lock, res));
    l->ops->dispose(l);
}

int rs_scope_acquire_lock(rs_scope *s, const char *key, int64_t ttl_ms, const rs_acquire_opts *o, rs_guard *g)
{
    if (!key || !g || ttl_ms < 0 || (o && o->timeout_ms < 0))
        return -EINVAL;
    size_t key_len = strnlen(key, RS__STORE_KEY_MAX + 1);
    if (key_len == 0 || key_len > RS__STORE_KEY_MAX)
        return -EINVAL;
    rs__worker *w = rs__worker_get();
    if (!w || !w->current)
        return -EPERM;
    int rc = rs__checkpoint();
    if (rc)
        return rc;
    rc = rs__owner_scope(&s); /* -EPERM for a scope of another runtime */
    if (rc)
        return rc;
    rs_store *st = rs__scope_store(s);
    if (!st)
        st = rs__store_default();

    rs_lock *l;
    rc = rs__dlock_create(s, st, &(rs_lock_opts){ .store = st, .key = key, .ttl_ms = ttl_ms }, &l);
    if (rc)
        return rc;
    ((dlock *)l)->ephemeral = true; /* set before anything can free it */
    l->scope = s;
    l->rw = false;
    strcpy(l->name, "scope-lock");
    l->res.dispose = ephemeral_dispose;
    rs__scope_attach(s, &l->res);
    /* Whatever the acquire answers, leaving frees the object if it holds
     * nothing (also for answers given before the acquire itself began). */
    dlock *dl = (dlock *)l;
    dl->active++;
    rc = l->ops->acquire(l, RS_LOCK_EXCLUSIVE, o ? o : &no_opts, g);
    rs__dlock_leave(dl);
    return rc;
}
