/* Eight tasks in one scope increment a counter under a lock, suspending in
 * the middle of the critical section; the lock keeps them out of each other's
 * way and the scope waits for all of them. (The example in README.md.) */
#include <ringscope.h>
#include <stdio.h>

static int counter;

static int worker(void *arg)
{
    rs_lock *lock = arg;
    for (int i = 0; i < 1000; i++) {
        RS_GUARD(g); /* released at the end of this block */
        int rc = rs_lock_acquire(lock, NULL, &g);
        if (rc)
            return rc;
        int seen = counter;
        rs_yield(); /* other tasks run here, but none enters */
        counter = seen + 1;
    }
    return 0;
}

static int app(void *arg)
{
    (void)arg;
    rs_scope *s;
    int rc = rs_scope_open(&(rs_scope_opts){ .name = "workers", .timeout_ms = 5000 }, &s);
    if (rc)
        return rc;
    rs_lock *lock;
    rc = rs_lock_new(s, NULL, &lock);
    for (int i = 0; rc == 0 && i < 8; i++)
        rc = rs_spawn(s, worker, lock, NULL, NULL);
    if (rc)
        rs_scope_cancel(s);
    int closed = rs_scope_close(s); /* waits for every task of the scope */
    printf("counter = %d, scope: %s\n", counter, rs_strerror(closed));
    return rc ? rc : closed;
}

int main(void)
{
    return rs_run(app, NULL, NULL) == 0 ? 0 : 1;
}
