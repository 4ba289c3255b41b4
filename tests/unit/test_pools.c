/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_pools.c - cmocka tests for the table of pools (pool/core/pools.c):
 * pools_find finds only pools that take requests (STARTING, RUNNING),
 * by the whole name; pools_total adds every pool's counters to the
 * server's own, field by field; pools_names, pools_default,
 * pools_use_config and pools_live_workers read the table.  Three pools
 * of the fake world (tests/unit/fake_server.h); nothing is forked.
 */
#include "fake_server.h"
#include "pools.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

static config cfg_b, cfg_c;
static worker workers_b[4], workers_c[4];
static pool_t pool_b, pool_c;

/* "default" (2 workers, 1 spare), "gpu" (3 workers), "gpu2" (1 worker, 2 spare). */
static void setup(void)
{
    fake_server_setup(2, 1, 1, 16);
    fake_config_baseline(&cfg_b, 16);
    fake_config_baseline(&cfg_c, 16);
    fake_pool_add(&pool_b, "gpu", &cfg_b, workers_b, 3, 1, 0, 16);
    fake_pool_add(&pool_c, "gpu2", &cfg_c, workers_c, 1, 1, 2, 16);
}

static pool_t *find(const char *name)
{
    return pools_find(name, strlen(name));
}

static void test_find_by_whole_name(void **state)
{
    (void)state;
    setup();
    assert_ptr_equal(find("default"), &fake_pool);
    assert_ptr_equal(find("gpu"), &pool_b);
    assert_ptr_equal(find("gpu2"), &pool_c);
    assert_null(find("gp"));
    assert_null(find("gpu23"));
    assert_null(find("GPU"));
    assert_null(find(""));
    assert_ptr_equal(pools_find("gpu2xyz", 4), &pool_c); /* the name is name[0..len) */
    assert_ptr_equal(pools_find("gpu2xyz", 3), &pool_b);
    fake_server_teardown();
}

static void test_find_skips_pools_that_take_no_requests(void **state)
{
    (void)state;
    setup();
    pool_b.state = POOL_STARTING;
    assert_ptr_equal(find("gpu"), &pool_b);
    pool_b.state = POOL_RETIRING;
    assert_null(find("gpu"));
    pool_b.state = POOL_STOPPING;
    assert_null(find("gpu"));
    assert_ptr_equal(find("gpu2"), &pool_c); /* the others are still found */
    assert_ptr_equal(find("default"), &fake_pool);
    fake_server_teardown();
}

static void test_total_adds_every_pools_counters_to_the_servers(void **state)
{
    (void)state;
    setup();
    /* Every field: the server's, and each pool's, distinct. */
    size_t nf = sizeof(server_stats) / sizeof(uint64_t);
    uint64_t *s = (uint64_t *)&server.stats, *a = (uint64_t *)&fake_pool.stats, *b = (uint64_t *)&pool_b.stats,
             *c = (uint64_t *)&pool_c.stats;
    for (size_t k = 0; k < nf; k++) {
        s[k] = 1000000 * (k + 1);
        a[k] = 1000 * (k + 1);
        b[k] = k + 1;
        c[k] = 3 * k;
    }
    server_stats t;
    memset(&t, 0xA5, sizeof(t));
    pools_total(&t);
    const uint64_t *tt = (const uint64_t *)&t;
    for (size_t k = 0; k < nf; k++)
        assert_int_equal(tt[k], 1000000 * (k + 1) + 1000 * (k + 1) + (k + 1) + 3 * k);
    /* named fields, as pool.stats reads them */
    assert_int_equal(t.accepted, server.stats.accepted + fake_pool.stats.accepted + pool_b.stats.accepted +
                                     pool_c.stats.accepted);
    assert_int_equal(t.errors[ERR_COUNT - 1], server.stats.errors[ERR_COUNT - 1] + fake_pool.stats.errors[ERR_COUNT - 1] +
                                                  pool_b.stats.errors[ERR_COUNT - 1] +
                                                  pool_c.stats.errors[ERR_COUNT - 1]);
    assert_int_equal(t.streams_ended[ERR_COUNT], server.stats.streams_ended[ERR_COUNT] +
                                                     fake_pool.stats.streams_ended[ERR_COUNT] +
                                                     pool_b.stats.streams_ended[ERR_COUNT] +
                                                     pool_c.stats.streams_ended[ERR_COUNT]);
    /* the sources are left as they were */
    assert_int_equal(server.stats.accepted, 1000000);
    assert_int_equal(pool_b.stats.accepted, 1);
    fake_server_teardown();
}

static void test_total_of_one_pool_without_counters(void **state)
{
    (void)state;
    fake_server_setup(1, 1, 0, 16);
    server.stats.conns_accepted = 7;
    fake_pool.stats.accepted = 5;
    server_stats t;
    pools_total(&t);
    assert_int_equal(t.conns_accepted, 7);
    assert_int_equal(t.accepted, 5);
    assert_int_equal(t.processed, 0);
    fake_server_teardown();
}

static void test_names_default_config_and_live_workers(void **state)
{
    (void)state;
    setup();
    char buf[64];
    pools_names(buf, sizeof(buf));
    assert_string_equal(buf, "default, gpu, gpu2");
    pools_names(buf, 8);
    assert_true(strlen(buf) < 8); /* bounded */
    assert_ptr_equal(pools_default(), &fake_pool);
    server.default_pool = &pool_b;
    assert_ptr_equal(pools_default(), &pool_b);

    config top1, top2;
    pool_b.cfg_top = &top1;
    assert_true(pools_use_config(&top1));
    assert_false(pools_use_config(&top2));

    assert_int_equal(pools_live_workers(), 2 + 3 + 1);
    fake_worker_state(&workers_b[0], WORKER_DEAD);
    assert_int_equal(pools_live_workers(), 2 + 2 + 1);

    assert_string_equal(pools_state_name(POOL_STARTING), "starting");
    assert_string_equal(pools_state_name(POOL_RUNNING), "running");
    assert_string_equal(pools_state_name(POOL_RETIRING), "retiring");
    assert_string_equal(pools_state_name(POOL_STOPPING), "stopping");
    assert_string_equal(pools_state_name((pool_state)9), "?");
    fake_server_teardown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find_by_whole_name),
        cmocka_unit_test(test_find_skips_pools_that_take_no_requests),
        cmocka_unit_test(test_total_adds_every_pools_counters_to_the_servers),
        cmocka_unit_test(test_total_of_one_pool_without_counters),
        cmocka_unit_test(test_names_default_config_and_live_workers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
