/*
 * agentpoolctl.c - the command-line client of agentpoold.
 *
 * main() parses the global options, finds the command in ctl_commands[]
 * and runs it; each command is one small cmd_* function that receives
 * the parsed options and its own positional arguments and returns the
 * exit status.  Adding a command (top, health, reload, scale, history,
 * dlq list/replay/purge) means writing one cmd_* function, usually a
 * call to ctl_call() plus some printing, and one table row; a command
 * with sub-commands (dlq) dispatches on its first argument through a
 * table of its own.
 *
 * Exit statuses are part of the interface (scripts test them): 0 all
 * answers ok, 1 an answer was an error, 2 no complete exchange (cannot
 * connect, connection lost, timeout, output failure), 64 usage error.
 * Messages for people go to stderr prefixed "agentpoolctl: "; stdout
 * carries only results.  The I/O itself lives in conn.c (connect) and
 * exchange.c (the pipelined poll loop); this file never reads or writes
 * the socket.
 */
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_defaults.h"
#include "conn.h"
#include "exchange.h"
#include "render.h"
#include "reqline.h"

#include <cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define CTL_NAME "agentpoolctl"
#define CTL_DEFAULT_TIMEOUT_MS 30000
/* The most a single captured answer (stats, ping, ...) may take. */
#define CTL_MAX_CAPTURE (16u * 1024u * 1024u)

enum {
    CTL_EXIT_OK = 0,
    CTL_EXIT_ANSWER_ERROR = 1,
    CTL_EXIT_NO_EXCHANGE = 2,
    CTL_EXIT_USAGE = 64
};

/* Command options a command may accept (ctl_command.takes). */
enum { CTL_TAKES_JSON = 1u << 0, CTL_TAKES_DETAILED = 1u << 1 };

/* The parsed command line; read-only once a command runs. */
typedef struct {
    const char *socket_path;
    int timeout_ms;
    unsigned given; /* CTL_TAKES_* options present on the command line */
    int json;
    int detailed;
} ctl_opts;

typedef struct {
    const char *name;
    const char *args;    /* synopsis after the name, for --help */
    unsigned takes;      /* CTL_TAKES_* it accepts */
    int min_args, max_args;
    int (*run)(const ctl_opts *o, int argc, char **argv);
} ctl_command;

static int cmd_send(const ctl_opts *o, int argc, char **argv);
static int cmd_stats(const ctl_opts *o, int argc, char **argv);
static int cmd_ping(const ctl_opts *o, int argc, char **argv);

static const ctl_command ctl_commands[] = {
    {"send", "[TYPE [DATA]]", 0, 0, 2, cmd_send},
    {"stats", "[--json] [--detailed]", CTL_TAKES_JSON | CTL_TAKES_DETAILED, 0, 0, cmd_stats},
    {"ping", "", 0, 0, 0, cmd_ping},
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
    "\n"
    "Options (before or after COMMAND; for send, options end at TYPE):\n"
    "  -s, --socket PATH      agentpoold's socket (default: $AGENTPOOL_SOCKET,\n"
    "                         else " AP_DEFAULT_SOCKET ")\n"
    "      --timeout MS       give up when answers are due and agentpoold has\n"
    "                         sent nothing for MS milliseconds (default 30000;\n"
    "                         0 waits forever)\n"
    "  -h, --help             show this help and exit\n"
    "      --version          show the version and exit\n"
    "\n"
    "Exit status:\n"
    "   0  every answer had \"ok\": true\n"
    "   1  agentpoold answered, and at least one answer was an error\n"
    "   2  no complete exchange: cannot connect, connection lost or timed out\n"
    "      before every answer came (the count missing is printed), or the\n"
    "      output could not be written\n"
    "  64  usage error: unknown command or option, bad argument, invalid DATA\n";

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
 * request was answered (*r says how many failed), else reports why on
 * stderr and returns CTL_EXIT_NO_EXCHANGE. */
static int ctl_exchange(const ctl_opts *o, exchange_opts *x, exchange_result *r)
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
    if (r->status == EXCHANGE_IOERR && r->answered >= r->sent)
        ctl_warn("%s", r->err);
    else
        ctl_warn("%s (%zu of %zu answer%s missing)", r->err, r->sent - r->answered, r->sent,
                 r->sent == 1 ? "" : "s");
    return CTL_EXIT_NO_EXCHANGE;
}

/* Sends one request of type with data_json (NULL = null) and parses the
 * answer.  Returns CTL_EXIT_OK with the detached "result" in *result (a
 * JSON null when absent; free with cJSON_Delete), or 1 / 2 after saying
 * why on stderr, with *result NULL. */
static int ctl_call(const ctl_opts *o, const char *type, const char *data_json, cJSON **result)
{
    char err[256];
    size_t len;
    exchange_capture cap = {.limit = CTL_MAX_CAPTURE};
    exchange_result r;
    cJSON *resp = NULL;
    int status;

    *result = NULL;
    char *line = reqline_build(1, type, data_json, &len, err, sizeof(err));
    if (line == NULL) { /* our own requests are well-formed: a bug */
        ctl_warn("%s: %s", type, err);
        return CTL_EXIT_USAGE;
    }
    exchange_opts x = {.preload = line, .preload_len = len, .preload_lines = 1, .in_fd = -1,
                       .out_fd = -1, .capture = &cap};
    status = ctl_exchange(o, &x, &r);
    ap_free(line);
    if (status != CTL_EXIT_OK)
        goto out;

    /* One request per connection, so the one answer is ours. */
    resp = cJSON_Parse(cap.data ? cap.data : "");
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(resp, "ok");
    if (!cJSON_IsObject(resp) || !cJSON_IsBool(ok)) {
        ctl_warn("%s: malformed answer from agentpoold: %.200s", type, cap.data ? cap.data : "");
        status = CTL_EXIT_ANSWER_ERROR;
        goto out;
    }
    if (cJSON_IsFalse(ok)) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(resp, "error");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
        ctl_warn("%s failed: %s: %s", type, cJSON_IsString(code) ? code->valuestring : "?",
                 cJSON_IsString(msg) ? msg->valuestring : "(no message)");
        status = CTL_EXIT_ANSWER_ERROR;
        goto out;
    }
    *result = cJSON_DetachItemFromObjectCaseSensitive(resp, "result");
    if (*result == NULL)
        *result = cJSON_CreateNull();
    status = CTL_EXIT_OK;

out:
    cJSON_Delete(resp);
    ap_free(cap.data);
    return status;
}

/* The exit status for an exchange whose every request was answered. */
static int ctl_answers_status(const exchange_result *r)
{
    return r->failed ? CTL_EXIT_ANSWER_ERROR : CTL_EXIT_OK;
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
    int status = ctl_exchange(o, &x, &r);
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
    int status = ctl_call(o, "pool.stats", o->detailed ? "{\"detailed\":true}" : "{}", &res);
    if (status != CTL_EXIT_OK)
        return status;

    if (o->json) {
        char *txt = isatty(STDOUT_FILENO) ? cJSON_Print(res) : cJSON_PrintUnformatted(res);
        if (txt) {
            puts(txt);
            cJSON_free(txt);
        }
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

enum { OPT_TIMEOUT = 256, OPT_VERSION, OPT_JSON, OPT_DETAILED };

static const struct option ctl_long_options[] = {
    {"socket", required_argument, NULL, 's'},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"json", no_argument, NULL, OPT_JSON},
    {"detailed", no_argument, NULL, OPT_DETAILED},
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

static const ctl_command *ctl_find_command(const char *name)
{
    for (size_t i = 0; i < AP_ARRAY_LEN(ctl_commands); i++)
        if (strcmp(ctl_commands[i].name, name) == 0)
            return &ctl_commands[i];
    return NULL;
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
        return ctl_usage_error("no command given (send, stats or ping)");
    const ctl_command *cmd = ctl_find_command(argv[next]);
    if (cmd == NULL)
        return ctl_usage_error("unknown command '%s'", argv[next]);

    /* The command's own argv: its name, then options, then arguments. */
    int cargc = argc - next;
    char **cargv = argv + next;
    int first;
    if ((rc = ctl_parse_options(cargc, cargv, &o, &first)) >= 0)
        return rc;
    if (o.given & ~cmd->takes) {
        return ctl_usage_error("%s does not take %s", cmd->name,
                               (o.given & ~cmd->takes & CTL_TAKES_JSON) ? "--json" : "--detailed");
    }
    int nargs = cargc - first;
    if (nargs < cmd->min_args || nargs > cmd->max_args)
        return ctl_usage_error("%s: %s arguments (usage: agentpoolctl %s %s)", cmd->name,
                               nargs < cmd->min_args ? "missing" : "too many", cmd->name, cmd->args);

    rc = cmd->run(&o, nargs, cargv + first);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        ctl_warn("writing to stdout: %s", strerror(errno));
        return CTL_EXIT_NO_EXCHANGE;
    }
    return rc;
}
