/* See store_hold.h. */
#include "runtime/store_hold.h"

#include <stdatomic.h>
#include <stddef.h>

static _Atomic(rs__store_hold_fn) hold_fn;

void rs__store_hold_install(rs__store_hold_fn fn)
{
    atomic_store_explicit(&hold_fn, fn, memory_order_release);
}

void rs__store_hold(struct rs_store *st, int delta)
{
    if (!st)
        return;
    /* A non-NULL handle came from rs_store_open, which installed the
     * function before returning it. */
    rs__store_hold_fn fn = atomic_load_explicit(&hold_fn, memory_order_acquire);
    if (fn)
        fn(st, delta);
}
