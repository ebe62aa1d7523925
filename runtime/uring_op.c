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

static void op_done(rs__completion *c, int res, uint32_t flags)
{
    (void)flags;
    rs__uring_op *op = (rs__uring_op *)((char *)c - offsetof(rs__uring_op, comp));
    rs__wait_wake(&op->wait, res);
}

static void op_abort(rs__wait *w, int reason)
{
    rs__uring_op *op = (rs__uring_op *)w;
    op->abort_reason = reason;
    w->abort = NULL; /* from now on only the CQE ends the wait */
    struct io_uring_sqe *sqe = rs__sqe_get(w->task->worker);
    if (!sqe)
        return; /* cannot cancel: the operation ends on its own */
    io_uring_prep_cancel(sqe, &op->comp, 0);
    io_uring_sqe_set_data(sqe, NULL);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

struct io_uring_sqe *rs__uring_sqe(void)
{
    rs__worker *w = rs__worker_get();
    return w && w->current ? rs__sqe_get(w) : NULL;
}

int rs__uring_op_run(rs__uring_op *op, struct io_uring_sqe *sqe, int64_t deadline_ns)
{
    rs__worker *w = rs__worker_get();
    rs__wait_init(&op->wait, op_abort);
    op->comp.done = op_done;
    op->abort_reason = 0;
    rs__sqe_track(w, sqe, &op->comp);
    int res = rs__wait_park(&op->wait, deadline_ns);
    if (op->abort_reason && interrupted(res))
        return op->abort_reason;
    return res;
}
