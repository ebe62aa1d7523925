/* rs_recv, rs_send, rs_accept, rs_connect: counts, EOF, errors, no SIGPIPE. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <string.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "io_support.h"

TestSuite(io_socket, .timeout = 20);

/* A connected TCP pair over loopback, made with the calls under test. */
static int tcp_pair(int *client, int *server)
{
    int lfd = rs_tcp_listen("127.0.0.1", 0, 16);
    RS_CHECK(lfd >= 0);
    struct sockaddr_in peer;
    socklen_t plen = sizeof peer;
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    RS_CHECK(c >= 0);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(rs_test_port_of(lfd, NULL)),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    RS_CHECK_OK(rs_connect(c, (struct sockaddr *)&to, sizeof to));
    int s = rs_accept(lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
    RS_CHECK(s >= 0);
    RS_CHECK_EQ(plen, sizeof peer);
    RS_CHECK_EQ(peer.sin_family, AF_INET);
    RS_CHECK_EQ(ntohs(peer.sin_port), rs_test_port_of(c, NULL)); /* the address of the client's end */
    RS_CHECK_OK(rs_close(lfd));
    *client = c;
    *server = s;
    return 0;
}

typedef struct echo_once {
    int fd;
} echo_once;

static int echo_back(void *arg)
{
    echo_once *e = arg;
    char buf[64];
    ssize_t n = rs_recv(e->fd, buf, sizeof buf, 0);
    RS_CHECK(n > 0);
    RS_CHECK_EQ(rs_send(e->fd, buf, (size_t)n, 0), n);
    return 0;
}

static int round_trip(void *arg)
{
    (void)arg;
    int c = -1, s = -1;
    RS_CHECK_OK(tcp_pair(&c, &s));
    rs_scope *sc;
    RS_CHECK_OK(rs_scope_open(NULL, &sc));
    echo_once e = { .fd = s };
    RS_CHECK_OK(rs_spawn(sc, echo_back, &e, NULL, NULL));
    RS_CHECK_EQ(rs_send(c, "hello", 5, 0), 5);
    char buf[64] = { 0 };
    RS_CHECK_EQ(rs_recv(c, buf, sizeof buf, 0), 5); /* short read: what arrived */
    RS_CHECK(memcmp(buf, "hello", 5) == 0);
    RS_CHECK_OK(rs_scope_close(sc));

    /* EOF: the peer shut its side down. */
    RS_CHECK_EQ(shutdown(s, SHUT_WR), 0);
    RS_CHECK_EQ(rs_recv(c, buf, sizeof buf, 0), 0);
    RS_CHECK_EQ(rs_recv(c, buf, sizeof buf, 0), 0);
    RS_CHECK_OK(rs_close(c));
    RS_CHECK_OK(rs_close(s));
    return 0;
}

Test(io_socket, round_trip_short_read_and_eof)
{
    RS_RUN_OK(round_trip, NULL);
}

static int nodelay_inherited(void *arg)
{
    (void)arg;
    int c = -1, s = -1;
    RS_CHECK_OK(tcp_pair(&c, &s));
    int v = 0;
    socklen_t len = sizeof v;
    RS_CHECK_EQ(getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
    RS_CHECK(v != 0);
    RS_CHECK_OK(rs_close(c));
    RS_CHECK_OK(rs_close(s));
    return 0;
}

Test(io_socket, accepted_sockets_of_rs_tcp_listen_have_nodelay)
{
    RS_RUN_OK(nodelay_inherited, NULL);
}

/* Even with SIGPIPE's default action (kill the process) in force, sending
 * to a socket whose peer is gone answers -EPIPE. */
static int epipe_no_signal(void *arg)
{
    (void)arg;
    int sv[2];
    RS_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    RS_CHECK_OK(rs_close(sv[1]));
    struct sigaction dfl = { .sa_handler = SIG_DFL }, old;
    sigemptyset(&dfl.sa_mask);
    RS_CHECK_EQ(sigaction(SIGPIPE, &dfl, &old), 0);
    ssize_t rc1 = rs_send(sv[0], "x", 1, 0);
    ssize_t rc2 = rs_send(sv[0], "x", 1, 0);
    sigaction(SIGPIPE, &old, NULL);
    RS_CHECK_EQ(rc1, -EPIPE);
    RS_CHECK_EQ(rc2, -EPIPE);
    RS_CHECK_OK(rs_close(sv[0]));
    return 0;
}

Test(io_socket, send_to_a_closed_peer_is_epipe_without_sigpipe)
{
    RS_RUN_OK(epipe_no_signal, NULL);
}

/* The peer aborts the connection (RST): the next receive reports it. */
static int reset_by_peer(void *arg)
{
    (void)arg;
    int c = -1, s = -1;
    RS_CHECK_OK(tcp_pair(&c, &s));
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    RS_CHECK_EQ(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    RS_CHECK_OK(rs_close(s)); /* linger 0: close sends RST */
    char buf[8];
    RS_CHECK_EQ(rs_recv(c, buf, sizeof buf, 0), -ECONNRESET);
    RS_CHECK_OK(rs_close(c));
    return 0;
}

Test(io_socket, reset_connection_is_econnreset)
{
    RS_RUN_OK(reset_by_peer, NULL);
}

static int refused(void *arg)
{
    (void)arg;
    /* A port that was just free: nothing listens there. */
    int lfd = rs_tcp_listen("127.0.0.1", 0, 1);
    RS_CHECK(lfd >= 0);
    uint16_t port = rs_test_port_of(lfd, NULL);
    RS_CHECK_OK(rs_close(lfd));
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    RS_CHECK(c >= 0);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    RS_CHECK_EQ(rs_connect(c, (struct sockaddr *)&to, sizeof to), -ECONNREFUSED);
    RS_CHECK_OK(rs_close(c));
    return 0;
}

Test(io_socket, connect_to_a_closed_port_is_econnrefused)
{
    RS_RUN_OK(refused, NULL);
}

static int dontwait(void *arg)
{
    (void)arg;
    int sv[2];
    RS_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    char buf[8];
    RS_CHECK_EQ(rs_recv(sv[0], buf, sizeof buf, MSG_DONTWAIT), -EAGAIN);
    RS_CHECK_EQ(rs_send(sv[1], "ab", 2, 0), 2);
    RS_CHECK_EQ(rs_recv(sv[0], buf, sizeof buf, MSG_DONTWAIT), 2);
    /* MSG_PEEK leaves the data where it is. */
    RS_CHECK_EQ(rs_send(sv[1], "cd", 2, 0), 2);
    RS_CHECK_EQ(rs_recv(sv[0], buf, sizeof buf, MSG_PEEK), 2);
    RS_CHECK_EQ(rs_recv(sv[0], buf, sizeof buf, 0), 2);
    RS_CHECK(memcmp(buf, "cd", 2) == 0);
    RS_CHECK_OK(rs_close(sv[0]));
    RS_CHECK_OK(rs_close(sv[1]));
    return 0;
}

Test(io_socket, flags_reach_the_kernel)
{
    RS_RUN_OK(dontwait, NULL);
}

/* A socket buffer smaller than the message: send returns what fit. */
static int short_send(void *arg)
{
    (void)arg;
    int sv[2];
    RS_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int small = 4096;
    RS_CHECK_EQ(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    enum { N = 1 << 20 };
    char *big = calloc(1, N);
    RS_CHECK(big);
    ssize_t n = rs_send(sv[0], big, N, 0);
    RS_CHECK(n > 0 && n < N);
    free(big);
    RS_CHECK_OK(rs_close(sv[0]));
    RS_CHECK_OK(rs_close(sv[1]));
    return 0;
}

Test(io_socket, short_send_is_a_count)
{
    RS_RUN_OK(short_send, NULL);
}

static int bad_arguments(void *arg)
{
    (void)arg;
    char buf[8];
    int sv[2];
    RS_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    RS_CHECK_EQ(rs_recv(sv[0], NULL, 8, 0), -EINVAL);
    RS_CHECK_EQ(rs_send(sv[0], NULL, 8, 0), -EINVAL);
    RS_CHECK_EQ(rs_recv(-1, buf, sizeof buf, 0), -EBADF);
    RS_CHECK_EQ(rs_send(-1, buf, sizeof buf, 0), -EBADF);
    RS_CHECK_EQ(rs_accept(-1, NULL, NULL, 0), -EBADF);
    RS_CHECK_EQ(rs_connect(-1, (struct sockaddr *)buf, sizeof buf), -EBADF);
    RS_CHECK_EQ(rs_accept(sv[0], (struct sockaddr *)buf, NULL, 0), -EINVAL);
    RS_CHECK_EQ(rs_accept(sv[0], NULL, NULL, 0x40000000), -EINVAL);
    RS_CHECK_EQ(rs_connect(sv[0], NULL, 16), -EINVAL);
    RS_CHECK_EQ(rs_accept(sv[0], NULL, NULL, 0), -EINVAL); /* not listening */
    RS_CHECK_OK(rs_close(sv[1]));
    RS_CHECK_OK(rs_close(sv[0]));
    RS_CHECK_EQ(rs_recv(sv[0], buf, sizeof buf, 0), -EBADF); /* closed */
    int fd = rs_open("/dev/null", O_RDONLY | O_CLOEXEC, 0);
    RS_CHECK(fd >= 0);
    RS_CHECK_EQ(rs_recv(fd, buf, sizeof buf, 0), -ENOTSOCK);
    RS_CHECK_OK(rs_close(fd));
    return 0;
}

Test(io_socket, bad_arguments_and_descriptors)
{
    RS_RUN_OK(bad_arguments, NULL);
}

/* A datagram sent while the receiver's queue is full waits for room and then
 * goes out whole. (An AF_UNIX datagram send consumes its message before it
 * finds the queue full; the ring's own retry then sent an empty datagram and
 * reported 0.) With MSG_DONTWAIT the full queue is -EAGAIN. */
typedef struct dgram_case {
    int tx;
    ssize_t result;
} dgram_case;

static int send_y(void *arg)
{
    dgram_case *c = arg;
    c->result = rs_send(c->tx, "y", 1, 0);
    return 0;
}

static int dgram_full_queue(void *arg)
{
    int sender_type_flags = *(int *)arg;
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    /* An abstract address: nothing in the file system, unique per process. */
    socklen_t addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
                                    (size_t)snprintf(addr.sun_path + 1, sizeof addr.sun_path - 1,
                                                     "ringscope-dgram-%d", (int)getpid()));
    int rx = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int tx = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | sender_type_flags, 0);
    RS_CHECK(rx >= 0 && tx >= 0);
    RS_CHECK_EQ(bind(rx, (struct sockaddr *)&addr, addrlen), 0);
    RS_CHECK_EQ(connect(tx, (struct sockaddr *)&addr, addrlen), 0);
    int queued = 0;
    while (send(tx, "x", 1, MSG_DONTWAIT) == 1)
        queued++;
    RS_CHECK(queued > 0);
    RS_CHECK_EQ(rs_send(tx, "z", 1, MSG_DONTWAIT), -EAGAIN);

    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 10000 }, &s));
    dgram_case c = { .tx = tx };
    rs_task *sender;
    RS_CHECK_OK(rs_spawn(s, send_y, &c, NULL, &sender));
    RS_CHECK_OK(rs_test_until_in_kernel(sender));
    char buf[8];
    for (int i = 0; i < queued; i++) {
        RS_CHECK_EQ(recv(rx, buf, sizeof buf, MSG_DONTWAIT), 1);
        RS_CHECK_EQ(buf[0], 'x');
    }
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(c.result, 1);
    RS_CHECK_EQ(rs_recv(rx, buf, sizeof buf, 0), 1);
    RS_CHECK_EQ(buf[0], 'y');
    RS_CHECK_EQ(recv(rx, buf, sizeof buf, MSG_DONTWAIT), -1); /* nothing else was sent */
    RS_CHECK_OK(rs_close(tx));
    RS_CHECK_OK(rs_close(rx));
    return 0;
}

Test(io_socket, datagram_to_a_full_queue_waits_and_goes_out_whole)
{
    int blocking = 0, nonblocking = SOCK_NONBLOCK;
    RS_RUN_OK(dgram_full_queue, &blocking);
    RS_RUN_OK(dgram_full_queue, &nonblocking);
}

/* rs_connect of a non-blocking AF_UNIX socket to a listener whose backlog is
 * full waits for room as a blocking one does (the kernel answers -EAGAIN
 * there and announces no readiness), ends at a cancellation, and leaves the
 * socket non-blocking as it found it. */
typedef struct unix_connect_case {
    int fd;
    struct sockaddr_un addr;
    socklen_t addrlen;
    int result;
    bool done;
} unix_connect_case;

static int connect_unix(void *arg)
{
    unix_connect_case *c = arg;
    c->result = rs_connect(c->fd, (struct sockaddr *)&c->addr, c->addrlen);
    c->done = true;
    return 0;
}

static int unix_connect_full_backlog(void *arg)
{
    bool cancel = *(bool *)arg;
    unix_connect_case c = { .addr = { .sun_family = AF_UNIX } };
    c.addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
                            (size_t)snprintf(c.addr.sun_path + 1, sizeof c.addr.sun_path - 1,
                                             "ringscope-connect-%d", (int)getpid()));
    int lsn = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    RS_CHECK(lsn >= 0);
    RS_CHECK_EQ(bind(lsn, (struct sockaddr *)&c.addr, c.addrlen), 0);
    RS_CHECK_EQ(listen(lsn, 0), 0);
    int filler = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    RS_CHECK_EQ(connect(filler, (struct sockaddr *)&c.addr, c.addrlen), 0); /* the backlog is now full */
    c.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    RS_CHECK(c.fd >= 0);

    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 10000 }, &s));
    rs_task *t;
    RS_CHECK_OK(rs_spawn(s, connect_unix, &c, NULL, &t));
    RS_CHECK_OK(rs_test_until_in_kernel(t));
    RS_CHECK_OK(rs_sleep(50));
    RS_CHECK(!c.done); /* still waiting for room, not -EAGAIN */
    if (cancel) {
        rs_task_cancel(t);
    } else {
        int conn = accept(lsn, NULL, NULL); /* the filler's: room for one more */
        RS_CHECK(conn >= 0);
        close(conn);
    }
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(c.result, cancel ? -ECANCELED : 0);
    RS_CHECK(fcntl(c.fd, F_GETFL) & O_NONBLOCK);
    RS_CHECK_OK(rs_close(c.fd));
    RS_CHECK_OK(rs_close(filler));
    RS_CHECK_OK(rs_close(lsn));
    return 0;
}

Test(io_socket, nonblocking_unix_connect_waits_for_room_in_the_backlog)
{
    bool cancel = false;
    RS_RUN_OK(unix_connect_full_backlog, &cancel);
}

Test(io_socket, nonblocking_unix_connect_waiting_for_room_ends_at_a_cancellation)
{
    bool cancel = true;
    RS_RUN_OK(unix_connect_full_backlog, &cancel);
}

/* rs_read and rs_write work on sockets too. */
static int read_write_socket(void *arg)
{
    (void)arg;
    int sv[2];
    RS_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    RS_CHECK_EQ(rs_write(sv[0], "xyz", 3, -1), 3);
    char buf[8];
    RS_CHECK_EQ(rs_read(sv[1], buf, sizeof buf, -1), 3);
    RS_CHECK_OK(rs_close(sv[0]));
    RS_CHECK_OK(rs_close(sv[1]));
    return 0;
}

Test(io_socket, read_and_write_on_sockets)
{
    RS_RUN_OK(read_write_socket, NULL);
}

/* recv(2) with MSG_ERRQUEUE never waits: an empty error queue is -EAGAIN at
 * once. Its readiness is POLLERR, not POLLIN, so waiting for POLLIN and
 * trying again spins (the kernel answers -EAGAIN while the socket stays
 * readable for its ordinary data) until something else ends the call. */
static int recv_errqueue(void *arg)
{
    (void)arg;
    int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    RS_CHECK(u >= 0);
    int one = 1;
    RS_CHECK_EQ(setsockopt(u, IPPROTO_IP, IP_RECVERR, &one, sizeof one), 0);
    struct sockaddr_in self = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof self;
    RS_CHECK_EQ(bind(u, (struct sockaddr *)&self, sizeof self), 0);
    RS_CHECK_EQ(getsockname(u, (struct sockaddr *)&self, &len), 0);
    char buf[64];
    rs_scope *s;
    /* Nothing at all pending: the kernel's own wait inside the ring (a poll
     * armed after its -EAGAIN) must not happen either. */
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 2000 }, &s));
    ssize_t rc = rs_recv(u, buf, sizeof buf, MSG_ERRQUEUE);
    RS_CHECK_EQ(rs_scope_close(s), 0);
    RS_CHECK_EQ(rc, -EAGAIN);

    /* Ordinary data pending: the socket is readable, its error queue empty. */
    RS_CHECK_EQ(sendto(u, "d", 1, 0, (struct sockaddr *)&self, sizeof self), 1);
    RS_CHECK(rs_poll(u, POLLIN, 2000) & POLLIN);
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 2000 }, &s));
    rc = rs_recv(u, buf, sizeof buf, MSG_ERRQUEUE);
    RS_CHECK_EQ(rs_scope_close(s), 0);
    RS_CHECK_EQ(rc, -EAGAIN);

    /* An error queued (port unreachable from a closed port) is received. */
    int gone = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in closed = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    len = sizeof closed;
    RS_CHECK_EQ(bind(gone, (struct sockaddr *)&closed, sizeof closed), 0);
    RS_CHECK_EQ(getsockname(gone, (struct sockaddr *)&closed, &len), 0);
    close(gone);
    RS_CHECK_EQ(sendto(u, "e", 1, 0, (struct sockaddr *)&closed, sizeof closed), 1);
    RS_CHECK(rs_poll(u, 0, 2000) & POLLERR);
    RS_CHECK_EQ(rs_recv(u, buf, sizeof buf, MSG_ERRQUEUE), 1);
    RS_CHECK_EQ(rs_recv(u, buf, sizeof buf, 0), 1); /* the ordinary datagram is still there */
    RS_CHECK_OK(rs_close(u));
    return 0;
}

Test(io_socket, recv_from_an_empty_error_queue_is_eagain_without_spinning)
{
    RS_RUN_OK(recv_errqueue, NULL);
}
