/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cmd_send.c - `agentpoolctl send` and `agentpoolctl ping`.
 *
 * send passes bytes through: one request built from TYPE and DATA (DATA's
 * tokens kept byte for byte by reqline.c), or NDJSON from stdin
 * pipelined by exchange.c, and every response line printed exactly as
 * received, in the server's order.  Its exit status says whether every
 * answer had a top-level "ok": true (exchange.c reads it with cJSON,
 * from the whole line up to EXCHANGE_LINE_MAX, from the start of a
 * longer one).  ping is the smallest round trip, timed.
 */
#include "ctl.h"
#include "ap_alloc.h"
#include "render.h"
#include "reqline.h"

#include <cJSON.h>
#include <stdio.h>
#include <unistd.h>

/* send TYPE [DATA]: one request, the answer printed as received.
 * send: NDJSON from stdin, pipelined, answers printed as they come. */
int cmd_send(const ctl_opts *o, int argc, char **argv)
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
    if (status != CTL_EXIT_OK)
        return status;
    return r.failed ? CTL_EXIT_ANSWER_ERROR : CTL_EXIT_OK;
}

/* ping: pool.ping, and how long the round trip took. */
int cmd_ping(const ctl_opts *o, int argc, char **argv)
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
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(res, "state");
    if (cJSON_IsTrue(pong) && cJSON_IsString(state)) {
        char *st = render_fit(state->valuestring, 32);
        printf("pong from %s in %.2f ms (pool %s)\n", o->socket_path, ms, st);
        ap_free(st);
    } else if (cJSON_IsTrue(pong)) {
        printf("pong from %s in %.2f ms\n", o->socket_path, ms);
    } else {
        char *txt = cJSON_PrintUnformatted(res);
        printf("answer from %s in %.2f ms: %s\n", o->socket_path, ms, txt ? txt : "?");
        cJSON_free(txt);
    }
    cJSON_Delete(res);
    return CTL_EXIT_OK;
}
