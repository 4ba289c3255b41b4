/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * httpauth.c - the HTTP front door's authentication (see httpauth.h).
 *
 * A request's key is its Authorization: Bearer secret.  For a message
 * (POST .../messages) the secret is not checked here: it becomes the
 * request line's "key" member, and client.c's key gate (apikey_gate:
 * pool rights, maxInFlight, tokensPerMinute, ratePerMinute, the key on
 * the message for its accounting) does for it exactly what it does for
 * a socket request; its refusals come back as unauthorized, forbidden
 * and rate_limited, which httpx.c maps to 401, 403 and 429.  The other
 * endpoints (stats, pools, metrics) only ask whether the key is known and
 * may use the pool named (apikey_check).  Only this file reads the
 * Authorization header; a secret is never logged.  State: none.
 */
#include "httpauth.h"
#include "apikey.h"
#include "ap_common.h"
#include "ap_log.h"
#include "http1.h"
#include "pools.h"
#include "server.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The longest secret taken from a header (scan.c's "key" bound). */
#define SECRET_MAX 256

static int auth_none(void)
{
    return strcmp(server.cfg->http_auth, "none") == 0;
}

int httpauth_start(int has_tcp, char *err, size_t errlen)
{
    if (!has_tcp)
        return AP_OK;
    if (auth_none()) {
        ap_warn("httpAuth is \"none\": the HTTP front door's TCP listeners serve every request without a key; "
                "anyone who can reach them can run agents");
        return AP_OK;
    }
    if (server.cfg->api_keys_file == NULL || server.cfg->api_keys_file[0] == '\0') {
        snprintf(err, errlen,
                 "httpListen has a TCP address and httpAuth is \"keys\", but no apiKeysFile is set: set apiKeysFile "
                 "(docs/operations.md, API keys and usage), or httpAuth \"none\" to serve without authentication "
                 "(behind a proxy that authenticates), or listen on unix:/path only");
        return AP_ERR;
    }
    return AP_OK;
}

/* The Bearer secret of req, or NULL (no Authorization, another scheme,
 * empty or too long). */
static const char *bearer(http1_req *req, size_t *len)
{
    const char *v = http1_find_header(req, "Authorization");
    if (v == NULL || strncasecmp(v, "Bearer ", 7) != 0)
        return NULL;
    v += 7;
    while (*v == ' ')
        v++;
    size_t n = strlen(v);
    while (n && v[n - 1] == ' ')
        n--;
    if (n == 0 || n > SECRET_MAX)
        return NULL;
    *len = n;
    return v;
}

/* A key is needed here and none was given. */
static int key_needed(int tcp, char *why, size_t cap)
{
    if (!tcp || auth_none())
        return 0;
    snprintf(why, cap, "an API key is needed: Authorization: Bearer KEY");
    return 401;
}

int httpauth_message(http1_req *req, int tcp, const char **secret, size_t *len, char *why, size_t cap)
{
    *secret = bearer(req, len);
    if (*secret == NULL) {
        *len = 0;
        return key_needed(tcp, why, cap);
    }
    return 0;
}

int httpauth_check(http1_req *req, int tcp, const struct pool *p, char *why, size_t cap)
{
    size_t len = 0;
    const char *secret = bearer(req, &len);
    if (secret == NULL)
        return key_needed(tcp, why, cap);
    apikey *k;
    apikey_verdict v = apikey_check(secret, len, p ? p->name : "", &k);
    if (v == APIKEY_UNAUTHORIZED) {
        snprintf(why, cap, "unknown API key");
        return 401;
    }
    if (v == APIKEY_FORBIDDEN && p != NULL) {
        snprintf(why, cap, "API key %s may not use pool %s", apikey_id(k), p->name);
        return 403;
    }
    return 0; /* a known key may read what concerns no one pool */
}
