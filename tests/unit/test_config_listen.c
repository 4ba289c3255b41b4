/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_config_listen.c - cmocka tests for the metricsListen setting: the
 * address syntax (config_parse_listen in pool/core/config.c) and the rule
 * that a non-loopback address needs metricsAllowRemote
 * (config_validate).
 * Built with AP_ALLOC_TEST, so a config that leaks fails the test.
 */
#include "config.h"
#include "ap_common.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

static void parses(const char *spec, int family, int port, int loopback)
{
    config_listen_addr a;
    char err[256] = "";
    if (config_parse_listen(spec, &a, err, sizeof(err)) != AP_OK)
        fail_msg("%s: %s", spec, err);
    assert_int_equal(a.family, family);
    assert_int_equal(a.port, port);
    assert_int_equal(a.loopback, loopback);
}

static void refused(const char *spec)
{
    config_listen_addr a;
    char err[256] = "";
    if (config_parse_listen(spec, &a, err, sizeof(err)) == AP_OK)
        fail_msg("%s was accepted", spec);
    assert_true(strlen(err) > 0);
}

static void test_good_addresses(void **state)
{
    (void)state;
    config_listen_addr a;
    char err[256];
    parses("unix:/run/agentpool/metrics.sock", AF_UNIX, 0, 1);
    assert_int_equal(config_parse_listen("unix:/tmp/m", &a, err, sizeof(err)), AP_OK);
    assert_string_equal(a.path, "/tmp/m");
    parses("127.0.0.1:9464", AF_INET, 9464, 1);
    parses("127.200.3.4:1", AF_INET, 1, 1);
    parses("127.0.0.1:0", AF_INET, 0, 1);
    parses("10.1.2.3:9100", AF_INET, 9100, 0);
    parses("0.0.0.0:65535", AF_INET, 65535, 0);
    parses("[::1]:9464", AF_INET6, 9464, 1);
    parses("[::]:9464", AF_INET6, 9464, 0);
    parses("[fe80::1]:80", AF_INET6, 80, 0);
    assert_int_equal(config_parse_listen("[::1]:9464", &a, err, sizeof(err)), AP_OK);
    assert_int_equal(a.addr[15], 1);
}

static void test_bad_addresses(void **state)
{
    (void)state;
    refused("");
    refused("unix:");
    refused("unix:relative/path");
    char longpath[200] = "unix:/";
    memset(longpath + 6, 'a', 150);
    longpath[156] = '\0';
    refused(longpath);
    refused("localhost:9464");      /* no name lookups */
    refused("127.0.0.1");
    refused("127.0.0.1:");
    refused("127.0.0.1:65536");
    refused("127.0.0.1:-1");
    refused("127.0.0.1:+5");
    refused("127.0.0.1: 5");
    refused("127.0.0.1:5x");
    refused("127.0.0.1.5:80");
    refused("::1:9464");            /* IPv6 needs brackets */
    refused("[::1]9464");
    refused("[::1]:");
    refused("[127.0.0.1]:80");
    refused("[::1:80");
    refused("tcp://127.0.0.1:80");
}

static void test_remote_needs_allow_remote(void **state)
{
    (void)state;
    config cfg;
    char err[512];
    config_init(&cfg);
    const char *remote = "{\"metricsListen\": \"0.0.0.0:9464\"}";
    assert_int_equal(config_load_json(&cfg, remote, strlen(remote), "t.json", err, sizeof(err)), AP_OK);
    assert_int_equal(config_validate(&cfg, err, sizeof(err)), AP_ERR);
    assert_non_null(strstr(err, "metricsListen"));
    assert_non_null(strstr(err, "metricsAllowRemote"));
    const char *allow = "{\"metricsAllowRemote\": true}";
    assert_int_equal(config_load_json(&cfg, allow, strlen(allow), "t.json", err, sizeof(err)), AP_OK);
    assert_int_equal(config_validate(&cfg, err, sizeof(err)), AP_OK);
    const char *bad = "{\"metricsListen\": \"somewhere:80\"}";
    assert_int_equal(config_load_json(&cfg, bad, strlen(bad), "t.json", err, sizeof(err)), AP_OK);
    assert_int_equal(config_validate(&cfg, err, sizeof(err)), AP_ERR);
    assert_non_null(strstr(err, "metricsListen: \"somewhere:80\" is not"));
    const char *off = "{\"metricsListen\": \"\"}"; /* empty: off */
    assert_int_equal(config_load_json(&cfg, off, strlen(off), "t.json", err, sizeof(err)), AP_OK);
    assert_null(cfg.metrics_listen);
    assert_int_equal(config_validate(&cfg, err, sizeof(err)), AP_OK);
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_addresses),
        cmocka_unit_test(test_bad_addresses),
        cmocka_unit_test(test_remote_needs_allow_remote),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
