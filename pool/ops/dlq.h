/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dlq.h - the master's dead-letter file.
 *
 * When a message fails for good (its worker crashed on every attempt and
 * its retries are spent), agentpoold answers the client worker_crashed
 * and appends the message here, so nothing is silently lost.  Operators
 * list, replay and remove dead letters over the protocol
 * (pool.dlq.list / pool.dlq.remove / pool.dlq.purge, answered by the
 * master through this module), never by editing the file.
 *
 * The file is JSON Lines, one record per line, written only by
 * agentpoold, mode 0600:
 *
 *   {"dlqId":7,"time":"2026-11-24T08:00:00.123Z","id":"req-1","type":"t",
 *    "data":{...},"attempts":3,"failures":[{"time":"...",
 *    "worker":"worker-1","pid":123,"reason":"killed by signal 9"}]}
 *
 * with "checkpoint":VALUE after "attempts" when the message had recorded
 * one (ctx.checkpoint, docs/sessions.md: `agentpoolctl dlq replay` sends
 * it back as the request's "resume"), and "partial":true,"chunks":N for
 * a stream its client had chunks of.
 *
 * "dlqId" comes first and increases with each record appended (a failed
 * append may leave a gap; it continues after the highest found in PATH.1
 * and PATH when the file is opened).  "id" and "data" are the client's raw JSON bytes, copied
 * verbatim; null when absent.  The file is capped at max_bytes: the
 * append that would take it past the cap first renames it to PATH.1
 * (replacing the older PATH.1), so the disk holds at most about
 * 2 x max_bytes and the oldest records are dropped a whole file at a time.
 *
 * Every append is fsync'd before dlq_append() returns; this is the one
 * synchronous disk write on the master's message path, and it happens
 * only when a message is dead-lettered.  The operator's commands (list,
 * remove, purge) also read and rewrite the files synchronously, bounded
 * by the cap.  Nothing here ever aborts the master: every failure is
 * AP_ERR plus a one-line message naming the file, the call and the
 * system's reason, and the next call tries again.
 *
 * Not thread-safe (agentpoold is single-threaded).
 */
#ifndef AP_DLQ_H
#define AP_DLQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The longest line the readers accept; longer lines are skipped with a
 * counted warning.  Above the largest record agentpoold can produce
 * (maxMessageBytes is at most 64 MiB for id and data together, plus the
 * type and the failure reasons). */
#define DLQ_LINE_MAX ((size_t)96 << 20)

typedef struct dlq dlq;

/* One failed attempt.  Strings may be NULL (written as null); a
 * wall_ms of 0 means unknown (time written as null). */
typedef struct {
    const char *worker;   /* "worker-1" */
    int pid;
    const char *reason;   /* "killed by signal 9", ASCII */
    uint64_t wall_ms;     /* when the attempt failed, CLOCK_REALTIME ms */
} dlq_failure;

/* A message to dead-letter.  Nothing is kept after dlq_append returns. */
typedef struct {
    const char *id;       /* the client's raw id JSON bytes ... */
    size_t id_len;        /* ... 0: no id, written as null */
    const char *type;     /* UTF-8, not NUL-terminated; escaped on write */
    size_t type_len;
    const char *data;     /* raw data JSON bytes ... */
    size_t data_len;      /* ... 0: no data, written as null */
    unsigned attempts;
    const dlq_failure *failures;
    size_t nfailures;
    uint64_t wall_ms;     /* the record's "time"; 0: now */
    unsigned chunks;      /* a stream's chunks its client had (written "partial":true,"chunks":N); 0: none */
    const char *checkpoint; /* its last ctx.checkpoint, raw JSON (written "checkpoint":...) ... */
    size_t checkpoint_len;  /* ... 0: none, the member left out */
} dlq_entry;

/* Called by dlq_list() for each record: its id and its line (without
 * '\n', valid only during the call; always one valid JSON object).
 * Return 0 to go on, anything else to stop the walk. */
typedef int (*dlq_list_cb)(void *arg, uint64_t dlq_id, const char *line, size_t len);

typedef struct {
    uint64_t records;       /* same as dlq_count() */
    uint64_t bytes;         /* PATH + PATH.1, as last known */
    uint64_t next_id;       /* dlqId the next append gets */
    uint64_t skipped_lines; /* corrupt or too long lines skipped by readers
                             * since open (a line read twice counts twice) */
    uint64_t roll_errors;   /* rolls to PATH.1 that failed: the record was
                             * appended past max_bytes instead */
} dlq_stats;

/*
 * Opens (creating it if needed, mode 0600) the dead-letter file at path
 * for appending, and reads PATH.1 and PATH once to count their records
 * and find the highest dlqId.  A symbolic link at path, anything but a
 * regular file, a file with more than one link (a hard link: root would
 * append to and chmod its target) and a file owned by another uid than
 * root, ours or `trusted` (the service user, or AP_SAFEFILE_NOBODY_ELSE)
 * are refused, at open and at every later reopen and read; an existing
 * file with wider permissions is logged as a warning and fchmod'ed to
 * 0600 (refused if that fails).  Run as root with `trusted` set, each
 * file opened (PATH, PATH.1) is handed to trusted:group (fchown on the
 * descriptor, never by path), so the service user can use it after the
 * drop.  max_bytes must be at least 1.
 *
 * Returns the handle, or NULL with err set (nothing created but maybe
 * the empty file).  Suitable for start-up: a NULL here is a
 * configuration problem the operator should see.
 */
dlq *dlq_open(const char *path, uint64_t max_bytes, uid_t trusted, gid_t group, char *err, size_t errlen);

/*
 * Appends e as one record (one write(2) of the whole line, then fsync),
 * rolling the file to PATH.1 first if the record would take it past
 * max_bytes; a roll that fails is logged and counted (roll_errors) and
 * the record appended past max_bytes instead, never dropped.  A record larger than max_bytes on its own is still written,
 * alone in a fresh file, rather than lost.  If PATH was removed or
 * replaced behind our back it is reopened (and recounted) first; if the
 * handle was closed by an earlier error it is reopened.
 *
 * Returns AP_OK and the record's id in *dlq_id_out (may be NULL), or
 * AP_ERR with err naming the path, the call and strerror (a full disk,
 * an unwritable directory or file, an I/O error).  On AP_ERR the record
 * is not in the file (a partial write is truncated away; should even
 * that fail, the reopen ends the partial line so readers skip it) and the
 * handle stays usable: the next append tries again.
 */
int dlq_append(dlq *d, const dlq_entry *e, uint64_t *dlq_id_out, char *err, size_t errlen);

/*
 * Walks the records oldest first (PATH.1, then PATH), skipping `offset`
 * records, and calls cb for at most `limit` of them (0: no limit); stops
 * early when cb returns nonzero.  Lines that are not valid records, or
 * longer than DLQ_LINE_MAX, are skipped (not counted in offset) with a
 * warning in the log.  A missing file counts as empty.
 *
 * Returns AP_OK (also when cb stopped the walk), or AP_ERR with err set
 * if a file could not be opened or read; records already given to cb
 * stay given.  Never changes the files.
 */
int dlq_list(dlq *d, uint64_t offset, uint64_t limit, dlq_list_cb cb, void *arg, char *err,
             size_t errlen);

/* Records in PATH.1 and PATH, as counted at open and kept since. */
uint64_t dlq_count(const dlq *d);

void dlq_get_stats(const dlq *d, dlq_stats *out);

/* The path given to dlq_open(). */
const char *dlq_path(const dlq *d);

/*
 * Removes the records whose dlqId is in ids[0..n) (unknown ids are
 * ignored).  Each file that holds one of them is rewritten without them
 * through a temporary file in the same directory, fsync'd and renamed
 * over it, so a reader (or a crash) sees either the old file or the new
 * one.  Lines that are not records are kept as they are; lines longer
 * than DLQ_LINE_MAX cannot be copied in bounded memory and are dropped,
 * with a warning.
 *
 * Returns AP_OK with the number of records removed in *removed (may be
 * NULL), or AP_ERR with err set; on AP_ERR each file is either fully
 * rewritten or untouched, and *removed counts what was removed.
 */
int dlq_remove(dlq *d, const uint64_t *ids, size_t n, size_t *removed, char *err, size_t errlen);

/*
 * Removes every record: unlinks PATH.1 and PATH and starts a new, empty
 * PATH.  dlqIds keep increasing while the handle lives (after a restart
 * they start again from 1, as nothing is left to continue from).
 * Returns AP_OK, or AP_ERR with err set if a file could not be unlinked
 * (PATH.1 is removed first; what was removed stays removed).
 */
int dlq_purge(dlq *d, char *err, size_t errlen);

/* Closes the file and frees d.  NULL is allowed. */
void dlq_close(dlq *d);

#ifdef DLQ_TEST_HOOKS
/* Fault injection for unit tests only.  When dlq_test_write_errno is
 * nonzero, the next write(2) first writes at most dlq_test_write_short
 * bytes (if nonzero) and the one after fails with that errno; both are
 * then cleared.  dlq_test_fsync_errno makes the next fsync(2) of the
 * file fail once.  dlq_test_line_max, if nonzero, replaces
 * DLQ_LINE_MAX. */
extern int dlq_test_write_errno;
extern size_t dlq_test_write_short;
extern int dlq_test_fsync_errno;
extern size_t dlq_test_line_max;
#endif

#endif
