/* Per-worker timers: deadlines (monotonic ns) in a 4-ary min-heap beside a
 * sorted FIFO, both with lazy removal.
 *
 * An entry is (deadline, handle); a handle is a small record from the
 * worker's pool that names the armed timer. Disarming only clears the
 * handle's timer pointer (O(1)); the stale entry is dropped when it reaches
 * the front, or in a compaction once stale entries outnumber live ones. So
 * arming, firing and reordering touch the entry arrays and the handles only,
 * never the timers themselves (which live in waiting tasks' frames: with
 * 100,000 sleepers, on 100,000 different stacks), except to fire them.
 *
 * Most timers are armed in deadline order (now + the same timeout, again and
 * again): a timer whose deadline is not earlier than the FIFO's last entry is
 * appended there in O(1) and leaves it in O(1), in memory order; only the
 * others pay the heap's O(log n). The earliest timer is the earlier of the
 * two fronts.
 *
 * The worker asks the kernel for one timeout only: the earliest deadline,
 * passed as the wait limit of its io_uring_enter. */
#ifndef RS_RUNTIME_TIMER_H
#define RS_RUNTIME_TIMER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct rs__timer_handle rs__timer_handle;

typedef struct rs__timer {
    rs__timer_handle *handle;          /* NULL when not armed */
    void (*fire)(struct rs__timer *t); /* runs on the worker, never inside a task's frame */
} rs__timer;

struct rs__timer_handle {
    rs__timer *timer; /* NULL once disarmed: the entry is stale */
    int64_t deadline;
    rs__timer_handle *next_free;
};

typedef struct rs__timer_entry {
    int64_t deadline;
    rs__timer_handle *handle;
} rs__timer_entry;

typedef struct rs__timer_heap {
    rs__timer_entry *slots;       /* the heap */
    uint32_t len, cap;
    rs__timer_entry *fifo;        /* ring of entries in deadline order; cap a power of two */
    uint32_t fifo_head, fifo_len, fifo_cap;
    uint32_t stale;               /* entries (heap or FIFO) whose timer was disarmed */
    rs__timer_handle *free;       /* handle pool */
    void **chunks;                /* handle allocations, freed with the heap */
    uint32_t nchunks, cap_chunks;
    uint32_t arm_refusals;        /* tests: the next this many arms fail with -ENOMEM, as without memory */
} rs__timer_heap;

static inline void rs__timer_init(rs__timer *t, void (*fire)(rs__timer *))
{
    t->handle = 0;
    t->fire = fire;
}

static inline bool rs__timer_armed(const rs__timer *t)
{
    return t->handle != 0;
}

/* The deadline an armed timer was armed with. */
static inline int64_t rs__timer_deadline(const rs__timer *t)
{
    return t->handle->deadline;
}

/* Armed timers (stale entries not counted). */
static inline uint32_t rs__timer_count(const rs__timer_heap *h)
{
    return h->len + h->fifo_len - h->stale;
}

int rs__timer_heap_init(rs__timer_heap *h);
void rs__timer_heap_destroy(rs__timer_heap *h);
int rs__timer_arm(rs__timer_heap *h, rs__timer *t, int64_t deadline);   /* 0 or -ENOMEM */
void rs__timer_disarm(rs__timer_heap *h, rs__timer *t);                   /* no-op when idle */

/* The earliest deadline of an armed timer, or INT64_MAX when none is armed. */
int64_t rs__timer_next_deadline(rs__timer_heap *h);

/* Disarms and fires the timers whose deadline is <= now, earliest first, at
 * most max of them. Returns how many fired. */
unsigned rs__timer_fire_due(rs__timer_heap *h, int64_t now, unsigned max);

/* Monotonic clock in nanoseconds. */
int64_t rs__clock_ns(void);

#endif
