/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * slowhttp.c: the slow HTTP service of bench/compare's fetch50 workload,
 * built as agentpool-slowhttp (not installed). Agents that wait on the
 * network (pyagents.examples.fetch) GET http://127.0.0.1:PORT/delay/50 of
 * it; it answers 50 ms later. It must never be what limits the run:
 * urllib opens a connection per request, so 1,024 fetches in flight
 * against a 50 ms wait is ~20,000 connections per second, more than an
 * asyncio server sharing two cores with the servers under test keeps up
 * with. Here each request costs an accept, an evhttp parse, one timer
 * (event_base_once, freed by libevent when it fires) and one write.
 *
 *   GET|POST /delay/N  200 "ok /delay/N" after N ms (0 <= N <= 60000)
 *   GET /stats         {"served":..,"pending":..,"refused":..,"bad":..}
 *   anything else      404; above --max-pending waits, 503 (counted)
 *
 * Every answer says Connection: close (one request per connection, as
 * urllib does it). A client that leaves early is not a special case:
 * when its timer fires, evhttp_send_reply frees a request whose
 * connection is gone. One thread, one event base, one global state.
 * On start it prints "listening on 127.0.0.1:PORT" (PORT chosen by the
 * kernel unless --port is given); SIGTERM or SIGINT stop it, printing
 * the counts.
 *
 * Usage: agentpool-slowhttp [--port N] [--max-pending N]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define SLOW_MAX_DELAY_MS 60000u
#define SLOW_DEFAULT_PENDING 16384u
#define SLOW_MAX_PENDING 65536u
#define SLOW_BACKLOG 4096 /* the kernel caps it at net.core.somaxconn */
#define SLOW_IDLE_S 30 /* a connection that sends nothing for this long is closed */
#define SLOW_FD_SPARE 64u /* descriptors kept for the listener, stdio, libevent */

/* The one mutable global: the event base and the counts. */
static struct {
    struct event_base *base;
    unsigned max_pending;
    unsigned pending; /* answers waiting on their timer */
    uint64_t served, refused, bad;
} slow;

/* Parse a decimal in [lo, hi]. Returns 0, or -1 (out unchanged). */
static int slow_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < lo || v > hi)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* Answer req with status and a body, Connection: close. */
static void slow_reply(struct evhttp_request *req, int status, const char *reason, const char *type,
                       const char *body)
{
    struct evbuffer *buf = evbuffer_new();
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Connection", "close");
    if (buf == NULL || evbuffer_add(buf, body, strlen(body)) != 0) {
        fprintf(stderr, "slowhttp: evbuffer: out of memory, answering without a body\n");
        evhttp_send_reply(req, status, reason, NULL);
    } else {
        evhttp_send_reply(req, status, reason, buf);
    }
    if (buf != NULL)
        evbuffer_free(buf);
}

/* A delay ended: answer its request (freed by libevent if the client left). */
static void slow_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct evhttp_request *req = arg;
    char body[64];
    (void)fd;
    (void)what;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    snprintf(body, sizeof body, "ok %s", path ? path : "?");
    slow.pending--;
    slow.served++;
    slow_reply(req, HTTP_OK, "OK", "text/plain", body);
}

static void slow_stats(struct evhttp_request *req)
{
    char body[192];
    snprintf(body, sizeof body,
             "{\"served\":%" PRIu64 ",\"pending\":%u,\"refused\":%" PRIu64 ",\"bad\":%" PRIu64
             ",\"max_pending\":%u}\n",
             slow.served, slow.pending, slow.refused, slow.bad, slow.max_pending);
    slow_reply(req, HTTP_OK, "OK", "application/json", body);
}

/* Every request: /delay/N waits, /stats answers, the rest is refused. */
static void slow_request_cb(struct evhttp_request *req, void *arg)
{
    (void)arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    unsigned ms;
    if (path != NULL && strcmp(path, "/stats") == 0) {
        slow_stats(req);
        return;
    }
    if (path == NULL || strncmp(path, "/delay/", 7) != 0
        || slow_uint(path + 7, 0, SLOW_MAX_DELAY_MS, &ms) != 0) {
        slow.bad++;
        slow_reply(req, HTTP_NOTFOUND, "Not Found", "text/plain", "only GET /delay/N (N <= 60000) and /stats\n");
        return;
    }
    if (slow.pending >= slow.max_pending) {
        slow.refused++;
        slow_reply(req, HTTP_SERVUNAVAIL, "Service Unavailable", "text/plain", "too many waits\n");
        return;
    }
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    if (event_base_once(slow.base, -1, EV_TIMEOUT, slow_timer_cb, req, &tv) != 0) {
        fprintf(stderr, "slowhttp: event_base_once failed (%u pending): answering 503\n", slow.pending);
        slow.refused++;
        slow_reply(req, HTTP_SERVUNAVAIL, "Service Unavailable", "text/plain", "no timer\n");
        return;
    }
    slow.pending++;
}

static void slow_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    (void)arg;
    fprintf(stderr, "slowhttp: signal %d: stopping\n", (int)sig);
    event_base_loopbreak(slow.base);
}

/* Raise the soft descriptor limit for max_pending connections, or lower
 * max_pending to what the hard limit allows (said on stderr). */
static void slow_fit_fd_limit(void)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)slow.max_pending + SLOW_FD_SPARE;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        fprintf(stderr, "slowhttp: getrlimit(RLIMIT_NOFILE): %s\n", strerror(errno));
        return;
    }
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        fprintf(stderr, "slowhttp: setrlimit(RLIMIT_NOFILE, %lu): %s\n", (unsigned long)rl.rlim_cur,
                strerror(errno));
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
        slow.max_pending = rl.rlim_cur > 2 * SLOW_FD_SPARE ? (unsigned)(rl.rlim_cur - SLOW_FD_SPARE) : SLOW_FD_SPARE;
        fprintf(stderr, "slowhttp: descriptor limit %lu: --max-pending lowered to %u\n", (unsigned long)rl.rlim_cur,
                slow.max_pending);
    }
}

/* The listening socket on 127.0.0.1:port. Returns the fd and sets *bound
 * to the port, or -1 after saying why. */
static int slow_listen(unsigned port, unsigned *bound)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    socklen_t len = sizeof sa;
    int one = 1;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "slowhttp: socket(AF_INET): %s\n", strerror(errno));
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0
        || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, SLOW_BACKLOG) != 0
        || getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        fprintf(stderr, "slowhttp: listening on 127.0.0.1:%u: %s\n", port, strerror(errno));
        close(fd);
        return -1;
    }
    *bound = ntohs(sa.sin_port);
    return fd;
}

static void slow_usage(FILE *out)
{
    fprintf(out, "Usage: agentpool-slowhttp [--port N] [--max-pending N]\n"
                 "  GET /delay/MS answers after MS ms (at most %u), GET /stats the counts.\n"
                 "  --port N         TCP port on 127.0.0.1 (default 0: the kernel picks; printed)\n"
                 "  --max-pending N  waits at once, more are answered 503 (default %u, at most %u)\n",
            SLOW_MAX_DELAY_MS, SLOW_DEFAULT_PENDING, SLOW_MAX_PENDING);
}

int main(int argc, char **argv)
{
    unsigned port = 0, bound = 0;
    int rc = 1, fd = -1;
    struct evhttp *http = NULL;
    struct event *sigterm = NULL, *sigint = NULL;
    slow.max_pending = SLOW_DEFAULT_PENDING;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            slow_usage(stdout);
            return 0;
        }
        unsigned *dst = strcmp(argv[i], "--port") == 0 ? &port
                        : strcmp(argv[i], "--max-pending") == 0 ? &slow.max_pending : NULL;
        unsigned hi = dst == &port ? 65535u : SLOW_MAX_PENDING;
        if (dst == NULL || i + 1 >= argc || slow_uint(argv[i + 1], dst == &port ? 0 : 1, hi, dst) != 0) {
            fprintf(stderr, "slowhttp: bad option or value: %s%s%s\n", argv[i], i + 1 < argc ? " " : "",
                    i + 1 < argc ? argv[i + 1] : "");
            slow_usage(stderr);
            return 2;
        }
        i++;
    }
    signal(SIGPIPE, SIG_IGN); /* a client gone before its answer is an EPIPE, not a death */
    slow_fit_fd_limit();
    slow.base = event_base_new();
    if (slow.base == NULL) {
        fprintf(stderr, "slowhttp: event_base_new failed\n");
        return 1;
    }
    http = evhttp_new(slow.base);
    if (http == NULL) {
        fprintf(stderr, "slowhttp: evhttp_new failed\n");
        goto out;
    }
    evhttp_set_timeout(http, SLOW_IDLE_S);
    evhttp_set_max_headers_size(http, 8192);
    evhttp_set_max_body_size(http, 65536);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(http, slow_request_cb, NULL);
    fd = slow_listen(port, &bound);
    if (fd < 0)
        goto out;
    if (evhttp_accept_socket_with_handle(http, fd) == NULL) {
        fprintf(stderr, "slowhttp: evhttp_accept_socket_with_handle failed\n");
        close(fd);
        goto out;
    }
    sigterm = evsignal_new(slow.base, SIGTERM, slow_signal_cb, NULL);
    sigint = evsignal_new(slow.base, SIGINT, slow_signal_cb, NULL);
    if (sigterm == NULL || sigint == NULL || event_add(sigterm, NULL) != 0 || event_add(sigint, NULL) != 0) {
        fprintf(stderr, "slowhttp: cannot watch SIGTERM and SIGINT\n");
        goto out;
    }
    printf("listening on 127.0.0.1:%u (max pending %u)\n", bound, slow.max_pending);
    fflush(stdout);
    if (event_base_dispatch(slow.base) == 0 || event_base_got_break(slow.base))
        rc = 0;
    fprintf(stderr, "slowhttp: served %" PRIu64 ", refused %" PRIu64 ", bad %" PRIu64 ", pending %u\n", slow.served,
            slow.refused, slow.bad, slow.pending);
out:
    if (sigterm != NULL)
        event_free(sigterm);
    if (sigint != NULL)
        event_free(sigint);
    if (http != NULL)
        evhttp_free(http); /* closes the listener and every connection */
    event_base_free(slow.base);
    return rc;
}
