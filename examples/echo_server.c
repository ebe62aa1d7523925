/* echo_server: a TCP echo server with one task per connection.
 *
 *     echo_server [HOST] [PORT]      (defaults: 127.0.0.1, any free port)
 *
 * It prints the address it listens on, echoes every byte each client sends,
 * and shuts down gracefully on SIGINT (Ctrl-C) or SIGTERM.
 *
 * The shape of the program is the scope tree:
 *
 *     root                      (rs_run's scope; main runs here)
 *     ├─ signals task           waits for SIGINT/SIGTERM, then cancels root
 *     └─ connections scope      (opened by main)
 *        ├─ acceptor task       accepts in a loop, spawns a task per connection
 *        └─ one task per connection
 *
 * Shutdown: a signal handler cannot call into the runtime, so the signals are
 * blocked and delivered through a signalfd instead, which an ordinary task
 * reads with rs_read. That task cancels the root scope; cancellation reaches
 * every task below it: the acceptor's rs_accept and each connection's
 * rs_recv/rs_send return -ECANCELED, each task closes its socket and returns,
 * rs_scope_close(connections) returns once they are all gone, and main closes
 * the listening socket and returns. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <ringscope.h>

typedef struct server {
    const char *host;
    uint16_t port;
    int listen_fd;
    int signal_fd;
    rs_scope *root;        /* cancelled on SIGINT/SIGTERM */
    rs_scope *connections; /* the acceptor and one task per client */
    uint64_t accepted;
    bool bad_host;
} server;

/* ------------------------------------------------------------ a connection */

static int send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = rs_send(fd, buf, len, 0);
        if (n < 0)
            return (int)n;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Echoes until the client closes, the connection fails, or the server shuts
 * down. A failing connection is that client's business: the task returns 0
 * so that one bad client never cancels the others. */
static int serve_connection(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[16384];
    for (;;) {
        ssize_t n = rs_recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break; /* 0: the client closed; < 0: reset, or -ECANCELED at shutdown */
        if (send_all(fd, buf, (size_t)n) != 0)
            break;
    }
    rs_close(fd); /* closes even when the task was cancelled */
    return 0;
}

/* ------------------------------------------------------------ accepting */

static int accept_loop(void *arg)
{
    server *srv = arg;
    for (;;) {
        int fd = rs_accept(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd == -ECANCELED)
            return 0; /* shutting down */
        if (fd < 0) {
            /* Out of descriptors or a connection that died in the queue:
             * report it, give clients a moment to go, and keep serving. */
            fprintf(stderr, "echo_server: accept: %s\n", rs_strerror(fd));
            if (rs_sleep(100) == -ECANCELED)
                return 0;
            continue;
        }
        srv->accepted++;
        int rc = rs_spawn(srv->connections, serve_connection, (void *)(intptr_t)fd,
                          &(rs_spawn_opts){ .name = "connection", .stack_size = 64 * 1024 }, NULL);
        if (rc) {
            rs_close(fd);
            if (rc == -ECANCELED)
                return 0;
            fprintf(stderr, "echo_server: cannot start a connection task: %s\n", rs_strerror(rc));
        }
    }
}

/* ------------------------------------------------------------ shutdown */

static int watch_signals(void *arg)
{
    server *srv = arg;
    struct signalfd_siginfo si;
    ssize_t n = rs_read(srv->signal_fd, &si, sizeof si, -1);
    if (n == -ECANCELED)
        return 0; /* the server stopped for another reason */
    if (n == (ssize_t)sizeof si)
        fprintf(stderr, "echo_server: %s, shutting down\n", strsignal((int)si.ssi_signo));
    else
        fprintf(stderr, "echo_server: reading signals failed (%s), shutting down\n", rs_strerror((int)n));
    rs_scope_cancel(srv->root);
    return 0;
}

/* ------------------------------------------------------------ main task */

static void print_address(const server *srv)
{
    struct sockaddr_storage ss = { 0 };
    socklen_t len = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    if (getsockname(srv->listen_fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
            port = ntohs(a->sin6_port);
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
            port = ntohs(a->sin_port);
        }
    }
    printf("echo_server: listening on %s%s%s port %" PRIu16 "\n", ss.ss_family == AF_INET6 ? "[" : "", ip,
           ss.ss_family == AF_INET6 ? "]" : "", port);
    fflush(stdout);
}

static int server_main(void *arg)
{
    server *srv = arg;
    srv->root = rs_current_scope();
    srv->listen_fd = rs_tcp_listen(srv->host, srv->port, 0);
    if (srv->listen_fd == -EINVAL) {
        fprintf(stderr, "echo_server: '%s' is not a numeric IPv4/IPv6 address or localhost\n", srv->host);
        srv->bad_host = true;
        return -EINVAL;
    }
    if (srv->listen_fd < 0) {
        fprintf(stderr, "echo_server: cannot listen on %s port %u: %s\n", srv->host, (unsigned)srv->port,
                rs_strerror(srv->listen_fd));
        return srv->listen_fd;
    }
    print_address(srv);

    int rc = rs_spawn(srv->root, watch_signals, srv, &(rs_spawn_opts){ .name = "signals" }, NULL);
    if (rc == 0)
        rc = rs_scope_open(&(rs_scope_opts){ .name = "connections", .keep_going = true }, &srv->connections);
    if (rc == 0) {
        rc = rs_spawn(srv->connections, accept_loop, srv, &(rs_spawn_opts){ .name = "acceptor" }, NULL);
        if (rc)
            rs_scope_cancel(srv->connections);
        int close_rc = rs_scope_close(srv->connections); /* returns when every connection task is done */
        if (close_rc && close_rc != -ECANCELED && !rc)
            rc = close_rc;
    }
    rs_close(srv->listen_fd); /* closes although root is cancelled by now */
    if (rc)
        fprintf(stderr, "echo_server: %s\n", rs_strerror(rc));
    else
        fprintf(stderr, "echo_server: stopped after %" PRIu64 " connection%s\n", srv->accepted,
                srv->accepted == 1 ? "" : "s");
    return rc;
}

/* ------------------------------------------------------------ command line */

static void usage(FILE *out)
{
    fprintf(out, "usage: echo_server [HOST] [PORT]\n"
                 "  HOST  numeric IPv4/IPv6 address or localhost (default 127.0.0.1; 0.0.0.0 or :: for all)\n"
                 "  PORT  1-65535, or 0 for any free port (default 0)\n"
                 "Stops gracefully on SIGINT (Ctrl-C) or SIGTERM.\n");
}

static bool parse_port(const char *s, uint16_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

int main(int argc, char **argv)
{
    server srv = { .host = "127.0.0.1", .listen_fd = -1, .signal_fd = -1 };
    if (argc > 3 || (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))) {
        usage(argc > 3 ? stderr : stdout);
        return argc > 3 ? 2 : 0;
    }
    if (argc > 1)
        srv.host = argv[1];
    if (argc > 2 && !parse_port(argv[2], &srv.port)) {
        fprintf(stderr, "echo_server: bad port '%s'\n", argv[2]);
        usage(stderr);
        return 2;
    }

    /* Signals go to the signalfd instead of killing the process; blocked
     * before rs_run so that no thread takes them the default way. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &stop, NULL) != 0 || (srv.signal_fd = signalfd(-1, &stop, SFD_CLOEXEC)) < 0) {
        perror("echo_server: signalfd");
        return 1;
    }

    int rc = rs_run(server_main, &srv, NULL);
    close(srv.signal_fd);
    if (srv.bad_host) {
        usage(stderr);
        return 2;
    }
    return rc ? 1 : 0;
}
