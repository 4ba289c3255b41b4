/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_cfgtext.c - cmocka tests for the two text helpers of the config
 * file: durations with units (pool/core/duration.c) and comments, with
 * parse positions told as line and column of the file as written
 * (pool/core/jsontext.c).
 *
 * Built with AP_ALLOC_TEST, so jsontext's copies are checked for leaks.
 * Checked: every unit, bare numbers, refusals (sign, fraction, unknown
 * unit, overflow) and the formatting back; line/column counting (UTF-8
 * characters, newlines); comments removed with // and slash-star inside
 * strings kept; minified offsets mapped back to the original through
 * comments; a lone '/' (which cJSON_Minify would drop) refused at its
 * position; a NUL byte refused.
 */
#include "duration.h"
#include "jsontext.h"
#include "ap_common.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <string.h>

static void expect_ms(const char *text, int64_t want, int want_bare)
{
    int64_t ms = -7;
    int bare = -1;
    char why[160] = "";
    if (duration_parse(text, &ms, &bare, why, sizeof(why)) != AP_OK || ms != want || bare != want_bare) {
        print_error("\"%s\": want %lld bare=%d, have %lld bare=%d (%s)\n", text, (long long)want, want_bare,
                    (long long)ms, bare, why);
        fail();
    }
}

static void expect_refused(const char *text, const char *want)
{
    int64_t ms = -7;
    int bare = -1;
    char why[160] = "";
    assert_int_equal(duration_parse(text, &ms, &bare, why, sizeof(why)), AP_ERR);
    assert_int_equal(ms, -7);
    assert_string_equal(why, want);
}

static void test_duration_units(void **state)
{
    (void)state;
    expect_ms("0", 0, 1);
    expect_ms("30000", 30000, 1);
    expect_ms("250ms", 250, 0);
    expect_ms("30s", 30000, 0);
    expect_ms("2m", 120000, 0);
    expect_ms("1h", 3600000, 0);
    expect_ms("1d", 86400000, 0);
    expect_ms("0s", 0, 0);
    expect_ms("9223372036854775807", INT64_MAX, 1);
}

static void test_duration_refusals(void **state)
{
    (void)state;
    const char *any = "expected a whole number of milliseconds or a duration such as \"30s\", \"250ms\", \"2m\", \"1h\"";
    expect_refused("", any);
    expect_refused("-5s", any);
    expect_refused("+5s", any);
    expect_refused(" 5s", any);
    expect_refused("s", any);
    expect_refused("1.5s", "fractions are not accepted: use a smaller unit (\"1500ms\", not \"1.5s\")");
    expect_refused("5sec", "unknown unit \"sec\" (known: ms, s, m, h, d)");
    expect_refused("5 s", "unknown unit \" s\" (known: ms, s, m, h, d)");
    expect_refused("5S", "unknown unit \"S\" (known: ms, s, m, h, d)");
    expect_refused("9223372036854775808", "too large");
    expect_refused("106751991167301d", "too large");
}

static void test_duration_format(void **state)
{
    (void)state;
    char b[32];
    struct {
        int64_t ms;
        const char *want;
    } c[] = {{0, "0"}, {250, "250ms"}, {1500, "1500ms"}, {30000, "30s"}, {90000, "90s"}, {120000, "2m"},
             {3600000, "1h"}, {86400000, "1d"}, {172800000, "2d"}};
    for (size_t i = 0; i < AP_ARRAY_LEN(c); i++) {
        duration_format(c[i].ms, b, sizeof(b));
        assert_string_equal(b, c[i].want);
        /* and back */
        int64_t ms;
        int bare;
        char why[64];
        assert_int_equal(duration_parse(b, &ms, &bare, why, sizeof(why)), AP_OK);
        assert_int_equal(ms, c[i].ms);
    }
}

static void test_line_col(void **state)
{
    (void)state;
    unsigned l, c;
    const char *t = "ab\ncd\n\xc3\xa9x";
    jsontext_line_col(t, 0, &l, &c);
    assert_int_equal(l, 1), assert_int_equal(c, 1);
    jsontext_line_col(t, 2, &l, &c);
    assert_int_equal(l, 1), assert_int_equal(c, 3);
    jsontext_line_col(t, 3, &l, &c);
    assert_int_equal(l, 2), assert_int_equal(c, 1);
    jsontext_line_col(t, 5, &l, &c);
    assert_int_equal(l, 2), assert_int_equal(c, 3);
    /* é is two bytes, one column */
    jsontext_line_col(t, 8, &l, &c);
    assert_int_equal(l, 3), assert_int_equal(c, 2);
}

static void test_comments_removed_strings_kept(void **state)
{
    (void)state;
    jsontext jt;
    char err[160];
    const char *t = "{\n"
                    "  // a line comment \"with\" quotes\n"
                    "# a hash line\n"
                    "  \"a\": \"x//y /*z*/ \\\" // q\", /* a block\n comment */ \"b\": \"/run/x.sock\"\n"
                    "}\n";
    assert_int_equal(jsontext_open(&jt, t, strlen(t), err, sizeof(err)), AP_OK);
    assert_string_equal(jt.min, "{\"a\":\"x//y /*z*/ \\\" // q\",\"b\":\"/run/x.sock\"}");
    /* offsets map back through the comments */
    const char *b = strstr(jt.min, "\"b\"");
    size_t orig = jsontext_orig_offset(&jt, (size_t)(b - jt.min));
    assert_ptr_equal(t + orig, strstr(t, "\"b\""));
    assert_int_equal(jsontext_orig_offset(&jt, 0), 0);
    /* the end maps to just past the last kept byte */
    assert_int_equal(jsontext_orig_offset(&jt, jt.minlen), strlen(t) - 1);
    jsontext_close(&jt);
}

/* cJSON stops one token past ",,": the error stays on the comma's line. */
static void test_stop_offset_stays_on_the_fault_line(void **state)
{
    (void)state;
    jsontext jt;
    char err[160];
    const char *t = "{\n  \"minWorkers\": 2,, // two commas\n /* c */\n}";
    assert_int_equal(jsontext_open(&jt, t, strlen(t), err, sizeof(err)), AP_OK);
    const char *brace = strchr(jt.min, '}');
    size_t at = jsontext_stop_offset(&jt, (size_t)(brace - jt.min));
    unsigned l, c;
    jsontext_line_col(t, at, &l, &c);
    assert_int_equal(l, 2), assert_int_equal(c, 20);
    /* on one line, the byte itself */
    assert_int_equal(jsontext_stop_offset(&jt, (size_t)(strchr(jt.min, '2') - jt.min)), (size_t)(strchr(t, '2') - t));
    jsontext_close(&jt);
}

static void test_lone_slash_refused(void **state)
{
    (void)state;
    jsontext jt;
    char err[160];
    const char *t = "{\"path\": \"/a/b\", // fine\n  \"timeout\": 30/2}";
    assert_int_equal(jsontext_open(&jt, t, strlen(t), err, sizeof(err)), AP_ERR);
    assert_string_equal(err, "line 2, column 16: '/' outside a string that starts no comment (// or /* */)");
    assert_null(jt.orig);
    const char *nul = "{\n \"a\"\0: 1}";
    assert_int_equal(jsontext_open(&jt, nul, 11, err, sizeof(err)), AP_ERR);
    assert_string_equal(err, "line 2, column 5: a NUL byte");
}

/* cJSON_Minify drops everything after an unclosed block comment: the
 * settings there would be lost without a word. */
static void test_unclosed_comment_refused(void **state)
{
    (void)state;
    jsontext jt;
    char err[160];
    const char *t = "{\"path\": \"/* not a comment */\", \"x\": \"\\\"/*\",\n  /* minWorkers below\n  \"minWorkers\": 8}";
    assert_int_equal(jsontext_open(&jt, t, strlen(t), err, sizeof(err)), AP_ERR);
    assert_string_equal(err, "line 2, column 3: a comment \"/*\" that is never closed with \"*/\"");
    assert_null(jt.orig);
    const char *ok = "{\"a\": 1 /* closed */, // line /* not a block\n \"b\": \"/*\"}";
    assert_int_equal(jsontext_open(&jt, ok, strlen(ok), err, sizeof(err)), AP_OK);
    assert_string_equal(jt.min, "{\"a\":1,\"b\":\"/*\"}");
    jsontext_close(&jt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_units),
        cmocka_unit_test(test_duration_refusals),
        cmocka_unit_test(test_duration_format),
        cmocka_unit_test(test_line_col),
        cmocka_unit_test(test_comments_removed_strings_kept),
        cmocka_unit_test(test_stop_offset_stays_on_the_fault_line),
        cmocka_unit_test(test_lone_slash_refused),
        cmocka_unit_test(test_unclosed_comment_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
