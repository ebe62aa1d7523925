/* Timers: a 4-ary min-heap and a sorted FIFO of (deadline, handle) entries,
 * with lazy removal (see timer.h).
 * Invariants: each heap parent's deadline <= its children's (the children of
 * i are 4i+1 .. 4i+4); FIFO deadlines never decrease from head to tail; an
 * armed timer t has t->handle->timer == t and exactly one entry (heap or
 * FIFO) names t->handle; a handle with timer == NULL is named by exactly one
 * (stale) entry and counted in h->stale; a handle on the free list is named by
 * no entry. */
#include "runtime/timer.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#define ARITY 4
#define HANDLES_PER_CHUNK 256
#define COMPACT_MIN_STALE 64

int64_t rs__clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int rs__timer_heap_init(rs__timer_heap *h)
{
    *h = (rs__timer_heap){ 0 };
    h->cap = h->fifo_cap = 64;
    h->slots = malloc(h->cap * sizeof *h->slots);
    h->fifo = malloc(h->fifo_cap * sizeof *h->fifo);
    if (!h->slots || !h->fifo) {
        free(h->slots);
        free(h->fifo);
        return -ENOMEM;
    }
    return 0;
}

static inline rs__timer_entry *fifo_at(const rs__timer_heap *h, uint32_t i)
{
    return &h->fifo[(h->fifo_head + i) & (h->fifo_cap - 1)];
}

static void unlink_timer(rs__timer_entry e)
{
    if (e.handle->timer)
        e.handle->timer->handle = NULL;
}

void rs__timer_heap_destroy(rs__timer_heap *h)
{
    for (uint32_t i = 0; i < h->len; i++)
        unlink_timer(h->slots[i]);
    for (uint32_t i = 0; i < h->fifo_len; i++)
        unlink_timer(*fifo_at(h, i));
    for (uint32_t i = 0; i < h->nchunks; i++)
        free(h->chunks[i]);
    free(h->chunks);
    free(h->slots);
    free(h->fifo);
    *h = (rs__timer_heap){ 0 };
}

static rs__timer_handle *handle_alloc(rs__timer_heap *h)
{
    if (!h->free) {
        if (h->nchunks == h->cap_chunks) {
            uint32_t cap = h->cap_chunks ? h->cap_chunks * 2 : 8;
            void **c = realloc(h->chunks, cap * sizeof *c);
            if (!c)
                return NULL;
            h->chunks = c;
            h->cap_chunks = cap;
        }
        rs__timer_handle *chunk = malloc(HANDLES_PER_CHUNK * sizeof *chunk);
        if (!chunk)
            return NULL;
        h->chunks[h->nchunks++] = chunk;
        for (int i = HANDLES_PER_CHUNK - 1; i >= 0; i--) {
            chunk[i].next_free = h->free;
            h->free = &chunk[i];
        }
    }
    rs__timer_handle *hd = h->free;
    h->free = hd->next_free;
    return hd;
}

static inline void handle_free(rs__timer_heap *h, rs__timer_handle *hd)
{
    hd->next_free = h->free;
    h->free = hd;
}

static void sift_up(rs__timer_heap *h, uint32_t i, rs__timer_entry e)
{
    while (i > 0) {
        uint32_t parent = (i - 1) / ARITY;
        if (h->slots[parent].deadline <= e.deadline)
            break;
        h->slots[i] = h->slots[parent];
        i = parent;
    }
    h->slots[i] = e;
}

static void sift_down(rs__timer_heap *h, uint32_t i, rs__timer_entry e)
{
    for (;;) {
        uint32_t first = ARITY * i + 1;
        if (first >= h->len)
            break;
        uint32_t end = first + ARITY < h->len ? first + ARITY : h->len;
        uint32_t best = first;
        for (uint32_t c = first + 1; c < end; c++)
            if (h->slots[c].deadline < h->slots[best].deadline)
                best = c;
        if (e.deadline <= h->slots[best].deadline)
            break;
        h->slots[i] = h->slots[best];
        i = best;
    }
    h->slots[i] = e;
}

/* Removes the top entry and returns its handle. */
static rs__timer_handle *pop_top(rs__timer_heap *h)
{
    rs__timer_handle *top = h->slots[0].handle;
    rs__timer_entry last = h->slots[--h->len];
    if (h->len)
        sift_down(h, 0, last);
    return top;
}

/* Drops every stale entry, rebuilds the heap (Floyd) and packs the FIFO:
 * O(n), run when stale entries outnumber live ones, so each disarm costs
 * O(1) amortized. h->stale goes down by what was dropped only: stale handles
 * of a batch being fired are in neither (rs__timer_fire_due took them out)
 * and stay counted until the batch frees them. */
static void compact(rs__timer_heap *h)
{
    uint32_t n = 0, dropped = 0;
    for (uint32_t i = 0; i < h->len; i++) {
        if (h->slots[i].handle->timer) {
            h->slots[n++] = h->slots[i];
        } else {
            handle_free(h, h->slots[i].handle);
            dropped++;
        }
    }
    h->len = n;
    if (n > 1)
        for (uint32_t i = (n - 2) / ARITY + 1; i-- > 0;)
            sift_down(h, i, h->slots[i]);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < h->fifo_len; i++) {
        rs__timer_entry e = *fifo_at(h, i);
        if (e.handle->timer) {
            *fifo_at(h, kept++) = e;
        } else {
            handle_free(h, e.handle);
            dropped++;
        }
    }
    h->fifo_len = kept;
    h->stale -= dropped;
}

/* Appends to the FIFO (the caller checked the order), doubling the ring when
 * full. */
static int fifo_push(rs__timer_heap *h, rs__timer_entry e)
{
    if (h->fifo_len == h->fifo_cap) {
        uint32_t cap = h->fifo_cap * 2;
        rs__timer_entry *f = malloc(cap * sizeof *f);
        if (!f)
            return -ENOMEM;
        for (uint32_t i = 0; i < h->fifo_len; i++)
            f[i] = *fifo_at(h, i);
        free(h->fifo);
        h->fifo = f;
        h->fifo_cap = cap;
        h->fifo_head = 0;
    }
    *fifo_at(h, h->fifo_len++) = e;
    return 0;
}

static int heap_push(rs__timer_heap *h, rs__timer_entry e)
{
    if (h->len == h->cap) {
        uint32_t cap = h->cap * 2;
        rs__timer_entry *s = realloc(h->slots, cap * sizeof *s);
        if (!s)
            return -ENOMEM;
        h->slots = s;
        h->cap = cap;
    }
    sift_up(h, h->len++, e);
    return 0;
}

int rs__timer_arm(rs__timer_heap *h, rs__timer *t, int64_t deadline)
{
    if (t->handle)
        rs__timer_disarm(h, t);
    if (__builtin_expect(h->arm_refusals > 0, 0)) {
        h->arm_refusals--;
        return -ENOMEM;
    }
    rs__timer_handle *hd = handle_alloc(h);
    if (!hd)
        return -ENOMEM;
    rs__timer_entry e = { deadline, hd };
    bool in_order = !h->fifo_len || fifo_at(h, h->fifo_len - 1)->deadline <= deadline;
    int rc = in_order ? fifo_push(h, e) : heap_push(h, e);
    if (rc) {
        handle_free(h, hd);
        return rc;
    }
    hd->timer = t;
    hd->deadline = deadline;
    t->handle = hd;
    return 0;
}

void rs__timer_disarm(rs__timer_heap *h, rs__timer *t)
{
    rs__timer_handle *hd = t->handle;
    if (!hd)
        return;
    hd->timer = NULL;
    t->handle = NULL;
    h->stale++;
    if (h->stale >= COMPACT_MIN_STALE && h->stale > (h->len + h->fifo_len) / 2)
        compact(h);
}

/* Drops stale entries at both fronts. */
static void prune_fronts(rs__timer_heap *h)
{
    while (h->len && !h->slots[0].handle->timer) {
        handle_free(h, pop_top(h));
        h->stale--;
    }
    while (h->fifo_len && !fifo_at(h, 0)->handle->timer) {
        handle_free(h, fifo_at(h, 0)->handle);
        h->fifo_head = (h->fifo_head + 1) & (h->fifo_cap - 1);
        h->fifo_len--;
        h->stale--;
    }
}

int64_t rs__timer_next_deadline(rs__timer_heap *h)
{
    prune_fronts(h);
    int64_t a = h->len ? h->slots[0].deadline : INT64_MAX;
    int64_t b = h->fifo_len ? fifo_at(h, 0)->deadline : INT64_MAX;
    return a < b ? a : b;
}

/* Removes and returns the earliest entry's handle if its deadline is <= now
 * (stale or not), else NULL. */
static rs__timer_handle *take_due(rs__timer_heap *h, int64_t now)
{
    int64_t a = h->len ? h->slots[0].deadline : INT64_MAX;
    int64_t b = h->fifo_len ? fifo_at(h, 0)->deadline : INT64_MAX;
    if (a <= b) {
        return a <= now ? pop_top(h) : NULL;
    }
    if (b > now)
        return NULL;
    rs__timer_handle *hd = fifo_at(h, 0)->handle;
    h->fifo_head = (h->fifo_head + 1) & (h->fifo_cap - 1);
    h->fifo_len--;
    return hd;
}

#define FIRE_BATCH 64

/* Due timers are taken off a batch at a time and their memory is prefetched
 * before the first one fires: each lives in another task's frame, so the
 * misses then overlap instead of coming one after the other. A fire may
 * disarm or re-arm timers of the batch not yet fired; their handles then read
 * as stale (timer == NULL, counted in h->stale) like any other. */
unsigned rs__timer_fire_due(rs__timer_heap *h, int64_t now, unsigned max)
{
    unsigned fired = 0;
    while (fired < max) {
        rs__timer_handle *batch[FIRE_BATCH];
        unsigned n = 0;
        rs__timer_handle *hd;
        while (n < FIRE_BATCH && n < max - fired && (hd = take_due(h, now))) {
            if (hd->timer)
                __builtin_prefetch(hd->timer, 1);
            batch[n++] = hd;
        }
        if (!n)
            break;
        for (unsigned i = 0; i < n; i++) {
            hd = batch[i];
            rs__timer *t = hd->timer;
            handle_free(h, hd);
            if (!t) {
                h->stale--;
                continue;
            }
            t->handle = NULL;
            t->fire(t);
            fired++;
        }
    }
    return fired;
}
