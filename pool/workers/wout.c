/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * wout.c - worker stdout and stderr into the master's log (see wout.h).
 *
 * One wout_entry per worker table entry (same index), holding the two
 * streams of the process that entry runs now.  Each stream has a fixed
 * buffer of WOUT_LINE_MAX bytes for the line being assembled; a line that
 * outgrows it is logged in pieces of at most WOUT_TEXT_MAX bytes, marked
 * "(part N)" and, on the piece that ends it, "(part N, last)".  Text is
 * cleaned before it is logged: control characters but tab, and bytes
 * that are not UTF-8, become '?', so a worker cannot forge log lines or
 * break the JSON format; a trailing CR is dropped; blank lines are not
 * logged.  Levels: stdout info, stderr warn, except a line that starts
 * with a Python logging level name ("WARNING mod: ...", "ERROR:root:...",
 * what the worker's own logging set-up writes) is logged at that level.
 * The worker's own ap_log lines come on a third pipe, at AP_LOG_FD in the
 * worker, that print() and Python's logging never reach: only there is a
 * line in the log's own format carrying this worker's role and pid
 * relayed verbatim (ap_log_relay).  The same text on stdout or stderr is
 * agent output (a client's input echoed, say) and is logged as such,
 * with its "worker-N (pid P) stderr:" prefix, so it cannot pass for the
 * worker's own line.
 * Every logged line, relayed or not, takes a token from the entry's
 * bucket (workerLogRate per second, workerLogBurst at most; rate 0: no
 * limit); without one it is dropped and counted for the slot and in
 * total, and a one-shot timer logs the count at most once a second.
 * A read callback reads at most WOUT_READS_PER_CB times, so one flooding
 * worker cannot starve the loop; the pipe drains anyway because the loop
 * comes back to it at once.  Never blocks; never writes to a worker.
 */
#include "wout.h"
#include "ap_alloc.h"
#include "ap_log.h"
#include "ap_utf8.h"
#include "promtext.h"
#include "server.h"
#include "worker.h"

#include <cJSON.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define WOUT_LINE_MAX (AP_LOG_LINE_MAX + 256) /* a relayed worker log line fits whole */
#define WOUT_TEXT_MAX (AP_LOG_LINE_MAX - 128) /* agent text per log line, room left for the prefix */
#define WOUT_READ_SIZE 65536
#define WOUT_READS_PER_CB 4
#define WOUT_DRAIN_READS 64                   /* at death: 4 MiB per stream at most */
#define WOUT_REPORT_MS 1000
#define WOUT_MIN_FD 10                        /* write ends above AP_WORKER_FD .. AP_LOG_FD */
#define WOUT_STREAMS 3                        /* stdout, stderr, log */
#define WOUT_LOG 2                            /* the worker's own log stream */

typedef struct wout_entry wout_entry;

typedef struct {
    wout_entry *owner;
    int which;              /* 0 stdout, 1 stderr, 2 the worker's own log */
    int fd;                 /* read end, -1 when closed */
    struct event *ev;
    ap_log_level level;     /* of the line being assembled (set by its first piece) */
    unsigned part;          /* pieces of that line logged so far */
    size_t len;
    char buf[WOUT_LINE_MAX];
} wout_stream;

struct wout_entry {
    wout_stream s[WOUT_STREAMS];
    pool_t *pool;
    char name[WORKER_NAME_MAX];
    pid_t pid;
    int slot;
    int open;               /* attached to a process */
    uint64_t tokens;        /* thousandths of a line */
    uint64_t refill_ms;
    uint64_t unreported;    /* dropped since the last summary */
    struct event *report_ev;
};

/* A pool's: one entry per worker table entry. */
struct wout_state {
    wout_entry *e;
    int n;
    uint64_t *slot_dropped; /* by slot, since start */
    unsigned char *slot_seen;
    uint64_t total;
};

static char scratch[WOUT_READ_SIZE]; /* every read, handled in place */

static const char *const stream_names[WOUT_STREAMS] = {"stdout", "stderr", "log"};

static void report_cb(evutil_socket_t fd, short what, void *arg);

void wout_init(pool_t *p)
{
    struct wout_state *o = p->wout = ap_calloc(1, sizeof(*o));
    o->n = p->nworkers;
    o->e = ap_calloc((size_t)o->n, sizeof(wout_entry));
    o->slot_dropped = ap_calloc((size_t)o->n, sizeof(uint64_t));
    o->slot_seen = ap_calloc((size_t)o->n, 1);
    for (int i = 0; i < o->n; i++) {
        wout_entry *e = &o->e[i];
        e->pool = p;
        for (int k = 0; k < WOUT_STREAMS; k++) {
            e->s[k].owner = e;
            e->s[k].which = k;
            e->s[k].fd = -1;
        }
        e->report_ev = evtimer_new(server.base, report_cb, e);
    }
}

/* ---- rate limit ------------------------------------------------------ */

static int take_token(wout_entry *e)
{
    uint64_t rate = (uint64_t)e->pool->cfg->worker_log_rate;
    if (rate == 0)
        return 1;
    uint64_t cap = (uint64_t)e->pool->cfg->worker_log_burst * 1000;
    uint64_t now = ap_now_ms();
    if (now > e->refill_ms) {
        e->tokens += (now - e->refill_ms) * rate;
        e->refill_ms = now;
    }
    if (e->tokens > cap)
        e->tokens = cap;
    if (e->tokens < 1000)
        return 0;
    e->tokens -= 1000;
    return 1;
}

static void report_now(wout_entry *e)
{
    if (e->unreported == 0)
        return;
    ap_warn("%s (pid %d): dropped %llu line%s of output (rate limit: workerLogRate %lld/s, workerLogBurst %lld)",
            e->name, (int)e->pid, (unsigned long long)e->unreported, e->unreported == 1 ? "" : "s",
            (long long)e->pool->cfg->worker_log_rate, (long long)e->pool->cfg->worker_log_burst);
    e->unreported = 0;
}

static void report_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    report_now(arg);
}

static void drop_line(wout_entry *e)
{
    struct wout_state *o = e->pool->wout;
    o->total++;
    if (e->slot >= 0 && e->slot < o->n)
        o->slot_dropped[e->slot]++;
    if (e->unreported++ == 0 && !evtimer_pending(e->report_ev, NULL)) {
        struct timeval tv = {WOUT_REPORT_MS / 1000, (WOUT_REPORT_MS % 1000) * 1000};
        evtimer_add(e->report_ev, &tv);
    }
}

/* ---- text ------------------------------------------------------------- */

/* Copies n bytes of src into dst (room for n), control characters but
 * tab and invalid UTF-8 replaced by '?'.  Returns the bytes written. */
static size_t clean_text(char *dst, const char *src, size_t n)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x80) {
            dst[o++] = (s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f ? '?' : (char)s[i];
            i++;
            continue;
        }
        size_t k = ap_utf8_len(s + i, n - i);
        if (k == 0) {
            dst[o++] = '?';
            i++;
            continue;
        }
        if ((const unsigned char *)dst + o != s + i)
            memcpy(dst + o, s + i, k);
        o += k;
        i += k;
    }
    return o;
}

/* How much of p (more than max bytes) to log as one piece: max, less the
 * start of a UTF-8 character cut at the end. */
static size_t piece_len(const char *p, size_t max)
{
    size_t n = max;
    for (int back = 0; back < 3 && n > 1 && ((unsigned char)p[n] & 0xc0) == 0x80; back++)
        n--;
    return n;
}

/* A Python logging level name at the start of the line, followed by a
 * space or a colon: the level of that record. */
static ap_log_level level_of(int which, const char *p, size_t n)
{
    static const struct {
        const char *name;
        ap_log_level level;
    } py[] = {{"DEBUG", AP_LOG_DEBUG},
              {"INFO", AP_LOG_INFO},
              {"WARNING", AP_LOG_WARN},
              {"ERROR", AP_LOG_ERROR},
              {"CRITICAL", AP_LOG_CRIT}};
    for (size_t i = 0; i < AP_ARRAY_LEN(py); i++) {
        size_t l = strlen(py[i].name);
        if (n > l && memcmp(p, py[i].name, l) == 0 && (p[l] == ' ' || p[l] == ':'))
            return py[i].level;
    }
    return which == 0 ? AP_LOG_INFO : AP_LOG_WARN;
}

/* The worker's own ap_log line (text or JSON format), with this
 * process's role and pid: relayed as it is. */
static int is_own_log_line(const wout_entry *e, const char *p, size_t n)
{
    char tag[64];
    int t;
    if (n > 7 && memcmp(p, "{\"ts\":\"", 7) == 0 && p[n - 1] == '}') {
        t = snprintf(tag, sizeof(tag), "\",\"role\":\"%s\",\"pid\":%d,\"msg\":\"", e->name, (int)e->pid);
        size_t look = n < 128 ? n : 128;
        if (t <= 0 || memmem(p, look, tag, (size_t)t) == NULL)
            return 0;
        /* Agent code can print anything: only valid JSON goes through
         * as it is, so the JSON log stays one valid object per line. */
        cJSON *j = cJSON_ParseWithLength(p, n);
        cJSON_Delete(j);
        return j != NULL;
    }
    /* 2026-11-24T08:00:00.123Z INFO  [worker-2 1234] ... */
    static const char *const tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR", "CRIT "};
    if (n < 32 || p[4] != '-' || p[7] != '-' || p[10] != 'T' || p[13] != ':' || p[16] != ':' || p[19] != '.' ||
        p[23] != 'Z' || p[24] != ' ' || p[30] != ' ')
        return 0;
    int known = 0;
    for (size_t i = 0; i < AP_ARRAY_LEN(tags); i++)
        known |= memcmp(p + 25, tags[i], 5) == 0;
    t = snprintf(tag, sizeof(tag), "[%s %d] ", e->name, (int)e->pid);
    return known && t > 0 && n >= 31 + (size_t)t && memcmp(p + 31, tag, (size_t)t) == 0;
}

/* Logs one piece of text (at most WOUT_TEXT_MAX bytes) of stream s:
 * a whole line when label is NULL. */
static void log_piece(wout_stream *s, const char *p, size_t n, const char *label)
{
    wout_entry *e = s->owner;
    if (!take_token(e)) {
        drop_line(e);
        return;
    }
    char clean[WOUT_TEXT_MAX], prefix[WORKER_NAME_MAX + 64];
    size_t c = clean_text(clean, p, n);
    snprintf(prefix, sizeof(prefix), "%s (pid %d) %s%s: ", e->name, (int)e->pid, stream_names[s->which],
             label ? label : "");
    /* ap_log_block: one line here (the text has no newline), and not
     * subject to the log's per-call-site limit: this module limits. */
    ap_log_block(s->level, prefix, clean, c);
}

/* Logs s's buffer: all of it when the line is complete (end of line, or
 * of the stream), else the whole pieces it holds, keeping the rest. */
static void stream_emit(wout_stream *s, int complete)
{
    size_t len = s->len;
    if (complete && len > 0 && s->buf[len - 1] == '\r')
        len--;
    if (s->part == 0) {
        if (complete && len == 0) {
            s->len = 0;
            return; /* a blank line */
        }
        if (complete && s->which == WOUT_LOG && is_own_log_line(s->owner, s->buf, len)) {
            if (take_token(s->owner)) {
                /* same length out as in (see clean_text), so in place */
                len = clean_text(s->buf, s->buf, len);
                ap_log_relay(s->buf, len);
            }
            else
                drop_line(s->owner);
            s->len = 0;
            return;
        }
        s->level = level_of(s->which, s->buf, len);
        if (complete && len <= WOUT_TEXT_MAX) {
            log_piece(s, s->buf, len, NULL);
            s->len = 0;
            return;
        }
    }
    char label[40];
    size_t off = 0;
    while (len - off > WOUT_TEXT_MAX) {
        size_t n = piece_len(s->buf + off, WOUT_TEXT_MAX);
        snprintf(label, sizeof(label), " (part %u)", ++s->part);
        log_piece(s, s->buf + off, n, label);
        off += n;
    }
    if (complete) {
        snprintf(label, sizeof(label), " (part %u, last)", ++s->part);
        log_piece(s, s->buf + off, len - off, label);
        s->part = 0;
        s->len = 0;
    } else {
        memmove(s->buf, s->buf + off, s->len - off);
        s->len -= off;
    }
}

/* Adds n bytes read from the pipe to s, logging each line completed. */
static void stream_feed(wout_stream *s, const char *p, size_t n)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t seg = nl ? (size_t)(nl - p) : n;
        while (seg > 0) {
            if (s->len == sizeof(s->buf))
                stream_emit(s, 0); /* no end of line in sight: log what fills whole pieces */
            size_t room = sizeof(s->buf) - s->len;
            size_t take = seg < room ? seg : room;
            memcpy(s->buf + s->len, p, take);
            s->len += take;
            p += take;
            n -= take;
            seg -= take;
        }
        if (nl) {
            stream_emit(s, 1);
            p++;
            n--;
        }
    }
}

/* ---- pipes -------------------------------------------------------------- */

/* Logs what is left of a line without its newline, then closes s. */
static void stream_close(wout_stream *s)
{
    if (s->fd < 0)
        return;
    if (s->len > 0 || s->part > 0)
        stream_emit(s, 1);
    s->len = 0;
    s->part = 0;
    if (s->ev) {
        event_free(s->ev);
        s->ev = NULL;
    }
    close(s->fd);
    s->fd = -1;
}

/* Reads s at most `reads` times.  At end of file or on an error the
 * stream is closed; at EAGAIN it stays open. */
static void stream_read(wout_stream *s, int reads)
{
    for (int i = 0; i < reads && s->fd >= 0; i++) {
        ssize_t r = read(s->fd, scratch, sizeof(scratch));
        if (r > 0) {
            stream_feed(s, scratch, (size_t)r);
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r < 0)
            ap_warn("%s (pid %d): read() of its %s pipe failed: %s", s->owner->name, (int)s->owner->pid,
                    stream_names[s->which], strerror(errno));
        stream_close(s);
    }
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    stream_read(arg, WOUT_READS_PER_CB);
}

/* Moves *fd to WOUT_MIN_FD or above (close-on-exec kept). */
static int raise_fd(int *fd)
{
    if (*fd >= WOUT_MIN_FD)
        return AP_OK;
    int nfd = fcntl(*fd, F_DUPFD_CLOEXEC, WOUT_MIN_FD);
    if (nfd < 0)
        return AP_ERR;
    close(*fd);
    *fd = nfd;
    return AP_OK;
}

void wout_pipes_close(wout_pipes *p)
{
    for (int k = 0; k < WOUT_STREAMS; k++)
        for (int j = 0; j < 2; j++)
            if (p->fd[k][j] >= 0) {
                close(p->fd[k][j]);
                p->fd[k][j] = -1;
            }
}

/* Makes one pipe: both ends close-on-exec, the write end moved to
 * WOUT_MIN_FD or above, the read end non-blocking.  On error returns the
 * failed call's name (errno set), with whatever it made left in fd[]. */
static const char *open_one(int fd[2])
{
    if (pipe2(fd, O_CLOEXEC) < 0)
        return "pipe2()";
    if (raise_fd(&fd[1]) != AP_OK)
        return "fcntl(F_DUPFD_CLOEXEC)";
    int fl = fcntl(fd[0], F_GETFL);
    if (fl < 0 || fcntl(fd[0], F_SETFL, fl | O_NONBLOCK) < 0)
        return "fcntl(F_SETFL, O_NONBLOCK)";
    return NULL;
}

int wout_pipes_open(wout_pipes *p, const worker *w)
{
    for (int k = 0; k < WOUT_STREAMS; k++)
        p->fd[k][0] = p->fd[k][1] = -1;
    for (int k = 0; k < WOUT_STREAMS; k++) {
        const char *failed = open_one(p->fd[k]);
        if (failed) {
            ap_error("%s: %s failed for its %s pipe while spawning: %s", w->name, failed, stream_names[k],
                     strerror(errno));
            wout_pipes_close(p);
            return AP_ERR;
        }
    }
    return AP_OK;
}

int wout_pipes_child(const wout_pipes *p)
{
    /* dup2 clears close-on-exec on the new descriptor (the write ends are
     * at WOUT_MIN_FD or above, so never already in place). */
    if (dup2(p->fd[0][1], 1) < 0 || dup2(p->fd[1][1], 2) < 0 || dup2(p->fd[WOUT_LOG][1], AP_LOG_FD) < 0)
        return -1;
    return 0;
}

/* Ends what e was doing for its last process. */
static void entry_close(wout_entry *e)
{
    for (int k = 0; k < WOUT_STREAMS; k++)
        stream_close(&e->s[k]);
    if (e->report_ev)
        evtimer_del(e->report_ev);
    report_now(e);
    e->open = 0;
}

int wout_attach(worker *w, wout_pipes *p)
{
    struct wout_state *o = w->pool->wout;
    wout_entry *e = &o->e[w->index];
    if (e->open)
        entry_close(e);
    for (int k = 0; k < WOUT_STREAMS; k++) {
        close(p->fd[k][1]);
        p->fd[k][1] = -1;
    }
    snprintf(e->name, sizeof(e->name), "%s", w->name);
    e->pid = w->proc.pid;
    e->slot = w->slot;
    e->tokens = (uint64_t)w->pool->cfg->worker_log_burst * 1000;
    e->refill_ms = ap_now_ms();
    e->unreported = 0;
    for (int k = 0; k < WOUT_STREAMS; k++) {
        wout_stream *s = &e->s[k];
        s->fd = p->fd[k][0];
        p->fd[k][0] = -1;
        s->len = 0;
        s->part = 0;
        s->ev = event_new(server.base, s->fd, EV_READ | EV_PERSIST, read_cb, s);
        if (s->ev == NULL || event_add(s->ev, NULL) < 0) {
            ap_error("%s (pid %d): cannot watch its %s pipe; killing it", w->name, (int)w->proc.pid, stream_names[k]);
            for (int j = k + 1; j < WOUT_STREAMS; j++) {
                close(p->fd[j][0]);
                p->fd[j][0] = -1;
            }
            e->open = 1;
            entry_close(e);
            return AP_ERR;
        }
    }
    if (e->slot >= 0 && e->slot < o->n)
        o->slot_seen[e->slot] = 1;
    e->open = 1;
    return AP_OK;
}

void wout_detach(worker *w)
{
    wout_entry *e = &w->pool->wout->e[w->index];
    if (!e->open)
        return;
    for (int k = 0; k < WOUT_STREAMS; k++)
        stream_read(&e->s[k], WOUT_DRAIN_READS);
    entry_close(e);
}

void wout_free(pool_t *p)
{
    struct wout_state *o = p->wout;
    if (o == NULL)
        return;
    for (int i = 0; i < o->n; i++) {
        wout_entry *e = &o->e[i];
        if (e->open)
            entry_close(e);
        if (e->report_ev)
            event_free(e->report_ev);
    }
    ap_free(o->e);
    ap_free(o->slot_dropped);
    ap_free(o->slot_seen);
    ap_free(o);
    p->wout = NULL;
}

/* ---- counters ------------------------------------------------------------ */

uint64_t wout_dropped(const worker *w)
{
    const struct wout_state *o = w->pool->wout;
    return w->slot >= 0 && w->slot < o->n ? o->slot_dropped[w->slot] : 0;
}

uint64_t wout_dropped_total(const pool_t *p)
{
    return p->wout->total;
}

void wout_prometheus(struct evbuffer *out)
{
    promtext_family(out, "agentpool_worker_log_lines_dropped_total", "counter",
                    "Lines of worker output dropped over workerLogRate, by pool and worker slot, since start.");
    POOLS_FOREACH(p) {
        const struct wout_state *o = p->wout;
        for (int slot = 0; slot < o->n; slot++) {
            if (!o->slot_seen[slot])
                continue;
            char name[24];
            snprintf(name, sizeof(name), "worker-%d", slot);
            promtext_label l[2] = {{"pool", p->name}, {"worker", name}};
            int k = server.cfg->pools_named ? 0 : 1; /* one unnamed pool: no pool label */
            promtext_u64(out, "agentpool_worker_log_lines_dropped_total", l + k, 2 - (unsigned)k, o->slot_dropped[slot]);
        }
    }
}
