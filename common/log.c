/*
 * log.c - the single logging function (see include/ap_log.h).
 *
 * Each line is formatted into a stack buffer and written with one
 * write(2), so master and workers sharing a descriptor never interleave
 * mid-line.  Text format:
 *   2026-11-24T08:00:00.123Z INFO  [master 1234] message
 * JSON format: {"ts":"...","level":"info","role":"master","pid":1234,"msg":"..."}
 * The state here (role, level, fd, log file, rate limits) is set at
 * start-up by each process; afterwards only the log file (reopened on
 * request) and the rate-limit table change.  Single-threaded by design:
 * never called from an async signal handler.
 *
 * Rate limiting (off unless ap_log_set_ratelimit() turns it on): lines are
 * counted per call site, the format string's address, in a fixed table of
 * AP_LOG_RL_SITES entries (open addressing over a short probe run; the
 * least recently used entry of the run is evicted, its suppressed count
 * reported first).  Past `burst` lines in one window of `interval` ms a
 * site's lines are not even formatted, only counted; the first line of
 * the next window, a tick, or eviction reports them in one line:
 *   (N similar lines suppressed in the last 10 s: "format")
 * CRIT lines and ap_log_block() are never limited.  No allocation.
 */
#include "ap_log.h"
#include "ap_json.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define AP_LOG_RL_SITES 64
#define AP_LOG_RL_PROBE 8
#define AP_LOG_PATH_MAX 4096

typedef struct {
    const char *fmt;            /* the call site; NULL: entry free */
    uint64_t window_start_ms;
    uint64_t last_ms;           /* for eviction */
    uint32_t count;             /* lines in this window, shown or not */
    uint32_t suppressed;        /* lines not shown in this window */
    ap_log_level level;
} rl_site;

static struct {
    char role[32];
    ap_log_level min;
    int fd;
    int json;
    char path[AP_LOG_PATH_MAX + 1]; /* the log file; "" when none */
    unsigned rl_burst;          /* 0: no rate limiting */
    uint64_t rl_interval_ms;
    rl_site sites[AP_LOG_RL_SITES];
} logcfg = {"agentpool", AP_LOG_INFO, 2, 0, "", 0, 0, {{0}}};

static const char *const level_names[] = {"debug", "info", "warn", "error", "crit"};
static const char *const level_tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR", "CRIT "};

void ap_log_init(const char *role, ap_log_level min_level)
{
    snprintf(logcfg.role, sizeof(logcfg.role), "%s", role);
    logcfg.min = min_level;
}

void ap_log_set_level(ap_log_level min_level) { logcfg.min = min_level; }
void ap_log_set_json(int on) { logcfg.json = on; }
void ap_log_set_fd(int fd) { logcfg.fd = fd; }

int ap_log_parse_level(const char *s, ap_log_level *out)
{
    for (size_t i = 0; i < AP_ARRAY_LEN(level_names); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (ap_log_level)i;
            return AP_OK;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = AP_LOG_WARN;
        return AP_OK;
    }
    return AP_ERR;
}

size_t ap_log_timestamp(char *buf, size_t cap)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    int m = snprintf(buf + n, cap - n, ".%03dZ", (int)(tv.tv_usec / 1000));
    return n + (m > 0 && (size_t)m < cap - n ? (size_t)m : 0);
}

static void emit(ap_log_level level, const char *msg, size_t mlen)
{
    char line[AP_LOG_LINE_MAX + 256];
    char ts[48];
    size_t cap = sizeof(line) - 1, n;
    ap_log_timestamp(ts, sizeof(ts));
    if (logcfg.json) {
        int h = snprintf(line, cap, "{\"ts\":\"%s\",\"level\":\"%s\",\"role\":\"%s\",\"pid\":%d,\"msg\":\"",
                         ts, level_names[level], logcfg.role, (int)getpid());
        n = h > 0 ? (size_t)h : 0;
        n += ap_json_escape(line + n, cap - n - 2, msg, mlen);
        line[n++] = '"';
        line[n++] = '}';
    } else {
        int h = snprintf(line, cap, "%s %s [%s %d] ", ts, level_tags[level], logcfg.role, (int)getpid());
        n = h > 0 ? (size_t)h : 0;
        if (mlen > cap - n)
            mlen = cap - n;
        memcpy(line + n, msg, mlen);
        n += mlen;
    }
    line[n++] = '\n';
    ssize_t w;
    do {
        w = write(logcfg.fd, line, n);
    } while (w < 0 && errno == EINTR);
}

/* ---- rate limiting -------------------------------------------------- */

void ap_log_set_ratelimit(unsigned burst, unsigned interval_ms)
{
    logcfg.rl_burst = burst;
    logcfg.rl_interval_ms = interval_ms ? interval_ms : 1;
    memset(logcfg.sites, 0, sizeof(logcfg.sites));
}

/* Reports what site s suppressed (if anything) and starts a new window. */
static void rl_report(rl_site *s, uint64_t now_ms)
{
    if (s->suppressed) {
        char msg[256];
        uint64_t span = now_ms - s->window_start_ms, secs;
        if (span > logcfg.rl_interval_ms)
            span = logcfg.rl_interval_ms;
        secs = span < 1000 ? 1 : (span + 999) / 1000;
        int n = snprintf(msg, sizeof(msg), "(%u similar line%s suppressed in the last %llu s: \"%.160s\")",
                         s->suppressed, s->suppressed == 1 ? "" : "s",
                         (unsigned long long)secs, s->fmt);
        if (n < 0)
            n = 0;
        if ((size_t)n >= sizeof(msg))
            n = sizeof(msg) - 1;
        emit(s->level, msg, (size_t)n);
    }
    s->window_start_ms = now_ms;
    s->count = 0;
    s->suppressed = 0;
}

/* The table entry for call site fmt: found, free, or evicted (LRU of its
 * probe run). */
static rl_site *rl_site_for(const char *fmt, uint64_t now_ms)
{
    uintptr_t p = (uintptr_t)fmt;
    size_t h = (size_t)((p >> 3) ^ (p >> 11)) * 2654435761u;
    rl_site *victim = NULL;
    for (size_t i = 0; i < AP_LOG_RL_PROBE; i++) {
        rl_site *s = &logcfg.sites[(h + i) % AP_LOG_RL_SITES];
        if (s->fmt == fmt)
            return s;
        if (s->fmt == NULL) {
            if (victim == NULL || victim->fmt != NULL)
                victim = s;
        } else if (victim == NULL || (victim->fmt != NULL && s->last_ms < victim->last_ms)) {
            victim = s;
        }
    }
    if (victim->fmt)
        rl_report(victim, now_ms);
    victim->fmt = fmt;
    victim->window_start_ms = now_ms;
    victim->count = 0;
    victim->suppressed = 0;
    return victim;
}

/* True when this line of call site fmt is to be dropped (and counted). */
static int rl_suppress(ap_log_level level, const char *fmt)
{
    uint64_t now = ap_now_ms();
    rl_site *s = rl_site_for(fmt, now);
    s->last_ms = now;
    s->level = level;
    if (now - s->window_start_ms >= logcfg.rl_interval_ms)
        rl_report(s, now);
    if (++s->count <= logcfg.rl_burst)
        return 0;
    s->suppressed++;
    return 1;
}

void ap_log_ratelimit_tick(int all)
{
    if (logcfg.rl_burst == 0)
        return;
    uint64_t now = ap_now_ms();
    for (size_t i = 0; i < AP_LOG_RL_SITES; i++) {
        rl_site *s = &logcfg.sites[i];
        if (s->fmt && s->suppressed && (all || now - s->window_start_ms >= logcfg.rl_interval_ms))
            rl_report(s, now);
    }
}

/* ---- the log file --------------------------------------------------- */

/* Opens path for appending and puts it on logcfg.fd.  AP_ERR with the
 * reason in err; nothing changed then. */
static int open_onto_fd(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(err, errlen, "open(%s): %s", path, strerror(errno));
        return AP_ERR;
    }
    if (fd != logcfg.fd) {
        if (dup2(fd, logcfg.fd) < 0) {
            snprintf(err, errlen, "dup2(%s onto fd %d): %s", path, logcfg.fd, strerror(errno));
            close(fd);
            return AP_ERR;
        }
        close(fd);
    }
    return AP_OK;
}

int ap_log_open_file(const char *path, char *err, size_t errlen)
{
    if (strlen(path) > AP_LOG_PATH_MAX) {
        snprintf(err, errlen, "log file path longer than %d bytes", AP_LOG_PATH_MAX);
        return AP_ERR;
    }
    if (open_onto_fd(path, err, errlen) != AP_OK)
        return AP_ERR;
    snprintf(logcfg.path, sizeof(logcfg.path), "%s", path);
    return AP_OK;
}

const char *ap_log_file(void)
{
    return logcfg.path[0] ? logcfg.path : NULL;
}

int ap_log_reopen(void)
{
    char err[AP_LOG_PATH_MAX + 128];
    if (logcfg.path[0] == '\0')
        return AP_OK;
    if (open_onto_fd(logcfg.path, err, sizeof(err)) != AP_OK) {
        ap_log(AP_LOG_ERROR, "could not reopen the log file: %s; still writing to the old one", err);
        return AP_ERR;
    }
    return AP_OK;
}

/* ---- the entry points ----------------------------------------------- */

void ap_log(ap_log_level level, const char *fmt, ...)
{
    if (level < logcfg.min)
        return;
    int saved = errno;
    if (logcfg.rl_burst && level < AP_LOG_CRIT && rl_suppress(level, fmt)) {
        errno = saved;
        return;
    }
    char msg[AP_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(msg))
        n = sizeof(msg) - 1;
    emit(level, msg, (size_t)n);
    errno = saved;
}

void ap_log_block(ap_log_level level, const char *prefix, const char *text, size_t len)
{
    if (level < logcfg.min)
        return;
    size_t start = 0;
    while (start < len) {
        size_t end = start;
        while (end < len && text[end] != '\n')
            end++;
        char msg[AP_LOG_LINE_MAX];
        int n = snprintf(msg, sizeof(msg), "%s%.*s", prefix, (int)(end - start), text + start);
        if (n < 0)
            n = 0;
        if ((size_t)n >= sizeof(msg))
            n = sizeof(msg) - 1;
        emit(level, msg, (size_t)n);
        start = end + 1;
    }
}

void ap_log_relay(const char *line, size_t len)
{
    char buf[AP_LOG_LINE_MAX + 256];
    if (len > sizeof(buf) - 1)
        len = sizeof(buf) - 1;
    memcpy(buf, line, len);
    buf[len++] = '\n';
    ssize_t w;
    do {
        w = write(logcfg.fd, buf, len);
    } while (w < 0 && errno == EINTR);
}
