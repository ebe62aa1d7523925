/* Scopes: open, close, cancel, defer; task bookkeeping for nurseries.
 *
 * Invariants:
 *  - s->ntasks counts the live tasks spawned into s (pending ones included);
 *    close returns only after it dropped to 0.
 *  - cancellation is pushed down eagerly: when s is cancelled, every scope
 *    nested in it (unless shielded) is cancelled too and every task parked in
 *    an abortable wait inside them is woken. A cancellation point therefore
 *    only looks at the task's innermost scope.
 *  - a scope is freed only by its close (or, for the runtime's own scopes, by
 *    the runtime); a task handle (out != NULL) lives until join or close. */
#include "runtime/scope.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/sched.h"
#include "runtime/store_hold.h"
#include "runtime/task.h"
#include "runtime/worker.h"

static void timeout_fired(rs__timer *tm)
{
    rs_scope *s = (rs_scope *)((char *)tm - offsetof(rs_scope, timeout));
    rs__scope_cancel(s, RS_CANCEL_TIMEOUT);
}

static rs_scope *scope_alloc(rs__worker *w, rs_scope *parent, const char *name)
{
    rs_scope *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->worker = w;
    s->parent = parent;
    if (parent) {
        s->sib_next = parent->children;
        if (parent->children)
            parent->children->sib_prev = s;
        parent->children = s;
        s->store = parent->store;
        rs__store_hold(s->store, +1);
    }
    if (name) {
        strncpy(s->name, name, sizeof s->name - 1);
        s->name[sizeof s->name - 1] = '\0';
    }
    rs__timer_init(&s->timeout, timeout_fired);
    rs__signal_init(&s->signal, w);
    return s;
}

static void scope_free(rs_scope *s)
{
    rs__worker *w = s->worker;
    rs__timer_disarm(&w->timers, &s->timeout);
    rs__signal_dispose(&s->signal);
    while (s->finished) {
        rs_task *t = s->finished;
        s->finished = t->scope_next;
        rs__task_recycle(t);
    }
    /* Scopes still nested here (none in correct use: a task closes what it
     * opened before it ends) move up so that nothing points at s. */
    while (s->children) {
        rs_scope *c = s->children;
        s->children = c->sib_next;
        c->parent = s->parent;
        c->sib_prev = NULL;
        c->sib_next = s->parent ? s->parent->children : NULL;
        if (c->sib_next)
            c->sib_next->sib_prev = c;
        if (s->parent)
            s->parent->children = c;
    }
    if (s->parent) {
        if (s->sib_prev)
            s->sib_prev->sib_next = s->sib_next;
        else
            s->parent->children = s->sib_next;
        if (s->sib_next)
            s->sib_next->sib_prev = s->sib_prev;
    }
    rs__store_hold(s->store, -1);
    free(s->defers);
    free(s);
}

int rs__scope_new_detached(rs__worker *w, rs_scope *parent, const char *name, rs_scope **out)
{
    rs_scope *s = scope_alloc(w, parent, name);
    if (!s)
        return -ENOMEM;
    if (!parent) {
        s->store = w->store;
        rs__store_hold(s->store, +1);
    }
    *out = s;
    return 0;
}

int rs_scope_open(const rs_scope_opts *opts, rs_scope **out)
{
    rs__worker *w = rs__worker_get();
    if (!w || !w->current)
        return -EPERM;
    if (!out || (opts && opts->timeout_ms < 0))
        return -EINVAL;
    rs_task *t = w->current;
    rs_scope *s = scope_alloc(w, t->cur_scope, opts ? opts->name : NULL);
    if (!s)
        return -ENOMEM;
    s->opener = t;
    if (opts) {
        s->shield = opts->shield;
        s->keep_going = opts->keep_going;
        s->max_concurrency = opts->max_concurrency;
        if (opts->store) {
            rs__store_hold(opts->store, +1);
            rs__store_hold(s->store, -1);
            s->store = opts->store;
        }
    }
    if (s->parent->cancelled && !s->shield) {
        s->cancelled = true;
        s->cancel_reason = RS_CANCEL_PARENT;
        rs__signal_abort(&s->signal, -ECANCELED);
    } else if (opts && opts->timeout_ms > 0) {
        /* 0: a limit beyond about 292 years, which is no limit. */
        int64_t deadline = rs__deadline_after_ms(opts->timeout_ms);
        if (deadline && rs__timer_arm(&w->timers, &s->timeout, deadline) != 0) {
            scope_free(s);
            return -ENOMEM;
        }
    }
    t->cur_scope = s;
    if (s->shield)
        t->shield_depth++;
    rs__task_update_cancel(t);
    *out = s;
    return 0;
}

void rs__scope_wait_empty(rs_scope *s)
{
    while (s->ntasks > 0) {
        rs__wait w;
        rs__wait_init(&w, NULL);
        s->closer = &w;
        rs__wait_park(&w, 0);
        s->closer = NULL;
    }
}

/* After the wait for the tasks: s is sealed first, because nothing would wait
 * for a task spawned now (by a deferred function, the only code still inside
 * s) and the scope is freed under it. */
static void run_defers_and_dispose(rs_scope *s)
{
    s->sealed = true;
    while (s->ndefers) {
        rs__defer d = s->defers[--s->ndefers];
        d.fn(d.arg);
    }
    while (s->resources) {
        rs__scope_res *r = s->resources;
        rs__scope_detach(s, r);
        r->dispose(r);
    }
}

static int close_result(const rs_scope *s)
{
    if (s->first_error)
        return s->first_error;
    switch (s->cancel_reason) {
    case RS_CANCEL_TIMEOUT: return -ETIMEDOUT;
    case RS_CANCEL_PARENT: return -ECANCELED;
    case RS_CANCEL_DEADLOCK: return -EDEADLK;
    default: return 0;
    }
}

int rs_scope_close(rs_scope *s)
{
    rs__worker *w = rs__worker_get();
    if (!w || !w->current)
        return -EPERM;
    rs_task *t = w->current;
    if (!s || s->opener != t || t->cur_scope != s || s->closing)
        return -EINVAL;
    s->closing = true;
    rs__scope_wait_empty(s);
    /* A deadline that passed while nothing suspended (the opener or the
     * tasks computed; a wait above fires due timers itself) still counts:
     * the scope outlived its timeout. */
    rs__worker_fire_overdue(w, true);
    run_defers_and_dispose(s);
    /* Scopes a deferred function opened and left open, skipped, would
     * orphan their tasks. */
    rs__scope_close_down_to(t, s);
    /* The task leaves s only now: deferred functions still ran inside it. */
    t->cur_scope = s->parent;
    if (s->shield)
        t->shield_depth--;
    rs__task_update_cancel(t);
    int rc = close_result(s);
    scope_free(s);
    return rc;
}

void rs__scope_finish_detached(rs_scope *s)
{
    s->closing = true;
    rs__scope_wait_empty(s);
    run_defers_and_dispose(s);
    scope_free(s);
}

/* Marks s and every scope nested in it (shields excepted) cancelled and
 * aborts their signals: first the flags of the whole subtree, so that a task
 * notified afterwards sees its innermost scope's final state. The signals
 * come before the tasks: a task waiting on one sees 0, not -ECANCELED. */
static void mark_cancelled(rs_scope *s, rs__cancel_reason reason)
{
    s->cancelled = true;
    s->cancel_reason = (uint8_t)reason;
    rs__timer_disarm(&s->worker->timers, &s->timeout);
    rs__signal_abort(&s->signal, reason == RS_CANCEL_TIMEOUT ? -ETIMEDOUT : -ECANCELED);
    for (rs_scope *c = s->children; c; c = c->sib_next)
        if (!c->shield && !c->cancelled)
            mark_cancelled(c, RS_CANCEL_PARENT);
}

/* Wakes every task of s's cancelled subtree parked in an abortable wait. */
static void notify_cancelled(rs_scope *s)
{
    for (rs_task *t = s->tasks; t; t = t->scope_next)
        rs__task_notify_cancel(t);
    if (s->opener)
        rs__task_notify_cancel(s->opener);
    for (rs_scope *c = s->children; c; c = c->sib_next)
        if (!c->shield)
            notify_cancelled(c);
}

void rs__scope_cancel(rs_scope *s, rs__cancel_reason reason)
{
    if (s->cancelled)
        return;
    mark_cancelled(s, reason);
    notify_cancelled(s);
}

void rs_scope_cancel(rs_scope *s)
{
    /* Not from another thread: see rs_task_cancel. */
    rs__worker *w = rs__worker_get();
    if (s && w && s->worker == w)
        rs__scope_cancel(s, RS_CANCEL_EXPLICIT);
}

/* A timeout that came due while the tasks computed counts before the kernel
 * trip that would fire it (rs__worker_fire_overdue); only from a task of the
 * scope's own runtime, which alone may touch its timers. */
bool rs_scope_cancelled(const rs_scope *s)
{
    if (!s)
        return false;
    if (!s->cancelled)
        rs__worker_notice_overdue(s->worker);
    return s->cancelled;
}

rs_signal *rs_scope_signal(rs_scope *s)
{
    return s ? &s->signal : NULL;
}

int rs_scope_defer(rs_scope *s, void (*fn)(void *arg), void *arg)
{
    rs__worker *w = rs__worker_get();
    if (!w)
        return -EPERM;
    if (!s || !fn)
        return -EINVAL;
    if (s->worker != w)
        return -EPERM; /* a scope of another runtime (thread) */
    if (s->ndefers == s->cap_defers) {
        unsigned cap = s->cap_defers ? s->cap_defers * 2 : 4;
        rs__defer *d = realloc(s->defers, cap * sizeof *d);
        if (!d)
            return -ENOMEM;
        s->defers = d;
        s->cap_defers = cap;
    }
    s->defers[s->ndefers++] = (rs__defer){ fn, arg };
    return 0;
}

rs_scope *rs_current_scope(void)
{
    rs__worker *w = rs__worker_get();
    return w && w->current ? w->current->cur_scope : NULL;
}

void rs__scope_close_down_to(rs_task *t, rs_scope *s)
{
    while (t->cur_scope != s)
        rs_scope_close(t->cur_scope);
}

int rs__owner_scope(rs_scope **s)
{
    rs__worker *w = rs__worker_get();
    if (!w || (!*s && !w->current))
        return -EPERM;
    if (!*s)
        *s = w->current->cur_scope;
    else if ((*s)->worker != w)
        return -EPERM; /* a scope of another runtime (thread) */
    return 0;
}

struct rs_store *rs__scope_store(const rs_scope *s)
{
    return s->store ? s->store : s->worker->store;
}

/* ------------------------------------------------------------ resources */

void rs__scope_attach(rs_scope *s, rs__scope_res *r)
{
    r->prev = NULL;
    r->next = s->resources;
    if (s->resources)
        s->resources->prev = r;
    s->resources = r;
}

void rs__scope_detach(rs_scope *s, rs__scope_res *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else if (s->resources == r)
        s->resources = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

/* ------------------------------------------------------------ tasks */

void rs__scope_add_task(rs_scope *s, rs_task *t)
{
    t->scope_prev = NULL;
    t->scope_next = s->tasks;
    if (s->tasks)
        s->tasks->scope_prev = t;
    s->tasks = t;
    s->ntasks++;
}

void rs__scope_queue_pending(rs_scope *s, rs_task *t)
{
    /* Priority order, FIFO among equals; equal priorities append in O(1). */
    t->run_next = NULL;
    if (!s->pending_head) {
        s->pending_head = s->pending_tail = t;
        return;
    }
    if (s->pending_tail->priority >= t->priority) {
        s->pending_tail->run_next = t;
        s->pending_tail = t;
        return;
    }
    rs_task **link = &s->pending_head;
    while ((*link)->priority >= t->priority)
        link = &(*link)->run_next;
    t->run_next = *link;
    *link = t;
}

static void start_next_pending(rs_scope *s)
{
    while (s->pending_head && s->running < s->max_concurrency) {
        rs_task *t = s->pending_head;
        s->pending_head = t->run_next;
        if (!s->pending_head)
            s->pending_tail = NULL;
        s->running++;
        rs__task_start_pending(t);
    }
}

void rs__scope_forget_finished(rs_scope *s, rs_task *t)
{
    if (t->scope_prev)
        t->scope_prev->scope_next = t->scope_next;
    else
        s->finished = t->scope_next;
    if (t->scope_next)
        t->scope_next->scope_prev = t->scope_prev;
}

void rs__scope_task_finished(rs_scope *s, rs_task *t, bool was_cancelled)
{
    if (t->result < 0 && !(t->result == -ECANCELED && was_cancelled)) {
        if (!s->first_error)
            s->first_error = t->result;
        if (!s->keep_going)
            rs__scope_cancel(s, RS_CANCEL_ERROR);
    }
    if (t->scope_prev)
        t->scope_prev->scope_next = t->scope_next;
    else
        s->tasks = t->scope_next;
    if (t->scope_next)
        t->scope_next->scope_prev = t->scope_prev;
    t->scope_prev = t->scope_next = NULL;
    s->ntasks--;
    s->running--;
    if (s->pending_head)
        start_next_pending(s);
    if (!t->detached && !t->joined) {
        t->scope_next = s->finished;
        if (s->finished)
            s->finished->scope_prev = t;
        s->finished = t;
    }
    if (s->ntasks == 0 && s->closer)
        rs__wait_wake(s->closer, 0);
}
