/* ringscope runtime: tasks (stackful coroutines) on io_uring, scopes
 * (nursery + cancel scope), cancellation signals, sleeping and yielding.
 * See docs/SEMANTICS.md for the full model. */
#ifndef RINGSCOPE_RUNTIME_H
#define RINGSCOPE_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_scope rs_scope;
typedef struct rs_task rs_task;
typedef struct rs_signal rs_signal;
typedef int (*rs_task_fn)(void *arg);
struct rs_store;

/* Returns a message for any value returned by the library (negative or
 * positive errno). The message for -ETIMEDOUT contains the word "timeout". */
const char *rs_strerror(int err);

typedef struct rs_runtime_opts {
    unsigned ring_entries;  /* io_uring SQ size; 0 -> 256 */
    size_t stack_size;      /* default task stack, bytes; 0 -> 256 KiB (virtual; pages are touched lazily) */
    unsigned workers;       /* scheduler threads, one io_uring each; 0 -> 1 */
    struct rs_store *store; /* default lock store for every scope; NULL -> the built-in in-process store */
} rs_runtime_opts;

/* Runs main(arg) as the first task of a root scope on the calling thread,
 * drives the scheduler until the root scope is finished and returns main's
 * value, or the root scope's first error if main returned 0. */
int rs_run(rs_task_fn main, void *arg, const rs_runtime_opts *opts);

typedef struct rs_scope_opts {
    const char *name;         /* for diagnostics */
    int64_t timeout_ms;       /* cancel the scope this long after it opens; 0 = none */
    struct rs_store *store;   /* lock store for rs_scope_acquire_lock; NULL -> inherited from the parent */
    unsigned max_concurrency; /* at most this many of its tasks run at once; others wait (priority order); 0 = no limit */
    bool shield;              /* not cancelled when an enclosing scope is cancelled (for cleanup work) */
    bool keep_going;          /* a failing task does NOT cancel its siblings */
} rs_scope_opts;

int rs_scope_open(const rs_scope_opts *opts, rs_scope **out);
int rs_scope_close(rs_scope *s);
void rs_scope_cancel(rs_scope *s);
bool rs_scope_cancelled(const rs_scope *s);
rs_signal *rs_scope_signal(rs_scope *s);
int rs_scope_defer(rs_scope *s, void (*fn)(void *arg), void *arg);
rs_scope *rs_current_scope(void);

typedef struct rs_spawn_opts {
    const char *name;
    size_t stack_size; /* 0 -> runtime default */
    int priority;      /* order among tasks waiting for the scope's max_concurrency; higher first */
} rs_spawn_opts;

int rs_spawn(rs_scope *s, rs_task_fn fn, void *arg, const rs_spawn_opts *opts, rs_task **out);
int rs_task_join(rs_task *t, int *result);
void rs_task_cancel(rs_task *t);
rs_task *rs_current_task(void);
int rs_yield(void);
int rs_checkpoint(void);
int rs_sleep(int64_t ms);
int64_t rs_now_ms(void);

bool rs_signal_aborted(const rs_signal *sig);
int rs_signal_reason(const rs_signal *sig);                /* 0 while not aborted, else a negative errno */
int rs_signal_wait(rs_signal *sig, int64_t timeout_ms);    /* 0 once aborted, -ETIMEDOUT, -ECANCELED */

#ifdef __cplusplus
}
#endif

#endif
