/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * rspec.c - parses a Redis address, HOST[:PORT][/DB] (the session
 * store's redis:// spec, the broker's url; see rspec.h for the rules
 * and why names are refused).  Reads at most SPEC_MAX bytes of its input;
 * writes only *out and err.
 */
#include "rspec.h"
#include "ap_common.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* Longer than any valid HOST:PORT/DB. */
#define SPEC_MAX 128

/* Parses the decimal number in [p, end) into *out, at most max.  AP_ERR
 * when empty, not all digits or above max. */
static int parse_num(const char *p, const char *end, long max, long *out)
{
    long v = 0;
    if (p == end)
        return AP_ERR;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return AP_ERR;
        v = v * 10 + (*p - '0');
        if (v > max)
            return AP_ERR;
    }
    *out = v;
    return AP_OK;
}

/* The host in [p, end) (brackets already removed when ipv6) into out:
 * AP_ERR with err filled unless it is a numeric address of its family or
 * localhost. */
static int parse_host(const char *what, const char *rest, const char *p, const char *end, int ipv6, rspec *out, char *err,
                      size_t errlen)
{
    size_t n = (size_t)(end - p);
    unsigned char bin[16];
    char host[RSPEC_HOST_MAX];
    if (n == 0) {
        snprintf(err, errlen, "%s 'redis://%s' names no host (redis://HOST:PORT/DB)", what, rest);
        return AP_ERR;
    }
    if (n >= sizeof(host)) {
        snprintf(err, errlen,
                 "%s 'redis://%s': the host is not a numeric address (an IPv4 address, [IPv6] or localhost; "
                 "names are not resolved)", what,
                 rest);
        return AP_ERR;
    }
    memcpy(host, p, n);
    host[n] = '\0';
    if (!ipv6 && strcmp(host, "localhost") == 0) {
        memcpy(out->host, "127.0.0.1", sizeof("127.0.0.1"));
        out->ipv6 = 0;
        return AP_OK;
    }
    if (inet_pton(ipv6 ? AF_INET6 : AF_INET, host, bin) != 1) {
        snprintf(err, errlen,
                 "%s 'redis://%s': '%s' is not a numeric %s (an IPv4 address, [IPv6] or localhost; "
                 "names are not resolved, so that the loop never waits on DNS)", what,
                 rest, host, ipv6 ? "IPv6 address" : "address");
        return AP_ERR;
    }
    memcpy(out->host, host, n + 1);
    out->ipv6 = ipv6;
    return AP_OK;
}

int rspec_parse(const char *what, const char *rest, rspec *out, char *err, size_t errlen)
{
    size_t len = strnlen(rest, SPEC_MAX + 1);
    if (len > SPEC_MAX) {
        snprintf(err, errlen, "%s 'redis://%.*s...' is too long (redis://HOST:PORT/DB)", what, 40, rest);
        return AP_ERR;
    }
    if (len == 0) {
        snprintf(err, errlen, "%s 'redis://' names no server (redis://HOST:PORT/DB)", what);
        return AP_ERR;
    }
    if (strchr(rest, '@') != NULL) {
        snprintf(err, errlen,
                 "%s 'redis://%s': a user or password is not supported (redis://HOST:PORT/DB, no AUTH)", what,
                 rest);
        return AP_ERR;
    }
    const char *end = rest + len;
    const char *slash = memchr(rest, '/', len);
    const char *hp_end = slash ? slash : end; /* HOST[:PORT] is [rest, hp_end) */
    const char *host_end, *port = NULL;
    int ipv6 = 0;
    const char *host = rest;
    if (rest[0] == '[') {
        const char *close = memchr(rest, ']', (size_t)(hp_end - rest));
        if (close == NULL) {
            snprintf(err, errlen, "%s 'redis://%s': '[' without ']' around an IPv6 address", what, rest);
            return AP_ERR;
        }
        host = rest + 1;
        host_end = close;
        ipv6 = 1;
        if (close + 1 < hp_end) {
            if (close[1] != ':') {
                snprintf(err, errlen, "%s 'redis://%s': expected ':PORT' or '/DB' after ']'", what, rest);
                return AP_ERR;
            }
            port = close + 2;
        }
    } else {
        const char *colon = memchr(rest, ':', (size_t)(hp_end - rest));
        if (colon && memchr(colon + 1, ':', (size_t)(hp_end - colon - 1)) != NULL) {
            snprintf(err, errlen, "%s 'redis://%s': an IPv6 address goes in brackets ([::1]:6379)", what, rest);
            return AP_ERR;
        }
        host_end = colon ? colon : hp_end;
        if (colon)
            port = colon + 1;
    }
    if (parse_host(what, rest, host, host_end, ipv6, out, err, errlen) != AP_OK)
        return AP_ERR;
    long v = RSPEC_DEFAULT_PORT;
    if (port && (parse_num(port, hp_end, 65535, &v) != AP_OK || v == 0)) {
        snprintf(err, errlen, "%s 'redis://%s': the port is not a number from 1 to 65535", what, rest);
        return AP_ERR;
    }
    out->port = (int)v;
    v = 0;
    if (slash && parse_num(slash + 1, end, RSPEC_DB_MAX, &v) != AP_OK) {
        snprintf(err, errlen, "%s 'redis://%s': the database is not a number from 0 to %d", what, rest,
                 RSPEC_DB_MAX);
        return AP_ERR;
    }
    out->db = (int)v;
    return AP_OK;
}

int rspec_format(const rspec *r, char *buf, size_t cap)
{
    return snprintf(buf, cap, r->ipv6 ? "[%s]:%d/%d" : "%s:%d/%d", r->host, r->port, r->db);
}
