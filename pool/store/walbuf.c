/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * walbuf.c - the gathering VFS (see walbuf.h).  Each file opened through
 * it is a wb_file with the default VFS's own file object right behind it
 * (`real`); every method but a gathering WAL's writes is handed to the
 * real one.  A WAL's gathered bytes are one contiguous run [off, off+len)
 * in buf; anything that could look at the file or rely on it (read,
 * sync, size, truncate, file control, close) writes the run out first.
 * The VFS itself is process-wide state (SQLite keeps VFSes in a global
 * list): registered once by the store, from the loop thread.
 */
#include "walbuf.h"
#include "ap_alloc.h"

#include <string.h>

typedef struct {
    sqlite3_file base;    /* pMethods = wb_methods */
    sqlite3_file *real;   /* the default VFS's file, right after this struct */
    int wal;              /* opened as a write-ahead log */
    int gather;           /* walbuf_gather on */
    char *buf;
    size_t len, cap;
    sqlite3_int64 off;    /* where buf[0] goes */
} wb_file;

/* The default VFS, and ours: a copy of it with xOpen replaced. */
static sqlite3_vfs *wb_real_vfs;
static sqlite3_vfs wb_vfs;

static int wb_flush(wb_file *w)
{
    if (w->len == 0)
        return SQLITE_OK;
    int rc = w->real->pMethods->xWrite(w->real, w->buf, (int)w->len, w->off);
    w->len = 0;
    return rc;
}

static int wb_close(sqlite3_file *f)
{
    wb_file *w = (wb_file *)f;
    int rc = wb_flush(w);
    int rc2 = w->real->pMethods->xClose(w->real);
    ap_free(w->buf);
    w->buf = NULL;
    w->cap = 0;
    return rc != SQLITE_OK ? rc : rc2;
}

static int wb_read(sqlite3_file *f, void *p, int amt, sqlite3_int64 off)
{
    wb_file *w = (wb_file *)f;
    int rc = wb_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xRead(w->real, p, amt, off);
}

static int wb_write(sqlite3_file *f, const void *p, int amt, sqlite3_int64 off)
{
    wb_file *w = (wb_file *)f;
    if (!w->gather || amt <= 0)
        return w->real->pMethods->xWrite(w->real, p, amt, off);
    if (w->len && (off != w->off + (sqlite3_int64)w->len || w->len + (size_t)amt > WALBUF_MAX)) {
        int rc = wb_flush(w);
        if (rc != SQLITE_OK)
            return rc;
    }
    if ((size_t)amt > WALBUF_MAX)
        return w->real->pMethods->xWrite(w->real, p, amt, off);
    if (w->len + (size_t)amt > w->cap) {
        size_t cap = w->cap ? w->cap : 64 * 1024;
        while (cap < w->len + (size_t)amt)
            cap *= 2;
        w->buf = ap_realloc(w->buf, cap);
        w->cap = cap;
    }
    if (w->len == 0)
        w->off = off;
    memcpy(w->buf + w->len, p, (size_t)amt);
    w->len += (size_t)amt;
    return SQLITE_OK;
}

static int wb_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    wb_file *w = (wb_file *)f;
    int rc = wb_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xTruncate(w->real, size);
}

static int wb_sync(sqlite3_file *f, int flags)
{
    wb_file *w = (wb_file *)f;
    int rc = wb_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xSync(w->real, flags);
}

static int wb_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    wb_file *w = (wb_file *)f;
    int rc = wb_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFileSize(w->real, size);
}

static int wb_lock(sqlite3_file *f, int lock)
{
    wb_file *w = (wb_file *)f;
    return w->real->pMethods->xLock(w->real, lock);
}

static int wb_unlock(sqlite3_file *f, int lock)
{
    wb_file *w = (wb_file *)f;
    return w->real->pMethods->xUnlock(w->real, lock);
}

static int wb_check_reserved(sqlite3_file *f, int *out)
{
    wb_file *w = (wb_file *)f;
    return w->real->pMethods->xCheckReservedLock(w->real, out);
}

static int wb_file_control(sqlite3_file *f, int op, void *arg)
{
    wb_file *w = (wb_file *)f;
    int rc = wb_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFileControl(w->real, op, arg);
}

static int wb_sector_size(sqlite3_file *f)
{
    wb_file *w = (wb_file *)f;
    return w->real->pMethods->xSectorSize(w->real);
}

static int wb_device_characteristics(sqlite3_file *f)
{
    wb_file *w = (wb_file *)f;
    return w->real->pMethods->xDeviceCharacteristics(w->real);
}

static int wb_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
    wb_file *w = (wb_file *)f;
    return w->real->pMethods->xShmMap(w->real, pg, pgsz, extend, pp);
}

static int wb_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    wb_file *w = (wb_file *)f;
    return w->real->pMethods->xShmLock(w->real, offset, n, flags);
}

static void wb_shm_barrier(sqlite3_file *f)
{
    wb_file *w = (wb_file *)f;
    w->real->pMethods->xShmBarrier(w->real);
}

static int wb_shm_unmap(sqlite3_file *f, int del)
{
    wb_file *w = (wb_file *)f;
    return w->real->pMethods->xShmUnmap(w->real, del);
}

static int wb_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
    wb_file *w = (wb_file *)f;
    return w->real->pMethods->xFetch(w->real, off, amt, pp);
}

static int wb_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    wb_file *w = (wb_file *)f;
    return w->real->pMethods->xUnfetch(w->real, off, p);
}

static const sqlite3_io_methods wb_methods = {
    .iVersion = 3,
    .xClose = wb_close,
    .xRead = wb_read,
    .xWrite = wb_write,
    .xTruncate = wb_truncate,
    .xSync = wb_sync,
    .xFileSize = wb_file_size,
    .xLock = wb_lock,
    .xUnlock = wb_unlock,
    .xCheckReservedLock = wb_check_reserved,
    .xFileControl = wb_file_control,
    .xSectorSize = wb_sector_size,
    .xDeviceCharacteristics = wb_device_characteristics,
    .xShmMap = wb_shm_map,
    .xShmLock = wb_shm_lock,
    .xShmBarrier = wb_shm_barrier,
    .xShmUnmap = wb_shm_unmap,
    .xFetch = wb_fetch,
    .xUnfetch = wb_unfetch,
};

/* sizeof(wb_file) rounded up so the real file behind it is aligned. */
#define WB_HEAD ((sizeof(wb_file) + 15) & ~(size_t)15)

static int wb_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags, int *out_flags)
{
    (void)vfs;
    wb_file *w = (wb_file *)f;
    memset(w, 0, sizeof(*w));
    w->real = (sqlite3_file *)(void *)((char *)w + WB_HEAD);
    int rc = wb_real_vfs->xOpen(wb_real_vfs, name, w->real, flags, out_flags);
    if (w->real->pMethods == NULL)
        return rc; /* nothing opened: w->base.pMethods stays NULL, so SQLite closes nothing */
    if (w->real->pMethods->iVersion < 3) { /* the default VFS on Linux has 3; no shims over older ones */
        w->real->pMethods->xClose(w->real);
        return SQLITE_CANTOPEN;
    }
    w->wal = (flags & SQLITE_OPEN_WAL) != 0;
    w->base.pMethods = &wb_methods;
    return rc;
}

int walbuf_register(void)
{
    if (wb_real_vfs)
        return SQLITE_OK;
    sqlite3_vfs *real = sqlite3_vfs_find(NULL);
    if (real == NULL)
        return SQLITE_ERROR;
    wb_vfs = *real;
    wb_vfs.pNext = NULL;
    wb_vfs.zName = WALBUF_VFS;
    wb_vfs.szOsFile = (int)(WB_HEAD + (size_t)real->szOsFile);
    wb_vfs.xOpen = wb_open;
    wb_real_vfs = real;
    return sqlite3_vfs_register(&wb_vfs, 0);
}

int walbuf_gather(sqlite3 *db, int on)
{
    sqlite3_file *f = NULL;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f) != SQLITE_OK || f == NULL ||
        f->pMethods != &wb_methods)
        return SQLITE_NOTFOUND;
    wb_file *w = (wb_file *)f;
    if (!w->wal)
        return SQLITE_NOTFOUND;
    if (w->gather == on)
        return SQLITE_OK;
    int rc = on ? SQLITE_OK : wb_flush(w);
    w->gather = on;
    return rc;
}
