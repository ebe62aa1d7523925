/* Helpers shared by the Criterion tests.
 *
 * Assertions inside tasks: Criterion's fatal assertions leave the test with a
 * longjmp, which must not cross from a task's stack to the thread's. Inside a
 * task use RS_CHECK*: a failed check is reported (non-fatal cr_expect_fail)
 * and makes the task return -1, which fails the scope and therefore rs_run;
 * the test then asserts rs_run's result on the thread's own stack. */
#ifndef RS_TESTS_SUPPORT_H
#define RS_TESTS_SUPPORT_H

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include <ringscope.h>

#define RS_CHECK(cond)                                                                                        \
    do {                                                                                                      \
        if (!(cond)) {                                                                                        \
            cr_expect_fail("check failed: %s (%s:%d)", #cond, __FILE__, __LINE__);                            \
            return -1;                                                                                        \
        }                                                                                                     \
    } while (0)

#define RS_CHECK_EQ(actual, expected)                                                                         \
    do {                                                                                                      \
        long long rs_a_ = (long long)(actual), rs_e_ = (long long)(expected);                                 \
        if (rs_a_ != rs_e_) {                                                                                 \
            cr_expect_fail("%s == %s failed: %lld != %lld (%s:%d)", #actual, #expected, rs_a_, rs_e_,         \
                           __FILE__, __LINE__);                                                               \
            return -1;                                                                                        \
        }                                                                                                     \
    } while (0)

/* Checks that a call returned 0, printing rs_strerror otherwise. */
#define RS_CHECK_OK(call)                                                                                     \
    do {                                                                                                      \
        int rs_rc_ = (call);                                                                                  \
        if (rs_rc_ != 0) {                                                                                    \
            cr_expect_fail("%s returned %d (%s) (%s:%d)", #call, rs_rc_, rs_strerror(rs_rc_), __FILE__,       \
                           __LINE__);                                                                         \
            return -1;                                                                                        \
        }                                                                                                     \
    } while (0)

/* Runs fn(arg) as main under a fresh runtime and asserts it returned 0. */
#define RS_RUN_OK(fn, arg)                                                                                    \
    do {                                                                                                      \
        int rs_run_rc_ = rs_run((fn), (arg), NULL);                                                           \
        cr_assert_eq(rs_run_rc_, 0, "rs_run(%s) returned %d (%s)", #fn, rs_run_rc_, rs_strerror(rs_run_rc_)); \
    } while (0)

/* Two runtimes at once: rs_run(a, arg_a) and rs_run(b, arg_b), each on a
 * thread of its own, and asserts that both returned 0 (on the test's thread).
 * The tasks may step in turn with a pthread barrier of their own: a test
 * harness between threads, not part of either runtime's scheduling. */
typedef struct rs_test_thread_run {
    rs_task_fn fn;
    void *arg;
    int rc;
} rs_test_thread_run;

static inline void *rs_test_thread_main(void *p)
{
    rs_test_thread_run *r = p;
    r->rc = rs_run(r->fn, r->arg, NULL);
    return NULL;
}

static inline void rs_test_run_two_threads(rs_task_fn a, void *arg_a, rs_task_fn b, void *arg_b)
{
    rs_test_thread_run ra = { a, arg_a, 0 }, rb = { b, arg_b, 0 };
    pthread_t ta, tb;
    cr_assert_eq(pthread_create(&ta, NULL, rs_test_thread_main, &ra), 0);
    cr_assert_eq(pthread_create(&tb, NULL, rs_test_thread_main, &rb), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    cr_assert_eq(ra.rc, 0, "first runtime returned %d (%s)", ra.rc, rs_strerror(ra.rc));
    cr_assert_eq(rb.rc, 0, "second runtime returned %d (%s)", rb.rc, rs_strerror(rb.rc));
}

/* A deadlock for the runtime to break: a task of a new nested scope waits
 * for that scope's signal, which only the scope's cancellation fires, while
 * the calling task waits in the scope's close. Nothing can wake either of
 * them until the runtime finds every task blocked and cancels the root
 * scope; returns what the close returns then (-ECANCELED). */
static inline int rs_test_wait_on_own_signal(void *sig)
{
    return rs_signal_wait(sig, 0);
}

static inline int rs_test_deadlock_in_a_nested_scope(void)
{
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    RS_CHECK_OK(rs_spawn(s, rs_test_wait_on_own_signal, rs_scope_signal(s), NULL, NULL));
    return rs_scope_close(s);
}

/* The randomized tests' generator (splitmix64): deterministic for a seed,
 * so a failing seed reproduces. *state is the whole generator. */
static inline uint64_t rs_test_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A value in 0 .. n-1 (n > 0). */
static inline int rs_test_rand_below(uint64_t *state, int n)
{
    return (int)(rs_test_rand(state) % (uint64_t)n);
}

/* The URL of a test server from the environment; fails loudly when missing
 * (scripts/services start exports them; tests never skip). */
static inline const char *rs_test_env_url(const char *var)
{
    const char *v = getenv(var);
    cr_assert(v && *v, "%s is not set: start the test servers with scripts/services start "
                       "and export $(scripts/services env)", var);
    return v;
}

#endif
