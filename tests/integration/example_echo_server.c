/* The echo_server example as a user runs it: a separate process that prints
 * its address, echoes for several clients at once, and on SIGTERM or SIGINT
 * cancels its root scope and exits 0, closing every connection (each client
 * sees end of file) and its listening socket. Bad command lines exit 2.
 *
 * The test drives the program from outside with plain blocking sockets; every
 * wait is bounded (poll with a limit, a pidfd for the exit). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "integration/example_process.h"

#ifndef RS_EXAMPLE_ECHO_SERVER
#error "RS_EXAMPLE_ECHO_SERVER: the path of the built example (tests/CMakeLists.txt)"
#endif

/* Reads stdout until its first line is complete; returns the port in it. */
static uint16_t read_port(example_proc *p)
{
    while (!strchr(p->out_text, '\n')) {
        struct pollfd pfd = { .fd = p->out, .events = POLLIN };
        cr_assert_eq(poll(&pfd, 1, LIMIT_MS), 1, "no address printed within %d ms", LIMIT_MS);
        cr_assert(drain_once(p->out, p->out_text, sizeof p->out_text, &p->out_len), "stdout closed early");
    }
    unsigned port = 0;
    const char *at = strstr(p->out_text, " port ");
    cr_assert(at && sscanf(at, " port %u", &port) == 1 && port > 0 && port < 65536, "unexpected first line: %s",
              p->out_text);
    return (uint16_t)port;
}

static int connect_to(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "connect: %s", strerror(errno));
    return fd;
}

/* Reads exactly len bytes within the limit; returns what recv returned last
 * (len on success, 0 at end of file). */
static ssize_t recv_exactly(int fd, char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        cr_assert_eq(poll(&pfd, 1, LIMIT_MS), 1, "no data within %d ms", LIMIT_MS);
        ssize_t n = recv(fd, buf + got, len - got, 0);
        if (n <= 0)
            return n;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

static void send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        cr_assert_gt(n, 0, "send: %s", strerror(errno));
        buf += n;
        len -= (size_t)n;
    }
}

/* A message through the server and back, checked byte for byte. While one
 * client sends a large message, the server must keep reading it as it echoes
 * (each side of the socket pair buffers only so much), so the test sends and
 * receives in turns of one socket buffer. */
static void echo_round_trip(int fd, size_t len, unsigned seed)
{
    char *msg = malloc(len), *back = malloc(len);
    cr_assert(msg && back);
    for (size_t i = 0; i < len; i++)
        msg[i] = (char)(seed * 131 + i * 7);
    for (size_t off = 0; off < len;) {
        size_t n = len - off < 32768 ? len - off : 32768;
        send_all(fd, msg + off, n);
        cr_assert_eq(recv_exactly(fd, back + off, n), (ssize_t)n, "the echo stopped short");
        off += n;
    }
    cr_assert_eq(memcmp(msg, back, len), 0, "the echo differs from the message");
    free(msg);
    free(back);
}

static void expect_eof(int fd)
{
    char c;
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    cr_assert_eq(poll(&pfd, 1, LIMIT_MS), 1, "connection not closed within %d ms", LIMIT_MS);
    ssize_t n = recv(fd, &c, 1, 0);
    cr_assert(n == 0 || (n < 0 && errno == ECONNRESET), "expected end of file, got %zd", n);
}

static void stops_on(int sig, const char *signame)
{
    example_proc p;
    start(&p, RS_EXAMPLE_ECHO_SERVER, (char *[]){ "echo_server", "127.0.0.1", "0", NULL });
    uint16_t port = read_port(&p);

    enum {
        CLIENTS = 3
    };
    int fds[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        fds[i] = connect_to(port);
    /* All three at once, interleaved; one with a message larger than any
     * socket buffer. */
    for (int i = 0; i < CLIENTS; i++)
        echo_round_trip(fds[i], 64, (unsigned)i);
    echo_round_trip(fds[1], 1 << 20, 99);
    for (int i = CLIENTS - 1; i >= 0; i--)
        echo_round_trip(fds[i], 1000, (unsigned)i + 10);

    /* Every connection task is now blocked in rs_recv; the acceptor in
     * rs_accept. */
    cr_assert_eq(kill(p.pid, sig), 0);
    int status = wait_exit(&p);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %#x; stderr:\n%s", status, p.err_text);
    cr_expect(strstr(p.err_text, signame), "stderr does not name the signal:\n%s", p.err_text);
    cr_expect(strstr(p.err_text, "stopped after 3 connections"), "stderr:\n%s", p.err_text);
    for (int i = 0; i < CLIENTS; i++) {
        expect_eof(fds[i]);
        close(fds[i]);
    }
    /* The listening socket is gone with it. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_expect_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), -1);
    cr_expect_eq(errno, ECONNREFUSED);
    close(fd);
}

TestSuite(example_echo_server, .timeout = 60);

Test(example_echo_server, sigterm_closes_every_connection_and_exits_zero)
{
    stops_on(SIGTERM, strsignal(SIGTERM));
}

Test(example_echo_server, sigint_closes_every_connection_and_exits_zero)
{
    stops_on(SIGINT, strsignal(SIGINT));
}

Test(example_echo_server, a_client_that_leaves_does_not_disturb_the_others)
{
    example_proc p;
    start(&p, RS_EXAMPLE_ECHO_SERVER, (char *[]){ "echo_server", NULL });
    uint16_t port = read_port(&p);
    int stays = connect_to(port), leaves = connect_to(port);
    echo_round_trip(leaves, 100, 1);
    /* SO_LINGER 0: the close resets the connection instead of ending it. */
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    cr_assert_eq(setsockopt(leaves, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(leaves);
    echo_round_trip(stays, 100, 2);
    cr_assert_eq(kill(p.pid, SIGTERM), 0);
    int status = wait_exit(&p);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %#x; stderr:\n%s", status, p.err_text);
    cr_expect(strstr(p.err_text, "stopped after 2 connections"), "stderr:\n%s", p.err_text);
    expect_eof(stays);
    close(stays);
}

Test(example_echo_server, bad_command_lines_exit_2)
{
    char *const cases[][4] = {
        { "echo_server", "not-an-address", NULL },
        { "echo_server", "127.0.0.1", "70000", NULL },
        { "echo_server", "127.0.0.1", "-1", NULL },
        { "echo_server", "a", "1", "extra" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[5] = { 0 };
        memcpy(argv, cases[i], sizeof cases[i]);
        example_proc p;
        start(&p, RS_EXAMPLE_ECHO_SERVER, argv);
        int status = wait_exit(&p);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 2, "case %zu: exit status %#x; stderr:\n%s", i, status,
                  p.err_text);
        cr_expect(strstr(p.err_text, "usage"), "case %zu: no usage on stderr:\n%s", i, p.err_text);
    }
}
