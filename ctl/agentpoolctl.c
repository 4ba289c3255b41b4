/*
 * agentpoolctl.c - the command-line client of agentpoold.
 *
 * main() parses the global options and hands the rest to ctl_dispatch(),
 * which finds the command in a table (ctl_commands[]), parses the
 * options that follow it, checks that the command takes them and runs
 * it; each command is one small cmd_* function that receives the parsed
 * options and its own positional arguments and returns the exit status.
 * Adding a command means writing one cmd_* function, usually a call to
 * ctl_call() plus some printing, and one table row; a command with
 * sub-commands (dlq) is a row whose function dispatches on its first
 * argument through a table of its own (ctl_dlq_commands[]).
 *
 * Exit statuses are part of the interface (scripts test them): 0 all
 * answers ok, 1 an answer was an error (health: the pool is not ready;
 * dlq replay: a replay failed), 2 no complete exchange (cannot connect,
 * connection lost, timeout, output failure), 64 usage error.  Messages
 * for people go to stderr prefixed "agentpoolctl: "; stdout carries only
 * results.  The I/O itself lives in conn.c (connect), exchange.c (the
 * pipelined poll loop) and replay.c (dlq replay's windowed loop); this
 * file never reads or writes the socket.  Dead letters are handled as
 * raw text (jraw.c), so what is printed or sent again is what the server
 * stored, byte for byte.
 */
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_defaults.h"
#include "conn.h"
#include "exchange.h"
#include "jraw.h"
#include "render.h"
#include "replay.h"
#include "reqline.h"
#include "table.h"

#include <cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define CTL_NAME "agentpoolctl"
#define CTL_DEFAULT_TIMEOUT_MS 30000
/* The most a single captured answer (stats, ping, ...) may take. */
#define CTL_MAX_CAPTURE (16u * 1024u * 1024u)
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

enum {
    CTL_EXIT_OK = 0,
    CTL_EXIT_ANSWER_ERROR = 1,
    CTL_EXIT_NO_EXCHANGE = 2,
    CTL_EXIT_USAGE = 64
};

/* Command options a command may accept (ctl_command.takes). */
enum {
    CTL_TAKES_JSON = 1u << 0,
    CTL_TAKES_DETAILED = 1u << 1,
    CTL_TAKES_OFFSET = 1u << 2,
    CTL_TAKES_LIMIT = 1u << 3,
    CTL_TAKES_ID = 1u << 4,
    CTL_TAKES_YES = 1u << 5,
    CTL_TAKES_ALL = (1u << 6) - 1
};

/* The option each CTL_TAKES_* bit stands for, for usage errors. */
static const char *const ctl_takes_names[] = {"--json", "--detailed", "--offset", "--limit", "--id",
                                              "--yes"};

/* The parsed command line; read-only once a command runs. */
typedef struct {
    const char *socket_path;
    int timeout_ms;
    unsigned given; /* CTL_TAKES_* options present on the command line */
    int json;
    int detailed;
    uint64_t offset;
    uint64_t limit;
    uint64_t dlq_id;
    int yes;
} ctl_opts;

typedef struct {
    const char *name;
    const char *args;    /* synopsis after the name, for usage errors */
    unsigned takes;      /* CTL_TAKES_* it accepts */
    int min_args, max_args;
    int (*run)(const ctl_opts *o, int argc, char **argv);
} ctl_command;

static int cmd_send(const ctl_opts *o, int argc, char **argv);
static int cmd_stats(const ctl_opts *o, int argc, char **argv);
static int cmd_ping(const ctl_opts *o, int argc, char **argv);
static int cmd_health(const ctl_opts *o, int argc, char **argv);
static int cmd_history(const ctl_opts *o, int argc, char **argv);
static int cmd_dlq(const ctl_opts *o, int argc, char **argv);
static int cmd_dlq_list(const ctl_opts *o, int argc, char **argv);
static int cmd_dlq_replay(const ctl_opts *o, int argc, char **argv);
static int cmd_dlq_purge(const ctl_opts *o, int argc, char **argv);

static const ctl_command ctl_commands[] = {
    {"send", "[TYPE [DATA]]", 0, 0, 2, cmd_send},
    {"stats", "[--json] [--detailed]", CTL_TAKES_JSON | CTL_TAKES_DETAILED, 0, 0, cmd_stats},
    {"ping", "", 0, 0, 0, cmd_ping},
    {"health", "[--json]", CTL_TAKES_JSON, 0, 0, cmd_health},
    {"history", "[--json]", CTL_TAKES_JSON, 0, 0, cmd_history},
    /* dlq's sub-command checks the options (ctl_dlq_commands). */
    {"dlq", "list|replay|purge [OPTIONS]", CTL_TAKES_ALL, 1, INT_MAX, cmd_dlq},
};

static const ctl_command ctl_dlq_commands[] = {
    {"list", "[--json] [--offset N] [--limit N]", CTL_TAKES_JSON | CTL_TAKES_OFFSET | CTL_TAKES_LIMIT,
     0, 0, cmd_dlq_list},
    {"replay", "[--id DLQID]", CTL_TAKES_ID, 0, 0, cmd_dlq_replay},
    {"purge", "--yes", CTL_TAKES_YES, 0, 0, cmd_dlq_purge},
};

static const char ctl_usage_text[] =
    "Usage: agentpoolctl [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "Talk to a running agentpoold over its Unix socket.\n"
    "\n"
    "Commands:\n"
    "  send TYPE [DATA]       send one request {\"id\":1,\"type\":TYPE,\"data\":DATA}\n"
    "                         (DATA is JSON, default null) and print the\n"
    "                         response line as received\n"
    "  send                   read NDJSON requests from stdin (blank lines\n"
    "                         skipped), pipeline them, print each response line\n"
    "                         as it arrives (in the server's order; match by id)\n"
    "  stats [--json] [--detailed]\n"
    "                         pool statistics as a table; --detailed adds one\n"
    "                         row per worker; --json prints the result object\n"
    "                         (indented on a terminal, one line otherwise)\n"
    "  ping                   check that agentpoold answers\n"
    "  health [--json]        the pool's health in one line, such as\n"
    "                         \"ready: 2/2 workers healthy\"; when not ready also\n"
    "                         whether respawns are in backoff and how many\n"
    "                         workers ended unexpectedly within the restart\n"
    "                         window.  Exit status 0 only when ready\n"
    "  history [--json]       the last worker ends (pool.history): local time,\n"
    "                         worker, generation, pid, reason, and exit status\n"
    "                         or signal\n"
    "  dlq list [--json] [--offset N] [--limit N]\n"
    "                         dead letters, oldest first, as a table (dlqId,\n"
    "                         time, id, type, attempts, last failure reason cut\n"
    "                         to the terminal's width or $COLUMNS) and a total\n"
    "                         line; --limit defaults to 100 (0: all); --json\n"
    "                         prints each record as stored, one per line\n"
    "  dlq replay [--id DLQID]\n"
    "                         send each dead letter (or only DLQID) again as a\n"
    "                         new request, its type and data unchanged, id\n"
    "                         \"replay-<dlqId>\", at most 32 unanswered at once;\n"
    "                         remove those answered ok, keep those that failed,\n"
    "                         print the error code of each failure and a summary\n"
    "                         \"replayed N: M ok (removed), K failed (kept)\".\n"
    "                         A replay that crashes its worker again is\n"
    "                         dead-lettered again by agentpoold as a new record\n"
    "                         (new dlqId), and the old record is kept as well:\n"
    "                         it is then listed twice (the summary counts it\n"
    "                         once, as failed, and says how many of the\n"
    "                         failures were dead-lettered again).  A record of\n"
    "                         a pool.*"
    " type is never sent (it fails as\n"
    "                         not_replayable)\n"
    "  dlq purge --yes        delete every dead letter for good (refused\n"
    "                         without --yes) and print \"purged N\"\n"
    "\n"
    "Options (before or after COMMAND; for send, options end at TYPE):\n"
    "  -s, --socket PATH      agentpoold's socket (default: $AGENTPOOL_SOCKET,\n"
    "                         else " AP_DEFAULT_SOCKET ")\n"
    "      --timeout MS       give up when answers are due and agentpoold has\n"
    "                         sent nothing for MS milliseconds (default 30000;\n"
    "                         0 waits forever)\n"
    "      --json             stats, health, history: the result object;\n"
    "                         dlq list: the records, one per line\n"
    "      --detailed         stats: one row per worker\n"
    "      --offset N         dlq list: skip the N oldest records\n"
    "      --limit N          dlq list: show at most N records (0: all)\n"
    "      --id DLQID         dlq replay: only the dead letter DLQID\n"
    "      --yes              dlq purge: yes, delete them all\n"
    "  -h, --help             show this help and exit\n"
    "      --version          show the version and exit\n"
    "\n"
    "Exit status:\n"
    "   0  every answer had \"ok\": true; health: the pool is ready; dlq replay:\n"
    "      every dead letter replayed ok (or there were none)\n"
    "   1  agentpoold answered, and at least one answer was an error; health:\n"
    "      the pool is degraded, starting, draining or stopping; dlq replay:\n"
    "      at least one replay failed (those are kept), or --id named no\n"
    "      dead letter\n"
    "   2  no complete exchange: cannot connect, connection lost or timed out\n"
    "      before every answer came (the count missing is printed), or the\n"
    "      output could not be written\n"
    "  64  usage error: unknown command or option, bad argument, invalid DATA,\n"
    "      dlq purge without --yes\n";

/* Prints "agentpoolctl: <message>" to stderr. */
static void ctl_warn(const char *fmt, ...) AP_PRINTF(1, 2);
static void ctl_warn(const char *fmt, ...)
{
    va_list ap;
    fputs(CTL_NAME ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Reports a usage error and returns CTL_EXIT_USAGE. */
static int ctl_usage_error(const char *fmt, ...) AP_PRINTF(1, 2);
static int ctl_usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs(CTL_NAME ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'agentpoolctl --help' for more information.\n", stderr);
    return CTL_EXIT_USAGE;
}

/* Connects and runs one exchange.  Returns CTL_EXIT_OK when every
 * request was answered (*r says how many failed), else returns
 * CTL_EXIT_NO_EXCHANGE after saying why on stderr (unless quiet_overflow
 * and the only problem was a capture over its limit, which the caller
 * handles). */
static int ctl_exchange(const ctl_opts *o, exchange_opts *x, exchange_result *r, int quiet_overflow)
{
    char err[512];
    int fd = conn_open(o->socket_path, o->timeout_ms, err, sizeof(err));
    if (fd < 0) {
        ctl_warn("%s", err);
        return CTL_EXIT_NO_EXCHANGE;
    }
    x->sock = fd;
    x->timeout_ms = o->timeout_ms;
    int rc = exchange_run(x, r);
    close(fd);
    if (rc == AP_OK)
        return CTL_EXIT_OK;
    if (quiet_overflow && x->capture && x->capture->overflowed)
        return CTL_EXIT_NO_EXCHANGE;
    if (r->status == EXCHANGE_IOERR && r->answered >= r->sent)
        ctl_warn("%s", r->err);
    else
        ctl_warn("%s (%zu of %zu answer%s missing)", r->err, r->sent - r->answered, r->sent,
                 r->sent == 1 ? "" : "s");
    return CTL_EXIT_NO_EXCHANGE;
}

/* Says on stderr why the answer to type failed, from its raw "error". */
static void ctl_warn_answer_error(const char *type, jraw_span error)
{
    cJSON *e = error.p ? cJSON_ParseWithLength(error.p, error.len) : NULL;
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
    ctl_warn("%s failed: %s: %s", type, cJSON_IsString(code) ? code->valuestring : "?",
             cJSON_IsString(msg) ? msg->valuestring : "(no message)");
    cJSON_Delete(e);
}

/* Sends one request of type with data_json (NULL = null) and keeps the
 * answer raw: in cap (whose limit the caller sets; free cap->data with
 * ap_free in every case), with its "result" spanned by *result (the
 * text "null" when absent).  Returns CTL_EXIT_OK, or 1 (an error answer,
 * or a malformed one) / 2 (no exchange) after saying why on stderr; with
 * quiet_overflow, an answer larger than cap->limit returns 2 silently,
 * with cap->overflowed set. */
static int ctl_call_raw(const ctl_opts *o, const char *type, const char *data_json,
                        int quiet_overflow, exchange_capture *cap, jraw_span *result)
{
    char err[256];
    size_t len;
    exchange_result r;
    jraw_span line, ok, error;

    result->p = "null";
    result->len = 4;
    char *req = reqline_build(1, type, data_json, &len, err, sizeof(err));
    if (req == NULL) { /* our own requests are well-formed: a bug */
        ctl_warn("%s: %s", type, err);
        return CTL_EXIT_USAGE;
    }
    exchange_opts x = {.preload = req, .preload_len = len, .preload_lines = 1, .in_fd = -1,
                       .out_fd = -1, .capture = cap};
    int status = ctl_exchange(o, &x, &r, quiet_overflow);
    ap_free(req);
    if (status != CTL_EXIT_OK)
        return status;

    /* One request per connection, so the one answer is ours. */
    line.p = cap->data ? cap->data : "";
    line.len = cap->data ? cap->len : 0;
    while (line.len > 0 && (line.p[line.len - 1] == '\n' || line.p[line.len - 1] == '\r'))
        line.len--;
    if (jraw_member(line, "ok", &ok) != AP_OK || !(jraw_is(ok, "true") || jraw_is(ok, "false"))) {
        ctl_warn("%s: malformed answer from agentpoold: %.200s", type, line.p);
        return CTL_EXIT_ANSWER_ERROR;
    }
    if (jraw_is(ok, "false")) {
        (void)jraw_member(line, "error", &error);
        ctl_warn_answer_error(type, error);
        return CTL_EXIT_ANSWER_ERROR;
    }
    if (jraw_member(line, "result", result) != AP_OK) {
        result->p = "null";
        result->len = 4;
    }
    return CTL_EXIT_OK;
}

/* Sends one request of type with data_json (NULL = null) and parses the
 * answer.  Returns CTL_EXIT_OK with the "result" in *result (a JSON
 * null when absent; free with cJSON_Delete), or 1 / 2 after saying why
 * on stderr, with *result NULL. */
static int ctl_call(const ctl_opts *o, const char *type, const char *data_json, cJSON **result)
{
    exchange_capture cap = {.limit = CTL_MAX_CAPTURE};
    jraw_span res;

    *result = NULL;
    int status = ctl_call_raw(o, type, data_json, 0, &cap, &res);
    if (status == CTL_EXIT_OK) {
        *result = cJSON_ParseWithLength(res.p, res.len);
        if (*result == NULL) {
            ctl_warn("%s: malformed answer from agentpoold: %.200s", type, cap.data);
            status = CTL_EXIT_ANSWER_ERROR;
        }
    }
    ap_free(cap.data);
    return status;
}

/* The exit status for an exchange whose every request was answered. */
static int ctl_answers_status(const exchange_result *r)
{
    return r->failed ? CTL_EXIT_ANSWER_ERROR : CTL_EXIT_OK;
}

/* Prints a result object for --json: indented on a terminal, one line
 * otherwise. */
static void ctl_print_json(const cJSON *res)
{
    char *txt = isatty(STDOUT_FILENO) ? cJSON_Print(res) : cJSON_PrintUnformatted(res);
    if (txt) {
        puts(txt);
        cJSON_free(txt);
    }
}

/* The width output lines should fit: the terminal's when stdout is
 * one, else $COLUMNS when set, else 0 (no limit). */
static size_t ctl_out_width(void)
{
    struct winsize ws;
    if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    const char *c = getenv("COLUMNS");
    char *end;
    long v = c ? strtol(c, &end, 10) : 0;
    return c && *c && *end == '\0' && v > 0 && v < 100000 ? (size_t)v : 0;
}

/* The number in a member of obj as an int, or dflt. */
static int ctl_int(const cJSON *obj, const char *key, int dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valueint : dflt;
}

/* send TYPE [DATA]: one request, the answer printed as received.
 * send: NDJSON from stdin, pipelined, answers printed as they come. */
static int cmd_send(const ctl_opts *o, int argc, char **argv)
{
    exchange_opts x = {.in_fd = -1, .out_fd = STDOUT_FILENO};
    exchange_result r;
    char err[256];
    char *line = NULL;

    if (argc == 0) {
        x.in_fd = STDIN_FILENO;
    } else {
        size_t len;
        line = reqline_build(1, argv[0], argc > 1 ? argv[1] : NULL, &len, err, sizeof(err));
        if (line == NULL)
            return ctl_usage_error("%s", err);
        x.preload = line;
        x.preload_len = len;
        x.preload_lines = 1;
    }
    int status = ctl_exchange(o, &x, &r, 0);
    ap_free(line);
    return status == CTL_EXIT_OK ? ctl_answers_status(&r) : status;
}

/* stats [--json] [--detailed]: pool.stats as tables or as JSON. */
static int cmd_stats(const ctl_opts *o, int argc, char **argv)
{
    /* Ordering preferences only: unknown fields are shown after these. */
    static const char *const top_order[] = {
        "total", "available", "busy", "healthy", "inFlight", "slots", "queue", "connections",
        "totalMessagesProcessed", "averageWorkerAge", "oldestWorker", "uptime", "errors"};
    static const char *const worker_order[] = {"id", "pid", "state", "healthy", "inFlight", "slots",
                                               "messagesProcessed", "age"};
    cJSON *res;
    AP_UNUSED(argc);
    AP_UNUSED(argv);
    int status = ctl_call(o, "pool.stats", o->detailed ? "{\"detailed\":true}" : "{}", &res);
    if (status != CTL_EXIT_OK)
        return status;

    if (o->json) {
        ctl_print_json(res);
    } else if (!cJSON_IsObject(res)) {
        char *txt = cJSON_PrintUnformatted(res);
        printf("%s\n", txt ? txt : "?");
        cJSON_free(txt);
    } else {
        render_object(stdout, res, top_order, AP_ARRAY_LEN(top_order));
        for (const cJSON *c = res->child; c; c = c->next) {
            if (!render_is_row_array(c))
                continue;
            int workers = c->string && strcmp(c->string, "workers") == 0;
            printf("\n%s:\n", c->string ? c->string : "?");
            render_rows(stdout, c, workers ? worker_order : NULL,
                        workers ? AP_ARRAY_LEN(worker_order) : 0);
        }
    }
    cJSON_Delete(res);
    return CTL_EXIT_OK;
}

/* ping: pool.ping, and how long the round trip took. */
static int cmd_ping(const ctl_opts *o, int argc, char **argv)
{
    cJSON *res;
    AP_UNUSED(argc);
    AP_UNUSED(argv);
    uint64_t t0 = ap_now_ns();
    int status = ctl_call(o, "pool.ping", NULL, &res);
    if (status != CTL_EXIT_OK)
        return status;
    double ms = (double)(ap_now_ns() - t0) / 1e6;
    const cJSON *pong = cJSON_GetObjectItemCaseSensitive(res, "pong");
    if (cJSON_IsTrue(pong)) {
        printf("pong from %s in %.2f ms\n", o->socket_path, ms);
    } else {
        char *txt = cJSON_PrintUnformatted(res);
        printf("answer from %s in %.2f ms: %s\n", o->socket_path, ms, txt ? txt : "?");
        cJSON_free(txt);
    }
    cJSON_Delete(res);
    return CTL_EXIT_OK;
}

/* health [--json]: pool.health in one line; exit 0 only when "ready". */
static int cmd_health(const ctl_opts *o, int argc, char **argv)
{
    cJSON *res;
    AP_UNUSED(argc);
    AP_UNUSED(argv);
    int status = ctl_call(o, "pool.health", NULL, &res);
    if (status != CTL_EXIT_OK)
        return status;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(res, "status");
    int ready = cJSON_IsString(st) && strcmp(st->valuestring, "ready") == 0;
    if (o->json) {
        ctl_print_json(res);
    } else {
        char *name = render_fit(cJSON_IsString(st) ? st->valuestring : "unknown", 0);
        int restarts = ctl_int(res, "restartsInWindow", 0);
        printf("%s: %d/%d workers healthy", name, ctl_int(res, "healthy", 0),
               ctl_int(res, "workers", 0));
        if (!ready)
            printf("; backoff: %s",
                   cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "backoff")) ? "yes" : "no");
        if (!ready || restarts > 0)
            printf("; restarts in window: %d", restarts);
        putchar('\n');
        ap_free(name);
    }
    cJSON_Delete(res);
    return ready ? CTL_EXIT_OK : CTL_EXIT_ANSWER_ERROR;
}

/* "status 3", "signal SIGKILL", or "-" for one pool.history entry. */
static char *ctl_exit_text(const cJSON *entry)
{
    char buf[64];
    const cJSON *sig = cJSON_GetObjectItemCaseSensitive(entry, "signal");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(entry, "exitStatus");
    if (cJSON_IsNumber(sig)) {
        const char *abbrev =
            sig->valueint > 0 && sig->valueint < 128 ? sigabbrev_np(sig->valueint) : NULL;
        if (abbrev)
            snprintf(buf, sizeof(buf), "signal SIG%s", abbrev);
        else
            snprintf(buf, sizeof(buf), "signal %d", sig->valueint);
    } else if (cJSON_IsNumber(st)) {
        snprintf(buf, sizeof(buf), "status %d", st->valueint);
    } else {
        snprintf(buf, sizeof(buf), "-");
    }
    return ap_strdup(buf);
}

/* history [--json]: pool.history as a table, oldest first. */
static int cmd_history(const ctl_opts *o, int argc, char **argv)
{
    static const char *const header[] = {"time", "worker", "generation", "pid", "reason", "exit"};
    cJSON *res;
    AP_UNUSED(argc);
    AP_UNUSED(argv);
    int status = ctl_call(o, "pool.history", NULL, &res);
    if (status != CTL_EXIT_OK)
        return status;
    if (o->json) {
        ctl_print_json(res);
        cJSON_Delete(res);
        return CTL_EXIT_OK;
    }
    const cJSON *hist = cJSON_GetObjectItemCaseSensitive(res, "history");
    if (cJSON_GetArraySize(hist) == 0) {
        printf("no worker has ended (of those agentpoold remembers)\n");
        cJSON_Delete(res);
        return CTL_EXIT_OK;
    }
    table t;
    char *row[AP_ARRAY_LEN(header)];
    table_init(&t, AP_ARRAY_LEN(header));
    for (size_t k = 0; k < AP_ARRAY_LEN(header); k++)
        row[k] = ap_strdup(header[k]);
    table_add_row(&t, row);
    for (const cJSON *e = hist->child; e; e = e->next) {
        const cJSON *tm = cJSON_GetObjectItemCaseSensitive(e, "time");
        char when[64];
        if (cJSON_IsNumber(tm) && tm->valuedouble >= 0)
            render_local_time((uint64_t)tm->valuedouble, when, sizeof(when));
        else
            snprintf(when, sizeof(when), "-");
        row[0] = ap_strdup(when);
        row[1] = render_value("worker", cJSON_GetObjectItemCaseSensitive(e, "worker"));
        row[2] = render_value("generation", cJSON_GetObjectItemCaseSensitive(e, "generation"));
        row[3] = render_value("pid", cJSON_GetObjectItemCaseSensitive(e, "pid"));
        row[4] = render_value("reason", cJSON_GetObjectItemCaseSensitive(e, "reason"));
        row[5] = ctl_exit_text(e);
        table_add_row(&t, row);
    }
    table_print(&t, stdout, "");
    table_free(&t);
    cJSON_Delete(res);
    return CTL_EXIT_OK;
}

/* dlq SUBCOMMAND ...: dispatches through ctl_dlq_commands. */
static int ctl_dispatch(const ctl_command *cmds, size_t ncmds, const char *group, ctl_opts *o,
                        int argc, char **argv);

static int cmd_dlq(const ctl_opts *o, int argc, char **argv)
{
    ctl_opts sub = *o;
    return ctl_dispatch(ctl_dlq_commands, AP_ARRAY_LEN(ctl_dlq_commands), "dlq", &sub, argc, argv);
}

/* One page of pool.dlq.list, kept raw. */
typedef struct {
    exchange_capture cap; /* the answer; the spans point into it */
    jraw_span records;    /* the "records" array */
    uint64_t total;       /* records in the file */
    char file[1024];      /* the file's path, escapes as written */
} ctl_page;

/* Fetches the records from offset on, at most *limit of them (1 to
 * 1000).  When the page would pass CTL_MAX_PAGE_CAPTURE it is asked for
 * again with *limit halved (which the caller keeps for later pages).
 * Returns CTL_EXIT_OK with *pg filled (free pg->cap.data with ap_free),
 * or 1 / 2 after saying why on stderr, with nothing to free. */
static int ctl_dlq_page(const ctl_opts *o, uint64_t offset, size_t *limit, ctl_page *pg)
{
    char data[96];
    jraw_span res, total, file;
    for (;;) {
        memset(pg, 0, sizeof(*pg));
        pg->cap.limit = CTL_MAX_PAGE_CAPTURE;
        snprintf(data, sizeof(data), "{\"offset\":%" PRIu64 ",\"limit\":%zu}", offset, *limit);
        int status = ctl_call_raw(o, "pool.dlq.list", data, *limit > 1, &pg->cap, &res);
        if (status == CTL_EXIT_NO_EXCHANGE && pg->cap.overflowed && *limit > 1) {
            ap_free(pg->cap.data);
            *limit /= 2;
            continue;
        }
        if (status != CTL_EXIT_OK) {
            ap_free(pg->cap.data);
            pg->cap.data = NULL;
            return status;
        }
        if (jraw_member(res, "records", &pg->records) != AP_OK || pg->records.p[0] != '[' ||
            jraw_member(res, "total", &total) != AP_OK || jraw_u64(total, &pg->total) != AP_OK) {
            ctl_warn("pool.dlq.list: malformed answer from agentpoold: %.200s", pg->cap.data);
            ap_free(pg->cap.data);
            pg->cap.data = NULL;
            return CTL_EXIT_ANSWER_ERROR;
        }
        if (jraw_member(res, "file", &file) == AP_OK)
            (void)jraw_str(file, pg->file, sizeof(pg->file));
        return CTL_EXIT_OK;
    }
}

/* The text of a raw value for a table cell: a string's contents, other
 * values as compact JSON, "-" when absent; cut to width (0: no limit). */
static char *ctl_span_text(jraw_span s, size_t width)
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
static jraw_span ctl_last_reason(jraw_span rec)
{
    jraw_span failures, f, last = {NULL, 0}, reason = {NULL, 0};
    size_t cur = 0;
    if (jraw_member(rec, "failures", &failures) == AP_OK)
        while (jraw_next(failures, &cur, &f))
            last = f;
    if (last.p)
        (void)jraw_member(last, "reason", &reason);
    return reason;
}

/* Adds the table row of one dead letter (the reason cell uncut). */
static void ctl_dlq_row(table *t, jraw_span rec)
{
    jraw_span v;
    char *row[6];
    char when[64];
    (void)jraw_member(rec, "dlqId", &v);
    row[0] = ctl_span_text(v, CTL_CELL_MAX);
    (void)jraw_member(rec, "time", &v);
    char *iso = ctl_span_text(v, 64);
    uint64_t ms;
    if (render_parse_utc(iso, &ms) == AP_OK) {
        render_local_time(ms, when, sizeof(when));
        ap_free(iso);
        row[1] = ap_strdup(when);
    } else {
        row[1] = iso;
    }
    (void)jraw_member(rec, "id", &v);
    row[2] = ctl_span_text(v, CTL_CELL_MAX);
    (void)jraw_member(rec, "type", &v);
    row[3] = ctl_span_text(v, CTL_CELL_MAX);
    (void)jraw_member(rec, "attempts", &v);
    row[4] = ctl_span_text(v, CTL_CELL_MAX);
    row[5] = ctl_span_text(ctl_last_reason(rec), 0);
    table_add_row(t, row);
}

/* Cuts the last column of t so that its lines fit width (0: no limit),
 * leaving it at least CTL_REASON_MIN characters. */
static void ctl_fit_last_column(table *t, size_t width)
{
    size_t used = 0, last = t->ncols - 1;
    if (width == 0)
        return;
    for (size_t c = 0; c < last; c++) {
        size_t w = 0;
        for (size_t r = 0; r < t->nrows; r++) {
            size_t cw = table_width(t->cells[r * t->ncols + c]);
            if (cw > w)
                w = cw;
        }
        used += w + 2;
    }
    size_t room = width > used + CTL_REASON_MIN ? width - used : CTL_REASON_MIN;
    for (size_t r = 0; r < t->nrows; r++) {
        char **cell = &t->cells[r * t->ncols + last];
        char *cut = render_fit(*cell, room);
        ap_free(*cell);
        *cell = cut;
    }
}

/* dlq list [--json] [--offset N] [--limit N]: the dead letters as a
 * table and a total line, or as their records, one per line. */
static int cmd_dlq_list(const ctl_opts *o, int argc, char **argv)
{
    static const char *const header[] = {"dlqId", "time", "id", "type", "attempts", "last failure"};
    uint64_t want = (o->given & CTL_TAKES_LIMIT) ? o->limit : CTL_DLQ_LIST_DEFAULT;
    uint64_t shown = 0, total = 0;
    size_t page = CTL_DLQ_PAGE;
    char file[1024] = "";
    ctl_page pg;
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
        status = ctl_dlq_page(o, o->offset + shown, &lim, &pg);
        if (status != CTL_EXIT_OK)
            break;
        if (lim < page)
            page = lim;
        total = pg.total;
        snprintf(file, sizeof(file), "%s", pg.file);
        size_t cur = 0, n = 0;
        jraw_span rec;
        while (jraw_next(pg.records, &cur, &rec)) {
            if (o->json) {
                fwrite(rec.p, 1, rec.len, stdout);
                putchar('\n');
            } else {
                ctl_dlq_row(&t, rec);
            }
            n++;
        }
        ap_free(pg.cap.data);
        shown += n;
        if (n == 0 || (want && shown >= want) || o->offset + shown >= total)
            break;
    }
    if (status == CTL_EXIT_OK && !o->json) {
        char *path = render_fit(file, 0);
        if (shown > 0) {
            ctl_fit_last_column(&t, ctl_out_width());
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
} ctl_replay_counts;

/* Removes the dead letters of items that replayed ok.  Returns the exit
 * status of pool.dlq.remove (CTL_EXIT_OK when nothing to remove), and
 * how many went in *removed. */
static int ctl_dlq_remove_ok(const ctl_opts *o, const replay_item *items, size_t n, uint64_t *removed)
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
 * failure and adds to *c.  Returns CTL_EXIT_OK, or CTL_EXIT_NO_EXCHANGE
 * after saying why (items answered before that keep their outcome). */
static int ctl_replay_page(const ctl_opts *o, replay_item *items, size_t n, ctl_replay_counts *c)
{
    char err[512];
    replay_result r;
    int status = CTL_EXIT_OK;
    int fd = conn_open(o->socket_path, o->timeout_ms, err, sizeof(err));
    if (fd < 0) {
        ctl_warn("%s", err);
        return CTL_EXIT_NO_EXCHANGE;
    }
    replay_opts ro = {.sock = fd, .timeout_ms = o->timeout_ms, .window = CTL_REPLAY_WINDOW};
    if (replay_run(&ro, items, n, &r) != AP_OK) {
        ctl_warn("dlq replay: %s (%zu of %zu answers missing)", r.err, r.sent - r.answered, r.sent);
        status = CTL_EXIT_NO_EXCHANGE;
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
            char *type = ctl_span_text(it->type, CTL_CELL_MAX);
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
static int ctl_is_pool_type(jraw_span type)
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
static int cmd_dlq_replay(const ctl_opts *o, int argc, char **argv)
{
    ctl_replay_counts c = {0};
    uint64_t offset = 0, remaining = 0;
    size_t page = CTL_DLQ_PAGE;
    int first = 1, found = 0, done = 0, status = CTL_EXIT_OK, remove_short = 0;
    int by_id = (o->given & CTL_TAKES_ID) != 0;
    AP_UNUSED(argc);
    AP_UNUSED(argv);

    while (!done) {
        ctl_page pg;
        size_t lim = page;
        if (!first && remaining < lim)
            lim = (size_t)remaining;
        int st = ctl_dlq_page(o, offset, &lim, &pg);
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
        jraw_span rec, v;
        while (examined < remaining && examined < lim && jraw_next(pg.records, &cur, &rec)) {
            uint64_t id;
            examined++;
            if (jraw_member(rec, "dlqId", &v) != AP_OK || jraw_u64(v, &id) != AP_OK) {
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
            if (jraw_member(rec, "type", &it->type) != AP_OK)
                it->type.p = NULL;
            if (jraw_member(rec, "data", &it->data) != AP_OK)
                it->data.p = NULL;
            if (ctl_is_pool_type(it->type)) {
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
            status = ctl_replay_page(o, items, n, &c);
            int rst = ctl_dlq_remove_ok(o, items, n, &removed);
            uint64_t ok_here = 0;
            for (size_t i = 0; i < n; i++)
                ok_here += items[i].state == REPLAY_OK;
            c.removed += removed;
            if (rst != CTL_EXIT_OK || removed < ok_here)
                remove_short = 1;
            if (rst == CTL_EXIT_NO_EXCHANGE)
                status = CTL_EXIT_NO_EXCHANGE;
        }
        ap_free(items);
        ap_free(pg.cap.data);
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
static int cmd_dlq_purge(const ctl_opts *o, int argc, char **argv)
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

/* Parses a --timeout value.  Returns AP_OK, or AP_ERR when s is not a
 * whole number of milliseconds from 0 to INT_MAX. */
static int ctl_parse_timeout(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > INT_MAX || s[0] == '-' || s[0] == '+')
        return AP_ERR;
    *out = (int)v;
    return AP_OK;
}

/* Parses a count or a dlqId: plain decimal digits.  Returns AP_OK, or
 * AP_ERR when s is anything else or does not fit 64 bits. */
static int ctl_parse_u64(const char *s, uint64_t *out)
{
    jraw_span sp = {s, strlen(s)};
    return jraw_u64(sp, out);
}

enum {
    OPT_TIMEOUT = 256, OPT_VERSION, OPT_JSON, OPT_DETAILED, OPT_OFFSET, OPT_LIMIT, OPT_ID, OPT_YES
};

static const struct option ctl_long_options[] = {
    {"socket", required_argument, NULL, 's'},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"json", no_argument, NULL, OPT_JSON},
    {"detailed", no_argument, NULL, OPT_DETAILED},
    {"offset", required_argument, NULL, OPT_OFFSET},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"id", required_argument, NULL, OPT_ID},
    {"yes", no_argument, NULL, OPT_YES},
    {NULL, 0, NULL, 0},
};

/* Parses options in argv[1..] up to the first non-option.  Returns -1 to
 * go on (with *next = index of the first non-option), else the exit
 * status to leave with (help, version, usage error). */
static int ctl_parse_options(int argc, char **argv, ctl_opts *o, int *next)
{
    int c;
    optind = 0; /* glibc: full re-initialisation, scanning from argv[1] */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:hs:", ctl_long_options, NULL)) != -1) {
        switch (c) {
        case 's':
            o->socket_path = optarg;
            break;
        case OPT_TIMEOUT:
            if (ctl_parse_timeout(optarg, &o->timeout_ms) != AP_OK)
                return ctl_usage_error("--timeout wants milliseconds (0 to %d), not '%s'", INT_MAX,
                                       optarg);
            break;
        case OPT_JSON:
            o->json = 1;
            o->given |= CTL_TAKES_JSON;
            break;
        case OPT_DETAILED:
            o->detailed = 1;
            o->given |= CTL_TAKES_DETAILED;
            break;
        case OPT_OFFSET:
        case OPT_LIMIT:
        case OPT_ID: {
            uint64_t *dst = c == OPT_OFFSET ? &o->offset : c == OPT_LIMIT ? &o->limit : &o->dlq_id;
            const char *name = c == OPT_OFFSET ? "--offset" : c == OPT_LIMIT ? "--limit" : "--id";
            if (ctl_parse_u64(optarg, dst) != AP_OK)
                return ctl_usage_error("%s wants a whole number, not '%s'", name, optarg);
            o->given |= c == OPT_OFFSET  ? CTL_TAKES_OFFSET
                        : c == OPT_LIMIT ? CTL_TAKES_LIMIT
                                         : CTL_TAKES_ID;
            break;
        }
        case OPT_YES:
            o->yes = 1;
            o->given |= CTL_TAKES_YES;
            break;
        case 'h':
            fputs(ctl_usage_text, stdout);
            return CTL_EXIT_OK;
        case OPT_VERSION:
            printf("agentpoolctl (agentpool) %s, cJSON %s\n", PACKAGE_VERSION, cJSON_Version());
            return CTL_EXIT_OK;
        case ':':
            return ctl_usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            if (optopt && optopt < 256)
                return ctl_usage_error("unknown option '-%c'", optopt);
            return ctl_usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    *next = optind;
    return -1;
}

/* Runs the command argv[0] of table cmds ("dlq" names the group in
 * messages; "" at the top level): parses the options after its name
 * into *o, checks that it takes them and its argument count.  Returns
 * the command's exit status, or 64 after a usage error. */
static int ctl_dispatch(const ctl_command *cmds, size_t ncmds, const char *group, ctl_opts *o,
                        int argc, char **argv)
{
    const ctl_command *cmd = NULL;
    const char *sep = group[0] ? " " : "";
    int first, rc;

    for (size_t i = 0; i < ncmds && cmd == NULL; i++)
        if (strcmp(cmds[i].name, argv[0]) == 0)
            cmd = &cmds[i];
    if (cmd == NULL) {
        if (group[0])
            return ctl_usage_error("unknown %s command '%s' (list, replay or purge)", group, argv[0]);
        return ctl_usage_error("unknown command '%s'", argv[0]);
    }
    /* The command's own argv: its name, then options, then arguments. */
    if ((rc = ctl_parse_options(argc, argv, o, &first)) >= 0)
        return rc;
    unsigned extra = o->given & ~cmd->takes;
    if (extra) {
        size_t bit = 0;
        while (!(extra & (1u << bit)))
            bit++;
        return ctl_usage_error("%s%s%s does not take %s", group, sep, cmd->name,
                               ctl_takes_names[bit]);
    }
    int nargs = argc - first;
    if (nargs < cmd->min_args || nargs > cmd->max_args)
        return ctl_usage_error("%s%s%s: %s arguments (usage: agentpoolctl %s%s%s %s)", group, sep,
                               cmd->name, nargs < cmd->min_args ? "missing" : "too many", group, sep,
                               cmd->name, cmd->args);
    return cmd->run(o, nargs, argv + first);
}

int main(int argc, char **argv)
{
    ctl_opts o = {.timeout_ms = CTL_DEFAULT_TIMEOUT_MS};
    int next, rc;

    const char *env = getenv(AP_SOCKET_ENV);
    o.socket_path = env && *env ? env : AP_DEFAULT_SOCKET;

    if ((rc = ctl_parse_options(argc, argv, &o, &next)) >= 0)
        return rc;
    if (next >= argc)
        return ctl_usage_error("no command given (send, stats, ping, health, history or dlq)");
    rc = ctl_dispatch(ctl_commands, AP_ARRAY_LEN(ctl_commands), "", &o, argc - next, argv + next);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        ctl_warn("writing to stdout: %s", strerror(errno));
        return CTL_EXIT_NO_EXCHANGE;
    }
    return rc;
}
