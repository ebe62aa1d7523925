/* rs_recv, rs_send, rs_accept, rs_connect: socket operations of a task. */
#include <ringscope/io.h>

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

/* MSG_ERRQUEUE never waits (as in recv(2)); the kernel is told so with
 * MSG_DONTWAIT, or else the ring, answered -EAGAIN, arms a poll for the
 * socket's ordinary data and waits there. */
ssize_t rs_recv(int fd, void *buf, size_t len, int flags)
{
    int rc = rs__checkpoint();
    if (!rc)
        rc = check_buf(fd, buf, len);
    if (rc)
        return rc;
    if (flags & MSG_ERRQUEUE)
        flags |= MSG_DONTWAIT;
    return rs__io_retrying(&(rs__io_req){ .kind = RS__IO_RECV, .fd = fd, .buf = buf, .len = len, .flags = flags });
}

/* MSG_NOSIGNAL always: a peer that went away is -EPIPE for this call, never
 * a SIGPIPE for the whole process. With MSG_DONTWAIT, -EAGAIN is the answer
 * rather than a reason to wait. */
ssize_t rs_send(int fd, const void *buf, size_t len, int flags)
{
    int rc = rs__checkpoint();
    if (!rc)
        rc = check_buf(fd, buf, len);
    if (rc)
        return rc;
    return rs__io_retrying(&(rs__io_req){ .kind = RS__IO_SEND, .fd = fd, .buf = (void *)buf, .len = len,
                                          .flags = flags | MSG_NOSIGNAL });
}

/* flags are accept4's (SOCK_NONBLOCK, SOCK_CLOEXEC). A connection accepted
 * just as the task is cancelled is still returned (the descriptor is never
 * lost); the task's next cancellation point reports the cancellation. */
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
    return rs__io_retrying(&(rs__io_req){ .kind = RS__IO_ACCEPT, .fd = fd, .buf = addr, .addrlen = addrlen,
                                          .flags = flags });
}

/* The kernel keeps the connection attempt's state in the socket, so a
 * cancelled connect leaves a socket that is only good for closing. */
int rs__connect_until(int fd, const struct sockaddr *addr, socklen_t addrlen, int64_t deadline_ns)
{
    struct io_uring_sqe *sqe = rs__uring_sqe();
    if (!sqe)
        return -EBUSY;
    io_uring_prep_connect(sqe, fd, addr, addrlen);
    return rs__io_run(sqe, deadline_ns);
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
