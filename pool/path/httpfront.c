/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * httpfront.c - the HTTP front door's listeners, connections and routes
 * (see httpfront.h; a message's exchange is httpx.c's).
 *
 * evhttp parses (request line, headers, Content-Length and chunked
 * bodies, keep-alive, pipelining one request at a time); this module
 * adds what libevent 2.1's evhttp lacks, through its public hooks:
 *
 * - a record per connection (hconn), made when evhttp asks for the
 *   connection's bufferevent (evhttp_set_bevcb: at accept) and set up
 *   once evhttp has finished its own setup (an event made active there
 *   runs before any I/O of that connection): the evhttp connection is
 *   the cbarg evhttp gave the bufferevent, its close callback is ours,
 *   and an input-buffer callback sees the first byte of each request;
 * - its phase, one enum changed only by hconn_set_phase: IDLE (between
 *   requests) -> READING (a first byte came: httpRequestTimeoutMs runs
 *   from here) -> HANDLING (the request is whole and ours) -> IDLE
 *   (evhttp sent the answer: evhttp_request_set_on_complete_cb), or
 *   READING at once when pipelined bytes wait;
 * - the slow-client cut: on the tick, a connection READING for longer
 *   than httpRequestTimeoutMs is shut down (shutdown(2)), which evhttp
 *   reads as the peer leaving and frees;
 * - peer-gone detection while a request is ours: evhttp does not read
 *   then, so an EV_CLOSED event (EPOLLRDHUP), on for the connection's
 *   life, tells that the peer closed, and the connection is freed (its
 *   exchange cancelled), as a closed socket is.  An HTTP peer that only
 *   shuts its writing side is taken as gone.
 *
 * Connections are found from a request through a table indexed by file
 * descriptor.  State: server.httpfront.  Never blocks.
 */
#include "httpfront.h"
#include "a2a.h"
#include "a2acard.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_json.h"
#include "ap_log.h"
#include "control.h"
#include "httpauth.h"
#include "httpd.h"
#include "httpx.h"
#include "listener.h"
#include "promtext.h"
#include "server.h"

#include <cJSON.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTPFRONT_MAX_LISTENERS 16
#define HTTPFRONT_BACKLOG 1024
/* Connections accepted past maxConnections and not yet refused, at most:
 * past it the listeners pause (the kernel's backlog holds the rest). */
#define HTTPFRONT_MAX_REFUSING 64

typedef enum { HCONN_IDLE = 0, HCONN_READING, HCONN_HANDLING, HCONN_PHASE_COUNT } hconn_phase;

static const char *const phase_names[] = {"idle", "reading", "handling"};

/* The statuses counted one by one (the rest count as other). */
static const int counted_status[] = {200, 400, 401, 403, 404, 405, 409, 413, 429, 499, 500, 501, 502, 503, 504};
#define NSTATUS ((int)AP_ARRAY_LEN(counted_status))

typedef struct hlistener {
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    int tcp;
    char *unix_path;            /* socket file to remove, NULL for TCP */
    char shown[160];
} hlistener;

typedef struct hconn {
    uint64_t serial;            /* "http-N" in logs */
    struct bufferevent *bev;
    struct evhttp_connection *evcon; /* NULL until set up */
    struct evbuffer_cb_entry *incb;
    hlistener *l;
    int fd;
    hconn_phase phase;
    uint64_t reading_ms;        /* READING since */
    int over_limit;             /* accepted past maxConnections: its first request is refused */
    struct httpx *x;            /* its exchange while HANDLING one */
    struct a2a_call *a2a;       /* its A2A call waiting for its task (a2a.c) */
    struct event *setup_ev;     /* made active at accept: finishes the setup */
    struct event *closed_ev;    /* EV_CLOSED on fd, for the connection's life */
    queue_link link;
} hconn;

struct httpfront {
    hlistener ls[HTTPFRONT_MAX_LISTENERS];
    int nls;
    int paused;                 /* listeners disabled: HTTPFRONT_MAX_REFUSING connections wait for their refusal */
    int refusing;               /* connections accepted past maxConnections, not closed yet */
    int stopped_accepting;
    queue_link conns;
    hconn **byfd;
    int byfd_cap;
    uint64_t next_serial;
    int serve_ops;              /* /metrics, /healthz, /readyz, /stats here (metricsListen not set) */
    /* counters */
    uint64_t accepted, rejected, timeouts, client_closed;
    uint64_t by_status[NSTATUS + 1];
};

static void hconn_set_phase(hconn *hc, hconn_phase to)
{
    if (hc->phase != to)
        ap_debug("http-%llu: %s -> %s", (unsigned long long)hc->serial, phase_names[hc->phase], phase_names[to]);
    hc->phase = to;
    if (to == HCONN_READING)
        hc->reading_ms = ap_now_ms();
}

static void count_status(struct httpfront *f, int status)
{
    int i = 0;
    while (i < NSTATUS && counted_status[i] != status)
        i++;
    f->by_status[i]++;
}

/* ---- maxConnections -------------------------------------------------- */

static void front_pause(struct httpfront *f, int pause)
{
    if (f->paused == pause || f->stopped_accepting)
        return;
    for (int i = 0; i < f->nls; i++) {
        struct evconnlistener *l = evhttp_bound_socket_get_listener(f->ls[i].bound);
        if (pause ? evconnlistener_disable(l) : evconnlistener_enable(l))
            ap_error("http %s: evconnlistener_%s failed", f->ls[i].shown, pause ? "disable" : "enable");
    }
    f->paused = pause;
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

static void hconn_free(hconn *hc)
{
    struct httpfront *f = server.httpfront;
    if (hc->x)
        httpx_peer_gone(hc->x);
    hc->x = NULL;
    if (hc->a2a)
        a2a_peer_gone(hc->a2a);
    hc->a2a = NULL;
    if (hc->fd >= 0 && hc->fd < f->byfd_cap && f->byfd[hc->fd] == hc)
        f->byfd[hc->fd] = NULL;
    event_free(hc->setup_ev);
    if (hc->closed_ev)
        event_free(hc->closed_ev);
    link_del(&hc->link);
    if (hc->over_limit)
        f->refusing--;
    else
        server.http_conns--;
    ap_free(hc);
    front_pause_update(f);
}

/* evhttp frees the connection (peer gone, timeout, error, Connection:
 * close answered, exit). */
static void conn_closed_cb(struct evhttp_connection *evcon, void *arg)
{
    hconn *hc = arg;
    (void)evcon;
    if (hc->x || hc->a2a) {
        server.httpfront->client_closed++;
        count_status(server.httpfront, 499);
        ap_info("http-%llu (%s): closed by its peer before its answer: %s", (unsigned long long)hc->serial,
                hc->l->shown, hc->x ? "its request is cancelled" : "its A2A task goes on");
    }
    ap_debug("http-%llu closed (%s)", (unsigned long long)hc->serial, phase_names[hc->phase]);
    if (hc->incb) /* evhttp frees the bufferevent next: nothing of it calls back into hc */
        evbuffer_remove_cb_entry(bufferevent_get_input(hc->bev), hc->incb);
    hc->incb = NULL;
    hconn_free(hc);
}

/* Input came (or went): the first byte of a request starts its clock. */
static void input_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    hconn *hc = arg;
    (void)buf;
    if (info->n_added > 0 && hc->phase == HCONN_IDLE)
        hconn_set_phase(hc, HCONN_READING);
}

/* The peer closed its side (EV_CLOSED, EPOLLRDHUP): whether or not a
 * request of it is ours now (evhttp does not read while it is), the
 * connection goes; conn_closed_cb cancels its exchange.  Watched for the
 * connection's life, so a request costs no epoll_ctl for it. */
static void peer_closed_cb(evutil_socket_t fd, short what, void *arg)
{
    hconn *hc = arg;
    (void)fd;
    (void)what;
    evhttp_connection_free(hc->evcon);
}

/* Runs right after evhttp's accept: the connection is evhttp's now and
 * its bufferevent has evhttp's callbacks and the socket. */
static void setup_cb(evutil_socket_t fd_unused, short what, void *arg)
{
    hconn *hc = arg;
    struct httpfront *f = server.httpfront;
    (void)fd_unused;
    (void)what;
    bufferevent_data_cb readcb = NULL;
    void *cbarg = NULL;
    bufferevent_getcb(hc->bev, &readcb, NULL, NULL, &cbarg);
    if (readcb == NULL || cbarg == NULL) { /* evhttp failed to take it (out of memory): never used */
        ap_error("http %s: a connection evhttp could not set up: closed", hc->l->shown);
        bufferevent_free(hc->bev);
        hconn_free(hc);
        return;
    }
    hc->evcon = cbarg;
    hc->fd = (int)bufferevent_getfd(hc->bev);
    evhttp_connection_set_closecb(hc->evcon, conn_closed_cb, hc);
    if (hc->fd >= f->byfd_cap) {
        int cap = f->byfd_cap ? f->byfd_cap : 64;
        while (cap <= hc->fd)
            cap *= 2;
        f->byfd = ap_realloc(f->byfd, (size_t)cap * sizeof(*f->byfd));
        memset(f->byfd + f->byfd_cap, 0, (size_t)(cap - f->byfd_cap) * sizeof(*f->byfd));
        f->byfd_cap = cap;
    }
    if (hc->fd >= 0)
        f->byfd[hc->fd] = hc;
    hc->closed_ev = event_new(server.base, hc->fd, EV_CLOSED | EV_PERSIST, peer_closed_cb, hc);
    if (hc->closed_ev == NULL || event_add(hc->closed_ev, NULL) != 0)
        ap_error("http-%llu: cannot watch its socket for its peer closing (EV_CLOSED): a close during a request is "
                 "seen only when its answer is written", (unsigned long long)hc->serial);
    struct evbuffer *in = bufferevent_get_input(hc->bev);
    hc->incb = evbuffer_add_cb(in, input_cb, hc);
    if (evbuffer_get_length(in) > 0)
        hconn_set_phase(hc, HCONN_READING);
}

/* evhttp_set_bevcb: evhttp accepted a connection and asks for its
 * bufferevent.  NULL lets evhttp make its own (then it is not tracked:
 * logged). */
static struct bufferevent *bev_cb(struct event_base *base, void *arg)
{
    hlistener *l = arg;
    struct httpfront *f = server.httpfront;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, 0);
    if (bev == NULL) {
        ap_error("http %s: bufferevent_socket_new failed for a new connection", l->shown);
        return NULL;
    }
    hconn *hc = ap_calloc(1, sizeof(*hc));
    hc->serial = ++f->next_serial;
    hc->bev = bev;
    hc->l = l;
    hc->fd = -1;
    hc->setup_ev = event_new(base, -1, 0, setup_cb, hc);
    if (hc->setup_ev == NULL) {
        ap_error("http %s: event_new failed for a new connection", l->shown);
        bufferevent_free(bev);
        ap_free(hc);
        return NULL;
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
    }
    if (!hc->over_limit)
        server.http_conns++;
    front_pause_update(f);
    event_active(hc->setup_ev, EV_TIMEOUT, 0);
    return bev;
}

static hconn *hconn_of(struct evhttp_request *req)
{
    struct httpfront *f = server.httpfront;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon == NULL)
        return NULL;
    int fd = (int)bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
    hconn *hc = fd >= 0 && fd < f->byfd_cap ? f->byfd[fd] : NULL;
    return hc && hc->evcon == evcon ? hc : NULL;
}

/* ---- answers of its own -------------------------------------------- */

static void request_done_cb(struct evhttp_request *req, void *arg)
{
    hconn *hc = arg;
    count_status(server.httpfront, evhttp_request_get_response_code(req));
    hconn_set_phase(hc, evbuffer_get_length(bufferevent_get_input(hc->bev)) ? HCONN_READING : HCONN_IDLE);
}

static void send_json(struct evhttp_request *req, int status, const char *reason, struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_send_reply(req, status, reason, body);
}

/* {"ok":false,"error":{"code":CODE,"message":WHY}} with status. */
static void send_error(struct evhttp_request *req, int status, const char *reason, const char *code, const char *why)
{
    char esc[1024];
    ap_json_escape(esc, sizeof(esc), why, strlen(why));
    struct evbuffer *b = evbuffer_new();
    if (b == NULL) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evbuffer_add_printf(b, "{\"ok\":false,\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}\n", code, esc);
    send_json(req, status, reason, b);
    evbuffer_free(b);
}

static void send_cjson(struct evhttp_request *req, cJSON *o)
{
    struct evbuffer *b = httpx_json_body(req, o, "a GET answer");
    if (b == NULL)
        return;
    send_json(req, 200, "OK", b);
    evbuffer_free(b);
}

/* GET /v1/pools: each pool's name, state, workers and whether it is the default. */
static void answer_pools(struct evhttp_request *req)
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

/* ---- routes -------------------------------------------------------- */

/* Whether req asks for a stream: Accept: text/event-stream, or ?stream=1. */
static int wants_stream(struct evhttp_request *req, const char *query)
{
    const char *acc = evhttp_find_header(evhttp_request_get_input_headers(req), "Accept");
    if (acc && strstr(acc, "text/event-stream"))
        return 1;
    if (query == NULL)
        return 0;
    struct evkeyvalq q;
    int yes = 0;
    if (evhttp_parse_query_str(query, &q) == 0) {
        const char *v = evhttp_find_header(&q, "stream");
        yes = v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
        evhttp_clear_headers(&q);
    }
    return yes;
}

/* The exchange is over for the connection. */
static void exchange_over(void *arg)
{
    hconn *hc = arg;
    hc->x = NULL;
}

/* A message for p: its key (Authorization: Bearer) goes into its request
 * line, where the key gate checks it (httpauth.h). */
static void start_exchange(hconn *hc, struct evhttp_request *req, pool_t *p, int sse)
{
    char why[200];
    const char *secret;
    size_t slen;
    int st = httpauth_message(req, hc->l->tcp, &secret, &slen, why, sizeof(why));
    if (st != 0) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
        send_error(req, st, "Unauthorized", "unauthorized", why);
        return;
    }
    hc->x = httpx_start(req, p, sse, secret, slen, exchange_over, hc);
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

static void not_found_pool(struct evhttp_request *req, const char *name)
{
    char names[512], why[700];
    pools_names(names, sizeof(names));
    snprintf(why, sizeof(why), "unknown pool \"%s\": the pools are %s", name, names);
    send_error(req, 404, "Not Found", "not_found", why);
}

static int authorized(hconn *hc, struct evhttp_request *req, const pool_t *p)
{
    char why[200];
    int st = httpauth_check(req, hc->l->tcp, p, why, sizeof(why));
    if (st == 0)
        return 1;
    if (st == 401)
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
    send_error(req, st, st == 401 ? "Unauthorized" : "Forbidden", st == 401 ? "unauthorized" : "forbidden", why);
    return 0;
}

static void method_not_allowed(struct evhttp_request *req, const char *allow)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
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
static void route_a2a(hconn *hc, struct evhttp_request *req, const char *path, int get, int post)
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

static void route(hconn *hc, struct evhttp_request *req)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    int get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD, post = cmd == EVHTTP_REQ_POST;
    if (path == NULL)
        path = "";
    if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 || strcmp(path, "/metrics") == 0 ||
        strcmp(path, "/stats") == 0) {
        int probe = path[1] != 'm' && path[1] != 's';
        if (!server.httpfront->serve_ops)
            send_error(req, 404, "Not Found", "not_found", "served on metricsListen");
        else if (!get)
            method_not_allowed(req, "GET, HEAD");
        else if (probe || authorized(hc, req, NULL))
            httpd_answer_ops(req, path);
        return;
    }
    if (strcmp(path, "/v1/messages") == 0) {
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

/* A whole request (headers and body) is ours. */
static void request_cb(struct evhttp_request *req, void *arg)
{
    hlistener *l = arg;
    hconn *hc = hconn_of(req);
    if (hc == NULL) { /* evhttp made its own bufferevent (bev_cb failed): served untracked */
        ap_error("http %s: a request on a connection it does not track: answered 503", l->shown);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        send_error(req, 503, "Service Unavailable", "other", "the server could not track this connection");
        return;
    }
    hconn_set_phase(hc, HCONN_HANDLING);
    evhttp_request_set_on_complete_cb(req, request_done_cb, hc);
    if (hc->over_limit) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        send_error(req, 503, "Service Unavailable", "too_many_connections",
                   "the server has maxConnections connections already");
        return;
    }
    if (server.state >= SERVER_DRAINING)
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
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
    l->http = evhttp_new(server.base);
    if (l->http == NULL) {
        snprintf(err, errlen, "httpListen %s: evhttp_new failed", l->shown);
        close(fd);
        goto fail;
    }
    evhttp_set_max_headers_size(l->http, server.cfg->http_max_header_bytes);
    evhttp_set_max_body_size(l->http, server.cfg->max_message_bytes);
    struct timeval tv = {server.cfg->http_idle_timeout_ms / 1000, (server.cfg->http_idle_timeout_ms % 1000) * 1000};
    evhttp_set_timeout_tv(l->http, &tv);
    evhttp_set_allowed_methods(l->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS);
    evhttp_set_default_content_type(l->http, "application/json");
    evhttp_set_bevcb(l->http, bev_cb, l);
    evhttp_set_gencb(l->http, request_cb, l);
    l->bound = evhttp_accept_socket_with_handle(l->http, fd);
    if (l->bound == NULL) {
        snprintf(err, errlen, "httpListen %s: evhttp_accept_socket_with_handle failed", l->shown);
        close(fd);
        goto fail;
    }
    f->nls++;
    return AP_OK;
fail:
    if (l->http)
        evhttp_free(l->http);
    if (l->unix_path) {
        unlink(l->unix_path);
        ap_free(l->unix_path);
    }
    memset(l, 0, sizeof(*l));
    return AP_ERR;
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
        evhttp_del_accept_socket(f->ls[i].http, f->ls[i].bound); /* closes the listening socket */
        f->ls[i].bound = NULL;
    }
    f->stopped_accepting = 1;
}

void httpfront_stop(void)
{
    struct httpfront *f = server.httpfront;
    if (f == NULL)
        return;
    for (int i = 0; i < f->nls; i++) {
        evhttp_free(f->ls[i].http); /* frees its connections: conn_closed_cb for each */
        if (f->ls[i].unix_path) {
            if (unlink(f->ls[i].unix_path) != 0 && errno != ENOENT)
                ap_warn("could not remove socket file %s: %s", f->ls[i].unix_path, strerror(errno));
            ap_free(f->ls[i].unix_path);
        }
    }
    while (!link_empty(&f->conns)) /* set up never (evhttp had freed them): nothing of evhttp's left */
        hconn_free(queue_entry(f->conns.next, hconn, link));
    a2a_stop(); /* after the connections: no call waits on a task any more */
    ap_free(f->byfd);
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
        if (hc->x || hc->a2a || (hc->evcon && evbuffer_get_length(bufferevent_get_output(hc->bev)) > 0))
            return 0;
    }
    return 1;
}

void httpfront_tick(uint64_t now)
{
    struct httpfront *f = server.httpfront;
    uint64_t limit = f ? (uint64_t)server.cfg->http_request_timeout_ms : 0;
    if (limit == 0)
        return;
    for (queue_link *l = f->conns.next; l != &f->conns; l = l->next) {
        hconn *hc = queue_entry(l, hconn, link);
        if (hc->phase != HCONN_READING || hc->fd < 0 || now < hc->reading_ms || now - hc->reading_ms < limit)
            continue;
        f->timeouts++;
        ap_info("http-%llu (%s): its request did not arrive whole within httpRequestTimeoutMs (%llu ms): "
                "connection closed", (unsigned long long)hc->serial, hc->l->shown, (unsigned long long)limit);
        hconn_set_phase(hc, HCONN_IDLE);
        if (shutdown(hc->fd, SHUT_RDWR) != 0) /* evhttp reads the end and frees it */
            ap_warn("http-%llu: shutdown(): %s", (unsigned long long)hc->serial, strerror(errno));
    }
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
                    "HTTP responses by status code (499: the peer closed before its answer; evhttp's own refusals "
                    "of unparsable or oversized requests are not counted).");
    for (int i = 0; i <= NSTATUS; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", i < NSTATUS ? counted_status[i] : 0);
        promtext_label lb[] = {{"code", i < NSTATUS ? v : "other"}};
        promtext_u64(out, "agentpool_http_responses_total", lb, 1, f->by_status[i]);
    }
}
