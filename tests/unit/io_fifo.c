/* rs_open on FIFOs (named pipes): opening for writing waits for a reader, as
 * open(2) does, suspending only the calling task and ending at a
 * cancellation; opening for reading does not wait (docs/IO.md); O_NONBLOCK
 * keeps open(2)'s answer. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

static char dir[] = "/tmp/rs-io-fifo-XXXXXX";
static char fifo[PATH_MAX];

static void make_fifo(void)
{
    cr_assert_not_null(mkdtemp(dir));
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
}

static void remove_fifo(void)
{
    unlink(fifo);
    rmdir(dir);
}

TestSuite(io_fifo, .init = make_fifo, .fini = remove_fifo, .timeout = 20);

typedef struct fifo_run {
    int write_fd;
    bool reader_opened; /* set before the reader's open */
    int ticks;          /* the ticker's steps while the writer's open waited */
    bool writer_done;
} fifo_run;

static int open_for_writing(void *arg)
{
    fifo_run *r = arg;
    r->write_fd = rs_open(fifo, O_WRONLY | O_CLOEXEC, 0);
    RS_CHECK(r->write_fd >= 0);
    RS_CHECK(r->reader_opened); /* it waited for the reader */
    RS_CHECK_EQ(rs_write(r->write_fd, "fifo", 4, -1), 4);
    RS_CHECK_OK(rs_close(r->write_fd));
    r->writer_done = true;
    return 0;
}

/* Runs while the writer's open waits: only that task is suspended. */
static int ticker_then_reader(void *arg)
{
    fifo_run *r = arg;
    for (r->ticks = 0; r->ticks < 5; r->ticks++)
        RS_CHECK_OK(rs_sleep(2));
    RS_CHECK(!r->writer_done);
    r->reader_opened = true;
    int fd = rs_open(fifo, O_RDONLY | O_CLOEXEC, 0);
    RS_CHECK(fd >= 0);
    char buf[8] = { 0 };
    RS_CHECK_EQ(rs_read(fd, buf, sizeof buf, -1), 4);
    RS_CHECK(memcmp(buf, "fifo", 4) == 0);
    RS_CHECK_EQ(rs_read(fd, buf, sizeof buf, -1), 0); /* the writer closed */
    RS_CHECK_OK(rs_close(fd));
    return 0;
}

static int writer_waits_for_reader(void *arg)
{
    (void)arg;
    fifo_run r = { .write_fd = -1 };
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 10000 }, &s));
    RS_CHECK_OK(rs_spawn(s, open_for_writing, &r, NULL, NULL));
    RS_CHECK_OK(rs_spawn(s, ticker_then_reader, &r, NULL, NULL));
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK(r.writer_done);
    RS_CHECK_EQ(r.ticks, 5);
    return 0;
}

Test(io_fifo, opening_for_writing_waits_for_a_reader_suspending_only_the_task)
{
    RS_RUN_OK(writer_waits_for_reader, NULL);
}

static int open_result;

static int open_without_reader(void *arg)
{
    (void)arg;
    open_result = rs_open(fifo, O_WRONLY | O_CLOEXEC, 0);
    return 0;
}

static int cancelled_while_waiting(void *arg)
{
    (void)arg;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 50 }, &s));
    RS_CHECK_OK(rs_spawn(s, open_without_reader, NULL, NULL, NULL));
    int64_t t0 = rs_now_ms();
    RS_CHECK_EQ(rs_scope_close(s), -ETIMEDOUT);
    int64_t waited = rs_now_ms() - t0;
    RS_CHECK_EQ(open_result, -ECANCELED); /* not the kernel's internal restart code */
    RS_CHECK(waited >= 45 && waited < 2000);
    /* No writer was left open: a non-blocking read (plain read(2), which
     * cannot wait) sees end of file, not -EAGAIN of a writer to wait for. */
    int fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    RS_CHECK(fd >= 0);
    char c;
    RS_CHECK_EQ(read(fd, &c, 1), 0);
    close(fd);
    return 0;
}

Test(io_fifo, a_writer_waiting_for_a_reader_is_cancelled)
{
    RS_RUN_OK(cancelled_while_waiting, NULL);
}

/* The cancellation arrives before the first, non-blocking attempt ran: that
 * attempt still completes (-ENXIO) and the cancellation request finds
 * nothing to cancel. The open must not then start its waiting attempt. */
static int cancel_before_the_first_attempt(void *arg)
{
    (void)arg;
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    RS_CHECK_OK(rs_spawn(s, open_without_reader, NULL, NULL, NULL));
    RS_CHECK_OK(rs_yield()); /* the opener queues its open and parks */
    rs_scope_cancel(s);
    RS_CHECK_OK(rs_scope_close(s));
    return 0;
}

static int bounded_cancel_before_the_first_attempt(void *arg)
{
    (void)arg;
    open_result = 0;
    /* Should the open wait for a reader after all, this limit ends it. */
    rs_scope *outer;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 2000 }, &outer));
    RS_CHECK_OK(rs_spawn(outer, cancel_before_the_first_attempt, NULL, NULL, NULL));
    RS_CHECK_OK(rs_scope_close(outer)); /* -ETIMEDOUT if the open waited */
    RS_CHECK_EQ(open_result, -ECANCELED);
    return 0;
}

Test(io_fifo, a_cancellation_before_the_first_attempt_ends_the_open)
{
    RS_RUN_OK(bounded_cancel_before_the_first_attempt, NULL);
}

static int nonblocking_without_reader(void *arg)
{
    (void)arg;
    RS_CHECK_EQ(rs_open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC, 0), -ENXIO);
    return 0;
}

Test(io_fifo, o_nonblock_without_a_reader_is_enxio_as_with_open)
{
    RS_RUN_OK(nonblocking_without_reader, NULL);
}

static int read_open_does_not_wait(void *arg)
{
    (void)arg;
    int64_t t0 = rs_now_ms();
    int fd = rs_open(fifo, O_RDONLY | O_CLOEXEC, 0);
    RS_CHECK(fd >= 0);
    RS_CHECK(rs_now_ms() - t0 < 1000);
    RS_CHECK_OK(rs_close(fd));
    return 0;
}

Test(io_fifo, opening_for_reading_does_not_wait_for_a_writer)
{
    RS_RUN_OK(read_open_does_not_wait, NULL);
}
