/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * http1.h - an HTTP/1.1 server connection on the master's loop: the
 * front door's (httpfront.c) connection layer, in place of evhttp.
 *
 * A connection owns its socket (non-blocking, accepted by its owner), a
 * bounded input buffer (HTTP1_IN_CAP bytes), a request parser (h1parse.h)
 * and its output (a flushable, flush.h: what a turn of the loop answers is
 * written with one writev at its end; a write event only while the
 * socket is full).  One request at a time, as evhttp: the next request of
 * a pipelined connection is parsed once the current one is answered, so
 * answers go out in request order.  While a request is being handled, the
 * socket is still read (bounded), so a peer that closes is seen at once
 * and its request's owner told (hooks.closed).  No timer of its own: its
 * owner's tick asks http1_conn_expired.
 *
 * Phases, in c->phase, changed only by conn_set_phase: IDLE (between
 * requests) -> READING (a first byte came) -> HANDLING (a whole request
 * is the owner's: hooks.request) -> IDLE once it is answered, or READING
 * at once when pipelined bytes wait ; any -> CLOSING (the last answer is
 * written, then the socket closes).  Refusals of its own (a request it
 * cannot parse, or over a bound) are answered here with a JSON error and
 * Connection: close.
 *
 * The request API mirrors evhttp's, call for call: http1_find_header for
 * evhttp_find_header(evhttp_request_get_input_headers(req), ...),
 * http1_add_header(http1_output_headers(req), ...), http1_send_reply,
 * _reply_start, _reply_chunk, _reply_chunk_with_cb, _reply_end and
 * http1_send_error.  A request is valid from hooks.request until its
 * answer is sent (whole, or its stream ended) or its connection closes,
 * whichever is first; it is never freed by its user.
 */
#ifndef AP_HTTP1_H
#define AP_HTTP1_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct evbuffer;
typedef struct http1_conn http1_conn;
typedef struct http1_req http1_req;
/* A request's output headers (the request itself, typed apart). */
typedef struct http1_req http1_headers;

/* Input bytes a connection holds, at most: a request's head and body are
 * parsed out of it as they come; while a request is handled, pipelined
 * bytes wait here and reading stops when it is full. */
#define HTTP1_IN_CAP 16384
/* Unsent answer bytes on a connection above which no further pipelined
 * request is parsed or read (a peer that sends and never reads must not
 * grow the master's memory); parsing resumes below HTTP1_OUT_LOW. */
#define HTTP1_OUT_HIGH (256u * 1024)
#define HTTP1_OUT_LOW (64u * 1024)
/* Output header text a handler may add to one response (more: dropped, logged). */
#define HTTP1_OUT_HEADERS 1024

typedef enum { HTTP1_IDLE = 0, HTTP1_READING, HTTP1_HANDLING, HTTP1_CLOSING, HTTP1_PHASE_COUNT } http1_phase;

typedef enum { HTTP1_GET = 0, HTTP1_HEAD, HTTP1_POST, HTTP1_PUT, HTTP1_DELETE, HTTP1_PATCH, HTTP1_OPTIONS } http1_method;

typedef struct {
    size_t max_head;            /* request line and header bytes (httpMaxHeaderBytes): 431 past it */
    size_t max_body;            /* body bytes (maxMessageBytes): 413 past it */
} http1_limits;

typedef struct {
    /* A whole request is the owner's: answer it (now or later). */
    void (*request)(http1_req *req, void *arg);
    /* A response was sent whole (or a stream ended), with its status:
     * also for the layer's own refusals. */
    void (*done)(int status, void *arg);
    /* The connection closes (peer gone, write failed, timed out, answered
     * with Connection: close, or http1_conn_close): the last call; a
     * request still being handled is gone with it. */
    void (*closed)(void *arg);
} http1_hooks;

typedef enum { HTTP1_LIVE = 0, HTTP1_REQUEST_TIMEOUT, HTTP1_IDLE_TIMEOUT } http1_expiry;

/* Serves fd (non-blocking, now owned: closed with the connection); peer
 * is the address shown for it ("127.0.0.1", "" for a unix socket).
 * NULL when it cannot (logged; fd closed). */
http1_conn *http1_conn_new(int fd, const char *peer, const http1_limits *lim, const http1_hooks *hooks, void *arg);
/* Closes c now (hooks.closed called; unsent output dropped). */
void http1_conn_close(http1_conn *c);
http1_phase http1_conn_phase(const http1_conn *c);
const char *http1_phase_name(http1_phase p);
/* Bytes not yet taken by c's socket. */
size_t http1_conn_unsent(const http1_conn *c);
/* Whether c is past a timeout: READING for request_ms (0: none) since
 * the request's first byte; or neither reading nor writing for idle_ms
 * while IDLE, or while output waits for the socket. */
http1_expiry http1_conn_expired(const http1_conn *c, uint64_t now_ms, uint64_t request_ms, uint64_t idle_ms);

/* ---- a request ---------------------------------------------------- */

http1_method http1_request_method(const http1_req *req);
/* The path (no query), and the query after '?' (NULL when none). */
const char *http1_request_path(const http1_req *req);
const char *http1_request_query(const http1_req *req);
/* The value of a request header (the first one), or NULL. */
const char *http1_find_header(const http1_req *req, const char *name);
/* The body (not NUL-terminated) and its length; "" and 0 when none. */
const char *http1_request_body(const http1_req *req, size_t *len);
/* The peer's address as given to http1_conn_new. */
const char *http1_request_peer(const http1_req *req);
/* Bytes of req's connection not yet taken by its socket. */
size_t http1_request_unsent(const http1_req *req);
/* Whether more bytes of a stream may be added to req's connection and
 * its stream go on: its unsent output stays within HTTP1_OUT_HIGH, and
 * it has none while the master holds more than maxBufferedBytes of
 * answers (client_budget_over).  Else the stream waits for its output
 * to drain (http1_send_reply_chunk_with_cb). */
int http1_request_room(const http1_req *req, size_t more);

http1_headers *http1_output_headers(http1_req *req);
/* Adds a response header ("Connection: close" closes the connection
 * after the answer; Date and Content-Length are the layer's). */
void http1_add_header(http1_headers *h, const char *name, const char *value);
/* The whole response: status, reason, the headers added, Date,
 * Content-Type application/json unless one was added, Content-Length, and
 * body's bytes (drained from it; NULL: none; not sent for HEAD). */
void http1_send_reply(http1_req *req, int status, const char *reason, struct evbuffer *body);
/* The same with the body in n pieces (copied once, into the output). */
void http1_send_reply_parts(http1_req *req, int status, const char *reason, const struct iovec *parts, int n);
/* A response with a short JSON error body of its reason. */
void http1_send_error(http1_req *req, int status, const char *reason);
/* A streamed response: its head now (chunked for HTTP/1.1; for HTTP/1.0
 * the body runs to the connection's close). */
void http1_send_reply_start(http1_req *req, int status, const char *reason);
/* One piece of a streamed response (drained from buf). */
void http1_send_reply_chunk(http1_req *req, struct evbuffer *buf);
/* The same, and drained(req, arg) is called once the connection's
 * output is all written (not when it closes first). */
typedef void http1_drained_fn(http1_req *req, void *arg);
void http1_send_reply_chunk_with_cb(http1_req *req, struct evbuffer *buf, http1_drained_fn *drained, void *arg);
/* The streamed response ends; req is over. */
void http1_send_reply_end(http1_req *req);

#endif
