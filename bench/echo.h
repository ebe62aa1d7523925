/* The echo suite's parts (suite_echo.c): the load client, which runs in a
 * forked process pinned to its own core, and the peer servers it is pointed
 * at (bench/peers/epoll_echo.c, bench/peers/libuv_echo.c). Every server
 * serves a listening socket it is given until a "done" descriptor becomes
 * readable: the client writes its result there when it has measured (or
 * exits without one), so a server never outlives its client. */
#ifndef RS_BENCH_ECHO_H
#define RS_BENCH_ECHO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Bytes per request and per reply; every server reads into buffers of
 * RS_ECHO_BUF bytes. */
#define RS_ECHO_MSG 64
#define RS_ECHO_BUF 4096

typedef struct rs_echo_load {
    unsigned connections;
    uint16_t port;      /* 127.0.0.1:port */
    int64_t warmup_ns;  /* ping-pong before the window opens */
    int64_t window_ns;  /* requests completed in this interval are counted */
    int cpu;            /* core the client runs on; -1: not pinned */
    int listen_fd;      /* the server's socket: closed in the client process */
} rs_echo_load;

typedef struct rs_echo_result {
    int rc;                 /* 0, or the negative errno that stopped the client */
    double requests_per_s;  /* completed round trips per second, all connections together */
    uint64_t requests;      /* round trips in the window */
    uint64_t total;         /* round trips from the first to the last, warm-up included */
    uint64_t min_per_conn;  /* fewest round trips one connection completed in the window */
    double client_busy;     /* the client's CPU time in the window / the window: its share of its core, <= 1 */
    char note[160];         /* what failed, when rc != 0 */
} rs_echo_result;

typedef struct rs_echo_client {
    pid_t pid;
    int done_fd;  /* readable once the client has finished (result, or EOF if it died) */
    int marks_fd; /* one byte when the window opens, one when it closes; EOF once the client has exited */
} rs_echo_client;

/* Forks the client: it connects load->connections sockets (blocking, before
 * the window), waits until each has answered one request, then keeps one
 * 64-byte request in flight on each, checking every echoed byte. It writes
 * each mark on marks_fd right after the clock reading that opens or closes
 * its counting window, so that whoever reads the marks can time something
 * else (the server's CPU clock) over the same interval. The measurement fails
 * (rc -ETIMEDOUT) when a connection got no answer to its first request in
 * 5 s, or completed no round trip in the window: a server that stalls
 * altogether, or starves some of its connections entirely, is not measured
 * (one that only slows some down is, at its lower rate; the fewest round
 * trips of one connection is reported). */
int rs_echo_client_start(const rs_echo_load *load, rs_echo_client *c);

/* Reads the client's result from done_fd and reaps the process (after which
 * marks_fd reads EOF; it stays open: the caller closes it). Returns
 * result->rc, or -ECHILD when the client died without answering. */
int rs_echo_client_finish(rs_echo_client *c, rs_echo_result *result);

/* A listening TCP socket on 127.0.0.1, any free port: non-blocking,
 * SO_REUSEADDR, TCP_NODELAY (inherited by accepted sockets), backlog
 * SOMAXCONN. The same socket setup for every server. */
int rs_echo_listen(uint16_t *port);

/* Peer servers: serve listen_fd until done_fd is readable; 0 or -errno. */
int rs_bench_epoll_echo_serve(int listen_fd, int done_fd);
int rs_bench_libuv_echo_serve(int listen_fd, int done_fd);

#endif
