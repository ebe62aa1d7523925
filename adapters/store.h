/* The store interface: what every lock-store backend implements (PRIVATE).
 *
 * A store is where distributed locks live: the built-in memory store
 * (adapters/memory/), Redis, PostgreSQL, MySQL/MariaDB, MongoDB (one folder
 * each under adapters/). A backend is a table of functions (rs__store_ops)
 * over its own per-handle state; adapters/store.c parses the URL, picks the
 * backend by scheme, validates every argument and adds the key prefix, and the
 * distributed-lock engine (adapters/engine.h) builds rs_lock on top. A backend
 * therefore never sees a NULL pointer, an empty or over-long key, a ttl <= 0,
 * a mode out of range or an owner that does not fit rs_lock_info.owner.
 *
 * ---------------------------------------------------------------- contract
 * Keys. Every key a backend receives is the FULL key: the handle's prefix
 * followed by the user's key, NUL-terminated, at most RS__STORE_FULL_KEY_MAX
 * bytes. It may contain any byte except NUL: quotes, SQL and Lua
 * metacharacters, '%', '*', '{' ... are ordinary characters. Pass keys and
 * owners as bound parameters (SQL placeholders, Lua KEYS/ARGV, BSON values),
 * never spliced into a statement or a pattern.
 *
 * Modes. RS_LOCK_EXCLUSIVE and RS_LOCK_WRITE form one class ("exclusive
 * class": one owner at a time); RS_LOCK_READ is the shared class (any number
 * of owners, each with its own lease). The two classes exclude each other.
 * A lease is identified by (key, owner, class); an owner never holds both
 * classes of one key at once (no upgrade or downgrade: asking for the other
 * class while holding one is -EBUSY like any conflict).
 *
 * acquire: one attempt, atomic on the server.
 *   - exclusive class: granted when the key has no live holder; when the
 *     SAME owner already holds it in the exclusive class the lease is
 *     refreshed (expires ttl_ms from now), the SAME token comes back, and one
 *     release frees it (a restarted worker reclaims its lease this way);
 *     otherwise -EBUSY.
 *   - read: granted when no exclusive-class holder is live and no live write
 *     intent exists (see below); a reader that already holds a read lease
 *     refreshes it and gets the same token (that is not a new reader, so an
 *     intent does not stop it); otherwise -EBUSY.
 *   - every NEW grant takes a token from a counter that never goes back:
 *     larger than every token ever granted for that key by that store, also
 *     after the key was released, expired or force-released. Never 0.
 *   - expiry is decided by the server's clock (the memory store: this
 *     process's CLOCK_MONOTONIC). A lease whose time is up is gone: it is
 *     never extended, released or reported again.
 *
 * Write intent (no writer starvation across processes). An acquire in the
 * exclusive class with RS__ACQ_INTENT that ends in -EBUSY leaves (or
 * refreshes) a write intent (key, owner, expires RS__STORE_INTENT_MS from
 * now). While any live intent exists, NEW readers get -EBUSY; readers that
 * hold a lease keep it, extend it and release it, so they drain. A grant in
 * the exclusive class removes the grantee's own intent; withdraw removes it
 * without a grant (the waiter timed out or was cancelled); an intent whose
 * writer went away expires by itself. A waiting writer must therefore retry
 * (with RS__ACQ_INTENT) well within RS__STORE_INTENT_MS: the engine retries at
 * least every RS__DLOCK_BACKOFF_MAX_MS (200 ms) plus one round trip. An
 * acquire without RS__ACQ_INTENT has no side effect when it fails.
 *
 * release / extend: check the owner atomically with the change (one script,
 * one statement, one findAndModify: never read-then-delete). The lease of
 * (key, owner, class) must be live: expired, force-released or taken over ->
 * -ENOLCK, and nothing is changed (the new holder is untouched). extend sets
 * the lease to expire ttl_ms from now (it may shorten it).
 *
 * force_release: removes every lease and every write intent of the key (no
 * owner check); the token counter survives. 0 also when the key was free.
 *
 * inspect: -ENOENT when no live lease exists. Otherwise mode (READ for
 * readers; the holder's mode for the exclusive class), holders (the number
 * of live leases), owner (the holder whose lease lasts longest), ttl_left_ms
 * (the longest remaining lease, rounded up: > 0 while held), token (the
 * largest token among the live leases).
 *
 * ---------------------------------------------------------------- errors
 * Every operation returns 0 or a negative errno. Besides the contract's
 * -EBUSY / -ENOLCK / -ENOENT: -ENOMEM; for network backends -ECONNREFUSED,
 * -ECONNRESET, -EPIPE, -EIO, -EPROTO, -EHOSTUNREACH (server unreachable,
 * dropped or answering nonsense), -ETIMEDOUT (op_timeout_ms / connect_timeout_ms
 * passed) and -ECANCELED (the calling task was cancelled while waiting for the
 * server). After a transport error the outcome of a mutating call is unknown:
 * the engine treats it as "maybe happened" (it never assumes a grant it did
 * not see, and it stops trusting a lease whose extend kept failing until the
 * lease's end).
 *
 * ---------------------------------------------------------------- suspension
 * open and close never suspend and never do I/O (rs_store_open is called
 * before rs_run, rs_store_close after it): a network backend connects lazily
 * on first use, inside a task, bounded by connect_timeout_ms; close only
 * closes descriptors and frees memory.
 * acquire, release, extend, force_release, inspect, withdraw and watch are
 * called only from a task (the caller has checked) and MAY suspend the calling
 * task (a round trip through the worker's io_uring); ops->suspends says
 * whether they do. Each one is bounded by op_timeout_ms. They are not
 * cancellation-free: a network backend may return -ECANCELED when the calling
 * task is cancelled. The engine runs release inside a shielded scope so that
 * giving a lease back completes even in a cancelled scope.
 * unwatch never suspends (a backend that must tell its server does it later,
 * from its own background task).
 *
 * ---------------------------------------------------------------- threads
 * One handle may be used by several runtimes, each on its own thread, at the
 * same time: a backend protects what its handles share (the memory store has
 * one mutex around its table; a network backend keeps its connections per
 * worker thread, because a connection's I/O goes through one worker's ring).
 * Within one thread, calls from many tasks interleave at suspension points.
 *
 * ---------------------------------------------------------------- wake-ups
 * watch (optional; NULL when the backend has no notification mechanism) lets
 * a waiting task learn that a key MAY have become available without polling.
 * After watch(st, w) returned 0 and until unwatch(st, w), the backend calls
 * w->changed(w) on the thread that called watch (an event on another thread
 * pokes the watcher's worker, runtime/worker.h), after any event it can
 * observe that may let a waiter in: a release or force_release, a withdrawn
 * intent, a lease found expired. Promises and limits:
 *   - at least once per observed event, possibly spuriously (the engine
 *     simply retries);
 *   - never lost between watch and unwatch for events the backend observes.
 *     The engine starts watching after its first refused attempt and then
 *     attempts once more before it waits, so a release in between is not
 *     missed; afterwards it counts changed() calls around each attempt and
 *     retries at once when one came in while the attempt was on the way;
 *   - best effort: an event the backend cannot see (a lease expiring on a
 *     server without expiry notifications) produces no call. The engine
 *     therefore always bounds its wait with a jittered backoff and the
 *     retry_ms hint, so a missing wake-up costs latency, never a hang.
 * changed runs on the watcher's thread, possibly inside a store call of
 * another task and with the backend's locks held: it must only record the
 * event and wake tasks; it must not call into the store. */
#ifndef RS_ADAPTERS_STORE_H
#define RS_ADAPTERS_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ringscope/store.h>

#include "adapters/url.h"

#define RS__STORE_KEY_MAX 512                /* user key, without the prefix */
#define RS__STORE_PREFIX_MAX 256
#define RS__STORE_FULL_KEY_MAX (RS__STORE_PREFIX_MAX + RS__STORE_KEY_MAX)
#define RS__STORE_OWNER_MAX 255              /* fits rs_lock_info.owner with its NUL */
#define RS__STORE_INTENT_MS 1000             /* life of a write intent; refreshed by each attempt */
#define RS__STORE_DEFAULT_PREFIX "ringscope:"

/* acquire flags */
#define RS__ACQ_INTENT 1u /* exclusive class: on -EBUSY leave/refresh this owner's write intent */

typedef struct rs__store_ops rs__store_ops;

/* What an acquire reports besides its return value. */
typedef struct rs__store_grant {
    uint64_t token;   /* on 0: the lease's token */
    int64_t retry_ms; /* on -EBUSY: ms until the leases and intents in the way end, if the backend knows
                         (a hint: they may be extended); -1 when unknown */
} rs__store_grant;

/* A watch on one key (see "wake-ups" above). The engine owns the record and
 * fills key and changed; the rest belongs to the backend while watched. */
typedef struct rs__store_watch {
    const char *key;                            /* full key; valid until unwatch */
    void (*changed)(struct rs__store_watch *w); /* see the rules above */
    struct rs__store_watch *prev, *next;        /* backend's list */
    void *backend;                              /* backend's record of the key */
    const void *thread;                         /* the watcher's worker */
    /* memory store: changed() is due on the watcher's thread after a poke */
    struct rs__store_watch *poke_prev, *poke_next;
    bool pokeable, poked;
} rs__store_watch;

struct rs__store_ops {
    const char *scheme;     /* URL scheme, lower case: "memory", "redis" ... */
    const char *alias;      /* a second accepted scheme ("postgres" for "postgresql"), or NULL */
    bool suspends;          /* operations are round trips that suspend the caller */

    /* Checks the parsed URL (a host where the scheme needs one ...) and sets
     * st->impl. Never suspends, never does I/O. -EINVAL for a URL the backend
     * cannot use, -ENOMEM. */
    int (*open)(rs_store *st, const rs__url *url);
    /* Frees st->impl. Called only when no lock object uses the handle. */
    void (*close)(rs_store *st);

    int (*acquire)(rs_store *st, const char *key, rs_lock_mode mode, const char *owner, int64_t ttl_ms,
                   unsigned flags, rs__store_grant *out);                                   /* 0, -EBUSY */
    int (*release)(rs_store *st, const char *key, rs_lock_mode mode, const char *owner);    /* 0, -ENOLCK */
    int (*extend)(rs_store *st, const char *key, rs_lock_mode mode, const char *owner,
                  int64_t ttl_ms);                                                          /* 0, -ENOLCK */
    int (*force_release)(rs_store *st, const char *key);                                    /* 0 */
    int (*inspect)(rs_store *st, const char *key, rs_lock_info *info);                      /* 0, -ENOENT */
    /* Removes owner's write intent on key, if any. 0. */
    int (*withdraw)(rs_store *st, const char *key, const char *owner);

    /* Optional (NULL: no wake-ups, the engine backs off). watch may suspend
     * (to subscribe); unwatch never does. */
    int (*watch)(rs_store *st, rs__store_watch *w);
    void (*unwatch)(rs_store *st, rs__store_watch *w);
};

/* A store handle (rs_store in the public API). */
struct rs_store {
    const rs__store_ops *ops;
    void *impl;                   /* the backend's state for this handle */
    char *prefix;                 /* key_prefix, owned; "ringscope:" by default */
    size_t prefix_len;
    unsigned pool_size;           /* resolved options (defaults applied) */
    int64_t connect_timeout_ms;
    int64_t op_timeout_ms;
    atomic_uint users;            /* lock objects, runtimes and scopes using the handle: close is -EBUSY while > 0 */
    bool builtin;                 /* the runtime's default handle: never freed */
};

/* The handle used where no store is configured (rs_runtime_opts.store and
 * every scope's store NULL): the memory store with the default prefix. */
rs_store *rs__store_default(void);

/* Writes prefix + key into buf (RS__STORE_FULL_KEY_MAX + 1 bytes). -EINVAL
 * for an empty key or one longer than RS__STORE_KEY_MAX. */
int rs__store_full_key(const rs_store *st, const char *key, char *buf);

/* 0 for a usable owner (non-empty, at most RS__STORE_OWNER_MAX bytes), else -EINVAL. */
int rs__store_check_owner(const char *owner);

/* A lock object (or another engine user) starts / stops using st. */
void rs__store_ref(rs_store *st);
void rs__store_unref(rs_store *st);

/* Backends. */
extern const rs__store_ops rs__store_memory_ops;

#endif
