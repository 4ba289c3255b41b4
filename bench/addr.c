/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * addr.c - target addresses and non-blocking connects (see addr.h).
 */
#include "addr.h"
#include "ap_common.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

int addr_unix(addr_target *a, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un *un = (struct sockaddr_un *)&a->sa;
    size_t len = strlen(path);
    if (len == 0) {
        snprintf(err, errlen, "--unix: the socket path is empty");
        return AP_ERR;
    }
    if (len >= sizeof(un->sun_path)) {
        snprintf(err, errlen, "--unix %s: path is %zu bytes, Unix sockets allow at most %zu", path, len,
                 sizeof(un->sun_path) - 1);
        return AP_ERR;
    }
    memset(a, 0, sizeof(*a));
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, len + 1);
    a->len = (socklen_t)sizeof(*un);
    a->family = AF_UNIX;
    snprintf(a->desc, sizeof(a->desc), "unix:%s", path);
    snprintf(a->host, sizeof(a->host), "localhost");
    return AP_OK;
}

int addr_redis(addr_target *a, const char *url, char *err, size_t errlen)
{
    static const char scheme[] = "redis://";
    char host[256];
    unsigned long port = 6379, db = 0;
    const char *p = url + sizeof(scheme) - 1;
    char *end;

    if (strncmp(url, scheme, sizeof(scheme) - 1) != 0) {
        snprintf(err, errlen, "--redis %s: expected redis://HOST[:PORT][/DB]", url);
        return AP_ERR;
    }
    size_t hlen = strcspn(p, ":/");
    if (hlen == 0 || hlen >= sizeof(host)) {
        snprintf(err, errlen, "--redis %s: bad host", url);
        return AP_ERR;
    }
    memcpy(host, p, hlen);
    host[hlen] = '\0';
    p += hlen;
    if (*p == ':') {
        errno = 0;
        port = strtoul(p + 1, &end, 10);
        if (errno || end == p + 1 || port == 0 || port > 65535 || (*end != '\0' && *end != '/')) {
            snprintf(err, errlen, "--redis %s: bad port", url);
            return AP_ERR;
        }
        p = end;
    }
    if (*p == '/' && p[1] != '\0') {
        errno = 0;
        db = strtoul(p + 1, &end, 10);
        if (errno || end == p + 1 || *end != '\0' || db > 1000000) {
            snprintf(err, errlen, "--redis %s: bad database number", url);
            return AP_ERR;
        }
    } else if (*p != '\0' && strcmp(p, "/") != 0) {
        snprintf(err, errlen, "--redis %s: expected redis://HOST[:PORT][/DB]", url);
        return AP_ERR;
    }

    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "--redis %s: getaddrinfo: %s", url, gai_strerror(rc));
        return AP_ERR;
    }
    memset(a, 0, sizeof(*a));
    rc = getnameinfo(res->ai_addr, res->ai_addrlen, a->host, sizeof(a->host), NULL, 0, NI_NUMERICHOST);
    a->family = res->ai_family;
    freeaddrinfo(res);
    if (rc != 0) {
        snprintf(err, errlen, "--redis %s: getnameinfo: %s", url, gai_strerror(rc));
        return AP_ERR;
    }
    a->broker = 1;
    a->port = (int)port;
    a->db = (int)db;
    snprintf(a->desc, sizeof(a->desc), "%s", url);
    return AP_OK;
}

int addr_tcp(addr_target *a, const char *hostport, char *err, size_t errlen)
{
    char host[256];
    const char *port;
    const char *colon = strrchr(hostport, ':');

    if (!colon || colon == hostport || colon[1] == '\0') {
        snprintf(err, errlen, "--tcp %s: expected HOST:PORT", hostport);
        return AP_ERR;
    }
    size_t hlen = (size_t)(colon - hostport);
    const char *h = hostport;
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof(host)) {
        snprintf(err, errlen, "--tcp %s: bad host", hostport);
        return AP_ERR;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    port = colon + 1;

    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "--tcp %s: getaddrinfo: %s", hostport, gai_strerror(rc));
        return AP_ERR;
    }
    memset(a, 0, sizeof(*a));
    memcpy(&a->sa, res->ai_addr, res->ai_addrlen);
    a->len = res->ai_addrlen;
    a->family = res->ai_family;
    freeaddrinfo(res);
    snprintf(a->desc, sizeof(a->desc), "tcp:%s", hostport);
    snprintf(a->host, sizeof(a->host), "%s", hostport);
    return AP_OK;
}

int addr_connect(const addr_target *a, int *in_progress, char *err, size_t errlen)
{
    int saved;
    int fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        saved = errno;
        snprintf(err, errlen, "socket(): %s", strerror(saved));
        errno = saved;
        return -1;
    }
    if (a->family != AF_UNIX) {
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    *in_progress = 0;
    while (connect(fd, (const struct sockaddr *)&a->sa, a->len) < 0) {
        if (errno == EINTR)
            continue;
        if (errno == EINPROGRESS) {
            *in_progress = 1;
            return fd;
        }
        saved = errno;
        /* EAGAIN on a Unix socket: the listen backlog is full */
        snprintf(err, errlen, "connect(%s): %s", a->desc, strerror(saved));
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int addr_finish(const addr_target *a, int fd, char *err, size_t errlen)
{
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    if (soerr == 0)
        return AP_OK;
    snprintf(err, errlen, "connect(%s): %s", a->desc, strerror(soerr));
    errno = soerr;
    return AP_ERR;
}
