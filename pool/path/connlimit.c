/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * connlimit.c - connection admission by count (see connlimit.h).
 *
 * State: the open connections per uid, as a small array of (uid, count)
 * pairs with no zero counts (distinct uids are few: a linear search is
 * cheaper than a hash and bounded by maxConnections).  The three rules
 * are checked in connlimit_refuse(), in this order: the hard
 * maxConnections, the admin reserve, the per-uid quota.  Called from
 * listener.c (accept) and client.c (open, close).
 */
#include "connlimit.h"
#include "ap_alloc.h"
#include "ap_log.h"
#include "privs.h"
#include "refuse.h"
#include "server.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    uid_t uid;
    int n;
} uid_count;

static struct {
    uid_count *v;
    int len, cap;
} conns_by_uid;

static int connlimit_find(uid_t uid)
{
    for (int i = 0; i < conns_by_uid.len; i++)
        if (conns_by_uid.v[i].uid == uid)
            return i;
    return -1;
}

int connlimit_count(uid_t uid)
{
    int i = connlimit_find(uid);
    return i < 0 ? 0 : conns_by_uid.v[i].n;
}

void connlimit_add(uid_t uid)
{
    int i = connlimit_find(uid);
    if (i < 0) {
        if (conns_by_uid.len == conns_by_uid.cap) {
            conns_by_uid.cap = conns_by_uid.cap ? 2 * conns_by_uid.cap : 16;
            conns_by_uid.v = ap_realloc(conns_by_uid.v, (size_t)conns_by_uid.cap * sizeof(uid_count));
        }
        i = conns_by_uid.len++;
        conns_by_uid.v[i].uid = uid;
        conns_by_uid.v[i].n = 0;
    }
    conns_by_uid.v[i].n++;
}

void connlimit_del(uid_t uid)
{
    int i = connlimit_find(uid);
    if (i < 0)
        return;
    if (--conns_by_uid.v[i].n == 0)
        conns_by_uid.v[i] = conns_by_uid.v[--conns_by_uid.len];
}

void connlimit_free(void)
{
    ap_free(conns_by_uid.v);
    memset(&conns_by_uid, 0, sizeof(conns_by_uid));
}

/* Sends the too_many_connections line saying why, counts and logs. */
static void connlimit_reject(int fd, const char *why, uid_t uid)
{
    char line[320];
    snprintf(line, sizeof(line),
             "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"too_many_connections\",\"message\":\"%s\"}}\n", why);
    server.stats.conns_rejected++;
    server.stats.errors[ERR_TOO_MANY_CONNECTIONS]++;
    uint64_t n = server.stats.conns_rejected;
    if (n == 1 || n % 1000 == 0)
        ap_warn("refused a connection from uid %d: %s (%llu refused so far)", (int)uid, why, (unsigned long long)n);
    refuse_conn(fd, line);
}

int connlimit_refuse(int fd, uid_t uid, gid_t gid)
{
    const config *cfg = server.cfg;
    char why[200];
    /* The reserve never takes the last connection from everyone else. */
    int64_t reserve = cfg->admin_reserve_connections < cfg->max_connections ? cfg->admin_reserve_connections
                                                                            : cfg->max_connections - 1;
    int open = server.nclients + server.http_conns; /* the HTTP front door's count too */
    if (open >= cfg->max_connections) {
        connlimit_reject(fd, "the server has maxConnections connections already", uid);
        return 1;
    }
    if (open >= cfg->max_connections - reserve &&
        !privs_peer_is_admin(uid, gid)) {
        snprintf(why, sizeof(why),
                 "the server has maxConnections connections already (the last %lld are kept for administrators)",
                 (long long)reserve);
        connlimit_reject(fd, why, uid);
        return 1;
    }
    if (cfg->max_connections_per_uid > 0 && connlimit_count(uid) >= cfg->max_connections_per_uid) {
        snprintf(why, sizeof(why), "uid %d has maxConnectionsPerUid (%lld) connections already", (int)uid,
                 (long long)cfg->max_connections_per_uid);
        server.stats.conns_rejected_uid++;
        connlimit_reject(fd, why, uid);
        return 1;
    }
    return 0;
}
