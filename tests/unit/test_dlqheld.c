/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_dlqheld.c - cmocka tests for dead letters held in memory
 * (pool/ops/dlqheld.c) over the real dead-letter file (pool/ops/dlq.c, with
 * DLQ_TEST_HOOKS to make a write fail).  Built with AP_ALLOC_TEST, so a
 * held record that is not freed fails the test.
 *
 * Checked: a kept record is a deep copy (the caller's strings may go);
 * flush writes held records in order and stops at the first write that
 * fails, keeping it and the rest; the record and byte bounds drop and
 * count; free at the end releases what is still held.  Records belong to
 * an owner (a pool): flush, count and free of one owner leave another's
 * records alone and in order.
 */
#include "dlqheld.h"
#include "ap_common.h"
#include "ap_log.h"
#include "ap_safefile.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256], path[320];
/* Two owners, as two pools would be. */
static const char owner_a = 'a', owner_b = 'b';
#define A ((const void *)&owner_a)
#define B ((const void *)&owner_b)

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/aptest-dlqheld-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/dlq.jsonl", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char p[400];
    snprintf(p, sizeof(p), "%s.1", path);
    unlink(p);
    unlink(path);
    rmdir(dir);
    return 0;
}

static dlq_entry entry(const char *id, char *buf, size_t cap)
{
    dlq_entry e = {0};
    snprintf(buf, cap, "\"%s\"", id);
    e.id = buf;
    e.id_len = strlen(buf);
    e.type = "t";
    e.type_len = 1;
    e.attempts = 1;
    return e;
}

static int ids_cb(void *arg, uint64_t dlq_id, const char *line, size_t len)
{
    (void)dlq_id;
    char *out = arg;
    /* Listed lines are not NUL-terminated: search a copy made by length. */
    char copy[512];
    assert_true(len < sizeof(copy));
    memcpy(copy, line, len);
    copy[len] = '\0';
    const char *p = strstr(copy, "\"id\":\"");
    assert_non_null(p);
    p += 6;
    const char *q = strchr(p, '"');
    assert_non_null(q);
    strncat(out, p, (size_t)(q - p));
    strcat(out, ",");
    return 0;
}

static void test_held_in_order_and_written_in_order(void **state)
{
    (void)state;
    char err[512], buf[32];
    dlq_failure f = {"worker-0", 42, "exited with status 3", 0};
    for (int i = 0; i < 3; i++) {
        char id[8];
        snprintf(id, sizeof(id), "h%d", i);
        dlq_entry e = entry(id, buf, sizeof(buf));
        e.failures = &f;
        e.nfailures = 1;
        assert_int_equal(dlqheld_keep(A, &e), AP_OK);
        memset(buf, 'x', sizeof(buf) - 1); /* the copy must not see this */
    }
    assert_int_equal(dlqheld_count(A), 3);
    assert_int_equal(dlqheld_flush(A, NULL, err, sizeof(err)), 0);
    dlq *d = dlq_open(path, 1 << 20, AP_SAFEFILE_NOBODY_ELSE, (gid_t)-1, err, sizeof(err));
    assert_non_null(d);
    /* The first write fails: nothing written, all three still held. */
    dlq_test_write_errno = ENOSPC;
    dlq_test_write_short = 0;
    assert_int_equal(dlqheld_flush(A, d, err, sizeof(err)), 0);
    assert_int_equal(dlqheld_count(A), 3);
    assert_int_equal(dlqheld_flush(A, d, err, sizeof(err)), 3);
    assert_int_equal(dlqheld_count(A), 0);
    char ids[64] = "";
    assert_int_equal(dlq_list(d, 0, 0, ids_cb, ids, err, sizeof(err)), AP_OK);
    assert_string_equal(ids, "h0,h1,h2,");
    dlq_close(d);
    dlqheld_free(A, "test");
}

static void test_bounds_drop_and_count(void **state)
{
    (void)state;
    char buf[32];
    dlq_entry e = entry("b", buf, sizeof(buf));
    for (int i = 0; i < DLQHELD_MAX_RECORDS; i++)
        assert_int_equal(dlqheld_keep(i % 2 ? A : B, &e), AP_OK);
    /* The bounds hold for every owner together. */
    assert_int_equal(dlqheld_keep(A, &e), AP_ERR);
    assert_int_equal(dlqheld_keep(B, &e), AP_ERR);
    assert_int_equal(dlqheld_count(NULL), DLQHELD_MAX_RECORDS);
    uint64_t dropped = dlqheld_dropped();
    assert_int_equal(dropped, 2);
    dlqheld_free(A, "test"); /* logs that they are lost, frees A's */
    dlqheld_free(B, "test");
    assert_int_equal(dlqheld_count(NULL), 0);
    /* The byte bound: one record too large for it is dropped at once. */
    size_t big = DLQHELD_MAX_BYTES + 1;
    char *data = malloc(big);
    assert_non_null(data);
    memset(data, '1', big);
    e.data = data;
    e.data_len = big;
    assert_int_equal(dlqheld_keep(A, &e), AP_ERR);
    /* Counted since start: freeing records does not reset it. */
    assert_int_equal(dlqheld_dropped(), dropped + 1);
    free(data);
    dlqheld_free(A, "test");
}

static void keep_as(const void *owner, const char *id)
{
    char buf[32];
    dlq_entry e = entry(id, buf, sizeof(buf));
    assert_int_equal(dlqheld_keep(owner, &e), AP_OK);
}

static void assert_file_holds(dlq *d, const char *want)
{
    char err[512], ids[128] = "";
    assert_int_equal(dlq_list(d, 0, 0, ids_cb, ids, err, sizeof(err)), AP_OK);
    assert_string_equal(ids, want);
}

static void test_owners_are_flushed_counted_and_freed_apart(void **state)
{
    (void)state;
    char err[512], path_b[400];
    /* Interleaved as two pools' failures come: a0 b0 a1 b1 a2. */
    keep_as(A, "a0");
    keep_as(B, "b0");
    keep_as(A, "a1");
    keep_as(B, "b1");
    keep_as(A, "a2");
    assert_int_equal(dlqheld_count(NULL), 5);
    assert_int_equal(dlqheld_count(A), 3);
    assert_int_equal(dlqheld_count(B), 2);

    /* A's file takes A's records only, in order; B's stay. */
    dlq *da = dlq_open(path, 1 << 20, AP_SAFEFILE_NOBODY_ELSE, (gid_t)-1, err, sizeof(err));
    assert_non_null(da);
    assert_int_equal(dlqheld_flush(A, da, err, sizeof(err)), 3);
    assert_file_holds(da, "a0,a1,a2,");
    assert_int_equal(dlqheld_count(A), 0);
    assert_int_equal(dlqheld_count(B), 2);
    assert_int_equal(dlqheld_count(NULL), 2);
    /* Nothing of A's left: a second flush writes nothing. */
    assert_int_equal(dlqheld_flush(A, da, err, sizeof(err)), 0);
    dlq_close(da);

    /* a2 was the last record: what is kept after it still comes after
     * B's older ones. */
    keep_as(B, "b2");
    keep_as(A, "a3");
    keep_as(A, "a4");
    /* A failed write of A's stops A's flush at a3 and leaves B's alone. */
    unlink(path);
    da = dlq_open(path, 1 << 20, AP_SAFEFILE_NOBODY_ELSE, (gid_t)-1, err, sizeof(err));
    assert_non_null(da);
    dlq_test_write_errno = ENOSPC;
    dlq_test_write_short = 0;
    assert_int_equal(dlqheld_flush(A, da, err, sizeof(err)), 0);
    assert_int_equal(dlqheld_count(A), 2);
    assert_int_equal(dlqheld_count(B), 3);
    dlq_close(da);

    snprintf(path_b, sizeof(path_b), "%s/dlq-b.jsonl", dir);
    dlq *db = dlq_open(path_b, 1 << 20, AP_SAFEFILE_NOBODY_ELSE, (gid_t)-1, err, sizeof(err));
    assert_non_null(db);
    assert_int_equal(dlqheld_flush(B, db, err, sizeof(err)), 3);
    assert_file_holds(db, "b0,b1,b2,");
    assert_int_equal(dlqheld_count(B), 0);
    assert_int_equal(dlqheld_count(A), 2);
    dlq_close(db);
    unlink(path_b);

    /* free(owner) drops that owner's records only. */
    keep_as(B, "b3");
    dlqheld_free(B, "test");
    assert_int_equal(dlqheld_count(B), 0);
    assert_int_equal(dlqheld_count(A), 2);
    dlqheld_free(A, "test");
    assert_int_equal(dlqheld_count(NULL), 0);
}

int main(void)
{
    ap_log_init("test", AP_LOG_CRIT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_held_in_order_and_written_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounds_drop_and_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owners_are_flushed_counted_and_freed_apart, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
