/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * httpd.h - HTTP endpoints for monitoring (metricsListen), served by
 * libevent's evhttp on the master's event loop:
 *
 *   GET /metrics   Prometheus text format 0.0.4 (metrics_prometheus)
 *   GET /healthz   200 "ready", or 503 and the state (health.c)
 *   GET /readyz    the same, and 503 "draining" once a shutdown began
 *   GET /stats     pool.stats {"detailed": true} as JSON
 *   anything else  404; methods other than GET and HEAD: 501 (evhttp)
 *
 * Off unless metricsListen is set: "unix:/path" (a socket file made like
 * the main one, with socketMode), or a numeric loopback address and port
 * ("127.0.0.1:9464", "[::1]:9464"); another address needs
 * metricsAllowRemote (checked by config_validate) and is logged as a
 * warning.  Bounded: request headers HTTPD_MAX_HEADERS bytes, bodies
 * HTTPD_MAX_BODY, idle connections closed after HTTPD_TIMEOUT_S, and at
 * most HTTPD_MAX_CONNS connections served at once (past that, accepting
 * pauses and a request on a connection beyond the limit is answered 503
 * and closed).  Answers are built when asked for, never cached; nothing
 * here changes the pool.
 */
#ifndef AP_HTTPD_H
#define AP_HTTPD_H

#include <stddef.h>

#define HTTPD_MAX_HEADERS 8192
#define HTTPD_MAX_BODY 1024
#define HTTPD_TIMEOUT_S 10
#define HTTPD_MAX_CONNS 8
#define HTTPD_BACKLOG 16

/* Binds metricsListen and starts serving (after the event base exists).
 * AP_OK and nothing done when metricsListen is not set; AP_ERR with err
 * filled (the address, the call that failed, errno text) when it cannot
 * bind. */
int httpd_start(char *err, size_t errlen);
struct evbuffer;
/* Whether path is one of the endpoints above. */
int httpd_is_ops_path(const char *path);
/* The answer to path (one of the endpoints above) into body: returns its
 * status (200, or 503 for /healthz and /readyz when not ready), *type its
 * Content-Type.  The HTTP front door (httpfront.c) serves the same bodies
 * over its own connections when metricsListen is not set. */
int httpd_ops_body(const char *path, struct evbuffer *body, const char **type);
/* Stops serving, closes every HTTP connection and removes the socket
 * file (idempotent). */
void httpd_stop(void);

#endif
