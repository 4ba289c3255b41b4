/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * conn.c - connect to agentpoold's Unix socket (see conn.h).
 *
 * The connect itself is blocking: a Unix socket connect either succeeds
 * at once, fails at once, or (listen backlog full) waits for the master
 * to accept, which is what a CLI wants, bounded by SO_SNDTIMEO.  Only afterwards is the
 * descriptor made non-blocking for exchange.c's poll loop.  The reason
 * for a failure is worded for the person at the terminal: the path, the
 * errno text captured straight after the call, and a hint for the common
 * cases (no socket file, nobody listening, no permission).
 */
#include "conn.h"
#include "ap_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

/* A hint for the errno of a failed connect, or "" when we have none.  A
 * hint ending in a space wants the path appended. */
static const char *conn_hint(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
        return "is agentpoold running? no socket at ";
    case ECONNREFUSED:
        return "the socket exists but nothing accepts on it: is agentpoold running?";
    case EACCES:
    case EPERM:
        return "no permission to use the socket";
    case ENOTSOCK:
        return "that path is not a socket";
    default:
        return "";
    }
}

int conn_open(const char *path, int timeout_ms, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    size_t len = strlen(path);
    int fd = -1;
    int saved;

    if (len == 0) {
        snprintf(err, errlen, "cannot connect: the socket path is empty");
        return AP_ERR;
    }
    if (len >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "cannot connect to %s: path is %zu bytes, Unix sockets allow at most %zu",
                 path, len, sizeof(sa.sun_path) - 1);
        return AP_ERR;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, len + 1);

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot connect to %s: socket(AF_UNIX): %s", path, strerror(errno));
        return AP_ERR;
    }
    if (timeout_ms > 0) {
        /* Bounds the wait in connect() when the listen backlog is full. */
        struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (errno == EINTR)
            continue;
        saved = errno;
        if (saved == EAGAIN || saved == EINPROGRESS) {
            snprintf(err, errlen,
                     "cannot connect to %s: agentpoold accepted nothing for %d ms (listen backlog full)",
                     path, timeout_ms);
            goto err;
        }
        const char *hint = conn_hint(saved);
        struct stat st;
        if (saved == ECONNREFUSED && stat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
            hint = conn_hint(ENOTSOCK);
        /* A hint ending in a space is completed with the path. */
        size_t hl = strlen(hint);
        int with_path = hl > 0 && hint[hl - 1] == ' ';
        snprintf(err, errlen, "cannot connect to %s: %s%s%s%s%s", path, strerror(saved),
                 hl ? " (" : "", hint, with_path ? path : "", hl ? ")" : "");
        goto err;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        snprintf(err, errlen, "connected to %s but fcntl(F_SETFL,O_NONBLOCK) failed: %s", path,
                 strerror(errno));
        goto err;
    }
    return fd;

err:
    close(fd);
    return AP_ERR;
}
