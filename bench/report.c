/* ringscope-bench: the rows suites report, the results table and the JSON file.
 *
 * Rows are kept in report order for the whole run: the table prints a suite's
 * block as soon as the suite ends, the JSON file is written once at the end. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <ringscope.h>

#include "tool.h"

/* ------------------------------------------------------------ storing rows */

static bench_row *row_new(rs_bench *b, row_kind kind, const char *case_name, const char *impl, const char *unit)
{
    bench_results *res = b->results;
    if (res->nrows == res->cap) {
        size_t cap = res->cap ? res->cap * 2 : 64;
        bench_row *rows = realloc(res->rows, cap * sizeof *rows);
        if (!rows) {
            res->oom++;
            return NULL;
        }
        res->rows = rows;
        res->cap = cap;
    }
    bench_row *r = &res->rows[res->nrows];
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->suite = strdup(b->suite->name);
    r->case_name = strdup(case_name ? case_name : "");
    r->impl = strdup(impl ? impl : "");
    r->unit = strdup(unit ? unit : "");
    if (!r->suite || !r->case_name || !r->impl || !r->unit) {
        free(r->suite), free(r->case_name), free(r->impl), free(r->unit);
        res->oom++;
        return NULL;
    }
    res->nrows++;
    return r;
}

void rs_bench_value(rs_bench *b, const char *case_name, const char *impl, double value, const char *unit)
{
    bench_row *r = row_new(b, ROW_VALUE, case_name, impl, unit);
    if (r)
        r->value = value;
}

double rs_bench_samples(rs_bench *b, const char *case_name, const char *impl, const double *samples, size_t n,
                        const char *unit)
{
    double *copy = malloc((n ? n : 1) * sizeof *copy);
    double *sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!copy || !sorted) {
        free(copy), free(sorted);
        b->results->oom++;
        return NAN;
    }
    memcpy(copy, samples, n * sizeof *copy);
    memcpy(sorted, samples, n * sizeof *sorted);
    double median = rs_bench_median(sorted, n);
    free(sorted);
    bench_row *r = row_new(b, ROW_MEDIAN, case_name, impl, unit);
    if (!r) {
        free(copy);
        return median;
    }
    r->value = median;
    r->samples = copy;
    r->nsamples = n;
    return median;
}

void rs_bench_ratio(rs_bench *b, const char *case_name, const char *impl, const char *peer, double ratio)
{
    bench_row *r = row_new(b, ROW_RATIO, case_name, impl, "x");
    if (!r)
        return;
    r->value = ratio;
    r->peer = strdup(peer ? peer : "");
    if (!r->peer)
        b->results->oom++;
}

void rs_bench_note(rs_bench *b, const char *fmt, ...)
{
    bench_row *r = row_new(b, ROW_NOTE, NULL, NULL, NULL);
    if (!r)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&r->text, fmt, ap) < 0) {
        r->text = NULL;
        b->results->oom++;
    }
    va_end(ap);
}

void report_free(bench_results *res)
{
    for (size_t i = 0; i < res->nrows; i++) {
        bench_row *r = &res->rows[i];
        free(r->suite), free(r->case_name), free(r->impl), free(r->unit), free(r->peer), free(r->text);
        free(r->samples);
    }
    free(res->rows);
    memset(res, 0, sizeof *res);
}

/* ------------------------------------------------------------ table */

/* Enough significant digits to compare, never an exponent. */
static void format_value(char *buf, size_t len, double v)
{
    double a = fabs(v);
    if (isnan(v))
        snprintf(buf, len, "n/a");
    else if (a >= 1000 || v == 0)
        snprintf(buf, len, "%.0f", v);
    else if (a >= 100)
        snprintf(buf, len, "%.1f", v);
    else if (a >= 10)
        snprintf(buf, len, "%.2f", v);
    else if (a >= 0.01)
        snprintf(buf, len, "%.3f", v);
    else
        snprintf(buf, len, "%.2g", v);
}

/* "0.62x of boost.context, 1.30x of libuv" for every ratio row of (suite, case, impl). */
static void format_ratios(char *buf, size_t len, const bench_results *res, const bench_row *row)
{
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < res->nrows && used < len; i++) {
        const bench_row *r = &res->rows[i];
        if (r->kind != ROW_RATIO || strcmp(r->suite, row->suite) || strcmp(r->case_name, row->case_name) ||
            strcmp(r->impl, row->impl))
            continue;
        char v[32];
        snprintf(v, sizeof v, "%.2f", r->value);
        int n = snprintf(buf + used, len - used, "%s%sx of %s", used ? ", " : "", v, r->peer ? r->peer : "?");
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

enum { W_SUITE = 10, W_CASE = 36, W_IMPL = 14, W_VALUE = 11, W_UNIT = 10 };

static int width(int min, const char *s)
{
    int n = (int)strlen(s);
    return n > min ? n : min;
}

void report_table_suite(FILE *out, const bench_results *res, const char *suite, bool header)
{
    int wsuite = W_SUITE, wcase = W_CASE, wimpl = W_IMPL, wunit = W_UNIT;
    for (size_t i = 0; i < res->nrows; i++) {
        const bench_row *r = &res->rows[i];
        if (strcmp(r->suite, suite) || r->kind == ROW_RATIO || r->kind == ROW_NOTE)
            continue;
        wsuite = width(wsuite, r->suite);
        wcase = width(wcase, r->case_name);
        wimpl = width(wimpl, r->impl);
        wunit = width(wunit, r->unit);
    }
    if (header)
        fprintf(out, "%-*s  %-*s  %-*s  %*s  %-*s  %s\n", wsuite, "suite", wcase, "case", wimpl, "implementation",
                W_VALUE, "median", wunit, "unit", "vs peer");
    for (size_t i = 0; i < res->nrows; i++) {
        const bench_row *r = &res->rows[i];
        if (strcmp(r->suite, suite) || r->kind == ROW_RATIO || r->kind == ROW_NOTE)
            continue;
        char v[32], ratios[256];
        format_value(v, sizeof v, r->value);
        format_ratios(ratios, sizeof ratios, res, r);
        fprintf(out, "%-*s  %-*s  %-*s  %*s  %-*s  %s\n", wsuite, r->suite, wcase, r->case_name, wimpl, r->impl,
                W_VALUE, v, wunit, r->unit, ratios);
    }
    for (size_t i = 0; i < res->nrows; i++) {
        const bench_row *r = &res->rows[i];
        if (r->kind == ROW_NOTE && !strcmp(r->suite, suite) && r->text)
            fprintf(out, "%-*s  note: %s\n", wsuite, r->suite, r->text);
    }
    fflush(out);
}

/* ------------------------------------------------------------ JSON */

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void json_number(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.17g", v);
    else
        fputs("null", f);
}

/* First "model name" of /proc/cpuinfo, or "unknown". */
static void cpu_model(char *buf, size_t len)
{
    snprintf(buf, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10))
            continue;
        const char *v = strchr(line, ':');
        if (!v)
            continue;
        v += 1 + (v[1] == ' ');
        snprintf(buf, len, "%.*s", (int)strcspn(v, "\n"), v);
        break;
    }
    fclose(f);
}

static void json_meta(FILE *f, const bench_run_meta *meta)
{
    char date[64], cpu[256];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    struct utsname u;
    if (uname(&u))
        memset(&u, 0, sizeof u);
    cpu_model(cpu, sizeof cpu);

    fputs("  \"meta\": {\n    \"tool\": \"ringscope-bench\",\n    \"date\": ", f);
    json_string(f, date);
    fputs(",\n    \"kernel\": ", f);
    char kernel[3 * sizeof u.release];
    snprintf(kernel, sizeof kernel, "%s %s %s", u.sysname, u.release, u.machine);
    json_string(f, kernel);
    fputs(",\n    \"kernel_version\": ", f);
    json_string(f, u.version);
    fputs(",\n    \"cpu_model\": ", f);
    json_string(f, cpu);
    fprintf(f, ",\n    \"cpus_online\": %ld,\n    \"quick\": %s,\n    \"repetitions\": %u,\n    \"store\": ",
            sysconf(_SC_NPROCESSORS_ONLN), meta->quick ? "true" : "false", meta->reps);
    json_string(f, meta->store_url);
    fputs(",\n    \"argv\": [", f);
    for (int i = 0; i < meta->argc; i++) {
        fputs(i ? ", " : "", f);
        json_string(f, meta->argv[i]);
    }
    fputs("]\n  },\n", f);
}

static void json_row(FILE *f, const bench_row *r)
{
    static const char *kinds[] = { [ROW_VALUE] = "value", [ROW_MEDIAN] = "median", [ROW_RATIO] = "ratio",
                                   [ROW_NOTE] = "note" };
    fputs("    {\"kind\": ", f);
    json_string(f, kinds[r->kind]);
    fputs(", \"suite\": ", f);
    json_string(f, r->suite);
    if (r->kind == ROW_NOTE) {
        fputs(", \"text\": ", f);
        json_string(f, r->text);
        fputs("}", f);
        return;
    }
    fputs(", \"case\": ", f);
    json_string(f, r->case_name);
    fputs(", \"implementation\": ", f);
    json_string(f, r->impl);
    if (r->kind == ROW_RATIO) {
        fputs(", \"peer\": ", f);
        json_string(f, r->peer);
    }
    fputs(", \"value\": ", f);
    json_number(f, r->value);
    fputs(", \"unit\": ", f);
    json_string(f, r->unit);
    if (r->kind == ROW_MEDIAN) {
        fprintf(f, ", \"repetitions\": %zu, \"samples\": [", r->nsamples);
        for (size_t i = 0; i < r->nsamples; i++) {
            fputs(i ? ", " : "", f);
            json_number(f, r->samples[i]);
        }
        fputs("]", f);
    }
    fputs("}", f);
}

int report_json(FILE *f, const bench_results *res, const bench_run_meta *meta, const rs_bench_suite *const *ran,
                const int *status, size_t nran)
{
    rewind(f);
    if (ftruncate(fileno(f), 0) != 0)
        return -errno;
    fputs("{\n", f);
    json_meta(f, meta);
    fputs("  \"suites\": [\n", f);
    for (size_t i = 0; i < nran; i++) {
        fputs("    {\"name\": ", f);
        json_string(f, ran[i]->name);
        fprintf(f, ", \"ok\": %s, \"error\": %d, \"message\": ", status[i] ? "false" : "true", status[i]);
        json_string(f, status[i] ? rs_strerror(status[i]) : "");
        fprintf(f, "}%s\n", i + 1 < nran ? "," : "");
    }
    fputs("  ],\n  \"rows\": [\n", f);
    for (size_t i = 0; i < res->nrows; i++) {
        json_row(f, &res->rows[i]);
        fputs(i + 1 < res->nrows ? ",\n" : "\n", f);
    }
    fputs("  ]\n}\n", f);
    if (fflush(f) != 0)
        return -errno;
    return ferror(f) ? -EIO : 0;
}
