/* A call that goes back to its descriptor after a suspension (a send that
 * waits for room and sends again, a connect that restores the descriptor's
 * flags) while another task rs_closes it and a new file takes the number:
 * the call ends with -EBADF and never touches the new file. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "io_support.h"

TestSuite(io_close_reuse, .timeout = 20);

static const char message[] = "for the old peer";

typedef struct reuse {
    int old_fd;      /* the descriptor the waiting call was given */
    int new_pair[2]; /* made by the closer right after closing old_fd */
    int cue[2];      /* a pipe: the closer starts when it becomes readable */
    ssize_t rc;      /* the waiting call's result */
} reuse;

static int send_waiting_for_room(void *arg)
{
    reuse *r = arg;
    r->rc = rs_send(r->old_fd, message, sizeof message, 0);
    return 0;
}

static void fill(int fd)
{
    char junk[4096] = { 0 };
    while (send(fd, junk, sizeof junk, MSG_DONTWAIT) > 0)
        ;
}

static int old_pair(reuse *r, int peer[2])
{
    RS_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, peer), 0);
    fill(peer[0]);
    r->old_fd = peer[0];
    r->rc = 1;
    return 0;
}

/* The number was taken again (the case under test), and the new pair's
 * peer holds nothing but the zeros of fill(): no byte of the message. */
static int check_new_pair_untouched(const reuse *r, int old_fd)
{
    RS_CHECK_EQ(r->new_pair[0], old_fd);
    char got[4096];
    ssize_t n;
    while ((n = recv(r->new_pair[1], got, sizeof got, MSG_DONTWAIT)) > 0)
        for (ssize_t i = 0; i < n; i++)
            RS_CHECK_EQ(got[i], 0);
    RS_CHECK_EQ(n, -1);
    RS_CHECK_EQ(errno, EAGAIN);
    close(r->new_pair[0]);
    close(r->new_pair[1]);
    return 0;
}

/* rs_close, then a new pair takes the number; the new pair's buffer is full,
 * so a wait for room on it would never end. */
static int close_and_take_the_number(void *arg)
{
    reuse *r = arg;
    RS_CHECK_OK(rs_close(r->old_fd));
    RS_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, r->new_pair), 0);
    fill(r->new_pair[0]);
    return 0;
}

/* The send's first attempt finds the buffer full in the same kernel trip as
 * the close; the new pair takes the number before the send's wait for room
 * reaches the kernel. (Without the check, that wait is on the new socket.) */
static int closed_before_the_wait(void *arg)
{
    (void)arg;
    int peer[2];
    reuse r;
    RS_CHECK_OK(old_pair(&r, peer));
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(&(rs_scope_opts){ .timeout_ms = 5000 }, &s)); /* bounds a wrong wait */
    RS_CHECK_OK(rs_spawn(s, send_waiting_for_room, &r, NULL, NULL));
    RS_CHECK_OK(rs_spawn(s, close_and_take_the_number, &r, NULL, NULL));
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(r.rc, -EBADF);
    RS_CHECK_OK(check_new_pair_untouched(&r, peer[0]));
    close(peer[1]);
    return 0;
}

Test(io_close_reuse, a_send_closed_before_its_wait_for_room_never_waits_on_the_new_file)
{
    RS_RUN_OK(closed_before_the_wait, NULL);
}

/* Waits for the cue, then closes old_fd without suspending (a cancelled
 * task's rs_close closes at once) and makes the new pair, which can take
 * data: all before the sender, woken in the same round, runs again. */
static int close_on_cue(void *arg)
{
    reuse *r = arg;
    char c;
    RS_CHECK_EQ(rs_read(r->cue[0], &c, 1, -1), 1);
    rs_scope_cancel(rs_current_scope());
    RS_CHECK_EQ(rs_close(r->old_fd), -ECANCELED);
    RS_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, r->new_pair), 0);
    return 0;
}

/* The room comes, and the closer runs between the sender's wake-up and its
 * second attempt. (Without the check, that attempt sends to the new peer.) */
static int closed_before_the_second_attempt(void *arg)
{
    (void)arg;
    int peer[2];
    reuse r;
    RS_CHECK_OK(old_pair(&r, peer));
    RS_CHECK_EQ(pipe2(r.cue, O_CLOEXEC), 0);
    rs_scope *senders, *closers;
    rs_task *sender, *closer;
    RS_CHECK_OK(rs_scope_open(NULL, &senders));
    RS_CHECK_OK(rs_scope_open(NULL, &closers));
    RS_CHECK_OK(rs_spawn(senders, send_waiting_for_room, &r, NULL, &sender));
    RS_CHECK_OK(rs_spawn(closers, close_on_cue, &r, NULL, &closer));
    RS_CHECK_OK(rs_test_until_in_kernel(sender));
    RS_CHECK_OK(rs_test_until_in_kernel(closer));
    /* The closer's read completes first, so it runs first in the round that
     * wakes both. */
    RS_CHECK_EQ(write(r.cue[1], "x", 1), 1);
    char drain[4096];
    while (recv(peer[1], drain, sizeof drain, MSG_DONTWAIT) > 0)
        ;
    RS_CHECK_OK(rs_scope_close(closers));
    RS_CHECK_OK(rs_scope_close(senders));
    RS_CHECK_EQ(r.rc, -EBADF);
    RS_CHECK_OK(check_new_pair_untouched(&r, peer[0]));
    close(peer[1]);
    close(r.cue[0]);
    close(r.cue[1]);
    return 0;
}

Test(io_close_reuse, a_send_closed_before_its_second_attempt_never_sends_to_the_new_file)
{
    RS_RUN_OK(closed_before_the_second_attempt, NULL);
}

typedef struct connecting {
    int fd;
    struct sockaddr_un addr;
    int rc;
} connecting;

static int connector(void *arg)
{
    connecting *c = arg;
    c->rc = rs_connect(c->fd, (struct sockaddr *)&c->addr, sizeof c->addr);
    return 0;
}

/* An AF_UNIX connect with O_NONBLOCK to a listener whose backlog is full
 * waits with O_NONBLOCK cleared, and puts it back when it returns; closed
 * meanwhile, it must leave the flags of the file that took the number. */
static int connect_after_reuse(void *arg)
{
    (void)arg;
    connecting c = { .addr = { .sun_family = AF_UNIX }, .rc = 1 };
    /* Abstract address: nothing on the file system to clean up. */
    snprintf(c.addr.sun_path + 1, sizeof c.addr.sun_path - 1, "ringscope-reuse-%d", getpid());
    int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    RS_CHECK(listener >= 0);
    RS_CHECK_EQ(bind(listener, (struct sockaddr *)&c.addr, sizeof c.addr), 0);
    RS_CHECK_EQ(listen(listener, 0), 0);
    int fill[8], nfill = 0;
    while (nfill < 8) {
        int f = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        RS_CHECK(f >= 0);
        if (connect(f, (struct sockaddr *)&c.addr, sizeof c.addr) != 0) {
            close(f);
            break;
        }
        fill[nfill++] = f;
    }
    RS_CHECK(nfill < 8); /* the backlog is full */
    c.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    RS_CHECK(c.fd >= 0);

    rs_scope *s;
    rs_task *t;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    RS_CHECK_OK(rs_spawn(s, connector, &c, NULL, &t));
    /* The connector is in its blocking wait once it cleared O_NONBLOCK. */
    while (fcntl(c.fd, F_GETFL) & O_NONBLOCK)
        RS_CHECK_OK(rs_yield());
    RS_CHECK_OK(rs_test_until_in_kernel(t));
    RS_CHECK_OK(rs_close(c.fd));
    int taker = open("/dev/null", O_WRONLY | O_APPEND | O_CLOEXEC);
    RS_CHECK_EQ(taker, c.fd); /* the case under test: the number was taken again */
    RS_CHECK_OK(rs_task_join(t, NULL));
    RS_CHECK_EQ(c.rc, -EBADF);
    int fl = fcntl(taker, F_GETFL);
    RS_CHECK(fl & O_APPEND);
    RS_CHECK(!(fl & O_NONBLOCK));
    RS_CHECK_OK(rs_scope_close(s));
    close(taker);
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    close(listener);
    return 0;
}

Test(io_close_reuse, a_connect_woken_by_rs_close_leaves_the_new_files_flags_alone)
{
    RS_RUN_OK(connect_after_reuse, NULL);
}

/* rs_close counts closes per number in a table; a number that is not open
 * (a bad argument) must not grow it. */
static int close_of_a_number_never_opened(void *arg)
{
    (void)arg;
    const int huge = 1 << 24;
    RS_CHECK_EQ(rs_close(huge), -EBADF);
    RS_CHECK(rs__worker_get()->fd_closes_len <= (uint32_t)huge / 2);
    return 0;
}

Test(io_close_reuse, closing_a_number_that_is_not_open_leaves_the_close_table_alone)
{
    RS_RUN_OK(close_of_a_number_never_opened, NULL);
}
