/* Stack pool: see stack.h for layout and the overflow-detection design. */
#define _GNU_SOURCE
#include "runtime/stack.h"

#include "runtime/sanitizer.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define WARM_BUDGET_BYTES ((size_t)64 << 20) /* per size class and worker */
#define SLAB_TARGET_BYTES ((size_t)4 << 20)
#define SLAB_MAX_STACKS 256

/* Guarded stacks in the whole process, against a budget derived from
 * vm.max_map_count (each costs two mappings; leave most for the program). */
static atomic_long guarded_in_process;
static long guard_budget = -1;

static size_t page_size(void)
{
    static size_t cached;
    if (!cached)
        cached = (size_t)sysconf(_SC_PAGESIZE);
    return cached;
}

static long read_guard_budget(void)
{
    long max_maps = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &max_maps) != 1)
            max_maps = 65530;
        fclose(f);
    }
    return max_maps / 4;
}

void rs__stack_set_guard_budget(long budget)
{
    __atomic_store_n(&guard_budget, budget < 0 ? read_guard_budget() : budget, __ATOMIC_RELAXED);
}

static bool take_guard_slot(void)
{
    if (__atomic_load_n(&guard_budget, __ATOMIC_RELAXED) < 0)
        __atomic_store_n(&guard_budget, read_guard_budget(), __ATOMIC_RELAXED);
    long now = atomic_fetch_add_explicit(&guarded_in_process, 1, memory_order_relaxed);
    if (now < guard_budget)
        return true;
    atomic_fetch_sub_explicit(&guarded_in_process, 1, memory_order_relaxed);
    return false;
}

/* Stack colouring. Every stack's top sits at the same offset in its page,
 * so without a shift the hot frames of all suspended tasks (saved registers,
 * the frames that parked) would fall into the same few sets of the L1 data
 * cache, which holds only 8 lines per set: beyond 8 tasks taking turns, every
 * switch would miss. Each stack's header, and so its first frame, is moved
 * down by its colour, a multiple of a cache line.
 *  - The shift stays below half a page (and 1/16 of the stack), so a task
 *    whose frames need less than 2 KiB still touches only the top page:
 *    measured, a full-page spread made the 64-task hand-off another 6% faster
 *    but cost parked tasks 6% more memory.
 *  - Successive stacks are COLOUR_STRIDE lines apart, not one: with
 *    neighbouring colours two tasks made one after the other (the common
 *    pair) handed a lock over 10% slower than without colouring; five lines
 *    apart they are as fast as without (ringscope-bench lock, alternating
 *    builds). The number of colours is a power of two, so an odd stride
 *    visits every colour. */
#define COLOUR_STEP 64
#define COLOURS_MAX (2048 / COLOUR_STEP)
#define COLOUR_STRIDE 5

static size_t colour_offset(rs__stack_pool *p, size_t size)
{
    size_t colours = COLOURS_MAX;
    while (colours > 1 && colours * 16 * COLOUR_STEP > size)
        colours /= 2;
    return (p->next_colour++ * COLOUR_STRIDE % colours) * COLOUR_STEP;
}

/* Stack memory in and out of the address space. Under ASan its shadow is
 * cleared before it goes: the frames of a finished task never return and
 * leave poisoned red zones behind, which an munmap does not clear, so the
 * next mmap of the same addresses (another runtime's stacks) would find them
 * under its new headers (a false stack-buffer-underflow). */
static void *map_stack_memory(size_t len)
{
    return mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
}

static void unmap_stack_memory(void *m, size_t len)
{
#ifdef RS_ASAN
    ASAN_UNPOISON_MEMORY_REGION(m, len);
#endif
    munmap(m, len);
}

static rs__stack *header_at(rs__stack_pool *p, char *base, size_t size)
{
    rs__stack *s = (rs__stack *)(base + size - sizeof(rs__stack) - colour_offset(p, size));
    s->next = NULL;
    s->low = base;
    s->size = size;
    s->guarded = false;
    return s;
}

void rs__stack_pool_init(rs__stack_pool *p)
{
    memset(p, 0, sizeof *p);
}

static rs__stack_class *class_for(rs__stack_pool *p, size_t size)
{
    for (unsigned i = 0; i < p->nclasses; i++)
        if (p->classes[i].size == size)
            return &p->classes[i];
    if (p->nclasses == p->cap_classes) {
        unsigned cap = p->cap_classes ? p->cap_classes * 2 : 4;
        rs__stack_class *c = realloc(p->classes, cap * sizeof *c);
        if (!c)
            return NULL;
        p->classes = c;
        p->cap_classes = cap;
    }
    rs__stack_class *c = &p->classes[p->nclasses++];
    memset(c, 0, sizeof *c);
    c->size = size;
    c->warm_cap = WARM_BUDGET_BYTES / size;
    if (c->warm_cap < 16)
        c->warm_cap = 16;
    return c;
}

static bool remember_slab(rs__stack_pool *p, void *base, size_t len)
{
    if (p->nslabs + 2 > p->cap_slabs) {
        size_t cap = p->cap_slabs ? p->cap_slabs * 2 : 64;
        void **v = realloc(p->slabs, cap * sizeof *v);
        if (!v)
            return false;
        p->slabs = v;
        p->cap_slabs = cap;
    }
    p->slabs[p->nslabs++] = base;
    p->slabs[p->nslabs++] = (void *)len;
    return true;
}

static rs__stack *new_guarded(rs__stack_pool *p, size_t size)
{
    size_t guard = page_size();
    char *map = map_stack_memory(size + guard);
    if (map == MAP_FAILED)
        return NULL;
    if (mprotect(map, guard, PROT_NONE) != 0) {
        unmap_stack_memory(map, size + guard);
        return NULL;
    }
    rs__stack *s = header_at(p, map + guard, size);
    s->guarded = true;
    return s;
}

/* Carves a slab into stacks without guard pages; all but the first go to the
 * class's cold list (their memory is untouched, so they cost nothing yet). */
static rs__stack *new_from_slab(rs__stack_pool *p, rs__stack_class *c)
{
    size_t n = SLAB_TARGET_BYTES / c->size;
    if (n < 1)
        n = 1;
    if (n > SLAB_MAX_STACKS)
        n = SLAB_MAX_STACKS;
    size_t len = n * c->size;
    char *map = map_stack_memory(len);
    if (map == MAP_FAILED)
        return NULL;
    if (!remember_slab(p, map, len)) {
        unmap_stack_memory(map, len);
        return NULL;
    }
    /* No guard pages here: a task overflowing a slab stack writes into the
     * neighbour below it. The red-zone check catches that when the task next
     * switches out, before any other task runs, and the process aborts. */
    for (size_t i = 0; i + 1 < n; i++) {
        rs__stack *s = header_at(p, map + i * c->size, c->size);
        s->next = c->cold;
        c->cold = s;
    }
    return header_at(p, map + (n - 1) * c->size, c->size);
}

rs__stack *rs__stack_get(rs__stack_pool *p, size_t size)
{
    size_t pg = page_size();
    if (size < RS_STACK_MIN)
        size = RS_STACK_MIN;
    /* Rounding up, and the guard page above, must not wrap around to a small
     * size; no address space holds such a stack anyway. */
    if (size > SIZE_MAX / 2)
        return NULL;
    size = (size + pg - 1) & ~(pg - 1);
    rs__stack_class *c = class_for(p, size);
    if (!c)
        return NULL;
    rs__stack *s = c->warm;
    if (s) {
        c->warm = s->next;
        c->nwarm--;
    } else if ((s = c->excess)) {
        c->excess = s->next;
        p->nexcess--;
    } else if ((s = c->cold)) {
        c->cold = s->next;
    } else if (take_guard_slot()) {
        s = new_guarded(p, size);
        if (!s)
            atomic_fetch_sub_explicit(&guarded_in_process, 1, memory_order_relaxed);
    }
    if (!s)
        s = new_from_slab(p, c);
    if (s)
        p->in_use++;
    return s;
}

void rs__stack_put(rs__stack_pool *p, rs__stack *s)
{
    rs__stack_class *c = class_for(p, s->size); /* exists: s came from it */
    p->in_use--;
    if (c->nwarm < c->warm_cap) {
        s->next = c->warm;
        c->warm = s;
        c->nwarm++;
    } else {
        s->next = c->excess;
        c->excess = s;
        p->nexcess++;
    }
}

size_t rs__stack_trim(rs__stack_pool *p, size_t max)
{
    size_t pg = page_size();
    for (unsigned i = 0; i < p->nclasses && max; i++) {
        rs__stack_class *c = &p->classes[i];
        while (c->excess && max) {
            rs__stack *s = c->excess;
            c->excess = s->next;
            p->nexcess--;
            max--;
            /* Keep the page that holds the header. */
            char *keep = (char *)((uintptr_t)s & ~(uintptr_t)(pg - 1));
            if (keep > s->low)
                madvise(s->low, (size_t)(keep - s->low), MADV_DONTNEED);
            s->next = c->cold;
            c->cold = s;
        }
    }
    return p->nexcess;
}

bool rs__stack_in_overflow_area(const rs__stack *s, const void *addr)
{
    const char *a = addr;
    const char *from = s->guarded ? s->low - page_size() : s->low - 64 * 1024;
    return a >= from && a < s->low + RS_STACK_REDZONE;
}

static void unmap_guarded_list(rs__stack *s)
{
    size_t pg = page_size();
    while (s) {
        rs__stack *next = s->next;
        if (s->guarded) {
            unmap_stack_memory(s->low - pg, s->size + pg);
            atomic_fetch_sub_explicit(&guarded_in_process, 1, memory_order_relaxed);
        }
        s = next;
    }
}

void rs__stack_pool_destroy(rs__stack_pool *p)
{
    for (unsigned i = 0; i < p->nclasses; i++) {
        unmap_guarded_list(p->classes[i].warm);
        unmap_guarded_list(p->classes[i].excess);
        unmap_guarded_list(p->classes[i].cold);
    }
    for (size_t i = 0; i < p->nslabs; i += 2)
        unmap_stack_memory(p->slabs[i], (size_t)p->slabs[i + 1]);
    free(p->slabs);
    free(p->classes);
    memset(p, 0, sizeof *p);
}
