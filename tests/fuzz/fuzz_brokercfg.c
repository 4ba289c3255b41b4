/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_brokercfg.c - libFuzzer target for the "broker" setting's text
 * form (pool/core/brokercfg.c) and the broker's wire helpers that take
 * untrusted bytes (pool/broker/bentry.c: the line fed, a final line's
 * split, entry ids).
 *
 * The input, cut at its first NUL, is parsed as the setting.  A refusal
 * must say why ("broker..."), an accepted one must be within every
 * member's bounds with a numeric address.  The same bytes are fed to
 * bentry_line (the result is the input unchanged, or the object with
 * ,"pool":"p"} in place of its closing brace) and bentry_split_answer at
 * every offset (a span it returns lies inside the line).
 */
#include "bentry.h"
#include "brokercfg.h"
#include "ap_alloc.h"
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
            fprintf(stderr, "fuzz_brokercfg: check failed at line %d: %s\n", __LINE__, #cond);                        \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~' || s[i] == ',' || s[i] == '=')
            return 0;
    return n <= BROKERCFG_NAME_MAX;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char in[BROKERCFG_TEXT_MAX + 64], err[512];
    unsigned char bin[16];
    brokercfg c;
    if (size >= sizeof(in))
        size = sizeof(in) - 1;
    memcpy(in, data, size);
    in[size] = '\0';
    err[0] = '\0';
    if (brokercfg_parse(in, &c, err, sizeof(err)) != AP_OK) {
        CHECK(strncmp(err, "broker", 6) == 0);
    } else {
        CHECK(inet_pton(c.addr.ipv6 ? AF_INET6 : AF_INET, c.addr.host, bin) == 1);
        CHECK(c.addr.port >= 1 && c.addr.port <= 65535);
        CHECK(name_ok(c.stream) && name_ok(c.group) && name_ok(c.consumer) && name_ok(c.control));
        CHECK(c.max_length >= 1 && c.claim_interval_ms >= 10 && c.reply_ttl_ms >= 1000 && c.down_alert_ms >= 0);
        CHECK(c.claim_idle_ms == 0 || c.claim_idle_ms >= 100);
    }
    size_t n = strlen(in), len;
    char *l = bentry_line(in, n, "p", &len);
    int named = len >= 12 && l[0] == '{' && memcmp(l + len - 11, "\"pool\":\"p\"}", 11) == 0;
    CHECK(named || (len == n && memcmp(l, in, n) == 0));
    CHECK(!named || len <= n + 12);
    ap_free(l);
    for (size_t off = 0; off <= n && off < 64; off++) {
        bspan id, rest;
        if (bentry_split_answer(in, n, off, &id, &rest) == AP_OK) {
            CHECK(id.ptr == in + 6 && id.ptr + id.len < in + n && rest.ptr + rest.len == in + n);
        }
    }
    CHECK(!bentry_id_ok(in, n) || (n >= 3 && memchr(in, '-', n) != NULL));
    return 0;
}
