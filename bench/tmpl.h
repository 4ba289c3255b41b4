/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * tmpl.h - the request every connection sends, built once at start-up
 * with a fixed-width slot for the id, so sending a request is one
 * memcpy() and writing the id's digits: no allocation, no formatting of
 * the body, and (for HTTP) a Content-Length that never changes.
 *
 * The body is `{"id":<id>,"type":<type>,"data":<data>}` (with
 * `,"stream":true` before the closing brace for --stream), where the id
 * slot is TMPL_ID_WIDTH characters: the digits, then spaces (white space
 * is allowed there in JSON; agentpoold echoes the id's digits only).
 * NDJSON ends it with '\n'; HTTP sends it as the body of
 *   POST <path> HTTP/1.1 / Host / Content-Type: application/json /
 *   Content-Length
 * (no Connection header: keep-alive is HTTP/1.1's default).
 * With --sessions N the body also carries `"session":"s<k>"`, k the id
 * modulo N written zero-padded in a slot of fixed width like the id's.
 * With --body (HTTP only) the body is the one given, on one line, and
 * has no id slot (id_off TMPL_NO_ID): HTTP answers come in order.
 */
#ifndef BENCH_TMPL_H
#define BENCH_TMPL_H

#include <stddef.h>
#include <stdint.h>

#define TMPL_ID_WIDTH 20 /* digits of UINT64_MAX */
#define TMPL_NO_ID ((size_t)-1) /* id_off of a --body request */

typedef struct {
    char *bytes;    /* the whole request */
    size_t len;
    size_t id_off;  /* where the id slot starts */
    uint64_t sessions;   /* --sessions: keys cycled over (0: no "session") */
    size_t session_off;  /* where the session key's digits start */
    int session_width;   /* how many (zero-padded) */
} tmpl;

typedef struct {
    int http;              /* else NDJSON */
    const char *type;      /* the message type */
    const char *data;      /* JSON text of data, or NULL for the payload */
    size_t payload_bytes;  /* data = {"p": "<payload_bytes x>"} */
    const char *path;      /* HTTP: request target */
    const char *host;      /* HTTP: Host header */
    int stream;            /* ask for a stream: "stream": true */
    const char *pool;      /* NDJSON: the pool to run in ("pool": ...), or NULL */
    uint64_t sessions;     /* NDJSON: "session": "s<k>", k = id % sessions, zero-padded (0: none) */
    const char *body;      /* HTTP: this body as it is (--body: e.g. a JSON-RPC request), no id slot; or NULL */
} tmpl_spec;

/* Builds the request described by spec into t.  `data` is parsed and
 * written back on one line (so a newline in it cannot split the NDJSON
 * request).  Returns AP_OK, or AP_ERR with the reason in err (bad JSON
 * data, a path with spaces or control characters) and t untouched. */
int tmpl_build(tmpl *t, const tmpl_spec *spec, char *err, size_t errlen);
void tmpl_free(tmpl *t);
/* Writes the request with id `id` (and its session key) to dst (t->len bytes). */
void tmpl_write(const tmpl *t, char *dst, uint64_t id);

#endif
