/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_keys.c - cmocka tests for the API keys file parser
 * (pool/ops/keyfile.c) and the per-minute token bucket
 * (pool/ops/tbucket.c), with cmocka's allocator so a leaked pools list
 * fails.
 *
 * Parser: every member's rule and its refusal text, comments and blank
 * lines, and keyfile_load on real files (line numbers, duplicates, a
 * file readable by others).  Bucket: exact refill in integer units,
 * take/ready/charge, debt paid back by the refill, a rate change keeping
 * the level, no limit, and no overflow after a long idle time or a huge
 * charge.  Time is made up.
 */
#include "keyfile.h"
#include "tbucket.h"
#include "ap_common.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HASH_A "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b" /* sha256("secret") */
#define HASH_B "00b80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"

static keyfile_line parse(const char *line, keyfile_entry *e, char *err)
{
    return keyfile_parse_line(line, strlen(line), e, err);
}

static void expect_bad(const char *line, const char *why)
{
    keyfile_entry e;
    char err[KEYFILE_ERR_MAX] = "";
    assert_int_equal(parse(line, &e, err), KEYFILE_LINE_BAD);
    if (strstr(err, why) == NULL)
        fail_msg("line %s: error \"%s\" lacks \"%s\"", line, err, why);
    assert_null(e.pools);
}

static void test_a_full_line(void **state)
{
    (void)state;
    keyfile_entry e;
    char err[KEYFILE_ERR_MAX];
    assert_int_equal(parse("{\"id\": \"tenant-a.1_x\", \"sha256\": \"" HASH_A "\", \"pools\": [\"writer\", \"r\"], "
                           "\"maxInFlight\": 8, \"ratePerMinute\": 600, \"tokensPerMinute\": 200000}",
                           &e, err),
                     KEYFILE_LINE_KEY);
    assert_string_equal(e.id, "tenant-a.1_x");
    assert_int_equal(e.sha256[0], 0x2b);
    assert_int_equal(e.sha256[31], 0x5b);
    assert_int_equal(e.all_pools, 0);
    assert_int_equal(e.npools, 2);
    assert_string_equal(e.pools[0], "writer");
    assert_string_equal(e.pools[1], "r");
    assert_int_equal(e.max_inflight, 8);
    assert_int_equal(e.rate_per_minute, 600);
    assert_int_equal(e.tokens_per_minute, 200000);
    keyfile_entry_free(&e);

    /* every pool, no limits, upper-case hex */
    char upper[65];
    for (int i = 0; i < 64; i++)
        upper[i] = (char)(HASH_A[i] >= 'a' ? HASH_A[i] - 32 : HASH_A[i]);
    upper[64] = '\0';
    char line[256];
    snprintf(line, sizeof(line), "  {\"pools\": \"*\", \"sha256\": \"%s\", \"id\": \"k\"}\r", upper);
    assert_int_equal(parse(line, &e, err), KEYFILE_LINE_KEY);
    assert_int_equal(e.all_pools, 1);
    assert_int_equal(e.npools, 0);
    assert_int_equal(e.sha256[0], 0x2b);
    assert_int_equal(e.max_inflight + e.rate_per_minute + e.tokens_per_minute, 0);
    keyfile_entry_free(&e);
}

static void test_skipped_lines(void **state)
{
    (void)state;
    keyfile_entry e;
    char err[KEYFILE_ERR_MAX];
    assert_int_equal(parse("", &e, err), KEYFILE_LINE_SKIP);
    assert_int_equal(parse(" \t\r", &e, err), KEYFILE_LINE_SKIP);
    assert_int_equal(parse("# {\"id\": 1}", &e, err), KEYFILE_LINE_SKIP);
    assert_int_equal(parse("   # indented comment", &e, err), KEYFILE_LINE_SKIP);
}

#define WITH(members) "{\"id\": \"k\", \"sha256\": \"" HASH_A "\", \"pools\": \"*\"" members "}"

static void test_refusals(void **state)
{
    (void)state;
    expect_bad("{", "not JSON");
    expect_bad("[1]", "not a JSON object");
    expect_bad("{\"sha256\": \"" HASH_A "\", \"pools\": \"*\"}", "id is missing");
    expect_bad("{\"id\": \"k\", \"pools\": \"*\"}", "sha256 is missing");
    expect_bad("{\"id\": \"k\", \"sha256\": \"" HASH_A "\"}", "pools is missing");
    expect_bad(WITH(", \"maxInflight\": 3"), "unknown member \"maxInflight\"");
    expect_bad(WITH(", \"na\\nme\": 3"), "unknown member \"na?me\"");
    expect_bad(WITH(", \"id\": \"j\""), "id given twice");
    expect_bad("{\"id\": \"k\", \"sha256\": \"abc\", \"pools\": \"*\"}", "sha256 must be the secret's SHA-256");
    expect_bad("{\"id\": \"k\", \"sha256\": \"" "zz" HASH_A "\", \"pools\": \"*\"}", "64 hex digits");
    expect_bad("{\"id\": \"k\", \"sha256\": \"2bx80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b\", "
               "\"pools\": \"*\"}", "64 hex digits");
    expect_bad("{\"id\": 7, \"sha256\": \"" HASH_A "\", \"pools\": \"*\"}", "id must be a string");
    expect_bad("{\"id\": \"\", \"sha256\": \"" HASH_A "\", \"pools\": \"*\"}", "id must be 1 to 64 bytes");
    expect_bad("{\"id\": \"a b\", \"sha256\": \"" HASH_A "\", \"pools\": \"*\"}", "id may hold only");
    expect_bad("{\"id\": \"none\", \"sha256\": \"" HASH_A "\", \"pools\": \"*\"}", "is reserved");
    expect_bad("{\"id\": \"other\", \"sha256\": \"" HASH_A "\", \"pools\": \"*\"}", "is reserved");
    expect_bad("{\"id\": \"k\", \"sha256\": \"" HASH_A "\", \"pools\": \"all\"}", "pools must be a list");
    expect_bad("{\"id\": \"k\", \"sha256\": \"" HASH_A "\", \"pools\": [\"a\", 3]}", "pools must hold pool names");
    expect_bad("{\"id\": \"k\", \"sha256\": \"" HASH_A "\", \"pools\": [\"\"]}", "pools must hold pool names");
    expect_bad(WITH(", \"maxInFlight\": -1"), "maxInFlight must be an integer from 0");
    expect_bad(WITH(", \"ratePerMinute\": 1.5"), "ratePerMinute must be an integer");
    expect_bad(WITH(", \"tokensPerMinute\": \"5\""), "tokensPerMinute must be an integer");
    expect_bad(WITH(", \"tokensPerMinute\": 1e10"), "to 1000000000");
    expect_bad(WITH(", \"maxInFlight\": 1000001"), "to 1000000");
    char nul[] = WITH("");
    nul[3] = '\0';
    keyfile_entry e;
    char err[KEYFILE_ERR_MAX];
    assert_int_equal(keyfile_parse_line(nul, sizeof(nul) - 1, &e, err), KEYFILE_LINE_BAD);
    assert_string_equal(err, "a NUL byte in the line");
    char *longline = malloc(KEYFILE_LINE_MAX + 2);
    memset(longline, ' ', KEYFILE_LINE_MAX + 1);
    longline[0] = '{';
    longline[KEYFILE_LINE_MAX + 1] = '\0';
    assert_int_equal(parse(longline, &e, err), KEYFILE_LINE_BAD);
    assert_string_equal(err, "line longer than 8192 bytes");
    free(longline);
    /* too many pools */
    char many[4096];
    size_t n = (size_t)snprintf(many, sizeof(many), "{\"id\": \"k\", \"sha256\": \"" HASH_A "\", \"pools\": [");
    for (int i = 0; i <= KEYFILE_POOLS_MAX; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "%s\"p%d\"", i ? "," : "", i);
    snprintf(many + n, sizeof(many) - n, "]}");
    expect_bad(many, "more than 64 pools");
}

/* Writes text to a new file in dir with mode; returns its path (static). */
static const char *write_file(const char *text, mode_t mode)
{
    static char path[256];
    snprintf(path, sizeof(path), "/tmp/test_keys.%d.jsonl", (int)getpid());
    unlink(path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
    return path;
}

static void test_load(void **state)
{
    (void)state;
    keyfile_set s;
    char err[KEYFILE_ERR_MAX];
    const char *p = write_file("# keys\n\n" WITH("") "\n{\"id\": \"j\", \"sha256\": \"" HASH_B "\", "
                               "\"pools\": [\"w\"]}", 0600);
    assert_int_equal(keyfile_load(p, &s, err), AP_OK);
    assert_int_equal(s.n, 2);
    keyfile_set_free(&s);

    p = write_file(WITH("") "\n\n" WITH(", \"ratePerMinute\": -2") "\n", 0600);
    assert_int_equal(keyfile_load(p, &s, err), AP_ERR);
    assert_non_null(strstr(err, ".jsonl:3: ratePerMinute must be an integer"));
    assert_int_equal(s.n, 0);
    assert_null(s.keys);

    p = write_file(WITH("") "\n{\"id\": \"k\", \"sha256\": \"" HASH_B "\", \"pools\": \"*\"}\n", 0600);
    assert_int_equal(keyfile_load(p, &s, err), AP_ERR);
    assert_non_null(strstr(err, ": key id k is given twice"));

    p = write_file(WITH("") "\n{\"id\": \"j\", \"sha256\": \"" HASH_A "\", \"pools\": \"*\"}\n", 0600);
    assert_int_equal(keyfile_load(p, &s, err), AP_ERR);
    assert_non_null(strstr(err, " have the same secret hash"));

    p = write_file(WITH("") "\n", 0644);
    assert_int_equal(keyfile_load(p, &s, err), AP_ERR);
    assert_non_null(strstr(err, ": readable by others (mode 644): refused"));

    p = write_file("", 0640);
    assert_int_equal(keyfile_load(p, &s, err), AP_OK); /* an empty file: no keys */
    assert_int_equal(s.n, 0);
    unlink(p);
    assert_int_equal(keyfile_load(p, &s, err), AP_ERR);
    assert_non_null(strstr(err, "No such file"));
}

/* ---- tbucket ------------------------------------------------------------- */

static void test_bucket_take_and_refill(void **state)
{
    (void)state;
    tbucket b;
    uint64_t retry = 0;
    tbucket_init(&b, 60, 1000); /* one token a second, 60 at most */
    assert_int_equal(tbucket_tokens(&b, 1000), 60);
    for (int i = 0; i < 60; i++)
        assert_int_equal(tbucket_take(&b, 1000, &retry), 0);
    assert_int_equal(tbucket_take(&b, 1000, &retry), 1);
    assert_int_equal(retry, 1000);
    assert_int_equal(tbucket_take(&b, 1999, &retry), 1);
    assert_int_equal(retry, 1);
    assert_int_equal(tbucket_take(&b, 2000, &retry), 0);
    /* a long idle time fills it, never past its capacity */
    assert_int_equal(tbucket_tokens(&b, 10000000000ull), 60);
}

static void test_bucket_charge_and_debt(void **state)
{
    (void)state;
    tbucket b;
    uint64_t retry = 0;
    tbucket_init(&b, 100, 0);
    assert_int_equal(tbucket_ready(&b, 0, &retry), 1);
    tbucket_charge(&b, 250, 0); /* 150 tokens of debt: 90 s to pay back */
    assert_int_equal(tbucket_ready(&b, 0, &retry), 0);
    assert_int_equal(retry, 90001);
    assert_int_equal(tbucket_tokens(&b, 0), 0);
    assert_int_equal(tbucket_ready(&b, 90000, &retry), 0);
    assert_int_equal(retry, 1);
    assert_int_equal(tbucket_ready(&b, 90001, &retry), 1);
    /* a huge charge is cut, and the debt stays inside int64 */
    tbucket_charge(&b, UINT64_MAX, 90001);
    tbucket_charge(&b, UINT64_MAX, 90001);
    assert_int_equal(tbucket_ready(&b, 90001, &retry), 0);
    assert_true(retry > 0);
}

static void test_bucket_rate_change_and_no_limit(void **state)
{
    (void)state;
    tbucket b;
    uint64_t retry = 0;
    tbucket_init(&b, 0, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(tbucket_take(&b, 0, &retry), 0);
    tbucket_charge(&b, 1000000, 0);
    assert_int_equal(tbucket_ready(&b, 0, &retry), 1);
    tbucket_set_rate(&b, 10, 0); /* was unlimited: starts full */
    assert_int_equal(tbucket_tokens(&b, 0), 10);
    for (int i = 0; i < 5; i++)
        assert_int_equal(tbucket_take(&b, 0, &retry), 0);
    tbucket_set_rate(&b, 2, 0); /* the level is cut to the new capacity */
    assert_int_equal(tbucket_tokens(&b, 0), 2);
    tbucket_set_rate(&b, 1000, 0); /* and kept when it grows */
    assert_int_equal(tbucket_tokens(&b, 0), 2);
    tbucket_init(&b, 5000000000ull, 0); /* capped */
    assert_int_equal(b.per_minute, TBUCKET_MAX_PER_MINUTE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_full_line),
        cmocka_unit_test(test_skipped_lines),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_bucket_take_and_refill),
        cmocka_unit_test(test_bucket_charge_and_debt),
        cmocka_unit_test(test_bucket_rate_change_and_no_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
