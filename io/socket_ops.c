/* rs_recv, rs_send, rs_accept, rs_connect: socket operations of a task. */
#include <ringscope/io.h>

#include <fcntl.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "io/io_op.h"

static int check_buf(int fd, const void *buf, size_t len)
{
    if (fd < 0)
        return -EBADF;
    if (!buf && len > 0)
        return -EINVAL;
    return 0;
}

/* MSG_DONTWAIT asks for one attempt. MSG_ERRQUEUE never waits either (as in
 * recv(2)); the kernel is told so with MSG_DONTWAIT, or else the ring,
 * answered -EAGAIN, arms a poll for the socket's ordinary data and waits
 * there. (Its readiness, POLLERR, is not the POLLIN the library would wait
 * for: retrying would spin.) */
ssize_t rs_recv(int fd, void *buf, size_t len, int flags)
{
    int rc = rs__checkpoint();
    if (!rc)
        rc = check_buf(fd, buf, len);
    if (rc)
        return rc;
    if (flags & MSG_ERRQUEUE)
        flags |= MSG_DONTWAIT;
    return rs__io_retrying(&(rs__io_req){ .kind = RS__IO_RECV,
                                          .fd = fd,
                                          .buf = buf,
                                          .len = len,
                                          .flags = flags,
                                          .single_attempt = flags & MSG_DONTWAIT });
}

/* MSG_NOSIGNAL always: a peer that went away is -EPIPE for this call, never
 * a SIGPIPE for the whole process. With MSG_DONTWAIT, -EAGAIN is the answer
 * rather than a reason to wait.
 *
 * Every attempt goes to the kernel with MSG_DONTWAIT, and the library waits
 * for POLLOUT and sends again after -EAGAIN, so that each attempt starts from
 * the caller's buffer. The ring's own retry (a poll armed after -EAGAIN)
 * reuses the first attempt's message state, and an AF_UNIX datagram send
 * consumes it before it finds the receiver's queue full: the retry then sent
 * an empty datagram and reported 0. MSG_WAITALL keeps the ring's retry, which
 * adds up the partial sends of a stream until all of buf is queued (with
 * MSG_DONTWAIT the ring stops at the first partial send). */
ssize_t rs_send(int fd, const void *buf, size_t len, int flags)
{
    int rc = rs__checkpoint();
    if (!rc)
        rc = check_buf(fd, buf, len);
    if (rc)
        return rc;
    int kernel_flags = flags | MSG_NOSIGNAL | (flags & MSG_WAITALL ? 0 : MSG_DONTWAIT);
    return rs__io_retrying(&(rs__io_req){ .kind = RS__IO_SEND,
                                          .fd = fd,
                                          .buf = (void *)buf,
                                          .len = len,
                                          .flags = kernel_flags,
                                          .single_attempt = flags & MSG_DONTWAIT });
}

/* flags are accept4's (SOCK_NONBLOCK, SOCK_CLOEXEC). A connection accepted
 * just as the task is cancelled is still returned (the descriptor is never
 * lost); the task's next cancellation point reports the cancellation.
 *
 * Draining a burst: an accept, like any operation, is submitted with the
 * worker's next batch, so an acceptor among busy tasks would take one
 * connection per trip to the kernel while hundreds wait in the backlog. When
 * the kernel reports more connections queued behind the one it returned
 * (IORING_CQE_F_SOCK_NONEMPTY, Linux 6.10 on, for TCP; never set before or
 * for other families, which keeps the batched path), the next accept on that
 * socket goes to the kernel at once and completes without suspending, as an
 * event loop's accept loop would. The worker remembers one such socket (the
 * last to report), enough for an acceptor task per listener: each drains its
 * own burst in a run. Each accept that completes at once counts against the
 * dispatch budget, so a long burst still lets the other tasks run every
 * RS_DISPATCH_BATCH accepts. */
int rs_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
    int rc = rs__checkpoint();
    if (rc)
        return rc;
    if (fd < 0)
        return -EBADF;
    if (addr && !addrlen)
        return -EINVAL;
    if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
        return -EINVAL;
    rs__worker *w = rs__worker_get();
    rs__io_req r = { .kind = RS__IO_ACCEPT, .fd = fd, .buf = addr, .addrlen = addrlen, .flags = flags };
    r.at_once = w->accept_backlog_fd == fd && w->budget > 0;
    rc = rs__io_retrying(&r);
    if (rc >= 0 && (r.cqe_flags & IORING_CQE_F_SOCK_NONEMPTY))
        w->accept_backlog_fd = fd;
    else if (w->accept_backlog_fd == fd)
        w->accept_backlog_fd = -1;
    return rc;
}

static int connect_once(int fd, const struct sockaddr *addr, socklen_t addrlen, int64_t deadline_ns,
                        bool in_worker_thread)
{
    struct io_uring_sqe *sqe = rs__uring_sqe();
    if (!sqe)
        return -EBUSY;
    io_uring_prep_connect(sqe, fd, addr, addrlen);
    if (in_worker_thread)
        sqe->flags |= IOSQE_ASYNC;
    return rs__io_run(sqe, deadline_ns);
}

/* The kernel keeps the connection attempt's state in the socket, so a
 * cancelled connect leaves a socket that is only good for closing.
 *
 * An AF_UNIX socket with O_NONBLOCK whose listener's backlog is full gets
 * -EAGAIN, where a blocking one waits for room; no readiness announces that
 * room (such a socket polls writable all along), so the wait cannot be a
 * poll. The connect is then made blocking: O_NONBLOCK is off while a second
 * attempt waits in the kernel's worker thread (IOSQE_ASYNC), interrupted by
 * a cancellation or the deadline, and is put back before the call returns.
 * A socket that was blocking already keeps its -EAGAIN (nothing to wait for
 * in a different way). */
int rs__connect_until(int fd, const struct sockaddr *addr, socklen_t addrlen, int64_t deadline_ns)
{
    uint64_t mark = rs__fd_close_mark(fd);
    int rc = connect_once(fd, addr, addrlen, deadline_ns, false);
    if (rc != -EAGAIN)
        return rc;
    if (rs__fd_close_mark(fd) != mark)
        return -EBADF; /* closed by another task meanwhile: the number may name another file */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || !(fl & O_NONBLOCK) || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0)
        return -EAGAIN;
    rc = rs__checkpoint(); /* a cancellation during the first attempt: start no second */
    if (rc == 0)
        rc = connect_once(fd, addr, addrlen, deadline_ns, true);
    if (rs__fd_close_mark(fd) != mark)
        return rc == 0 ? 0 : -EBADF; /* the flags of whatever file has the number now are not ours */
    fcntl(fd, F_SETFL, fl);
    return rc;
}

int rs_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    int rc = rs__checkpoint();
    if (rc)
        return rc;
    if (fd < 0)
        return -EBADF;
    if (!addr || addrlen == 0)
        return -EINVAL;
    return rs__connect_until(fd, addr, addrlen, 0);
}
