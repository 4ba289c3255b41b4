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
 *
 * send --stream asks for a stream ("stream": true): exchange.c tells its
 * chunk and heartbeat lines from the answer and prints each chunk's
 * value (or, with --raw, every line as received).  Once connected (a
 * Ctrl-C while connecting still ends the program at once), and for the
 * time of the exchange, SIGINT only writes a byte to a self-pipe that
 * exchange.c polls: the first Ctrl-C sends pool.cancel for the request on the same
 * connection and the final answer (normally "cancelled") is still
 * awaited, at most --timeout; a second one stops waiting.  Either way the
 * exit status is 130, as for any program Ctrl-C ends.
 *
 * With --socket redis://... send TYPE [DATA] (and send --stream) go
 * through the Redis broker instead (bsend.c).
 */
#include "ctl.h"
#include "ap_alloc.h"
#include "bsend.h"
#include "render.h"
#include "reqline.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The id of send's request, and of the pool.cancel that Ctrl-C sends,
 * whose data names SEND_ID. */
#define SEND_ID 1
#define SEND_CANCEL_ID 2
#define SEND_CANCEL_ID_TEXT "2"
#define SEND_CANCEL_DATA "{\"id\":1}"

/* The write end of the self-pipe while a stream runs, for the handler. */
static volatile int send_intr_wfd = -1;

static void send_sigint(int sig)
{
    int saved = errno;
    char b = 1;
    AP_UNUSED(sig);
    if (send_intr_wfd >= 0)
        (void)!write(send_intr_wfd, &b, 1);
    errno = saved;
}

/* Runs the exchange x of a stream: SIGINT writes to a self-pipe that
 * becomes x's cancel descriptor.  Returns the exit status, after saying
 * on stderr what an interrupt did. */
static int send_stream(const ctl_opts *o, exchange_opts *x)
{
    exchange_result r;
    exchange_cancel c = {.id = SEND_CANCEL_ID_TEXT, .wait_ms = o->timeout_ms};
    struct sigaction sa, old;
    int pfd[2];
    char err[512];
    size_t len;

    char *cancel = reqline_build(SEND_CANCEL_ID, "pool.cancel", SEND_CANCEL_DATA,
                                 &len, err, sizeof(err));
    if (cancel == NULL) {
        ctl_warn("building the pool.cancel line: %s", err);
        return CTL_EXIT_USAGE;
    }
    int fd = ctl_connect(o, o->timeout_ms, err, sizeof(err));
    if (fd < 0) {
        ctl_warn("%s", err);
        ap_free(cancel);
        return CTL_EXIT_CONNECT;
    }
    if (pipe2(pfd, O_NONBLOCK | O_CLOEXEC) != 0) {
        ctl_warn("pipe2 for the Ctrl-C handler: %s", strerror(errno));
        close(fd);
        ap_free(cancel);
        return CTL_EXIT_EXCHANGE;
    }
    c.intr_fd = pfd[0];
    c.line = cancel;
    c.len = len;
    x->cancel = &c;
    x->chunk_values = !o->raw;
    send_intr_wfd = pfd[1];
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = send_sigint;
    sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGINT, &sa, &old);

    int status = ctl_exchange_on(fd, o->timeout_ms, x, &r, err, sizeof(err));

    (void)sigaction(SIGINT, &old, NULL);
    send_intr_wfd = -1;
    close(pfd[0]);
    close(pfd[1]);
    close(fd);
    ap_free(cancel);
    if (r.interrupts == 0) {
        if (status != CTL_EXIT_OK) {
            ctl_warn("%s", err);
            return status;
        }
        return r.failed ? CTL_EXIT_ANSWER_ERROR : CTL_EXIT_OK;
    }
    if (!r.cancel_sent)
        ctl_warn("interrupted after the final answer: nothing to cancel");
    else if (r.cancel_found[0])
        ctl_warn("interrupted: pool.cancel found the request %s", r.cancel_found);
    else if (r.cancel_code[0])
        ctl_warn("interrupted: pool.cancel failed: %s", r.cancel_code);
    else
        ctl_warn("interrupted: pool.cancel sent, not answered");
    if (status != CTL_EXIT_OK)
        ctl_warn("%s", err);
    return CTL_EXIT_INTERRUPTED;
}

/* send TYPE [DATA]: one request, the answer printed as received.
 * send: NDJSON from stdin, pipelined, answers printed as they come.
 * send --stream TYPE [DATA]: one streamed request (see the top). */
int cmd_send(const ctl_opts *o, int argc, char **argv)
{
    exchange_opts x = {.in_fd = -1, .out_fd = STDOUT_FILENO};
    exchange_result r;
    char err[256];
    char *line = NULL;

    if (o->raw && !o->stream)
        return ctl_usage_error("send: --raw goes with --stream");
    if (argc == 0 && o->stream)
        return ctl_usage_error("send --stream: TYPE missing (a stream is one request, not stdin's)");
    if (argc == 0 && o->pool)
        return ctl_usage_error("send --pool: TYPE missing (stdin's requests name their own \"pool\")");
    if (argc == 0 && bsend_is_target(o->socket_path))
        return ctl_usage_error("send to %s: TYPE missing (stdin's requests go to a Unix socket)", o->socket_path);
    if (argc == 0) {
        x.in_fd = STDIN_FILENO;
    } else {
        size_t len;
        line = reqline_build_opts(SEND_ID, argv[0], argc > 1 ? argv[1] : NULL, o->pool, o->stream,
                                  &len, err, sizeof(err));
        if (line == NULL)
            return ctl_usage_error("%s", err);
        x.preload = line;
        x.preload_len = len;
        x.preload_lines = 1;
        if (bsend_is_target(o->socket_path)) {
            int st = bsend_run(o, line, len);
            ap_free(line);
            return st;
        }
    }
    if (o->stream) {
        int st = send_stream(o, &x);
        ap_free(line);
        return st;
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
