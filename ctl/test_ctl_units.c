/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_ctl_units.c - cmocka tests for agentpoolctl's pure modules:
 * jspan.c (spans of JSON values found with cJSON, and the top-level "ok"
 * that decides exit statuses), sline.c (answer, chunk or heartbeat),
 * reqline.c (request lines), render.c and
 * table.c (human output), topview.c (the frames of `top` and its error
 * rate).
 *
 * Built with AP_ALLOC_TEST, so every ap_malloc goes through cmocka's
 * allocator and a leak fails the test; cJSON is hooked to the same
 * allocator (main), so a parse tree jspan forgets to delete fails too.
 */
#include "ap_alloc.h"
#include "ap_common.h"
#include "jspan.h"
#include "render.h"
#include "reqline.h"
#include "sline.h"
#include "table.h"
#include "topview.h"

#include <stdarg.h>
#include <math.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A span over a C string. */
static jspan span(const char *s)
{
    jspan sp = {s, strlen(s)};
    return sp;
}

/* The verdict exchange.c and replay.c take: top-level "ok" is true. */
static int line_ok(const char *line)
{
    jspan v;
    cJSON *ok;
    if (jspan_member(span(line), "ok", &v, &ok) != AP_OK) {
        assert_null(ok);
        return 0;
    }
    int verdict = cJSON_IsTrue(ok);
    cJSON_Delete(ok);
    return verdict;
}

static void test_jspan_reads_top_level_ok(void **state)
{
    AP_UNUSED(state);
    assert_true(line_ok("{\"id\":1,\"ok\":true,\"result\":{}}"));
    assert_true(line_ok("{\"id\":1,\"result\":[1,2],\"ok\":true}"));
    assert_true(line_ok("{ \"ok\" : true }\r"));
    assert_true(line_ok("{\"ok\":true")); /* cut short after the value */
    assert_true(line_ok("{\"id\":1,\"ok\":true,\"result\":{\"unfinished")); /* a long line's start */
    assert_false(line_ok("{\"id\":1,\"ok\":false,\"error\":{\"code\":\"x\"}}"));
    assert_false(line_ok("{\"id\":1,\"result\":{}}"));
    assert_true(line_ok("{\"\\u006fk\":true}")); /* names are compared unescaped, as cJSON does */
    assert_false(line_ok("{\"ok\":false,\"ok\":true}")); /* the first one, as cJSON does */
}

static void test_jspan_ignores_nested_and_quoted_ok(void **state)
{
    AP_UNUSED(state);
    assert_true(line_ok("{\"result\":{\"ok\":false},\"ok\":true}"));
    assert_false(line_ok("{\"error\":{\"ok\":true},\"ok\":false}"));
    assert_false(line_ok("{\"id\":\"\\\"ok\\\":true\",\"x\":\"ok\"}"));
    assert_true(line_ok("{\"id\":\"{\\\"ok\\\":false}\",\"ok\":true}"));
    assert_false(line_ok("{\"result\":[{\"ok\":true}]}"));
    assert_false(line_ok("[\"ok\",true]"));
}

static void test_jspan_refuses_lookalikes_and_broken_text(void **state)
{
    AP_UNUSED(state);
    assert_false(line_ok("{\"ok\":\"true\"}"));
    assert_false(line_ok("{\"ok\":1}"));
    assert_false(line_ok("{\"okay\":true}"));
    assert_false(line_ok("{\"o\":true}"));
    assert_false(line_ok(""));
    assert_false(line_ok("not json at all"));
    /* a member before "ok" that is not JSON ends the search */
    assert_false(line_ok("{\"id\":tru,\"ok\":true}"));
    assert_false(line_ok("{\"id\":1 \"ok\":true}"));
    assert_false(line_ok("{\"id\" 1,\"ok\":true}"));
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

static void test_reqline_adds_stream_true_last(void **state)
{
    char err[256];
    size_t len;
    AP_UNUSED(state);
    char *line = reqline_build_opts(1, "tokens", "{ \"n\": 3 }", NULL, 1, &len, err, sizeof(err));
    assert_non_null(line);
    assert_string_equal(line, "{\"id\":1,\"type\":\"tokens\",\"data\":{\"n\":3},\"stream\":true}\n");
    assert_int_equal(len, strlen(line));
    ap_free(line);
    line = reqline_build_opts(2, "t", NULL, NULL, 0, &len, err, sizeof(err));
    assert_string_equal(line, "{\"id\":2,\"type\":\"t\",\"data\":null}\n");
    ap_free(line);
    assert_null(reqline_build_opts(1, "t", "{", NULL, 1, &len, err, sizeof(err)));
}

static void test_reqline_adds_the_pool_escaped_before_stream(void **state)
{
    char err[256];
    size_t len;
    AP_UNUSED(state);
    char *line = reqline_build_opts(1, "t", "[1]", "wr\"it\ner", 1, &len, err, sizeof(err));
    assert_non_null(line);
    assert_string_equal(line, "{\"id\":1,\"type\":\"t\",\"data\":[1],\"pool\":\"wr\\\"it\\ner\",\"stream\":true}\n");
    ap_free(line);
}

/* sline_classify on a C string; the chunk's text copied to buf. */
static sline_kind classify(const char *line, char *buf, size_t cap)
{
    jspan v;
    sline_kind k = sline_classify(line, strlen(line), &v);
    buf[0] = '\0';
    if (k == SLINE_CHUNK) {
        assert_non_null(v.p);
        assert_true(v.p >= line && v.p + v.len <= line + strlen(line));
        assert_true(v.len < cap);
        memcpy(buf, v.p, v.len);
        buf[v.len] = '\0';
    } else {
        assert_null(v.p);
    }
    return k;
}

static void test_sline_tells_answers_chunks_and_heartbeats_apart(void **state)
{
    char b[128];
    AP_UNUSED(state);
    assert_int_equal(classify("{\"id\":1,\"ok\":true,\"result\":{}}", b, sizeof(b)), SLINE_ANSWER_OK);
    assert_int_equal(classify("{\"id\":1,\"ok\":false,\"error\":{}}", b, sizeof(b)), SLINE_ANSWER_FAILED);
    assert_int_equal(classify("{\"id\":1,\"chunk\":\"t\\u00e9\",\"seq\":0}", b, sizeof(b)), SLINE_CHUNK);
    assert_string_equal(b, "\"t\\u00e9\"");
    assert_int_equal(classify("{\"id\":\"a\", \"chunk\" : {\"ok\": true, \"x\": [1.50]} , \"seq\":9}", b, sizeof(b)),
                     SLINE_CHUNK);
    assert_string_equal(b, "{\"ok\": true, \"x\": [1.50]}");
    assert_int_equal(classify("{\"seq\":0,\"chunk\":null,\"id\":7}", b, sizeof(b)), SLINE_CHUNK);
    assert_string_equal(b, "null");
    assert_int_equal(classify("{\"id\":1,\"heartbeat\":true}", b, sizeof(b)), SLINE_HEARTBEAT);
    /* an answer stays an answer whatever else it holds */
    assert_int_equal(classify("{\"id\":1,\"ok\":true,\"chunk\":1}", b, sizeof(b)), SLINE_ANSWER_OK);
    assert_int_equal(classify("{\"id\":1,\"chunk\":1,\"ok\":false}", b, sizeof(b)), SLINE_ANSWER_FAILED);
    /* lookalikes and broken lines are failed answers, as before streams */
    assert_int_equal(classify("{\"id\":1,\"heartbeat\":1}", b, sizeof(b)), SLINE_ANSWER_FAILED);
    assert_int_equal(classify("{\"chunk\":1,\"seq\":0}", b, sizeof(b)), SLINE_ANSWER_FAILED);
    assert_int_equal(classify("{\"id\":1,\"result\":{\"chunk\":1}}", b, sizeof(b)), SLINE_ANSWER_FAILED);
    assert_int_equal(classify("{\"id\":1,\"x\":\"\\\"chunk\\\":1\"}", b, sizeof(b)), SLINE_ANSWER_FAILED);
    assert_int_equal(classify("[\"id\",\"chunk\"]", b, sizeof(b)), SLINE_ANSWER_FAILED);
    assert_int_equal(classify("{\"id\":1,\"chunk\":tru,\"seq\":0}", b, sizeof(b)), SLINE_ANSWER_FAILED);
    assert_int_equal(classify("", b, sizeof(b)), SLINE_ANSWER_FAILED);
}

static void test_sline_classifies_the_start_of_a_long_line(void **state)
{
    AP_UNUSED(state);
    const char *chunk = "{\"id\":\"x\",\"chunk\":\"aaaaaaaa";
    assert_int_equal(sline_classify_start(chunk, strlen(chunk)), SLINE_CHUNK);
    const char *ok = "{\"id\":3,\"ok\":true,\"result\":\"aaaa";
    assert_int_equal(sline_classify_start(ok, strlen(ok)), SLINE_ANSWER_OK);
    const char *fail = "{\"id\":3,\"ok\":false,\"error\":{\"message\":\"aaaa";
    assert_int_equal(sline_classify_start(fail, strlen(fail)), SLINE_ANSWER_FAILED);
    /* "chunk" second, after "id": nothing else counts */
    const char *late = "{\"id\":3,\"seq\":0,\"chunk\":\"aaaa";
    assert_int_equal(sline_classify_start(late, strlen(late)), SLINE_ANSWER_FAILED);
    const char *noid = "{\"chunk\":\"aaaa";
    assert_int_equal(sline_classify_start(noid, strlen(noid)), SLINE_ANSWER_FAILED);
    const char *cut = "{\"id\":3,\"chu";
    assert_int_equal(sline_classify_start(cut, strlen(cut)), SLINE_ANSWER_FAILED);
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
    assert_non_null(strstr(err, "raw control character 0x09"));
    assert_null(reqline_build(1, "t", "[\"a\nb\"]", &len, err, sizeof(err)));
    assert_non_null(strstr(err, "raw control character 0x0a"));
    /* cJSON takes \x01 between tokens for white space; JSON does not */
    assert_null(reqline_build(1, "t", "[1,\x01 2]", &len, err, sizeof(err)));
    assert_non_null(strstr(err, "raw control character 0x01"));
}

static void test_reqline_minifies_and_keeps_tokens(void **state)
{
    char err[256];
    size_t len;
    AP_UNUSED(state);
    const char *src = " {\n \"a b\" : [ 1 ,\t12345678901234567890 ],\r\n \"s\": \"x \\\" y\" ,"
                      " \"f\": -1.50e+3 } ";
    char *line = reqline_build(1, "t", src, &len, err, sizeof(err));
    assert_non_null(line);
    assert_string_equal(line, "{\"id\":1,\"type\":\"t\",\"data\":{\"a b\":[1,12345678901234567890],"
                              "\"s\":\"x \\\" y\",\"f\":-1.50e+3}}\n");
    ap_free(line);
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

/* 1 when the member key of obj is exactly want (want NULL: it is absent). */
static int member_is(const char *obj, const char *key, const char *want)
{
    jspan v;
    cJSON *tree;
    if (jspan_member(span(obj), key, &v, &tree) != AP_OK) {
        assert_null(tree);
        assert_null(v.p);
        return want == NULL;
    }
    assert_non_null(tree);
    cJSON_Delete(tree);
    return want != NULL && v.len == strlen(want) && memcmp(v.p, want, v.len) == 0;
}

static void test_jspan_finds_members_byte_for_byte(void **state)
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
    assert_true(member_is("{\"a\":1,\"a\":2}", "a", "1")); /* the first one, as cJSON's lookup */
    assert_true(member_is("{\"\\u0061\":[ 1 ]}", "a", "[ 1 ]"));
    assert_true(member_is("{}", "a", NULL));
    assert_true(member_is("[1]", "a", NULL));
}

static void test_jspan_walks_array_elements(void **state)
{
    AP_UNUSED(state);
    const char *arr = "[ {\"a\":[1,2]} , \"x,]\" ,3,null ]";
    static const char *const want[] = {"{\"a\":[1,2]}", "\"x,]\"", "3", "null"};
    jspan e;
    cJSON *tree;
    size_t cur = 0, n = 0;
    while (jspan_next(span(arr), &cur, &e, &tree)) {
        assert_true(n < AP_ARRAY_LEN(want));
        assert_non_null(tree);
        cJSON_Delete(tree);
        assert_int_equal(e.len, strlen(want[n]));
        assert_memory_equal(e.p, want[n], e.len);
        n++;
    }
    assert_int_equal(n, AP_ARRAY_LEN(want));
    assert_false(jspan_next(span(arr), &cur, &e, NULL)); /* ended stays ended */
    static const char *const not_arrays[] = {"[]", "{\"a\":1}", "[1", "[1 2]", "[,1]", ""};
    for (size_t k = 0; k < AP_ARRAY_LEN(not_arrays); k++) {
        cur = 0;
        n = 0;
        while (jspan_next(span(not_arrays[k]), &cur, &e, &tree)) {
            cJSON_Delete(tree);
            n++;
        }
        assert_null(tree);
        assert_true(n <= 1); /* "[1 2]" yields its 1, then stops */
    }
}

static void test_jspan_stays_inside_truncated_or_broken_text(void **state)
{
    AP_UNUSED(state);
    /* Every prefix of a record: members before the cut are found, the
     * rest are not, and nothing is read past the span (ASan watches). */
    const char *rec = "{\"id\":\"replay-12\",\"ok\":false,\"error\":{\"code\":\"worker_crashed\"}}";
    size_t n = strlen(rec);
    for (size_t cut = 0; cut <= n; cut++) {
        char *copy = ap_malloc(cut ? cut : 1);
        memcpy(copy, rec, cut);
        jspan s = {copy, cut}, v;
        int found = jspan_member(s, "error", &v, NULL) == AP_OK;
        assert_int_equal(found, cut == n || cut == n - 1);
        found = jspan_member(s, "id", &v, NULL) == AP_OK;
        assert_int_equal(found, cut >= strlen("{\"id\":\"replay-12\""));
        ap_free(copy);
    }
    jspan v;
    assert_int_equal(jspan_member(span("{\"a\" 1}"), "a", &v, NULL), AP_ERR);
    assert_int_equal(jspan_member(span("{\"a\":\"unterminated}"), "a", &v, NULL), AP_ERR);
    assert_null(v.p);
    assert_int_equal(jspan_member(span("{\"a\":\xef\xbb\xbf" "1}"), "a", &v, NULL), AP_ERR);
}

static void test_jspan_reads_plain_digits(void **state)
{
    uint64_t u = 0;
    AP_UNUSED(state);
    assert_int_equal(jspan_u64("18446744073709551615", 20, &u), AP_OK);
    assert_true(u == UINT64_MAX);
    assert_int_equal(jspan_u64("18446744073709551616", 20, &u), AP_ERR);
    assert_int_equal(jspan_u64("-1", 2, &u), AP_ERR);
    assert_int_equal(jspan_u64("1.0", 3, &u), AP_ERR);
    assert_int_equal(jspan_u64(" 1", 2, &u), AP_ERR);
    assert_int_equal(jspan_u64("", 0, &u), AP_ERR);
    assert_int_equal(jspan_u64("123", 2, &u), AP_OK); /* only the n bytes given */
    assert_true(u == 12);
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

static void test_render_units_for_people(void **state)
{
    char b[64];
    AP_UNUSED(state);
    static const struct {
        double v;
        const char *bytes, *ms;
    } cases[] = {{0, "0 B", "0ms"},
                 {0.045, "0 B", "45us"},
                 {1.2, "1 B", "1.20ms"},
                 {12.34, "12 B", "12.3ms"},
                 {345, "345 B", "345ms"},
                 {1023, "1023 B", "1.02s"},
                 {1536, "1.50 KiB", "1.54s"},
                 {45000, "43.9 KiB", "45.0s"},
                 {3 * 1048576.0, "3.00 MiB", "52m25s"},
                 {123.0 * 1073741824.0, "123 GiB", "1528d14h10m"},
                 {-1, "?", "?"}};
    for (size_t i = 0; i < AP_ARRAY_LEN(cases); i++) {
        render_bytes(cases[i].v, b, sizeof(b));
        assert_string_equal(b, cases[i].bytes);
        render_ms(cases[i].v, b, sizeof(b));
        assert_string_equal(b, cases[i].ms);
    }
}

static void test_render_words_cut_and_fmt(void **state)
{
    AP_UNUSED(state);
    static const char *const words[][2] = {{"answeredOk", "answered ok"},
                                           {"droppedResults", "dropped results"},
                                           {"start_failed", "start_failed"},
                                           {"rssBytes", "rss bytes"},
                                           {"RSS", "rss"},
                                           {"p99", "p99"}};
    for (size_t i = 0; i < AP_ARRAY_LEN(words); i++) {
        char *w = render_words(words[i][0]);
        assert_string_equal(w, words[i][1]);
        ap_free(w);
    }
    char *c = render_cut("\xc3\xa9t\xc3\xa9 long line", 4);
    assert_string_equal(c, "\xc3\xa9t\xc3\xa9 ");
    ap_free(c);
    c = render_cut("bell\a", 0);
    assert_string_equal(c, "bell?");
    ap_free(c);
    c = render_fmt("%s %d", "x", 42);
    assert_string_equal(c, "x 42");
    ap_free(c);
}

/* A detailed pool.stats answer with two workers. */
static const char topview_stats[] =
    "{\"state\":\"ready\",\"total\":2,\"uptime\":3723000,"
    "\"queue\":{\"depth\":3,\"capacity\":1024},"
    "\"throughput\":{\"1s\":12.5,\"10s\":10},\"latency\":{\"p99\":15},"
    "\"errors\":{\"agent_error\":2,\"timeout\":1},"
    "\"workers\":["
    "{\"id\":\"worker-0\",\"pid\":4242,\"state\":\"busy\",\"inFlight\":1,\"slots\":1,"
    "\"messagesProcessed\":10,\"rssBytes\":13421772,\"age\":61000,\"errors\":2},"
    "{\"id\":\"worker-1\",\"pid\":4243,\"state\":\"starting\",\"inFlight\":0,\"slots\":1,"
    "\"messagesProcessed\":0,\"age\":500,\"errors\":0}]}";

static void test_topview_renders_header_and_worker_rows(void **state)
{
    AP_UNUSED(state);
    cJSON *st = cJSON_Parse(topview_stats);
    topview_frame f = {0};
    topview_opts o = {.width = 0, .height = 0, .errors_per_min = NAN};
    topview_render(st, &o, &f);
    assert_int_equal(f.n, 6);
    assert_string_equal(f.lines[0], "pool ready   uptime 1h02m03s   workers 1/2 ready   queue 3/1024");
    assert_string_equal(f.lines[1], "throughput 12.5/s (1s) 10.0/s (10s)   p99 15.0ms   errors/min - (3 total)");
    assert_string_equal(f.lines[2], "");
    assert_string_equal(f.lines[3], "WORKER        PID  STATE     IN-FLIGHT  MESSAGES        RSS       AGE  ERRORS");
    assert_string_equal(f.lines[4], "worker-0     4242  busy            1/1        10   12.8 MiB     1m01s       2");
    assert_string_equal(f.lines[5], "worker-1     4243  starting        0/1         0          -     500ms       0");
    topview_frame_free(&f);

    /* Cut to the width, never wrapped; a known error rate. */
    o.width = 20;
    o.errors_per_min = 1.5;
    topview_render(st, &o, &f);
    assert_int_equal(f.n, 6);
    for (size_t i = 0; i < f.n; i++)
        assert_true(table_width(f.lines[i]) <= 20);
    assert_string_equal(f.lines[4], "worker-0     4242  b");
    topview_frame_free(&f);
    o.width = 0;
    topview_render(st, &o, &f);
    assert_non_null(strstr(f.lines[1], "errors/min 1.5 (3 total)"));
    topview_frame_free(&f);
    cJSON_Delete(st);
}

static void test_topview_fits_the_height_and_says_what_is_left_out(void **state)
{
    AP_UNUSED(state);
    cJSON *st = cJSON_Parse(topview_stats);
    topview_frame f = {0};
    topview_opts o = {.width = 0, .height = 5, .errors_per_min = NAN};
    topview_render(st, &o, &f);
    assert_int_equal(f.n, 5);
    assert_string_equal(f.lines[4], "... 2 more workers (a taller terminal shows them)");
    topview_frame_free(&f);
    o.height = 6; /* exactly enough */
    topview_render(st, &o, &f);
    assert_int_equal(f.n, 6);
    assert_non_null(strstr(f.lines[5], "worker-1"));
    topview_frame_free(&f);
    o.height = 2; /* only the header */
    topview_render(st, &o, &f);
    assert_int_equal(f.n, 2);
    topview_frame_free(&f);
    cJSON_Delete(st);
}

static void test_topview_survives_missing_fields_and_shows_alerts(void **state)
{
    AP_UNUSED(state);
    cJSON *st = cJSON_Parse("{\"alerts\":[{\"name\":\"queue_high\",\"level\":\"warning\"},"
                            "{\"name\":\"no_healthy_worker\",\"level\":\"critical\"}],"
                            "\"workers\":[{\"state\":\"\\u001b[2J\"}]}");
    topview_frame f = {0};
    topview_opts o = {.errors_per_min = NAN};
    topview_render(st, &o, &f);
    assert_string_equal(f.lines[0], "pool -   uptime -   workers 0/- ready   queue -/-");
    assert_string_equal(f.lines[1], "throughput - (1s) - (10s)   p99 -   errors/min - (0 total)");
    assert_string_equal(f.lines[2], "ALERTS: queue_high (warning), no_healthy_worker (critical)");
    /* the escape in the state is shown as '?', never sent to the terminal */
    assert_null(strchr(f.lines[5], '\033'));
    assert_non_null(strstr(f.lines[5], "?[2J"));
    topview_frame_free(&f);
    topview_render_problem("/tmp/x.sock", "cannot connect to /tmp/x.sock: No such file", &o, &f);
    assert_int_equal(f.n, 3);
    assert_string_equal(f.lines[1], "no statistics: cannot connect to /tmp/x.sock: No such file");
    topview_frame_free(&f);
    cJSON_Delete(st);
}

/* A detailed pool.stats answer of a server with two named pools. */
static const char topview_pools_stats[] =
    "{\"state\":\"degraded\",\"total\":3,\"uptime\":1000,\"queue\":{\"depth\":0,\"capacity\":20},"
    "\"errors\":{\"agent_error\":3},"
    "\"workers\":["
    "{\"id\":\"writer/worker-0\",\"pid\":11,\"state\":\"ready\",\"inFlight\":0,\"slots\":1},"
    "{\"id\":\"reader/worker-0\",\"pid\":21,\"state\":\"dead\",\"inFlight\":0,\"slots\":1},"
    "{\"id\":\"writer/worker-1\",\"pid\":12,\"state\":\"busy\",\"inFlight\":1,\"slots\":1}],"
    "\"pools\":{"
    "\"writer\":{\"lifecycle\":\"running\",\"state\":\"ready\",\"poolSize\":2,"
    "\"queue\":{\"depth\":0,\"capacity\":10},\"throughput\":{\"10s\":2},\"latency\":{\"p99\":3},"
    "\"errors\":{\"agent_error\":1}},"
    "\"reader\":{\"lifecycle\":\"draining\",\"state\":\"degraded\",\"poolSize\":1,"
    "\"queue\":{\"depth\":0,\"capacity\":10},\"errors\":{\"agent_error\":2}}}}";

static void test_topview_shows_one_block_per_named_pool(void **state)
{
    AP_UNUSED(state);
    cJSON *st = cJSON_Parse(topview_pools_stats);
    topview_frame f = {0};
    topview_opts o = {.errors_per_min = NAN};
    topview_render(st, &o, &f);
    assert_int_equal(f.n, 11);
    assert_string_equal(f.lines[0], "pool degraded   uptime 1.0s   workers 2/3 ready   queue 0/20");
    assert_string_equal(f.lines[2], "");
    assert_string_equal(f.lines[3], "pool writer ready   workers 2/2 ready   queue 0/10   2.0/s (10s)   p99 3.00ms   errors 1");
    assert_non_null(strstr(f.lines[4], "WORKER"));
    assert_true(strncmp(f.lines[5], "writer/worker-0 ", 16) == 0);
    assert_true(strncmp(f.lines[6], "writer/worker-1 ", 16) == 0);
    assert_string_equal(f.lines[7], "");
    assert_string_equal(f.lines[8], "pool reader (draining) degraded   workers 0/1 ready   queue 0/10   - (10s)   p99 -   errors 2");
    assert_true(strncmp(f.lines[10], "reader/worker-0 ", 16) == 0);
    topview_frame_free(&f);
    /* one pool's stats (top --pool): named in the first line, no uptime */
    cJSON_Delete(st);
    st = cJSON_Parse("{\"pool\":\"writer\",\"state\":\"ready\",\"poolSize\":2,\"workers\":[],"
                     "\"pools\":{\"default\":{}}}");
    topview_render(st, &o, &f);
    assert_string_equal(f.lines[0], "pool writer ready   workers 0/2 ready   queue -/-");
    assert_string_equal(f.lines[f.n - 1], "(no workers)");
    topview_frame_free(&f);
    cJSON_Delete(st);
}

static void test_topview_rate_over_the_last_minute(void **state)
{
    AP_UNUSED(state);
    topview_rate r = {.n = 0};
    assert_true(isnan(topview_rate_per_min(&r)));
    topview_rate_add(&r, 1000, 5);
    assert_true(isnan(topview_rate_per_min(&r)));
    topview_rate_add(&r, 31000, 8); /* 3 in 30 s */
    assert_true(fabs(topview_rate_per_min(&r) - 6.0) < 1e-9);
    /* the newest sample is replaced while it is less than a step past
     * the one before it */
    topview_rate_add(&r, 31100, 9);
    assert_int_equal(r.n, 3);
    topview_rate_add(&r, 31200, 10);
    assert_int_equal(r.n, 3);
    assert_true(r.t[1] == 31000 && r.t[2] == 31200);
    topview_rate_add(&r, 32000, 10); /* replaces 31200 */
    assert_int_equal(r.n, 3);
    topview_rate_add(&r, 32100, 10); /* 32000 made the step: kept */
    assert_int_equal(r.n, 4);
    assert_true(r.t[2] == 32000 && r.t[3] == 32100);
    /* every 100 ms for five minutes, one error a second: a fixed number
     * of samples, and exactly 60 a minute */
    double v = 10;
    for (uint64_t t = 31300; t <= 331300; t += 100) {
        if (t % 1000 == 0)
            v += 1;
        topview_rate_add(&r, t, v);
        assert_true(r.n <= TOPVIEW_RATE_SLOTS);
    }
    assert_true(r.t[r.n - 1] - r.t[0] >= TOPVIEW_RATE_WINDOW_MS);
    assert_true(r.t[r.n - 1] - r.t[0] < TOPVIEW_RATE_WINDOW_MS + 2 * TOPVIEW_RATE_STEP_MS);
    double rate = topview_rate_per_min(&r);
    assert_true(rate > 58.0 && rate < 62.0);
    /* a counter that goes back (another server) starts over */
    topview_rate_add(&r, 332000, 0);
    assert_int_equal(r.n, 1);
    assert_true(isnan(topview_rate_per_min(&r)));
}

/* cJSON's allocations through cmocka's, so its leaks fail tests too. */
static void *units_cjson_malloc(size_t n)
{
    return test_malloc(n);
}

static void units_cjson_free(void *p)
{
    test_free(p);
}

int main(void)
{
    cJSON_Hooks hooks = {units_cjson_malloc, units_cjson_free};
    cJSON_InitHooks(&hooks);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jspan_reads_top_level_ok),
        cmocka_unit_test(test_jspan_ignores_nested_and_quoted_ok),
        cmocka_unit_test(test_jspan_refuses_lookalikes_and_broken_text),
        cmocka_unit_test(test_reqline_minifies_and_keeps_tokens),
        cmocka_unit_test(test_reqline_builds_one_escaped_line),
        cmocka_unit_test(test_reqline_refuses_invalid_data),
        cmocka_unit_test(test_reqline_adds_stream_true_last),
        cmocka_unit_test(test_reqline_adds_the_pool_escaped_before_stream),
        cmocka_unit_test(test_sline_tells_answers_chunks_and_heartbeats_apart),
        cmocka_unit_test(test_sline_classifies_the_start_of_a_long_line),
        cmocka_unit_test(test_render_duration_humanises),
        cmocka_unit_test(test_render_knows_durations_by_name),
        cmocka_unit_test(test_render_value_formats),
        cmocka_unit_test(test_table_aligns_by_characters),
        cmocka_unit_test(test_jspan_finds_members_byte_for_byte),
        cmocka_unit_test(test_jspan_walks_array_elements),
        cmocka_unit_test(test_jspan_stays_inside_truncated_or_broken_text),
        cmocka_unit_test(test_jspan_reads_plain_digits),
        cmocka_unit_test(test_render_times_utc_in_and_local_out),
        cmocka_unit_test(test_render_fit_cuts_by_characters),
        cmocka_unit_test(test_render_units_for_people),
        cmocka_unit_test(test_render_words_cut_and_fmt),
        cmocka_unit_test(test_topview_renders_header_and_worker_rows),
        cmocka_unit_test(test_topview_fits_the_height_and_says_what_is_left_out),
        cmocka_unit_test(test_topview_survives_missing_fields_and_shows_alerts),
        cmocka_unit_test(test_topview_shows_one_block_per_named_pool),
        cmocka_unit_test(test_topview_rate_over_the_last_minute),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
