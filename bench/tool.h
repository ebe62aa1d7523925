/* ringscope-bench internals shared by main.c, report.c and measure.c (suites
 * use bench.h only). */
#ifndef RS_BENCH_TOOL_H
#define RS_BENCH_TOOL_H

#include <stdio.h>

#include "bench.h"

typedef enum { ROW_VALUE, ROW_MEDIAN, ROW_RATIO, ROW_NOTE } row_kind;

typedef struct bench_row {
    row_kind kind;
    char *suite, *case_name, *impl, *unit, *peer, *text; /* peer: ROW_RATIO; text: ROW_NOTE */
    double value;                                        /* the value, median or ratio */
    double *samples;                                     /* ROW_MEDIAN: every repetition, in run order */
    size_t nsamples;
} bench_row;

typedef struct bench_results {
    bench_row *rows;
    size_t nrows, cap;
    int oom; /* a row could not be stored: reported once at the end */
} bench_results;

struct rs_bench {
    const rs_bench_suite *suite;
    bench_results *results;
    bool quick;
    bool progress; /* stderr is a terminal */
    unsigned reps;
    const char *store_url;
};

typedef struct bench_run_meta {
    bool quick;
    unsigned reps;
    const char *store_url;
    int argc;
    char **argv;
} bench_run_meta;

/* Registered suites, sorted by (order, name). */
rs_bench_suite *bench_suites(void);

/* Prints the rows of one suite as a block of the results table. */
void report_table_suite(FILE *out, const bench_results *res, const char *suite, bool header);

/* Writes every row, the suites' outcomes and the run's metadata as JSON to f,
 * replacing what f held (called after each suite, so that a run cut short
 * leaves the suites it finished). 0 or a negative errno. */
int report_json(FILE *f, const bench_results *res, const bench_run_meta *meta, const rs_bench_suite *const *ran,
                const int *status, size_t nran);

void report_free(bench_results *res);

#endif
