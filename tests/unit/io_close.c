/* rs_close of a descriptor other tasks wait on: an operation in the ring
 * holds the open file, so a plain close would leave the file open and its
 * waiters waiting for good. rs_close cancels them first: each returns
 * -EBADF, the file is released (a socket's peer sees the end of the stream,
 * a listener's port closes), and waiters on other descriptors, or on
 * nothing, are untouched. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io_support.h"

TestSuite(io_close, .timeout = 20);

#define SENTINEL 0x5a

typedef enum {
    WAIT_RECV,
    WAIT_SEND,
    WAIT_READ,
    WAIT_POLL,
    WAIT_ACCEPT
} wait_kind;

typedef struct waiter {
    wait_kind kind;
    int fd;
    ssize_t rc;
    unsigned char buf[64];
} waiter;

static int wait_on_fd(void *arg)
{
    waiter *w = arg;
    switch (w->kind) {
    case WAIT_RECV: w->rc = rs_recv(w->fd, w->buf, sizeof w->buf, 0); break;
    case WAIT_SEND: w->rc = rs_send(w->fd, w->buf, sizeof w->buf, 0); break;
    case WAIT_READ: w->rc = rs_read(w->fd, w->buf, sizeof w->buf, -1); break;
    case WAIT_POLL: w->rc = rs_poll(w->fd, POLLIN, 60000); break;
    case WAIT_ACCEPT: w->rc = rs_accept(w->fd, NULL, NULL, SOCK_CLOEXEC); break;
    }
    return 0;
}

static bool untouched(const waiter *w)
{
    for (size_t i = 0; i < sizeof w->buf; i++)
        if (w->buf[i] != SENTINEL)
            return false;
    return true;
}

/* Spawns a task waiting on w->fd; returns once its operation is in the kernel. */
static int start_waiter(rs_scope *s, waiter *w, rs_task **t)
{
    memset(w->buf, SENTINEL, sizeof w->buf);
    w->rc = 1;
    RS_CHECK_OK(rs_spawn(s, wait_on_fd, w, NULL, t));
    return rs_test_until_in_kernel(*t);
}

static int recv_waiter(void *arg)
{
    (void)arg;
    int sv[2];
    RS_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    waiter w = { .kind = WAIT_RECV, .fd = sv[0] };
    rs_task *t;
    RS_CHECK_OK(start_waiter(s, &w, &t));

    RS_CHECK_OK(rs_close(sv[0]));
    RS_CHECK_OK(rs_task_join(t, NULL));
    RS_CHECK_EQ(w.rc, -EBADF);
    RS_CHECK(untouched(&w));
    RS_CHECK_OK(rs_scope_close(s)); /* -EBADF is the call's result, not a failure */

    /* The socket is really closed: the peer reads the end of the stream and
     * cannot write any more. */
    char c;
    RS_CHECK_EQ(rs_recv(sv[1], &c, 1, MSG_DONTWAIT), 0);
    RS_CHECK_EQ(rs_send(sv[1], "x", 1, 0), -EPIPE);
    RS_CHECK_OK(rs_close(sv[1]));
    return 0;
}

Test(io_close, a_task_waiting_in_recv_gets_ebadf_and_the_peer_sees_the_end)
{
    RS_RUN_OK(recv_waiter, NULL);
}

static int accept_waiter(void *arg)
{
    (void)arg;
    int lfd = rs_tcp_listen("127.0.0.1", 0, 4);
    RS_CHECK(lfd >= 0);
    uint16_t port = rs_test_port_of(lfd, NULL);
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    waiter w = { .kind = WAIT_ACCEPT, .fd = lfd };
    rs_task *t;
    RS_CHECK_OK(start_waiter(s, &w, &t));

    RS_CHECK_OK(rs_close(lfd));
    RS_CHECK_OK(rs_task_join(t, NULL));
    RS_CHECK_EQ(w.rc, -EBADF);
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(rs_tcp_connect("127.0.0.1", port, 2000), -ECONNREFUSED); /* the port is closed */
    return 0;
}

Test(io_close, closing_a_listener_ends_the_accept_waiting_on_it_and_closes_the_port)
{
    RS_RUN_OK(accept_waiter, NULL);
}

/* Every kind of wait on one descriptor at once: a receive, a send stuck on a
 * full buffer and a poll with a long limit on a socket; a read on a pipe. */
static int every_waiter(void *arg)
{
    (void)arg;
    int sv[2], p[2];
    RS_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    RS_CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    static const char fill[4096];
    while (rs_send(sv[0], fill, sizeof fill, MSG_DONTWAIT) > 0) {
    }
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    waiter ws[] = {
        { .kind = WAIT_RECV, .fd = sv[0] },
        { .kind = WAIT_SEND, .fd = sv[0] },
        { .kind = WAIT_POLL, .fd = sv[0] },
        { .kind = WAIT_READ, .fd = p[0] },
    };
    rs_task *ts[4];
    for (int i = 0; i < 4; i++)
        RS_CHECK_OK(start_waiter(s, &ws[i], &ts[i]));

    int64_t t0 = rs_now_ms();
    RS_CHECK_OK(rs_close(sv[0]));
    RS_CHECK_OK(rs_close(p[0]));
    for (int i = 0; i < 4; i++) {
        RS_CHECK_OK(rs_task_join(ts[i], NULL));
        RS_CHECK_EQ(ws[i].rc, -EBADF);
    }
    RS_CHECK(rs_now_ms() - t0 < 1000); /* the poll did not run out its minute */
    RS_CHECK(untouched(&ws[0]) && untouched(&ws[3]));
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(rs_write(p[1], "x", 1, -1), -EPIPE); /* no reader left */
    RS_CHECK_OK(rs_close(p[1]));
    RS_CHECK_OK(rs_close(sv[1]));
    return 0;
}

Test(io_close, every_kind_of_wait_on_the_closed_descriptor_ends_with_ebadf)
{
    RS_RUN_OK(every_waiter, NULL);
}

/* Closing one descriptor leaves a task waiting on another alone. */
static int other_fd_untouched(void *arg)
{
    (void)arg;
    int a[2], b[2];
    RS_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 0);
    RS_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b), 0);
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    waiter wa = { .kind = WAIT_RECV, .fd = a[0] }, wb = { .kind = WAIT_RECV, .fd = b[0] };
    rs_task *ta, *tb;
    RS_CHECK_OK(start_waiter(s, &wa, &ta));
    RS_CHECK_OK(start_waiter(s, &wb, &tb));

    RS_CHECK_OK(rs_close(a[0]));
    RS_CHECK_OK(rs_task_join(ta, NULL));
    RS_CHECK_EQ(wa.rc, -EBADF);
    RS_CHECK_EQ(wb.rc, 1); /* still waiting */
    RS_CHECK_EQ(rs_send(b[1], "hello", 5, 0), 5);
    RS_CHECK_OK(rs_task_join(tb, NULL));
    RS_CHECK_EQ(wb.rc, 5);
    RS_CHECK(memcmp(wb.buf, "hello", 5) == 0);
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_OK(rs_close(a[1]));
    RS_CHECK_OK(rs_close(b[0]));
    RS_CHECK_OK(rs_close(b[1]));
    return 0;
}

Test(io_close, a_task_waiting_on_another_descriptor_keeps_waiting)
{
    RS_RUN_OK(other_fd_untouched, NULL);
}

typedef struct closer {
    int fd;
    int rc;
} closer;

static int close_in_cancelled_scope(void *arg)
{
    closer *c = arg;
    rs_scope_cancel(rs_current_scope());
    c->rc = rs_close(c->fd);
    return 0;
}

/* A cancelled task's rs_close closes at once with close(2) and reports the
 * cancellation; the tasks waiting on the descriptor are still woken. */
static int cancelled_closer(void *arg)
{
    (void)arg;
    int sv[2];
    RS_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    rs_scope *waiters, *closers;
    RS_CHECK_OK(rs_scope_open(NULL, &waiters));
    waiter w = { .kind = WAIT_RECV, .fd = sv[0] };
    rs_task *t;
    RS_CHECK_OK(start_waiter(waiters, &w, &t));

    RS_CHECK_OK(rs_scope_open(NULL, &closers));
    closer c = { .fd = sv[0] };
    RS_CHECK_OK(rs_spawn(closers, close_in_cancelled_scope, &c, NULL, NULL));
    RS_CHECK_OK(rs_scope_close(closers));
    RS_CHECK_EQ(c.rc, -ECANCELED);
    RS_CHECK_OK(rs_task_join(t, NULL));
    RS_CHECK_EQ(w.rc, -EBADF);
    RS_CHECK_OK(rs_scope_close(waiters));
    char ch;
    RS_CHECK_EQ(rs_recv(sv[1], &ch, 1, MSG_DONTWAIT), 0);
    RS_CHECK_OK(rs_close(sv[1]));
    return 0;
}

Test(io_close, a_cancelled_task_closing_still_wakes_the_waiters)
{
    RS_RUN_OK(cancelled_closer, NULL);
}
