/* rs_open, rs_close, rs_fsync: a descriptor's life through the ring. */
#include <ringscope/io.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/io_op.h"

static int open_through_ring(const char *path, int flags, mode_t mode, bool in_worker_thread)
{
    struct io_uring_sqe *sqe = rs__uring_sqe();
    if (!sqe)
        return -EBUSY;
    io_uring_prep_openat(sqe, AT_FDCWD, path, flags, mode);
    if (in_worker_thread)
        sqe->flags |= IOSQE_ASYNC;
    return rs__io_run(sqe, 0);
}

/* The ring first tries an open without blocking, as if O_NONBLOCK were set,
 * and returns that attempt's error. For a FIFO opened for writing only, with
 * no reader yet, that error is -ENXIO, where open(2) would wait for a reader.
 * So -ENXIO without O_NONBLOCK asked for is tried again in the kernel's
 * worker thread (IOSQE_ASYNC), which opens as open(2) does: waiting, and
 * interrupted by a cancellation. (Anything else that says -ENXIO says it
 * again there.) A cancelled task starts no second attempt. */
int rs_open(const char *path, int flags, mode_t mode)
{
    int rc = rs__checkpoint();
    if (rc)
        return rc;
    if (!path)
        return -EINVAL;
    rc = open_through_ring(path, flags, mode, false);
    if (rc == -ENXIO && (flags & O_ACCMODE) == O_WRONLY && !(flags & O_NONBLOCK)) {
        /* A cancellation that came while the first attempt ran found
         * nothing to stop; it must stop the waiting attempt from starting. */
        rc = rs__checkpoint();
        if (rc == 0)
            rc = open_through_ring(path, flags, mode, true);
    }
    return rc;
}

/* Queues the cancellation of every operation of this ring on fd's open file
 * (other tasks waiting on fd). Issued before the close, in submission order,
 * while fd still names the file; they complete with -ECANCELED, which their
 * calls report as -EBADF (rs__uring_op_run). Its own completion is dropped
 * (user_data NULL); an error (fd not open, a kernel without
 * IORING_ASYNC_CANCEL_FD) only means there was nothing to cancel. */
static bool queue_cancel_of_fd(int fd)
{
    struct io_uring_sqe *sqe = rs__uring_sqe();
    if (!sqe)
        return false;
    io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data(sqe, NULL);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    return true;
}

static int close_direct(int fd)
{
    return close(fd) == 0 ? 0 : -errno;
}

/* close(2) right now, after the kernel has run the cancellation of the
 * operations waiting on fd (a submission of its own: a cancelled task must
 * not suspend). */
static int close_now(int fd)
{
    if (queue_cancel_of_fd(fd))
        rs__uring_submit_now();
    return close_direct(fd);
}

/* Changes fd's mark (rs__fd_close_mark) before the number can be released,
 * growing the table to cover fd. A number that is not open is not counted
 * (no call can be between two steps on it), so a bad argument never grows
 * the table: checked with a system call, only when the table must grow. A
 * close it cannot count (no memory) changes every mark instead: a call
 * between two steps then fails with -EBADF rather than risk another file. */
static void note_close(int fd)
{
    rs__worker *w = rs__worker_get();
    if ((unsigned)fd >= w->fd_closes_len) {
        if (fcntl(fd, F_GETFD) < 0)
            return;
        uint32_t len = w->fd_closes_len ? w->fd_closes_len : 64;
        while (len <= (unsigned)fd && len < UINT32_MAX / 2)
            len *= 2;
        uint32_t *t = len > (unsigned)fd ? realloc(w->fd_closes, (size_t)len * sizeof *t) : NULL;
        if (!t) {
            w->fd_closes_untracked++;
            return;
        }
        memset(t + w->fd_closes_len, 0, (size_t)(len - w->fd_closes_len) * sizeof *t);
        w->fd_closes = t;
        w->fd_closes_len = len;
    }
    w->fd_closes[fd]++;
}

/* The descriptor is released whatever happens: cleanup code after a cancelled
 * rs_recv must not leak it. A task that is already cancelled closes at once
 * with close(2) and then reports the cancellation (a cancellation point that
 * still does its cleanup, as Trio's aclose). If the cancellation arrives while
 * the close is queued and the kernel drops the operation unstarted, the
 * descriptor is closed here instead.
 *
 * Other tasks waiting on fd are woken with -EBADF: an operation in the ring
 * holds the file, so without the cancellation a socket would stay open (its
 * peer never seeing the end of the stream) and its waiters would wait for
 * good. */
int rs_close(int fd)
{
    int rc = rs__checkpoint();
    if (rc == -ECANCELED && fd >= 0) {
        note_close(fd);
        close_now(fd);
    }
    if (rc)
        return rc;
    if (fd < 0)
        return -EBADF;
    note_close(fd);
    if (!queue_cancel_of_fd(fd))
        return close_direct(fd); /* the ring takes nothing: no cancellation either */
    struct io_uring_sqe *sqe = rs__uring_sqe();
    if (!sqe)
        return close_direct(fd); /* looking for one submitted what was queued, the cancellation too */
    io_uring_prep_close(sqe, fd);
    rs__uring_op op;
    rc = rs__uring_op_run(&op, sqe, 0);
    /* Close here only if the kernel never ran the close (its own result is
     * -ECANCELED). Any other result means the number was released, even an
     * -EINTR from a file's flush that the cancellation interrupted, and by
     * now another task may have been given the same number. */
    if (rc == -ECANCELED && op.wait.result == -ECANCELED)
        close(fd);
    return rc;
}

int rs_fsync(int fd)
{
    int rc = rs__checkpoint();
    if (rc)
        return rc;
    if (fd < 0)
        return -EBADF;
    struct io_uring_sqe *sqe = rs__uring_sqe();
    if (!sqe)
        return -EBUSY;
    io_uring_prep_fsync(sqe, fd, 0);
    return rs__io_run(sqe, 0);
}
