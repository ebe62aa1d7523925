/* Store calls that must complete although the calling task is cancelled.
 *
 * Giving a lease back or withdrawing a write intent is cleanup: a task whose
 * scope was cancelled still releases its guards, and if the round trip were
 * cut short by the cancellation the lease would linger until its TTL. For a
 * backend that suspends, the call therefore runs inside a shielded scope
 * (bounded by the store's op_timeout_ms); the memory store never suspends and
 * needs none. */
#include "adapters/engine.h"
#include "runtime/task.h"

void rs__shield_enter(rs__shield *sh, const rs_store *st)
{
    sh->scope = NULL;
    rs__worker *w = rs__worker_get();
    if (!st->ops->suspends || !w || !w->current)
        return;
    /* Without memory for the scope the call still runs, only unshielded. */
    if (rs_scope_open(&(rs_scope_opts){ .name = "lease-cleanup", .shield = true }, &sh->scope) != 0)
        sh->scope = NULL;
}

void rs__shield_leave(rs__shield *sh)
{
    if (sh->scope)
        rs_scope_close(sh->scope);
    sh->scope = NULL;
}
