/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_broker_wire.c - the broker's pure parts: the "broker" setting's
 * text form (brokercfg.c: members, defaults, the exact refusals) and the
 * wire forms (bentry.c: an entry's fields from a stream reply, the line
 * fed to the admission path, the answer key, a final line's id and rest,
 * a made-up error's rest), and the ring of remembered cancels
 * (bcancel.c: until their time, the oldest dropped when full).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bcancel.h"
#include "bentry.h"
#include "brokercfg.h"
#include "ap_alloc.h"
#include "ap_common.h"

#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

static void test_broker_setting_defaults_and_members(void **state)
{
    (void)state;
    brokercfg c;
    char err[512] = "";
    assert_int_equal(brokercfg_parse("url=redis://127.0.0.1:6380/2", &c, err, sizeof(err)), AP_OK);
    assert_string_equal(c.addr.host, "127.0.0.1");
    assert_int_equal(c.addr.port, 6380);
    assert_int_equal(c.addr.db, 2);
    assert_string_equal(c.stream, "");
    assert_string_equal(c.group, "");
    assert_int_equal(c.max_length, 100000);
    assert_int_equal(c.claim_interval_ms, 1000);
    assert_int_equal(c.claim_idle_ms, 0);
    assert_int_equal(c.reply_ttl_ms, 600000);
    assert_int_equal(c.answer_ttl_ms, 0);
    assert_int_equal(c.down_alert_ms, 10000);
    assert_int_equal(brokercfg_parse("stream=s:1,group=g,consumer=host-1,controlStream=c,maxLength=5,"
                                     "claimIntervalMs=10,claimIdleMs=100,replyTtl=1000,answerTtl=2000,"
                                     "downAlertMs=0,url=redis://[::1]",
                                     &c, err, sizeof(err)),
                     AP_OK);
    assert_string_equal(c.stream, "s:1");
    assert_string_equal(c.group, "g");
    assert_string_equal(c.consumer, "host-1");
    assert_string_equal(c.control, "c");
    assert_int_equal(c.max_length, 5);
    assert_int_equal(c.claim_idle_ms, 100);
    assert_int_equal(c.answer_ttl_ms, 2000);
    assert_int_equal(c.down_alert_ms, 0);
    assert_int_equal(c.addr.ipv6, 1);
}

static void test_broker_setting_refusals_say_why(void **state)
{
    (void)state;
    static const struct {
        const char *in, *err;
    } bad[] = {
        {"", "broker: url is required (url=redis://HOST:PORT/DB)"},
        {"stream=s", "broker: url is required (url=redis://HOST:PORT/DB)"},
        {"url=http://x", "broker: url 'http://x' is not redis://HOST:PORT/DB"},
        {"url=redis://db.example:6379",
         "broker url 'redis://db.example:6379': 'db.example' is not a numeric address (an IPv4 address, [IPv6] or "
         "localhost; names are not resolved, so that the loop never waits on DNS)"},
        {"url=redis://127.0.0.1,url=redis://127.0.0.1", "broker: url is given twice"},
        {"url=redis://127.0.0.1,,group=g", "broker: an empty member (two commas, or one at an end)"},
        {"url=redis://127.0.0.1,", "broker: an empty member (two commas, or one at an end)"},
        {"url=redis://127.0.0.1,group", "broker: 'group' is not NAME=VALUE"},
        {"url=redis://127.0.0.1,group=", "broker: group '' must be 1 to 200 printable characters without spaces, "
                                         "',' or '='"},
        {"url=redis://127.0.0.1,group=a b", "broker: group 'a b' must be 1 to 200 printable characters without "
                                            "spaces, ',' or '='"},
        {"url=redis://127.0.0.1,maxLength=0", "broker: maxLength '0' is not a whole number from 1 to 1000000000"},
        {"url=redis://127.0.0.1,claimIdleMs=-5", "broker: claimIdleMs '-5' is not a whole number from 100 to "
                                                 "86400000"},
        {"url=redis://127.0.0.1,claimIntervalMs=1s", "broker: claimIntervalMs '1s' is not a whole number from 10 "
                                                     "to 3600000"},
        {"url=redis://127.0.0.1,colour=blue",
         "broker: unknown member 'colour' (known: url, stream, controlStream, group, consumer, maxLength, "
         "claimIntervalMs, claimIdleMs, replyTtl, answerTtl, downAlertMs)"},
    };
    for (size_t i = 0; i < AP_ARRAY_LEN(bad); i++) {
        brokercfg c;
        char err[512] = "";
        if (brokercfg_parse(bad[i].in, &c, err, sizeof(err)) != AP_ERR)
            fail_msg("'%s' was accepted", bad[i].in);
        assert_string_equal(err, bad[i].err);
    }
}

/* ---- hiredis replies built by hand ------------------------------------ */

static redisReply *str(const char *s)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = REDIS_REPLY_STRING;
    r->str = strdup(s);
    r->len = strlen(s);
    return r;
}

static redisReply *arr(size_t n, ...)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = REDIS_REPLY_ARRAY;
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof(redisReply *));
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        r->element[i] = va_arg(ap, redisReply *);
    va_end(ap);
    return r;
}

static redisReply *nil(void)
{
    redisReply *r = calloc(1, sizeof(*r));
    r->type = REDIS_REPLY_NIL;
    return r;
}

static void test_an_entry_s_fields_are_read_and_bad_shapes_refused(void **state)
{
    (void)state;
    bentry e;
    char why[200];
    redisReply *r = arr(2, str("1700000000000-3"),
                        arr(6, str("req"), str("{\"id\":1}"), str("other"), str("x"), str("replyTo"), str("rt")));
    assert_int_equal(bentry_read(r, &e, why, sizeof(why)), AP_OK);
    assert_int_equal(e.eid.len, 15);
    assert_memory_equal(e.req.ptr, "{\"id\":1}", e.req.len);
    assert_memory_equal(e.reply_to.ptr, "rt", 2);
    assert_null(e.cancel.ptr);
    freeReplyObject(r);
    r = arr(2, str("5-0"), nil()); /* deleted before it was claimed */
    assert_int_equal(bentry_read(r, &e, why, sizeof(why)), AP_OK);
    assert_null(e.req.ptr);
    freeReplyObject(r);
    r = arr(2, str("5-0"), arr(3, str("req"), str("a"), str("replyTo")));
    assert_int_equal(bentry_read(r, &e, why, sizeof(why)), AP_ERR);
    assert_string_equal(why, "entry 5-0: its fields are not name/value pairs");
    freeReplyObject(r);
    r = arr(2, str("5-0"), arr(2, str("replyTo"), str("")));
    assert_int_equal(bentry_read(r, &e, why, sizeof(why)), AP_ERR);
    assert_string_equal(why, "entry 5-0: replyTo is empty or longer than 512 bytes");
    freeReplyObject(r);
    r = arr(2, str("five"), arr(0));
    assert_int_equal(bentry_read(r, &e, why, sizeof(why)), AP_ERR);
    assert_string_equal(why, "its id is not an entry id");
    freeReplyObject(r);
    r = arr(1, str("5-0"));
    assert_int_equal(bentry_read(r, &e, why, sizeof(why)), AP_ERR);
    assert_string_equal(why, "not a stream entry [id, fields]");
    freeReplyObject(r);
    assert_true(bentry_id_ok("0-1", 3));
    assert_false(bentry_id_ok("-1", 2));
    assert_false(bentry_id_ok("1-", 2));
    assert_false(bentry_id_ok("1-2-3", 5));
    assert_false(bentry_id_ok("123456789012345678901-1", 23));
}

static void test_the_line_fed_names_the_stream_s_pool_last(void **state)
{
    (void)state;
    static const struct {
        const char *req, *line;
    } cases[] = {
        {"{\"id\":1,\"type\":\"t\"}", "{\"id\":1,\"type\":\"t\",\"pool\":\"p\"}"},
        {"  {\"id\":1,\"pool\":\"x\"} \n", "{\"id\":1,\"pool\":\"x\",\"pool\":\"p\"}"},
        {"{ }", "{ \"pool\":\"p\"}"},
        {"[1]", "[1]"},
        {"", ""},
    };
    for (size_t i = 0; i < AP_ARRAY_LEN(cases); i++) {
        size_t len;
        char *l = bentry_line(cases[i].req, strlen(cases[i].req), "p", &len);
        assert_int_equal(len, strlen(cases[i].line));
        assert_memory_equal(l, cases[i].line, len);
        ap_free(l);
    }
}

static void test_answer_keys_final_lines_and_made_up_errors(void **state)
{
    (void)state;
    size_t len;
    char *k = bentry_answer_key("agentpool:p:answer:", "k1", 2, &len);
    assert_string_equal(k, "agentpool:p:answer:k1");
    assert_int_equal(len, strlen(k));
    ap_free(k);
    const char *line = "{\"id\":\"a,b\",\"ok\":true,\"result\":1}";
    bspan id, rest;
    assert_int_equal(bentry_split_answer(line, strlen(line), 12, &id, &rest), AP_OK);
    assert_memory_equal(id.ptr, "\"a,b\"", id.len);
    assert_int_equal(id.len, 5);
    assert_memory_equal(rest.ptr, "\"ok\":true,\"result\":1}", rest.len);
    assert_int_equal(bentry_split_answer(line, strlen(line), 11, &id, &rest), AP_ERR);
    assert_int_equal(bentry_split_answer("{\"x\":1}", 7, 6, &id, &rest), AP_ERR);
    char *r = bentry_error_rest("cancelled", "said \"no\"", &len);
    assert_string_equal(r, "\"ok\":false,\"error\":{\"code\":\"cancelled\",\"message\":\"said \\\"no\\\"\"}}");
    assert_int_equal(len, strlen(r));
    ap_free(r);
}

static void test_remembered_cancels_last_until_their_time_and_the_oldest_goes_first(void **state)
{
    (void)state;
    bcancel_ring r;
    bcancel_init(&r, 3);
    assert_false(bcancel_has(&r, "1-1", 0));
    bcancel_add(&r, "1-1", 3, 0, 100);
    bcancel_add(&r, "1-2", 3, 0, 200);
    assert_true(bcancel_has(&r, "1-1", 99));
    assert_false(bcancel_has(&r, "1-1", 100)); /* past its time */
    assert_false(bcancel_has(&r, "1-", 0));
    bcancel_add(&r, "1-3", 3, 50, 300);
    bcancel_add(&r, "1-4", 3, 60, 400); /* full: 1-1, the oldest, goes */
    assert_int_equal(bcancel_count(&r), 3);
    assert_false(bcancel_has(&r, "1-1", 60));
    assert_true(bcancel_has(&r, "1-2", 60) && bcancel_has(&r, "1-3", 60) && bcancel_has(&r, "1-4", 60));
    bcancel_add(&r, "1-5", 3, 250, 500); /* 1-2 is past its time: dropped first */
    assert_int_equal(bcancel_count(&r), 3);
    assert_true(bcancel_has(&r, "1-5", 250));
    bcancel_add(&r, "123456789012345678901-123456789012345678901", 43, 0, 1); /* too long: ignored */
    assert_int_equal(bcancel_count(&r), 3);
    bcancel_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broker_setting_defaults_and_members),
        cmocka_unit_test(test_broker_setting_refusals_say_why),
        cmocka_unit_test(test_an_entry_s_fields_are_read_and_bad_shapes_refused),
        cmocka_unit_test(test_the_line_fed_names_the_stream_s_pool_last),
        cmocka_unit_test(test_answer_keys_final_lines_and_made_up_errors),
        cmocka_unit_test(test_remembered_cancels_last_until_their_time_and_the_oldest_goes_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
