/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sdnotify.c - systemd notify protocol and socket activation (see
 * sdnotify.h).
 *
 * Owns: the notify datagram socket and its address, the watchdog
 * interval, the last STATUS= text, and whether READY=1 / RELOADING=1 are
 * in force.  State lives in one static struct, set once by
 * sdnotify_init() and changed only by the tick and the ready/stopping
 * hooks.  The protocol is one datagram of newline-separated KEY=VALUE
 * lines (sd_notify(3)); an abstract address ("@name") has no trailing
 * NUL in its length.  Never blocks (MSG_DONTWAIT), never retries, never
 * touches the environment.
 */
#include "sdnotify.h"
#include "ap_common.h"
#include "ap_log.h"
#include "health.h"
#include "metrics.h"
#include "reload.h"
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct {
    int fd;                     /* the datagram socket, -1: notifying is off */
    struct sockaddr_un addr;
    socklen_t addrlen;
    uint64_t watchdog_ms;       /* ping interval (half of WATCHDOG_USEC), 0: off */
    uint64_t last_watchdog_ms;
    uint64_t last_status_ms;
    char status[256];           /* the last STATUS= text sent */
    int ready;                  /* READY=1 sent (and not superseded by RELOADING=1) */
    int ready_due;              /* READY=1 wanted but its send failed: the tick retries */
    int reloading;              /* RELOADING=1 sent, READY=1 not yet */
    uint32_t reload_epoch;      /* server.reload_epoch at the last tick */
} notify = {.fd = -1};

/* Parses a decimal environment value; AP_ERR when absent or not one. */
static int env_u64(const char *name, uint64_t *out)
{
    const char *v = getenv(name);
    if (v == NULL || *v < '0' || *v > '9')
        return AP_ERR;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || *end != '\0')
        return AP_ERR;
    *out = n;
    return AP_OK;
}

void sdnotify_init(void)
{
    uint64_t us, pid;
    if (env_u64("WATCHDOG_USEC", &us) == AP_OK && us > 0 &&
        (env_u64("WATCHDOG_PID", &pid) != AP_OK || pid == (uint64_t)getpid())) {
        notify.watchdog_ms = us / 2000 > 0 ? us / 2000 : 1;
        ap_info("systemd watchdog: WATCHDOG_USEC=%llu, pinging every %llu ms", (unsigned long long)us,
                (unsigned long long)notify.watchdog_ms);
    }
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || *path == '\0') {
        notify.watchdog_ms = 0;
        return;
    }
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof(notify.addr.sun_path)) {
        ap_warn("NOTIFY_SOCKET=%s is not an absolute path or @abstract name shorter than %zu bytes; not notifying "
                "systemd", path, sizeof(notify.addr.sun_path));
        notify.watchdog_ms = 0;
        return;
    }
    memset(&notify.addr, 0, sizeof(notify.addr));
    notify.addr.sun_family = AF_UNIX;
    memcpy(notify.addr.sun_path, path, len);
    if (path[0] == '@') {
        notify.addr.sun_path[0] = '\0';
        notify.addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    } else {
        notify.addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    }
    notify.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (notify.fd < 0) {
        ap_warn("socket(AF_UNIX, SOCK_DGRAM) for NOTIFY_SOCKET=%s: %s; not notifying systemd", path, strerror(errno));
        notify.watchdog_ms = 0;
        return;
    }
    ap_info("systemd notify socket %s", path);
}

void sdnotify_free(void)
{
    if (notify.fd >= 0)
        close(notify.fd);
    notify.fd = -1;
}

int sdnotify_send(const char *text)
{
    if (notify.fd < 0)
        return AP_ERR;
    ssize_t n = sendto(notify.fd, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL, (const struct sockaddr *)&notify.addr,
                       notify.addrlen);
    if (n < 0) {
        ap_debug("systemd notify (%.40s): sendto: %s", text, strerror(errno));
        return AP_ERR;
    }
    return AP_OK;
}

/* "ready: 4 workers (3 idle, 1 busy), queue 0/1024, 12.5 msg/s", over
 * every pool. */
static void format_status(char *buf, size_t cap, uint64_t now_ms)
{
    int idle = 0, busy = 0, starting = 0, size = 0;
    size_t depth = 0, capacity = 0;
    double rate = 0;
    POOLS_FOREACH(p) {
        idle += worker_count_in(p, WORKER_READY);
        busy += worker_count_in(p, WORKER_BUSY);
        starting += worker_count_in(p, WORKER_STARTING);
        size += p->pool_size;
        depth += p->queue.depth;
        capacity += p->queue.capacity;
        rate += p->metrics ? metrics_throughput(p->metrics, now_ms, 10) : 0.0;
    }
    char extra[48] = "", pools[32] = "";
    if (starting)
        snprintf(extra, sizeof(extra), ", %d starting", starting);
    if (server.npools > 1)
        snprintf(pools, sizeof(pools), " in %d pools", server.npools);
    snprintf(buf, cap, "%s%s: %d worker%s%s (%d idle, %d busy%s), queue %zu/%zu, %.1f msg/s",
             reload_in_progress() || notify.reloading ? "reloading, " : "", health_status_name(health_server(NULL)), size,
             size == 1 ? "" : "s", pools, idle, busy, extra, depth, capacity, rate);
}

/* Sends `head` (may be "") followed by the current STATUS= line. */
static int send_with_status(const char *head, uint64_t now_ms)
{
    char dgram[sizeof(notify.status) + 128];
    format_status(notify.status, sizeof(notify.status), now_ms);
    snprintf(dgram, sizeof(dgram), "%.100sSTATUS=%s", head, notify.status);
    notify.last_status_ms = now_ms;
    return sdnotify_send(dgram);
}

void sdnotify_ready(void)
{
    if (notify.fd < 0 || notify.ready)
        return;
    if (send_with_status("READY=1\n", ap_now_ms()) != AP_OK) {
        notify.ready_due = 1; /* a full socket buffer: again on the next tick */
        return;
    }
    notify.ready = 1;
    notify.ready_due = 0;
    ap_info("told systemd READY=1");
}

void sdnotify_stopping(void)
{
    if (notify.fd < 0)
        return;
    sdnotify_send("STOPPING=1\nSTATUS=stopping: answering what is queued and in flight");
}

void sdnotify_tick(uint64_t now_ms)
{
    if (notify.fd < 0)
        return;
    if (notify.ready_due)
        sdnotify_ready();
    if (notify.watchdog_ms && now_ms - notify.last_watchdog_ms >= notify.watchdog_ms) {
        notify.last_watchdog_ms = now_ms;
        sdnotify_send("WATCHDOG=1");
    }
    if (server.state >= SERVER_DRAINING)
        return;
    /* A reload is seen from here, not from reload.c: one that started and
     * finished between two ticks shows only as a newer reload_epoch (an
     * aborted one gives its epoch back, and changed nothing). */
    int reloading = reload_in_progress();
    int missed = !reloading && !notify.reloading && notify.ready && server.reload_epoch > notify.reload_epoch;
    notify.reload_epoch = server.reload_epoch;
    if ((reloading || missed) && !notify.reloading) {
        char head[64];
        notify.reloading = 1;
        snprintf(head, sizeof(head), "RELOADING=1\nMONOTONIC_USEC=%llu\n", (unsigned long long)ap_now_ns() / 1000);
        send_with_status(head, now_ms);
        if (!missed)
            return;
    }
    if (!reloading && notify.reloading) {
        notify.reloading = 0;
        send_with_status("READY=1\n", now_ms);
        return;
    }
    if (now_ms - notify.last_status_ms < SDNOTIFY_STATUS_MS)
        return;
    char text[sizeof(notify.status)];
    format_status(text, sizeof(text), now_ms);
    if (strcmp(text, notify.status) != 0)
        send_with_status("", now_ms);
}

/* The passed socket's path for logs: "/run/x.sock", "@name", "(unnamed)". */
static void sock_name(int fd, char *buf, size_t cap)
{
    struct sockaddr_un sa;
    socklen_t len = sizeof(sa);
    memset(&sa, 0, sizeof(sa));
    if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0 || len <= offsetof(struct sockaddr_un, sun_path)) {
        snprintf(buf, cap, "(unnamed)");
        return;
    }
    size_t n = len - offsetof(struct sockaddr_un, sun_path);
    if (sa.sun_path[0] == '\0')
        snprintf(buf, cap, "@%.*s", (int)(n - 1), sa.sun_path + 1);
    else
        snprintf(buf, cap, "%.*s", (int)strnlen(sa.sun_path, n), sa.sun_path);
}

int sdnotify_listen_fd(int *fd_out, const char *want_path, char *err, size_t errlen)
{
    uint64_t pid, nfds;
    *fd_out = -1;
    if (env_u64("LISTEN_PID", &pid) != AP_OK)
        return AP_OK;
    if (pid != (uint64_t)getpid()) {
        ap_debug("LISTEN_PID=%llu is not our pid %d: not socket-activated", (unsigned long long)pid, (int)getpid());
        return AP_OK;
    }
    if (env_u64("LISTEN_FDS", &nfds) != AP_OK || nfds == 0)
        return AP_OK;
    int fd = SDNOTIFY_LISTEN_FDS_START, v = 0;
    socklen_t len = sizeof(v);
    if (fcntl(fd, F_GETFD) < 0) {
        snprintf(err, errlen, "socket activation: LISTEN_FDS=%llu but fd %d is not open: %s",
                 (unsigned long long)nfds, fd, strerror(errno));
        return AP_ERR;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) != 0 || v != AF_UNIX) {
        snprintf(err, errlen, "socket activation: fd %d is not a Unix socket (use ListenStream=/path)", fd);
        return AP_ERR;
    }
    len = sizeof(v);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) != 0 || v != SOCK_STREAM) {
        snprintf(err, errlen, "socket activation: fd %d is not a stream socket (use ListenStream=, not "
                 "ListenDatagram= or ListenSequentialPacket=)", fd);
        return AP_ERR;
    }
    len = sizeof(v);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) != 0 || v != 1) {
        snprintf(err, errlen, "socket activation: fd %d is not listening (Accept=yes is not supported)", fd);
        return AP_ERR;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
        snprintf(err, errlen, "socket activation: fcntl(%d, O_NONBLOCK/FD_CLOEXEC): %s", fd, strerror(errno));
        return AP_ERR;
    }
    char name[sizeof(((struct sockaddr_un *)0)->sun_path) + 2];
    sock_name(fd, name, sizeof(name));
    if (strcmp(name, want_path) != 0)
        ap_warn("socket activation: the passed socket is %s, not the configured socket %s; using the passed one",
                name, want_path);
    if (nfds > 1) {
        ap_warn("socket activation: LISTEN_FDS=%llu; only fd %d is used, the others are left alone",
                (unsigned long long)nfds, fd);
        for (uint64_t i = 1; i < nfds && i < 64; i++)
            fcntl(fd + (int)i, F_SETFD, FD_CLOEXEC);
    }
    ap_info("socket activation: using passed fd %d (%s)", fd, name);
    *fd_out = fd;
    return AP_OK;
}
