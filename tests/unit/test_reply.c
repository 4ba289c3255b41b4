/*
 * test_reply.c - cmocka tests for response lines and error codes
 * (pool/reply.c, with a real libevent evbuffer as the output).
 *
 * Every response is compared byte for byte with the line the protocol
 * promises (docs/protocol.md): id echoed exactly as written or null, the
 * result and worker errors spliced in unchanged, one '\n' at the end.
 * reply_escape() is checked for quotes, backslashes and every control
 * byte, for never splitting an escape when it truncates, and, through
 * cJSON, that what it writes always reads back as the original string.
 */
#include "reply.h"
#include "ap_common.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <cJSON.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEN(lit) (sizeof(lit) - 1)

static int setup_buf(void **state)
{
    *state = evbuffer_new();
    return *state ? 0 : -1;
}

static int teardown_buf(void **state)
{
    evbuffer_free(*state);
    return 0;
}

/* Asserts that `out` holds exactly want[0..len) and empties it. */
static void expect_out(struct evbuffer *out, const char *want, size_t len)
{
    size_t have = evbuffer_get_length(out);
    const char *p = (const char *)evbuffer_pullup(out, -1);
    if (have != len || (len && memcmp(p, want, len) != 0)) {
        print_error("want (%zu): %.*s\nhave (%zu): %.*s\n", len, (int)len, want, have, (int)have,
                    p ? p : "");
        fail();
    }
    evbuffer_drain(out, have);
}
#define EXPECT(out, lit) expect_out(out, lit, LEN(lit))

/* The line in `out` (without draining it), parsed; the caller deletes it. */
static cJSON *parse_out(struct evbuffer *out)
{
    size_t n = evbuffer_get_length(out);
    const char *p = (const char *)evbuffer_pullup(out, -1);
    assert_true(n > 0);
    assert_int_equal(p[n - 1], '\n');
    assert_null(memchr(p, '\n', n - 1)); /* one line */
    cJSON *j = cJSON_ParseWithLength(p, n);
    assert_non_null(j);
    return j;
}

static void test_ok_lines(void **state)
{
    struct evbuffer *out = *state;
    reply_ok(out, "7", 1, "{\"x\":1}", 7);
    EXPECT(out, "{\"id\":7,\"ok\":true,\"result\":{\"x\":1}}\n");
    /* the id as the client wrote it, escapes and all */
    reply_ok(out, "\"a\\\"b\"", 6, "[1, 2 ,\"\\u00e9\"]", 16);
    EXPECT(out, "{\"id\":\"a\\\"b\",\"ok\":true,\"result\":[1, 2 ,\"\\u00e9\"]}\n");
    /* id_len 0: null (the pointer is not read) */
    reply_ok(out, NULL, 0, "\"s\"", 3);
    EXPECT(out, "{\"id\":null,\"ok\":true,\"result\":\"s\"}\n");
    /* an id that is a prefix of a longer buffer: only id_len bytes */
    reply_ok(out, "-12e3,garbage", 5, "true", 4);
    EXPECT(out, "{\"id\":-12e3,\"ok\":true,\"result\":true}\n");
    /* result of length 0: null */
    reply_ok(out, "1", 1, "", 0);
    EXPECT(out, "{\"id\":1,\"ok\":true,\"result\":null}\n");
    reply_ok(out, NULL, 0, NULL, 0);
    EXPECT(out, "{\"id\":null,\"ok\":true,\"result\":null}\n");
    /* the result is spliced in unchanged, only its length counts */
    reply_ok(out, "2", 1, "{\"a\":\"x\"}TRAILING", 9);
    EXPECT(out, "{\"id\":2,\"ok\":true,\"result\":{\"a\":\"x\"}}\n");
    /* lines append: two replies in a row */
    reply_ok(out, "1", 1, "1", 1);
    reply_ok(out, "2", 1, "2", 1);
    EXPECT(out, "{\"id\":1,\"ok\":true,\"result\":1}\n{\"id\":2,\"ok\":true,\"result\":2}\n");
}

static void test_ok_large_result(void **state)
{
    struct evbuffer *out = *state;
    size_t n = 3u << 20; /* bigger than any single evbuffer chain */
    char *res = malloc(n);
    assert_non_null(res);
    memset(res, 'x', n);
    res[0] = '"';
    res[n - 1] = '"';
    reply_ok(out, "9", 1, res, n);
    size_t have = evbuffer_get_length(out);
    assert_int_equal(have, LEN("{\"id\":9,\"ok\":true,\"result\":") + n + LEN("}\n"));
    const char *p = (const char *)evbuffer_pullup(out, -1);
    assert_memory_equal(p, "{\"id\":9,\"ok\":true,\"result\":\"xxx", 31);
    assert_memory_equal(p + have - 5, "xx\"}\n", 5);
    evbuffer_drain(out, have);
    free(res);
}

static void test_error_json_lines(void **state)
{
    struct evbuffer *out = *state;
    static const char err[] = "{\"code\":\"agent_error\",\"message\":\"boom\",\"exception\":\"ValueError\"}";
    reply_error_json(out, "\"a2\"", 4, err, LEN(err));
    EXPECT(out, "{\"id\":\"a2\",\"ok\":false,\"error\":{\"code\":\"agent_error\",\"message\":\"boom\","
                "\"exception\":\"ValueError\"}}\n");
    reply_error_json(out, NULL, 0, "{\"code\":\"x\"}", 12);
    EXPECT(out, "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"x\"}}\n");
}

static void test_error_lines(void **state)
{
    struct evbuffer *out = *state;
    reply_error(out, "1", 1, ERR_QUEUE_FULL, "the queue is full", NULL);
    EXPECT(out, "{\"id\":1,\"ok\":false,\"error\":{\"code\":\"queue_full\",\"message\":\"the queue is full\"}}\n");
    reply_error(out, NULL, 0, ERR_TOO_LARGE, "line longer than maxMessageBytes (64)", NULL);
    EXPECT(out, "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"too_large\","
                "\"message\":\"line longer than maxMessageBytes (64)\"}}\n");
    reply_error(out, "\"w\"", 3, ERR_WORKER_CRASHED, "worker 3 (pid 42) died", ",\"signal\":9");
    EXPECT(out, "{\"id\":\"w\",\"ok\":false,\"error\":{\"code\":\"worker_crashed\","
                "\"message\":\"worker 3 (pid 42) died\",\"signal\":9}}\n");
    reply_error(out, "5", 1, ERR_BAD_REQUEST, "", NULL);
    EXPECT(out, "{\"id\":5,\"ok\":false,\"error\":{\"code\":\"bad_request\",\"message\":\"\"}}\n");
    /* the message is escaped, the id and extra are not */
    reply_error(out, "\"q\\\\\"", 5, ERR_OTHER, "say \"hi\" to C:\\tmp\n\tnow\x01", ",\"k\":\"\\\"\"");
    EXPECT(out, "{\"id\":\"q\\\\\",\"ok\":false,\"error\":{\"code\":\"other\","
                "\"message\":\"say \\\"hi\\\" to C:\\\\tmp\\n\\u0009now\\u0001\",\"k\":\"\\\"\"}}\n");
}

static void test_error_every_code(void **state)
{
    struct evbuffer *out = *state;
    for (int c = 0; c < ERR_COUNT; c++) {
        reply_error(out, "1", 1, (reply_code)c, "m", NULL);
        cJSON *j = parse_out(out);
        evbuffer_drain(out, evbuffer_get_length(out));
        cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
        assert_true(cJSON_IsString(code));
        assert_string_equal(code->valuestring, reply_code_name((reply_code)c));
        assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "ok")));
        cJSON_Delete(j);
    }
}

static void test_error_long_message(void **state)
{
    struct evbuffer *out = *state;
    char big[3000];
    /* A long message is cut to what fits (1023 bytes), still one valid line. */
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    reply_error(out, "1", 1, ERR_AGENT_ERROR, big, ",\"exception\":\"E\"");
    cJSON *j = parse_out(out);
    evbuffer_drain(out, evbuffer_get_length(out));
    cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    assert_true(cJSON_IsString(m));
    assert_int_equal(strlen(m->valuestring), 1023);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "exception")->valuestring, "E");
    cJSON_Delete(j);

    /* Quotes escape to two bytes: the cut never leaves half an escape. */
    memset(big, '"', 1500);
    big[1500] = '\0';
    reply_error(out, "1", 1, ERR_AGENT_ERROR, big, NULL);
    j = parse_out(out);
    evbuffer_drain(out, evbuffer_get_length(out));
    m = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"), "message");
    assert_true(cJSON_IsString(m));
    assert_int_equal(strlen(m->valuestring), 511);
    assert_null(strchr(m->valuestring, '\\'));
    cJSON_Delete(j);

    /* A message and extra longer than the stack buffer together: both
     * kept whole (a traceback in extra must not be lost). */
    char extra[600];
    memcpy(extra, ",\"x\":\"", 6);
    memset(extra + 6, 'b', 590);
    memcpy(extra + 596, "\"", 2);
    memset(big, 'a', 1000);
    big[1000] = '\0';
    reply_error(out, "1", 1, ERR_AGENT_ERROR, big, extra);
    j = parse_out(out);
    evbuffer_drain(out, evbuffer_get_length(out));
    e = cJSON_GetObjectItemCaseSensitive(j, "error");
    assert_int_equal(strlen(cJSON_GetObjectItemCaseSensitive(e, "message")->valuestring), 1000);
    assert_int_equal(strlen(cJSON_GetObjectItemCaseSensitive(e, "x")->valuestring), 590);
    cJSON_Delete(j);
}

/* --- reply_escape ---------------------------------------------------------- */

static void expect_escape(const char *in, size_t len, size_t cap, const char *want)
{
    char dst[256];
    assert_true(cap <= sizeof(dst));
    memset(dst, 0x7e, sizeof(dst));
    size_t n = reply_escape(dst, cap, in, len);
    if (n != strlen(want) || strcmp(dst, want) != 0) {
        print_error("escape of %zu bytes into %zu: want \"%s\", have \"%s\" (%zu)\n", len, cap, want,
                    dst, n);
        fail();
    }
    assert_int_equal(dst[n], '\0');
    if (cap < sizeof(dst))
        assert_int_equal((unsigned char)dst[cap], 0x7e); /* nothing past cap */
}
#define ESC(lit, cap, want) expect_escape(lit, LEN(lit), cap, want)

static void test_escape(void **state)
{
    (void)state;
    ESC("plain text 123", 256, "plain text 123");
    ESC("", 256, "");
    ESC("a\"b", 256, "a\\\"b");
    ESC("a\\b", 256, "a\\\\b");
    ESC("\\\"", 256, "\\\\\\\"");
    ESC("l1\nl2", 256, "l1\\nl2");
    ESC("\t\r\b\f", 256, "\\u0009\\u000d\\u0008\\u000c");
    ESC("\x01\x1f\x7f", 256, "\\u0001\\u001f\\u007f");
    ESC("a\0b", 256, "a\\u0000b"); /* a NUL inside the given length is escaped */
    ESC("caf\xc3\xa9 \xe2\x82\xac", 256, "caf\xc3\xa9 \xe2\x82\xac"); /* UTF-8 passes through */
    ESC("/<>'", 256, "/<>'");
}

static void test_escape_truncation(void **state)
{
    (void)state;
    /* at most cap-1 bytes, and an escape is either whole or absent */
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
    /* cap 0: nothing is written at all */
    char d = 'Q';
    assert_int_equal(reply_escape(&d, 0, "abc", 3), 0);
    assert_int_equal(d, 'Q');
}

/* Every byte below 0x80, alone and between letters, escapes to something
 * a JSON parser reads back as that byte. */
static void test_escape_round_trip(void **state)
{
    (void)state;
    for (int c = 0; c < 0x80; c++) {
        char in[3] = {'x', (char)c, 'y'};
        char json[32];
        json[0] = '"';
        size_t n = reply_escape(json + 1, sizeof(json) - 2, in, 3);
        json[n + 1] = '"';
        cJSON *j = cJSON_ParseWithLength(json, n + 2);
        if (j == NULL || !cJSON_IsString(j)) {
            print_error("byte 0x%02x escaped to %.*s: not a JSON string\n", c, (int)n, json + 1);
            fail();
        }
        if (c == 0) {
            /* cJSON strings are NUL-terminated: only the part before shows */
            assert_string_equal(j->valuestring, "x");
        } else {
            assert_int_equal(strlen(j->valuestring), 3);
            assert_memory_equal(j->valuestring, in, 3);
        }
        /* the escaped text itself has no raw control byte, quote or lone backslash */
        for (size_t i = 1; i <= n; i++) {
            unsigned char b = (unsigned char)json[i];
            assert_true(b >= 0x20 && b != 0x7f);
            if (b == '"')
                assert_int_equal(json[i - 1], '\\');
        }
        cJSON_Delete(j);
    }
    /* bytes from 0x80 up are copied as they are */
    for (int c = 0x80; c < 0x100; c++) {
        char in[1] = {(char)c}, out[8];
        assert_int_equal(reply_escape(out, sizeof(out), in, 1), 1);
        assert_int_equal((unsigned char)out[0], c);
    }
}

/* --- codes ------------------------------------------------------------------ */

static void test_code_names(void **state)
{
    (void)state;
    /* the protocol's stable vocabulary, in enum order (docs/protocol.md) */
    static const char *const names[ERR_COUNT] = {
        "bad_request", "too_large", "queue_full", "agent_error", "shutting_down",
        "worker_crashed", "timeout", "too_many_connections", "cancelled", "circuit_open", "other",
    };
    for (int c = 0; c < ERR_COUNT; c++) {
        assert_string_equal(reply_code_name((reply_code)c), names[c]);
        assert_int_equal(reply_code_from(names[c], strlen(names[c])), c);
    }
    assert_string_equal(reply_code_name(ERR_COUNT), "other");
    assert_string_equal(reply_code_name((reply_code)1000), "other");
    assert_int_equal(reply_code_from("", 0), ERR_OTHER);
    assert_int_equal(reply_code_from("queue_full", 5), ERR_OTHER); /* a prefix is not the code */
    assert_int_equal(reply_code_from("queue_fullx", 11), ERR_OTHER);
    assert_int_equal(reply_code_from("QUEUE_FULL", 10), ERR_OTHER);
    assert_int_equal(reply_code_from("timeout", 7), ERR_TIMEOUT);
}

static void test_code_of_error_json(void **state)
{
    (void)state;
#define CODE_OF(lit) reply_code_of_error_json(lit, LEN(lit))
    assert_int_equal(CODE_OF("{\"code\":\"agent_error\",\"message\":\"boom\"}"), ERR_AGENT_ERROR);
    assert_int_equal(CODE_OF("{\"code\":\"worker_crashed\"}"), ERR_WORKER_CRASHED);
    assert_int_equal(CODE_OF("{\"code\":\"timeout\",\"x\":1}"), ERR_TIMEOUT);
    for (int c = 0; c < ERR_COUNT; c++) {
        char buf[128];
        int n = snprintf(buf, sizeof(buf), "{\"code\":\"%s\",\"message\":\"m\"}", reply_code_name((reply_code)c));
        assert_int_equal(reply_code_of_error_json(buf, (size_t)n), c);
    }
    /* unknown, or not where the worker puts it: other */
    assert_int_equal(CODE_OF("{\"code\":\"no_such_code\"}"), ERR_OTHER);
    assert_int_equal(CODE_OF("{\"code\":\"\"}"), ERR_OTHER);
    assert_int_equal(CODE_OF("{\"message\":\"x\",\"code\":\"timeout\"}"), ERR_OTHER);
    assert_int_equal(CODE_OF("{ \"code\":\"timeout\"}"), ERR_OTHER);
    assert_int_equal(CODE_OF("{\"kode\":\"timeout\"}"), ERR_OTHER); /* same length, other key */
    assert_int_equal(CODE_OF("[\"code\",\"timeout\"]"), ERR_OTHER);
    assert_int_equal(CODE_OF("{\"code\":7}"), ERR_OTHER);
    assert_int_equal(CODE_OF("{\"code\":\"timeout"), ERR_OTHER); /* no closing quote */
    assert_int_equal(CODE_OF("{\"code\":\""), ERR_OTHER);
    assert_int_equal(CODE_OF("{\"code\":"), ERR_OTHER);
    assert_int_equal(CODE_OF(""), ERR_OTHER);
    assert_int_equal(CODE_OF("null"), ERR_OTHER);
    /* only len bytes are read: the closing quote just past them is not seen */
    static const char cut[] = "{\"code\":\"timeout\"}";
    assert_int_equal(reply_code_of_error_json(cut, LEN(cut) - 2), ERR_OTHER);
    assert_int_equal(reply_code_of_error_json(cut, LEN(cut) - 1), ERR_TIMEOUT);
    char *exact = malloc(16); /* no NUL after the bytes */
    assert_non_null(exact);
    memcpy(exact, "{\"code\":\"timeou", 15);
    assert_int_equal(reply_code_of_error_json(exact, 15), ERR_OTHER);
    free(exact);
#undef CODE_OF
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ok_lines, setup_buf, teardown_buf),
        cmocka_unit_test_setup_teardown(test_ok_large_result, setup_buf, teardown_buf),
        cmocka_unit_test_setup_teardown(test_error_json_lines, setup_buf, teardown_buf),
        cmocka_unit_test_setup_teardown(test_error_lines, setup_buf, teardown_buf),
        cmocka_unit_test_setup_teardown(test_error_every_code, setup_buf, teardown_buf),
        cmocka_unit_test_setup_teardown(test_error_long_message, setup_buf, teardown_buf),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_escape_truncation),
        cmocka_unit_test(test_escape_round_trip),
        cmocka_unit_test(test_code_names),
        cmocka_unit_test(test_code_of_error_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
