/* rs_poll: readiness of one descriptor, with a time limit. */
#include <ringscope/io.h>

#include "io/io_op.h"

/* One IORING_OP_POLL_ADD (one-shot). The kernel always adds POLLERR and
 * POLLHUP to the mask, as poll(2) does. */
static int poll_once(int fd, short events, int64_t deadline_ns)
{
    struct io_uring_sqe *sqe = rs__uring_sqe();
    if (!sqe)
        return -EBUSY;
    io_uring_prep_poll_add(sqe, fd, (unsigned)(unsigned short)events);
    return rs__io_run(sqe, deadline_ns);
}

int rs_poll(int fd, short events, int64_t timeout_ms)
{
    int rc = rs__checkpoint();
    if (rc)
        return rc;
    if (fd < 0)
        return -EBADF;
    if (timeout_ms < 0)
        return -EINVAL;
    /* The deadline aborts the operation with -ETIMEDOUT (rs__uring_op_run);
     * readiness that races with it still wins and is reported. */
    return poll_once(fd, events, rs__deadline_after_ms(timeout_ms));
}

int rs__io_wait_ready(int fd, short events)
{
    int rc = rs__checkpoint();
    if (rc)
        return rc;
    rc = poll_once(fd, events, 0);
    if (rc < 0)
        return rc;
    /* Readiness and a cancellation can both arrive before the task runs
     * again: the retry that follows is a new operation, and a cancelled task
     * starts none. */
    return rs__checkpoint();
}
