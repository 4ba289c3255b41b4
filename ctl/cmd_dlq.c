/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cmd_dlq.c - `agentpoolctl dlq list|replay|purge`: the dead letters.
 *
 * Dead letters are handled as raw text (found with cJSON by jspan.c), so
 * what is printed or sent again is what agentpoold stored, byte for byte
 * (64-bit integers and number spellings survive).  list pages through pool.dlq.list;
 * replay sends each record again as an ordinary request through
 * replay.c's windowed loop (at most CTL_REPLAY_WINDOW unanswered), then
 * removes those answered ok with pool.dlq.remove and keeps the rest;
 * purge deletes them all, and only with --yes.  A page whose answer
 * would pass CTL_MAX_PAGE_CAPTURE is asked for again halved, so memory
 * stays bounded however large the records.  A pool.* record is never
 * sent: "replaying" pool.dlq.purge would be a disaster.
 */
#include "args.h"
#include "ctl.h"
#include "ap_alloc.h"
#include "conn.h"
#include "jspan.h"
#include "render.h"
#include "replay.h"
#include "table.h"

#include <cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Dead letters asked for per pool.dlq.list page, and the most one page
 * may take: more than the largest record agentpoold writes (96 MiB), so
 * a page of one always fits; a larger page is asked for again halved. */
#define CTL_DLQ_PAGE 100
#define CTL_MAX_PAGE_CAPTURE (160u * 1024u * 1024u)
/* Records `dlq list` shows when --limit is not given. */
#define CTL_DLQ_LIST_DEFAULT 100
/* Replayed requests unanswered at once, at most. */
#define CTL_REPLAY_WINDOW 32
/* Widths of the id and type columns of `dlq list`, and the least the
 * last failure column is cut to when fitting the terminal. */
#define CTL_CELL_MAX 32
#define CTL_REASON_MIN 20

static int dlq_list(const ctl_opts *o, int argc, char **argv);
static int dlq_replay(const ctl_opts *o, int argc, char **argv);
static int dlq_purge(const ctl_opts *o, int argc, char **argv);

static const ctl_command dlq_commands[] = {
    {"list", "[--json] [--offset N] [--limit N] [--pool NAME]",
     CTL_TAKES_JSON | CTL_TAKES_OFFSET | CTL_TAKES_LIMIT | CTL_TAKES_POOL, 0, 0, 0, dlq_list},
    {"replay", "[--id DLQID] [--pool NAME]", CTL_TAKES_ID | CTL_TAKES_POOL, 0, 0, 0, dlq_replay},
    {"purge", "--yes [--pool NAME]", CTL_TAKES_YES | CTL_TAKES_POOL, 0, 0, 0, dlq_purge},
};

/* dlq SUBCOMMAND ...: dispatches through dlq_commands. */
int cmd_dlq(const ctl_opts *o, int argc, char **argv)
{
    ctl_opts sub = *o;
    return args_dispatch(dlq_commands, AP_ARRAY_LEN(dlq_commands), "dlq", &sub, argc, argv);
}

/* One page of pool.dlq.list, kept raw. */
typedef struct {
    ctl_answer ans;       /* the answer; the spans point into it */
    jspan records;        /* the "records" array */
    uint64_t total;       /* records in the file */
    char file[1024];      /* the file's path */
} dlq_page_t;

/* Fetches the records from offset on, at most *limit of them (1 to
 * 1000).  When the page would pass CTL_MAX_PAGE_CAPTURE it is asked for
 * again with *limit halved (which the caller keeps for later pages).
 * Returns CTL_EXIT_OK with *pg filled (free pg->ans with
 * ctl_answer_free), or another status after saying why on stderr, with
 * nothing to free. */
static int dlq_page(const ctl_opts *o, uint64_t offset, size_t *limit, dlq_page_t *pg)
{
    char data[96], err[512];
    for (;;) {
        memset(pg, 0, sizeof(*pg));
        snprintf(data, sizeof(data), "{\"offset\":%" PRIu64 ",\"limit\":%zu}", offset, *limit);
        int status = ctl_request(o, "pool.dlq.list", data, o->timeout_ms, CTL_MAX_PAGE_CAPTURE,
                                 &pg->ans, err, sizeof(err));
        if (status == CTL_EXIT_EXCHANGE && pg->ans.cap.overflowed && *limit > 1) {
            ctl_answer_free(&pg->ans);
            *limit /= 2;
            continue;
        }
        if (status != CTL_EXIT_OK) {
            ctl_warn("%s", err);
            ctl_answer_free(&pg->ans);
            return status;
        }
        jspan res = pg->ans.result, v;
        cJSON *file = NULL;
        int good = jspan_member(res, "records", &pg->records, NULL) == AP_OK &&
                   pg->records.p[0] == '[' && jspan_member(res, "total", &v, NULL) == AP_OK &&
                   jspan_u64(v.p, v.len, &pg->total) == AP_OK;
        if (good && jspan_member(res, "file", &v, &file) == AP_OK && cJSON_IsString(file))
            snprintf(pg->file, sizeof(pg->file), "%s", file->valuestring);
        cJSON_Delete(file);
        if (!good) {
            ctl_warn("pool.dlq.list: malformed answer from agentpoold: %.200s", pg->ans.cap.data);
            ctl_answer_free(&pg->ans);
            return CTL_EXIT_EXCHANGE;
        }
        return CTL_EXIT_OK;
    }
}

/* The text of a raw value for a table cell: a string's contents, other
 * values as compact JSON, "-" when absent; cut to width (0: no limit). */
static char *dlq_span_text(jspan s, size_t width)
{
    if (s.p == NULL)
        return ap_strdup("-");
    cJSON *v = cJSON_ParseWithLength(s.p, s.len);
    char *txt;
    if (cJSON_IsString(v)) {
        txt = render_fit(v->valuestring, width);
    } else {
        char *raw = ap_strndup(s.p, s.len);
        txt = render_fit(raw, width);
        ap_free(raw);
    }
    cJSON_Delete(v);
    return txt;
}

/* The record's last failure reason, raw. */
static jspan dlq_last_reason(jspan rec)
{
    jspan failures, f, last = {NULL, 0}, reason = {NULL, 0};
    size_t cur = 0;
    if (jspan_member(rec, "failures", &failures, NULL) == AP_OK)
        while (jspan_next(failures, &cur, &f, NULL))
            last = f;
    if (last.p)
        (void)jspan_member(last, "reason", &reason, NULL);
    return reason;
}

/* Adds the table row of one dead letter (the reason cell uncut). */
static void dlq_row(table *t, jspan rec)
{
    jspan v;
    char *row[6];
    char when[64];
    (void)jspan_member(rec, "dlqId", &v, NULL);
    row[0] = dlq_span_text(v, CTL_CELL_MAX);
    (void)jspan_member(rec, "time", &v, NULL);
    char *iso = dlq_span_text(v, 64);
    uint64_t ms;
    if (render_parse_utc(iso, &ms) == AP_OK) {
        render_local_time(ms, when, sizeof(when));
        ap_free(iso);
        row[1] = ap_strdup(when);
    } else {
        row[1] = iso;
    }
    (void)jspan_member(rec, "id", &v, NULL);
    row[2] = dlq_span_text(v, CTL_CELL_MAX);
    (void)jspan_member(rec, "type", &v, NULL);
    row[3] = dlq_span_text(v, CTL_CELL_MAX);
    (void)jspan_member(rec, "attempts", &v, NULL);
    row[4] = dlq_span_text(v, CTL_CELL_MAX);
    row[5] = dlq_span_text(dlq_last_reason(rec), 0);
    table_add_row(t, row);
}

/* dlq list [--json] [--offset N] [--limit N]: the dead letters as a
 * table and a total line, or as their records, one per line. */
static int dlq_list(const ctl_opts *o, int argc, char **argv)
{
    static const char *const header[] = {"dlqId", "time", "id", "type", "attempts", "last failure"};
    uint64_t want = (o->given & CTL_TAKES_LIMIT) ? o->limit : CTL_DLQ_LIST_DEFAULT;
    uint64_t shown = 0, total = 0;
    size_t page = CTL_DLQ_PAGE;
    char file[1024] = "";
    dlq_page_t pg;
    table t;
    char *row[AP_ARRAY_LEN(header)];
    int status = CTL_EXIT_OK;
    AP_UNUSED(argc);
    AP_UNUSED(argv);

    table_init(&t, AP_ARRAY_LEN(header));
    for (size_t k = 0; k < AP_ARRAY_LEN(header); k++)
        row[k] = ap_strdup(header[k]);
    table_add_row(&t, row);
    for (;;) {
        size_t lim = page;
        if (want && want - shown < lim)
            lim = (size_t)(want - shown);
        status = dlq_page(o, o->offset + shown, &lim, &pg);
        if (status != CTL_EXIT_OK)
            break;
        if (lim < page)
            page = lim;
        total = pg.total;
        snprintf(file, sizeof(file), "%s", pg.file);
        size_t cur = 0, n = 0;
        jspan rec;
        while (jspan_next(pg.records, &cur, &rec, NULL)) {
            if (o->json) {
                fwrite(rec.p, 1, rec.len, stdout);
                putchar('\n');
            } else {
                dlq_row(&t, rec);
            }
            n++;
        }
        ctl_answer_free(&pg.ans);
        shown += n;
        if (n == 0 || (want && shown >= want) || o->offset + shown >= total)
            break;
    }
    if (status == CTL_EXIT_OK && !o->json) {
        char *path = render_fit(file, 0);
        if (shown > 0) {
            render_fit_last_column(&t, ctl_out_width(), CTL_REASON_MIN);
            table_print(&t, stdout, "");
        }
        printf("%" PRIu64 " dead letter%s in %s", total, total == 1 ? "" : "s", path);
        if (shown > 0 && shown < total)
            printf("; showing %" PRIu64 "-%" PRIu64, o->offset + 1, o->offset + shown);
        else if (shown == 0 && total > 0)
            printf("; none from offset %" PRIu64, o->offset);
        putchar('\n');
        ap_free(path);
    }
    table_free(&t);
    return status;
}

/* Counts for dlq replay's summary. */
typedef struct {
    uint64_t replayed, ok, removed, failed, crashed_again, unanswered;
} dlq_replay_counts;

/* Removes the dead letters of items that replayed ok.  Returns the exit
 * status of pool.dlq.remove (CTL_EXIT_OK when nothing to remove), and
 * how many went in *removed. */
static int dlq_remove_ok(const ctl_opts *o, const replay_item *items, size_t n, uint64_t *removed)
{
    size_t cap = 16 + n * 22, len = 0;
    char *data = ap_malloc(cap);
    int status = CTL_EXIT_OK;
    *removed = 0;
    len += (size_t)snprintf(data, cap, "{\"ids\":[");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (items[i].state == REPLAY_OK)
            len += (size_t)snprintf(data + len, cap - len, "%s%" PRIu64, k++ ? "," : "",
                                    items[i].dlq_id);
    snprintf(data + len, cap - len, "]}");
    if (k > 0) {
        cJSON *res;
        status = ctl_call(o, "pool.dlq.remove", data, &res);
        if (status == CTL_EXIT_OK) {
            const cJSON *r = cJSON_GetObjectItemCaseSensitive(res, "removed");
            *removed = cJSON_IsNumber(r) && r->valuedouble >= 0 ? (uint64_t)r->valuedouble : 0;
            cJSON_Delete(res);
        }
    }
    ap_free(data);
    return status;
}

/* Replays the n items of one page over a fresh connection, prints each
 * failure and adds to *c.  Returns CTL_EXIT_OK, or CTL_EXIT_CONNECT /
 * CTL_EXIT_EXCHANGE after saying why (items answered before that keep their outcome). */
static int dlq_replay_page(const ctl_opts *o, replay_item *items, size_t n, dlq_replay_counts *c)
{
    char err[512];
    replay_result r;
    int status = CTL_EXIT_OK;
    int fd = conn_open(o->socket_path, o->timeout_ms, err, sizeof(err));
    if (fd < 0) {
        ctl_warn("%s", err);
        return CTL_EXIT_CONNECT;
    }
    /* With --pool the replays go to that pool, as its dead letters came from it. */
    char *pool = o->pool ? ctl_json_string(o->pool) : NULL;
    replay_opts ro = {.sock = fd, .timeout_ms = o->timeout_ms, .window = CTL_REPLAY_WINDOW,
                      .pool_json = pool};
    int rc = replay_run(&ro, items, n, &r);
    ap_free(pool);
    if (rc != AP_OK) {
        ctl_warn("dlq replay: %s (%zu of %zu answers missing)", r.err, r.sent - r.answered, r.sent);
        status = CTL_EXIT_EXCHANGE;
    }
    close(fd);
    for (size_t i = 0; i < n; i++) {
        replay_item *it = &items[i];
        if (it->state == REPLAY_PENDING)
            continue; /* never sent: the connection went first */
        c->replayed++;
        if (it->state == REPLAY_OK) {
            c->ok++;
        } else if (it->state == REPLAY_FAILED) {
            char *type = dlq_span_text(it->type, CTL_CELL_MAX);
            char *code = render_fit(it->code, 0);
            printf("failed: dlqId %" PRIu64 " (type %s): %s\n", it->dlq_id, type, code);
            ap_free(type);
            ap_free(code);
            c->failed++;
            if (strcmp(it->code, "worker_crashed") == 0)
                c->crashed_again++;
        } else {
            c->unanswered++;
        }
    }
    return status;
}

/* 1 when the raw type is a string naming a pool.* request (answered by
 * the master, so never a dead letter). */
static int dlq_is_pool_type(jspan type)
{
    cJSON *t = type.p ? cJSON_ParseWithLength(type.p, type.len) : NULL;
    int pool = cJSON_IsString(t) && strncmp(t->valuestring, "pool.", 5) == 0;
    cJSON_Delete(t);
    return pool;
}

/* dlq replay [--id DLQID]: see the help text.  Pages through the file
 * from the start; records removed as replayed ok shift the next page's
 * offset back.  Only the records present at the start are visited (the
 * first page's total), so what agentpoold dead-letters anew while we
 * replay, always appended at the end, is not replayed again. */
static int dlq_replay(const ctl_opts *o, int argc, char **argv)
{
    dlq_replay_counts c = {0};
    uint64_t offset = 0, remaining = 0;
    size_t page = CTL_DLQ_PAGE;
    int first = 1, found = 0, done = 0, status = CTL_EXIT_OK, remove_short = 0;
    int by_id = (o->given & CTL_TAKES_ID) != 0;
    AP_UNUSED(argc);
    AP_UNUSED(argv);

    while (!done) {
        dlq_page_t pg;
        size_t lim = page;
        if (!first && remaining < lim)
            lim = (size_t)remaining;
        int st = dlq_page(o, offset, &lim, &pg);
        if (st != CTL_EXIT_OK) {
            status = st;
            break;
        }
        if (lim < page)
            page = lim;
        if (first) {
            remaining = pg.total;
            first = 0;
        }
        /* The page's items (all of it, or the one --id names). */
        replay_item *items = ap_calloc(lim + 1, sizeof(replay_item));
        size_t cur = 0, examined = 0, n = 0;
        jspan rec, v;
        while (examined < remaining && examined < lim && jspan_next(pg.records, &cur, &rec, NULL)) {
            uint64_t id;
            examined++;
            if (jspan_member(rec, "dlqId", &v, NULL) != AP_OK || jspan_u64(v.p, v.len, &id) != AP_OK) {
                ctl_warn("dlq replay: skipped a record without a valid dlqId: %.*s",
                         (int)(rec.len < 120 ? rec.len : 120), rec.p);
                continue;
            }
            if (by_id && id != o->dlq_id) {
                if (id > o->dlq_id)
                    done = 1; /* dlqIds grow through the file: it is not there */
                continue;
            }
            replay_item *it = &items[n++];
            it->dlq_id = id;
            (void)jspan_member(rec, "type", &it->type, NULL); /* p NULL when absent */
            (void)jspan_member(rec, "data", &it->data, NULL);
            (void)jspan_member(rec, "checkpoint", &it->checkpoint, NULL); /* sent back as "resume" */
            if (dlq_is_pool_type(it->type)) {
                /* Never a real dead letter, and "replaying" pool.dlq.purge
                 * would be a disaster: refuse it. */
                it->state = REPLAY_FAILED;
                snprintf(it->code, sizeof(it->code), "not_replayable");
            }
            if (by_id) {
                found = done = 1;
                break;
            }
        }
        uint64_t removed = 0;
        if (n > 0) {
            status = dlq_replay_page(o, items, n, &c);
            int rst = dlq_remove_ok(o, items, n, &removed);
            uint64_t ok_here = 0;
            for (size_t i = 0; i < n; i++)
                ok_here += items[i].state == REPLAY_OK;
            c.removed += removed;
            if (rst != CTL_EXIT_OK || removed < ok_here)
                remove_short = 1;
            if (rst == CTL_EXIT_CONNECT || rst == CTL_EXIT_EXCHANGE)
                status = rst;
        }
        ap_free(items);
        ctl_answer_free(&pg.ans);
        if (status != CTL_EXIT_OK || examined == 0)
            break;
        remaining -= examined;
        offset += examined - (removed < examined ? removed : examined);
        if (remaining == 0)
            done = 1;
    }

    if (by_id && !found && status == CTL_EXIT_OK) {
        ctl_warn("dlq replay: no dead letter has dlqId %" PRIu64, o->dlq_id);
        return CTL_EXIT_ANSWER_ERROR;
    }
    printf("replayed %" PRIu64 ": %" PRIu64 " ok (removed), %" PRIu64 " failed (kept)", c.replayed,
           c.ok, c.failed);
    if (c.unanswered)
        printf(", %" PRIu64 " unanswered (kept)", c.unanswered);
    putchar('\n');
    if (c.crashed_again)
        printf("note: %" PRIu64 " of the failed crashed a worker again; agentpoold dead-lettered "
               "%s again as a new record (new dlqId), so the old and the new record are both "
               "kept\n", c.crashed_again, c.crashed_again == 1 ? "it" : "each");
    if (remove_short)
        ctl_warn("dlq replay: only %" PRIu64 " of the %" PRIu64 " dead letters replayed ok were "
                 "removed (see above); the rest are still in the file", c.removed, c.ok);
    if (status != CTL_EXIT_OK)
        return status;
    return c.failed || c.unanswered || remove_short ? CTL_EXIT_ANSWER_ERROR : CTL_EXIT_OK;
}

/* dlq purge --yes: pool.dlq.purge. */
static int dlq_purge(const ctl_opts *o, int argc, char **argv)
{
    cJSON *res;
    AP_UNUSED(argc);
    AP_UNUSED(argv);
    if (!o->yes)
        return ctl_usage_error("dlq purge deletes every dead letter for good: add --yes to confirm");
    int status = ctl_call(o, "pool.dlq.purge", NULL, &res);
    if (status != CTL_EXIT_OK)
        return status;
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(res, "purged");
    printf("purged %.0f\n", cJSON_IsNumber(n) ? n->valuedouble : 0.0);
    cJSON_Delete(res);
    return CTL_EXIT_OK;
}

