/* Task stacks: mmap'd, pooled per worker, with overflow detection.
 *
 * Layout of one stack (addresses grow to the right):
 *
 *   [guard page, PROT_NONE, optional] [red zone | usable ........ | rs__stack header | colour]
 *                                      ^low                         ^top (frames start below)
 *
 * The colour is a shift of less than half a page, a whole number of cache
 * lines that differs from one stack to the next (stack.c), so that the top
 * frames of many suspended tasks fall into different sets of the data cache.
 *
 * Overflow detection has two layers:
 *  - a guard page below the stack faults at once; the SIGSEGV handler names the
 *    task. Each guarded stack costs two kernel mappings, so guarded stacks are
 *    only handed out while the process stays well below vm.max_map_count;
 *  - every stack has a red zone of RS_STACK_REDZONE bytes at its low end that
 *    must stay zero (fresh anonymous memory is zero and an honest task never
 *    reaches it). It is checked whenever the task switches out, so stacks
 *    carved from slabs without guard pages (a million tasks) still report an
 *    overflow instead of corrupting memory silently. The check reads the low
 *    page, which maps the shared zero page and costs no memory.
 *
 * Free stacks are kept warm (reused as they are) up to a byte budget. Beyond
 * it they go to an excess list, still usable as they are; when the worker is
 * idle it returns their pages to the kernel (MADV_DONTNEED, one system call
 * each) and moves them to a cold list. So a burst of tasks does not pin its
 * memory forever, and the system calls never sit on a task's path. */
#ifndef RS_RUNTIME_STACK_H
#define RS_RUNTIME_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RS_STACK_REDZONE 256
#define RS_STACK_MIN (16 * 1024)
#define RS_STACK_DEFAULT (256 * 1024)

typedef struct rs__stack {
    struct rs__stack *next; /* free-list link */
    char *low;              /* lowest usable byte; the red zone starts here */
    size_t size;            /* bytes from low to the end of the mapping (header included) */
    bool guarded;           /* own mapping with a guard page below low */
} rs__stack;

typedef struct rs__stack_class {
    size_t size;
    rs__stack *warm, *excess, *cold;
    size_t nwarm, warm_cap;
} rs__stack_class;

typedef struct rs__stack_pool {
    rs__stack_class *classes;
    unsigned nclasses, cap_classes;
    void **slabs; /* every slab mapping, unmapped at teardown: base, then length */
    size_t nslabs, cap_slabs;
    size_t in_use;  /* stacks handed out and not yet returned */
    size_t nexcess; /* stacks waiting for rs__stack_trim, all classes */
    unsigned next_colour; /* how many stacks were made: picks the next one's colour (stack.c) */
} rs__stack_pool;

void rs__stack_pool_init(rs__stack_pool *p);
void rs__stack_pool_destroy(rs__stack_pool *p);

/* size is rounded up to whole pages and at least RS_STACK_MIN. */
rs__stack *rs__stack_get(rs__stack_pool *p, size_t size);

/* Returns a stack to the pool. Never makes a system call and never touches
 * the stack's pages below its header, so a finishing task may return the
 * stack it still runs on, just before it switches away for good. */
void rs__stack_put(rs__stack_pool *p, rs__stack *s);

/* Gives the pages of up to max excess stacks back to the kernel. Returns how
 * many stacks still wait. For idle moments. */
size_t rs__stack_trim(rs__stack_pool *p, size_t max);

static inline void *rs__stack_top(const rs__stack *s)
{
    return (void *)s; /* the header sits at the top (below the colour); frames grow down from it */
}

/* Every word of the red zone is checked: a frame smaller than the zone that
 * runs into it cannot skip it. The zone's four cache lines are the task's own
 * and read only here. */
static inline bool rs__stack_redzone_intact(const rs__stack *s)
{
    typedef uint64_t word2 __attribute__((vector_size(16)));
    const word2 *rz = (const word2 *)__builtin_assume_aligned(s->low, 64);
    word2 any = rz[0];
    for (unsigned i = 1; i < RS_STACK_REDZONE / sizeof(word2); i++)
        any |= rz[i];
    return (any[0] | any[1]) == 0;
}

/* Limits how many guarded stacks the process hands out from now on (tests
 * use 0 to exercise the slab path; negative restores the default budget). */
void rs__stack_set_guard_budget(long budget);

/* True if addr is in the guard page or the red zone of s. */
bool rs__stack_in_overflow_area(const rs__stack *s, const void *addr);

/* Usable bytes for frames (what the task asked for, minus bookkeeping). */
static inline size_t rs__stack_usable(const rs__stack *s)
{
    return (size_t)((const char *)s - s->low);
}

#endif
