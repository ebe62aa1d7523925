/* ringscope-bench: clocks, medians, interleaved comparisons and experiments in
 * child processes (the measuring half of bench.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ringscope.h>

#include "tool.h"

bool rs_bench_quick(const rs_bench *b)
{
    return b->quick;
}

unsigned rs_bench_reps(const rs_bench *b)
{
    return b->reps;
}

const char *rs_bench_store_url(const rs_bench *b)
{
    return b->store_url;
}

void rs_bench_progress(const rs_bench *b, const char *fmt, ...)
{
    if (!b->progress)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%s] ", b->suite->name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int64_t rs_bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double rs_bench_median(double *v, size_t n)
{
    if (n == 0)
        return NAN;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double rs_bench_quantile(double *v, size_t n, double q)
{
    if (n == 0)
        return NAN;
    qsort(v, n, sizeof *v, cmp_double);
    size_t rank = q <= 0 ? 1 : (size_t)ceil(q * (double)n); /* nearest rank, 1-based */
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

/* ------------------------------------------------------------ comparisons */

int rs_bench_compare(rs_bench *b, const char *case_name, const char *unit, const rs_bench_impl *impls, size_t n)
{
    if (!impls || n == 0)
        return -EINVAL;
    unsigned reps = b->reps;
    double *samples = calloc(n * reps, sizeof *samples);
    double *medians = calloc(n, sizeof *medians);
    if (!samples || !medians) {
        free(samples), free(medians);
        return -ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        double warm;
        rs_bench_progress(b, "%s: %s warm-up", case_name, impls[i].name);
        rc = impls[i].fn(impls[i].arg, &warm);
    }
    for (unsigned r = 0; r < reps && !rc; r++) {
        for (size_t i = 0; i < n && !rc; i++) {
            rc = impls[i].fn(impls[i].arg, &samples[i * reps + r]);
            rs_bench_progress(b, "%s: %s %u/%u: %.4g %s", case_name, impls[i].name, r + 1, reps,
                              samples[i * reps + r], unit);
        }
    }
    if (rc) {
        rs_bench_note(b, "%s: measurement failed: %s", case_name, rs_strerror(rc));
    } else {
        for (size_t i = 0; i < n; i++)
            medians[i] = rs_bench_samples(b, case_name, impls[i].name, &samples[i * reps], reps, unit);
        for (size_t i = 1; i < n; i++)
            rs_bench_ratio(b, case_name, impls[0].name, impls[i].name, medians[0] / medians[i]);
    }
    free(samples);
    free(medians);
    return rc;
}

/* ------------------------------------------------------------ child experiments */

static int read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

static void write_full(int fd, const void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, (const char *)buf + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        done += (size_t)n;
    }
}

typedef struct child_answer {
    int rc;
    rs_bench_child out;
} child_answer;

int rs_bench_in_child(int (*fn)(void *arg, rs_bench_child *out), void *arg, rs_bench_child *out)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC))
        return -errno;
    fflush(stdout); /* the child must not print the parent's buffered output again */
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        int rc = -errno;
        close(fds[0]), close(fds[1]);
        return rc;
    }
    if (pid == 0) {
        close(fds[0]);
        child_answer a;
        memset(&a, 0, sizeof a);
        a.rc = fn(arg, &a.out);
        write_full(fds[1], &a, sizeof a);
        fflush(stderr);
        _exit(0);
    }
    close(fds[1]);
    child_answer a;
    bool answered = read_full(fds[0], &a, sizeof a) == 0;
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!answered) {
        if (WIFSIGNALED(status))
            fprintf(stderr, "ringscope-bench: experiment process died of signal %d (%s)\n", WTERMSIG(status),
                    strsignal(WTERMSIG(status)));
        else
            fprintf(stderr, "ringscope-bench: experiment process exited (status %d) without a result\n",
                    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return -ECHILD;
    }
    *out = a.out;
    return a.rc;
}

int64_t rs_bench_status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -errno;
    size_t flen = strlen(field);
    char line[256];
    int64_t kib = -ENOENT;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, field, flen) && line[flen] == ':') {
            kib = strtoll(line + flen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

int rs_bench_reset_peak_rss(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = write(fd, "5", 1) == 1 ? 0 : -errno;
    close(fd);
    return rc;
}

int rs_bench_run_tasks(unsigned n, rs_task_fn first, rs_task_fn rest, void *arg)
{
    rs_scope *s;
    int rc = rs_scope_open(NULL, &s);
    if (rc)
        return rc;
    for (unsigned i = 0; i < n && !rc; i++)
        rc = rs_spawn(s, i == 0 ? first : rest, arg, NULL, NULL);
    if (rc)
        rs_scope_cancel(s);
    int crc = rs_scope_close(s);
    return rc ? rc : crc;
}
