/* Scopes and tasks belong to the runtime (thread) that made them. A task of
 * another runtime that spawns into, joins, defers on, waits on the signal of
 * or cancels one gets -EPERM or nothing happens; so does a thread without a
 * runtime. The owner finds everything as it left it. The two runtimes step in turn with a
 * pthread barrier, a test harness outside either runtime's scheduling. */
#include "runtime/task.h"
#include "support.h"

TestSuite(foreign_runtime, .timeout = 20);

typedef struct shared {
    pthread_barrier_t step;
    rs_scope *scope; /* the owner's, open while the other runtime tries it */
    rs_task *task;   /* the owner's, joinable, parked on its scope's signal */
    bool ran;        /* set by anything the other runtime managed to run in the owner's runtime */
} shared;

static int park(void *arg)
{
    shared *sh = arg;
    int rc = rs_signal_wait(rs_scope_signal(sh->scope), 0);
    return rc == -ECANCELED ? 0 : rc; /* the scope's cancellation ends it either way */
}

static int mark_ran(void *arg)
{
    ((shared *)arg)->ran = true;
    return 0;
}

static void mark_ran_deferred(void *arg)
{
    ((shared *)arg)->ran = true;
}

static int owner(void *arg)
{
    shared *sh = arg;
    RS_CHECK_OK(rs_scope_open(NULL, &sh->scope));
    RS_CHECK_OK(rs_spawn(sh->scope, park, sh, NULL, &sh->task));
    RS_CHECK_OK(rs_yield()); /* the task parks */

    pthread_barrier_wait(&sh->step); /* the other runtime and a thread without one try everything */
    pthread_barrier_wait(&sh->step);

    RS_CHECK(!rs_scope_cancelled(sh->scope));
    RS_CHECK_EQ(sh->task->state, RS_TASK_WAITING); /* not cancelled, still parked */
    rs_task_cancel(sh->task); /* from its own runtime: it takes effect */
    int result = -1;
    RS_CHECK_OK(rs_task_join(sh->task, &result));
    RS_CHECK_EQ(result, 0);
    RS_CHECK_OK(rs_scope_close(sh->scope));
    RS_CHECK(!sh->ran);
    return 0;
}

static int other(void *arg)
{
    shared *sh = arg;
    pthread_barrier_wait(&sh->step);
    RS_CHECK_EQ(rs_spawn(sh->scope, mark_ran, sh, NULL, NULL), -EPERM);
    int result = 0;
    RS_CHECK_EQ(rs_task_join(sh->task, &result), -EPERM);
    RS_CHECK_EQ(rs_scope_defer(sh->scope, mark_ran_deferred, sh), -EPERM);
    /* A wait would queue this task on the owner's signal, to be woken from
     * the owner's thread. */
    RS_CHECK_EQ(rs_signal_wait(rs_scope_signal(sh->scope), 50), -EPERM);
    rs_scope_cancel(sh->scope);
    rs_task_cancel(sh->task);
    pthread_barrier_wait(&sh->step);
    return 0;
}

static void *no_runtime(void *arg)
{
    shared *sh = arg;
    pthread_barrier_wait(&sh->step);
    cr_expect_eq(rs_scope_defer(sh->scope, mark_ran_deferred, sh), -EPERM);
    rs_scope_cancel(sh->scope);
    rs_task_cancel(sh->task);
    pthread_barrier_wait(&sh->step);
    return NULL;
}

Test(foreign_runtime, another_runtime_or_thread_cannot_spawn_join_defer_wait_or_cancel)
{
    shared sh = { .ran = false };
    cr_assert_eq(pthread_barrier_init(&sh.step, NULL, 3), 0);
    pthread_t bare;
    cr_assert_eq(pthread_create(&bare, NULL, no_runtime, &sh), 0);
    rs_test_run_two_threads(owner, &sh, other, &sh);
    cr_assert_eq(pthread_join(bare, NULL), 0);
    pthread_barrier_destroy(&sh.step);
}
