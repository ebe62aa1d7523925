/* Primitives belong to the runtime (thread) of their scope. A task of
 * another runtime that touches one gets -EPERM and changes nothing: no
 * acquire, no release of the owner's guards, no new primitive in the owner's
 * scopes. That holds for a distributed lock object too: runtimes share a
 * lock through a store, each with lock objects of its own. The
 * two runtimes step in turn with a pthread barrier, a test harness outside
 * either runtime's scheduling. */
#include <stdlib.h>

#include "support.h"

TestSuite(sync_foreign_runtime, .timeout = 20);

typedef struct shared {
    pthread_barrier_t step;
    rs_scope *scope;
    rs_lock *mutex, *rwlock, *leased; /* leased: through the memory store */
    rs_store *store;
    rs_sem *sem;
    rs_pool *pool;
    rs_guard mutex_guard, read_guard, sem_guard, pool_guard, lease_guard;
} shared;

static int make_resource(void *ctx, void **res)
{
    (void)ctx;
    *res = malloc(1);
    return *res ? 0 : -ENOMEM;
}

static void free_resource(void *ctx, void *res)
{
    (void)ctx;
    free(res);
}

static const rs_pool_opts pool_opts = { .create = make_resource, .destroy = free_resource, .max = 2 };

/* The owner: makes the primitives, holds a grant of each while the other
 * runtime tries them, then finds everything as it left it. */
static int owner(void *arg)
{
    shared *sh = arg;
    sh->scope = rs_current_scope();
    RS_CHECK_OK(rs_lock_new(NULL, NULL, &sh->mutex));
    RS_CHECK_OK(rs_lock_new(NULL, &(rs_lock_opts){ .allow_multiple_readers = true }, &sh->rwlock));
    RS_CHECK_OK(rs_sem_new(NULL, 3, &sh->sem));
    RS_CHECK_OK(rs_pool_new(NULL, &pool_opts, &sh->pool));
    RS_CHECK_OK(rs_store_open("memory:", &(rs_store_opts){ .key_prefix = "foreign-runtime:" }, &sh->store));
    rs_scope *lease_scope; /* closed before the store, which its lock uses */
    RS_CHECK_OK(rs_scope_open(NULL, &lease_scope));
    RS_CHECK_OK(rs_lock_new(lease_scope, &(rs_lock_opts){ .store = sh->store, .key = "k" }, &sh->leased));
    RS_CHECK_OK(rs_lock_acquire(sh->mutex, NULL, &sh->mutex_guard));
    RS_CHECK_OK(rs_lock_read(sh->rwlock, NULL, &sh->read_guard));
    RS_CHECK_OK(rs_sem_acquire(sh->sem, 1, NULL, &sh->sem_guard));
    RS_CHECK_OK(rs_pool_acquire(sh->pool, NULL, &sh->pool_guard));
    RS_CHECK_OK(rs_lock_acquire(sh->leased, NULL, &sh->lease_guard));
    uint64_t token = rs_guard_token(&sh->mutex_guard);

    pthread_barrier_wait(&sh->step); /* the other runtime tries everything */
    pthread_barrier_wait(&sh->step);

    rs_lock_stats st;
    RS_CHECK_OK(rs_lock_stats_get(sh->mutex, &st));
    RS_CHECK(st.exclusive && st.pending == 0);
    RS_CHECK_OK(rs_lock_stats_get(sh->rwlock, &st));
    RS_CHECK_EQ(st.readers, 1);
    RS_CHECK_EQ(rs_sem_available(sh->sem), 2);
    rs_pool_stats ps;
    RS_CHECK_OK(rs_pool_stats_get(sh->pool, &ps));
    RS_CHECK_EQ(ps.in_use, 1);
    RS_CHECK_EQ(ps.total, 1);
    RS_CHECK_EQ(rs_guard_token(&sh->mutex_guard), token);
    RS_CHECK(rs_guard_held(&sh->lease_guard));

    RS_CHECK_OK(rs_guard_release(&sh->mutex_guard));
    RS_CHECK_OK(rs_guard_release(&sh->read_guard));
    RS_CHECK_OK(rs_guard_release(&sh->sem_guard));
    RS_CHECK_OK(rs_guard_release(&sh->pool_guard));
    RS_CHECK_OK(rs_guard_release(&sh->lease_guard));
    RS_CHECK_EQ(rs_sem_available(sh->sem), 3);
    RS_CHECK_OK(rs_scope_close(lease_scope));
    RS_CHECK_OK(rs_store_close(sh->store));
    return 0;
}

/* The other runtime: every call on the owner's objects is refused. */
static int intruder(void *arg)
{
    shared *sh = arg;
    pthread_barrier_wait(&sh->step);
    rs_guard g = RS_GUARD_INIT;
    int rc[24], n = 0;
    rc[n++] = rs_lock_acquire(sh->mutex, NULL, &g);
    rc[n++] = rs_lock_try_acquire(sh->mutex, &g);
    rc[n++] = rs_lock_read(sh->rwlock, NULL, &g);
    rc[n++] = rs_lock_write(sh->rwlock, NULL, &g);
    rc[n++] = rs_lock_try_read(sh->rwlock, &g);
    rc[n++] = rs_lock_try_write(sh->rwlock, &g);
    rc[n++] = rs_sem_acquire(sh->sem, 1, NULL, &g);
    rc[n++] = rs_sem_try_acquire(sh->sem, 1, &g);
    rc[n++] = rs_pool_acquire(sh->pool, NULL, &g);
    rc[n++] = rs_pool_try_acquire(sh->pool, &g);
    rc[n++] = rs_guard_release(&sh->mutex_guard);
    rc[n++] = rs_guard_release(&sh->read_guard);
    rc[n++] = rs_guard_release(&sh->sem_guard);
    rc[n++] = rs_guard_discard(&sh->pool_guard);
    rc[n++] = rs_guard_extend(&sh->mutex_guard, 1000);
    rc[n++] = rs_lock_acquire(sh->leased, NULL, &g);
    rc[n++] = rs_lock_try_acquire(sh->leased, &g);
    rc[n++] = rs_guard_extend(&sh->lease_guard, 1000);
    rc[n++] = rs_guard_release(&sh->lease_guard);
    rs_lock *l = NULL;
    rs_sem *s = NULL;
    rs_pool *p = NULL;
    rc[n++] = rs_lock_new(sh->scope, NULL, &l);
    rc[n++] = rs_sem_new(sh->scope, 1, &s);
    rc[n++] = rs_pool_new(sh->scope, &pool_opts, &p);
    rc[n++] = rs_scope_acquire_lock(sh->scope, "foreign-scope-lock", 1000, NULL, &g);
    for (int i = 0; i < n; i++)
        if (rc[i] != -EPERM)
            cr_expect_fail("call %d returned %d (%s), not -EPERM", i, rc[i], rs_strerror(rc[i]));
    bool held = rs_guard_held(&sh->mutex_guard) && rs_guard_held(&sh->read_guard) && rs_guard_held(&sh->sem_guard) &&
                rs_guard_held(&sh->pool_guard) && rs_guard_held(&sh->lease_guard);
    pthread_barrier_wait(&sh->step);
    RS_CHECK(!rs_guard_held(&g));
    RS_CHECK(!l && !s && !p);
    RS_CHECK(held);
    return 0;
}

Test(sync_foreign_runtime, a_task_of_another_runtime_is_refused_with_eperm)
{
    shared *sh = calloc(1, sizeof *sh);
    cr_assert_not_null(sh);
    cr_assert_eq(pthread_barrier_init(&sh->step, NULL, 2), 0);
    rs_test_run_two_threads(owner, sh, intruder, sh);
    pthread_barrier_destroy(&sh->step);
    free(sh);
}
