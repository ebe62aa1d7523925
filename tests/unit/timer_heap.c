/* The timer heap fires timers in deadline order and supports disarming. */
#include <stdlib.h>

#include "support.h"
#include "runtime/timer.h"

#define N 2000

static rs__timer timers[N];
static int64_t fired_order[N];
static int nfired;

static int64_t armed_at[N];

static void record_fire(rs__timer *t)
{
    fired_order[nfired++] = armed_at[t - timers];
}

Test(timer_heap, fires_in_deadline_order_and_skips_disarmed, .timeout = 10)
{
    rs__timer_heap h;
    cr_assert_eq(rs__timer_heap_init(&h), 0);
    srand(7);
    for (int i = 0; i < N; i++) {
        rs__timer_init(&timers[i], record_fire);
        armed_at[i] = rand() % 100000;
        cr_assert_eq(rs__timer_arm(&h, &timers[i], armed_at[i]), 0);
        cr_assert_eq(rs__timer_deadline(&timers[i]), armed_at[i]);
    }
    /* Disarm every third timer, re-arm every fifth with a new deadline. */
    int armed = N;
    for (int i = 0; i < N; i += 3) {
        rs__timer_disarm(&h, &timers[i]);
        cr_assert(!rs__timer_armed(&timers[i]));
        armed--;
    }
    for (int i = 1; i < N; i += 5) {
        bool was_armed = rs__timer_armed(&timers[i]);
        armed_at[i] = rand() % 100000;
        cr_assert_eq(rs__timer_arm(&h, &timers[i], armed_at[i]), 0);
        if (!was_armed)
            armed++;
    }
    cr_assert_eq(rs__timer_count(&h), (uint32_t)armed);
    nfired = 0;
    cr_assert_eq(rs__timer_fire_due(&h, 50000, UINT32_MAX), (unsigned)nfired);
    for (int i = 0; i < nfired; i++) {
        cr_assert_leq(fired_order[i], 50000);
        if (i)
            cr_assert_leq(fired_order[i - 1], fired_order[i]);
    }
    int first_batch = nfired;
    rs__timer_fire_due(&h, 100000, UINT32_MAX);
    cr_assert_eq(nfired, armed);
    for (int i = first_batch; i < nfired; i++) {
        cr_assert_gt(fired_order[i], 50000);
        if (i > first_batch)
            cr_assert_leq(fired_order[i - 1], fired_order[i]);
    }
    cr_assert_eq(rs__timer_count(&h), 0);
    cr_assert_eq(rs__timer_next_deadline(&h), INT64_MAX);
    rs__timer_heap_destroy(&h);
}

Test(timer_heap, mass_disarm_compacts_and_keeps_order, .timeout = 10)
{
    rs__timer_heap h;
    cr_assert_eq(rs__timer_heap_init(&h), 0);
    srand(11);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            rs__timer_init(&timers[i], record_fire);
            armed_at[i] = rand() % 100000;
            cr_assert_eq(rs__timer_arm(&h, &timers[i], armed_at[i]), 0);
        }
        /* Disarm 90%: stale entries outnumber live ones, the heap compacts. */
        int live = 0;
        for (int i = 0; i < N; i++) {
            if (i % 10)
                rs__timer_disarm(&h, &timers[i]);
            else
                live++;
        }
        cr_assert_eq(rs__timer_count(&h), (uint32_t)live);
        cr_assert_lt(h.len + h.fifo_len, (uint32_t)N / 2, "stale entries were not compacted away (%u left)",
                     h.len + h.fifo_len);
        nfired = 0;
        rs__timer_fire_due(&h, 100000, UINT32_MAX);
        cr_assert_eq(nfired, live);
        for (int i = 1; i < nfired; i++)
            cr_assert_leq(fired_order[i - 1], fired_order[i]);
        for (int i = 0; i < N; i += 10)
            cr_assert(!rs__timer_armed(&timers[i]));
        cr_assert_eq(rs__timer_next_deadline(&h), INT64_MAX);
    }
    rs__timer_heap_destroy(&h);
}

Test(timer_heap, in_order_and_out_of_order_deadlines_fire_in_order, .timeout = 10)
{
    rs__timer_heap h;
    cr_assert_eq(rs__timer_heap_init(&h), 0);
    /* Ascending runs (the FIFO) interleaved with earlier deadlines (the heap). */
    for (int i = 0; i < N; i++) {
        rs__timer_init(&timers[i], record_fire);
        armed_at[i] = i % 7 == 3 ? (int64_t)(rand() % (10 * N)) : (int64_t)i * 10;
        cr_assert_eq(rs__timer_arm(&h, &timers[i], armed_at[i]), 0);
    }
    cr_assert_gt(h.fifo_len, 0);
    cr_assert_gt(h.len, 0);
    for (int i = 0; i < N; i += 5)
        rs__timer_disarm(&h, &timers[i]);
    int64_t first = INT64_MAX;
    for (int i = 0; i < N; i++)
        if (i % 5 && armed_at[i] < first)
            first = armed_at[i];
    cr_assert_eq(rs__timer_next_deadline(&h), first);
    nfired = 0;
    unsigned total = 0, got;
    while ((got = rs__timer_fire_due(&h, 10 * N, 100)) > 0) {
        cr_assert_leq(got, 100);
        total += got;
    }
    cr_assert_eq(total, (unsigned)(N - N / 5));
    for (int i = 1; i < nfired; i++)
        cr_assert_leq(fired_order[i - 1], fired_order[i], "fired out of order at %d", i);
    cr_assert_eq(rs__timer_count(&h), 0);
    rs__timer_heap_destroy(&h);
}

/* A fire that disarms the other due timers of its batch (a scope timeout
 * waking its sleepers) may compact the heap in the middle of the batch:
 * the batch's own stale handles stay counted until the batch drops them,
 * so the count of armed timers ends at 0, not wrapped around. */
static rs__timer_heap batch_heap;

static void disarm_the_rest(rs__timer *t)
{
    if (t == &timers[0])
        for (int i = 1; i < 100; i++)
            rs__timer_disarm(&batch_heap, &timers[i]);
}

Test(timer_heap, a_compaction_during_a_firing_batch_keeps_the_counts, .timeout = 10)
{
    cr_assert_eq(rs__timer_heap_init(&batch_heap), 0);
    for (int i = 0; i < 100; i++) {
        rs__timer_init(&timers[i], disarm_the_rest);
        cr_assert_eq(rs__timer_arm(&batch_heap, &timers[i], 10 + i), 0);
    }
    cr_assert_eq(rs__timer_fire_due(&batch_heap, 1000, UINT32_MAX), 1);
    cr_assert_eq(batch_heap.stale, 0);
    cr_assert_eq(rs__timer_count(&batch_heap), 0);
    cr_assert_eq(rs__timer_next_deadline(&batch_heap), INT64_MAX);
    /* And it goes on working. */
    rs__timer_init(&timers[0], record_fire);
    armed_at[0] = 5;
    nfired = 0;
    cr_assert_eq(rs__timer_arm(&batch_heap, &timers[0], 5), 0);
    cr_assert_eq(rs__timer_count(&batch_heap), 1);
    cr_assert_eq(rs__timer_fire_due(&batch_heap, 1000, UINT32_MAX), 1);
    cr_assert_eq(nfired, 1);
    rs__timer_heap_destroy(&batch_heap);
}
