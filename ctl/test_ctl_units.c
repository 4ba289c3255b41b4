/*
 * test_ctl_units.c - cmocka tests for agentpoolctl's pure modules:
 * okscan.c (the streaming "ok" detector), reqline.c (request lines),
 * jraw.c (raw spans of JSON values), render.c and table.c (human
 * output).
 *
 * Built with AP_ALLOC_TEST, so every ap_malloc goes through cmocka's
 * allocator and a leak fails the test.  okscan is fed every response in
 * every possible two-piece split, since exchange.c hands it lines in
 * whatever pieces recv() returned.
 */
#include "ap_alloc.h"
#include "ap_common.h"
#include "jraw.h"
#include "okscan.h"
#include "render.h"
#include "reqline.h"
#include "table.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* okscan's verdict on line fed whole and split at every byte; asserts
 * they all agree and returns it. */
static int scan_line(const char *line)
{
    okscan s;
    size_t n = strlen(line);
    okscan_reset(&s);
    okscan_feed(&s, line, n);
    int whole = okscan_ok(&s);
    for (size_t cut = 0; cut <= n; cut++) {
        okscan_reset(&s);
        okscan_feed(&s, line, cut);
        okscan_feed(&s, line + cut, n - cut);
        assert_int_equal(okscan_ok(&s), whole);
    }
    return whole;
}

static void test_okscan_reads_top_level_ok(void **state)
{
    AP_UNUSED(state);
    assert_true(scan_line("{\"id\":1,\"ok\":true,\"result\":{}}"));
    assert_true(scan_line("{\"id\":1,\"result\":[1,2],\"ok\":true}"));
    assert_true(scan_line("{ \"ok\" : true }"));
    assert_true(scan_line("{\"ok\":true"));  /* cut short after the literal */
    assert_false(scan_line("{\"id\":1,\"ok\":false,\"error\":{\"code\":\"x\"}}"));
    assert_false(scan_line("{\"id\":1,\"result\":{}}"));
}

static void test_okscan_ignores_nested_and_quoted_ok(void **state)
{
    AP_UNUSED(state);
    assert_true(scan_line("{\"result\":{\"ok\":false},\"ok\":true}"));
    assert_false(scan_line("{\"error\":{\"ok\":true},\"ok\":false}"));
    assert_false(scan_line("{\"id\":\"\\\"ok\\\":true\",\"x\":\"ok\"}"));
    assert_true(scan_line("{\"id\":\"{\\\"ok\\\":false}\",\"ok\":true}"));
    assert_false(scan_line("{\"result\":[{\"ok\":true}]}"));
    assert_false(scan_line("[\"ok\",true]"));
}

static void test_okscan_refuses_lookalikes(void **state)
{
    AP_UNUSED(state);
    assert_false(scan_line("{\"ok\":\"true\"}"));
    assert_false(scan_line("{\"ok\":truex}"));
    assert_false(scan_line("{\"ok\":1}"));
    assert_false(scan_line("{\"okay\":true}"));
    assert_false(scan_line("{\"o\":true}"));
    assert_false(scan_line("{\"\\u006fk\":true}"));
    assert_false(scan_line(""));
    assert_false(scan_line("not json at all"));
}

static void test_reqline_compacts_and_keeps_tokens(void **state)
{
    char err[256], out[128];
    AP_UNUSED(state);
    const char *src = " {\n \"a b\" : [ 1 ,\t12345678901234567890 ],\r\n \"s\": \"x \\\" y\" } ";
    size_t n = reqline_compact(src, out, err, sizeof(err));
    assert_string_equal(out, "{\"a b\":[1,12345678901234567890],\"s\":\"x \\\" y\"}");
    assert_int_equal(n, strlen(out));
    assert_int_equal(reqline_compact("\"a\nb\"", out, err, sizeof(err)), (size_t)-1);
    assert_non_null(strstr(err, "raw control character 0x0a"));
}

static void test_reqline_builds_one_escaped_line(void **state)
{
    char err[256];
    size_t len;
    AP_UNUSED(state);
    char *line = reqline_build(7, "a\"b\\c\n", "{ \"x\": 1.50 }", &len, err, sizeof(err));
    assert_non_null(line);
    assert_string_equal(line, "{\"id\":7,\"type\":\"a\\\"b\\\\c\\n\",\"data\":{\"x\":1.50}}\n");
    assert_int_equal(len, strlen(line));
    ap_free(line);

    line = reqline_build(1, "t", NULL, &len, err, sizeof(err));
    assert_string_equal(line, "{\"id\":1,\"type\":\"t\",\"data\":null}\n");
    ap_free(line);
}

static void test_reqline_refuses_invalid_data(void **state)
{
    char err[256];
    size_t len;
    AP_UNUSED(state);
    assert_null(reqline_build(1, "t", "{\"a\":", &len, err, sizeof(err)));
    assert_non_null(strstr(err, "invalid DATA JSON at byte"));
    assert_null(reqline_build(1, "t", "1 2", &len, err, sizeof(err)));
    assert_non_null(strstr(err, "invalid DATA JSON"));
    assert_null(reqline_build(1, "t", "", &len, err, sizeof(err)));
    assert_non_null(strstr(err, "it is empty"));
    assert_null(reqline_build(1, "t", "\"tab\there\"", &len, err, sizeof(err)));
    assert_non_null(strstr(err, "raw control character"));
}

static void test_render_duration_humanises(void **state)
{
    char b[48];
    AP_UNUSED(state);
    render_duration(850, b, sizeof(b));
    assert_string_equal(b, "850ms");
    render_duration(12345, b, sizeof(b));
    assert_string_equal(b, "12.3s");
    render_duration(1234567, b, sizeof(b));
    assert_string_equal(b, "20m34s");
    render_duration(3723000, b, sizeof(b));
    assert_string_equal(b, "1h02m03s");
    render_duration(97380000.0 + 86400000.0 * 3, b, sizeof(b));
    assert_string_equal(b, "4d03h03m");
    render_duration(-1, b, sizeof(b));
    assert_string_equal(b, "?");
}

static void test_render_knows_durations_by_name(void **state)
{
    AP_UNUSED(state);
    assert_true(render_is_duration("age"));
    assert_true(render_is_duration("averageWorkerAge"));
    assert_true(render_is_duration("uptime"));
    assert_true(render_is_duration("oldestWorker"));
    assert_true(render_is_duration("latencyMs"));
    assert_false(render_is_duration("messagesProcessed"));
    assert_false(render_is_duration("usage"));
    assert_false(render_is_duration("Age"));
}

static void test_render_value_formats(void **state)
{
    AP_UNUSED(state);
    cJSON *j = cJSON_Parse("{\"n\":3,\"f\":0.5,\"age\":1234567,\"s\":\"a\\nb\",\"l\":[1,\"x\"],"
                           "\"e\":{},\"b\":false,\"z\":null}");
    static const struct {
        const char *key, *want;
    } cases[] = {{"n", "3"},     {"f", "0.5"},      {"age", "1234567 (20m34s)"},
                 {"s", "a?b"},   {"l", "1, x"},     {"e", "(none)"},
                 {"b", "false"}, {"z", "null"}};
    for (size_t i = 0; i < AP_ARRAY_LEN(cases); i++) {
        char *v = render_value(cases[i].key, cJSON_GetObjectItemCaseSensitive(j, cases[i].key));
        assert_string_equal(v, cases[i].want);
        ap_free(v);
    }
    char *v = render_value("missing", NULL);
    assert_string_equal(v, "-");
    ap_free(v);
    cJSON_Delete(j);
}

static void test_table_aligns_by_characters(void **state)
{
    AP_UNUSED(state);
    table t;
    char buf[256] = "";
    FILE *f = fmemopen(buf, sizeof(buf), "w");
    assert_non_null(f);
    table_init(&t, 3);
    char *r1[3] = {ap_strdup("id"), ap_strdup("state"), ap_strdup("x")};
    char *r2[3] = {ap_strdup("10"), ap_strdup("\xc3\xa9t\xc3\xa9"), NULL};
    char *r3[3] = {ap_strdup("7"), NULL, ap_strdup("y")};
    table_add_row(&t, r1);
    table_add_row(&t, r2);
    table_add_row(&t, r3);
    table_print(&t, f, "");
    fclose(f);
    table_free(&t);
    assert_string_equal(buf, "id  state  x\n"
                             "10  \xc3\xa9t\xc3\xa9\n"
                             "7          y\n");
}

/* A span over a C string. */
static jraw_span span(const char *s)
{
    jraw_span sp = {s, strlen(s)};
    return sp;
}

/* 1 when the member key of obj is exactly want (want NULL: it is absent). */
static int member_is(const char *obj, const char *key, const char *want)
{
    jraw_span v;
    if (jraw_member(span(obj), key, &v) != AP_OK)
        return want == NULL;
    return want != NULL && v.len == strlen(want) && memcmp(v.p, want, v.len) == 0;
}

static void test_jraw_finds_members_byte_for_byte(void **state)
{
    AP_UNUSED(state);
    const char *rec = " {\"dlqId\":7, \"type\" : \"a\\\"b\", \"data\":{\"big\": 12345678901234567890,"
                      "\"s\":\"}]\\\\\",\"l\":[1,{\"x\":[]}]},\"id\":null,\"n\":-1.50e+3 } ";
    assert_true(member_is(rec, "dlqId", "7"));
    assert_true(member_is(rec, "type", "\"a\\\"b\""));
    assert_true(member_is(rec, "data", "{\"big\": 12345678901234567890,\"s\":\"}]\\\\\",\"l\":[1,{\"x\":[]}]}"));
    assert_true(member_is(rec, "id", "null"));
    assert_true(member_is(rec, "n", "-1.50e+3"));
    assert_true(member_is(rec, "big", NULL)); /* nested members are not top-level */
    assert_true(member_is(rec, "missing", NULL));
    assert_true(member_is("{\"a\":1,\"a\":2}", "a", "2")); /* the last one counts */
    assert_true(member_is("{}", "a", NULL));
    assert_true(member_is("[1]", "a", NULL));
}

static void test_jraw_walks_array_elements(void **state)
{
    AP_UNUSED(state);
    const char *arr = "[ {\"a\":[1,2]} , \"x,]\" ,3,null ]";
    static const char *const want[] = {"{\"a\":[1,2]}", "\"x,]\"", "3", "null"};
    jraw_span e;
    size_t cur = 0, n = 0;
    while (jraw_next(span(arr), &cur, &e)) {
        assert_true(n < AP_ARRAY_LEN(want));
        assert_int_equal(e.len, strlen(want[n]));
        assert_memory_equal(e.p, want[n], e.len);
        n++;
    }
    assert_int_equal(n, AP_ARRAY_LEN(want));
    cur = 0;
    assert_false(jraw_next(span("[]"), &cur, &e));
    cur = 0;
    assert_false(jraw_next(span("{\"a\":1}"), &cur, &e));
}

static void test_jraw_stays_inside_truncated_or_broken_text(void **state)
{
    AP_UNUSED(state);
    /* Every prefix of a record: members before the cut are found, the
     * rest are not, and nothing is read past the span (ASan watches). */
    const char *rec = "{\"id\":\"replay-12\",\"ok\":false,\"error\":{\"code\":\"worker_crashed\"}}";
    size_t n = strlen(rec);
    for (size_t cut = 0; cut <= n; cut++) {
        char *copy = ap_malloc(cut ? cut : 1);
        memcpy(copy, rec, cut);
        jraw_span s = {copy, cut}, v;
        int found = jraw_member(s, "error", &v) == AP_OK;
        assert_int_equal(found, cut == n || cut == n - 1);
        found = jraw_member(s, "id", &v) == AP_OK;
        assert_int_equal(found, cut >= strlen("{\"id\":\"replay-12\""));
        ap_free(copy);
    }
    jraw_span v;
    assert_int_equal(jraw_member(span("{\"a\" 1}"), "a", &v), AP_ERR);
    assert_int_equal(jraw_member(span("{\"a\":\"unterminated}"), "a", &v), AP_ERR);
    assert_null(v.p);
}

static void test_jraw_reads_integers_strings_and_literals(void **state)
{
    uint64_t u = 0;
    char buf[8];
    AP_UNUSED(state);
    assert_int_equal(jraw_u64(span("18446744073709551615"), &u), AP_OK);
    assert_true(u == UINT64_MAX);
    assert_int_equal(jraw_u64(span("18446744073709551616"), &u), AP_ERR);
    assert_int_equal(jraw_u64(span("-1"), &u), AP_ERR);
    assert_int_equal(jraw_u64(span("1.0"), &u), AP_ERR);
    assert_int_equal(jraw_u64(span(""), &u), AP_ERR);
    assert_int_equal(jraw_str(span("\"bad_request\""), buf, sizeof(buf)), AP_OK);
    assert_string_equal(buf, "bad_req");
    assert_int_equal(jraw_str(span("12"), buf, sizeof(buf)), AP_ERR);
    assert_string_equal(buf, "");
    assert_true(jraw_is(span("true"), "true"));
    assert_false(jraw_is(span("trueish"), "true"));
}

static void test_render_times_utc_in_and_local_out(void **state)
{
    uint64_t ms = 0;
    char b[64];
    AP_UNUSED(state);
    assert_int_equal(render_parse_utc("2026-11-24T09:03:03.157Z", &ms), AP_OK);
    assert_true(ms == 1795510983157ull);
    assert_int_equal(render_parse_utc("2026-11-24T09:03:03Z", &ms), AP_OK);
    assert_true(ms == 1795510983000ull);
    assert_int_equal(render_parse_utc("2026-11-24T09:03:03.5Z", &ms), AP_OK);
    assert_true(ms == 1795510983500ull);
    assert_int_equal(render_parse_utc("2026-11-24T09:03:03.157+01:00", &ms), AP_ERR);
    assert_int_equal(render_parse_utc("yesterday", &ms), AP_ERR);
    assert_int_equal(render_parse_utc("2026-11-24T09:03:03.Z", &ms), AP_ERR);

    setenv("TZ", "UTC", 1);
    tzset();
    render_local_time(1795510983157ull, b, sizeof(b));
    assert_string_equal(b, "2026-11-24T09:03:03.157+00:00");
    setenv("TZ", "XYZ-5:30", 1); /* POSIX: UTC+05:30, no tz database needed */
    tzset();
    render_local_time(1795510983007ull, b, sizeof(b));
    assert_string_equal(b, "2026-11-24T14:33:03.007+05:30");
    setenv("TZ", "XYZ+3", 1);
    tzset();
    render_local_time(1795510983157ull, b, sizeof(b));
    assert_string_equal(b, "2026-11-24T06:03:03.157-03:00");
}

static void test_render_fit_cuts_by_characters(void **state)
{
    AP_UNUSED(state);
    static const struct {
        const char *in;
        size_t width;
        const char *want;
    } cases[] = {{"short", 10, "short"},
                 {"exactly10!", 10, "exactly10!"},
                 {"a bit longer than ten", 10, "a bit l..."},
                 {"\xc3\xa9t\xc3\xa9 \xc3\xa9t\xc3\xa9 \xc3\xa9t\xc3\xa9", 6, "\xc3\xa9t\xc3\xa9..."},
                 {"line\nbreak", 0, "line?break"},
                 {"anything at all", 0, "anything at all"}};
    for (size_t i = 0; i < AP_ARRAY_LEN(cases); i++) {
        char *v = render_fit(cases[i].in, cases[i].width);
        assert_string_equal(v, cases[i].want);
        ap_free(v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_okscan_reads_top_level_ok),
        cmocka_unit_test(test_okscan_ignores_nested_and_quoted_ok),
        cmocka_unit_test(test_okscan_refuses_lookalikes),
        cmocka_unit_test(test_reqline_compacts_and_keeps_tokens),
        cmocka_unit_test(test_reqline_builds_one_escaped_line),
        cmocka_unit_test(test_reqline_refuses_invalid_data),
        cmocka_unit_test(test_render_duration_humanises),
        cmocka_unit_test(test_render_knows_durations_by_name),
        cmocka_unit_test(test_render_value_formats),
        cmocka_unit_test(test_table_aligns_by_characters),
        cmocka_unit_test(test_jraw_finds_members_byte_for_byte),
        cmocka_unit_test(test_jraw_walks_array_elements),
        cmocka_unit_test(test_jraw_stays_inside_truncated_or_broken_text),
        cmocka_unit_test(test_jraw_reads_integers_strings_and_literals),
        cmocka_unit_test(test_render_times_utc_in_and_local_out),
        cmocka_unit_test(test_render_fit_cuts_by_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
