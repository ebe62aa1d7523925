/* rs_lock: the common layer. Checks every call the same way for every kind
 * (see lock_backend.h), then dispatches to the kind's ops. */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include <ringscope/sync.h>

#include "runtime/scope.h"
#include "runtime/task.h"
#include "sync/lock_backend.h"
#include "sync/lock_mem.h"

#define KEY_MAX 512

/* Registered by every rs_store_open, from any thread, while other runtimes
 * read it in rs_lock_new: atomic. A store handle reaches rs_lock_new only
 * after its rs_store_open returned, so the acquire load sees the factory. */
static _Atomic(rs__lock_factory) distributed_factory;

void rs__lock_register_distributed(rs__lock_factory factory)
{
    atomic_store_explicit(&distributed_factory, factory, memory_order_release);
}

static void lock_res_dispose(rs__scope_res *r)
{
    rs_lock *l = (rs_lock *)((char *)r - offsetof(rs_lock, res));
    l->ops->dispose(l);
}

static int check_store_opts(const rs_lock_opts *opts)
{
    if (!opts->key || !opts->key[0] || strnlen(opts->key, KEY_MAX + 1) > KEY_MAX)
        return -EINVAL;
    return 0;
}

int rs_lock_new(rs_scope *s, const rs_lock_opts *opts, rs_lock **out)
{
    if (!out)
        return -EINVAL;
    int rc = rs__owner_scope(&s);
    if (rc)
        return rc;
    if (opts && opts->ttl_ms < 0)
        return -EINVAL;
    rs_lock *l = NULL;
    if (opts && opts->store) {
        rc = check_store_opts(opts);
        if (rc)
            return rc;
        rs__lock_factory f = atomic_load_explicit(&distributed_factory, memory_order_acquire);
        if (!f)
            return -ENOTSUP;
        rc = f(s, opts, &l);
    } else {
        /* key, ttl_ms, owner and no_renew only mean something with a store. */
        rc = rs__lock_mem_new(s, opts, &l);
    }
    if (rc)
        return rc;
    l->scope = s;
    l->worker = s->worker;
    l->rw = opts && opts->allow_multiple_readers;
    l->name[0] = '\0';
    if (opts && opts->name) {
        strncpy(l->name, opts->name, sizeof l->name - 1);
        l->name[sizeof l->name - 1] = '\0';
    }
    l->res.dispose = lock_res_dispose;
    rs__scope_attach(s, &l->res);
    *out = l;
    return 0;
}

static const rs_acquire_opts default_acquire_opts;

/* A lock belongs to the runtime (thread) of its scope; a task of another
 * runtime gets -EPERM instead of racing with the owner's. */
static inline bool foreign(const rs_lock *l)
{
    return __builtin_expect(l->worker != rs__worker_get(), 0);
}

/* Common checks of a blocking acquire; 0 to go on. */
static inline int check_blocking(const rs_lock *l, const rs_acquire_opts *o, const rs_guard *g, bool rw)
{
    if (__builtin_expect(!l || !g || (o && o->timeout_ms < 0) || l->rw != rw, 0))
        return -EINVAL;
    int rc = rs__checkpoint();
    if (rc)
        return rc;
    return foreign(l) ? -EPERM : 0;
}

static inline int check_try(const rs_lock *l, const rs_guard *g, bool rw)
{
    if (__builtin_expect(!l || !g || l->rw != rw, 0))
        return -EINVAL;
    rs__worker *w = rs__worker_get();
    return w && w->current && !foreign(l) ? 0 : -EPERM;
}

int rs_lock_acquire(rs_lock *l, const rs_acquire_opts *o, rs_guard *g)
{
    if (__builtin_expect(!l || !g || (o && o->timeout_ms < 0) || l->rw, 0))
        return -EINVAL;
    rs_task *t;
    int rc = rs__blocking_caller(&t);
    if (__builtin_expect(rc != 0, 0))
        return rc;
    if (foreign(l))
        return -EPERM;
    if (!o)
        o = &default_acquire_opts;
    if (l->ops == &rs__mem_lock_ops) /* the in-memory fast path, inline */
        return rs__mem_acquire((mem_lock *)l, RS_LOCK_EXCLUSIVE, o, g, t);
    return l->ops->acquire(l, RS_LOCK_EXCLUSIVE, o, g);
}

int rs_lock_read(rs_lock *l, const rs_acquire_opts *o, rs_guard *g)
{
    int rc = check_blocking(l, o, g, true);
    if (rc)
        return rc;
    return l->ops->acquire(l, RS_LOCK_READ, o ? o : &default_acquire_opts, g);
}

int rs_lock_write(rs_lock *l, const rs_acquire_opts *o, rs_guard *g)
{
    int rc = check_blocking(l, o, g, true);
    if (rc)
        return rc;
    return l->ops->acquire(l, RS_LOCK_WRITE, o ? o : &default_acquire_opts, g);
}

int rs_lock_try_acquire(rs_lock *l, rs_guard *g)
{
    int rc = check_try(l, g, false);
    if (rc)
        return rc;
    return l->ops->try_acquire(l, RS_LOCK_EXCLUSIVE, g);
}

int rs_lock_try_read(rs_lock *l, rs_guard *g)
{
    int rc = check_try(l, g, true);
    if (rc)
        return rc;
    return l->ops->try_acquire(l, RS_LOCK_READ, g);
}

int rs_lock_try_write(rs_lock *l, rs_guard *g)
{
    int rc = check_try(l, g, true);
    if (rc)
        return rc;
    return l->ops->try_acquire(l, RS_LOCK_WRITE, g);
}

int rs_lock_stats_get(const rs_lock *l, rs_lock_stats *st)
{
    if (!l || !st)
        return -EINVAL;
    memset(st, 0, sizeof *st);
    l->ops->stats(l, st);
    return 0;
}
