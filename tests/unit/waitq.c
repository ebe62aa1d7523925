/* The priority wait queue: priority order, FIFO among equals, and exactly
 * one of grant, timeout or cancellation for each waiter. */
#include "support.h"
#include "runtime/sched.h"
#include "runtime/waitq.h"

static rs__waitq queue;
static int granted_order[16];
static int ngranted;

typedef struct waiter_arg {
    int id;
    int priority;
    int64_t timeout_ms;
    int result;
} waiter_arg;

static int wait_on_queue(void *arg)
{
    waiter_arg *a = arg;
    rs__waiter w = { .n = a->id };
    a->result = rs__waitq_wait(&queue, &w, a->priority, rs__deadline_after_ms(a->timeout_ms));
    if (a->result == 0)
        granted_order[ngranted++] = a->id;
    return 0;
}

static int kicks;

static void count_kick(rs__waitq *q)
{
    (void)q;
    kicks++;
}

static int priority_and_fifo(void *arg)
{
    (void)arg;
    rs__waitq_init(&queue, count_kick);
    ngranted = 0;
    waiter_arg args[] = {
        { 1, 1, 0, -1 }, { 2, 10, 0, -1 }, { 3, 5, 0, -1 }, { 4, 5, 0, -1 }, { 5, 10, 0, -1 }, { 6, -3, 0, -1 },
    };
    int n = (int)(sizeof args / sizeof args[0]);
    for (int i = 0; i < n; i++)
        RS_CHECK_OK(rs_spawn(rs_current_scope(), wait_on_queue, &args[i], NULL, NULL));
    RS_CHECK_OK(rs_yield()); /* every waiter queues */
    RS_CHECK_EQ(queue.len, (unsigned)n);
    while (rs__waitq_head(&queue)) {
        rs__waitq_grant(rs__waitq_head(&queue), 0);
        RS_CHECK_OK(rs_yield());
    }
    static const int expected[] = { 2, 5, 3, 4, 1, 6 };
    RS_CHECK_EQ(ngranted, n);
    for (int i = 0; i < n; i++)
        RS_CHECK_EQ(granted_order[i], expected[i]);
    RS_CHECK_EQ(kicks, 0);
    return 0;
}

Test(waitq, grants_by_priority_then_arrival, .timeout = 10)
{
    RS_RUN_OK(priority_and_fifo, NULL);
}

static int timeout_and_cancel(void *arg)
{
    (void)arg;
    rs__waitq_init(&queue, count_kick);
    kicks = 0;
    ngranted = 0;
    waiter_arg timed = { 1, 0, 10, -1 }, cancelled = { 2, 0, 0, -1 }, granted = { 3, 0, 0, -1 };
    rs_task *c;
    RS_CHECK_OK(rs_spawn(rs_current_scope(), wait_on_queue, &timed, NULL, NULL));
    RS_CHECK_OK(rs_spawn(rs_current_scope(), wait_on_queue, &cancelled, NULL, &c));
    RS_CHECK_OK(rs_spawn(rs_current_scope(), wait_on_queue, &granted, NULL, NULL));
    RS_CHECK_OK(rs_yield());
    rs_task_cancel(c);
    RS_CHECK_EQ(queue.len, 2u); /* the cancelled waiter left at once */
    RS_CHECK_OK(rs_sleep(30));
    RS_CHECK_EQ(queue.len, 1u); /* the timed one left at its deadline */
    RS_CHECK_EQ(kicks, 2);
    rs__waitq_grant(rs__waitq_head(&queue), 0);
    int r;
    RS_CHECK_OK(rs_task_join(c, &r));
    RS_CHECK_OK(rs_yield());
    RS_CHECK_EQ(timed.result, -ETIMEDOUT);
    RS_CHECK_EQ(cancelled.result, -ECANCELED);
    RS_CHECK_EQ(granted.result, 0);
    RS_CHECK_EQ(ngranted, 1);
    return 0;
}

Test(waitq, timeout_and_cancellation_remove_the_waiter_and_kick, .timeout = 10)
{
    RS_RUN_OK(timeout_and_cancel, NULL);
}

static int grant_then_cancel(void *arg)
{
    (void)arg;
    rs__waitq_init(&queue, NULL);
    ngranted = 0;
    waiter_arg a = { 1, 0, 0, -1 };
    rs_task *t;
    RS_CHECK_OK(rs_spawn(rs_current_scope(), wait_on_queue, &a, NULL, &t));
    RS_CHECK_OK(rs_yield());
    /* Granted, then cancelled before it ran: the grant stands. */
    rs__waitq_grant(rs__waitq_head(&queue), 0);
    rs_task_cancel(t);
    int r;
    RS_CHECK_OK(rs_task_join(t, &r));
    RS_CHECK_EQ(a.result, 0);
    return 0;
}

Test(waitq, a_grant_wins_over_a_later_cancellation, .timeout = 10)
{
    RS_RUN_OK(grant_then_cancel, NULL);
}

/* A wait that its own setup ended (a waiter granted an error while the call
 * was still queueing it, as a pool whose creation could not start does)
 * returns at once and leaves no deadline armed: a timer left behind would
 * fire into the frame of a call that has returned. */
static int ended_before_park(void *arg)
{
    (void)arg;
    rs__waitq_init(&queue, NULL);
    rs__worker *w = rs__worker_get();
    uint32_t timers_before = rs__timer_count(&w->timers);
    rs__waiter waiter = { .n = 1 };
    rs__wait_init(&waiter.wait, NULL);
    rs__waitq_insert(&queue, &waiter, 0);
    rs__waitq_grant(&waiter, -ENOMEM);
    RS_CHECK_EQ(rs__wait_park(&waiter.wait, rs__deadline_after_ms(50)), -ENOMEM);
    RS_CHECK(!rs__timer_armed(&waiter.wait.deadline));
    RS_CHECK_EQ(rs__timer_count(&w->timers), timers_before);
    RS_CHECK_EQ(queue.len, 0u);
    return 0;
}

Test(waitq, a_wait_ended_before_it_parks_arms_no_deadline, .timeout = 10)
{
    RS_RUN_OK(ended_before_park, NULL);
}
