/* A task that overflows its stack is reported by name and stack size, and
 * the process aborts with SIGABRT instead of corrupting memory silently.
 * Each case runs in a child process whose stderr is captured. */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"
#include "runtime/stack.h"

static volatile int sink;

/* Recursion the compiler cannot turn into a loop: each frame keeps a buffer
 * alive across the call. */
static volatile int keep_going = 1;

static int recurse_forever(int depth)
{
    volatile char frame[512];
    frame[0] = (char)depth;
    int r = keep_going ? recurse_forever(depth + 1) : 0;
    sink = frame[0];
    return r + frame[depth % 512];
}

static int overflow_at_once(void *arg)
{
    (void)arg;
    return recurse_forever(0);
}

/* Recursion with small frames that goes deeper than the stack allows, comes
 * back, and then switches: on a stack without a guard page the damaged red
 * zone is noticed at the switch. */
static __attribute__((noinline)) int recurse_to(int depth)
{
    volatile char frame[160];
    frame[depth % 160] = (char)depth;
    return depth ? recurse_to(depth - 1) + frame[depth % 160] : 0;
}

static int overflow_then_yield(void *arg)
{
    (void)arg;
    sink = recurse_to(64 * 1024 / 160 + 64);
    rs_yield();
    return 0;
}

typedef struct overflow_case {
    rs_task_fn body;
    bool no_guard_pages;
} overflow_case;

static int spawn_overflowing(void *arg)
{
    const overflow_case *c = arg;
    rs_task *t;
    int rc = rs_spawn(rs_current_scope(), c->body, NULL,
                      &(rs_spawn_opts){ .name = "deep-recursion", .stack_size = 64 * 1024 }, &t);
    if (rc)
        return rc;
    int r;
    return rs_task_join(t, &r);
}

static void run_child(const overflow_case *c, int *status, char *out, size_t cap)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        if (c->no_guard_pages)
            rs__stack_set_guard_budget(0);
        rs_run(spawn_overflowing, (void *)c, NULL);
        _exit(0); /* not reached when the overflow is detected */
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t got;
    while (n + 1 < cap && (got = read(fds[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)got;
    out[n] = '\0';
    close(fds[0]);
    cr_assert_eq(waitpid(pid, status, 0), pid);
}

static void expect_report(const overflow_case *c)
{
    int status;
    char out[4096];
    run_child(c, &status, out, sizeof out);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "child did not abort (status %#x), stderr: %s",
              status, out);
    cr_assert(strstr(out, "stack overflow") != NULL, "stderr: %s", out);
    cr_assert(strstr(out, "deep-recursion") != NULL, "stderr: %s", out);
    cr_assert(strstr(out, "65536") != NULL, "stderr: %s", out);
}

Test(stack_overflow, a_guard_page_hit_is_reported_with_name_and_size, .timeout = 20)
{
    expect_report(&(overflow_case){ .body = overflow_at_once });
}

Test(stack_overflow, without_guard_pages_the_red_zone_check_reports_it, .timeout = 20)
{
    expect_report(&(overflow_case){ .body = overflow_then_yield, .no_guard_pages = true });
}

Test(stack_overflow, without_guard_pages_runaway_recursion_is_reported, .timeout = 20)
{
    expect_report(&(overflow_case){ .body = overflow_at_once, .no_guard_pages = true });
}

static int deep_but_within(void *arg)
{
    (void)arg;
    sink = recurse_to(40 * 1024 / 160); /* well inside 256 KiB, even with sanitizer frames */
    return rs_yield();
}

static int spawn_within(void *arg)
{
    (void)arg;
    rs_task *t;
    int rc = rs_spawn(rs_current_scope(), deep_but_within, NULL, &(rs_spawn_opts){ .stack_size = 256 * 1024 }, &t);
    if (rc)
        return rc;
    int r = -1;
    RS_CHECK_OK(rs_task_join(t, &r));
    return r;
}

Test(stack_overflow, deep_but_honest_use_is_not_reported, .timeout = 20)
{
    rs__stack_set_guard_budget(0);
    RS_RUN_OK(spawn_within, NULL);
    rs__stack_set_guard_budget(-1);
    RS_RUN_OK(spawn_within, NULL);
}
