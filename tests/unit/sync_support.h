/* Helpers shared by the synchronization tests (lock, rwlock, sem, pool,
 * guard): waiting for a number of queued tasks, and an order log. */
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
