/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_scan.c - cmocka tests for the request-line scanner (pool/path/scan.c).
 *
 * Most tests are tables of {line, expected status, exact error text}: one
 * row per rule of RFC 8259 / the request format, so a failing row names
 * the input that broke.  Every row also checks the invariants the master
 * relies on: messages never contain '"' or '\', the byte a message
 * names is error_pos, spans stay inside the line.
 *
 * `test_scan --bench` skips the tests and prints the scanner's speed
 * (ns per 100-byte request, MB/s over 1 MiB payloads).
 */
#include "scan.h"
#include "ap_common.h"
#include "ap_defaults.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEPTH AP_MAX_JSON_DEPTH

typedef struct {
    const char *in;
    size_t len;      /* 0: strlen(in) */
    scan_status st;
    const char *msg; /* the exact error, "" when none */
} scase;

#define LEN(lit) (sizeof(lit) - 1)

/* Prints s with non-printable bytes as \xNN, for failure reports. */
static void print_escaped(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f)
            print_error("%c", c);
        else
            print_error("\\x%02X", c);
    }
}

/* The invariants every result must keep, whatever the input. */
static void check_invariants(const char *in, size_t len, scan_status st, const scan_result *r)
{
    const char *at;

    assert_true(r->id.off + r->id.len <= len);
    assert_true(r->data.off + r->data.len <= len);
    assert_true(r->resume.off + r->resume.len <= len);
    assert_true(strlen(r->error) < SCAN_ERROR_MAX);
    assert_null(strchr(r->error, '"'));
    assert_null(strchr(r->error, '\\'));
    for (const char *c = r->error; *c; c++)
        assert_true(*c >= 0x20 && *c < 0x7f);
    if (st == SCAN_OK || st == SCAN_BLANK) {
        assert_string_equal(r->error, "");
    } else {
        assert_true(r->error[0] != '\0');
        assert_true(r->error_pos <= len);
    }
    at = strstr(r->error, "at byte ");
    if (at)
        assert_int_equal(strtoull(at + 8, NULL, 10), r->error_pos);
    if (r->id_kind == SCAN_ID_STRING) {
        assert_true(r->id.len >= 2);
        assert_int_equal(in[r->id.off], '"');
        assert_int_equal(in[r->id.off + r->id.len - 1], '"');
    } else if (r->id_kind == SCAN_ID_INT) {
        assert_true(r->id.len >= 1);
    } else {
        assert_int_equal(r->id.len, 0);
    }
    if (st == SCAN_OK) {
        assert_true(r->type_len <= AP_MAX_TYPE_LEN);
        assert_int_equal(strlen(r->type), r->type_len);
        assert_true(r->pool_len <= SCAN_POOL_MAX);
        assert_int_equal(strlen(r->pool), r->pool_len);
        assert_true(r->idem_key_len <= SCAN_IDEM_KEY_MAX);
        assert_int_equal(strlen(r->idem_key), r->idem_key_len);
    }
}

static void run_cases(const scase *cs, size_t n, unsigned depth)
{
    for (size_t i = 0; i < n; i++) {
        const scase *c = &cs[i];
        size_t len = c->len ? c->len : strlen(c->in);
        scan_result r;
        scan_status st = scan_request(c->in, len, depth, &r);

        if (st != c->st || strcmp(r.error, c->msg) != 0) {
            print_error("case %zu: line '", i);
            print_escaped(c->in, len);
            print_error("'\n  expected %s \"%s\"\n  got      %s \"%s\"\n", scan_status_name(c->st),
                        c->msg, scan_status_name(st), r.error);
            fail();
        }
        check_invariants(c->in, len, st, &r);
    }
}

#define RUN(table) run_cases(table, AP_ARRAY_LEN(table), DEPTH)

/* Scans a NUL-terminated line that must be accepted. */
static void scan_ok(const char *line, scan_result *r)
{
    scan_status st = scan_request(line, strlen(line), DEPTH, r);
    if (st != SCAN_OK) {
        print_error("line '%s': %s \"%s\"\n", line, scan_status_name(st), r->error);
        fail();
    }
    check_invariants(line, strlen(line), st, r);
}

static void assert_span(const char *line, scan_span sp, const char *want)
{
    assert_int_equal(sp.len, strlen(want));
    assert_memory_equal(line + sp.off, want, sp.len);
}

/* ---- statuses --------------------------------------------------------- */

static void test_ok_fields(void **state)
{
    const char *line = "{\"id\":\"req-1\",\"type\":\"echo\",\"data\":{\"x\":[1,2,{\"y\":null}]},"
                       "\"retry\":true,\"timeoutMs\":1500}";
    scan_result r;
    AP_UNUSED(state);

    scan_ok(line, &r);
    assert_int_equal(r.id_kind, SCAN_ID_STRING);
    assert_span(line, r.id, "\"req-1\"");
    assert_string_equal(r.type, "echo");
    assert_int_equal(r.type_len, 4);
    assert_span(line, r.data, "{\"x\":[1,2,{\"y\":null}]}");
    assert_int_equal(r.retry, 1);
    assert_int_equal(r.timeout_ms, 1500);
    assert_string_equal(r.error, "");
}

static void test_ok_defaults(void **state)
{
    scan_result r;
    AP_UNUSED(state);

    scan_ok("{\"type\":\"ping\"}", &r);
    assert_int_equal(r.id_kind, SCAN_ID_NONE);
    assert_int_equal(r.id.len, 0);
    assert_string_equal(r.type, "ping");
    assert_int_equal(r.data.len, 0);
    assert_int_equal(r.retry, -1);
    assert_int_equal(r.timeout_ms, -1);

    /* data present but null / empty string are not "absent" */
    scan_ok("{\"type\":\"a\",\"data\":null}", &r);
    assert_span("{\"type\":\"a\",\"data\":null}", r.data, "null");
    scan_ok("{\"data\":\"\",\"type\":\"a\"}", &r);
    assert_span("{\"data\":\"\",\"type\":\"a\"}", r.data, "\"\"");
}

/* Members the caller gives beside the line (the HTTP front door: the
 * URL's pool, the stream asked for, no id) are not read from it: any
 * value passes, as an unknown member's, and they are reported absent. */
static void test_given_members_are_not_read(void **state)
{
    static const char line[] = "{\"id\":{\"x\":1},\"pool\":5,\"stream\":\"yes\",\"type\":\"echo\",\"data\":[1]}";
    scan_result r;
    AP_UNUSED(state);

    assert_int_equal(scan_request(line, sizeof(line) - 1, 64, &r), SCAN_BAD_REQUEST);
    assert_int_equal(scan_request_given(line, sizeof(line) - 1, 64, SCAN_GIVEN_ID | SCAN_GIVEN_POOL, &r),
                     SCAN_BAD_REQUEST); /* "stream" is still read */
    assert_int_equal(
        scan_request_given(line, sizeof(line) - 1, 64, SCAN_GIVEN_ID | SCAN_GIVEN_POOL | SCAN_GIVEN_STREAM, &r),
        SCAN_OK);
    assert_int_equal(r.id_kind, SCAN_ID_NONE);
    assert_int_equal(r.pool_given, 0);
    assert_int_equal(r.stream, 0);
    assert_string_equal(r.type, "echo");
    assert_span(line, r.data, "[1]");
    /* a given member's value is still JSON, checked like any other */
    static const char bad[] = "{\"type\":\"echo\",\"pool\":[1,}";
    assert_int_equal(scan_request_given(bad, sizeof(bad) - 1, 64, SCAN_GIVEN_POOL, &r), SCAN_BAD_JSON);
}

static void test_blank(void **state)
{
    static const scase cases[] = {
        {"", 0, SCAN_BLANK, ""},
        {" ", 0, SCAN_BLANK, ""},
        {"\t  \t", 0, SCAN_BLANK, ""},
        {"\r", 0, SCAN_BLANK, ""},
        {" \r", 0, SCAN_BLANK, ""},
        {"\n", 0, SCAN_BLANK, ""},
    };
    scan_result r;
    AP_UNUSED(state);

    RUN(cases);
    /* a zero-length buffer is blank whatever the pointer */
    assert_int_equal(scan_request("x", 0, DEPTH, &r), SCAN_BLANK);
    assert_int_equal(scan_request(NULL, 0, DEPTH, &r), SCAN_BLANK);
    assert_string_equal(r.error, "");
}

static void test_status_names(void **state)
{
    AP_UNUSED(state);
    assert_string_equal(scan_status_name(SCAN_OK), "ok");
    assert_string_equal(scan_status_name(SCAN_BLANK), "blank");
    assert_string_equal(scan_status_name(SCAN_BAD_JSON), "bad_json");
    assert_string_equal(scan_status_name(SCAN_NOT_OBJECT), "not_object");
    assert_string_equal(scan_status_name(SCAN_BAD_REQUEST), "bad_request");
    assert_string_equal(scan_status_name((scan_status)99), "?");
}

static void test_not_object(void **state)
{
    static const scase cases[] = {
        {"[1,2]", 0, SCAN_NOT_OBJECT, "request must be a JSON object, not an array"},
        {" [ ] ", 0, SCAN_NOT_OBJECT, "request must be a JSON object, not an array"},
        {"\"type\"", 0, SCAN_NOT_OBJECT, "request must be a JSON object, not a string"},
        {"42", 0, SCAN_NOT_OBJECT, "request must be a JSON object, not a number"},
        {"-1.5e3", 0, SCAN_NOT_OBJECT, "request must be a JSON object, not a number"},
        {"true", 0, SCAN_NOT_OBJECT, "request must be a JSON object, not a boolean"},
        {"false\r", 0, SCAN_NOT_OBJECT, "request must be a JSON object, not a boolean"},
        {"null", 0, SCAN_NOT_OBJECT, "request must be a JSON object, not null"},
        /* invalid JSON is reported as such first */
        {"[1,", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected end of input at byte 3 (expected a value)"},
        {"[1] x", 0, SCAN_BAD_JSON,
         "invalid JSON: trailing characters after the JSON value at byte 4"},
        {"hello", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character 'h' at byte 0 (expected a value)"},
        {"1 2", 0, SCAN_BAD_JSON,
         "invalid JSON: trailing characters after the JSON value at byte 2"},
    };
    AP_UNUSED(state);
    RUN(cases);
}

/* ---- id --------------------------------------------------------------- */

static void test_id_values(void **state)
{
    static const struct {
        const char *line;
        scan_id_kind kind;
        const char *raw;
    } ok[] = {
        {"{\"id\":\"a\",\"type\":\"t\"}", SCAN_ID_STRING, "\"a\""},
        {"{\"id\":\"\",\"type\":\"t\"}", SCAN_ID_STRING, "\"\""},
        {"{\"id\":\"a\\\"b\\u00e9\\\\\",\"type\":\"t\"}", SCAN_ID_STRING, "\"a\\\"b\\u00e9\\\\\""},
        {"{\"id\":\"\xC3\xA9\xF0\x9F\x98\x80\",\"type\":\"t\"}", SCAN_ID_STRING,
         "\"\xC3\xA9\xF0\x9F\x98\x80\""},
        {"{\"id\":0,\"type\":\"t\"}", SCAN_ID_INT, "0"},
        {"{\"id\":42,\"type\":\"t\"}", SCAN_ID_INT, "42"},
        {"{\"id\":-7,\"type\":\"t\"}", SCAN_ID_INT, "-7"},
        {"{\"id\":-0,\"type\":\"t\"}", SCAN_ID_INT, "-0"},
        {"{\"id\":123456789012345678901234567890,\"type\":\"t\"}", SCAN_ID_INT,
         "123456789012345678901234567890"},
        {"{\"id\":-99999999999999999999999999999999,\"type\":\"t\"}", SCAN_ID_INT,
         "-99999999999999999999999999999999"},
        {"{ \"id\" : 5 , \"type\":\"t\"}", SCAN_ID_INT, "5"},
        /* last occurrence wins, whichever kind */
        {"{\"id\":\"x\",\"type\":\"t\",\"id\":9}", SCAN_ID_INT, "9"},
        {"{\"id\":9,\"id\":\"y\",\"type\":\"t\"}", SCAN_ID_STRING, "\"y\""},
        {"{\"id\":1.5,\"id\":3,\"type\":\"t\"}", SCAN_ID_INT, "3"},
        /* an escaped key still names the id */
        {"{\"\\u0069d\":11,\"type\":\"t\"}", SCAN_ID_INT, "11"},
        {"{\"\\u0069\\u0064\":12,\"type\":\"t\"}", SCAN_ID_INT, "12"},
    };
    AP_UNUSED(state);

    for (size_t i = 0; i < AP_ARRAY_LEN(ok); i++) {
        scan_result r;
        scan_ok(ok[i].line, &r);
        assert_int_equal(r.id_kind, ok[i].kind);
        assert_span(ok[i].line, r.id, ok[i].raw);
    }
}

static void test_id_refused(void **state)
{
    static const char *const bad[] = {
        "{\"id\":1.5,\"type\":\"t\"}",
        "{\"id\":1e3,\"type\":\"t\"}",
        "{\"id\":1E3,\"type\":\"t\"}",
        "{\"id\":-2.0,\"type\":\"t\"}",
        "{\"id\":0e0,\"type\":\"t\"}",
        "{\"id\":true,\"type\":\"t\"}",
        "{\"id\":false,\"type\":\"t\"}",
        "{\"id\":null,\"type\":\"t\"}",
        "{\"id\":{},\"type\":\"t\"}",
        "{\"id\":{\"a\":1},\"type\":\"t\"}",
        "{\"id\":[1],\"type\":\"t\"}",
        "{\"id\":3,\"type\":\"t\",\"id\":null}", /* last wins */
        "{\"id\":1.5}",                          /* id is judged before type */
    };
    AP_UNUSED(state);

    for (size_t i = 0; i < AP_ARRAY_LEN(bad); i++) {
        scan_result r;
        scan_status st = scan_request(bad[i], strlen(bad[i]), DEPTH, &r);
        if (st != SCAN_BAD_REQUEST)
            print_error("line '%s'\n", bad[i]);
        assert_int_equal(st, SCAN_BAD_REQUEST);
        assert_string_equal(r.error, "id must be a string or an integer");
        assert_int_equal(r.id_kind, SCAN_ID_NONE);
        check_invariants(bad[i], strlen(bad[i]), st, &r);
    }
}

/* The id is echoed in error answers whenever one was seen. */
static void test_id_echo_on_error(void **state)
{
    static const struct {
        const char *line;
        scan_status st;
        scan_id_kind kind;
        const char *raw;
    } cases[] = {
        /* request-level errors: the id from anywhere in the object */
        {"{\"id\":7,\"type\":5}", SCAN_BAD_REQUEST, SCAN_ID_INT, "7"},
        {"{\"type\":5,\"id\":\"k\"}", SCAN_BAD_REQUEST, SCAN_ID_STRING, "\"k\""},
        {"{\"id\":\"k\"}", SCAN_BAD_REQUEST, SCAN_ID_STRING, "\"k\""},
        {"{\"id\":8,\"type\":\"t\",\"retry\":1}", SCAN_BAD_REQUEST, SCAN_ID_INT, "8"},
        /* syntax errors: the id read before the error */
        {"{\"id\":\"abc\",\"type\":\"a\",\"data\":[1,}", SCAN_BAD_JSON, SCAN_ID_STRING, "\"abc\""},
        {"{\"id\":12,\"data\":\"\xC0\x80\"}", SCAN_BAD_JSON, SCAN_ID_INT, "12"},
        {"{\"id\":12", SCAN_BAD_JSON, SCAN_ID_INT, "12"},
        {"{\"id\":12 x", SCAN_BAD_JSON, SCAN_ID_INT, "12"},
        {"{\"id\":12,\"type\":\"a\"} trailing", SCAN_BAD_JSON, SCAN_ID_INT, "12"},
        /* ... but not one after the error, nor an incomplete one */
        {"{\"data\":[1,},\"id\":1}", SCAN_BAD_JSON, SCAN_ID_NONE, ""},
        {"{\"id\":\"abc", SCAN_BAD_JSON, SCAN_ID_NONE, ""},
        {"{\"id\":12e", SCAN_BAD_JSON, SCAN_ID_NONE, ""},
        {"{\"id\":1,\"id\":true,\"type\":\"a\"}", SCAN_BAD_REQUEST, SCAN_ID_NONE, ""},
        {"{\"id\":1,\"id\":1.5,", SCAN_BAD_JSON, SCAN_ID_NONE, ""},
        {"[{\"id\":1}]", SCAN_NOT_OBJECT, SCAN_ID_NONE, ""},
        {"{\"x\":{\"id\":1},\"type\":5}", SCAN_BAD_REQUEST, SCAN_ID_NONE, ""},
    };
    AP_UNUSED(state);

    for (size_t i = 0; i < AP_ARRAY_LEN(cases); i++) {
        scan_result r;
        const char *line = cases[i].line;
        scan_status st = scan_request(line, strlen(line), DEPTH, &r);
        if (st != cases[i].st || r.id_kind != cases[i].kind)
            print_error("line '%s': %s \"%s\" id_kind %d\n", line, scan_status_name(st), r.error,
                        (int)r.id_kind);
        assert_int_equal(st, cases[i].st);
        assert_int_equal(r.id_kind, cases[i].kind);
        assert_span(line, r.id, cases[i].raw);
        check_invariants(line, strlen(line), st, &r);
    }
}

/* ---- type, keys, members ---------------------------------------------- */

static void test_type_unescape(void **state)
{
    static const struct {
        const char *line;
        const char *type;
        size_t len;
    } cases[] = {
        {"{\"type\":\"echo\"}", "echo", 4},
        {"{\"type\":\"\"}", "", 0},
        {"{\"type\":\"a\\/b\"}", "a/b", 3},
        {"{\"type\":\"\\\"q\\\\\"}", "\"q\\", 3},
        {"{\"type\":\"\\b\\f\\n\\r\\t\"}", "\b\f\n\r\t", 5},
        {"{\"type\":\"\\u0074\\u0065\\u0073\\u0074\"}", "test", 4},
        {"{\"type\":\"\\u00e9\\u00E9\"}", "\xC3\xA9\xC3\xA9", 4},
        {"{\"type\":\"\\u20ac\"}", "\xE2\x82\xAC", 3},
        {"{\"type\":\"\\ud83d\\ude00\"}", "\xF0\x9F\x98\x80", 4},
        {"{\"type\":\"\\uDBFF\\uDFFF\"}", "\xF4\x8F\xBF\xBF", 4},
        {"{\"type\":\"\\u007f\"}", "\x7f", 1},
        {"{\"type\":\"caf\xC3\xA9\"}", "caf\xC3\xA9", 5},
        {"{\"type\":\"x\",\"type\":\"last\"}", "last", 4},
        {"{\"type\":5,\"type\":\"fixed\"}", "fixed", 5},
        {"{\"\\u0074ype\":\"esc-key\"}", "esc-key", 7},
        {"{\"typ\\u0065\":\"esc-key2\"}", "esc-key2", 8},
        {"{\"\\u0074\\u0079\\u0070\\u0065\":\"all\"}", "all", 3},
    };
    AP_UNUSED(state);

    for (size_t i = 0; i < AP_ARRAY_LEN(cases); i++) {
        scan_result r;
        scan_ok(cases[i].line, &r);
        assert_int_equal(r.type_len, cases[i].len);
        assert_memory_equal(r.type, cases[i].type, cases[i].len);
        assert_int_equal(r.type[r.type_len], '\0');
    }
}

static void test_type_refused(void **state)
{
    static const scase cases[] = {
        {"{}", 0, SCAN_BAD_REQUEST, "type is missing"},
        {"{\"id\":1}", 0, SCAN_BAD_REQUEST, "type is missing"},
        {"{\"Type\":\"a\"}", 0, SCAN_BAD_REQUEST, "type is missing"},
        {"{\"type \":\"a\"}", 0, SCAN_BAD_REQUEST, "type is missing"},
        {"{\"ty\\/pe\":\"a\"}", 0, SCAN_BAD_REQUEST, "type is missing"},
        {"{\"data\":{\"type\":\"nested\"}}", 0, SCAN_BAD_REQUEST, "type is missing"},
        {"{\"type\":5}", 0, SCAN_BAD_REQUEST, "type must be a string"},
        {"{\"type\":null}", 0, SCAN_BAD_REQUEST, "type must be a string"},
        {"{\"type\":true}", 0, SCAN_BAD_REQUEST, "type must be a string"},
        {"{\"type\":[\"a\"]}", 0, SCAN_BAD_REQUEST, "type must be a string"},
        {"{\"type\":{}}", 0, SCAN_BAD_REQUEST, "type must be a string"},
        {"{\"type\":\"a\",\"type\":1}", 0, SCAN_BAD_REQUEST, "type must be a string"},
        {"{\"type\":\"a\\u0000b\"}", 0, SCAN_BAD_REQUEST, "type must not contain U+0000"},
        {"{\"type\":\"\\u0000\"}", 0, SCAN_BAD_REQUEST, "type must not contain U+0000"},
    };
    AP_UNUSED(state);
    RUN(cases);
}

/* Builds {"type":"<prefix><n x fill>"} into buf. */
static size_t type_line(char *buf, size_t cap, const char *unit, size_t n)
{
    size_t len = (size_t)snprintf(buf, cap, "{\"type\":\"");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s", unit);
    len += (size_t)snprintf(buf + len, cap - len, "\"}");
    assert_true(len < cap);
    return len;
}

static void test_type_length(void **state)
{
    static char buf[8192];
    scan_result r;
    size_t len;
    AP_UNUSED(state);

    /* exactly AP_MAX_TYPE_LEN bytes: raw, escaped, and 2-byte characters */
    len = type_line(buf, sizeof buf, "a", AP_MAX_TYPE_LEN);
    assert_int_equal(scan_request(buf, len, DEPTH, &r), SCAN_OK);
    assert_int_equal(r.type_len, AP_MAX_TYPE_LEN);
    len = type_line(buf, sizeof buf, "\\u0061", AP_MAX_TYPE_LEN);
    assert_int_equal(scan_request(buf, len, DEPTH, &r), SCAN_OK);
    assert_int_equal(r.type_len, AP_MAX_TYPE_LEN);
    assert_int_equal(r.type[AP_MAX_TYPE_LEN - 1], 'a');
    len = type_line(buf, sizeof buf, "\xC3\xA9", AP_MAX_TYPE_LEN / 2);
    assert_int_equal(scan_request(buf, len, DEPTH, &r), SCAN_OK);
    assert_int_equal(r.type_len, AP_MAX_TYPE_LEN);
    len = type_line(buf, sizeof buf, "\\u00e9", AP_MAX_TYPE_LEN / 2);
    assert_int_equal(scan_request(buf, len, DEPTH, &r), SCAN_OK);
    assert_int_equal(r.type_len, AP_MAX_TYPE_LEN);

    /* one byte more, each way */
    len = type_line(buf, sizeof buf, "a", AP_MAX_TYPE_LEN + 1);
    assert_int_equal(scan_request(buf, len, DEPTH, &r), SCAN_BAD_REQUEST);
    assert_string_equal(r.error, "type longer than 256 bytes");
    len = type_line(buf, sizeof buf, "\\u0061", AP_MAX_TYPE_LEN + 1);
    assert_int_equal(scan_request(buf, len, DEPTH, &r), SCAN_BAD_REQUEST);
    assert_string_equal(r.error, "type longer than 256 bytes");
    /* 255 bytes + a 2-byte character = 257 */
    len = type_line(buf, sizeof buf, "a", AP_MAX_TYPE_LEN - 1);
    memcpy(buf + len - 2, "\\u00e9\"}", 8);
    len += 6;
    assert_int_equal(scan_request(buf, len, DEPTH, &r), SCAN_BAD_REQUEST);
    assert_string_equal(r.error, "type longer than 256 bytes");
    /* a later short type wins over a long one, and the other way round */
    len = type_line(buf, sizeof buf, "a", 1000);
    memcpy(buf + len - 1, ",\"type\":\"ok\"}", 14);
    len += 12;
    assert_int_equal(scan_request(buf, len, DEPTH, &r), SCAN_OK);
    assert_string_equal(r.type, "ok");
}

static void test_unknown_and_duplicate_members(void **state)
{
    const char *line = "{\"extra\":{\"deep\":[1,2,{\"x\":\"\\ud83d\\ude00\"}]},\"type\":\"a\","
                       "\"data\":1,\"Data\":2,\"datum\":3,\"data\":[true],\"\":null,"
                       "\"retry\":false,\"timeoutMs\":0,\"timeoutMs\":5}";
    scan_result r;
    AP_UNUSED(state);

    scan_ok(line, &r);
    assert_string_equal(r.type, "a");
    assert_span(line, r.data, "[true]");
    assert_int_equal(r.retry, 0);
    assert_int_equal(r.timeout_ms, 5);

    /* an escaped key longer than any known one is simply unknown */
    scan_ok("{\"timeoutMs\\u0020\":\"x\",\"type\":\"a\",\"\\u0064\\u0061\\u0074\\u0061\":7}", &r);
    assert_int_equal(r.timeout_ms, -1);
    assert_span("{\"timeoutMs\\u0020\":\"x\",\"type\":\"a\",\"\\u0064\\u0061\\u0074\\u0061\":7}",
                r.data, "7");

    /* unknown members are still validated */
    static const scase bad[] = {
        {"{\"type\":\"a\",\"x\":[1,}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character '}' at byte 19 (expected a value)"},
        {"{\"type\":\"a\",\"x\":\"\xFF\"}", 0, SCAN_BAD_JSON,
         "invalid UTF-8 at byte 17 (invalid lead byte)"},
        {"{\"type\":\"a\",\"x\\q\":1}", 0, SCAN_BAD_JSON,
         "invalid JSON: invalid escape sequence at byte 14 (backslash followed by 'q')"},
    };
    RUN(bad);
}

/* "stream": true streams, false or absent does not, anything else is a
 * bad request; the last occurrence counts, escaped names too. */
static void test_stream_member(void **state)
{
    scan_result r;
    AP_UNUSED(state);

    scan_ok("{\"type\":\"a\"}", &r);
    assert_int_equal(r.stream, 0);
    scan_ok("{\"type\":\"a\",\"stream\":true}", &r);
    assert_int_equal(r.stream, 1);
    scan_ok("{\"type\":\"a\",\"stream\":false}", &r);
    assert_int_equal(r.stream, 0);
    scan_ok("{\"type\":\"a\",\"stream\":false,\"str\\u0065am\":true}", &r);
    assert_int_equal(r.stream, 1);
    scan_ok("{\"type\":\"a\",\"streams\":1}", &r);
    assert_int_equal(r.stream, 0);

    static const scase bad[] = {
        {"{\"type\":\"a\",\"stream\":1}", 0, SCAN_BAD_REQUEST, "stream must be true or false"},
        {"{\"type\":\"a\",\"stream\":null}", 0, SCAN_BAD_REQUEST, "stream must be true or false"},
        {"{\"type\":\"a\",\"stream\":\"true\"}", 0, SCAN_BAD_REQUEST, "stream must be true or false"},
        {"{\"type\":\"a\",\"stream\":true,\"stream\":{}}", 0, SCAN_BAD_REQUEST,
         "stream must be true or false"},
    };
    RUN(bad);
}

/* "resume" (the checkpoint a request's first attempt resumes from) is
 * any JSON value, recorded as its raw span (absent: len 0); the last
 * occurrence counts, escaped names too; one inside data is data's.  Its
 * bound is the pool's, checked by the caller. */
static void test_resume_member(void **state)
{
    scan_result r;
    AP_UNUSED(state);

    scan_ok("{\"type\":\"a\"}", &r);
    assert_int_equal(r.resume.len, 0);
    const char *line = "{\"type\":\"a\",\"resume\":{\"step\": 3, \"big\":12345678901234567890}}";
    scan_ok(line, &r);
    assert_span(line, r.resume, "{\"step\": 3, \"big\":12345678901234567890}");
    line = "{\"resume\":null,\"type\":\"a\"}";
    scan_ok(line, &r);
    assert_span(line, r.resume, "null");
    line = "{\"type\":\"a\",\"resume\":1,\"r\\u0065sume\":[\"x\"]}";
    scan_ok(line, &r);
    assert_span(line, r.resume, "[\"x\"]");
    line = "{\"type\":\"a\",\"resume\":\"s\\n\"}";
    scan_ok(line, &r);
    assert_span(line, r.resume, "\"s\\n\"");
    scan_ok("{\"type\":\"a\",\"data\":{\"resume\":2}}", &r);
    assert_int_equal(r.resume.len, 0);
    scan_ok("{\"type\":\"a\",\"resumes\":2}", &r);
    assert_int_equal(r.resume.len, 0);
    /* a scan after one with a resume starts without it */
    scan_ok("{\"type\":\"a\",\"resume\":5}", &r);
    scan_ok("{\"type\":\"a\"}", &r);
    assert_int_equal(r.resume.len, 0);

    static const scase bad[] = {
        {"{\"resume\":{}}", 0, SCAN_BAD_REQUEST, "type is missing"},
    };
    RUN(bad);
}

/* Builds {"type":"a","pool":"<n x unit>"} into buf. */
static size_t pool_line(char *buf, size_t cap, const char *unit, size_t n)
{
    size_t len = (size_t)snprintf(buf, cap, "{\"type\":\"a\",\"pool\":\"");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s", unit);
    len += (size_t)snprintf(buf + len, cap - len, "\"}");
    assert_true(len < cap);
    return len;
}

/* "pool" names the pool a request is for: a string, unescaped into
 * r.pool/pool_len (0 when absent), at most SCAN_POOL_MAX bytes, without
 * U+0000; the last occurrence counts, escaped names too.  Whether the
 * pool exists is the caller's question. */
static void test_pool_member(void **state)
{
    static char buf[1024];
    scan_result r;
    size_t len;
    AP_UNUSED(state);

    scan_ok("{\"type\":\"a\"}", &r);
    assert_int_equal(r.pool_len, 0);
    assert_int_equal(r.pool_given, 0);
    assert_string_equal(r.pool, "");
    /* "" is given: it names no pool (the caller refuses it as unknown) */
    scan_ok("{\"type\":\"a\",\"pool\":\"\"}", &r);
    assert_int_equal(r.pool_given, 1);
    assert_int_equal(r.pool_len, 0);
    scan_ok("{\"type\":\"a\",\"pool\":\"gpu\"}", &r);
    assert_int_equal(r.pool_given, 1);
    assert_int_equal(r.pool_len, 3);
    assert_string_equal(r.pool, "gpu");
    scan_ok("{\"pool\":\"g\\u0070u\",\"type\":\"a\"}", &r);
    assert_int_equal(r.pool_len, 3);
    assert_string_equal(r.pool, "gpu");
    scan_ok("{\"type\":\"a\",\"pool\":\"a\\\"b\\\\c\\/\"}", &r);
    assert_string_equal(r.pool, "a\"b\\c/");
    assert_int_equal(r.pool_len, 6);
    scan_ok("{\"type\":\"a\",\"pool\":\"\\u00e9t\xC3\xA9\"}", &r);
    assert_int_equal(r.pool_len, 5);
    assert_string_equal(r.pool, "\xC3\xA9t\xC3\xA9");
    scan_ok("{\"type\":\"a\",\"pool\":\"x\",\"p\\u006fol\":\"y\"}", &r);
    assert_string_equal(r.pool, "y");
    scan_ok("{\"type\":\"a\",\"pool\":1,\"pool\":\"z\"}", &r);
    assert_string_equal(r.pool, "z");
    assert_int_equal(r.pool_len, 1);
    scan_ok("{\"type\":\"a\",\"pools\":1,\"data\":{\"pool\":2}}", &r);
    assert_int_equal(r.pool_len, 0);
    /* a scan after one with a pool starts without it */
    scan_ok("{\"type\":\"a\",\"pool\":\"gpu\"}", &r);
    scan_ok("{\"type\":\"a\"}", &r);
    assert_int_equal(r.pool_len, 0);
    assert_int_equal(r.pool_given, 0);
    assert_string_equal(r.pool, "");

    /* exactly SCAN_POOL_MAX bytes: raw, escaped, 2-byte characters */
    len = pool_line(buf, sizeof buf, "p", SCAN_POOL_MAX);
    assert_int_equal(scan_request(buf, len, DEPTH, &r), SCAN_OK);
    assert_int_equal(r.pool_len, SCAN_POOL_MAX);
    assert_int_equal(strlen(r.pool), SCAN_POOL_MAX);
    len = pool_line(buf, sizeof buf, "\\u0070", SCAN_POOL_MAX);
    assert_int_equal(scan_request(buf, len, DEPTH, &r), SCAN_OK);
    assert_int_equal(r.pool_len, SCAN_POOL_MAX);
    assert_int_equal(r.pool[SCAN_POOL_MAX - 1], 'p');
    len = pool_line(buf, sizeof buf, "\xC3\xA9", SCAN_POOL_MAX / 2);
    assert_int_equal(scan_request(buf, len, DEPTH, &r), SCAN_OK);
    assert_int_equal(r.pool_len, SCAN_POOL_MAX);
    /* one byte more, each way */
    static const char *const too_long[] = {"p", "\\u0070"};
    for (unsigned k = 0; k < 2; k++) {
        len = pool_line(buf, sizeof buf, too_long[k], SCAN_POOL_MAX + 1);
        assert_int_equal(scan_request(buf, len, DEPTH, &r), SCAN_BAD_REQUEST);
        assert_string_equal(r.error, "pool longer than 64 bytes: no pool has such a name");
        assert_int_equal(r.pool_len, 0);
        check_invariants(buf, len, SCAN_BAD_REQUEST, &r);
    }
    len = pool_line(buf, sizeof buf, "\xC3\xA9", SCAN_POOL_MAX / 2 + 1);
    assert_int_equal(scan_request(buf, len, DEPTH, &r), SCAN_BAD_REQUEST);
    assert_string_equal(r.error, "pool longer than 64 bytes: no pool has such a name");

    static const scase bad[] = {
        {"{\"type\":\"a\",\"pool\":1}", 0, SCAN_BAD_REQUEST, "pool must be a string: the name of a pool"},
        {"{\"type\":\"a\",\"pool\":null}", 0, SCAN_BAD_REQUEST, "pool must be a string: the name of a pool"},
        {"{\"type\":\"a\",\"pool\":true}", 0, SCAN_BAD_REQUEST, "pool must be a string: the name of a pool"},
        {"{\"type\":\"a\",\"pool\":[\"a\"]}", 0, SCAN_BAD_REQUEST,
         "pool must be a string: the name of a pool"},
        {"{\"type\":\"a\",\"pool\":{}}", 0, SCAN_BAD_REQUEST, "pool must be a string: the name of a pool"},
        {"{\"type\":\"a\",\"pool\":\"ok\",\"pool\":2}", 0, SCAN_BAD_REQUEST,
         "pool must be a string: the name of a pool"},
        {"{\"type\":\"a\",\"pool\":\"a\\u0000b\"}", 0, SCAN_BAD_REQUEST, "pool must not contain U+0000"},
        {"{\"type\":\"a\",\"pool\":\"\\u0000\"}", 0, SCAN_BAD_REQUEST, "pool must not contain U+0000"},
        /* the request's other errors are told first */
        {"{\"pool\":1}", 0, SCAN_BAD_REQUEST, "type is missing"},
    };
    RUN(bad);
}

/* Builds {"type":"a","session":"<n x unit>"} into buf. */
static size_t session_line(char *buf, size_t cap, const char *unit, size_t n)
{
    size_t len = (size_t)snprintf(buf, cap, "{\"type\":\"a\",\"session\":\"");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s", unit);
    len += (size_t)snprintf(buf + len, cap - len, "\"}");
    assert_true(len < cap);
    return len;
}

/* "session" keys a conversation (docs/sessions.md): a string of 1 to
 * SCAN_SESSION_MAX bytes after unescaping, without U+0000, unescaped
 * into r.session/session_len (0 when absent); the last occurrence
 * counts. */
static void test_session_member(void **state)
{
    static char buf[4096];
    scan_result r;
    size_t len;
    AP_UNUSED(state);

    scan_ok("{\"type\":\"a\"}", &r);
    assert_int_equal(r.session_len, 0);
    assert_string_equal(r.session, "");
    scan_ok("{\"type\":\"a\",\"session\":\"user-42\"}", &r);
    assert_int_equal(r.session_len, 7);
    assert_string_equal(r.session, "user-42");
    scan_ok("{\"s\\u0065ssion\":\"a\\u00e9\",\"type\":\"a\"}", &r);
    assert_int_equal(r.session_len, 3);
    assert_string_equal(r.session, "a\xC3\xA9");
    scan_ok("{\"type\":\"a\",\"session\":1,\"session\":\"z\"}", &r);
    assert_string_equal(r.session, "z");
    scan_ok("{\"type\":\"a\",\"data\":{\"session\":2}}", &r);
    assert_int_equal(r.session_len, 0);
    /* a scan after one with a session starts without it */
    scan_ok("{\"type\":\"a\",\"session\":\"s\"}", &r);
    scan_ok("{\"type\":\"a\"}", &r);
    assert_int_equal(r.session_len, 0);
    assert_string_equal(r.session, "");

    /* exactly SCAN_SESSION_MAX bytes, raw and escaped; one more each way */
    len = session_line(buf, sizeof buf, "s", SCAN_SESSION_MAX);
    assert_int_equal(scan_request(buf, len, DEPTH, &r), SCAN_OK);
    assert_int_equal(r.session_len, SCAN_SESSION_MAX);
    assert_int_equal(strlen(r.session), SCAN_SESSION_MAX);
    len = session_line(buf, sizeof buf, "\\u0073", SCAN_SESSION_MAX);
    assert_int_equal(scan_request(buf, len, DEPTH, &r), SCAN_OK);
    assert_int_equal(r.session_len, SCAN_SESSION_MAX);
    static const char *const too_long[] = {"s", "\\u0073"};
    for (unsigned k = 0; k < 2; k++) {
        len = session_line(buf, sizeof buf, too_long[k], SCAN_SESSION_MAX + 1);
        assert_int_equal(scan_request(buf, len, DEPTH, &r), SCAN_BAD_REQUEST);
        assert_string_equal(r.error, "session longer than 256 bytes");
        assert_int_equal(r.session_len, 0);
        check_invariants(buf, len, SCAN_BAD_REQUEST, &r);
    }

    static const scase bad[] = {
        {"{\"type\":\"a\",\"session\":1}", 0, SCAN_BAD_REQUEST, "session must be a string: the key of a conversation"},
        {"{\"type\":\"a\",\"session\":null}", 0, SCAN_BAD_REQUEST,
         "session must be a string: the key of a conversation"},
        {"{\"type\":\"a\",\"session\":\"\"}", 0, SCAN_BAD_REQUEST, "session must not be empty"},
        {"{\"type\":\"a\",\"session\":\"a\\u0000\"}", 0, SCAN_BAD_REQUEST, "session must not contain U+0000"},
        {"{\"type\":\"a\",\"session\":\"ok\",\"session\":[]}", 0, SCAN_BAD_REQUEST,
         "session must be a string: the key of a conversation"},
        /* the request's other errors are told first */
        {"{\"session\":1}", 0, SCAN_BAD_REQUEST, "type is missing"},
        {"{\"type\":\"a\",\"pool\":1,\"session\":1}", 0, SCAN_BAD_REQUEST, "pool must be a string: the name of a pool"},
    };
    RUN(bad);
}

static void test_retry_timeout(void **state)
{
    scan_result r;
    AP_UNUSED(state);

    scan_ok("{\"type\":\"a\",\"retry\":true}", &r);
    assert_int_equal(r.retry, 1);
    scan_ok("{\"type\":\"a\",\"retry\":false}", &r);
    assert_int_equal(r.retry, 0);
    scan_ok("{\"type\":\"a\",\"retry\":3,\"retry\":false}", &r);
    assert_int_equal(r.retry, 0);
    scan_ok("{\"type\":\"a\",\"timeoutMs\":1}", &r);
    assert_int_equal(r.timeout_ms, 1);
    scan_ok("{\"type\":\"a\",\"timeoutMs\":30000}", &r);
    assert_int_equal(r.timeout_ms, 30000);
    scan_ok("{\"type\":\"a\",\"timeoutMs\":9223372036854775807}", &r);
    assert_true(r.timeout_ms == INT64_MAX);

    static const scase bad[] = {
        {"{\"type\":\"a\",\"retry\":1}", 0, SCAN_BAD_REQUEST, "retry must be true or false"},
        {"{\"type\":\"a\",\"retry\":null}", 0, SCAN_BAD_REQUEST, "retry must be true or false"},
        {"{\"type\":\"a\",\"retry\":\"true\"}", 0, SCAN_BAD_REQUEST, "retry must be true or false"},
        {"{\"type\":\"a\",\"retry\":[]}", 0, SCAN_BAD_REQUEST, "retry must be true or false"},
        {"{\"type\":\"a\",\"retry\":true,\"retry\":0}", 0, SCAN_BAD_REQUEST,
         "retry must be true or false"},
        {"{\"type\":\"a\",\"timeoutMs\":-1}", 0, SCAN_BAD_REQUEST,
         "timeoutMs must be a positive integer (milliseconds)"},
        {"{\"type\":\"a\",\"timeoutMs\":0}", 0, SCAN_BAD_REQUEST,
         "timeoutMs must be a positive integer (milliseconds)"},
        {"{\"type\":\"a\",\"timeoutMs\":-0}", 0, SCAN_BAD_REQUEST,
         "timeoutMs must be a positive integer (milliseconds)"},
        {"{\"type\":\"a\",\"timeoutMs\":5,\"timeoutMs\":0}", 0, SCAN_BAD_REQUEST,
         "timeoutMs must be a positive integer (milliseconds)"},
        {"{\"type\":\"a\",\"timeoutMs\":1e999999999999}", 0, SCAN_BAD_JSON,
         "number out of range at byte 24 (beyond a double's largest, about 1.8e308)"},
        {"{\"type\":\"a\",\"timeoutMs\":-00}", 0, SCAN_BAD_JSON,
         "invalid JSON: number with a leading zero at byte 24"},
        {"{\"type\":\"a\",\"timeoutMs\":1.5}", 0, SCAN_BAD_REQUEST,
         "timeoutMs must be a positive integer (milliseconds)"},
        {"{\"type\":\"a\",\"timeoutMs\":1e3}", 0, SCAN_BAD_REQUEST,
         "timeoutMs must be a positive integer (milliseconds)"},
        {"{\"type\":\"a\",\"timeoutMs\":\"100\"}", 0, SCAN_BAD_REQUEST,
         "timeoutMs must be a positive integer (milliseconds)"},
        {"{\"type\":\"a\",\"timeoutMs\":null}", 0, SCAN_BAD_REQUEST,
         "timeoutMs must be a positive integer (milliseconds)"},
        {"{\"type\":\"a\",\"timeoutMs\":true}", 0, SCAN_BAD_REQUEST,
         "timeoutMs must be a positive integer (milliseconds)"},
        {"{\"type\":\"a\",\"timeoutMs\":9223372036854775808}", 0, SCAN_BAD_REQUEST,
         "timeoutMs is too large"},
        {"{\"type\":\"a\",\"timeoutMs\":123456789012345678901234567890}", 0, SCAN_BAD_REQUEST,
         "timeoutMs is too large"},
        /* the order request-level errors are reported in */
        {"{\"id\":[],\"type\":1,\"retry\":1,\"timeoutMs\":-1}", 0, SCAN_BAD_REQUEST,
         "id must be a string or an integer"},
        {"{\"type\":1,\"retry\":1,\"timeoutMs\":-1}", 0, SCAN_BAD_REQUEST, "type must be a string"},
        {"{\"retry\":1,\"timeoutMs\":-1}", 0, SCAN_BAD_REQUEST, "type is missing"},
        {"{\"type\":\"a\",\"retry\":1,\"timeoutMs\":-1}", 0, SCAN_BAD_REQUEST,
         "retry must be true or false"},
    };
    RUN(bad);
}

/* ---- structure, whitespace, depth -------------------------------------- */

static void test_whitespace(void **state)
{
    static const scase cases[] = {
        {" {\"type\":\"a\"}", 0, SCAN_OK, ""},
        {"{\"type\":\"a\"}\r", 0, SCAN_OK, ""},
        {"{\"type\":\"a\"} \t \r", 0, SCAN_OK, ""},
        {"\t{ \"type\" :\t\"a\" ,\r\"id\" : 1 ,\n\"data\"\t:\t[ 1 , { } , [ ] ] }\r", 0, SCAN_OK, ""},
        {"{\"type\":\"a\"}\r\r", 0, SCAN_OK, ""},
        /* only space, tab, CR and LF are JSON whitespace */
        {"{\"type\":\"a\",\v\"id\":1}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected byte 0x0B at byte 12 (expected an object key)"},
        {"{\"type\":\"a\"}\f", 0, SCAN_BAD_JSON,
         "invalid JSON: trailing characters after the JSON value at byte 12"},
        {"{\"type\":\xC2\xA0\"a\"}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected byte 0xC2 at byte 8 (expected a value)"},
        {"\f{}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected byte 0x0C at byte 0 (expected a value)"},
        /* a NUL byte is not whitespace either */
        {"{\"type\":\"a\"}\0", LEN("{\"type\":\"a\"}\0"), SCAN_BAD_JSON,
         "invalid JSON: trailing characters after the JSON value at byte 12"},
        {"\0{\"type\":\"a\"}", LEN("\0{\"type\":\"a\"}"), SCAN_BAD_JSON,
         "invalid JSON: unexpected byte 0x00 at byte 0 (expected a value)"},
    };
    AP_UNUSED(state);
    RUN(cases);
}

static void test_trailing_and_bom(void **state)
{
    static const scase cases[] = {
        {"{\"type\":\"a\"}x", 0, SCAN_BAD_JSON,
         "invalid JSON: trailing characters after the JSON value at byte 12"},
        {"{\"type\":\"a\"} {}", 0, SCAN_BAD_JSON,
         "invalid JSON: trailing characters after the JSON value at byte 13"},
        {"{\"type\":\"a\"}}", 0, SCAN_BAD_JSON,
         "invalid JSON: trailing characters after the JSON value at byte 12"},
        {"{\"type\":\"a\"},", 0, SCAN_BAD_JSON,
         "invalid JSON: trailing characters after the JSON value at byte 12"},
        {"{\"type\":\"a\"}\n{\"type\":\"b\"}", 0, SCAN_BAD_JSON,
         "invalid JSON: trailing characters after the JSON value at byte 13"},
        {"\xEF\xBB\xBF{\"type\":\"a\"}", 0, SCAN_BAD_JSON,
         "invalid JSON: byte order mark (U+FEFF) at byte 0 is not allowed"},
        {" \xEF\xBB\xBF{\"type\":\"a\"}", 0, SCAN_BAD_JSON,
         "invalid JSON: byte order mark (U+FEFF) at byte 1 is not allowed"},
        {"\xEF\xBB", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected byte 0xEF at byte 0 (expected a value)"},
        /* a BOM inside a string is just U+FEFF */
        {"{\"type\":\"\xEF\xBB\xBF\"}", 0, SCAN_OK, ""},
    };
    AP_UNUSED(state);
    RUN(cases);
}

static void test_structure_errors(void **state)
{
    static const scase cases[] = {
        {"{", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected end of input at byte 1 (expected an object key)"},
        {"{\"type\":\"a\"", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected end of input at byte 11 (expected ',' or '}')"},
        {"{\"type\":\"a\",}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character '}' at byte 12 (expected an object key)"},
        {"{\"type\" \"a\"}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected string at byte 8 (expected ':')"},
        {"{\"type\":}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character '}' at byte 8 (expected a value)"},
        {"{\"type\":", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected end of input at byte 8 (expected a value)"},
        {"{\"type\"", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected end of input at byte 7 (expected ':')"},
        {"{,}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character ',' at byte 1 (expected an object key)"},
        {"{'type':'a'}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected byte 0x27 at byte 1 (expected an object key)"},
        {"{type:\"a\"}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character 't' at byte 1 (expected an object key)"},
        {"{\"type\":\"a\" \"id\":1}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected string at byte 12 (expected ',' or '}')"},
        {"{\"type\":\"a\";\"id\":1}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character ';' at byte 11 (expected ',' or '}')"},
        {"{\"type\":\"a\",\"d\":[1,2}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character '}' at byte 20 (expected ',' or ']')"},
        {"{\"type\":\"a\",\"d\":[1 2]}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character '2' at byte 19 (expected ',' or ']')"},
        {"{\"type\":\"a\",\"d\":[,1]}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character ',' at byte 17 (expected a value)"},
        {"{\"type\":\"a\",\"d\":[1,]}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character ']' at byte 19 (expected a value)"},
        {"{\"type\":\"a\",\"d\":{\"b\"}}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character '}' at byte 20 (expected ':')"},
        {"{\"type\":\"a\",\"d\":{\"b\":1,}}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character '}' at byte 23 (expected an object key)"},
        {"{\"type\":\"a\",\"d\":{1:2}}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character '1' at byte 17 (expected an object key)"},
        {"{\"type\":\"a\",\"d\":[[[]]}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character '}' at byte 21 (expected ',' or ']')"},
        {"{\"type\":\"a\",\"d\":[[[]]]", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected end of input at byte 22 (expected ',' or '}')"},
        {"{\"type\":\"a\",\"d\":{\"x\":1]}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character ']' at byte 22 (expected ',' or '}')"},
        /* literals */
        {"{\"type\":\"a\",\"d\":tru}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character '}' at byte 19 (expected true)"},
        {"{\"type\":\"a\",\"d\":nul", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected end of input at byte 19 (expected null)"},
        {"{\"type\":\"a\",\"d\":fals}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character '}' at byte 20 (expected false)"},
        {"{\"type\":\"a\",\"d\":True}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character 'T' at byte 16 (expected a value)"},
        {"{\"type\":\"a\",\"d\":nulll}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character 'l' at byte 20 (expected ',' or '}')"},
        {"{\"type\":\"a\",\"d\":undefined}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character 'u' at byte 16 (expected a value)"},
        {"{\"type\":\"a\",\"d\":NaN}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character 'N' at byte 16 (expected a value)"},
        {"{\"type\":\"a\",\"d\":Infinity}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character 'I' at byte 16 (expected a value)"},
        /* fine: empty key, empty containers, every literal */
        {"{\"\":1,\"type\":\"a\",\"d\":[{},[],\"\",0,true,false,null]}", 0, SCAN_OK, ""},
    };
    AP_UNUSED(state);
    RUN(cases);
}

/* "{"type":"a","data":" + depth-1 nested containers + "}": the request
 * object is level 1, so the whole line nests `depth` deep. */
static size_t nested_line(char *buf, size_t cap, unsigned depth, int objects)
{
    size_t len = (size_t)snprintf(buf, cap, "{\"type\":\"a\",\"data\":");
    for (unsigned i = 1; i < depth; i++) {
        const char *open = objects && (i % 2) ? "{\"k\":" : "[";
        len += (size_t)snprintf(buf + len, cap - len, "%s", open);
    }
    len += (size_t)snprintf(buf + len, cap - len, "0");
    for (unsigned i = depth - 1; i >= 1; i--) {
        const char *close = objects && (i % 2) ? "}" : "]";
        len += (size_t)snprintf(buf + len, cap - len, "%s", close);
    }
    len += (size_t)snprintf(buf + len, cap - len, "}");
    assert_true(len < cap);
    return len;
}

static void test_depth(void **state)
{
    static char buf[16384];
    char msg[SCAN_ERROR_MAX];
    scan_result r;
    size_t len;
    AP_UNUSED(state);

    for (int objects = 0; objects <= 1; objects++) {
        /* exactly at the limit */
        len = nested_line(buf, sizeof buf, DEPTH, objects);
        assert_int_equal(scan_request(buf, len, DEPTH, &r), SCAN_OK);
        /* one past: the error names the container that went too deep */
        len = nested_line(buf, sizeof buf, DEPTH + 1, objects);
        assert_int_equal(scan_request(buf, len, DEPTH, &r), SCAN_BAD_JSON);
        snprintf(msg, sizeof msg, "nesting deeper than %d at byte %zu", DEPTH, r.error_pos);
        assert_string_equal(r.error, msg);
        assert_true(buf[r.error_pos] == '[' || buf[r.error_pos] == '{');
        check_invariants(buf, len, SCAN_BAD_JSON, &r);
        /* the same line passes with one more level allowed */
        assert_int_equal(scan_request(buf, len, DEPTH + 1, &r), SCAN_OK);
    }

    /* max_depth 1: only the request object itself */
    assert_int_equal(scan_request("{\"type\":\"a\",\"data\":1}", 21, 1, &r), SCAN_OK);
    assert_int_equal(scan_request("{\"type\":\"a\",\"data\":[]}", 22, 1, &r), SCAN_BAD_JSON);
    assert_string_equal(r.error, "nesting deeper than 1 at byte 19");
    assert_int_equal(scan_request("{\"type\":\"a\",\"data\":{}}", 22, 1, &r), SCAN_BAD_JSON);
    assert_int_equal(scan_request("[[1]]", 5, 1, &r), SCAN_BAD_JSON);
    assert_string_equal(r.error, "nesting deeper than 1 at byte 1");
    assert_int_equal(scan_request("[1]", 3, 1, &r), SCAN_NOT_OBJECT);
    /* max_depth 0: not even the request */
    assert_int_equal(scan_request("{}", 2, 0, &r), SCAN_BAD_JSON);
    assert_string_equal(r.error, "nesting deeper than 0 at byte 0");
    assert_int_equal(scan_request("\"s\"", 3, 0, &r), SCAN_NOT_OBJECT);

    /* a max_depth above SCAN_DEPTH_CAP is clamped to it */
    len = nested_line(buf, sizeof buf, SCAN_DEPTH_CAP, 0);
    assert_int_equal(scan_request(buf, len, 100000, &r), SCAN_OK);
    len = nested_line(buf, sizeof buf, SCAN_DEPTH_CAP + 1, 1);
    assert_int_equal(scan_request(buf, len, 100000, &r), SCAN_BAD_JSON);
    snprintf(msg, sizeof msg, "nesting deeper than %d at byte %zu", SCAN_DEPTH_CAP, r.error_pos);
    assert_string_equal(r.error, msg);

    /* an unclosed deep line is bounded too */
    memset(buf, '[', 5000);
    assert_int_equal(scan_request(buf, 5000, DEPTH, &r), SCAN_BAD_JSON);
    assert_string_equal(r.error, "nesting deeper than 128 at byte 128");
    assert_int_equal(scan_json_value(buf, 5000, DEPTH, 0, msg, NULL), AP_ERR);
    assert_string_equal(msg, "nesting deeper than 128 at byte 128");
}

/* ---- strings and UTF-8 ------------------------------------------------- */

/* Rows put the bytes under test inside "data":"..." (string starts at
 * byte 20) or, for the type checks, inside "type". */
#define D(body) "{\"type\":\"a\",\"data\":\"" body "\"}"

static void test_utf8_valid(void **state)
{
    static const char *const ok[] = {
        D("\xC2\x80"),             /* U+0080, smallest 2-byte */
        D("\xC3\xA9"),             /* é */
        D("\xDF\xBF"),             /* U+07FF, largest 2-byte */
        D("\xE0\xA0\x80"),         /* U+0800, smallest 3-byte */
        D("\xE2\x82\xAC"),         /* € */
        D("\xED\x9F\xBF"),         /* U+D7FF, just below the surrogates */
        D("\xEE\x80\x80"),         /* U+E000, just above them */
        D("\xEF\xBF\xBD"),         /* U+FFFD */
        D("\xEF\xBF\xBF"),         /* U+FFFF (a noncharacter, still valid) */
        D("\xF0\x90\x80\x80"),     /* U+10000, smallest 4-byte */
        D("\xF0\x9F\x98\x80"),     /* 😀 */
        D("\xF3\xBF\xBF\xBF"),     /* U+FFFFF */
        D("\xF4\x8F\xBF\xBF"),     /* U+10FFFF, the last code point */
        D("a\xC3\xA9" "b\xE2\x82\xAC" "c\xF0\x9F\x98\x80" "d"),
        D("\x7F"),                 /* DEL is not a control character for JSON */
        D("0123456789abcdef\xC3\xA9" "0123456789abcdef"), /* across a 16-byte block */
    };
    AP_UNUSED(state);

    for (size_t i = 0; i < AP_ARRAY_LEN(ok); i++) {
        scan_result r;
        scan_ok(ok[i], &r);
    }
    /* and as a type, byte for byte */
    scan_result r;
    scan_ok("{\"type\":\"\xF0\x9F\x98\x80\xC3\xA9\"}", &r);
    assert_int_equal(r.type_len, 6);
    assert_memory_equal(r.type, "\xF0\x9F\x98\x80\xC3\xA9", 6);
}

static void test_utf8_invalid(void **state)
{
    static const scase cases[] = {
        /* overlong */
        {D("\xC0\x80"), 0, SCAN_BAD_JSON, "invalid UTF-8 at byte 20 (overlong encoding)"},
        {D("\xC1\xBF"), 0, SCAN_BAD_JSON, "invalid UTF-8 at byte 20 (overlong encoding)"},
        {D("\xE0\x80\x80"), 0, SCAN_BAD_JSON, "invalid UTF-8 at byte 20 (overlong encoding)"},
        {D("\xE0\x9F\xBF"), 0, SCAN_BAD_JSON, "invalid UTF-8 at byte 20 (overlong encoding)"},
        {D("\xF0\x80\x80\x80"), 0, SCAN_BAD_JSON, "invalid UTF-8 at byte 20 (overlong encoding)"},
        {D("\xF0\x8F\xBF\xBF"), 0, SCAN_BAD_JSON, "invalid UTF-8 at byte 20 (overlong encoding)"},
        /* UTF-8-encoded surrogates */
        {D("\xED\xA0\x80"), 0, SCAN_BAD_JSON,
         "invalid UTF-8 at byte 20 (encoded UTF-16 surrogate)"},
        {D("\xED\xBF\xBF"), 0, SCAN_BAD_JSON,
         "invalid UTF-8 at byte 20 (encoded UTF-16 surrogate)"},
        {D("\xED\xA0\xBD\xED\xB8\x80"), 0, SCAN_BAD_JSON, /* CESU-8 pair */
         "invalid UTF-8 at byte 20 (encoded UTF-16 surrogate)"},
        /* above U+10FFFF */
        {D("\xF4\x90\x80\x80"), 0, SCAN_BAD_JSON,
         "invalid UTF-8 at byte 20 (code point above U+10FFFF)"},
        {D("\xF5\x80\x80\x80"), 0, SCAN_BAD_JSON,
         "invalid UTF-8 at byte 20 (code point above U+10FFFF)"},
        {D("\xF7\xBF\xBF\xBF"), 0, SCAN_BAD_JSON,
         "invalid UTF-8 at byte 20 (code point above U+10FFFF)"},
        {D("\xF8\x88\x80\x80\x80"), 0, SCAN_BAD_JSON, "invalid UTF-8 at byte 20 (invalid lead byte)"},
        {D("\xFC\x84\x80\x80\x80\x80"), 0, SCAN_BAD_JSON,
         "invalid UTF-8 at byte 20 (invalid lead byte)"},
        {D("\xFE"), 0, SCAN_BAD_JSON, "invalid UTF-8 at byte 20 (invalid lead byte)"},
        {D("\xFF"), 0, SCAN_BAD_JSON, "invalid UTF-8 at byte 20 (invalid lead byte)"},
        /* stray continuation bytes */
        {D("\x80"), 0, SCAN_BAD_JSON, "invalid UTF-8 at byte 20 (unexpected continuation byte)"},
        {D("\xBF"), 0, SCAN_BAD_JSON, "invalid UTF-8 at byte 20 (unexpected continuation byte)"},
        {D("\xC3\xA9\xA9"), 0, SCAN_BAD_JSON,
         "invalid UTF-8 at byte 22 (unexpected continuation byte)"},
        /* truncated, in the middle of the line */
        {D("\xC3"), 0, SCAN_BAD_JSON, "invalid UTF-8 at byte 20 (truncated sequence)"},
        {D("\xC3" "A"), 0, SCAN_BAD_JSON, "invalid UTF-8 at byte 20 (truncated sequence)"},
        {D("\xE2\x82"), 0, SCAN_BAD_JSON, "invalid UTF-8 at byte 20 (truncated sequence)"},
        {D("\xE2\x82" "A"), 0, SCAN_BAD_JSON, "invalid UTF-8 at byte 20 (truncated sequence)"},
        {D("\xF0\x9F\x98"), 0, SCAN_BAD_JSON, "invalid UTF-8 at byte 20 (truncated sequence)"},
        {D("\xF0\x9F" "AB"), 0, SCAN_BAD_JSON, "invalid UTF-8 at byte 20 (truncated sequence)"},
        {D("\xE2\xC3\xA9"), 0, SCAN_BAD_JSON, "invalid UTF-8 at byte 20 (truncated sequence)"},
        /* truncated at the very end of the line */
        {"{\"type\":\"\xC3", 0, SCAN_BAD_JSON, "invalid UTF-8 at byte 9 (truncated sequence)"},
        {"{\"type\":\"\xE2\x82", 0, SCAN_BAD_JSON, "invalid UTF-8 at byte 9 (truncated sequence)"},
        {"{\"type\":\"\xF0\x9F\x98", 0, SCAN_BAD_JSON,
         "invalid UTF-8 at byte 9 (truncated sequence)"},
        {"{\"type\":\"\xF4", 0, SCAN_BAD_JSON, "invalid UTF-8 at byte 9 (truncated sequence)"},
        {"{\"type\":\"\xE0\x80", 0, SCAN_BAD_JSON, "invalid UTF-8 at byte 9 (overlong encoding)"},
        /* in a key, in the id, after a 16-byte clean run */
        {"{\"k\xC0\xAF\":1}", 0, SCAN_BAD_JSON, "invalid UTF-8 at byte 3 (overlong encoding)"},
        {"{\"id\":\"\xED\xB0\x80\"}", 0, SCAN_BAD_JSON,
         "invalid UTF-8 at byte 7 (encoded UTF-16 surrogate)"},
        {D("0123456789abcdef0123\xFF"), 0, SCAN_BAD_JSON,
         "invalid UTF-8 at byte 40 (invalid lead byte)"},
        /* outside strings, any non-ASCII byte is simply unexpected */
        {"{\"type\":\"a\",\"d\":\xC3\xA9}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected byte 0xC3 at byte 16 (expected a value)"},
        {"{\xC3\xA9:1}", 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected byte 0xC3 at byte 1 (expected an object key)"},
    };
    AP_UNUSED(state);
    RUN(cases);
}

static void test_string_escapes(void **state)
{
    static const scase cases[] = {
        {D("\\\" \\\\ \\/ \\b \\f \\n \\r \\t"), 0, SCAN_OK, ""},
        {D("\\u0000\\u001f\\u0041\\uFFFF\\uffff\\uABCD"), 0, SCAN_OK, ""},
        {D("\\ud800\\udc00\\udbff\\udfff\\uD83D\\uDE00"), 0, SCAN_OK, ""},
        {D("\\ud83d\\ude00\\ud83d\\ude00"), 0, SCAN_OK, ""},
        /* bad escapes */
        {D("\\x41"), 0, SCAN_BAD_JSON,
         "invalid JSON: invalid escape sequence at byte 20 (backslash followed by 'x')"},
        {D("\\'"), 0, SCAN_BAD_JSON,
         "invalid JSON: invalid escape sequence at byte 20 (backslash followed by byte 0x27)"},
        {D("\\U0041"), 0, SCAN_BAD_JSON,
         "invalid JSON: invalid escape sequence at byte 20 (backslash followed by 'U')"},
        {D("\\0"), 0, SCAN_BAD_JSON,
         "invalid JSON: invalid escape sequence at byte 20 (backslash followed by '0')"},
        {D("\\\t"), 0, SCAN_BAD_JSON,
         "invalid JSON: invalid escape sequence at byte 20 (backslash followed by byte 0x09)"},
        {D("\\\xC3\xA9"), 0, SCAN_BAD_JSON,
         "invalid JSON: invalid escape sequence at byte 20 (backslash followed by byte 0xC3)"},
        {D("\\u12G4"), 0, SCAN_BAD_JSON,
         "invalid JSON: invalid unicode escape at byte 20 (expected 4 hex digits)"},
        {D("\\u123"), 0, SCAN_BAD_JSON,
         "invalid JSON: invalid unicode escape at byte 20 (expected 4 hex digits)"},
        {D("\\u"), 0, SCAN_BAD_JSON,
         "invalid JSON: invalid unicode escape at byte 20 (expected 4 hex digits)"},
        {D("\\u-123"), 0, SCAN_BAD_JSON,
         "invalid JSON: invalid unicode escape at byte 20 (expected 4 hex digits)"},
        /* lone and misordered surrogates */
        {D("\\ud800"), 0, SCAN_BAD_JSON,
         "invalid JSON: unpaired UTF-16 surrogate escape at byte 20 (high surrogate alone)"},
        {D("\\udbff x"), 0, SCAN_BAD_JSON,
         "invalid JSON: unpaired UTF-16 surrogate escape at byte 20 (high surrogate alone)"},
        {D("\\ud800\\n"), 0, SCAN_BAD_JSON,
         "invalid JSON: unpaired UTF-16 surrogate escape at byte 20 (high surrogate alone)"},
        {D("\\ud800\\u0041"), 0, SCAN_BAD_JSON,
         "invalid JSON: unpaired UTF-16 surrogate escape at byte 20 (high surrogate alone)"},
        {D("\\ud800\\ud800"), 0, SCAN_BAD_JSON,
         "invalid JSON: unpaired UTF-16 surrogate escape at byte 20 (high surrogate alone)"},
        {D("\\ud800\\ue000"), 0, SCAN_BAD_JSON,
         "invalid JSON: unpaired UTF-16 surrogate escape at byte 20 (high surrogate alone)"},
        {D("\\ud800\\uzzzz"), 0, SCAN_BAD_JSON,
         "invalid JSON: invalid unicode escape at byte 26 (expected 4 hex digits)"},
        {D("\\udc00"), 0, SCAN_BAD_JSON,
         "invalid JSON: unpaired UTF-16 surrogate escape at byte 20 (low surrogate first)"},
        {D("\\udfff\\ud800"), 0, SCAN_BAD_JSON,
         "invalid JSON: unpaired UTF-16 surrogate escape at byte 20 (low surrogate first)"},
        {D("ok\\uDE00"), 0, SCAN_BAD_JSON,
         "invalid JSON: unpaired UTF-16 surrogate escape at byte 22 (low surrogate first)"},
        /* raw control characters */
        {D("\x01"), 0, SCAN_BAD_JSON,
         "invalid JSON: raw control character 0x01 in string at byte 20 (must be escaped)"},
        {D("a\tb"), 0, SCAN_BAD_JSON,
         "invalid JSON: raw control character 0x09 in string at byte 21 (must be escaped)"},
        {D("\x1F"), 0, SCAN_BAD_JSON,
         "invalid JSON: raw control character 0x1F in string at byte 20 (must be escaped)"},
        {"{\"type\":\"a\0\"}", LEN("{\"type\":\"a\0\"}"), SCAN_BAD_JSON,
         "invalid JSON: raw control character 0x00 in string at byte 10 (must be escaped)"},
        {"{\"type\":\"a\nb\"}", 0, SCAN_BAD_JSON,
         "invalid JSON: raw control character 0x0A in string at byte 10 (must be escaped)"},
        {"{\"ty\rpe\":\"a\"}", 0, SCAN_BAD_JSON,
         "invalid JSON: raw control character 0x0D in string at byte 4 (must be escaped)"},
        /* unterminated strings, escapes cut short by the end of line */
        {"{\"type\":\"abc", 0, SCAN_BAD_JSON,
         "invalid JSON: unterminated string starting at byte 8"},
        {"{\"type\":\"abc\\\"}", 0, SCAN_BAD_JSON,
         "invalid JSON: unterminated string starting at byte 8"},
        {"{\"type\":\"abc\\", 0, SCAN_BAD_JSON,
         "invalid JSON: unterminated string starting at byte 8"},
        {"{\"type\":\"\\u00", 0, SCAN_BAD_JSON,
         "invalid JSON: unterminated string starting at byte 8"},
        {"{\"type\":\"\\ud800", 0, SCAN_BAD_JSON,
         "invalid JSON: unterminated string starting at byte 8"},
        {"{\"type\":\"\\ud800\\", 0, SCAN_BAD_JSON,
         "invalid JSON: unterminated string starting at byte 8"},
        {"{\"type\":\"\\ud800\\u", 0, SCAN_BAD_JSON,
         "invalid JSON: unterminated string starting at byte 8"},
        {"{\"type\":\"\\ud800\\udc0", 0, SCAN_BAD_JSON,
         "invalid JSON: unterminated string starting at byte 8"},
        {"{\"", 0, SCAN_BAD_JSON, "invalid JSON: unterminated string starting at byte 1"},
        {"\"0123456789abcdef0123456789abcdef", 0, SCAN_BAD_JSON,
         "invalid JSON: unterminated string starting at byte 0"},
    };
    AP_UNUSED(state);
    RUN(cases);
}

/* ---- numbers ----------------------------------------------------------- */

#define N(num) "{\"type\":\"a\",\"data\":" num "}"

static void test_numbers(void **state)
{
    static const scase cases[] = {
        {N("0"), 0, SCAN_OK, ""},
        {N("-0"), 0, SCAN_OK, ""},
        {N("7"), 0, SCAN_OK, ""},
        {N("-123"), 0, SCAN_OK, ""},
        {N("0.0"), 0, SCAN_OK, ""},
        {N("1.5"), 0, SCAN_OK, ""},
        {N("-0.25"), 0, SCAN_OK, ""},
        {N("1e2"), 0, SCAN_OK, ""},
        {N("1E2"), 0, SCAN_OK, ""},
        {N("1E+2"), 0, SCAN_OK, ""},
        {N("1e-2"), 0, SCAN_OK, ""},
        {N("0e0"), 0, SCAN_OK, ""},
        {N("-1.5e-300"), 0, SCAN_OK, ""},
        {N("1.0E+0010"), 0, SCAN_OK, ""},
        {N("123456789012345678901234567890"), 0, SCAN_OK, ""},
        /* magnitudes: integers are never converted; what a double cannot
         * hold (it would be infinity in the worker) is refused anywhere */
        {N("1e308"), 0, SCAN_OK, ""},
        {N("-1.7976931348623157e308"), 0, SCAN_OK, ""},
        {N("1.7976931348623158e308"), 0, SCAN_OK, ""},  /* rounds down to DBL_MAX */
        {N("179769313486231570814527423731704356798070567525844996598917476803157260780028538760589558632766878171540458953514382464234321326889464182768467546703537516986049910576551282076245490090389328944075868508455133942304583236903222948165808559332123348274797826204144723168738177180919299881250404026184124858368"), 0, SCAN_OK, ""},
        {N("179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497791.99999999999999999999"), 0, SCAN_OK, ""},  /* just under the rounding edge */
        {N("1e-999999"), 0, SCAN_OK, ""},
        {N("0.0e999999999999"), 0, SCAN_OK, ""},
        {N("0.001e310"), 0, SCAN_OK, ""},
        {N("1000e305"), 0, SCAN_OK, ""},
        {N("1e999999"), 0, SCAN_BAD_JSON,
         "number out of range at byte 19 (beyond a double's largest, about 1.8e308)"},
        {N("1e309"), 0, SCAN_BAD_JSON,
         "number out of range at byte 19 (beyond a double's largest, about 1.8e308)"},
        {N("-1e999999999999999999999999"), 0, SCAN_BAD_JSON,
         "number out of range at byte 19 (beyond a double's largest, about 1.8e308)"},
        {N("1.7976931348623159e308"), 0, SCAN_BAD_JSON,
         "number out of range at byte 19 (beyond a double's largest, about 1.8e308)"},
        {N("0.00018e312"), 0, SCAN_BAD_JSON,
         "number out of range at byte 19 (beyond a double's largest, about 1.8e308)"},
        {N("10000e305"), 0, SCAN_BAD_JSON,
         "number out of range at byte 19 (beyond a double's largest, about 1.8e308)"},
        {N("[1,{\"x\":[2e400]}]"), 0, SCAN_BAD_JSON,
         "number out of range at byte 28 (beyond a double's largest, about 1.8e308)"},
        {N("179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497792.0"), 0, SCAN_BAD_JSON,
         "number out of range at byte 19 (beyond a double's largest, about 1.8e308)"},
        {N("[0,-0,1,10,0.5,1e1]"), 0, SCAN_OK, ""},
        /* the grammar's edges: byte 19 is where the number starts */
        {N("01"), 0, SCAN_BAD_JSON, "invalid JSON: number with a leading zero at byte 19"},
        {N("00"), 0, SCAN_BAD_JSON, "invalid JSON: number with a leading zero at byte 19"},
        {N("-01"), 0, SCAN_BAD_JSON, "invalid JSON: number with a leading zero at byte 19"},
        {N("-"), 0, SCAN_BAD_JSON,
         "invalid JSON: invalid number at byte 20 (expected a digit after '-')"},
        {"{\"type\":\"a\",\"data\":-", 0, SCAN_BAD_JSON,
         "invalid JSON: invalid number at byte 20 (expected a digit after '-')"},
        {N("-a"), 0, SCAN_BAD_JSON,
         "invalid JSON: invalid number at byte 20 (expected a digit after '-')"},
        {N("--1"), 0, SCAN_BAD_JSON,
         "invalid JSON: invalid number at byte 20 (expected a digit after '-')"},
        {N("- 1"), 0, SCAN_BAD_JSON,
         "invalid JSON: invalid number at byte 20 (expected a digit after '-')"},
        {N("1."), 0, SCAN_BAD_JSON,
         "invalid JSON: invalid number at byte 21 (expected a digit after '.')"},
        {N("1.e5"), 0, SCAN_BAD_JSON,
         "invalid JSON: invalid number at byte 21 (expected a digit after '.')"},
        {"{\"type\":\"a\",\"data\":1.", 0, SCAN_BAD_JSON,
         "invalid JSON: invalid number at byte 21 (expected a digit after '.')"},
        {N("1e"), 0, SCAN_BAD_JSON,
         "invalid JSON: invalid number at byte 21 (expected a digit after the exponent)"},
        {N("1E+"), 0, SCAN_BAD_JSON,
         "invalid JSON: invalid number at byte 22 (expected a digit after the exponent)"},
        {N("1e-x"), 0, SCAN_BAD_JSON,
         "invalid JSON: invalid number at byte 22 (expected a digit after the exponent)"},
        {N(".5"), 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character '.' at byte 19 (expected a value)"},
        {N("+1"), 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character '+' at byte 19 (expected a value)"},
        {N("1.5.3"), 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character '.' at byte 22 (expected ',' or '}')"},
        {N("0x1F"), 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character 'x' at byte 20 (expected ',' or '}')"},
        {N("1e5e5"), 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character 'e' at byte 22 (expected ',' or '}')"},
        {N("1_000"), 0, SCAN_BAD_JSON,
         "invalid JSON: unexpected character '_' at byte 20 (expected ',' or '}')"},
        {N("[1,-]"), 0, SCAN_BAD_JSON,
         "invalid JSON: invalid number at byte 23 (expected a digit after '-')"},
    };
    AP_UNUSED(state);
    RUN(cases);
}

/* ---- scan_json_value and scan_unescape --------------------------------- */

static int value_ok(const char *s)
{
    return scan_json_value(s, strlen(s), DEPTH, 0, NULL, NULL);
}

static void test_json_value(void **state)
{
    static const char *const ok[] = {
        "0", "-1.5e3", "\"\"", "\"a\\u00e9\"", "true", "false", "null", "[]", "{}",
        " [1, {\"a\": [null]}] ", "\t\"x\"\r\n", "{\"a\":{\"a\":{\"a\":{}}}}",
    };
    static const char *const bad[] = {
        "", " ", "[", "{\"a\"}", "1 2", "[1]]", "\"\\ud800\"", "'a'", "01", "nul",
        "\xEF\xBB\xBF\x31", "\"\xC0\x80\"", "{\"a\":1,}",
    };
    char err[SCAN_ERROR_MAX];
    size_t at = 99;
    AP_UNUSED(state);

    for (size_t i = 0; i < AP_ARRAY_LEN(ok); i++) {
        if (value_ok(ok[i]) != AP_OK)
            print_error("value '%s'\n", ok[i]);
        assert_int_equal(value_ok(ok[i]), AP_OK);
    }
    for (size_t i = 0; i < AP_ARRAY_LEN(bad); i++) {
        if (value_ok(bad[i]) != AP_ERR)
            print_error("value '%s'\n", bad[i]);
        assert_int_equal(value_ok(bad[i]), AP_ERR);
    }

    assert_int_equal(scan_json_value(NULL, 0, DEPTH, 0, NULL, NULL), AP_ERR);
    assert_int_equal(scan_json_value("", 0, DEPTH, 0, err, &at), AP_ERR);
    assert_string_equal(err, "invalid JSON: unexpected end of input at byte 0 (expected a value)");
    assert_int_equal(at, 0);
    assert_int_equal(scan_json_value("[1,2] 3", 7, DEPTH, 0, err, &at), AP_ERR);
    assert_string_equal(err, "invalid JSON: trailing characters after the JSON value at byte 6");
    assert_int_equal(at, 6);
    assert_int_equal(scan_json_value("\xEF\xBB\xBF[]", 5, DEPTH, 0, err, NULL), AP_ERR);
    assert_string_equal(err, "invalid JSON: byte order mark (U+FEFF) at byte 0 is not allowed");

    /* depth: exactly max_depth, then one more */
    assert_int_equal(scan_json_value("[[[]]]", 6, 3, 0, err, &at), AP_OK);
    assert_int_equal(scan_json_value("[[[[]]]]", 8, 3, 0, err, &at), AP_ERR);
    assert_string_equal(err, "nesting deeper than 3 at byte 3");
    assert_int_equal(scan_json_value("{\"a\":[{}]}", 10, 3, 0, err, &at), AP_OK);
    assert_int_equal(scan_json_value("{\"a\":[{\"b\":[]}]}", 16, 3, 0, err, &at), AP_ERR);
    assert_int_equal(at, 11);
    assert_int_equal(scan_json_value("1", 1, 0, 0, err, &at), AP_OK);
    assert_int_equal(scan_json_value("[]", 2, 0, 0, err, &at), AP_ERR);

    /* SCAN_ONE_LINE: a value that would break newline framing */
    assert_int_equal(scan_json_value("{\n\"a\": 1}", 9, DEPTH, 0, err, &at), AP_OK);
    assert_int_equal(scan_json_value("{\n\"a\": 1}", 9, DEPTH, SCAN_ONE_LINE, err, &at), AP_ERR);
    assert_string_equal(err, "JSON value contains a line break at byte 1");
    assert_int_equal(at, 1);
    assert_int_equal(scan_json_value("[1,\r2]", 6, DEPTH, SCAN_ONE_LINE, err, &at), AP_ERR);
    assert_string_equal(err, "JSON value contains a line break at byte 3");
    assert_int_equal(scan_json_value("1\n", 2, DEPTH, SCAN_ONE_LINE, err, &at), AP_ERR);
    assert_int_equal(scan_json_value("[1, \"a\\nb\"]\t", 12, DEPTH, SCAN_ONE_LINE, err, &at),
                     AP_OK);
}

static void test_unescape(void **state)
{
    char out[16];
    AP_UNUSED(state);

    assert_int_equal(scan_unescape("abc", 3, out, sizeof out), 3);
    assert_memory_equal(out, "abc", 3);
    assert_int_equal(scan_unescape("", 0, out, 0), 0);
    assert_int_equal(scan_unescape(NULL, 0, NULL, 0), 0);
    assert_int_equal(scan_unescape("a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t", 20, out, sizeof out), 12);
    assert_memory_equal(out, "a\"b\\c/d\b\f\n\r\t", 12);
    assert_int_equal(scan_unescape("\\u0000", 6, out, sizeof out), 1);
    assert_int_equal(out[0], '\0');
    assert_int_equal(scan_unescape("\\u00e9\\u20AC\\ud83d\\ude00", 24, out, sizeof out), 9);
    assert_memory_equal(out, "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", 9);
    /* the capacity is exact, and work stops at it */
    assert_int_equal(scan_unescape("abcd", 4, out, 4), 4);
    assert_int_equal(scan_unescape("abcd", 4, out, 3), SCAN_UNESCAPE_FAIL);
    assert_int_equal(scan_unescape("ab\\n", 4, out, 3), 3);
    assert_int_equal(scan_unescape("ab\\n", 4, out, 2), SCAN_UNESCAPE_FAIL);
    assert_int_equal(scan_unescape("\\ud83d\\ude00", 12, out, 4), 4);
    assert_int_equal(scan_unescape("\\ud83d\\ude00", 12, out, 3), SCAN_UNESCAPE_FAIL);
    assert_int_equal(scan_unescape("\\u00e9", 6, out, 1), SCAN_UNESCAPE_FAIL);
    /* not a valid body: refused, never read past len */
    assert_int_equal(scan_unescape("\\", 1, out, sizeof out), SCAN_UNESCAPE_FAIL);
    assert_int_equal(scan_unescape("\\x", 2, out, sizeof out), SCAN_UNESCAPE_FAIL);
    assert_int_equal(scan_unescape("\\u12", 4, out, sizeof out), SCAN_UNESCAPE_FAIL);
    assert_int_equal(scan_unescape("\\u12345", 4, out, sizeof out), SCAN_UNESCAPE_FAIL);
    assert_int_equal(scan_unescape("\\ud800", 6, out, sizeof out), SCAN_UNESCAPE_FAIL);
    assert_int_equal(scan_unescape("\\udc00\\ud800", 12, out, sizeof out), SCAN_UNESCAPE_FAIL);
    assert_int_equal(scan_unescape("\\ud800\\u0041", 12, out, sizeof out), SCAN_UNESCAPE_FAIL);
}

/* Every line of every table above, cut at every length, must give a
 * sane result (no reads past the cut: run under ASan to see). */
static void test_every_prefix(void **state)
{
    static const char *const lines[] = {
        "{\"id\":\"a\\\"b\",\"type\":\"\\ud83d\\ude00x\",\"data\":{\"k\":[1,-2.5e+3,true,null]},"
        "\"retry\":false,\"timeoutMs\":100}",
        "{\"id\":-12,\"type\":\"caf\xC3\xA9\",\"data\":\"\xF0\x9F\x98\x80\\u00e9\"}\r",
    };
    AP_UNUSED(state);

    for (size_t i = 0; i < AP_ARRAY_LEN(lines); i++) {
        size_t full = strlen(lines[i]);
        for (size_t n = 0; n <= full; n++) {
            char *copy = malloc(n ? n : 1); /* exact size so ASan sees overreads */
            scan_result r;
            assert_non_null(copy);
            memcpy(copy, lines[i], n);
            scan_status st = scan_request(copy, n, DEPTH, &r);
            check_invariants(copy, n, st, &r);
            if (n == full || (n == full - 1 && lines[i][full - 1] == '\r'))
                assert_int_equal(st, SCAN_OK);
            else if (n == 0)
                assert_int_equal(st, SCAN_BLANK);
            else
                assert_int_equal(st, SCAN_BAD_JSON);
            free(copy);
        }
    }
}

/* ---- benchmark (test_scan --bench) -------------------------------------- */

static volatile size_t bench_sink;

static double bench_ns_per_scan(const char *line, size_t len, long iters)
{
    scan_result r;
    uint64_t t0 = ap_now_ns();
    for (long i = 0; i < iters; i++) {
        if (scan_request(line, len, DEPTH, &r) != SCAN_OK) {
            fprintf(stderr, "bench line refused: %s\n", r.error);
            exit(1);
        }
        bench_sink += r.data.len;
    }
    return (double)(ap_now_ns() - t0) / (double)iters;
}

/* A request whose data is one 1 MiB string made by repeating unit. */
static char *big_line(const char *unit, size_t *len)
{
    const size_t payload = 1u << 20, ulen = strlen(unit);
    char *buf = malloc(payload + 64);
    size_t n = (size_t)sprintf(buf, "{\"id\":1,\"type\":\"x\",\"data\":\"");
    for (size_t i = 0; i + ulen <= payload; i += ulen, n += ulen)
        memcpy(buf + n, unit, ulen);
    n += (size_t)sprintf(buf + n, "\"}");
    *len = n;
    return buf;
}

static int run_bench(void)
{
    static const char small[] =
        "{\"id\":12345,\"type\":\"summarize\",\"data\":{\"text\":\"hello world, a test\","
        "\"n\":3,\"ok\":true},\"timeoutMs\":500}";
    static const struct {
        const char *name, *unit;
    } big[] = {
        {"ASCII string", "abcdefghijklmnopqrstuvwxyz012345"},
        {"UTF-8 text (2-4 byte chars)", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 "},
        {"escape-heavy string", "a\\n\\\"b\\u00e9"},
    };
    size_t len;

    printf("100-byte class request (%zu bytes): %.1f ns/request\n", sizeof small - 1,
           bench_ns_per_scan(small, sizeof small - 1, 2000000));
    for (size_t i = 0; i < AP_ARRAY_LEN(big); i++) {
        char *line = big_line(big[i].unit, &len);
        double ns = bench_ns_per_scan(line, len, 300);
        printf("1 MiB %s: %.0f us/request, %.0f MB/s\n", big[i].name, ns / 1000.0,
               (double)len / ns * 1000.0);
        free(line);
    }
    /* 1 MiB of numbers in an array: the structural path */
    {
        const size_t payload = 1u << 20;
        char *buf = malloc(payload + 64);
        size_t n = (size_t)sprintf(buf, "{\"type\":\"x\",\"data\":[");
        while (n < payload)
            n += (size_t)sprintf(buf + n, "123,-4.5e6,{\"k\":true},");
        n += (size_t)sprintf(buf + n, "0]}");
        double ns = bench_ns_per_scan(buf, n, 100);
        printf("1 MiB array of numbers/objects: %.0f us/request, %.0f MB/s\n", ns / 1000.0,
               (double)n / ns * 1000.0);
        free(buf);
    }
    return 0;
}

/* Builds {"type":"a","idempotencyKey":"<n x unit>"} into buf. */
static size_t idem_line(char *buf, size_t cap, const char *unit, size_t n)
{
    size_t len = (size_t)snprintf(buf, cap, "{\"type\":\"a\",\"idempotencyKey\":\"");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s", unit);
    len += (size_t)snprintf(buf + len, cap - len, "\"}");
    assert_true(len < cap);
    return len;
}

/* "idempotencyKey": a string of 1 to SCAN_IDEM_KEY_MAX bytes after
 * unescaping, without U+0000, unescaped into r.idem_key/idem_key_len (0
 * when absent); the last occurrence counts. */
static void test_idem_member(void **state)
{
    static char buf[4096];
    scan_result r;
    size_t len;
    AP_UNUSED(state);

    scan_ok("{\"type\":\"a\"}", &r);
    assert_int_equal(r.idem_key_len, 0);
    assert_string_equal(r.idem_key, "");
    scan_ok("{\"type\":\"a\",\"idempotencyKey\":\"order-17\"}", &r);
    assert_int_equal(r.idem_key_len, 8);
    assert_string_equal(r.idem_key, "order-17");
    scan_ok("{\"idempotency\\u004bey\":\"k\\u00e9\",\"type\":\"a\"}", &r);
    assert_int_equal(r.idem_key_len, 3);
    assert_string_equal(r.idem_key, "k\xC3\xA9");
    scan_ok("{\"type\":\"a\",\"idempotencyKey\":1,\"idempotencyKey\":\"z\"}", &r);
    assert_string_equal(r.idem_key, "z");
    scan_ok("{\"type\":\"a\",\"data\":{\"idempotencyKey\":\"inner\"}}", &r);
    assert_int_equal(r.idem_key_len, 0);
    /* a scan after one with a key starts without it */
    scan_ok("{\"type\":\"a\",\"idempotencyKey\":\"k\"}", &r);
    scan_ok("{\"type\":\"a\"}", &r);
    assert_int_equal(r.idem_key_len, 0);
    assert_string_equal(r.idem_key, "");

    /* exactly SCAN_IDEM_KEY_MAX bytes, raw and escaped; one more is refused */
    len = idem_line(buf, sizeof buf, "k", SCAN_IDEM_KEY_MAX);
    assert_int_equal(scan_request(buf, len, DEPTH, &r), SCAN_OK);
    assert_int_equal(r.idem_key_len, SCAN_IDEM_KEY_MAX);
    len = idem_line(buf, sizeof buf, "\\u006b", SCAN_IDEM_KEY_MAX);
    assert_int_equal(scan_request(buf, len, DEPTH, &r), SCAN_OK);
    assert_int_equal(r.idem_key_len, SCAN_IDEM_KEY_MAX);
    assert_int_equal(r.idem_key[SCAN_IDEM_KEY_MAX - 1], 'k');
    static const char *const too_long[] = {"k", "\\u006b"};
    for (unsigned k = 0; k < 2; k++) {
        len = idem_line(buf, sizeof buf, too_long[k], SCAN_IDEM_KEY_MAX + 1);
        assert_int_equal(scan_request(buf, len, DEPTH, &r), SCAN_BAD_REQUEST);
        assert_string_equal(r.error, "idempotencyKey longer than 256 bytes");
        assert_int_equal(r.idem_key_len, 0);
        check_invariants(buf, len, SCAN_BAD_REQUEST, &r);
    }

    static const scase bad[] = {
        {"{\"type\":\"a\",\"idempotencyKey\":\"\"}", 0, SCAN_BAD_REQUEST,
         "idempotencyKey must be a non-empty string"},
        {"{\"type\":\"a\",\"idempotencyKey\":7}", 0, SCAN_BAD_REQUEST,
         "idempotencyKey must be a non-empty string"},
        {"{\"type\":\"a\",\"idempotencyKey\":null}", 0, SCAN_BAD_REQUEST,
         "idempotencyKey must be a non-empty string"},
        {"{\"type\":\"a\",\"idempotencyKey\":\"k\",\"idempotencyKey\":[]}", 0, SCAN_BAD_REQUEST,
         "idempotencyKey must be a non-empty string"},
        {"{\"type\":\"a\",\"idempotencyKey\":\"a\\u0000\"}", 0, SCAN_BAD_REQUEST,
         "idempotencyKey must not contain U+0000"},
        /* the request's other errors are told first */
        {"{\"idempotencyKey\":1}", 0, SCAN_BAD_REQUEST, "type is missing"},
    };
    RUN(bad);
}

/* "key" (an API key's secret): a string of 1 to SCAN_KEY_MAX bytes after
 * unescaping, without U+0000, into r.key/key_len (0 when absent). */
static void test_key_member(void **state)
{
    static char buf[4096];
    scan_result r;
    AP_UNUSED(state);

    scan_ok("{\"type\":\"a\",\"key\":\"sk-1\"}", &r);
    assert_int_equal(r.key_len, 4);
    assert_string_equal(r.key, "sk-1");
    scan_ok("{\"k\\u0065y\":\"\\u0073k\",\"type\":\"a\"}", &r);
    assert_string_equal(r.key, "sk");
    scan_ok("{\"type\":\"a\"}", &r);
    assert_int_equal(r.key_len, 0);
    assert_string_equal(r.key, "");
    scan_ok("{\"type\":\"a\",\"data\":{\"key\":\"inner\"}}", &r);
    assert_int_equal(r.key_len, 0);
    size_t len = (size_t)snprintf(buf, sizeof buf, "{\"type\":\"a\",\"key\":\"%0*d\"}", SCAN_KEY_MAX, 0);
    assert_int_equal(scan_request(buf, len, DEPTH, &r), SCAN_OK);
    assert_int_equal(r.key_len, SCAN_KEY_MAX);
    len = (size_t)snprintf(buf, sizeof buf, "{\"type\":\"a\",\"key\":\"%0*d\"}", SCAN_KEY_MAX + 1, 0);
    assert_int_equal(scan_request(buf, len, DEPTH, &r), SCAN_BAD_REQUEST);
    assert_string_equal(r.error, "key longer than 256 bytes");
    assert_int_equal(r.key_len, 0);
    static const scase bad[] = {
        {"{\"type\":\"a\",\"key\":\"\"}", 0, SCAN_BAD_REQUEST, "key must be a non-empty string: an API key"},
        {"{\"type\":\"a\",\"key\":1}", 0, SCAN_BAD_REQUEST, "key must be a non-empty string: an API key"},
        {"{\"type\":\"a\",\"key\":\"a\\u0000\"}", 0, SCAN_BAD_REQUEST, "key must not contain U+0000"},
    };
    RUN(bad);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok_fields),
        cmocka_unit_test(test_ok_defaults),
        cmocka_unit_test(test_blank),
        cmocka_unit_test(test_given_members_are_not_read),
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_not_object),
        cmocka_unit_test(test_id_values),
        cmocka_unit_test(test_id_refused),
        cmocka_unit_test(test_id_echo_on_error),
        cmocka_unit_test(test_type_unescape),
        cmocka_unit_test(test_type_refused),
        cmocka_unit_test(test_type_length),
        cmocka_unit_test(test_unknown_and_duplicate_members),
        cmocka_unit_test(test_retry_timeout),
        cmocka_unit_test(test_stream_member),
        cmocka_unit_test(test_resume_member),
        cmocka_unit_test(test_pool_member),
        cmocka_unit_test(test_session_member),
        cmocka_unit_test(test_idem_member),
        cmocka_unit_test(test_key_member),
        cmocka_unit_test(test_whitespace),
        cmocka_unit_test(test_trailing_and_bom),
        cmocka_unit_test(test_structure_errors),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_utf8_invalid),
        cmocka_unit_test(test_string_escapes),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_json_value),
        cmocka_unit_test(test_unescape),
        cmocka_unit_test(test_every_prefix),
    };

    if (argc > 1 && strcmp(argv[1], "--bench") == 0)
        return run_bench();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
