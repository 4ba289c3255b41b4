/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * listener.c - binding, stale-socket detection, accepting (see
 * listener.h for the rules).
 */
#include "listener.h"
#include "connlimit.h"
#include "ap_log.h"
#include "client.h"
#include "privs.h"
#include "sdnotify.h"
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define LISTENER_PAUSE_MS 100

static int fill_addr(struct sockaddr_un *sa, const char *path)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path))
        return -1;
    memcpy(sa->sun_path, path, strlen(path) + 1);
    return 0;
}

/* 1: a live server answers on path; 0: stale or absent; -1: error (err). */
static int probe_existing(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return 0;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "%s exists and is not a socket; refusing to replace it", path);
        return -1;
    }
    struct sockaddr_un sa;
    fill_addr(&sa, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket(AF_UNIX): %s", strerror(errno));
        return -1;
    }
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    int e = errno;
    close(fd);
    if (rc == 0 || e == EAGAIN) {
        snprintf(err, errlen, "another agentpoold is already serving %s; refusing to start", path);
        return 1;
    }
    return 0;
}

int listener_bind_unix(const char *path, long mode, int backlog, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    if (fill_addr(&sa, path) != 0) {
        snprintf(err, errlen, "socket path %s is longer than %zu bytes", path, sizeof(sa.sun_path) - 1);
        return -1;
    }
    int live = probe_existing(path, err, errlen);
    if (live != 0)
        return -1;
    if (unlink(path) == 0)
        ap_info("replaced stale socket file %s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket(AF_UNIX): %s", strerror(errno));
        return -1;
    }
    /* The file is born with its final mode (the umask) and, before a
     * privilege drop, its final owner (the user's effective ids): nothing
     * is ever chmod-ed or chowned by path afterwards, where a swapped-in
     * symbolic link would redirect it. */
    mode_t old = umask(~(mode_t)mode & 0777);
    if (privs_as_user(err, errlen) != AP_OK) {
        umask(old);
        close(fd);
        return -1;
    }
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    int e = errno;
    privs_as_root();
    umask(old);
    if (rc != 0) {
        const char *as = privs_user_shown();
        if (as && (e == EACCES || e == EPERM))
            snprintf(err, errlen, "bind(%s) as %s: %s (the socket's directory must be writable by user)", path, as,
                     strerror(e));
        else
            snprintf(err, errlen, "bind(%s): %s", path, strerror(e));
        close(fd);
        return -1;
    }
    if (listen(fd, backlog) != 0) {
        snprintf(err, errlen, "listen(%s): %s", path, strerror(errno));
        goto fail;
    }
    return fd;
fail:
    close(fd);
    unlink(path);
    return -1;
}

int listener_open(char *err, size_t errlen)
{
    int fd;
    if (sdnotify_listen_fd(&fd, server.cfg->socket, err, errlen) != AP_OK)
        return -1;
    if (fd >= 0) { /* socket activation: systemd's socket and file, never unlinked by us */
        server.owns_socket_file = 0;
        server.listen_fd = fd;
        return 0;
    }
    fd = listener_bind_unix(server.cfg->socket, (long)server.cfg->socket_mode, (int)server.cfg->listen_backlog,
                                err, errlen);
    if (fd < 0)
        return -1;
    server.owns_socket_file = 1;
    server.listen_fd = fd;
    return 0;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    (void)l;
    (void)sa;
    (void)salen;
    (void)arg;
    if (privs_refuse_peer(fd)) /* allowedUids / allowedGids */
        return;
    struct ucred cred = {0, (uid_t)-1, (gid_t)-1};
    socklen_t cl = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0)
        cred = (struct ucred){0, (uid_t)-1, (gid_t)-1}; /* unknown: never an admin, one shared count */
    if (connlimit_refuse(fd, cred.uid, cred.gid)) /* maxConnections, admin reserve, per uid */
        return;
    client_accept(fd, &cred);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (server.listener)
        evconnlistener_enable(server.listener);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    int e = EVUTIL_SOCKET_ERROR();
    (void)arg;
    static uint64_t last_log;
    uint64_t now = ap_now_ms();
    if (now - last_log >= 1000) {
        ap_error("accept() on %s failed: %s; pausing accepts for %d ms", server.cfg->socket, strerror(e),
                 LISTENER_PAUSE_MS);
        last_log = now;
    }
    evconnlistener_disable(l);
    struct timeval tv = {0, LISTENER_PAUSE_MS * 1000};
    evtimer_add(server.listener_retry, &tv);
}

int listener_start(void)
{
    /* Backlog 0: the socket is already listening with listenBacklog;
     * -1 would make libevent call listen(fd, 128) again. */
    server.listener = evconnlistener_new(server.base, accept_cb, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0,
                                         server.listen_fd);
    if (server.listener == NULL) {
        ap_error("evconnlistener_new on %s failed", server.cfg->socket);
        return -1;
    }
    evconnlistener_set_error_cb(server.listener, accept_error_cb);
    server.listener_retry = evtimer_new(server.base, resume_cb, NULL);
    return 0;
}

void listener_close(void)
{
    if (server.listener) {
        evconnlistener_free(server.listener);
        server.listener = NULL;
        server.listen_fd = -1;
    } else if (server.listen_fd >= 0) {
        close(server.listen_fd);
        server.listen_fd = -1;
    }
    if (server.listener_retry) {
        event_free(server.listener_retry);
        server.listener_retry = NULL;
    }
    if (server.owns_socket_file) {
        if (unlink(server.cfg->socket) != 0 && errno != ENOENT)
            ap_warn("could not remove socket file %s: %s", server.cfg->socket, strerror(errno));
        server.owns_socket_file = 0;
    }
}

int listener_bind_tcp(const config_listen_addr *la, const char *setting, const char *shown, int backlog, char *err,
                      size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof(ss));
    if (la->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(la->port);
        memcpy(&sin->sin_addr, la->addr, 4);
        len = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(la->port);
        memcpy(&sin6->sin6_addr, la->addr, 16);
        len = sizeof(*sin6);
    }
    int fd = socket(la->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "%s %s: socket(): %s", setting, shown, strerror(errno));
        return -1;
    }
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (la->family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)) {
        snprintf(err, errlen, "%s %s: setsockopt(): %s", setting, shown, strerror(errno));
        close(fd);
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
        snprintf(err, errlen, "%s %s: bind(): %s", setting, shown, strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, backlog) != 0) {
        snprintf(err, errlen, "%s %s: listen(): %s", setting, shown, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

void listener_describe_tcp(int fd, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
            port = ntohs(sin->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
            port = ntohs(sin6->sin6_port);
        }
    }
    snprintf(buf, cap, ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
}
