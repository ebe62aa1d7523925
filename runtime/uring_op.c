/* Task-level io_uring operations; see uring_op.h. */
#include "runtime/uring_op.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include "runtime/task.h"
#include "runtime/worker.h"

/* How an operation the cancellation stopped can complete: -ECANCELED, or
 * -EINTR when the kernel's worker thread was interrupted in a blocking call.
 * Some such calls (an open waiting for a FIFO's reader) complete with the
 * kernel's internal restart codes, which no caller should ever see:
 * ERESTARTSYS 512, ERESTARTNOINTR 513, ERESTARTNOHAND 514,
 * ERESTART_RESTARTBLOCK 516 (include/linux/errno.h). */
static bool interrupted(int res)
{
    return res == -ECANCELED || res == -EINTR || res == -512 || res == -513 || res == -514 || res == -516;
}

/* ------------------------------------------------------------ backlog
 *
 * A cancellation request needs an SQE. rs__sqe_get fails only when the ring
 * refused several submissions in a row; the request then waits on the
 * worker's backlog instead of being dropped (a dropped request would leave a
 * cancelled receive on a silent socket waiting for good). Invariant: an
 * operation is on the backlog only while its CQE has not arrived, so the
 * records (in the waiting tasks' frames) are alive while linked. */

static void backlog_push(rs__worker *w, rs__uring_op *op)
{
    op->in_backlog = true;
    op->backlog_prev = NULL;
    op->backlog_next = w->cancel_backlog;
    if (w->cancel_backlog)
        w->cancel_backlog->backlog_prev = op;
    w->cancel_backlog = op;
}

static void backlog_remove(rs__worker *w, rs__uring_op *op)
{
    if (op->backlog_prev)
        op->backlog_prev->backlog_next = op->backlog_next;
    else
        w->cancel_backlog = op->backlog_next;
    if (op->backlog_next)
        op->backlog_next->backlog_prev = op->backlog_prev;
    op->in_backlog = false;
}

/* Queues op's ASYNC_CANCEL; false when the ring gives no SQE. flush: may
 * submit and reap to make room (not while reaping or flushing the backlog). */
static bool queue_cancel(rs__worker *w, rs__uring_op *op, bool flush)
{
    if (__builtin_expect(w->cancel_sqe_refusals > 0, 0)) {
        w->cancel_sqe_refusals--;
        return false;
    }
    struct io_uring_sqe *sqe = flush ? rs__sqe_get(w) : io_uring_get_sqe(&w->ring);
    if (!sqe)
        return false;
    io_uring_prep_cancel(sqe, &op->comp, 0);
    io_uring_sqe_set_data(sqe, NULL);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    return true;
}

void rs__uring_cancel_backlog_flush(rs__worker *w)
{
    while (w->cancel_backlog) {
        rs__uring_op *op = w->cancel_backlog;
        if (!queue_cancel(w, op, false))
            return; /* the SQ is full: the coming submission makes room */
        backlog_remove(w, op);
    }
}

/* ------------------------------------------------------------ one operation */

static void op_done(rs__completion *c, int res, uint32_t flags)
{
    rs__uring_op *op = (rs__uring_op *)((char *)c - offsetof(rs__uring_op, comp));
    op->cqe_flags = flags;
    if (__builtin_expect(op->in_backlog, 0))
        backlog_remove(op->wait.task->worker, op);
    rs__wait_wake(&op->wait, res);
}

static void op_abort(rs__wait *w, int reason)
{
    rs__uring_op *op = (rs__uring_op *)w;
    rs__worker *wk = w->task->worker;
    op->abort_reason = reason;
    w->abort = NULL; /* from now on only the CQE ends the wait */
    /* Making room may reap this operation's own CQE: then nothing is left to
     * cancel, and the record must not be linked (its task may return). */
    if (!queue_cancel(wk, op, true) && !w->woken)
        backlog_push(wk, op);
}

struct io_uring_sqe *rs__uring_sqe(void)
{
    rs__worker *w = rs__worker_get();
    return w && w->current ? rs__sqe_get(w) : NULL;
}

static void op_start(rs__worker *w, rs__uring_op *op, struct io_uring_sqe *sqe)
{
    rs__wait_init(&op->wait, op_abort);
    op->comp.done = op_done;
    op->abort_reason = 0;
    op->cqe_flags = 0;
    op->in_backlog = false;
    rs__sqe_track(w, sqe, &op->comp);
}

static int op_finish(rs__uring_op *op, int64_t deadline_ns)
{
    int res = rs__wait_park(&op->wait, deadline_ns);
    if (__builtin_expect(res < 0, 0) && interrupted(res)) {
        /* Cancelled or interrupted, and not by this task's cancellation:
         * by rs_close of the descriptor in another task (io/file_ops.c),
         * whose cancellation stops a blocking operation of the kernel's
         * worker thread with -EINTR or a restart code instead. */
        return op->abort_reason ? op->abort_reason : -EBADF;
    }
    return res;
}

int rs__uring_op_run(rs__uring_op *op, struct io_uring_sqe *sqe, int64_t deadline_ns)
{
    op_start(rs__worker_get(), op, sqe);
    return op_finish(op, deadline_ns);
}

int rs__uring_op_run_at_once(rs__uring_op *op, struct io_uring_sqe *sqe)
{
    rs__worker *w = rs__worker_get();
    op_start(w, op, sqe);
    /* A completion reaped here ends the wait before it parks: rs__wait_park
     * then returns at once. */
    rs__worker_flush(w);
    if (op->wait.woken && w->budget > 0)
        w->budget--; /* it ran like a dispatch: see uring_op.h */
    return op_finish(op, 0);
}

void rs__uring_submit_now(void)
{
    rs__worker *w = rs__worker_get();
    if (w)
        io_uring_submit(&w->ring);
}
