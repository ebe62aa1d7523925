/* The in-memory lock's object and fast paths, shared by the common layer
 * (sync/lock.c) and rs_guard_release (sync/guard.c) so that acquiring a free
 * lock and releasing it are a few loads and stores with no call. The rest of
 * the kind is in sync/lock_mem.c. */
#ifndef RS_SYNC_LOCK_MEM_H
#define RS_SYNC_LOCK_MEM_H

#include "runtime/task.h"
#include "runtime/waitq.h"
#include "sync/guard.h"
#include "sync/lock_backend.h"

typedef struct mem_lock mem_lock;

struct mem_lock {
    struct rs_lock base;
    rs__grant xrec;      /* the grant of the exclusive holder or writer: one at a time, embedded */
    rs__grant *excl;     /* &xrec while held exclusively or by a writer, else NULL */
    unsigned readers;
    rs__waitq q;
    rs__grant_list held; /* the readers' grants (pooled records), for disposal */
    uint64_t next_token; /* fencing tokens: 1, 2, 3 ... */
};

/* hidden: compared by address on the fast paths, without a GOT load */
extern const rs__lock_ops rs__mem_lock_ops __attribute__((visibility("hidden")));
extern const rs__grant_ops rs__mem_excl_grant_ops __attribute__((visibility("hidden")));

/* Grants the head waiters while they can be granted. */
void rs__mem_pump(mem_lock *ml);

/* Everything but "free and nobody queued" (self-deadlock, priority rule, waiting). */
int rs__mem_acquire_slow(mem_lock *ml, rs_lock_mode mode, const rs_acquire_opts *o, rs_guard *g, rs_task *t);

/* The lock objects embed a record, so they come from stable memory (see
 * guard.h): a guard of a disposed lock still reads its record safely. */
static inline rs__grant *rs__mem_grant_excl(mem_lock *ml, rs_lock_mode mode, rs_task *t)
{
    rs__grant *gr = &ml->xrec;
    gr->task = t;
    gr->n = mode;
    gr->token = ml->next_token++;
    ml->excl = gr;
    return gr;
}

/* t: the calling task, not cancelled; o never NULL. */
static inline int rs__mem_acquire(mem_lock *ml, rs_lock_mode mode, const rs_acquire_opts *o, rs_guard *g,
                                  rs_task *t)
{
    if (__builtin_expect(mode != RS_LOCK_READ && !ml->excl && !ml->readers && !rs__waitq_head(&ml->q), 1)) {
        rs__guard_set(g, rs__mem_grant_excl(ml, mode, t));
        return 0;
    }
    return rs__mem_acquire_slow(ml, mode, o, g, t);
}

/* What a queued waiter of the in-memory lock is (sync/lock_mem.c). */
typedef struct mem_waiter {
    rs__waiter w; /* w.n: the mode */
    rs__grant_slot slot;
    mem_lock *lock;
} mem_waiter;

/* Ends the exclusive grant gr (live) and hands the lock on: straight to an
 * exclusive or write waiter at the head (the hand-off of a contended mutex:
 * the embedded record, with its new generation, becomes the waiter's grant
 * and the lock never reads as free), else through rs__mem_pump (readers are
 * granted in a batch). */
static inline int rs__mem_release_excl(rs__grant *gr)
{
    mem_lock *ml = gr->obj;
    rs__waiter *h = rs__waitq_head(&ml->q);
    uint64_t gen = ++gr->gen;
    if (__builtin_expect(h == NULL, 1)) {
        ml->excl = NULL;
    } else if (h->n != RS_LOCK_READ) {
        rs_task *t = h->wait.task;
        uint64_t token = ml->next_token++;
        gr->task = t;
        gr->n = h->n;
        gr->token = token;
        /* rs__mem_grant_excl and rs__slot_set written out: excl already names
         * the record, and the slot takes gen and token from registers instead
         * of reloading what was just stored (measured: 2% of a hand-off). */
        mem_waiter *mw = (mem_waiter *)rs__waitq_pop_head(&ml->q);
        mw->slot.grant = gr;
        mw->slot.gen = gen;
        mw->slot.token = token;
        rs__wait_wake(&h->wait, 0);
    } else {
        ml->excl = NULL;
        rs__mem_pump(ml);
    }
    return 0;
}

#endif
