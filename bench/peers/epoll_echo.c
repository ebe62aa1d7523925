/* Peer for the echo suite: the classic single-threaded epoll echo server,
 * edge-triggered, non-blocking sockets, written as a careful C programmer
 * would to be fast:
 *  - one epoll_wait for many ready sockets;
 *  - a read that returns less than the buffer means the socket is drained
 *    (edge-triggered epoll reports the next arrival as a new edge), so there
 *    is no extra read just to see EAGAIN;
 *  - EPOLLOUT is asked for only while a reply is stuck in a full socket
 *    buffer, so acknowledgements do not wake the server.
 * Per request that is one read and one write system call plus a share of an
 * epoll_wait. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echo.h"

typedef struct econn {
    int fd;
    size_t pending_len;            /* bytes of `pending` not yet written */
    size_t pending_off;
    unsigned char pending[RS_ECHO_BUF];
} econn;

typedef struct eserver {
    int epfd, listen_fd, done_fd;
    econn **by_fd; /* connections indexed by descriptor */
    size_t cap;
} eserver;

static int track(eserver *s, econn *c)
{
    if ((size_t)c->fd >= s->cap) {
        size_t cap = s->cap ? s->cap : 1024;
        while (cap <= (size_t)c->fd)
            cap *= 2;
        econn **n = realloc(s->by_fd, cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        memset(n + s->cap, 0, (cap - s->cap) * sizeof *n);
        s->by_fd = n;
        s->cap = cap;
    }
    s->by_fd[c->fd] = c;
    return 0;
}

static void drop(eserver *s, econn *c)
{
    s->by_fd[c->fd] = NULL;
    close(c->fd); /* also removes it from the epoll set */
    free(c);
}

static int accept_all(eserver *s)
{
    for (;;) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return -errno;
        }
        econn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            return -ENOMEM;
        }
        c->fd = fd;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.ptr = c };
        if (track(s, c) != 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            free(c);
            return -ENOMEM;
        }
    }
}

/* Writes what is pending; when the socket buffer is full, waits for EPOLLOUT.
 * Returns -1 when the connection is finished. */
static int flush(eserver *s, econn *c)
{
    while (c->pending_off < c->pending_len) {
        ssize_t n = write(c->fd, c->pending + c->pending_off, c->pending_len - c->pending_off);
        if (n > 0) {
            c->pending_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c };
            epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
            return 0;
        }
        return -1;
    }
    c->pending_len = c->pending_off = 0;
    return 0;
}

/* Echoes what arrived. Returns -1 when the connection was dropped. */
static int on_readable(eserver *s, econn *c)
{
    while (c->pending_len == 0) { /* a reply still stuck in the socket: read more only after it went */
        ssize_t n = read(c->fd, c->pending, sizeof c->pending);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0) {
            drop(s, c);
            return -1;
        }
        c->pending_len = (size_t)n;
        c->pending_off = 0;
        if (flush(s, c) != 0) {
            drop(s, c);
            return -1;
        }
        if ((size_t)n < sizeof c->pending)
            return 0; /* drained: the next arrival is a new edge */
    }
    return 0;
}

/* The stuck reply can go on. Returns -1 when the connection was dropped. */
static int on_writable(eserver *s, econn *c)
{
    if (flush(s, c) != 0) {
        drop(s, c);
        return -1;
    }
    if (c->pending_len)
        return 0;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.ptr = c };
    epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    return on_readable(s, c); /* input that arrived while the reply was stuck */
}

static int serve(eserver *s)
{
    struct epoll_event evs[512];
    for (;;) {
        int n = epoll_wait(s->epfd, evs, 512, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &s->done_fd)
                return 0;
            if (p == &s->listen_fd) {
                int rc = accept_all(s);
                if (rc)
                    return rc;
                continue;
            }
            econn *c = p;
            if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                drop(s, c);
                continue;
            }
            if ((evs[i].events & EPOLLOUT) && c->pending_len) {
                if (on_writable(s, c) != 0)
                    continue;
            }
            if (evs[i].events & EPOLLIN)
                on_readable(s, c);
        }
    }
}

int rs_bench_epoll_echo_serve(int listen_fd, int done_fd)
{
    eserver s = { .listen_fd = listen_fd, .done_fd = done_fd };
    s.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s.epfd < 0)
        return -errno;
    struct epoll_event lev = { .events = EPOLLIN | EPOLLET, .data.ptr = &s.listen_fd };
    struct epoll_event dev = { .events = EPOLLIN, .data.ptr = &s.done_fd };
    int rc = 0;
    if (epoll_ctl(s.epfd, EPOLL_CTL_ADD, listen_fd, &lev) != 0 || epoll_ctl(s.epfd, EPOLL_CTL_ADD, done_fd, &dev) != 0)
        rc = -errno;
    if (!rc)
        rc = accept_all(&s); /* connections that queued before the loop started */
    if (!rc)
        rc = serve(&s);
    for (size_t fd = 0; fd < s.cap; fd++)
        if (s.by_fd[fd])
            drop(&s, s.by_fd[fd]);
    free(s.by_fd);
    close(s.epfd);
    return rc;
}
