/* The seam a distributed lock plugs into (sync/lock_backend.h), exercised
 * with a fake kind: rs_lock_new with a store calls the registered factory
 * with checked options and fills the common header; rs_lock_* dispatch with
 * the mode and non-NULL options; rs_guard_* reach the grant kind; the owning
 * scope's close disposes the lock; without a factory the call is -ENOTSUP. */
#include <string.h>

#include "sync_support.h"
#include "sync/guard.h"
#include "sync/lock_backend.h"

typedef struct fake_lock {
    struct rs_lock base;
    rs_signal lost;
    int acquires, tries, stats, releases, extends;
    rs_lock_mode last_mode;
    const rs_acquire_opts *last_opts;
    int64_t last_ttl;
} fake_lock;

static int disposed;
static rs_scope *factory_scope;
static char factory_key[64];

static int fake_release(rs__grant *gr)
{
    fake_lock *l = gr->obj;
    l->releases++;
    rs__grant_free(gr);
    return -ENOLCK; /* as if the lease had been lost: the value must come through */
}

static int fake_extend(rs__grant *gr, int64_t ttl_ms)
{
    fake_lock *l = gr->obj;
    l->extends++;
    l->last_ttl = ttl_ms;
    return 0;
}

static rs_signal *fake_lost(rs__grant *gr)
{
    fake_lock *l = gr->obj;
    return &l->lost;
}

static bool fake_held(const rs__grant *gr)
{
    const fake_lock *l = gr->obj;
    return !rs_signal_aborted(&l->lost);
}

static const rs__grant_ops fake_grant_ops = {
    .release = fake_release,
    .extend = fake_extend,
    .lost = fake_lost,
    .held = fake_held,
};

static int fake_acquire(rs_lock *base, rs_lock_mode mode, const rs_acquire_opts *o, rs_guard *g)
{
    fake_lock *l = (fake_lock *)base;
    l->acquires++;
    l->last_mode = mode;
    l->last_opts = o;
    rs__grant *gr = rs__grant_alloc();
    if (!gr)
        return -ENOMEM;
    gr->ops = &fake_grant_ops;
    gr->obj = l;
    gr->task = rs_current_task();
    gr->token = 41 + (uint64_t)l->acquires;
    rs__guard_set(g, gr);
    return 0;
}

static int fake_try(rs_lock *base, rs_lock_mode mode, rs_guard *g)
{
    fake_lock *l = (fake_lock *)base;
    (void)g;
    l->tries++;
    l->last_mode = mode;
    return -EBUSY;
}

static void fake_stats(const rs_lock *base, rs_lock_stats *st)
{
    fake_lock *l = (fake_lock *)base;
    l->stats++;
    st->pending = 7;
}

static void fake_dispose(rs_lock *base)
{
    fake_lock *l = (fake_lock *)base;
    rs__signal_dispose(&l->lost);
    disposed++;
    free(l);
}

static const rs__lock_ops fake_ops = {
    .kind = "fake",
    .acquire = fake_acquire,
    .try_acquire = fake_try,
    .stats = fake_stats,
    .dispose = fake_dispose,
};

static int fake_factory(rs_scope *s, const rs_lock_opts *opts, rs_lock **out)
{
    factory_scope = s;
    strncpy(factory_key, opts->key, sizeof factory_key - 1);
    fake_lock *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    l->base.ops = &fake_ops;
    rs__signal_init(&l->lost, NULL);
    *out = &l->base;
    return 0;
}

static int seam(void *arg)
{
    (void)arg;
    struct rs_store *store = (struct rs_store *)&disposed; /* never dereferenced by the seam */
    rs__lock_register_distributed(fake_factory);
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    rs_lock *base;
    RS_CHECK_OK(rs_lock_new(NULL, &(rs_lock_opts){ .store = store, .key = "jobs:42", .name = "fake" }, &base));
    fake_lock *l = (fake_lock *)base;
    RS_CHECK(factory_scope == s); /* NULL scope: the caller's current one, resolved before the factory */
    RS_CHECK(strcmp(factory_key, "jobs:42") == 0);
    RS_CHECK(base->scope == s && !base->rw && strcmp(base->name, "fake") == 0);

    /* Dispatch: mode and options (never NULL). */
    rs_guard g = RS_GUARD_INIT;
    RS_CHECK_OK(rs_lock_acquire(base, NULL, &g));
    RS_CHECK_EQ(l->acquires, 1);
    RS_CHECK_EQ(l->last_mode, RS_LOCK_EXCLUSIVE);
    RS_CHECK(l->last_opts != NULL && l->last_opts->timeout_ms == 0);
    RS_CHECK_EQ(rs_guard_token(&g), 42);
    RS_CHECK_EQ(rs_lock_try_acquire(base, &g), -EBUSY);
    RS_CHECK_EQ(l->tries, 1);
    RS_CHECK_EQ(rs_lock_read(base, NULL, &g), -EINVAL); /* mode checked before dispatch */
    RS_CHECK_EQ(rs_lock_acquire(base, &(rs_acquire_opts){ .timeout_ms = -1 }, &g), -EINVAL);
    RS_CHECK_EQ(l->acquires, 1);
    rs_lock_stats st;
    RS_CHECK_OK(rs_lock_stats_get(base, &st));
    RS_CHECK(st.pending == 7 && !st.exclusive);

    /* Guards reach the grant kind. */
    RS_CHECK(rs_guard_held(&g));
    RS_CHECK_OK(rs_guard_extend(&g, 1234));
    RS_CHECK_EQ(l->last_ttl, 1234);
    RS_CHECK_EQ(rs_guard_extend(&g, 0), -EINVAL); /* checked before dispatch */
    RS_CHECK_EQ(l->extends, 1);
    RS_CHECK(rs_guard_lost(&g) == &l->lost);
    rs__signal_abort(&l->lost, -ENOLCK);
    RS_CHECK(!rs_guard_held(&g));
    RS_CHECK_EQ(rs_guard_discard(&g), -EINVAL); /* not a pool grant */
    RS_CHECK_EQ(rs_guard_release(&g), -ENOLCK);
    RS_CHECK_EQ(l->releases, 1);
    RS_CHECK_EQ(rs_guard_release(&g), -EALREADY);
    RS_CHECK_EQ(l->releases, 1);

    /* Cancellation is checked before dispatch, also for a distributed kind. */
    rs_scope *c;
    RS_CHECK_OK(rs_scope_open(NULL, &c));
    rs_scope_cancel(c);
    RS_CHECK_EQ(rs_lock_acquire(base, NULL, &g), -ECANCELED);
    RS_CHECK_OK(rs_scope_close(c));
    RS_CHECK_EQ(l->acquires, 1);

    RS_CHECK_EQ(disposed, 0);
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(disposed, 1);

    rs__lock_register_distributed(NULL);
    RS_CHECK_EQ(rs_lock_new(NULL, &(rs_lock_opts){ .store = store, .key = "k" }, &base), -ENOTSUP);
    return 0;
}

Test(lock_seam, distributed_kind_plugs_in_through_the_factory, .timeout = 10)
{
    RS_RUN_OK(seam, NULL);
}
