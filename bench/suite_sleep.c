/* Suite "sleep": 100,000 concurrent sleeping tasks (quick: 10,000).
 *
 * One experiment, in a child process of its own so that its peak RSS is its
 * own: the main task spawns n tasks (timed: "spawn"); each parks on a gate
 * (the signal of a scope the main task cancels once all are parked: "start"
 * is the time until then, first stack touches included); when the gate opens
 * every task takes deadline = now + 10 ms and calls rs_sleep(10), and records
 * (time it runs again - deadline) when it wakes. So all n sleeps are pending
 * together, with deadlines spread over the time it takes to release the gate.
 * Peak RSS per task = (VmHWM at the end - VmRSS before the first spawn) / n.
 * Run with the default stack size and with 16 KiB stacks, in turn. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ringscope.h>

#include "bench.h"

#define SLEEP_MS 10

typedef struct sleep_cfg {
    uint64_t n;
    size_t stack_size; /* 0: the runtime's default */
    const char *label;
} sleep_cfg;

typedef struct sleep_exp sleep_exp;

typedef struct sleeper {
    sleep_exp *e;
    int64_t deadline_ns, lateness_ns;
} sleeper;

struct sleep_exp {
    const sleep_cfg *cfg;
    sleeper *tasks;
    rs_signal *gate;
    uint64_t parked;
    int64_t spawn_ns, start_ns;
};

/* What the child sends back, by index into rs_bench_child.v. */
enum { V_SPAWN_NS, V_START_NS, V_SPREAD_MS, V_P50, V_P99, V_MAX, V_MIN, V_PEAK_KIB, V_COUNT };

static int sleeper_task(void *arg)
{
    sleeper *s = arg;
    s->e->parked++;
    int rc = rs_signal_wait(s->e->gate, 0);
    if (rc)
        return rc;
    s->deadline_ns = rs_bench_now_ns() + SLEEP_MS * 1000000LL;
    rc = rs_sleep(SLEEP_MS);
    s->lateness_ns = rs_bench_now_ns() - s->deadline_ns;
    return rc;
}

static int spawn_sleepers(sleep_exp *e, rs_scope *s)
{
    const rs_spawn_opts opts = { .name = "sleeper", .stack_size = e->cfg->stack_size };
    int64_t t0 = rs_bench_now_ns();
    for (uint64_t i = 0; i < e->cfg->n; i++) {
        e->tasks[i].e = e;
        int rc = rs_spawn(s, sleeper_task, &e->tasks[i], &opts, NULL);
        if (rc)
            return rc;
    }
    e->spawn_ns = rs_bench_now_ns() - t0;
    /* The run queue is FIFO: one yield lets every new task run to the gate. */
    while (e->parked < e->cfg->n) {
        int rc = rs_yield();
        if (rc)
            return rc;
    }
    e->start_ns = rs_bench_now_ns() - t0;
    return 0;
}

/* The sleepers live in `all`; the main task then enters `gate`, a child of
 * `all`, whose cancellation opens the gate without touching the sleepers. */
static int sleep_main(void *arg)
{
    sleep_exp *e = arg;
    rs_scope *all, *gate;
    int rc = rs_scope_open(&(rs_scope_opts){ .name = "sleepers" }, &all);
    if (rc)
        return rc;
    rc = rs_scope_open(&(rs_scope_opts){ .name = "gate" }, &gate);
    if (rc) {
        rs_scope_close(all);
        return rc;
    }
    e->gate = rs_scope_signal(gate);
    rc = spawn_sleepers(e, all);
    rs_scope_cancel(gate);
    int grc = rs_scope_close(gate);
    if (rc)
        rs_scope_cancel(all);
    int arc = rs_scope_close(all);
    return rc ? rc : grc ? grc : arc;
}

static int sleep_child(void *arg, rs_bench_child *out)
{
    const sleep_cfg *cfg = arg;
    sleep_exp e = { .cfg = cfg, .tasks = calloc(cfg->n, sizeof(sleeper)) };
    double *late = calloc(cfg->n, sizeof(double));
    if (!e.tasks || !late)
        return -ENOMEM;
    int rc = rs_bench_reset_peak_rss();
    if (rc)
        snprintf(out->note, sizeof out->note, "cannot reset the peak RSS (%s): peak includes the tool's own",
                 rs_strerror(rc));
    int64_t base_kib = rs_bench_status_kib("VmRSS");
    rc = rs_run(sleep_main, &e, &(rs_runtime_opts){ 0 });
    int64_t peak_kib = rs_bench_status_kib("VmHWM");
    if (rc)
        return rc;
    int64_t first = INT64_MAX, last = INT64_MIN;
    for (uint64_t i = 0; i < cfg->n; i++) {
        late[i] = (double)e.tasks[i].lateness_ns / 1e6;
        first = e.tasks[i].deadline_ns < first ? e.tasks[i].deadline_ns : first;
        last = e.tasks[i].deadline_ns > last ? e.tasks[i].deadline_ns : last;
    }
    out->v[V_SPREAD_MS] = (double)(last - first) / 1e6;
    out->v[V_SPAWN_NS] = (double)e.spawn_ns;
    out->v[V_START_NS] = (double)e.start_ns;
    out->v[V_P50] = rs_bench_quantile(late, cfg->n, 0.50);
    out->v[V_P99] = rs_bench_quantile(late, cfg->n, 0.99);
    out->v[V_MAX] = late[cfg->n - 1];
    out->v[V_MIN] = late[0];
    out->v[V_PEAK_KIB] = (double)(peak_kib - base_kib);
    free(late);
    free(e.tasks);
    return 0;
}

/* Rows of one configuration from its repetitions (samples[rep][value]). */
static void report_cfg(rs_bench *b, const sleep_cfg *cfg, double (*samples)[V_COUNT], unsigned reps)
{
    static const struct {
        const char *what, *unit;
        double scale; /* applied to the child's value */
        bool per_task;
    } rows[V_COUNT] = {
        [V_SPAWN_NS] = { "spawn (rs_spawn calls)", "ms", 1e-6, false },
        [V_START_NS] = { "spawn+start, per task", "ns/task", 1, true },
        [V_SPREAD_MS] = { "deadlines spread over", "ms", 1, false },
        [V_P50] = { "lateness p50", "ms", 1, false },
        [V_P99] = { "lateness p99", "ms", 1, false },
        [V_MAX] = { "lateness max", "ms", 1, false },
        [V_MIN] = { "lateness min", "ms", 1, false },
        [V_PEAK_KIB] = { "peak RSS per task", "KiB/task", 1, true },
    };
    double v[reps];
    for (int k = 0; k < V_COUNT; k++) {
        for (unsigned r = 0; r < reps; r++)
            v[r] = samples[r][k] * rows[k].scale / (rows[k].per_task ? (double)cfg->n : 1);
        char name[128];
        snprintf(name, sizeof name, "%s: %s", cfg->label, rows[k].what);
        rs_bench_samples(b, name, "ringscope", v, reps, rows[k].unit);
        if (k == V_SPAWN_NS) { /* the same spawn time per task, for comparison with the spawn suite */
            for (unsigned r = 0; r < reps; r++)
                v[r] = samples[r][k] / (double)cfg->n;
            snprintf(name, sizeof name, "%s: spawn, per task", cfg->label);
            rs_bench_samples(b, name, "ringscope", v, reps, "ns/task");
        }
    }
}

static int run_sleep(rs_bench *b)
{
    uint64_t n = rs_bench_pick(b, 100000, 10000);
    const sleep_cfg cfgs[] = {
        { n, 0, "256 KiB stacks" },
        { n, 16384, "16 KiB stacks" },
    };
    enum { NCFG = sizeof cfgs / sizeof cfgs[0] };
    unsigned reps = rs_bench_reps(b);
    double(*samples)[reps][V_COUNT] = calloc(NCFG, sizeof *samples);
    if (!samples)
        return -ENOMEM;
    rs_bench_note(b, "%llu tasks, each rs_sleep(%d) once, all pending together; lateness = wake time - (now + %d ms) "
                     "taken just before the call; one child process per repetition",
                  (unsigned long long)n, SLEEP_MS, SLEEP_MS);
    int rc = 0;
    for (unsigned r = 0; r < reps && !rc; r++) {
        for (size_t c = 0; c < NCFG && !rc; c++) {
            rs_bench_child out = { 0 };
            rc = rs_bench_in_child(sleep_child, (void *)&cfgs[c], &out);
            if (rc) {
                rs_bench_note(b, "%s: experiment failed: %s", cfgs[c].label, rs_strerror(rc));
                break;
            }
            if (out.note[0] && r == 0)
                rs_bench_note(b, "%s", out.note);
            memcpy(samples[c][r], out.v, sizeof samples[c][r]);
            rs_bench_progress(b, "%s %u/%u: p99 %.3f ms", cfgs[c].label, r + 1, reps, out.v[V_P99]);
        }
    }
    for (size_t c = 0; c < NCFG && !rc; c++)
        report_cfg(b, &cfgs[c], samples[c], reps);
    free(samples);
    return rc;
}

RS_BENCH_SUITE("sleep", 30, "100,000 concurrent sleeping tasks: spawn time, wake-up lateness, peak RSS per task",
               run_sleep)
