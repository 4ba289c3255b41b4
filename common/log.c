/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * log.c - the single logging function (see include/ap_log.h).
 *
 * Each line is formatted into a stack buffer and written with one
 * write(2), so master and workers sharing a descriptor never interleave
 * mid-line.  Text format:
 *   2026-11-24T08:00:00.123Z INFO  [master 1234] message
 * JSON format: {"ts":"...","level":"info","role":"master","pid":1234,"msg":"..."}
 * The state here (role, level, fd, log file, rate limits, output buffer)
 * is set at start-up by each process; afterwards only the log file
 * (reopened on request), the rate-limit table and the output buffer
 * change.  Single-threaded by design: never called from an async signal
 * handler.
 *
 * Output: a worker (and the master before its event loop exists) writes
 * each line at once, blocking.  Once the master calls
 * ap_log_async_start() it never blocks on the log: lines are written
 * without waiting (a private O_NONBLOCK description of a pipe or tty,
 * MSG_DONTWAIT on a socket; a regular file is written as before, it
 * cannot make us wait for a reader) and what the fd does not take waits,
 * whole lines only, in one static buffer of AP_LOG_BUF_MAX bytes that the
 * caller's arm hook gets written when the fd is writable again.  A line
 * that finds the buffer full is dropped and counted (ap_log_dropped());
 * when the buffer empties again one WARN line says how many were lost.
 * A write error other than "would block" drops what waits (counted).  At
 * exit (atexit) what waits is flushed, waiting at most
 * AP_LOG_EXIT_FLUSH_MS in all.  A forked child forgets the buffer.
 *
 * Rate limiting (off unless ap_log_set_ratelimit() turns it on): lines are
 * counted per call site (the format string's address) and message (a
 * hash of the formatted text with each run of digits taken as one
 * digit, so "client-7: ..." and "client-9: ..." are one message while two
 * different texts through one "%s" site are two), in a fixed table of
 * AP_LOG_RL_SITES entries (open addressing over a short probe run; the
 * least recently used entry of the run is evicted, its suppressed count
 * reported first).  Past `burst` lines of one message in one window of
 * `interval` ms its lines are only counted; a call site as a whole gets
 * AP_LOG_RL_SITE_FACTOR x burst per window, so texts that differ in
 * every line cannot flood either.  The first line of the next window, a
 * tick, or eviction reports them in one line, naming the first text seen
 * (or the format, for a whole site's count):
 *   (N similar lines suppressed in the last 10 s: "text")
 * CRIT lines and ap_log_block() are never limited.  No allocation.
 */
#include "ap_log.h"
#include "ap_safefile.h"
#include "ap_json.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define AP_LOG_RL_SITES 128
#define AP_LOG_RL_PROBE 8
#define AP_LOG_RL_SITE_FACTOR 4
#define AP_LOG_RL_SAMPLE 161
#define AP_LOG_PATH_MAX 4096

typedef struct {
    const char *fmt;            /* the call site; NULL: entry free */
    uint64_t hash;              /* of the message; 0: the whole site */
    char sample[AP_LOG_RL_SAMPLE]; /* the first text seen, for the report */
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
    uid_t trusted;              /* besides root and us, who may own the log file */
} logcfg = {"agentpool", AP_LOG_INFO, 2, 0, "", 0, 0, {{0}}, (uid_t)-1};

/* How the buffered output reaches logcfg.fd. */
typedef enum {
    OUT_FILE = 0, /* a regular file (or block device): plain write(2), never "would block" */
    OUT_SOCK,     /* a socket: send(MSG_DONTWAIT) */
    OUT_NB,       /* a pipe or tty reopened through /proc: a private O_NONBLOCK description */
    OUT_POLL      /* could not reopen: write at most PIPE_BUF bytes after poll() says writable */
} out_kind;

static struct {
    int on;                     /* buffering (ap_log_async_start) */
    out_kind kind;
    int wfd;                    /* where lines are written */
    int own;                    /* wfd is ours (OUT_NB) */
    size_t off, len;            /* waiting bytes: buf[off .. off + len) */
    uint64_t dropped;           /* lines lost since start: buffer full or write error */
    uint64_t unreported;        /* lost since the buffer was last empty */
    ap_log_arm_fn arm;
    void *arm_arg;
    char buf[AP_LOG_BUF_MAX];
} lout = {0, OUT_FILE, 2, 0, 0, 0, 0, 0, NULL, NULL, {0}};

static void out_put(const char *line, size_t n);
static void out_attach(void);

static const char *const level_names[] = {"debug", "info", "warn", "error", "crit"};
static const char *const level_tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR", "CRIT "};

void ap_log_init(const char *role, ap_log_level min_level)
{
    snprintf(logcfg.role, sizeof(logcfg.role), "%s", role);
    logcfg.min = min_level;
}

void ap_log_set_level(ap_log_level min_level) { logcfg.min = min_level; }
void ap_log_set_json(int on) { logcfg.json = on; }
void ap_log_set_fd(int fd)
{
    logcfg.fd = fd;
    if (lout.on)
        out_attach();
}

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
    out_put(line, n);
}

/* ---- rate limiting -------------------------------------------------- */

void ap_log_set_ratelimit(unsigned burst, unsigned interval_ms)
{
    logcfg.rl_burst = burst;
    logcfg.rl_interval_ms = interval_ms ? interval_ms : 1;
    memset(logcfg.sites, 0, sizeof(logcfg.sites));
}

/* The message key of text: FNV-1a over it with each run of digits taken
 * as one '0'; never 0 (0 keys a whole call site). */
static uint64_t rl_hash(const char *text, size_t len)
{
    uint64_t h = 14695981039346656037ull;
    int in_digits = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= '0' && c <= '9') {
            if (in_digits)
                continue;
            in_digits = 1;
            c = '0';
        } else {
            in_digits = 0;
        }
        h = (h ^ c) * 1099511628211ull;
    }
    return h ? h : 1;
}

/* Reports what entry s suppressed (if anything) and starts a new window. */
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
                         (unsigned long long)secs, s->sample);
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

/* The table entry for (call site fmt, message hash): found, free, or
 * evicted (LRU of its probe run, its count reported first).  A new
 * entry keeps sample (the text, or the format for a site's entry). */
static rl_site *rl_site_for(const char *fmt, uint64_t hash, const char *sample, size_t slen, uint64_t now_ms)
{
    uintptr_t p = (uintptr_t)fmt;
    size_t h = (size_t)(((p >> 3) ^ (p >> 11) ^ hash ^ (hash >> 29)) * 2654435761u);
    rl_site *victim = NULL;
    for (size_t i = 0; i < AP_LOG_RL_PROBE; i++) {
        rl_site *s = &logcfg.sites[(h + i) % AP_LOG_RL_SITES];
        if (s->fmt == fmt && s->hash == hash)
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
    victim->hash = hash;
    if (slen >= sizeof(victim->sample))
        slen = sizeof(victim->sample) - 1;
    memcpy(victim->sample, sample, slen);
    victim->sample[slen] = '\0';
    victim->window_start_ms = now_ms;
    victim->count = 0;
    victim->suppressed = 0;
    return victim;
}

/* Counts one line against entry (fmt, hash); true when it is over limit
 * (then counted as suppressed there). */
static int rl_over(const char *fmt, uint64_t hash, const char *sample, size_t slen, ap_log_level level,
                   uint64_t limit, uint64_t now)
{
    rl_site *s = rl_site_for(fmt, hash, sample, slen, now);
    s->last_ms = now;
    s->level = level;
    if (now - s->window_start_ms >= logcfg.rl_interval_ms)
        rl_report(s, now);
    if (++s->count <= limit)
        return 0;
    s->suppressed++;
    return 1;
}

/* True when this line (text, from call site fmt) is to be dropped, and
 * counted once: against its message when that is over the burst, else
 * against its site when the site is over AP_LOG_RL_SITE_FACTOR x burst. */
static int rl_suppress(ap_log_level level, const char *fmt, const char *text, size_t len)
{
    uint64_t now = ap_now_ms();
    uint64_t burst = logcfg.rl_burst;
    if (rl_over(fmt, rl_hash(text, len), text, len, level, burst, now))
        return 1;
    return rl_over(fmt, 0, fmt, strlen(fmt), level, burst * AP_LOG_RL_SITE_FACTOR, now);
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

/* ---- non-blocking output -------------------------------------------- */

/* Writes up to n bytes of p to lout.wfd without waiting (but a regular
 * file).  Returns the bytes written, or -1 with errno (EAGAIN: not now). */
static ssize_t out_write(const char *p, size_t n)
{
    ssize_t w;
    for (;;) {
        switch (lout.kind) {
        case OUT_SOCK:
            w = send(lout.wfd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
            break;
        case OUT_POLL: {
            struct pollfd pf = {lout.wfd, POLLOUT, 0};
            int r = poll(&pf, 1, 0);
            if (r == 0) {
                errno = EAGAIN;
                return -1;
            }
            if (r < 0) {
                w = -1;
                break;
            }
            w = write(lout.wfd, p, n < PIPE_BUF ? n : PIPE_BUF);
            break;
        }
        default:
            w = write(lout.wfd, p, n);
            break;
        }
        if (w >= 0 || errno != EINTR)
            return w;
    }
}

/* Lines in n bytes of p (a cut line counts as one). */
static uint64_t out_lines(const char *p, size_t n)
{
    uint64_t k = 0;
    for (const char *e = p + n; p < e && (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
        k++;
    return k ? k : (n ? 1 : 0);
}

/* Drops what waits (after a write error), counted. */
static void out_discard(void)
{
    uint64_t k = out_lines(lout.buf + lout.off, lout.len);
    lout.dropped += k;
    lout.unreported += k;
    lout.off = lout.len = 0;
}

/* The buffer just became empty: says what was lost, if anything. */
static void out_emptied(void)
{
    if (lout.unreported == 0)
        return;
    char msg[160];
    uint64_t k = lout.unreported;
    lout.unreported = 0;
    int n = snprintf(msg, sizeof(msg), "log output: %llu line%s dropped (the log could not take them)",
                     (unsigned long long)k, k == 1 ? "" : "s");
    emit(AP_LOG_WARN, msg, n > 0 && (size_t)n < sizeof(msg) ? (size_t)n : 0);
}

/* Asks the owner of the loop to call ap_log_flush() when lout.wfd is
 * writable. */
static void out_arm(void)
{
    if (lout.arm)
        lout.arm(lout.arm_arg, lout.wfd);
}

size_t ap_log_flush(void)
{
    while (lout.len) {
        ssize_t w = out_write(lout.buf + lout.off, lout.len);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                out_arm();
                return lout.len;
            }
            out_discard(); /* reported once a write succeeds again */
            return 0;
        }
        lout.off += (size_t)w;
        lout.len -= (size_t)w;
    }
    lout.off = 0;
    out_emptied();
    return lout.len;
}

/* One whole line: written now if nothing waits, else (or for what the
 * fd did not take) kept in the buffer; dropped and counted when the
 * buffer has no room. */
static void out_put(const char *line, size_t n)
{
    if (!lout.on) {
        ssize_t w;
        do {
            w = write(logcfg.fd, line, n);
        } while (w < 0 && errno == EINTR);
        return;
    }
    if (lout.len == 0) {
        size_t done = 0;
        while (done < n) {
            ssize_t w = out_write(line + done, n - done);
            if (w < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    break;
                lout.dropped++;
                lout.unreported++;
                return;
            }
            done += (size_t)w;
        }
        if (done == n) {
            out_emptied();
            return;
        }
        line += done;
        n -= done;
        lout.off = 0;
        memcpy(lout.buf, line, n); /* n < one line < AP_LOG_BUF_MAX */
        lout.len = n;
        out_arm();
        return;
    }
    if (lout.off + lout.len + n > sizeof(lout.buf) && lout.off) {
        memmove(lout.buf, lout.buf + lout.off, lout.len);
        lout.off = 0;
    }
    if (lout.off + lout.len + n > sizeof(lout.buf)) {
        lout.dropped++;
        lout.unreported++;
        return;
    }
    memcpy(lout.buf + lout.off + lout.len, line, n);
    lout.len += n;
}

/* Chooses how to write to logcfg.fd (see out_kind); closes a private
 * description made for an earlier fd, telling the arm hook first. */
static void out_attach(void)
{
    if (lout.arm)
        lout.arm(lout.arm_arg, -1); /* its event may watch the old description */
    if (lout.own) {
        close(lout.wfd);
        lout.own = 0;
    }
    lout.wfd = logcfg.fd;
    lout.kind = OUT_FILE;
    struct stat st;
    if (fstat(logcfg.fd, &st) != 0 || S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
        if (lout.len)
            ap_log_flush(); /* a file takes it at once */
        return;
    }
    if (S_ISSOCK(st.st_mode)) {
        lout.kind = OUT_SOCK;
        if (lout.len)
            out_arm();
        return;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", logcfg.fd);
    int fd = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd >= 0) {
        lout.wfd = fd;
        lout.own = 1;
        lout.kind = OUT_NB;
    } else {
        lout.kind = OUT_POLL;
    }
    if (lout.len)
        out_arm(); /* what still waits goes to the new descriptor */
}

/* In a child after fork: the buffer is the parent's to write. */
static void out_forget_in_child(void)
{
    lout.on = 0;
    lout.off = lout.len = 0;
    lout.arm = NULL;
}

static void out_flush_at_exit(void)
{
    ap_log_flush_wait(AP_LOG_EXIT_FLUSH_MS);
}

void ap_log_async_start(ap_log_arm_fn arm, void *arg)
{
    static int registered;
    if (!registered) {
        registered = 1;
        pthread_atfork(NULL, NULL, out_forget_in_child);
        atexit(out_flush_at_exit);
    }
    lout.arm = arm;
    lout.arm_arg = arg;
    if (!lout.on) {
        lout.on = 1;
        out_attach();
    }
}

void ap_log_async_unhook(void)
{
    if (lout.arm)
        lout.arm(lout.arm_arg, -1);
    lout.arm = NULL;
    lout.arm_arg = NULL;
}

size_t ap_log_flush_wait(unsigned timeout_ms)
{
    lout.arm = NULL; /* at exit: the loop is gone or going */
    uint64_t deadline = ap_now_ms() + timeout_ms;
    while (lout.on && ap_log_flush() > 0) {
        uint64_t now = ap_now_ms();
        if (now >= deadline)
            break;
        struct pollfd pf = {lout.wfd, POLLOUT, 0};
        if (poll(&pf, 1, (int)(deadline - now)) == 0)
            break;
    }
    return lout.len;
}

uint64_t ap_log_dropped(void)
{
    return lout.dropped;
}

size_t ap_log_waiting(void)
{
    return lout.len;
}

/* ---- the log file --------------------------------------------------- */

/* Opens path for appending and puts it on logcfg.fd.  A symbolic link,
 * a hard link, anything but a regular file, or a file owned by someone
 * else than root, us or logcfg.trusted is refused (ap_safefile_open):
 * root opens it before the drop, in a directory the service user may
 * write.  AP_ERR with the reason in err; nothing changed then. */
static int open_onto_fd(const char *path, char *err, size_t errlen)
{
    int fd = ap_safefile_open(path, O_WRONLY | O_APPEND | O_CREAT, 0640, logcfg.trusted, err, errlen);
    if (fd < 0)
        return AP_ERR;
    if (lout.on)
        ap_log_flush(); /* what waits belongs to the old file */
    if (fd != logcfg.fd) {
        if (dup2(fd, logcfg.fd) < 0) {
            snprintf(err, errlen, "dup2(%s onto fd %d): %s", path, logcfg.fd, strerror(errno));
            close(fd);
            return AP_ERR;
        }
        close(fd);
    }
    if (lout.on)
        out_attach();
    return AP_OK;
}

int ap_log_open_file(const char *path, uid_t trusted, char *err, size_t errlen)
{
    logcfg.trusted = trusted;
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
    char msg[AP_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(msg))
        n = sizeof(msg) - 1;
    if (logcfg.rl_burst && level < AP_LOG_CRIT && rl_suppress(level, fmt, msg, (size_t)n)) {
        errno = saved;
        return;
    }
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
    out_put(buf, len);
}
