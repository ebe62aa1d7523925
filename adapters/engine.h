/* The distributed-lock engine (PRIVATE): rs_lock with a store, shared by
 * every backend. It plugs into rs_lock through sync/lock_backend.h and talks
 * to the backend only through adapters/store.h.
 *
 * Objects and who owns them (all on the thread of the runtime that uses them):
 *
 *   dkey    one per (store handle, full key) on this thread: the local
 *           priority queue of this thread's waiters for the key, the local
 *           holders' state, the store watch. Refcounted by the lock objects
 *           on the key; freed with the last one. (engine_key.c)
 *   dlock   a lock object: struct rs_lock + store, key, owner, ttl, renewal
 *           policy, its live grants. Owned by its scope. (engine.c)
 *   lease   one per grant: the store owner it was granted to, the lease's
 *           length and end, the renewal timer, the lost signal. Records are
 *           pooled per thread and only returned to the allocator when the
 *           runtime ends, like grant records, so a signal pointer obtained
 *           from rs_guard_lost stays readable. (engine_lease.c)
 *
 * Invariants of a dkey (between two engine calls):
 *  1. At most one waiter contends through the store at a time (dk->contender;
 *     a try call in flight counts): two attempts of one owner could both be
 *     answered as a same-owner re-acquire and share one lease.
 *  2. The contender is the head of the queue, or is about to notice that it
 *     is not and step back (it is woken when someone gets in front of it).
 *  3. Exclusive/write grants of this thread on the key: at most one live
 *     (dk->excl); while it lives nobody contends for the key from here under
 *     its owner (a store attempt would be answered as that owner's refresh).
 *     An exclusive-class head under another owner does contend: its refused
 *     attempts leave the write intent that keeps new readers out everywhere
 *     until its turn comes.
 *  4. A waiter is parked at most once at a time and woken exactly once per
 *     park (dwaiter.parked guards every wake).
 *  5. Write intents are left only by the contender's attempts; a waiter that
 *     stops contending without a grant withdraws its intent before it goes. */
#ifndef RS_ADAPTERS_ENGINE_H
#define RS_ADAPTERS_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include <ringscope/store.h>
#include <ringscope/sync.h>

#include "adapters/store.h"
#include "runtime/signal.h"
#include "runtime/timer.h"
#include "runtime/waitq.h"
#include "sync/guard.h"
#include "sync/lock_backend.h"

#define RS__DLOCK_TTL_DEFAULT 30000
#define RS__DLOCK_BACKOFF_MIN_MS 5
#define RS__DLOCK_BACKOFF_MAX_MS 200 /* a waiting writer refreshes its intent this often: << RS__STORE_INTENT_MS */
/* Read grants get their own store owner: the lock's owner + "#r" + 16 hex digits. */
#define RS__DLOCK_OWNER_MAX (RS__STORE_OWNER_MAX - 24)

typedef struct dkey dkey;
typedef struct dlock dlock;
typedef struct dwaiter dwaiter;
typedef struct lease lease;

struct dkey {
    dkey *next;                  /* registry chain */
    uint64_t hash;
    rs_store *st;
    unsigned refs;               /* lock objects on this key */
    rs__waitq q;                 /* this thread's waiters, priority order */
    dwaiter *contender;          /* invariant 1 */
    rs__grant *excl;             /* invariant 3 */
    lease *read_leases;          /* leases of the live read grants of this thread (lease.key_next) */
    rs__store_watch watch;       /* registered while watching */
    bool watching;
    unsigned changes;            /* store wake-ups seen (watch.changed calls) */
    uint64_t top_token;          /* the largest token granted here: a grant at or below it is an old lease */
    size_t key_len;
    char key[];                  /* full key: prefix + user key */
};

struct dwaiter {
    rs__waiter w;                /* in dk->q; w.n: the mode */
    dlock *lock;
    bool parked;                 /* invariant 4 */
    bool intent;                 /* an attempt may have left a write intent */
    bool unsure;                 /* an attempt failed without an answer: it may have been granted */
};

struct dlock {
    struct rs_lock base;         /* first: rs_lock * <-> dlock * */
    rs_store *st;
    dkey *dk;
    int64_t ttl_ms;
    bool no_renew;
    bool ephemeral;              /* rs_scope_acquire_lock's: freed when its grant ends */
    bool disposing;
    unsigned active;             /* tasks inside acquire, try or release on this object */
    rs__wait *disposer;          /* dispose waiting for active to drop to 0 */
    unsigned pending;            /* its waiters in dk->q */
    unsigned readers;            /* its live read grants */
    rs__grant *excl;             /* its live exclusive/write grant */
    rs__grant_list held;         /* every live grant, for disposal */
    char owner[RS__DLOCK_OWNER_MAX + 1];
};

struct lease {
    lease *next_free;
    rs__grant *gr;
    dlock *lock;
    rs_lock_mode mode;
    int64_t ttl_ms;              /* length used by renewals */
    int64_t end_ns;              /* lower bound of the lease's end on the store's clock, as seen here */
    rs__timer timer;             /* next renewal, or the end with no_renew */
    rs_signal lost_sig;
    bool local_held;             /* named by dk->excl, or linked in dk->read_leases */
    lease *key_prev, *key_next;  /* dk->read_leases links of a read lease */
    bool lost;                   /* known lost: signal aborted, local slot given back */
    bool failing;                /* the last renewal failed without an answer: retrying until end_ns */
    bool releasing;              /* rs_guard_release (or disposal) has begun */
    bool stop;                   /* no renewal may start (release or extend in progress) */
    bool busy;                   /* an extend (renewal task or rs_guard_extend) is in flight */
    rs_task *renewer;            /* the renewal task while it runs */
    rs__waitq idle;              /* tasks waiting for busy to clear */
    char owner[RS__STORE_OWNER_MAX + 1]; /* the store owner of this lease */
};

/* ------------------------------------------------------------ engine.c */

/* Makes rs_lock_new with a store use the engine (from rs_store_open). */
void rs__dlock_register(void);

/* Creates a lock object on st (checked options, as the factory gets them).
 * The caller attaches it to its scope. */
int rs__dlock_create(rs_scope *s, rs_store *st, const rs_lock_opts *opts, rs_lock **out);

/* A task stops using l (an acquire, a try or a release is over). When it
 * was the last one: wakes the disposal waiting for that, or frees an
 * ephemeral lock that holds nothing any more (l is gone afterwards). */
void rs__dlock_leave(dlock *l);

/* ------------------------------------------------------------ engine_key.c */

/* The dkey of (st, full key) on this thread, created on first use. NULL: -ENOMEM. */
dkey *rs__dkey_get(rs_store *st, const char *full_key);
void rs__dkey_put(dkey *dk);

/* Something changed locally or in the store: wake whoever must act (the
 * contender to re-check, else a head that may now contend). */
void rs__dkey_kick(dkey *dk);

/* May head (mode, owner) contend now, as far as this thread's own holders
 * go? Not under the owner of a grant of this thread that holds the key
 * exclusively, nor for reading while it does (the attempt could only be
 * refused); otherwise yes (invariant 3). Local readers do not stop a writer
 * from contending either: its refused attempts leave the write intent that
 * keeps new readers out everywhere. */
bool rs__dkey_eligible(const dkey *dk, rs_lock_mode mode, const char *owner);

/* Starts the store watch (if the backend has one); 0 or a negative errno. */
int rs__dkey_watch(dkey *dk);

/* Stops the watch once no waiter of this thread is left on the key. */
void rs__dkey_unwatch_if_idle(dkey *dk);

/* Wakes a parked waiter with result; no-op when it is not parked. */
void rs__dwaiter_wake(dwaiter *dw, int result);

/* ------------------------------------------------------------ engine_lease.c */

extern const rs__grant_ops rs__dlease_ops;

/* A free lease record for l, or NULL (-ENOMEM). */
lease *rs__lease_alloc(dlock *l);
void rs__lease_free(lease *ls);

/* The grant succeeded through the store at send_ns: arms renewal (or the
 * end, with no_renew) and records the local holder state. */
void rs__lease_start(lease *ls, rs__grant *gr, int64_t send_ns);

/* The store just granted dk exclusively to a lock object of this thread
 * while grants of this thread still counted as holding it (the exclusive one
 * of another owner, readers): their leases are gone from the store (taken
 * over, force-released or expired before a renewal could tell). Marks them
 * lost, which also frees their local slots, so the new grant is the only
 * holder here. */
void rs__lease_supersede_all(dkey *dk);

/* Gives a live grant back (store release unless known lost) and ends it:
 * what rs_guard_release does; also used by disposal. */
int rs__lease_release(rs__grant *gr);

/* ------------------------------------------------------------ engine_owner.c */

/* "host:pid:random", unique per call; buf has RS__DLOCK_OWNER_MAX + 1 bytes. */
void rs__dlock_default_owner(char *buf);

/* A pseudo-random 64-bit value from this thread's generator (jitter). */
uint64_t rs__dlock_random(void);

/* ------------------------------------------------------------ store calls */

/* Runs a store call that must finish even when the calling task is
 * cancelled (giving a lease back, withdrawing an intent): for backends that
 * suspend, inside a shielded scope. */
typedef struct rs__shield {
    rs_scope *scope;
} rs__shield;
void rs__shield_enter(rs__shield *sh, const rs_store *st);
void rs__shield_leave(rs__shield *sh);

#endif
