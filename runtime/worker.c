/* The scheduler.
 *
 * Invariants (single worker; every structure below is per worker so that
 * several workers can run side by side later):
 *  1. At most one task runs at a time: w->current. While the scheduler's own
 *     context runs (the thread stack), w->current is NULL.
 *  2. A task is in exactly one of: the run queue (READY), running, parked on a
 *     wait (WAITING: t->waiting names the wait and exactly one party will wake
 *     it), pending on its scope's max_concurrency (PENDING), or DONE.
 *  3. Switches go task-to-task directly while the dispatch budget lasts and
 *     something is ready; otherwise back to the scheduler, which then makes
 *     one io_uring_enter that both submits every queued SQE and collects
 *     completions. It blocks in the kernel only when nothing is ready, with
 *     the earliest timer as the wait's limit: one kernel timeout for all
 *     timers, never an SQE per sleep.
 *  4. Every SQE that names a completion is counted in w->inflight until its
 *     last CQE is reaped; a task never returns from an operation before its
 *     CQE arrived (the kernel may write into the task's frame until then).
 *  5. A finished task's stack is released by whichever context runs next
 *     (w->zombie), never by the task itself while it still runs on it.
 *  6. A task without a guard page that switches out with a damaged red zone
 *     has overflowed its stack: the process reports it and aborts before
 *     anything else runs. */
#define _GNU_SOURCE
#include "runtime/worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ringscope/runtime.h>

#include "runtime/completion.h"
#include "runtime/overflow.h"
#include "runtime/sanitizer.h"
#include "runtime/scope.h"
#include "runtime/task.h"

__thread rs__worker *rs__tls_worker __attribute__((tls_model("initial-exec")));

#ifdef RS_ASAN
static __thread void *sched_fake_stack;
#endif

/* ------------------------------------------------------------ ring setup */

static int setup_ring(rs__worker *w, unsigned entries)
{
    /* Preferred: one issuer, task work deferred to our own io_uring_enter
     * (no interrupts of the running task); then progressively less. */
    static const unsigned flag_sets[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_COOP_TASKRUN,
        0,
    };
    int rc = -EINVAL;
    for (size_t i = 0; i < sizeof flag_sets / sizeof flag_sets[0]; i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof p);
        p.flags = flag_sets[i] | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
        p.cq_entries = entries * 8;
        rc = io_uring_queue_init_params(entries, &w->ring, &p);
        if (rc == 0) {
            w->ring_flags = p.flags;
            io_uring_register_ring_fd(&w->ring); /* optional: saves an fd lookup per enter */
            return 0;
        }
    }
    return rc;
}

int rs__worker_init(rs__worker *w, const void *opts_ptr)
{
    const rs_runtime_opts *opts = opts_ptr;
    memset(w, 0, sizeof *w);
    unsigned entries = opts && opts->ring_entries ? opts->ring_entries : 256;
    w->stack_size = opts && opts->stack_size ? opts->stack_size : RS_STACK_DEFAULT;
    w->store = opts ? opts->store : NULL;
    int rc = rs__timer_heap_init(&w->timers);
    if (rc)
        return rc;
    rc = setup_ring(w, entries);
    if (rc) {
        rs__timer_heap_destroy(&w->timers);
        return rc;
    }
    rs__stack_pool_init(&w->stacks);

    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &w->thread_stack_low, &w->thread_stack_size);
        pthread_attr_destroy(&attr);
    }
    rs__overflow_worker_init(w);
    return 0;
}

void rs__worker_destroy(rs__worker *w)
{
    rs__overflow_worker_destroy(w);
    rs__task_free_cache(w);
    rs__stack_pool_destroy(&w->stacks);
    io_uring_queue_exit(&w->ring);
    rs__timer_heap_destroy(&w->timers);
}

/* ------------------------------------------------------------ switching */

static inline rs_task *runq_pop(rs__worker *w)
{
    rs_task *t = w->runq_head;
    if (t) {
        w->runq_head = t->run_next;
        if (!w->runq_head)
            w->runq_tail = NULL;
        t->run_next = NULL;
    }
    return t;
}

void rs__make_ready(rs__worker *w, rs_task *t)
{
    t->state = RS_TASK_READY;
    t->run_next = NULL;
    if (w->runq_tail)
        w->runq_tail->run_next = t;
    else
        w->runq_head = t;
    w->runq_tail = t;
}

static void release_zombie(rs__worker *w)
{
    rs_task *z = w->zombie;
    w->zombie = NULL;
    rs__stack_put(&w->stacks, z->stack);
    z->stack = NULL;
    if (z->detached) {
        z->run_next = w->free_tasks;
        w->free_tasks = z;
    }
}

/* Moves execution from the current context (task `from`, or the scheduler
 * when NULL) to `to` (a task, or the scheduler when NULL). Returns when
 * something switches back to `from`. */
static inline void ctx_switch(rs__worker *w, rs_task *from, rs_task *to, bool from_exits)
{
    void *exit_sp;
    void **save = from_exits ? &exit_sp : from ? &from->sp : &w->sched_sp;
    void *load = to ? to->sp : w->sched_sp;
    w->current = to;
    if (to)
        to->state = RS_TASK_RUNNING;
#ifdef RS_ASAN
    void **fake = from_exits ? NULL : from ? &from->asan_fake_stack : &sched_fake_stack;
    if (to)
        __sanitizer_start_switch_fiber(fake, to->stack->low, rs__stack_usable(to->stack));
    else
        __sanitizer_start_switch_fiber(fake, w->thread_stack_low, w->thread_stack_size);
#endif
    rs__ctx_switch(save, load);
#ifdef RS_ASAN
    __sanitizer_finish_switch_fiber(from ? from->asan_fake_stack : sched_fake_stack, NULL, NULL);
#endif
    if (w->zombie)
        release_zombie(w);
}

/* Invariant 6: checked on every switch out of a task whose stack has no
 * guard page (a guard page faults on its own, at no cost per switch). */
static inline void check_stack(rs_task *t)
{
    const rs__stack *s = t->stack;
    if (!s->guarded && __builtin_expect(!rs__stack_redzone_intact(s), 0))
        rs__overflow_report(t);
}

static inline rs_task *next_to_run(rs__worker *w)
{
    if (!w->budget)
        return NULL;
    rs_task *next = runq_pop(w);
    if (next)
        w->budget--;
    return next;
}

void rs__switch_out(rs__worker *w)
{
    rs_task *cur = w->current;
    check_stack(cur);
    rs_task *next = next_to_run(w);
    if (next == cur) {
        cur->state = RS_TASK_RUNNING;
        return;
    }
    ctx_switch(w, cur, next, false);
}

void rs__switch_exit(rs__worker *w)
{
    rs_task *cur = w->current;
    check_stack(cur);
    w->zombie = cur;
    ctx_switch(w, cur, next_to_run(w), true);
    __builtin_unreachable();
}

/* Entry point of every task context (see rs__ctx_make in task.c). */
void rs__task_entry_prologue(rs__worker *w)
{
#ifdef RS_ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    if (w->zombie)
        release_zombie(w);
}

/* ------------------------------------------------------------ I/O */

static void reap(rs__worker *w)
{
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&w->ring, head, cqe) {
        rs__completion *c = io_uring_cqe_get_data(cqe);
        seen++;
        if (!c)
            continue;
        if (!(cqe->flags & IORING_CQE_F_MORE))
            w->inflight--;
        c->done(c, cqe->res, cqe->flags);
    }
    if (seen)
        io_uring_cq_advance(&w->ring, seen);
}

struct io_uring_sqe *rs__sqe_get(rs__worker *w)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
        if (sqe)
            return sqe;
        /* SQ full: submit what is queued (and make room in the CQ). */
        io_uring_submit_and_get_events(&w->ring);
        reap(w);
    }
    return NULL;
}

static bool io_pending(rs__worker *w)
{
    return w->inflight > 0 || io_uring_sq_ready(&w->ring) > 0;
}

/* One trip to the kernel. block: nothing is ready, so wait for a completion
 * or the earliest timer. Returns false when there is nothing at all that
 * could ever wake a task (no I/O, no timer). */
static bool poll_kernel(rs__worker *w, bool block)
{
    if (!block) {
        if (io_pending(w))
            io_uring_submit_and_get_events(&w->ring);
        reap(w);
        return true;
    }
    rs__timer *first = rs__timer_earliest(&w->timers);
    if (!first && !io_pending(w))
        return false;
    struct io_uring_cqe *cqe;
    if (first) {
        int64_t wait_ns = first->deadline - rs__clock_ns();
        if (wait_ns <= 0) {
            if (io_pending(w))
                io_uring_submit_and_get_events(&w->ring);
        } else {
            struct __kernel_timespec ts = { .tv_sec = wait_ns / 1000000000, .tv_nsec = wait_ns % 1000000000 };
            io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts, NULL);
        }
    } else {
        io_uring_submit_and_wait(&w->ring, 1);
    }
    reap(w);
    return true;
}

/* ------------------------------------------------------------ the loop */

static void report_deadlock(rs__worker *w)
{
    w->deadlocks++;
    if (w->deadlocks == 1) {
        fprintf(stderr, "ringscope: every task is blocked and nothing can wake them (deadlock); "
                        "cancelling the root scope\n");
        if (w->root)
            rs__scope_cancel(w->root, RS_CANCEL_DEADLOCK);
    } else if (w->deadlocks == 2) {
        fprintf(stderr, "ringscope: still deadlocked after cancelling the root scope; cancelling everything\n");
        rs__scope_cancel(w->top, RS_CANCEL_DEADLOCK);
    } else {
        fprintf(stderr, "ringscope: tasks are blocked for good in waits that ignore cancellation "
                        "(a shielded scope?); aborting\n");
        abort();
    }
}

void rs__worker_loop(rs__worker *w)
{
    while (w->top->ntasks > 0) {
        bool idle = !w->runq_head;
        if (!poll_kernel(w, idle) && idle) {
            report_deadlock(w);
            continue;
        }
        if (w->timers.len)
            rs__timer_fire_due(&w->timers, rs__clock_ns());
        rs_task *next = runq_pop(w);
        if (next) {
            w->budget = RS_DISPATCH_BATCH - 1;
            ctx_switch(w, NULL, next, false);
        }
    }
}
