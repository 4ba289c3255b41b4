/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_rspec.c - the Redis session store's address (rspec.c):
 * what HOST[:PORT][/DB] forms it takes, with their defaults, and the
 * exact reason for each form it refuses (names above all: they would
 * need DNS on the loop).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rspec.h"
#include "ap_common.h"

#include <string.h>

static void test_accepts_numeric_hosts_with_defaults(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *host;
        int ipv6, port, db;
        const char *formatted;
    } ok[] = {
        {"127.0.0.1:6380/2", "127.0.0.1", 0, 6380, 2, "127.0.0.1:6380/2"},
        {"127.0.0.1", "127.0.0.1", 0, 6379, 0, "127.0.0.1:6379/0"},
        {"10.1.2.3/15", "10.1.2.3", 0, 6379, 15, "10.1.2.3:6379/15"},
        {"localhost:7000", "127.0.0.1", 0, 7000, 0, "127.0.0.1:7000/0"},
        {"[::1]:6379/1", "::1", 1, 6379, 1, "[::1]:6379/1"},
        {"[::1]", "::1", 1, 6379, 0, "[::1]:6379/0"},
        {"[fe80::1:2]/3", "fe80::1:2", 1, 6379, 3, "[fe80::1:2]:6379/3"},
        {"1.2.3.4:65535/1000000", "1.2.3.4", 0, 65535, 1000000, "1.2.3.4:65535/1000000"},
        {"1.2.3.4:1/0", "1.2.3.4", 0, 1, 0, "1.2.3.4:1/0"},
    };
    for (size_t i = 0; i < AP_ARRAY_LEN(ok); i++) {
        rspec r;
        char err[256] = "", buf[80];
        if (rspec_parse("sessionStore", ok[i].in, &r, err, sizeof(err)) != AP_OK)
            fail_msg("%s: %s", ok[i].in, err);
        assert_string_equal(r.host, ok[i].host);
        assert_int_equal(r.ipv6, ok[i].ipv6);
        assert_int_equal(r.port, ok[i].port);
        assert_int_equal(r.db, ok[i].db);
        rspec_format(&r, buf, sizeof(buf));
        assert_string_equal(buf, ok[i].formatted);
    }
}

static void test_refuses_names_and_malformed_addresses_saying_why(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *err;
    } bad[] = {
        {"", "sessionStore 'redis://' names no server (redis://HOST:PORT/DB)"},
        {"redis.example.com:6379",
         "sessionStore 'redis://redis.example.com:6379': 'redis.example.com' is not a numeric address (an IPv4 "
         "address, [IPv6] or localhost; names are not resolved, so that the loop never waits on DNS)"},
        {"db:6379/0", "sessionStore 'redis://db:6379/0': 'db' is not a numeric address (an IPv4 address, [IPv6] or "
                      "localhost; names are not resolved, so that the loop never waits on DNS)"},
        {"1.2.3:6379", "sessionStore 'redis://1.2.3:6379': '1.2.3' is not a numeric address (an IPv4 address, [IPv6] "
                       "or localhost; names are not resolved, so that the loop never waits on DNS)"},
        {"[localhost]:6379", "sessionStore 'redis://[localhost]:6379': 'localhost' is not a numeric IPv6 address (an "
                             "IPv4 address, [IPv6] or localhost; names are not resolved, so that the loop never "
                             "waits on DNS)"},
        {"::1:6379", "sessionStore 'redis://::1:6379': an IPv6 address goes in brackets ([::1]:6379)"},
        {"[::1:6379", "sessionStore 'redis://[::1:6379': '[' without ']' around an IPv6 address"},
        {"[::1]6379", "sessionStore 'redis://[::1]6379': expected ':PORT' or '/DB' after ']'"},
        {":6379", "sessionStore 'redis://:6379' names no host (redis://HOST:PORT/DB)"},
        {"127.0.0.1:", "sessionStore 'redis://127.0.0.1:': the port is not a number from 1 to 65535"},
        {"127.0.0.1:0", "sessionStore 'redis://127.0.0.1:0': the port is not a number from 1 to 65535"},
        {"127.0.0.1:65536", "sessionStore 'redis://127.0.0.1:65536': the port is not a number from 1 to 65535"},
        {"127.0.0.1:+80", "sessionStore 'redis://127.0.0.1:+80': the port is not a number from 1 to 65535"},
        {"127.0.0.1:99999999999999999999", "sessionStore 'redis://127.0.0.1:99999999999999999999': the port is not a "
                                           "number from 1 to 65535"},
        {"127.0.0.1:6379/", "sessionStore 'redis://127.0.0.1:6379/': the database is not a number from 0 to 1000000"},
        {"127.0.0.1:6379/-1", "sessionStore 'redis://127.0.0.1:6379/-1': the database is not a number from 0 to "
                              "1000000"},
        {"127.0.0.1:6379/1000001", "sessionStore 'redis://127.0.0.1:6379/1000001': the database is not a number "
                                   "from 0 to 1000000"},
        {"127.0.0.1:6379/0/1", "sessionStore 'redis://127.0.0.1:6379/0/1': the database is not a number from 0 to "
                               "1000000"},
        {"user:pw@127.0.0.1:6379", "sessionStore 'redis://user:pw@127.0.0.1:6379': a user or password is not "
                                   "supported (redis://HOST:PORT/DB, no AUTH)"},
    };
    for (size_t i = 0; i < AP_ARRAY_LEN(bad); i++) {
        rspec r;
        char err[512] = "";
        if (rspec_parse("sessionStore", bad[i].in, &r, err, sizeof(err)) != AP_ERR)
            fail_msg("'%s' was accepted", bad[i].in);
        assert_string_equal(err, bad[i].err);
    }
}

static void test_refuses_overlong_specs_without_reading_past_the_bound(void **state)
{
    (void)state;
    char in[400];
    memset(in, '1', sizeof(in) - 1);
    in[sizeof(in) - 1] = '\0';
    rspec r;
    char err[256] = "";
    assert_int_equal(rspec_parse("sessionStore", in, &r, err, sizeof(err)), AP_ERR);
    assert_non_null(strstr(err, "is too long"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_numeric_hosts_with_defaults),
        cmocka_unit_test(test_refuses_names_and_malformed_addresses_saying_why),
        cmocka_unit_test(test_refuses_overlong_specs_without_reading_past_the_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
