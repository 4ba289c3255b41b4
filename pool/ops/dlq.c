/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dlq.c - the dead-letter file (format and contract in dlq.h).
 *
 * Owns one O_APPEND descriptor on PATH, the record counts and sizes of
 * PATH and PATH.1, and the next dlqId.  The descriptor is marked stale
 * after an error and reopened by the next append; the old one is held
 * until the new one is open, so comparing inode numbers reliably tells
 * "the same file" from "a new file" (which is then recounted).
 * Invariants: every line written here is one JSON object that starts
 * with {"dlqId":N, and ends with '\n', written with one write(2) and
 * fsync'd; a failed append leaves nothing behind (it is truncated away,
 * and the reopen re-reads the size and ends any partial last line with
 * '\n', so that line reads as one corrupt line); readers hold at most one line (capped at
 * DLQ_LINE_MAX) in memory and check each with scan_json_value() before
 * handing it out, so a caller can splice it into a response as it is.
 *
 * Called only by the master: when a message is dead-lettered, and for
 * the operator's pool.dlq.* commands.  It must never abort, never follow
 * a symbolic link at PATH, never use a file with more than one link or
 * owned by another user than root, us or the service user, never write a file that is not 0600, and never
 * block on anything but the local disk; the fsync after each append is
 * the one synchronous write on the message path, and it happens only for
 * messages that are dead-lettered.
 */
#include "dlq.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_json.h"
#include "ap_log.h"
#include "ap_safefile.h"
#include "scan.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define DLQ_MODE 0600
#define DLQ_CHUNK ((size_t)64 << 10)  /* read size, first line buffer, copy buffer */
#define DLQ_WARN_DETAIL 5              /* skipped lines described per file per walk */
#define DLQ_PREFIX "{\"dlqId\":"
#define DLQ_PREFIX_LEN (sizeof(DLQ_PREFIX) - 1)
/* dlqIds stay exact integers for JSON readers that use doubles. */
#define DLQ_ID_MAX UINT64_C(9007199254740991)

struct dlq {
    char *path;         /* PATH, as given */
    char *path1;        /* PATH.1 */
    char *dir;          /* PATH's directory: temporary files, fsync after rename */
    int fd;             /* PATH, O_RDWR|O_APPEND; -1 only before the first open */
    int stale;          /* fd must be replaced before the next write */
    int have_ino;       /* dev/ino name the file fd is open on */
    dev_t dev;
    ino_t ino;
    uint64_t max_bytes;
    uint64_t size;      /* bytes in PATH */
    uint64_t size1;     /* bytes in PATH.1 */
    uint64_t nrec;      /* records in PATH */
    uint64_t nrec1;     /* records in PATH.1 */
    uint64_t next_id;
    uint64_t skipped;   /* lines skipped by readers */
    uid_t trusted;      /* besides root and us, who may own the files */
    gid_t group;        /* with trusted: the files are handed to trusted:group */
    uint64_t roll_errors; /* rolls to PATH.1 that failed (appended past the cap) */
};

#ifdef DLQ_TEST_HOOKS
int dlq_test_write_errno;
size_t dlq_test_write_short;
int dlq_test_fsync_errno;
size_t dlq_test_line_max;
#endif

static size_t line_max(void)
{
#ifdef DLQ_TEST_HOOKS
    if (dlq_test_line_max)
        return dlq_test_line_max;
#endif
    return DLQ_LINE_MAX;
}

static ssize_t sys_write(int fd, const void *p, size_t n)
{
#ifdef DLQ_TEST_HOOKS
    if (dlq_test_write_errno) {
        if (dlq_test_write_short) {
            if (n > dlq_test_write_short)
                n = dlq_test_write_short;
            dlq_test_write_short = 0;
            return write(fd, p, n);
        }
        errno = dlq_test_write_errno;
        dlq_test_write_errno = 0;
        return -1;
    }
#endif
    return write(fd, p, n);
}

static int sys_fsync(int fd)
{
#ifdef DLQ_TEST_HOOKS
    if (dlq_test_fsync_errno) {
        errno = dlq_test_fsync_errno;
        dlq_test_fsync_errno = 0;
        return -1;
    }
#endif
    return fsync(fd);
}

/* ------------------------------------------------------------------ */
/* Errors                                                              */

static void AP_PRINTF(3, 4) set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* "dead-letter file PATH: CALL() failed: REASON" */
static void sys_err(char *err, size_t errlen, const char *path, const char *call, int errnum)
{
    set_err(err, errlen, "dead-letter file %s: %s() failed: %s", path, call, strerror(errnum));
}

/* Writes all of p[0..n), retrying short writes.  AP_ERR with errno set. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = sys_write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return AP_ERR;
        }
        if (w == 0) {
            errno = EIO;
            return AP_ERR;
        }
        p += w;
        n -= (size_t)w;
    }
    return AP_OK;
}

/* Makes a rename or a new file in d's directory durable.  Failure only
 * weakens durability (the operation itself is done), so it is logged. */
static void fsync_dir(const dlq *d)
{
    int fd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0)
        ap_warn("dead-letter file %s: fsync() of directory %s failed: %s", d->path, d->dir,
                strerror(errno));
    if (fd >= 0)
        close(fd);
}

/* Explains why opening path failed: O_NOFOLLOW reports a symbolic link
 * as ELOOP. */
static void open_err(char *err, size_t errlen, const char *path, int errnum)
{
    struct stat st;
    if (errnum == ELOOP && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
        set_err(err, errlen, "dead-letter file %s: is a symbolic link: refused", path);
    else
        sys_err(err, errlen, path, "open", errnum);
}

/* A hard link (root, before the drop, would append to and chmod its
 * target) or a file owned by another user than root, us or the service
 * user: refused (ap_safefile_check).  AP_ERR with err set. */
static int check_owner_links(int fd, const char *path, uid_t trusted, char *err, size_t errlen)
{
    char why[600];
    if (ap_safefile_check(fd, path, trusted, why, sizeof(why)) == AP_OK)
        return AP_OK;
    set_err(err, errlen, "dead-letter file %s", why); /* "PATH: has 2 links ...: refused" */
    return AP_ERR;
}

/* Started as root with a service user: hands the file open on fd to
 * user:group (fchown, never by path), so the master can still write, roll,
 * list and rewrite it after the drop.  AP_ERR with err set. */
static int hand_over(const dlq *d, int fd, const struct stat *st, const char *path, char *err, size_t errlen)
{
    if (d->trusted == (uid_t)-1 || geteuid() != 0 || (st->st_uid == d->trusted && st->st_gid == d->group))
        return AP_OK;
    if (fchown(fd, d->trusted, d->group) != 0) {
        sys_err(err, errlen, path, "fchown", errno);
        return AP_ERR;
    }
    return AP_OK;
}

/* ------------------------------------------------------------------ */
/* The append descriptor                                               */

/*
 * Opens PATH for appending (creating it 0600), refusing a symbolic link
 * or anything but a regular file, narrowing wider permissions to 0600,
 * and ending an incomplete last line so the next record starts on a line
 * of its own.  Sets fd, size, dev/ino (the caller has dealt with the old
 * fd).  AP_ERR with err set, nothing changed.
 */
static int open_current(dlq *d, char *err, size_t errlen)
{
    const int flags = O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK;
    int created = 1;
    int fd = open(d->path, flags | O_CREAT | O_EXCL, DLQ_MODE);
    if (fd < 0 && errno == EEXIST) {
        created = 0;
        fd = open(d->path, flags);
    }
    if (fd < 0) {
        open_err(err, errlen, d->path, errno);
        return AP_ERR;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        sys_err(err, errlen, d->path, "fstat", errno);
        goto err;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(err, errlen, "dead-letter file %s: not a regular file: refused", d->path);
        goto err;
    }
    if (check_owner_links(fd, d->path, d->trusted, err, errlen) != AP_OK ||
        hand_over(d, fd, &st, d->path, err, errlen) != AP_OK)
        goto err;
    if ((st.st_mode & 07777 & ~(mode_t)DLQ_MODE) != 0) {
        ap_warn("dead-letter file %s: mode %04o is wider than %04o: changing it to %04o", d->path,
                (unsigned)(st.st_mode & 07777), DLQ_MODE, DLQ_MODE);
        if (fchmod(fd, DLQ_MODE) != 0) {
            sys_err(err, errlen, d->path, "fchmod", errno);
            goto err;
        }
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size > 0) {
        char last;
        ssize_t r = pread(fd, &last, 1, st.st_size - 1);
        if (r != 1) {
            sys_err(err, errlen, d->path, "pread", r < 0 ? errno : EIO);
            goto err;
        }
        if (last != '\n') {
            ap_warn("dead-letter file %s: its last line has no newline (an interrupted write?): "
                    "ending it so the next record starts a line of its own", d->path);
            if (write_all(fd, "\n", 1) != AP_OK) {
                sys_err(err, errlen, d->path, "write", errno);
                goto err;
            }
            size++;
        }
    }
    d->fd = fd;
    d->stale = 0;
    d->size = size;
    d->dev = st.st_dev;
    d->ino = st.st_ino;
    d->have_ino = 1;
    if (created)
        fsync_dir(d);
    return AP_OK;
err:
    close(fd);
    return AP_ERR;
}

/* ------------------------------------------------------------------ */
/* Reading, one bounded line at a time                                 */

enum { RD_LINE, RD_LONG, RD_END, RD_ERR };

typedef struct {
    int fd;
    char *buf;
    size_t cap, start, end; /* unread bytes are buf[start..end) */
    size_t max;             /* longest line accepted */
    int eof;
    uint64_t lineno;
} reader;

/* The next line (without '\n') in *line and *len, valid until the next call:
 * RD_LINE; RD_LONG for a line longer than r->max (skipped, never held
 * whole); RD_END; RD_ERR with errno set.  A last line without '\n' is
 * returned as a line. */
static int reader_next(reader *r, const char **line, size_t *len)
{
    int skipping = 0;
    for (;;) {
        char *p = r->buf + r->start;
        size_t have = r->end - r->start;
        char *nl = memchr(p, '\n', have);
        if (nl != NULL || (r->eof && have > 0) || (r->eof && skipping)) {
            size_t n = nl ? (size_t)(nl - p) : have;
            r->start += nl ? n + 1 : n;
            r->lineno++;
            if (skipping || n > r->max)
                return RD_LONG;
            *line = p;
            *len = n;
            return RD_LINE;
        }
        if (r->eof)
            return RD_END;
        if (skipping || have > r->max) {
            skipping = 1; /* drop what we hold of the long line */
            r->start = r->end = 0;
        } else if (r->start > 0) {
            memmove(r->buf, p, have);
            r->start = 0;
            r->end = have;
        }
        if (r->end == r->cap) { /* have <= max < cap when this is reached at max + 1 */
            size_t ncap = r->cap * 2 > r->max + 1 ? r->max + 1 : r->cap * 2;
            r->buf = ap_realloc(r->buf, ncap);
            r->cap = ncap;
        }
        size_t want = r->cap - r->end;
        if (want > DLQ_CHUNK)
            want = DLQ_CHUNK;
        ssize_t got = read(r->fd, r->buf + r->end, want);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return RD_ERR;
        }
        if (got == 0)
            r->eof = 1;
        else
            r->end += (size_t)got;
    }
}

enum { LINE_RECORD, LINE_CORRUPT, LINE_LONG };

/* Is this line one of our records?  LINE_RECORD with *id, or
 * LINE_CORRUPT with why. */
static int classify(const char *line, size_t len, uint64_t *id, char *why, size_t whylen)
{
    if (len < DLQ_PREFIX_LEN || memcmp(line, DLQ_PREFIX, DLQ_PREFIX_LEN) != 0) {
        set_err(why, whylen, "does not start with {\"dlqId\":");
        return LINE_CORRUPT;
    }
    size_t i = DLQ_PREFIX_LEN;
    uint64_t v = 0;
    if (i < len && line[i] >= '1' && line[i] <= '9') {
        while (i < len && line[i] >= '0' && line[i] <= '9' && v <= DLQ_ID_MAX) {
            v = v * 10 + (uint64_t)(line[i] - '0');
            i++;
        }
    }
    if (v == 0 || v > DLQ_ID_MAX || i >= len || line[i] != ',') {
        set_err(why, whylen, "dlqId is not an integer from 1 to %" PRIu64, DLQ_ID_MAX);
        return LINE_CORRUPT;
    }
    char serr[SCAN_ERROR_MAX];
    size_t pos = 0;
    if (scan_json_value(line, len, SCAN_DEPTH_CAP, SCAN_ONE_LINE, serr, &pos) != AP_OK) {
        set_err(why, whylen, "not valid JSON: %s (byte %zu)", serr, pos);
        return LINE_CORRUPT;
    }
    *id = v;
    return LINE_RECORD;
}

/* Called for each non-blank line: kind, the dlqId (LINE_RECORD), the
 * line (NULL for LINE_LONG).  Returns 0 to go on, 1 to stop, AP_ERR
 * (with its own error message set) to fail the walk. */
typedef int (*walk_fn)(void *arg, int kind, uint64_t id, const char *line, size_t len);

/*
 * Reads path line by line and calls fn for each non-blank line; blank
 * lines are ignored, corrupt and too long ones logged (the first few in
 * detail, then a count) and counted.  A missing file is empty.  *size
 * (if not NULL) gets the file's size.  AP_ERR with err set if the file
 * cannot be opened or read, or if fn failed.
 */
static int walk_file(dlq *d, const char *path, walk_fn fn, void *arg, uint64_t *size, char *err,
                     size_t errlen)
{
    if (size)
        *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            return AP_OK;
        open_err(err, errlen, path, errno);
        return AP_ERR;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        sys_err(err, errlen, path, "fstat", errno);
        close(fd);
        return AP_ERR;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(err, errlen, "dead-letter file %s: not a regular file: refused", path);
        close(fd);
        return AP_ERR;
    }
    if (check_owner_links(fd, path, d->trusted, err, errlen) != AP_OK ||
        hand_over(d, fd, &st, path, err, errlen) != AP_OK) {
        close(fd);
        return AP_ERR;
    }
    if (size)
        *size = (uint64_t)st.st_size;
    reader r = {.fd = fd, .max = line_max()};
    r.cap = r.max + 1 < DLQ_CHUNK ? r.max + 1 : DLQ_CHUNK;
    r.buf = ap_malloc(r.cap);
    uint64_t skipped = 0;
    int rc = AP_OK;
    for (;;) {
        const char *line = NULL;
        size_t len = 0;
        int got = reader_next(&r, &line, &len);
        if (got == RD_END)
            break;
        if (got == RD_ERR) {
            sys_err(err, errlen, path, "read", errno);
            rc = AP_ERR;
            break;
        }
        if (got == RD_LINE && len == 0)
            continue;
        uint64_t id = 0;
        char why[SCAN_ERROR_MAX + 64];
        int kind = LINE_LONG;
        if (got == RD_LONG) {
            set_err(why, sizeof(why), "longer than %zu bytes", r.max);
            line = NULL;
            len = 0;
        } else {
            kind = classify(line, len, &id, why, sizeof(why));
        }
        if (kind != LINE_RECORD) {
            skipped++;
            d->skipped++;
            if (skipped <= DLQ_WARN_DETAIL)
                ap_warn("dead-letter file %s line %" PRIu64 ": skipped, %s", path, r.lineno, why);
        }
        int c = fn(arg, kind, id, line, len);
        if (c == AP_ERR) {
            rc = AP_ERR;
            break;
        }
        if (c != 0)
            break;
    }
    if (skipped > DLQ_WARN_DETAIL)
        ap_warn("dead-letter file %s: %" PRIu64 " lines skipped in all (corrupt or too long)", path,
                skipped);
    ap_free(r.buf);
    close(fd);
    return rc;
}

typedef struct {
    uint64_t records, max_id;
} count_ctx;

static int count_fn(void *arg, int kind, uint64_t id, const char *line, size_t len)
{
    AP_UNUSED(line);
    AP_UNUSED(len);
    count_ctx *c = arg;
    if (kind == LINE_RECORD) {
        c->records++;
        if (id > c->max_id)
            c->max_id = id;
    }
    return 0;
}

/* Recounts both files and moves next_id past every dlqId found (never
 * back).  AP_ERR with err set, nothing changed. */
static int rescan(dlq *d, char *err, size_t errlen)
{
    count_ctx c1 = {0, 0}, c0 = {0, 0};
    uint64_t size1;
    if (walk_file(d, d->path1, count_fn, &c1, &size1, err, errlen) != AP_OK ||
        walk_file(d, d->path, count_fn, &c0, NULL, err, errlen) != AP_OK)
        return AP_ERR;
    d->nrec1 = c1.records;
    d->size1 = size1;
    d->nrec = c0.records;
    uint64_t top = c1.max_id > c0.max_id ? c1.max_id : c0.max_id;
    if (top + 1 > d->next_id)
        d->next_id = top + 1;
    return AP_OK;
}

/*
 * Opens PATH anew, holding the old descriptor until then so that its
 * inode number cannot be reused by the new file.  If the new file is not
 * the one held and `recount` is set, both files are recounted (a failure
 * to recount is logged: the counts are a hint, the files the truth).
 * AP_ERR with err set: the old descriptor stays, marked stale.
 */
static int reopen(dlq *d, int recount, char *err, size_t errlen)
{
    int old = d->fd;
    int same_file_possible = old >= 0 && d->have_ino;
    dev_t odev = d->dev;
    ino_t oino = d->ino;
    if (open_current(d, err, errlen) != AP_OK) {
        d->fd = old;
        d->stale = 1;
        return AP_ERR;
    }
    if (old >= 0)
        close(old);
    if (recount && !(same_file_possible && d->dev == odev && d->ino == oino)) {
        char rerr[512];
        if (rescan(d, rerr, sizeof(rerr)) != AP_OK)
            ap_warn("dead-letter file %s: could not recount its records: %s", d->path, rerr);
    }
    return AP_OK;
}

/* Before an append: reopens PATH if an error made the descriptor stale,
 * or if PATH was removed or replaced behind our back (appending to an
 * unlinked file would lose records silently). */
static int check_current(dlq *d, char *err, size_t errlen)
{
    struct stat st;
    int same = d->fd >= 0 && lstat(d->path, &st) == 0 && st.st_dev == d->dev && st.st_ino == d->ino;
    if (same && !d->stale)
        return AP_OK;
    if (!same && d->fd >= 0)
        ap_warn("dead-letter file %s was removed or replaced: reopening it", d->path);
    return reopen(d, 1, err, errlen);
}

/* ------------------------------------------------------------------ */
/* Building a record                                                   */

typedef struct {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_need(sbuf *b, size_t n)
{
    if (b->len + n <= b->cap)
        return;
    size_t c = b->cap ? b->cap : 256;
    while (c < b->len + n)
        c *= 2;
    b->p = ap_realloc(b->p, c);
    b->cap = c;
}

static void sb_put(sbuf *b, const char *s, size_t n)
{
    sb_need(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void sb_cstr(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_u64(sbuf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
    sb_put(b, tmp, (size_t)n);
}

/* s[0..n) as a JSON string, quotes included (ap_json_escape: a byte that
 * is not part of well-formed UTF-8 becomes U+FFFD, so the line always
 * stays valid JSON).  NULL is written as null. */
static void sb_jstr(sbuf *b, const char *s, size_t n)
{
    if (s == NULL) {
        sb_cstr(b, "null");
        return;
    }
    sb_need(b, AP_JSON_ESCAPE_MAX(n) + 2);
    b->p[b->len++] = '"';
    b->len += ap_json_escape(b->p + b->len, AP_JSON_ESCAPE_MAX(n), s, n);
    b->p[b->len++] = '"';
}

/* Raw JSON bytes, or null when len is 0. */
static void sb_raw(sbuf *b, const char *s, size_t len)
{
    if (len == 0 || s == NULL)
        sb_cstr(b, "null");
    else
        sb_put(b, s, len);
}

/* "2026-11-24T08:00:00.123Z", or null for 0. */
static void sb_time(sbuf *b, uint64_t ms)
{
    if (ms == 0) {
        sb_cstr(b, "null");
        return;
    }
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char tmp[96];
    if (gmtime_r(&secs, &tm) == NULL) {
        sb_cstr(b, "null");
        return;
    }
    int n = snprintf(tmp, sizeof(tmp), "\"%04d-%02d-%02dT%02d:%02d:%02d.%03uZ\"", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (unsigned)(ms % 1000));
    sb_put(b, tmp, n > 0 && (size_t)n < sizeof(tmp) ? (size_t)n : 0);
}

/* One record line, '\n' included, into b (which starts empty). */
static void build_record(sbuf *b, uint64_t dlq_id, const dlq_entry *e)
{
    size_t est = 192 + e->id_len + e->data_len + e->checkpoint_len + 6 * e->type_len;
    for (size_t i = 0; i < e->nfailures; i++) {
        const dlq_failure *f = &e->failures[i];
        est += 128 + 6 * (f->worker ? strlen(f->worker) : 0) + 6 * (f->reason ? strlen(f->reason) : 0);
    }
    sb_need(b, est);
    sb_cstr(b, DLQ_PREFIX);
    sb_u64(b, dlq_id);
    sb_cstr(b, ",\"time\":");
    sb_time(b, e->wall_ms ? e->wall_ms : ap_wall_ms());
    sb_cstr(b, ",\"id\":");
    sb_raw(b, e->id, e->id_len);
    sb_cstr(b, ",\"type\":");
    sb_jstr(b, e->type ? e->type : "", e->type ? e->type_len : 0);
    sb_cstr(b, ",\"data\":");
    sb_raw(b, e->data, e->data_len);
    sb_cstr(b, ",\"attempts\":");
    sb_u64(b, e->attempts);
    if (e->checkpoint_len) {
        sb_cstr(b, ",\"checkpoint\":");
        sb_raw(b, e->checkpoint, e->checkpoint_len);
    }
    if (e->chunks) {
        sb_cstr(b, ",\"partial\":true,\"chunks\":");
        sb_u64(b, e->chunks);
    }
    sb_cstr(b, ",\"failures\":[");
    for (size_t i = 0; i < e->nfailures; i++) {
        const dlq_failure *f = &e->failures[i];
        sb_cstr(b, i ? ",{\"time\":" : "{\"time\":");
        sb_time(b, f->wall_ms);
        sb_cstr(b, ",\"worker\":");
        sb_jstr(b, f->worker, f->worker ? strlen(f->worker) : 0);
        sb_cstr(b, ",\"pid\":");
        char tmp[16];
        int n = snprintf(tmp, sizeof(tmp), "%d", f->pid);
        sb_put(b, tmp, (size_t)n);
        sb_cstr(b, ",\"reason\":");
        sb_jstr(b, f->reason, f->reason ? strlen(f->reason) : 0);
        sb_put(b, "}", 1);
    }
    sb_put(b, "]}\n", 3);
}

/* ------------------------------------------------------------------ */
/* Public functions                                                    */

dlq *dlq_open(const char *path, uint64_t max_bytes, uid_t trusted, gid_t group, char *err, size_t errlen)
{
    if (path == NULL || *path == '\0') {
        set_err(err, errlen, "dead-letter file: empty path");
        return NULL;
    }
    if (max_bytes == 0) {
        set_err(err, errlen, "dead-letter file %s: the size cap must be at least 1 byte", path);
        return NULL;
    }
    dlq *d = ap_calloc(1, sizeof(*d));
    d->fd = -1;
    d->max_bytes = max_bytes;
    d->next_id = 1;
    d->trusted = trusted;
    d->group = group;
    size_t len = strlen(path);
    d->path = ap_strndup(path, len);
    d->path1 = ap_malloc(len + 3);
    memcpy(d->path1, path, len);
    memcpy(d->path1 + len, ".1", 3);
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        d->dir = ap_strdup(".");
    else
        d->dir = ap_strndup(path, slash == path ? 1 : (size_t)(slash - path));
    if (open_current(d, err, errlen) != AP_OK || rescan(d, err, errlen) != AP_OK) {
        dlq_close(d);
        return NULL;
    }
    return d;
}

/* Moves PATH to PATH.1 (dropping the old PATH.1) and starts a new PATH.
 * AP_ERR with err set: PATH unchanged if the rename failed; if only the
 * new file could not be opened, the descriptor (now on PATH.1) is stale
 * and the next append tries to create PATH again. */
static int roll(dlq *d, char *err, size_t errlen)
{
    if (rename(d->path, d->path1) != 0) {
        set_err(err, errlen, "dead-letter file %s: rename() to %s failed: %s", d->path, d->path1,
                strerror(errno));
        return AP_ERR;
    }
    if (d->nrec1 > 0)
        ap_warn("dead-letter file %s reached its cap of %" PRIu64 " bytes: moved to %s, "
                "%" PRIu64 " older dead letters dropped",
                d->path, d->max_bytes, d->path1, d->nrec1);
    d->nrec1 = d->nrec;
    d->size1 = d->size;
    d->nrec = 0;
    d->size = 0;
    d->stale = 1;
    return reopen(d, 0, err, errlen); /* fsyncs the directory: rename and create */
}

int dlq_append(dlq *d, const dlq_entry *e, uint64_t *dlq_id_out, char *err, size_t errlen)
{
    if (d->next_id > DLQ_ID_MAX) { /* only a hand-edited file gets here */
        set_err(err, errlen, "dead-letter file %s: dlqIds are exhausted (the highest is %" PRIu64
                "): purge it", d->path, DLQ_ID_MAX);
        return AP_ERR;
    }
    if (check_current(d, err, errlen) != AP_OK)
        return AP_ERR;
    sbuf b = {NULL, 0, 0};
    uint64_t id = d->next_id++;
    build_record(&b, id, e);
    if (b.len - 1 > line_max())
        ap_warn("dead-letter file %s: record %" PRIu64 " is %zu bytes, more than readers accept "
                "(%zu): it is written, but listing will skip it",
                d->path, id, b.len, line_max());
    /* Roll first if this record would take a non-empty file past the
     * cap.  A record larger than the cap on its own then lands, alone,
     * in the fresh file: kept rather than lost, and the next append
     * rolls it into PATH.1. */
    if (d->size > 0 && d->size + b.len > d->max_bytes) {
        char rerr[600];
        if (roll(d, rerr, sizeof(rerr)) != AP_OK) {
            /* Never drop a record for a failed roll: append past the cap
             * (the file is still PATH when the rename failed; after a
             * rename whose new PATH could not be made, check_current
             * tries to make it once more). */
            d->roll_errors++;
            ap_warn("%s; appending past deadLetterMaxBytes (%" PRIu64 " bytes) instead (%" PRIu64
                    " failed roll%s so far)", rerr, d->max_bytes, d->roll_errors, d->roll_errors == 1 ? "" : "s");
            if (d->stale && check_current(d, err, errlen) != AP_OK) {
                ap_free(b.p);
                return AP_ERR;
            }
        }
    }
    const char *call = NULL;
    if (write_all(d->fd, b.p, b.len) != AP_OK)
        call = "write";
    else if (sys_fsync(d->fd) != 0)
        call = "fsync";
    if (call) {
        int saved = errno;
        /* Take back whatever reached the file and mark the descriptor
         * stale: the next append reopens, re-reads the size and, if the
         * truncate failed too, ends the partial line. */
        if (ftruncate(d->fd, (off_t)d->size) != 0)
            ap_warn("dead-letter file %s: ftruncate() after a failed %s() failed: %s", d->path, call,
                    strerror(errno));
        d->stale = 1;
        sys_err(err, errlen, d->path, call, saved);
        ap_free(b.p);
        return AP_ERR;
    }
    d->size += b.len;
    d->nrec++;
    ap_free(b.p);
    if (dlq_id_out)
        *dlq_id_out = id;
    return AP_OK;
}

typedef struct {
    uint64_t offset, limit, seen, given;
    dlq_list_cb cb;
    void *arg;
    int stopped;
} list_ctx;

static int list_fn(void *arg, int kind, uint64_t id, const char *line, size_t len)
{
    list_ctx *c = arg;
    if (kind != LINE_RECORD)
        return 0;
    if (c->seen++ < c->offset)
        return 0;
    c->given++;
    if (c->cb(c->arg, id, line, len) != 0 || (c->limit && c->given >= c->limit)) {
        c->stopped = 1;
        return 1;
    }
    return 0;
}

int dlq_list(dlq *d, uint64_t offset, uint64_t limit, dlq_list_cb cb, void *arg, char *err,
             size_t errlen)
{
    list_ctx c = {.offset = offset, .limit = limit, .cb = cb, .arg = arg};
    if (walk_file(d, d->path1, list_fn, &c, NULL, err, errlen) != AP_OK)
        return AP_ERR;
    if (!c.stopped && walk_file(d, d->path, list_fn, &c, NULL, err, errlen) != AP_OK)
        return AP_ERR;
    return AP_OK;
}

uint64_t dlq_count(const dlq *d)
{
    return d->nrec + d->nrec1;
}

void dlq_get_stats(const dlq *d, dlq_stats *out)
{
    out->records = d->nrec + d->nrec1;
    out->bytes = d->size + d->size1;
    out->next_id = d->next_id;
    out->skipped_lines = d->skipped;
    out->roll_errors = d->roll_errors;
}

const char *dlq_path(const dlq *d)
{
    return d->path;
}

/* Rewriting a file without some records. */
typedef struct {
    const uint64_t *ids; /* sorted */
    size_t n;
    uint64_t matches;    /* first pass */
    const char *path;    /* second pass: the copy */
    const char *tmp;
    int fd;
    char *out;
    size_t olen;
    uint64_t kept, removed, bytes;
    char *err;
    size_t errlen;
} rm_ctx;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int rm_wanted(const rm_ctx *c, int kind, uint64_t id)
{
    return kind == LINE_RECORD && bsearch(&id, c->ids, c->n, sizeof(*c->ids), cmp_u64) != NULL;
}

static int rm_count_fn(void *arg, int kind, uint64_t id, const char *line, size_t len)
{
    AP_UNUSED(line);
    AP_UNUSED(len);
    rm_ctx *c = arg;
    if (rm_wanted(c, kind, id))
        c->matches++;
    return 0;
}

static int rm_flush(rm_ctx *c)
{
    if (write_all(c->fd, c->out, c->olen) != AP_OK) {
        sys_err(c->err, c->errlen, c->tmp, "write", errno);
        return AP_ERR;
    }
    c->olen = 0;
    return AP_OK;
}

static int rm_put(rm_ctx *c, const char *p, size_t n)
{
    c->bytes += n;
    if (c->olen + n > DLQ_CHUNK && c->olen > 0 && rm_flush(c) != AP_OK)
        return AP_ERR;
    if (n >= DLQ_CHUNK) {
        if (write_all(c->fd, p, n) != AP_OK) {
            sys_err(c->err, c->errlen, c->tmp, "write", errno);
            return AP_ERR;
        }
        return AP_OK;
    }
    memcpy(c->out + c->olen, p, n);
    c->olen += n;
    return AP_OK;
}

static int rm_copy_fn(void *arg, int kind, uint64_t id, const char *line, size_t len)
{
    rm_ctx *c = arg;
    if (rm_wanted(c, kind, id)) {
        c->removed++;
        return 0;
    }
    if (kind == LINE_LONG) {
        ap_warn("dead-letter file %s: a line longer than %zu bytes is dropped by the rewrite", c->path,
                line_max());
        return 0;
    }
    if (kind == LINE_RECORD)
        c->kept++;
    if (rm_put(c, line, len) != AP_OK || rm_put(c, "\n", 1) != AP_OK)
        return AP_ERR;
    return 0;
}

/* Rewrites PATH (current) or PATH.1 without the records in ids (sorted),
 * if it holds any: copy to a temporary file, fsync, rename over.  Adds
 * what it removed to *removed.  AP_ERR with err set, the file untouched. */
static int rewrite_file(dlq *d, int current, const uint64_t *ids, size_t n, size_t *removed,
                        char *err, size_t errlen)
{
    const char *path = current ? d->path : d->path1;
    rm_ctx c = {.ids = ids, .n = n, .path = path, .fd = -1, .err = err, .errlen = errlen};
    if (walk_file(d, path, rm_count_fn, &c, NULL, err, errlen) != AP_OK)
        return AP_ERR;
    if (c.matches == 0)
        return AP_OK;
    size_t tlen = strlen(path) + sizeof(".tmp.XXXXXX");
    char *tmp = ap_malloc(tlen);
    snprintf(tmp, tlen, "%s.tmp.XXXXXX", path);
    c.tmp = tmp;
    c.fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
    if (c.fd < 0) {
        set_err(err, errlen, "dead-letter file %s: mkostemp(%s) failed: %s", path, tmp,
                strerror(errno));
        ap_free(tmp);
        return AP_ERR;
    }
    c.out = ap_malloc(DLQ_CHUNK);
    int rc = walk_file(d, path, rm_copy_fn, &c, NULL, err, errlen);
    if (rc == AP_OK && c.olen > 0)
        rc = rm_flush(&c);
    if (rc == AP_OK && sys_fsync(c.fd) != 0) {
        sys_err(err, errlen, tmp, "fsync", errno);
        rc = AP_ERR;
    }
    if (close(c.fd) != 0 && rc == AP_OK) {
        sys_err(err, errlen, tmp, "close", errno);
        rc = AP_ERR;
    }
    if (rc == AP_OK && rename(tmp, path) != 0) {
        set_err(err, errlen, "dead-letter file %s: rename() of %s over it failed: %s", path, tmp,
                strerror(errno));
        rc = AP_ERR;
    }
    if (rc != AP_OK) {
        unlink(tmp);
    } else {
        fsync_dir(d);
        *removed += c.removed;
        if (current) {
            d->nrec = c.kept;
            char oerr[512];
            if (reopen(d, 0, oerr, sizeof(oerr)) != AP_OK) /* the next append retries */
                ap_warn("%s", oerr);
        } else {
            d->nrec1 = c.kept;
            d->size1 = c.bytes;
        }
    }
    ap_free(c.out);
    ap_free(tmp);
    return rc;
}

int dlq_remove(dlq *d, const uint64_t *ids, size_t n, size_t *removed, char *err, size_t errlen)
{
    size_t done = 0;
    int rc = AP_OK;
    if (n > 0) {
        uint64_t *sorted = ap_malloc(n * sizeof(*sorted));
        memcpy(sorted, ids, n * sizeof(*sorted));
        qsort(sorted, n, sizeof(*sorted), cmp_u64);
        rc = rewrite_file(d, 0, sorted, n, &done, err, errlen);
        if (rc == AP_OK)
            rc = rewrite_file(d, 1, sorted, n, &done, err, errlen);
        ap_free(sorted);
    }
    if (removed)
        *removed = done;
    return rc;
}

int dlq_purge(dlq *d, char *err, size_t errlen)
{
    if (unlink(d->path1) != 0 && errno != ENOENT) {
        sys_err(err, errlen, d->path1, "unlink", errno);
        return AP_ERR;
    }
    d->nrec1 = 0;
    d->size1 = 0;
    if (unlink(d->path) != 0 && errno != ENOENT) {
        sys_err(err, errlen, d->path, "unlink", errno);
        fsync_dir(d);
        return AP_ERR;
    }
    d->nrec = 0;
    d->size = 0;
    char oerr[512];
    if (reopen(d, 0, oerr, sizeof(oerr)) != AP_OK) { /* the next append retries */
        ap_warn("%s", oerr);
        fsync_dir(d);
    } /* else open_current created PATH and fsync'd the directory */
    return AP_OK;
}

void dlq_close(dlq *d)
{
    if (d == NULL)
        return;
    if (d->fd >= 0)
        close(d->fd);
    ap_free(d->path);
    ap_free(d->path1);
    ap_free(d->dir);
    ap_free(d);
}
