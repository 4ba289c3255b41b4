/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * keyfile.h - reading the API keys file (apiKeysFile): JSON lines, one key
 * each, into plain data.
 *
 * One line:
 *   {"id": "tenant-a", "sha256": "<64 hex digits>", "pools": ["writer"] | "*",
 *    "maxInFlight": 8, "ratePerMinute": 600, "tokensPerMinute": 200000}
 * id: 1 to KEYFILE_ID_MAX bytes of A-Z a-z 0-9 . _ - (not "none" or
 * "other": usage rows use those names); sha256: the SHA-256 of the secret
 * in hex (either case); pools: the pools it may use, or "*" for all; the
 * three limits: integers >= 0, 0 or absent meaning none.  Any other
 * member is refused (a misspelt limit must not silently mean "no limit").
 * Blank lines and lines whose first non-blank byte is '#' are skipped.
 * Two lines with one id, or one secret hash, are refused.
 *
 * keyfile_parse_line() is pure (the fuzz target's entry).  keyfile_load()
 * opens and reads the whole file (bounded by KEYFILE_MAX_BYTES and
 * KEYFILE_MAX_KEYS) without touching the event loop, the log or any
 * global: apikey.c calls it at start-up and on a reader thread at a
 * reload.  The file must be a regular file owned by root or us, not a
 * symbolic link (ap_safefile), and not readable by others (mode o+r).
 * Secrets never appear here: only their hashes are read.
 */
#ifndef AP_KEYFILE_H
#define AP_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#define KEYFILE_ID_MAX 64
#define KEYFILE_POOL_MAX 64          /* CONFIG_POOL_NAME_MAX */
#define KEYFILE_POOLS_MAX 64         /* pools one key may name */
#define KEYFILE_LINE_MAX 8192
#define KEYFILE_MAX_KEYS 100000
#define KEYFILE_MAX_BYTES (64u * 1024u * 1024u)
#define KEYFILE_MAX_INFLIGHT 1000000u
#define KEYFILE_ERR_MAX 256

typedef struct {
    char id[KEYFILE_ID_MAX + 1];
    unsigned char sha256[32];
    int all_pools;              /* "pools": "*" */
    unsigned npools;
    char (*pools)[KEYFILE_POOL_MAX + 1]; /* npools names (ap_malloc'd), NULL when none */
    uint32_t max_inflight;      /* 0: no limit */
    uint64_t rate_per_minute;   /* 0: no limit */
    uint64_t tokens_per_minute; /* 0: no limit */
} keyfile_entry;

typedef struct {
    keyfile_entry *keys;
    unsigned n;
} keyfile_set;

typedef enum { KEYFILE_LINE_KEY = 0, KEYFILE_LINE_SKIP, KEYFILE_LINE_BAD } keyfile_line;

/* Parses one line (without its '\n') into *e.  KEYFILE_LINE_KEY: *e is
 * filled (free it with keyfile_entry_free); SKIP: blank or a comment;
 * BAD: err (KEYFILE_ERR_MAX bytes) says what is wrong, *e holds nothing
 * to free.  Never logs; the message never quotes the line. */
keyfile_line keyfile_parse_line(const char *line, size_t len, keyfile_entry *e, char *err);
void keyfile_entry_free(keyfile_entry *e);

/* Reads path into *out.  AP_OK, or AP_ERR with err (KEYFILE_ERR_MAX
 * bytes) saying why, "PATH:LINE: what is wrong" for a bad line, and
 * nothing in *out.  Blocks on the file: call it only where that is
 * allowed (see the top comment). */
int keyfile_load(const char *path, keyfile_set *out, char *err);
void keyfile_set_free(keyfile_set *s);

#endif
