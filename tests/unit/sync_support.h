/* Helpers shared by the synchronization tests (lock, rwlock, sem, pool,
 * guard): waiting for a number of queued tasks, a held lock to queue behind,
 * and an order log. */
#ifndef RS_TESTS_SYNC_SUPPORT_H
#define RS_TESTS_SYNC_SUPPORT_H

#include "support.h"

/* Yields until cond holds, then sleeps 1 ms at a time (for conditions that
 * wait on timers); bounded at about 10 s: the test fails instead of hanging. */
#define RS_YIELD_UNTIL(cond)                                                                                  \
    do {                                                                                                      \
        int rs_spin_ = 0;                                                                                     \
        while (!(cond) && rs_spin_ < 11000)                                                                   \
            RS_CHECK_OK(rs_spin_++ < 1000 ? rs_yield() : rs_sleep(1));                                        \
        RS_CHECK(cond);                                                                                       \
    } while (0)

static inline unsigned lock_pending(const rs_lock *l)
{
    rs_lock_stats st;
    return rs_lock_stats_get(l, &st) == 0 ? st.pending : ~0u;
}

/* A new in-memory exclusive lock, acquired at once by the calling task into g
 * (an empty guard), so that the tasks the test spawns next have to queue. */
static inline int new_held_lock(rs_lock **l, rs_guard *g)
{
    RS_CHECK_OK(rs_lock_new(NULL, NULL, l));
    RS_CHECK_OK(rs_lock_acquire(*l, NULL, g));
    return 0;
}

/* Spawns fn(arg) in the current scope (its handle into *out unless out is
 * NULL) and waits until l's queue holds `queued` waiters: spawned one after
 * another this way, the waiters queue in the order of the calls. */
static inline int spawn_queued(rs_lock *l, rs_task_fn fn, void *arg, rs_task **out, unsigned queued)
{
    RS_CHECK_OK(rs_spawn(rs_current_scope(), fn, arg, NULL, out));
    RS_YIELD_UNTIL(lock_pending(l) == queued);
    return 0;
}

/* An order log: tasks append their ids as they get what they waited for. */
typedef struct order_log {
    int ids[256];
    int len;
} order_log;

static inline void order_add(order_log *o, int id)
{
    if (o->len < (int)(sizeof o->ids / sizeof o->ids[0]))
        o->ids[o->len++] = id;
}

#endif
