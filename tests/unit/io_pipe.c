/* rs_read and rs_write on pipes: suspension, short counts, EOF, EPIPE. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

TestSuite(io_pipe, .timeout = 20);

typedef struct pipe_pair {
    int rd, wr;
} pipe_pair;

static int open_pipe(pipe_pair *p, int flags)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | flags) != 0)
        return -errno;
    p->rd = fds[0];
    p->wr = fds[1];
    return 0;
}

static int late_writer(void *arg)
{
    pipe_pair *p = arg;
    RS_CHECK_OK(rs_sleep(20));
    RS_CHECK_EQ(rs_write(p->wr, "ping", 4, -1), 4);
    return 0;
}

/* The reader suspends (only itself) until the writer task writes. */
static int read_waits_for_writer(void *arg)
{
    int flags = *(int *)arg;
    pipe_pair p = { -1, -1 };
    RS_CHECK_OK(open_pipe(&p, flags));
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    RS_CHECK_OK(rs_spawn(s, late_writer, &p, NULL, NULL));
    int64_t t0 = rs_now_ms();
    char buf[16] = { 0 };
    RS_CHECK_EQ(rs_read(p.rd, buf, sizeof buf, -1), 4); /* short read: what is there */
    RS_CHECK(rs_now_ms() - t0 >= 15);
    RS_CHECK(memcmp(buf, "ping", 4) == 0);
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_OK(rs_close(p.rd));
    RS_CHECK_OK(rs_close(p.wr));
    return 0;
}

Test(io_pipe, read_suspends_until_data_arrives)
{
    int flags = 0;
    RS_RUN_OK(read_waits_for_writer, &flags);
}

/* A non-blocking pipe behaves the same: the task waits, it does not get -EAGAIN. */
Test(io_pipe, non_blocking_pipe_suspends_too)
{
    int flags = O_NONBLOCK;
    RS_RUN_OK(read_waits_for_writer, &flags);
}

static int eof_after_writer_closes(void *arg)
{
    (void)arg;
    pipe_pair p = { -1, -1 };
    RS_CHECK_OK(open_pipe(&p, 0));
    RS_CHECK_EQ(rs_write(p.wr, "abc", 3, -1), 3);
    RS_CHECK_OK(rs_close(p.wr));
    char buf[8];
    RS_CHECK_EQ(rs_read(p.rd, buf, sizeof buf, -1), 3);
    RS_CHECK_EQ(rs_read(p.rd, buf, sizeof buf, -1), 0);
    RS_CHECK_EQ(rs_read(p.rd, buf, sizeof buf, -1), 0);
    RS_CHECK_OK(rs_close(p.rd));
    return 0;
}

Test(io_pipe, eof_is_zero)
{
    RS_RUN_OK(eof_after_writer_closes, NULL);
}

/* The reader is gone: the write fails with -EPIPE and the process lives (the
 * kernel raises SIGPIPE for a pipe write; rs_run replaced its default action,
 * death, by "ignore"). */
static int epipe_without_signal(void *arg)
{
    (void)arg;
    pipe_pair p = { -1, -1 };
    RS_CHECK_OK(open_pipe(&p, 0));
    RS_CHECK_OK(rs_close(p.rd));
    RS_CHECK_EQ(rs_write(p.wr, "x", 1, -1), -EPIPE);
    RS_CHECK_EQ(rs_write(p.wr, "x", 1, -1), -EPIPE);
    RS_CHECK_OK(rs_close(p.wr));
    return 0;
}

Test(io_pipe, write_to_a_closed_pipe_is_epipe_and_never_kills)
{
    RS_RUN_OK(epipe_without_signal, NULL);
}

typedef struct drain_ctx {
    pipe_pair p;
    size_t want, got;
    bool ok;
} drain_ctx;

static int drain(void *arg)
{
    drain_ctx *c = arg;
    char buf[3000];
    while (c->got < c->want) {
        ssize_t r = rs_read(c->p.rd, buf, sizeof buf, -1);
        RS_CHECK(r > 0);
        for (ssize_t i = 0; i < r; i++)
            RS_CHECK_EQ((unsigned char)buf[i], (unsigned char)((c->got + (size_t)i) % 251));
        c->got += (size_t)r;
    }
    c->ok = true;
    return 0;
}

/* A pipe of one page takes one page: a larger write comes back short, as a
 * count, and the caller writes the rest when a reader made room. */
static int short_writes(void *arg)
{
    (void)arg;
    enum { TOTAL = 65536 };
    static unsigned char out[TOTAL];
    for (size_t i = 0; i < TOTAL; i++)
        out[i] = (unsigned char)(i % 251);
    drain_ctx c = { .p = { -1, -1 }, .want = TOTAL };
    RS_CHECK_OK(open_pipe(&c.p, 0));
    long page = sysconf(_SC_PAGESIZE);
    RS_CHECK_EQ(fcntl(c.p.wr, F_SETPIPE_SZ, (int)page), page);

    ssize_t first = rs_write(c.p.wr, out, 2 * (size_t)page, -1);
    RS_CHECK_EQ(first, page);

    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    RS_CHECK_OK(rs_spawn(s, drain, &c, NULL, NULL));
    size_t done = (size_t)first;
    unsigned calls = 1;
    while (done < TOTAL) {
        ssize_t w = rs_write(c.p.wr, out + done, TOTAL - done, -1);
        RS_CHECK(w > 0 && (size_t)w <= TOTAL - done);
        done += (size_t)w;
        calls++;
    }
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK(c.ok);
    RS_CHECK_EQ(c.got, TOTAL);
    RS_CHECK(calls > 2); /* the pipe cannot have taken it in one or two writes */
    RS_CHECK_OK(rs_close(c.p.rd));
    RS_CHECK_OK(rs_close(c.p.wr));
    return 0;
}

Test(io_pipe, short_writes_are_counts)
{
    RS_RUN_OK(short_writes, NULL);
}

/* Pipes cannot seek: the offset is not used, data flows in order. */
static int offsets_on_a_pipe(void *arg)
{
    (void)arg;
    pipe_pair p = { -1, -1 };
    RS_CHECK_OK(open_pipe(&p, 0));
    RS_CHECK_EQ(rs_write(p.wr, "ab", 2, -1), 2);
    RS_CHECK_EQ(rs_write(p.wr, "cd", 2, 0), 2);
    char buf[4];
    RS_CHECK_EQ(rs_read(p.rd, buf, 4, 0), 4);
    RS_CHECK(memcmp(buf, "abcd", 4) == 0);
    RS_CHECK_OK(rs_close(p.rd));
    RS_CHECK_OK(rs_close(p.wr));
    return 0;
}

Test(io_pipe, offset_zero_or_minus_one_on_a_pipe)
{
    RS_RUN_OK(offsets_on_a_pipe, NULL);
}
