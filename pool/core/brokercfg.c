/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * brokercfg.c - parses the broker setting's text form (see brokercfg.h).
 * Reads at most BROKERCFG_TEXT_MAX bytes of its input; writes only *out
 * and err.
 */
#include "brokercfg.h"
#include "ap_common.h"

#include <stdio.h>
#include <string.h>

typedef enum { BK_URL, BK_NAME, BK_NUM } bk_kind;

static const struct {
    const char *key;
    bk_kind kind;
    size_t off;
    int64_t min, max;
} members[] = {
    {"url", BK_URL, 0, 0, 0},
    {"stream", BK_NAME, offsetof(brokercfg, stream), 0, 0},
    {"controlStream", BK_NAME, offsetof(brokercfg, control), 0, 0},
    {"group", BK_NAME, offsetof(brokercfg, group), 0, 0},
    {"consumer", BK_NAME, offsetof(brokercfg, consumer), 0, 0},
    {"maxLength", BK_NUM, offsetof(brokercfg, max_length), 1, 1000000000},
    {"claimIntervalMs", BK_NUM, offsetof(brokercfg, claim_interval_ms), 10, 3600000},
    {"claimIdleMs", BK_NUM, offsetof(brokercfg, claim_idle_ms), 100, 86400000},
    {"replyTtl", BK_NUM, offsetof(brokercfg, reply_ttl_ms), 1000, 86400000},
    {"answerTtl", BK_NUM, offsetof(brokercfg, answer_ttl_ms), 1000, 366LL * 86400000},
    {"downAlertMs", BK_NUM, offsetof(brokercfg, down_alert_ms), 0, 86400000},
};

static int bk_name_ok(const char *v, size_t n)
{
    if (n == 0 || n > BROKERCFG_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] <= ' ' || v[i] > '~' || v[i] == ',' || v[i] == '=')
            return 0;
    return 1;
}

/* One NAME=VALUE pair ([p, p+n)). */
static int bk_member(const char *p, size_t n, brokercfg *out, unsigned *seen, char *err, size_t errlen)
{
    const char *eq = memchr(p, '=', n);
    if (eq == NULL) {
        snprintf(err, errlen, "broker: '%.*s' is not NAME=VALUE", (int)(n > 60 ? 60 : n), p);
        return AP_ERR;
    }
    size_t kl = (size_t)(eq - p), vl = n - kl - 1;
    const char *v = eq + 1;
    for (size_t i = 0; i < AP_ARRAY_LEN(members); i++) {
        if (strlen(members[i].key) != kl || memcmp(members[i].key, p, kl) != 0)
            continue;
        if (*seen & (1u << i)) {
            snprintf(err, errlen, "broker: %s is given twice", members[i].key);
            return AP_ERR;
        }
        *seen |= 1u << i;
        switch (members[i].kind) {
        case BK_URL: {
            char url[160], perr[400];
            if (vl < 8 || memcmp(v, "redis://", 8) != 0 || vl >= sizeof(url)) {
                snprintf(err, errlen, "broker: url '%.*s' is not redis://HOST:PORT/DB", (int)(vl > 80 ? 80 : vl), v);
                return AP_ERR;
            }
            memcpy(url, v + 8, vl - 8);
            url[vl - 8] = '\0';
            if (rspec_parse("broker url", url, &out->addr, perr, sizeof(perr)) != AP_OK) {
                snprintf(err, errlen, "%s", perr);
                return AP_ERR;
            }
            return AP_OK;
        }
        case BK_NAME:
            if (!bk_name_ok(v, vl)) {
                snprintf(err, errlen,
                         "broker: %s '%.*s' must be 1 to %d printable characters without spaces, ',' or '='",
                         members[i].key, (int)(vl > 80 ? 80 : vl), v, BROKERCFG_NAME_MAX);
                return AP_ERR;
            }
            memcpy((char *)out + members[i].off, v, vl);
            ((char *)out + members[i].off)[vl] = '\0';
            return AP_OK;
        case BK_NUM: {
            int64_t x = 0;
            int ok = vl > 0 && vl <= 15;
            for (size_t k = 0; ok && k < vl; k++) {
                ok = v[k] >= '0' && v[k] <= '9';
                x = x * 10 + (v[k] - '0');
            }
            if (!ok || x < members[i].min || x > members[i].max) {
                snprintf(err, errlen, "broker: %s '%.*s' is not a whole number from %lld to %lld", members[i].key,
                         (int)(vl > 40 ? 40 : vl), v, (long long)members[i].min, (long long)members[i].max);
                return AP_ERR;
            }
            *(int64_t *)(void *)((char *)out + members[i].off) = x;
            return AP_OK;
        }
        }
    }
    snprintf(err, errlen,
             "broker: unknown member '%.*s' (known: url, stream, controlStream, group, consumer, maxLength, "
             "claimIntervalMs, claimIdleMs, replyTtl, answerTtl, downAlertMs)",
             (int)(kl > 40 ? 40 : kl), p);
    return AP_ERR;
}

int brokercfg_parse(const char *text, brokercfg *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->max_length = 100000;
    out->claim_interval_ms = 1000;
    out->reply_ttl_ms = 600000;
    out->down_alert_ms = 10000;
    size_t len = strnlen(text, BROKERCFG_TEXT_MAX + 1);
    if (len > BROKERCFG_TEXT_MAX) {
        snprintf(err, errlen, "broker: longer than %d bytes", BROKERCFG_TEXT_MAX);
        return AP_ERR;
    }
    unsigned seen = 0;
    for (size_t i = 0; i < len;) {
        const char *comma = memchr(text + i, ',', len - i);
        size_t n = comma ? (size_t)(comma - text - i) : len - i;
        if (n == 0) {
            snprintf(err, errlen, "broker: an empty member (two commas, or one at an end)");
            return AP_ERR;
        }
        if (bk_member(text + i, n, out, &seen, err, errlen) != AP_OK)
            return AP_ERR;
        i += n + (comma != NULL);
        if (comma && i == len) {
            snprintf(err, errlen, "broker: an empty member (two commas, or one at an end)");
            return AP_ERR;
        }
    }
    if (!(seen & 1u)) {
        snprintf(err, errlen, "broker: url is required (url=redis://HOST:PORT/DB)");
        return AP_ERR;
    }
    return AP_OK;
}
