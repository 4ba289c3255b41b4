/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * main.c - agentpool-bench's command line: parse and check the options
 * into a bench_cfg, run the load (load.c), print the report (report.c),
 * and turn the outcome into the exit status.
 *
 * Exit statuses (scripts rely on them):
 *   0   the run completed: no protocol errors, nothing outstanding;
 *   1   it could not run (cannot connect, no event base);
 *   2   usage error (bad option or value);
 *   3   it ran, but the server misbehaved: protocol errors, answers
 *       missing at the end, or it stopped answering (--timeout);
 *   130 interrupted by SIGINT/SIGTERM (the report is still printed).
 * Error answers (agent_error, HTTP 5xx, connection_closed) are results,
 * not failures: they are counted and reported, and leave the status 0.
 */
#include "ap_common.h"
#include "ap_defaults.h"
#include "bench.h"
#include "load.h"
#include "report.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

enum { EXIT_RAN = 0, EXIT_CANNOT_RUN = 1, EXIT_USAGE = 2, EXIT_MISBEHAVED = 3, EXIT_INTERRUPTED = 130 };

#define MAIN_MAX_CONNS 10000u
#define MAIN_MAX_DEPTH 65536u
#define MAIN_MAX_PAYLOAD (64u * 1024u * 1024u)
#define MAIN_DEFAULT_SECONDS 10.0

static void main_usage(FILE *out)
{
    fprintf(out,
            "Usage: " BENCH_NAME " [target] [load] [request] [--json]\n"
            "Load generator for agentpoold (NDJSON) and HTTP/1.1 servers.\n"
            "\n"
            "Target (default: --unix $" AP_SOCKET_ENV " or " AP_DEFAULT_SOCKET "):\n"
            "  --unix PATH          connect to a Unix socket\n"
            "  --tcp HOST:PORT      connect over TCP\n"
            "  --redis URL          through the broker redis://HOST[:PORT][/DB]: requests are\n"
            "                       added to the pool's stream agentpool:POOL:requests (--pool,\n"
            "                       default 'default'), answers read from a reply stream per\n"
            "                       connection (ndjson only)\n"
            "  --proto ndjson|http  protocol (default ndjson)\n"
            "  --path PATH          HTTP: request target of the POST (default /)\n"
            "  --body JSON          HTTP: POST this body as it is (e.g. an A2A JSON-RPC\n"
            "                       request to --path /a2a/POOL) instead of the NDJSON one\n"
            "  --expect jsonrpc     HTTP: an answer counts as ok only when its body starts\n"
            "                       as a JSON-RPC result ({\"jsonrpc\":\"2.0\",\"id\":..,\"result\":);\n"
            "                       one with \"error\" is counted as the error jsonrpc_error\n"
            "\n"
            "Load:\n"
            "  --conns C            connections (default 8)\n"
            "  --depth D            requests in flight per connection, at most (default 1;\n"
            "                       with HTTP, D > 1 pipelines)\n"
            "  --rate R             open loop: R requests/s overall, latency counted from\n"
            "                       each request's intended send time (default: closed loop)\n"
            "  --seconds S          measure for S seconds (default 10 unless --requests)\n"
            "  --requests N         measure N requests (with --seconds: whichever ends first)\n"
            "  --warmup S           run S seconds first without measuring (default 0)\n"
            "  --timeout S          give up when no answer came for S seconds while some\n"
            "                       are awaited (default 10)\n"
            "\n"
            "Request ({\"id\":N,\"type\":T,\"data\":...}):\n"
            "  --type T             message type (default echo)\n"
            "  --payload-bytes B    data is {\"p\":\"<B characters>\"} (default 16)\n"
            "  --data JSON          data to send instead of the payload\n"
            "  --pool NAME          add \"pool\": NAME: run in that pool (ndjson; default: the\n"
            "                       server's defaultPool)\n"
            "  --sessions N         add \"session\": \"s<k>\", k = id modulo N (zero-padded),\n"
            "                       so the requests cycle over N session keys (ndjson)\n"
            "  --stream             add \"stream\": true and count the chunks (ndjson only):\n"
            "                       chunks/s, time to first chunk p50/p90/p99, final\n"
            "                       answers/s\n"
            "\n"
            "Output:\n"
            "  --json               print one JSON object instead of the summary\n"
            "  --help, --version\n"
            "\n"
            "Exit status: 0 ran cleanly, 1 could not run, 2 usage, 3 the server\n"
            "misbehaved (protocol errors, missing answers, stalled), 130 interrupted.\n");
}

/* Parses a number in [lo, hi]; AP_ERR with err set otherwise. */
static int main_double(const char *opt, const char *s, double lo, double hi, double *out, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v) || v < lo || v > hi) {
        snprintf(err, errlen, "%s %s: expected a number from %g to %g", opt, s, lo, hi);
        return AP_ERR;
    }
    *out = v;
    return AP_OK;
}

static int main_uint(const char *opt, const char *s, unsigned long long lo, unsigned long long hi,
                     unsigned long long *out, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end != '\0' || s[0] == '-' || v < lo || v > hi) {
        snprintf(err, errlen, "%s %s: expected an integer from %llu to %llu", opt, s, lo, hi);
        return AP_ERR;
    }
    *out = v;
    return AP_OK;
}

enum {
    OPT_UNIX = 1000, OPT_TCP, OPT_PROTO, OPT_PATH, OPT_CONNS, OPT_DEPTH, OPT_RATE, OPT_SECONDS,
    OPT_REQUESTS, OPT_WARMUP, OPT_TIMEOUT, OPT_TYPE, OPT_PAYLOAD, OPT_DATA, OPT_JSON, OPT_HELP, OPT_VERSION,
    OPT_STREAM,
    OPT_POOL, OPT_SESSIONS, OPT_BODY, OPT_EXPECT, OPT_REDIS
};

/* Fills cfg from the command line.  Returns AP_OK, AP_ERR with err set
 * (usage error), or 1 when --help or --version was answered. */
static int main_parse(int argc, char **argv, bench_cfg *cfg, char *err, size_t errlen)
{
    static const struct option opts[] = {
        {"unix", required_argument, NULL, OPT_UNIX},
        {"tcp", required_argument, NULL, OPT_TCP},
        {"redis", required_argument, NULL, OPT_REDIS},
        {"proto", required_argument, NULL, OPT_PROTO},
        {"path", required_argument, NULL, OPT_PATH},
        {"conns", required_argument, NULL, OPT_CONNS},
        {"depth", required_argument, NULL, OPT_DEPTH},
        {"rate", required_argument, NULL, OPT_RATE},
        {"seconds", required_argument, NULL, OPT_SECONDS},
        {"requests", required_argument, NULL, OPT_REQUESTS},
        {"warmup", required_argument, NULL, OPT_WARMUP},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"type", required_argument, NULL, OPT_TYPE},
        {"payload-bytes", required_argument, NULL, OPT_PAYLOAD},
        {"data", required_argument, NULL, OPT_DATA},
        {"json", no_argument, NULL, OPT_JSON},
        {"stream", no_argument, NULL, OPT_STREAM},
        {"pool", required_argument, NULL, OPT_POOL},
        {"sessions", required_argument, NULL, OPT_SESSIONS},
        {"body", required_argument, NULL, OPT_BODY},
        {"expect", required_argument, NULL, OPT_EXPECT},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    const char *unix_path = NULL, *tcp = NULL, *redis = NULL;
    unsigned long long u;
    int opt;

    memset(cfg, 0, sizeof(*cfg));
    cfg->conns = 8;
    cfg->depth = 1;
    cfg->timeout = 10;
    cfg->req.type = "echo";
    cfg->req.payload_bytes = 16;
    cfg->req.path = "/";

    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case OPT_UNIX:
            unix_path = optarg;
            break;
        case OPT_TCP:
            tcp = optarg;
            break;
        case OPT_REDIS:
            redis = optarg;
            break;
        case OPT_PROTO:
            if (strcmp(optarg, "ndjson") == 0) {
                cfg->proto = BENCH_NDJSON;
            } else if (strcmp(optarg, "http") == 0) {
                cfg->proto = BENCH_HTTP;
            } else {
                snprintf(err, errlen, "--proto %s: expected ndjson or http", optarg);
                return AP_ERR;
            }
            break;
        case OPT_PATH:
            cfg->req.path = optarg;
            break;
        case OPT_CONNS:
            if (main_uint("--conns", optarg, 1, MAIN_MAX_CONNS, &u, err, errlen) != AP_OK)
                return AP_ERR;
            cfg->conns = (uint32_t)u;
            break;
        case OPT_DEPTH:
            if (main_uint("--depth", optarg, 1, MAIN_MAX_DEPTH, &u, err, errlen) != AP_OK)
                return AP_ERR;
            cfg->depth = (uint32_t)u;
            break;
        case OPT_RATE:
            if (main_double("--rate", optarg, 0.001, 1e8, &cfg->rate, err, errlen) != AP_OK)
                return AP_ERR;
            break;
        case OPT_SECONDS:
            if (main_double("--seconds", optarg, 0.001, 1e7, &cfg->seconds, err, errlen) != AP_OK)
                return AP_ERR;
            break;
        case OPT_REQUESTS:
            if (main_uint("--requests", optarg, 1, 1ull << 50, &u, err, errlen) != AP_OK)
                return AP_ERR;
            cfg->requests = u;
            break;
        case OPT_WARMUP:
            if (main_double("--warmup", optarg, 0, 1e6, &cfg->warmup, err, errlen) != AP_OK)
                return AP_ERR;
            break;
        case OPT_TIMEOUT:
            if (main_double("--timeout", optarg, 0.001, 1e6, &cfg->timeout, err, errlen) != AP_OK)
                return AP_ERR;
            break;
        case OPT_TYPE:
            cfg->req.type = optarg;
            break;
        case OPT_PAYLOAD:
            if (main_uint("--payload-bytes", optarg, 0, MAIN_MAX_PAYLOAD, &u, err, errlen) != AP_OK)
                return AP_ERR;
            cfg->req.payload_bytes = (size_t)u;
            break;
        case OPT_DATA:
            cfg->req.data = optarg;
            break;
        case OPT_JSON:
            cfg->json = 1;
            break;
        case OPT_STREAM:
            cfg->stream = 1;
            cfg->req.stream = 1;
            break;
        case OPT_POOL:
            cfg->req.pool = optarg;
            break;
        case OPT_SESSIONS:
            if (main_uint("--sessions", optarg, 1, 1ull << 32, &u, err, errlen) != AP_OK)
                return AP_ERR;
            cfg->req.sessions = u;
            break;
        case OPT_BODY:
            cfg->req.body = optarg;
            break;
        case OPT_EXPECT:
            if (strcmp(optarg, "jsonrpc") != 0) {
                snprintf(err, errlen, "--expect %s: expected jsonrpc", optarg);
                return AP_ERR;
            }
            cfg->expect_jsonrpc = 1;
            break;
        case OPT_HELP:
            main_usage(stdout);
            return 1;
        case OPT_VERSION:
            printf(BENCH_NAME " " PACKAGE_VERSION "\n");
            return 1;
        default:
            if (optopt)
                snprintf(err, errlen, "unknown option or missing value: %s", argv[optind - 1]);
            else
                snprintf(err, errlen, "unknown option: %s", argv[optind - 1]);
            return AP_ERR;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument: %s", argv[optind]);
        return AP_ERR;
    }
    if ((cfg->req.body || cfg->expect_jsonrpc) && cfg->proto != BENCH_HTTP) {
        snprintf(err, errlen, "--body and --expect need --proto http");
        return AP_ERR;
    }
    if (cfg->req.body && (cfg->req.data || cfg->req.sessions || cfg->req.pool)) {
        snprintf(err, errlen, "--body is the whole request body: not with --data, --sessions or --pool");
        return AP_ERR;
    }
    if (cfg->stream && cfg->proto == BENCH_HTTP) {
        snprintf(err, errlen, "--stream needs --proto ndjson (streams are NDJSON lines)");
        return AP_ERR;
    }
    if (unix_path && tcp) {
        snprintf(err, errlen, "--unix and --tcp are exclusive");
        return AP_ERR;
    }
    if (redis && (unix_path || tcp)) {
        snprintf(err, errlen, "--redis and --%s are exclusive", unix_path ? "unix" : "tcp");
        return AP_ERR;
    }
    if (redis && cfg->proto == BENCH_HTTP) {
        snprintf(err, errlen, "--redis needs --proto ndjson (the broker carries NDJSON lines)");
        return AP_ERR;
    }
    if (redis) {
        if (addr_redis(&cfg->target, redis, err, errlen) != AP_OK)
            return AP_ERR;
    } else if (tcp) {
        if (addr_tcp(&cfg->target, tcp, err, errlen) != AP_OK)
            return AP_ERR;
    } else {
        if (!unix_path) {
            const char *env = getenv(AP_SOCKET_ENV);
            unix_path = env && *env ? env : AP_DEFAULT_SOCKET;
        }
        if (addr_unix(&cfg->target, unix_path, err, errlen) != AP_OK)
            return AP_ERR;
    }
    if (cfg->seconds == 0 && cfg->requests == 0)
        cfg->seconds = MAIN_DEFAULT_SECONDS;
    cfg->progress = isatty(STDERR_FILENO);
    return AP_OK;
}

int main(int argc, char **argv)
{
    bench_cfg cfg;
    char err[600];

    int rc = main_parse(argc, argv, &cfg, err, sizeof(err));
    if (rc == 1)
        return EXIT_RAN;
    if (rc != AP_OK) {
        fprintf(stderr, BENCH_NAME ": %s (see --help)\n", err);
        return EXIT_USAGE;
    }
    if (load_init(&cfg, err, sizeof(err)) != AP_OK) {
        fprintf(stderr, BENCH_NAME ": %s\n", err);
        load_free();
        return EXIT_USAGE;
    }
    if (load_run(err, sizeof(err)) != AP_OK) {
        fprintf(stderr, BENCH_NAME ": cannot run against %s: %s\n", cfg.target.desc, err);
        load_free();
        return EXIT_CANNOT_RUN;
    }
    int out_rc = AP_OK;
    if (cfg.json)
        out_rc = report_json(stdout);
    else
        report_human(stdout);
    int status = EXIT_RAN;
    if (bench.end == END_INTERRUPTED)
        status = EXIT_INTERRUPTED;
    else if (bench.end == END_STALLED || report_protocol_errors() > 0 || bench.n.in_flight + load_unsent() > 0)
        status = EXIT_MISBEHAVED;
    if (out_rc != AP_OK) {
        fprintf(stderr, BENCH_NAME ": cannot write the report\n");
        status = EXIT_CANNOT_RUN;
    }
    load_free();
    return status;
}
