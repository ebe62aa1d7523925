/* Signals: one-shot abort flags with waiters (see signal.h). */
#include "runtime/signal.h"

#include <errno.h>

#include "runtime/task.h"
#include "runtime/worker.h"

void rs__signal_init(rs_signal *sig, struct rs__worker *owner)
{
    sig->reason = 0;
    sig->owner = owner;
    rs__waitq_init(&sig->waiters, NULL);
}

void rs__signal_abort(rs_signal *sig, int reason)
{
    if (sig->reason)
        return;
    sig->reason = reason;
    rs__waitq_wake_all(&sig->waiters, 0);
}

void rs__signal_dispose(rs_signal *sig)
{
    rs__waitq_wake_all(&sig->waiters, -ECANCELED);
}

/* A scope's timeout that came due while its tasks computed aborts the
 * signal before the kernel trip that would fire it (see rs_scope_cancelled). */
bool rs_signal_aborted(const rs_signal *sig)
{
    return rs_signal_reason(sig) != 0;
}

int rs_signal_reason(const rs_signal *sig)
{
    if (!sig)
        return 0;
    if (!sig->reason)
        rs__worker_notice_overdue(sig->owner);
    return sig->reason;
}

/* Another runtime's signal is -EPERM: its abort would wake this task from
 * that runtime's thread, into this runtime's run queue. */
int rs_signal_wait(rs_signal *sig, int64_t timeout_ms)
{
    if (!sig || timeout_ms < 0)
        return -EINVAL;
    rs__worker *self = rs__worker_get();
    if (sig->owner && self && self->current && sig->owner != self)
        return -EPERM;
    if (sig->reason)
        return 0;
    int rc = rs__checkpoint();
    if (rc)
        return rc;
    rs__waiter w;
    return rs__waitq_wait(&sig->waiters, &w, 0, rs__deadline_after_ms(timeout_ms));
}
