/* rs_tcp_listen, rs_tcp_connect: TCP sockets in one call.
 *
 * Hosts are numeric IPv4 or IPv6 addresses (IPv6 optionally in brackets) or
 * "localhost" (127.0.0.1, then ::1). Names are never looked up: a resolver
 * call (getaddrinfo) would block the whole worker for as long as DNS takes.
 * Sockets are SOCK_NONBLOCK | SOCK_CLOEXEC (the ring waits for them all the
 * same) and carry TCP_NODELAY: small request/response traffic is the common
 * case, and accepted sockets inherit the option from the listener. */
#include <ringscope/io.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "io/io_op.h"

#define MAX_CANDIDATES 2

typedef struct tcp_addr {
    struct sockaddr_storage ss;
    socklen_t len;
} tcp_addr;

static void set_v4(tcp_addr *a, const struct in_addr *ip, uint16_t port)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
    memset(a, 0, sizeof *a);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr = *ip;
    a->len = sizeof *sin;
}

static void set_v6(tcp_addr *a, const struct in6_addr *ip, uint16_t port)
{
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
    memset(a, 0, sizeof *a);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    sin6->sin6_addr = *ip;
    a->len = sizeof *sin6;
}

/* A numeric address, IPv6 possibly written "[::1]" (brackets are IPv6's
 * alone: "[127.0.0.1]" is no address). Returns 1 or -EINVAL. */
static int parse_numeric(const char *host, uint16_t port, tcp_addr *out)
{
    char buf[INET6_ADDRSTRLEN];
    size_t n = strlen(host);
    bool bracketed = n >= 2 && host[0] == '[' && host[n - 1] == ']';
    if (bracketed) {
        if (n - 2 >= sizeof buf)
            return -EINVAL;
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = '\0';
        host = buf;
    }
    struct in_addr v4;
    struct in6_addr v6;
    if (!bracketed && inet_pton(AF_INET, host, &v4) == 1) {
        set_v4(out, &v4, port);
        return 1;
    }
    if (inet_pton(AF_INET6, host, &v6) == 1) {
        set_v6(out, &v6, port);
        return 1;
    }
    return -EINVAL;
}

/* Addresses to try, in order. NULL or "" means any address (passive use
 * only). Returns how many were filled, or -EINVAL. */
static int resolve(const char *host, uint16_t port, bool passive, tcp_addr out[MAX_CANDIDATES])
{
    if (!host || !*host) {
        if (!passive)
            return -EINVAL;
        set_v4(&out[0], &(struct in_addr){ .s_addr = htonl(INADDR_ANY) }, port);
        return 1;
    }
    if (strcasecmp(host, "localhost") == 0) {
        set_v4(&out[0], &(struct in_addr){ .s_addr = htonl(INADDR_LOOPBACK) }, port);
        set_v6(&out[1], &in6addr_loopback, port);
        return 2;
    }
    return parse_numeric(host, port, &out[0]);
}

static int new_socket(int family)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0)
        return -errno;
    int one = 1;
    /* Best effort: a socket without it still works, only slower for small messages. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int listen_on(const tcp_addr *a, int backlog)
{
    int fd = new_socket(a->ss.ss_family);
    if (fd < 0)
        return fd;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0 || listen(fd, backlog) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

/* The address family cannot be used here at all (IPv4 loopback unusable,
 * or no IPv6 on this host). For "localhost", rs_tcp_listen moves on to ::1
 * only after such an error: any other (above all -EADDRINUSE, the port is
 * taken on 127.0.0.1) is the answer, so that a second server never listens
 * on ::1 alone, splitting "localhost" between two servers. */
static bool family_unusable(int rc)
{
    return rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT;
}

int rs_tcp_listen(const char *host, uint16_t port, int backlog)
{
    int rc = rs__checkpoint();
    if (rc)
        return rc;
    if (backlog < 0)
        return -EINVAL;
    tcp_addr cands[MAX_CANDIDATES];
    int n = resolve(host, port, true, cands);
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++) {
        rc = listen_on(&cands[i], backlog ? backlog : SOMAXCONN);
        if (rc >= 0 || !family_unusable(rc))
            return rc;
    }
    return rc;
}

/* Errors after which the next address of "localhost" is worth a try. */
static bool try_next(int rc)
{
    return rc == -ECONNREFUSED || rc == -ENETUNREACH || rc == -EHOSTUNREACH || rc == -EADDRNOTAVAIL ||
           rc == -EAFNOSUPPORT;
}

int rs_tcp_connect(const char *host, uint16_t port, int64_t timeout_ms)
{
    int rc = rs__checkpoint();
    if (rc)
        return rc;
    if (timeout_ms < 0 || port == 0)
        return -EINVAL;
    tcp_addr cands[MAX_CANDIDATES];
    int n = resolve(host, port, false, cands);
    if (n < 0)
        return n;
    /* One deadline for every attempt: the timeout bounds the whole call. */
    int64_t deadline = rs__deadline_after_ms(timeout_ms);
    int answer = 0; /* the error to report: the first that is about the peer, not the address family */
    for (int i = 0; i < n; i++) {
        int fd = new_socket(cands[i].ss.ss_family);
        if (fd < 0) {
            rc = fd;
        } else {
            rc = rs__connect_until(fd, (const struct sockaddr *)&cands[i].ss, cands[i].len, deadline);
            if (rc == 0)
                return fd;
            close(fd);
        }
        if (!try_next(rc))
            return rc;
        if (!answer && !family_unusable(rc))
            answer = rc;
        int cp = rs__checkpoint();
        if (cp)
            return cp;
    }
    /* "localhost" on a host without IPv6: 127.0.0.1's -ECONNREFUSED is the
     * answer, not ::1's -EADDRNOTAVAIL. */
    return answer ? answer : rc;
}
