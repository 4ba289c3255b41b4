/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * args.c - options and command dispatch for agentpoolctl (see args.h).
 *
 * One getopt_long table serves every command: the options are few, and
 * one table means one spelling and one error message per option.  A
 * command's ctl_command row says which options it takes (CTL_TAKES_*
 * bits); anything else given is refused here, before the command runs,
 * so a usage error never sends a request.
 */
#include "args.h"
#include "ap_common.h"

#include <cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

/* The option each CTL_TAKES_* bit stands for, for usage errors. */
static const char *const args_takes_names[] = {"--json", "--detailed", "--offset", "--limit",
                                               "--id",   "--yes",      "--once",   "--interval",
                                               "--stream", "--raw",   "--pool",   "--since",
                                               "--critical", "--by"};

enum {
    OPT_TIMEOUT = 256, OPT_VERSION, OPT_JSON, OPT_DETAILED, OPT_OFFSET, OPT_LIMIT, OPT_ID, OPT_YES,
    OPT_ONCE, OPT_INTERVAL, OPT_STREAM, OPT_RAW, OPT_POOL, OPT_SINCE, OPT_CRITICAL, OPT_BY
};

static const struct option args_long_options[] = {
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
    {"once", no_argument, NULL, OPT_ONCE},
    {"interval", required_argument, NULL, OPT_INTERVAL},
    {"stream", no_argument, NULL, OPT_STREAM},
    {"raw", no_argument, NULL, OPT_RAW},
    {"pool", required_argument, NULL, OPT_POOL},
    {"since", required_argument, NULL, OPT_SINCE},
    {"critical", no_argument, NULL, OPT_CRITICAL},
    {"by", required_argument, NULL, OPT_BY},
    {NULL, 0, NULL, 0},
};

/* Parses a whole number of milliseconds from lo to hi.  Returns AP_OK,
 * or AP_ERR when s is anything else. */
static int args_parse_ms(const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi || s[0] == '-' || s[0] == '+')
        return AP_ERR;
    *out = (int)v;
    return AP_OK;
}

int args_parse(int argc, char **argv, int options_end, ctl_opts *o, int *next)
{
    int c;
    optind = 0; /* glibc: full re-initialisation, scanning from argv[1] */
    opterr = 0;
    while ((c = getopt_long(argc, argv, options_end ? "+:hs:" : ":hs:", args_long_options, NULL)) != -1) {
        switch (c) {
        case 's':
            o->socket_path = optarg;
            break;
        case OPT_TIMEOUT:
            if (args_parse_ms(optarg, 0, INT_MAX, &o->timeout_ms) != AP_OK)
                return ctl_usage_error("--timeout wants milliseconds (0 to %d), not '%s'", INT_MAX,
                                       optarg);
            o->timeout_given = 1;
            break;
        case OPT_INTERVAL:
            if (args_parse_ms(optarg, CTL_INTERVAL_MIN_MS, CTL_INTERVAL_MAX_MS, &o->interval_ms) != AP_OK)
                return ctl_usage_error("--interval wants milliseconds (%d to %d), not '%s'",
                                       CTL_INTERVAL_MIN_MS, CTL_INTERVAL_MAX_MS, optarg);
            o->given |= CTL_TAKES_INTERVAL;
            break;
        case OPT_JSON:
            o->json = 1;
            o->given |= CTL_TAKES_JSON;
            break;
        case OPT_DETAILED:
            o->detailed = 1;
            o->given |= CTL_TAKES_DETAILED;
            break;
        case OPT_ONCE:
            o->once = 1;
            o->given |= CTL_TAKES_ONCE;
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
        case OPT_STREAM:
            o->stream = 1;
            o->given |= CTL_TAKES_STREAM;
            break;
        case OPT_RAW:
            o->raw = 1;
            o->given |= CTL_TAKES_RAW;
            break;
        case OPT_POOL:
            /* Any other name is agentpoold's to judge ("unknown pool"). */
            if (optarg[0] == '\0')
                return ctl_usage_error("--pool wants a pool's name, not ''");
            o->pool = optarg;
            o->given |= CTL_TAKES_POOL;
            break;
        case OPT_SINCE:
            if (ctl_parse_duration_ms(optarg, &o->since_ms) != AP_OK)
                return ctl_usage_error("--since wants a duration such as 90s, 10m, 2h or 1d, not '%s'", optarg);
            o->given |= CTL_TAKES_SINCE;
            break;
        case OPT_CRITICAL:
            o->critical = 1;
            o->given |= CTL_TAKES_CRITICAL;
            break;
        case OPT_BY:
            o->by = optarg; /* cmd_usage judges it */
            o->given |= CTL_TAKES_BY;
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

/* "list, replay or purge": the names in cmds, for a usage error. */
static void args_names(const ctl_command *cmds, size_t ncmds, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ncmds && len < cap; i++) {
        const char *sep = i == 0 ? "" : i + 1 == ncmds ? " or " : ", ";
        int n = snprintf(buf + len, cap - len, "%s%s", sep, cmds[i].name);
        if (n < 0)
            break;
        len += (size_t)n;
    }
}

int args_dispatch(const ctl_command *cmds, size_t ncmds, const char *group, ctl_opts *o, int argc,
                  char **argv)
{
    const ctl_command *cmd = NULL;
    const char *sep = group[0] ? " " : "";
    char names[256];
    int first, rc;

    for (size_t i = 0; i < ncmds && cmd == NULL; i++)
        if (strcmp(cmds[i].name, argv[0]) == 0)
            cmd = &cmds[i];
    if (cmd == NULL) {
        args_names(cmds, ncmds, names, sizeof(names));
        if (group[0])
            return ctl_usage_error("unknown %s command '%s' (%s)", group, argv[0], names);
        return ctl_usage_error("unknown command '%s' (%s)", argv[0], names);
    }
    /* The command's own argv: its name, then options, then arguments. */
    if ((rc = args_parse(argc, argv, cmd->options_end, o, &first)) >= 0)
        return rc;
    unsigned extra = o->given & ~cmd->takes;
    if (extra) {
        size_t bit = 0;
        while (!(extra & (1u << bit)))
            bit++;
        return ctl_usage_error("%s%s%s does not take %s", group, sep, cmd->name,
                               args_takes_names[bit]);
    }
    int nargs = argc - first;
    if (nargs < cmd->min_args || nargs > cmd->max_args)
        return ctl_usage_error("%s%s%s: %s arguments (usage: agentpoolctl %s%s%s %s)", group, sep,
                               cmd->name, nargs < cmd->min_args ? "missing" : "too many", group, sep,
                               cmd->name, cmd->args);
    return cmd->run(o, nargs, argv + first);
}
