/* ringscope-bench: command line, suite registry and the run.
 *
 * Exit status: 0 when every selected suite measured; 1 when a suite failed
 * (the others still ran and printed) or the JSON file could not be written;
 * 2 for a usage error (unknown option or suite, bad value). */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ringscope.h>

#include "tool.h"

#define DEFAULT_REPS 7
#define QUICK_REPS 3
#define MAX_REPS 1000

/* ------------------------------------------------------------ registry */

static rs_bench_suite *registry; /* sorted by (order, name) as suites register */

static int suite_cmp(const rs_bench_suite *a, const rs_bench_suite *b)
{
    if (a->order != b->order)
        return a->order < b->order ? -1 : 1;
    return strcmp(a->name, b->name);
}

void rs_bench_register(rs_bench_suite *s)
{
    rs_bench_suite **at = &registry;
    while (*at && suite_cmp(*at, s) <= 0)
        at = &(*at)->next;
    s->next = *at;
    *at = s;
}

rs_bench_suite *bench_suites(void)
{
    return registry;
}

static rs_bench_suite *suite_find(const char *name)
{
    for (rs_bench_suite *s = registry; s; s = s->next)
        if (!strcmp(s->name, name))
            return s;
    return NULL;
}

/* ------------------------------------------------------------ command line */

typedef struct cli {
    bool list, quick;
    const char *json, *store;
    unsigned reps; /* 0: by mode */
    bool *selected; /* per suite in registry order; none selected = all */
} cli;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ringscope-bench [options] [suite...]\n"
            "Runs the named suites (all of them when none is named) and prints a table of medians.\n"
            "\n"
            "  --list          list the suites and exit\n"
            "  --quick         a short run for smoke checks and CI\n"
            "  --reps N        repetitions per measurement (default %d, quick %d)\n"
            "  --json FILE     also write every row and the run's metadata to FILE as JSON\n"
            "  --store URL     lock store for the store suites (default memory:)\n"
            "  --help          this text\n",
            DEFAULT_REPS, QUICK_REPS);
}

static size_t suite_count(void)
{
    size_t n = 0;
    for (rs_bench_suite *s = registry; s; s = s->next)
        n++;
    return n;
}

static size_t suite_index(const rs_bench_suite *want)
{
    size_t i = 0;
    for (rs_bench_suite *s = registry; s != want; s = s->next)
        i++;
    return i;
}

/* 0 to run, 1 when done (--help, --list), 2 on a usage error. */
static int parse_cli(int argc, char **argv, cli *c)
{
    static const struct option longopts[] = {
        { "list", no_argument, NULL, 'l' },        { "quick", no_argument, NULL, 'q' },
        { "reps", required_argument, NULL, 'r' },  { "json", required_argument, NULL, 'j' },
        { "store", required_argument, NULL, 's' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    c->store = "memory:";
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'l': c->list = true; break;
        case 'q': c->quick = true; break;
        case 'j': c->json = optarg; break;
        case 's': c->store = optarg; break;
        case 'h': usage(stdout); return 1;
        case 'r': {
            char *end;
            errno = 0;
            unsigned long v = strtoul(optarg, &end, 10);
            if (errno || *end || end == optarg || optarg[0] == '-' || v == 0 || v > MAX_REPS) {
                fprintf(stderr, "ringscope-bench: --reps wants a number from 1 to %d, not '%s'\n", MAX_REPS, optarg);
                return 2;
            }
            c->reps = (unsigned)v;
            break;
        }
        case ':':
            fprintf(stderr, "ringscope-bench: option '%s' needs a value\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "ringscope-bench: unknown option '%s' (see --help)\n", argv[optind - 1]);
            return 2;
        }
    }
    if (c->store[0] == 0) {
        fprintf(stderr, "ringscope-bench: --store wants a URL such as memory: or redis://127.0.0.1:6379\n");
        return 2;
    }
    for (int i = optind; i < argc; i++) {
        rs_bench_suite *s = suite_find(argv[i]);
        if (!s) {
            fprintf(stderr, "ringscope-bench: unknown suite '%s'; suites:", argv[i]);
            for (rs_bench_suite *t = registry; t; t = t->next)
                fprintf(stderr, " %s", t->name);
            fputc('\n', stderr);
            return 2;
        }
        c->selected[suite_index(s)] = true;
    }
    if (c->list) {
        for (rs_bench_suite *s = registry; s; s = s->next)
            printf("%-14s %s\n", s->name, s->description ? s->description : "");
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------ the run */

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* rows reach a pipe or file as they are printed */
    size_t nsuites = suite_count();
    cli c = { .selected = calloc(nsuites + 1, sizeof(bool)) };
    rs_bench_suite **ran = calloc(nsuites + 1, sizeof *ran);
    int *status = calloc(nsuites + 1, sizeof *status);
    if (!c.selected || !ran || !status) {
        fprintf(stderr, "ringscope-bench: out of memory\n");
        return 1;
    }
    int rc = parse_cli(argc, argv, &c);
    if (rc)
        return rc == 1 ? 0 : 2;

    /* Opened before anything runs: a path that cannot be written fails at
     * once, not after the whole run. */
    FILE *json = NULL;
    if (c.json && !(json = fopen(c.json, "w"))) {
        fprintf(stderr, "ringscope-bench: cannot write %s: %s\n", c.json, strerror(errno));
        return 2;
    }
    bench_run_meta meta = { c.quick, c.reps ? c.reps : c.quick ? QUICK_REPS : DEFAULT_REPS, c.store, argc, argv };
    int json_rc = 0;

    bool any = false;
    for (size_t i = 0; i < nsuites; i++)
        any |= c.selected[i];
    bench_results results = { 0 };
    rs_bench b = {
        .results = &results,
        .quick = c.quick,
        .progress = isatty(STDERR_FILENO),
        .reps = c.reps ? c.reps : c.quick ? QUICK_REPS : DEFAULT_REPS,
        .store_url = c.store,
    };
    size_t nran = 0, failed = 0;
    size_t i = 0;
    for (rs_bench_suite *s = registry; s; s = s->next, i++) {
        if (any && !c.selected[i])
            continue;
        b.suite = s;
        rs_bench_progress(&b, "running (%u repetitions%s)", b.reps, b.quick ? ", quick" : "");
        int src = s->run(&b);
        ran[nran] = s;
        status[nran++] = src;
        report_table_suite(stdout, &results, s->name, nran == 1);
        if (src) {
            failed++;
            printf("%-10s  FAILED: %s\n", s->name, rs_strerror(src));
            fprintf(stderr, "ringscope-bench: suite %s failed: %s\n", s->name, rs_strerror(src));
        }
        if (json && !json_rc)
            json_rc = report_json(json, &results, &meta, (const rs_bench_suite *const *)ran, status, nran);
    }
    int exit_code = failed ? 1 : 0;
    if (results.oom) {
        fprintf(stderr, "ringscope-bench: out of memory: %d results were lost\n", results.oom);
        exit_code = 1;
    }
    if (json) {
        if (nran == 0 && !json_rc) /* nothing ran: still a valid document */
            json_rc = report_json(json, &results, &meta, (const rs_bench_suite *const *)ran, status, nran);
        if (fclose(json) != 0 && !json_rc)
            json_rc = -errno;
        if (json_rc) {
            fprintf(stderr, "ringscope-bench: cannot write %s: %s\n", c.json, rs_strerror(json_rc));
            exit_code = 1;
        }
    }
    report_free(&results);
    free(c.selected);
    free(ran);
    free(status);
    return exit_code;
}
