/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * http.c - the incremental HTTP/1.x response parser (see http.h).
 *
 * States: HEAD (waiting for a complete header block), BODY_LEN (skipping
 * Content-Length bytes), CHUNK_SIZE / CHUNK_DATA / CHUNK_END / TRAILER
 * (chunked transfer coding), BODY_EOF (a body that runs to the end of the
 * connection).  Every line it waits for is bounded (HTTP_MAX_HEAD,
 * HTTP_MAX_LINE), so a stream without line ends is refused instead of
 * buffered forever.  Tolerates bare LF line ends.
 */
#include "http.h"

#include <string.h>
#include <strings.h>

enum { HP_HEAD, HP_BODY_LEN, HP_CHUNK_SIZE, HP_CHUNK_DATA, HP_CHUNK_END, HP_TRAILER, HP_BODY_EOF };

void http_init(http_parser *p)
{
    memset(p, 0, sizeof(*p));
    p->state = HP_HEAD;
}

static http_result http_bad(http_parser *p, const char *why)
{
    p->error = why;
    return HTTP_BAD;
}

/* Length of the header block at the start of buf (through its empty
 * line), or 0 when it is not complete yet. */
static size_t http_head_len(const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        if (!nl)
            return 0;
        size_t line_len = (size_t)(nl - (buf + i));
        if (i > 0 && (line_len == 0 || (line_len == 1 && buf[i] == '\r')))
            return (size_t)(nl - buf) + 1;
        i = (size_t)(nl - buf) + 1;
    }
    return 0;
}

/* Does the comma-separated header value v[0..n) contain token tok? */
static int http_has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
            return 1;
    }
    return 0;
}

/* Parses the complete header block buf[0..len) and sets up the body. */
static http_result http_head(http_parser *p, const char *buf, size_t len)
{
    if (len < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') || buf[8] != ' ')
        return http_bad(p, "not an HTTP/1.x status line");
    if (buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' || buf[11] < '0' || buf[11] > '9' ||
        (len > 12 && buf[12] != ' ' && buf[12] != '\r' && buf[12] != '\n'))
        return http_bad(p, "bad status code");
    int http10 = buf[7] == '0';
    p->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');

    int chunked = 0, has_len = 0, conn_close = 0, keep_alive = 0;
    uint64_t clen = 0;
    const char *line = memchr(buf, '\n', len);
    size_t i = (size_t)(line - buf) + 1;
    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t n = (size_t)(nl - (buf + i));
        if (n > 0 && buf[i + n - 1] == '\r')
            n--;
        if (n == 0)
            break;
        const char *h = buf + i;
        const char *colon = memchr(h, ':', n);
        if (!colon)
            return http_bad(p, "header line without a colon");
        size_t nlen = (size_t)(colon - h);
        const char *v = colon + 1;
        size_t vlen = n - nlen - 1;
        while (vlen > 0 && (*v == ' ' || *v == '\t')) {
            v++;
            vlen--;
        }
        while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;
        if (nlen == 14 && strncasecmp(h, "content-length", 14) == 0) {
            if (vlen == 0)
                return http_bad(p, "empty Content-Length");
            uint64_t x = 0;
            for (size_t k = 0; k < vlen; k++) {
                if (v[k] < '0' || v[k] > '9' || x > (UINT64_MAX - 9) / 10)
                    return http_bad(p, "bad Content-Length");
                x = x * 10 + (uint64_t)(v[k] - '0');
            }
            if (has_len && x != clen)
                return http_bad(p, "conflicting Content-Length headers");
            clen = x;
            has_len = 1;
        } else if (nlen == 17 && strncasecmp(h, "transfer-encoding", 17) == 0) {
            if (http_has_token(v, vlen, "chunked"))
                chunked = 1;
        } else if (nlen == 10 && strncasecmp(h, "connection", 10) == 0) {
            if (http_has_token(v, vlen, "close"))
                conn_close = 1;
            if (http_has_token(v, vlen, "keep-alive"))
                keep_alive = 1;
        }
        i = (size_t)(nl - buf) + 1;
    }

    p->close = conn_close || (http10 && !keep_alive);
    int bodyless = p->status < 200 || p->status == 204 || p->status == 304;
    if (bodyless) {
        p->state = HP_HEAD;
        return HTTP_DONE;
    }
    if (chunked) {
        p->state = HP_CHUNK_SIZE;
    } else if (has_len) {
        p->remaining = clen;
        p->state = HP_BODY_LEN;
    } else {
        p->close = 1;
        p->state = HP_BODY_EOF;
    }
    return HTTP_NEED;
}

/* One line (through '\n') at the start of buf: its length including the
 * line end, 0 when incomplete, and (size_t)-1 when longer than allowed. */
static size_t http_line(const char *buf, size_t len)
{
    const char *nl = memchr(buf, '\n', len < HTTP_MAX_LINE ? len : HTTP_MAX_LINE);
    if (nl)
        return (size_t)(nl - buf) + 1;
    return len >= HTTP_MAX_LINE ? (size_t)-1 : 0;
}

http_result http_parse(http_parser *p, const char *buf, size_t len, size_t *used)
{
    size_t off = 0;
    http_result r = HTTP_NEED;

    for (;;) {
        const char *b = buf + off;
        size_t avail = len - off;
        switch (p->state) {
        case HP_HEAD: {
            /* refuse a stream that is not HTTP at its first bytes, rather
             * than waiting for a header block that never ends */
            if (avail > 0 && memcmp(b, "HTTP/", avail < 5 ? avail : 5) != 0) {
                r = http_bad(p, "not an HTTP/1.x status line");
                goto out;
            }
            size_t h = http_head_len(b, avail < HTTP_MAX_HEAD ? avail : HTTP_MAX_HEAD);
            if (h == 0) {
                if (avail >= HTTP_MAX_HEAD)
                    r = http_bad(p, "response header block too long");
                goto out;
            }
            p->close = 0;
            p->head_len = 0;
            r = http_head(p, b, h);
            if (r == HTTP_BAD)
                goto out;
            off += h;
            if (r == HTTP_DONE) {
                if (p->status >= 100 && p->status < 200) {
                    if (p->status == 101) {
                        r = http_bad(p, "101 Switching Protocols is not supported");
                        goto out;
                    }
                    r = HTTP_NEED; /* interim: the real response follows */
                    continue;
                }
                goto out;
            }
            if (p->state == HP_BODY_LEN && p->remaining == 0) {
                p->state = HP_HEAD;
                r = HTTP_DONE;
                goto out;
            }
            continue;
        }
        case HP_BODY_LEN:
        case HP_CHUNK_DATA: {
            size_t take = avail < p->remaining ? avail : (size_t)p->remaining;
            size_t keep = HTTP_BODY_HEAD - p->head_len;
            if (keep > take)
                keep = take;
            memcpy(p->head + p->head_len, b, keep);
            p->head_len += keep;
            off += take;
            p->remaining -= take;
            if (p->remaining > 0)
                goto out;
            if (p->state == HP_BODY_LEN) {
                p->state = HP_HEAD;
                r = HTTP_DONE;
                goto out;
            }
            p->state = HP_CHUNK_END;
            continue;
        }
        case HP_CHUNK_SIZE: {
            size_t n = http_line(b, avail);
            if (n == 0)
                goto out;
            if (n == (size_t)-1) {
                r = http_bad(p, "chunk-size line too long");
                goto out;
            }
            uint64_t size = 0;
            size_t k = 0;
            for (; k < n; k++) {
                char c = b[k];
                unsigned d;
                if (c >= '0' && c <= '9')
                    d = (unsigned)(c - '0');
                else if (c >= 'a' && c <= 'f')
                    d = (unsigned)(c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                    d = (unsigned)(c - 'A' + 10);
                else
                    break;
                if (size > (UINT64_MAX >> 4)) {
                    r = http_bad(p, "chunk size too large");
                    goto out;
                }
                size = size << 4 | d;
            }
            if (k == 0 || (b[k] != ';' && b[k] != '\r' && b[k] != '\n' && b[k] != ' ' && b[k] != '\t')) {
                r = http_bad(p, "bad chunk-size line");
                goto out;
            }
            off += n;
            if (size == 0) {
                p->state = HP_TRAILER;
            } else {
                p->remaining = size;
                p->state = HP_CHUNK_DATA;
            }
            continue;
        }
        case HP_CHUNK_END:
            if (avail >= 1 && b[0] == '\n') {
                off += 1;
            } else if (avail >= 2 && b[0] == '\r' && b[1] == '\n') {
                off += 2;
            } else if (avail == 0 || (avail == 1 && b[0] == '\r')) {
                goto out;
            } else {
                r = http_bad(p, "chunk data not followed by CRLF");
                goto out;
            }
            p->state = HP_CHUNK_SIZE;
            continue;
        case HP_TRAILER: {
            size_t n = http_line(b, avail);
            if (n == 0)
                goto out;
            if (n == (size_t)-1) {
                r = http_bad(p, "trailer line too long");
                goto out;
            }
            off += n;
            if (n == 1 || (n == 2 && b[0] == '\r')) {
                p->state = HP_HEAD;
                r = HTTP_DONE;
                goto out;
            }
            continue;
        }
        case HP_BODY_EOF:
        default:
            off = len;
            goto out;
        }
    }
out:
    *used = off;
    return r;
}

http_result http_eof(http_parser *p)
{
    switch (p->state) {
    case HP_BODY_EOF:
        p->state = HP_HEAD;
        return HTTP_DONE;
    case HP_HEAD:
        return HTTP_NEED;
    default:
        p->error = "connection closed inside a response body";
        return HTTP_BAD;
    }
}
