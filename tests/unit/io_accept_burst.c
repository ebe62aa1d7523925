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

/* A listener whose last accept reported more queued, and whose queue was
 * then emptied by someone else: the next rs_accept takes the at-once path
 * and has to wait. Returns the listener; the connection accepted, the one
 * taken elsewhere and the two clients are the caller's to close. */
static int stale_hint_listener(bool nonblocking, int *accepted, int *taken_elsewhere, int clients[2])
{
    int lfd = listener(nonblocking);
    uint16_t port = rs_test_port_of(lfd, NULL);
    clients[0] = connect_plain(port);
    clients[1] = connect_plain(port);
    *accepted = rs_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
    RS_CHECK(*accepted >= 0);
    int fl = fcntl(lfd, F_GETFL);
    RS_CHECK_EQ(fcntl(lfd, F_SETFL, fl | O_NONBLOCK), 0);
    *taken_elsewhere = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    RS_CHECK(*taken_elsewhere >= 0);
    RS_CHECK_EQ(fcntl(lfd, F_SETFL, fl), 0);
    if (kernel_reports_backlog())
        RS_CHECK_EQ(rs__worker_get()->accept_backlog_fd, lfd); /* the next accept goes at once */
    return lfd;
}

static int close_all(const int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        RS_CHECK_OK(rs_close(fds[i]));
    return 0;
}

/* The kernel said more were queued, then another party took them: the next
 * accept, sent at once, finds the backlog empty and waits like any other. */
static int drained_by_someone_else(void *arg)
{
    int s1, s2, clients[2];
    int lfd = stale_hint_listener(*(bool *)arg, &s1, &s2, clients);
    uint16_t port = rs_test_port_of(lfd, NULL);
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
    int fds[] = { clients[0], clients[1], s1, s2, s3, lc.fd, lfd };
    RS_CHECK_OK(close_all(fds, sizeof fds / sizeof fds[0]));
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

typedef struct accept_result {
    int lfd, rc;
} accept_result;

static int accept_once(void *arg)
{
    accept_result *a = arg;
    a->rc = rs_accept(a->lfd, NULL, NULL, SOCK_CLOEXEC);
    return a->rc < 0 ? a->rc : 0;
}

/* An at-once accept that has to wait is an ordinary wait: a scope timeout
 * ends it with -ECANCELED and the listener stays usable. */
static int cancelled_while_waiting_at_once(void *arg)
{
    (void)arg;
    int s1, s2, clients[2];
    int lfd = stale_hint_listener(false, &s1, &s2, clients);
    rs_scope *sc;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 20 }, &sc));
    accept_result a = { .lfd = lfd, .rc = 0 };
    RS_CHECK_OK(rs_spawn(sc, accept_once, &a, NULL, NULL));
    RS_CHECK_EQ(rs_scope_close(sc), -ETIMEDOUT);
    RS_CHECK_EQ(a.rc, -ECANCELED);
    RS_CHECK_EQ(rs__worker_get()->inflight, 0u);
    int c3 = connect_plain(rs_test_port_of(lfd, NULL));
    int s3 = rs_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
    RS_CHECK(s3 >= 0);
    int fds[] = { s1, s2, s3, clients[0], clients[1], c3, lfd };
    RS_CHECK_OK(close_all(fds, sizeof fds / sizeof fds[0]));
    return 0;
}

Test(io_accept_burst, an_at_once_accept_that_waits_is_cancelled_like_any_wait)
{
    RS_RUN_OK(cancelled_while_waiting_at_once, NULL);
}

typedef struct closer {
    int lfd;
    rs_task *acceptor;
} closer;

static int close_listener(void *arg)
{
    closer *c = arg;
    RS_CHECK_OK(rs_test_until_in_kernel(c->acceptor));
    RS_CHECK_OK(rs_close(c->lfd));
    return 0;
}

/* rs_close of the listener in another task ends the waiting accept with
 * -EBADF, as for any accept. */
static int closed_while_waiting_at_once(void *arg)
{
    (void)arg;
    int s1, s2, clients[2];
    int lfd = stale_hint_listener(false, &s1, &s2, clients);
    rs_scope *sc;
    RS_CHECK_OK(rs_scope_open(NULL, &sc));
    closer c = { .lfd = lfd, .acceptor = rs_current_task() };
    RS_CHECK_OK(rs_spawn(sc, close_listener, &c, NULL, NULL));
    RS_CHECK_EQ(rs_accept(lfd, NULL, NULL, SOCK_CLOEXEC), -EBADF);
    RS_CHECK_OK(rs_scope_close(sc));
    int fds[] = { s1, s2, clients[0], clients[1] };
    RS_CHECK_OK(close_all(fds, sizeof fds / sizeof fds[0]));
    return 0;
}

Test(io_accept_burst, an_at_once_accept_that_waits_ends_when_another_task_closes_the_listener)
{
    RS_RUN_OK(closed_while_waiting_at_once, NULL);
}

typedef struct budget_probe {
    int budget_seen;
    uint16_t port;
    int fd;
} budget_probe;

static int record_budget_then_connect(void *arg)
{
    budget_probe *p = arg;
    p->budget_seen = rs__worker_get()->budget;
    p->fd = connect_plain(p->port);
    return 0;
}

/* Only an accept that completes at once counts as a dispatch: one that finds
 * the queue empty and parks costs the budget what any parking call costs
 * (the switch to the next task), not one more. */
static int waiting_at_once_accept_costs_one_dispatch(void *arg)
{
    (void)arg;
    int s1, s2, clients[2];
    int lfd = stale_hint_listener(false, &s1, &s2, clients);
    rs_scope *sc;
    RS_CHECK_OK(rs_scope_open(NULL, &sc));
    budget_probe p = { .port = rs_test_port_of(lfd, NULL), .fd = -1 };
    RS_CHECK_OK(rs_spawn(sc, record_budget_then_connect, &p, NULL, NULL));
    rs__worker *w = rs__worker_get();
    while (w->budget < 4)
        RS_CHECK_OK(rs_yield()); /* far from a kernel trip: the probe runs right after the park */
    int before = w->budget;
    int s3 = rs_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
    RS_CHECK(s3 >= 0);
    RS_CHECK_EQ(p.budget_seen, before - 1);
    RS_CHECK_OK(rs_scope_close(sc));
    int fds[] = { s1, s2, s3, clients[0], clients[1], p.fd, lfd };
    RS_CHECK_OK(close_all(fds, sizeof fds / sizeof fds[0]));
    return 0;
}

Test(io_accept_burst, an_at_once_accept_that_waits_costs_one_dispatch)
{
    RS_RUN_OK(waiting_at_once_accept_costs_one_dispatch, NULL);
}
