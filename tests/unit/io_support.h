/* Helpers shared by the socket tests: a socket's port, waiting until a task's
 * operation is in the kernel, and a TCP blackhole. */
#ifndef RS_TEST_IO_SUPPORT_H
#define RS_TEST_IO_SUPPORT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/task.h"
#include "runtime/worker.h"
#include "support.h"

/* The local port of fd (IPv4 or IPv6), 0 on error; its family into *family
 * unless NULL. */
static inline uint16_t rs_test_port_of(int fd, int *family)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (family)
        *family = ss.ss_family;
    return ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                   : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* Yields until task t is parked on a wait and the worker has submitted
 * every queued SQE: t's operation is in the kernel, not only in the ring. */
static inline int rs_test_until_in_kernel(const rs_task *t)
{
    rs__worker *w = rs__worker_get();
    while (t->state != RS_TASK_WAITING || io_uring_sq_ready(&w->ring) > 0)
        RS_CHECK_OK(rs_yield());
    return 0;
}

/* A listener whose accept queue is full and that never accepts: Linux drops
 * further SYNs, so a new connect hangs in SYN retransmission (the first one
 * after 1 s) - a blackhole on loopback, deterministic and local. host:
 * "127.0.0.1" or "::1". */
typedef struct rs_test_blackhole {
    int lfd;
    uint16_t port;
    int fillers[2];
    int nfillers;
} rs_test_blackhole;

static inline int rs_test_blackhole_open(rs_test_blackhole *b, const char *host)
{
    b->lfd = rs_tcp_listen(host, 0, 1);
    RS_CHECK(b->lfd >= 0);
    b->port = rs_test_port_of(b->lfd, NULL);
    /* Backlog 1 queues two connections; fill it with completed handshakes. */
    for (b->nfillers = 0; b->nfillers < 2; b->nfillers++) {
        int fd = rs_tcp_connect(host, b->port, 2000);
        RS_CHECK(fd >= 0);
        b->fillers[b->nfillers] = fd;
    }
    return 0;
}

static inline void rs_test_blackhole_close(rs_test_blackhole *b)
{
    for (int i = 0; i < b->nfillers; i++)
        close(b->fillers[i]);
    close(b->lfd);
}

#endif
