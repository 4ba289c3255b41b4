/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * httpx.h - one HTTP message exchange: POST /v1/pools/{pool}/messages
 * (and /v1/messages) turned into a request line, put through the one
 * admission path, and its answer turned back into HTTP.
 *
 * The seam: an exchange owns an origin client (client.h).  Its request
 * body is one request line (the Idempotency-Key header and the Bearer key
 * added as members when given) that client_feed hands, with the URL's
 * pool and "stream" beside it, to client_line, the code every socket
 * line goes through (scan,
 * refusals, idempotency, sessions, breakers, scheduling, answer_end):
 * nothing of admission is repeated here.  The answer, chunk and
 * heartbeat lines answer.c and stream.c write to that client are taken at
 * the end of the turn (httpx_take, flush.c's sink), read back with
 * reply_read and written as HTTP: the answer object itself (without its
 * id) with a status code chosen from its error code, or, for a stream
 * (Accept: text/event-stream or ?stream=1), server-sent events.  Lines
 * are taken only while the connection has room (http1_request_room:
 * under HTTP1_OUT_HIGH unsent, and none unsent past maxBufferedBytes),
 * so a slow HTTP reader holds its stream's credit back
 * exactly as a slow socket reader does.  A peer that leaves (its
 * connection closed) drops the client: its work is cancelled as for a
 * socket that closes.
 *
 * Lifetime: an exchange is its HTTP connection's: made at its first
 * message, given each next one (httpx_start), freed once the connection
 * is gone (httpx_peer_gone) and its client closed.  Never reads sockets,
 * never blocks.
 */
#ifndef AP_HTTPX_H
#define AP_HTTPX_H

#include <stddef.h>
#include <stdint.h>

struct pool;
struct httpx;
struct http1_req;

/* Told when x no longer needs its connection watched: it has answered
 * (its response is http1.c's to send) or its peer is gone. */
typedef void httpx_over_fn(void *arg);

/* Starts an exchange for req (a POST whose body is read) on pool p, in
 * x (the connection's, from its last message; NULL for its first); sse:
 * answer with server-sent events.  over(arg) is called once when the
 * request is answered (possibly before this returns: a request refused
 * at once).  Returns the exchange to give the connection's next message
 * (never NULL). */
struct httpx *httpx_start(struct httpx *x, struct http1_req *req, struct pool *p, int sse, const char *secret,
                          size_t slen, httpx_over_fn *over, void *arg);
/* x's connection is closing: the work of its request in hand is cancelled
 * (it goes with the connection), x freed.  over is not called. */
void httpx_peer_gone(struct httpx *x);
/* o (consumed) as a JSON body and a newline, in a new evbuffer (the
 * caller frees it); NULL when memory ran out, req then answered 500 and
 * the failure logged naming what. */
struct cJSON;
struct evbuffer;
struct evbuffer *httpx_json_body(struct http1_req *req, struct cJSON *o, const char *what);
/* The HTTP status for an error code of the protocol (docs/http.md). */
int httpx_status_of(int reply_code);

#endif
