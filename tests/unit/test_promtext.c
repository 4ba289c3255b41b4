/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_promtext.c - cmocka tests for the Prometheus text writer
 * (pool/ops/promtext.c and pool/ops/hist.c, with a real libevent evbuffer).
 *
 * Output is compared byte for byte with what the text format 0.0.4
 * specifies: HELP and TYPE lines, label values escaped (backslash,
 * double quote, newline; nothing else touched, UTF-8 passed through),
 * HELP text escaped (backslash and newline only), integers exact past
 * 2^53, +Inf/-Inf/NaN, and a histogram's cumulative buckets with `le`
 * after the other labels, +Inf, _sum and _count.
 */
#include "promtext.h"
#include "hist.h"
#include "ap_common.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* The buffer's text (NUL-terminated copy, freed by the caller), drained. */
static char *take(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    assert_non_null(s);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    return s;
}

static void expect(struct evbuffer *b, const char *want)
{
    char *got = take(b);
    assert_string_equal(got, want);
    free(got);
}

static void test_family_lines(void **state)
{
    struct evbuffer *b = *state;
    promtext_family(b, "agentpool_up", "gauge", "1 while \"up\"\nsee C:\\docs");
    expect(b, "# HELP agentpool_up 1 while \"up\"\\nsee C:\\\\docs\n# TYPE agentpool_up gauge\n");
}

static void test_samples(void **state)
{
    struct evbuffer *b = *state;
    promtext_u64(b, "x_total", NULL, 0, 0);
    promtext_u64(b, "x_total", NULL, 0, UINT64_MAX);
    promtext_u64(b, "x_total", NULL, 0, 9007199254740993ull); /* 2^53 + 1 */
    expect(b, "x_total 0\nx_total 18446744073709551615\nx_total 9007199254740993\n");
    promtext_label l[2] = {{"type", "echo"}, {"outcome", "ok"}};
    promtext_u64(b, "m_total", l, 2, 100);
    promtext_u64(b, "m_total", l, 1, 7);
    expect(b, "m_total{type=\"echo\",outcome=\"ok\"} 100\nm_total{type=\"echo\"} 7\n");
    promtext_double(b, "g", NULL, 0, 0.25);
    promtext_double(b, "g", NULL, 0, INFINITY);
    promtext_double(b, "g", NULL, 0, -INFINITY);
    promtext_double(b, "g", NULL, 0, NAN);
    promtext_double(b, "g", NULL, 0, 1795513051.167);
    promtext_double(b, "g", NULL, 0, 0.1 + 0.2);
    expect(b, "g 0.25\ng +Inf\ng -Inf\ng NaN\ng 1795513051.167\ng 0.30000000000000004\n");
}

static void test_label_escapes(void **state)
{
    struct evbuffer *b = *state;
    promtext_label l = {"type", "a\\b\"c\nd\te \xc3\xa9}{,="};
    promtext_u64(b, "m", &l, 1, 1);
    expect(b, "m{type=\"a\\\\b\\\"c\\nd\te \xc3\xa9}{,=\"} 1\n");
    l.value = "";
    promtext_u64(b, "m", &l, 1, 2);
    expect(b, "m{type=\"\"} 2\n");
    promtext_escape(b, "q\"\\\n", 0);
    expect(b, "q\"\\\\\\n");
}

static void test_histogram(void **state)
{
    struct evbuffer *b = *state;
    hist_fixed h;
    const uint64_t bounds[3] = {500000, 1000000, 2500000000ull}; /* ns */
    assert_int_equal(hist_fixed_init(&h, bounds, 3), AP_OK);
    hist_fixed_record(&h, 400000);
    hist_fixed_record(&h, 1000000);
    hist_fixed_record(&h, 1000001);
    hist_fixed_record(&h, 3000000000ull);
    promtext_histogram(b, "d_seconds", NULL, 0, &h, 1e9);
    expect(b, "d_seconds_bucket{le=\"0.0005\"} 1\n"
              "d_seconds_bucket{le=\"0.001\"} 2\n"
              "d_seconds_bucket{le=\"2.5\"} 3\n"
              "d_seconds_bucket{le=\"+Inf\"} 4\n"
              "d_seconds_sum 3.002400001\n"
              "d_seconds_count 4\n");
    promtext_label l = {"type", "x\"y"};
    hist_fixed_init(&h, bounds, 1);
    promtext_histogram(b, "d_seconds", &l, 1, &h, 1e9);
    expect(b, "d_seconds_bucket{type=\"x\\\"y\",le=\"0.0005\"} 0\n"
              "d_seconds_bucket{type=\"x\\\"y\",le=\"+Inf\"} 0\n"
              "d_seconds_sum{type=\"x\\\"y\"} 0\n"
              "d_seconds_count{type=\"x\\\"y\"} 0\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_family_lines, setup_buf, teardown_buf),
        cmocka_unit_test_setup_teardown(test_samples, setup_buf, teardown_buf),
        cmocka_unit_test_setup_teardown(test_label_escapes, setup_buf, teardown_buf),
        cmocka_unit_test_setup_teardown(test_histogram, setup_buf, teardown_buf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
