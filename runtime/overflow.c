/* Stack-overflow reports. Everything on the report path is async-signal-safe
 * (it also runs inside the SIGSEGV handler): write(2), abort(3), no stdio. */
#define _GNU_SOURCE
#include "runtime/overflow.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "runtime/task.h"

#define ALTSTACK_SIZE (64 * 1024)

static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned handler_users;
static struct sigaction previous_segv;

static size_t put_str(char *buf, size_t at, size_t cap, const char *s)
{
    while (*s && at + 1 < cap)
        buf[at++] = *s++;
    return at;
}

static size_t put_uint(char *buf, size_t at, size_t cap, size_t v)
{
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < (int)sizeof digits);
    while (n && at + 1 < cap)
        buf[at++] = digits[--n];
    return at;
}

void rs__overflow_report(const rs_task *t)
{
    char msg[256];
    size_t n = 0;
    n = put_str(msg, n, sizeof msg, "ringscope: stack overflow in task '");
    n = put_str(msg, n, sizeof msg, t->name[0] ? t->name : "(unnamed)");
    n = put_str(msg, n, sizeof msg, "' (stack size ");
    n = put_uint(msg, n, sizeof msg, t->stack->size);
    n = put_str(msg, n, sizeof msg, " bytes); give it a larger rs_spawn_opts.stack_size\n");
    ssize_t ignored = write(STDERR_FILENO, msg, n);
    (void)ignored;
    /* abort() must not be caught by a user SIGABRT handler that returns into
     * the damaged stack: restore the default action first. */
    signal(SIGABRT, SIG_DFL);
    abort();
}

/* A fault is an overflow of the running task's stack when it hit the guard
 * page or red zone, or when the stack pointer itself has left the stack (a
 * runaway recursion on an unguarded stack walks through its neighbours until
 * it meets unmapped memory). */
static bool is_task_overflow(const rs_task *t, const siginfo_t *info, const ucontext_t *uc)
{
    const rs__stack *s = t->stack;
    const char *sp = (const char *)uc->uc_mcontext.gregs[REG_RSP];
    return rs__stack_in_overflow_area(s, info->si_addr) || sp < s->low + RS_STACK_REDZONE ||
           sp > (const char *)rs__stack_top(s) || !rs__stack_redzone_intact(s);
}

static void on_segv(int sig, siginfo_t *info, void *uctx)
{
    (void)sig;
    rs__worker *w = rs__tls_worker;
    rs_task *t = w ? w->current : NULL;
    if (t && t->stack && is_task_overflow(t, info, uctx))
        rs__overflow_report(t);
    /* Not a stack overflow of ours: put the previous handler back and return;
     * the faulting instruction runs again and meets it. */
    sigaction(SIGSEGV, &previous_segv, NULL);
}

void rs__overflow_worker_init(rs__worker *w)
{
    stack_t current;
    if (sigaltstack(NULL, &current) == 0 && (current.ss_flags & SS_DISABLE)) {
        void *mem = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem != MAP_FAILED) {
            stack_t ss = { .ss_sp = mem, .ss_size = ALTSTACK_SIZE, .ss_flags = 0 };
            if (sigaltstack(&ss, NULL) == 0)
                w->altstack = mem;
            else
                munmap(mem, ALTSTACK_SIZE);
        }
    }
    pthread_mutex_lock(&install_lock);
    if (handler_users++ == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, &previous_segv);
    }
    pthread_mutex_unlock(&install_lock);
}

void rs__overflow_worker_destroy(rs__worker *w)
{
    pthread_mutex_lock(&install_lock);
    if (--handler_users == 0)
        sigaction(SIGSEGV, &previous_segv, NULL);
    pthread_mutex_unlock(&install_lock);
    if (w->altstack) {
        stack_t off = { .ss_flags = SS_DISABLE };
        sigaltstack(&off, NULL);
        munmap(w->altstack, ALTSTACK_SIZE);
        w->altstack = NULL;
    }
}
