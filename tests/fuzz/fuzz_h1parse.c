/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_h1parse.c - libFuzzer target for the HTTP front door's request
 * parser (pool/path/h1parse.c over llhttp).
 *
 * Any bytes are what a client sent on one connection.  They are parsed as
 * the connection layer does (a whole request, h1parse_next, the rest),
 * once fed at once and once in pieces of a size taken from the first
 * byte, and what must hold is checked: nothing read outside the input or
 * a buffer (ASan); a whole request has a method it serves, a path that
 * begins with '/' (or is "*"), a body within its bound, at most
 * H1PARSE_MAX_HEADERS headers, each a NUL-terminated string inside the
 * header buffer, whose size stays within the head's bound; never both a
 * Content-Length and a Transfer-Encoding, nor Content-Length twice; a
 * refusal has one of the statuses it documents and a reason.  The two
 * ways of feeding find the same requests (same methods, paths, bodies)
 * and end the same way (an error, or not).  Everything is freed (ASan's
 * leak check).
 */
#include "h1parse.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "fuzz_h1parse: check failed at line %d: %s\n", __LINE__, #cond);                          \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

#define MAX_REQS 64

typedef struct {
    int n;                      /* whole requests */
    int method[MAX_REQS];
    uint64_t sig[MAX_REQS];     /* FNV-1a of the path and the body */
    int error;                  /* ended refused */
} outcome;

static const h1parse_limits lim = {512, 256};

static uint64_t fnv(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static int in_hbuf(const h1parse *h, const char *s)
{
    return s >= h->hbuf && s < h->hbuf + h->hlen && memchr(s, '\0', (size_t)(h->hbuf + h->hlen - s)) != NULL;
}

static void check_request(const h1parse *h, outcome *o)
{
    CHECK(h->method >= H1_GET && h->method < H1_OTHER);
    CHECK(h->path != NULL && in_hbuf(h, h->path));
    CHECK(h->path[0] == '/' || strcmp(h->path, "*") == 0);
    CHECK(h->query == NULL || in_hbuf(h, h->query));
    CHECK(h->blen <= lim.max_body && h->blen <= h->bcap);
    CHECK(h->nheaders >= 0 && h->nheaders <= H1PARSE_MAX_HEADERS);
    CHECK(h->hcap <= lim.max_head + 2);
    CHECK(h->head_bytes <= lim.max_head); /* every byte of the head counted, kept or not */
    CHECK(h->cl_seen <= 1 && !(h->cl_seen && h->te_seen));
    for (int i = 0; i < h->nheaders; i++) {
        CHECK(in_hbuf(h, h->hbuf + h->names[i]));
        CHECK(in_hbuf(h, h->hbuf + h->values[i]));
        CHECK(h1parse_header(h, h->hbuf + h->names[i]) != NULL);
    }
    if (o->n < MAX_REQS) {
        o->method[o->n] = h->method;
        uint64_t s = fnv(1469598103934665603ULL, h->path, strlen(h->path));
        o->sig[o->n] = fnv(s, h->body ? h->body : "", h->blen);
    }
    o->n++;
}

/* Parses data as one connection, fed in pieces of step bytes (0: all). */
static void run(const char *data, size_t size, size_t step, outcome *o)
{
    h1parse h;
    h1parse_init(&h, &lim);
    memset(o, 0, sizeof(*o));
    size_t off = 0, end = 0;
    while (off < size) {
        if (end <= off)
            end = step && size - off > step ? off + step : size; /* the next "read" */
        size_t given = end - off;
        size_t used = h1parse_feed(&h, data + off, given);
        CHECK(used <= given);
        off += used;
        if (h.state == H1P_ERROR) {
            CHECK(h.status == 400 || h.status == 413 || h.status == 417 || h.status == 431 || h.status == 501 ||
                  h.status == 505);
            CHECK(h.why != NULL && h.why[0] != '\0');
            o->error = 1;
            break;
        }
        if (h.state == H1P_DONE) {
            check_request(&h, o);
            h1parse_next(&h);
            continue;
        }
        CHECK(used == given); /* not done: it took all it was given */
    }
    h1parse_free(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t step = (size_t)(data[0] % 16) + 1;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    outcome whole, pieces;
    run(text, n, 0, &whole);
    run(text, n, step, &pieces);
    /* the same requests either way; a refusal may come at a different
     * point (a piece ends inside a field), so only whether one came */
    int common = whole.n < pieces.n ? whole.n : pieces.n;
    if (common > MAX_REQS)
        common = MAX_REQS;
    for (int i = 0; i < common; i++) {
        CHECK(whole.method[i] == pieces.method[i]);
        CHECK(whole.sig[i] == pieces.sig[i]);
    }
    CHECK(whole.error == pieces.error);
    if (!whole.error)
        CHECK(whole.n == pieces.n);
    return 0;
}
