/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_bench_http.c - libFuzzer target for agentpool-bench's incremental
 * HTTP/1.x response parser (bench/http.c).
 *
 * Byte 0 of an input picks the mode, bytes 1-2 a split point.  In raw
 * mode (byte 0 even) the rest is what a server sent on one connection;
 * in generated mode (odd) the rest is read as choices for up to eight
 * well-formed responses (version, status, Content-Length / chunked with
 * extensions and trailers / body to the end / bodyless, Connection
 * tokens, CRLF or bare LF, header case, an interim 100 Continue), whose
 * statuses, close flags and ending are known: the reference.
 *
 * The stream is fed the way bench/conn.c feeds it (bytes appended to a
 * buffer, every complete response consumed, the rest kept, then the end
 * of the connection) in several ways: whole, in two pieces cut at the
 * chosen point, in pieces of pseudo-random sizes drawn from the input,
 * and (up to 256 bytes) one byte at a time.  Every way must give the same
 * responses (status, close), the same ending (HTTP_BAD with the same
 * reason, or the same http_eof result and bytes left over), the same
 * number of bytes consumed; a generated stream must give exactly the
 * responses it was made of.  Along the way: `used` never exceeds what was
 * given, a finished response has a final status (200-599), HTTP_BAD
 * always says why in printable text, and after HTTP_NEED calling again
 * without new bytes consumes nothing and changes nothing.
 */
#include "http.h"
#include "ap_common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "fuzz_bench_http: check failed at line %d: %s\n", __LINE__, \
                    #cond);                                                              \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#define MAX_RESPONSES 64

typedef struct {
    int status[MAX_RESPONSES];
    int close[MAX_RESPONSES];
    size_t n;           /* responses finished (all of them, even past the arrays) */
    int bad;            /* ended by HTTP_BAD */
    const char *error;  /* its reason */
    http_result eof;    /* http_eof() when not bad */
    int eof_status;     /* the response http_eof() finished, if it did */
    int eof_close;
    size_t consumed;    /* bytes the parser consumed in all */
    size_t leftover;    /* bytes still in the buffer at the end */
} outcome;

/* The pieces a stream is cut into: sizes from a tiny generator. */
typedef struct {
    size_t fixed;       /* every piece this long, or 0 */
    size_t first;       /* the first piece's length, when cutting in two */
    uint32_t rng;       /* pseudo-random sizes when nonzero */
    int pieces;         /* pieces handed out so far */
} cutter;

static size_t cut_next(cutter *c, size_t left)
{
    size_t n;
    if (c->fixed) {
        n = c->fixed;
    } else if (c->rng) {
        c->rng = c->rng * 1103515245u + 12345u;
        n = 1 + (c->rng >> 16) % 97;
    } else {
        n = c->pieces == 0 ? c->first : left;
    }
    c->pieces++;
    return n < left ? n : left;
}

static int fields_equal(const http_parser *a, const http_parser *b)
{
    return a->state == b->state && a->remaining == b->remaining && a->status == b->status &&
           a->close == b->close && a->error == b->error;
}

static void check_error(const char *e)
{
    CHECK(e != NULL && e[0] != '\0');
    for (const char *c = e; *c; c++)
        CHECK(*c >= 0x20 && *c < 0x7f);
}

/* Feeds s[0..len) cut by c into a fresh parser, like bench/conn.c. */
static void feed(const char *s, size_t len, cutter *c, char *buf, outcome *o)
{
    http_parser p;
    size_t have = 0, pos = 0;

    memset(o, 0, sizeof(*o));
    http_init(&p);
    while (pos < len && !o->bad) {
        size_t n = cut_next(c, len - pos);
        memcpy(buf + have, s + pos, n);
        have += n;
        pos += n;
        for (;;) {
            size_t used = (size_t)-1;
            http_result r = http_parse(&p, buf, have, &used);
            CHECK(r == HTTP_BAD || r == HTTP_NEED || r == HTTP_DONE);
            CHECK(used <= have);
            memmove(buf, buf + used, have - used);
            have -= used;
            o->consumed += used;
            if (r == HTTP_BAD) {
                check_error(p.error);
                o->bad = 1;
                o->error = p.error;
                break;
            }
            if (r == HTTP_DONE) {
                CHECK(p.status >= 200 && p.status <= 599);
                CHECK(p.close == 0 || p.close == 1);
                if (o->n < MAX_RESPONSES) {
                    o->status[o->n] = p.status;
                    o->close[o->n] = p.close;
                }
                o->n++;
                continue;
            }
            /* HTTP_NEED: nothing more to do until more bytes come */
            http_parser q = p;
            size_t used2 = (size_t)-1;
            CHECK(http_parse(&q, buf, have, &used2) == HTTP_NEED);
            CHECK(used2 == 0);
            CHECK(fields_equal(&p, &q));
            break;
        }
    }
    o->leftover = have;
    if (!o->bad) {
        o->eof = http_eof(&p);
        CHECK(o->eof == HTTP_BAD || o->eof == HTTP_NEED || o->eof == HTTP_DONE);
        if (o->eof == HTTP_BAD)
            check_error(p.error);
        if (o->eof == HTTP_DONE) { /* a body that ran to the end: everything was taken */
            CHECK(o->leftover == 0);
            o->eof_status = p.status;
            o->eof_close = p.close;
        }
    }
}

static void same(const outcome *a, const outcome *b, const char *how)
{
    int ok = a->n == b->n && a->bad == b->bad && a->error == b->error &&
             a->consumed == b->consumed;
    if (ok && !a->bad) /* after HTTP_BAD the rest is never fed */
        ok = a->eof == b->eof && a->leftover == b->leftover && a->eof_status == b->eof_status &&
             a->eof_close == b->eof_close;
    for (size_t i = 0; ok && i < a->n && i < MAX_RESPONSES; i++)
        ok = a->status[i] == b->status[i] && a->close[i] == b->close[i];
    if (!ok) {
        fprintf(stderr,
                "fuzz_bench_http: fed %s: %zu responses, bad %d (%s), eof %d, consumed %zu; "
                "whole: %zu responses, bad %d (%s), eof %d, consumed %zu\n",
                how, b->n, b->bad, b->error ? b->error : "-", (int)b->eof, b->consumed, a->n,
                a->bad, a->error ? a->error : "-", (int)a->eof, a->consumed);
        abort();
    }
}

/* ---- the reference: streams made of known responses ---------------------- */

#define MAX_GEN 8
#define GEN_CAP (16u * 1024u)

typedef struct {
    int status[MAX_GEN];
    int close[MAX_GEN];
    size_t n;       /* responses http_parse must finish */
    int eof_body;   /* then one whose body runs to the end of the connection */
    int eof_status;
} expect;

/* Body bytes that look like HTTP, so a parser that reads bodies is caught. */
static const char filler[] = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n0\r\n\r\n";

static void put(char *out, size_t *len, const char *s)
{
    size_t n = strlen(s);
    CHECK(*len + n <= GEN_CAP);
    memcpy(out + *len, s, n);
    *len += n;
}

static void put_body(char *out, size_t *len, size_t n)
{
    CHECK(*len + n <= GEN_CAP);
    for (size_t i = 0; i < n; i++)
        out[(*len)++] = filler[i % (sizeof(filler) - 1)];
}

/* Writes the responses chosen by d[0..n) to out; returns the length. */
static size_t gen_stream(const uint8_t *d, size_t n, char *out, expect *e)
{
    static const int statuses[] = {200, 201, 302, 404, 500, 503};
    size_t len = 0, i = 0;
    char line[160];

    memset(e, 0, sizeof(*e));
    while (e->n < MAX_GEN && i + 3 <= n) {
        unsigned f = d[i], st = d[i + 1], blen = d[i + 2];
        i += 3;
        const char *eol = (f & 2) ? "\n" : "\r\n";
        int http10 = f & 1, conn = (f >> 2) & 3, framing = (f >> 4) & 3, lower = (f >> 7) & 1;
        int status = framing == 3 ? ((st & 1) ? 304 : 204) : statuses[st % 6];
        int close = conn == 1 || conn == 3 || (http10 && conn != 2) || framing == 2;

        if ((f >> 6) & 1) {
            snprintf(line, sizeof(line), "HTTP/1.1 100 Continue%s%s", eol, eol);
            put(out, &len, line);
        }
        snprintf(line, sizeof(line), "HTTP/1.%c %d Some Reason%s%s: x%s", http10 ? '0' : '1',
                 status, eol, lower ? "server" : "Server", eol);
        put(out, &len, line);
        if (conn) {
            static const char *const tokens[] = {"", "close", "keep-alive", "Keep-Alive, close"};
            snprintf(line, sizeof(line), "%s:  %s %s", lower ? "connection" : "Connection",
                     tokens[conn], eol);
            put(out, &len, line);
        }
        switch (framing) {
        case 0:
            snprintf(line, sizeof(line), "%s: %u%s%s", lower ? "content-length" : "Content-Length",
                     blen, eol, eol);
            put(out, &len, line);
            put_body(out, &len, blen);
            break;
        case 1:
            snprintf(line, sizeof(line), "%s: gzip, chunked%s%s",
                     lower ? "transfer-encoding" : "Transfer-Encoding", eol, eol);
            put(out, &len, line);
            for (unsigned k = 0; k < blen % 4; k++) {
                unsigned size = 1 + (i < n ? d[i++] : 0);
                snprintf(line, sizeof(line), "%x%s%s", size, (st & 2) ? ";name=value" : "", eol);
                put(out, &len, line);
                put_body(out, &len, size);
                put(out, &len, eol);
            }
            snprintf(line, sizeof(line), "0%s%s%s", eol, (st & 4) ? "X-Trailer: 1" : "",
                     (st & 4) ? eol : "");
            put(out, &len, line);
            put(out, &len, eol);
            break;
        case 2:
            put(out, &len, eol);
            put_body(out, &len, blen);
            e->eof_body = 1;
            e->eof_status = status;
            return len; /* nothing can follow it */
        default:
            if (st & 2) { /* a length a bodyless status must ignore */
                snprintf(line, sizeof(line), "Content-Length: 99%s", eol);
                put(out, &len, line);
            }
            put(out, &len, eol);
            break;
        }
        e->status[e->n] = status;
        e->close[e->n] = close;
        e->n++;
    }
    return len;
}

static void check_expected(const outcome *o, const expect *e)
{
    int ok = !o->bad && o->n == e->n && o->leftover == 0 &&
             o->eof == (e->eof_body ? HTTP_DONE : HTTP_NEED);
    for (size_t i = 0; ok && i < e->n; i++)
        ok = o->status[i] == e->status[i] && o->close[i] == e->close[i];
    if (ok && e->eof_body)
        ok = o->eof_status == e->eof_status && o->eof_close == 1;
    if (!ok) {
        fprintf(stderr,
                "fuzz_bench_http: generated %zu responses%s; parsed %zu, bad %d (%s), eof %d, "
                "left %zu\n",
                e->n, e->eof_body ? " and one to the end" : "", o->n, o->bad,
                o->error ? o->error : "-", (int)o->eof, o->leftover);
        for (size_t i = 0; i < e->n && i < o->n; i++)
            fprintf(stderr, "  #%zu: %d close %d, parsed %d close %d\n", i, e->status[i],
                    e->close[i], o->status[i], o->close[i]);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    int generated = data[0] & 1;
    size_t split = (size_t)data[1] << 8 | data[2];
    const char *s = (const char *)data + 3;
    size_t len = size - 3;
    char *made = NULL;
    outcome whole, other;
    expect want;
    cutter c;

    if (generated) {
        made = malloc(GEN_CAP);
        CHECK(made != NULL);
        len = gen_stream(data + 3, size - 3, made, &want);
        s = made;
    }
    char *buf = malloc(len + 1);
    CHECK(buf != NULL);

    c = (cutter){.first = len};
    feed(s, len, &c, buf, &whole);
    CHECK(whole.consumed + whole.leftover == len || whole.bad);
    if (generated)
        check_expected(&whole, &want);

    c = (cutter){.first = len ? split % (len + 1) : 0};
    feed(s, len, &c, buf, &other);
    same(&whole, &other, "in two pieces");

    uint32_t seed = 2166136261u;
    for (size_t i = 0; i < size && i < 16; i++)
        seed = (seed ^ data[i]) * 16777619u;
    c = (cutter){.rng = seed | 1};
    feed(s, len, &c, buf, &other);
    same(&whole, &other, "in random pieces");

    if (len <= 256) {
        c = (cutter){.fixed = 1};
        feed(s, len, &c, buf, &other);
        same(&whole, &other, "one byte at a time");
    }
    free(buf);
    free(made);
    return 0;
}
