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
 * process pinned to another; the client connects every socket, waits until
 * each has answered once, ping-pongs through a warm-up, counts the round
 * trips that complete in the window, and hands its result back through a
 * pipe whose readability also tells the server to stop. The server's CPU
 * time is read at the window's opening and closing, which the client marks
 * on a second pipe, so that it covers the same interval as the round trips
 * it is divided by. Servers alternate (ringscope, epoll, libuv, ringscope ...),
 * and the medians are compared: ratios ringscope/epoll and ringscope/libuv
 * (higher is better). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
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

/* What every repetition measured (the first call of each case is
 * rs_bench_compare's warm-up and is not kept). */
typedef struct echo_impl {
    const char *name;
    echo_case *c;
    serve_fn serve;
    unsigned calls;
    double rps[MAX_REPS];
    double cpu_us[MAX_REPS];       /* server CPU in the window / round trips in the window */
    double busy[MAX_REPS];         /* cpu_us x rps: the server thread's share of the window on its core, <= 1 */
    double client_busy[MAX_REPS];  /* the client's share of the window on its core, <= 1 */
    double min_per_conn[MAX_REPS]; /* fewest round trips of one connection in the window */
    double per_conn[MAX_REPS];     /* round trips in the window / connections */
} echo_impl;

/* The server thread's CPU clock at the client's two marks. A thread on the
 * client's core reads them (it sleeps in read() all along, so the server's
 * core runs nothing but the server); it returns after the second mark, or at
 * EOF, which comes at the latest when the client has exited: it alone holds
 * the pipe's write end. */
typedef struct window_cpu {
    int marks_fd;
    clockid_t clock;  /* the server thread's */
    unsigned marks;   /* marks read: 1 when the window has opened, 2 when it has closed */
    int64_t at_ns[2]; /* the clock at each mark */
    int error;        /* clock_gettime's errno */
} window_cpu;

static void *read_marks(void *arg)
{
    window_cpu *w = arg;
    while (w->marks < 2) {
        char byte;
        ssize_t n = read(w->marks_fd, &byte, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* the client exited (or failed) before closing its window */
        struct timespec ts;
        if (clock_gettime(w->clock, &ts) != 0) {
            w->error = errno;
            break;
        }
        w->at_ns[w->marks++] = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    }
    return NULL;
}

/* Starts read_marks on cpu (-1: wherever the caller may run); a positive errno. */
static int start_marks_reader(window_cpu *w, int cpu, pthread_t *thread)
{
    int rc = pthread_getcpuclockid(pthread_self(), &w->clock);
    if (rc)
        return rc;
    pthread_attr_t attr;
    if ((rc = pthread_attr_init(&attr)) != 0)
        return rc;
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        rc = pthread_attr_setaffinity_np(&attr, sizeof set, &set);
    }
    if (!rc)
        rc = pthread_create(thread, &attr, read_marks, w);
    pthread_attr_destroy(&attr);
    return rc;
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
        /* The same for every server: this thread serves, the reader times it. */
        window_cpu w = { .marks_fd = client.marks_fd };
        pthread_t reader;
        int trc = start_marks_reader(&w, c->client_cpu, &reader);
        rs_echo_result res;
        if (trc) {
            /* Nothing would time the server: stop the client instead of serving it. */
            kill(client.pid, SIGKILL);
            rs_echo_client_finish(&client, &res);
            snprintf(c->failure, sizeof c->failure, "%s: server CPU reader: %s", impl->name, strerror(trc));
            rc = -trc;
        } else {
            int serve_rc = impl->serve(lfd, client.done_fd);
            rc = rs_echo_client_finish(&client, &res);
            /* The client is reaped, so the marks pipe has no writer left: the
             * reader has returned or is about to read EOF. */
            pthread_join(reader, NULL);
            if (rc) {
                snprintf(c->failure, sizeof c->failure, "%s: %s", impl->name, res.note);
            } else if (serve_rc) {
                snprintf(c->failure, sizeof c->failure, "%s server: %s", impl->name, rs_strerror(rc = serve_rc));
            } else if (w.error || w.marks < 2) {
                rc = w.error ? -w.error : -EPROTO;
                snprintf(c->failure, sizeof c->failure, "%s: server CPU clock: %s", impl->name,
                         w.error ? strerror(w.error) : "the client's window marks did not arrive");
            } else {
                double cpu_us = (double)(w.at_ns[1] - w.at_ns[0]) / 1e3;
                double per_request = cpu_us / (double)res.requests; /* requests > 0: the client checked */
                *requests_per_s = res.requests_per_s;
                if (impl->calls > 0 && impl->calls <= MAX_REPS) {
                    unsigned i = impl->calls - 1;
                    impl->rps[i] = res.requests_per_s;
                    impl->cpu_us[i] = per_request;
                    impl->busy[i] = per_request * res.requests_per_s / 1e6;
                    impl->client_busy[i] = res.client_busy;
                    impl->min_per_conn[i] = (double)res.min_per_conn;
                    impl->per_conn[i] = (double)res.requests / c->connections;
                }
                impl->calls++;
            }
        }
        close(client.marks_fd);
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

/* The median and the given quantile of a repetitions' array, left unsorted. */
static double median_of(const double *samples, unsigned reps)
{
    double v[MAX_REPS];
    memcpy(v, samples, reps * sizeof *v);
    return rs_bench_median(v, reps);
}

static double quantile_of(const double *samples, unsigned reps, double q)
{
    double v[MAX_REPS];
    memcpy(v, samples, reps * sizeof *v);
    return rs_bench_quantile(v, reps, q);
}

/* The check on the server CPU rows: CPU per request x requests/s is the
 * share of the window the server thread spent on its core, which one thread
 * cannot take above 1. Beyond the reader's wake-up jitter at the two marks
 * (1.02 leaves 4 ms in a 200 ms window), a higher value means that the CPU
 * time and the round trips were not counted over the same interval. */
static void note_busy(rs_bench *b, const char *case_name, const echo_impl *servers, unsigned reps)
{
    double med[3], hi[3], client_med[3], client_hi[3];
    bool over = false;
    for (size_t k = 0; k < 3; k++) {
        med[k] = median_of(servers[k].busy, reps);
        hi[k] = quantile_of(servers[k].busy, reps, 1);
        over |= hi[k] > 1.02;
        client_med[k] = median_of(servers[k].client_busy, reps);
        client_hi[k] = quantile_of(servers[k].client_busy, reps, 1);
    }
    rs_bench_note(b,
                  "%s: server CPU per request x requests/s (the server thread's share of the window, at most 1): "
                  "%s %.3f (max %.3f), %s %.3f (max %.3f), %s %.3f (max %.3f)%s",
                  case_name, servers[0].name, med[0], hi[0], servers[1].name, med[1], hi[1], servers[2].name, med[2],
                  hi[2], over ? "; ABOVE 1.02: CPU time and round trips were not counted over the same interval" : "");
    /* The client's side of the same windows: near 1 it, not the server,
     * sets the rate, and a faster server cannot show how much faster. The
     * note says so when the client was as busy as the server it drove. */
    bool client_bound = false;
    for (size_t k = 0; k < 3; k++)
        client_bound |= client_med[k] >= 0.95 && client_med[k] >= med[k] - 0.03;
    rs_bench_note(b,
                  "%s: the load client's CPU time over the window (its share of its core, at most 1) while serving "
                  "%s %.3f (max %.3f), %s %.3f (max %.3f), %s %.3f (max %.3f)%s",
                  case_name, servers[0].name, client_med[0], client_hi[0], servers[1].name, client_med[1], client_hi[1],
                  servers[2].name, client_med[2], client_hi[2],
                  client_bound ? "; the client was about as busy as a server: the rates may be partly the client's"
                               : "");
}

/* Every connection completed round trips in every window (the client fails
 * the measurement otherwise); how evenly a server shares itself among them
 * shows in the fewest one of them completed. */
static void note_fewest(rs_bench *b, const char *case_name, const echo_impl *servers, unsigned reps)
{
    double lo[3], mean[3];
    for (size_t k = 0; k < 3; k++) {
        lo[k] = quantile_of(servers[k].min_per_conn, reps, 0);
        mean[k] = median_of(servers[k].per_conn, reps);
    }
    rs_bench_note(b,
                  "%s: fewest round trips of one connection in a window, worst repetition (median of the mean per "
                  "connection): %s %.0f (%.0f), %s %.0f (%.0f), %s %.0f (%.0f)",
                  case_name, servers[0].name, lo[0], mean[0], servers[1].name, lo[1], mean[1], servers[2].name, lo[2],
                  mean[2]);
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
    /* The peer servers write with write(2), and a client that has measured
     * closes its sockets: a reply then must fail with EPIPE, not kill the
     * tool (rs_run ignores SIGPIPE too, but only once it has run). */
    signal(SIGPIPE, SIG_IGN);
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
    rs_bench_note(b,
                  "%d-byte requests, one in flight per connection; %lld ms warm-up, %lld ms window per "
                  "repetition; every echoed byte checked by the client; the warm-up starts once every connection "
                  "has answered a first request, and a repetition fails if a connection completes no round trip "
                  "in the window",
                  RS_ECHO_MSG, (long long)(c.warmup_ns / 1000000), (long long)(c.window_ns / 1000000));
    rs_bench_note(b, "ratio = ringscope / peer: requests/s (higher is better); server CPU = the server thread's "
                     "CPU time (its CPU clock: user + system, which includes the loopback TCP work done in its "
                     "context) in the window, read when the client marks the window's opening and closing, divided "
                     "by the round trips counted in the window (lower is better)");

    static echo_impl servers[3];
    servers[0] = (echo_impl){ .name = "ringscope", .c = &c, .serve = ringscope_serve };
    servers[1] = (echo_impl){ .name = "epoll", .c = &c, .serve = rs_bench_epoll_echo_serve };
    servers[2] = (echo_impl){ .name = "libuv", .c = &c, .serve = rs_bench_libuv_echo_serve };
    const rs_bench_impl impls[] = {
        { servers[0].name, measure, &servers[0] },
        { servers[1].name, measure, &servers[1] },
        { servers[2].name, measure, &servers[2] },
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
        note_fewest(b, name, servers, reps);
        /* The same runs seen from the server's side: its CPU time per request. */
        snprintf(name, sizeof name, "server CPU, %u connection%s", c.connections, c.connections == 1 ? "" : "s");
        double med[3];
        for (size_t k = 0; k < 3; k++)
            med[k] = rs_bench_samples(b, name, impls[k].name, servers[k].cpu_us, reps, "us/request");
        for (size_t k = 1; k < 3; k++)
            rs_bench_ratio(b, name, impls[0].name, impls[k].name, med[0] / med[k]);
        note_busy(b, name, servers, reps);
    }
    return 0;
}

RS_BENCH_SUITE("echo", 200,
               "TCP echo requests/s (64-byte ping-pong; 1, 50, 500 connections), beside epoll and libuv servers",
               run_echo)
