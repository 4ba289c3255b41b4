/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * walbuf.h - an SQLite VFS over the default one that can gather the
 * frames one commit writes to a write-ahead log into one write, for the
 * SQLite session store (sstore_sqlite.c).
 *
 * SQLite writes each WAL frame as two writes (its 24-byte header, then
 * the page): a commit of 12 session states is ~24 pwrite(2)s, each a
 * system call the store thread pays for.  With gathering on, contiguous
 * writes to the WAL are kept in memory and written as one pwrite when
 * SQLite syncs the log, reads it, asks its size, truncates or closes
 * it, or when they stop being contiguous or pass WALBUF_MAX bytes.
 *
 * Gathering is only safe where every commit syncs the log
 * (synchronous=FULL): SQLite syncs before it publishes the commit to
 * other connections (the wal-index), so no reader can look for a frame
 * that is still here.  With synchronous=NORMAL nothing would write the
 * commit out before it is published: walbuf_gather is turned off for it.
 * Every other file, and a WAL without gathering, goes straight through.
 */
#ifndef AP_WALBUF_H
#define AP_WALBUF_H

#include <sqlite3.h>

#define WALBUF_VFS "agentpool-walbuf"
/* Gathered bytes past which they are written out: under the 128 KiB
 * the default (unix) VFS writes at most in one call (its seekAndWrite
 * masks the length with 0x1ffff: a longer write fails SQLITE_FULL). */
#define WALBUF_MAX (120 * 1024)

/* Registers WALBUF_VFS over the default VFS (not as the default).
 * Process-wide: call once, before opening a database with it.  SQLITE_OK
 * or SQLite's error code. */
int walbuf_register(void);

/* Turns gathering on (only where synchronous=FULL) or off (what was
 * gathered is written first) for db's WAL.  SQLITE_OK, or SQLITE_NOTFOUND
 * when db's main database has no WAL open through WALBUF_VFS (nothing
 * changed), or the error of writing out what was gathered. */
int walbuf_gather(sqlite3 *db, int on);

#endif
