/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * httpfront.c - the HTTP front door's listeners, connections and routes
 * (see httpfront.h; a message's exchange is httpx.c's, the HTTP/1.1
 * connection itself http1.c's).
 *
 * Each httpListen address is a listening socket with an evconnlistener;
 * an accepted socket becomes an http1 connection with a record here
 * (hconn) holding what the front door knows of it: its listener, whether
 * it came past maxConnections (its first request is refused), and the
 * exchange (kept from its first message on) and A2A call.  http1.c calls back
 * with each whole request (routed here), each response sent (counted by
 * status) and the connection's close (a request still in hand is
 * cancelled: counted as 499).  Timeouts are checked on the tick
 * (http1_conn_expired): a request not whole within httpRequestTimeoutMs
 * of its first byte is cut (slow-loris), a connection idle (or whose
 * output does not move) for httpIdleTimeoutMs is closed; A2A tasks past
 * a2aTaskTtl are swept (a2a_tick), ending the streams that watch them.
 * State: server.httpfront.  Never blocks.
 */
#include "httpfront.h"
#include "a2a.h"
#include "a2acard.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_json.h"
#include "ap_log.h"
#include "control.h"
#include "http1.h"
#include "httpauth.h"
#include "httpd.h"
#include "httpx.h"
#include "listener.h"
#include "promtext.h"
#include "server.h"

#include <arpa/inet.h>
#include <cJSON.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTPFRONT_MAX_LISTENERS 16
#define HTTPFRONT_BACKLOG 1024
/* Connections accepted past maxConnections and not yet refused, at most:
 * past it the listeners pause (the kernel's backlog holds the rest). */
#define HTTPFRONT_MAX_REFUSING 64

/* The statuses counted one by one (the rest count as other). */
static const int counted_status[] = {200, 400, 401, 403, 404, 405, 409, 413, 429, 431, 499, 500, 501, 502, 503, 504};
#define NSTATUS ((int)AP_ARRAY_LEN(counted_status))

typedef struct hlistener {
    struct evconnlistener *lev;
    int fd;                     /* the listening socket (lev closes it) */
    int tcp;
    char *unix_path;            /* socket file to remove, NULL for TCP */
    char shown[160];
} hlistener;

typedef struct hconn {
    uint64_t serial;            /* "http-N" in logs */
    http1_conn *c;
    hlistener *l;
    int over_limit;             /* accepted past maxConnections: its first request is refused */
    struct httpx *x;            /* its exchange (httpx.c), from its first message on */
    int exchanging;             /* a message of it is not answered yet */
    struct a2a_call *a2a;       /* its A2A call waiting for its task (a2a.c) */
    queue_link link;
} hconn;

struct httpfront {
    hlistener ls[HTTPFRONT_MAX_LISTENERS];
    int nls;
    int paused;                 /* listeners disabled: HTTPFRONT_MAX_REFUSING connections wait for their refusal */
    int accept_failed;          /* listeners disabled after accept() failed: enabled again on the tick */
    int refusing;               /* connections accepted past maxConnections, not closed yet */
    int stopped_accepting;
    queue_link conns;
    uint64_t next_serial;
    int serve_ops;              /* /metrics, /healthz, /readyz, /stats here (metricsListen not set) */
    http1_limits limits;
    /* counters */
    uint64_t accepted, rejected, timeouts, client_closed, accept_errors;
    uint64_t by_status[NSTATUS + 1];
};

static void request_cb(http1_req *req, void *arg);
static void done_cb(int status, void *arg);
static void conn_closed_cb(void *arg);

static const http1_hooks hooks = {request_cb, done_cb, conn_closed_cb};

static void count_status(struct httpfront *f, int status)
{
    int i = 0;
    while (i < NSTATUS && counted_status[i] != status)
        i++;
    f->by_status[i]++;
}

/* ---- maxConnections -------------------------------------------------- */

static void front_listen(struct httpfront *f, int on)
{
    for (int i = 0; i < f->nls; i++) {
        if (f->ls[i].lev && (on ? evconnlistener_enable(f->ls[i].lev) : evconnlistener_disable(f->ls[i].lev)))
            ap_error("http %s: evconnlistener_%s failed", f->ls[i].shown, on ? "enable" : "disable");
    }
}

static void front_pause(struct httpfront *f, int pause)
{
    if (f->paused == pause || f->stopped_accepting)
        return;
    f->paused = pause;
    if (!f->accept_failed)
        front_listen(f, !pause);
}

static int conns_full(void)
{
    return server.nclients + server.http_conns >= server.cfg->max_connections;
}

/* Paused while too many connections wait for their refusal. */
static void front_pause_update(struct httpfront *f)
{
    front_pause(f, f->refusing >= HTTPFRONT_MAX_REFUSING);
}

/* ---- connections -------------------------------------------------- */

/* http1.c closes the connection (peer gone, timeout, write error,
 * Connection: close answered, exit): the last call for hc. */
static void conn_closed_cb(void *arg)
{
    hconn *hc = arg;
    struct httpfront *f = server.httpfront;
    if (hc->exchanging || hc->a2a) {
        f->client_closed++;
        count_status(f, 499);
        ap_info("http-%llu (%s): closed by its peer before its answer: %s", (unsigned long long)hc->serial,
                hc->l->shown, hc->exchanging ? "its request is cancelled" : "its A2A task goes on");
    }
    ap_debug("http-%llu closed (%s)", (unsigned long long)hc->serial, http1_phase_name(http1_conn_phase(hc->c)));
    if (hc->x)
        httpx_peer_gone(hc->x);
    hc->x = NULL;
    if (hc->a2a)
        a2a_peer_gone(hc->a2a);
    hc->a2a = NULL;
    link_del(&hc->link);
    if (hc->over_limit)
        f->refusing--;
    else
        server.http_conns--;
    ap_free(hc);
    front_pause_update(f);
}

static void accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    hlistener *l = arg;
    struct httpfront *f = server.httpfront;
    (void)lev;
    (void)salen;
    char peer[INET6_ADDRSTRLEN] = "";
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)sa)->sin_addr, peer, sizeof(peer));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)sa)->sin6_addr, peer, sizeof(peer));
    hconn *hc = ap_calloc(1, sizeof(*hc));
    hc->serial = ++f->next_serial;
    hc->l = l;
    hc->c = http1_conn_new((int)fd, peer, &f->limits, &hooks, hc);
    if (hc->c == NULL) { /* logged, fd closed */
        ap_free(hc);
        return;
    }
    link_add_tail(&f->conns, &hc->link);
    f->accepted++;
    if (conns_full()) {
        hc->over_limit = 1; /* not served, not counted as open: answered 503 at its first request */
        f->refusing++;
        f->rejected++;
        server.stats.conns_rejected++;
        if (f->rejected == 1 || f->rejected % 1000 == 0)
            ap_warn("http %s: maxConnections (%lld) reached: a connection refused (%llu so far)", l->shown,
                    (long long)server.cfg->max_connections, (unsigned long long)f->rejected);
    } else {
        server.http_conns++;
    }
    front_pause_update(f);
}

/* accept() failed (out of descriptors, most likely): the listeners pause
 * until the next tick, rather than spin on a socket that stays readable. */
static void accept_error_cb(struct evconnlistener *lev, void *arg)
{
    hlistener *l = arg;
    struct httpfront *f = server.httpfront;
    int e = EVUTIL_SOCKET_ERROR();
    (void)lev;
    if (f->accept_errors++ % 1000 == 0)
        ap_error("http %s: accept() failed: %s (%llu so far); accepting again on the next tick", l->shown, strerror(e),
                 (unsigned long long)f->accept_errors);
    if (!f->accept_failed && !f->paused)
        front_listen(f, 0);
    f->accept_failed = 1;
}

/* ---- answers of its own -------------------------------------------- */

/* A response was sent whole (or its stream ended). */
static void done_cb(int status, void *arg)
{
    (void)arg;
    count_status(server.httpfront, status);
}

static void send_json(http1_req *req, int status, const char *reason, struct evbuffer *body)
{
    http1_headers *h = http1_output_headers(req);
    http1_add_header(h, "Content-Type", "application/json");
    http1_add_header(h, "Cache-Control", "no-store");
    http1_send_reply(req, status, reason, body);
}

/* {"ok":false,"error":{"code":CODE,"message":WHY}} with status. */
static void send_error(http1_req *req, int status, const char *reason, const char *code, const char *why)
{
    char esc[1024];
    ap_json_escape(esc, sizeof(esc), why, strlen(why));
    struct evbuffer *b = evbuffer_new();
    if (b == NULL) {
        http1_send_error(req, 500, "out of memory");
        return;
    }
    evbuffer_add_printf(b, "{\"ok\":false,\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}\n", code, esc);
    send_json(req, status, reason, b);
    evbuffer_free(b);
}

static void send_cjson(http1_req *req, cJSON *o)
{
    struct evbuffer *b = httpx_json_body(req, o, "a GET answer");
    if (b == NULL)
        return;
    send_json(req, 200, "OK", b);
    evbuffer_free(b);
}

/* GET /v1/pools: each pool's name, state, workers and whether it is the default. */
static void answer_pools(http1_req *req)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(o, "pools");
    POOLS_FOREACH(p) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", p->name);
        cJSON_AddStringToObject(e, "state", pools_state_name(p->state));
        cJSON_AddNumberToObject(e, "workers", p->pool_size);
        cJSON_AddBoolToObject(e, "default", p == pools_default());
        cJSON_AddItemToArray(a, e);
    }
    send_cjson(req, o);
}

/* /metrics, /healthz, /readyz, /stats: httpd.c's bodies, sent here. */
static void answer_ops(http1_req *req, const char *path)
{
    struct evbuffer *body = evbuffer_new();
    if (body == NULL) {
        http1_send_error(req, 500, "out of memory");
        return;
    }
    const char *type;
    int status = httpd_ops_body(path, body, &type);
    http1_headers *h = http1_output_headers(req);
    http1_add_header(h, "Content-Type", type);
    http1_add_header(h, "Cache-Control", "no-store");
    http1_send_reply(req, status, status == 200 ? "OK" : "Service Unavailable", body);
    evbuffer_free(body);
}

/* ---- routes -------------------------------------------------------- */

/* Whether req asks for a stream: Accept: text/event-stream, or ?stream=1. */
static int wants_stream(http1_req *req, const char *query)
{
    const char *acc = http1_find_header(req, "Accept");
    if (acc && strstr(acc, "text/event-stream"))
        return 1;
    for (const char *q = query; q && *q; q = strchr(q, '&') ? strchr(q, '&') + 1 : NULL) {
        size_t n = strcspn(q, "&");
        if ((n == 8 && strncmp(q, "stream=1", 8) == 0) || (n == 11 && strncmp(q, "stream=true", 11) == 0))
            return 1;
    }
    return 0;
}

/* The exchange's request is answered. */
static void exchange_over(void *arg)
{
    hconn *hc = arg;
    hc->exchanging = 0;
}

/* A message for p: its key (Authorization: Bearer) goes into its request
 * line, where the key gate checks it (httpauth.h). */
static void start_exchange(hconn *hc, http1_req *req, pool_t *p, int sse)
{
    char why[200];
    const char *secret;
    size_t slen;
    int st = httpauth_message(req, hc->l->tcp, &secret, &slen, why, sizeof(why));
    if (st != 0) {
        http1_add_header(http1_output_headers(req), "WWW-Authenticate", "Bearer");
        send_error(req, st, "Unauthorized", "unauthorized", why);
        return;
    }
    hc->exchanging = 1; /* before: exchange_over may come at once */
    hc->x = httpx_start(hc->x, req, p, sse, secret, slen, exchange_over, hc);
}

/* The pool a path names: "NAME" in /v1/pools/NAME/REST, with REST in rest. */
static pool_t *path_pool(const char *path, const char **rest, char *name, size_t cap)
{
    const char *s = path + strlen("/v1/pools/");
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    *rest = slash ? slash : "";
    snprintf(name, cap, "%.*s", (int)n, s);
    return n ? pools_find(s, n) : NULL;
}

static void not_found_pool(http1_req *req, const char *name)
{
    char names[512], why[700];
    pools_names(names, sizeof(names));
    snprintf(why, sizeof(why), "unknown pool \"%s\": the pools are %s", name, names);
    send_error(req, 404, "Not Found", "not_found", why);
}

static int authorized(hconn *hc, http1_req *req, const pool_t *p)
{
    char why[200];
    int st = httpauth_check(req, hc->l->tcp, p, why, sizeof(why));
    if (st == 0)
        return 1;
    if (st == 401)
        http1_add_header(http1_output_headers(req), "WWW-Authenticate", "Bearer");
    send_error(req, st, st == 401 ? "Unauthorized" : "Forbidden", st == 401 ? "unauthorized" : "forbidden", why);
    return 0;
}

static void method_not_allowed(http1_req *req, const char *allow)
{
    http1_add_header(http1_output_headers(req), "Allow", allow);
    send_error(req, 405, "Method Not Allowed", "bad_request", "method not allowed here");
}

/* A2A's call is over for the connection. */
static void a2a_over(void *arg)
{
    hconn *hc = arg;
    hc->a2a = NULL;
}

/* /.well-known/agent-card.json (the default pool), /a2a/{pool} and
 * /a2a/{pool}/.well-known/agent-card.json, for a pool with "a2a": true. */
static void route_a2a(hconn *hc, http1_req *req, const char *path, int get, int post)
{
    const char *card = "/.well-known/agent-card.json";
    pool_t *p;
    const char *rest = "";
    char name[128];
    if (strcmp(path, card) == 0) {
        p = pools_default();
        snprintf(name, sizeof(name), "(default)");
        rest = card;
    } else {
        const char *s = path + strlen("/a2a/");
        const char *slash = strchr(s, '/');
        size_t n = slash ? (size_t)(slash - s) : strlen(s);
        rest = slash ? slash : "";
        snprintf(name, sizeof(name), "%.*s", (int)n, s);
        p = n ? pools_find(s, n) : NULL;
    }
    int is_card = strcmp(rest, card) == 0;
    if (!is_card && rest[0] != '\0')
        send_error(req, 404, "Not Found", "not_found", "no such path (see docs/a2a.md)");
    else if (p == NULL || !p->cfg->a2a)
        send_error(req, 404, "Not Found", "not_found", "no pool with \"a2a\": true here (see docs/a2a.md)");
    else if (is_card && !get)
        method_not_allowed(req, "GET, HEAD");
    else if (!is_card && !post)
        method_not_allowed(req, "POST");
    else if (is_card)
        a2acard_answer(req, p); /* public: discovery needs no key */
    else if (authorized(hc, req, p))
        hc->a2a = a2a_start(req, p, hc->l->tcp, a2a_over, hc);
}

static void route(hconn *hc, http1_req *req)
{
    const char *path = http1_request_path(req);
    const char *query = http1_request_query(req);
    http1_method cmd = http1_request_method(req);
    int get = cmd == HTTP1_GET || cmd == HTTP1_HEAD, post = cmd == HTTP1_POST;
    if (strcmp(path, "/v1/messages") == 0) { /* first: the hot path */
        if (!post) {
            method_not_allowed(req, "POST");
            return;
        }
        pool_t *p = pools_default();
        if (p == NULL)
            send_error(req, 404, "Not Found", "not_found", "no pool takes requests that name none now");
        else
            start_exchange(hc, req, p, wants_stream(req, query));
        return;
    }
    if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 || strcmp(path, "/metrics") == 0 ||
        strcmp(path, "/stats") == 0) {
        int probe = path[1] != 'm' && path[1] != 's';
        if (!server.httpfront->serve_ops)
            send_error(req, 404, "Not Found", "not_found", "served on metricsListen");
        else if (!get)
            method_not_allowed(req, "GET, HEAD");
        else if (probe || authorized(hc, req, NULL))
            answer_ops(req, path);
        return;
    }
    if (strcmp(path, "/v1/pools") == 0) {
        if (!get)
            method_not_allowed(req, "GET, HEAD");
        else if (authorized(hc, req, NULL))
            answer_pools(req);
        return;
    }
    if (strncmp(path, "/v1/pools/", 10) == 0) {
        const char *rest;
        char name[128];
        pool_t *p = path_pool(path, &rest, name, sizeof(name));
        int msgs = strcmp(rest, "/messages") == 0, stats = strcmp(rest, "/stats") == 0;
        if (!msgs && !stats) {
            send_error(req, 404, "Not Found", "not_found", "no such path (see docs/http.md)");
        } else if (p == NULL) {
            not_found_pool(req, name);
        } else if (msgs && !post) {
            method_not_allowed(req, "POST");
        } else if (stats && !get) {
            method_not_allowed(req, "GET, HEAD");
        } else if (msgs) {
            start_exchange(hc, req, p, wants_stream(req, query));
        } else if (authorized(hc, req, p)) {
            send_cjson(req, control_stats_json(0, p));
        }
        return;
    }
    if (strncmp(path, "/a2a/", 5) == 0 || strcmp(path, "/.well-known/agent-card.json") == 0) {
        route_a2a(hc, req, path, get, post);
        return;
    }
    send_error(req, 404, "Not Found", "not_found", "no such path (see docs/http.md)");
}

/* A whole request (headers and body) is ours (http1.c). */
static void request_cb(http1_req *req, void *arg)
{
    hconn *hc = arg;
    if (hc->over_limit) {
        http1_add_header(http1_output_headers(req), "Connection", "close");
        send_error(req, 503, "Service Unavailable", "too_many_connections",
                   "the server has maxConnections connections already");
        return;
    }
    if (server.state >= SERVER_DRAINING)
        http1_add_header(http1_output_headers(req), "Connection", "close");
    route(hc, req);
}

/* ---- start and stop ------------------------------------------------- */

static int front_bind(struct httpfront *f, const char *spec, char *err, size_t errlen)
{
    config_listen_addr la;
    char why[256];
    if (config_parse_listen(spec, &la, why, sizeof(why)) != AP_OK) {
        snprintf(err, errlen, "httpListen: %s", why);
        return AP_ERR;
    }
    if (f->nls == HTTPFRONT_MAX_LISTENERS) {
        snprintf(err, errlen, "httpListen: more than %d addresses", HTTPFRONT_MAX_LISTENERS);
        return AP_ERR;
    }
    hlistener *l = &f->ls[f->nls];
    memset(l, 0, sizeof(*l));
    int fd;
    if (la.family == AF_UNIX) {
        fd = listener_bind_unix(la.path, (long)server.cfg->socket_mode, HTTPFRONT_BACKLOG, err, errlen);
        if (fd >= 0)
            l->unix_path = ap_strdup(la.path);
        snprintf(l->shown, sizeof(l->shown), "unix:%s", la.path);
    } else {
        fd = listener_bind_tcp(&la, "httpListen", spec, (int)server.cfg->listen_backlog, err, errlen);
        if (fd >= 0)
            listener_describe_tcp(fd, l->shown, sizeof(l->shown));
        l->tcp = 1;
    }
    if (fd < 0)
        return AP_ERR;
    /* backlog 0: the socket listens already; accepted sockets are non-blocking */
    l->lev = evconnlistener_new(server.base, accept_cb, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
    if (l->lev == NULL) {
        snprintf(err, errlen, "httpListen %s: evconnlistener_new failed", l->shown);
        close(fd);
        if (l->unix_path) {
            unlink(l->unix_path);
            ap_free(l->unix_path);
        }
        memset(l, 0, sizeof(*l));
        return AP_ERR;
    }
    evconnlistener_set_error_cb(l->lev, accept_error_cb);
    l->fd = fd;
    f->nls++;
    return AP_OK;
}

int httpfront_start(char *err, size_t errlen)
{
    const config_list *ls = &server.cfg->http_listen;
    if (ls->n == 0 || server.httpfront)
        return AP_OK;
    int has_tcp = 0;
    for (int i = 0; i < ls->n; i++)
        has_tcp |= strncmp(ls->items[i], "unix:", 5) != 0;
    if (httpauth_start(has_tcp, err, errlen) != AP_OK)
        return AP_ERR;
    struct httpfront *f = ap_calloc(1, sizeof(*f));
    link_init(&f->conns);
    f->serve_ops = server.cfg->metrics_listen == NULL;
    f->limits.max_head = (size_t)server.cfg->http_max_header_bytes;
    f->limits.max_body = (size_t)server.cfg->max_message_bytes;
    server.httpfront = f;
    for (int i = 0; i < ls->n; i++) {
        if (front_bind(f, ls->items[i], err, errlen) != AP_OK) {
            httpfront_stop();
            return AP_ERR;
        }
    }
    for (int i = 0; i < f->nls; i++)
        ap_info("HTTP front door on %s (%s)%s", f->ls[i].shown,
                f->ls[i].tcp ? (strcmp(server.cfg->http_auth, "none") == 0 ? "no authentication" : "API keys")
                             : "socket file permissions",
                f->serve_ops ? "; /healthz, /readyz, /metrics, /stats here too" : "");
    return AP_OK;
}

void httpfront_stop_accepting(void)
{
    struct httpfront *f = server.httpfront;
    if (f == NULL || f->stopped_accepting)
        return;
    for (int i = 0; i < f->nls; i++) {
        if (f->ls[i].lev)
            evconnlistener_free(f->ls[i].lev); /* closes the listening socket */
        f->ls[i].lev = NULL;
    }
    f->stopped_accepting = 1;
}

void httpfront_stop(void)
{
    struct httpfront *f = server.httpfront;
    if (f == NULL)
        return;
    httpfront_stop_accepting();
    while (!link_empty(&f->conns)) /* conn_closed_cb unlinks and frees each */
        http1_conn_close(queue_entry(f->conns.next, hconn, link)->c);
    for (int i = 0; i < f->nls; i++) {
        if (f->ls[i].unix_path) {
            if (unlink(f->ls[i].unix_path) != 0 && errno != ENOENT)
                ap_warn("could not remove socket file %s: %s", f->ls[i].unix_path, strerror(errno));
            ap_free(f->ls[i].unix_path);
        }
    }
    a2a_stop(); /* after the connections: no call waits on a task any more */
    ap_free(f);
    server.httpfront = NULL;
}

int httpfront_all_flushed(void)
{
    struct httpfront *f = server.httpfront;
    if (f == NULL)
        return 1;
    for (queue_link *l = f->conns.next; l != &f->conns; l = l->next) {
        hconn *hc = queue_entry(l, hconn, link);
        if (hc->exchanging || hc->a2a || http1_conn_unsent(hc->c) > 0)
            return 0;
    }
    return 1;
}

void httpfront_tick(uint64_t now)
{
    struct httpfront *f = server.httpfront;
    if (f == NULL)
        return;
    if (f->accept_failed) {
        f->accept_failed = 0;
        if (!f->paused && !f->stopped_accepting)
            front_listen(f, 1);
    }
    uint64_t limit = (uint64_t)server.cfg->http_request_timeout_ms, idle = (uint64_t)server.cfg->http_idle_timeout_ms;
    for (queue_link *l = f->conns.next, *next; l != &f->conns; l = next) {
        next = l->next; /* the connection may close here */
        hconn *hc = queue_entry(l, hconn, link);
        http1_expiry e = http1_conn_expired(hc->c, now, limit, idle);
        if (e == HTTP1_LIVE)
            continue;
        if (e == HTTP1_REQUEST_TIMEOUT) {
            f->timeouts++;
            ap_info("http-%llu (%s): its request did not arrive whole within httpRequestTimeoutMs (%llu ms): "
                    "connection closed", (unsigned long long)hc->serial, hc->l->shown, (unsigned long long)limit);
        } else {
            ap_debug("http-%llu (%s): idle for httpIdleTimeoutMs (%llu ms): closed", (unsigned long long)hc->serial,
                     hc->l->shown, (unsigned long long)idle);
        }
        http1_conn_close(hc->c);
    }
    a2a_tick(); /* after the walk: the streams it ends may start a connection's next request */
}

/* ---- statistics ----------------------------------------------------- */

void httpfront_stats_json(cJSON *o)
{
    struct httpfront *f = server.httpfront;
    cJSON *h = cJSON_AddObjectToObject(o, "http");
    cJSON_AddNumberToObject(h, "connections", server.http_conns);
    cJSON_AddNumberToObject(h, "accepted", f ? (double)f->accepted : 0);
    cJSON_AddNumberToObject(h, "rejected", f ? (double)f->rejected : 0);
    cJSON_AddNumberToObject(h, "requestTimeouts", f ? (double)f->timeouts : 0);
    cJSON_AddNumberToObject(h, "clientClosed", f ? (double)f->client_closed : 0);
    cJSON *r = cJSON_AddObjectToObject(h, "responses");
    for (int i = 0; f && i <= NSTATUS; i++) {
        if (f->by_status[i] == 0)
            continue;
        char k[16];
        snprintf(k, sizeof(k), "%d", i < NSTATUS ? counted_status[i] : 0);
        cJSON_AddNumberToObject(r, i < NSTATUS ? k : "other", (double)f->by_status[i]);
    }
}

void httpfront_prometheus(struct evbuffer *out)
{
    struct httpfront *f = server.httpfront;
    if (f == NULL)
        return;
    promtext_family(out, "agentpool_http_connections", "gauge", "Open HTTP front door connections (httpListen).");
    promtext_u64(out, "agentpool_http_connections", NULL, 0, (uint64_t)server.http_conns);
    promtext_family(out, "agentpool_http_connections_total", "counter", "HTTP connections accepted, since start.");
    promtext_u64(out, "agentpool_http_connections_total", NULL, 0, f->accepted);
    promtext_family(out, "agentpool_http_request_timeouts_total", "counter",
                    "HTTP connections closed because a request did not arrive whole within httpRequestTimeoutMs.");
    promtext_u64(out, "agentpool_http_request_timeouts_total", NULL, 0, f->timeouts);
    promtext_family(out, "agentpool_http_responses_total", "counter",
                    "HTTP responses by status code (499: the peer closed before its answer).");
    for (int i = 0; i <= NSTATUS; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", i < NSTATUS ? counted_status[i] : 0);
        promtext_label lb[] = {{"code", i < NSTATUS ? v : "other"}};
        promtext_u64(out, "agentpool_http_responses_total", lb, 1, f->by_status[i]);
    }
}
