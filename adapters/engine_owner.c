/* Lease owner ids and the engine's randomness.
 *
 * A lock object without an explicit owner gets "host:pid:random": the host
 * and pid say who holds a lease when someone inspects it, and 64 random bits
 * make ids unique per lock object (also across processes on one host and
 * across a fork). Nothing here makes a system call on the hot path: host and
 * pid are computed once (again in a forked child), and the generator is a
 * per-thread xorshift seeded from getrandom once. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "adapters/engine.h"

#define HOST_MAX 64

static char host_pid[HOST_MAX + 24];
static pthread_once_t host_once = PTHREAD_ONCE_INIT;
static __thread uint64_t rng_state;

static void compute_host_pid(void)
{
    char host[HOST_MAX + 1] = "localhost";
    if (gethostname(host, sizeof host) != 0 || !host[0])
        strcpy(host, "localhost");
    host[HOST_MAX] = '\0';
    snprintf(host_pid, sizeof host_pid, "%s:%ld", host, (long)getpid());
}

static void after_fork_in_child(void)
{
    compute_host_pid();
    rng_state = 0; /* the child must not repeat the parent's sequence */
}

static void init_once(void)
{
    compute_host_pid();
    pthread_atfork(NULL, NULL, after_fork_in_child);
}

static uint64_t seed(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&s;
    }
    return s ? s : 0x2545f4914f6cdd1dull;
}

uint64_t rs__dlock_random(void)
{
    if (__builtin_expect(!rng_state, 0))
        rng_state = seed();
    uint64_t x = rng_state; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dull;
}

void rs__dlock_default_owner(char *buf)
{
    pthread_once(&host_once, init_once);
    snprintf(buf, RS__DLOCK_OWNER_MAX + 1, "%s:%016llx", host_pid, (unsigned long long)rs__dlock_random());
}
