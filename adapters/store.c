/* Lock stores: rs_store_open / rs_store_close and the public one-attempt
 * operations of ringscope/store.h.
 *
 * This layer owns everything the backends may take for granted (store.h):
 * argument validation, the key prefix, option defaults, and the calling
 * context. Every rs_store_* operation is a blocking call in the API's sense,
 * for every backend, the memory store included: outside a task it returns
 * -EPERM and in a cancelled task -ECANCELED, so code written against memory:
 * behaves the same when its URL is switched to a network store. Only open
 * and close work outside a task (a runtime's store is opened before rs_run).
 *
 * To add a backend: implement rs__store_ops in adapters/<name>/ and list it
 * in `backends` below (a static library only links what is referenced, so a
 * backend cannot register itself). */
#define _GNU_SOURCE
#include "adapters/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/engine.h"
#include "runtime/store_hold.h"
#include "runtime/task.h"

static const rs__store_ops *const backends[] = {
    &rs__store_memory_ops,
};

static rs_store default_store = {
    .ops = &rs__store_memory_ops,
    .prefix = RS__STORE_DEFAULT_PREFIX,
    .prefix_len = sizeof RS__STORE_DEFAULT_PREFIX - 1,
    .pool_size = 4,
    .connect_timeout_ms = 5000,
    .op_timeout_ms = 5000,
    .builtin = true,
};

rs_store *rs__store_default(void)
{
    return &default_store;
}

static const rs__store_ops *find_backend(const char *scheme)
{
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
        const rs__store_ops *b = backends[i];
        if (strcmp(b->scheme, scheme) == 0 || (b->alias && strcmp(b->alias, scheme) == 0))
            return b;
    }
    return NULL;
}

static int apply_opts(rs_store *st, const rs_store_opts *o)
{
    const char *prefix = o && o->key_prefix ? o->key_prefix : RS__STORE_DEFAULT_PREFIX;
    size_t len = strlen(prefix);
    if (len > RS__STORE_PREFIX_MAX)
        return -EINVAL;
    if (o && (o->connect_timeout_ms < 0 || o->op_timeout_ms < 0))
        return -EINVAL;
    st->prefix = strdup(prefix);
    if (!st->prefix)
        return -ENOMEM;
    st->prefix_len = len;
    st->pool_size = o && o->pool_size ? o->pool_size : 4;
    st->connect_timeout_ms = o && o->connect_timeout_ms ? o->connect_timeout_ms : 5000;
    st->op_timeout_ms = o && o->op_timeout_ms ? o->op_timeout_ms : 5000;
    return 0;
}

/* A runtime or scope naming st counts as a user (runtime/store_hold.h). */
static void hold(rs_store *st, int delta)
{
    if (delta > 0)
        rs__store_ref(st);
    else
        rs__store_unref(st);
}

int rs_store_open(const char *url, const rs_store_opts *opts, rs_store **out)
{
    if (!url || !out)
        return -EINVAL;
    rs__url u;
    int rc = rs__url_parse(url, &u);
    if (rc)
        return rc;
    const rs__store_ops *ops = find_backend(u.scheme);
    rs_store *st = ops ? calloc(1, sizeof *st) : NULL;
    if (!ops)
        rc = -EINVAL;
    else if (!st)
        rc = -ENOMEM;
    else if ((rc = apply_opts(st, opts)) == 0) {
        st->ops = ops;
        atomic_init(&st->users, 0);
        rc = ops->open(st, &u);
    }
    rs__url_free(&u);
    if (rc) {
        if (st)
            free(st->prefix);
        free(st);
        return rc;
    }
    rs__dlock_register(); /* from now on rs_lock_new with a store goes to the engine */
    rs__store_hold_install(hold);
    *out = st;
    return 0;
}

int rs_store_close(rs_store *st)
{
    if (!st || st->builtin)
        return -EINVAL;
    if (atomic_load(&st->users) > 0)
        return -EBUSY;
    st->ops->close(st);
    free(st->prefix);
    free(st);
    return 0;
}

void rs__store_ref(rs_store *st)
{
    atomic_fetch_add(&st->users, 1);
}

void rs__store_unref(rs_store *st)
{
    atomic_fetch_sub(&st->users, 1);
}

/* ------------------------------------------------------------ validation */

int rs__store_full_key(const rs_store *st, const char *key, char *buf)
{
    if (!key)
        return -EINVAL;
    size_t len = strnlen(key, RS__STORE_KEY_MAX + 1);
    if (len == 0 || len > RS__STORE_KEY_MAX)
        return -EINVAL;
    memcpy(buf, st->prefix, st->prefix_len);
    memcpy(buf + st->prefix_len, key, len + 1);
    return 0;
}

int rs__store_check_owner(const char *owner)
{
    if (!owner)
        return -EINVAL;
    size_t len = strnlen(owner, RS__STORE_OWNER_MAX + 1);
    return len == 0 || len > RS__STORE_OWNER_MAX ? -EINVAL : 0;
}

static bool mode_ok(rs_lock_mode mode)
{
    return mode == RS_LOCK_EXCLUSIVE || mode == RS_LOCK_READ || mode == RS_LOCK_WRITE;
}

/* Arguments first (a bad call is -EINVAL wherever it is made), then the
 * calling context. */
static int enter(const rs_store *st, const char *key, char *full)
{
    if (!st)
        return -EINVAL;
    int rc = rs__store_full_key(st, key, full);
    return rc ? rc : rs__checkpoint();
}

/* ------------------------------------------------------------ operations */

int rs_store_acquire(rs_store *st, const char *key, rs_lock_mode mode, const char *owner, int64_t ttl_ms,
                     uint64_t *token)
{
    char full[RS__STORE_FULL_KEY_MAX + 1];
    if (!mode_ok(mode) || ttl_ms <= 0 || rs__store_check_owner(owner))
        return -EINVAL;
    int rc = enter(st, key, full);
    if (rc)
        return rc;
    rs__store_grant g = { 0, -1 };
    rc = st->ops->acquire(st, full, mode, owner, ttl_ms, 0, &g);
    if (rc == 0 && token)
        *token = g.token;
    return rc;
}

int rs_store_release(rs_store *st, const char *key, rs_lock_mode mode, const char *owner)
{
    char full[RS__STORE_FULL_KEY_MAX + 1];
    if (!mode_ok(mode) || rs__store_check_owner(owner))
        return -EINVAL;
    int rc = enter(st, key, full);
    return rc ? rc : st->ops->release(st, full, mode, owner);
}

int rs_store_extend(rs_store *st, const char *key, rs_lock_mode mode, const char *owner, int64_t ttl_ms)
{
    char full[RS__STORE_FULL_KEY_MAX + 1];
    if (!mode_ok(mode) || ttl_ms <= 0 || rs__store_check_owner(owner))
        return -EINVAL;
    int rc = enter(st, key, full);
    return rc ? rc : st->ops->extend(st, full, mode, owner, ttl_ms);
}

int rs_store_force_release(rs_store *st, const char *key)
{
    char full[RS__STORE_FULL_KEY_MAX + 1];
    int rc = enter(st, key, full);
    return rc ? rc : st->ops->force_release(st, full);
}

int rs_store_inspect(rs_store *st, const char *key, rs_lock_info *info)
{
    char full[RS__STORE_FULL_KEY_MAX + 1];
    if (!info)
        return -EINVAL;
    int rc = enter(st, key, full);
    if (rc)
        return rc;
    memset(info, 0, sizeof *info);
    return st->ops->inspect(st, full, info);
}
