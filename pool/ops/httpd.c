/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * httpd.c - /metrics, /healthz and /stats over evhttp (see httpd.h).
 *
 * The listening socket is made here (bind errors name the address and the
 * call) and handed to evhttp_accept_socket_with_handle.  libevent 2.1's
 * evhttp has no connection limit of its own, so connections are counted
 * when they make their first request (a close callback forgets them):
 * while HTTPD_MAX_CONNS are open the listener is disabled, and a request
 * on a connection accepted beyond them is answered 503 and the connection
 * closed.  evhttp's own timeout closes connections that stay idle or send
 * slowly, so one that never sends a request does not stay.  State lives
 * in server.httpd.
 */
#include "httpd.h"
#include "broker.h"
#include "pools.h"
#include "agentstat.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_log.h"
#include "control.h"
#include "health.h"
#include "listener.h"
#include "metrics.h"
#include "server.h"

#include <arpa/inet.h>
#include <cJSON.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct httpd {
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    char *unix_path;                                /* socket file to remove, NULL for TCP */
    char shown[160];                                /* the address, for logs */
    struct evhttp_connection *conns[HTTPD_MAX_CONNS];
    int nconns;
    int paused;                                     /* listener disabled: conns full */
    int stopping;                                   /* evhttp_free is closing everything */
    uint64_t requests, refused;
};

static void httpd_pause(struct httpd *h, int pause)
{
    if (h->stopping || h->bound == NULL || h->paused == pause)
        return;
    struct evconnlistener *l = evhttp_bound_socket_get_listener(h->bound);
    if (pause)
        evconnlistener_disable(l);
    else
        evconnlistener_enable(l);
    h->paused = pause;
}

static void conn_closed_cb(struct evhttp_connection *evcon, void *arg)
{
    struct httpd *h = arg;
    for (int i = 0; i < h->nconns; i++) {
        if (h->conns[i] == evcon) {
            h->conns[i] = h->conns[--h->nconns];
            break;
        }
    }
    if (h->nconns < HTTPD_MAX_CONNS)
        httpd_pause(h, 0);
}

/* Counts evcon when it is new.  0 when it is one too many. */
static int conn_track(struct httpd *h, struct evhttp_connection *evcon)
{
    for (int i = 0; i < h->nconns; i++)
        if (h->conns[i] == evcon)
            return 1;
    if (h->nconns >= HTTPD_MAX_CONNS)
        return 0;
    h->conns[h->nconns++] = evcon;
    evhttp_connection_set_closecb(evcon, conn_closed_cb, h);
    if (h->nconns >= HTTPD_MAX_CONNS)
        httpd_pause(h, 1);
    return 1;
}

static void reply(struct evhttp_request *req, int code, const char *reason, const char *type, struct evbuffer *body)
{
    struct evkeyvalq *hdr = evhttp_request_get_output_headers(req);
    evhttp_add_header(hdr, "Content-Type", type);
    evhttp_add_header(hdr, "Cache-Control", "no-store");
    evhttp_send_reply(req, code, reason, body);
}

int httpd_answer_ops(struct evhttp_request *req, const char *path)
{
    int readyz = strcmp(path, "/readyz") == 0;
    if (strcmp(path, "/metrics") != 0 && strcmp(path, "/healthz") != 0 && !readyz && strcmp(path, "/stats") != 0)
        return 0;
    struct evbuffer *body = evbuffer_new();
    if (body == NULL) {
        evhttp_send_error(req, 500, "out of memory");
        return 1;
    }
    if (strcmp(path, "/metrics") == 0) {
        metrics_prometheus(body);
        reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body);
    } else if (strcmp(path, "/stats") == 0) {
        agentstat_refresh(NULL, NULL); /* asks now; this answer shows the cache with its age */
        cJSON *o = control_stats_json(1, NULL);
        char *text = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (text) {
            evbuffer_add(body, text, strlen(text));
            evbuffer_add(body, "\n", 1);
            cJSON_free(text);
        }
        reply(req, 200, "OK", "application/json", body);
    } else {
        /* /healthz: the pool's health (ready, or degraded, starting...);
         * /readyz: the same, and 503 once a shutdown began, whatever the
         * workers say, so a balancer stops sending before the drain ends. */
        health_status status = health_server(NULL);
        int ready = status == HEALTH_READY && (!readyz || server.state == SERVER_READY);
        const char *state = readyz && server.state >= SERVER_DRAINING ? "draining" : health_status_name(status);
        evbuffer_add_printf(body, "%s\n", state);
        POOLS_FOREACH(p) { /* a broker out of touch does not stop the socket: said, not failed */
            if (broker_enabled(p) && !broker_connected(p))
                evbuffer_add_printf(body, "broker disconnected: pool %s\n", p->name);
        }
        reply(req, ready ? 200 : 503, ready ? "OK" : "Service Unavailable", "text/plain; charset=utf-8", body);
    }
    evbuffer_free(body);
    return 1;
}

static void request_cb(struct evhttp_request *req, void *arg)
{
    struct httpd *h = arg;
    struct evbuffer *body = evbuffer_new();
    if (body == NULL) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    h->requests++;
    if (!conn_track(h, evhttp_request_get_connection(req))) {
        if (h->refused++ % 1000 == 0)
            ap_warn("metrics endpoint %s: more than %d connections at once; refused one (%llu so far)", h->shown,
                    HTTPD_MAX_CONNS, (unsigned long long)h->refused);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        evbuffer_add_printf(body, "too many connections\n");
        reply(req, 503, "Service Unavailable", "text/plain; charset=utf-8", body);
        evbuffer_free(body);
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!httpd_answer_ops(req, path ? path : "")) {
        evbuffer_add_printf(body, "not found (try /metrics, /healthz, /readyz, /stats)\n");
        reply(req, 404, "Not Found", "text/plain; charset=utf-8", body);
    }
    evbuffer_free(body);
}

int httpd_start(char *err, size_t errlen)
{
    const char *spec = server.cfg->metrics_listen;
    if (spec == NULL || server.httpd)
        return AP_OK;
    config_listen_addr la;
    if (config_parse_listen(spec, &la, err, errlen) != AP_OK)
        return AP_ERR;
    struct httpd *h = ap_calloc(1, sizeof(*h));
    int fd;
    if (la.family == AF_UNIX) {
        fd = listener_bind_unix(la.path, (long)server.cfg->socket_mode, HTTPD_BACKLOG, err, errlen);
        if (fd >= 0)
            h->unix_path = ap_strdup(la.path);
        snprintf(h->shown, sizeof(h->shown), "unix:%s", la.path);
    } else {
        fd = listener_bind_tcp(&la, "metricsListen", spec, HTTPD_BACKLOG, err, errlen);
        if (fd >= 0)
            listener_describe_tcp(fd, h->shown, sizeof(h->shown));
    }
    if (fd < 0)
        goto fail;
    h->http = evhttp_new(server.base);
    if (h->http == NULL) {
        snprintf(err, errlen, "metricsListen %s: evhttp_new failed", h->shown);
        close(fd);
        goto fail;
    }
    evhttp_set_max_headers_size(h->http, HTTPD_MAX_HEADERS);
    evhttp_set_max_body_size(h->http, HTTPD_MAX_BODY);
    evhttp_set_timeout(h->http, HTTPD_TIMEOUT_S);
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(h->http, request_cb, h);
    h->bound = evhttp_accept_socket_with_handle(h->http, fd);
    if (h->bound == NULL) {
        snprintf(err, errlen, "metricsListen %s: evhttp_accept_socket_with_handle failed", h->shown);
        close(fd);
        goto fail;
    }
    server.httpd = h;
    if (!la.loopback)
        ap_warn("metrics endpoint on %s: not a loopback address (metricsAllowRemote): other machines can read "
                "/metrics, /healthz and /stats",
                h->shown);
    ap_info("metrics endpoint on %s (/metrics, /healthz, /stats)", h->shown);
    return AP_OK;
fail:
    if (h->http)
        evhttp_free(h->http);
    if (h->unix_path) {
        unlink(h->unix_path);
        ap_free(h->unix_path);
    }
    ap_free(h);
    return AP_ERR;
}

void httpd_stop(void)
{
    struct httpd *h = server.httpd;
    if (h == NULL)
        return;
    h->stopping = 1;
    evhttp_free(h->http);
    if (h->unix_path) {
        if (unlink(h->unix_path) != 0 && errno != ENOENT)
            ap_warn("could not remove socket file %s: %s", h->unix_path, strerror(errno));
        ap_free(h->unix_path);
    }
    ap_free(h);
    server.httpd = NULL;
}
