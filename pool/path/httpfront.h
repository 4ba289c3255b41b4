/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * httpfront.h - the HTTP/1.1 front door (httpListen, docs/http.md).
 *
 * Served on the master's own loop by http1.c's connections, from
 * listeners on HOST:PORT, [IPV6]:PORT or unix:/path:
 *
 *   POST /v1/pools/{pool}/messages, POST /v1/messages   a message (httpx.c)
 *   GET  /v1/pools                                     the pools
 *   GET  /v1/pools/{pool}/stats                        pool.stats of one pool
 *   GET  /healthz, /readyz, /metrics, /stats           httpd.c's, when metricsListen is not set
 *
 * Every request passes httpauth_check first (health probes excepted).
 * Bounded: headers httpMaxHeaderBytes (431 and closed), bodies
 * maxMessageBytes (413 and closed), a request's headers and body
 * must arrive within httpRequestTimeoutMs of its first byte (else its
 * connection is closed: slow-loris), a connection that sends or takes
 * nothing for httpIdleTimeoutMs is closed, and HTTP
 * connections count in maxConnections with the socket's (past it, a
 * connection's first request is answered 503 too_many_connections and
 * it is closed; while HTTPFRONT_MAX_REFUSING such connections wait, the
 * listeners pause).
 */
#ifndef AP_HTTPFRONT_H
#define AP_HTTPFRONT_H

#include <stddef.h>
#include <stdint.h>

struct cJSON;
struct evbuffer;

/* Binds every httpListen address and serves them (after the event base
 * exists).  AP_OK and nothing done when httpListen is empty; AP_ERR with
 * err filled (the address, the call, errno text; or httpauth's refusal)
 * when it cannot, with nothing left bound. */
int httpfront_start(char *err, size_t errlen);
/* A shutdown began: no new connection is accepted (the listening
 * sockets close); requests still come on open connections (answered
 * shutting_down) and every response says Connection: close. */
void httpfront_stop_accepting(void);
/* Closes every HTTP connection (their exchanges' work is cancelled),
 * frees everything and removes unix: socket files (idempotent). */
void httpfront_stop(void);
/* True when no HTTP exchange is open and no connection has a response
 * still unsent (a shutdown waits for it). */
int httpfront_all_flushed(void);
/* On the tick: requests past httpRequestTimeoutMs are cut off. */
void httpfront_tick(uint64_t now_ms);
/* The "http" object of pool.stats, and the Prometheus series. */
void httpfront_stats_json(struct cJSON *o);
void httpfront_prometheus(struct evbuffer *out);

#endif
