/* Shared steps of every I/O call of the public API (the files of io/).
 *
 * Each call: (1) rs__checkpoint() first: -ECANCELED for a cancelled task,
 * -EPERM outside a task; (2) validates its arguments; (3) takes an SQE,
 * prepares it and hands it to rs__io_run before anything can suspend (an SQE
 * taken from the ring is submitted with the next batch whether or not it was
 * prepared, so nothing may fail between taking and running it). When the ring
 * cannot give an SQE even after flushing (rs__uring_sqe returns NULL), the
 * call fails with -EBUSY instead of waiting on a ring that makes no progress.
 *
 * Submission is batched by the worker loop: rs__io_run only queues the SQE
 * and parks the task; the one io_uring_enter of the next round submits it
 * together with every other task's. The exception is an operation expected
 * to complete at its submission (an accept with connections queued, see
 * rs_accept), which rs__uring_op_run_at_once submits at once. */
#ifndef RS_IO_IO_OP_H
#define RS_IO_IO_OP_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "runtime/task.h"
#include "runtime/uring_op.h"
#include "runtime/worker.h"

/* The kernel caps one read or write at this many bytes (MAX_RW_COUNT); longer
 * requests are clamped so the result is an honest short count. */
#define RS_IO_MAX_COUNT 0x7ffff000u

static inline unsigned rs__io_count(size_t len)
{
    return len > RS_IO_MAX_COUNT ? RS_IO_MAX_COUNT : (unsigned)len;
}

/* Runs a prepared SQE to completion; see rs__uring_op_run. */
static inline int rs__io_run(struct io_uring_sqe *sqe, int64_t deadline_ns)
{
    rs__uring_op op;
    return rs__uring_op_run(&op, sqe, deadline_ns);
}

/* Waits until fd reports one of events (or an error/hangup), for calls whose
 * operation answered -EAGAIN: kernels that honour O_NONBLOCK inside io_uring
 * complete read/write on a non-blocking descriptor with -EAGAIN instead of
 * waiting. Returns 0 when it is worth retrying, else a negative errno. */
int rs__io_wait_ready(int fd, short events);

/* rs_close's mark on descriptor number fd, for a call that goes back to fd
 * after a suspension (it waits for readiness after -EAGAIN and tries again;
 * a connect restores the descriptor's flags). It notes the mark at its start
 * and fails with -EBADF once it changed: another task's rs_close may have
 * released the number meanwhile, and a new file taken it, and acting on the
 * number would act on that file (a send would deliver to another peer).
 * Conservative: a close that could not be counted changes every mark. */
static inline uint64_t rs__fd_close_mark(int fd)
{
    rs__worker *w = rs__worker_get();
    uint32_t n = (unsigned)fd < w->fd_closes_len ? w->fd_closes[fd] : 0;
    return (uint64_t)w->fd_closes_untracked << 32 | n;
}

/* The operations that wait for readiness and try again after -EAGAIN. */
typedef enum { RS__IO_READ, RS__IO_WRITE, RS__IO_RECV, RS__IO_SEND, RS__IO_ACCEPT } rs__io_kind;

typedef struct rs__io_req {
    rs__io_kind kind;
    int fd;
    void *buf;            /* read, write, recv, send; accept: the sockaddr */
    size_t len;
    uint64_t offset;      /* read, write */
    int flags;            /* recv, send: MSG_*, as the kernel gets them; accept: SOCK_* */
    socklen_t *addrlen;   /* accept */
    bool single_attempt;  /* -EAGAIN is the answer, not a reason to wait (the caller's MSG_DONTWAIT) */
    bool at_once;         /* the first attempt goes to the kernel at once (rs__uring_op_run_at_once) */
    uint32_t cqe_flags;   /* out: the last attempt's CQE flags */
} rs__io_req;

/* Runs the operation (arguments already checked, caller past rs__checkpoint)
 * and returns its result; after -EAGAIN it waits for readiness and tries
 * again, unless the request is a single attempt. */
int rs__io_retrying(rs__io_req *r);

/* IORING_OP_CONNECT bounded by deadline_ns (0 = none): -ETIMEDOUT when it
 * passes. Arguments already checked, caller past rs__checkpoint. */
int rs__connect_until(int fd, const struct sockaddr *addr, socklen_t addrlen, int64_t deadline_ns);

#endif
