/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * access.c - the master's log files (see access.h).
 *
 * Owns the access log's descriptor and its one buffer (ACCESS_BUF_MAX
 * bytes, allocated once), and tells common/log.c where the main log goes,
 * how it is rate-limited, and when its fd is writable (one EV_WRITE event
 * on the fd common/log.c names, added only while lines wait).
 * Invariants: the buffer never grows; a line is either appended whole or
 * dropped and counted; a write happens only when the buffer is full, at
 * a tick, on reopen and at exit, so the event loop spends at most one
 * write(2) per 64 KiB of lines; the access log's fd is O_NONBLOCK (ours
 * alone), so a write that would wait fails instead and the lines stay
 * buffered.  Write failures are logged once per episode (and the log's
 * own rate limit bounds them further); recovery is logged with the count
 * dropped.  Nothing here waits, except the exit flush (at most
 * AP_LOG_EXIT_FLUSH_MS for each log).  Never reads client sockets, never
 * allocates per line.
 */
#include "access.h"
#include "ap_alloc.h"
#include "ap_defaults.h"
#include "ap_json.h"
#include "ap_log.h"
#include "ap_safefile.h"
#include "client.h"
#include "msg.h"
#include "stream.h"
#include "privs.h"
#include "server.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct access_log {
    int fd;
    int json;
    char *path;
    char *buf;                  /* ACCESS_BUF_MAX bytes */
    size_t len;
    int failing;                /* the last write failed */
    int last_errno;             /* of the last write: 0, EAGAIN (would wait) or an error */
    uint64_t dropped;           /* lines dropped since the failure began */
    uint64_t dropped_total;
};

/* The master's log waiting for its fd (see ap_log_async_start). */
static struct {
    struct event *ev;           /* EV_WRITE on fd; NULL when none */
    int fd;
    uint64_t access_dropped;    /* kept after the access log is closed */
} log_writer = {NULL, -1, 0};

static void log_writable_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    ap_log_flush(); /* re-arms while lines still wait */
}

/* common/log.c's hook: watch fd for writability (fd -1: forget it). */
static void log_arm(void *arg, int fd)
{
    (void)arg;
    if (log_writer.ev && (fd < 0 || fd != log_writer.fd)) {
        event_free(log_writer.ev);
        log_writer.ev = NULL;
        log_writer.fd = -1;
    }
    if (fd < 0)
        return;
    if (log_writer.ev == NULL) {
        log_writer.ev = event_new(server.base, fd, EV_WRITE, log_writable_cb, NULL);
        if (log_writer.ev == NULL)
            return; /* lines wait until the next one finds the fd writable */
        log_writer.fd = fd;
    }
    event_add(log_writer.ev, NULL);
}

/* The access log, opened without following a link planted at its path
 * (ap_safefile_open: root opens it before the drop, in a directory the
 * service user may write).  -1 with err filled. */
static int access_open_fd(const char *path, char *err, size_t errlen)
{
    return ap_safefile_open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK, 0640, privs_service_uid(), err,
                            errlen);
}

int access_start(const config *cfg)
{
    char err[4300];
    if (cfg->log_file && ap_log_open_file(cfg->log_file, privs_service_uid(), err, sizeof(err)) != AP_OK) {
        ap_error("logFile: %s", err);
        return AP_ERR;
    }
    /* Floods (a client sending garbage on many connections) are cut;
     * one line per worker per event (spawn, ready, exit) never is: the
     * burst covers twice the largest pool. */
    unsigned burst = ACCESS_RATELIMIT_BURST;
    if (cfg->max_workers * 2 > (int64_t)burst)
        burst = (unsigned)cfg->max_workers * 2;
    ap_log_set_ratelimit(burst, ACCESS_RATELIMIT_INTERVAL_MS);
    if (cfg->access_log == NULL)
        return AP_OK;
    int fd = access_open_fd(cfg->access_log, err, sizeof(err));
    if (fd < 0) {
        ap_error("accessLog: %s", err);
        return AP_ERR;
    }
    struct access_log *a = ap_calloc(1, sizeof(*a));
    a->fd = fd;
    a->json = strcmp(cfg->log_format, "json") == 0;
    a->path = ap_strdup(cfg->access_log);
    a->buf = ap_malloc(ACCESS_BUF_MAX);
    server.access = a;
    return AP_OK;
}

/* Writes the buffer out (one write, repeated only for EINTR).  Keeps
 * what could not be written. */
static void access_flush(struct access_log *a)
{
    if (a->len == 0)
        return;
    ssize_t w;
    do {
        w = write(a->fd, a->buf, a->len);
    } while (w < 0 && errno == EINTR);
    a->last_errno = w < 0 ? errno : 0;
    if (w < 0) {
        if (!a->failing)
            ap_error("access log %s: write failed: %s; lines are dropped while %zu bytes wait", a->path,
                     errno == EAGAIN ? "it cannot take more now" : strerror(errno), a->len);
        a->failing = 1;
        return;
    }
    if ((size_t)w < a->len)
        memmove(a->buf, a->buf + w, a->len - (size_t)w);
    a->len -= (size_t)w;
    if (a->failing && a->len == 0) {
        ap_info("access log %s: writing again (%llu line%s dropped)", a->path, (unsigned long long)a->dropped,
                a->dropped == 1 ? "" : "s");
        a->failing = 0;
        a->dropped = 0;
    }
}

static void access_append(struct access_log *a, const char *line, size_t n)
{
    if (a->len + n > ACCESS_BUF_MAX)
        access_flush(a);
    if (a->len + n > ACCESS_BUF_MAX) {
        a->dropped++;
        a->dropped_total++;
        log_writer.access_dropped++;
        return;
    }
    memcpy(a->buf + a->len, line, n);
    a->len += n;
}

/* The id as JSON: raw when short, else cut at an escape and character
 * boundary and marked "..." (still a JSON string). */
static size_t access_put_id(char *out, size_t cap, const char *id, size_t len)
{
    if (len == 0)
        return (size_t)snprintf(out, cap, "null");
    if (len <= ACCESS_ID_MAX && len < cap) {
        memcpy(out, id, len);
        return len;
    }
    size_t i = id[0] == '"' ? 1 : 0, end = id[0] == '"' ? len - 1 : len;
    size_t keep = ACCESS_ID_MAX - 5 < cap - 6 ? ACCESS_ID_MAX - 5 : cap - 6;
    while (i < end) {
        unsigned char c = (unsigned char)id[i];
        size_t step = c == '\\' ? (id[i + 1] == 'u' ? 6 : 2) : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (i + step > keep)
            break;
        i += step;
    }
    size_t from = id[0] == '"' ? 1 : 0;
    int n = snprintf(out, cap, "\"%.*s...\"", (int)(i - from), id + from);
    return n > 0 ? (size_t)n : 0;
}

/* Formats and buffers one line.  wname NULL: no worker; run_ms < 0: it
 * never ran. */
static void access_line(struct access_log *a, const char *id, size_t id_len, const char *type, uid_t uid,
                        const char *wname, double wait_ms, double run_ms, unsigned attempt, int code, long chunks)
{
    char line[4096], ts[48], idj[ACCESS_ID_MAX + 8], typej[AP_MAX_TYPE_LEN * 6 + 1], run[32], ch[32] = "";
    ap_log_timestamp(ts, sizeof(ts));
    size_t il = access_put_id(idj, sizeof(idj), id, id_len);
    idj[il] = '\0';
    if (type)
        ap_json_escape(typej, sizeof(typej), type, strlen(type));
    const char *outcome = code < 0 ? "ok" : reply_code_name((reply_code)code);
    if (run_ms >= 0)
        snprintf(run, sizeof(run), "%.3f", run_ms);
    if (chunks >= 0) /* a message that streamed: its chunk count, last */
        snprintf(ch, sizeof(ch), a->json ? ",\"chunks\":%ld" : " chunks=%ld", chunks);
    int n;
    if (a->json)
        n = snprintf(line, sizeof(line),
                     "{\"ts\":\"%s\",\"id\":%s,\"type\":%s%s%s,\"uid\":%u,\"worker\":%s%s%s,\"waitMs\":%.3f,"
                     "\"runMs\":%s,\"attempt\":%u,\"outcome\":\"%s\"%s}\n",
                     ts, idj, type ? "\"" : "", type ? typej : "null", type ? "\"" : "", (unsigned)uid,
                     wname ? "\"" : "", wname ? wname : "null", wname ? "\"" : "", wait_ms,
                     run_ms >= 0 ? run : "null", attempt, outcome, ch);
    else
        n = snprintf(line, sizeof(line),
                     "%s id=%s type=%s%s%s uid=%u worker=%s wait_ms=%.3f run_ms=%s attempt=%u outcome=%s%s\n", ts,
                     idj, type ? "\"" : "", type ? typej : "-", type ? "\"" : "", (unsigned)uid,
                     wname ? wname : "-", wait_ms, run_ms >= 0 ? run : "-", attempt, outcome, ch);
    if (n <= 0 || (size_t)n >= sizeof(line))
        return; /* cannot happen: every field is bounded */
    access_append(a, line, (size_t)n);
}

void access_msg(const msg *m, int code)
{
    uint64_t now = ap_now_ns();
    const client *c = m->client;
    int ran = m->state == MSG_RUNNING && m->worker != NULL;
    uint64_t until = m->sent_ns ? m->sent_ns : now;
    double wait_ms = until > m->accepted_ns ? (double)(until - m->accepted_ns) / 1e6 : 0.0;
    double run_ms = ran ? (now > m->sent_ns ? (double)(now - m->sent_ns) / 1e6 : 0.0) : -1.0;
    access_line(server.access, m->line + m->id_off, m->id_len, m->type, c ? c->peer_uid : (uid_t)-1,
                ran ? m->worker->name : NULL, wait_ms, run_ms, m->attempts, code,
                m->stream ? (long)m->stream->chunks : -1);
}

void access_reject(const client *c, const char *id, size_t id_len, const char *type, reply_code code)
{
    access_line(server.access, id, id_len, type, c->peer_uid, NULL, 0.0, -1.0, 0, (int)code, -1);
}

void access_tick(uint64_t now_ms)
{
    (void)now_ms;
    if (server.access)
        access_flush(server.access);
    ap_log_ratelimit_tick(0);
}

void access_reopen_logs(void)
{
    char err[4300];
    int log_ok = ap_log_reopen() == AP_OK;
    struct access_log *a = server.access;
    int acc_ok = 1;
    if (a) {
        /* Lines logged before the signal belong in the file renamed away. */
        access_flush(a);
        int fd = access_open_fd(a->path, err, sizeof(err));
        if (fd < 0) {
            ap_error("SIGUSR1: could not reopen the access log: %s; still writing to the old one", err);
            acc_ok = 0;
        } else {
            close(a->fd);
            a->fd = fd;
        }
    }
    const char *lf = ap_log_file();
    ap_info("SIGUSR1: log file %s%s, access log %s%s", lf ? lf : "(stderr)",
            lf ? (log_ok ? " reopened" : " kept (reopen failed)") : "", a ? a->path : "(off)",
            a ? (acc_ok ? " reopened" : " kept (reopen failed)") : "");
}

void access_loop_start(void)
{
    ap_log_async_start(log_arm, NULL);
}

void access_loop_stop(void)
{
    ap_log_async_unhook();
}

uint64_t access_log_dropped(void)
{
    return ap_log_dropped();
}

uint64_t access_access_dropped(void)
{
    return log_writer.access_dropped;
}

/* At exit: writes the access buffer, waiting at most AP_LOG_EXIT_FLUSH_MS
 * in all for its fd. */
static void access_flush_wait(struct access_log *a)
{
    uint64_t deadline = ap_now_ms() + AP_LOG_EXIT_FLUSH_MS;
    for (;;) {
        access_flush(a);
        uint64_t now = ap_now_ms();
        if (a->len == 0 || a->last_errno != EAGAIN || now >= deadline)
            return; /* written, a real error (no use waiting), or out of time */
        struct pollfd pf = {a->fd, POLLOUT, 0};
        if (poll(&pf, 1, (int)(deadline - now)) == 0)
            return;
    }
}

void access_stop(void)
{
    struct access_log *a = server.access;
    if (a) {
        access_flush_wait(a);
        if (a->len || a->dropped_total)
            ap_error("access log %s: %zu bytes could not be written at exit, %llu lines dropped in all", a->path,
                     a->len, (unsigned long long)a->dropped_total);
        close(a->fd);
        ap_free(a->buf);
        ap_free(a->path);
        ap_free(a);
        server.access = NULL;
    }
    ap_log_ratelimit_tick(1);
}
