/* Stress: I/O operations cancelled at random moments lose nothing.
 *
 * The contract under test (docs/IO.md, rs__uring_op_run): a cancelled call
 * returns only after its operation's own completion; an operation that
 * completed despite the cancellation returns its real result. So across any
 * pattern of cancellations
 *  - every byte a cancelled-or-not rs_recv (TCP) or rs_read (pipe) returned
 *    is the next byte of the stream, and none is lost or repeated;
 *  - a call that returned -ECANCELED wrote nothing into its
 *    buffer, then or later;
 *  - the bytes the receiver gets are exactly those the rs_send calls
 *    reported as sent (a cancelled send reports what went out);
 *  - every connection is accepted exactly once, also one that arrived as its
 *    rs_accept was being cancelled;
 *  - the descriptor stays usable after each cancellation.
 *
 * Each operation runs in a task of its own (cancellation is level-triggered:
 * a cancelled task stays cancelled), which is cancelled after a random number
 * of yields by one of three means: rs_task_cancel, rs_scope_cancel of a scope
 * around it, or that scope's own 1 ms timeout; or it is left alone. The peer
 * task meanwhile sends, receives, connects or yields at random, so the
 * cancellation meets the operation before submission, parked in the kernel,
 * and racing its data in the same submission batch. Seeds are fixed: a
 * failure names its seed and step. Coverage checks make sure both outcomes
 * of a cancellation (nothing done, done anyway) really occurred. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stream.h"
#include "support.h"
#include "unit/io_support.h"

#define CANARY 0xA5
#ifndef SEEDS
#define SEEDS 16 /* long runs: build with -DSEEDS=n */
#endif

static bool all_canary(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != CANARY)
            return false;
    return true;
}

/* A connected TCP pair on loopback, through the library's own calls. */
static int tcp_pair(int fds[2])
{
    int lfd = rs_tcp_listen("127.0.0.1", 0, 4);
    RS_CHECK(lfd >= 0);
    fds[0] = rs_tcp_connect("127.0.0.1", rs_test_port_of(lfd, NULL), 2000);
    RS_CHECK(fds[0] >= 0);
    fds[1] = rs_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
    RS_CHECK(fds[1] >= 0);
    RS_CHECK_OK(rs_close(lfd));
    return 0;
}

/* ------------------------------------------------------------ one attempt */

typedef enum {
    OP_RECV,
    OP_READ,
    OP_SEND,
    OP_ACCEPT
} op_kind;

typedef enum {
    LEAVE_ALONE,
    TASK_CANCEL,
    SCOPE_CANCEL,
    SCOPE_TIMEOUT
} how_cancelled;

typedef struct attempt {
    op_kind kind;
    int fd;
    void *buf;
    size_t len;
    int flags; /* recv, send: MSG_WAITALL or 0 */
    long result;
    bool returned;
    bool pending_at_cancel; /* cancelled by the caller before it returned */
} attempt;

static int attempt_main(void *arg)
{
    attempt *a = arg;
    switch (a->kind) {
    case OP_RECV: a->result = rs_recv(a->fd, a->buf, a->len, a->flags); break;
    case OP_READ: a->result = rs_read(a->fd, a->buf, a->len, -1); break;
    case OP_SEND: a->result = rs_send(a->fd, a->buf, a->len, a->flags); break;
    case OP_ACCEPT: a->result = rs_accept(a->fd, NULL, NULL, SOCK_CLOEXEC); break;
    }
    a->returned = true;
    return 0;
}

/* Whichever way the task was cancelled (its scope's timeout too), the call
 * says -ECANCELED (docs/IO.md); only the scope's close tells the timeout. */
static bool is_cancellation(long result)
{
    return result == -ECANCELED;
}

/* What happened to the attempts, for the coverage checks. */
typedef struct outcomes {
    long attempts;
    long cancelled_untouched; /* returned -ECANCELED */
    long cancelled_done;      /* cancelled while running, and completed anyway */
    long cut_short;           /* MSG_WAITALL, cancelled, and returned the part done */
} outcomes;

static void count(outcomes *o, const attempt *a)
{
    o->attempts++;
    if (is_cancellation(a->result))
        o->cancelled_untouched++;
    else if (a->pending_at_cancel)
        o->cancelled_done++;
    if ((a->flags & MSG_WAITALL) && a->pending_at_cancel && a->result > 0 && (size_t)a->result < a->len)
        o->cut_short++;
}

static void count_all(outcomes *sum, const outcomes *o)
{
    sum->attempts += o->attempts;
    sum->cancelled_untouched += o->cancelled_untouched;
    sum->cancelled_done += o->cancelled_done;
    sum->cut_short += o->cut_short;
}

/* Runs a in a task of a new scope and ends it a random way (rng): after 0-3
 * of the caller's yields, by rs_task_cancel, by rs_scope_cancel, by the
 * scope's 1 ms timeout, or not at all. Returns 0 once the attempt returned
 * (its own result is a->result), counted in o. */
static int run_attempt(attempt *a, uint64_t *rng, outcomes *o)
{
    how_cancelled how = (how_cancelled)rs_test_rand_below(rng, 4);
    int yields = rs_test_rand_below(rng, 4);
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = how == SCOPE_TIMEOUT ? 1 : 0 }, &s));
    rs_task *t;
    RS_CHECK_OK(rs_spawn(s, attempt_main, a, NULL, &t));
    for (int i = 0; i < yields && !a->returned; i++)
        RS_CHECK_OK(rs_yield());
    a->pending_at_cancel = (how == TASK_CANCEL || how == SCOPE_CANCEL) && !a->returned;
    if (how == TASK_CANCEL)
        rs_task_cancel(t);
    else if (how == SCOPE_CANCEL)
        rs_scope_cancel(s);
    int rc = rs_scope_close(s);
    RS_CHECK(rc == 0 || (how == SCOPE_TIMEOUT && rc == -ETIMEDOUT));
    RS_CHECK(a->returned);
    RS_CHECK(how != LEAVE_ALONE || !is_cancellation(a->result));
    count(o, a);
    return 0;
}

/* Runs the peer and the task under test, both given arg, until both return. */
static int side_by_side(rs_task_fn peer, rs_task_fn tested, void *arg)
{
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    RS_CHECK_OK(rs_spawn(s, peer, arg, NULL, NULL));
    RS_CHECK_OK(rs_spawn(s, tested, arg, NULL, NULL));
    return rs_scope_close(s);
}

/* Runs one(seed, variant, &sum) under a fresh runtime for every seed, then
 * checks that each outcome occurred often enough (min_cut_short < 0: not
 * looked for). */
static void over_seeds(const char *what, void (*one)(uint64_t seed, bool variant, outcomes *sum), bool variant,
                       long min_untouched, long min_done, long min_cut_short)
{
    outcomes sum = { 0 };
    for (uint64_t seed = 1; seed <= SEEDS; seed++)
        one(seed, variant, &sum);
    cr_log_info("%s: %ld attempts, %ld ended by their cancellation with nothing done, %ld completed despite a "
                "cancellation, %ld MSG_WAITALL calls cut short",
                what, sum.attempts, sum.cancelled_untouched, sum.cancelled_done, sum.cut_short);
    cr_expect_gt(sum.cancelled_untouched, min_untouched, "too few %s calls ended by their cancellation", what);
    cr_expect_gt(sum.cancelled_done, min_done, "too few %s calls completed despite a cancellation", what);
    if (min_cut_short >= 0)
        cr_expect_gt(sum.cut_short, min_cut_short, "too few MSG_WAITALL %s calls cut short by a cancellation", what);
}

/* ------------------------------------------------------------ recv */

#define RECV_STREAM    (2u << 20)
#define RECV_SLOTS     16
#define RECV_SLOT_SIZE 4096

typedef struct recv_run {
    uint64_t seed;
    bool pipe;  /* a pipe with rs_read/rs_write, else TCP with rs_recv/rs_send */
    int fds[2]; /* [0] the writer's end, [1] the reader's */
    uint64_t sent;
    bool writer_done;
    outcomes out;
} recv_run;

/* The peer: the stream in random chunks with random pauses, never cancelled. */
static int stream_writer(void *arg)
{
    recv_run *r = arg;
    uint64_t rng = r->seed ^ 0x5752495445ull;
    static uint8_t chunk[8192];
    while (r->sent < RECV_STREAM) {
        /* Small chunks half the time: a MSG_WAITALL recv then waits for
         * several of them, and a cancellation can cut it short. */
        int most = rs_test_rand_below(&rng, 2) ? 256 : (int)sizeof chunk;
        size_t n = 1 + (size_t)rs_test_rand_below(&rng, most);
        if (n > RECV_STREAM - r->sent)
            n = RECV_STREAM - r->sent;
        fill_stream(chunk, n, r->sent);
        for (size_t off = 0; off < n;) {
            ssize_t w =
                r->pipe ? rs_write(r->fds[0], chunk + off, n - off, -1) : rs_send(r->fds[0], chunk + off, n - off, 0);
            RS_CHECK(w > 0);
            off += (size_t)w;
        }
        r->sent += n;
        for (int y = rs_test_rand_below(&rng, 4); y > 0; y--)
            RS_CHECK_OK(rs_yield());
    }
    if (r->pipe) {
        RS_CHECK_OK(rs_close(r->fds[0]));
        r->fds[0] = -1;
    } else {
        RS_CHECK_OK(shutdown(r->fds[0], SHUT_WR));
    }
    r->writer_done = true;
    return 0;
}

static int stream_reader(void *arg)
{
    recv_run *r = arg;
    uint64_t rng = r->seed;
    static uint8_t slots[RECV_SLOTS][RECV_SLOT_SIZE];
    static bool cancelled_slot[RECV_SLOTS];
    memset(slots, CANARY, sizeof slots);
    memset(cancelled_slot, 0, sizeof cancelled_slot);
    uint64_t pos = 0;
    for (long step = 0;; step++) {
        int k = (int)(step % RECV_SLOTS);
        /* A slot that a cancelled recv was given: still untouched, a whole
         * round of attempts later. */
        if (cancelled_slot[k] && !all_canary(slots[k], RECV_SLOT_SIZE)) {
            cr_expect_fail("seed %llu step %ld: a cancelled recv's buffer was written later",
                           (unsigned long long)r->seed, step);
            return -1;
        }
        memset(slots[k], CANARY, RECV_SLOT_SIZE);
        cancelled_slot[k] = false;
        size_t len = 1 + (size_t)rs_test_rand_below(&rng, RECV_SLOT_SIZE);
        int flags = !r->pipe && rs_test_rand_below(&rng, 2) ? MSG_WAITALL : 0;
        attempt a = {
            .kind = r->pipe ? OP_READ : OP_RECV, .fd = r->fds[1], .buf = slots[k], .len = len, .flags = flags
        };
        RS_CHECK_OK(run_attempt(&a, &rng, &r->out));
        if (is_cancellation(a.result)) {
            if (!all_canary(slots[k], RECV_SLOT_SIZE)) {
                cr_expect_fail("seed %llu step %ld: a recv that returned %ld wrote its buffer",
                               (unsigned long long)r->seed, step, a.result);
                return -1;
            }
            cancelled_slot[k] = true;
            continue;
        }
        if (a.result == 0)
            break;
        if (a.result < 0 || (size_t)a.result > a.len || !matches_stream(slots[k], (size_t)a.result, pos) ||
            !all_canary(slots[k] + a.result, RECV_SLOT_SIZE - (size_t)a.result)) {
            cr_expect_fail("seed %llu step %ld: recv returned %ld at stream position %llu, not the next bytes",
                           (unsigned long long)r->seed, step, a.result, (unsigned long long)pos);
            return -1;
        }
        pos += (uint64_t)a.result;
    }
    RS_CHECK(r->writer_done);
    RS_CHECK_EQ(pos, RECV_STREAM);
    return 0;
}

static int recv_main(void *arg)
{
    recv_run *r = arg;
    if (r->pipe) {
        int p[2];
        RS_CHECK_OK(pipe2(p, O_CLOEXEC));
        r->fds[0] = p[1];
        r->fds[1] = p[0];
    } else {
        RS_CHECK_OK(tcp_pair(r->fds));
    }
    RS_CHECK_OK(side_by_side(stream_writer, stream_reader, r));
    if (r->fds[0] >= 0)
        RS_CHECK_OK(rs_close(r->fds[0]));
    RS_CHECK_OK(rs_close(r->fds[1]));
    return 0;
}

static void recv_seed(uint64_t seed, bool pipe, outcomes *sum)
{
    recv_run r = { .seed = seed, .pipe = pipe };
    RS_RUN_OK(recv_main, &r);
    count_all(sum, &r.out);
}

Test(io_cancel_stress, cancelled_recvs_lose_no_byte_and_write_no_buffer, .timeout = 120)
{
    over_seeds("recv", recv_seed, false, 100, 100, 10);
}

Test(io_cancel_stress, cancelled_pipe_reads_lose_no_byte_and_write_no_buffer, .timeout = 120)
{
    over_seeds("read", recv_seed, true, 100, 100, -1);
}

/* ------------------------------------------------------------ send */

#define SEND_STREAM (4u << 20)
#define SEND_CHUNK  (256u << 10)

typedef struct send_run {
    uint64_t seed;
    int fds[2];
    uint64_t reported; /* the sum of what the sends reported */
    bool sender_done;
    outcomes out;
} send_run;

/* Sends the stream with every send in a cancellable attempt; big chunks
 * fill the socket's buffers, so many sends are parked when cancelled. */
static int cancelled_sender(void *arg)
{
    send_run *r = arg;
    uint64_t rng = r->seed;
    static uint8_t chunk[SEND_CHUNK];
    for (long step = 0; r->reported < SEND_STREAM; step++) {
        size_t n = 1 + (size_t)rs_test_rand_below(&rng, (int)SEND_CHUNK);
        if (n > SEND_STREAM - r->reported)
            n = SEND_STREAM - r->reported;
        fill_stream(chunk, n, r->reported);
        int flags = rs_test_rand_below(&rng, 2) ? MSG_WAITALL : 0;
        attempt a = { .kind = OP_SEND, .fd = r->fds[0], .buf = chunk, .len = n, .flags = flags };
        RS_CHECK_OK(run_attempt(&a, &rng, &r->out));
        if (is_cancellation(a.result))
            continue;
        if (a.result <= 0 || (size_t)a.result > n) {
            cr_expect_fail("seed %llu step %ld: send of %zu bytes returned %ld", (unsigned long long)r->seed, step, n,
                           a.result);
            return -1;
        }
        r->reported += (uint64_t)a.result;
    }
    RS_CHECK_OK(shutdown(r->fds[0], SHUT_WR));
    r->sender_done = true;
    return 0;
}

/* The peer: reads slowly (random pauses) and checks every byte. */
static int slow_receiver(void *arg)
{
    send_run *r = arg;
    uint64_t rng = r->seed ^ 0x52454144ull;
    static uint8_t buf[65536];
    uint64_t pos = 0;
    for (;;) {
        size_t want = 1 + (size_t)rs_test_rand_below(&rng, (int)sizeof buf);
        ssize_t n = rs_recv(r->fds[1], buf, want, 0);
        RS_CHECK(n >= 0);
        if (n == 0)
            break;
        if (!matches_stream(buf, (size_t)n, pos)) {
            cr_expect_fail("seed %llu: received bytes at stream position %llu are not the stream's",
                           (unsigned long long)r->seed, (unsigned long long)pos);
            return -1;
        }
        pos += (uint64_t)n;
        for (int y = rs_test_rand_below(&rng, 6); y > 0; y--)
            RS_CHECK_OK(rs_yield());
    }
    RS_CHECK(r->sender_done);
    RS_CHECK_EQ(pos, r->reported);
    return 0;
}

static int send_main(void *arg)
{
    send_run *r = arg;
    RS_CHECK_OK(tcp_pair(r->fds));
    /* Small buffers: the sends block often. */
    int small = 16384;
    RS_CHECK_OK(setsockopt(r->fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small));
    RS_CHECK_OK(setsockopt(r->fds[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small));
    RS_CHECK_OK(side_by_side(slow_receiver, cancelled_sender, r));
    RS_CHECK_OK(rs_close(r->fds[0]));
    RS_CHECK_OK(rs_close(r->fds[1]));
    return 0;
}

static void send_seed(uint64_t seed, bool unused, outcomes *sum)
{
    (void)unused;
    send_run r = { .seed = seed };
    RS_RUN_OK(send_main, &r);
    count_all(sum, &r.out);
}

Test(io_cancel_stress, cancelled_sends_report_exactly_what_went_out, .timeout = 120)
{
    over_seeds("send", send_seed, false, 20, 20, 10);
}

/* ------------------------------------------------------------ accept */

#define CONNECTIONS 400

typedef struct accept_run {
    uint64_t seed;
    int lfd;
    uint16_t port;
    int connected;
    int accepted;
    bool seen[CONNECTIONS];
    int client_fds[CONNECTIONS];
    outcomes out;
} accept_run;

/* The peer: connects CONNECTIONS times, each connection sending its number,
 * with random pauses. */
static int connector(void *arg)
{
    accept_run *r = arg;
    uint64_t rng = r->seed ^ 0x434f4e4eull;
    for (int i = 0; i < CONNECTIONS; i++) {
        int fd = rs_tcp_connect("127.0.0.1", r->port, 5000);
        RS_CHECK(fd >= 0);
        RS_CHECK_EQ(rs_send(fd, &i, sizeof i, 0), sizeof i);
        r->client_fds[i] = fd;
        r->connected++;
        for (int y = rs_test_rand_below(&rng, 4); y > 0; y--)
            RS_CHECK_OK(rs_yield());
    }
    return 0;
}

static int acceptor(void *arg)
{
    accept_run *r = arg;
    uint64_t rng = r->seed;
    for (long step = 0; r->accepted < CONNECTIONS; step++) {
        /* Once every connection is made (each complete on loopback when its
         * connect returns), the rest wait in the queue: a lost one would
         * leave the loop waiting forever. */
        if (r->connected == CONNECTIONS && rs_poll(r->lfd, POLLIN, 2000) == -ETIMEDOUT) {
            cr_expect_fail("seed %llu: %d connections made, %d accepted, none left to accept",
                           (unsigned long long)r->seed, CONNECTIONS, r->accepted);
            return -1;
        }
        attempt a = { .kind = OP_ACCEPT, .fd = r->lfd };
        RS_CHECK_OK(run_attempt(&a, &rng, &r->out));
        if (is_cancellation(a.result))
            continue;
        if (a.result < 0) {
            cr_expect_fail("seed %llu step %ld: accept returned %ld", (unsigned long long)r->seed, step, a.result);
            return -1;
        }
        int fd = (int)a.result, id = -1;
        RS_CHECK_EQ(rs_recv(fd, &id, sizeof id, MSG_WAITALL), sizeof id);
        RS_CHECK(id >= 0 && id < CONNECTIONS);
        if (r->seen[id]) {
            cr_expect_fail("seed %llu: connection %d accepted twice", (unsigned long long)r->seed, id);
            return -1;
        }
        r->seen[id] = true;
        r->accepted++;
        RS_CHECK_OK(rs_close(fd));
    }
    return 0;
}

static int accept_main(void *arg)
{
    accept_run *r = arg;
    r->lfd = rs_tcp_listen("127.0.0.1", 0, CONNECTIONS);
    RS_CHECK(r->lfd >= 0);
    r->port = rs_test_port_of(r->lfd, NULL);
    RS_CHECK_OK(side_by_side(connector, acceptor, r));
    /* Every connection made was accepted: nothing is left in the queue. */
    RS_CHECK_EQ(r->connected, CONNECTIONS);
    RS_CHECK_EQ(rs_poll(r->lfd, POLLIN, 1), -ETIMEDOUT);
    for (int i = 0; i < CONNECTIONS; i++)
        RS_CHECK_OK(rs_close(r->client_fds[i]));
    RS_CHECK_OK(rs_close(r->lfd));
    return 0;
}

static void accept_seed(uint64_t seed, bool unused, outcomes *sum)
{
    (void)unused;
    accept_run r = { .seed = seed };
    RS_RUN_OK(accept_main, &r);
    count_all(sum, &r.out);
}

Test(io_cancel_stress, cancelled_accepts_lose_no_connection, .timeout = 120)
{
    over_seeds("accept", accept_seed, false, 100, 20, -1);
}
