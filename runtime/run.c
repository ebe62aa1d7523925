/* rs_run: a runtime on the calling thread, from first task to teardown.
 *
 * Scope tree of a runtime:
 *   top     (runtime-owned; holds the runner task)
 *   ├─ root   (opened by the runner; main and everything it spawns)
 *   └─ system (library background work: lease renewal, health checks ...;
 *              no user scope waits for it; cancelled when root is done)
 * The runner is an ordinary task, so closing root (waiting, deferred
 * functions, disposal) runs exactly the code every other scope runs. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include <ringscope/runtime.h>

#include "runtime/scope.h"
#include "runtime/task.h"
#include "runtime/worker.h"

typedef struct runner_ctx {
    rs_task_fn main;
    void *arg;
    int main_rc;
    int root_rc;
} runner_ctx;

static int main_task(void *p)
{
    runner_ctx *c = p;
    c->main_rc = c->main(c->arg);
    return c->main_rc;
}

static int runner_task(void *p)
{
    runner_ctx *c = p;
    rs__worker *w = rs__worker_get();
    rs_scope *root;
    int rc = rs_scope_open(&(rs_scope_opts){ .name = "root" }, &root);
    if (rc == 0) {
        w->root = root;
        rc = rs_spawn(root, main_task, c, &(rs_spawn_opts){ .name = "main" }, NULL);
        if (rc)
            c->main_rc = rc;
        c->root_rc = rs_scope_close(root);
        w->root = NULL;
    } else {
        c->main_rc = rc;
    }
    rs__scope_cancel(w->system, RS_CANCEL_EXPLICIT);
    rs__scope_finish_detached(w->system);
    w->system = NULL;
    return 0;
}

/* A peer closing a socket must not kill a server with SIGPIPE; the error
 * comes back as -EPIPE instead. Only the default action is replaced. */
static void ignore_sigpipe(void)
{
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL) {
        struct sigaction sa = { .sa_handler = SIG_IGN };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGPIPE, &sa, NULL);
    }
}

int rs_run(rs_task_fn main, void *arg, const rs_runtime_opts *opts)
{
    if (!main)
        return -EINVAL;
    if (rs__tls_worker)
        return -EBUSY; /* one runtime per thread at a time */
    if (opts && opts->workers > 1)
        return -ENOTSUP;
    ignore_sigpipe();

    rs__worker *w = malloc(sizeof *w);
    if (!w)
        return -ENOMEM;
    int rc = rs__worker_init(w, opts);
    if (rc) {
        free(w);
        return rc;
    }
    rs__tls_worker = w;
    runner_ctx c = { .main = main, .arg = arg };
    rc = rs__scope_new_detached(w, NULL, "top", &w->top);
    if (rc == 0) {
        rc = rs__scope_new_detached(w, w->top, "system", &w->system);
        if (rc == 0)
            rc = rs_spawn(w->top, runner_task, &c, &(rs_spawn_opts){ .name = "runner" }, NULL);
        if (rc == 0)
            rs__worker_loop(w);
        else if (w->system)
            rs__scope_finish_detached(w->system);
        rs__scope_finish_detached(w->top);
    }
    rs__tls_worker = NULL;
    rs__worker_destroy(w);
    free(w);
    if (rc)
        return rc;
    return c.main_rc ? c.main_rc : c.root_rc;
}
