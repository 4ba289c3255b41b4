/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_rspec.c - libFuzzer target for the Redis store's address parser
 * (pool/redis/rspec.c).
 *
 * The input, cut at its first NUL, is parsed as what follows
 * "redis://".  A refusal must say why (a non-empty reason that quotes
 * the spec).  An address it accepts must be numeric (inet_pton of its
 * family takes the host), with a port from 1 to 65535 and a database
 * within bounds, and formatting it and parsing that again must give
 * the same address back.
 */
#include "rspec.h"
#include "ap_common.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "fuzz_rspec: check failed at line %d: %s\n", __LINE__, #cond);                            \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char in[512], err[256], buf[128];
    unsigned char bin[16];
    rspec r, again;
    if (size >= sizeof(in))
        size = sizeof(in) - 1;
    memcpy(in, data, size);
    in[size] = '\0';
    err[0] = '\0';
    if (rspec_parse("sessionStore", in, &r, err, sizeof(err)) != AP_OK) {
        CHECK(err[0] != '\0');
        CHECK(strncmp(err, "sessionStore 'redis://", 22) == 0);
        return 0;
    }
    CHECK(inet_pton(r.ipv6 ? AF_INET6 : AF_INET, r.host, bin) == 1);
    CHECK(r.port >= 1 && r.port <= 65535);
    CHECK(r.db >= 0 && r.db <= RSPEC_DB_MAX);
    int n = rspec_format(&r, buf, sizeof(buf));
    CHECK(n > 0 && (size_t)n < sizeof(buf));
    CHECK(rspec_parse("sessionStore", buf, &again, err, sizeof(err)) == AP_OK);
    CHECK(strcmp(again.host, r.host) == 0 && again.ipv6 == r.ipv6 && again.port == r.port && again.db == r.db);
    return 0;
}
