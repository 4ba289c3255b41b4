/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_config.c - cmocka tests for agentpoold's settings (pool/core/config.c).
 *
 * Built with AP_ALLOC_TEST: every string the config owns goes through
 * cmocka's test_malloc, so a setting replaced without freeing the old
 * value, or anything config_free() misses, fails the test.
 *
 * Checked: every default; config_load_json with each kind of refusal
 * (unknown key, wrong type, out of range, bad enum value, bad JSON) with
 * the exact one-line message, which names the key, the value and the
 * origin; pythonPath as array and as string; socketMode as a string and
 * as a number; config_parse_args with a real temporary config file:
 * flags override the file whatever their order, --flag=value and
 * --flag value, --no-FLAG, repeated --python-path, the --help,
 * --version and --check-config actions, unknown flags, missing values;
 * config_validate's cross-field checks; --help's text; durations with
 * units from the file and flags, the warning for a bare small timeout,
 * AGENTPOOL_* variables between the file and the flags (with each
 * setting's origin as --print-config prints it, and a bad value naming
 * the variable), environment variable names, the --print-config action.
 * Named pools ("pools"): inheritance from the top level (file,
 * environment and flags) under each pool's own keys, settings of the
 * whole server refused inside a pool, pool names and counts, defaultPool,
 * deadLetterFile, provenance in --print-config's per-pool blocks and in
 * the warnings, validation naming the pool, config_load_json keeping
 * "pools" aside until config_pools_build; pool configs are freed (the
 * allocator check) on success and on every refusal.
 *
 * The regression tests at the end pin bugs the first version had.
 */
#include "config.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_defaults.h"
#include "ap_frame.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static config cfg;
static char err[512];
static char tmp_path[4096];  /* the temporary config file, "" when none */
static config_action act;

/* cmocka checks for leaks right after the test function, before the
 * teardown runs, and frees what it finds: so the config is set up and
 * freed inside each test (CFG_TEST), never in setup/teardown. */
static int setup(void **state)
{
    (void)state;
    unsetenv(AP_SOCKET_ENV);
    memset(err, 0, sizeof(err));
    act = (config_action)-1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (tmp_path[0]) {
        unlink(tmp_path);
        tmp_path[0] = '\0';
    }
    return 0;
}

#define CFG_TEST(name)                                                                       \
    static void name##_body(void);                                                           \
    static void name(void **state)                                                           \
    {                                                                                        \
        (void)state;                                                                         \
        config_init(&cfg);                                                                   \
        name##_body();                                                                       \
        config_free(&cfg);                                                                   \
    }                                                                                        \
    static void name##_body(void)

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

/* Writes text to a fresh temporary file; its name is in tmp_path. */
static const char *write_temp(const char *text)
{
    const char *dir = getenv("TMPDIR");
    snprintf(tmp_path, sizeof(tmp_path), "%s/ap_test_config_XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(tmp_path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    return tmp_path;
}

static int load(const char *json)
{
    return config_load_json(&cfg, json, strlen(json), "test.json", err, sizeof(err));
}

/* The load fails with exactly `want`, on one line. */
static void expect_load_error(const char *json, const char *want)
{
    int rc = load(json);
    if (rc != AP_ERR || strcmp(err, want) != 0) {
        print_error("config %s\n  want AP_ERR \"%s\"\n  have %s \"%s\"\n", json, want,
                    rc == AP_OK ? "AP_OK" : "AP_ERR", err);
        fail();
    }
    assert_null(strchr(err, '\n'));
}

static void expect_load_ok(const char *json)
{
    if (load(json) != AP_OK) {
        print_error("config %s refused: %s\n", json, err);
        fail();
    }
}

#define ARGC(a) ((int)AP_ARRAY_LEN(a))
/* Runs config_parse_args over {"agentpoold", ...}; the result in rc. */
#define PARSE(...)                                                                           \
    do {                                                                                     \
        char *argv_[] = {"agentpoold", __VA_ARGS__};                                         \
        memset(err, 0, sizeof(err));                                                         \
        rc = config_parse_args(&cfg, ARGC(argv_), argv_, &act, err, sizeof(err));            \
    } while (0)
#define EXPECT_ERR(want)                                                                     \
    do {                                                                                     \
        if (rc != AP_ERR || strcmp(err, want) != 0) {                                        \
            print_error("want AP_ERR \"%s\"\nhave %s \"%s\"\n", want, rc ? "AP_ERR" : "AP_OK", err); \
            fail();                                                                          \
        }                                                                                    \
    } while (0)
#define EXPECT_OK()                                                                          \
    do {                                                                                     \
        if (rc != AP_OK) {                                                                   \
            print_error("refused: %s\n", err);                                               \
            fail();                                                                          \
        }                                                                                    \
    } while (0)

static int64_t ncpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

/* --- defaults --------------------------------------------------------------- */

CFG_TEST(test_defaults)
{
    assert_int_equal(cfg.min_workers, ncpus());
    assert_int_equal(cfg.max_workers, 3 * ncpus());
    assert_int_equal(cfg.strategy, LB_ROUND_ROBIN);
    assert_int_equal(cfg.message_queue_size, 1024);
    assert_int_equal(cfg.max_retries, 3);
    assert_int_equal(cfg.retry_delay, 1000);
    assert_int_equal(cfg.health_check_interval, 30000);
    assert_int_equal(cfg.restart_on_failure, 1);
    assert_int_equal(cfg.worker_recycle_interval, 3600000);
    assert_int_equal(cfg.max_messages_per_worker, 10000);
    assert_int_equal(cfg.timeout, 30000);
    assert_int_equal(cfg.concurrency, 64);
    assert_int_equal(cfg.overflow, OVERFLOW_BLOCK);
    assert_int_equal(cfg.max_message_bytes, 4 * 1024 * 1024);
    assert_int_equal(cfg.max_connections, 4096);
    assert_int_equal(cfg.max_inflight_per_connection, 1024);
    assert_int_equal(cfg.max_pending_bytes, 256 * 1024 * 1024);
    assert_int_equal(cfg.listen_backlog, 1024);
    assert_int_equal(cfg.shutdown_timeout, 30000);
    assert_string_equal(cfg.socket, AP_DEFAULT_SOCKET);
    assert_string_equal(cfg.socket, "/tmp/agentpool.sock");
    assert_int_equal(cfg.socket_mode, 0660);
    assert_string_equal(cfg.agent, "pyagents.examples.echo:EchoAgent");
    assert_int_equal(cfg.n_python_path, 0);
    assert_null(cfg.virtualenv);
    assert_int_equal(cfg.inherit_python_env, 0);
    assert_null(cfg.worker_binary);
    assert_string_equal(cfg.log_level, "info");
    assert_string_equal(cfg.log_format, "text");
    assert_null(cfg.config_file);
    /* the defaults are valid */
    assert_int_equal(config_validate(&cfg, err, sizeof(err)), AP_OK);
    /* no flags at all: run, with the defaults */
    int rc;
    char *argv[] = {"agentpoold"};
    rc = config_parse_args(&cfg, 1, argv, &act, err, sizeof(err));
    EXPECT_OK();
    assert_int_equal(act, CONFIG_RUN);
    assert_int_equal(cfg.concurrency, 64);
}

CFG_TEST(test_default_socket_from_env)
{
    config c;
    int rc;
    /* $AGENTPOOL_SOCKET is socket's environment variable like any other */
    setenv(AP_SOCKET_ENV, "/run/ap/test.sock", 1);
    PARSE("--min-workers", "1");
    EXPECT_OK();
    assert_string_equal(cfg.socket, "/run/ap/test.sock");
    assert_int_equal(cfg.source[0], CONFIG_SRC_ENV);
    setenv(AP_SOCKET_ENV, "", 1); /* empty: as if unset */
    config_free(&cfg);
    config_init(&cfg);
    PARSE("--min-workers", "1");
    EXPECT_OK();
    assert_string_equal(cfg.socket, AP_DEFAULT_SOCKET);
    assert_int_equal(cfg.source[0], CONFIG_SRC_DEFAULT);
    unsetenv(AP_SOCKET_ENV);
    config_init(&c);
    /* config_free leaves nothing to free twice; init again works */
    config_free(&c);
    config_free(&c);
    assert_null(c.socket);
    assert_null(c.agent);
    config_init(&c);
    config_free(&c);
}

CFG_TEST(test_names)
{
    assert_string_equal(config_strategy_name(LB_ROUND_ROBIN), "round-robin");
    assert_string_equal(config_strategy_name(LB_LEAST_BUSY), "least-busy");
    assert_string_equal(config_strategy_name(LB_RANDOM), "random");
    assert_string_equal(config_strategy_name(3), "?");
    assert_string_equal(config_strategy_name(-1), "?");
    assert_string_equal(config_overflow_name(OVERFLOW_BLOCK), "block");
    assert_string_equal(config_overflow_name(OVERFLOW_REJECT), "reject");
    assert_string_equal(config_overflow_name(2), "?");
}

/* --- config_load_json: accepted ------------------------------------------- */

CFG_TEST(test_load_every_setting)
{
    expect_load_ok("{\n"
                   "  \"socket\": \"/run/agentpool/a.sock\",\n"
                   "  \"socketMode\": \"0600\",\n"
                   "  \"agent\": \"mypkg.agents:Summarizer\",\n"
                   "  \"pythonPath\": [\"/srv/app\", \"/srv/lib\"],\n"
                   "  \"virtualenv\": \"/srv/venv\",\n"
                   "  \"inheritPythonEnv\": true,\n"
                   "  \"workerBinary\": \"/opt/ap/agentpool-worker\",\n"
                   "  \"minWorkers\": 2,\n"
                   "  \"maxWorkers\": 5,\n"
                   "  \"concurrency\": 7,\n"
                   "  \"loadBalancingStrategy\": \"least-busy\",\n"
                   "  \"messageQueueSize\": 0,\n"
                   "  \"overflow\": \"reject\",\n"
                   "  \"maxMessageBytes\": 65536,\n"
                   "  \"maxConnections\": 10,\n"
                   "  \"maxInFlightPerConnection\": 3,\n"
                   "  \"maxPendingBytes\": 1048576,\n"
                   "  \"listenBacklog\": 16,\n"
                   "  \"shutdownTimeout\": 0,\n"
                   "  \"restartOnFailure\": false,\n"
                   "  \"maxRetries\": 0,\n"
                   "  \"retryDelay\": 250,\n"
                   "  \"healthCheckInterval\": 5000,\n"
                   "  \"workerRecycleInterval\": 0,\n"
                   "  \"maxMessagesPerWorker\": 9007199254740992,\n"
                   "  \"timeout\": 1e3,\n"
                   "  \"logLevel\": \"debug\",\n"
                   "  \"logFormat\": \"json\"\n"
                   "}\n");
    assert_string_equal(cfg.socket, "/run/agentpool/a.sock");
    assert_int_equal(cfg.socket_mode, 0600);
    assert_string_equal(cfg.agent, "mypkg.agents:Summarizer");
    assert_int_equal(cfg.n_python_path, 2);
    assert_string_equal(cfg.python_path[0], "/srv/app");
    assert_string_equal(cfg.python_path[1], "/srv/lib");
    assert_string_equal(cfg.virtualenv, "/srv/venv");
    assert_int_equal(cfg.inherit_python_env, 1);
    assert_string_equal(cfg.worker_binary, "/opt/ap/agentpool-worker");
    assert_int_equal(cfg.min_workers, 2);
    assert_int_equal(cfg.max_workers, 5);
    assert_int_equal(cfg.concurrency, 7);
    assert_int_equal(cfg.strategy, LB_LEAST_BUSY);
    assert_int_equal(cfg.message_queue_size, 0);
    assert_int_equal(cfg.overflow, OVERFLOW_REJECT);
    assert_int_equal(cfg.max_message_bytes, 65536);
    assert_int_equal(cfg.max_connections, 10);
    assert_int_equal(cfg.max_inflight_per_connection, 3);
    assert_int_equal(cfg.max_pending_bytes, 1048576);
    assert_int_equal(cfg.listen_backlog, 16);
    assert_int_equal(cfg.shutdown_timeout, 0);
    assert_int_equal(cfg.restart_on_failure, 0);
    assert_int_equal(cfg.max_retries, 0);
    assert_int_equal(cfg.retry_delay, 250);
    assert_int_equal(cfg.health_check_interval, 5000);
    assert_int_equal(cfg.worker_recycle_interval, 0);
    assert_int_equal(cfg.max_messages_per_worker, 9007199254740992LL);
    assert_int_equal(cfg.timeout, 1000); /* 1e3 is a whole number */
    assert_string_equal(cfg.log_level, "debug");
    assert_string_equal(cfg.log_format, "json");
    /* config_load_json does not record a file: only config_parse_args does */
    assert_null(cfg.config_file);
    assert_int_equal(config_validate(&cfg, err, sizeof(err)), AP_OK);

    /* a second load replaces strings (the old ones are freed: cmocka checks) */
    expect_load_ok("{\"socket\": \"/tmp/b.sock\", \"agent\": \"m:A\", \"virtualenv\": \"\", "
                   "\"logLevel\": \"warn\", \"pythonPath\": []}");
    assert_string_equal(cfg.socket, "/tmp/b.sock");
    assert_string_equal(cfg.agent, "m:A");
    assert_null(cfg.virtualenv); /* "" clears an optional string */
    assert_string_equal(cfg.log_level, "warn");
    assert_int_equal(cfg.n_python_path, 0);
    assert_int_equal(cfg.min_workers, 2); /* settings not named keep their value */

    expect_load_ok("{}");
    expect_load_ok("  {  }  ");
    assert_string_equal(cfg.socket, "/tmp/b.sock");
}

CFG_TEST(test_load_bounds_accepted)
{
    expect_load_ok("{\"minWorkers\": 1, \"maxWorkers\": 4096}");
    assert_int_equal(cfg.min_workers, 1);
    assert_int_equal(cfg.max_workers, 4096);
    expect_load_ok("{\"minWorkers\": 4096, \"concurrency\": 100000, \"maxMessageBytes\": 64}");
    assert_int_equal(cfg.min_workers, 4096);
    assert_int_equal(cfg.concurrency, 100000);
    assert_int_equal(cfg.max_message_bytes, 64);
    expect_load_ok("{\"maxMessageBytes\": 67108864, \"maxPendingBytes\": 1099511627776}");
    assert_int_equal(cfg.max_message_bytes, 64 * 1024 * 1024);
    assert_int_equal(cfg.max_pending_bytes, (int64_t)1 << 40);
    expect_load_ok("{\"listenBacklog\": 65535, \"shutdownTimeout\": 86400000, \"minWorkers\": 4.0}");
    assert_int_equal(cfg.listen_backlog, 65535);
    assert_int_equal(cfg.min_workers, 4);
    expect_load_ok("{\"socket\": \"/a\", \"agent\": \"a:b\"}");
    char sock[200];
    memset(sock, 'p', sizeof(sock));
    memcpy(sock, "{\"socket\": \"/", 13);
    memcpy(sock + 13 + 106, "\"}", 3); /* "/" + 106 'p' = 107 characters */
    expect_load_ok(sock);
    assert_int_equal(strlen(cfg.socket), 107);
    /* every strategy and overflow name */
    expect_load_ok("{\"loadBalancingStrategy\": \"random\", \"overflow\": \"block\"}");
    assert_int_equal(cfg.strategy, LB_RANDOM);
    assert_int_equal(cfg.overflow, OVERFLOW_BLOCK);
    expect_load_ok("{\"loadBalancingStrategy\": \"round-robin\"}");
    assert_int_equal(cfg.strategy, LB_ROUND_ROBIN);
    expect_load_ok("{\"logLevel\": \"error\", \"logFormat\": \"text\"}");
    assert_string_equal(cfg.log_level, "error");
    /* a key given twice: the last wins, and the first value is freed */
    expect_load_ok("{\"agent\": \"a:b\", \"agent\": \"c:d\", \"minWorkers\": 3, \"minWorkers\": 5}");
    assert_string_equal(cfg.agent, "c:d");
    assert_int_equal(cfg.min_workers, 5);
}

/* --- config_load_json: refusals -------------------------------------------- */

typedef struct {
    const char *json;
    const char *msg;
} refusal;

static void check_refusals(const refusal *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        config_free(&cfg);
        config_init(&cfg);
        expect_load_error(r[i].json, r[i].msg);
    }
}

CFG_TEST(test_refuse_unknown_key)
{
    static const refusal r[] = {
        {"{\"minWorker\": 2}", "test.json: unknown setting \"minWorker\""},
        {"{\"MinWorkers\": 2}", "test.json: unknown setting \"MinWorkers\""},
        {"{\"min-workers\": 2}", "test.json: unknown setting \"min-workers\""},
        {"{\"\": 1}", "test.json: unknown setting \"\""},
        {"{\"config\": \"x.json\"}", "test.json: unknown setting \"config\""},
        /* the first bad key stops the load; keys before it were applied */
        {"{\"minWorkers\": 2, \"bogus\": true, \"alsoBogus\": 1}", "test.json: unknown setting \"bogus\""},
    };
    check_refusals(r, AP_ARRAY_LEN(r));
    assert_int_equal(cfg.min_workers, 2);
}

CFG_TEST(test_refuse_wrong_type)
{
    static const refusal r[] = {
        {"{\"minWorkers\": \"4\"}", "test.json: minWorkers: \"4\" is a string, expected an integer"},
        {"{\"minWorkers\": 2.5}", "test.json: minWorkers: 2.5 is not whole, expected an integer"},
        {"{\"minWorkers\": true}", "test.json: minWorkers: true is a boolean, expected an integer"},
        {"{\"minWorkers\": null}", "test.json: minWorkers: null is null, expected an integer"},
        {"{\"minWorkers\": [1]}", "test.json: minWorkers: [1] is an array, expected an integer"},
        {"{\"timeout\": {\"ms\": 5}}", "test.json: timeout: {\"ms\":5} is an object, expected milliseconds or a duration such as \"30s\""},
        {"{\"restartOnFailure\": \"yes\"}", "test.json: restartOnFailure: \"yes\" is a string, expected true or false"},
        {"{\"restartOnFailure\": 1}", "test.json: restartOnFailure: 1 is a number, expected true or false"},
        {"{\"inheritPythonEnv\": null}", "test.json: inheritPythonEnv: null is null, expected true or false"},
        {"{\"agent\": 5}", "test.json: agent: 5 is a number, expected a string"},
        {"{\"socket\": [\"/tmp/a\"]}", "test.json: socket: [\"/tmp/a\"] is an array, expected a string"},
        {"{\"loadBalancingStrategy\": 1}", "test.json: loadBalancingStrategy: 1 is a number, expected a string"},
        {"{\"overflow\": false}", "test.json: overflow: false is a boolean, expected a string"},
        {"{\"logLevel\": {}}", "test.json: logLevel: {} is an object, expected a string"},
        {"{\"socketMode\": true}",
         "test.json: socketMode: true is a boolean, expected an octal string such as \"0660\""},
        {"{\"socketMode\": 1.5}",
         "test.json: socketMode: 1.5 is out of range (0 to 511 as a number; write the mode as a string such as \"0660\")"},
        {"{\"pythonPath\": 3}", "test.json: pythonPath: 3 is a number, expected an array of directories"},
        {"{\"pythonPath\": {\"a\": \"/x\"}}", "test.json: pythonPath: {\"a\":\"/x\"} is an object, expected an array of directories"},
        {"{\"pythonPath\": [\"/a\", 3]}", "test.json: pythonPath: entry 3 must be a non-empty string"},
        {"{\"pythonPath\": [\"/a\", \"\"]}", "test.json: pythonPath: entry \"\" must be a non-empty string"},
        {"{\"pythonPath\": [[\"/a\"]]}", "test.json: pythonPath: entry [\"/a\"] must be a non-empty string"},
    };
    check_refusals(r, AP_ARRAY_LEN(r));
}

CFG_TEST(test_refuse_out_of_range)
{
    static const refusal r[] = {
        {"{\"minWorkers\": 0}", "test.json: minWorkers: 0 is out of range (1 to 4096)"},
        {"{\"minWorkers\": 4097}", "test.json: minWorkers: 4097 is out of range (1 to 4096)"},
        {"{\"minWorkers\": -3}", "test.json: minWorkers: -3 is out of range (1 to 4096)"},
        {"{\"maxWorkers\": 0}", "test.json: maxWorkers: 0 is out of range (1 to 4096)"},
        {"{\"concurrency\": 100001}", "test.json: concurrency: 100001 is out of range (1 to 100000)"},
        {"{\"messageQueueSize\": -1}", "test.json: messageQueueSize: -1 is out of range (0 to 10000000)"},
        {"{\"maxMessageBytes\": 63}", "test.json: maxMessageBytes: 63 is out of range (64 to 67108864)"},
        {"{\"maxPendingBytes\": 1023}", "test.json: maxPendingBytes: 1023 is out of range (1024 to 1099511627776)"},
        {"{\"listenBacklog\": 65536}", "test.json: listenBacklog: 65536 is out of range (1 to 65535)"},
        {"{\"shutdownTimeout\": -1}", "test.json: shutdownTimeout: -1 is out of range (0 to 86400000 ms)"},
        {"{\"maxRetries\": 101}", "test.json: maxRetries: 101 is out of range (0 to 100)"},
        {"{\"timeout\": 86400001}", "test.json: timeout: 86400001 is out of range (0 to 86400000 ms)"},
        {"{\"workerRecycleInterval\": -1}",
         "test.json: workerRecycleInterval: -1 is out of range (0 to 9223372036854775807 ms)"},
        {"{\"maxConnections\": 1e7}", "test.json: maxConnections: 10000000 is out of range (1 to 1000000)"},
        {"{\"socket\": \"\"}", "test.json: socket: \"\" must be 1 to 107 characters long"},
        {"{\"agent\": \"\"}", "test.json: agent: \"\" must be 1 to 1024 characters long"},
        {"{\"workerBinary\": \"\"}", "test.json: workerBinary: \"\" must be 1 to 4096 characters long"},
        {"{\"socketMode\": \"01000\"}", "test.json: socketMode: 01000 is out of range (0 to 0777)"},
        {"{\"socketMode\": \"-1\"}", "test.json: socketMode: -1 is out of range (0 to 0777)"},
    };
    check_refusals(r, AP_ARRAY_LEN(r));

    /* a 108-character socket path */
    char json[256], want[256];
    char path[109];
    memset(path, 'p', 108);
    path[0] = '/';
    path[108] = '\0';
    snprintf(json, sizeof(json), "{\"socket\": \"%s\"}", path);
    snprintf(want, sizeof(want), "test.json: socket: \"%s\" must be 1 to 107 characters long", path);
    config_free(&cfg);
    config_init(&cfg);
    expect_load_error(json, want);
    assert_string_equal(cfg.socket, AP_DEFAULT_SOCKET); /* unchanged on refusal */
}

CFG_TEST(test_refuse_bad_enum)
{
    static const refusal r[] = {
        {"{\"loadBalancingStrategy\": \"fastest\"}",
         "test.json: loadBalancingStrategy: \"fastest\" is not one of round-robin, least-busy, random"},
        {"{\"loadBalancingStrategy\": \"Round-Robin\"}",
         "test.json: loadBalancingStrategy: \"Round-Robin\" is not one of round-robin, least-busy, random"},
        {"{\"loadBalancingStrategy\": \"\"}",
         "test.json: loadBalancingStrategy: \"\" is not one of round-robin, least-busy, random"},
        {"{\"overflow\": \"drop\"}", "test.json: overflow: \"drop\" is not one of block, reject"},
        {"{\"logLevel\": \"verbose\"}", "test.json: logLevel: \"verbose\" is not one of debug, info, warn, error"},
        {"{\"logLevel\": \"\"}", "test.json: logLevel: \"\" is not one of debug, info, warn, error"},
        {"{\"logFormat\": \"xml\"}", "test.json: logFormat: \"xml\" is not one of text, json"},
        {"{\"socketMode\": \"0999\"}", "test.json: socketMode: \"0999\" is not an octal file mode"},
        {"{\"socketMode\": \"rw-rw----\"}", "test.json: socketMode: \"rw-rw----\" is not an octal file mode"},
        {"{\"socketMode\": \"\"}", "test.json: socketMode: \"\" is not an octal file mode"},
        {"{\"socketMode\": \" 0660\"}", "test.json: socketMode: \" 0660\" is not an octal file mode"},
        {"{\"socketMode\": \"0660 \"}", "test.json: socketMode: \"0660 \" is not an octal file mode"},
    };
    check_refusals(r, AP_ARRAY_LEN(r));
    assert_string_equal(cfg.log_level, "info");
}

CFG_TEST(test_refuse_bad_json)
{
    static const refusal r[] = {
        {"", "test.json: line 1, column 1: not valid JSON"},
        {"{\"minWorkers\": }", "test.json: line 1, column 16: not valid JSON"},
        {"{\"minWorkers\": 2,}", "test.json: line 1, column 18: not valid JSON"},
        {"{\"a\" 1}", "test.json: line 1, column 6: not valid JSON"},
        {"[{\"minWorkers\": 2}]", "test.json: the config must be a JSON object"},
        {"\"minWorkers\"", "test.json: the config must be a JSON object"},
        {"null", "test.json: the config must be a JSON object"},
        {"42", "test.json: the config must be a JSON object"},
    };
    check_refusals(r, AP_ARRAY_LEN(r));
    /* the origin is whatever the caller names */
    config_free(&cfg);
    config_init(&cfg);
    assert_int_equal(config_load_json(&cfg, "{\"x\":1}", 7, "/etc/agentpool.json", err, sizeof(err)), AP_ERR);
    assert_string_equal(err, "/etc/agentpool.json: unknown setting \"x\"");
    /* only len bytes are parsed: a valid prefix of a longer text */
    static const char text[] = "{\"minWorkers\": 3}{\"minWorkers\": 4}";
    assert_int_equal(config_load_json(&cfg, text, 17, "t", err, sizeof(err)), AP_OK);
    assert_int_equal(cfg.min_workers, 3);
    assert_int_equal(config_load_json(&cfg, text, 16, "t", err, sizeof(err)), AP_ERR);
    assert_string_equal(err, "t: line 1, column 16: not valid JSON");
    /* a small error buffer truncates the message, never overflows */
    char small[12];
    memset(small, 'Z', sizeof(small));
    assert_int_equal(config_load_json(&cfg, "{\"nope\":1}", 10, "origin.json", small, 8), AP_ERR);
    assert_string_equal(small, "origin.");
    assert_int_equal(small[8], 'Z');
}

/* --- pythonPath and socketMode forms --------------------------------------- */

CFG_TEST(test_python_path_forms)
{
    expect_load_ok("{\"pythonPath\": [\"/srv/a\", \"relative/b\", \"/c d\"]}");
    assert_int_equal(cfg.n_python_path, 3);
    assert_string_equal(cfg.python_path[0], "/srv/a");
    assert_string_equal(cfg.python_path[1], "relative/b");
    assert_string_equal(cfg.python_path[2], "/c d");
    /* a string is split at ':' (empty parts skipped) and replaces the list */
    expect_load_ok("{\"pythonPath\": \"/x:/y::/z:\"}");
    assert_int_equal(cfg.n_python_path, 3);
    assert_string_equal(cfg.python_path[0], "/x");
    assert_string_equal(cfg.python_path[1], "/y");
    assert_string_equal(cfg.python_path[2], "/z");
    expect_load_ok("{\"pythonPath\": \"/only\"}");
    assert_int_equal(cfg.n_python_path, 1);
    assert_string_equal(cfg.python_path[0], "/only");
    expect_load_ok("{\"pythonPath\": \"\"}");
    assert_int_equal(cfg.n_python_path, 0);
    expect_load_ok("{\"pythonPath\": [\"/a\"]}");
    expect_load_ok("{\"pythonPath\": []}");
    assert_int_equal(cfg.n_python_path, 0);

    /* 32 directories fit, 33 do not, as array or as string */
    char json[1024], str[1024];
    size_t o = (size_t)snprintf(json, sizeof(json), "{\"pythonPath\": [");
    size_t so = 0;
    for (int i = 0; i < CONFIG_MAX_PYTHON_PATH; i++) {
        o += (size_t)snprintf(json + o, sizeof(json) - o, "%s\"/p%d\"", i ? "," : "", i);
        so += (size_t)snprintf(str + so, sizeof(str) - so, "%s/p%d", i ? ":" : "", i);
    }
    snprintf(json + o, sizeof(json) - o, "]}");
    expect_load_ok(json);
    assert_int_equal(cfg.n_python_path, CONFIG_MAX_PYTHON_PATH);
    assert_string_equal(cfg.python_path[31], "/p31");
    snprintf(json + o, sizeof(json) - o, ",\"/p32\"]}");
    expect_load_error(json, "test.json: pythonPath: more than 32 directories");
    char sjson[1200];
    snprintf(sjson, sizeof(sjson), "{\"pythonPath\": \"%s\"}", str);
    expect_load_ok(sjson);
    assert_int_equal(cfg.n_python_path, CONFIG_MAX_PYTHON_PATH);
    snprintf(sjson, sizeof(sjson), "{\"pythonPath\": \"%s:/p32\"}", str);
    expect_load_error(sjson, "test.json: pythonPath: more than 32 directories");
}

CFG_TEST(test_socket_mode_forms)
{
    static const struct {
        const char *json;
        int64_t mode;
    } ok[] = {
        {"{\"socketMode\": \"0660\"}", 0660},
        {"{\"socketMode\": \"660\"}", 0660},
        {"{\"socketMode\": \"0600\"}", 0600},
        {"{\"socketMode\": \"0777\"}", 0777},
        {"{\"socketMode\": \"0\"}", 0},
        {"{\"socketMode\": \"000\"}", 0},
        /* a number is the mode's value: 432 == 0660, 420 == 0644 */
        {"{\"socketMode\": 432}", 0660},
        {"{\"socketMode\": 420}", 0644},
        {"{\"socketMode\": 511}", 0777},
        {"{\"socketMode\": 0}", 0},
        {"{\"socketMode\": 384.0}", 0600},
    };
    for (size_t i = 0; i < AP_ARRAY_LEN(ok); i++) {
        cfg.socket_mode = 01234;
        expect_load_ok(ok[i].json);
        if (cfg.socket_mode != ok[i].mode) {
            print_error("%s: socket_mode %llo, want %llo\n", ok[i].json, (unsigned long long)cfg.socket_mode,
                        (unsigned long long)ok[i].mode);
            fail();
        }
    }
    /* numbers out of range are refused (what the message shows is a known
     * bug, see test_bug_socket_mode_number_message) */
    static const char *const bad[] = {"{\"socketMode\": 512}", "{\"socketMode\": -1}", "{\"socketMode\": 660}"};
    for (size_t i = 0; i < AP_ARRAY_LEN(bad); i++) {
        cfg.socket_mode = 0640;
        assert_int_equal(load(bad[i]), AP_ERR);
        assert_memory_equal(err, "test.json: socketMode: ", 23);
        assert_null(strchr(err, '\n'));
        assert_int_equal(cfg.socket_mode, 0640);
    }
}

/* --- config_parse_args ---------------------------------------------------- */

CFG_TEST(test_args_override_file)
{
    int rc;
    char *path = (char *)write_temp("{\n"
                                    "  \"minWorkers\": 2,\n"
                                    "  \"maxWorkers\": 8,\n"
                                    "  \"concurrency\": 8,\n"
                                    "  \"logLevel\": \"debug\",\n"
                                    "  \"pythonPath\": [\"/f1\", \"/f2\"],\n"
                                    "  \"restartOnFailure\": true,\n"
                                    "  \"socket\": \"/tmp/file.sock\",\n"
                                    "  \"agent\": \"file.mod:Agent\"\n"
                                    "}\n");
    PARSE("--min-workers=3", "--concurrency", "16", "--config", path, "--python-path", "/c",
          "--python-path=/d:/e", "--no-restart-on-failure", "--socket=/tmp/flag.sock", "--log-format", "json");
    EXPECT_OK();
    assert_int_equal(act, CONFIG_RUN);
    assert_int_equal(cfg.min_workers, 3);      /* flag before --config still wins */
    assert_int_equal(cfg.concurrency, 16);
    assert_int_equal(cfg.max_workers, 8);      /* from the file */
    assert_string_equal(cfg.log_level, "debug"); /* from the file */
    assert_string_equal(cfg.agent, "file.mod:Agent");
    assert_string_equal(cfg.log_format, "json");
    assert_string_equal(cfg.socket, "/tmp/flag.sock");
    assert_int_equal(cfg.restart_on_failure, 0);
    /* the first --python-path replaces the file's list, later ones add */
    assert_int_equal(cfg.n_python_path, 3);
    assert_string_equal(cfg.python_path[0], "/c");
    assert_string_equal(cfg.python_path[1], "/d");
    assert_string_equal(cfg.python_path[2], "/e");
    assert_string_equal(cfg.config_file, path);
}

CFG_TEST(test_args_file_forms)
{
    int rc;
    char *path = (char *)write_temp("{\"minWorkers\": 2, \"maxWorkers\": 9, \"pythonPath\": \"/f1:/f2\"}");
    PARSE("-c", path);
    EXPECT_OK();
    assert_int_equal(cfg.min_workers, 2);
    assert_int_equal(cfg.max_workers, 9);
    assert_int_equal(cfg.n_python_path, 2); /* no --python-path: the file's list stays */
    assert_string_equal(cfg.python_path[1], "/f2");
    assert_string_equal(cfg.config_file, path);

    config_free(&cfg);
    config_init(&cfg);
    char eq[4200];
    snprintf(eq, sizeof(eq), "--config=%s", path);
    PARSE(eq, "--max-workers", "4");
    EXPECT_OK();
    assert_int_equal(cfg.min_workers, 2);
    assert_int_equal(cfg.max_workers, 4);
    assert_string_equal(cfg.config_file, path);

    /* a file that is not there, or is wrong, names itself */
    PARSE("--config", "/nonexistent/agentpool-test.json");
    EXPECT_ERR("/nonexistent/agentpool-test.json: cannot open config file: No such file or directory");
    PARSE("--config=/nonexistent/agentpool-test.json");
    EXPECT_ERR("/nonexistent/agentpool-test.json: cannot open config file: No such file or directory");
    unlink(path);
    path = (char *)write_temp("{\"minWorkers\": 2, \"nope\": 1}");
    char want[4200];
    PARSE("--min-workers", "3", "-c", path);
    snprintf(want, sizeof(want), "%s: unknown setting \"nope\"", path);
    EXPECT_ERR(want);
    unlink(path);
    path = (char *)write_temp("{\"minWorkers\": 2,");
    PARSE("-c", path);
    snprintf(want, sizeof(want), "%s: line 1, column 17: not valid JSON", path);
    EXPECT_ERR(want);
}

CFG_TEST(test_args_value_forms)
{
    int rc;
    PARSE("--min-workers", "2", "--max-workers=6", "--load-balancing-strategy", "random", "--overflow=reject",
          "--socket-mode", "0640", "--message-queue-size=0", "--max-message-bytes", "1024",
          "--max-connections=5", "--max-in-flight-per-connection", "7", "--max-pending-bytes=2048",
          "--listen-backlog", "9", "--shutdown-timeout=11", "--max-retries", "1", "--retry-delay=12",
          "--health-check-interval", "13", "--worker-recycle-interval=14", "--max-messages-per-worker", "15",
          "--timeout=16", "--log-level", "warn", "--log-format=json", "--agent", "a.b:C",
          "--virtualenv=/venv", "--worker-binary", "/bin/w", "--inherit-python-env", "--concurrency=3");
    EXPECT_OK();
    assert_int_equal(act, CONFIG_RUN);
    assert_int_equal(cfg.min_workers, 2);
    assert_int_equal(cfg.max_workers, 6);
    assert_int_equal(cfg.strategy, LB_RANDOM);
    assert_int_equal(cfg.overflow, OVERFLOW_REJECT);
    assert_int_equal(cfg.socket_mode, 0640);
    assert_int_equal(cfg.message_queue_size, 0);
    assert_int_equal(cfg.max_message_bytes, 1024);
    assert_int_equal(cfg.max_connections, 5);
    assert_int_equal(cfg.max_inflight_per_connection, 7);
    assert_int_equal(cfg.max_pending_bytes, 2048);
    assert_int_equal(cfg.listen_backlog, 9);
    assert_int_equal(cfg.shutdown_timeout, 11);
    assert_int_equal(cfg.max_retries, 1);
    assert_int_equal(cfg.retry_delay, 12);
    assert_int_equal(cfg.health_check_interval, 13);
    assert_int_equal(cfg.worker_recycle_interval, 14);
    assert_int_equal(cfg.max_messages_per_worker, 15);
    assert_int_equal(cfg.timeout, 16);
    assert_string_equal(cfg.log_level, "warn");
    assert_string_equal(cfg.log_format, "json");
    assert_string_equal(cfg.agent, "a.b:C");
    assert_string_equal(cfg.virtualenv, "/venv");
    assert_string_equal(cfg.worker_binary, "/bin/w");
    assert_int_equal(cfg.inherit_python_env, 1);
    assert_int_equal(cfg.concurrency, 3);
    assert_null(cfg.config_file);

    /* booleans: bare flag, --no-flag, and an explicit value after '=' */
    PARSE("--no-inherit-python-env", "--no-restart-on-failure");
    EXPECT_OK();
    assert_int_equal(cfg.inherit_python_env, 0);
    assert_int_equal(cfg.restart_on_failure, 0);
    PARSE("--restart-on-failure");
    EXPECT_OK();
    assert_int_equal(cfg.restart_on_failure, 1);
    static const char *const falses[] = {"--restart-on-failure=false", "--restart-on-failure=0",
                                         "--restart-on-failure=no"};
    static const char *const trues[] = {"--restart-on-failure=true", "--restart-on-failure=1",
                                        "--restart-on-failure=yes"};
    for (size_t i = 0; i < 3; i++) {
        PARSE((char *)falses[i]);
        EXPECT_OK();
        assert_int_equal(cfg.restart_on_failure, 0);
        PARSE((char *)trues[i]);
        EXPECT_OK();
        assert_int_equal(cfg.restart_on_failure, 1);
    }
    /* the last of a repeated flag wins; an empty value clears an optional string */
    PARSE("--concurrency", "5", "--concurrency=6", "--virtualenv=");
    EXPECT_OK();
    assert_int_equal(cfg.concurrency, 6);
    assert_null(cfg.virtualenv);
    /* a value that looks like a flag is still the value */
    PARSE("--agent", "--x:y");
    EXPECT_OK();
    assert_string_equal(cfg.agent, "--x:y");
}

CFG_TEST(test_args_python_path)
{
    int rc;
    PARSE("--python-path", "/a", "--python-path=/b:/c", "--python-path", "/d");
    EXPECT_OK();
    assert_int_equal(cfg.n_python_path, 4);
    assert_string_equal(cfg.python_path[0], "/a");
    assert_string_equal(cfg.python_path[1], "/b");
    assert_string_equal(cfg.python_path[2], "/c");
    assert_string_equal(cfg.python_path[3], "/d");
    /* a second parse starts a new list from its first flag */
    PARSE("--python-path", "/z");
    EXPECT_OK();
    assert_int_equal(cfg.n_python_path, 1);
    assert_string_equal(cfg.python_path[0], "/z");
    /* an empty value clears the list */
    PARSE("--python-path=");
    EXPECT_OK();
    assert_int_equal(cfg.n_python_path, 0);
    /* more than 32 in total */
    char *argv[2 + 2 * 33];
    char vals[33][8];
    int argc = 0;
    argv[argc++] = "agentpoold";
    for (int i = 0; i < 33; i++) {
        snprintf(vals[i], sizeof(vals[i]), "/p%d", i);
        argv[argc++] = "--python-path";
        argv[argc++] = vals[i];
    }
    rc = config_parse_args(&cfg, argc - 2, argv, &act, err, sizeof(err));
    EXPECT_OK();
    assert_int_equal(cfg.n_python_path, 32);
    rc = config_parse_args(&cfg, argc, argv, &act, err, sizeof(err));
    EXPECT_ERR("command line: pythonPath: more than 32 directories");
}

CFG_TEST(test_args_actions)
{
    int rc;
    PARSE("--help");
    EXPECT_OK();
    assert_int_equal(act, CONFIG_HELP);
    PARSE("-h");
    EXPECT_OK();
    assert_int_equal(act, CONFIG_HELP);
    PARSE("--version");
    EXPECT_OK();
    assert_int_equal(act, CONFIG_VERSION);
    PARSE("-V");
    EXPECT_OK();
    assert_int_equal(act, CONFIG_VERSION);
    PARSE("--check-config");
    EXPECT_OK();
    assert_int_equal(act, CONFIG_CHECK);
    /* --check-config applies every flag and validates */
    PARSE("--check-config", "--min-workers", "3", "--max-workers", "3");
    EXPECT_OK();
    assert_int_equal(act, CONFIG_CHECK);
    assert_int_equal(cfg.min_workers, 3);
    PARSE("--check-config", "--min-workers", "5", "--max-workers", "4");
    EXPECT_ERR("command line: maxWorkers (4) is below minWorkers (5)");
    PARSE("--min-workers", "0", "--check-config");
    EXPECT_ERR("command line: minWorkers: 0 is out of range (1 to 4096)");
    /* --help and --version win over a configuration that would not validate */
    PARSE("--min-workers", "9", "--max-workers", "1", "--help");
    EXPECT_OK();
    assert_int_equal(act, CONFIG_HELP);
    PARSE("--check-config", "--version");
    EXPECT_OK();
    assert_int_equal(act, CONFIG_VERSION);
    /* with a config file */
    char *path = (char *)write_temp("{\"minWorkers\": 1, \"maxWorkers\": 1}");
    PARSE("--check-config", "-c", path);
    EXPECT_OK();
    assert_int_equal(act, CONFIG_CHECK);
    assert_string_equal(cfg.config_file, path);
}

CFG_TEST(test_args_errors)
{
    int rc;
    PARSE("--bogus");
    EXPECT_ERR("unknown option \"--bogus\" (see --help)");
    PARSE("--bogus=1");
    EXPECT_ERR("unknown option \"--bogus\" (see --help)");
    PARSE("--minWorkers", "2");
    EXPECT_ERR("unknown option \"--minWorkers\" (see --help)");
    PARSE("--no-min-workers");
    EXPECT_ERR("unknown option \"--no-min-workers\" (see --help)");
    PARSE("--no-");
    EXPECT_ERR("unknown option \"--no-\" (see --help)");
    PARSE("--");
    EXPECT_ERR("unknown option \"--\" (see --help)");
    PARSE("--min-workers", "2", "serve");
    EXPECT_ERR("unexpected argument \"serve\" (see --help)");
    PARSE("-x");
    EXPECT_ERR("unexpected argument \"-x\" (see --help)");
    PARSE("-");
    EXPECT_ERR("unexpected argument \"-\" (see --help)");
    /* missing values */
    PARSE("--min-workers");
    EXPECT_ERR("option --min-workers needs a value");
    PARSE("--concurrency", "4", "--agent");
    EXPECT_ERR("option --agent needs a value");
    PARSE("--python-path");
    EXPECT_ERR("option --python-path needs a value");
    PARSE("--config");
    EXPECT_ERR("--config needs a file name");
    PARSE("-c");
    EXPECT_ERR("-c needs a file name");
    /* bad values name the setting and say they came from the command line */
    PARSE("--min-workers", "abc");
    EXPECT_ERR("command line: minWorkers: \"abc\" is not an integer");
    PARSE("--min-workers=");
    EXPECT_ERR("command line: minWorkers: \"\" is not an integer");
    PARSE("--min-workers", " 3");
    EXPECT_ERR("command line: minWorkers: \" 3\" is not an integer");
    PARSE("--min-workers", "3x");
    EXPECT_ERR("command line: minWorkers: \"3x\" is not an integer");
    PARSE("--min-workers", "2.0");
    EXPECT_ERR("command line: minWorkers: \"2.0\" is not an integer");
    PARSE("--min-workers=0");
    EXPECT_ERR("command line: minWorkers: 0 is out of range (1 to 4096)");
    PARSE("--min-workers", "99999999999999999999");
    EXPECT_ERR("command line: minWorkers: \"99999999999999999999\" is not an integer");
    PARSE("--socket-mode", "888");
    EXPECT_ERR("command line: socketMode: \"888\" is not an octal file mode");
    PARSE("--socket-mode=1777");
    EXPECT_ERR("command line: socketMode: 1777 is out of range (0 to 0777)");
    PARSE("--restart-on-failure=maybe");
    EXPECT_ERR("command line: restartOnFailure: \"maybe\" is not true or false");
    PARSE("--load-balancing-strategy", "least_busy");
    EXPECT_ERR("command line: loadBalancingStrategy: \"least_busy\" is not one of round-robin, least-busy, random");
    PARSE("--log-level=trace");
    EXPECT_ERR("command line: logLevel: \"trace\" is not one of debug, info, warn, error");
    PARSE("--socket=");
    EXPECT_ERR("command line: socket: \"\" must be 1 to 107 characters long");
    /* a bare boolean flag does not take the next word as its value */
    PARSE("--restart-on-failure", "false");
    EXPECT_ERR("unexpected argument \"false\" (see --help)");
}

/* --- config_validate ------------------------------------------------------ */

CFG_TEST(test_validate)
{
    int rc;
    cfg.min_workers = 4;
    cfg.max_workers = 4;
    assert_int_equal(config_validate(&cfg, err, sizeof(err)), AP_OK);
    cfg.max_workers = 3;
    assert_int_equal(config_validate(&cfg, err, sizeof(err)), AP_ERR);
    assert_string_equal(err, "command line: maxWorkers (3) is below minWorkers (4)");
    cfg.max_workers = 4;

    static const char *const bad_agents[] = {"echo", "pkg.mod.Agent", ":Agent", "pkg.mod:", ":"};
    for (size_t i = 0; i < AP_ARRAY_LEN(bad_agents); i++) {
        char want[256];
        ap_free(cfg.agent);
        cfg.agent = ap_strdup(bad_agents[i]);
        assert_int_equal(config_validate(&cfg, err, sizeof(err)), AP_ERR);
        snprintf(want, sizeof(want), "command line: agent: \"%s\" must be module:Attribute", bad_agents[i]);
        assert_string_equal(err, want);
    }
    static const char *const good_agents[] = {"m:A", "pkg.mod:Agent", "a:b:c", "pyagents.examples.echo:EchoAgent"};
    for (size_t i = 0; i < AP_ARRAY_LEN(good_agents); i++) {
        ap_free(cfg.agent);
        cfg.agent = ap_strdup(good_agents[i]);
        assert_int_equal(config_validate(&cfg, err, sizeof(err)), AP_OK);
    }

    cfg.max_message_bytes = 4096;
    cfg.max_pending_bytes = 4095;
    assert_int_equal(config_validate(&cfg, err, sizeof(err)), AP_ERR);
    assert_string_equal(err, "command line: maxPendingBytes (4095) is below maxMessageBytes (4096)");
    cfg.max_pending_bytes = 4096;
    assert_int_equal(config_validate(&cfg, err, sizeof(err)), AP_OK);

    /* through the flags */
    PARSE("--agent", "echo");
    EXPECT_ERR("command line: agent: \"echo\" must be module:Attribute");
    PARSE("--agent", "m:A", "--min-workers=8", "--max-workers=7");
    EXPECT_ERR("command line: maxWorkers (7) is below minWorkers (8)");
    PARSE("--max-workers=8", "--max-pending-bytes", "1024", "--max-message-bytes", "2048");
    EXPECT_ERR("command line: maxPendingBytes (1024) is below maxMessageBytes (2048)");
    /* with a file, messages name the file */
    char *path = (char *)write_temp("{\"agent\": \"noColon\"}");
    char want[4200];
    PARSE("--max-pending-bytes", "4096", "-c", path);
    snprintf(want, sizeof(want), "%s: agent: \"noColon\" must be module:Attribute", path);
    EXPECT_ERR(want);
}

/* maxResultBytes: 0 (the default) follows maxMessageBytes wherever that
 * comes from; otherwise 64 to the frame limit, from a file or a flag. */
CFG_TEST(test_max_result_bytes)
{
    int rc;
    assert_int_equal(cfg.max_result_bytes, 0);
    assert_int_equal(config_max_result_bytes(&cfg), 4 * 1024 * 1024);
    expect_load_ok("{\"maxMessageBytes\": 65536}");
    assert_int_equal(config_max_result_bytes(&cfg), 65536);
    expect_load_ok("{\"maxResultBytes\": 1000000}");
    assert_int_equal(cfg.max_result_bytes, 1000000);
    assert_int_equal(config_max_result_bytes(&cfg), 1000000); /* larger than requests may be */
    expect_load_ok("{\"maxResultBytes\": 268435456}");
    assert_int_equal(config_max_result_bytes(&cfg), AP_FRAME_MAX_PAYLOAD);
    expect_load_ok("{\"maxResultBytes\": 0}");
    assert_int_equal(config_max_result_bytes(&cfg), 65536);
    static const refusal r[] = {
        {"{\"maxResultBytes\": 268435457}", "test.json: maxResultBytes: 268435457 is out of range (0 to 268435456)"},
        {"{\"maxResultBytes\": -1}", "test.json: maxResultBytes: -1 is out of range (0 to 268435456)"},
        {"{\"maxResultBytes\": \"4096\"}", "test.json: maxResultBytes: \"4096\" is a string, expected an integer"},
        {"{\"maxResultBytes\": 4096.5}", "test.json: maxResultBytes: 4096.5 is not whole, expected an integer"},
    };
    check_refusals(r, AP_ARRAY_LEN(r));

    /* the floor is config_validate's, since 0 is allowed */
    cfg.max_result_bytes = 63;
    assert_int_equal(config_validate(&cfg, err, sizeof(err)), AP_ERR);
    assert_string_equal(err, "command line: maxResultBytes (63) is below 64 (0: as maxMessageBytes)");
    cfg.max_result_bytes = 64;
    assert_int_equal(config_validate(&cfg, err, sizeof(err)), AP_OK);
    assert_int_equal(config_max_result_bytes(&cfg), 64);

    /* flags: the kebab-case form, over a file */
    config_free(&cfg);
    config_init(&cfg);
    PARSE("--max-result-bytes", "8192", "--max-message-bytes=1024");
    EXPECT_OK();
    assert_int_equal(config_max_result_bytes(&cfg), 8192);
    PARSE("--max-result-bytes=0");
    EXPECT_OK();
    assert_int_equal(config_max_result_bytes(&cfg), 1024);
    PARSE("--max-result-bytes=1");
    EXPECT_ERR("command line: maxResultBytes (1) is below 64 (0: as maxMessageBytes)");
    PARSE("--max-result-bytes", "lots");
    EXPECT_ERR("command line: maxResultBytes: \"lots\" is not an integer");
    char *path = (char *)write_temp("{\"maxResultBytes\": 10}");
    char want[4200];
    PARSE("-c", path, "--max-result-bytes", "100");
    EXPECT_OK();
    assert_int_equal(cfg.max_result_bytes, 100);
    PARSE("-c", path);
    snprintf(want, sizeof(want), "%s: maxResultBytes (10) is below 64 (0: as maxMessageBytes)", path);
    EXPECT_ERR(want);
}

/* --- --help ---------------------------------------------------------------- */

CFG_TEST(test_help_text)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    config_print_help("agentpoold", f);
    fclose(f);
    assert_non_null(buf);
    assert_null(strstr(buf, "\n\n\n"));
    assert_non_null(strstr(buf, "Usage: agentpoold [--config FILE] [OPTIONS]\n"));
    static const char *const flags[] = {
        "--socket ", "--socket-mode ", "--agent ", "--python-path ", "--virtualenv ",
        "--inherit-python-env ", "--worker-binary ", "--min-workers ", "--max-workers ",
        "--concurrency ", "--load-balancing-strategy ", "--message-queue-size ", "--overflow ",
        "--max-message-bytes ", "--max-connections ", "--max-in-flight-per-connection ",
        "--max-pending-bytes ", "--listen-backlog ", "--shutdown-timeout ", "--restart-on-failure ",
        "--max-retries ", "--retry-delay ", "--health-check-interval ", "--worker-recycle-interval ",
        "--max-messages-per-worker ", "--timeout ", "--log-level ", "--log-format ",
        "--check-config", "--help", "--version", "--config FILE",
    };
    for (size_t i = 0; i < AP_ARRAY_LEN(flags); i++) {
        if (strstr(buf, flags[i]) == NULL) {
            print_error("--help does not mention %s\n", flags[i]);
            fail();
        }
    }
    /* defaults are shown */
    assert_non_null(strstr(buf, "[socketMode]"));
    assert_non_null(strstr(buf, "default: 0660\n"));
    assert_non_null(strstr(buf, "default: round-robin\n"));
    assert_non_null(strstr(buf, "default: pyagents.examples.echo:EchoAgent\n"));
    assert_non_null(strstr(buf, "default: (none)\n"));
    free(buf);
}

/* --- regressions: bugs the first version of config.c had ------------------- */

/* config.h: an error names "the key, the value and the file".  Wrong-type
 * refusals other than for integer settings leave the value out. */
CFG_TEST(test_bug_wrong_type_names_value)
{
    static const char *const in[][2] = {
        {"{\"restartOnFailure\": \"yes\"}", "\"yes\""},
        {"{\"restartOnFailure\": 1}", "1"},
        {"{\"agent\": 5}", "5"},
        {"{\"overflow\": false}", "false"},
        {"{\"socketMode\": true}", "true"},
        {"{\"pythonPath\": 3}", "3"},
        {"{\"pythonPath\": [\"/a\", 37]}", "37"},
    };
    for (size_t i = 0; i < AP_ARRAY_LEN(in); i++) {
        assert_int_equal(load(in[i][0]), AP_ERR);
        const char *after_key = strstr(err, ": ");
        after_key = after_key ? strstr(after_key + 2, ": ") : NULL;
        if (after_key == NULL || strstr(after_key, in[i][1]) == NULL) {
            print_error("%s: message \"%s\" does not show the value %s\n", in[i][0], err, in[i][1]);
            fail();
        }
    }
}

/* A number for socketMode that is out of range is reported as its octal
 * rendering, a value that appears nowhere in the file. */
CFG_TEST(test_bug_socket_mode_number_message)
{
    static const char *const in[][2] = {
        {"{\"socketMode\": 660}", "660"},
        {"{\"socketMode\": 512}", "512"},
        {"{\"socketMode\": -1}", "-1"},
    };
    for (size_t i = 0; i < AP_ARRAY_LEN(in); i++) {
        assert_int_equal(load(in[i][0]), AP_ERR);
        if (strstr(err, in[i][1]) == NULL) {
            print_error("message \"%s\" does not show the value %s that the file has\n", err, in[i][1]);
            fail();
        }
    }
}

/* Numbers beyond int64 reach (int64_t)valuedouble, which is undefined
 * behaviour (UBSan: float-cast-overflow); on x86-64 the refusal then says
 * "is not whole" about a whole number. */
CFG_TEST(test_bug_huge_numbers)
{
    static const char *const in[] = {
        "{\"workerRecycleInterval\": 1e19}",
        "{\"minWorkers\": 1e300}",
        "{\"timeout\": -1e19}",
        "{\"maxWorkers\": 1e999}",
    };
    for (size_t i = 0; i < AP_ARRAY_LEN(in); i++) {
        assert_int_equal(load(in[i]), AP_ERR);
        if (strstr(err, "out of range") == NULL) {
            print_error("%s: \"%s\", want an out-of-range refusal\n", in[i], err);
            fail();
        }
    }
}

/* --no-FLAG=VALUE ignores the "no-": --no-restart-on-failure=true turns
 * the setting on.  It should be refused (or at least mean false). */
CFG_TEST(test_bug_negated_flag_with_value)
{
    int rc;
    cfg.restart_on_failure = 0;
    PARSE("--no-restart-on-failure=true");
    assert_true(rc == AP_ERR || cfg.restart_on_failure == 0);
    cfg.restart_on_failure = 1;
    PARSE("--no-restart-on-failure=false");
    assert_true(rc == AP_ERR || cfg.restart_on_failure == 0);
}

/* cJSON is called with require_null_terminated 0, so anything after the
 * object is ignored: a config file holding two objects, or a stray
 * character after a hand edit, loads without a word. */
CFG_TEST(test_bug_trailing_garbage)
{
    assert_int_equal(load("{\"minWorkers\": 2} {\"minWorkers\": 3}"), AP_ERR);
    assert_int_equal(load("{\"minWorkers\": 2}x"), AP_ERR);
    assert_int_equal(load("{\"minWorkers\": 2}\n"), AP_OK); /* whitespace is fine */
}

/* config.h promises a one-line reason, but keys and values are copied
 * into it raw: a key or value holding "\n" (JSON escape) or another
 * control byte splits the message, and the log line that carries it. */
CFG_TEST(test_bug_message_one_line)
{
    static const char *const in[] = {
        "{\"min\\nWorkers\": 1}",
        "{\"logLevel\": \"info\\nFAKE LOG LINE\"}",
        "{\"overflow\": \"a\\u001b[31mred\"}",
    };
    for (size_t i = 0; i < AP_ARRAY_LEN(in); i++) {
        assert_int_equal(load(in[i]), AP_ERR);
        for (const char *c = err; *c; c++) {
            if ((unsigned char)*c < 0x20) {
                print_error("%s: message \"%s\" holds control byte 0x%02x\n", in[i], err, (unsigned char)*c);
                fail();
            }
        }
    }
}

/* maxWorkers not given: its default (3 x CPUs) must not refuse a
 * minWorkers above it (`agentpoold --min-workers 64` on a machine with
 * fewer than 22 CPUs), naming a setting the user never gave; it follows
 * minWorkers up instead. */
CFG_TEST(test_bug_min_workers_alone)
{
    int rc;
    char n[48];
    snprintf(n, sizeof(n), "--min-workers=%lld", (long long)(3 * ncpus() + 1));
    PARSE(n);
    EXPECT_OK();
}

/* --- durations, the environment, provenance ------------------------------- */

/* The index of key in the settings table, as config.source[] uses it:
 * found through --print-config's own output order. */
static int setting_index(const char *key)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    config_print(&cfg, f);
    fclose(f);
    int i = 0, found = -1;
    size_t klen = strlen(key);
    for (char *line = buf; line && *line; i++) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
            found = i;
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    free(buf);
    assert_true(found >= 0);
    return found;
}

/* The --print-config line of key. */
static void printed_line(const char *key, char *out, size_t cap)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    config_print(&cfg, f);
    fclose(f);
    size_t klen = strlen(key);
    out[0] = '\0';
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
            snprintf(out, cap, "%.*s", (int)(nl ? nl - line : (ptrdiff_t)strlen(line)), line);
        line = nl ? nl + 1 : NULL;
    }
    free(buf);
}

CFG_TEST(test_env_names)
{
    char b[96];
    config_env_name("maxWorkers", b, sizeof(b));
    assert_string_equal(b, "AGENTPOOL_MAX_WORKERS");
    config_env_name("socket", b, sizeof(b));
    assert_string_equal(b, AP_SOCKET_ENV);
    config_env_name("maxInFlightPerConnection", b, sizeof(b));
    assert_string_equal(b, "AGENTPOOL_MAX_IN_FLIGHT_PER_CONNECTION");
    config_env_name("hubBlockedWarnMs", b, sizeof(b));
    assert_string_equal(b, "AGENTPOOL_HUB_BLOCKED_WARN_MS");
    config_env_name("env", b, sizeof(b));
    assert_string_equal(b, "AGENTPOOL_ENV");
    /* cut, never overflowed */
    char small[14];
    config_env_name("maxWorkers", small, sizeof(small));
    assert_string_equal(small, "AGENTPOOL_MAX");
}

CFG_TEST(test_durations_take_units)
{
    int rc;
    expect_load_ok("{\"timeout\": \"30s\", \"gracefulTimeout\": \"2m\", \"retryDelay\": \"250ms\", "
                   "\"restartWindow\": \"1h\", \"shutdownTimeout\": 1500}");
    assert_int_equal(cfg.timeout, 30000);
    assert_int_equal(cfg.graceful_timeout, 120000);
    assert_int_equal(cfg.retry_delay, 250);
    assert_int_equal(cfg.restart_window, 3600000);
    assert_int_equal(cfg.shutdown_timeout, 1500);
    expect_load_error("{\"timeout\": \"30 s\"}", "test.json: timeout: \"30 s\": unknown unit \" s\" (known: ms, s, m, h, d)");
    expect_load_error("{\"timeout\": \"2d\"}", "test.json: timeout: 2d is out of range (0 to 86400000 ms)");
    expect_load_error("{\"retryDelay\": \"1.5s\"}",
                      "test.json: retryDelay: \"1.5s\": fractions are not accepted: use a smaller unit (\"1500ms\", not \"1.5s\")");
    /* not a duration: maxWorkers takes no unit */
    expect_load_error("{\"maxWorkers\": \"3s\"}", "test.json: maxWorkers: \"3s\" is a string, expected an integer");
    PARSE("--timeout", "45s", "--idle-timeout=10m");
    EXPECT_OK();
    assert_int_equal(cfg.timeout, 45000);
    assert_int_equal(cfg.idle_timeout, 600000);
    PARSE("--timeout", "5x");
    EXPECT_ERR("command line: timeout: \"5x\": unknown unit \"x\" (known: ms, s, m, h, d)");
}

CFG_TEST(test_small_bare_timeout_warns)
{
    int rc;
    const char *path = write_temp("{\"timeout\": 30, \"gracefulTimeout\": \"30ms\", \"retryDelay\": 5}");
    PARSE("-c", (char *)path, "--shutdown-timeout", "999", "--idle-timeout", "1000");
    EXPECT_OK();
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(config_print_warnings(&cfg, f), 2);
    fclose(f);
    char want[8192];
    /* timeout and shutdownTimeout: bare and under 1000; gracefulTimeout had a
     * unit, retryDelay is no timeout, idleTimeout is 1000 */
    snprintf(want, sizeof(want),
             "agentpoold: warning: flag --shutdown-timeout: shutdownTimeout: 999 is 999 milliseconds; if seconds were "
             "meant, write \"999s\"\n"
             "agentpoold: warning: file %s: timeout: 30 is 30 milliseconds; if seconds were meant, write \"30s\"\n",
             path);
    assert_string_equal(buf, want);
    free(buf);
}

CFG_TEST(test_env_precedence_and_provenance)
{
    int rc;
    char line[4200], want[4200];
    const char *path = write_temp("{\n  // comments are fine\n  \"timeout\": \"1s\", \"maxWorkers\": 9, \"minWorkers\": 2\n}\n");
    setenv("AGENTPOOL_TIMEOUT", "2s", 1);
    setenv("AGENTPOOL_MAX_WORKERS", "8", 1);
    setenv("AGENTPOOL_OVERFLOW", "", 1); /* empty: as if unset */
    PARSE("-c", (char *)path, "--max-workers", "7");
    EXPECT_OK();
    assert_int_equal(cfg.timeout, 2000);        /* environment over file */
    assert_int_equal(cfg.max_workers, 7);       /* flag over environment */
    assert_int_equal(cfg.min_workers, 2);       /* file over default */
    assert_int_equal(cfg.overflow, OVERFLOW_BLOCK);
    assert_int_equal(cfg.source[setting_index("timeout")], CONFIG_SRC_ENV);
    assert_int_equal(cfg.source[setting_index("maxWorkers")], CONFIG_SRC_FLAG);
    assert_int_equal(cfg.source[setting_index("minWorkers")], CONFIG_SRC_FILE);
    assert_int_equal(cfg.source[setting_index("overflow")], CONFIG_SRC_DEFAULT);
    printed_line("timeout", line, sizeof(line));
    assert_string_equal(line, "timeout 2s (environment AGENTPOOL_TIMEOUT)");
    printed_line("maxWorkers", line, sizeof(line));
    assert_string_equal(line, "maxWorkers 7 (flag --max-workers)");
    printed_line("minWorkers", line, sizeof(line));
    snprintf(want, sizeof(want), "minWorkers 2 (file %s)", path);
    assert_string_equal(line, want);
    printed_line("overflow", line, sizeof(line));
    assert_string_equal(line, "overflow block (default)");
    /* a bad value in the environment names the variable */
    config_free(&cfg);
    config_init(&cfg);
    setenv("AGENTPOOL_MIN_WORKERS", "two", 1);
    PARSE("-c", (char *)path);
    EXPECT_ERR("environment AGENTPOOL_MIN_WORKERS: minWorkers: \"two\" is not an integer");
    unsetenv("AGENTPOOL_MIN_WORKERS");
    unsetenv("AGENTPOOL_TIMEOUT");
    unsetenv("AGENTPOOL_MAX_WORKERS");
    unsetenv("AGENTPOOL_OVERFLOW");
}

CFG_TEST(test_print_config_action)
{
    int rc;
    PARSE("--print-config");
    EXPECT_OK();
    assert_int_equal(act, CONFIG_PRINT);
    assert_int_equal(cfg.print_config, 1);
    config_free(&cfg);
    config_init(&cfg);
    PARSE("--print-config", "--check-config");
    EXPECT_OK();
    assert_int_equal(act, CONFIG_CHECK);
    assert_int_equal(cfg.print_config, 1);
}

/* --- named pools ("pools") ------------------------------------------------ */

/* The index of key in the settings table: its line in --print-config of a
 * config without pools (which prints the whole table in order). */
static int key_index(const char *key)
{
    config plain;
    config_init(&plain);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    config_print(&plain, f);
    fclose(f);
    config_free(&plain);
    int i = 0, found = -1;
    size_t klen = strlen(key);
    for (char *line = buf; line && *line; i++) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
            found = i;
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    free(buf);
    assert_true(found >= 0);
    return found;
}

/* config_print's whole output, malloc'ed (not inlined: gcc 12 takes the
 * memstream's buffer for a dangling local). */
__attribute__((noinline)) static char *printed_all(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    config_print(&cfg, f);
    fclose(f);
    return buf;
}

/* config_load_json then config_pools_build; AP_ERR from either. */
static int load_pools(const char *json)
{
    memset(err, 0, sizeof(err));
    if (load(json) != AP_OK)
        return AP_ERR;
    return config_pools_build(&cfg, err, sizeof(err));
}

static void expect_pools_error(const char *json, const char *want)
{
    int rc = load_pools(json);
    if (rc != AP_ERR || strcmp(err, want) != 0) {
        print_error("config %s\n  want AP_ERR \"%s\"\n  have %s \"%s\"\n", json, want,
                    rc == AP_OK ? "AP_OK" : "AP_ERR", err);
        fail();
    }
    assert_null(strchr(err, '\n'));
    /* nothing half-built is left behind */
    assert_int_equal(cfg.npools, 0);
    assert_null(cfg.pools);
    config_free(&cfg);
    config_init(&cfg);
}

static const config *pool_cfg(const char *name)
{
    for (int i = 0; i < cfg.npools; i++)
        if (strcmp(cfg.pools[i].name, name) == 0)
            return cfg.pools[i].cfg;
    fail_msg("no pool %s", name);
    return NULL;
}

CFG_TEST(test_pools_implicit_default)
{
    int rc;
    PARSE("--min-workers", "1");
    EXPECT_OK();
    assert_int_equal(cfg.npools, 1);
    assert_int_equal(cfg.pools_named, 0);
    assert_string_equal(cfg.pools[0].name, "default");
    assert_ptr_equal(cfg.pools[0].cfg, &cfg);
    assert_int_equal(cfg.default_pool, 0);
    config_free(&cfg);
    config_init(&cfg);
    /* defaultPool without "pools": only "default" */
    PARSE("--default-pool", "default");
    EXPECT_OK();
    config_free(&cfg);
    config_init(&cfg);
    PARSE("--default-pool", "writer");
    EXPECT_ERR("command line: defaultPool: \"writer\" is not a pool: without \"pools\" the only pool is \"default\"");
}

CFG_TEST(test_pools_inherit_and_precedence)
{
    int rc;
    char want[4200];
    const char *path = write_temp("{\n"
                                  "  \"timeout\": \"20s\", \"minWorkers\": 1, \"concurrency\": 5,\n"
                                  "  \"agent\": \"m:Top\", \"pythonPath\": [\"/top\"], \"env\": [\"HOME\"],\n"
                                  "  \"pools\": {\n"
                                  "    // file order, not sorted\n"
                                  "    \"zeta\": {\"timeout\": \"5s\", \"minWorkers\": 4, \"concurrency\": 3,\n"
                                  "             \"agent\": \"m:Z\", \"pythonPath\": [\"/z\", \"/z2\"]},\n"
                                  "    \"alpha\": {\"maxWorkers\": 3}\n"
                                  "  }\n"
                                  "}\n");
    setenv("AGENTPOOL_CONCURRENCY", "9", 1);
    setenv("AGENTPOOL_MIN_WORKERS", "2", 1);
    PARSE("-c", (char *)path, "--max-retries", "6", "--timeout", "8s");
    unsetenv("AGENTPOOL_CONCURRENCY");
    unsetenv("AGENTPOOL_MIN_WORKERS");
    EXPECT_OK();
    assert_int_equal(cfg.npools, 2);
    assert_int_equal(cfg.pools_named, 1);
    assert_string_equal(cfg.pools[0].name, "zeta");
    assert_string_equal(cfg.pools[1].name, "alpha");
    assert_int_equal(cfg.default_pool, 0); /* the first pool */
    const config *z = pool_cfg("zeta"), *a = pool_cfg("alpha");
    assert_ptr_not_equal(z, &cfg);
    /* the top level: file < environment < flag */
    assert_int_equal(cfg.timeout, 8000);
    assert_int_equal(cfg.concurrency, 9);
    assert_int_equal(cfg.min_workers, 2);
    /* zeta's own keys win over file, environment and flag */
    assert_int_equal(z->timeout, 5000);
    assert_int_equal(z->concurrency, 3);
    assert_int_equal(z->min_workers, 4);
    assert_string_equal(z->agent, "m:Z");
    assert_int_equal(z->n_python_path, 2);
    assert_string_equal(z->python_path[0], "/z");
    assert_string_equal(z->python_path[1], "/z2");
    /* what zeta does not set, it inherits (a flag's value too) */
    assert_int_equal(z->max_retries, 6);
    assert_int_equal(z->env.set, 1);
    assert_int_equal(z->env.n, 1);
    assert_string_equal(z->env.items[0], "HOME");
    assert_ptr_not_equal(z->env.items, cfg.env.items);
    /* maxWorkers set nowhere follows the pool's own minWorkers up */
    assert_int_equal(z->max_workers, 4 > 3 * ncpus() ? 4 : 3 * ncpus());
    /* alpha inherits everything but maxWorkers */
    assert_int_equal(a->timeout, 8000);
    assert_int_equal(a->concurrency, 9);
    assert_int_equal(a->min_workers, 2);
    assert_int_equal(a->max_workers, 3);
    assert_int_equal(a->max_retries, 6);
    assert_string_equal(a->agent, "m:Top");
    assert_ptr_not_equal(a->agent, cfg.agent);
    assert_int_equal(a->n_python_path, 1);
    assert_string_equal(a->python_path[0], "/top");
    assert_ptr_not_equal(a->python_path[0], cfg.python_path[0]);
    /* the settings of the whole server are the top level's */
    assert_string_equal(a->socket, cfg.socket);
    /* provenance: a pool's own key is CONFIG_SRC_POOL, inherited ones keep the top level's */
    assert_int_equal(z->source[key_index("timeout")], CONFIG_SRC_POOL);
    assert_int_equal(z->source[key_index("maxRetries")], CONFIG_SRC_FLAG);
    assert_int_equal(a->source[key_index("timeout")], CONFIG_SRC_FLAG);
    assert_int_equal(a->source[key_index("concurrency")], CONFIG_SRC_ENV);
    assert_int_equal(a->source[key_index("agent")], CONFIG_SRC_FILE);
    assert_int_equal(a->source[key_index("maxWorkers")], CONFIG_SRC_POOL);
    assert_int_equal(a->source[key_index("overflow")], CONFIG_SRC_DEFAULT);
    /* --print-config: server-wide settings once, then one block per pool */
    char *out = printed_all();
    snprintf(want, sizeof(want), "\nsocket /tmp/agentpool.sock (default)\n");
    assert_null(strstr(out, want)); /* socket is the first line */
    assert_true(strncmp(out, "socket /tmp/agentpool.sock (default)\n", 37) == 0);
    assert_null(strstr(out, "\ntimeout ")); /* no per-pool setting at the top */
    assert_non_null(strstr(out, "\ndefaultPool (none) (default)\n"));
    const char *zb = strstr(out, "\npool zeta:\n"), *ab = strstr(out, "\npool alpha:\n");
    assert_non_null(zb);
    assert_non_null(ab);
    assert_true(zb < ab);
    snprintf(want, sizeof(want), "\n  timeout 5s (pool zeta in %s)\n", path);
    const char *zt = strstr(out, want);
    assert_true(zt && zt > zb && zt < ab);
    const char *at = strstr(out, "\n  timeout 8s (flag --timeout)\n");
    assert_true(at && at > ab);
    snprintf(want, sizeof(want), "\n  agent m:Top (file %s)\n", path);
    assert_true(strstr(out, want) > ab);
    assert_non_null(strstr(out, "\n  concurrency 9 (environment AGENTPOOL_CONCURRENCY)\n"));
    assert_null(strstr(out, "\n  socket ")); /* server-wide settings not repeated per pool */
    free(out);
}

CFG_TEST(test_pools_server_wide_refused)
{
    static const char *const server_wide[] = {
        "socket", "socketMode", "workerBinary", "maxMessageBytes", "streamHeartbeatMs", "maxConnections",
        "adminReserveConnections", "maxConnectionsPerUid", "idleConnectionTimeout", "maxInFlightPerConnection",
        "maxPendingBytes", "maxBufferedBytes", "clientWriteTimeout", "listenBacklog", "shutdownTimeout",
        "metricsListen", "metricsAllowRemote", "user", "group", "allowedUids", "allowedGids", "adminUids",
        "adminGids", "logLevel", "logFormat", "logFile", "accessLog", "defaultPool", "workerUser", "workerGroup",
        "eventHistory", "eventHistoryBytes", "subscriberBufferBytes", "maxSubscribers", "apiKeysFile", "maxTrackedKeys",
        "httpListen", "httpAuth", "httpMaxHeaderBytes", "httpRequestTimeoutMs", "httpIdleTimeoutMs",
    };
    char json[256], want[256];
    for (size_t i = 0; i < AP_ARRAY_LEN(server_wide); i++) {
        assert_true(config_is_server_wide(server_wide[i]));
        snprintf(json, sizeof(json), "{\"pools\": {\"ok\": {}, \"writer\": {\"timeout\": 5, \"%s\": 1}}}", server_wide[i]);
        snprintf(want, sizeof(want),
                 "test.json: pool \"writer\": %s is a setting of the whole server; set it at the top level",
                 server_wide[i]);
        expect_pools_error(json, want);
    }
    /* every other setting --help lists is per pool */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    config_print_help("agentpoold", f);
    fclose(f);
    int per_pool = 0;
    for (char *p = strstr(buf, " ["); p; p = strstr(p + 1, " [")) {
        char key[64];
        if (sscanf(p, " [%63[A-Za-z]]", key) != 1)
            continue;
        int listed = 0;
        for (size_t i = 0; i < AP_ARRAY_LEN(server_wide); i++)
            listed |= strcmp(key, server_wide[i]) == 0;
        assert_int_equal(config_is_server_wide(key), listed);
        per_pool += !listed;
    }
    free(buf);
    assert_true(per_pool > 40);
    assert_false(config_is_server_wide("agent"));
    assert_false(config_is_server_wide("deadLetterFile"));
    assert_false(config_is_server_wide("nope"));
    /* the top level still takes them */
    expect_load_ok("{\"maxConnections\": 10, \"pools\": {\"a\": {}}}");
    /* unknown keys, and "pools" inside a pool */
    expect_pools_error("{\"pools\": {\"a\": {\"nope\": 1}}}", "test.json: pool \"a\": unknown setting \"nope\"");
    expect_pools_error("{\"pools\": {\"a\": {\"pools\": {}}}}", "test.json: pool \"a\": unknown setting \"pools\"");
    /* a bad value inside a pool names the pool */
    expect_pools_error("{\"pools\": {\"a\": {\"timeout\": \"5x\"}}}",
                       "test.json: pool \"a\": timeout: \"5x\": unknown unit \"x\" (known: ms, s, m, h, d)");
    expect_pools_error("{\"pools\": {\"a\": {}, \"b\": {\"minWorkers\": \"two\"}}}",
                       "test.json: pool \"b\": minWorkers: \"two\" is a string, expected an integer");
}

CFG_TEST(test_pools_names)
{
    char json[8192], name[80];
    expect_pools_error("{\"pools\": {}}",
                       "test.json: pools: empty; name at least one pool, or leave \"pools\" out for one pool");
    expect_pools_error("{\"pools\": [\"a\"]}",
                       "test.json: pools: [\"a\"] is an array, expected an object of pools such as {\"writer\": {...}}");
    expect_pools_error("{\"pools\": {\"a\": 1}}", "test.json: pool \"a\": 1 is a number, expected an object of settings");
    expect_pools_error("{\"pools\": {\"a\": {}}, \"pools\": {\"b\": {}}}", "test.json: \"pools\" is given twice");
    expect_pools_error("{\"pools\": {\"a\": {}, \"b\": {}, \"a\": {\"minWorkers\": 1}}}",
                       "test.json: pools: \"a\" is given twice");
    static const char *const bad[] = {"Writer", "", "a b", "a.b", "wr\\u00e9", "a/b", "a\\nb"};
    static const char *const shown[] = {"Writer", "", "a b", "a.b", "wr\xc3\xa9", "a/b", "a\\x0ab"};
    for (size_t i = 0; i < AP_ARRAY_LEN(bad); i++) {
        char want[256];
        snprintf(json, sizeof(json), "{\"pools\": {\"ok\": {}, \"%s\": {}}}", bad[i]);
        snprintf(want, sizeof(want), "test.json: pools: \"%s\" is not a pool name (1 to 64 of a-z, 0-9, _ and -)",
                 shown[i]);
        expect_pools_error(json, want);
    }
    /* 64 characters: fine; 65: refused */
    memset(name, 'a', 64);
    name[64] = '\0';
    snprintf(json, sizeof(json), "{\"pools\": {\"%s\": {}, \"x-y_0\": {}}}", name);
    assert_int_equal(load_pools(json), AP_OK);
    assert_string_equal(cfg.pools[0].name, name);
    assert_string_equal(cfg.pools[1].name, "x-y_0");
    config_free(&cfg);
    config_init(&cfg);
    strcat(name, "a");
    snprintf(json, sizeof(json), "{\"pools\": {\"%s\": {}}}", name);
    char want[256];
    snprintf(want, sizeof(want), "test.json: pools: \"%s\" is not a pool name (1 to 64 of a-z, 0-9, _ and -)", name);
    expect_pools_error(json, want);
    /* CONFIG_MAX_POOLS pools: fine; one more: refused */
    size_t o = (size_t)snprintf(json, sizeof(json), "{\"pools\": {");
    for (int i = 0; i < CONFIG_MAX_POOLS; i++)
        o += (size_t)snprintf(json + o, sizeof(json) - o, "%s\"p%d\": {}", i ? ", " : "", i);
    snprintf(json + o, sizeof(json) - o, "}}");
    assert_int_equal(load_pools(json), AP_OK);
    assert_int_equal(cfg.npools, CONFIG_MAX_POOLS);
    assert_string_equal(cfg.pools[CONFIG_MAX_POOLS - 1].name, "p31");
    config_free(&cfg);
    config_init(&cfg);
    snprintf(json + o, sizeof(json) - o, ", \"one-more\": {}}}");
    snprintf(want, sizeof(want), "test.json: pools: more than %d pools", CONFIG_MAX_POOLS);
    expect_pools_error(json, want);
}

CFG_TEST(test_pools_default_pool)
{
    int rc;
    assert_int_equal(load_pools("{\"pools\": {\"a\": {}, \"b\": {}, \"c\": {}}}"), AP_OK);
    assert_int_equal(cfg.default_pool, 0);
    config_free(&cfg);
    config_init(&cfg);
    assert_int_equal(load_pools("{\"defaultPool\": \"c\", \"pools\": {\"a\": {}, \"b\": {}, \"c\": {}}}"), AP_OK);
    assert_int_equal(cfg.default_pool, 2);
    config_free(&cfg);
    config_init(&cfg);
    expect_pools_error("{\"defaultPool\": \"d\", \"pools\": {\"a\": {}, \"b\": {}, \"c\": {}}}",
                       "test.json: defaultPool: \"d\" is not a pool (pools: a, b, c)");
    /* (config_load_json alone records no file, as config_validate says) */
    expect_pools_error("{\"defaultPool\": \"x\"}",
                       "command line: defaultPool: \"x\" is not a pool: without \"pools\" the only pool is \"default\"");
    /* "default" is no special name once there are pools */
    expect_pools_error("{\"defaultPool\": \"default\", \"pools\": {\"a\": {}}}",
                       "test.json: defaultPool: \"default\" is not a pool (pools: a)");
    /* the flag and the environment set it too */
    const char *path = write_temp("{\"pools\": {\"a\": {}, \"b\": {}}}");
    setenv("AGENTPOOL_DEFAULT_POOL", "a", 1);
    PARSE("-c", (char *)path, "--default-pool", "b");
    unsetenv("AGENTPOOL_DEFAULT_POOL");
    EXPECT_OK();
    assert_int_equal(cfg.default_pool, 1);
}

CFG_TEST(test_pools_dead_letter_file)
{
    int rc;
    char want[4200];
    /* without "pools" the top level's is the pool's */
    assert_int_equal(load_pools("{\"deadLetterFile\": \"/var/x.jsonl\"}"), AP_OK);
    assert_string_equal(cfg.pools[0].cfg->dead_letter_file, "/var/x.jsonl");
    config_free(&cfg);
    config_init(&cfg);
    /* with "pools": never inherited from the top level, refused there */
    expect_pools_error("{\"deadLetterFile\": \"/var/x.jsonl\", \"pools\": {\"a\": {}}}",
                       "test.json: deadLetterFile: set at the top level (file test.json), but with \"pools\" each pool has its "
                       "own: set it inside each pool that needs another file than SOCKET.POOL.deadletter.jsonl");
    const char *path = write_temp("{\"socket\": \"/run/ap.sock\", \"pools\": {\"a\": {}, \"b\": {}}}");
    PARSE("-c", (char *)path, "--dead-letter-file", "/var/x.jsonl");
    snprintf(want, sizeof(want),
             "%s: deadLetterFile: set at the top level (flag --dead-letter-file), but with \"pools\" each pool has its "
             "own: set it inside each pool that needs another file than SOCKET.POOL.deadletter.jsonl",
             path);
    EXPECT_ERR(want);
    config_free(&cfg);
    config_init(&cfg);
    /* a pool's own: its own; the others NULL (the master derives theirs) */
    assert_int_equal(load_pools("{\"pools\": {\"a\": {\"deadLetterFile\": \"/var/a.jsonl\"}, \"b\": {}}}"), AP_OK);
    assert_string_equal(pool_cfg("a")->dead_letter_file, "/var/a.jsonl");
    assert_null(pool_cfg("b")->dead_letter_file);
    config_free(&cfg);
    config_init(&cfg);
    /* two pools, one file */
    expect_pools_error("{\"pools\": {\"a\": {\"deadLetterFile\": \"/var/d.jsonl\"}, \"b\": {}, "
                       "\"c\": {\"deadLetterFile\": \"/var/d.jsonl\"}}}",
                       "test.json: pools \"a\" and \"c\" both write the dead-letter file \"/var/d.jsonl\"");
    /* ... or one pool's file is the one another derives */
    expect_pools_error("{\"socket\": \"/run/ap.sock\", \"pools\": {\"a\": {\"deadLetterFile\": "
                       "\"/run/ap.sock.b.deadletter.jsonl\"}, \"b\": {}}}",
                       "test.json: pools \"a\" and \"b\" both write the dead-letter file "
                       "\"/run/ap.sock.b.deadletter.jsonl\"");
}

CFG_TEST(test_pools_validate_names_the_pool)
{
    int rc;
    char want[4200];
    const char *path = write_temp("{\"minWorkers\": 1, \"pools\": {\"a\": {}, \"b\": {\"minWorkers\": 5, \"maxWorkers\": 2}}}");
    PARSE("-c", (char *)path);
    snprintf(want, sizeof(want), "pool \"b\": %s: maxWorkers (2) is below minWorkers (5)", path);
    EXPECT_ERR(want);
    config_free(&cfg);
    config_init(&cfg);
    /* a top-level maxWorkers is inherited, and checked against the pool's minWorkers */
    path = write_temp("{\"maxWorkers\": 2, \"minWorkers\": 1, \"pools\": {\"a\": {}, \"b\": {\"minWorkers\": 3}}}");
    PARSE("-c", (char *)path);
    snprintf(want, sizeof(want), "pool \"b\": %s: maxWorkers (2) is below minWorkers (3)", path);
    EXPECT_ERR(want);
    config_free(&cfg);
    config_init(&cfg);
    path = write_temp("{\"pools\": {\"a\": {\"agent\": \"noattr\"}}}");
    PARSE("-c", (char *)path);
    snprintf(want, sizeof(want), "pool \"a\": %s: agent: \"noattr\" must be module:Attribute", path);
    EXPECT_ERR(want);
}

CFG_TEST(test_pools_warnings_name_the_pool)
{
    int rc;
    char want[8192];
    const char *path = write_temp("{\"timeout\": 30, \"pools\": {\"a\": {}, \"b\": {\"timeout\": 5}, \"c\": {}}}");
    PARSE("-c", (char *)path);
    EXPECT_OK();
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    /* the top level's once (not once per pool inheriting it), then b's own */
    assert_int_equal(config_print_warnings(&cfg, f), 2);
    fclose(f);
    snprintf(want, sizeof(want),
             "agentpoold: warning: file %s: timeout: 30 is 30 milliseconds; if seconds were meant, write \"30s\"\n"
             "agentpoold: warning: pool b in %s: timeout: 5 is 5 milliseconds; if seconds were meant, write \"5s\"\n",
             path, path);
    assert_string_equal(buf, want);
    free(buf);
}

CFG_TEST(test_pools_load_json_keeps_them_aside)
{
    /* config_load_json checks "pools" and keeps it; config_pools_build builds */
    expect_load_ok("{\"timeout\": 1000, \"pools\": {\"a\": {\"timeout\": 2000}}}");
    assert_int_equal(cfg.npools, 0);
    assert_non_null(cfg.pools_json);
    assert_int_equal(cfg.timeout, 1000);
    /* a second load replaces the kept pools (the later file wins) */
    expect_load_ok("{\"pools\": {\"b\": {}, \"c\": {\"timeout\": 3000}}}");
    assert_int_equal(config_pools_build(&cfg, err, sizeof(err)), AP_OK);
    assert_int_equal(cfg.npools, 2);
    assert_string_equal(cfg.pools[0].name, "b");
    assert_int_equal(cfg.pools[0].cfg->timeout, 1000);
    assert_int_equal(cfg.pools[1].cfg->timeout, 3000);
    assert_null(cfg.pools_json); /* built: the JSON is not kept */
    /* built once: a second call changes nothing */
    config_pool *before = cfg.pools;
    assert_int_equal(config_pools_build(&cfg, err, sizeof(err)), AP_OK);
    assert_ptr_equal(cfg.pools, before);
    assert_int_equal(config_validate(&cfg, err, sizeof(err)), AP_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_defaults),
        T(test_default_socket_from_env),
        T(test_names),
        T(test_load_every_setting),
        T(test_load_bounds_accepted),
        T(test_refuse_unknown_key),
        T(test_refuse_wrong_type),
        T(test_refuse_out_of_range),
        T(test_refuse_bad_enum),
        T(test_refuse_bad_json),
        T(test_python_path_forms),
        T(test_socket_mode_forms),
        T(test_args_override_file),
        T(test_args_file_forms),
        T(test_args_value_forms),
        T(test_args_python_path),
        T(test_args_actions),
        T(test_args_errors),
        T(test_validate),
        T(test_max_result_bytes),
        T(test_help_text),
        T(test_bug_wrong_type_names_value),
        T(test_bug_socket_mode_number_message),
        T(test_bug_huge_numbers),
        T(test_bug_negated_flag_with_value),
        T(test_bug_trailing_garbage),
        T(test_bug_min_workers_alone),
        T(test_bug_message_one_line),
        T(test_env_names),
        T(test_durations_take_units),
        T(test_small_bare_timeout_warns),
        T(test_env_precedence_and_provenance),
        T(test_print_config_action),
        T(test_pools_implicit_default),
        T(test_pools_inherit_and_precedence),
        T(test_pools_server_wide_refused),
        T(test_pools_names),
        T(test_pools_default_pool),
        T(test_pools_dead_letter_file),
        T(test_pools_validate_names_the_pool),
        T(test_pools_warnings_name_the_pool),
        T(test_pools_load_json_keeps_them_aside),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return failed;
}
