/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_bench_resp.c - libFuzzer target for agentpool-bench's NDJSON
 * answer scanner (bench/resp.c).
 *
 * Each input is one response line.  Checked on every input: the result
 * is one of the five kinds and equals out->kind; only a chunk carries a
 * seq; only an error carries a
 * code, and that code lies inside the line between two real quotes with
 * no unescaped quote in it; a line that is not malformed is {...} once
 * trimmed; and white space around the line changes nothing but the
 * code's position (the kind, and for a line that is not malformed the
 * id: the fast path for `{"id":` at byte 0 and the general path must
 * agree, and for a chunk its seq).
 *
 * Where the line is strict JSON (pool/path/scan.c's scan_json_value) and is
 * not one of the cases the header says can fool the scanner (a pattern
 * "id", "ok", "code", "chunk", "heartbeat" or "seq" followed by ':'
 * anywhere but as a top-level member name, or such a member twice), the
 * result must match a reference computed from the top-level members
 * found by ref_*, a small walker over the valid text: id, ok, code,
 * chunk, heartbeat and seq as the header describes (the member right
 * after the id first, then the members wherever they are).
 * Ids that are true, false, objects or arrays are left unjudged (the
 * header does not say).  Any disagreement aborts.
 */
#include "resp.h"
#include "scan.h"
#include "ap_common.h"

#include "refjson.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "fuzz_bench_resp: check failed at line %d: %s\n", __LINE__, \
                    #cond);                                                              \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* ---- the reference: top-level members of text known to be valid JSON ---- */

typedef struct {
    size_t koff, klen; /* the member name, quotes included */
    size_t voff, vlen; /* its value */
} ref_member;

/* The members of the top-level object (at most cap; returns how many, or
 * -1 when the value is not an object). */
static int ref_members(const char *s, size_t n, ref_member *m, int cap)
{
    int k = 0;
    size_t i = refjson_ws(s, n, 0);
    if (s[i] != '{')
        return -1;
    i = refjson_ws(s, n, i + 1);
    while (s[i] != '}') {
        size_t key = i;
        i = refjson_skip(s, n, i);
        size_t klen = i - key;
        i = refjson_ws(s, n, refjson_ws(s, n, i) + 1);
        size_t v = i;
        i = refjson_skip(s, n, i);
        if (k < cap)
            m[k] = (ref_member){key, klen, v, i - v};
        k++;
        i = refjson_ws(s, n, i);
        if (s[i] == ',')
            i = refjson_ws(s, n, i + 1);
    }
    return k;
}

/* Is every occurrence of pat followed by ':' (white space between) a
 * top-level member name, and is there at most one?  Sets *which to the
 * member's index or -1. */
static int ref_unambiguous(const char *s, size_t n, const ref_member *m, int nm, const char *pat,
                           int *which)
{
    size_t pl = strlen(pat);
    int found = 0;
    *which = -1;
    for (size_t i = 0; i + pl <= n; i++) {
        if (memcmp(s + i, pat, pl) != 0)
            continue;
        size_t j = refjson_ws(s, n, i + pl);
        if (j >= n || s[j] != ':')
            continue;
        int k;
        for (k = 0; k < nm; k++)
            if (m[k].koff == i && m[k].klen == pl)
                break;
        if (k == nm || found)
            return 0;
        found = 1;
        *which = k;
    }
    return 1;
}

typedef struct {
    int judged; /* 0: the reference has no opinion */
    resp_kind kind;
    resp_id_kind id_kind;
    uint64_t id;
    size_t code_off, code_len; /* code_len == SIZE_MAX: no code */
    int has_seq;
    uint64_t seq;
} ref_result;

/* Is member m's name pat, with the ':' right after it? */
static int ref_named(const char *s, const ref_member *m, const char *pat)
{
    size_t pl = strlen(pat);
    return m->klen == pl && memcmp(s + m->koff, pat, pl) == 0 && s[m->koff + pl] == ':';
}

/* A chunk's seq: member seq (or -1) when its value is plain digits that
 * fit 64 bits. */
static void ref_seq(const char *s, const ref_member *m, int seq, ref_result *r)
{
    if (seq < 0)
        return;
    const char *v = s + m[seq].voff;
    size_t vl = m[seq].vlen;
    uint64_t x = 0;
    for (size_t k = 0; k < vl; k++) {
        if (v[k] < '0' || v[k] > '9')
            return;
        uint64_t d = (uint64_t)(v[k] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return;
        x = x * 10 + d;
    }
    r->has_seq = 1;
    r->seq = x;
}

static void ref_scan(const char *s, size_t n, ref_result *r)
{
    ref_member m[64];
    int id, ok, code, chunk, hb, seq;
    int nm = ref_members(s, n, m, (int)AP_ARRAY_LEN(m));

    memset(r, 0, sizeof(*r));
    r->code_len = SIZE_MAX;
    r->kind = RESP_MALFORMED;
    if (nm < 0) {
        r->judged = 1;
        return;
    }
    if (nm > (int)AP_ARRAY_LEN(m) || !ref_unambiguous(s, n, m, nm, "\"id\"", &id) ||
        !ref_unambiguous(s, n, m, nm, "\"ok\"", &ok) ||
        !ref_unambiguous(s, n, m, nm, "\"code\"", &code) ||
        !ref_unambiguous(s, n, m, nm, "\"chunk\"", &chunk) ||
        !ref_unambiguous(s, n, m, nm, "\"heartbeat\"", &hb) ||
        !ref_unambiguous(s, n, m, nm, "\"seq\"", &seq))
        return;
    r->judged = 1;
    if (id < 0)
        return;

    const char *v = s + m[id].voff;
    size_t vl = m[id].vlen;
    r->id_kind = RESP_ID_OTHER;
    if (v[0] >= '0' && v[0] <= '9') {
        if (!memchr(v, '.', vl) && !memchr(v, 'e', vl) && !memchr(v, 'E', vl)) {
            uint64_t x = 0;
            int over = 0;
            for (size_t k = 0; k < vl; k++) {
                uint64_t d = (uint64_t)(v[k] - '0');
                if (x > (UINT64_MAX - d) / 10)
                    over = 1;
                x = x * 10 + d;
            }
            if (!over) {
                r->id_kind = RESP_ID_INT;
                r->id = x;
            }
        }
    } else if (v[0] != '-' && v[0] != '"' && v[0] != 'n') {
        r->judged = 0; /* true, false, {...}, [...]: unspecified */
        return;
    }

    /* the member right after the id, with nothing between them */
    const ref_member *next = id + 1 < nm && m[id + 1].koff == m[id].voff + m[id].vlen + 1 ? &m[id + 1] : NULL;
    if (next && ref_named(s, next, "\"chunk\"")) {
        r->kind = RESP_CHUNK;
        ref_seq(s, m, seq, r);
        return;
    }
    if (next && ref_named(s, next, "\"heartbeat\"") && next->voff == next->koff + next->klen + 1 &&
        memcmp(s + next->voff, "true", 4) == 0) {
        r->kind = RESP_HEARTBEAT;
        return;
    }
    if (ok < 0) {
        if (chunk >= 0) {
            r->kind = RESP_CHUNK;
            ref_seq(s, m, seq, r);
        } else if (hb >= 0 && m[hb].vlen == 4 && memcmp(s + m[hb].voff, "true", 4) == 0) {
            r->kind = RESP_HEARTBEAT;
        }
        return;
    }
    const char *o = s + m[ok].voff;
    if (m[ok].vlen == 4 && memcmp(o, "true", 4) == 0) {
        r->kind = RESP_OK;
    } else if (m[ok].vlen == 5 && memcmp(o, "false", 5) == 0) {
        r->kind = RESP_ERROR;
        if (code >= 0 && s[m[code].voff] == '"') {
            r->code_off = m[code].voff + 1;
            r->code_len = m[code].vlen - 2;
        }
    }
}

/* ---- the checks ---------------------------------------------------------- */

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The invariants of one scan of s[0..n). */
static void check_line(const char *s, size_t n, const resp_line *r, resp_kind k)
{
    CHECK(k == RESP_OK || k == RESP_ERROR || k == RESP_MALFORMED || k == RESP_CHUNK ||
          k == RESP_HEARTBEAT);
    CHECK(r->kind == k);
    if (k != RESP_CHUNK)
        CHECK(r->has_seq == 0 && r->seq == 0);
    CHECK(r->id_kind == RESP_ID_INT || r->id_kind == RESP_ID_OTHER);
    if (k != RESP_ERROR) {
        CHECK(r->code == NULL && r->code_len == 0);
    } else if (r->code == NULL) {
        CHECK(r->code_len == 0);
    } else {
        CHECK(r->code > s && r->code <= s + n);
        size_t off = (size_t)(r->code - s);
        CHECK(r->code_len < n - off);
        CHECK(s[off - 1] == '"' && s[off + r->code_len] == '"');
        for (size_t i = off; i < off + r->code_len; i++) {
            CHECK(s[i] != '"');
            if (s[i] == '\\')
                i++; /* the escaped byte, still inside the code */
        }
    }
    if (k != RESP_MALFORMED) {
        size_t a = 0, b = n;
        while (a < n && is_ws(s[a]))
            a++;
        while (b > a && is_ws(s[b - 1]))
            b--;
        CHECK(b - a >= 2 && s[a] == '{' && s[b - 1] == '}');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *line = (const char *)data;
    resp_line r, w;

    resp_kind k = resp_scan(line, size, &r);
    check_line(line, size, &r, k);

    /* the same line with white space around it: one more byte in front */
    char *wrapped = malloc(size + 3);
    CHECK(wrapped != NULL);
    wrapped[0] = ' ';
    if (size)
        memcpy(wrapped + 1, line, size);
    wrapped[size + 1] = '\t';
    wrapped[size + 2] = '\r';
    resp_kind wk = resp_scan(wrapped, size + 3, &w);
    check_line(wrapped, size + 3, &w, wk);
    if (wk != k || (k != RESP_MALFORMED && w.id_kind != r.id_kind)) {
        fprintf(stderr, "fuzz_bench_resp: kind %d, id kind %d as given; kind %d, id kind %d "
                        "with white space around\n", (int)k, (int)r.id_kind, (int)wk, (int)w.id_kind);
        abort();
    }
    if (k != RESP_MALFORMED && r.id_kind == RESP_ID_INT)
        CHECK(w.id == r.id);
    CHECK(w.has_seq == r.has_seq && w.seq == r.seq);
    CHECK((w.code == NULL) == (r.code == NULL) && w.code_len == r.code_len);
    if (r.code)
        CHECK(w.code - wrapped == r.code - line + 1);
    free(wrapped);

    /* the reference, on strict JSON */
    if (scan_json_value(line, size, AP_MAX_JSON_DEPTH, 0, NULL, NULL) == AP_OK) {
        ref_result want;
        ref_scan(line, size, &want);
        if (want.judged) {
            if (k != want.kind) {
                fprintf(stderr, "fuzz_bench_resp: kind %d, reference %d\n", (int)k, (int)want.kind);
                abort();
            }
            if (k != RESP_MALFORMED) {
                CHECK(r.id_kind == want.id_kind);
                if (r.id_kind == RESP_ID_INT)
                    CHECK(r.id == want.id);
            }
            if (k == RESP_CHUNK && (r.has_seq != want.has_seq || r.seq != want.seq)) {
                fprintf(stderr, "fuzz_bench_resp: seq %d/%llu, reference %d/%llu\n", r.has_seq,
                        (unsigned long long)r.seq, want.has_seq, (unsigned long long)want.seq);
                abort();
            }
            if (k == RESP_ERROR) {
                if (want.code_len == SIZE_MAX) {
                    CHECK(r.code == NULL);
                } else {
                    CHECK(r.code == line + want.code_off);
                    CHECK(r.code_len == want.code_len);
                }
            }
        }
    }
    return 0;
}
