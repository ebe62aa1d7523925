/* The retry loop shared by the calls that may meet -EAGAIN: an operation on
 * a non-blocking descriptor that some kernels complete with -EAGAIN inside
 * io_uring instead of waiting (see rs__io_wait_ready). */
#include <sys/socket.h>

#include "io/io_op.h"

static void prepare(struct io_uring_sqe *sqe, const rs__io_req *r)
{
    unsigned n = rs__io_count(r->len);
    switch (r->kind) {
    case RS__IO_READ: io_uring_prep_read(sqe, r->fd, r->buf, n, r->offset); break;
    case RS__IO_WRITE: io_uring_prep_write(sqe, r->fd, r->buf, n, r->offset); break;
    case RS__IO_RECV: io_uring_prep_recv(sqe, r->fd, r->buf, n, r->flags); break;
    case RS__IO_SEND: io_uring_prep_send(sqe, r->fd, r->buf, n, r->flags); break;
    case RS__IO_ACCEPT: io_uring_prep_accept(sqe, r->fd, r->buf, r->addrlen, r->flags); break;
    }
}

/* Invariants: a retry waits for the readiness that can end the -EAGAIN, or
 * there is no retry (a single attempt); and it is made on the file the call
 * started with (rs__fd_close_mark). */
int rs__io_retrying(rs__io_req *r)
{
    uint64_t mark = rs__fd_close_mark(r->fd);
    short events = r->kind == RS__IO_WRITE || r->kind == RS__IO_SEND ? POLLOUT : POLLIN;
    if (r->kind == RS__IO_RECV && (r->flags & MSG_OOB))
        events = POLLPRI; /* urgent data: POLLIN may be ready for ordinary data alone */
    for (;;) {
        struct io_uring_sqe *sqe = rs__uring_sqe();
        if (!sqe)
            return -EBUSY;
        prepare(sqe, r);
        rs__uring_op op;
        int rc = r->at_once ? rs__uring_op_run_at_once(&op, sqe) : rs__uring_op_run(&op, sqe, 0);
        r->cqe_flags = op.cqe_flags;
        if (rc != -EAGAIN || r->single_attempt)
            return rc;
        /* Readiness came: the retry waits like any other. */
        r->at_once = false;
        /* Each wait let other tasks run, and one may have closed fd. */
        if (rs__fd_close_mark(r->fd) != mark)
            return -EBADF;
        rc = rs__io_wait_ready(r->fd, events);
        if (rc)
            return rc;
        if (rs__fd_close_mark(r->fd) != mark)
            return -EBADF;
    }
}
