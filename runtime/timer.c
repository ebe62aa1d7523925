/* Binary min-heap of intrusive timers. Invariant: slots[i]->slot == i for
 * every armed timer, and each parent's deadline <= its children's. */
#include "runtime/timer.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

int64_t rs__clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int rs__timer_heap_init(rs__timer_heap *h)
{
    h->len = 0;
    h->cap = 64;
    h->slots = malloc(h->cap * sizeof *h->slots);
    return h->slots ? 0 : -ENOMEM;
}

void rs__timer_heap_destroy(rs__timer_heap *h)
{
    for (uint32_t i = 0; i < h->len; i++)
        h->slots[i]->slot = RS_TIMER_IDLE;
    free(h->slots);
    h->slots = NULL;
    h->len = h->cap = 0;
}

static void place(rs__timer_heap *h, uint32_t i, rs__timer *t)
{
    h->slots[i] = t;
    t->slot = i;
}

static void sift_up(rs__timer_heap *h, uint32_t i)
{
    rs__timer *t = h->slots[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (h->slots[parent]->deadline <= t->deadline)
            break;
        place(h, i, h->slots[parent]);
        i = parent;
    }
    place(h, i, t);
}

static void sift_down(rs__timer_heap *h, uint32_t i)
{
    rs__timer *t = h->slots[i];
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= h->len)
            break;
        if (child + 1 < h->len && h->slots[child + 1]->deadline < h->slots[child]->deadline)
            child++;
        if (t->deadline <= h->slots[child]->deadline)
            break;
        place(h, i, h->slots[child]);
        i = child;
    }
    place(h, i, t);
}

int rs__timer_arm(rs__timer_heap *h, rs__timer *t, int64_t deadline)
{
    if (rs__timer_armed(t))
        rs__timer_disarm(h, t);
    if (h->len == h->cap) {
        uint32_t cap = h->cap * 2;
        rs__timer **s = realloc(h->slots, cap * sizeof *s);
        if (!s)
            return -ENOMEM;
        h->slots = s;
        h->cap = cap;
    }
    t->deadline = deadline;
    place(h, h->len++, t);
    sift_up(h, t->slot);
    return 0;
}

void rs__timer_disarm(rs__timer_heap *h, rs__timer *t)
{
    uint32_t i = t->slot;
    if (i == RS_TIMER_IDLE)
        return;
    t->slot = RS_TIMER_IDLE;
    rs__timer *last = h->slots[--h->len];
    if (last == t)
        return;
    place(h, i, last);
    if (i > 0 && h->slots[(i - 1) / 2]->deadline > last->deadline)
        sift_up(h, i);
    else
        sift_down(h, i);
}

unsigned rs__timer_fire_due(rs__timer_heap *h, int64_t now)
{
    unsigned fired = 0;
    while (h->len && h->slots[0]->deadline <= now) {
        rs__timer *t = h->slots[0];
        rs__timer_disarm(h, t);
        t->fire(t);
        fired++;
    }
    return fired;
}
