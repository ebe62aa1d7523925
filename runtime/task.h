/* Tasks: stackful coroutines owned by a scope. */
#ifndef RS_RUNTIME_TASK_H
#define RS_RUNTIME_TASK_H

#include <stdbool.h>
#include <stdint.h>

#include <ringscope/runtime.h>

#include "runtime/stack.h"

typedef struct rs__worker rs__worker;
typedef struct rs__wait rs__wait;

typedef enum {
    RS_TASK_PENDING, /* waiting for a slot of its scope's max_concurrency; no stack yet */
    RS_TASK_ACTIVE,  /* on the run queue or running */
    RS_TASK_WAITING, /* parked on a wait */
    RS_TASK_DONE,
} rs__task_state;

#define RS_TASK_NAME_MAX 32

struct rs_task {
    union {
        void *sp;                  /* saved context while not running */
        size_t pending_stack_size; /* while PENDING (no stack yet): the stack it will get */
    };
    rs__stack *stack;            /* NULL while pending and after it finished */
    rs__worker *worker;
    rs_task_fn fn;
    void *arg;
    int result;
    uint8_t state;               /* rs__task_state */
    bool cancel_requested;       /* rs_task_cancel */
    union {
        struct {
            bool cancelled;       /* cached rs__task_cancel_state(): read at every cancellation point */
            bool stack_unguarded; /* the stack has no guard page: check its red zone at every switch */
        };
        uint16_t slow_paths;      /* either of the above: one test on rs_yield's fast path */
    };
    bool detached;               /* spawned with out == NULL: reclaimed when finished */
    bool joined;                 /* finished while joined: the joiner owns the record, the scope keeps no handle */
    uint32_t shield_depth;       /* shielded scopes this task has entered */
    int priority;                /* for max_concurrency */
    rs_scope *scope;             /* spawned into */
    rs_scope *cur_scope;         /* innermost scope the task is in (it may open more) */
    rs_task *scope_prev, *scope_next; /* in scope->tasks (live) or scope->finished (handles) */
    rs_task *run_next;           /* run queue, pending list, free list */
    rs__wait *waiting;           /* the wait it is parked on */
    rs__wait *joiner;
    void *asan_fake_stack;
    char name[RS_TASK_NAME_MAX];
};


/* A cancelled task parked in an abortable wait is woken with -ECANCELED. */
void rs__task_notify_cancel(rs_task *t);

/* Starts a task that was pending on its scope's max_concurrency. */
void rs__task_start_pending(rs_task *t);

/* Spawns a library background task into the runtime's system scope. */
int rs__spawn_system(rs_task_fn fn, void *arg, const char *name, rs_task **out);

/* Returns a finished task's record to the worker (its handle is dead). */
void rs__task_recycle(rs_task *t);

void rs__task_free_cache(rs__worker *w);

/* Whether a cancellation point in t must return -ECANCELED: its innermost
 * scope is cancelled (cancellation propagates into nested scopes eagerly), or
 * the task itself was cancelled and it is not inside a shielded scope it
 * opened. Cached in t->cancelled: every change of its inputs (the task enters
 * or leaves a scope, a scope is cancelled, rs_task_cancel) calls
 * rs__task_update_cancel, so a cancellation point is one load. */
void rs__task_update_cancel(rs_task *t);

static inline bool rs__task_cancelled(const rs_task *t)
{
    return t->cancelled;
}

/* What a user of tasks needs: their scopes and the scheduler's fast paths. */
#include "runtime/scope.h"
#include "runtime/sched.h"

#endif
