/*
 * fuzz_ctl_jraw.c - libFuzzer target for agentpoolctl's tree-less JSON
 * reader (ctl/jraw.c).
 *
 * Each input is JSON text (or anything).  Every span handed to jraw is
 * first copied into a heap block of exactly its size, so ASan reports a
 * read outside it: the header promises that even for garbage.  On every
 * input: jraw_member (for fixed names and the names written in the text)
 * either fails with *out cleared or returns a non-empty span inside the
 * object's; jraw_next walks forward only, inside the array's span, and
 * ends; jraw_str copies a NUL-terminated prefix of what is between the
 * quotes; jraw_u64 agrees with a plain-digits reference (at most 20
 * digits: see ref_u64).
 *
 * Where the text is strict JSON (pool/scan.c's scan_json_value), the
 * answers must be exact: ref_* (a walker over the valid text) lists the
 * members or elements of the value, cJSON parses the same text, and the
 * two are first checked against each other (same count, same names where
 * written without escapes, same types, same strings and numbers); then
 * jraw_member must return, for each name written without escapes, the
 * very span of the value of its last occurrence (and fail for names
 * that are absent), jraw_next must return exactly the elements in order,
 * jraw_is/jraw_str/jraw_u64 must agree with cJSON on every child, and
 * all of this recursively for every nested value.
 */
#include "jraw.h"
#include "scan.h"
#include "ap_common.h"

#include "refjson.h"

#include <cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "fuzz_ctl_jraw: check failed at line %d: %s\n", __LINE__, \
                    #cond);                                                            \
            abort();                                                                   \
        }                                                                              \
    } while (0)

/* Names always looked up (agentpoolctl's own), and one that is never a
 * member written plainly. */
static const char *const fixed_keys[] = {"ok", "id", "type", "data", "result", "error",
                                         "code", "records", "", "o\\u006b"};

/* ---- the reference: children of a value known to be valid JSON ---------- */

typedef struct {
    size_t koff, klen; /* member name with quotes (klen 0 for an element) */
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
        ref_child one = {0, 0, 0, 0};
        if (close == '}') {
            one.koff = i;
            i = refjson_skip(s, n, i);
            one.klen = i - one.koff;
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

static int in_span(jraw_span outer, jraw_span inner)
{
    return inner.p != NULL && inner.p >= outer.p && inner.len <= outer.len &&
           (size_t)(inner.p - outer.p) <= outer.len - inner.len;
}

/* jraw_u64's promise, the plain way.  One liberty taken from the code:
 * more than 20 digits is refused even when leading zeros would let the
 * value fit (JSON never writes leading zeros). */
static int ref_u64(jraw_span s, uint64_t *out)
{
    uint64_t v = 0;
    if (s.len == 0 || s.len > 20)
        return AP_ERR;
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return AP_ERR;
        uint64_t d = (uint64_t)(s.p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return AP_ERR;
        v = v * 10 + d;
    }
    *out = v;
    return AP_OK;
}

/* Checks jraw_str, jraw_u64 and jraw_is on a span, whatever it holds. */
static void check_scalars(jraw_span s)
{
    char small[8], big[256];
    uint64_t v = 0, w = 0;

    int rv = jraw_u64(s, &v), rw = ref_u64(s, &w);
    CHECK(rv == rw);
    if (rv == AP_OK)
        CHECK(v == w);

    int quoted = s.p != NULL && s.len >= 2 && s.p[0] == '"' && s.p[s.len - 1] == '"';
    memset(small, 'x', sizeof(small));
    int r = jraw_str(s, small, sizeof(small));
    CHECK(r == (quoted ? AP_OK : AP_ERR));
    CHECK(memchr(small, '\0', sizeof(small)) != NULL);
    if (r == AP_OK) {
        size_t want = s.len - 2 < sizeof(small) - 1 ? s.len - 2 : sizeof(small) - 1;
        CHECK(memcmp(small, s.p + 1, want) == 0 && small[want] == '\0');
    } else {
        CHECK(small[0] == '\0');
    }
    r = jraw_str(s, big, sizeof(big));
    CHECK(r == (quoted ? AP_OK : AP_ERR));
    CHECK(jraw_str(s, big, 0) == AP_ERR);

    CHECK(jraw_is(s, "true") == (s.p && s.len == 4 && memcmp(s.p, "true", 4) == 0));
    CHECK(jraw_is(s, "null") == (s.p && s.len == 4 && memcmp(s.p, "null", 4) == 0));
}

/* The structural checks that hold for any bytes.  Returns how many
 * elements jraw_next found. */
static size_t check_any(jraw_span sp, const char *const *keys, size_t nkeys)
{
    jraw_span out;
    for (size_t k = 0; k < nkeys; k++) {
        out.p = sp.p; /* must be cleared on failure */
        out.len = 12345;
        int r = jraw_member(sp, keys[k], &out);
        if (r == AP_OK) {
            CHECK(in_span(sp, out) && out.len > 0);
        } else {
            CHECK(r == AP_ERR && out.p == NULL && out.len == 0);
        }
    }

    size_t cursor = 0, prev = 0, count = 0;
    jraw_span e;
    while (jraw_next(sp, &cursor, &e)) {
        CHECK(count <= sp.len);
        CHECK(in_span(sp, e) && e.len > 0);
        CHECK((size_t)(e.p - sp.p) >= prev);
        CHECK(cursor == (size_t)(e.p - sp.p) + e.len && cursor > prev);
        prev = cursor;
        count++;
    }
    CHECK(cursor <= sp.len);
    /* once ended, it stays ended */
    CHECK(jraw_next(sp, &cursor, &e) == 0);
    check_scalars(sp);
    return count;
}

/* The exact checks on valid JSON text s[0..n), against ref_* and the
 * cJSON node j parsed from the same text. */
static void check_valid(const char *text, size_t n, const cJSON *j)
{
    char *s = exact_copy(text, n);
    jraw_span sp = {s, n};
    ref_child *ch;
    char kind;
    size_t nch = ref_children(s, n, &ch, &kind);

    /* the walker and cJSON agree on what the value is */
    switch (kind) {
    case '{': CHECK(cJSON_IsObject(j)); break;
    case '[': CHECK(cJSON_IsArray(j)); break;
    case '"': CHECK(cJSON_IsString(j)); break;
    case 't': CHECK(cJSON_IsTrue(j)); break;
    case 'f': CHECK(cJSON_IsFalse(j)); break;
    case 'n': CHECK(cJSON_IsNull(j)); break;
    default: CHECK(cJSON_IsNumber(j)); break;
    }
    if (kind == '{' || kind == '[')
        CHECK((size_t)cJSON_GetArraySize(j) == nch);

    /* the names to look up: the fixed ones and every plain one written */
    const char **keys = malloc((AP_ARRAY_LEN(fixed_keys) + nch) * sizeof(*keys));
    char **owned = malloc((nch ? nch : 1) * sizeof(*owned));
    CHECK(keys != NULL && owned != NULL);
    size_t nkeys = 0, nowned = 0;
    for (size_t k = 0; k < AP_ARRAY_LEN(fixed_keys); k++)
        keys[nkeys++] = fixed_keys[k];
    const cJSON *jc = j->child;
    for (size_t k = 0; k < nch; k++, jc = jc->next) {
        CHECK(jc != NULL);
        if (kind == '{') {
            const char *name = s + ch[k].koff + 1;
            size_t nlen = ch[k].klen - 2;
            if (!memchr(name, '\\', nlen)) {
                /* written plainly: cJSON must have the same name */
                CHECK(jc->string && strlen(jc->string) == nlen &&
                      memcmp(jc->string, name, nlen) == 0);
                owned[nowned] = malloc(nlen + 1);
                CHECK(owned[nowned] != NULL);
                memcpy(owned[nowned], name, nlen);
                owned[nowned][nlen] = '\0';
                keys[nkeys++] = owned[nowned++];
            }
        }
        /* the child's scalars against cJSON */
        jraw_span v = {s + ch[k].voff, ch[k].vlen};
        uint64_t u;
        if (jraw_u64(v, &u) == AP_OK)
            CHECK(cJSON_IsNumber(jc) && (double)u == jc->valuedouble);
        CHECK(jraw_is(v, "true") == cJSON_IsTrue(jc));
        CHECK(jraw_is(v, "false") == cJSON_IsFalse(jc));
        CHECK(jraw_is(v, "null") == cJSON_IsNull(jc));
        if (cJSON_IsString(jc) && !memchr(v.p, '\\', v.len)) {
            size_t cap = v.len; /* room for the text and its NUL */
            char *buf = malloc(cap);
            CHECK(buf != NULL);
            CHECK(jraw_str(v, buf, cap) == AP_OK);
            CHECK(strcmp(buf, jc->valuestring) == 0);
            free(buf);
        }
    }
    CHECK(jc == NULL);

    check_any(sp, keys, nkeys);

    /* jraw_member: the last occurrence, exactly, or nothing */
    for (size_t k = 0; k < nkeys; k++) {
        jraw_span out, want = {NULL, 0};
        size_t klen = strlen(keys[k]);
        for (size_t c = 0; kind == '{' && c < nch; c++)
            if (ch[c].klen - 2 == klen && memcmp(s + ch[c].koff + 1, keys[k], klen) == 0)
                want = (jraw_span){s + ch[c].voff, ch[c].vlen};
        int r = jraw_member(sp, keys[k], &out);
        if (want.p == NULL) {
            CHECK(r == AP_ERR);
        } else {
            CHECK(r == AP_OK && out.p == want.p && out.len == want.len);
        }
    }

    /* jraw_next: exactly the elements, in order */
    size_t cursor = 0, count = 0;
    jraw_span e;
    while (jraw_next(sp, &cursor, &e)) {
        CHECK(kind == '[' && count < nch);
        CHECK(e.p == s + ch[count].voff && e.len == ch[count].vlen);
        count++;
    }
    CHECK(count == (kind == '[' ? nch : 0));

    /* and every child the same way, on its own */
    jc = j->child;
    for (size_t k = 0; k < nch; k++, jc = jc->next)
        check_valid(s + ch[k].voff, ch[k].vlen, jc);

    for (size_t k = 0; k < nowned; k++)
        free(owned[k]);
    free(owned);
    free(keys);
    free(ch);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;

    /* any bytes: the text itself and every span jraw hands back */
    jraw_span whole = {text, size};
    check_any(whole, fixed_keys, AP_ARRAY_LEN(fixed_keys));
    const char *names[AP_ARRAY_LEN(fixed_keys)];
    for (size_t k = 0; k < AP_ARRAY_LEN(fixed_keys); k++)
        names[k] = fixed_keys[k];
    for (size_t k = 0; k < AP_ARRAY_LEN(fixed_keys); k++) {
        jraw_span v;
        if (jraw_member(whole, fixed_keys[k], &v) == AP_OK) {
            char *c = exact_copy(v.p, v.len);
            check_any((jraw_span){c, v.len}, names, AP_ARRAY_LEN(names));
            free(c);
        }
    }
    size_t cursor = 0;
    jraw_span e;
    for (int k = 0; k < 16 && jraw_next(whole, &cursor, &e); k++) {
        char *c = exact_copy(e.p, e.len);
        check_any((jraw_span){c, e.len}, names, AP_ARRAY_LEN(names));
        free(c);
    }
    jraw_span none = {NULL, 0}, out;
    CHECK(jraw_member(none, "ok", &out) == AP_ERR && out.p == NULL);
    cursor = 0;
    CHECK(jraw_next(none, &cursor, &e) == 0);

    /* strict JSON: exact answers, checked against cJSON */
    if (scan_json_value(text, size, AP_MAX_JSON_DEPTH, 0, NULL, NULL) != AP_OK)
        return 0;
    char *z = malloc(size + 1);
    CHECK(z != NULL);
    memcpy(z, text, size);
    z[size] = '\0';
    cJSON *root = cJSON_ParseWithLength(z, size + 1);
    CHECK(root != NULL);
    check_valid(text, size, root);
    cJSON_Delete(root);
    free(z);
    return 0;
}
