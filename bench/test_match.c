/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_match.c - cmocka tests of answer matching: the in-flight table
 * (ids answered out of order, unknown ids, duplicate answers, ordered
 * mode for HTTP, failing what a lost connection held, a stream's chunks),
 * the NDJSON response scanner (answers, chunks with their seq,
 * heartbeats), and the error-code table.  Built with AP_ALLOC_TEST,
 * so cmocka reports any leak.
 */
#include "errtab.h"
#include "match.h"
#include "resp.h"
#include "ap_common.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static void test_init_rejects_bad_arguments(void **state)
{
    (void)state;
    match_table t;
    assert_int_equal(match_init(&t, 0, 1, 0, 0), AP_ERR);
    assert_int_equal(match_init(&t, 2, 2, 4, 0), AP_ERR);
    assert_int_equal(match_init(&t, 0, 0, 4, 0), AP_ERR);
}

static void test_out_of_order(void **state)
{
    (void)state;
    match_table t;
    uint64_t ids[8], start;
    assert_int_equal(match_init(&t, 1, 3, 8, 0), AP_OK);
    for (int i = 0; i < 8; i++)
        assert_true(match_acquire(&t, 1000 + (uint64_t)i, &ids[i]) >= 0);
    assert_int_equal(t.in_use, 8);
    /* full: nothing more, nothing changed */
    uint64_t extra = 12345;
    assert_int_equal(match_acquire(&t, 5, &extra), -1);
    assert_int_equal(extra, 12345);
    /* ids are distinct */
    for (int i = 0; i < 8; i++)
        for (int j = i + 1; j < 8; j++)
            assert_true(ids[i] != ids[j]);
    /* answers in a scrambled order each find their own start time */
    const int order[8] = {5, 0, 7, 2, 6, 1, 4, 3};
    for (int k = 0; k < 8; k++) {
        int i = order[k];
        assert_int_equal(match_complete(&t, ids[i], &start), MATCH_OK);
        assert_int_equal(start, 1000 + (uint64_t)i);
    }
    assert_int_equal(t.in_use, 0);
    assert_int_equal(match_oldest(&t, &start), AP_ERR);
    match_free(&t);
}

static void test_unknown_ids(void **state)
{
    (void)state;
    match_table t0, t1;
    uint64_t id0, id1, start = 77;
    assert_int_equal(match_init(&t0, 0, 2, 4, 0), AP_OK);
    assert_int_equal(match_init(&t1, 1, 2, 4, 0), AP_OK);
    assert_true(match_acquire(&t0, 10, &id0) >= 0);
    assert_true(match_acquire(&t1, 20, &id1) >= 0);
    /* another connection's id */
    assert_int_equal(match_complete(&t0, id1, &start), MATCH_UNKNOWN);
    assert_int_equal(match_complete(&t1, id0, &start), MATCH_UNKNOWN);
    /* a generation not reached yet */
    assert_int_equal(match_complete(&t0, id0 + 5 * 2 * 4, &start), MATCH_UNKNOWN);
    /* a slot never used, and huge ids */
    assert_int_equal(match_complete(&t0, 3, &start), MATCH_UNKNOWN);
    assert_int_equal(match_complete(&t0, UINT64_MAX, &start), MATCH_UNKNOWN);
    assert_int_equal(match_complete(&t0, 999999999, &start), MATCH_UNKNOWN);
    /* nothing changed: the real answers still match */
    assert_int_equal(start, 77);
    assert_int_equal(match_complete(&t0, id0, &start), MATCH_OK);
    assert_int_equal(start, 10);
    assert_int_equal(match_complete(&t1, id1, &start), MATCH_OK);
    assert_int_equal(start, 20);
    match_free(&t0);
    match_free(&t1);
}

static void test_duplicates(void **state)
{
    (void)state;
    match_table t;
    uint64_t a, b, start;
    assert_int_equal(match_init(&t, 0, 1, 1, 0), AP_OK);
    assert_int_equal(match_acquire(&t, 1, &a), 0);
    assert_int_equal(match_complete(&t, a, &start), MATCH_OK);
    /* the same answer again, slot free */
    assert_int_equal(match_complete(&t, a, &start), MATCH_DUPLICATE);
    /* the slot is reused with a new id; the old one is still a duplicate */
    assert_int_equal(match_acquire(&t, 2, &b), 0);
    assert_true(a != b);
    assert_int_equal(match_complete(&t, a, &start), MATCH_DUPLICATE);
    assert_int_equal(t.in_use, 1);
    assert_int_equal(match_complete(&t, b, &start), MATCH_OK);
    assert_int_equal(start, 2);
    assert_int_equal(match_complete(&t, b, &start), MATCH_DUPLICATE);
    match_free(&t);
}

static void test_oldest_and_dropped(void **state)
{
    (void)state;
    match_table t;
    uint64_t ids[3], start;
    assert_int_equal(match_init(&t, 0, 1, 3, 0), AP_OK);
    assert_true(match_acquire(&t, 300, &ids[0]) >= 0);
    assert_true(match_acquire(&t, 100, &ids[1]) >= 0);
    assert_true(match_acquire(&t, 200, &ids[2]) >= 0);
    assert_int_equal(match_oldest(&t, &start), AP_OK);
    assert_int_equal(start, 100);
    /* the oldest is answered; the next oldest is reported */
    assert_int_equal(match_complete(&t, ids[1], &start), MATCH_OK);
    assert_int_equal(match_oldest(&t, &start), AP_OK);
    assert_int_equal(start, 200);
    match_free(&t);
}

static uint64_t failed[16];
static int nfailed;

static void record_failed(void *ctx, uint64_t start)
{
    (void)ctx;
    failed[nfailed++] = start;
}

static void test_fail_all(void **state)
{
    (void)state;
    match_table t;
    uint64_t ids[4], start;
    assert_int_equal(match_init(&t, 0, 1, 4, 0), AP_OK);
    for (int i = 0; i < 4; i++)
        assert_true(match_acquire(&t, 10 * (uint64_t)(i + 1), &ids[i]) >= 0);
    assert_int_equal(match_complete(&t, ids[2], &start), MATCH_OK);
    nfailed = 0;
    assert_int_equal(match_fail_all(&t, record_failed, NULL), 3);
    assert_int_equal(nfailed, 3);
    uint64_t sum = failed[0] + failed[1] + failed[2];
    assert_int_equal(sum, 10 + 20 + 40);
    assert_int_equal(t.in_use, 0);
    assert_int_equal(t.nfree, 4);
    /* failed ids count as answered: a late answer is a duplicate */
    assert_int_equal(match_complete(&t, ids[0], &start), MATCH_DUPLICATE);
    /* all slots usable again */
    for (int i = 0; i < 4; i++)
        assert_true(match_acquire(&t, 1, &ids[i]) >= 0);
    match_free(&t);
}

static void test_ordered(void **state)
{
    (void)state;
    match_table t;
    uint64_t ids[3], start;
    assert_int_equal(match_init(&t, 0, 1, 3, 1), AP_OK);
    assert_int_equal(match_complete_head(&t, &start), AP_ERR);
    for (int i = 0; i < 3; i++)
        assert_true(match_acquire(&t, 100 + (uint64_t)i, &ids[i]) >= 0);
    /* ring order is issue order */
    for (uint32_t i = 0; i < 3; i++)
        assert_int_equal(match_id_of(&t, match_ring_at(&t, i)), ids[i]);
    assert_int_equal(match_complete_head(&t, &start), AP_OK);
    assert_int_equal(start, 100);
    /* out-of-order completion by id is refused in ordered mode */
    assert_int_equal(match_complete(&t, ids[2], &start), MATCH_UNKNOWN);
    assert_int_equal(match_complete(&t, ids[1], &start), MATCH_OK);
    assert_int_equal(start, 101);
    /* wrap the ring */
    uint64_t more[2];
    assert_true(match_acquire(&t, 103, &more[0]) >= 0);
    assert_true(match_acquire(&t, 104, &more[1]) >= 0);
    assert_int_equal(match_acquire(&t, 105, &more[1]), -1);
    assert_int_equal(match_oldest(&t, &start), AP_OK);
    assert_int_equal(start, 102);
    nfailed = 0;
    assert_int_equal(match_fail_all(&t, record_failed, NULL), 3);
    assert_int_equal(failed[0], 102);
    assert_int_equal(failed[1], 103);
    assert_int_equal(failed[2], 104);
    match_free(&t);
}

/* A stream's chunks keep the request in flight and are counted in it. */
static void test_chunks(void **state)
{
    (void)state;
    match_table t;
    uint64_t a, b, start, before;
    assert_int_equal(match_init(&t, 0, 1, 2, 0), AP_OK);
    assert_true(match_acquire(&t, 100, &a) >= 0);
    assert_true(match_acquire(&t, 200, &b) >= 0);
    assert_int_equal(match_chunk(&t, b, &start, &before), MATCH_OK);
    assert_int_equal(start, 200);
    assert_int_equal(before, 0);
    assert_int_equal(match_chunk(&t, a, &start, &before), MATCH_OK);
    assert_int_equal(before, 0);
    assert_int_equal(match_chunk(&t, b, &start, &before), MATCH_OK);
    assert_int_equal(before, 1);
    assert_int_equal(t.in_use, 2);
    assert_int_equal(match_chunk(&t, 12345, &start, &before), MATCH_UNKNOWN);
    assert_int_equal(match_complete(&t, b, &start), MATCH_OK);
    /* a chunk after the final answer */
    assert_int_equal(match_chunk(&t, b, &start, &before), MATCH_DUPLICATE);
    /* the slot's next request starts counting afresh */
    uint64_t c;
    assert_true(match_acquire(&t, 300, &c) >= 0);
    assert_true(c != b);
    assert_int_equal(match_chunk(&t, c, &start, &before), MATCH_OK);
    assert_int_equal(start, 300);
    assert_int_equal(before, 0);
    match_free(&t);
}

/* ---- the NDJSON response scanner ------------------------------------ */

static resp_kind scan(const char *s, resp_line *r)
{
    return resp_scan(s, strlen(s), r);
}

static void test_resp_fast_path(void **state)
{
    (void)state;
    resp_line r;
    assert_int_equal(scan("{\"id\":42,\"ok\":true,\"result\":{\"p\":\"x\"}}", &r), RESP_OK);
    assert_int_equal(r.id_kind, RESP_ID_INT);
    assert_int_equal(r.id, 42);
    assert_int_equal(scan("{\"id\":18446744073709551615,\"ok\":true,\"result\":null}\r", &r), RESP_OK);
    assert_int_equal(r.id, UINT64_MAX);
    assert_int_equal(scan("{\"id\":7,\"ok\":false,\"error\":{\"code\":\"agent_error\",\"message\":\"boom\"}}", &r),
                     RESP_ERROR);
    assert_int_equal(r.id, 7);
    assert_int_equal(r.code_len, 11);
    assert_memory_equal(r.code, "agent_error", 11);
}

static void test_resp_other_layouts(void **state)
{
    (void)state;
    resp_line r;
    assert_int_equal(scan("  { \"id\" : 9 , \"ok\" : true }  ", &r), RESP_OK);
    assert_int_equal(r.id, 9);
    assert_int_equal(scan("{\"ok\":false,\"error\":{\"message\":\"m\",\"code\" : \"queue_full\"},\"id\":3}", &r),
                     RESP_ERROR);
    assert_int_equal(r.id_kind, RESP_ID_INT);
    assert_int_equal(r.id, 3);
    assert_int_equal(r.code_len, 10);
    assert_memory_equal(r.code, "queue_full", 10);
    /* an error without a code */
    assert_int_equal(scan("{\"id\":1,\"ok\":false,\"error\":\"x\"}", &r), RESP_ERROR);
    assert_int_equal(r.code_len, 0);
}

static void test_resp_stream_lines(void **state)
{
    (void)state;
    resp_line r;
    /* agentpoold's layouts */
    assert_int_equal(scan("{\"id\":5,\"chunk\":{\"ok\":true,\"seq\":9},\"seq\":3}", &r), RESP_CHUNK);
    assert_int_equal(r.id, 5);
    assert_true(r.has_seq);
    assert_int_equal(r.seq, 3);
    assert_int_equal(scan("{\"id\":5,\"chunk\":\"a\",\"seq\":18446744073709551615}", &r), RESP_CHUNK);
    assert_int_equal(r.seq, UINT64_MAX);
    assert_int_equal(scan("{\"id\":6,\"heartbeat\":true}", &r), RESP_HEARTBEAT);
    assert_int_equal(r.id, 6);
    /* what follows the id decides, before any "ok" further on */
    assert_int_equal(scan("{\"id\":5,\"chunk\":1,\"ok\":false}", &r), RESP_CHUNK);
    assert_false(r.has_seq);
    /* other layouts: by members, "ok" first */
    assert_int_equal(scan(" { \"seq\" : 2 , \"chunk\" : [1] , \"id\" : 8 } ", &r), RESP_CHUNK);
    assert_int_equal(r.id, 8);
    assert_true(r.has_seq);
    assert_int_equal(r.seq, 2);
    assert_int_equal(scan("{\"heartbeat\":true,\"id\":8}", &r), RESP_HEARTBEAT);
    assert_int_equal(scan("{\"chunk\":2,\"ok\":true,\"id\":8}", &r), RESP_OK);
    assert_int_equal(scan("{\"seq\":1,\"chunk\":2,\"id\":8,\"ok\":false}", &r), RESP_ERROR);
    /* seqs that are not plain digits, or too big, are unknown */
    const char *bad_seq[] = {
        "{\"id\":5,\"chunk\":1,\"seq\":-1}",
        "{\"id\":5,\"chunk\":1,\"seq\":1.0}",
        "{\"id\":5,\"chunk\":1,\"seq\":18446744073709551616}",
        "{\"id\":5,\"chunk\":1,\"seq\":\"1\"}",
        "{\"id\":5,\"chunk\":1}",
    };
    for (size_t i = 0; i < sizeof(bad_seq) / sizeof(bad_seq[0]); i++) {
        assert_int_equal(scan(bad_seq[i], &r), RESP_CHUNK);
        assert_false(r.has_seq);
    }
    /* not stream lines */
    assert_int_equal(scan("{\"id\":6,\"heartbeat\":false}", &r), RESP_MALFORMED);
    assert_int_equal(scan("{\"chunk\":1,\"seq\":0}", &r), RESP_MALFORMED);
    assert_int_equal(scan("{\"id\":6,\"ok\":1,\"chunk\":1}", &r), RESP_MALFORMED);
}

static void test_resp_ids_we_never_send(void **state)
{
    (void)state;
    resp_line r;
    const char *lines[] = {
        "{\"id\":\"abc\",\"ok\":true,\"result\":1}",
        "{\"id\":\"a\\\"b\",\"ok\":true}",
        "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"too_large\"}}",
        "{\"id\":-4,\"ok\":true}",
        "{\"id\":4.5,\"ok\":true}",
        "{\"id\":1e3,\"ok\":true}",
        "{\"id\":18446744073709551616,\"ok\":true}",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        assert_true(scan(lines[i], &r) != RESP_MALFORMED);
        assert_int_equal(r.id_kind, RESP_ID_OTHER);
    }
}

static void test_resp_malformed(void **state)
{
    (void)state;
    resp_line r;
    const char *lines[] = {
        "",
        "   ",
        "this is not json",
        "{\"id\":5,\"ok\":tr",             /* truncated */
        "{\"id\":5,\"ok\":true",           /* no closing brace */
        "{\"id\":5,\"result\":1}",         /* no ok */
        "{\"ok\":true}",                   /* no id */
        "{\"id\":,\"ok\":true}",           /* no id value */
        "{\"id\":\"unterminated}",
        "[1,2,3]",
        "{}",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        assert_int_equal(scan(lines[i], &r), RESP_MALFORMED);
}

/* The scanner's answer drives match_complete(): a line stream with
 * answers out of order, an unknown id, a duplicate and a malformed line
 * is classified exactly. */
static void test_stream_classification(void **state)
{
    (void)state;
    match_table t;
    uint64_t ids[3], start;
    char lines[8][80];
    int n = 0;
    int ok = 0, unknown = 0, dup = 0, malformed = 0;
    assert_int_equal(match_init(&t, 0, 1, 4, 0), AP_OK);
    for (int i = 0; i < 3; i++)
        assert_true(match_acquire(&t, (uint64_t)i, &ids[i]) >= 0);
    snprintf(lines[n++], 80, "{\"id\":%llu,\"ok\":true,\"result\":1}", (unsigned long long)ids[2]);
    snprintf(lines[n++], 80, "{\"id\":%llu,\"ok\":true,\"result\":1}", (unsigned long long)ids[0]);
    snprintf(lines[n++], 80, "{\"id\":999999999,\"ok\":true,\"result\":1}");
    snprintf(lines[n++], 80, "{\"id\":%llu,\"ok\":true,\"result\":1}", (unsigned long long)ids[0]);
    snprintf(lines[n++], 80, "garbage");
    snprintf(lines[n++], 80, "{\"id\":%llu,\"ok\":true,\"result\":1}", (unsigned long long)ids[1]);
    for (int i = 0; i < n; i++) {
        resp_line r;
        if (resp_scan(lines[i], strlen(lines[i]), &r) == RESP_MALFORMED) {
            malformed++;
            continue;
        }
        assert_int_equal(r.id_kind, RESP_ID_INT);
        switch (match_complete(&t, r.id, &start)) {
        case MATCH_OK:
            ok++;
            break;
        case MATCH_UNKNOWN:
            unknown++;
            break;
        case MATCH_DUPLICATE:
            dup++;
            break;
        }
    }
    assert_int_equal(ok, 3);
    assert_int_equal(unknown, 1);
    assert_int_equal(dup, 1);
    assert_int_equal(malformed, 1);
    assert_int_equal(t.in_use, 0);
    match_free(&t);
}

static void test_errtab(void **state)
{
    (void)state;
    errtab t;
    char name[16];
    memset(&t, 0, sizeof(t));
    errtab_add(&t, "agent_error", 11);
    errtab_add(&t, "agent_error_and_more", 11);
    errtab_add(&t, "http_5xx", 8);
    assert_int_equal(errtab_get(&t, "agent_error"), 2);
    assert_int_equal(errtab_get(&t, "http_5xx"), 1);
    assert_int_equal(errtab_get(&t, "nope"), 0);
    for (int i = 0; i < ERRTAB_MAX + 5; i++) {
        snprintf(name, sizeof(name), "code%d", i);
        errtab_add(&t, name, strlen(name));
    }
    assert_int_equal(t.n, ERRTAB_MAX);
    assert_int_equal(t.other, 7);
    /* a known code still finds its row when the table is full */
    errtab_add(&t, "http_5xx", 8);
    assert_int_equal(errtab_get(&t, "http_5xx"), 2);
    /* long codes are truncated, not overflowed */
    char big[200];
    memset(big, 'z', sizeof(big));
    errtab t2;
    memset(&t2, 0, sizeof(t2));
    errtab_add(&t2, big, sizeof(big));
    assert_int_equal(strlen(t2.rows[0].name), ERRTAB_NAME_MAX - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_rejects_bad_arguments),
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_unknown_ids),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_oldest_and_dropped),
        cmocka_unit_test(test_fail_all),
        cmocka_unit_test(test_ordered),
        cmocka_unit_test(test_chunks),
        cmocka_unit_test(test_resp_fast_path),
        cmocka_unit_test(test_resp_other_layouts),
        cmocka_unit_test(test_resp_stream_lines),
        cmocka_unit_test(test_resp_ids_we_never_send),
        cmocka_unit_test(test_resp_malformed),
        cmocka_unit_test(test_stream_classification),
        cmocka_unit_test(test_errtab),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
