/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sstore_sqlite.c - the SQLite session store backend (sstore_be.h): an
 * embedded database (Debian's libsqlite3) in WAL mode, owned by one
 * store thread per pool, so the event loop never waits on the disk.
 *
 * The loop hands operations to the thread through an inbox (a mutex and
 * a condition variable); the thread takes everything waiting at once
 * and runs it in one transaction (BEGIN IMMEDIATE ... COMMIT): group
 * commit, many sessions' writes for one sync of the WAL.  Operations run
 * in the order they were submitted, so one key's operations complete in
 * order.  Finished operations go back through an outbox, and an eventfd
 * wakes the loop, which calls back (sstore_complete).  A transaction
 * that fails fails every operation in it (UNAVAILABLE with SQLite's
 * message): none of its writes happened.
 *
 * Durability: sessionSync (sstore_set_sync), applied before each batch:
 * synchronous=FULL by default, so a committed state survives a crash of
 * the machine, not only of agentpoold (the group commit is what keeps
 * that affordable); NORMAL when the operator trades the last
 * transactions on a machine crash for fewer syncs.  The file is created 0600 through ap_safefile_open
 * (a symbolic link at the path is refused) before SQLite opens it with
 * SQLITE_OPEN_NOFOLLOW.  busy_timeout lets pools (or servers) share one
 * file: only this thread waits on a lock.
 *
 * The database is opened through walbuf.h's VFS: with synchronous=FULL
 * a commit's WAL frames reach the file in one write, before its sync
 * (SQLite writes each frame as two: ~24 pwrite(2)s a transaction of 12).
 *
 * The WAL is checkpointed every 10000 pages (SQLite's default is 1000:
 * a fifth less CPU per 1 KiB write, measured) and cut back to 64 MiB
 * after a checkpoint.
 *
 * Table agentpool_sessions(pool, key BLOB, state BLOB, updated INTEGER
 * ms since the epoch), UNIQUE(pool, key): keys as BLOBs compare
 * bytewise, which is the order sstore_list promises.  A rowid table, not
 * WITHOUT ROWID (rows of kilobytes), and no index on `updated`: keeping
 * one cost a quarter more CPU per write (measured with 1 KiB states, 14
 * writes a transaction), while the sweep that would use it runs at most
 * every min(ttl / 10, 60 s) and may scan.  Expired rows (updated older
 * than sessionTtl) are never returned, and the sweep deletes them in
 * batches of 1000, on this thread.  A get and a put answer the row's
 * rowid as their hint (sstore.h), and a put that brings it back looks the
 * row up by it (pool and key still checked) instead of through the
 * (pool, key) index.
 *
 * Thread states: OPENING (the first open not tried yet) -> UP (the
 * database is open) | DOWN (the open failed: every operation fails, the
 * open is tried again at most once a second) -> ... -> STOPPING (the
 * inbox is finished, then the thread exits).
 */
#include "sstore_be.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_log.h"
#include "ap_safefile.h"
#include "walbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define SWEEP_BATCH 1000
#define REOPEN_MS 1000
#define BUSY_TIMEOUT_MS 5000
#define WAIT_READY_MS 10000

typedef enum { SQ_OPENING = 0, SQ_UP, SQ_DOWN } sq_db_state;

enum {
    ST_GET, ST_UPDATE_AT, ST_UPDATE, ST_INSERT, ST_TOUCH, ST_DEL, ST_LIST, ST_SWEEP, ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
    ST_COUNT
};

static const char *const sql_text[ST_COUNT] = {
    "SELECT state, updated, rowid FROM agentpool_sessions WHERE pool = ?1 AND key = ?2 AND updated >= ?3",
    /* a put is an UPDATE, and an INSERT only when no row changed: most
     * puts rewrite a session that has one (a little cheaper than UPSERT).
     * With the row's rowid (the op's hint, from its last get or put) the
     * UPDATE finds it in the table's own b-tree, without the (pool, key)
     * index (a fifth of this thread's instructions per put, measured);
     * pool and key are still checked, so a stale hint changes nothing. */
    "UPDATE agentpool_sessions SET state = ?3, updated = ?4 WHERE rowid = ?5 AND pool = ?1 AND key = ?2",
    "UPDATE agentpool_sessions SET state = ?3, updated = ?4 WHERE pool = ?1 AND key = ?2",
    "INSERT INTO agentpool_sessions(pool, key, state, updated) VALUES (?1, ?2, ?3, ?4)",
    "UPDATE agentpool_sessions SET updated = ?3 WHERE pool = ?1 AND key = ?2",
    "DELETE FROM agentpool_sessions WHERE pool = ?1 AND key = ?2 AND updated >= ?3",
    "SELECT key, updated, length(state) FROM agentpool_sessions WHERE pool = ?1 AND key > ?2 AND updated >= ?3 "
    "ORDER BY key LIMIT ?4",
    "DELETE FROM agentpool_sessions WHERE pool = ?1 AND key IN "
    "(SELECT key FROM agentpool_sessions WHERE pool = ?1 AND updated < ?2 LIMIT 1000)",
    /* prepared once like the rest: sqlite3_exec would parse them at every batch */
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
};

typedef struct {
    sstore *s;
    char *path;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;      /* the thread waits on it for work; start-up waits for the first open */
    queue_link inbox;         /* submitted, not taken (mu) */
    queue_link outbox;        /* done, not called back (mu) */
    int stopping;             /* mu */
    int opened;               /* mu: the first open was tried */
    char open_err[256];       /* mu: why it failed */
    uint64_t ttl_ms;          /* mu */
    int ttl_changed;          /* mu: sweep again now */
    sstore_sync sync;         /* mu: what s->sync says */
    sstore_sync sync_applied; /* the thread's: what the connection does (PRAGMA synchronous) */
    int sync_set;             /* the thread's: sync_applied was applied to this connection */
    /* counters the thread keeps (mu), copied into s->st by the loop */
    int up;
    uint64_t transactions, transaction_writes, expired;
    int efd;                  /* eventfd: the thread tells the loop the outbox has something */
    struct event *ev;
    /* the thread's own */
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    sq_db_state dbs;
    uint64_t reopen_at_ms, sweep_at_ms;
    int logged_down;
} sq;

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the thread ------------------------------------------------------ */

static void db_close(sq *q)
{
    q->sync_set = 0;
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(q->st[i]);
        q->st[i] = NULL;
    }
    sqlite3_close_v2(q->db);
    q->db = NULL;
}

/* Opens the database, makes the table and prepares the statements.
 * AP_ERR with err filled. */
static int db_open(sq *q, char *err, size_t errlen)
{
    int fd = ap_safefile_open(q->path, O_RDWR | O_CREAT, 0600, AP_SAFEFILE_NOBODY_ELSE, err, errlen);
    if (fd < 0)
        return AP_ERR;
    close(fd);
    int rc = sqlite3_open_v2(q->path, &q->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX,
                             sqlite3_vfs_find(WALBUF_VFS) ? WALBUF_VFS : NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", q->path, q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
        db_close(q);
        return AP_ERR;
    }
    sqlite3_busy_timeout(q->db, BUSY_TIMEOUT_MS);
    static const char setup[] =
        "PRAGMA journal_mode=WAL; PRAGMA cache_size=-16384; PRAGMA wal_autocheckpoint=10000; "
        "PRAGMA journal_size_limit=67108864; "
        "CREATE TABLE IF NOT EXISTS agentpool_sessions(pool TEXT NOT NULL, key BLOB NOT NULL, state BLOB NOT NULL, "
        "updated INTEGER NOT NULL, UNIQUE(pool, key));";
    char *emsg = NULL;
    if (sqlite3_exec(q->db, setup, NULL, NULL, &emsg) != SQLITE_OK) {
        snprintf(err, errlen, "%s: setting up: %s", q->path, emsg ? emsg : sqlite3_errmsg(q->db));
        sqlite3_free(emsg);
        db_close(q);
        return AP_ERR;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(q->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i], NULL) != SQLITE_OK) {
            snprintf(err, errlen, "%s: preparing statement %d: %s", q->path, i, sqlite3_errmsg(q->db));
            db_close(q);
            return AP_ERR;
        }
    }
    return AP_OK;
}

/* Tries to open when it is time (OPENING, or DOWN a second after the
 * last try).  Reports the first try to start-up; logs an outage once
 * and its end. */
static void try_open(sq *q, uint64_t now)
{
    if (q->dbs == SQ_UP || (q->dbs == SQ_DOWN && now < q->reopen_at_ms))
        return;
    char err[256];
    int ok = db_open(q, err, sizeof(err)) == AP_OK;
    pthread_mutex_lock(&q->mu);
    if (!q->opened) {
        q->opened = 1;
        if (!ok)
            snprintf(q->open_err, sizeof(q->open_err), "%s", err);
        pthread_cond_broadcast(&q->cond);
    }
    q->up = ok;
    pthread_mutex_unlock(&q->mu);
    if (ok) {
        if (q->logged_down)
            ap_info("pool %s: session store sqlite:%s is open again", q->s->pool, q->path);
        q->logged_down = 0;
        q->dbs = SQ_UP;
        return;
    }
    if (!q->logged_down)
        ap_error("pool %s: session store: cannot open %s; session messages are answered store_unavailable until "
                 "it opens (tried again every %d ms)", q->s->pool, err, REOPEN_MS);
    snprintf(q->open_err, sizeof(q->open_err), "%s", err); /* the thread's copy, for failing operations */
    q->logged_down = 1;
    q->dbs = SQ_DOWN;
    q->reopen_at_ms = now + REOPEN_MS;
}

/* Applies the wanted durability to the open connection when it differs. */
static void apply_sync(sq *q, sstore_sync want)
{
    if (q->dbs != SQ_UP || (q->sync_set && q->sync_applied == want))
        return;
    const char *sql = want == SSTORE_SYNC_NORMAL ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL";
    if (sqlite3_exec(q->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        ap_warn("pool %s: session store %s: %s: %s", q->s->pool, q->path, sql, sqlite3_errmsg(q->db));
        return;
    }
    q->sync_applied = want;
    q->sync_set = 1;
}

/* Binds the pool, op's key and the cutoff of live rows (?1 ?2 ?3). */
static sqlite3_stmt *bind_key(sq *q, int which, const sstore_op *op, uint64_t cutoff)
{
    sqlite3_stmt *st = q->st[which];
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, q->s->pool, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, op->key, (int)op->key_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)cutoff);
    return st;
}

/* The result of a get or list, in one allocation op->be, for the loop. */
static void keep_value(sstore_op *op, const void *val, size_t len, uint64_t updated)
{
    char *b = ap_malloc(len + 1);
    if (len) /* SQLite gives NULL for an empty value */
        memcpy(b, val, len);
    b[len] = '\0';
    op->be = b;
    op->res.val = b;
    op->res.len = len;
    op->res.updated_ms = updated;
}

static int run_list(sq *q, sstore_op *op, uint64_t cutoff)
{
    sqlite3_stmt *st = bind_key(q, ST_LIST, op, cutoff);
    sqlite3_bind_int(st, 4, (int)op->limit + 1);
    size_t n = 0, cap = op->limit + 1, bytes = 0;
    sstore_entry *e = ap_calloc(cap, sizeof(*e));
    char **keys = ap_calloc(cap, sizeof(*keys));
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < cap) {
        size_t kl = (size_t)sqlite3_column_bytes(st, 0);
        keys[n] = ap_malloc(kl + 1);
        if (kl)
            memcpy(keys[n], sqlite3_column_blob(st, 0), kl);
        keys[n][kl] = '\0';
        e[n].key_len = kl;
        e[n].updated_ms = (uint64_t)sqlite3_column_int64(st, 1);
        e[n].bytes = (size_t)sqlite3_column_int64(st, 2);
        bytes += kl + 1;
        n++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        for (size_t i = 0; i < n; i++)
            ap_free(keys[i]);
        ap_free(keys);
        ap_free(e);
        return rc;
    }
    op->res.more = n > op->limit;
    if (op->res.more)
        n = op->limit;
    /* one block: the entries, then their keys */
    char *blk = ap_malloc(n * sizeof(sstore_entry) + bytes + 1);
    sstore_entry *out = (sstore_entry *)(void *)blk;
    char *kp = blk + n * sizeof(sstore_entry);
    for (size_t i = 0; i < n; i++) {
        out[i] = e[i];
        memcpy(kp, keys[i], e[i].key_len + 1);
        out[i].key = kp;
        kp += e[i].key_len + 1;
    }
    for (size_t i = 0; i < cap; i++)
        ap_free(keys[i]);
    ap_free(keys);
    ap_free(e);
    op->be = blk;
    op->res.entries = out;
    op->res.nentries = n;
    return SQLITE_OK;
}

/* Runs one operation inside the open transaction: SQLITE_OK (res filled)
 * or an SQLite error code. */
static int run_op(sq *q, sstore_op *op, uint64_t now, uint64_t cutoff, uint64_t *writes)
{
    sqlite3_stmt *st;
    int rc;
    op->res.status = SSTORE_OK;
    switch (op->kind) {
    case SSTORE_GET:
        st = bind_key(q, ST_GET, op, cutoff);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            keep_value(op, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
                       (uint64_t)sqlite3_column_int64(st, 1));
            op->res.hint = (uint64_t)sqlite3_column_int64(st, 2);
            sqlite3_reset(st); /* copied out: no read left open past the transaction */
            return SQLITE_OK;
        }
        if (rc == SQLITE_DONE)
            op->res.status = SSTORE_MISSING;
        return rc == SQLITE_DONE ? SQLITE_OK : rc;
    case SSTORE_PUT:
        for (int which = op->hint ? ST_UPDATE_AT : ST_UPDATE; which <= ST_INSERT; which++) {
            st = bind_key(q, which, op, cutoff);
            sqlite3_bind_blob(st, 3, op->val, (int)op->val_len, SQLITE_STATIC);
            sqlite3_bind_int64(st, 4, (sqlite3_int64)now);
            if (which == ST_UPDATE_AT)
                sqlite3_bind_int64(st, 5, (sqlite3_int64)op->hint);
            rc = sqlite3_step(st);
            if (rc != SQLITE_DONE)
                return rc;
            if (which == ST_INSERT) {
                op->res.hint = (uint64_t)sqlite3_last_insert_rowid(q->db);
                break;
            }
            if (sqlite3_changes(q->db) > 0) {
                op->res.hint = which == ST_UPDATE_AT ? op->hint : 0; /* the next put finds it by its key */
                break;
            }
        }
        (*writes)++;
        return SQLITE_OK;
    case SSTORE_TOUCH:
        st = bind_key(q, ST_TOUCH, op, now); /* ?3 is the new time here */
        break;
    case SSTORE_DEL:
        st = bind_key(q, ST_DEL, op, cutoff);
        break;
    case SSTORE_LIST:
        return run_list(q, op, cutoff);
    default:
        return SQLITE_MISUSE;
    }
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        return rc;
    (*writes)++;
    if (op->kind == SSTORE_DEL && sqlite3_changes(q->db) == 0)
        op->res.status = SSTORE_MISSING;
    return SQLITE_OK;
}

static void fail_op(sstore_op *op, const char *why)
{
    ap_free(op->be);
    op->be = NULL;
    memset(&op->res, 0, sizeof(op->res));
    snprintf(op->why, sizeof(op->why), "%s", why);
    op->res.status = SSTORE_UNAVAILABLE;
    op->res.why = op->why;
}

/* Runs statement `which` (no bindings, no rows: BEGIN, COMMIT,
 * ROLLBACK) and resets it: SQLITE_OK or SQLite's error code. */
static int step_done(sq *q, int which)
{
    int rc = sqlite3_step(q->st[which]);
    sqlite3_reset(q->st[which]);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Runs a batch in one transaction; every op in it gets its result. */
static void run_batch(sq *q, queue_link *batch, uint64_t ttl_ms, sstore_sync sync)
{
    uint64_t now = wall_ms(), cutoff = now > ttl_ms ? now - ttl_ms : 0, writes = 0;
    char why[256];
    try_open(q, now);
    apply_sync(q, sync);
    if (q->dbs != SQ_UP) {
        for (queue_link *l = batch->next; l != batch; l = l->next)
            fail_op(queue_entry(l, sstore_op, link), q->open_err);
        return;
    }
    /* every commit's frames in one write where every commit syncs (walbuf.h); the WAL may have been
     * opened again since the last batch, so this is said each time */
    walbuf_gather(q->db, q->sync_set && q->sync_applied == SSTORE_SYNC_FULL);
    int rc = step_done(q, ST_BEGIN);
    for (queue_link *l = batch->next; rc == SQLITE_OK && l != batch; l = l->next)
        rc = run_op(q, queue_entry(l, sstore_op, link), now, cutoff, &writes);
    if (rc == SQLITE_OK)
        rc = step_done(q, ST_COMMIT);
    if (rc == SQLITE_OK) {
        if (writes) {
            pthread_mutex_lock(&q->mu);
            q->transactions++;
            q->transaction_writes += writes;
            pthread_mutex_unlock(&q->mu);
        }
        return;
    }
    snprintf(why, sizeof(why), "%s: %s", q->path, sqlite3_errmsg(q->db));
    ap_error("pool %s: session store: a transaction of %s failed: %s", q->s->pool, "queued operations", why);
    step_done(q, ST_ROLLBACK);
    for (queue_link *l = batch->next; l != batch; l = l->next)
        fail_op(queue_entry(l, sstore_op, link), why);
    if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB || rc == SQLITE_IOERR || rc == SQLITE_CANTOPEN) {
        db_close(q); /* open it again (and say so) before the next batch */
        q->dbs = SQ_DOWN;
        q->logged_down = 1;
        snprintf(q->open_err, sizeof(q->open_err), "%s", why);
        q->reopen_at_ms = now + REOPEN_MS;
    }
}

static void tell_loop(sq *q)
{
    uint64_t one = 1;
    while (write(q->efd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

/* Deletes expired rows, a batch at a time, each its own transaction so
 * the writes of sessions are never held up long. */
static void sweep(sq *q, uint64_t ttl_ms)
{
    uint64_t now = wall_ms();
    if (q->dbs != SQ_UP || now < q->sweep_at_ms)
        return;
    uint64_t every = ttl_ms / 10 < 60000 ? ttl_ms / 10 : 60000;
    q->sweep_at_ms = now + (every ? every : 1);
    uint64_t cutoff = now > ttl_ms ? now - ttl_ms : 0, n = 0;
    sqlite3_stmt *st = q->st[ST_SWEEP];
    for (;;) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, q->s->pool, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)cutoff);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) {
            ap_warn("pool %s: session store: sweeping expired states of %s: %s", q->s->pool, q->path,
                    sqlite3_errmsg(q->db));
            break;
        }
        int c = sqlite3_changes(q->db);
        n += (uint64_t)c;
        if (c < SWEEP_BATCH)
            break;
        pthread_mutex_lock(&q->mu);
        int stop = q->stopping || !link_empty(&q->inbox); /* sessions first: sweep the rest next time */
        pthread_mutex_unlock(&q->mu);
        if (stop) {
            q->sweep_at_ms = now;
            break;
        }
    }
    sqlite3_reset(st);
    if (n) {
        pthread_mutex_lock(&q->mu);
        q->expired += n;
        pthread_mutex_unlock(&q->mu);
        tell_loop(q); /* the loop copies the counters when it drains */
        ap_debug("pool %s: session store: %llu expired session states deleted", q->s->pool, (unsigned long long)n);
    }
}

static void *thread_main(void *arg)
{
    sq *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        uint64_t ttl = q->ttl_ms;
        if (q->ttl_changed) {
            q->ttl_changed = 0;
            q->sweep_at_ms = 0;
        }
        pthread_mutex_unlock(&q->mu);
        try_open(q, wall_ms());
        sweep(q, ttl);
        pthread_mutex_lock(&q->mu);
        if (link_empty(&q->inbox)) {
            if (q->stopping)
                break;
            /* sleep until work, the next sweep or the next open attempt */
            uint64_t now = wall_ms(), due = q->dbs == SQ_UP ? q->sweep_at_ms : q->reopen_at_ms;
            uint64_t wait = due > now ? due - now : 1;
            if (wait > 60000)
                wait = 60000;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += (time_t)(wait / 1000);
            ts.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&q->cond, &q->mu, &ts);
            continue;
        }
        queue_link batch;
        link_init(&batch);
        while (!link_empty(&q->inbox)) {
            queue_link *l = q->inbox.next;
            link_del(l);
            link_add_tail(&batch, l);
        }
        ttl = q->ttl_ms;
        sstore_sync sync = q->sync;
        pthread_mutex_unlock(&q->mu);
        run_batch(q, &batch, ttl, sync);
        pthread_mutex_lock(&q->mu);
        while (!link_empty(&batch)) {
            queue_link *l = batch.next;
            link_del(l);
            link_add_tail(&q->outbox, l);
        }
        pthread_mutex_unlock(&q->mu);
        tell_loop(q);
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    db_close(q);
    return NULL;
}

/* ---- the loop's side --------------------------------------------------- */

/* Takes what the thread finished and calls back, in order. */
static void drain(sq *q)
{
    queue_link done;
    link_init(&done);
    pthread_mutex_lock(&q->mu);
    while (!link_empty(&q->outbox)) {
        queue_link *l = q->outbox.next;
        link_del(l);
        link_add_tail(&done, l);
    }
    q->s->st.up = q->up;
    q->s->st.transactions = q->transactions;
    q->s->st.transaction_writes = q->transaction_writes;
    q->s->st.expired = q->expired;
    pthread_mutex_unlock(&q->mu);
    while (!link_empty(&done)) {
        sstore_op *op = queue_entry(done.next, sstore_op, link);
        link_del(&op->link);
        void *be = op->be;
        sstore_complete(op, &op->res);
        ap_free(be);
    }
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    uint64_t n;
    (void)what;
    while (read(fd, &n, sizeof(n)) < 0 && errno == EINTR)
        ;
    drain(arg);
}

static void sq_free(sq *q)
{
    if (q->ev)
        event_free(q->ev);
    if (q->efd >= 0)
        close(q->efd);
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->mu);
    ap_free(q->path);
    ap_free(q);
}

/* The library's process-wide settings, before anything opens a database:
 * no memory statistics (with them every allocation of SQLite's takes a
 * global mutex: 6% of a store thread's instructions, and no one here
 * reads them). */
static pthread_once_t library_once = PTHREAD_ONCE_INIT;

static void library_init(void)
{
    if (sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK)
        ap_debug("session store: SQLite's memory statistics stay on (it was initialised already)");
    sqlite3_initialize();
    if (walbuf_register() != SQLITE_OK)
        ap_warn("session store: cannot register SQLite VFS %s; databases open with the default one", WALBUF_VFS);
}

static int sqlite_start(sstore *s, const char *rest, int wait_ready, char *err, size_t errlen)
{
    pthread_once(&library_once, library_init); /* on the loop, before any store thread runs */
    sq *q = ap_calloc(1, sizeof(*q));
    q->s = s;
    q->path = ap_strdup(rest);
    q->ttl_ms = s->ttl_ms;
    q->sync = s->sync;
    q->efd = -1;
    link_init(&q->inbox);
    link_init(&q->outbox);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cond, NULL);
    q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->efd < 0) {
        snprintf(err, errlen, "pool %s: session store: eventfd: %s", s->pool, strerror(errno));
        sq_free(q);
        return AP_ERR;
    }
    q->ev = event_new(s->base, q->efd, EV_READ | EV_PERSIST, wake_cb, q);
    if (q->ev == NULL || event_add(q->ev, NULL) != 0) {
        snprintf(err, errlen, "pool %s: session store: cannot add its event", s->pool);
        sq_free(q);
        return AP_ERR;
    }
    int rc = pthread_create(&q->thread, NULL, thread_main, q);
    if (rc != 0) {
        snprintf(err, errlen, "pool %s: session store: starting its thread: %s", s->pool, strerror(rc));
        sq_free(q);
        return AP_ERR;
    }
    s->be_data = q;
    if (!wait_ready)
        return AP_OK;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WAIT_READY_MS / 1000;
    pthread_mutex_lock(&q->mu);
    while (!q->opened && pthread_cond_timedwait(&q->cond, &q->mu, &ts) == 0)
        ;
    int opened = q->opened, up = q->up;
    char why[256];
    snprintf(why, sizeof(why), "%s", opened ? q->open_err : "no answer from the store thread in 10 s");
    pthread_mutex_unlock(&q->mu);
    if (opened && up) {
        s->st.up = 1;
        return AP_OK;
    }
    snprintf(err, errlen, "pool %s: session store: cannot open sqlite:%s: %s", s->pool, q->path, why);
    s->be->stop(s);
    return AP_ERR;
}

static void sqlite_submit(sstore *s, sstore_op *op)
{
    sq *q = s->be_data;
    pthread_mutex_lock(&q->mu);
    link_add_tail(&q->inbox, &op->link);
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->mu);
}

static void sqlite_stop(sstore *s)
{
    sq *q = s->be_data;
    if (q == NULL)
        return;
    pthread_mutex_lock(&q->mu);
    q->stopping = 1;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL); /* it finishes its inbox first: writes handed over are not lost */
    drain(q);
    sq_free(q);
    s->be_data = NULL;
}

static void sqlite_set_sync(sstore *s)
{
    sq *q = s->be_data;
    pthread_mutex_lock(&q->mu);
    q->sync = s->sync;
    pthread_mutex_unlock(&q->mu);
}

static void sqlite_set_ttl(sstore *s)
{
    sq *q = s->be_data;
    pthread_mutex_lock(&q->mu);
    q->ttl_ms = s->ttl_ms;
    q->ttl_changed = 1;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->mu);
}

const sstore_backend sstore_sqlite_backend = {"sqlite", sqlite_start, sqlite_submit, sqlite_stop, sqlite_set_ttl,
                                               sqlite_set_sync};
