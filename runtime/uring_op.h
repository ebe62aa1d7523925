/* One io_uring operation performed by a task.
 *
 * The record lives in the task's frame and the SQE's user_data points at it.
 * If the task is cancelled (or the deadline passes) while the operation is in
 * the kernel, an IORING_OP_ASYNC_CANCEL is queued and the task keeps waiting
 * for the operation's own CQE: the kernel may write into the caller's buffer
 * until then, so the call returns only after it. */
#ifndef RS_RUNTIME_URING_OP_H
#define RS_RUNTIME_URING_OP_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "runtime/completion.h"
#include "runtime/wait.h"

struct rs__worker;

typedef struct rs__uring_op {
    rs__wait wait;
    rs__completion comp;
    int abort_reason; /* why the operation was cancelled, 0 if it was not */
    uint32_t cqe_flags; /* the CQE's flags, once it has arrived */
    /* While its cancellation request waits for an SQE: linked on the worker's
     * cancel_backlog (see rs__uring_cancel_backlog_flush). */
    bool in_backlog;
    struct rs__uring_op *backlog_prev, *backlog_next;
} rs__uring_op;

/* The calling task's SQE to prepare, or NULL outside a task (-EPERM) or when
 * the ring cannot take one. Prepare it, then hand it to rs__uring_op_run
 * before anything else can suspend. */
struct io_uring_sqe *rs__uring_sqe(void);

/* Submits sqe (with the next batch) and parks until its CQE. deadline_ns:
 * monotonic, 0 = none. Returns the CQE's result; if the operation was
 * cancelled before it completed, returns -ECANCELED (task cancelled) or
 * -ETIMEDOUT (deadline). An operation that completed despite a cancellation
 * request returns its real result, so no data or descriptor is lost. An
 * operation cancelled by anything else (rs_close of its descriptor) returns
 * -EBADF. */
int rs__uring_op_run(rs__uring_op *op, struct io_uring_sqe *sqe, int64_t deadline_ns);

/* rs__uring_op_run without a deadline, for an operation the kernel is
 * expected to complete at its submission (an accept with connections
 * queued): the SQE goes to the kernel at once, with every SQE queued before
 * it, and what has completed is reaped before the task would park, so such
 * an operation returns without suspending and without waiting for the next
 * batch. One io_uring_enter of its own; otherwise it behaves exactly like
 * rs__uring_op_run (an operation that must wait waits). An operation that
 * returns without suspending counts as a dispatch against the worker's
 * budget, so a task that keeps completing such operations still lets the
 * others run every RS_DISPATCH_BATCH. */
int rs__uring_op_run_at_once(rs__uring_op *op, struct io_uring_sqe *sqe);

/* Submits every queued SQE now, without waiting (the batch normally goes
 * with the worker's next trip to the kernel): for a caller that must see an
 * SQE processed before it goes on without suspending. */
void rs__uring_submit_now(void);

/* Queues the cancellation requests that found no SQE when they were made
 * (the ring refused every submission then). Called by the worker before each
 * trip to the kernel; what still finds no SQE stays for the next trip, and
 * the worker does not sleep longer than RS__CANCEL_RETRY_NS meanwhile, so a
 * cancelled operation on a silent descriptor cannot wait forever. */
void rs__uring_cancel_backlog_flush(struct rs__worker *w);

#define RS__CANCEL_RETRY_NS 1000000

#endif
