/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_json_escape.c - libFuzzer target for the JSON string escaper
 * (common/json.c, with common/utf8.c) and the UTF-8 check.
 *
 * The first two bytes choose the output capacity, the rest is the text.
 * ap_json_escape() must write fewer than cap bytes and a NUL, never past
 * cap; the output, put between quotes, must be valid JSON for the
 * master's strict validator (pool/path/scan.c: RFC 8259, UTF-8 included) on
 * one line; read back with scan_unescape() it must be a prefix of the
 * text as this file's own naive decoder sees it (each byte that does not
 * start a well-formed sequence replaced by U+FFFD), the whole of it when
 * cap is AP_JSON_ESCAPE_MAX; and a cut output must be a prefix of the
 * uncut one that stops only where the next unit would not fit.  Along the way ap_utf8_len() is checked against the naive
 * decoder at every position.
 */
#include "ap_json.h"
#include "ap_utf8.h"
#include "scan.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "fuzz_json_escape: check failed at line %d: %s\n", __LINE__, \
                    #cond);                                                             \
            abort();                                                                    \
        }                                                                               \
    } while (0)

/* The naive decoder: length of the well-formed sequence at s, or 0. */
static size_t naive_len(const uint8_t *s, size_t n)
{
    size_t k;
    uint32_t cp;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xE0) == 0xC0)
        k = 2, cp = s[0] & 0x1F;
    else if ((s[0] & 0xF0) == 0xE0)
        k = 3, cp = s[0] & 0x0F;
    else if ((s[0] & 0xF8) == 0xF0)
        k = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (n < k)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return k;
}

/* Validates "esc" as a JSON string and returns its unescaped length
 * (into back, room for cap). */
static size_t check_valid(const char *esc, size_t n, char *back, size_t cap)
{
    char *json = malloc(n + 2);
    char err[SCAN_ERROR_MAX];
    CHECK(json != NULL);
    json[0] = '"';
    memcpy(json + 1, esc, n);
    json[n + 1] = '"';
    if (scan_json_value(json, n + 2, 1, SCAN_ONE_LINE, err, NULL) != 0) {
        fprintf(stderr, "fuzz_json_escape: invalid JSON string (%s)\n", err);
        abort();
    }
    free(json);
    size_t m = scan_unescape(esc, n, back, cap);
    CHECK(m != SCAN_UNESCAPE_FAIL);
    return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t want_cap = (size_t)data[0] | (size_t)data[1] << 8;
    const uint8_t *s = data + 2;
    size_t len = size - 2;

    /* the text as the naive decoder sees it */
    char *want = malloc(3 * len + 1);
    size_t wn = 0;
    CHECK(want != NULL);
    for (size_t i = 0; i < len;) {
        size_t k = naive_len(s + i, len - i);
        CHECK(ap_utf8_len(s + i, len - i) == k);
        if (k == 0) {
            memcpy(want + wn, "\xEF\xBF\xBD", 3);
            wn += 3;
            i++;
        } else {
            memcpy(want + wn, s + i, k);
            wn += k;
            i += k;
        }
    }
    CHECK(ap_utf8_len(s, 0) == 0);

    /* the whole output */
    size_t full_cap = AP_JSON_ESCAPE_MAX(len);
    char *full = malloc(full_cap), *back = malloc(wn + 1);
    CHECK(full != NULL && back != NULL);
    size_t fn = ap_json_escape(full, full_cap, (const char *)s, len);
    CHECK(fn < full_cap && full[fn] == '\0');
    CHECK(check_valid(full, fn, back, wn + 1) == wn && memcmp(back, want, wn) == 0);

    /* a cut output, in a block of exactly cap bytes */
    size_t cap = want_cap % (full_cap + 1);
    char *cut = malloc(cap ? cap : 1);
    CHECK(cut != NULL);
    size_t n = ap_json_escape(cut, cap, (const char *)s, len);
    if (cap == 0) {
        CHECK(n == 0);
    } else {
        CHECK(n < cap && cut[n] == '\0');
        CHECK(n <= fn && memcmp(cut, full, n) == 0);
        /* it stops only where the next unit (an escape or a character)
         * would not fit with the NUL */
        if (n < fn) {
            size_t k = full[n] == '\\' ? (full[n + 1] == 'u' ? 6 : 2)
                                        : naive_len((const uint8_t *)full + n, fn - n);
            CHECK(k > 0 && n + k >= cap);
        }
        size_t m = check_valid(cut, n, back, wn + 1);
        CHECK(m <= wn && memcmp(back, want, m) == 0);
    }
    free(cut);
    free(back);
    free(full);
    free(want);
    return 0;
}
