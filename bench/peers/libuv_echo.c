/* Peer for the echo suite: a libuv echo server on one loop, written the way
 * libuv's documentation and examples do it, plus the usual fast path:
 * uv_try_write first (no request, no copy, no callback when the socket takes
 * the reply at once, which is nearly always), uv_write with a copy of the
 * rest otherwise. Each connection reads into its own buffer. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "echo.h"

typedef struct uconn {
    uv_tcp_t tcp;
    char buf[RS_ECHO_BUF];
} uconn;

typedef struct uwrite {
    uv_write_t req;
    char data[];
} uwrite;

typedef struct userver {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_poll_t done;
    int error; /* first failure (negative errno) */
} userver;

static void on_closed(uv_handle_t *h)
{
    if (h->type == UV_TCP && h->data == NULL)
        free(h); /* a connection (listener and poll handles carry their server in data) */
}

static void close_conn(uconn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    uconn *c = (uconn *)h;
    *buf = uv_buf_init(c->buf, sizeof c->buf);
}

static void on_written(uv_write_t *req, int status)
{
    uwrite *w = (uwrite *)req;
    if (status < 0)
        close_conn((uconn *)req->handle);
    free(w);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    uconn *c = (uconn *)stream;
    if (nread < 0) {
        close_conn(c); /* UV_EOF or an error */
        return;
    }
    if (nread == 0)
        return; /* EAGAIN: nothing this time */
    uv_buf_t out = uv_buf_init(buf->base, (unsigned)nread);
    int done = uv_try_write(stream, &out, 1);
    if (done == nread)
        return;
    if (done < 0 && done != UV_EAGAIN) {
        close_conn(c);
        return;
    }
    size_t off = done > 0 ? (size_t)done : 0, rest = (size_t)nread - off;
    uwrite *w = malloc(sizeof *w + rest);
    if (!w) {
        close_conn(c);
        return;
    }
    memcpy(w->data, buf->base + off, rest);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)rest);
    if (uv_write(&w->req, stream, &b, 1, on_written) != 0) {
        free(w);
        close_conn(c);
    }
}

static void on_connection(uv_stream_t *listener, int status)
{
    userver *s = listener->data;
    if (status < 0)
        return;
    uconn *c = malloc(sizeof *c);
    if (!c) {
        s->error = -ENOMEM;
        return;
    }
    uv_tcp_init(&s->loop, &c->tcp);
    c->tcp.data = NULL;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        close_conn(c);
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, on_closed);
}

/* The client is done: close every handle; uv_run returns once they are closed. */
static void on_done(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    userver *s = p->data;
    uv_walk(&s->loop, close_any, NULL);
}

int rs_bench_libuv_echo_serve(int listen_fd, int done_fd)
{
    /* libuv owns (and closes) the descriptor of a uv_tcp_t: give it a copy. */
    int lfd = dup(listen_fd);
    if (lfd < 0)
        return -errno;
    userver *s = calloc(1, sizeof *s);
    int rc = s ? uv_loop_init(&s->loop) : -ENOMEM;
    if (rc) {
        free(s);
        close(lfd);
        return rc;
    }
    s->listener.data = s;
    s->done.data = s;
    rc = uv_tcp_init(&s->loop, &s->listener);
    if (rc == 0)
        rc = uv_tcp_open(&s->listener, lfd);
    if (rc)
        close(lfd); /* libuv did not adopt it */
    if (rc == 0 && (rc = uv_listen((uv_stream_t *)&s->listener, SOMAXCONN, on_connection)) == 0 &&
        (rc = uv_poll_init(&s->loop, &s->done, done_fd)) == 0)
        rc = uv_poll_start(&s->done, UV_READABLE, on_done);
    if (rc)
        uv_walk(&s->loop, close_any, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
    if (!rc)
        rc = s->error;
    free(s);
    return rc;
}
