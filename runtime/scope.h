/* Scopes: a nursery (waits for its tasks) and a cancel scope (cancels them
 * together) in one, as in Trio. */
#ifndef RS_RUNTIME_SCOPE_H
#define RS_RUNTIME_SCOPE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include <ringscope/runtime.h>

#include "runtime/signal.h"
#include "runtime/timer.h"
#include "runtime/wait.h"

typedef struct rs__worker rs__worker;
typedef struct rs_task rs_task;

typedef enum {
    RS_CANCEL_NONE,
    RS_CANCEL_EXPLICIT, /* rs_scope_cancel on this scope: close returns 0 */
    RS_CANCEL_TIMEOUT,  /* its own timeout_ms: close returns -ETIMEDOUT */
    RS_CANCEL_PARENT,   /* an enclosing scope was cancelled: close returns -ECANCELED */
    RS_CANCEL_ERROR,    /* a task failed: close returns that error */
    RS_CANCEL_DEADLOCK, /* every task was blocked for good: close returns -EDEADLK */
} rs__cancel_reason;

/* Something a scope owns and disposes when it closes (a lock, a semaphore, a
 * pool, a guard of rs_scope_acquire_lock ...). dispose may suspend; it runs in
 * the closing task after the deferred functions, newest first. */
typedef struct rs__scope_res {
    struct rs__scope_res *prev, *next;
    void (*dispose)(struct rs__scope_res *r);
} rs__scope_res;

typedef struct rs__defer {
    void (*fn)(void *arg);
    void *arg;
} rs__defer;

struct rs_scope {
    rs__worker *worker;
    rs_scope *parent;
    rs_scope *children, *sib_prev, *sib_next; /* scopes opened inside this one */
    rs_task *opener;                           /* NULL for the runtime's own scopes */
    rs_task *tasks;                            /* live tasks spawned into it (incl. pending) */
    rs_task *finished;                         /* finished tasks whose handle is still out */
    rs_task *pending_head, *pending_tail;      /* waiting for a max_concurrency slot */
    unsigned ntasks;                           /* live tasks, pending included */
    unsigned running;                          /* started and not finished */
    unsigned max_concurrency;
    rs__wait *closer;                          /* close (or the runtime) waiting for ntasks == 0 */
    int first_error;
    uint8_t cancel_reason;                     /* rs__cancel_reason */
    bool cancelled, closing, shield, keep_going;
    bool sealed;                               /* its close stopped waiting for tasks: no more spawns */
    rs__timer timeout;
    rs_signal signal;
    rs__defer *defers;
    unsigned ndefers, cap_defers;
    rs__scope_res *resources;                  /* newest first */
    struct rs_store *store;                    /* own or inherited; NULL: the runtime's default */
    char name[32];
};

/* Creates a scope that no task has entered (the runtime's top and system
 * scopes). parent may be NULL. */
int rs__scope_new_detached(rs__worker *w, rs_scope *parent, const char *name, rs_scope **out);

/* Waits (not cancellable) until s has no live task. Runs in a task. */
void rs__scope_wait_empty(rs_scope *s);

/* Waits until s has no live task, runs its deferred functions and disposes
 * its resources, then frees it. For scopes no task entered. */
void rs__scope_finish_detached(rs_scope *s);

void rs__scope_cancel(rs_scope *s, rs__cancel_reason reason);

void rs__scope_attach(rs_scope *s, rs__scope_res *r);
void rs__scope_detach(rs_scope *s, rs__scope_res *r);

/* Called by a finishing task: records its error, frees its slot and wakes the
 * closer when it was the last one. */
void rs__scope_task_finished(rs_scope *s, rs_task *t, bool was_cancelled);

/* Task bookkeeping (task.c): live list, max_concurrency queue, handles. */
void rs__scope_add_task(rs_scope *s, rs_task *t);
void rs__scope_queue_pending(rs_scope *s, rs_task *t);
void rs__scope_forget_finished(rs_scope *s, rs_task *t);

/* Closes the scopes task t entered after s and left open, innermost first
 * (each close waits for its tasks), so that s is t's innermost scope again:
 * forgetting a close, in a task's body, a deferred function or a pool
 * callback, never orphans tasks. */
void rs__scope_close_down_to(rs_task *t, rs_scope *s);

/* The scope an object made by a *_new(s, ...) call belongs to: s itself, or
 * for s == NULL the calling task's current scope. 0, or -EPERM without a
 * runtime on this thread (or for NULL outside a task). */
int rs__owner_scope(rs_scope **s);

/* The lock store rs_scope_acquire_lock uses in s: its own, inherited, or the
 * runtime's (NULL means the built-in memory store). */
struct rs_store *rs__scope_store(const rs_scope *s);

#endif
