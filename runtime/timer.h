/* Per-worker timer heap: a binary min-heap of deadlines (monotonic ns).
 *
 * Timers are intrusive (they live in the waiting task's frame or in the object
 * they serve) and know their heap slot, so disarming is O(log n). The worker
 * asks the kernel for one timeout only: the earliest deadline, passed as the
 * wait limit of its io_uring_enter. */
#ifndef RS_RUNTIME_TIMER_H
#define RS_RUNTIME_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#define RS_TIMER_IDLE UINT32_MAX

typedef struct rs__timer {
    int64_t deadline;                    /* monotonic ns */
    uint32_t slot;                       /* heap index, RS_TIMER_IDLE when not armed */
    void (*fire)(struct rs__timer *t);   /* runs on the worker, never inside a task's frame */
} rs__timer;

typedef struct rs__timer_heap {
    rs__timer **slots;
    uint32_t len, cap;
} rs__timer_heap;

static inline void rs__timer_init(rs__timer *t, void (*fire)(rs__timer *))
{
    t->deadline = 0;
    t->slot = RS_TIMER_IDLE;
    t->fire = fire;
}

static inline bool rs__timer_armed(const rs__timer *t)
{
    return t->slot != RS_TIMER_IDLE;
}

int rs__timer_heap_init(rs__timer_heap *h);
void rs__timer_heap_destroy(rs__timer_heap *h);
int rs__timer_arm(rs__timer_heap *h, rs__timer *t, int64_t deadline);   /* 0 or -ENOMEM */
void rs__timer_disarm(rs__timer_heap *h, rs__timer *t);                   /* no-op when idle */

static inline rs__timer *rs__timer_earliest(const rs__timer_heap *h)
{
    return h->len ? h->slots[0] : 0;
}

/* Disarms and fires every timer whose deadline is <= now, earliest first.
 * Returns how many fired. */
unsigned rs__timer_fire_due(rs__timer_heap *h, int64_t now);

/* Monotonic clock in nanoseconds. */
int64_t rs__clock_ns(void);

#endif
