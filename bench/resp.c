/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * resp.c - the NDJSON response line scanner (see resp.h for what it
 * promises and where it can be fooled).
 *
 * Called once per answer on the hot path, so the common case is three
 * memcmp()s and a digit loop; the searching fallback only runs for lines
 * that do not start with `{"id":`.  Never allocates, never reads outside
 * [line, line + len).
 */
#include "resp.h"

#include <stdint.h>
#include <string.h>

static int resp_is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static size_t resp_skip_ws(const char *s, size_t i, size_t n)
{
    while (i < n && resp_is_ws(s[i]))
        i++;
    return i;
}

/* Position just past the closing quote of the string opening at s[i]
 * (which is '"'), or n + 1 when it is not closed. */
static size_t resp_skip_string(const char *s, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return n + 1;
}

/* Finds `key` (with its quotes) followed by optional white space and a
 * colon; returns the position of the value (white space skipped), or n
 * when there is none. */
static size_t resp_find_member(const char *s, size_t n, const char *key)
{
    size_t klen = strlen(key);
    size_t i = 0;
    while (i + klen <= n) {
        const char *hit = memmem(s + i, n - i, key, klen);
        if (!hit)
            return n;
        size_t p = resp_skip_ws(s, (size_t)(hit - s) + klen, n);
        if (p < n && s[p] == ':')
            return resp_skip_ws(s, p + 1, n);
        i = (size_t)(hit - s) + 1;
    }
    return n;
}

/* Reads plain decimal digits at s[p..n) up to a non-digit into *v.
 * Returns 1 when there was at least one and they fit 64 bits and are
 * followed by neither '.', 'e' nor 'E'. */
static int resp_read_u64(const char *s, size_t p, size_t n, uint64_t *v)
{
    uint64_t x = 0;
    size_t i = p;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return 0;
        x = x * 10 + d;
    }
    if (i == p || (i < n && (s[i] == '.' || s[i] == 'e' || s[i] == 'E')))
        return 0;
    *v = x;
    return 1;
}

/* A chunk line [0, last) (last just past its '}'): reads its seq, from
 * the `,"seq":N}` ending, else from a "seq" member anywhere. */
static void resp_read_seq(const char *s, size_t last, resp_line *out)
{
    static const char seq_key[] = ",\"seq\":";
    size_t i = last - 1; /* the '}' */
    while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9')
        i--;
    if (i < last - 1 && i >= sizeof(seq_key) - 1 &&
        memcmp(s + i - (sizeof(seq_key) - 1), seq_key, sizeof(seq_key) - 1) == 0) {
        out->has_seq = resp_read_u64(s, i, last - 1, &out->seq);
        return;
    }
    size_t v = resp_find_member(s, last, "\"seq\"");
    if (v < last)
        out->has_seq = resp_read_u64(s, v, last, &out->seq);
}

/* Reads the id value at s[p]; returns the position after it, or n + 1
 * when it is not a JSON value we recognise. */
static size_t resp_read_id(const char *s, size_t p, size_t n, resp_line *out)
{
    out->id_kind = RESP_ID_OTHER;
    if (p >= n)
        return n + 1;
    char c = s[p];
    if (c >= '0' && c <= '9') {
        uint64_t v = 0;
        int overflow = 0;
        size_t i = p;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            unsigned d = (unsigned)(s[i] - '0');
            if (v > (UINT64_MAX - d) / 10)
                overflow = 1;
            v = v * 10 + d;
        }
        if (i < n && (s[i] == '.' || s[i] == 'e' || s[i] == 'E')) {
            while (i < n && strchr("0123456789.eE+-", s[i]))
                i++;
            return i; /* a non-integer number: an id we never sent */
        }
        if (!overflow) {
            out->id_kind = RESP_ID_INT;
            out->id = v;
        }
        return i;
    }
    if (c == '-') {
        size_t i = p + 1;
        while (i < n && strchr("0123456789.eE+-", s[i]))
            i++;
        return i;
    }
    if (c == '"')
        return resp_skip_string(s, p, n);
    if (n - p >= 4 && memcmp(s + p, "null", 4) == 0)
        return p + 4;
    return n + 1;
}

/* s[p..n) starts with the literal lit. */
static int resp_at(const char *s, size_t p, size_t n, const char *lit, size_t litlen)
{
    return n - p >= litlen && memcmp(s + p, lit, litlen) == 0;
}

/* Sets out->kind to k and returns it. */
static resp_kind resp_is(resp_line *out, resp_kind k)
{
    out->kind = k;
    return k;
}

resp_kind resp_scan(const char *line, size_t len, resp_line *out)
{
    static const char id_key[] = "{\"id\":";
    static const char ok_true[] = ",\"ok\":true";
    static const char ok_false[] = ",\"ok\":false";
    static const char chunk_key[] = ",\"chunk\":";
    static const char hb_true[] = ",\"heartbeat\":true";
    size_t p, end;

    memset(out, 0, sizeof(*out));
    out->kind = RESP_MALFORMED;
    out->id_kind = RESP_ID_OTHER;

    /* the outer braces */
    size_t last = len;
    while (last > 0 && resp_is_ws(line[last - 1]))
        last--;
    size_t first = resp_skip_ws(line, 0, last);
    if (first >= last || line[first] != '{' || line[last - 1] != '}' || last - first < 2)
        return RESP_MALFORMED;

    /* the id: first member (fast), else anywhere */
    if (first == 0 && last >= sizeof(id_key) - 1 && memcmp(line, id_key, sizeof(id_key) - 1) == 0) {
        p = resp_skip_ws(line, sizeof(id_key) - 1, last);
    } else {
        p = resp_skip_ws(line, first + 1, last);
        if (last - p >= 4 && memcmp(line + p, "\"id\"", 4) == 0) {
            p = resp_skip_ws(line, p + 4, last);
            p = p < last && line[p] == ':' ? resp_skip_ws(line, p + 1, last) : last;
        } else {
            p = last;
        }
        if (p >= last)
            p = resp_find_member(line, last, "\"id\"");
        if (p >= last)
            return RESP_MALFORMED;
    }
    end = resp_read_id(line, p, last, out);
    if (end > last)
        return RESP_MALFORMED;

    /* what follows the id (fast), else which members there are */
    int ok;
    if (resp_at(line, end, last, chunk_key, sizeof(chunk_key) - 1)) {
        resp_read_seq(line, last, out);
        return resp_is(out, RESP_CHUNK);
    } else if (resp_at(line, end, last, hb_true, sizeof(hb_true) - 1)) {
        return resp_is(out, RESP_HEARTBEAT);
    } else if (resp_at(line, end, last, ok_true, sizeof(ok_true) - 1)) {
        ok = 1;
    } else if (resp_at(line, end, last, ok_false, sizeof(ok_false) - 1)) {
        ok = 0;
    } else {
        size_t v = resp_find_member(line, last, "\"ok\"");
        if (v + 4 <= last && memcmp(line + v, "true", 4) == 0) {
            ok = 1;
        } else if (v + 5 <= last && memcmp(line + v, "false", 5) == 0) {
            ok = 0;
        } else if (v < last) {
            return RESP_MALFORMED; /* "ok" that is neither true nor false */
        } else if (resp_find_member(line, last, "\"chunk\"") < last) {
            resp_read_seq(line, last, out);
            return resp_is(out, RESP_CHUNK);
        } else {
            v = resp_find_member(line, last, "\"heartbeat\"");
            if (v + 4 <= last && memcmp(line + v, "true", 4) == 0)
                return resp_is(out, RESP_HEARTBEAT);
            return RESP_MALFORMED;
        }
    }
    if (ok) {
        out->kind = RESP_OK;
        return RESP_OK;
    }

    out->kind = RESP_ERROR;
    size_t c = resp_find_member(line, last, "\"code\"");
    if (c < last && line[c] == '"') {
        size_t e = resp_skip_string(line, c, last);
        if (e <= last) {
            out->code = line + c + 1;
            out->code_len = e - c - 2;
        }
    }
    return RESP_ERROR;
}
