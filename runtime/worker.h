/* The worker: one OS thread, one io_uring, a run queue and a timer heap.
 * The scheduler's invariants are stated at the top of worker.c; the switch
 * fast path is here so that rs_yield and the waits inline it. */
#ifndef RS_RUNTIME_WORKER_H
#define RS_RUNTIME_WORKER_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/completion.h"
#include "runtime/stack.h"
#include "runtime/timer.h"

typedef struct rs_task rs_task;
typedef struct rs_scope rs_scope;
struct rs_store;

/* Tasks run between two trips to the kernel; bounds the time completions and
 * timers wait while tasks keep each other busy. */
#define RS_DISPATCH_BATCH 64

/* Excess stacks whose pages are given back per idle round (one madvise each). */
#define RS_TRIM_BATCH 64

/* Kinds of record pools the layers above may use (runtime/objpool.h). */
#define RS__OBJPOOL_KINDS 8

typedef struct rs__worker {
    struct io_uring ring;
    unsigned ring_flags;         /* setup flags the kernel accepted */
    unsigned inflight;           /* SQEs with a completion record, CQE not yet reaped */

    void *sched_sp;              /* the scheduler's saved context (thread stack) */
    rs_task *current;            /* running task; NULL while the scheduler runs */
    rs_task *runq_head;          /* ready tasks, FIFO through rs_task.run_next */
    rs_task **runq_tailp;        /* where the next ready task is linked */
    rs_task **runq_timed_tailp;  /* end of the prefix of tasks woken by timers (see fire_timers) */
    int budget;                  /* dispatches left before the next kernel trip (rs__worker_refill) */

    rs__timer_heap timers;
    rs__stack_pool stacks;
    rs_task *free_tasks;         /* recycled task records */
    struct rs__objpool {
        void *free, *slabs;
        const struct rs__objpool_kind *kind;
    } objpools[RS__OBJPOOL_KINDS]; /* record pools of the layers above (runtime/objpool.h) */

    size_t stack_size;           /* default task stack */
    struct rs_store *store;      /* runtime default lock store (NULL: built-in memory store) */
    rs_scope *top;               /* holds the runner task; parent of root and system */
    rs_scope *root;              /* the scope main runs in */
    rs_scope *system;            /* background tasks of the library */
    unsigned deadlocks;          /* times every task was found blocked with nothing to wake it */

    /* thread stack bounds, for the address sanitizer's fiber annotations */
    void *thread_stack_low;
    size_t thread_stack_size;
    void *sched_fake_stack;
    void *altstack;              /* sigaltstack for reporting guard-page hits */

    /* Pokes from other threads (rs__worker_poke): an eventfd whose read is
     * kept queued on the ring while armed. */
    int poke_fd;                 /* -1 until rs__worker_poke_arm */
    bool poke_armed;             /* the read is queued */
    bool poke_rearm;             /* queue it again once the current reap is over */
    uint64_t poke_buf;           /* what the read reads */
    rs__completion poke_read;    /* its completion (untracked: see RS__UNTRACKED) */

    /* Cancellations of operations in the kernel whose ASYNC_CANCEL found no
     * SQE yet (runtime/uring_op.c); almost always empty. */
    struct rs__uring_op *cancel_backlog;
    /* The listening socket whose last rs_accept reported more connections
     * queued (IORING_CQE_F_SOCK_NONEMPTY), -1 when none: its next accept goes
     * to the kernel at once (io/socket_ops.c). A hint only: a stale one costs
     * a system call, never a wrong result. */
    int accept_backlog_fd;
    /* rs__worker_fire_overdue's polling of the clock from queries: the
     * coarse clock and the precise one at the last precise read, and the
     * calls until the next one (poll_countdown, of poll_stride). */
    int64_t poll_coarse;
    int64_t poll_last_ns;
    uint32_t poll_stride;
    uint32_t poll_countdown;
    /* rs_close's marks, indexed by descriptor number (io/io_op.h, kept by
     * io/file_ops.c; freed with the worker): how many times rs_close was
     * called on each number, and how many calls found no room to count. */
    uint32_t *fd_closes;
    uint32_t fd_closes_len;
    uint32_t fd_closes_untracked;
    /* For tests: the next this many cancellation requests find no SQE, as if
     * the ring refused every submission. */
    unsigned cancel_sqe_refusals;
} rs__worker;

/* The low bit of a CQE's user_data marks a completion that w->inflight does
 * not count: the worker's own standing requests (the poke read), which must
 * not keep it from finding out that nothing else can ever wake a task. */
#define RS__UNTRACKED ((uintptr_t)1)

extern __thread rs__worker *rs__tls_worker __attribute__((tls_model("initial-exec")));

static inline rs__worker *rs__worker_get(void)
{
    return rs__tls_worker;
}

int rs__worker_init(rs__worker *w, const void *opts /* const rs_runtime_opts * */);
void rs__worker_destroy(rs__worker *w);

/* Drives tasks, timers and I/O until w->top has no tasks left. */
void rs__worker_loop(rs__worker *w);

/* An SQE to fill, never NULL unless the ring is unusable: when the SQ is full
 * the queued entries are submitted first. Each SQE whose user_data names a
 * completion must be counted with rs__sqe_track. */
struct io_uring_sqe *rs__sqe_get(rs__worker *w);

static inline void rs__sqe_track(rs__worker *w, struct io_uring_sqe *sqe, void *completion)
{
    io_uring_sqe_set_data(sqe, completion);
    w->inflight++;
}

/* One non-blocking trip to the kernel now, from a task: submits every queued
 * SQE and reaps what has completed. Like rs__worker_refill it only makes
 * tasks ready (or ends the caller's own wait before it parks), never
 * switches; unlike it, it leaves the budget and the timers alone. */
void rs__worker_flush(rs__worker *w);

/* The dispatch budget ran out: one non-blocking trip to the kernel (submit,
 * reap) and the due timers, run on the current stack; it only makes tasks
 * ready, never switches. Resets the budget. */
void rs__worker_refill(rs__worker *w);

/* Fires the timers already due, from a running task that may not have
 * suspended since they came due: a task that computes without suspending
 * never reaches rs__worker_refill, so a scope's timeout would wait for its
 * next suspension. Called where a task observes cancellation without
 * suspending (rs_checkpoint, rs_scope_cancelled, the signal queries,
 * rs_scope_close). exact: reads the precise clock every time (rs_scope_close,
 * whose result depends on it). Else (the queries, which loops call): a
 * coarse clock read while timers are armed, and a precise read only when
 * the coarse clock moved or after a stride of calls adapted to about 50 us
 * of the loop; a deadline is noticed that much late at most. Only makes
 * tasks ready and marks scopes cancelled, never switches. */
void rs__worker_fire_overdue(rs__worker *w, bool exact);

/* rs__worker_fire_overdue for a query about an object of runtime owner: only
 * from a task of that runtime, the one thread that may touch its timers. */
static inline void rs__worker_notice_overdue(const rs__worker *owner)
{
    rs__worker *w = rs__worker_get();
    if (w && w == owner && w->current)
        rs__worker_fire_overdue(w, false);
}

/* The running task is finished: releases its stack (and record, if nobody
 * holds a handle) and switches away for good. */
__attribute__((noreturn)) void rs__switch_exit(rs__worker *w);

__attribute__((noreturn)) void rs__overflow_report(const rs_task *t);

/* ------------------------------------------------------------ pokes
 *
 * A task can only be woken on its own worker's thread. Another thread that
 * changes something a task waits for (a release in the process-wide memory
 * store by another runtime) pokes the task's worker instead; the worker then
 * runs every registered poke handler on its own thread, at its next trip to
 * the kernel (at once if it was waiting there), and a handler wakes what the
 * poke was about. Pokes coalesce: handlers must look for everything pending. */
typedef void (*rs__poke_handler)(rs__worker *w);

/* Registers fn for every worker (idempotent, any thread, at most 4 kinds). 0 or -ENOSPC. */
int rs__poke_handler_add(rs__poke_handler fn);

/* On w's own thread: makes w reachable by pokes from now until it ends
 * (creates its eventfd and queues the read once). 0 or a negative errno. */
int rs__worker_poke_arm(rs__worker *w);

/* Any thread: wakes w, which runs the poke handlers. w must have been armed
 * and must still be running: the caller holds whatever keeps it alive (the
 * memory store's mutex, while a watcher of w is registered). */
void rs__worker_poke(rs__worker *w);

/* The scheduler's inline fast paths (run queue, switching, waits) are in
 * runtime/sched.h. */

#endif
