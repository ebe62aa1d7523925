/* Stress: rs_close of a descriptor while another task uses it, at random
 * moments, loses nothing and strands nobody.
 *
 * The contract under test (docs/IO.md, rs_close): the close first cancels
 * every operation of the ring on the descriptor's file; each such call
 * returns -EBADF, or its real result when it completed anyway; after the
 * close the file is really closed. So in every round
 *  - the task using the descriptor returns (no hang) with data, -EBADF, or
 *    -ECANCELED when it was also cancelled;
 *  - receiving: every byte it got is the next byte of the peer's stream;
 *  - sending: the peer receives exactly the bytes the sends reported, and
 *    then the end of the stream, as the close promised;
 *  - a call cancelled by the close never writes its buffer afterwards.
 *
 * Each round: a socketpair or a pipe; the task under test loops receiving
 * (rs_recv, rs_read) or sending (rs_send) while the peer sends or drains in
 * random chunks with random pauses; after a random number of yields the
 * main task closes the task's descriptor with rs_close, sometimes right
 * after cancelling that task (the two requests then race). In half the
 * rounds the peer has stopped by then, so that only the close can end the
 * task's wait (a receive with no data coming, a send into a full buffer). Fixed seeds: a
 * failure names its seed and round. Coverage checks make sure closes met
 * calls parked in the kernel and calls that completed anyway. */
#define _GNU_SOURCE
#include <fcntl.h>
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
#define ROUNDS 128

TestSuite(io_close_stress, .timeout = 120);

typedef enum {
    USE_RECV,
    USE_READ,
    USE_SEND
} use_kind;

typedef struct round_state {
    use_kind kind;
    uint64_t rng;
    int fd;         /* the tested task's descriptor, closed by main */
    int peer;       /* the other end, main's to close */
    uint64_t moved; /* bytes the tested task's calls reported */
    uint64_t peer_moved;
    long last;  /* the tested task's last result: <= 0 */
    bool quiet; /* the peer stops after peer_limit bytes, before the close */
    uint64_t peer_limit;
    bool done, peer_stop, stream_ok;
    uint8_t late[256]; /* the buffer of the call the close ended */
} round_state;

typedef struct tally {
    long rounds, ebadf, parked_at_close, data_then_close, cancelled, quiet;
} tally;

/* The task under test: moves data through fd until a call fails. */
static int tested(void *arg)
{
    round_state *r = arg;
    static uint8_t out[4096];
    for (;;) {
        size_t len = 1 + (size_t)rs_test_rand_below(&r->rng, 256);
        ssize_t n;
        if (r->kind == USE_SEND) {
            len = 1 + (size_t)rs_test_rand_below(&r->rng, (int)sizeof out);
            fill_stream(out, len, r->moved);
            n = rs_send(r->fd, out, len, 0);
        } else {
            memset(r->late, CANARY, sizeof r->late);
            n = r->kind == USE_RECV ? rs_recv(r->fd, r->late, len, 0) : rs_read(r->fd, r->late, len, -1);
            if (n > 0 && !matches_stream(r->late, (size_t)n, r->moved))
                r->stream_ok = false;
        }
        if (n <= 0) {
            r->last = n;
            break;
        }
        r->moved += (uint64_t)n;
    }
    r->done = true;
    return 0;
}

/* The peer: sends the stream (the tested task receives) or drains it (the
 * tested task sends), with random pauses, until told to stop or the other
 * end is gone. */
static int peer(void *arg)
{
    round_state *r = arg;
    uint64_t rng = r->rng ^ 0x50454552ull;
    static uint8_t buf[8192];
    while (!r->peer_stop && !(r->quiet && r->peer_moved >= r->peer_limit)) {
        size_t len = 1 + (size_t)rs_test_rand_below(&rng, (int)sizeof buf);
        if (r->quiet && len > r->peer_limit - r->peer_moved)
            len = (size_t)(r->peer_limit - r->peer_moved);
        ssize_t n;
        if (r->kind == USE_SEND) {
            n = rs_recv(r->peer, buf, len, 0);
            if (n > 0 && !matches_stream(buf, (size_t)n, r->peer_moved))
                r->stream_ok = false;
        } else {
            fill_stream(buf, len, r->peer_moved);
            n = r->kind == USE_RECV ? rs_send(r->peer, buf, len, MSG_DONTWAIT) : rs_write(r->peer, buf, len, -1);
            if (n == -EAGAIN)
                n = 0; /* the tested side is slow: pause instead of blocking */
        }
        if (n < 0 || (n == 0 && r->kind == USE_SEND))
            break; /* the other end was closed, or the end of the stream */
        r->peer_moved += (uint64_t)n;
        for (int y = rs_test_rand_below(&rng, 3); y > 0; y--)
            RS_CHECK_OK(rs_yield());
    }
    return 0;
}

/* After the close in a quiet round (the peer has stopped): a sending task's
 * stream arrives whole, then its end, which proves the file was closed. */
static int drain_rest(round_state *r)
{
    static uint8_t buf[8192];
    for (;;) {
        ssize_t n = rs_recv(r->peer, buf, sizeof buf, 0);
        RS_CHECK(n >= 0);
        if (n == 0)
            return 0;
        if (!matches_stream(buf, (size_t)n, r->peer_moved))
            r->stream_ok = false;
        r->peer_moved += (uint64_t)n;
    }
}

static int one_round(round_state *r, tally *t)
{
    int ends[2];
    if (r->kind == USE_READ)
        RS_CHECK_EQ(pipe2(ends, O_CLOEXEC), 0);
    else
        RS_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends), 0);
    /* A pipe's read end is the tested one; either end of a socketpair. */
    r->fd = r->kind == USE_READ ? ends[0] : ends[1];
    r->peer = r->kind == USE_READ ? ends[1] : ends[0];
    r->stream_ok = true;

    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    r->quiet = rs_test_rand_below(&r->rng, 2);
    r->peer_limit = (uint64_t)rs_test_rand_below(&r->rng, 65536);
    rs_task *tt, *pt;
    RS_CHECK_OK(rs_spawn(s, tested, r, NULL, &tt));
    RS_CHECK_OK(rs_spawn(s, peer, r, NULL, &pt));
    for (int y = rs_test_rand_below(&r->rng, 24); y > 0 && !r->done; y--)
        RS_CHECK_OK(rs_yield());
    if (r->quiet) {
        /* Nothing but the close can end the tested task's wait now: no more
         * data comes, or nobody drains its full buffer any more. */
        RS_CHECK_OK(rs_task_join(pt, NULL));
        RS_CHECK_OK(rs_test_until_in_kernel(tt));
    }
    bool cancel_too = rs_test_rand_below(&r->rng, 4) == 0;
    bool parked = !r->done && tt->state == RS_TASK_WAITING;
    uint64_t moved_before = r->moved;
    if (cancel_too)
        rs_task_cancel(tt);
    RS_CHECK_OK(rs_close(r->fd));
    RS_CHECK_OK(rs_task_join(tt, NULL)); /* a stranded task hangs here */
    RS_CHECK(r->last == -EBADF || (cancel_too && r->last == -ECANCELED));
    if (r->kind != USE_SEND) {
        /* The buffer of the call the close ended stays untouched, also
         * after other tasks ran. */
        RS_CHECK_OK(rs_yield());
        for (size_t i = 0; i < sizeof r->late; i++)
            RS_CHECK_EQ(r->late[i], CANARY);
    }
    /* A receiving peer drains to the end of the stream, which comes only if
     * the file was really closed (else the scope's close hangs); any other
     * peer stops at its next step (a write into the closed pipe fails). */
    r->peer_stop = r->kind != USE_SEND;
    RS_CHECK_OK(rs_scope_close(s));
    if (r->kind == USE_SEND) {
        if (r->quiet)
            RS_CHECK_OK(drain_rest(r));
        RS_CHECK_EQ(r->peer_moved, r->moved);
    }
    RS_CHECK(r->stream_ok);
    if (r->kind == USE_RECV)
        RS_CHECK(r->moved <= r->peer_moved);
    RS_CHECK_OK(rs_close(r->peer));

    t->rounds++;
    t->ebadf += r->last == -EBADF;
    t->cancelled += r->last == -ECANCELED;
    t->parked_at_close += parked && r->last == -EBADF;
    t->quiet += r->quiet && r->last == -EBADF;
    t->data_then_close += r->moved > moved_before;
    return 0;
}

typedef struct seed_run {
    uint64_t seed;
    use_kind kind;
    tally t;
} seed_run;

static int rounds_main(void *arg)
{
    seed_run *sr = arg;
    uint64_t rng = sr->seed * 0x9E3779B97F4A7C15ull + (uint64_t)sr->kind;
    for (int i = 0; i < ROUNDS; i++) {
        round_state r = { .kind = sr->kind, .rng = rs_test_rand(&rng) };
        if (one_round(&r, &sr->t) != 0) {
            cr_expect_fail("seed %llu, round %d", (unsigned long long)sr->seed, i);
            return -1;
        }
    }
    return 0;
}

static void over_seeds(use_kind kind, const char *what)
{
    tally sum = { 0 };
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        seed_run sr = { .seed = seed, .kind = kind };
        int rc = rs_run(rounds_main, &sr, NULL);
        cr_assert_eq(rc, 0, "%s: seed %llu failed (%d)", what, (unsigned long long)seed, rc);
        sum.rounds += sr.t.rounds;
        sum.ebadf += sr.t.ebadf;
        sum.cancelled += sr.t.cancelled;
        sum.parked_at_close += sr.t.parked_at_close;
        sum.data_then_close += sr.t.data_then_close;
        sum.quiet += sr.t.quiet;
    }
    cr_log_info("%s: %ld rounds, %ld ended by the close (%ld of them parked in the kernel, %ld with nothing "
                "else left to end the wait), %ld by the cancellation, %ld with data moved between the decision to "
                "close and the close",
                what, sum.rounds, sum.ebadf, sum.parked_at_close, sum.quiet, sum.cancelled, sum.data_then_close);
    cr_expect_gt(sum.parked_at_close, sum.rounds / 8, "too few closes met a call parked in the kernel");
    cr_expect_gt(sum.cancelled, 0, "no close raced a cancellation of the same call");
    cr_expect_gt(sum.quiet, sum.rounds / 8, "too few closes were the only way out of a wait");
}

Test(io_close_stress, recv_on_a_socket_closed_by_another_task)
{
    over_seeds(USE_RECV, "recv");
}

Test(io_close_stress, read_on_a_pipe_closed_by_another_task)
{
    over_seeds(USE_READ, "read");
}

Test(io_close_stress, send_on_a_socket_closed_by_another_task)
{
    over_seeds(USE_SEND, "send");
}
