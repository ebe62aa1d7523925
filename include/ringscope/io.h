/* ringscope I/O: every call goes through the calling worker's io_uring,
 * suspends only the calling task, and is a cancellation point. Results are
 * counts (or fds) on success and negative errno on failure. */
#ifndef RINGSCOPE_IO_H
#define RINGSCOPE_IO_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

ssize_t rs_read(int fd, void *buf, size_t len, int64_t offset); /* offset -1: current position */
ssize_t rs_write(int fd, const void *buf, size_t len, int64_t offset);
ssize_t rs_recv(int fd, void *buf, size_t len, int flags);
ssize_t rs_send(int fd, const void *buf, size_t len, int flags);
int rs_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags);
int rs_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);
int rs_poll(int fd, short events, int64_t timeout_ms); /* revents, -ETIMEDOUT, -ECANCELED */
int rs_open(const char *path, int flags, mode_t mode);
int rs_close(int fd);
int rs_fsync(int fd);
int rs_tcp_listen(const char *host, uint16_t port, int backlog);         /* listening fd; port 0: any free port */
int rs_tcp_connect(const char *host, uint16_t port, int64_t timeout_ms); /* connected fd */

#ifdef __cplusplus
}
#endif

#endif
