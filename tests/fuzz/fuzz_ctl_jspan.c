/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_ctl_jspan.c - libFuzzer target for agentpoolctl's spans of JSON
 * values (ctl/jspan.c): cJSON reads the values, jspan.c steps over the
 * punctuation between them, and that stepping is what is fuzzed here.
 *
 * Each input is JSON text (or anything).  Every span handed to jspan is
 * first copied into a heap block of exactly its size, so ASan reports a
 * read outside it, which the header promises never happens.  On every
 * input: jspan_member (for fixed names and the names cJSON finds in the
 * text) either fails with its outputs cleared or returns a non-empty
 * span inside the object's whose text cJSON parses, alone, to a value
 * equal to the tree returned; jspan_next walks forward only, inside the
 * array's span, and stays ended; jspan_u64 agrees with a plain-digits
 * reference.
 *
 * Where the text is strict JSON (pool/path/scan.c's scan_json_value) that
 * cJSON also parses (it refuses numbers over 63 characters), the answers
 * must be exact, recursively for every nested value: ref_* (a walker
 * over the valid text, tests/fuzz/refjson.h) lists the members or
 * elements and their spans; jspan_member must return, for every name,
 * the span of the first member whose name cJSON unescapes to it (and its
 * value, as cJSON_GetObjectItemCaseSensitive sees it), and fail for
 * names that are absent; jspan_next must return exactly the elements.
 *
 * ctl/sline.c (answer, chunk or heartbeat) is fuzzed here too, since it
 * is built on jspan: on any bytes its chunk span lies inside the line,
 * sline_classify_start agrees with sline_classify on "ok", and calls it
 * a chunk only where sline_classify finds a chunk or a failed answer
 * (three starts of the input are tried, each in its own exact block);
 * on valid JSON, sline_classify must give what cJSON's tree says.
 */
#include "jspan.h"
#include "scan.h"
#include "sline.h"
#include "ap_common.h"

#include "refjson.h"

#include <cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "fuzz_ctl_jspan: check failed at line %d: %s\n", __LINE__, \
                    #cond);                                                             \
            abort();                                                                    \
        }                                                                               \
    } while (0)

/* Names always looked up: agentpoolctl's own, the empty one, and one
 * that only an escaped spelling can produce. */
static const char *const fixed_keys[] = {"ok", "id", "type", "data", "result", "error",
                                         "code", "records", "chunk", "heartbeat", "found", "",
                                         "o\\u006b"};

/* ---- the reference: children of a value known to be valid JSON ---------- */

typedef struct {
    size_t voff, vlen; /* the value */
} ref_child;

/* The children of the value in s (white space around allowed): returns
 * how many, all stored in *out (malloc'ed, caller frees); *kind is the
 * value's first byte. */
static size_t ref_children(const char *s, size_t n, ref_child **out, char *kind)
{
    size_t i = refjson_ws(s, n, 0), k = 0, cap = 8;
    ref_child *c = malloc(cap * sizeof(*c));
    CHECK(c != NULL);
    *kind = s[i];
    *out = c;
    if (*kind != '{' && *kind != '[')
        return 0;
    char close = *kind == '{' ? '}' : ']';
    i = refjson_ws(s, n, i + 1);
    while (s[i] != close) {
        ref_child one;
        if (close == '}') {
            i = refjson_skip(s, n, i);
            i = refjson_ws(s, n, refjson_ws(s, n, i) + 1);
        }
        one.voff = i;
        i = refjson_skip(s, n, i);
        one.vlen = i - one.voff;
        if (k == cap) {
            cap *= 2;
            c = realloc(c, cap * sizeof(*c));
            CHECK(c != NULL);
            *out = c;
        }
        c[k++] = one;
        i = refjson_ws(s, n, i);
        if (s[i] == ',')
            i = refjson_ws(s, n, i + 1);
    }
    return k;
}

/* ---- helpers ------------------------------------------------------------ */

/* A heap copy of exactly n bytes, so ASan sees any read past it. */
static char *exact_copy(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    CHECK(p != NULL);
    if (n)
        memcpy(p, s, n);
    return p;
}

static int in_span(jspan outer, jspan inner)
{
    return inner.p != NULL && inner.p >= outer.p && inner.len <= outer.len &&
           (size_t)(inner.p - outer.p) <= outer.len - inner.len;
}

/* jspan_u64's promise, the plain way. */
static int ref_u64(const char *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 20)
        return AP_ERR;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return AP_ERR;
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return AP_ERR;
        v = v * 10 + d;
    }
    *out = v;
    return AP_OK;
}

/* Two trees print the same (cJSON_Compare says an infinity, which
 * cJSON reads 1e999 as, differs from itself). */
static int same_tree(const cJSON *a, const cJSON *b)
{
    char *pa = cJSON_PrintUnformatted(a), *pb = cJSON_PrintUnformatted(b);
    CHECK(pa != NULL && pb != NULL);
    int same = strcmp(pa, pb) == 0;
    cJSON_free(pa);
    cJSON_free(pb);
    return same;
}

/* A value span and its tree agree: cJSON reads the span alone to an
 * equal value. */
static void check_tree(jspan v, const cJSON *tree)
{
    CHECK(tree != NULL && v.p != NULL && v.len > 0);
    char *z = malloc(v.len + 1);
    CHECK(z != NULL);
    memcpy(z, v.p, v.len);
    z[v.len] = '\0';
    cJSON *again = cJSON_ParseWithLength(z, v.len + 1);
    CHECK(again != NULL);
    CHECK(same_tree(again, tree));
    cJSON_Delete(again);
    free(z);
}

/* The checks that hold for any bytes.  Returns how many elements
 * jspan_next found. */
static size_t check_any(jspan sp, const char *const *keys, size_t nkeys)
{
    jspan out;
    cJSON *tree;
    for (size_t k = 0; k < nkeys; k++) {
        out.p = sp.p; /* must be cleared on failure */
        out.len = 12345;
        tree = (cJSON *)&out;
        int r = jspan_member(sp, keys[k], &out, &tree);
        if (r == AP_OK) {
            CHECK(in_span(sp, out));
            check_tree(out, tree);
            cJSON_Delete(tree);
        } else {
            CHECK(r == AP_ERR && out.p == NULL && out.len == 0 && tree == NULL);
        }
        r = jspan_member(sp, keys[k], &out, NULL);
        CHECK(r == AP_OK ? in_span(sp, out) : out.p == NULL);
    }

    size_t cursor = 0, prev = 0, count = 0;
    jspan e;
    while (jspan_next(sp, &cursor, &e, &tree)) {
        CHECK(count <= sp.len);
        CHECK(in_span(sp, e));
        check_tree(e, tree);
        cJSON_Delete(tree);
        CHECK((size_t)(e.p - sp.p) >= prev);
        CHECK(cursor == (size_t)(e.p - sp.p) + e.len && cursor > prev && cursor < sp.len);
        prev = cursor;
        count++;
    }
    CHECK(tree == NULL && cursor == sp.len);
    /* once ended, it stays ended */
    CHECK(jspan_next(sp, &cursor, &e, NULL) == 0);

    uint64_t v = 0, w = 0;
    int rv = jspan_u64(sp.p, sp.len, &v), rw = sp.p ? ref_u64(sp.p, sp.len, &w) : AP_ERR;
    CHECK(rv == rw);
    if (rv == AP_OK)
        CHECK(v == w);
    return count;
}

/* The exact checks on valid JSON text s[0..n), against ref_* and the
 * cJSON node j parsed from the same text. */
static void check_valid(const char *text, size_t n, const cJSON *j)
{
    char *s = exact_copy(text, n);
    jspan sp = {s, n};
    ref_child *ch;
    char kind;
    size_t nch = ref_children(s, n, &ch, &kind);

    if (kind == '{' || kind == '[')
        CHECK((size_t)cJSON_GetArraySize(j) == nch);

    /* the names to look up: the fixed ones and every one cJSON read */
    const char **keys = malloc((AP_ARRAY_LEN(fixed_keys) + nch) * sizeof(*keys));
    CHECK(keys != NULL);
    size_t nkeys = 0;
    for (size_t k = 0; k < AP_ARRAY_LEN(fixed_keys); k++)
        keys[nkeys++] = fixed_keys[k];
    const cJSON *jc;
    if (kind == '{')
        for (jc = j->child; jc; jc = jc->next)
            keys[nkeys++] = jc->string;

    check_any(sp, keys, nkeys);

    /* jspan_member: the first member cJSON names so, exactly, or nothing */
    for (size_t k = 0; k < nkeys; k++) {
        jspan out, want = {NULL, 0};
        size_t c = 0;
        for (jc = kind == '{' ? j->child : NULL; jc; jc = jc->next, c++)
            if (strcmp(jc->string, keys[k]) == 0) {
                want = (jspan){s + ch[c].voff, ch[c].vlen};
                break;
            }
        cJSON *tree;
        int r = jspan_member(sp, keys[k], &out, &tree);
        if (want.p == NULL) {
            CHECK(r == AP_ERR);
        } else {
            CHECK(r == AP_OK && out.p == want.p && out.len == want.len);
            CHECK(same_tree(tree, cJSON_GetObjectItemCaseSensitive(j, keys[k])));
            cJSON_Delete(tree);
        }
    }

    /* jspan_next: exactly the elements, in order */
    size_t cursor = 0, count = 0;
    jspan e;
    while (jspan_next(sp, &cursor, &e, NULL)) {
        CHECK(kind == '[' && count < nch);
        CHECK(e.p == s + ch[count].voff && e.len == ch[count].vlen);
        count++;
    }
    CHECK(count == (kind == '[' ? nch : 0));

    /* and every child the same way, on its own */
    jc = j->child;
    for (size_t k = 0; k < nch; k++, jc = jc->next)
        check_valid(s + ch[k].voff, ch[k].vlen, jc);

    free(keys);
    free(ch);
    free(s);
}

/* ---- sline ------------------------------------------------------------- */

/* On any bytes: spans inside the line, the start agrees with the whole. */
static void check_sline_any(const char *text, size_t size)
{
    char *c = exact_copy(text, size);
    jspan v;
    sline_kind k = sline_classify(c, size, &v);
    if (k == SLINE_CHUNK)
        CHECK(in_span((jspan){c, size}, v) && v.len > 0);
    else
        CHECK(v.p == NULL && v.len == 0);
    CHECK(k == sline_classify(c, size, NULL));
    free(c);
    /* the starts of the line, as an over-long line would be seen: three
     * lengths spread over it */
    for (size_t j = 1; j <= 3; j++) {
        size_t n = size * j / 3;
        char *p = exact_copy(text, n);
        sline_kind ks = sline_classify_start(p, n);
        sline_kind kw = sline_classify(p, n, NULL);
        CHECK((ks == SLINE_ANSWER_OK) == (kw == SLINE_ANSWER_OK));
        if (ks == SLINE_CHUNK)
            CHECK(kw == SLINE_CHUNK || kw == SLINE_ANSWER_FAILED);
        CHECK(ks != SLINE_HEARTBEAT);
        free(p);
    }
}

/* On valid JSON parsed by cJSON into root: exactly what the tree says. */
static void check_sline_valid(const char *text, size_t size, const cJSON *root)
{
    int obj = cJSON_IsObject(root);
    const cJSON *ok = obj ? cJSON_GetObjectItemCaseSensitive(root, "ok") : NULL;
    const cJSON *id = obj ? cJSON_GetObjectItemCaseSensitive(root, "id") : NULL;
    const cJSON *chunk = obj ? cJSON_GetObjectItemCaseSensitive(root, "chunk") : NULL;
    const cJSON *hb = obj ? cJSON_GetObjectItemCaseSensitive(root, "heartbeat") : NULL;
    sline_kind want = SLINE_ANSWER_FAILED;
    if (ok)
        want = cJSON_IsTrue(ok) ? SLINE_ANSWER_OK : SLINE_ANSWER_FAILED;
    else if (id && chunk)
        want = SLINE_CHUNK;
    else if (id && cJSON_IsTrue(hb))
        want = SLINE_HEARTBEAT;
    char *c = exact_copy(text, size);
    jspan v;
    CHECK(sline_classify(c, size, &v) == want);
    if (want == SLINE_CHUNK) {
        cJSON *t = cJSON_ParseWithLength(v.p, v.len);
        CHECK(same_tree(t, chunk));
        cJSON_Delete(t);
    }
    free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;

    /* any bytes: the text itself and every span jspan hands back */
    char *whole_copy = exact_copy(text, size);
    jspan whole = {whole_copy, size};
    check_any(whole, fixed_keys, AP_ARRAY_LEN(fixed_keys));
    for (size_t k = 0; k < AP_ARRAY_LEN(fixed_keys); k++) {
        jspan v;
        if (jspan_member(whole, fixed_keys[k], &v, NULL) == AP_OK) {
            char *c = exact_copy(v.p, v.len);
            check_any((jspan){c, v.len}, fixed_keys, AP_ARRAY_LEN(fixed_keys));
            free(c);
        }
    }
    size_t cursor = 0;
    jspan e;
    for (int k = 0; k < 16 && jspan_next(whole, &cursor, &e, NULL); k++) {
        char *c = exact_copy(e.p, e.len);
        check_any((jspan){c, e.len}, fixed_keys, AP_ARRAY_LEN(fixed_keys));
        free(c);
    }
    free(whole_copy);
    jspan none = {NULL, 0}, out;
    CHECK(jspan_member(none, "ok", &out, NULL) == AP_ERR && out.p == NULL);
    cursor = 0;
    CHECK(jspan_next(none, &cursor, &e, NULL) == 0);
    check_sline_any(text, size);

    /* strict JSON that cJSON reads too: exact answers */
    if (scan_json_value(text, size, AP_MAX_JSON_DEPTH, 0, NULL, NULL) != AP_OK)
        return 0;
    char *z = malloc(size + 1);
    CHECK(z != NULL);
    memcpy(z, text, size);
    z[size] = '\0';
    cJSON *root = cJSON_ParseWithLength(z, size + 1);
    if (root != NULL) {
        check_valid(text, size, root);
        check_sline_valid(text, size, root);
    }
    cJSON_Delete(root);
    free(z);
    return 0;
}
