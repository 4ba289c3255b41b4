/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_cancel.c - cmocka tests for pool.cancel's decisions
 * (pool/path/cancel.c, #included): how its target id is read from the
 * request's data, and, for a message in each state on each kind of
 * worker, what it reports finding and what it asks of the rest of the
 * master (answer or detach the message, have its worker cancel it, kill
 * the worker), with a fake worker table and the real retry.c
 * (tests/unit/fake_server.h).  The connection is a real client struct
 * whose id map the test fills, as client.c would.
 */
#include "../../pool/path/cancel.c"
#include "fake_server.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

static client conn;

static void setup(int slots, int async)
{
    fake_server_setup(1, slots, 0, 16);
    server.base = event_base_new();
    assert_non_null(server.base);
    fake_workers[0].proc.async = async;
    fake_workers[0].load.ahead = async ? 0 : 8; /* a sync worker may prefetch */
    memset(&conn, 0, sizeof(conn));
    idmap_init(&conn.ids);
    assert_int_equal(retry_start(&fake_pool), AP_OK); /* the pool's deadline list (no timeout) */
}

static void teardown(void)
{
    idmap_free(&conn.ids);
    retry_stop(&fake_pool);
    fake_server_teardown();
    event_base_free(server.base);
    server.base = NULL;
}

/* A message of conn with request id `id` (an integer, as written). */
static msg *conn_msg(int id)
{
    msg *m = fake_msg(id, "t");
    m->client = &conn;
    assert_int_equal(idmap_put(&conn.ids, m->line + m->id_off, m->id_len, m), AP_OK);
    return m;
}

static msg *running(int id)
{
    msg *m = conn_msg(id);
    worker_send(&fake_workers[0], m);
    return m;
}

static cancel_found cancel_id(const char *id)
{
    return cancel_request(&conn, id, strlen(id));
}

/* ---- the target ---------------------------------------------------- */

static void check_target(const char *data, const char *want)
{
    scan_span id;
    assert_int_equal(cancel_target(data, strlen(data), &id), AP_OK);
    assert_int_equal(id.len, strlen(want));
    assert_memory_equal(data + id.off, want, id.len);
}

static void test_target_is_the_id_as_written(void **state)
{
    (void)state;
    check_target("{\"id\":\"a\"}", "\"a\"");
    check_target("{ \"id\" : 7 }", "7");
    check_target("{\"x\":[1,2],\"id\":\"b\\u0062\",\"type\":3}", "\"b\\u0062\"");
    check_target("{\"id\":-12345678901234567890}", "-12345678901234567890");
    check_target("{\"id\":\"a\",\"type\":\"t\"}", "\"a\"");
}

static void test_target_without_a_request_id_is_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {"{}", "[1]", "\"a\"", "7", "{\"id\":null}", "{\"id\":1.5}",
                                      "{\"id\":{\"x\":1}}", "{\"id\":[1]}", "{\"id\":true}", "{\"ids\":1}"};
    scan_span id = {99, 99};
    assert_int_equal(cancel_target("", 0, &id), AP_ERR);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(cancel_target(bad[i], strlen(bad[i]), &id), AP_ERR);
    assert_int_equal(id.off, 99); /* nothing set */
}

/* ---- what each state gets ----------------------------------------- */

static void test_unknown_id_changes_nothing(void **state)
{
    (void)state;
    setup(1, 0);
    msg *m = running(1);
    assert_int_equal(cancel_id("2"), CANCEL_UNKNOWN);
    assert_int_equal(cancel_id("\"1\""), CANCEL_UNKNOWN); /* the string "1" is not the integer 1 */
    assert_int_equal(server.stats.cancels[CANCEL_UNKNOWN], 2);
    assert_int_equal(fake_nanswers(), 0);
    assert_int_equal(fake_calls("worker_cancel") + fake_calls("worker_kill_stuck"), 0);
    assert_true(msg_on_worker(m));
    teardown();
}

static void test_queued_held_and_retry_waiting_are_answered_cancelled(void **state)
{
    (void)state;
    setup(1, 0);
    msg *q = conn_msg(1);
    msg_set_state(&server.msgs, q, MSG_QUEUED);
    assert_int_equal(queue_push(&fake_pool.queue, &q->qlink, 0), AP_OK);
    msg *h = conn_msg(2);
    msg_set_state(&server.msgs, h, MSG_HELD);
    msg *r = conn_msg(3);
    msg_set_state(&server.msgs, r, MSG_RETRY_WAIT);
    link_add_tail(&fake_pool.retrying, &r->qlink);
    assert_int_equal(cancel_id("1"), CANCEL_QUEUED);
    assert_int_equal(cancel_id("2"), CANCEL_QUEUED);
    assert_int_equal(cancel_id("3"), CANCEL_QUEUED);
    assert_int_equal(server.stats.cancels[CANCEL_QUEUED], 3);
    for (int id = 1; id <= 3; id++) {
        const fake_answer *a = fake_answer_for(id);
        assert_non_null(a);
        assert_false(a->detached);
        assert_int_equal(a->code, ERR_CANCELLED);
        assert_string_equal(a->message, "cancelled by pool.cancel before it ran");
    }
    assert_int_equal(fake_pool.queue.depth, 0);
    assert_true(link_empty(&fake_pool.retrying));
    assert_int_equal(fake_calls("worker_cancel") + fake_calls("worker_kill_stuck"), 0);
    teardown();
}

static void test_running_sync_finish_is_detached_and_left_to_run(void **state)
{
    (void)state;
    setup(1, 0);
    msg *m = running(1);
    assert_int_equal(cancel_id("1"), CANCEL_RUNNING);
    const fake_answer *a = fake_answer_for(1);
    assert_true(a->detached);
    assert_int_equal(a->code, ERR_CANCELLED);
    assert_string_equal(a->message, "cancelled by pool.cancel while it ran");
    assert_true(msg_on_worker(m)); /* its slot stays busy */
    assert_int_equal(fake_calls("worker_cancel") + fake_calls("worker_kill_stuck"), 0);
    assert_int_equal(server.stats.cancels[CANCEL_RUNNING], 1);
    teardown();
}

static void test_running_sync_kill_replaces_the_worker(void **state)
{
    (void)state;
    setup(1, 0);
    fake_cfg.cancel_sync = CANCEL_SYNC_KILL;
    running(1);
    assert_int_equal(cancel_id("1"), CANCEL_RUNNING);
    assert_true(fake_answer_for(1)->detached);
    assert_int_equal(fake_calls("worker_kill_stuck"), 1);
    assert_string_equal(fake_call_nth("worker_kill_stuck", 0)->text,
                        "message 1 (type t) was cancelled by its client (cancelSync kill)");
    teardown();
}

static void test_prefetched_counts_as_queued_and_is_skipped(void **state)
{
    (void)state;
    for (int kill = 0; kill < 2; kill++) {
        setup(1, 0);
        fake_cfg.cancel_sync = kill ? CANCEL_SYNC_KILL : CANCEL_SYNC_FINISH;
        running(1);
        msg *behind = running(2);
        assert_int_equal(cancel_id("2"), CANCEL_QUEUED);
        assert_true(fake_answer_for(2)->detached);
        assert_string_equal(fake_answer_for(2)->message, "cancelled by pool.cancel before it ran");
        assert_int_equal(fake_calls("worker_cancel"), 1);
        assert_int_equal(fake_call_nth("worker_cancel", 0)->msg_id, behind->id);
        assert_int_equal(fake_calls("worker_kill_stuck"), 0);
        teardown();
    }
}

static void test_running_async_task_is_cancelled(void **state)
{
    (void)state;
    setup(4, 1);
    running(1);
    running(2);
    assert_int_equal(cancel_id("2"), CANCEL_RUNNING);
    assert_int_equal(fake_calls("worker_cancel"), 1);
    assert_int_equal(fake_calls("worker_kill_stuck"), 0);
    teardown();
}

static void test_agent_metrics_of_one_worker_is_only_answered(void **state)
{
    (void)state;
    setup(1, 0);
    fake_cfg.cancel_sync = CANCEL_SYNC_KILL;
    msg *m = conn_msg(1);
    m->control = 1;
    worker_send(&fake_workers[0], m);
    assert_int_equal(cancel_id("1"), CANCEL_RUNNING);
    assert_true(fake_answer_for(1)->detached);
    assert_int_equal(fake_calls("worker_cancel") + fake_calls("worker_kill_stuck"), 0);
    teardown();
}

static void test_found_names(void **state)
{
    (void)state;
    assert_string_equal(cancel_found_name(CANCEL_QUEUED), "queued");
    assert_string_equal(cancel_found_name(CANCEL_RUNNING), "running");
    assert_string_equal(cancel_found_name(CANCEL_UNKNOWN), "unknown");
    assert_string_equal(cancel_found_name(CANCEL_FOUND_COUNT), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_target_is_the_id_as_written),
        cmocka_unit_test(test_target_without_a_request_id_is_refused),
        cmocka_unit_test(test_unknown_id_changes_nothing),
        cmocka_unit_test(test_queued_held_and_retry_waiting_are_answered_cancelled),
        cmocka_unit_test(test_running_sync_finish_is_detached_and_left_to_run),
        cmocka_unit_test(test_running_sync_kill_replaces_the_worker),
        cmocka_unit_test(test_prefetched_counts_as_queued_and_is_skipped),
        cmocka_unit_test(test_running_async_task_is_cancelled),
        cmocka_unit_test(test_agent_metrics_of_one_worker_is_only_answered),
        cmocka_unit_test(test_found_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
