/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * evring.c - the ring of the last events and topic patterns (see
 * evring.h).  Invariant: the ring holds seq next_seq - n .. next_seq - 1
 * at indexes head .. head + n - 1 (mod cap), and bytes is the sum of
 * their lengths.  Pure: no clock, no I/O.
 */
#include "evring.h"
#include "ap_alloc.h"

#include <string.h>

void evring_init(evring *r, size_t cap)
{
    memset(r, 0, sizeof(*r));
    r->cap = cap ? cap : 1;
    r->e = ap_calloc(r->cap, sizeof(evring_entry));
    r->next_seq = 1;
}

void evring_free(evring *r)
{
    while (r->n)
        evring_evict(r);
    ap_free(r->e);
    r->e = NULL;
}

uint64_t evring_oldest_seq(const evring *r)
{
    return r->next_seq - r->n;
}

const evring_entry *evring_at(const evring *r, uint64_t seq)
{
    uint64_t oldest = evring_oldest_seq(r);
    if (seq < oldest || seq >= r->next_seq)
        return NULL;
    return &r->e[(r->head + (size_t)(seq - oldest)) % r->cap];
}

int evring_must_evict(const evring *r, size_t len, uint64_t max_bytes)
{
    return r->n > 0 && (r->n == r->cap || r->bytes + len > max_bytes);
}

void evring_evict(evring *r)
{
    if (r->n == 0)
        return;
    evring_entry *e = &r->e[r->head];
    r->bytes -= e->len;
    ap_free(e->text);
    memset(e, 0, sizeof(*e));
    r->head = (r->head + 1) % r->cap;
    r->n--;
}

uint64_t evring_push(evring *r, evring_entry *e)
{
    e->seq = r->next_seq++;
    r->e[(r->head + r->n) % r->cap] = *e;
    r->n++;
    r->bytes += e->len;
    return e->seq;
}

uint64_t evring_first_since(const evring *r, uint64_t since_ms)
{
    for (uint64_t s = evring_oldest_seq(r); s < r->next_seq; s++)
        if (evring_at(r, s)->time_ms >= since_ms)
            return s;
    return r->next_seq;
}

/* ---- topic patterns ---------------------------------------------------- */

static int segment_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
           ch == '-';
}

int evring_pattern_valid(const char *pat, size_t plen)
{
    if (plen == 0 || plen > EVRING_PATTERN_MAX)
        return 0;
    size_t start = 0;
    for (size_t i = 0; i <= plen; i++) {
        if (i < plen && pat[i] != '.')
            continue;
        size_t n = i - start;
        const char *seg = pat + start;
        if (n == 0)
            return 0;
        if (n == 1 && seg[0] == '#') {
            if (i != plen)
                return 0; /* "#" only last */
        } else if (!(n == 1 && seg[0] == '*')) {
            for (size_t k = 0; k < n; k++)
                if (!segment_char(seg[k]))
                    return 0;
        }
        start = i + 1;
    }
    return 1;
}

int evring_topic_match(const char *pat, size_t plen, const char *topic, size_t tlen)
{
    size_t p = 0, t = 0;
    for (;;) {
        size_t pe = p, te = t;
        while (pe < plen && pat[pe] != '.')
            pe++;
        if (pe - p == 1 && pat[p] == '#')
            return t < tlen; /* the rest: one segment or more */
        while (te < tlen && topic[te] != '.')
            te++;
        if (!(pe - p == 1 && pat[p] == '*') && (pe - p != te - t || memcmp(pat + p, topic + t, pe - p) != 0))
            return 0;
        int pat_end = pe >= plen, topic_end = te >= tlen;
        if (pat_end || topic_end)
            return pat_end && topic_end;
        p = pe + 1;
        t = te + 1;
    }
}
