/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_json.c - cmocka tests for the JSON string escaper (common/json.c,
 * include/ap_json.h).
 *
 * Each rule of ap_json_escape() is pinned by exact output: backslashed
 * quote and backslash, the five short forms, \u00XX for the other
 * control bytes and DEL, UTF-8 copied, each byte of invalid UTF-8 as
 * \ufffd.  Truncation: at most cap - 1 bytes, NUL-terminated, nothing
 * written past cap, and an escape or a UTF-8 sequence whole or absent.
 * Validity: every byte value alone and between letters, and a few
 * thousand pseudo-random byte strings (fixed seed), escaped and quoted,
 * must pass the master's strict validator (pool/path/scan.c: RFC 8259, UTF-8
 * included) at every cap, and read back through scan_unescape() as the
 * input with each invalid byte replaced by U+FFFD (a prefix of it when
 * cut).
 */
#include "ap_json.h"
#include "ap_utf8.h"
#include "scan.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define LEN(lit) (sizeof(lit) - 1)

static void expect_escape(const char *in, size_t len, size_t cap, const char *want)
{
    char dst[256];
    assert_true(cap <= sizeof(dst));
    memset(dst, 0x7e, sizeof(dst));
    size_t n = ap_json_escape(dst, cap, in, len);
    if (n != strlen(want) || strcmp(dst, want) != 0) {
        print_error("escape of %zu bytes into %zu: want \"%s\", have \"%s\" (%zu)\n", len, cap, want, dst, n);
        fail();
    }
    assert_int_equal(dst[n], '\0');
    if (cap < sizeof(dst))
        assert_int_equal((unsigned char)dst[cap], 0x7e); /* nothing past cap */
}
#define ESC(lit, cap, want) expect_escape(lit, LEN(lit), cap, want)

static void test_rules(void **state)
{
    (void)state;
    ESC("plain text 123", 256, "plain text 123");
    ESC("", 256, "");
    ESC("a\"b", 256, "a\\\"b");
    ESC("a\\b", 256, "a\\\\b");
    ESC("\\\"", 256, "\\\\\\\"");
    ESC("l1\nl2", 256, "l1\\nl2");
    ESC("\t\r\b\f\n", 256, "\\t\\r\\b\\f\\n");
    ESC("\x01\x1f\x7f\x0b", 256, "\\u0001\\u001f\\u007f\\u000b");
    ESC("a\0b", 256, "a\\u0000b"); /* a NUL inside the given length is escaped */
    ESC("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 256, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    ESC("/<>'", 256, "/<>'");
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    ESC("a\x80z", 256, "a\\ufffdz");                       /* a stray continuation byte */
    ESC("\xff\xfe", 256, "\\ufffd\\ufffd");                /* one per byte */
    ESC("\xe2\x82z", 256, "\\ufffd\\ufffdz");              /* cut short: each byte */
    ESC("\xe2\x82", 256, "\\ufffd\\ufffd");                /* cut short by the end */
    ESC("\xc0\x80", 256, "\\ufffd\\ufffd");                /* overlong NUL */
    ESC("\xed\xa0\x80", 256, "\\ufffd\\ufffd\\ufffd");     /* a surrogate */
    ESC("\xf4\x90\x80\x80", 256, "\\ufffd\\ufffd\\ufffd\\ufffd"); /* above U+10FFFF */
    ESC("\xc3\xc3\xa9", 256, "\\ufffd\xc3\xa9");           /* the next byte is looked at afresh */
}

static void test_truncation(void **state)
{
    (void)state;
    /* at most cap-1 bytes, and a unit is either whole or absent */
    ESC("abcdef", 4, "abc");
    ESC("abcdef", 7, "abcdef");
    ESC("abcdef", 6, "abcde");
    ESC("ab\"cd", 5, "ab\\\"");
    ESC("ab\"cd", 4, "ab");
    ESC("ab\"cd", 3, "ab");
    ESC("\x01z", 7, "\\u0001");
    ESC("\x01z", 6, "");
    ESC("a\x01z", 7, "a");
    ESC("a\nb", 3, "a");
    ESC("abc", 1, "");
    ESC("a\xe2\x82\xac", 5, "a\xe2\x82\xac");
    ESC("a\xe2\x82\xac", 4, "a");                           /* never half a character */
    ESC("a\xe2\x82\xac", 3, "a");
    ESC("a\xff", 8, "a\\ufffd");
    ESC("a\xff", 7, "a");                                   /* never half a \ufffd */
    /* cap 0: nothing is written at all */
    char d = 'Q';
    assert_int_equal(ap_json_escape(&d, 0, "abc", 3), 0);
    assert_int_equal(d, 'Q');
    /* the worst case fits in AP_JSON_ESCAPE_MAX */
    char big[AP_JSON_ESCAPE_MAX(4)];
    assert_int_equal(ap_json_escape(big, sizeof(big), "\x01\xff\x7f\x1f", 4), 24);
}

/* "CONTENT" of an escaped string is valid JSON, and unescapes to want. */
static void expect_valid(const char *esc, size_t n, const char *want, size_t want_len)
{
    char json[2048], err[SCAN_ERROR_MAX] = "", back[2048];
    assert_true(n + 2 <= sizeof(json));
    json[0] = '"';
    memcpy(json + 1, esc, n);
    json[n + 1] = '"';
    if (scan_json_value(json, n + 2, 1, SCAN_ONE_LINE, err, NULL) != 0) {
        print_error("%.*s: %s\n", (int)(n + 2), json, err);
        fail();
    }
    size_t m = scan_unescape(esc, n, back, sizeof(back));
    assert_true(m != SCAN_UNESCAPE_FAIL);
    if (m != want_len || memcmp(back, want, m) != 0) {
        print_error("%.*s read back as %zu bytes, want %zu\n", (int)n, esc, m, want_len);
        fail();
    }
}

/* What the escaped s must read back as: invalid bytes as U+FFFD. */
static size_t expected_text(const unsigned char *s, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t k = ap_utf8_len(s + i, len - i);
        if (k == 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        } else {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        }
    }
    return o;
}

static void test_every_byte_reads_back(void **state)
{
    (void)state;
    for (int c = 0; c < 0x100; c++) {
        char in[3] = {'x', (char)c, 'y'}, esc[32], want[8];
        size_t n = ap_json_escape(esc, sizeof(esc), in, 3);
        size_t w = expected_text((const unsigned char *)in, 3, want);
        expect_valid(esc, n, want, w);
        /* no raw control byte, DEL, or unescaped quote in the output */
        for (size_t i = 0; i < n; i++) {
            unsigned char b = (unsigned char)esc[i];
            assert_true(b >= 0x20 && b != 0x7f);
            if (b == '"')
                assert_int_equal(esc[i - 1], '\\');
        }
    }
}

static uint32_t rng = 12345;
static uint32_t next_rand(void)
{
    rng = rng * 1103515245u + 12345u;
    return rng >> 8;
}

static void test_random_bytes_at_every_cap(void **state)
{
    (void)state;
    /* bytes drawn mostly from the interesting ones: controls, quote,
     * backslash, UTF-8 leads and continuations, DEL, letters */
    static const unsigned char pick[] = {0x00, 0x01, 0x08, 0x09, 0x0a, 0x0d, 0x1f, '"', '\\', '/', 'a', 'z',
                                         0x7f, 0x80, 0x9f, 0xa0, 0xbf, 0xc0, 0xc3, 0xe0, 0xe2, 0xed, 0xef,
                                         0xf0, 0xf4, 0xf5, 0xff};
    for (int round = 0; round < 3000; round++) {
        unsigned char in[24];
        size_t len = next_rand() % sizeof(in);
        for (size_t i = 0; i < len; i++)
            in[i] = next_rand() % 4 ? pick[next_rand() % sizeof(pick)] : (unsigned char)next_rand();
        char want[sizeof(in) * 3], full[AP_JSON_ESCAPE_MAX(sizeof(in))];
        size_t wn = expected_text(in, len, want);
        size_t fn = ap_json_escape(full, sizeof(full), (const char *)in, len);
        expect_valid(full, fn, want, wn);
        for (size_t cap = 1; cap <= fn + 1; cap++) {
            char esc[sizeof(full)], back[sizeof(want)];
            size_t n = ap_json_escape(esc, cap, (const char *)in, len);
            assert_true(n < cap);
            assert_int_equal(esc[n], '\0');
            /* a prefix of the whole output, cut on a unit boundary: it
             * is valid, and reads back as a prefix of the text */
            assert_memory_equal(esc, full, n);
            size_t m = scan_unescape(esc, n, back, sizeof(back));
            assert_true(m != SCAN_UNESCAPE_FAIL && m <= wn);
            expect_valid(esc, n, want, m);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_every_byte_reads_back),
        cmocka_unit_test(test_random_bytes_at_every_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
