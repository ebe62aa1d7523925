/* Per-key state of the distributed-lock engine on this thread (dkey): the
 * registry that maps (store handle, full key) to it, wake-ups, the store
 * watch. Invariants are listed in engine.h.
 *
 * The registry is thread-local: a runtime runs on one thread, and its lock
 * objects are used only there, so no lock is needed. It holds only keys that
 * some lock object uses; the table itself is freed when it empties. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/engine.h"
#include "runtime/sched.h"

static __thread struct {
    dkey **buckets;
    size_t nbuckets, count;
} reg;

static uint64_t key_hash(const rs_store *st, const char *key, size_t *len)
{
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)(uintptr_t)st; /* FNV-1a, seeded by the handle */
    const char *p = key;
    for (; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    *len = (size_t)(p - key);
    return h ^ (h >> 29);
}

static int reg_grow(void)
{
    size_t n = reg.nbuckets ? reg.nbuckets * 2 : 16;
    dkey **b = calloc(n, sizeof *b);
    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < reg.nbuckets; i++) {
        for (dkey *d = reg.buckets[i], *next; d; d = next) {
            next = d->next;
            d->next = b[d->hash & (n - 1)];
            b[d->hash & (n - 1)] = d;
        }
    }
    free(reg.buckets);
    reg.buckets = b;
    reg.nbuckets = n;
    return 0;
}

static void watch_changed(rs__store_watch *w)
{
    dkey *dk = (dkey *)((char *)w - offsetof(dkey, watch));
    dk->changes++;
    if (dk->contender)
        rs__dwaiter_wake(dk->contender, 0);
}

dkey *rs__dkey_get(rs_store *st, const char *full_key)
{
    size_t len;
    uint64_t h = key_hash(st, full_key, &len);
    if (reg.nbuckets) {
        for (dkey *d = reg.buckets[h & (reg.nbuckets - 1)]; d; d = d->next) {
            if (d->hash == h && d->st == st && d->key_len == len && memcmp(d->key, full_key, len) == 0) {
                d->refs++;
                return d;
            }
        }
    }
    if (reg.count >= reg.nbuckets && reg_grow() != 0 && !reg.nbuckets)
        return NULL;
    dkey *dk = calloc(1, sizeof *dk + len + 1);
    if (!dk)
        return NULL;
    dk->hash = h;
    dk->st = st;
    dk->refs = 1;
    dk->key_len = len;
    memcpy(dk->key, full_key, len + 1);
    rs__waitq_init(&dk->q, NULL);
    dk->watch.key = dk->key;
    dk->watch.changed = watch_changed;
    dkey **b = &reg.buckets[h & (reg.nbuckets - 1)];
    dk->next = *b;
    *b = dk;
    reg.count++;
    return dk;
}

void rs__dkey_put(dkey *dk)
{
    if (--dk->refs)
        return;
    /* No lock object is left, so no waiter, contender or grant either. */
    if (dk->watching)
        dk->st->ops->unwatch(dk->st, &dk->watch);
    dkey **link = &reg.buckets[dk->hash & (reg.nbuckets - 1)];
    while (*link != dk)
        link = &(*link)->next;
    *link = dk->next;
    free(dk);
    if (--reg.count == 0) {
        free(reg.buckets);
        reg.buckets = NULL;
        reg.nbuckets = 0;
    }
}

void rs__dwaiter_wake(dwaiter *dw, int result)
{
    if (!dw->parked)
        return;
    dw->parked = false;
    rs__wait_wake(&dw->w.wait, result);
}

bool rs__dkey_eligible(const dkey *dk, rs_lock_mode mode, const char *owner)
{
    if (!dk->excl)
        return true;
    const lease *holder = dk->excl->data;
    return mode != RS_LOCK_READ && strcmp(holder->owner, owner) != 0;
}

void rs__dkey_kick(dkey *dk)
{
    if (dk->contender) {
        /* It re-checks: its turn may be over (someone got in front), or the
         * key may be free now. */
        rs__dwaiter_wake(dk->contender, 0);
        return;
    }
    rs__waiter *h = rs__waitq_head(&dk->q);
    if (h) {
        dwaiter *dw = (dwaiter *)h;
        if (rs__dkey_eligible(dk, (rs_lock_mode)h->n, dw->lock->owner))
            rs__dwaiter_wake(dw, 0);
    }
}

int rs__dkey_watch(dkey *dk)
{
    if (dk->watching)
        return 0;
    const rs__store_ops *ops = dk->st->ops;
    if (!ops->watch)
        return -ENOTSUP;
    int rc = ops->watch(dk->st, &dk->watch);
    if (rc == 0)
        dk->watching = true;
    return rc;
}

void rs__dkey_unwatch_if_idle(dkey *dk)
{
    if (dk->watching && dk->q.len == 0 && !dk->contender) {
        dk->st->ops->unwatch(dk->st, &dk->watch);
        dk->watching = false;
    }
}
