/* ringscope synchronization: lock (exclusive or read-write, in memory or
 * distributed through a store), weighted semaphore, resource pool.
 *
 * Every primitive suspends only the waiting task, grants in priority order
 * (higher first, FIFO among equals), hands the resource directly to the head
 * waiter on release (no barging), and honours timeouts and cancellation. */
#ifndef RINGSCOPE_SYNC_H
#define RINGSCOPE_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include <ringscope/runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_acquire_opts {
    int64_t timeout_ms; /* 0 = wait without limit */
    int priority;       /* higher first; FIFO among equal priorities */
} rs_acquire_opts;

/* A guard records one grant. It lives on the caller's stack; its fields are
 * private. An all-zero guard is empty (not held). */
typedef struct rs_guard {
    void *rs_private_grant;        /* the grant record */
    uint64_t rs_private_gen;       /* the record's generation when granted */
    uint64_t rs_private_token;     /* fencing token of the grant */
} rs_guard;

#define RS_GUARD_INIT {0, 0, 0}
#define RS_GUARD(name) __attribute__((cleanup(rs_guard_cleanup))) rs_guard name = RS_GUARD_INIT

int rs_guard_release(rs_guard *g);              /* 0; -EALREADY if already released or never filled; -ENOLCK if a lease was lost first */
void rs_guard_cleanup(rs_guard *g);             /* releases if still held; for RS_GUARD */
bool rs_guard_held(const rs_guard *g);
uint64_t rs_guard_token(const rs_guard *g);     /* fencing token: larger than every earlier grant's */
rs_signal *rs_guard_lost(rs_guard *g);          /* aborts (-ENOLCK) when a distributed lease is lost */
int rs_guard_extend(rs_guard *g, int64_t ttl_ms); /* distributed: lease expires ttl_ms from now; 0 or -ENOLCK */
void *rs_guard_resource(const rs_guard *g);     /* the resource of a pool guard */
int rs_guard_discard(rs_guard *g);              /* pool: destroy the resource instead of returning it */

typedef struct rs_lock rs_lock;
typedef struct rs_lock_opts {
    const char *name;            /* diagnostics */
    bool allow_multiple_readers; /* read-write mode: rs_lock_read / rs_lock_write */
    struct rs_store *store;      /* NULL -> in-memory (this process); else distributed through the store */
    const char *key;             /* required with a store */
    int64_t ttl_ms;              /* lease length with a store; 0 -> 30000 */
    const char *owner;           /* lease owner id; NULL -> unique per lock object (host:pid:random) */
    bool no_renew;               /* with a store: do not renew the lease automatically while held */
} rs_lock_opts;

int rs_lock_new(rs_scope *s, const rs_lock_opts *opts, rs_lock **out);
int rs_lock_acquire(rs_lock *l, const rs_acquire_opts *o, rs_guard *g); /* exclusive mode */
int rs_lock_read(rs_lock *l, const rs_acquire_opts *o, rs_guard *g);    /* read-write mode */
int rs_lock_write(rs_lock *l, const rs_acquire_opts *o, rs_guard *g);   /* read-write mode */
int rs_lock_try_acquire(rs_lock *l, rs_guard *g);                       /* 0 or -EBUSY */
int rs_lock_try_read(rs_lock *l, rs_guard *g);
int rs_lock_try_write(rs_lock *l, rs_guard *g);

typedef struct rs_lock_stats {
    unsigned readers;
    bool writer;
    bool exclusive;
    unsigned pending;
} rs_lock_stats;
int rs_lock_stats_get(const rs_lock *l, rs_lock_stats *st); /* this lock object's view: its holders, its queued tasks */

int rs_scope_acquire_lock(rs_scope *s, const char *key, int64_t ttl_ms, const rs_acquire_opts *o, rs_guard *g);

typedef struct rs_sem rs_sem;
int rs_sem_new(rs_scope *s, int64_t permits, rs_sem **out);                         /* permits > 0 */
int rs_sem_acquire(rs_sem *sem, int64_t n, const rs_acquire_opts *o, rs_guard *g); /* weighted; n in 1..total */
int rs_sem_try_acquire(rs_sem *sem, int64_t n, rs_guard *g);                        /* 0, -EBUSY; -EINVAL for n outside 1..total */
int64_t rs_sem_available(const rs_sem *sem);
int64_t rs_sem_waiting(const rs_sem *sem);
int64_t rs_sem_total(const rs_sem *sem);

typedef struct rs_pool rs_pool;
typedef struct rs_pool_opts {
    int (*create)(void *ctx, void **resource); /* may suspend (runs in a task) */
    void (*destroy)(void *ctx, void *resource);
    bool (*check)(void *ctx, void *resource); /* optional health check of an idle resource */
    void *ctx;
    unsigned min, max;          /* max > 0; min <= max resources kept ready */
    int64_t acquire_timeout_ms; /* default acquire timeout; 0 = none */
    int64_t check_interval_ms;  /* health-check idle resources this often; 0 = never */
    int64_t idle_timeout_ms;    /* destroy resources idle this long, down to min; 0 = never */
} rs_pool_opts;

int rs_pool_new(rs_scope *s, const rs_pool_opts *opts, rs_pool **out);
int rs_pool_acquire(rs_pool *p, const rs_acquire_opts *o, rs_guard *g); /* resource: rs_guard_resource(g) */
int rs_pool_try_acquire(rs_pool *p, rs_guard *g);                      /* an idle resource now, or -EBUSY */
typedef struct rs_pool_stats {
    unsigned total, idle, in_use, waiting, creating;
} rs_pool_stats;
int rs_pool_stats_get(const rs_pool *p, rs_pool_stats *st);

#ifdef __cplusplus
}
#endif

#endif
