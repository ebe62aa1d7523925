/* rs_tcp_listen, rs_tcp_connect: addresses, errors, and a connect timeout
 * that really bounds the connect. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io_support.h"

TestSuite(io_tcp, .timeout = 30);

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Listens on `listen_host`, connects to `connect_host`, accepts, and
 * exchanges a message both ways. *family gets the connected socket's family. */
static int connect_pair(const char *listen_host, const char *connect_host, int *family)
{
    int lfd = rs_tcp_listen(listen_host, 0, 8);
    RS_CHECK(lfd >= 0);
    uint16_t port = rs_test_port_of(lfd, NULL);
    RS_CHECK(port != 0);
    int c = rs_tcp_connect(connect_host, port, 2000);
    RS_CHECK(c >= 0);
    int s = rs_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
    RS_CHECK(s >= 0);
    int nodelay = 0;
    socklen_t len = sizeof nodelay;
    RS_CHECK_EQ(getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), 0);
    RS_CHECK(nodelay);
    RS_CHECK_EQ(rs_send(c, "ping", 4, 0), 4);
    char buf[8];
    RS_CHECK_EQ(rs_recv(s, buf, sizeof buf, 0), 4);
    RS_CHECK_EQ(rs_send(s, "pong", 4, 0), 4);
    RS_CHECK_EQ(rs_recv(c, buf, sizeof buf, 0), 4);
    RS_CHECK(memcmp(buf, "pong", 4) == 0);
    rs_test_port_of(c, family);
    RS_CHECK_OK(rs_close(s));
    RS_CHECK_OK(rs_close(c));
    RS_CHECK_OK(rs_close(lfd));
    return 0;
}

typedef struct pair_case {
    const char *listen_host, *connect_host;
    int family;
} pair_case;

static int run_pair(void *arg)
{
    pair_case *pc = arg;
    int family = 0;
    RS_CHECK_OK(connect_pair(pc->listen_host, pc->connect_host, &family));
    RS_CHECK_EQ(family, pc->family);
    return 0;
}

Test(io_tcp, numeric_ipv4)
{
    RS_RUN_OK(run_pair, (&(pair_case){ "127.0.0.1", "127.0.0.1", AF_INET }));
}

Test(io_tcp, numeric_ipv6_with_and_without_brackets)
{
    RS_RUN_OK(run_pair, (&(pair_case){ "::1", "::1", AF_INET6 }));
    RS_RUN_OK(run_pair, (&(pair_case){ "[::1]", "[::1]", AF_INET6 }));
}

Test(io_tcp, localhost)
{
    RS_RUN_OK(run_pair, (&(pair_case){ "localhost", "localhost", AF_INET }));
}

Test(io_tcp, any_address)
{
    RS_RUN_OK(run_pair, (&(pair_case){ NULL, "127.0.0.1", AF_INET }));
    RS_RUN_OK(run_pair, (&(pair_case){ "", "127.0.0.1", AF_INET }));
    RS_RUN_OK(run_pair, (&(pair_case){ "0.0.0.0", "127.0.0.1", AF_INET }));
    RS_RUN_OK(run_pair, (&(pair_case){ "::", "::1", AF_INET6 }));
}

/* "localhost" is 127.0.0.1 first, then ::1: a server listening on ::1 only
 * is still reached (127.0.0.1 refuses on that port). */
static int localhost_falls_back(void *arg)
{
    (void)arg;
    int lfd = rs_tcp_listen("::1", 0, 8);
    RS_CHECK(lfd >= 0);
    int c = rs_tcp_connect("localhost", rs_test_port_of(lfd, NULL), 2000);
    RS_CHECK(c >= 0);
    int family = 0;
    rs_test_port_of(c, &family);
    RS_CHECK_EQ(family, AF_INET6);
    RS_CHECK_OK(rs_close(c));
    RS_CHECK_OK(rs_close(lfd));
    return 0;
}

Test(io_tcp, localhost_falls_back_to_ipv6)
{
    RS_RUN_OK(localhost_falls_back, NULL);
}

static int bad_arguments(void *arg)
{
    (void)arg;
    int before = open_fds();
    RS_CHECK_EQ(rs_tcp_listen("example.com", 0, 1), -EINVAL); /* names are never looked up */
    RS_CHECK_EQ(rs_tcp_listen("256.1.1.1", 0, 1), -EINVAL);
    RS_CHECK_EQ(rs_tcp_listen("[::1", 0, 1), -EINVAL);
    RS_CHECK_EQ(rs_tcp_listen("[127.0.0.1]", 0, 1), -EINVAL); /* brackets are for IPv6 alone */
    RS_CHECK_EQ(rs_tcp_connect("[127.0.0.1]", 80, 100), -EINVAL);
    RS_CHECK_EQ(rs_tcp_listen("127.0.0.1", 0, -1), -EINVAL);
    RS_CHECK_EQ(rs_tcp_connect("example.com", 80, 100), -EINVAL);
    RS_CHECK_EQ(rs_tcp_connect(NULL, 80, 100), -EINVAL);
    RS_CHECK_EQ(rs_tcp_connect("", 80, 100), -EINVAL);
    RS_CHECK_EQ(rs_tcp_connect("127.0.0.1", 0, 100), -EINVAL);
    RS_CHECK_EQ(rs_tcp_connect("127.0.0.1", 80, -1), -EINVAL);
    RS_CHECK_EQ(open_fds(), before);
    return 0;
}

Test(io_tcp, bad_arguments_are_einval)
{
    RS_RUN_OK(bad_arguments, NULL);
}

static int in_use(void *arg)
{
    (void)arg;
    int a = rs_tcp_listen("127.0.0.1", 0, 4);
    RS_CHECK(a >= 0);
    int b = rs_tcp_listen("127.0.0.1", rs_test_port_of(a, NULL), 4);
    RS_CHECK_EQ(b, -EADDRINUSE);
    RS_CHECK_OK(rs_close(a));
    return 0;
}

Test(io_tcp, port_in_use_is_eaddrinuse)
{
    RS_RUN_OK(in_use, NULL);
}

static int refused(void *arg)
{
    (void)arg;
    int lfd = rs_tcp_listen("127.0.0.1", 0, 1);
    RS_CHECK(lfd >= 0);
    uint16_t port = rs_test_port_of(lfd, NULL);
    RS_CHECK_OK(rs_close(lfd));
    int before = open_fds();
    int64_t t0 = rs_now_ms();
    RS_CHECK_EQ(rs_tcp_connect("127.0.0.1", port, 5000), -ECONNREFUSED);
    RS_CHECK_EQ(rs_tcp_connect("localhost", port, 5000), -ECONNREFUSED); /* both addresses tried */
    RS_CHECK(rs_now_ms() - t0 < 1000);
    RS_CHECK_EQ(open_fds(), before);
    return 0;
}

Test(io_tcp, nothing_listening_is_econnrefused)
{
    RS_RUN_OK(refused, NULL);
}

static int connect_times_out(void *arg)
{
    (void)arg;
    rs_test_blackhole b = { 0 };
    RS_CHECK_OK(rs_test_blackhole_open(&b, "127.0.0.1"));
    int before = open_fds();
    int64_t t0 = rs_now_ms();
    int rc = rs_tcp_connect("127.0.0.1", b.port, 150);
    int64_t took = rs_now_ms() - t0;
    RS_CHECK_EQ(rc, -ETIMEDOUT);
    RS_CHECK(took >= 149);
    RS_CHECK(took < 400);
    RS_CHECK_EQ(open_fds(), before); /* the half-open socket was closed */
    rs_test_blackhole_close(&b);
    return 0;
}

Test(io_tcp, connect_timeout_bounds_the_connect)
{
    RS_RUN_OK(connect_times_out, NULL);
}

static int connect_cancelled(void *arg)
{
    (void)arg;
    rs_test_blackhole b = { 0 };
    RS_CHECK_OK(rs_test_blackhole_open(&b, "127.0.0.1"));
    int before = open_fds();
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 40 }, &s));
    int64_t t0 = rs_now_ms();
    RS_CHECK_EQ(rs_tcp_connect("127.0.0.1", b.port, 0), -ECANCELED); /* 0: no limit of its own */
    RS_CHECK(rs_now_ms() - t0 < 300);
    RS_CHECK_EQ(rs_scope_close(s), -ETIMEDOUT);
    RS_CHECK_EQ(open_fds(), before);
    rs_test_blackhole_close(&b);
    return 0;
}

Test(io_tcp, connect_is_a_cancellation_point)
{
    RS_RUN_OK(connect_cancelled, NULL);
}

/* The time limit bounds the connect for an IPv6 literal, bracketed or not,
 * and for "localhost" (no resolver involved), as for IPv4. */
static int connect_limits_on_ipv6_and_localhost(void *arg)
{
    (void)arg;
    static const struct {
        const char *listen, *connect;
    } cases[] = { { "::1", "::1" }, { "::1", "[::1]" }, { "127.0.0.1", "localhost" } };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rs_test_blackhole b = { 0 };
        RS_CHECK_OK(rs_test_blackhole_open(&b, cases[i].listen));
        int64_t t0 = rs_now_ms();
        RS_CHECK_EQ(rs_tcp_connect(cases[i].connect, b.port, 80), -ETIMEDOUT);
        int64_t took = rs_now_ms() - t0;
        RS_CHECK(took >= 79);
        RS_CHECK(took < 500);
        rs_test_blackhole_close(&b);
    }
    return 0;
}

Test(io_tcp, connect_limit_holds_for_ipv6_literals_and_localhost)
{
    RS_RUN_OK(connect_limits_on_ipv6_and_localhost, NULL);
}

/* "localhost" falls back to ::1 only when IPv4 loopback cannot be used at
 * all. A port already taken on 127.0.0.1 is -EADDRINUSE, as for any other
 * host: a second server silently listening on ::1 would split "localhost"
 * between two servers (IPv4 clients reach the first one). */
static int localhost_port_taken(void *arg)
{
    (void)arg;
    int a = rs_tcp_listen("127.0.0.1", 0, 4);
    RS_CHECK(a >= 0);
    int b = rs_tcp_listen("localhost", rs_test_port_of(a, NULL), 4);
    if (b >= 0)
        close(b);
    RS_CHECK_EQ(b, -EADDRINUSE);
    RS_CHECK_OK(rs_close(a));
    return 0;
}

Test(io_tcp, listen_on_localhost_with_the_port_taken_is_eaddrinuse)
{
    RS_RUN_OK(localhost_port_taken, NULL);
}
