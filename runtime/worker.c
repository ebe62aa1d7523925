/* The scheduler.
 *
 * Invariants (single worker; every structure below is per worker so that
 * several workers can run side by side later):
 *  1. At most one task runs at a time: w->current. While the scheduler's own
 *     context runs (the thread stack), w->current is NULL.
 *  2. A task is in exactly one of: the run queue or running (ACTIVE), parked
 *     on a wait (WAITING: t->waiting names the wait and exactly one party will
 *     wake it), pending on its scope's max_concurrency (PENDING), or DONE.
 *  3. Switches go task-to-task directly while something is ready. Every
 *     RS_DISPATCH_BATCH dispatches the switching task makes one non-blocking
 *     io_uring_enter that both submits every queued SQE and collects
 *     completions, and fires due timers (rs__worker_refill, on its own
 *     stack: it only makes tasks ready). Only when nothing is ready does
 *     control go back to the scheduler's context, which blocks in the kernel
 *     with the earliest timer as the wait's limit: one kernel timeout for all
 *     timers, never an SQE per sleep. The one exception: an operation the
 *     kernel is expected to complete at submission (an accept with more
 *     connections queued) makes a non-blocking enter of its own from its
 *     task, reaps, and counts as a dispatch (rs__uring_op_run_at_once).
 *  4. Every SQE that names a completion is counted in w->inflight until its
 *     last CQE is reaped, except the worker's own standing poke read (marked
 *     RS__UNTRACKED); a task never returns from an operation before its CQE
 *     arrived (the kernel may write into the task's frame until then).
 *  5. A finished task returns its stack to the pool just before its last
 *     switch; returning a stack never makes a system call nor touches the
 *     stack's pages, so the task can still run on it until it switches.
 *  6. A task without a guard page that switches out with a damaged red zone
 *     has overflowed its stack: the process reports it and aborts before
 *     anything else runs. */
#define _GNU_SOURCE
#include "runtime/worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <ringscope/runtime.h>

#include "runtime/completion.h"
#include "runtime/objpool.h"
#include "runtime/overflow.h"
#include "runtime/sanitizer.h"
#include "runtime/scope.h"
#include "runtime/store_hold.h"
#include "runtime/task.h"
#include "runtime/uring_op.h"

__thread rs__worker *rs__tls_worker __attribute__((tls_model("initial-exec")));

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
        p.flags = flag_sets[i] | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL;
        /* Computed wide: a product past 32 bits would wrap to a queue the
         * kernel refuses; with CLAMP it cuts anything large to its maximum. */
        uint64_t cq = (uint64_t)entries * 8;
        p.cq_entries = cq > UINT32_MAX ? UINT32_MAX : (uint32_t)cq;
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
    w->poke_fd = -1;
    w->accept_backlog_fd = -1;
    w->poll_stride = w->poll_countdown = 1;
    w->runq_tailp = w->runq_timed_tailp = &w->runq_head;

    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &w->thread_stack_low, &w->thread_stack_size);
        pthread_attr_destroy(&attr);
    }
    rs__overflow_worker_init(w);
    rs__store_hold(w->store, +1); /* last: nothing below can fail */
    return 0;
}

void rs__worker_destroy(rs__worker *w)
{
    rs__overflow_worker_destroy(w);
    rs__objpool_retire_all(w);
    rs__task_free_cache(w);
    rs__stack_pool_destroy(&w->stacks);
    io_uring_queue_exit(&w->ring); /* also ends the queued poke read */
    if (w->poke_fd >= 0)
        close(w->poke_fd);
    rs__timer_heap_destroy(&w->timers);
    free(w->fd_closes);
    rs__store_hold(w->store, -1);
}

/* ------------------------------------------------------------ switching */

void rs__switch_exit(rs__worker *w)
{
    rs_task *cur = w->current;
    rs__check_stack(cur);
    /* First the kernel trip, if due: what it wakes may spawn, and a spawn
     * must not be handed the stack this code still runs on. */
    rs_task *next = rs__next_task(w);
    /* Invariant 5: the stack goes back to the pool while the task still runs
     * on it; nothing can take it before the switch below leaves it. */
    rs__stack_put(&w->stacks, cur->stack);
    cur->stack = NULL;
    if (cur->detached)
        rs__task_recycle(cur);
    void *discard;
    w->current = next;
#ifdef RS_ASAN
    /* NULL: this stack's fake frames are gone for good. */
    if (next)
        __sanitizer_start_switch_fiber(NULL, next->stack->low, rs__stack_usable(next->stack));
    else
        __sanitizer_start_switch_fiber(NULL, w->thread_stack_low, w->thread_stack_size);
#endif
    rs__ctx_switch(&discard, next ? next->sp : w->sched_sp);
    __builtin_unreachable();
}

/* ------------------------------------------------------------ I/O */

static int queue_poke_read(rs__worker *w);

static void reap(rs__worker *w)
{
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&w->ring, head, cqe) {
        uintptr_t data = (uintptr_t)cqe->user_data;
        seen++;
        if (!data)
            continue;
        if (!(data & RS__UNTRACKED) && !(cqe->flags & IORING_CQE_F_MORE))
            w->inflight--;
        rs__completion *c = (rs__completion *)(data & ~RS__UNTRACKED);
        c->done(c, cqe->res, cqe->flags);
    }
    if (seen)
        io_uring_cq_advance(&w->ring, seen);
    /* Not from inside the loop above: queueing may have to submit and reap. */
    if (w->poke_rearm) {
        w->poke_rearm = false;
        queue_poke_read(w);
    }
}

void rs__worker_flush(rs__worker *w)
{
    io_uring_submit_and_get_events(&w->ring);
    reap(w);
}

struct io_uring_sqe *rs__sqe_get(rs__worker *w)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
        if (sqe)
            return sqe;
        rs__worker_flush(w); /* SQ full: submit what is queued (and make room in the CQ) */
    }
    return NULL;
}

static bool io_pending(rs__worker *w)
{
    return w->inflight > 0 || io_uring_sq_ready(&w->ring) > 0;
}

/* One trip to the kernel: submits every queued SQE and reaps completions.
 * With nothing ready and no timer due it waits, until a completion or the
 * earliest timer; but first, while stacks wait to give their pages back, it
 * trims a batch of them instead and only looks (so new work is not held up
 * for long). Returns false when nothing could ever wake a task (no I/O in
 * flight, no timer, nothing left to trim). */
static bool poll_kernel(rs__worker *w, bool nothing_ready)
{
    if (__builtin_expect(w->cancel_backlog != NULL, 0))
        rs__uring_cancel_backlog_flush(w);
    if (nothing_ready) {
        int64_t deadline = rs__timer_next_deadline(&w->timers);
        if (__builtin_expect(w->cancel_backlog != NULL, 0)) {
            /* Come back soon to queue what is left (see uring_op.h). */
            int64_t retry = rs__clock_ns() + RS__CANCEL_RETRY_NS;
            deadline = retry < deadline ? retry : deadline;
        }
        bool timer = deadline != INT64_MAX;
        int64_t wait_ns = timer ? deadline - rs__clock_ns() : 0;
        if (!timer || wait_ns > 0) {
            if (w->stacks.nexcess) {
                rs__stack_trim(&w->stacks, RS_TRIM_BATCH);
            } else if (!timer && w->inflight == 0) {
                /* Nothing tracked can ever complete. Submit what is queued
                 * (cancellations, the poke read), collect what is there, and
                 * report whether that made anything ready: untracked requests
                 * must not be waited for, or a deadlock would sleep forever. */
                if (io_uring_sq_ready(&w->ring) > 0)
                    io_uring_submit_and_get_events(&w->ring);
                reap(w);
                return w->runq_head != NULL;
            } else {
                struct io_uring_cqe *cqe;
                if (timer) {
                    struct __kernel_timespec ts = { .tv_sec = wait_ns / 1000000000,
                                                    .tv_nsec = wait_ns % 1000000000 };
                    io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts, NULL);
                } else {
                    io_uring_submit_and_wait(&w->ring, 1);
                }
                reap(w);
                return true;
            }
        }
    }
    if (io_pending(w))
        io_uring_submit_and_get_events(&w->ring);
    reap(w);
    return true;
}

/* Fires due timers. The tasks they wake run before the other ready tasks, in
 * deadline order and after those woken by earlier timers: a woken sleeper
 * has waited already, and behind a long backlog of ready tasks (a burst of
 * wake-ups) it would be late by the whole backlog. The run queue is one list
 * whose prefix, up to runq_timed_tailp, holds the timer-woken tasks. */
static unsigned fire_timers_at(rs__worker *w, int64_t now)
{
    /* Detach the rest of the queue; wakes append right after the prefix. */
    rs_task *rest = *w->runq_timed_tailp;
    rs_task **rest_tailp = w->runq_tailp;
    *w->runq_timed_tailp = NULL;
    w->runq_tailp = w->runq_timed_tailp;
    /* At most a dispatch batch per round: the woken tasks then run while
     * what firing touched (their frames) is still in the caches and TLB;
     * the rest fire next round, still ahead of other ready tasks. */
    unsigned fired = rs__timer_fire_due(&w->timers, now, RS_DISPATCH_BATCH);
    w->runq_timed_tailp = w->runq_tailp;
    if (rest) {
        *w->runq_tailp = rest;
        w->runq_tailp = rest_tailp;
    }
    return fired;
}

static void fire_timers(rs__worker *w)
{
    fire_timers_at(w, rs__clock_ns());
}

/* A query (not exact) reads the precise clock (about 27 ns here) only when
 * one of two things says time may have passed: the coarse clock (a few ns,
 * one tick of resolution, and it may trail the precise one by two ticks or
 * more) moved since the last precise read, which covers calls made seconds
 * apart; or poll_countdown calls went by, a stride adapted after each read
 * so that a loop of checkpoints reads about every RS__POLL_PERIOD_NS, which
 * covers a deadline passing within one tick. A deadline is then noticed at
 * most about that period (plus one iteration of the loop) late. */
#define RS__POLL_PERIOD_NS  50000
#define RS__POLL_STRIDE_MAX 4096

static bool poll_due(rs__worker *w)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    int64_t coarse = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    if (coarse == w->poll_coarse && --w->poll_countdown > 0)
        return false;
    w->poll_coarse = coarse;
    return true;
}

/* After a precise read at now: the stride that puts the next one about
 * RS__POLL_PERIOD_NS later, from the calls made since the last one. */
static void poll_adapt(rs__worker *w, int64_t now)
{
    int64_t since = now - w->poll_last_ns;
    int64_t stride = since > 0 ? (int64_t)w->poll_stride * RS__POLL_PERIOD_NS / since : RS__POLL_STRIDE_MAX;
    stride = stride < 1 ? 1 : stride > RS__POLL_STRIDE_MAX ? RS__POLL_STRIDE_MAX : stride;
    w->poll_last_ns = now;
    w->poll_stride = w->poll_countdown = (uint32_t)stride;
}

void rs__worker_fire_overdue(rs__worker *w, bool exact)
{
    if (!rs__timer_count(&w->timers))
        return;
    if (!exact && !poll_due(w))
        return;
    int64_t now = rs__clock_ns();
    if (!exact)
        poll_adapt(w, now);
    /* Every timer due now, not one batch: the caller decides on the state
     * they leave (a scope's close, its result). At most as many firings as
     * timers were armed on entry: a timer's function that armed another one
     * already due cannot keep the loop going. */
    uint32_t left = rs__timer_count(&w->timers);
    while (left > 0 && rs__timer_next_deadline(&w->timers) <= now) {
        unsigned fired = fire_timers_at(w, now);
        if (!fired)
            break;
        left = fired >= left ? 0 : left - fired;
    }
}

/* ------------------------------------------------------------ pokes */

#define POKE_HANDLERS_MAX 4

static _Atomic(rs__poke_handler) poke_handlers[POKE_HANDLERS_MAX];
static pthread_mutex_t poke_handlers_lock = PTHREAD_MUTEX_INITIALIZER;

int rs__poke_handler_add(rs__poke_handler fn)
{
    int rc = -ENOSPC;
    pthread_mutex_lock(&poke_handlers_lock);
    for (int i = 0; i < POKE_HANDLERS_MAX; i++) {
        rs__poke_handler h = atomic_load(&poke_handlers[i]);
        if (h == fn || !h) {
            atomic_store(&poke_handlers[i], fn);
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&poke_handlers_lock);
    return rc;
}

static int queue_poke_read(rs__worker *w)
{
    struct io_uring_sqe *sqe = rs__sqe_get(w);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_read(sqe, w->poke_fd, &w->poke_buf, sizeof w->poke_buf, 0);
    io_uring_sqe_set_data(sqe, (void *)((uintptr_t)&w->poke_read | RS__UNTRACKED));
    w->poke_armed = true;
    return 0;
}

/* The read completed: someone poked (the read consumed every poke so far). */
static void poke_read_done(rs__completion *c, int res, uint32_t flags)
{
    (void)flags;
    rs__worker *w = (rs__worker *)((char *)c - offsetof(rs__worker, poke_read));
    w->poke_armed = false;
    if (res == -ECANCELED)
        return; /* the ring is going away */
    /* Read again when this reap is over. A poke that comes meanwhile stays in
     * the eventfd's counter and completes that read at once. */
    if (res >= 0 || res == -EINTR || res == -EAGAIN)
        w->poke_rearm = true;
    for (int i = 0; i < POKE_HANDLERS_MAX; i++) {
        rs__poke_handler h = atomic_load(&poke_handlers[i]);
        if (!h)
            break;
        h(w);
    }
}

int rs__worker_poke_arm(rs__worker *w)
{
    if (w->poke_armed || w->poke_rearm)
        return 0;
    if (w->poke_fd < 0) {
        /* Blocking: the ring waits for a write instead of failing with -EAGAIN. */
        w->poke_fd = eventfd(0, EFD_CLOEXEC);
        if (w->poke_fd < 0)
            return -errno;
        w->poke_read.done = poke_read_done;
    }
    return queue_poke_read(w);
}

void rs__worker_poke(rs__worker *w)
{
    uint64_t one = 1;
    /* Cannot block (the counter would have to reach 2^64 - 1) and cannot
     * fail for a live worker's eventfd. */
    ssize_t n = write(w->poke_fd, &one, sizeof one);
    (void)n;
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
        /* Only what the root scope does not hold is left to cancel: the
         * library's background tasks (shielded scopes stay out of reach). */
        fprintf(stderr, "ringscope: still deadlocked after cancelling the root scope; "
                        "cancelling the library's background tasks too\n");
        rs__scope_cancel(w->top, RS_CANCEL_DEADLOCK);
    } else {
        fprintf(stderr, "ringscope: tasks are blocked for good in waits that ignore cancellation "
                        "(a shielded scope?); aborting\n");
        abort();
    }
}

void rs__worker_refill(rs__worker *w)
{
    w->budget = RS_DISPATCH_BATCH;
    poll_kernel(w, false);
    if (rs__timer_count(&w->timers))
        fire_timers(w);
}

void rs__worker_loop(rs__worker *w)
{
    while (w->top->ntasks > 0) {
        bool idle = !w->runq_head;
        if (!poll_kernel(w, idle) && idle) {
            report_deadlock(w);
            continue;
        }
        if (rs__timer_count(&w->timers))
            fire_timers(w);
        rs_task *next = rs__runq_pop(w);
        if (next) {
            w->budget = RS_DISPATCH_BATCH - 1;
            rs__switch_to(w, NULL, next);
        }
    }
}
