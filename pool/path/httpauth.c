/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * httpauth.c - the HTTP front door's authentication seam (see httpauth.h).
 *
 * Today it knows two policies: a unix: listener or httpAuth "none" lets
 * every request through; httpAuth "keys" on TCP cannot be served yet
 * (httpauth_start refuses it), so httpauth_check answers 401 there
 * should it ever be reached.  API keys plug in here: httpauth_check is
 * the only place a request's Authorization is looked at.
 */
#include "httpauth.h"
#include "ap_common.h"
#include "ap_log.h"
#include "server.h"

#include <stdio.h>
#include <string.h>

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
    snprintf(err, errlen,
             "httpListen has a TCP address and httpAuth is \"keys\", but this agentpoold has no API key support yet: "
             "set httpAuth to \"none\" to serve without authentication (behind a proxy that authenticates), or "
             "listen on unix:/path only");
    return AP_ERR;
}

int httpauth_check(struct evhttp_request *req, int tcp, const struct pool *p, char *why, size_t cap)
{
    (void)req;
    (void)p;
    if (!tcp || auth_none())
        return 0;
    snprintf(why, cap, "an API key is needed (Authorization: Bearer) and none can be checked");
    return 401;
}
