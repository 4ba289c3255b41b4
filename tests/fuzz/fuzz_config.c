/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_config.c - libFuzzer target for the config-file parser
 * (pool/core/config.c: config_load_json over cJSON).
 *
 * Each input is a config text, fed with its exact length (no NUL after
 * it) to config_load_json over a freshly config_init'ed struct, then
 * config_free'd, so ASan sees any overread, and its leak checker any
 * string a replaced setting or a refused load left behind.  Beyond
 * memory safety it checks what the header promises: AP_OK or AP_ERR and
 * nothing else; a refusal leaves a non-empty, NUL-terminated message that
 * starts with the origin; an accepted load leaves every enum and bounded
 * setting inside its range and the strings the master relies on set;
 * then config_pools_build makes its pools (each pool's config in range
 * too, names valid, or a refusal that leaves none), and config_validate
 * runs on it.
 */
#include "config.h"
#include "ap_common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "fuzz_config: check failed at line %d: %s\n", __LINE__, \
                    #cond);                                                         \
            abort();                                                                \
        }                                                                           \
    } while (0)

static const char *const log_levels[] = {"debug", "info", "warn", "error"};

static void check_accepted(const config *c)
{
    CHECK(c->min_workers >= 1 && c->min_workers <= 4096);
    CHECK(c->max_workers >= 1 && c->max_workers <= 4096);
    CHECK(c->strategy >= LB_ROUND_ROBIN && c->strategy <= LB_RANDOM);
    CHECK(c->overflow == OVERFLOW_BLOCK || c->overflow == OVERFLOW_REJECT);
    CHECK(strcmp(config_strategy_name(c->strategy), "?") != 0);
    CHECK(strcmp(config_overflow_name(c->overflow), "?") != 0);
    CHECK(c->socket_mode >= 0 && c->socket_mode <= 0777);
    CHECK(c->concurrency >= 1);
    CHECK(c->message_queue_size >= 0);
    CHECK(c->max_message_bytes >= 64);
    CHECK(c->max_connections >= 1);
    CHECK(c->listen_backlog >= 1 && c->listen_backlog <= 65535);
    CHECK(c->restart_on_failure == 0 || c->restart_on_failure == 1);
    CHECK(c->inherit_python_env == 0 || c->inherit_python_env == 1);
    CHECK(c->socket != NULL && c->socket[0] != '\0' && strlen(c->socket) <= 107);
    CHECK(c->agent != NULL && c->agent[0] != '\0');
    CHECK(c->log_format != NULL &&
          (strcmp(c->log_format, "text") == 0 || strcmp(c->log_format, "json") == 0));
    CHECK(c->log_level != NULL);
    int known = 0;
    for (size_t i = 0; i < AP_ARRAY_LEN(log_levels); i++)
        known |= strcmp(c->log_level, log_levels[i]) == 0;
    CHECK(known);
    CHECK(c->n_python_path >= 0 && c->n_python_path <= CONFIG_MAX_PYTHON_PATH);
    for (int i = 0; i < c->n_python_path; i++)
        CHECK(c->python_path[i] != NULL && c->python_path[i][0] != '\0');
    CHECK(c->virtualenv == NULL || c->virtualenv[0] != '\0');
    CHECK(c->worker_binary == NULL || c->worker_binary[0] != '\0');
}

/* Built pools: 1 to CONFIG_MAX_POOLS, valid names, each a complete
 * config of its own (or the top level itself for the implicit one). */
static void check_pools(const config *c)
{
    CHECK(c->npools >= 1 && c->npools <= CONFIG_MAX_POOLS);
    CHECK(c->default_pool >= 0 && c->default_pool < c->npools);
    CHECK(c->pools_named || (c->npools == 1 && c->pools[0].cfg == c && strcmp(c->pools[0].name, "default") == 0));
    for (int i = 0; c->pools_named && i < c->npools; i++) {
        size_t n = strlen(c->pools[i].name);
        CHECK(n >= 1 && n <= CONFIG_POOL_NAME_MAX && strspn(c->pools[i].name, CONFIG_POOL_NAME_CHARS) == n);
        CHECK(c->pools[i].cfg != NULL && c->pools[i].cfg != c);
        check_accepted(c->pools[i].cfg);
        CHECK(strcmp(c->pools[i].cfg->socket, c->socket) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char origin[] = "fuzz.json";
    char err[512];
    config c;

    config_init(&c);
    memset(err, 0x7f, sizeof(err));
    int rc = config_load_json(&c, (const char *)data, size, origin, err, sizeof(err));
    CHECK(rc == AP_OK || rc == AP_ERR);
    if (rc == AP_ERR) {
        CHECK(memchr(err, '\0', sizeof(err)) != NULL);
        CHECK(err[0] != '\0');
        CHECK(strncmp(err, origin, sizeof(origin) - 1) == 0);
    } else {
        check_accepted(&c);
        char verr[512];
        verr[0] = '\0';
        rc = config_pools_build(&c, verr, sizeof(verr));
        CHECK(rc == AP_OK || (rc == AP_ERR && verr[0] != '\0' && c.npools == 0 && c.pools == NULL));
        if (rc == AP_OK)
            check_pools(&c);
        verr[0] = '\0';
        rc = config_validate(&c, verr, sizeof(verr));
        CHECK(rc == AP_OK || (rc == AP_ERR && verr[0] != '\0'));
    }
    config_free(&c);
    return 0;
}
