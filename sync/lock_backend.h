/* The seam between rs_lock and the kinds of lock behind it.
 *
 * rs_lock (sync.h) is one public type with two kinds behind it: the in-memory
 * lock (sync/lock_mem.c) and the distributed lock (the engine in adapters/,
 * one per (store, key)). sync/ never depends on adapters/: the engine plugs in
 * through three things declared here.
 *
 * (a) A lock kind: struct rs_lock is the common header every kind embeds as
 *     its FIRST member, with an rs__lock_ops table.
 *
 *         typedef struct dist_lock {
 *             struct rs_lock base;     // first: rs_lock * <-> dist_lock *
 *             ...                      // store, key, owner, ttl, local queue
 *         } dist_lock;
 *
 *     The public functions (sync/lock.c) do everything that is common before
 *     they dispatch, so an implementation only ever sees valid calls:
 *       - NULL lock or guard, negative timeout_ms, or a mode the lock does not
 *         have (rs_lock_acquire on a read-write lock, read/write on an
 *         exclusive one) -> -EINVAL;
 *       - outside a task -> -EPERM (also for the try calls);
 *       - blocking calls only: a cancelled calling task -> -ECANCELED. This is
 *         checked before the call, also when the lock is free; an
 *         implementation that suspends must observe cancellation while it
 *         waits (rs__waitq_wait, rs__wait_park and every I/O call do).
 *     The try calls must never wait for the lock; the in-memory kind never
 *     suspends in them, a distributed kind makes exactly one store round trip.
 *
 * (b) A grant kind: every guard a lock fills points at an rs__grant record
 *     (sync/guard.h) whose rs__grant_ops the kind provides, so rs_guard_release,
 *     rs_guard_extend, rs_guard_lost, rs_guard_held, rs_guard_token ... reach
 *     the kind that granted it. The in-memory lock's grants answer
 *     rs_guard_extend with -EINVAL (not a lease) and rs_guard_lost with a signal
 *     that never aborts. Records come from rs__grant_alloc, are ended with
 *     rs__grant_free (after unlinking them from any list that uses prev/next),
 *     and guards are filled with rs__guard_set or, for a waiter woken by
 *     someone else, from an rs__grant_slot.
 *
 * (c) Registration: rs_lock_new with opts->store != NULL calls the factory
 *     registered with rs__lock_register_distributed (adapters call it when a
 *     store is opened; registering again replaces it). While none is
 *     registered such a call returns -ENOTSUP. The factory receives checked
 *     options: store != NULL, key non-empty and at most 512 bytes, ttl_ms >= 0
 *     (0 still means "the default", 30000), and the owning scope (never NULL).
 *     It allocates the kind's object, sets base.ops, and returns it through
 *     *out; the common layer then fills the rest of base (scope, read-write
 *     mode, name) and attaches it to the scope, whose close calls ops->dispose.
 *     On failure the factory returns a negative errno and has allocated
 *     nothing.
 *
 * The local priority queue a distributed lock keeps per (store, key) is the
 * runtime's wait queue (runtime/waitq.h): priority order, FIFO among equals,
 * grant / timeout / cancellation mutually exclusive, and a kick callback after
 * a waiter leaves without a grant so the next one can be let in.
 * sync/lock_mem.c is a complete example of a kind built on it. */
#ifndef RS_SYNC_LOCK_BACKEND_H
#define RS_SYNC_LOCK_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include <ringscope/store.h>
#include <ringscope/sync.h>

#include "runtime/scope.h"
#include "sync/guard.h"

typedef struct rs__lock_ops rs__lock_ops;

#define RS__LOCK_NAME_MAX 32

/* The header of every lock. Filled by the common layer except ops. */
struct rs_lock {
    const rs__lock_ops *ops;
    rs_scope *scope;       /* owner: its close disposes the lock */
    rs__worker *worker;    /* scope->worker, at hand for the fast paths' owner check */
    rs__scope_res res;     /* in scope->resources; its dispose calls ops->dispose */
    bool rw;               /* allow_multiple_readers: read/write modes, else exclusive */
    char name[RS__LOCK_NAME_MAX];
};

struct rs__lock_ops {
    const char *kind; /* "memory", "redis" ... for diagnostics */

    /* Waits for the lock in mode (RS_LOCK_EXCLUSIVE on an exclusive lock,
     * RS_LOCK_READ or RS_LOCK_WRITE on a read-write one) with o->priority and
     * o->timeout_ms (0 = no limit). o is never NULL. Called from a task that
     * was not cancelled at the call. On success fills *g and returns 0;
     * otherwise leaves *g alone and returns -ETIMEDOUT, -ECANCELED (the task
     * was cancelled while waiting, or the lock was disposed), -EDEADLK (the
     * calling task holds an in-memory lock exclusively), -ENOMEM, or a
     * backend's error. A waiter that was granted returns 0 even if it is
     * cancelled before it runs again; one that timed out or was cancelled
     * never holds the lock. */
    int (*acquire)(rs_lock *l, rs_lock_mode mode, const rs_acquire_opts *o, rs_guard *g);

    /* Takes the lock in mode only if that is possible now and nobody is
     * queued for it (no barging); never waits for it. 0 (and *g filled),
     * -EBUSY, -EDEADLK, -ENOMEM, or a backend's error. */
    int (*try_acquire)(rs_lock *l, rs_lock_mode mode, rs_guard *g);

    /* This lock object's view: its holders (readers, writer, exclusive: held
     * exclusively or by a writer) and its queued tasks (pending). */
    void (*stats)(const rs_lock *l, rs_lock_stats *st);

    /* The owning scope closes: queued waiters return -ECANCELED, guards still
     * held are released (their later release is -EALREADY), and the object is
     * freed. Runs in the closing task and may suspend (store round trips). */
    void (*dispose)(rs_lock *l);
};

typedef int (*rs__lock_factory)(rs_scope *s, const rs_lock_opts *opts, rs_lock **out);

/* Registers the distributed kind's factory (NULL unregisters). */
void rs__lock_register_distributed(rs__lock_factory factory);

/* Creates the in-memory kind (the common layer attaches it to s). */
int rs__lock_mem_new(rs_scope *s, const rs_lock_opts *opts, rs_lock **out);

#endif
