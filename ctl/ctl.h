/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ctl.h - what agentpoolctl's commands share: the parsed command line,
 * the exit statuses, messages for people, and one-request calls.
 *
 * Each command lives in its own file (cmd_send.c, cmd_stats.c,
 * cmd_pool.c, cmd_dlq.c, top.c) as one cmd_* function that receives the
 * parsed options and its own positional arguments and returns an exit
 * status; agentpoolctl.c holds the table that names them.  Commands never
 * touch the socket themselves: they call ctl_call / ctl_request (one
 * request, one answer, one connection) or ctl_exchange (send's pipelined
 * loop), which connect through conn.c and run exchange.c.
 *
 * Exit statuses are defined here once, printed by --help and documented
 * in docs/operations.md; scripts test them, so they never change
 * meaning.  Messages for people go to stderr prefixed "agentpoolctl: ";
 * stdout carries only results.
 */
#ifndef CTL_CTL_H
#define CTL_CTL_H

#include "exchange.h"
#include "jspan.h"

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "ap_common.h"

#define CTL_NAME "agentpoolctl"

/* The exit statuses, all of them. */
enum {
    CTL_EXIT_OK = 0,           /* every answer ok; health: ready */
    CTL_EXIT_ANSWER_ERROR = 1, /* agentpoold answered with an error; health: not ready;
                                  reload: refused or aborted, or a named pool failed;
                                  dlq replay: a replay failed */
    CTL_EXIT_USAGE = 2,        /* bad command line: nothing was sent */
    CTL_EXIT_CONNECT = 3,      /* could not connect to the socket */
    CTL_EXIT_EXCHANGE = 4,     /* connected, but no complete exchange: connection lost,
                                  timed out, malformed answer, output not written */
    CTL_EXIT_INTERRUPTED = 130 /* send --stream: interrupted (Ctrl-C), pool.cancel sent */
};

/* Command options a command may accept (ctl_command.takes). */
enum {
    CTL_TAKES_JSON = 1u << 0,
    CTL_TAKES_DETAILED = 1u << 1,
    CTL_TAKES_OFFSET = 1u << 2,
    CTL_TAKES_LIMIT = 1u << 3,
    CTL_TAKES_ID = 1u << 4,
    CTL_TAKES_YES = 1u << 5,
    CTL_TAKES_ONCE = 1u << 6,
    CTL_TAKES_INTERVAL = 1u << 7,
    CTL_TAKES_STREAM = 1u << 8,
    CTL_TAKES_RAW = 1u << 9,
    CTL_TAKES_POOL = 1u << 10,
    CTL_TAKES_SINCE = 1u << 11,
    CTL_TAKES_CRITICAL = 1u << 12,
    CTL_TAKES_BY = 1u << 13,
    CTL_TAKES_ALL = (1u << 14) - 1
};

/* The default --timeout, and the least and most --interval. */
#define CTL_DEFAULT_TIMEOUT_MS 30000
#define CTL_INTERVAL_MIN_MS 100
#define CTL_INTERVAL_MAX_MS 3600000
/* The most a single captured answer (stats, ping, ...) may take. */
#define CTL_MAX_CAPTURE (16u * 1024u * 1024u)

/* The parsed command line; read-only once a command runs. */
typedef struct {
    const char *socket_path;
    int timeout_ms;
    int timeout_given; /* --timeout was on the command line */
    unsigned given;    /* CTL_TAKES_* options present on the command line */
    int json;
    int detailed;
    uint64_t offset;
    uint64_t limit;
    uint64_t dlq_id;
    int yes;
    int once;
    int interval_ms;
    int stream; /* send: "stream": true, chunks printed as they come */
    int raw;    /* send --stream: every line as received */
    const char *pool; /* --pool NAME: the named pool only; NULL: every pool */
    uint64_t since_ms; /* events --since: replay this far back */
    int critical;      /* events --critical: critical events only */
    const char *by;    /* usage --by key|pool|type */
} ctl_opts;

typedef struct ctl_command {
    const char *name;
    const char *args;   /* synopsis after the name, for usage errors */
    unsigned takes;     /* CTL_TAKES_* it accepts */
    int min_args, max_args;
    int options_end;    /* the first argument ends the options (send: DATA may be -1) */
    int (*run)(const ctl_opts *o, int argc, char **argv);
} ctl_command;

/* The commands (one file each, see the top of this file). */
int cmd_send(const ctl_opts *o, int argc, char **argv);
int cmd_ping(const ctl_opts *o, int argc, char **argv);
int cmd_stats(const ctl_opts *o, int argc, char **argv);
int cmd_health(const ctl_opts *o, int argc, char **argv);
int cmd_history(const ctl_opts *o, int argc, char **argv);
int cmd_reload(const ctl_opts *o, int argc, char **argv);
int cmd_scale(const ctl_opts *o, int argc, char **argv);
int cmd_dlq(const ctl_opts *o, int argc, char **argv);
int cmd_top(const ctl_opts *o, int argc, char **argv);
int cmd_events(const ctl_opts *o, int argc, char **argv);
int cmd_session(const ctl_opts *o, int argc, char **argv);
int cmd_usage(const ctl_opts *o, int argc, char **argv);

/* Parses a duration: a whole number with ms, s, m, h or d (none: ms).
 * AP_OK, or AP_ERR when s is anything else (cmd_events.c). */
int ctl_parse_duration_ms(const char *s, uint64_t *out);

/* Prints "agentpoolctl: <message>" and a newline to stderr. */
void ctl_warn(const char *fmt, ...) AP_PRINTF(1, 2);

/* Prints "agentpoolctl: <message>" and a hint to try --help to stderr.
 * Returns CTL_EXIT_USAGE. */
int ctl_usage_error(const char *fmt, ...) AP_PRINTF(1, 2);

/* Parses a count or a dlqId: plain decimal digits.  Returns AP_OK, or
 * AP_ERR when s is anything else or does not fit 64 bits. */
int ctl_parse_u64(const char *s, uint64_t *out);

/* Connects and runs the exchange x (its sock and timeout_ms are set
 * here, from o and timeout_ms).  Never prints.  Returns CTL_EXIT_OK when
 * every request was answered (*r says how many failed), else
 * CTL_EXIT_CONNECT or CTL_EXIT_EXCHANGE with a one-line reason in err. */
int ctl_exchange_quiet(const ctl_opts *o, int timeout_ms, exchange_opts *x, exchange_result *r,
                       char *err, size_t errlen);

/* Connects to o's socket (conn_open: waiting at most timeout_ms for a
 * full backlog).  Returns the descriptor, or -1 with a reason in err. */
int ctl_connect(const ctl_opts *o, int timeout_ms, char *err, size_t errlen);

/* The exchange part of ctl_exchange_quiet, on fd from ctl_connect (not
 * closed here).  Returns CTL_EXIT_OK or CTL_EXIT_EXCHANGE as it does. */
int ctl_exchange_on(int fd, int timeout_ms, exchange_opts *x, exchange_result *r, char *err,
                    size_t errlen);

/* ctl_exchange_quiet with o->timeout_ms, saying why on stderr when it
 * fails. */
int ctl_exchange(const ctl_opts *o, exchange_opts *x, exchange_result *r);

/* One answer: the line kept raw, its members found with jspan. */
typedef struct {
    exchange_capture cap; /* the answer line (free with ctl_answer_free) */
    jspan result;     /* its "result"; the text "null" when absent */
    jspan error;      /* its "error" when "ok" is false, else p NULL */
} ctl_answer;

/* Sends one request of type with data_json (NULL = null; else an
 * object, with "pool": o->pool put first in it when --pool was given)
 * over a new connection and keeps the answer raw in *a, capturing at most limit
 * bytes.  Never prints.  Returns CTL_EXIT_OK, CTL_EXIT_ANSWER_ERROR (the
 * answer said "ok": false; a->error spans its error, err says
 * "TYPE failed: CODE: MESSAGE"), or CTL_EXIT_CONNECT / CTL_EXIT_EXCHANGE
 * with a reason in err (a->cap.overflowed set when the answer passed
 * limit).  Free a with ctl_answer_free in every case. */
int ctl_request(const ctl_opts *o, const char *type, const char *data_json, int timeout_ms,
                size_t limit, ctl_answer *a, char *err, size_t errlen);
void ctl_answer_free(ctl_answer *a);

/* Sends one request and parses its result (CTL_MAX_CAPTURE at most, the
 * timeout o->timeout_ms).  Returns CTL_EXIT_OK with the "result" in
 * *result (a JSON null when absent; free with cJSON_Delete), or another
 * status after saying why on stderr, with *result NULL. */
int ctl_call(const ctl_opts *o, const char *type, const char *data_json, cJSON **result);
/* ctl_call for a command with a human rendering: with --json the answer
 * is printed here and *result is NULL (nothing left to render). */
int ctl_call_human(const ctl_opts *o, const char *type, const char *data_json, cJSON **result);

/* name as a JSON string, escaped ("\"writer\""; free with ap_free). */
char *ctl_json_string(const char *name);

/* data_json (an object's text, or NULL for {}) with "pool": pool put
 * first in it; data_json itself, copied, when pool is NULL (NULL stays
 * NULL).  Free with ap_free. */
char *ctl_data_with_pool(const char *data_json, const char *pool);

/* "CODE: MESSAGE" of a raw "error" object, for messages (free with
 * ap_free). */
char *ctl_error_text(jspan error);

/* Prints a result object for --json: indented on a terminal, one line
 * otherwise. */
void ctl_print_json(const cJSON *res);

/* The width output lines should fit: the terminal's when stdout is one,
 * else $COLUMNS when set, else 0 (no limit). */
size_t ctl_out_width(void);

/* The number in member key of obj as an int, or dflt. */
int ctl_int(const cJSON *obj, const char *key, int dflt);

/* The number in member key of obj, or dflt. */
double ctl_num(const cJSON *obj, const char *key, double dflt);

/* The --help text (agentpoolctl.c). */
extern const char ctl_usage_text[];

#endif
