/* ringscope-bench: the API for suite authors.
 *
 * A suite is one C file in bench/ that registers itself; nothing central is
 * edited to add one:
 *
 *     static int run_lock(rs_bench *b) { ...; return 0; }
 *     RS_BENCH_SUITE("lock", 100, "mutex acquire+release and hand-off, beside Boost.Fiber", run_lock);
 *
 * Suites run in ascending `order` (then by name): 10-49 runtime (switch, spawn,
 * sleep, tasks-max), 100-199 synchronization, 200-299 I/O, 300-399 stores.
 * A suite runs on the tool's main thread, outside any runtime: it calls
 * rs_run() itself for the ringscope side (a runtime per measurement is fine:
 * time inside the task, not around rs_run) and calls peers directly.
 *
 * Method (what every suite must follow):
 *  - time with rs_bench_now_ns() (CLOCK_MONOTONIC), inside the measured code;
 *  - repeat every measurement rs_bench_reps(b) times and report the median:
 *    rs_bench_compare() does both, interleaving the implementations
 *    (A B A B ...) so that drift on a shared machine hits each side alike;
 *  - every figure printed is measured: never type a number into a row.
 *
 * Results go into rows (suite, case, implementation, value, unit); a ratio
 * row relates an implementation's median to a peer's in the same case. The
 * tool prints them as a table on stdout and, with --json, to a file.
 * A suite returns 0, or a negative errno when it could not measure (the tool
 * then reports the failure, runs the other suites and exits non-zero). */
#ifndef RS_BENCH_H
#define RS_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ringscope/runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_bench rs_bench; /* the running suite's context */

/* ------------------------------------------------------------ registration */

typedef struct rs_bench_suite {
    const char *name;        /* selects the suite on the command line: lower case, '-' between words */
    int order;               /* position in a full run (see above) */
    const char *description; /* one line for --list */
    int (*run)(rs_bench *b);
    struct rs_bench_suite *next;
} rs_bench_suite;

void rs_bench_register(rs_bench_suite *s);

/* Registers run() under name before main() starts. Use once per suite. */
#define RS_BENCH_SUITE(name_, order_, description_, run_)                                                       \
    static rs_bench_suite rs_bench_suite_##run_ = { (name_), (order_), (description_), (run_), NULL };        \
    __attribute__((constructor)) static void rs_bench_register_##run_(void)                                     \
    {                                                                                                          \
        rs_bench_register(&rs_bench_suite_##run_);                                                             \
    }

/* ------------------------------------------------------------ run options */

bool rs_bench_quick(const rs_bench *b);             /* --quick: a short smoke run (whole tool well under a minute) */
unsigned rs_bench_reps(const rs_bench *b);          /* repetitions per measurement (--reps; 7, quick 3) */
const char *rs_bench_store_url(const rs_bench *b);  /* --store URL for store suites; default "memory:" */

/* full or quick, by the run's mode: e.g. an iteration count. */
static inline uint64_t rs_bench_pick(const rs_bench *b, uint64_t full, uint64_t quick)
{
    return rs_bench_quick(b) ? quick : full;
}

/* A progress line on stderr, only when stderr is a terminal. */
void rs_bench_progress(const rs_bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------ timing */

int64_t rs_bench_now_ns(void); /* CLOCK_MONOTONIC */

/* Median of n values (sorts v in place); NaN for n == 0. */
double rs_bench_median(double *v, size_t n);

/* Value at quantile q in [0, 1] of n values (sorts v; nearest rank). */
double rs_bench_quantile(double *v, size_t n, double q);

/* ------------------------------------------------------------ reporting */

/* A measured value that is not a median of repetitions (e.g. a count). */
void rs_bench_value(rs_bench *b, const char *case_name, const char *impl, double value, const char *unit);

/* Reports the median of n repetitions (samples kept in the JSON); returns it. */
double rs_bench_samples(rs_bench *b, const char *case_name, const char *impl, const double *samples, size_t n,
                        const char *unit);

/* ratio = impl's value / peer's value in the same case and unit. The table
 * shows it as "0.62x of peer" on impl's row; whether lower or higher is better
 * follows from the unit (ns per op: lower; ops per s: higher). */
void rs_bench_ratio(rs_bench *b, const char *case_name, const char *impl, const char *peer, double ratio);

/* A line of text printed under the suite's rows and kept in the JSON
 * (configuration, why a run stopped, which errno a call returned ...). */
void rs_bench_note(rs_bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------ comparing implementations */

/* One run of one implementation: stores the figure (e.g. ns per op) in *value;
 * returns 0 or a negative errno. */
typedef int (*rs_bench_fn)(void *arg, double *value);

typedef struct rs_bench_impl {
    const char *name; /* "ringscope", "boost.context", "epoll" ... */
    rs_bench_fn fn;
    void *arg;
} rs_bench_impl;

/* Runs each implementation once untimed (warm-up), then rs_bench_reps(b)
 * rounds of impls[0], impls[1], ... in turn; reports each one's median as a
 * row of case_name, and the ratio of impls[0] to every other implementation.
 * Returns 0 or the first error of an fn (after which nothing is reported). */
int rs_bench_compare(rs_bench *b, const char *case_name, const char *unit, const rs_bench_impl *impls, size_t n);

/* From inside a task: runs n tasks in a fresh scope to their end, task 0
 * running first(arg) and the others rest(arg). Returns the first error: a
 * failed spawn (the tasks already started are cancelled) or the scope's. */
int rs_bench_run_tasks(unsigned n, rs_task_fn first, rs_task_fn rest, void *arg);

/* The cost of one switch: two ringscope tasks rs_yield()ing to each other,
 * *(const uint64_t *)arg times each; ns per switch in *ns. An rs_bench_fn,
 * so any suite can measure it in its own rounds as a same-run reference
 * (defined by the switch suite). */
int rs_bench_yield_switch(void *arg, double *ns);

/* ------------------------------------------------------------ experiments in a child process */

#define RS_BENCH_CHILD_VALUES 16

/* What a child experiment sends back. */
typedef struct rs_bench_child {
    double v[RS_BENCH_CHILD_VALUES];
    char note[256]; /* optional text (e.g. why it stopped) */
} rs_bench_child;

/* Runs fn(arg, out) in a forked child so that its memory (peak RSS) and any
 * crash belong to that experiment alone; fn's return value is the child's
 * result. Returns fn's value, or -ECHILD if the child died without answering
 * (a message naming the signal is printed on stderr). */
int rs_bench_in_child(int (*fn)(void *arg, rs_bench_child *out), void *arg, rs_bench_child *out);

/* A field of /proc/self/status in KiB ("VmRSS", "VmHWM"), or a negative errno. */
int64_t rs_bench_status_kib(const char *field);

/* Resets VmHWM to the current RSS (/proc/self/clear_refs); 0 or a negative errno. */
int rs_bench_reset_peak_rss(void);

#ifdef __cplusplus
}
#endif

#endif
