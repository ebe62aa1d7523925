/* Running an example program as a separate process, as users run it: its
 * stdout and stderr through pipes, its exit through a pidfd, every wait
 * bounded by LIMIT_MS. For the example_*.c tests. */
#ifndef RS_TESTS_INTEGRATION_EXAMPLE_PROCESS_H
#define RS_TESTS_INTEGRATION_EXAMPLE_PROCESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2 */
#endif

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define LIMIT_MS 10000

extern char **environ;

typedef struct example_proc {
    pid_t pid;
    int pidfd;
    int out; /* the program's stdout */
    int err; /* the program's stderr */
    char out_text[4096], err_text[8192];
    size_t out_len, err_len;
} example_proc;

static inline void start(example_proc *p, const char *path, char *const argv[])
{
    int out[2], err[2];
    cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(err, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, err[1], STDERR_FILENO);
    int rc = posix_spawn(&p->pid, path, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "cannot start %s: %s", path, strerror(rc));
    close(out[1]);
    close(err[1]);
    p->out = out[0];
    p->err = err[0];
    p->out_len = p->err_len = 0;
    p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
    cr_assert_geq(p->pidfd, 0, "pidfd_open: %s", strerror(errno));
}

/* Appends what fd has to buf (NUL-terminated); false at end of file. */
static inline bool drain_once(int fd, char *buf, size_t cap, size_t *len)
{
    ssize_t n = read(fd, buf + *len, cap - 1 - *len);
    if (n > 0)
        *len += (size_t)n;
    buf[*len] = '\0';
    return n > 0;
}

/* Waits (bounded) for the exit and collects stderr; returns the wait status. */
static inline int wait_exit(example_proc *p)
{
    struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };
    if (poll(&pfd, 1, LIMIT_MS) != 1) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        cr_assert_fail("the program did not exit within %d ms", LIMIT_MS);
    }
    int status = 0;
    cr_assert_eq(waitpid(p->pid, &status, 0), p->pid);
    while (drain_once(p->err, p->err_text, sizeof p->err_text, &p->err_len))
        ;
    while (drain_once(p->out, p->out_text, sizeof p->out_text, &p->out_len))
        ;
    close(p->pidfd);
    close(p->out);
    close(p->err);
    return status;
}

#endif
