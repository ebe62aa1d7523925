/* rs_poll: readiness as revents, time limits, cancellation. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "support.h"

TestSuite(io_poll, .timeout = 20);

static int timeout_expires(void *arg)
{
    (void)arg;
    int sv[2];
    RS_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int64_t t0 = rs_now_ms();
    RS_CHECK_EQ(rs_poll(sv[0], POLLIN, 40), -ETIMEDOUT);
    int64_t dt = rs_now_ms() - t0;
    RS_CHECK(dt >= 39);
    RS_CHECK(dt < 200);
    /* The descriptor is still fine: data sent now is reported at once. */
    RS_CHECK_EQ(rs_send(sv[1], "a", 1, 0), 1);
    int rev = rs_poll(sv[0], POLLIN, 1000);
    RS_CHECK(rev > 0 && (rev & POLLIN));
    char c;
    RS_CHECK_EQ(rs_recv(sv[0], &c, 1, 0), 1);
    RS_CHECK_OK(rs_close(sv[0]));
    RS_CHECK_OK(rs_close(sv[1]));
    return 0;
}

Test(io_poll, timeout_is_etimedout)
{
    RS_RUN_OK(timeout_expires, NULL);
}

typedef struct later {
    int fd;
    int64_t delay_ms;
} later;

static int send_later(void *arg)
{
    later *l = arg;
    RS_CHECK_OK(rs_sleep(l->delay_ms));
    RS_CHECK_EQ(rs_send(l->fd, "z", 1, 0), 1);
    return 0;
}

/* Timeout 0 means no limit: the poll waits as long as it takes. */
static int readiness_wakes(void *arg)
{
    (void)arg;
    int sv[2];
    RS_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    later l = { .fd = sv[1], .delay_ms = 30 };
    RS_CHECK_OK(rs_spawn(s, send_later, &l, NULL, NULL));
    int64_t t0 = rs_now_ms();
    int rev = rs_poll(sv[0], POLLIN, 0);
    RS_CHECK(rs_now_ms() - t0 >= 25);
    RS_CHECK(rev > 0);
    RS_CHECK(rev & POLLIN);
    RS_CHECK(!(rev & (POLLERR | POLLHUP)));
    RS_CHECK_OK(rs_scope_close(s));

    /* Writable right away. */
    rev = rs_poll(sv[0], POLLOUT, 1000);
    RS_CHECK(rev > 0 && (rev & POLLOUT));
    RS_CHECK_OK(rs_close(sv[0]));
    RS_CHECK_OK(rs_close(sv[1]));
    return 0;
}

Test(io_poll, readiness_is_reported_as_revents)
{
    RS_RUN_OK(readiness_wakes, NULL);
}

static int hangup(void *arg)
{
    (void)arg;
    int p[2];
    RS_CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    RS_CHECK_OK(rs_close(p[1]));
    int rev = rs_poll(p[0], POLLIN, 1000);
    RS_CHECK(rev > 0);
    RS_CHECK(rev & POLLHUP);
    RS_CHECK_OK(rs_close(p[0]));

    RS_CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    RS_CHECK_OK(rs_close(p[0]));
    rev = rs_poll(p[1], POLLOUT, 1000);
    RS_CHECK(rev > 0);
    RS_CHECK(rev & POLLERR);
    RS_CHECK_OK(rs_close(p[1]));
    return 0;
}

Test(io_poll, hangup_and_error_are_reported)
{
    RS_RUN_OK(hangup, NULL);
}

static int bad_arguments(void *arg)
{
    (void)arg;
    int sv[2];
    RS_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    RS_CHECK_EQ(rs_poll(sv[0], POLLIN, -1), -EINVAL);
    RS_CHECK_EQ(rs_poll(-1, POLLIN, 10), -EBADF);
    RS_CHECK_OK(rs_close(sv[0]));
    RS_CHECK_OK(rs_close(sv[1]));
    RS_CHECK_EQ(rs_poll(sv[0], POLLIN, 10), -EBADF);
    return 0;
}

Test(io_poll, bad_arguments)
{
    RS_RUN_OK(bad_arguments, NULL);
}

/* A poll cut short by its scope's timeout is -ECANCELED, and the scope
 * reports its own timeout. */
static int cancelled_poll(void *arg)
{
    (void)arg;
    int sv[2];
    RS_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 30 }, &s));
    int64_t t0 = rs_now_ms();
    RS_CHECK_EQ(rs_poll(sv[0], POLLIN, 5000), -ECANCELED);
    RS_CHECK(rs_now_ms() - t0 < 1000);
    RS_CHECK_EQ(rs_scope_close(s), -ETIMEDOUT);
    RS_CHECK_OK(rs_close(sv[0]));
    RS_CHECK_OK(rs_close(sv[1]));
    return 0;
}

Test(io_poll, cancellation_ends_the_poll)
{
    RS_RUN_OK(cancelled_poll, NULL);
}

/* The poll timeout does not disturb other tasks: many polls with different
 * limits all end at their own time. */
typedef struct poller {
    int fd;
    int64_t timeout_ms;
    int64_t took_ms;
    int rc;
} poller;

static int poll_one(void *arg)
{
    poller *p = arg;
    int64_t t0 = rs_now_ms();
    p->rc = rs_poll(p->fd, POLLIN, p->timeout_ms);
    p->took_ms = rs_now_ms() - t0;
    return 0;
}

static int many_polls(void *arg)
{
    (void)arg;
    enum { N = 20 };
    int sv[2];
    RS_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    poller ps[N];
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    for (int i = 0; i < N; i++) {
        ps[i] = (poller){ .fd = sv[0], .timeout_ms = 10 + 5 * i };
        RS_CHECK_OK(rs_spawn(s, poll_one, &ps[i], NULL, NULL));
    }
    RS_CHECK_OK(rs_scope_close(s));
    for (int i = 0; i < N; i++) {
        RS_CHECK_EQ(ps[i].rc, -ETIMEDOUT);
        RS_CHECK(ps[i].took_ms >= ps[i].timeout_ms - 1);
        RS_CHECK(ps[i].took_ms < ps[i].timeout_ms + 200);
    }
    RS_CHECK_OK(rs_close(sv[0]));
    RS_CHECK_OK(rs_close(sv[1]));
    return 0;
}

Test(io_poll, each_poll_ends_at_its_own_limit)
{
    RS_RUN_OK(many_polls, NULL);
}
