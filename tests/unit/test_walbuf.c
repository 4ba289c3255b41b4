/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_walbuf.c - the gathering VFS (pool/store/walbuf.h) on real files
 * in a temp directory.  Under it, as the default VFS it wraps, sits a
 * counting VFS of this file's (over the real default one) that counts the
 * writes that reach a WAL file.
 *
 * What it proves: with gathering on, a commit of many rows reaches the
 * WAL as one write, and another connection (plain default VFS) reads
 * every row of it right after the commit; without gathering the same
 * commit is two writes a page (so the count tells them apart); frames
 * that spill out of a small page cache in the middle of a transaction
 * are read back right by the same transaction and by others after it
 * (200 KiB of them: more than WALBUF_MAX, and more than the default VFS
 * writes in one call);
 * turning gathering off writes out nothing lost; walbuf_gather refuses
 * a database that was not opened through it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "walbuf.h"
#include "ap_common.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the counting VFS under it ------------------------------------------ */

typedef struct {
    sqlite3_file base;
    sqlite3_file *real;
    int wal;
} cnt_file;

static sqlite3_vfs *g_real;
static sqlite3_vfs g_cnt_vfs;
static sqlite3_io_methods g_cnt_methods;
static int g_wal_writes;

static int cnt_write(sqlite3_file *f, const void *p, int amt, sqlite3_int64 off)
{
    cnt_file *c = (cnt_file *)f;
    if (c->wal)
        g_wal_writes++;
    return c->real->pMethods->xWrite(c->real, p, amt, off);
}

/* Every other method: the real file's, through these. */
#define FWD(name, ...) ((cnt_file *)f)->real->pMethods->name(((cnt_file *)f)->real, __VA_ARGS__)
static int cnt_close(sqlite3_file *f)
{
    cnt_file *c = (cnt_file *)f;
    return c->real->pMethods->xClose(c->real);
}
static int cnt_read(sqlite3_file *f, void *p, int amt, sqlite3_int64 off) { return FWD(xRead, p, amt, off); }
static int cnt_truncate(sqlite3_file *f, sqlite3_int64 size) { return FWD(xTruncate, size); }
static int cnt_sync(sqlite3_file *f, int flags) { return FWD(xSync, flags); }
static int cnt_file_size(sqlite3_file *f, sqlite3_int64 *size) { return FWD(xFileSize, size); }
static int cnt_lock(sqlite3_file *f, int l) { return FWD(xLock, l); }
static int cnt_unlock(sqlite3_file *f, int l) { return FWD(xUnlock, l); }
static int cnt_check(sqlite3_file *f, int *out) { return FWD(xCheckReservedLock, out); }
static int cnt_fcntl(sqlite3_file *f, int op, void *arg) { return FWD(xFileControl, op, arg); }
static int cnt_sector(sqlite3_file *f)
{
    cnt_file *c = (cnt_file *)f;
    return c->real->pMethods->xSectorSize(c->real);
}
static int cnt_dev(sqlite3_file *f)
{
    cnt_file *c = (cnt_file *)f;
    return c->real->pMethods->xDeviceCharacteristics(c->real);
}
static int cnt_shm_map(sqlite3_file *f, int pg, int sz, int ext, void volatile **pp) { return FWD(xShmMap, pg, sz, ext, pp); }
static int cnt_shm_lock(sqlite3_file *f, int off, int n, int flags) { return FWD(xShmLock, off, n, flags); }
static void cnt_shm_barrier(sqlite3_file *f)
{
    cnt_file *c = (cnt_file *)f;
    c->real->pMethods->xShmBarrier(c->real);
}
static int cnt_shm_unmap(sqlite3_file *f, int del) { return FWD(xShmUnmap, del); }
static int cnt_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp) { return FWD(xFetch, off, amt, pp); }
static int cnt_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p) { return FWD(xUnfetch, off, p); }

#define CNT_HEAD ((sizeof(cnt_file) + 15) & ~(size_t)15)

static int cnt_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags, int *out)
{
    (void)vfs;
    cnt_file *c = (cnt_file *)f;
    memset(c, 0, sizeof(*c));
    c->real = (sqlite3_file *)(void *)((char *)c + CNT_HEAD);
    int rc = g_real->xOpen(g_real, name, c->real, flags, out);
    if (c->real->pMethods == NULL)
        return rc;
    c->wal = (flags & SQLITE_OPEN_WAL) != 0;
    c->base.pMethods = &g_cnt_methods;
    return rc;
}

static void counting_vfs_install(void)
{
    g_real = sqlite3_vfs_find(NULL);
    assert_non_null(g_real);
    g_cnt_vfs = *g_real;
    g_cnt_vfs.pNext = NULL;
    g_cnt_vfs.zName = "test-counting";
    g_cnt_vfs.szOsFile = (int)(CNT_HEAD + (size_t)g_real->szOsFile);
    g_cnt_vfs.xOpen = cnt_open;
    g_cnt_methods = (sqlite3_io_methods){.iVersion = 3, .xClose = cnt_close, .xRead = cnt_read,
                                         .xWrite = cnt_write, .xTruncate = cnt_truncate, .xSync = cnt_sync,
                                         .xFileSize = cnt_file_size, .xLock = cnt_lock, .xUnlock = cnt_unlock,
                                         .xCheckReservedLock = cnt_check, .xFileControl = cnt_fcntl,
                                         .xSectorSize = cnt_sector, .xDeviceCharacteristics = cnt_dev,
                                         .xShmMap = cnt_shm_map, .xShmLock = cnt_shm_lock,
                                         .xShmBarrier = cnt_shm_barrier, .xShmUnmap = cnt_shm_unmap,
                                         .xFetch = cnt_fetch, .xUnfetch = cnt_unfetch};
    assert_int_equal(sqlite3_vfs_register(&g_cnt_vfs, 1), SQLITE_OK); /* the default: walbuf wraps it */
}

/* ---- helpers ------------------------------------------------------------ */

static char g_dir[64];
static int g_seq;

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *emsg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &emsg) != SQLITE_OK)
        fail_msg("%s: %s", sql, emsg ? emsg : "?");
}

/* A new database in WAL mode, synchronous=FULL, through vfs (NULL: the default). */
static sqlite3 *open_db(const char *vfs, char *path, size_t cap)
{
    snprintf(path, cap, "%s/db%d", g_dir, g_seq++);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs), SQLITE_OK);
    exec_ok(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=0;"
                "CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB NOT NULL)");
    return db;
}

/* Writes rows [from, to) of ~1 KiB (k's byte repeated) in one transaction. */
static void write_rows(sqlite3 *db, int from, int to)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO t(k, v) VALUES (?1, ?2)", -1, &st, NULL),
                     SQLITE_OK);
    char v[1024];
    exec_ok(db, "BEGIN IMMEDIATE");
    for (int k = from; k < to; k++) {
        memset(v, 'a' + k % 26, sizeof(v));
        sqlite3_bind_int(st, 1, k);
        sqlite3_bind_blob(st, 2, v, sizeof(v), SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    exec_ok(db, "COMMIT");
    sqlite3_finalize(st);
}

/* Every row [from, to) is there, whole, as db sees it. */
static void assert_rows(sqlite3 *db, int from, int to)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT v FROM t WHERE k = ?1", -1, &st, NULL), SQLITE_OK);
    for (int k = from; k < to; k++) {
        sqlite3_bind_int(st, 1, k);
        if (sqlite3_step(st) != SQLITE_ROW)
            fail_msg("row %d is missing", k);
        const unsigned char *v = sqlite3_column_blob(st, 0);
        assert_int_equal(sqlite3_column_bytes(st, 0), 1024);
        for (int i = 0; i < 1024; i++)
            if (v[i] != 'a' + k % 26)
                fail_msg("row %d byte %d is %d", k, i, v[i]);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
}

/* ---- tests -------------------------------------------------------------- */

static void test_a_commit_reaches_the_wal_as_one_write_and_others_read_it_at_once(void **state)
{
    (void)state;
    char path[128];
    sqlite3 *db = open_db(WALBUF_VFS, path, sizeof(path));
    assert_int_equal(walbuf_gather(db, 1), SQLITE_OK);
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open_v2(path, &other, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    for (int round = 0; round < 3; round++) {
        g_wal_writes = 0;
        write_rows(db, round * 20, round * 20 + 20);
        assert_int_equal(g_wal_writes, 1);
        assert_rows(other, 0, round * 20 + 20);
    }
    sqlite3_close(other);
    sqlite3_close(db);
}

static void test_without_gathering_a_commit_is_a_write_per_header_and_page(void **state)
{
    (void)state;
    char path[128];
    sqlite3 *db = open_db(WALBUF_VFS, path, sizeof(path));
    g_wal_writes = 0;
    write_rows(db, 0, 20);
    assert_true(g_wal_writes >= 2 * 5); /* 20 rows of 1 KiB are at least 5 pages */
    assert_rows(db, 0, 20);
    sqlite3_close(db);
}

static void test_frames_spilled_mid_transaction_are_read_back_right(void **state)
{
    (void)state;
    char path[128];
    sqlite3 *db = open_db(WALBUF_VFS, path, sizeof(path));
    assert_int_equal(walbuf_gather(db, 1), SQLITE_OK);
    exec_ok(db, "PRAGMA cache_size=2; PRAGMA cache_spill=1");
    exec_ok(db, "BEGIN IMMEDIATE");
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO t(k, v) VALUES (?1, ?2)", -1, &st, NULL), SQLITE_OK);
    char v[1024];
    for (int k = 0; k < 200; k++) {
        memset(v, 'a' + k % 26, sizeof(v));
        sqlite3_bind_int(st, 1, k);
        sqlite3_bind_blob(st, 2, v, sizeof(v), SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    assert_rows(db, 0, 200); /* inside the transaction: pages come back from the WAL */
    exec_ok(db, "COMMIT");
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open_v2(path, &other, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_rows(other, 0, 200);
    sqlite3_close(other);
    sqlite3_close(db);
}

static void test_turning_gathering_off_loses_nothing(void **state)
{
    (void)state;
    char path[128];
    sqlite3 *db = open_db(WALBUF_VFS, path, sizeof(path));
    assert_int_equal(walbuf_gather(db, 1), SQLITE_OK);
    write_rows(db, 0, 10);
    assert_int_equal(walbuf_gather(db, 0), SQLITE_OK);
    exec_ok(db, "PRAGMA synchronous=NORMAL");
    write_rows(db, 10, 20);
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open_v2(path, &other, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_rows(other, 0, 20);
    sqlite3_close(other);
    sqlite3_close(db);
    /* and after the last connection checkpointed and closed */
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_rows(db, 0, 20);
    sqlite3_close(db);
}

static void test_gather_refuses_a_database_not_opened_through_it(void **state)
{
    (void)state;
    char path[128];
    sqlite3 *db = open_db(NULL, path, sizeof(path));
    assert_int_equal(walbuf_gather(db, 1), SQLITE_NOTFOUND);
    write_rows(db, 0, 5);
    assert_rows(db, 0, 5);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_commit_reaches_the_wal_as_one_write_and_others_read_it_at_once),
        cmocka_unit_test(test_without_gathering_a_commit_is_a_write_per_header_and_page),
        cmocka_unit_test(test_frames_spilled_mid_transaction_are_read_back_right),
        cmocka_unit_test(test_turning_gathering_off_loses_nothing),
        cmocka_unit_test(test_gather_refuses_a_database_not_opened_through_it),
    };
    snprintf(g_dir, sizeof(g_dir), "/tmp/test_walbuf.XXXXXX");
    if (mkdtemp(g_dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    counting_vfs_install();
    if (walbuf_register() != SQLITE_OK) {
        fprintf(stderr, "walbuf_register failed\n");
        return 1;
    }
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", g_dir);
    return failed;
}
