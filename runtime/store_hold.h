/* Counting the runtime's holds on lock stores.
 *
 * The runtime keeps store handles it does not understand: a runtime's
 * default store (rs_runtime_opts.store) and a scope's (rs_scope_opts.store,
 * inherited by nested scopes). rs_store_close must refuse (-EBUSY) a store
 * still named there, or a later rs_scope_acquire_lock would use a freed
 * handle. The runtime knows nothing above it, so the layer that makes stores
 * installs the function that counts a store's users (before the first store
 * exists, so every handle the runtime can be given is counted), and the
 * runtime calls it for each handle it keeps and lets go. */
#ifndef RS_RUNTIME_STORE_HOLD_H
#define RS_RUNTIME_STORE_HOLD_H

struct rs_store;

typedef void (*rs__store_hold_fn)(struct rs_store *st, int delta);

/* Any thread; idempotent. */
void rs__store_hold_install(rs__store_hold_fn fn);

/* delta +1 when a runtime or scope starts naming st, -1 when it stops.
 * Nothing for NULL. */
void rs__store_hold(struct rs_store *st, int delta);

#endif
