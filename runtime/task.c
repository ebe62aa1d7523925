/* Tasks: spawn, run, finish, join, cancel; yield, checkpoint, sleep. */
#include "runtime/task.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/context.h"
#include "runtime/sanitizer.h"
#include "runtime/scope.h"

/* ------------------------------------------------------------ records */

static rs_task *task_alloc(rs__worker *w)
{
    rs_task *t = w->free_tasks;
    if (t)
        w->free_tasks = t->run_next;
    else if (!(t = malloc(sizeof *t)))
        return NULL;
    memset(t, 0, offsetof(rs_task, name));
    t->name[0] = '\0';
    t->worker = w;
    return t;
}

static void task_free(rs__worker *w, rs_task *t)
{
    t->run_next = w->free_tasks;
    w->free_tasks = t;
}

void rs__task_update_cancel(rs_task *t)
{
    t->cancelled = t->cur_scope->cancelled || (t->cancel_requested && t->shield_depth == 0);
}

void rs__task_recycle(rs_task *t)
{
    task_free(t->worker, t);
}

void rs__task_free_cache(rs__worker *w)
{
    while (w->free_tasks) {
        rs_task *t = w->free_tasks;
        w->free_tasks = t->run_next;
        free(t);
    }
}

/* ------------------------------------------------------------ running */

/* t has finished (its result is set). A joiner waiting for it takes the
 * record over: the scope then keeps no handle, so closing the scope before
 * the woken joiner runs cannot recycle the record under it. */
static void task_finished(rs_task *t, bool was_cancelled)
{
    t->state = RS_TASK_DONE;
    if (t->joiner) {
        rs__wait *j = t->joiner;
        t->joiner = NULL;
        t->joined = true;
        rs__wait_wake(j, 0);
    }
    rs__scope_task_finished(t->scope, t, was_cancelled);
}

static void task_main(void *arg)
{
    rs_task *t = arg;
    rs__worker *w = t->worker;
#ifdef RS_ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif

    int result = t->fn(t->arg);
    /* Whether it was cancelled when it returned: before the closes below
     * take it out of a cancelled scope it left open. */
    bool was_cancelled = rs__task_cancelled(t);

    /* Scopes the task opened and did not close are closed for it. */
    rs__scope_close_down_to(t, t->scope);

    t->result = result;
    task_finished(t, was_cancelled);
    rs__switch_exit(w);
}

/* Gives t a stack and queues it. Returns 0 or -ENOMEM. */
static int task_launch(rs__worker *w, rs_task *t, size_t stack_size)
{
    t->stack = rs__stack_get(&w->stacks, stack_size);
    if (!t->stack)
        return -ENOMEM;
    t->stack_unguarded = !t->stack->guarded;
#ifdef RS_ASAN
    ASAN_UNPOISON_MEMORY_REGION(t->stack->low, rs__stack_usable(t->stack));
#endif
    t->sp = rs__ctx_make(rs__stack_top(t->stack), task_main, t);
    rs__make_ready(w, t);
    return 0;
}

void rs__task_start_pending(rs_task *t)
{
    rs__worker *w = t->worker;
    int rc = task_launch(w, t, t->pending_stack_size);
    if (rc) {
        /* No stack: the task ends with -ENOMEM without running (a joiner
         * waiting for it is woken with that result). */
        t->result = rc;
        task_finished(t, false);
        if (t->detached)
            task_free(w, t);
    }
}

/* Is the calling task inside s (spawned into it or into a scope nested in it,
 * or has it entered s)? */
static bool caller_inside(const rs__worker *w, const rs_scope *s)
{
    if (!w->current)
        return false;
    for (const rs_scope *p = w->current->cur_scope; p; p = p->parent)
        if (p == s)
            return true;
    return false;
}

static int spawn_into(rs__worker *w, rs_scope *s, rs_task_fn fn, void *arg, const rs_spawn_opts *opts,
                      rs_task **out)
{
    if (s->cancelled)
        return -ECANCELED;
    if (s->closing && (s->sealed || !caller_inside(w, s))) /* sealed implies closing */
        return -ECANCELED;
    rs_task *t = task_alloc(w);
    if (!t)
        return -ENOMEM;
    t->fn = fn;
    t->arg = arg;
    t->scope = t->cur_scope = s;
    t->detached = out == NULL;
    size_t stack_size = w->stack_size;
    if (opts) {
        if (opts->name) {
            strncpy(t->name, opts->name, sizeof t->name - 1);
            t->name[sizeof t->name - 1] = '\0';
        }
        if (opts->stack_size)
            stack_size = opts->stack_size;
        t->priority = opts->priority;
    }
    if (s->max_concurrency && s->running >= s->max_concurrency) {
        t->state = RS_TASK_PENDING;
        t->pending_stack_size = stack_size;
        rs__scope_add_task(s, t);
        rs__scope_queue_pending(s, t);
    } else {
        int rc = task_launch(w, t, stack_size);
        if (rc) {
            task_free(w, t);
            return rc;
        }
        rs__scope_add_task(s, t);
        s->running++;
    }
    if (out)
        *out = t;
    return 0;
}

int rs_spawn(rs_scope *s, rs_task_fn fn, void *arg, const rs_spawn_opts *opts, rs_task **out)
{
    rs__worker *w = rs__worker_get();
    if (!w)
        return -EPERM;
    if (!s || !fn)
        return -EINVAL;
    if (s->worker != w)
        return -EPERM; /* a scope of another runtime (thread) */
    return spawn_into(w, s, fn, arg, opts, out);
}

int rs__spawn_system(rs_task_fn fn, void *arg, const char *name, rs_task **out)
{
    rs__worker *w = rs__worker_get();
    if (!w)
        return -EPERM;
    if (!w->system)
        return -ECANCELED; /* the runtime is shutting down */
    return spawn_into(w, w->system, fn, arg, &(rs_spawn_opts){ .name = name }, out);
}

/* ------------------------------------------------------------ join, cancel */

typedef struct join_wait {
    rs__wait wait;
    rs_task *target;
} join_wait;

static void join_wait_abort(rs__wait *w, int reason)
{
    join_wait *jw = (join_wait *)w;
    if (jw->target->joiner == w)
        jw->target->joiner = NULL;
    rs__wait_wake(w, reason);
}

int rs_task_join(rs_task *t, int *result)
{
    rs__worker *w = rs__worker_get();
    if (!w || !w->current)
        return -EPERM;
    if (!t || t->detached)
        return -EINVAL;
    if (t->worker != w)
        return -EPERM; /* a task of another runtime (thread) */
    if (t == w->current)
        return -EDEADLK;
    if (t->joined)
        return -EBUSY; /* another join has it and is about to return */
    if (t->state != RS_TASK_DONE && t->joiner)
        return -EBUSY; /* one joiner at a time: the handle dies when join returns */
    /* A cancellation point even when t has finished (nothing to wait for):
     * the handle stays valid, and its result is not lost. */
    if (rs__task_cancelled(w->current))
        return -ECANCELED;
    if (t->state != RS_TASK_DONE) {
        join_wait jw = { .target = t };
        rs__wait_init(&jw.wait, join_wait_abort);
        /* Whoever wakes us has cleared t->joiner (GCC cannot see that, hence
         * the pragma). After an abort t is not touched again: it may have
         * finished and been recycled with its scope meanwhile. After a wake
         * by its finish, t is ours (joined). */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
        t->joiner = &jw.wait;
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic pop
#endif
        int rc = rs__wait_park(&jw.wait, 0);
        if (rc)
            return rc;
    }
    if (result)
        *result = t->result;
    if (!t->joined)
        rs__scope_forget_finished(t->scope, t);
    task_free(w, t);
    return 0;
}

void rs__task_notify_cancel(rs_task *t)
{
    rs__task_update_cancel(t);
    rs__wait *w = t->waiting;
    if (w && w->abort && rs__task_cancelled(t))
        w->abort(w, -ECANCELED);
}

void rs_task_cancel(rs_task *t)
{
    /* Another thread's task: its runtime's structures are not ours to
     * touch (a data race), so nothing happens. */
    rs__worker *w = rs__worker_get();
    if (!t || !w || t->worker != w || t->state == RS_TASK_DONE)
        return;
    t->cancel_requested = true;
    rs__task_update_cancel(t);
    rs__task_notify_cancel(t);
}

rs_task *rs_current_task(void)
{
    rs__worker *w = rs__worker_get();
    return w ? w->current : NULL;
}

/* ------------------------------------------------------------ time */

int rs_yield(void)
{
    rs__worker *w = rs__worker_get();
    rs_task *cur;
    if (__builtin_expect(!w || !(cur = w->current), 0))
        return -EPERM;
    if (__builtin_expect(cur->slow_paths, 0)) {
        if (cur->cancelled)
            return -ECANCELED;
        rs__check_stack(cur);
    }
    /* rs__make_ready and rs__switch_out, minus what the test above and a
     * running task's state make unnecessary: this is the hottest path. The
     * next task is taken before the current one is queued, so that loading
     * it does not wait on the queue stores (and an empty queue means: go on). */
    rs_task *next = rs__next_task(w);
    if (!next)
        return 0;
    cur->run_next = NULL;
    *w->runq_tailp = cur;
    w->runq_tailp = &cur->run_next;
    rs__switch_to(w, cur, next);
    return 0;
}

/* The one check that a loop which never suspends makes: it also fires the
 * timers that came due meanwhile (a scope's timeout among them), which
 * otherwise wait for a suspension. */
int rs_checkpoint(void)
{
    rs__worker *w = rs__worker_get();
    if (w && w->current)
        rs__worker_fire_overdue(w, false);
    return rs__checkpoint();
}

static void sleep_abort(rs__wait *w, int reason)
{
    /* The deadline is the normal end of a sleep. */
    rs__wait_wake(w, reason == -ETIMEDOUT ? 0 : reason);
}

int rs_sleep(int64_t ms)
{
    if (ms < 0)
        return -EINVAL;
    if (ms == 0)
        return rs_yield();
    int rc = rs__checkpoint();
    if (rc)
        return rc;
    rs__wait w;
    rs__wait_init(&w, sleep_abort);
    return rs__wait_park(&w, rs__deadline_after_ms(ms));
}

int64_t rs_now_ms(void)
{
    return rs__clock_ns() / 1000000;
}
