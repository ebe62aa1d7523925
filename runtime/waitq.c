/* Priority wait queue. Invariant: along next, priorities never increase, and
 * among equal priorities the earlier arrival comes first. */
#include "runtime/waitq.h"

#include "runtime/sched.h"

#include <errno.h>
#include <stddef.h>

static void waiter_abort(rs__wait *wait, int reason)
{
    rs__waiter *w = (rs__waiter *)wait;
    rs__waitq *q = w->queue;
    rs__waitq_remove(w);
    rs__wait_wake(wait, reason);
    if (q && q->kick)
        q->kick(q);
}

int rs__waitq_wait(rs__waitq *q, rs__waiter *w, int priority, int64_t deadline_ns)
{
    rs__wait_init(&w->wait, waiter_abort);
    rs__waitq_insert(q, w, priority);
    return rs__wait_park(&w->wait, deadline_ns);
}

void rs__waitq_grant(rs__waiter *w, int result)
{
    rs__waitq_remove(w);
    rs__wait_wake(&w->wait, result);
}

void rs__waitq_wake_all(rs__waitq *q, int result)
{
    while (q->head)
        rs__waitq_grant(q->head, result);
}
