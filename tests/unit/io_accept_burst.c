/* rs_accept under a burst: connections queued in a listener's backlog are
 * taken many per trip to the kernel (not one per batch of the worker), the
 * other tasks still get their turns, and a backlog someone else drained makes
 * the next accept wait instead of failing or blocking the worker. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "io_support.h"

TestSuite(io_accept_burst, .timeout = 30);

/* The kernel reports "more connections queued" on an accept's completion
 * from Linux 6.10 on; before, every accept takes the batched path. */
static bool kernel_reports_backlog(void)
{
    struct utsname u;
    int major = 0, minor = 0;
    if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2)
        return false;
    return major > 6 || (major == 6 && minor >= 10);
}

/* A blocking connect to 127.0.0.1:port: returns once the handshake is done,
 * so the connection is in the listener's backlog. */
static int connect_plain(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    RS_CHECK(fd >= 0);
    struct sockaddr_in to = { .sin_family = AF_INET,
                              .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    RS_CHECK_EQ(connect(fd, (struct sockaddr *)&to, sizeof to), 0);
    return fd;
}

static int listener(bool nonblocking)
{
    int lfd = rs_tcp_listen("127.0.0.1", 0, 512);
    RS_CHECK(lfd >= 0);
    int fl = fcntl(lfd, F_GETFL);
    RS_CHECK_EQ(fcntl(lfd, F_SETFL, nonblocking ? fl | O_NONBLOCK : fl & ~O_NONBLOCK), 0);
    return lfd;
}

typedef struct busy {
    bool stop;
    unsigned long turns;
} busy;

static int keep_yielding(void *arg)
{
    busy *b = arg;
    while (!b->stop) {
        b->turns++;
        RS_CHECK_OK(rs_yield());
    }
    return 0;
}

#define BURST 200

typedef struct burst_case {
    bool nonblocking;
    unsigned long turns_while_draining; /* the busy task's turns while BURST connections were accepted */
} burst_case;

static int drain_burst(void *arg)
{
    burst_case *bc = arg;
    int lfd = listener(bc->nonblocking);
    uint16_t port = rs_test_port_of(lfd, NULL);
    int clients[BURST];
    for (int i = 0; i < BURST; i++)
        clients[i] = connect_plain(port);

    rs_scope *sc;
    RS_CHECK_OK(rs_scope_open(NULL, &sc));
    busy b = { 0 };
    RS_CHECK_OK(rs_spawn(sc, keep_yielding, &b, NULL, NULL));
    RS_CHECK_OK(rs_yield()); /* the busy task is running */

    /* Every connection exactly once: the peer of each accepted socket is one
     * of the clients, none twice. The busy task's turns are counted from the
     * first accept's return on: from then on the kernel has reported the
     * backlog. */
    bool seen[BURST] = { false };
    int accepted[BURST];
    unsigned long before = 0;
    for (int i = 0; i < BURST; i++) {
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        int fd = accepted[i] = rs_accept(lfd, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
        if (i == 0)
            before = b.turns;
        RS_CHECK(fd >= 0);
        int which = -1;
        for (int k = 0; k < BURST; k++) {
            if (rs_test_port_of(clients[k], NULL) == ntohs(peer.sin_port))
                which = k;
        }
        RS_CHECK(which >= 0);
        RS_CHECK(!seen[which]);
        seen[which] = true;
    }
    bc->turns_while_draining = b.turns - before;
    b.stop = true;
    RS_CHECK_OK(rs_scope_close(sc));
    for (int i = 0; i < BURST; i++) {
        RS_CHECK_OK(rs_close(accepted[i]));
        RS_CHECK_EQ(close(clients[i]), 0);
    }
    RS_CHECK_OK(rs_close(lfd));
    return 0;
}

/* One accept per batch would give the busy task a whole batch of turns
 * (RS_DISPATCH_BATCH - 1) per connection: about 12,500 for the burst. Taken
 * at once while the kernel reports more queued, the burst lets it run about
 * once per RS_DISPATCH_BATCH connections: it is not starved either. */
static void check_burst(bool nonblocking)
{
    burst_case bc = { .nonblocking = nonblocking };
    RS_RUN_OK(drain_burst, &bc);
    cr_assert_geq(bc.turns_while_draining, (BURST - 1) / RS_DISPATCH_BATCH - 1,
                  "the other task ran %lu times while %d connections were accepted", bc.turns_while_draining, BURST);
    if (kernel_reports_backlog())
        cr_assert_lt(bc.turns_while_draining, (unsigned long)BURST * 4,
                     "the other task ran %lu times while %d queued connections were accepted: about one "
                     "connection per batch",
                     bc.turns_while_draining, BURST);
}

Test(io_accept_burst, a_queued_burst_is_taken_many_per_kernel_trip_blocking_listener)
{
    check_burst(false);
}

Test(io_accept_burst, a_queued_burst_is_taken_many_per_kernel_trip_nonblocking_listener)
{
    check_burst(true);
}

typedef struct late_connect {
    uint16_t port;
    rs_task *acceptor;
    int fd;
} late_connect;

static int connect_once_accepting(void *arg)
{
    late_connect *lc = arg;
    RS_CHECK_OK(rs_test_until_in_kernel(lc->acceptor));
    lc->fd = connect_plain(lc->port);
    return 0;
}

/* The kernel said more were queued, then another party took them: the next
 * accept, sent at once, finds the backlog empty and waits like any other. */
static int drained_by_someone_else(void *arg)
{
    bool nonblocking = *(bool *)arg;
    int lfd = listener(nonblocking);
    uint16_t port = rs_test_port_of(lfd, NULL);
    int c1 = connect_plain(port), c2 = connect_plain(port);
    int s1 = rs_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
    RS_CHECK(s1 >= 0);
    int fl = fcntl(lfd, F_GETFL);
    RS_CHECK_EQ(fcntl(lfd, F_SETFL, fl | O_NONBLOCK), 0);
    int s2 = accept4(lfd, NULL, NULL, SOCK_CLOEXEC); /* someone else */
    RS_CHECK(s2 >= 0);
    RS_CHECK_EQ(fcntl(lfd, F_SETFL, fl), 0);

    rs_scope *sc;
    RS_CHECK_OK(rs_scope_open(NULL, &sc));
    late_connect lc = { .port = port, .acceptor = rs_current_task(), .fd = -1 };
    RS_CHECK_OK(rs_spawn(sc, connect_once_accepting, &lc, NULL, NULL));
    int s3 = rs_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
    RS_CHECK(s3 >= 0);
    RS_CHECK_OK(rs_scope_close(sc));
    RS_CHECK(lc.fd >= 0);
    /* s3 is the late client's connection: a byte goes through. */
    RS_CHECK_EQ(rs_send(lc.fd, "x", 1, 0), 1);
    char byte = 0;
    RS_CHECK_EQ(rs_recv(s3, &byte, 1, 0), 1);
    RS_CHECK_EQ(byte, 'x');
    int fds[] = { c1, c2, s1, s2, s3, lc.fd, lfd };
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        RS_CHECK_OK(rs_close(fds[i]));
    return 0;
}

Test(io_accept_burst, a_backlog_drained_elsewhere_makes_the_next_accept_wait_blocking_listener)
{
    bool nonblocking = false;
    RS_RUN_OK(drained_by_someone_else, &nonblocking);
}

Test(io_accept_burst, a_backlog_drained_elsewhere_makes_the_next_accept_wait_nonblocking_listener)
{
    bool nonblocking = true;
    RS_RUN_OK(drained_by_someone_else, &nonblocking);
}
