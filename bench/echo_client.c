/* The echo suite's load client: one process, pinned to its own core, one
 * io_uring, `connections` sockets each with exactly one 64-byte request in
 * flight (send, wait for the 64 bytes back, check them, send the next).
 *
 * The client must cost less per request than any server it measures, or it
 * would measure itself: both sides of a loopback ping-pong do the same kernel
 * work per request, so a client that spends as much CPU per request as the
 * fastest server caps that server's rate at its own. It therefore takes the
 * kernel's cheapest path, which a library cannot take behind its user's back
 * but a load generator that owns its sockets can: the sockets are registered
 * with the ring (no file lookup per operation), every connection has one
 * multishot receive armed for the whole run, fed from a ring of provided
 * buffers (no submission and no poll arming per reply), and a send posts a
 * completion only when it fails or sends short (MSG_WAITALL with
 * IOSQE_CQE_SKIP_SUCCESS). What is left per request is one send submission
 * and one receive completion, in batches: every ready connection's next send
 * goes to the kernel in one io_uring_enter. The same client (same binary, same
 * settings) drives every server; the suite reports its share of its core, so
 * a run in which it still saturates shows as such. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "echo.h"

typedef struct conn {
    uint32_t seq;
    unsigned sent, got; /* bytes of the current request sent, and echoed back */
    uint64_t done;      /* verified round trips on this connection since the start */
    uint64_t base;      /* done when the window opened */
    unsigned char out[RS_ECHO_MSG], in[RS_ECHO_MSG];
} conn;

enum { OP_SEND = 0, OP_RECV = 1 };

/* The provided buffers the multishot receives take replies into: one group,
 * BUF_SIZE bytes each (a reply is RS_ECHO_MSG; more room lets a server that
 * answers with too many bytes be caught by the length check instead of
 * having its reply split). */
#define BUF_GROUP 0
#define BUF_SIZE  256

typedef struct client {
    struct io_uring ring;
    conn *conns;
    unsigned n;
    uint64_t completed; /* verified round trips since the start */
    bool holding;       /* a connection's answer does not start its next request (see first_answers) */
    struct io_uring_buf_ring *bufs;
    unsigned buf_count; /* a power of two */
    unsigned char *buf_memory;
    char failure[96]; /* what made a run fail with -EPROTO */
} client;

/* How long every connection may take to answer its first request. */
#define FIRST_ANSWERS_NS (5 * (int64_t)1000000000)

/* ------------------------------------------------------------ requests */

/* Every request's bytes are distinct from every other request's, of this
 * connection and of the others (a mix of the connection's index and the
 * request's number, splitmix64), so that the byte check also catches a reply
 * sent to the wrong connection or a stale one. */
static void fill(conn *c, unsigned idx)
{
    uint64_t x = (uint64_t)idx << 32 | c->seq;
    for (unsigned i = 0; i < RS_ECHO_MSG; i += 8) {
        uint64_t z = (x += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        memcpy(c->out + i, &z, sizeof z);
    }
}

static struct io_uring_sqe *get_sqe(client *cl)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&cl->ring);
    if (!sqe) {
        io_uring_submit(&cl->ring); /* SQ full: flush it */
        sqe = io_uring_get_sqe(&cl->ring);
    }
    return sqe;
}

/* The rest of the current request. MSG_WAITALL makes the kernel finish a
 * partial send itself; a send that still ends short, or fails, is marked
 * failed, and only then posts a completion. */
static int queue_send(client *cl, unsigned idx)
{
    struct io_uring_sqe *sqe = get_sqe(cl);
    if (!sqe)
        return -EBUSY;
    conn *c = &cl->conns[idx];
    io_uring_prep_send(sqe, (int)idx, c->out + c->sent, RS_ECHO_MSG - c->sent, MSG_NOSIGNAL | MSG_WAITALL);
    sqe->flags |= IOSQE_FIXED_FILE | IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, (uint64_t)idx << 1 | OP_SEND);
    return 0;
}

/* Armed once per connection; posts a completion per arrival of bytes until
 * it ends (no IORING_CQE_F_MORE). It is armed again when it ended for want
 * of buffers (-ENOBUFS) or with bytes delivered; any other end (an error,
 * the server's EOF) ends the run. */
static int arm_receive(client *cl, unsigned idx)
{
    struct io_uring_sqe *sqe = get_sqe(cl);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_recv_multishot(sqe, (int)idx, NULL, 0, 0);
    sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
    sqe->buf_group = BUF_GROUP;
    io_uring_sqe_set_data64(sqe, (uint64_t)idx << 1 | OP_RECV);
    return 0;
}

static void give_buffer(client *cl, unsigned bid)
{
    io_uring_buf_ring_add(cl->bufs, cl->buf_memory + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(cl->buf_count), 0);
    io_uring_buf_ring_advance(cl->bufs, 1);
}

static int start_request(client *cl, unsigned idx)
{
    conn *c = &cl->conns[idx];
    c->seq++;
    c->sent = c->got = 0;
    fill(c, idx);
    return queue_send(cl, idx);
}

/* -EPROTO, saying which connection and request. */
static int wrong_reply(client *cl, unsigned idx, const char *what)
{
    snprintf(cl->failure, sizeof cl->failure, "connection %u, request %u: the reply %s", idx,
             (unsigned)cl->conns[idx].seq, what);
    return -EPROTO;
}

/* Bytes of a reply: appended to the connection's reply so far, which must
 * stay within the request's length and, once complete, equal it. */
static int on_reply_bytes(client *cl, unsigned idx, const unsigned char *bytes, unsigned len)
{
    conn *c = &cl->conns[idx];
    if (len > RS_ECHO_MSG - c->got)
        return wrong_reply(cl, idx, "is longer than the request"); /* the server mixed up bytes */
    memcpy(c->in + c->got, bytes, len);
    c->got += len;
    if (c->got < RS_ECHO_MSG)
        return 0;
    if (memcmp(c->in, c->out, RS_ECHO_MSG) != 0)
        return wrong_reply(cl, idx, "differs from the request"); /* the server lost or mixed up bytes */
    cl->completed++;
    c->done++;
    return cl->holding ? 0 : start_request(cl, idx);
}

static int on_completion(client *cl, uint64_t data, int res, unsigned flags)
{
    unsigned idx = (unsigned)(data >> 1);
    conn *c = &cl->conns[idx];
    if ((data & 1) == OP_SEND) {
        if (res < 0)
            return res;
        c->sent += (unsigned)res; /* a short send: send the rest */
        return c->sent < RS_ECHO_MSG ? queue_send(cl, idx) : 0;
    }
    int rc = 0;
    if (flags & IORING_CQE_F_BUFFER) {
        unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
        if (res > 0)
            rc = on_reply_bytes(cl, idx, cl->buf_memory + (size_t)bid * BUF_SIZE, (unsigned)res);
        give_buffer(cl, bid);
    }
    if (rc)
        return rc;
    if (res == 0)
        return -ECONNRESET; /* the server closed a connection it should be serving */
    if (res < 0 && res != -ENOBUFS)
        return res;
    return flags & IORING_CQE_F_MORE ? 0 : arm_receive(cl, idx);
}

/* ------------------------------------------------------------ the run */

static int setup(client *cl, const rs_echo_load *load)
{
    cl->n = load->connections;
    cl->conns = calloc(cl->n, sizeof *cl->conns);
    if (!cl->conns)
        return -ENOMEM;
    unsigned entries = 64;
    while (entries < 4 * cl->n && entries < 4096)
        entries *= 2;
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
    p.cq_entries = entries * 4;
    int rc = io_uring_queue_init_params(entries, &cl->ring, &p);
    if (rc) {
        memset(&p, 0, sizeof p);
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = entries * 4;
        rc = io_uring_queue_init_params(entries, &cl->ring, &p);
    }
    if (rc)
        return rc;
    int *fds = calloc(cl->n, sizeof *fds);
    if (!fds)
        return -ENOMEM;
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(load->port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    for (unsigned i = 0; i < cl->n && rc == 0; i++) {
        int fd = fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd < 0 || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
            connect(fd, (struct sockaddr *)&to, sizeof to) != 0)
            rc = -errno;
    }
    /* Connection i is registered file i; the descriptors go with the process. */
    if (rc == 0)
        rc = io_uring_register_files(&cl->ring, fds, cl->n);
    free(fds);
    if (rc)
        return rc;
    /* At most one reply per connection is outstanding, in at most a few
     * pieces, and every buffer goes back to the ring as soon as its
     * completion is handled. */
    cl->buf_count = 64;
    while (cl->buf_count < 2 * cl->n && cl->buf_count < 32768)
        cl->buf_count *= 2;
    size_t ring_bytes = cl->buf_count * sizeof(struct io_uring_buf);
    void *ring_memory;
    if (posix_memalign(&ring_memory, 4096, ring_bytes) != 0)
        return -ENOMEM;
    cl->bufs = ring_memory;
    cl->buf_memory = malloc((size_t)cl->buf_count * BUF_SIZE);
    if (!cl->buf_memory)
        return -ENOMEM;
    io_uring_buf_ring_init(cl->bufs);
    struct io_uring_buf_reg reg = { .ring_addr = (uint64_t)(uintptr_t)cl->bufs,
                                    .ring_entries = cl->buf_count,
                                    .bgid = BUF_GROUP };
    if ((rc = io_uring_register_buf_ring(&cl->ring, &reg, 0)) != 0)
        return rc;
    for (unsigned bid = 0; bid < cl->buf_count; bid++)
        give_buffer(cl, bid);
    for (unsigned i = 0; i < cl->n && rc == 0; i++)
        rc = arm_receive(cl, i);
    return rc;
}

/* Tells the bench process that the window opens or closes: called right
 * after the clock reading that is the window's boundary, before anything
 * else, so that the server's CPU clock is read at that boundary give or take
 * the reader's wake-up. One byte never blocks (the pipe holds 4 KiB) and a
 * failed write is not an error here: the reader sees a mark missing and
 * discards the measurement. */
static void mark(int fd)
{
    static const char byte = 'm';
    while (write(fd, &byte, 1) < 0 && errno == EINTR)
        ;
}

/* A server that stalls, or serves some connections and starves the others,
 * has no meaningful rate: the window's round trips must come from every
 * connection. Records the fewest round trips one connection completed.
 * -ETIMEDOUT (an answer did not come in time) keeps -EPROTO for what it
 * means in on_completion: bytes that came back wrong. */
static int check_connections(const client *cl, const rs_echo_load *load, rs_echo_result *res)
{
    uint64_t fewest = UINT64_MAX;
    unsigned starved = 0, first = 0;
    for (unsigned i = 0; i < cl->n; i++) {
        uint64_t k = cl->conns[i].done - cl->conns[i].base;
        if (k < fewest)
            fewest = k;
        if (k == 0 && starved++ == 0)
            first = i;
    }
    res->min_per_conn = cl->n ? fewest : 0;
    if (res->requests == 0) {
        snprintf(res->note, sizeof res->note, "no round trip completed in the %lld ms window (%u connection%s)",
                 (long long)(load->window_ns / 1000000), cl->n, cl->n == 1 ? "" : "s");
        return -ETIMEDOUT;
    }
    if (starved) {
        snprintf(res->note, sizeof res->note,
                 "connection %u completed no round trip in the window (%u of %u connections none, the others %llu)",
                 first, starved, cl->n, (unsigned long long)res->requests);
        return -ETIMEDOUT;
    }
    return 0;
}

/* Submits what is queued and handles the completions that have come, after
 * waiting at most 50 ms for one, so that a stalled server cannot hold the
 * client. */
static int reap(client *cl)
{
    struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 50 * 1000 * 1000 };
    struct io_uring_cqe *cqe;
    int rc = io_uring_submit_and_wait_timeout(&cl->ring, &cqe, 1, &ts, NULL);
    if (rc < 0 && rc != -ETIME && rc != -EINTR)
        return rc;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&cl->ring, head, cqe) {
        seen++;
        rc = on_completion(cl, cqe->user_data, cqe->res, cqe->flags);
        if (rc)
            return rc;
    }
    io_uring_cq_advance(&cl->ring, seen);
    return 0;
}

/* One request on every connection, and no second one until all have been
 * answered: then the server has accepted every connection, and the window
 * measures `connections` connections being served, not how fast a server
 * accepts the last of them while it serves the first (measured: the
 * ringscope server accepted 177 connections in a 200 ms window while it
 * served 263 others).
 * Without the load of continuous ping-pong accepting is quick: a limit of
 * FIRST_ANSWERS_NS only catches servers that never answer. */
static int first_answers(client *cl, rs_echo_result *res)
{
    cl->holding = true;
    for (unsigned i = 0; i < cl->n; i++) {
        int rc = start_request(cl, i);
        if (rc)
            return rc;
    }
    int64_t deadline = rs_bench_now_ns() + FIRST_ANSWERS_NS;
    while (cl->completed < cl->n) {
        int rc = reap(cl);
        if (rc)
            return rc;
        if (cl->completed < cl->n && rs_bench_now_ns() >= deadline) {
            unsigned first = 0;
            while (cl->conns[first].done)
                first++;
            snprintf(res->note, sizeof res->note,
                     "connection %u got no answer to its first request in %lld s (%llu of %u connections answered)",
                     first, (long long)(FIRST_ANSWERS_NS / 1000000000), (unsigned long long)cl->completed, cl->n);
            return -ETIMEDOUT;
        }
    }
    cl->holding = false;
    return 0;
}

static int64_t process_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Once every connection has been answered, ping-pong until the window has
 * passed; counts the round trips completed inside it, in all and per
 * connection, and marks the window's opening and closing on marks_fd. */
static int drive(client *cl, const rs_echo_load *load, int marks_fd, rs_echo_result *res)
{
    int rc = first_answers(cl, res);
    if (rc)
        return rc;
    for (unsigned i = 0; i < cl->n; i++) {
        if ((rc = start_request(cl, i)) != 0)
            return rc;
    }
    int64_t now = rs_bench_now_ns();
    int64_t window_start = now + load->warmup_ns, window_end = window_start + load->window_ns;
    int64_t counted_from = 0, cpu_from = 0;
    uint64_t base = 0;
    bool counting = false;
    for (;;) {
        if ((rc = reap(cl)) != 0)
            return rc;
        /* The window's boundaries are these clock readings; the counts
         * taken with them are exact, because completions are only reaped
         * above, never between the reading and the counts. */
        now = rs_bench_now_ns();
        if (!counting && now >= window_start) {
            mark(marks_fd);
            counting = true;
            counted_from = now;
            cpu_from = process_cpu_ns();
            base = cl->completed;
            for (unsigned i = 0; i < cl->n; i++)
                cl->conns[i].base = cl->conns[i].done;
        }
        if (counting && now >= window_end) {
            mark(marks_fd);
            res->total = cl->completed;
            res->requests = cl->completed - base;
            if (now > counted_from) {
                res->requests_per_s = (double)res->requests * 1e9 / (double)(now - counted_from);
                res->client_busy = (double)(process_cpu_ns() - cpu_from) / (double)(now - counted_from);
            }
            return check_connections(cl, load, res);
        }
    }
}

static void pin(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static void run_child(const rs_echo_load *load, int out_fd, int marks_fd)
{
    rs_echo_result res;
    memset(&res, 0, sizeof res);
    /* Last resort against a server that never answers (the window itself is
     * bounded by the timed waits above). */
    alarm((unsigned)((load->warmup_ns + load->window_ns) / 1000000000) + 60);
    pin(load->cpu);
    client cl;
    memset(&cl, 0, sizeof cl);
    res.rc = setup(&cl, load);
    if (res.rc)
        snprintf(res.note, sizeof res.note, "client setup (%u connections): %s", load->connections,
                 strerror(-res.rc));
    else if ((res.rc = drive(&cl, load, marks_fd, &res)) != 0 && !res.note[0])
        snprintf(res.note, sizeof res.note, "client: %s%s%s", strerror(-res.rc), cl.failure[0] ? ": " : "", cl.failure);
    /* Sockets and ring go with the process. */
    ssize_t w = write(out_fd, &res, sizeof res);
    _exit(w == (ssize_t)sizeof res ? 0 : 1);
}

int rs_echo_client_start(const rs_echo_load *load, rs_echo_client *c)
{
    /* Only the client holds the pipes' write ends (the parent closes its
     * copies right after the fork), so both read EOF once it has exited. */
    int fds[2], marks[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -errno;
    if (pipe2(marks, O_CLOEXEC) != 0) {
        int rc = -errno;
        close(fds[0]);
        close(fds[1]);
        return rc;
    }
    fflush(stdout); /* the child must not print the parent's buffered output again */
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        int rc = -errno;
        close(fds[0]);
        close(fds[1]);
        close(marks[0]);
        close(marks[1]);
        return rc;
    }
    if (pid == 0) {
        close(fds[0]);
        close(marks[0]);
        if (load->listen_fd >= 0)
            close(load->listen_fd);
        run_child(load, fds[1], marks[1]);
    }
    close(fds[1]);
    close(marks[1]);
    c->pid = pid;
    c->done_fd = fds[0];
    c->marks_fd = marks[0];
    return 0;
}

int rs_echo_client_finish(rs_echo_client *c, rs_echo_result *result)
{
    memset(result, 0, sizeof *result);
    size_t got = 0;
    while (got < sizeof *result) {
        ssize_t n = read(c->done_fd, (char *)result + got, sizeof *result - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(c->done_fd);
    c->done_fd = -1;
    int status = 0;
    while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (got < sizeof *result) {
        snprintf(result->note, sizeof result->note, "client process ended without a result (%s %d)",
                 WIFSIGNALED(status) ? "signal" : "status",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        result->rc = -ECHILD;
    }
    return result->rc;
}

int rs_echo_listen(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sin;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(fd, SOMAXCONN) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    *port = ntohs(sin.sin_port);
    return fd;
}
