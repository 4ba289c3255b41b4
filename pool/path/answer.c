/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * answer.c - the one end of a message, and the one refusal of a request
 * (see answer.h).
 *
 * The order in answer_end matters: the breaker and the counters are told
 * while the message still knows its client and type; the worker, queue
 * and connection let go of it before it is freed; the pump and the
 * shutdown check come last, when everything it held is free.  The pump is
 * deferred to the end of the loop turn (sched_pump_soon), so ending a
 * message is safe from inside any caller, even one that is tearing a
 * worker down.  State: none of its own.
 */
#include "answer.h"
#include "ap_common.h"
#include "access.h"
#include "apikey.h"
#include "breaker.h"
#include "client.h"
#include "idem.h"
#include "metrics.h"
#include "retry.h"
#include "sched.h"
#include "server.h"
#include "sessrun.h"
#include "stream.h"

#include <event2/buffer.h>
#include <string.h>

/* Tells m's type breaker how m ended: ok (code < 0) or an error code.
 * Only agent errors and timeouts count as failures; an end that says
 * nothing about the type (crash, cancel, client gone) releases a probe.
 * Once per message. */
static void tell_breaker(msg *m, int code)
{
    struct breaker_set *b = m->pool->breakers;
    if (m->outcome_told || !breaker_enabled(b))
        return;
    m->outcome_told = 1;
    int failed = code == ERR_AGENT_ERROR || code == ERR_TIMEOUT;
    if (code < 0 || failed)
        breaker_record(b, m->type_idx, ap_now_ms(), failed, m->probe);
    else if (m->probe)
        breaker_probe_abandoned(b, m->type_idx);
}

/* Writes a's line to m's client and counts it (code < 0: ok). */
static void write_answer(msg *m, const answer *a, int code)
{
    struct evbuffer *out = client_output(m->client);
    const char *id = m->line + m->id_off;
    if (a->kind == ANSWER_OK) {
        if (AP_UNLIKELY(m->input_required))
            reply_ok_input(out, id, m->id_len, a->src, a->body, a->len);
        else if (a->src)
            reply_ok_move(out, id, m->id_len, a->src, a->len);
        else
            reply_ok(out, id, m->id_len, a->body, a->len);
        m->pool->stats.answered_ok++;
    } else {
        if (a->kind == ANSWER_WORKER_ERROR)
            reply_error_json(out, id, m->id_len, a->body, a->len);
        else
            reply_error(out, id, m->id_len, a->code, a->message, a->extra);
        m->pool->stats.errors[a->code]++;
    }
    client_check_output(m->client);
    metrics_answered(m->pool->metrics, m, code);
    if (server.access)
        access_msg(m, code);
}

void answer_end(msg *m, const answer *a)
{
    if (m->idem)
        idem_end(m, a); /* its idempotency key's copies first, while a's body is still whole */
    if (a->kind != ANSWER_NONE) {
        int code = a->kind == ANSWER_OK ? -1 : (int)a->code;
        tell_breaker(m, code);
        if (m->client)
            write_answer(m, a, code);
        else if (m->detached)
            m->pool->stats.late_results++;    /* answered timeout already */
        else
            m->pool->stats.dropped_results++; /* its client left */
    }
    tell_breaker(m, ERR_OTHER); /* no outcome told: a probe is released */
    stream_end(m, a->kind == ANSWER_OK ? -1 : a->kind == ANSWER_NONE ? (int)ERR_CANCELLED : (int)a->code);
    retry_disarm(m);
    if (msg_on_worker(m))
        worker_release(m->worker, m);
    sched_release(m);
    pool_t *p = m->pool;
    if (m->state == MSG_QUEUED)
        queue_remove(&p->queue, &m->qlink);
    else if (m->state == MSG_RETRY_WAIT)
        link_del(&m->qlink);
    if (m->sess)
        sessrun_end(m); /* out of its session's FIFO, or its session's next one is queued */
    client_forget(m);
    apikey_release(m->key);
    msg_free(&server.msgs, m);
    sched_pump_soon(p);
    if (server.state >= SERVER_DRAINING)
        server_check_shutdown();
}

void answer_detach(msg *m, reply_code code, const char *message, const char *extra)
{
    answer a = {ANSWER_ERROR, code, NULL, 0, message, extra, NULL};
    if (m->idem)
        idem_end(m, &a);
    tell_breaker(m, (int)code);
    stream_detach(m, (int)code);
    if (m->client) {
        write_answer(m, &a, (int)code);
        client_forget(m);
    }
    m->detached = 1;
}

/* Writes an answer to a request that is not (or no longer) a message on
 * c: result (JSON, len bytes) when not NULL, else the error; counted:
 * errors by code for every request, ok answers as messages' unless
 * control (a pool.* request: its own ok and error counters). */
static void answer_line(client *c, const char *id, size_t id_len, const char *result, size_t len, reply_code code,
                        const char *message, const char *extra, int control, pool_t *p)
{
    server_stats *st = p ? &p->stats : &server.stats;
    if (result) {
        reply_ok(client_output(c), id, id_len, result, len);
        if (control)
            st->control_ok++;
        else
            st->answered_ok++;
    } else {
        reply_error(client_output(c), id, id_len, code, message, extra);
        st->errors[code]++;
        if (control)
            st->control_errors[code]++;
    }
    client_check_output(c);
}

static void refuse(client *c, const char *line, const scan_result *r, reply_code code, const char *why,
                   const char *extra, pool_t *p, int type_idx, int control)
{
    const char *id = r && r->id_kind != SCAN_ID_NONE ? line + r->id.off : NULL;
    size_t id_len = id ? r->id.len : 0;
    if (p && type_idx >= 0)
        metrics_type_outcome(p->metrics, (unsigned)type_idx, code);
    if (server.access)
        access_reject(c, id, id_len, r && r->error[0] == '\0' ? r->type : NULL, code);
    answer_line(c, id, id_len, NULL, 0, code, why, extra, control, p);
}

void answer_refuse(client *c, const char *line, const scan_result *r, reply_code code, const char *why,
                   const char *extra, pool_t *p, int type_idx)
{
    refuse(c, line, r, code, why, extra, p, type_idx, 0);
}

void answer_control_refuse(client *c, const char *line, const scan_result *r, reply_code code, const char *why)
{
    refuse(c, line, r, code, why, NULL, NULL, -1, 1);
}

void answer_request_ok(client *c, const char *line, const scan_result *r, const char *result, size_t len)
{
    const char *id = r->id_kind != SCAN_ID_NONE ? line + r->id.off : NULL;
    answer_line(c, id, id ? r->id.len : 0, result, len, ERR_OTHER, NULL, NULL, 1, NULL);
}

void answer_later(uint64_t serial, const char *id, size_t id_len, const char *result, reply_code code,
                  const char *message, const char *extra)
{
    client *c = client_by_serial(serial);
    if (c == NULL)
        return;
    client_deferred(c, -1);
    answer_line(c, id, id_len, result, result ? strlen(result) : 0, code, message, extra, 1, NULL);
}
