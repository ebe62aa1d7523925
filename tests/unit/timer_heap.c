/* The timer heap fires timers in deadline order and supports disarming. */
#include <stdlib.h>

#include "support.h"
#include "runtime/timer.h"

#define N 2000

static rs__timer timers[N];
static int64_t fired_order[N];
static int nfired;

static void record_fire(rs__timer *t)
{
    fired_order[nfired++] = t->deadline;
}

Test(timer_heap, fires_in_deadline_order_and_skips_disarmed, .timeout = 10)
{
    rs__timer_heap h;
    cr_assert_eq(rs__timer_heap_init(&h), 0);
    srand(7);
    for (int i = 0; i < N; i++) {
        rs__timer_init(&timers[i], record_fire);
        cr_assert_eq(rs__timer_arm(&h, &timers[i], rand() % 100000), 0);
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
        cr_assert_eq(rs__timer_arm(&h, &timers[i], rand() % 100000), 0);
        if (!was_armed)
            armed++;
    }
    cr_assert_eq(h.len, (uint32_t)armed);
    nfired = 0;
    cr_assert_eq(rs__timer_fire_due(&h, 50000), (unsigned)nfired);
    for (int i = 0; i < nfired; i++) {
        cr_assert_leq(fired_order[i], 50000);
        if (i)
            cr_assert_leq(fired_order[i - 1], fired_order[i]);
    }
    int first_batch = nfired;
    rs__timer_fire_due(&h, 100000);
    cr_assert_eq(nfired, armed);
    for (int i = first_batch; i < nfired; i++) {
        cr_assert_gt(fired_order[i], 50000);
        if (i > first_batch)
            cr_assert_leq(fired_order[i - 1], fired_order[i]);
    }
    cr_assert_eq(h.len, 0);
    cr_assert_null(rs__timer_earliest(&h));
    rs__timer_heap_destroy(&h);
}
