/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_utf8.c - cmocka tests for the UTF-8 check (common/utf8.c,
 * include/ap_utf8.h).
 *
 * ap_utf8_len() is compared with a reference decoder written the other
 * way round (assemble the code point from the bit patterns, then reject
 * overlong forms, surrogates and values above U+10FFFF), over every 1-
 * and 2-byte input, every 3-byte input with an E0..EF lead, and every
 * 4-byte lead with every second byte and the boundary values of the
 * third and fourth.  Also pinned: ASCII (NUL and control bytes included)
 * is 1, n = 0 is 0, a sequence cut short by n is 0, and no byte past n is
 * read (the input sits at the end of an exactly sized heap block, which
 * the ASan build checks).
 */
#include "ap_utf8.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The reference: the length of the well-formed sequence at s, or 0. */
static size_t ref_len(const unsigned char *s, size_t n)
{
    size_t k;
    uint32_t cp;
    if (n == 0)
        return 0;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xE0) == 0xC0) {
        k = 2;
        cp = s[0] & 0x1F;
    } else if ((s[0] & 0xF0) == 0xE0) {
        k = 3;
        cp = s[0] & 0x0F;
    } else if ((s[0] & 0xF8) == 0xF0) {
        k = 4;
        cp = s[0] & 0x07;
    } else {
        return 0; /* a continuation byte, or F8..FF */
    }
    if (n < k)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return k;
}

static void check(const unsigned char *s, size_t n)
{
    size_t want = ref_len(s, n), have = ap_utf8_len(s, n);
    if (want != have) {
        print_error("%02x %02x %02x %02x (n %zu): want %zu, have %zu\n", n > 0 ? s[0] : 0, n > 1 ? s[1] : 0,
                    n > 2 ? s[2] : 0, n > 3 ? s[3] : 0, n, want, have);
        fail();
    }
}

static void test_ascii_is_one_byte(void **state)
{
    (void)state;
    for (int c = 0; c < 0x80; c++) {
        unsigned char b = (unsigned char)c;
        assert_int_equal(ap_utf8_len(&b, 1), 1);
    }
    assert_int_equal(ap_utf8_len((const unsigned char *)"ab", 2), 1);
}

static void test_known_sequences(void **state)
{
    (void)state;
#define LEN_OF(lit, want) assert_int_equal(ap_utf8_len((const unsigned char *)(lit), sizeof(lit) - 1), want)
    LEN_OF("\xC3\xA9", 2);             /* U+00E9 */
    LEN_OF("\xE2\x82\xAC", 3);         /* U+20AC */
    LEN_OF("\xF0\x9F\x98\x80", 4);     /* U+1F600 */
    LEN_OF("\xF4\x8F\xBF\xBF", 4);     /* U+10FFFF, the last */
    LEN_OF("\xEF\xBF\xBD", 3);         /* U+FFFD */
    LEN_OF("\xC3\xA9z", 2);            /* only the sequence counts */
    LEN_OF("\x80", 0);                 /* a continuation byte alone */
    LEN_OF("\xBF", 0);
    LEN_OF("\xC0\x80", 0);             /* overlong NUL */
    LEN_OF("\xC1\xBF", 0);             /* overlong */
    LEN_OF("\xE0\x9F\xBF", 0);         /* overlong 3-byte */
    LEN_OF("\xF0\x8F\xBF\xBF", 0);     /* overlong 4-byte */
    LEN_OF("\xED\xA0\x80", 0);         /* U+D800, a surrogate */
    LEN_OF("\xED\xBF\xBF", 0);         /* U+DFFF */
    LEN_OF("\xED\x9F\xBF", 3);         /* U+D7FF, just below */
    LEN_OF("\xF4\x90\x80\x80", 0);     /* U+110000 */
    LEN_OF("\xF5\x80\x80\x80", 0);
    LEN_OF("\xFF", 0);
    LEN_OF("\xC3z", 0);                /* a continuation byte missing */
    LEN_OF("\xE2\x82z", 0);
    LEN_OF("\xF0\x9F\x98z", 0);
#undef LEN_OF
}

static void test_n_bounds_the_read(void **state)
{
    (void)state;
    static const unsigned char euro[] = {0xE2, 0x82, 0xAC};
    assert_int_equal(ap_utf8_len(euro, 0), 0);
    assert_int_equal(ap_utf8_len(euro, 1), 0);
    assert_int_equal(ap_utf8_len(euro, 2), 0);
    assert_int_equal(ap_utf8_len(euro, 3), 3);
    /* each prefix of a 4-byte sequence at the very end of its block */
    static const unsigned char grin[] = {0xF0, 0x9F, 0x98, 0x80};
    for (size_t n = 1; n <= 4; n++) {
        unsigned char *p = malloc(n);
        assert_non_null(p);
        memcpy(p, grin, n);
        assert_int_equal(ap_utf8_len(p, n), n == 4 ? 4 : 0);
        free(p);
    }
    unsigned char *z = malloc(1);
    assert_non_null(z);
    z[0] = 0;
    assert_int_equal(ap_utf8_len(z, 1), 1);
    free(z);
}

static void test_against_the_reference(void **state)
{
    (void)state;
    unsigned char s[4];
    for (int a = 0; a < 256; a++) {
        s[0] = (unsigned char)a;
        check(s, 1);
        for (int b = 0; b < 256; b++) {
            s[1] = (unsigned char)b;
            check(s, 2);
        }
    }
    for (int a = 0xE0; a <= 0xEF; a++)
        for (int b = 0; b < 256; b++)
            for (int c = 0; c < 256; c++) {
                s[0] = (unsigned char)a;
                s[1] = (unsigned char)b;
                s[2] = (unsigned char)c;
                check(s, 3);
            }
    static const unsigned char edge[] = {0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
    for (int a = 0xF0; a < 256; a++)
        for (int b = 0; b < 256; b++)
            for (size_t c = 0; c < sizeof(edge); c++)
                for (size_t d = 0; d < sizeof(edge); d++) {
                    s[0] = (unsigned char)a;
                    s[1] = (unsigned char)b;
                    s[2] = edge[c];
                    s[3] = edge[d];
                    check(s, 4);
                    check(s, 3);
                }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ascii_is_one_byte),
        cmocka_unit_test(test_known_sequences),
        cmocka_unit_test(test_n_bounds_the_read),
        cmocka_unit_test(test_against_the_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
