/* The stack pool: sizes, reuse, and colouring (successive stacks start at
 * different offsets in their pages, so the top frames of many suspended
 * tasks do not compete for the same few sets of the data cache). */
#include <stdint.h>

#include "support.h"
#include "runtime/stack.h"

#define N 64

static unsigned page_offset(const rs__stack *s)
{
    return (unsigned)((uintptr_t)rs__stack_top(s) & 4095u);
}

static void check_colours(size_t size, unsigned expected_distinct, bool guarded)
{
    rs__stack_set_guard_budget(guarded ? -1 : 0);
    rs__stack_pool p;
    rs__stack_pool_init(&p);
    rs__stack *s[N];
    bool seen[4096 / 64] = { false };
    unsigned distinct = 0;
    for (int i = 0; i < N; i++) {
        s[i] = rs__stack_get(&p, size);
        cr_assert_not_null(s[i]);
        cr_assert_eq(s[i]->guarded, guarded);
        /* Frames start 16-byte aligned, and colouring costs at most 1/16. */
        cr_assert_eq((uintptr_t)rs__stack_top(s[i]) % 16, 0);
        cr_assert_geq(rs__stack_usable(s[i]), size - size / 16 - 64, "usable %zu of %zu",
                      rs__stack_usable(s[i]), size);
        /* At least 2 KiB of frames fit before the page below the top page. */
        cr_assert_geq(page_offset(s[i]), 2048u);
        unsigned line = page_offset(s[i]) / 64;
        if (!seen[line]) {
            seen[line] = true;
            distinct++;
        }
    }
    cr_assert_eq(distinct, expected_distinct, "%u distinct cache-line offsets among %d stacks of %zu bytes",
                 distinct, N, size);
    /* A stack keeps its place when it is reused. */
    void *top = rs__stack_top(s[N - 1]);
    rs__stack_put(&p, s[N - 1]);
    rs__stack *again = rs__stack_get(&p, size);
    cr_assert_eq(rs__stack_top(again), top);
    for (int i = 0; i < N - 1; i++)
        rs__stack_put(&p, s[i]);
    rs__stack_put(&p, again);
    rs__stack_pool_destroy(&p);
    rs__stack_set_guard_budget(-1);
}

/* The shift stays within half a page: 32 colours, so that a task using less
 * than 2 KiB of stack touches one page only. */
Test(stack_pool, default_stacks_from_slabs_use_32_colours, .timeout = 10)
{
    check_colours(256 * 1024, 32, false);
}

Test(stack_pool, guarded_stacks_use_32_colours, .timeout = 10)
{
    check_colours(256 * 1024, 32, true);
}

Test(stack_pool, small_stacks_use_fewer_colours, .timeout = 10)
{
    /* 16 KiB: at most 1 KiB of shift, 16 colours. */
    check_colours(16 * 1024, 16, false);
}

Test(stack_pool, odd_sizes_still_use_every_colour_of_theirs, .timeout = 10)
{
    /* 20 KiB: 1/16 is 1.25 KiB; the colours are a power of two: 16. */
    check_colours(20 * 1024, 16, false);
}
