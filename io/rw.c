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
    if (!rc)
        rc = check_args(fd, buf, len, offset);
    if (rc)
        return rc;
    return rs__io_retrying(&(rs__io_req){ .kind = RS__IO_READ, .fd = fd, .buf = buf, .len = len,
                                          .offset = (uint64_t)offset });
}

ssize_t rs_write(int fd, const void *buf, size_t len, int64_t offset)
{
    int rc = rs__checkpoint();
    if (!rc)
        rc = check_args(fd, buf, len, offset);
    if (rc)
        return rc;
    return rs__io_retrying(&(rs__io_req){ .kind = RS__IO_WRITE, .fd = fd, .buf = (void *)buf, .len = len,
                                          .offset = (uint64_t)offset });
}
