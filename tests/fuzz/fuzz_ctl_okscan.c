/*
 * fuzz_ctl_okscan.c - libFuzzer target for agentpoolctl's streaming "ok"
 * scanner (ctl/okscan.c).
 *
 * The first two bytes of an input choose a split point, the rest is one
 * response line.  Whatever the bytes, the verdict is 0 or 1 and does not
 * depend on how the line is cut: fed whole, in two pieces at the chosen
 * point, in pseudo-random pieces and one byte at a time, okscan_ok must
 * say the same, and asking early (okscan_ok between pieces) must not
 * change the end result.
 *
 * Where the line is strict JSON without a raw '\n' (pool/scan.c's
 * scan_json_value; a line never holds its own newline), the verdict must
 * equal the header's promise, computed by ref_* (a walker over the valid
 * text): the outermost value is an object and its last member whose name
 * is written exactly "ok" has the value true.  And where there is exactly
 * one such member and cJSON sees exactly one top-level "ok" (no escaped
 * spellings, no duplicates), cJSON_IsTrue on it must agree too.
 */
#include "okscan.h"
#include "scan.h"
#include "ap_common.h"

#include "refjson.h"

#include <cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "fuzz_ctl_okscan: check failed at line %d: %s\n", __LINE__, \
                    #cond);                                                              \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* ---- the reference: top-level members of text known to be valid JSON ---- */

/* The verdict the header promises, and how many members are written "ok". */
static int ref_ok(const char *s, size_t n, int *count)
{
    int verdict = 0;
    size_t i = refjson_ws(s, n, 0);
    *count = 0;
    if (s[i] != '{')
        return 0;
    i = refjson_ws(s, n, i + 1);
    while (s[i] != '}') {
        size_t key = i;
        i = refjson_skip(s, n, i);
        int is_ok = i - key == 4 && memcmp(s + key, "\"ok\"", 4) == 0;
        i = refjson_ws(s, n, refjson_ws(s, n, i) + 1);
        size_t v = i;
        i = refjson_skip(s, n, i);
        if (is_ok) {
            (*count)++;
            verdict = i - v == 4 && memcmp(s + v, "true", 4) == 0;
        }
        i = refjson_ws(s, n, i);
        if (s[i] == ',')
            i = refjson_ws(s, n, i + 1);
    }
    return verdict;
}

/* ---- the checks ---------------------------------------------------------- */

/* Feeds s[0..n) in pieces of the sizes step() gives; returns the verdict. */
static int feed(const char *s, size_t n, size_t first, uint32_t rng, size_t fixed)
{
    okscan sc;
    size_t pos = 0;
    int pieces = 0;

    okscan_reset(&sc);
    while (pos < n) {
        size_t k;
        if (fixed) {
            k = fixed;
        } else if (rng) {
            rng = rng * 1103515245u + 12345u;
            k = (rng >> 16) % 67; /* empty pieces too */
        } else {
            k = pieces == 0 ? first : n - pos;
        }
        if (k > n - pos)
            k = n - pos;
        okscan_feed(&sc, s + pos, k);
        pos += k;
        pieces++;
        int early = okscan_ok(&sc);
        CHECK(early == 0 || early == 1);
    }
    int v = okscan_ok(&sc);
    CHECK(v == 0 || v == 1);
    CHECK(okscan_ok(&sc) == v); /* asking does not change anything */
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t split = (size_t)data[0] << 8 | data[1];
    const char *s = (const char *)data + 2;
    size_t n = size - 2;

    okscan sc;
    okscan_reset(&sc);
    CHECK(okscan_ok(&sc) == 0);
    okscan_feed(&sc, s, n);
    int whole = okscan_ok(&sc);
    CHECK(whole == 0 || whole == 1);

    CHECK(feed(s, n, n ? split % (n + 1) : 0, 0, 0) == whole);
    uint32_t seed = 2166136261u;
    for (size_t i = 0; i < size && i < 16; i++)
        seed = (seed ^ data[i]) * 16777619u;
    CHECK(feed(s, n, 0, seed | 1, 0) == whole);
    CHECK(feed(s, n, 0, 0, 1) == whole);

    /* a reset scanner forgets the previous line */
    okscan_reset(&sc);
    okscan_feed(&sc, "{\"ok\":false}", 12);
    CHECK(okscan_ok(&sc) == 0);

    if (memchr(s, '\n', n) != NULL ||
        scan_json_value(s, n, AP_MAX_JSON_DEPTH, 0, NULL, NULL) != AP_OK)
        return 0;
    int count;
    int want = ref_ok(s, n, &count);
    if (whole != want) {
        fprintf(stderr, "fuzz_ctl_okscan: okscan says %d, the reference %d\n", whole, want);
        abort();
    }

    /* cJSON, where it cannot differ on spelling or duplicates */
    char *z = malloc(n + 1);
    CHECK(z != NULL);
    memcpy(z, s, n);
    z[n] = '\0';
    cJSON *root = cJSON_ParseWithLength(z, n + 1);
    CHECK(root != NULL);
    if (cJSON_IsObject(root)) {
        int named_ok = 0;
        const cJSON *item = NULL, *child;
        cJSON_ArrayForEach(child, root)
        {
            if (child->string && strcmp(child->string, "ok") == 0) {
                named_ok++;
                item = child;
            }
        }
        if (named_ok == 1 && count == 1)
            CHECK(whole == (cJSON_IsTrue(item) ? 1 : 0));
    } else {
        CHECK(whole == 0);
    }
    cJSON_Delete(root);
    free(z);
    return 0;
}
