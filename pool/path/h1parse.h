/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * h1parse.h - one HTTP/1.x request at a time, parsed from bytes by
 * llhttp (Node.js's parser; pool/llhttp/) and bounded: the request line and headers
 * by max_head bytes (431) and max_headers fields (431), the body by
 * max_body bytes (413, refused from Content-Length before it is read).
 *
 * Pure: no sockets, no clock, no logging; the front door's connection
 * layer (http1.c) feeds it what it reads, and its fuzz target and unit
 * tests feed it bytes.  Refuses what could smuggle a second request past
 * a proxy: Content-Length with Transfer-Encoding, a Content-Length given
 * twice, a Transfer-Encoding other than chunked; and methods outside GET,
 * HEAD, POST, PUT, DELETE, PATCH, OPTIONS (501), versions other than
 * HTTP/1.x (505), CONNECT and Upgrade requests (501).  Header names and
 * values are copied into one buffer of the parser's (grown up to
 * max_head bytes), the body into another (grown up to max_body).
 *
 * States: HEAD (request line, headers) -> BODY -> DONE (a whole request:
 * the caller answers it, then calls h1parse_next) ; HEAD or BODY ->
 * ERROR (status and why set: the caller answers that and closes).
 */
#ifndef AP_H1PARSE_H
#define AP_H1PARSE_H

#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>

/* Header fields of one request, at most (more: 431). */
#define H1PARSE_MAX_HEADERS 100

typedef enum { H1P_HEAD = 0, H1P_BODY, H1P_DONE, H1P_ERROR } h1parse_state;

typedef enum {
    H1_GET = 0, H1_HEAD, H1_POST, H1_PUT, H1_DELETE, H1_PATCH, H1_OPTIONS, H1_OTHER
} h1_method;

typedef struct {
    size_t max_head;            /* request line and header bytes */
    size_t max_body;            /* body bytes (maxMessageBytes) */
} h1parse_limits;

typedef struct h1parse {
    llhttp_t p;
    h1parse_limits lim;
    h1parse_state state;
    size_t head_bytes;          /* bytes of the head (request line and headers) parsed so far */
    /* ERROR: the status to answer (400, 413, 417, 431, 501, 505) and why */
    int status;
    const char *why;
    /* HEAD done (BODY or DONE): what the request says */
    h1_method method;
    int minor;                  /* HTTP/1.minor */
    int keep_alive;             /* DONE: the connection may carry another request */
    int expect_continue;        /* Expect: 100-continue with a body to come: set once at the head's end */
    const char *path;           /* NUL-terminated, in hbuf; without the query */
    const char *query;          /* after '?', or NULL */
    /* storage */
    char *hbuf;                 /* URL, then name\0value\0 ... */
    size_t hlen, hcap;
    uint32_t names[H1PARSE_MAX_HEADERS], values[H1PARSE_MAX_HEADERS];
    int nheaders;
    int in_value;               /* the last header bytes were a value */
    size_t url_len;
    char *body;
    size_t blen, bcap;
    int cl_seen;                /* Content-Length fields seen in this request */
    int expect;                 /* the first Expect field's index + 1 (0: none) */
    uint32_t initials;          /* bit (c | 0x20) & 31 set for each field name's first byte c: a look-up's filter */
    int te_seen;                /* Transfer-Encoding seen */
} h1parse;

/* Ready for a connection's first request (allocates nothing yet). */
void h1parse_init(h1parse *h, const h1parse_limits *lim);
/* Frees the buffers (h may be initialised again). */
void h1parse_free(h1parse *h);
/* Parses up to n bytes of data; returns how many it consumed.  It stops
 * after a whole request (state DONE: the rest of data is the next one's,
 * fed after h1parse_next) or at an error (state ERROR).  Never called
 * with n == 0. */
size_t h1parse_feed(h1parse *h, const char *data, size_t n);
/* After DONE: ready for the next request of the connection (the body
 * buffer is kept for reuse up to a small size). */
void h1parse_next(h1parse *h);
/* The value of header name (case-insensitive; the first one given), or
 * NULL.  Valid from the head's end until h1parse_next. */
const char *h1parse_header(const h1parse *h, const char *name);
/* The method's name ("GET"...). */
const char *h1parse_method_name(h1_method m);

#endif
