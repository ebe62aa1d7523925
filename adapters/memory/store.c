/* The built-in memory store: the store contract (adapters/store.h) inside this
 * process, for every runtime of it.
 *
 * One process-wide table: every rs_store_open("memory:") is a handle on it,
 * and the key prefix separates users. Several runtimes may run at once in
 * different threads, so one mutex protects everything below; no operation
 * suspends, so the mutex is never held across a task switch.
 *
 * Invariants (under the mutex):
 *  - a key has an entry while it has a lease, a write intent or a watcher, and
 *    no longer: memory follows the live state, not the number of keys ever
 *    used. Lease and intent ends are CLOCK_MONOTONIC nanoseconds; whatever has
 *    ended is purged before an entry is read or changed, so an ended lease is
 *    never extended, released or reported.
 *  - holders of an entry are either one exclusive-class lease or any number
 *    of read leases, each owner at most once.
 *  - tokens come from one counter for the whole table that only goes up:
 *    strictly increasing per key as the contract asks (and across keys), with
 *    nothing to keep per key once it is free.
 *  - wake-ups: watchers are called on their own thread only (a task can only
 *    be woken by its own worker). A watcher of another runtime is put on the
 *    poked list and its worker is poked (runtime/worker.h); the worker's poke
 *    handler, on its own thread, calls changed() for its watchers on the
 *    list. A watcher is on the poked list iff its poked flag is set, and only
 *    while it is watched. A registered watcher keeps its worker running (its
 *    task is inside the store's engine), so poking under the mutex always
 *    reaches a live worker. Should a worker not be pokeable (no eventfd),
 *    its watchers fall back to the engine's backoff. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/store.h"
#include "runtime/timer.h"
#include "runtime/worker.h"

#define NS_PER_MS 1000000
#define SPARE_MAX 64 /* freed entries kept for reuse: a hot lock/unlock cycle allocates nothing */

typedef struct holder {
    int64_t expires;
    uint64_t token;
    rs_lock_mode mode;
    char owner[RS__STORE_OWNER_MAX + 1];
} holder;

typedef struct intent {
    int64_t expires;
    char owner[RS__STORE_OWNER_MAX + 1];
} intent;

typedef struct entry {
    struct entry *next; /* hash chain, or the spare list */
    uint64_t hash;
    char *key;
    size_t key_len, key_cap;
    holder *holders;
    unsigned nholders, cap_holders;
    intent *intents;
    unsigned nintents, cap_intents;
    rs__store_watch *watchers;
} entry;

static struct {
    pthread_mutex_t mu;
    entry **buckets;
    size_t nbuckets, nentries;
    uint64_t last_token;
    entry *spare;
    unsigned nspare;
    rs__store_watch *poked; /* watchers whose changed() is due on their own thread */
} T = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* ------------------------------------------------------------ table */

static uint64_t hash_key(const char *key, size_t *len)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    const char *p = key;
    for (; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    *len = (size_t)(p - key);
    return h ^ (h >> 29);
}

static entry *lookup(const char *key, size_t len, uint64_t h)
{
    if (!T.nbuckets)
        return NULL;
    for (entry *e = T.buckets[h & (T.nbuckets - 1)]; e; e = e->next)
        if (e->hash == h && e->key_len == len && memcmp(e->key, key, len) == 0)
            return e;
    return NULL;
}

static int grow(void)
{
    size_t n = T.nbuckets ? T.nbuckets * 2 : 64;
    entry **b = calloc(n, sizeof *b);
    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < T.nbuckets; i++) {
        for (entry *e = T.buckets[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    free(T.buckets);
    T.buckets = b;
    T.nbuckets = n;
    return 0;
}

static entry *entry_alloc(size_t len)
{
    entry *e = T.spare;
    if (e) {
        T.spare = e->next;
        T.nspare--;
    } else if (!(e = calloc(1, sizeof *e))) {
        return NULL;
    }
    if (e->key_cap < len + 1) {
        char *k = realloc(e->key, len + 1);
        if (!k) {
            e->next = T.spare;
            T.spare = e;
            T.nspare++;
            return NULL;
        }
        e->key = k;
        e->key_cap = len + 1;
    }
    return e;
}

static entry *lookup_or_create(const char *key, size_t len, uint64_t h)
{
    entry *e = lookup(key, len, h);
    if (e)
        return e;
    if (T.nentries >= T.nbuckets && grow() != 0 && !T.nbuckets)
        return NULL;
    if (!(e = entry_alloc(len)))
        return NULL;
    memcpy(e->key, key, len + 1);
    e->key_len = len;
    e->hash = h;
    e->nholders = e->nintents = 0;
    e->watchers = NULL;
    entry **b = &T.buckets[h & (T.nbuckets - 1)];
    e->next = *b;
    *b = e;
    T.nentries++;
    return e;
}

static void entry_free(entry *e)
{
    free(e->key);
    free(e->holders);
    free(e->intents);
    free(e);
}

/* Unlinks e once nothing keeps it: no lease, no intent, no watcher. */
static void maybe_drop(entry *e)
{
    if (e->nholders || e->nintents || e->watchers)
        return;
    entry **link = &T.buckets[e->hash & (T.nbuckets - 1)];
    while (*link != e)
        link = &(*link)->next;
    *link = e->next;
    T.nentries--;
    if (T.nspare < SPARE_MAX) {
        e->next = T.spare;
        T.spare = e;
        T.nspare++;
    } else {
        entry_free(e);
    }
}

/* ------------------------------------------------------------ leases */

static int64_t expiry(int64_t now, int64_t ttl_ms)
{
    if (ttl_ms > (INT64_MAX - now) / NS_PER_MS)
        return INT64_MAX; /* ends after the process does */
    return now + ttl_ms * NS_PER_MS;
}

static int64_t remaining_ms(int64_t expires, int64_t now)
{
    return expires <= now ? 0 : (expires - now + NS_PER_MS - 1) / NS_PER_MS;
}

static bool is_exclusive(const entry *e)
{
    return e->nholders && e->holders[0].mode != RS_LOCK_READ;
}

static bool same_class(rs_lock_mode a, rs_lock_mode b)
{
    return (a == RS_LOCK_READ) == (b == RS_LOCK_READ);
}

static holder *find_holder(entry *e, const char *owner)
{
    for (unsigned i = 0; i < e->nholders; i++)
        if (strcmp(e->holders[i].owner, owner) == 0)
            return &e->holders[i];
    return NULL;
}

static void remove_holder(entry *e, holder *h)
{
    *h = e->holders[--e->nholders];
}

static intent *find_intent(entry *e, const char *owner)
{
    for (unsigned i = 0; i < e->nintents; i++)
        if (strcmp(e->intents[i].owner, owner) == 0)
            return &e->intents[i];
    return NULL;
}

static bool drop_intent(entry *e, const char *owner)
{
    intent *in = find_intent(e, owner);
    if (!in)
        return false;
    *in = e->intents[--e->nintents];
    return true;
}

/* Removes ended leases and intents; true when something was removed. */
static bool purge(entry *e, int64_t now)
{
    unsigned before = e->nholders + e->nintents;
    for (unsigned i = 0; i < e->nholders;)
        if (e->holders[i].expires <= now)
            e->holders[i] = e->holders[--e->nholders];
        else
            i++;
    for (unsigned i = 0; i < e->nintents;)
        if (e->intents[i].expires <= now)
            e->intents[i] = e->intents[--e->nintents];
        else
            i++;
    return e->nholders + e->nintents != before;
}

static void poked_push(rs__store_watch *w)
{
    w->poked = true;
    w->poke_prev = NULL;
    w->poke_next = T.poked;
    if (T.poked)
        T.poked->poke_prev = w;
    T.poked = w;
}

static void poked_unlink(rs__store_watch *w)
{
    if (w->poke_prev)
        w->poke_prev->poke_next = w->poke_next;
    else
        T.poked = w->poke_next;
    if (w->poke_next)
        w->poke_next->poke_prev = w->poke_prev;
    w->poke_prev = w->poke_next = NULL;
    w->poked = false;
}

/* Tells e's watchers that something that kept a waiter out ended: this
 * thread's at once, other runtimes' through a poke of their worker. */
static void notify(entry *e)
{
    const void *self = rs__worker_get();
    for (rs__store_watch *w = e->watchers; w; w = w->next) {
        if (w->thread == self) {
            w->changed(w);
        } else if (w->pokeable && !w->poked) {
            poked_push(w);
            rs__worker_poke((rs__worker *)w->thread);
        }
    }
}

/* Poke handler: on worker w's thread, the changes other threads saw for it. */
static void run_poked(rs__worker *wk)
{
    pthread_mutex_lock(&T.mu);
    for (rs__store_watch *w = T.poked, *next; w; w = next) {
        next = w->poke_next;
        if (w->thread == wk) {
            poked_unlink(w);
            w->changed(w);
        }
    }
    pthread_mutex_unlock(&T.mu);
}

static int64_t holders_end(const entry *e)
{
    int64_t end = 0;
    for (unsigned i = 0; i < e->nholders; i++)
        if (e->holders[i].expires > end)
            end = e->holders[i].expires;
    return end;
}

static int64_t intents_end(const entry *e)
{
    int64_t end = 0;
    for (unsigned i = 0; i < e->nintents; i++)
        if (e->intents[i].expires > end)
            end = e->intents[i].expires;
    return end;
}

static int grant(entry *e, rs_lock_mode mode, const char *owner, int64_t now, int64_t ttl_ms, rs__store_grant *out)
{
    if (e->nholders == e->cap_holders) {
        unsigned cap = e->cap_holders ? e->cap_holders * 2 : 1;
        holder *h = realloc(e->holders, cap * sizeof *h);
        if (!h)
            return -ENOMEM;
        e->holders = h;
        e->cap_holders = cap;
    }
    holder *h = &e->holders[e->nholders++];
    h->expires = expiry(now, ttl_ms);
    h->token = ++T.last_token;
    h->mode = mode;
    strcpy(h->owner, owner);
    out->token = h->token;
    return 0;
}

static int set_intent(entry *e, const char *owner, int64_t now)
{
    intent *in = find_intent(e, owner);
    if (!in) {
        if (e->nintents == e->cap_intents) {
            unsigned cap = e->cap_intents ? e->cap_intents * 2 : 1;
            intent *a = realloc(e->intents, cap * sizeof *a);
            if (!a)
                return -ENOMEM;
            e->intents = a;
            e->cap_intents = cap;
        }
        in = &e->intents[e->nintents++];
        strcpy(in->owner, owner);
    }
    in->expires = expiry(now, RS__STORE_INTENT_MS);
    return 0;
}

static void refresh(holder *h, rs_lock_mode mode, int64_t now, int64_t ttl_ms, rs__store_grant *out)
{
    h->expires = expiry(now, ttl_ms);
    h->mode = mode;
    out->token = h->token;
}

static int acquire_exclusive(entry *e, rs_lock_mode mode, const char *owner, int64_t now, int64_t ttl_ms,
                             unsigned flags, rs__store_grant *out)
{
    holder *mine = find_holder(e, owner);
    if (e->nholders == 0 || (mine && is_exclusive(e))) {
        int rc = 0;
        if (mine)
            refresh(mine, mode, now, ttl_ms, out);
        else
            rc = grant(e, mode, owner, now, ttl_ms, out);
        if (rc == 0)
            drop_intent(e, owner);
        return rc;
    }
    if ((flags & RS__ACQ_INTENT) && set_intent(e, owner, now) != 0)
        return -ENOMEM;
    out->retry_ms = remaining_ms(holders_end(e), now);
    return -EBUSY;
}

static int acquire_read(entry *e, const char *owner, int64_t now, int64_t ttl_ms, rs__store_grant *out)
{
    if (is_exclusive(e)) {
        int64_t end = holders_end(e), ie = intents_end(e);
        out->retry_ms = remaining_ms(end > ie ? end : ie, now);
        return -EBUSY;
    }
    holder *mine = find_holder(e, owner);
    if (mine) {
        refresh(mine, RS_LOCK_READ, now, ttl_ms, out);
        return 0;
    }
    if (e->nintents) {
        out->retry_ms = remaining_ms(intents_end(e), now);
        return -EBUSY;
    }
    return grant(e, RS_LOCK_READ, owner, now, ttl_ms, out);
}

/* ------------------------------------------------------------ operations */

/* Looks key up (creating it when asked), purged as of now; NULL when absent
 * (or, with create, out of memory). Called with the mutex held. */
static entry *open_entry(const char *key, bool create, int64_t now)
{
    size_t len;
    uint64_t h = hash_key(key, &len);
    entry *e = create ? lookup_or_create(key, len, h) : lookup(key, len, h);
    if (e && purge(e, now))
        notify(e);
    return e;
}

static int mem_acquire(rs_store *st, const char *key, rs_lock_mode mode, const char *owner, int64_t ttl_ms,
                       unsigned flags, rs__store_grant *out)
{
    (void)st;
    out->retry_ms = -1;
    pthread_mutex_lock(&T.mu);
    int64_t now = rs__clock_ns();
    entry *e = open_entry(key, true, now);
    int rc = -ENOMEM;
    if (e) {
        rc = mode == RS_LOCK_READ ? acquire_read(e, owner, now, ttl_ms, out)
                                  : acquire_exclusive(e, mode, owner, now, ttl_ms, flags, out);
        maybe_drop(e);
    }
    pthread_mutex_unlock(&T.mu);
    return rc;
}

static int mem_release(rs_store *st, const char *key, rs_lock_mode mode, const char *owner)
{
    (void)st;
    pthread_mutex_lock(&T.mu);
    entry *e = open_entry(key, false, rs__clock_ns());
    int rc = -ENOLCK;
    if (e) {
        holder *h = find_holder(e, owner);
        if (h && same_class(h->mode, mode)) {
            remove_holder(e, h);
            notify(e);
            rc = 0;
        }
        maybe_drop(e);
    }
    pthread_mutex_unlock(&T.mu);
    return rc;
}

static int mem_extend(rs_store *st, const char *key, rs_lock_mode mode, const char *owner, int64_t ttl_ms)
{
    (void)st;
    pthread_mutex_lock(&T.mu);
    int64_t now = rs__clock_ns();
    entry *e = open_entry(key, false, now);
    int rc = -ENOLCK;
    if (e) {
        holder *h = find_holder(e, owner);
        if (h && same_class(h->mode, mode)) {
            h->expires = expiry(now, ttl_ms);
            rc = 0;
        }
        maybe_drop(e);
    }
    pthread_mutex_unlock(&T.mu);
    return rc;
}

static int mem_force_release(rs_store *st, const char *key)
{
    (void)st;
    pthread_mutex_lock(&T.mu);
    entry *e = open_entry(key, false, rs__clock_ns());
    if (e) {
        bool had = e->nholders || e->nintents;
        e->nholders = e->nintents = 0;
        if (had)
            notify(e);
        maybe_drop(e);
    }
    pthread_mutex_unlock(&T.mu);
    return 0;
}

static int mem_inspect(rs_store *st, const char *key, rs_lock_info *info)
{
    (void)st;
    pthread_mutex_lock(&T.mu);
    int64_t now = rs__clock_ns();
    entry *e = open_entry(key, false, now);
    int rc = -ENOENT;
    if (e && e->nholders) {
        const holder *longest = &e->holders[0];
        uint64_t token = 0;
        for (unsigned i = 0; i < e->nholders; i++) {
            if (e->holders[i].expires > longest->expires)
                longest = &e->holders[i];
            if (e->holders[i].token > token)
                token = e->holders[i].token;
        }
        info->mode = is_exclusive(e) ? longest->mode : RS_LOCK_READ;
        info->holders = e->nholders;
        strcpy(info->owner, longest->owner);
        info->ttl_left_ms = remaining_ms(longest->expires, now);
        info->token = token;
        rc = 0;
    }
    if (e)
        maybe_drop(e);
    pthread_mutex_unlock(&T.mu);
    return rc;
}

static int mem_withdraw(rs_store *st, const char *key, const char *owner)
{
    (void)st;
    pthread_mutex_lock(&T.mu);
    entry *e = open_entry(key, false, rs__clock_ns());
    if (e) {
        if (drop_intent(e, owner) && e->nintents == 0)
            notify(e);
        maybe_drop(e);
    }
    pthread_mutex_unlock(&T.mu);
    return 0;
}

static pthread_once_t poke_handler_once = PTHREAD_ONCE_INIT;
static bool poke_handler_added;

static void add_poke_handler(void)
{
    poke_handler_added = rs__poke_handler_add(run_poked) == 0;
}

static int mem_watch(rs_store *st, rs__store_watch *w)
{
    (void)st;
    rs__worker *self = rs__worker_get();
    /* Reachable from other runtimes' releases; without it only the backoff. */
    pthread_once(&poke_handler_once, add_poke_handler);
    bool pokeable = self && poke_handler_added && rs__worker_poke_arm(self) == 0;
    pthread_mutex_lock(&T.mu);
    entry *e = open_entry(w->key, true, rs__clock_ns());
    if (e) {
        w->backend = e;
        w->thread = self;
        w->pokeable = pokeable;
        w->poked = false;
        w->poke_prev = w->poke_next = NULL;
        w->prev = NULL;
        w->next = e->watchers;
        if (e->watchers)
            e->watchers->prev = w;
        e->watchers = w;
    }
    pthread_mutex_unlock(&T.mu);
    return e ? 0 : -ENOMEM;
}

static void mem_unwatch(rs_store *st, rs__store_watch *w)
{
    (void)st;
    pthread_mutex_lock(&T.mu);
    entry *e = w->backend;
    if (e) {
        if (w->prev)
            w->prev->next = w->next;
        else
            e->watchers = w->next;
        if (w->next)
            w->next->prev = w->prev;
        w->prev = w->next = NULL;
        w->backend = NULL;
        if (w->poked)
            poked_unlink(w);
        maybe_drop(e);
    }
    pthread_mutex_unlock(&T.mu);
}

/* ------------------------------------------------------------ handles */

static int mem_open(rs_store *st, const rs__url *url)
{
    /* "memory:" and nothing else: there is no server, database or option. */
    if (url->has_authority || url->path || url->has_query)
        return -EINVAL;
    st->impl = NULL;
    return 0;
}

static void mem_close(rs_store *st)
{
    (void)st; /* the table is the process's; leases of this handle stay until they end */
}

const rs__store_ops rs__store_memory_ops = {
    .scheme = "memory",
    .suspends = false,
    .open = mem_open,
    .close = mem_close,
    .acquire = mem_acquire,
    .release = mem_release,
    .extend = mem_extend,
    .force_release = mem_force_release,
    .inspect = mem_inspect,
    .withdraw = mem_withdraw,
    .watch = mem_watch,
    .unwatch = mem_unwatch,
};
