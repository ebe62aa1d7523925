/* Suite "tasks-max": how many concurrent tasks the runtime sustains, with the
 * default options and with 16 KiB stacks.
 *
 * One child process per configuration and repetition (a failure, even the
 * OOM killer, cannot take the tool down): the main task spawns tasks in
 * batches, yielding after each so that they start and park on a signal that
 * never fires by itself, until rs_spawn fails or the cap is reached (or the
 * child's RSS would leave its budget: the machine is shared). Then it records
 * how many were live (parked) at once, VmRSS, and the time; finally it
 * cancels the scope (every task's wait returns -ECANCELED) and closes it. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ringscope.h>

#include "bench.h"

#define BATCH 1000
#define RSS_CHECK_EVERY 16 /* batches between two looks at VmRSS */
#define RSS_BUDGET_KIB (6LL * 1024 * 1024)

typedef struct max_cfg {
    const char *label;
    size_t stack_size; /* 0: the runtime's default */
    uint64_t cap;
} max_cfg;

typedef enum { STOP_CAP, STOP_RSS_BUDGET, STOP_SPAWN_ERROR } stop_reason;

typedef struct max_exp {
    const max_cfg *cfg;
    rs_signal *never; /* the tasks park on it until their scope is cancelled */
    uint64_t spawned, parked;
    uint64_t live; /* parked when the memory was measured: the figure reported */
    stop_reason stop;
    int spawn_rc;
    int64_t base_kib, rss_kib, vmsize_kib;
    int64_t fill_ns, close_ns;
} max_exp;

enum { V_LIVE, V_RSS_KIB, V_BASE_KIB, V_VMSIZE_KIB, V_FILL_NS, V_CLOSE_NS, V_STOP, V_SPAWN_RC, V_COUNT };

static int blocker(void *arg)
{
    max_exp *e = arg;
    e->parked++;
    int rc = rs_signal_wait(e->never, 0);
    e->parked--;
    return rc;
}

static int fill(max_exp *e, rs_scope *s)
{
    const rs_spawn_opts opts = { .name = "blocker", .stack_size = e->cfg->stack_size };
    for (uint64_t batch = 0; e->spawned < e->cfg->cap; batch++) {
        uint64_t k = e->cfg->cap - e->spawned < BATCH ? e->cfg->cap - e->spawned : BATCH;
        for (uint64_t i = 0; i < k; i++) {
            int rc = rs_spawn(s, blocker, e, &opts, NULL);
            if (rc) {
                e->stop = STOP_SPAWN_ERROR;
                e->spawn_rc = rc;
                return rs_yield();
            }
            e->spawned++;
        }
        int rc = rs_yield(); /* FIFO: the batch runs to its wait before this returns */
        if (rc)
            return rc;
        if (batch % RSS_CHECK_EVERY == 0 && rs_bench_status_kib("VmRSS") - e->base_kib > RSS_BUDGET_KIB) {
            e->stop = STOP_RSS_BUDGET;
            return 0;
        }
    }
    e->stop = STOP_CAP;
    return 0;
}

/* The tasks wait on the signal of `quiet`, a scope nested in theirs that
 * nothing cancels; cancelling `all` ends them (and `quiet` with it). */
static int max_main(void *arg)
{
    max_exp *e = arg;
    rs_scope *all, *quiet;
    int rc = rs_scope_open(&(rs_scope_opts){ .name = "blockers" }, &all);
    if (rc)
        return rc;
    rc = rs_scope_open(&(rs_scope_opts){ .name = "quiet" }, &quiet);
    if (rc) {
        rs_scope_close(all);
        return rc;
    }
    e->never = rs_scope_signal(quiet);
    int64_t t0 = rs_bench_now_ns();
    rc = fill(e, all);
    e->fill_ns = rs_bench_now_ns() - t0;
    e->live = e->parked;
    e->rss_kib = rs_bench_status_kib("VmRSS");
    e->vmsize_kib = rs_bench_status_kib("VmSize");
    t0 = rs_bench_now_ns();
    rs_scope_cancel(all);
    int qrc = rs_scope_close(quiet);
    int arc = rs_scope_close(all);
    e->close_ns = rs_bench_now_ns() - t0;
    if (rc == 0 && e->parked != 0)
        rc = -EPROTO; /* a task outlived its closed scope */
    return rc ? rc : qrc == -ECANCELED ? arc : qrc ? qrc : arc;
}

static int max_child(void *arg, rs_bench_child *out)
{
    max_exp e = { .cfg = arg };
    e.base_kib = rs_bench_status_kib("VmRSS");
    int rc = rs_run(max_main, &e, NULL);
    out->v[V_LIVE] = (double)e.live;
    out->v[V_RSS_KIB] = (double)e.rss_kib;
    out->v[V_BASE_KIB] = (double)e.base_kib;
    out->v[V_VMSIZE_KIB] = (double)e.vmsize_kib;
    out->v[V_FILL_NS] = (double)e.fill_ns;
    out->v[V_CLOSE_NS] = (double)e.close_ns;
    out->v[V_STOP] = e.stop;
    out->v[V_SPAWN_RC] = e.spawn_rc;
    if (e.stop == STOP_SPAWN_ERROR)
        snprintf(out->note, sizeof out->note, "rs_spawn returned %d (%s) for task #%llu", e.spawn_rc,
                 rs_strerror(e.spawn_rc), (unsigned long long)e.spawned + 1);
    else if (e.stop == STOP_RSS_BUDGET)
        snprintf(out->note, sizeof out->note, "stopped at %llu tasks: the child's RSS passed the %lld GiB budget",
                 (unsigned long long)e.spawned, RSS_BUDGET_KIB >> 20);
    return rc;
}

static void report_cfg(rs_bench *b, const max_cfg *cfg, double (*s)[V_COUNT], unsigned reps)
{
    double v[reps];
    char name[128];
#define ROW(what, unit, expr)                                                                                          \
    do {                                                                                                               \
        for (unsigned r = 0; r < reps; r++)                                                                            \
            v[r] = (expr);                                                                                             \
        snprintf(name, sizeof name, "%s: %s", cfg->label, what);                                                       \
        rs_bench_samples(b, name, "ringscope", v, reps, unit);                                                         \
    } while (0)
    ROW("live tasks", "tasks", s[r][V_LIVE]);
    ROW("RSS", "MiB", s[r][V_RSS_KIB] / 1024);
    ROW("RSS per task", "KiB/task", (s[r][V_RSS_KIB] - s[r][V_BASE_KIB]) / s[r][V_LIVE]);
    ROW("virtual size", "GiB", s[r][V_VMSIZE_KIB] / (1024 * 1024));
    ROW("spawn+start, total", "s", s[r][V_FILL_NS] / 1e9);
    ROW("spawn+start, per task", "ns/task", s[r][V_FILL_NS] / s[r][V_LIVE]);
    ROW("cancel+close, total", "s", s[r][V_CLOSE_NS] / 1e9);
#undef ROW
}

static int run_tasks_max(rs_bench *b)
{
    uint64_t cap = rs_bench_pick(b, 1000000, 100000);
    const max_cfg cfgs[] = {
        { "default options", 0, cap },
        { "16 KiB stacks", 16384, cap },
    };
    enum { NCFG = sizeof cfgs / sizeof cfgs[0] };
    unsigned reps = rs_bench_reps(b);
    double(*samples)[reps][V_COUNT] = calloc(NCFG, sizeof *samples);
    if (!samples)
        return -ENOMEM;
    rs_bench_note(b, "cap %llu tasks per configuration; tasks park on a signal; one child process per repetition",
                  (unsigned long long)cap);
    int rc = 0;
    for (unsigned r = 0; r < reps && !rc; r++) {
        for (size_t c = 0; c < NCFG && !rc; c++) {
            rs_bench_child out = { 0 };
            rc = rs_bench_in_child(max_child, (void *)&cfgs[c], &out);
            if (out.note[0] && (r == 0 || out.v[V_STOP] != STOP_CAP))
                rs_bench_note(b, "%s, repetition %u: %s", cfgs[c].label, r + 1, out.note);
            if (rc) {
                rs_bench_note(b, "%s: experiment failed: %s", cfgs[c].label, rs_strerror(rc));
                break;
            }
            memcpy(samples[c][r], out.v, sizeof samples[c][r]);
            rs_bench_progress(b, "%s %u/%u: %.0f tasks, %.0f MiB", cfgs[c].label, r + 1, reps, out.v[V_LIVE],
                              out.v[V_RSS_KIB] / 1024);
        }
    }
    for (size_t c = 0; c < NCFG && !rc; c++)
        report_cfg(b, &cfgs[c], samples[c], reps);
    free(samples);
    return rc;
}

RS_BENCH_SUITE("tasks-max", 40, "how many concurrent parked tasks the runtime sustains (default and 16 KiB stacks)",
               run_tasks_max)
