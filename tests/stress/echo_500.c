/* 500 concurrent connections, each doing 1,000 round trips of 64 bytes
 * through an echo server task: every byte must come back, in order. Server
 * and clients are tasks of one runtime, so every operation of both sides goes
 * through the same ring and the same batches. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "support.h"

enum { CONNECTIONS = 500, ROUND_TRIPS = 1000, MSG = 64 };

typedef struct echo_test {
    int listen_fd;
    uint16_t port;
    rs_scope *server;                    /* acceptor + a task per connection; cancelled when clients are done */
    unsigned long verified[CONNECTIONS]; /* round trips each client checked */
} echo_test;

typedef struct client_arg {
    echo_test *t;
    int index;
} client_arg;

/* ------------------------------------------------------------ server */

static int serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    for (;;) {
        ssize_t n = rs_recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = rs_send(fd, buf + off, (size_t)(n - off), 0);
            if (w <= 0) {
                rs_close(fd);
                return w == -ECANCELED ? 0 : (int)w;
            }
            off += w;
        }
    }
    rs_close(fd);
    return 0;
}

static int acceptor(void *arg)
{
    echo_test *t = arg;
    for (;;) {
        int fd = rs_accept(t->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd == -ECANCELED)
            return 0;
        RS_CHECK(fd >= 0);
        RS_CHECK_OK(rs_spawn(t->server, serve, (void *)(intptr_t)fd, &(rs_spawn_opts){ .stack_size = 64 << 10 },
                             NULL));
    }
}

/* ------------------------------------------------------------ clients */

static void fill(unsigned char *msg, int client, int round)
{
    for (int i = 0; i < MSG; i++)
        msg[i] = (unsigned char)(client * 7 + round * 13 + i);
}

static int client(void *arg)
{
    client_arg *ca = arg;
    int fd = rs_tcp_connect("127.0.0.1", ca->t->port, 10000);
    RS_CHECK(fd >= 0);
    unsigned char out[MSG], in[MSG];
    for (int r = 0; r < ROUND_TRIPS; r++) {
        fill(out, ca->index, r);
        for (size_t off = 0; off < MSG;) {
            ssize_t w = rs_send(fd, out + off, MSG - off, 0);
            RS_CHECK(w > 0);
            off += (size_t)w;
        }
        for (size_t off = 0; off < MSG;) {
            ssize_t n = rs_recv(fd, in + off, MSG - off, 0);
            RS_CHECK(n > 0);
            off += (size_t)n;
        }
        RS_CHECK(memcmp(in, out, MSG) == 0);
        ca->t->verified[ca->index]++;
    }
    RS_CHECK_OK(rs_close(fd));
    return 0;
}

static int run_echo(void *arg)
{
    echo_test *t = arg;
    static client_arg args[CONNECTIONS];
    t->listen_fd = rs_tcp_listen("127.0.0.1", 0, CONNECTIONS);
    RS_CHECK(t->listen_fd >= 0);
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    RS_CHECK_EQ(getsockname(t->listen_fd, (struct sockaddr *)&sin, &len), 0);
    t->port = ntohs(sin.sin_port);

    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .name = "server" }, &t->server));
    RS_CHECK_OK(rs_spawn(t->server, acceptor, t, NULL, NULL));

    rs_scope *clients;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .name = "clients", .timeout_ms = 100000 }, &clients));
    for (int i = 0; i < CONNECTIONS; i++) {
        args[i] = (client_arg){ .t = t, .index = i };
        RS_CHECK_OK(rs_spawn(clients, client, &args[i], &(rs_spawn_opts){ .stack_size = 64 << 10 }, NULL));
    }
    int crc = rs_scope_close(clients);

    rs_scope_cancel(t->server);
    RS_CHECK_OK(rs_scope_close(t->server));
    RS_CHECK_OK(rs_close(t->listen_fd));
    RS_CHECK_OK(crc);
    return 0;
}

/* Two descriptors per connection live in this process. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 4 * CONNECTIONS) {
        rl.rlim_cur = rl.rlim_max < 4 * CONNECTIONS ? rl.rlim_max : 4 * CONNECTIONS;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    cr_assert_geq(rl.rlim_cur, 2 * CONNECTIONS + 64, "need %d descriptors", 2 * CONNECTIONS + 64);
}

Test(echo_500, every_byte_of_500x1000_round_trips_is_echoed, .timeout = 120)
{
    raise_fd_limit();
    echo_test *t = calloc(1, sizeof *t);
    cr_assert_not_null(t);
    RS_RUN_OK(run_echo, t);
    unsigned long total = 0;
    for (int i = 0; i < CONNECTIONS; i++) {
        cr_expect_eq(t->verified[i], ROUND_TRIPS, "client %d verified %lu round trips", i, t->verified[i]);
        total += t->verified[i];
    }
    cr_assert_eq(total, (unsigned long)CONNECTIONS * ROUND_TRIPS);
    free(t);
}
