/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * http.h - an incremental HTTP/1.x response parser, just enough to count
 * answers from a keep-alive server: status code, where each response
 * ends (Content-Length, chunked, or the end of the connection) and
 * whether the server will close the connection after it.
 *
 * The caller keeps the bytes it has read in a buffer and calls
 * http_parse() on them; the parser says how many it consumed.  A header
 * block is only parsed once it is complete in the buffer (at most
 * HTTP_MAX_HEAD bytes); bodies and chunks are skipped as they arrive, so
 * a large body never has to fit in the buffer.  Interim 1xx responses
 * (100 Continue) are skipped.  Bodies are skipped, but the first
 * HTTP_BODY_HEAD bytes of each are kept (head, head_len) so a caller can
 * judge an answer by its start (a JSON-RPC "result" or "error").
 *
 * Pure and allocation-free; `error` points at a static string.
 */
#ifndef BENCH_HTTP_H
#define BENCH_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEAD (64u * 1024u)
#define HTTP_MAX_LINE 4096u /* a chunk-size or trailer line */
#define HTTP_BODY_HEAD 64u  /* bytes of each body kept */

typedef enum { HTTP_BAD = -1, HTTP_NEED = 0, HTTP_DONE = 1 } http_result;

typedef struct {
    int state;          /* internal: where in a response we are */
    uint64_t remaining; /* body or chunk bytes still to skip */
    int status;         /* the status of the response being read / just done */
    int close;          /* the server closes the connection after it */
    const char *error;  /* why, after HTTP_BAD */
    char head[HTTP_BODY_HEAD]; /* the first bytes of the response's body */
    size_t head_len;
} http_parser;

/* Prepares p for the first response on a new connection. */
void http_init(http_parser *p);
/* Consumes bytes of buf[0..len) and writes how many to *used.  Returns
 * HTTP_DONE when a response has ended (p->status, p->close describe it;
 * call again with the rest), HTTP_NEED when every complete piece was
 * consumed and more bytes are needed, HTTP_BAD when the stream is not
 * HTTP/1.x (p->error says why; the connection is unusable). */
http_result http_parse(http_parser *p, const char *buf, size_t len, size_t *used);
/* The connection ended.  Returns HTTP_DONE when that completes a response
 * whose body runs to the end of the connection, HTTP_NEED when no
 * response was under way past its header (the caller still has to check
 * for unconsumed header bytes), HTTP_BAD when a body or chunk was cut. */
http_result http_eof(http_parser *p);

#endif
