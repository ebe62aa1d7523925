/* Suite "store-memory": lock cycles per second (acquire + release) of a
 * distributed lock on the built-in memory store, beside the in-memory rs_lock
 * (no store) in the same run, so the ratio is the cost of going through the
 * store and the distributed-lock engine.
 *
 * Cases: 1 task; 64 tasks on 64 distinct keys; 64 tasks on one hot key. With
 * the store, each task has its own lock object (its own owner, as separate
 * workers would; the key makes them one lock). The in-memory peer has no key:
 * on the hot key its tasks share one lock object, so that it is contended
 * too, and on distinct keys each has its own.
 * With 64 tasks every cycle holds the lock across one rs_yield, so the tasks
 * interleave; on the hot key they share the key's local queue and every
 * release hands over to the head waiter. A third row in the
 * uncontended cases is the raw store API (rs_store_acquire + rs_store_release,
 * no engine, no guard, no renewal timer). Times are taken inside the runtime,
 * from the first spawn to the last task's end. */
#include <errno.h>
#include <stdio.h>

#include <ringscope.h>

#include "bench.h"

#define TASKS_MAX 64

typedef enum { IMPL_STORE_LOCK, IMPL_MEM_LOCK, IMPL_RAW_STORE } impl_kind;

typedef struct store_case {
    unsigned tasks;
    bool hot;            /* one key for every task */
    uint64_t cycles;     /* per task */
    impl_kind kind;
    rs_store *st;
} store_case;

typedef struct worker {
    const store_case *c;
    rs_lock *l;
    char key[32];
    int rc;
} worker;

/* With several tasks, each holds the lock across one yield: the others run
 * meanwhile, so a hot key is really contended (every release hands over to
 * a queued task) and distinct keys interleave the same way. */
static int cycle_lock(worker *w)
{
    bool yield = w->c->tasks > 1;
    for (uint64_t i = 0; i < w->c->cycles; i++) {
        rs_guard g = RS_GUARD_INIT;
        int rc = rs_lock_acquire(w->l, NULL, &g);
        if (rc)
            return rc;
        if (yield && (rc = rs_yield()) != 0)
            return rc;
        if ((rc = rs_guard_release(&g)) != 0)
            return rc;
    }
    return 0;
}

static int cycle_raw(worker *w)
{
    bool yield = w->c->tasks > 1;
    for (uint64_t i = 0; i < w->c->cycles; i++) {
        int rc = rs_store_acquire(w->c->st, w->key, RS_LOCK_EXCLUSIVE, w->key, 30000, NULL);
        if (rc)
            return rc;
        if (yield && (rc = rs_yield()) != 0)
            return rc;
        if ((rc = rs_store_release(w->c->st, w->key, RS_LOCK_EXCLUSIVE, w->key)) != 0)
            return rc;
    }
    return 0;
}

static int worker_main(void *arg)
{
    worker *w = arg;
    w->rc = w->c->kind == IMPL_RAW_STORE ? cycle_raw(w) : cycle_lock(w);
    return w->rc;
}

typedef struct store_run {
    const store_case *c;
    int64_t elapsed_ns;
} store_run;

/* shared: the hot key's in-memory lock, made by the first worker. */
static int make_lock(const store_case *c, worker *w, rs_lock **shared)
{
    if (c->kind == IMPL_RAW_STORE)
        return 0;
    if (c->kind == IMPL_MEM_LOCK && c->hot && *shared) {
        w->l = *shared;
        return 0;
    }
    rs_lock_opts o = { .name = "bench" };
    if (c->kind == IMPL_STORE_LOCK) {
        o.store = c->st;
        o.key = w->key;
    }
    int rc = rs_lock_new(NULL, &o, &w->l);
    if (rc == 0 && c->kind == IMPL_MEM_LOCK && c->hot)
        *shared = w->l;
    return rc;
}

static int store_main(void *arg)
{
    store_run *r = arg;
    const store_case *c = r->c;
    worker ws[TASKS_MAX];
    rs_scope *objs;
    int rc = rs_scope_open(&(rs_scope_opts){ .name = "locks" }, &objs);
    if (rc)
        return rc;
    rs_lock *shared = NULL;
    for (unsigned i = 0; i < c->tasks && rc == 0; i++) {
        ws[i] = (worker){ .c = c };
        snprintf(ws[i].key, sizeof ws[i].key, "bench:%u", c->hot ? 0 : i);
        rc = make_lock(c, &ws[i], &shared);
    }
    if (rc == 0) {
        int64_t t0 = rs_bench_now_ns();
        rs_scope *s = NULL;
        rc = rs_scope_open(&(rs_scope_opts){ .name = "cycles" }, &s);
        for (unsigned i = 0; i < c->tasks && rc == 0; i++)
            rc = rs_spawn(s, worker_main, &ws[i], NULL, NULL);
        if (s) {
            if (rc)
                rs_scope_cancel(s);
            int crc = rs_scope_close(s);
            rc = rc ? rc : crc;
        }
        r->elapsed_ns = rs_bench_now_ns() - t0;
    }
    int crc = rs_scope_close(objs);
    return rc ? rc : crc;
}

static int measure(void *arg, double *per_s)
{
    store_run r = { .c = arg };
    int rc = rs_run(store_main, &r, NULL);
    if (rc)
        return rc;
    *per_s = (double)(r.c->cycles * r.c->tasks) / ((double)r.elapsed_ns / 1e9);
    return 0;
}

static int run_case(rs_bench *b, rs_store *st, const char *url, unsigned tasks, bool hot, uint64_t cycles)
{
    store_case store_lock = { tasks, hot, cycles, IMPL_STORE_LOCK, st };
    store_case mem_lock = { tasks, hot, cycles, IMPL_MEM_LOCK, st };
    store_case raw = { tasks, hot, cycles, IMPL_RAW_STORE, st };
    char name[80];
    snprintf(name, sizeof name, "acquire+release, %u task%s, %s", tasks, tasks == 1 ? "" : "s",
             hot ? "one hot key" : tasks == 1 ? "one key" : "distinct keys");
    char store_impl[80];
    snprintf(store_impl, sizeof store_impl, "store lock (%.60s)", url);
    rs_bench_impl impls[3] = {
        { store_impl, measure, &store_lock },
        { "in-memory rs_lock", measure, &mem_lock },
        { "raw rs_store_* calls", measure, &raw },
    };
    /* The raw API has no queue: on a hot key it would only measure -EBUSY. */
    return rs_bench_compare(b, name, "cycles/s", impls, hot ? 2 : 3);
}

static int run_store_memory(rs_bench *b)
{
    rs_store *st;
    const char *url = rs_bench_store_url(b);
    int rc = rs_store_open(url, &(rs_store_opts){ .key_prefix = "bench:" }, &st);
    if (rc) {
        rs_bench_note(b, "cannot open the store %s: %s", url, rs_strerror(rc));
        return rc;
    }
    uint64_t one = rs_bench_pick(b, 400000, 40000), each = rs_bench_pick(b, 8000, 800);
    rs_bench_note(b, "1 task: %llu cycles; 64 tasks: %llu cycles each, one rs_yield while holding; ttl 30000 ms (renewal timers armed, never "
                     "due); ratio = store lock / peer (higher is better)",
                  (unsigned long long)one, (unsigned long long)each);
    rc = run_case(b, st, url, 1, false, one);
    if (rc == 0)
        rc = run_case(b, st, url, TASKS_MAX, false, each);
    if (rc == 0)
        rc = run_case(b, st, url, TASKS_MAX, true, each);
    int crc = rs_store_close(st);
    return rc ? rc : crc;
}

RS_BENCH_SUITE("store-memory", 300, "lock cycles/s through the built-in memory store, beside the in-memory lock",
               run_store_memory)
