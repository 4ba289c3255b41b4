/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_http.c - cmocka tests of the HTTP/1.x response parser (fed whole
 * and one byte at a time: Content-Length, chunked, 1xx, bodyless
 * statuses, bodies ending at the close, Connection handling, every
 * refusal) and of the request templates (exact bytes, the id slot, the
 * Content-Length, --data checks).  Built with AP_ALLOC_TEST, so cmocka
 * reports any leak.
 */
#include "http.h"
#include "tmpl.h"
#include "ap_common.h"

#include <cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

typedef struct {
    int status[16];
    int close[16];
    int n;
    int bad;
    int eof_done;
    size_t leftover;  /* bytes never consumed */
    size_t max_held;  /* most bytes the "connection buffer" ever held */
} results;

static char feedbuf[256 * 1024];

/* Drives a fresh parser the way conn.c does: bytes arrive `step` at a
 * time into a buffer, every complete response is consumed, the rest is
 * kept.  With eof, the connection then ends. */
static void feed(const char *data, size_t len, size_t step, int eof, results *out)
{
    http_parser p;
    size_t have = 0, pos = 0;
    memset(out, 0, sizeof(*out));
    http_init(&p);
    while (pos < len) {
        size_t n = len - pos < step ? len - pos : step;
        memcpy(feedbuf + have, data + pos, n);
        have += n;
        pos += n;
        if (have > out->max_held)
            out->max_held = have;
        for (;;) {
            size_t used = 0;
            http_result r = http_parse(&p, feedbuf, have, &used);
            assert_true(used <= have);
            memmove(feedbuf, feedbuf + used, have - used);
            have -= used;
            if (r == HTTP_BAD) {
                assert_non_null(p.error);
                out->bad = 1;
                out->leftover = have;
                return;
            }
            if (r == HTTP_NEED)
                break;
            assert_true(out->n < 16);
            out->status[out->n] = p.status;
            out->close[out->n] = p.close;
            out->n++;
        }
    }
    if (eof) {
        http_result r = http_eof(&p);
        if (r == HTTP_DONE) {
            out->status[out->n] = p.status;
            out->close[out->n] = 1;
            out->n++;
            out->eof_done = 1;
        } else if (r == HTTP_BAD) {
            out->bad = 1;
        }
    }
    out->leftover = have;
}

/* Feeds whole and byte by byte; both must agree. */
static void feed_both(const char *data, int eof, results *out)
{
    results one;
    feed(data, strlen(data), 1, eof, &one);
    feed(data, strlen(data), strlen(data) ? strlen(data) : 1, eof, out);
    assert_int_equal(one.n, out->n);
    assert_int_equal(one.bad, out->bad);
    if (!out->bad)
        assert_int_equal(one.leftover, out->leftover);
    for (int i = 0; i < out->n; i++) {
        assert_int_equal(one.status[i], out->status[i]);
        assert_int_equal(one.close[i], out->close[i]);
    }
}

static void test_content_length_pipelined(void **state)
{
    (void)state;
    results r;
    feed_both("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"ok\": true}\n"
              "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
              "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nhi",
              0, &r);
    assert_int_equal(r.bad, 0);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.status[0], 200);
    assert_int_equal(r.status[1], 404);
    assert_int_equal(r.status[2], 200);
    assert_int_equal(r.close[0] + r.close[1] + r.close[2], 0);
    assert_int_equal(r.leftover, 0);
}

static void test_partial_response_waits(void **state)
{
    (void)state;
    results r;
    feed_both("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0, &r);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.bad, 0);
    assert_int_equal(r.leftover, 0); /* body bytes are skipped as they come */
    const char *cut = "HTTP/1.1 200 OK\r\nContent-Len";
    feed_both(cut, 0, &r);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.leftover, strlen(cut)); /* an incomplete header is kept */
}

static void test_chunked(void **state)
{
    (void)state;
    results r;
    feed_both("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
              "5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n"
              "HTTP/1.1 503 Busy\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno",
              0, &r);
    assert_int_equal(r.bad, 0);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.status[0], 200);
    assert_int_equal(r.close[0], 0);
    assert_int_equal(r.status[1], 503);
    assert_int_equal(r.close[1], 1);
    /* LF-only line ends */
    feed_both("HTTP/1.1 201 Created\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n", 0, &r);
    assert_int_equal(r.bad, 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.status[0], 201);
}

static void test_connection_close_rules(void **state)
{
    (void)state;
    results r;
    feed_both("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 0, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.close[0], 1);
    feed_both("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx", 0, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.close[0], 0);
    feed_both("HTTP/1.1 200 OK\r\nConnection: upgrade, Close\r\nContent-Length: 1\r\n\r\nx", 0, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.close[0], 1);
    /* a close on one response does not stick to the next */
    feed_both("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
              "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
              0, &r);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.close[0], 1);
    assert_int_equal(r.close[1], 0);
}

static void test_interim_and_bodyless(void **state)
{
    (void)state;
    results r;
    feed_both("HTTP/1.1 100 Continue\r\n\r\n"
              "HTTP/1.1 204 No Content\r\n\r\n"
              "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n"
              "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
              0, &r);
    assert_int_equal(r.bad, 0);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.status[0], 204);
    assert_int_equal(r.status[1], 304);
    assert_int_equal(r.status[2], 200);
}

static void test_body_until_eof(void **state)
{
    (void)state;
    results r;
    feed_both("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome body", 0, &r);
    assert_int_equal(r.n, 0);
    feed_both("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome body", 1, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.eof_done, 1);
    assert_int_equal(r.status[0], 200);
    /* a clean close between responses is not a response */
    feed_both("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 1, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.eof_done, 0);
    assert_int_equal(r.bad, 0);
}

static void test_cut_by_eof(void **state)
{
    (void)state;
    results r;
    feed_both("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 1, &r);
    assert_int_equal(r.bad, 1);
    feed_both("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", 1, &r);
    assert_int_equal(r.bad, 1);
    /* a cut header is left for the caller to see */
    feed_both("HTTP/1.1 200 OK\r\nContent-", 1, &r);
    assert_int_equal(r.bad, 0);
    assert_int_equal(r.n, 0);
    assert_true(r.leftover > 0);
}

static void test_refusals(void **state)
{
    (void)state;
    results r;
    const char *bad[] = {
        "SSH-2.0-OpenSSH_9.2\r\n\r\n",
        "HTTP/2 200\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX",
        "HTTP/1.1 101 Switching Protocols\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        feed_both(bad[i], 0, &r);
        assert_int_equal(r.bad, 1);
    }
    /* an NDJSON server is recognised at once, without a blank line */
    feed_both("{\"id\":null,\"ok\":false}\n", 0, &r);
    assert_int_equal(r.bad, 1);
    feed("H", 1, 1, 0, &r);
    assert_int_equal(r.bad, 0);
    feed("HX", 2, 1, 0, &r);
    assert_int_equal(r.bad, 1);
}

static void test_bounded_lines(void **state)
{
    (void)state;
    results r;
    /* a header block that never ends is refused at HTTP_MAX_HEAD */
    size_t len = HTTP_MAX_HEAD + 100;
    char *big = malloc(len + 1);
    assert_non_null(big);
    memcpy(big, "HTTP/1.1 200 OK\r\nX-Big: ", 24);
    memset(big + 24, 'a', len - 24);
    big[len] = '\0';
    feed(big, len, 4096, 0, &r);
    assert_int_equal(r.bad, 1);
    /* a chunk-size line that never ends is refused at HTTP_MAX_LINE */
    const char *head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    size_t hl = strlen(head);
    memcpy(big, head, hl);
    memset(big + hl, '1', len - hl);
    feed(big, len, 4096, 0, &r);
    assert_int_equal(r.bad, 1);
    free(big);
}

static void test_large_body_not_buffered(void **state)
{
    (void)state;
    results r;
    size_t body = 200000;
    const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n";
    size_t hl = strlen(head);
    char *msg = malloc(hl + body);
    assert_non_null(msg);
    memcpy(msg, head, hl);
    memset(msg + hl, 'b', body);
    feed(msg, hl + body, 4096, 0, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.status[0], 200);
    assert_true(r.max_held <= 4096);
    free(msg);
}

/* ---- request templates ---------------------------------------------- */

static void test_tmpl_ndjson(void **state)
{
    (void)state;
    tmpl t;
    char err[128];
    tmpl_spec spec = {.http = 0, .type = "echo", .data = NULL, .payload_bytes = 3};
    assert_int_equal(tmpl_build(&t, &spec, err, sizeof(err)), AP_OK);
    const char *expect = "{\"id\":                    ,\"type\":\"echo\",\"data\":{\"p\":\"xxx\"}}\n";
    assert_int_equal(t.len, strlen(expect));
    assert_memory_equal(t.bytes, expect, t.len);
    assert_int_equal(t.id_off, 6);

    char out[256];
    tmpl_write(&t, out, 12345);
    const char *want = "{\"id\":12345               ,\"type\":\"echo\",\"data\":{\"p\":\"xxx\"}}\n";
    assert_memory_equal(out, want, t.len);
    tmpl_write(&t, out, 0);
    assert_memory_equal(out, "{\"id\":0 ", 8);
    tmpl_write(&t, out, UINT64_MAX);
    assert_memory_equal(out, "{\"id\":18446744073709551615,\"type\"", 33);
    out[t.len - 1] = '\0';
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    cJSON *id = cJSON_GetObjectItem(j, "id");
    assert_non_null(id);
    assert_true(cJSON_IsNumber(id));
    cJSON_Delete(j);
    tmpl_free(&t);
}

/* --sessions N: "session":"s<k>", k = id % N, zero-padded to N-1's width. */
static void test_tmpl_sessions(void **state)
{
    (void)state;
    tmpl t;
    char err[128], out[256];
    tmpl_spec spec = {.type = "echo", .data = "1", .sessions = 120};
    assert_int_equal(tmpl_build(&t, &spec, err, sizeof(err)), AP_OK);
    tmpl_write(&t, out, 7);
    const char *want = "{\"id\":7                   ,\"type\":\"echo\",\"data\":1,\"session\":\"s007\"}\n";
    assert_int_equal(t.len, strlen(want));
    assert_memory_equal(out, want, t.len);
    tmpl_write(&t, out, 239);
    assert_memory_equal(out + t.len - 7, "s119\"}\n", 7);
    tmpl_write(&t, out, 240);
    assert_memory_equal(out + t.len - 7, "s000\"}\n", 7);
    tmpl_free(&t);
    spec.sessions = 1;
    assert_int_equal(tmpl_build(&t, &spec, err, sizeof(err)), AP_OK);
    tmpl_write(&t, out, 99);
    assert_memory_equal(out + t.len - 5, "s0\"}\n", 5);
    tmpl_free(&t);
}

static void test_tmpl_data_and_type(void **state)
{
    (void)state;
    tmpl t;
    char err[128];
    tmpl_spec spec = {.type = "a\"b\\c\x01", .data = "{\"ms\":\n 50}\r\n"};
    assert_int_equal(tmpl_build(&t, &spec, err, sizeof(err)), AP_OK);
    /* one line: the only newline is the last byte */
    assert_ptr_equal(memchr(t.bytes, '\n', t.len), t.bytes + t.len - 1);
    assert_non_null(strstr(t.bytes, "\"type\":\"a\\\"b\\\\c\\u0001\""));
    assert_non_null(strstr(t.bytes, "\"data\":{\"ms\":  50}  }"));
    tmpl_free(&t);

    spec.data = "{\"ms\": 50";
    assert_int_equal(tmpl_build(&t, &spec, err, sizeof(err)), AP_ERR);
    assert_non_null(strstr(err, "--data is not valid JSON"));
    spec.data = "";
    assert_int_equal(tmpl_build(&t, &spec, err, sizeof(err)), AP_ERR);
}

static void test_tmpl_stream(void **state)
{
    (void)state;
    tmpl t;
    char err[128];
    tmpl_spec spec = {.type = "tokens", .data = "{\"n\": 3}", .stream = 1};
    assert_int_equal(tmpl_build(&t, &spec, err, sizeof(err)), AP_OK);
    const char *expect = "{\"id\":                    ,\"type\":\"tokens\",\"data\":{\"n\": 3},\"stream\":true}\n";
    assert_int_equal(t.len, strlen(expect));
    assert_memory_equal(t.bytes, expect, t.len);
    tmpl_free(&t);
}

static void test_tmpl_http(void **state)
{
    (void)state;
    tmpl t;
    char err[128];
    tmpl_spec spec = {.http = 1, .type = "echo", .payload_bytes = 0, .path = "/run?x=1", .host = "localhost"};
    assert_int_equal(tmpl_build(&t, &spec, err, sizeof(err)), AP_OK);
    const char *body = "{\"id\":                    ,\"type\":\"echo\",\"data\":{\"p\":\"\"}}";
    char head[256];
    snprintf(head, sizeof(head),
             "POST /run?x=1 HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n",
             strlen(body));
    assert_int_equal(t.len, strlen(head) + strlen(body));
    assert_memory_equal(t.bytes, head, strlen(head));
    assert_memory_equal(t.bytes + strlen(head), body, strlen(body));
    assert_int_equal(t.id_off, strlen(head) + 6);
    char out[512];
    tmpl_write(&t, out, 98765);
    assert_memory_equal(out + strlen(head), "{\"id\":98765 ", 12);
    tmpl_free(&t);

    spec.path = "/a b";
    assert_int_equal(tmpl_build(&t, &spec, err, sizeof(err)), AP_ERR);
    assert_non_null(strstr(err, "--path"));
    spec.path = "nope";
    assert_int_equal(tmpl_build(&t, &spec, err, sizeof(err)), AP_ERR);
    assert_non_null(strstr(err, "--path"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length_pipelined),
        cmocka_unit_test(test_partial_response_waits),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_connection_close_rules),
        cmocka_unit_test(test_interim_and_bodyless),
        cmocka_unit_test(test_body_until_eof),
        cmocka_unit_test(test_cut_by_eof),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_bounded_lines),
        cmocka_unit_test(test_large_body_not_buffered),
        cmocka_unit_test(test_tmpl_ndjson),
        cmocka_unit_test(test_tmpl_data_and_type),
        cmocka_unit_test(test_tmpl_stream),
        cmocka_unit_test(test_tmpl_sessions),
        cmocka_unit_test(test_tmpl_http),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
