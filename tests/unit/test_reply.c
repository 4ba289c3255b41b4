/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_reply.c - cmocka tests for response lines and error codes
 * (pool/path/reply.c, with a real libevent evbuffer as the output).
 *
 * Every response is compared byte for byte with the line the protocol
 * promises (docs/protocol.md): id echoed exactly as written or null, the
 * result and worker errors spliced in unchanged, one '\n' at the end.
 * An error message is escaped by the one escaper (common/json.c, tested
 * in test_json.c): checked here only that reply_error() uses it, and that
 * a long message is cut without splitting an escape.
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

/* Chunk and heartbeat lines: the id as written, the worker's chunk
 * spliced unchanged, seq as a number. */
/* Reads back the one line in out with reply_read (which must accept it),
 * then empties out.  text gets the line (without its '\n'). */
static reply_line read_back(struct evbuffer *out, char *text, size_t cap)
{
    size_t n = evbuffer_get_length(out);
    assert_true(n > 1 && n - 1 < cap);
    memcpy(text, evbuffer_pullup(out, -1), n - 1);
    text[n - 1] = '\0';
    evbuffer_drain(out, n);
    reply_line rl;
    assert_int_equal(reply_read(text, n - 1, &rl), AP_OK);
    return rl;
}

/* Every line this module writes is read back as what it is, whatever its id. */
static void test_read_back(void **state)
{
    struct evbuffer *out = *state;
    char line[512];
    static const struct {
        const char *id;
        size_t len;
    } ids[] = {{NULL, 0}, {"17", 2}, {"-3", 2}, {"\"a,\\\"b\"", 7}};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        reply_ok(out, ids[i].id, ids[i].len, "{\"x\":[1,\",\"]}", 13);
        reply_line rl = read_back(out, line, sizeof(line));
        assert_int_equal(rl.kind, REPLY_LINE_ANSWER);
        assert_true(rl.ok);
        assert_string_equal(line + rl.rest_off, "\"ok\":true,\"result\":{\"x\":[1,\",\"]}}");
        assert_int_equal(rl.value_len, 13);
        assert_memory_equal(line + rl.value_off, "{\"x\":[1,\",\"]}", 13);

        reply_ok_input(out, ids[i].id, ids[i].len, NULL, "\"size?\"", 7);
        rl = read_back(out, line, sizeof(line));
        assert_true(rl.ok && rl.input_required);
        assert_int_equal(rl.value_len, 7);
        assert_memory_equal(line + rl.value_off, "\"size?\"", 7);

        /* a result that itself has a "replayed" member is all value */
        reply_ok(out, ids[i].id, ids[i].len, "{\"replayed\":true}", 17);
        rl = read_back(out, line, sizeof(line));
        assert_int_equal(rl.value_len, 17);
        assert_memory_equal(line + rl.value_off, "{\"replayed\":true}", 17);
        reply_replayed(out, ids[i].id, ids[i].len, 1, "{\"replayed\":true}", 17);
        rl = read_back(out, line, sizeof(line));
        assert_true(rl.ok);
        assert_int_equal(rl.value_len, 17);
        assert_memory_equal(line + rl.value_off, "{\"replayed\":true}", 17);

        reply_error(out, ids[i].id, ids[i].len, ERR_CIRCUIT_OPEN, "open", ",\"retryAfterMs\":2500");
        rl = read_back(out, line, sizeof(line));
        assert_int_equal(rl.kind, REPLY_LINE_ANSWER);
        assert_false(rl.ok);
        assert_int_equal(rl.code, ERR_CIRCUIT_OPEN);
        assert_int_equal(rl.retry_after_ms, 2500);

        reply_replayed(out, ids[i].id, ids[i].len, 0, "{\"code\":\"timeout\",\"message\":\"m\"}", 33);
        rl = read_back(out, line, sizeof(line));
        assert_false(rl.ok);
        assert_int_equal(rl.code, ERR_TIMEOUT);
        assert_int_equal(rl.retry_after_ms, 0);
        assert_int_equal(rl.value_len, 33);
        assert_memory_equal(line + rl.value_off, "{\"code\":\"timeout\",\"message\":\"m\"}", 33);

        reply_chunk(out, ids[i].id, ids[i].len, "\",\\\"seq\\\":9\"", 13, 41);
        rl = read_back(out, line, sizeof(line));
        assert_int_equal(rl.kind, REPLY_LINE_CHUNK);
        assert_int_equal(rl.seq, 41);
        assert_int_equal(rl.payload_len, 13);
        assert_memory_equal(line + rl.payload_off, "\",\\\"seq\\\":9\"", 13);

        reply_heartbeat(out, ids[i].id, ids[i].len);
        rl = read_back(out, line, sizeof(line));
        assert_int_equal(rl.kind, REPLY_LINE_HEARTBEAT);
    }
    reply_line rl;
    static const char *const bad[] = {"", "{}", "{\"id\":1}", "{\"id\":1,\"what\":true}", "{\"id\":\"x,\"ok\":true"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(reply_read(bad[i], strlen(bad[i]), &rl), AP_ERR);
}

static void test_chunk_and_heartbeat_lines(void **state)
{
    struct evbuffer *out = *state;
    reply_chunk(out, "\"s1\"", 4, "{\"t\":\"ab\"}", 10, 0);
    EXPECT(out, "{\"id\":\"s1\",\"chunk\":{\"t\":\"ab\"},\"seq\":0}\n");
    reply_chunk(out, NULL, 0, "1", 1, 4294967295u);
    EXPECT(out, "{\"id\":null,\"chunk\":1,\"seq\":4294967295}\n");
    reply_chunk(out, "7", 1, "[1,2]XX", 5, 12);
    EXPECT(out, "{\"id\":7,\"chunk\":[1,2],\"seq\":12}\n");
    reply_heartbeat(out, "\"s1\"", 4);
    EXPECT(out, "{\"id\":\"s1\",\"heartbeat\":true}\n");
    reply_heartbeat(out, NULL, 0);
    EXPECT(out, "{\"id\":null,\"heartbeat\":true}\n");
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

/* A result still in another buffer (a worker's input, in many chains,
 * with the next frame behind it) is moved: exactly len bytes leave src,
 * the line is the same as reply_ok's, and what follows stays in src. */
static void test_ok_move(void **state)
{
    struct evbuffer *out = *state;
    struct evbuffer *src = evbuffer_new();
    assert_non_null(src);
    char piece[4096];
    memset(piece, 'x', sizeof(piece));
    evbuffer_add(src, "\"", 1);
    for (int i = 0; i < 300; i++) /* ~1.2 MB in separate adds: many chains */
        evbuffer_add(src, piece, sizeof(piece));
    evbuffer_add(src, "\"NEXT", 5);
    size_t n = 1 + 300 * sizeof(piece) + 1;
    reply_ok_move(out, "\"k\"", 3, src, n);
    assert_int_equal(evbuffer_get_length(src), 4);
    assert_memory_equal(evbuffer_pullup(src, -1), "NEXT", 4);
    size_t have = evbuffer_get_length(out);
    assert_int_equal(have, LEN("{\"id\":\"k\",\"ok\":true,\"result\":") + n + LEN("}\n"));
    cJSON *j = parse_out(out);
    assert_int_equal(strlen(cJSON_GetObjectItem(j, "result")->valuestring), n - 2);
    cJSON_Delete(j);
    evbuffer_drain(out, have);
    /* a small one, with no id */
    evbuffer_drain(src, 4);
    evbuffer_add(src, "[1]", 3);
    reply_ok_move(out, NULL, 0, src, 3);
    EXPECT(out, "{\"id\":null,\"ok\":true,\"result\":[1]}\n");
    /* a source whose start is frozen cannot give its chains up: copied,
     * and left there for the caller to drain */
    evbuffer_drain(src, evbuffer_get_length(src));
    evbuffer_add(src, "{\"a\":1}rest", 11);
    evbuffer_freeze(src, 1);
    reply_ok_move(out, "3", 1, src, 7);
    evbuffer_unfreeze(src, 1);
    EXPECT(out, "{\"id\":3,\"ok\":true,\"result\":{\"a\":1}}\n");
    assert_int_equal(evbuffer_get_length(src), 11);
    evbuffer_free(src);
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
                "\"message\":\"say \\\"hi\\\" to C:\\\\tmp\\n\\tnow\\u0001\",\"k\":\"\\\"\"}}\n");
    /* bytes that are not UTF-8 (a path, a worker's stderr) still make valid JSON */
    reply_error(out, "1", 1, ERR_OTHER, "caf\xe9 \xc3\xa9", NULL);
    EXPECT(out, "{\"id\":1,\"ok\":false,\"error\":{\"code\":\"other\","
                "\"message\":\"caf\\ufffd \xc3\xa9\"}}\n");
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

/* --- codes ------------------------------------------------------------------ */

/* reply_next takes whole lines only, wherever the buffer's chains cut
 * them: two lines in one chain, a line across chains, a line not ended yet. */
static void test_next_across_chains(void **state)
{
    struct evbuffer *out = *state;
    const char *line;
    size_t len;
    reply_line rl;
    static const char two[] = "{\"id\":1,\"ok\":true,\"result\":1}\n{\"id\":2,\"heartbeat\":true}\n";
    evbuffer_add(out, two, LEN(two));
    assert_int_equal(reply_next(out, &line, &len, &rl), 1);
    assert_int_equal(len, LEN("{\"id\":1,\"ok\":true,\"result\":1}"));
    assert_int_equal(rl.kind, REPLY_LINE_ANSWER);
    evbuffer_drain(out, len + 1);
    assert_int_equal(reply_next(out, &line, &len, &rl), 1);
    assert_int_equal(rl.kind, REPLY_LINE_HEARTBEAT);
    evbuffer_drain(out, len + 1);
    assert_int_equal(reply_next(out, &line, &len, &rl), 0);

    /* a line whose bytes are in three chains (evbuffer_add_reference keeps each apart) */
    static const char a[] = "{\"id\":\"x\",\"ok\":fal", b[] = "se,\"error\":{\"code\":\"timeout\"", c[] = "}}\n";
    evbuffer_add_reference(out, a, LEN(a), NULL, NULL);
    assert_int_equal(reply_next(out, &line, &len, &rl), 0); /* not whole yet */
    evbuffer_add_reference(out, b, LEN(b), NULL, NULL);
    evbuffer_add_reference(out, c, LEN(c), NULL, NULL);
    assert_int_equal(reply_next(out, &line, &len, &rl), 1);
    assert_int_equal(len, LEN(a) + LEN(b) + LEN(c) - 1);
    assert_memory_equal(line, "{\"id\":\"x\",\"ok\":false,", LEN("{\"id\":\"x\",\"ok\":false,"));
    assert_int_equal(rl.code, ERR_TIMEOUT);
    evbuffer_drain(out, len + 1);
    assert_int_equal(evbuffer_get_length(out), 0);
}

static void test_code_names(void **state)
{
    (void)state;
    /* the protocol's stable vocabulary, in enum order (docs/protocol.md) */
    static const char *const names[ERR_COUNT] = {
        "bad_request", "too_large", "queue_full", "agent_error", "shutting_down",
        "worker_crashed", "timeout", "too_many_connections", "cancelled", "circuit_open", "forbidden", "session_busy", "too_many_sessions", "store_unavailable", "unauthorized", "rate_limited", "other",
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
        cmocka_unit_test_setup_teardown(test_chunk_and_heartbeat_lines, setup_buf, teardown_buf),
        cmocka_unit_test_setup_teardown(test_ok_move, setup_buf, teardown_buf),
        cmocka_unit_test_setup_teardown(test_error_json_lines, setup_buf, teardown_buf),
        cmocka_unit_test_setup_teardown(test_error_lines, setup_buf, teardown_buf),
        cmocka_unit_test_setup_teardown(test_error_every_code, setup_buf, teardown_buf),
        cmocka_unit_test_setup_teardown(test_error_long_message, setup_buf, teardown_buf),
        cmocka_unit_test_setup_teardown(test_read_back, setup_buf, teardown_buf),
        cmocka_unit_test_setup_teardown(test_next_across_chains, setup_buf, teardown_buf),
        cmocka_unit_test(test_code_names),
        cmocka_unit_test(test_code_of_error_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
