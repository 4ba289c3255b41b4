/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_h1parse.c - cmocka tests for the HTTP front door's request parser
 * (pool/path/h1parse.c over llhttp).
 *
 * Built with AP_ALLOC_TEST: its header and body buffers go through
 * cmocka's allocator, so a leak or an overrun fails.  Checked: a request's
 * method, path, query, headers (any case, an empty value) and body; the
 * same request fed a byte at a time; pipelined requests taken one at a
 * time; chunked bodies; HTTP/1.0 keep-alive; absolute-form targets;
 * Expect: 100-continue; and each refusal with its status: request
 * smuggling (Content-Length with Transfer-Encoding, Content-Length twice,
 * a Transfer-Encoding other than chunked), the head's bytes (whitespace
 * no callback sees included) and fields (431), the body (413, from Content-Length and from chunks), unknown
 * methods and upgrades (501), other versions (505), other expectations
 * (417), malformed requests (400).
 */
#include "h1parse.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

static const h1parse_limits lim = {1024, 64};

/* Feeds all of text in pieces of step bytes (0: at once); returns what
 * was consumed. */
static size_t feed(h1parse *h, const char *text, size_t step)
{
    size_t n = strlen(text), off = 0;
    while (off < n && h->state != H1P_DONE && h->state != H1P_ERROR) {
        size_t k = step && n - off > step ? step : n - off;
        size_t used = h1parse_feed(h, text + off, k);
        off += used;
        if (used < k)
            break;
    }
    return off;
}

static void refused(const char *text, int status)
{
    h1parse h;
    h1parse_init(&h, &lim);
    feed(&h, text, 0);
    assert_int_equal(h.state, H1P_ERROR);
    assert_int_equal(h.status, status);
    assert_non_null(h.why);
    h1parse_free(&h);
}

static void test_get_with_headers_and_query(void **state)
{
    (void)state;
    const char *req = "GET /v1/pools?stream=1&x=2 HTTP/1.1\r\nHost: h\r\nX-Empty:\r\naccept: text/event-stream\r\n\r\n";
    for (size_t step = 0; step <= 1; step++) { /* at once, then a byte at a time */
        h1parse h;
        h1parse_init(&h, &lim);
        assert_int_equal(feed(&h, req, step), strlen(req));
        assert_int_equal(h.state, H1P_DONE);
        assert_int_equal(h.method, H1_GET);
        assert_string_equal(h.path, "/v1/pools");
        assert_string_equal(h.query, "stream=1&x=2");
        assert_string_equal(h1parse_header(&h, "ACCEPT"), "text/event-stream");
        assert_string_equal(h1parse_header(&h, "host"), "h");
        assert_string_equal(h1parse_header(&h, "X-Empty"), "");
        assert_null(h1parse_header(&h, "Hos"));
        assert_int_equal(h.minor, 1);
        assert_true(h.keep_alive);
        assert_int_equal(h.blen, 0);
        h1parse_free(&h);
    }
}

static void test_post_body_and_pipelining(void **state)
{
    (void)state;
    const char *two = "POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloHEAD /b HTTP/1.1\r\nConnection: close\r\n\r\n";
    h1parse h;
    h1parse_init(&h, &lim);
    size_t used = h1parse_feed(&h, two, strlen(two));
    assert_int_equal(h.state, H1P_DONE); /* the first only: the second waits */
    assert_int_equal(h.method, H1_POST);
    assert_int_equal(h.blen, 5);
    assert_memory_equal(h.body, "hello", 5);
    assert_int_equal(h1parse_feed(&h, two + used, strlen(two) - used), 0); /* nothing before h1parse_next */
    h1parse_next(&h);
    size_t rest = h1parse_feed(&h, two + used, strlen(two) - used);
    assert_int_equal(used + rest, strlen(two));
    assert_int_equal(h.state, H1P_DONE);
    assert_int_equal(h.method, H1_HEAD);
    assert_string_equal(h.path, "/b");
    assert_int_equal(h.blen, 0);
    assert_false(h.keep_alive);
    h1parse_free(&h);
}

static void test_chunked_body_byte_by_byte(void **state)
{
    (void)state;
    const char *req = "POST /m HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3\r\nefg\r\n0\r\nX-T: 1\r\n\r\n";
    h1parse h;
    h1parse_init(&h, &lim);
    assert_int_equal(feed(&h, req, 1), strlen(req));
    assert_int_equal(h.state, H1P_DONE);
    assert_int_equal(h.blen, 7);
    assert_memory_equal(h.body, "abcdefg", 7);
    assert_null(h1parse_header(&h, "X-T")); /* a trailer is not a header */
    h1parse_free(&h);
}

static void test_http10_absolute_form_and_expect(void **state)
{
    (void)state;
    h1parse h;
    h1parse_init(&h, &lim);
    feed(&h, "GET http://example.org/healthz HTTP/1.0\r\n\r\n", 0);
    assert_int_equal(h.state, H1P_DONE);
    assert_string_equal(h.path, "/healthz");
    assert_null(h.query);
    assert_int_equal(h.minor, 0);
    assert_false(h.keep_alive);
    h1parse_next(&h);
    feed(&h, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0);
    assert_true(h.keep_alive);
    h1parse_next(&h);
    feed(&h, "POST /m HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n", 0);
    assert_int_equal(h.state, H1P_BODY);
    assert_true(h.expect_continue);
    feed(&h, "{}", 0);
    assert_int_equal(h.state, H1P_DONE);
    h1parse_free(&h);
}

static void test_smuggling_is_refused(void **state)
{
    (void)state;
    refused("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
    refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", 400);
    refused("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400);
    refused("POST / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 4\r\n\r\nabcd", 400);
    refused("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400);
    refused("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400);
    refused("GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400);
    refused("POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc", 400);
    refused("GET /\x01 HTTP/1.1\r\n\r\n", 400);
    refused("GET nopath HTTP/1.1\r\n\r\n", 400);
}

static void test_bounds_and_methods(void **state)
{
    (void)state;
    char big[2048];
    snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nX-Big: %01500d\r\n\r\n", 0);
    refused(big, 431);
    /* whitespace the parser passes to no callback counts too (the head's
     * bytes are counted, not only what is kept of them), fed at once or
     * a byte at a time, and a head just within the bound is taken */
    snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nX-Pad:%1500s\r\n\r\n", "v");
    refused(big, 431);
    for (size_t step = 0; step <= 1; step++) {
        h1parse h;
        h1parse_init(&h, &lim);
        feed(&h, big, step);
        assert_int_equal(h.status, 431);
        h1parse_free(&h);
    }
    snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nX-Pad:%*s\r\n\r\n", (int)(lim.max_head - 26), "v");
    assert_int_equal(strlen(big), lim.max_head);
    for (size_t step = 0; step <= 1; step++) {
        h1parse h;
        h1parse_init(&h, &lim);
        feed(&h, big, step);
        assert_int_equal(h.state, H1P_DONE);
        assert_string_equal(h1parse_header(&h, "X-Pad"), "v");
        h1parse_free(&h);
    }
    char many[4096] = "GET / HTTP/1.1\r\n";
    for (int i = 0; i <= H1PARSE_MAX_HEADERS; i++)
        strcat(many, "A: 1\r\n");
    h1parse_limits wide = {8192, 64};
    h1parse h;
    h1parse_init(&h, &wide);
    feed(&h, many, 0);
    assert_int_equal(h.state, H1P_ERROR);
    assert_int_equal(h.status, 431);
    h1parse_free(&h);
    refused("POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n", 413);
    refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n", 413);
    refused("BREW / HTTP/1.1\r\n\r\n", 501);
    refused("CONNECT h:443 HTTP/1.1\r\n\r\n", 501);
    refused("GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", 501);
    refused("GET / HTTP/2.0\r\n\r\n", 505);
    refused("POST / HTTP/1.1\r\nExpect: something\r\nContent-Length: 1\r\n\r\n", 417);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_with_headers_and_query),
        cmocka_unit_test(test_post_body_and_pipelining),
        cmocka_unit_test(test_chunked_body_byte_by_byte),
        cmocka_unit_test(test_http10_absolute_form_and_expect),
        cmocka_unit_test(test_smuggling_is_refused),
        cmocka_unit_test(test_bounds_and_methods),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
