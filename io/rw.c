/* rs_read, rs_write: files, pipes, sockets and any other descriptor, with an
 * explicit offset or (offset -1) at the current file position. */
#include <ringscope/io.h>

#include "io/io_op.h"

/* Offsets are byte positions (>= 0) or -1 for "the current position"; on
 * descriptors that cannot seek (pipes, sockets) the kernel ignores them. */
static int check_args(int fd, const void *buf, size_t len, int64_t offset)
{
    if (fd < 0)
        return -EBADF;
    if (!buf && len > 0)
        return -EINVAL;
    if (offset < -1)
        return -EINVAL;
    return 0;
}

ssize_t rs_read(int fd, void *buf, size_t len, int64_t offset)
{
    int rc = rs__checkpoint();
    if (rc)
        return rc;
    rc = check_args(fd, buf, len, offset);
    if (rc)
        return rc;
    for (;;) {
        struct io_uring_sqe *sqe = rs__uring_sqe();
        if (!sqe)
            return -EBUSY;
        io_uring_prep_read(sqe, fd, buf, rs__io_count(len), (uint64_t)offset);
        rc = rs__io_run(sqe, 0);
        if (rc != -EAGAIN)
            return rc;
        rc = rs__io_wait_ready(fd, POLLIN);
        if (rc)
            return rc;
    }
}

ssize_t rs_write(int fd, const void *buf, size_t len, int64_t offset)
{
    int rc = rs__checkpoint();
    if (rc)
        return rc;
    rc = check_args(fd, buf, len, offset);
    if (rc)
        return rc;
    for (;;) {
        struct io_uring_sqe *sqe = rs__uring_sqe();
        if (!sqe)
            return -EBUSY;
        io_uring_prep_write(sqe, fd, buf, rs__io_count(len), (uint64_t)offset);
        rc = rs__io_run(sqe, 0);
        if (rc != -EAGAIN)
            return rc;
        rc = rs__io_wait_ready(fd, POLLOUT);
        if (rc)
            return rc;
    }
}
