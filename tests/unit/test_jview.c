/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_jview.c - cmocka tests for reading validated JSON in place
 * (pool/path/jview.c): kinds and bytes of values, members by name (the
 * last of a repeated name; names compared after unescaping), members and
 * elements in order, strings unescaped (U+0000 refused), numbers, and
 * views that are not containers.
 */
#include "jview.h"
#include "ap_common.h"
#include "scan.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static jv root_of(const char *s)
{
    assert_int_equal(scan_json_value(s, strlen(s), 64, 0, NULL, NULL), AP_OK);
    return jv_root(s, strlen(s));
}

static void assert_bytes(jv v, const char *want)
{
    assert_int_equal(v.len, strlen(want));
    assert_memory_equal(v.p, want, v.len);
}

/* Each member's kind and exact bytes, whatever white space is around. */
static void test_members_by_name(void **state)
{
    (void)state;
    jv o = root_of(" { \"s\" : \"a\\\"}b\" , \"n\":-1.5e3,\"t\":true,\"f\":false,\"z\":null,"
                   "\"a\":[1,{\"x\":\"]\"}],\"o\":{\"k\":{}} } ");
    assert_int_equal(o.kind, JV_OBJECT);
    jv s = jv_get(o, "s");
    assert_int_equal(s.kind, JV_STRING);
    assert_bytes(s, "\"a\\\"}b\"");
    assert_int_equal(jv_get(o, "n").kind, JV_NUMBER);
    assert_bytes(jv_get(o, "n"), "-1.5e3");
    assert_int_equal(jv_get(o, "t").kind, JV_TRUE);
    assert_int_equal(jv_get(o, "f").kind, JV_FALSE);
    assert_int_equal(jv_get(o, "z").kind, JV_NULL);
    assert_true(jv_none(jv_get(o, "z")));
    assert_bytes(jv_get(o, "a"), "[1,{\"x\":\"]\"}]");
    assert_bytes(jv_get(o, "o"), "{\"k\":{}}");
    assert_int_equal(jv_get(jv_get(o, "o"), "k").kind, JV_OBJECT);
    assert_int_equal(jv_get(o, "missing").kind, JV_ABSENT);
    assert_true(jv_none(jv_get(o, "missing")));
    /* not an object: nothing to find */
    assert_int_equal(jv_get(jv_get(o, "a"), "x").kind, JV_ABSENT);
    assert_int_equal(jv_get(s, "x").kind, JV_ABSENT);
}

/* A repeated name counts by its last occurrence; names are compared
 * after unescaping. */
static void test_repeated_and_escaped_names(void **state)
{
    (void)state;
    jv o = root_of("{\"id\":1,\"\\u0069d\":2,\"x\\\"y\":3}");
    assert_bytes(jv_get(o, "id"), "2");
    assert_bytes(jv_get(o, "x\"y"), "3");
    assert_int_equal(jv_get(o, "i").kind, JV_ABSENT);
    assert_int_equal(jv_get(o, "idd").kind, JV_ABSENT);
}

static void test_next_walks_in_order(void **state)
{
    (void)state;
    jv a = root_of("[ 1 , \"two\" , [3] , {\"four\":4} ]");
    const char *want[] = {"1", "\"two\"", "[3]", "{\"four\":4}"};
    size_t cur = 0, i = 0;
    jv v;
    while (jv_next(a, &cur, NULL, &v))
        assert_bytes(v, want[i++]);
    assert_int_equal(i, 4);
    assert_int_equal(jv_next(a, &cur, NULL, &v), 0); /* stays at the end */
    jv o = root_of("{\"a\":1,\"b\":[]}"), k;
    cur = 0;
    assert_int_equal(jv_next(o, &cur, &k, &v), 1);
    assert_true(jv_is(k, "a"));
    assert_bytes(v, "1");
    assert_int_equal(jv_next(o, &cur, &k, &v), 1);
    assert_true(jv_is(k, "b"));
    assert_int_equal(v.kind, JV_ARRAY);
    assert_int_equal(jv_next(o, &cur, &k, &v), 0);
    cur = 0;
    assert_int_equal(jv_next(root_of("[]"), &cur, NULL, &v), 0);
    cur = 0;
    assert_int_equal(jv_next(root_of("{}"), &cur, &k, &v), 0);
    cur = 0;
    assert_int_equal(jv_next(root_of("7"), &cur, NULL, &v), 0);
}

static void test_strings_and_numbers(void **state)
{
    (void)state;
    char out[16];
    size_t n;
    jv o = root_of("{\"s\":\"caf\\u00e9\\n\",\"nul\":\"a\\u0000b\",\"long\":\"0123456789abcdef\",\"n\":42,"
                   "\"f\":0.25,\"big\":1e308}");
    assert_int_equal(jv_string(jv_get(o, "s"), out, sizeof(out), &n), AP_OK);
    assert_string_equal(out, "caf\xc3\xa9\n");
    assert_int_equal(n, 6);
    assert_int_equal(jv_string(jv_get(o, "nul"), out, sizeof(out), &n), AP_ERR);  /* U+0000 refused */
    assert_int_equal(jv_string(jv_get(o, "long"), out, sizeof(out), &n), AP_ERR); /* 16 bytes + NUL */
    assert_int_equal(jv_string(jv_get(o, "n"), out, sizeof(out), &n), AP_ERR);    /* not a string */
    assert_true(jv_is(jv_get(o, "s"), "caf\xc3\xa9\n"));
    assert_false(jv_is(jv_get(o, "s"), "cafe\n"));
    double d;
    assert_int_equal(jv_number(jv_get(o, "n"), &d), AP_OK);
    assert_true(d == 42);
    assert_int_equal(jv_number(jv_get(o, "f"), &d), AP_OK);
    assert_true(d == 0.25);
    assert_int_equal(jv_number(jv_get(o, "big"), &d), AP_OK);
    assert_true(d == 1e308);
    assert_int_equal(jv_number(jv_get(o, "s"), &d), AP_ERR);
    assert_int_equal(jv_number(jv_get(o, "none"), &d), AP_ERR);
}

/* jv_is compares a string of any length, escapes and all: a 256-byte
 * contextId sent with an escape in it is the task's (a2a.c). */
static void test_is_any_length(void **state)
{
    (void)state;
    char want[302], text[400];
    memset(want, 'c', sizeof(want));
    want[0] = '/';
    want[150] = '"';
    memcpy(want + 297, "\xf0\x9f\x98\x80", 4); /* U+1F600 */
    want[301] = '\0';                          /* 301 bytes: "/", 149 c, '"', 146 c, U+1F600 */
    snprintf(text, sizeof(text), "{\"c\":\"\\/%.149s\\\"%.146s\\ud83d\\ude00\"}", want + 1, want + 151);
    jv c = jv_get(root_of(text), "c");
    assert_true(jv_is(c, want));
    want[300] = 'x'; /* the last byte differs */
    assert_false(jv_is(c, want));
    want[300] = '\x80';
    want[297] = '\0'; /* a prefix */
    assert_false(jv_is(c, want));
    assert_false(jv_is(jv_get(root_of("{\"c\":\"a\\u0000\"}"), "c"), "a"));
    assert_true(jv_is(jv_get(root_of("{\"c\":\"\\u00e9\\t\"}"), "c"), "\xc3\xa9\t"));
}

/* A lookup by name in an array finds nothing, whatever its elements
 * are: an array has no member names (jv_get_many once compared the
 * names asked with a key it never set, left from the lookup before). */
static void test_get_in_an_array_finds_nothing(void **state)
{
    (void)state;
    static const char *const names[] = {"x", "y"};
    jv o = root_of("{\"x\":1,\"y\":2}");
    jv a = root_of("[\"x\",\"y\",{\"x\":3}]");
    for (int i = 0; i < 3; i++) {
        jv out[2];
        assert_int_equal(jv_get(o, "x").kind, JV_NUMBER);
        assert_int_equal(jv_get(a, "x").kind, JV_ABSENT);
        jv_get_many(o, names, out, 2);
        assert_int_equal(out[1].kind, JV_NUMBER);
        jv_get_many(a, names, out, 2);
        assert_int_equal(out[0].kind, JV_ABSENT);
        assert_int_equal(out[1].kind, JV_ABSENT);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_members_by_name),
        cmocka_unit_test(test_repeated_and_escaped_names),
        cmocka_unit_test(test_next_walks_in_order),
        cmocka_unit_test(test_strings_and_numbers),
        cmocka_unit_test(test_is_any_length),
        cmocka_unit_test(test_get_in_an_array_finds_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
