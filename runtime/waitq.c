/* Priority wait queue. Invariant: along next, priorities never increase, and
 * among equal priorities the earlier arrival comes first. */
#include "runtime/waitq.h"

#include <errno.h>
#include <stddef.h>

void rs__waitq_insert(rs__waitq *q, rs__waiter *w, int priority)
{
    w->priority = priority;
    w->queue = q;
    /* Scan from the tail: equal priorities (the common case) append in O(1). */
    rs__waiter *after = q->tail;
    while (after && after->priority < priority)
        after = after->prev;
    w->prev = after;
    w->next = after ? after->next : q->head;
    if (w->next)
        w->next->prev = w;
    else
        q->tail = w;
    if (after)
        after->next = w;
    else
        q->head = w;
    q->len++;
}

void rs__waitq_remove(rs__waiter *w)
{
    rs__waitq *q = w->queue;
    if (!q)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        q->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    w->prev = w->next = NULL;
    w->queue = NULL;
    q->len--;
}

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
