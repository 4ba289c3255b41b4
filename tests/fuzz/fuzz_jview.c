/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_jview.c - libFuzzer target for reading validated JSON in place
 * (pool/path/jview.c).
 *
 * Each input that scan_json_value() accepts (64 levels deep at most) is
 * walked whole with jv_next, and read a second way with cJSON as the
 * reference: every value's kind and bytes stay inside the input and
 * re-validate alone; an object's members are found by jv_get as cJSON
 * finds them (the last of a repeated name), arrays have as many
 * elements, strings unescape to cJSON's bytes (when they hold no
 * U+0000), numbers read to the same double; names are compared with
 * cJSON's only where no name can hold U+0000 (cJSON cuts it there).  Any disagreement aborts.
 * Inputs the scanner refuses are not walked (jview's contract).
 */
#include "jview.h"
#include "ap_common.h"
#include "scan.h"

#include <cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "fuzz_jview: check failed at line %d: %s\n", __LINE__,  \
                    #cond);                                                         \
            abort();                                                                \
        }                                                                           \
    } while (0)

static const char *lo, *hi; /* the input */

static int kind_of(const cJSON *c)
{
    if (cJSON_IsNull(c))
        return JV_NULL;
    if (cJSON_IsFalse(c))
        return JV_FALSE;
    if (cJSON_IsTrue(c))
        return JV_TRUE;
    if (cJSON_IsNumber(c))
        return JV_NUMBER;
    if (cJSON_IsString(c))
        return JV_STRING;
    if (cJSON_IsArray(c))
        return JV_ARRAY;
    return JV_OBJECT;
}

static void walk(jv v, const cJSON *ref, int depth)
{
    CHECK(depth <= 64);
    CHECK(v.kind != JV_ABSENT && v.p >= lo && v.len > 0 && v.p + v.len <= hi);
    CHECK(scan_json_value(v.p, v.len, 64, 0, NULL, NULL) == AP_OK);
    if (ref)
        CHECK((int)v.kind == kind_of(ref));
    if (v.kind == JV_STRING) {
        char out[4096];
        size_t n;
        if (jv_string(v, out, sizeof(out), &n) == AP_OK) {
            CHECK(strlen(out) == n);
            CHECK(jv_is(v, out));
            if (ref)
                CHECK(strcmp(out, ref->valuestring) == 0);
        }
    } else if (v.kind == JV_NUMBER) {
        double d;
        if (jv_number(v, &d) == AP_OK && ref)
            CHECK(d == ref->valuedouble || (d != d && ref->valuedouble != ref->valuedouble));
    } else if (v.kind == JV_OBJECT || v.kind == JV_ARRAY) {
        size_t cur = 0, count = 0;
        jv k, e;
        const cJSON *child = ref ? ref->child : NULL;
        while (jv_next(v, &cur, v.kind == JV_OBJECT ? &k : NULL, &e)) {
            CHECK(cur <= v.len);
            if (v.kind == JV_OBJECT) {
                CHECK(k.kind == JV_STRING && k.p >= v.p && k.p + k.len <= e.p);
                char name[256];
                if (jv_string(k, name, sizeof(name), NULL) == AP_OK) {
                    jv got = jv_get(v, name); /* the last of that name */
                    CHECK(got.kind != JV_ABSENT && got.p >= e.p);
                    /* cJSON cuts a name at U+0000: where one may, its names are no reference */
                    if (ref && memmem(v.p, v.len, "\\u0000", 6) == NULL) {
                        const cJSON *last = NULL;
                        for (const cJSON *c = ref->child; c; c = c->next)
                            if (c->string && strcmp(c->string, name) == 0)
                                last = c;
                        if (last)
                            CHECK((int)got.kind == kind_of(last));
                    }
                }
            }
            walk(e, child, depth + 1);
            if (child)
                child = child->next;
            count++;
        }
        if (ref)
            CHECK(count == (size_t)cJSON_GetArraySize(ref));
        if (v.kind == JV_ARRAY) /* no names in an array, whatever its elements */
            CHECK(jv_get(v, "a").kind == JV_ABSENT && jv_get(v, "").kind == JV_ABSENT);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    if (scan_json_value(s, size, 64, 0, NULL, NULL) != AP_OK)
        return 0;
    lo = s;
    hi = s + size;
    cJSON *ref = cJSON_ParseWithLength(s, size);
    jv root = jv_root(s, size);
    walk(root, ref, 1);
    size_t cur = 0;
    jv e;
    if (root.kind != JV_OBJECT && root.kind != JV_ARRAY)
        CHECK(jv_next(root, &cur, NULL, &e) == 0 && jv_get(root, "a").kind == JV_ABSENT);
    cJSON_Delete(ref);
    return 0;
}
