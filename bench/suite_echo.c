/* Suite "echo": requests per second of 64-byte ping-pong through a TCP echo
 * server, with 1, 50 and 500 connections, for three servers driven by the
 * same load client:
 *   ringscope  one runtime (one worker), a task per connection doing
 *              rs_recv/rs_send, as in examples/echo_server.c;
 *   epoll      single-threaded, edge-triggered, non-blocking (peers/epoll_echo.c);
 *   libuv      one uv_loop (peers/libuv_echo.c).
 *
 * Each repetition: a fresh listening socket on 127.0.0.1; the load client is
 * forked and pinned to one core (echo_client.c), the server runs in this
 * process pinned to another; the client connects every socket, ping-pongs
 * through a warm-up, counts the round trips that complete in the window, and
 * hands its result back through a pipe whose readability also tells the
 * server to stop. Servers alternate (ringscope, epoll, libuv, ringscope ...),
 * and the medians are compared: ratios ringscope/epoll and ringscope/libuv
 * (higher is better). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <ringscope.h>

#include "bench.h"
#include "echo.h"

/* ------------------------------------------------------------ ringscope server */

typedef struct rs_echo_server {
    int listen_fd, done_fd;
    rs_scope *root;
    rs_scope *connections;
    int error;
} rs_echo_server;

static int serve_connection(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[RS_ECHO_BUF];
    for (;;) {
        ssize_t n = rs_recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = rs_send(fd, buf + off, (size_t)(n - off), 0);
            if (w <= 0)
                goto out;
            off += w;
        }
    }
out:
    rs_close(fd);
    return 0;
}

static int accept_loop(void *arg)
{
    rs_echo_server *srv = arg;
    for (;;) {
        int fd = rs_accept(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd == -ECANCELED)
            return 0;
        if (fd < 0)
            return srv->error = fd;
        int rc = rs_spawn(srv->connections, serve_connection, (void *)(intptr_t)fd,
                          &(rs_spawn_opts){ .stack_size = 64 * 1024 }, NULL);
        if (rc) {
            rs_close(fd);
            return rc == -ECANCELED ? 0 : (srv->error = rc);
        }
    }
}

/* The client has its result: stop serving. */
static int watch_done(void *arg)
{
    rs_echo_server *srv = arg;
    int rc = rs_poll(srv->done_fd, POLLIN, 0);
    if (rc == -ECANCELED)
        return 0;
    rs_scope_cancel(srv->root);
    return rc < 0 ? rc : 0;
}

static int ringscope_server_main(void *arg)
{
    rs_echo_server *srv = arg;
    srv->root = rs_current_scope();
    int rc = rs_spawn(srv->root, watch_done, srv, NULL, NULL);
    if (rc)
        return rc;
    rc = rs_scope_open(&(rs_scope_opts){ .name = "connections", .keep_going = true }, &srv->connections);
    if (rc)
        return rc;
    rc = rs_spawn(srv->connections, accept_loop, srv, NULL, NULL);
    if (rc)
        rs_scope_cancel(srv->connections);
    int crc = rs_scope_close(srv->connections);
    if (!rc && crc != -ECANCELED)
        rc = crc;
    return rc ? rc : srv->error;
}

static int ringscope_serve(int listen_fd, int done_fd)
{
    rs_echo_server srv = { .listen_fd = listen_fd, .done_fd = done_fd };
    return rs_run(ringscope_server_main, &srv, NULL);
}

/* ------------------------------------------------------------ one measurement */

typedef int (*serve_fn)(int listen_fd, int done_fd);

typedef struct echo_case {
    unsigned connections;
    int64_t warmup_ns, window_ns;
    int server_cpu, client_cpu; /* -1: not pinned */
    char failure[200];          /* why the last measurement failed */
} echo_case;

#define MAX_REPS 1000

/* The server's CPU time per request of every repetition (the first call of
 * each case is rs_bench_compare's warm-up and is not kept). */
typedef struct echo_impl {
    echo_case *c;
    serve_fn serve;
    unsigned calls;
    double rps[MAX_REPS];
    double cpu_us[MAX_REPS];
} echo_impl;

static double thread_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int pin_self(int cpu, cpu_set_t *old)
{
    if (sched_getaffinity(0, sizeof *old, old) != 0)
        return -errno;
    if (cpu < 0)
        return 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0 ? 0 : -errno;
}

static int measure(void *arg, double *requests_per_s)
{
    echo_impl *impl = arg;
    echo_case *c = impl->c;
    uint16_t port = 0;
    int lfd = rs_echo_listen(&port);
    if (lfd < 0)
        return lfd;
    cpu_set_t old;
    int rc = pin_self(c->server_cpu, &old);
    if (rc) {
        close(lfd);
        return rc;
    }
    rs_echo_load load = { .connections = c->connections, .port = port, .warmup_ns = c->warmup_ns,
                          .window_ns = c->window_ns, .cpu = c->client_cpu, .listen_fd = lfd };
    rs_echo_client client;
    rc = rs_echo_client_start(&load, &client);
    if (rc == 0) {
        double cpu0 = thread_cpu_us();
        int serve_rc = impl->serve(lfd, client.done_fd);
        double cpu = thread_cpu_us() - cpu0;
        rs_echo_result res;
        rc = rs_echo_client_finish(&client, &res);
        if (rc) {
            snprintf(c->failure, sizeof c->failure, "%s", res.note);
        } else if (serve_rc) {
            snprintf(c->failure, sizeof c->failure, "server: %s", rs_strerror(rc = serve_rc));
        } else {
            *requests_per_s = res.requests_per_s;
            if (impl->calls > 0 && impl->calls <= MAX_REPS) {
                impl->rps[impl->calls - 1] = res.requests_per_s;
                impl->cpu_us[impl->calls - 1] = res.total ? cpu / (double)res.total : 0;
            }
            impl->calls++;
        }
    }
    sched_setaffinity(0, sizeof old, &old);
    close(lfd);
    return rc;
}

/* ------------------------------------------------------------ the suite */

/* The machine is shared: a repetition can run 2-3x faster or slower than the
 * one before it. Implementations run in turn within a round, so the ratio of
 * two implementations in the same round is steadier than the ratio of their
 * medians; both are reported. */
static void note_paired(rs_bench *b, const char *case_name, const echo_impl *a, const echo_impl *peer,
                        const char *peer_name, unsigned reps)
{
    double r[MAX_REPS];
    for (unsigned i = 0; i < reps; i++)
        r[i] = peer->rps[i] > 0 ? a->rps[i] / peer->rps[i] : 0;
    double lo = rs_bench_quantile(r, reps, 0), hi = rs_bench_quantile(r, reps, 1);
    rs_bench_note(b, "%s: ringscope/%s round by round: median %.2fx (min %.2fx, max %.2fx)", case_name, peer_name,
                  rs_bench_median(r, reps), lo, hi);
}

/* The first two cores this process may use: server, client. */
static void pick_cpus(int *server, int *client)
{
    cpu_set_t set;
    *server = *client = -1;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &set))
            continue;
        if (*server < 0)
            *server = cpu;
        else if (*client < 0) {
            *client = cpu;
            return;
        }
    }
    *server = -1; /* one core: pinning both to it would measure the scheduler */
}

/* 500 connections need two descriptors each in the two processes. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int run_echo(rs_bench *b)
{
    static const unsigned connections[] = { 1, 50, 500 };
    raise_fd_limit();
    echo_case c = {
        .warmup_ns = (int64_t)rs_bench_pick(b, 200, 50) * 1000000,
        .window_ns = (int64_t)rs_bench_pick(b, 500, 200) * 1000000,
    };
    pick_cpus(&c.server_cpu, &c.client_cpu);
    if (c.server_cpu >= 0)
        rs_bench_note(b, "server pinned to cpu %d, load client (separate process) to cpu %d", c.server_cpu,
                      c.client_cpu);
    else
        rs_bench_note(b, "fewer than two cores available: server and client not pinned");
    rs_bench_note(b, "%d-byte requests, one in flight per connection; %lld ms warm-up, %lld ms window per "
                     "repetition; every echoed byte checked by the client",
                  RS_ECHO_MSG, (long long)(c.warmup_ns / 1000000), (long long)(c.window_ns / 1000000));
    rs_bench_note(b, "ratio = ringscope / peer: requests/s (higher is better); server CPU = the server thread's "
                     "CPU time (user + system, which includes the loopback TCP work done in its context) per request "
                     "over the whole run, warm-up included (lower is better)");

    static echo_impl servers[3];
    servers[0] = (echo_impl){ .c = &c, .serve = ringscope_serve };
    servers[1] = (echo_impl){ .c = &c, .serve = rs_bench_epoll_echo_serve };
    servers[2] = (echo_impl){ .c = &c, .serve = rs_bench_libuv_echo_serve };
    const rs_bench_impl impls[] = {
        { "ringscope", measure, &servers[0] },
        { "epoll", measure, &servers[1] },
        { "libuv", measure, &servers[2] },
    };
    unsigned reps = rs_bench_reps(b) < MAX_REPS ? rs_bench_reps(b) : MAX_REPS;
    for (size_t i = 0; i < sizeof connections / sizeof connections[0]; i++) {
        c.connections = connections[i];
        char name[64];
        snprintf(name, sizeof name, "64-byte ping-pong, %u connection%s", c.connections,
                 c.connections == 1 ? "" : "s");
        c.failure[0] = '\0';
        for (size_t k = 0; k < 3; k++)
            servers[k].calls = 0;
        int rc = rs_bench_compare(b, name, "requests/s", impls, 3);
        if (rc) {
            if (c.failure[0])
                rs_bench_note(b, "%s: %s", name, c.failure);
            return rc;
        }
        note_paired(b, name, &servers[0], &servers[1], impls[1].name, reps);
        note_paired(b, name, &servers[0], &servers[2], impls[2].name, reps);
        /* The same runs seen from the server's side: its CPU time per request. */
        snprintf(name, sizeof name, "server CPU, %u connection%s", c.connections, c.connections == 1 ? "" : "s");
        double med[3];
        for (size_t k = 0; k < 3; k++)
            med[k] = rs_bench_samples(b, name, impls[k].name, servers[k].cpu_us, reps, "us/request");
        for (size_t k = 1; k < 3; k++)
            rs_bench_ratio(b, name, impls[0].name, impls[k].name, med[0] / med[k]);
    }
    return 0;
}

RS_BENCH_SUITE("echo", 200,
               "TCP echo requests/s (64-byte ping-pong; 1, 50, 500 connections), beside epoll and libuv servers",
               run_echo)
