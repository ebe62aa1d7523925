/* The priority wait queue every primitive waits on.
 *
 * Intrusive and ordered by (priority descending, arrival ascending). A waiter
 * is either queued, or was removed by exactly one of: a grant (the primitive
 * hands it what it waited for), its deadline, or cancellation. After a waiter
 * leaves without a grant the queue calls kick, so the primitive can grant the
 * new head (a large semaphore request that timed out may unblock smaller
 * ones behind it). */
#ifndef RS_RUNTIME_WAITQ_H
#define RS_RUNTIME_WAITQ_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/wait.h"

typedef struct rs__waiter rs__waiter;
typedef struct rs__waitq rs__waitq;

struct rs__waiter {
    rs__wait wait;
    rs__waiter *prev, *next;
    rs__waitq *queue; /* NULL when not queued */
    int priority;
    int64_t n;        /* the primitive's payload: permits, lock mode ... */
    void *data;
};

struct rs__waitq {
    rs__waiter *head, *tail;
    unsigned len;
    void (*kick)(rs__waitq *q); /* may be NULL */
};

static inline void rs__waitq_init(rs__waitq *q, void (*kick)(rs__waitq *q))
{
    q->head = q->tail = 0;
    q->len = 0;
    q->kick = kick;
}

static inline rs__waiter *rs__waitq_head(const rs__waitq *q)
{
    return q->head;
}

/* Queues the calling task (already checked for cancellation) and parks it.
 * Returns the result given to rs__waitq_grant, -ETIMEDOUT at deadline_ns
 * (0 = none), or -ECANCELED. w->n and w->data are left for the primitive. */
int rs__waitq_wait(rs__waitq *q, rs__waiter *w, int priority, int64_t deadline_ns);

/* Queues without parking, for a waiter that parks itself with rs__wait_park
 * on w->wait (after setting its abort). Scans from the tail: equal
 * priorities (the common case) append in O(1). */
static inline void rs__waitq_insert(rs__waitq *q, rs__waiter *w, int priority)
{
    w->priority = priority;
    w->queue = q;
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

/* Takes w out of its queue (no-op when not queued). */
static inline void rs__waitq_remove(rs__waiter *w)
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
    w->prev = w->next = 0;
    w->queue = 0;
    q->len--;
}

/* Takes the head out of q (q not empty) and returns it: rs__waitq_remove for
 * the one waiter a granter always takes, without its general cases. */
static inline rs__waiter *rs__waitq_pop_head(rs__waitq *q)
{
    rs__waiter *h = q->head;
    rs__waiter *next = h->next;
    q->head = next;
    if (next)
        next->prev = 0;
    else
        q->tail = 0;
    h->next = 0;
    h->queue = 0;
    q->len--;
    return h;
}

/* Removes w from its queue and wakes its task with result. */
void rs__waitq_grant(rs__waiter *w, int result);

/* Wakes every waiter with result (an object disposed: -ECANCELED). */
void rs__waitq_wake_all(rs__waitq *q, int result);

#endif
