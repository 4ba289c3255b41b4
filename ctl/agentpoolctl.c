/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * agentpoolctl.c - the command-line client of agentpoold: main(), the
 * command table and the help text.
 *
 * main() parses the global options (args.c) and hands the rest to
 * args_dispatch(), which finds the command in ctl_commands[], parses the
 * options that follow it, checks that the command takes them and runs
 * it.  Each command is one cmd_* function in a file of its own:
 * cmd_send.c (send, ping), cmd_stats.c (stats), cmd_pool.c (health,
 * history, reload, scale), cmd_events.c (events), cmd_dlq.c and cmd_session.c (dlq, session and
 * their sub-commands, through tables of their own) and top.c (top, with topview.c drawing its
 * frames).  Adding a command means one such function and one row here,
 * plus its lines in the help text.
 *
 * The exit statuses are defined once, in ctl.h, and listed at the end of
 * the help text below; docs/operations.md documents the same list and
 * tests/integration checks each through the real agentpoold.  This file
 * never reads or writes the socket.
 */
#include "args.h"
#include "ctl.h"
#include "ap_defaults.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ctl_command ctl_commands[] = {
    {"send", "[--stream [--raw]] [--pool NAME] [TYPE [DATA]]",
     CTL_TAKES_STREAM | CTL_TAKES_RAW | CTL_TAKES_POOL, 0, 2, 1, cmd_send},
    {"stats", "[--json] [--detailed] [--pool NAME]", CTL_TAKES_JSON | CTL_TAKES_DETAILED | CTL_TAKES_POOL, 0, 0,
     0, cmd_stats},
    {"top", "[--once] [--interval MS] [--pool NAME]", CTL_TAKES_ONCE | CTL_TAKES_INTERVAL | CTL_TAKES_POOL, 0, 0,
     0, cmd_top},
    {"ping", "", 0, 0, 0, 0, cmd_ping},
    {"health", "[--json] [--pool NAME]", CTL_TAKES_JSON | CTL_TAKES_POOL, 0, 0, 0, cmd_health},
    {"history", "[--json] [--pool NAME]", CTL_TAKES_JSON | CTL_TAKES_POOL, 0, 0, 0, cmd_history},
    {"reload", "[--json] [--pool NAME]", CTL_TAKES_JSON | CTL_TAKES_POOL, 0, 0, 0, cmd_reload},
    {"scale", "N [--json] [--pool NAME]", CTL_TAKES_JSON | CTL_TAKES_POOL, 1, 1, 0, cmd_scale},
    /* dlq's sub-command checks the options (cmd_dlq.c). */
    {"dlq", "list|replay|purge [OPTIONS]", CTL_TAKES_ALL, 1, INT_MAX, 1, cmd_dlq},
    /* so does session's (cmd_session.c). */
    {"session", "show|delete|list [OPTIONS]", CTL_TAKES_ALL, 1, INT_MAX, 1, cmd_session},
    {"events", "[--json] [--since DURATION] [--critical] [--pool NAME] [TOPIC...]",
     CTL_TAKES_JSON | CTL_TAKES_SINCE | CTL_TAKES_CRITICAL | CTL_TAKES_POOL, 0, 32, 0, cmd_events},
    {"usage", "[--by key|pool|type] [--json] [--pool NAME]", CTL_TAKES_BY | CTL_TAKES_JSON | CTL_TAKES_POOL, 0, 0, 0,
     cmd_usage},
};

const char ctl_usage_text[] =
    "Usage: agentpoolctl [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "Talk to a running agentpoold over its Unix socket.\n"
    "\n"
    "Commands:\n"
    "  send TYPE [DATA]       send one request {\"id\":1,\"type\":TYPE,\"data\":DATA}\n"
    "                         (DATA is JSON, default null) and print the\n"
    "                         response line as received; --pool NAME adds\n"
    "                         \"pool\": NAME to it (that pool serves it)\n"
    "  send                   read NDJSON requests from stdin (blank lines\n"
    "                         skipped), pipeline them, print each response line\n"
    "                         as it arrives (in the server's order; match by id)\n"
    "  send --stream [--raw] TYPE [DATA]\n"
    "                         send it with \"stream\": true and print each chunk's\n"
    "                         JSON value on a line of its own as it arrives\n"
    "                         (heartbeats not shown), then the final response\n"
    "                         line as received; --raw prints every line as\n"
    "                         received.  Ctrl-C sends pool.cancel for it, waits\n"
    "                         (at most --timeout; a second Ctrl-C exits at once)\n"
    "                         for the final answer, normally \"cancelled\", prints\n"
    "                         it and exits 130\n"
    "  stats [--json] [--detailed] [--pool NAME]\n"
    "                         pool statistics: one line per subject (pool state,\n"
    "                         workers by state, queue, throughput, latency and\n"
    "                         queue-wait percentiles, restarts by reason,\n"
    "                         messages by outcome, errors by code, memory), then\n"
    "                         answers by type and circuit breakers; --detailed\n"
    "                         adds one row per worker; --json prints the result\n"
    "                         object (indented on a terminal, one line otherwise).\n"
    "                         With named pools, a table of the pools follows\n"
    "                         the sheet (the totals)\n"
    "  top [--once] [--interval MS] [--pool NAME]\n"
    "                         a live view, redrawn every second (or MS): pool\n"
    "                         state, uptime, workers ready/total, queue,\n"
    "                         throughput, p99 latency, errors per minute, and\n"
    "                         one row per worker (pid, state, in-flight,\n"
    "                         messages, RSS, age, errors), cut to the terminal's\n"
    "                         width; q or Ctrl-C quits.  --once prints one frame\n"
    "                         without terminal escapes and exits.  With named\n"
    "                         pools, one block per pool (its line, its workers)\n"
    "  ping                   check that agentpoold answers\n"
    "  health [--json] [--pool NAME]\n"
    "                         the pool's health in one line, such as\n"
    "                         \"ready: 2/2 workers healthy\"; when not ready also\n"
    "                         whether respawns are in backoff and how many\n"
    "                         workers ended unexpectedly within the restart\n"
    "                         window, and which slots wait in restart\n"
    "                         backoff; with named pools, a line per pool after\n"
    "                         it (\"pool writer: ready: 2/2 workers healthy\").\n"
    "                         Exit status 0 only when ready (every pool is)\n"
    "  history [--json] [--pool NAME]\n"
    "                         the last worker ends (pool.history): local time,\n"
    "                         pool (when the entries name it), worker,\n"
    "                         generation, pid, reason, and exit status or signal\n"
    "  reload [--json] [--pool NAME]\n"
    "                         rolling reload (pool.reload): re-read the config,\n"
    "                         replace every worker one at a time, and wait for\n"
    "                         the end (without a time limit unless --timeout).\n"
    "                         Prints \"reloaded: N workers replaced, agent A\";\n"
    "                         when agentpoold refuses it or the new code fails\n"
    "                         to start (the old workers keep serving) it prints\n"
    "                         why and the traceback, and exits 1.  With named\n"
    "                         pools, one line per pool (\"pool writer: reloaded,\n"
    "                         2 workers replaced, agent A\", \"pool bad: FAILED:\n"
    "                         <error>\"), and exit 1 when any pool failed\n"
    "  scale N [--json] [--pool NAME]\n"
    "                         set the number of workers (pool.scale), clamped\n"
    "                         to minWorkers..maxWorkers; prints \"scaled from A\n"
    "                         to B workers\"\n"
    "  dlq list [--json] [--offset N] [--limit N] [--pool NAME]\n"
    "                         dead letters, oldest first, as a table (dlqId,\n"
    "                         time, id, type, attempts, last failure reason cut\n"
    "                         to the terminal's width or $COLUMNS) and a total\n"
    "                         line; --limit defaults to 100 (0: all); --json\n"
    "                         prints each record as stored, one per line\n"
    "  dlq replay [--id DLQID] [--pool NAME]\n"
    "                         send each dead letter (or only DLQID) again as a\n"
    "                         new request, its type and data unchanged, id\n"
    "                         \"replay-<dlqId>\", its last checkpoint (if any) as\n"
    "                         \"resume\", at most 32 unanswered at once;\n"
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
    "                         not_replayable).  With --pool NAME, NAME's dead\n"
    "                         letters, each sent again to NAME\n"
    "  dlq purge --yes [--pool NAME]\n"
    "                         delete every dead letter for good (refused\n"
    "                         without --yes) and print \"purged N\"\n"
    "  session show KEY [--json] [--pool NAME]\n"
    "                         the state the session store keeps for session KEY\n"
    "                         (pool.session.get): its size, when it was last\n"
    "                         written, and the state as JSON\n"
    "  session delete KEY [--pool NAME]\n"
    "                         delete session KEY's state (pool.session.delete;\n"
    "                         refused while the session has a message in flight)\n"
    "  session list [--json] [--limit N] [--pool NAME]\n"
    "                         the sessions with a state, in key order: key,\n"
    "                         bytes, last written (at most N, default 100)\n"
    "  events [--json] [--since DURATION] [--critical] [--pool NAME] [TOPIC...]\n"
    "                         follow the lifecycle events (pool.subscribe; an\n"
    "                         admin request) until agentpoold closes the\n"
    "                         connection or Ctrl-C: one line per event, local\n"
    "                         time, topic, pool (- when none), data; --json\n"
    "                         prints the lines as received.  TOPIC patterns:\n"
    "                         worker.exited, worker.* (one segment), worker.#\n"
    "                         (the rest); none: every topic.  --since 10m\n"
    "                         first replays the events of the last 10 minutes\n"
    "                         that agentpoold still keeps; --critical shows\n"
    "                         only critical ones (worker deaths, dead letters,\n"
    "                         backoff, critical alerts)\n"
    "  usage [--by key|pool|type] [--json] [--pool NAME]\n"
    "                         the usage agentpoold accounted since it started\n"
    "                         (pool.stats \"usage\"), summed per API key (none:\n"
    "                         requests sent without one), pool or message type:\n"
    "                         requests, ok, errors by code, tokens in and out,\n"
    "                         cost and worker CPU seconds, most tokens first;\n"
    "                         --json prints the summed rows\n"
    "\n"
    "Options (before or after COMMAND and its arguments; for send they end at\n"
    "TYPE):\n"
    "  -s, --socket PATH      agentpoold's socket (default: $AGENTPOOL_SOCKET,\n"
    "                         else " AP_DEFAULT_SOCKET ")\n"
    "      --timeout MS       give up when answers are due and agentpoold has\n"
    "                         sent nothing for MS milliseconds (default 30000;\n"
    "                         top: 5000 per frame; reload: no limit; 0 waits\n"
    "                         forever)\n"
    "      --json             stats, health, history, reload, scale: the result\n"
    "                         object; dlq list: the records, one per line;\n"
    "                         usage: the summed rows\n"
    "      --detailed         stats: one row per worker\n"
    "      --pool NAME        stats, top, health, history, reload, scale, dlq:\n"
    "                         that pool only ({\"pool\": NAME} in the request's\n"
    "                         data; scale and dlq need it when agentpoold has\n"
    "                         several pools); send TYPE: the request's \"pool\"\n"
    "      --once             top: print one frame and exit\n"
    "      --interval MS      top: redraw every MS milliseconds (100 to\n"
    "                         3600000, default 1000)\n"
    "      --offset N         dlq list: skip the N oldest records\n"
    "      --limit N          dlq list: show at most N records (0: all)\n"
    "      --id DLQID         dlq replay: only the dead letter DLQID\n"
    "      --yes              dlq purge: yes, delete them all\n"
    "      --stream           send: ask for a stream, print its chunks (above)\n"
    "      --raw              send --stream: print the lines as received\n"
    "      --since DURATION   events: replay from this long ago (ms, s, m, h, d)\n"
    "      --critical         events: critical events only\n"
    "      --by COLUMN        usage: sum by key (the default), pool or type\n"
    "  -h, --help             show this help and exit\n"
    "      --version          show the version and exit\n"
    "\n"
    "Exit status (the same for every command):\n"
    "   0  success: every answer had \"ok\": true; health: the pool is ready;\n"
    "      top: quit with q or Ctrl-C\n"
    "   1  agentpoold answered with an error (an answer had \"ok\": false);\n"
    "      health: the pool is not ready (degraded, starting, draining or\n"
    "      stopping); reload: refused, or aborted because the new code failed\n"
    "      to start, or a named pool failed while the others reloaded;\n"
    "      dlq replay: a replay failed (those are kept), or --id named no\n"
    "      dead letter\n"
    "   2  usage error: unknown command or option, bad argument, invalid\n"
    "      DATA, dlq purge without --yes; nothing was sent\n"
    "   3  cannot connect: no socket at the path, nothing accepting on it, no\n"
    "      permission, or the listen backlog stayed full for --timeout\n"
    "   4  connected, but no complete exchange: the connection was lost, or\n"
    "      agentpoold sent nothing for --timeout while answers were due (the\n"
    "      count missing is printed), or an answer was malformed or too\n"
    "      large, or the output could not be written\n"
    " 130  send --stream: interrupted by Ctrl-C (pool.cancel was sent)\n";

int main(int argc, char **argv)
{
    ctl_opts o = {.timeout_ms = CTL_DEFAULT_TIMEOUT_MS};
    int next, rc;

    const char *env = getenv(AP_SOCKET_ENV);
    o.socket_path = env && *env ? env : AP_DEFAULT_SOCKET;

    if ((rc = args_parse(argc, argv, 1, &o, &next)) >= 0)
        return rc;
    if (next >= argc)
        return ctl_usage_error("no command given (send, stats, top, ping, health, history, reload, "
                               "scale, dlq or events)");
    rc = args_dispatch(ctl_commands, AP_ARRAY_LEN(ctl_commands), "", &o, argc - next, argv + next);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        ctl_warn("writing to stdout: %s", strerror(errno));
        return CTL_EXIT_EXCHANGE;
    }
    return rc;
}
