/* rs_strerror: words for every value the library returns.
 *
 * The library's own vocabulary (API.md, "Error vocabulary") gets messages that
 * say what happened in ringscope's terms; every other errno falls back to the C
 * library's description. Returned strings are static: thread-safe, never freed. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <ringscope/runtime.h>

const char *rs_strerror(int err)
{
    if (err == INT_MIN) /* abs() would overflow; no errno is that large */
        return "unknown error";
    int e = abs(err);
    switch (e) {
    case 0: return "success";
    case EINVAL: return "invalid argument";
    case ETIMEDOUT: return "timeout: the operation's time limit expired";
    case ECANCELED: return "cancelled: the task's scope was cancelled or the object was disposed";
    case EBUSY: return "busy: not available without waiting";
    case EALREADY: return "already released: the guard does not hold anything";
    case EDEADLK: return "deadlock: the wait could never end (the caller holds the lock, or every task is blocked)";
    case ENOLCK: return "lease lost: the lock is no longer held by this owner";
    case ENOMEM: return "out of memory";
    case EPERM: return "not permitted: blocking call outside a task";
    case ECONNREFUSED: return "connection refused by the server";
    case ECONNRESET: return "connection reset by the server";
    case EPIPE: return "broken pipe: the peer closed the connection";
    case EIO: return "I/O error talking to the server";
    case EPROTO: return "protocol error: the server answered something unexpected";
    case EHOSTUNREACH: return "host unreachable";
    case ENOENT: return "not found";
    case ENOTSUP: return "not supported";
    }
    const char *desc = strerrordesc_np(e);
    return desc ? desc : "unknown error";
}
