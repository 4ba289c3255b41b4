/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cancel.c - pool.cancel: where a request is, and how it is stopped
 * there (see cancel.h).
 *
 * It decides and calls: answer.c ends or detaches the message (the one
 * end of a message: answer, counters, access log, slot, queue, pump),
 * retry.c's retry_let_go makes its worker let go of a running one, the
 * same code a timeout uses.  A prefetched message counts as queued: the
 * master knows its sync worker has not reached it.  An agent.metrics
 * request asked of one worker uses no slot and no handler: it is only
 * answered, and the worker's answer dropped.  State: none of its own.
 */
#include "cancel.h"
#include "answer.h"
#include "ap_common.h"
#include "ap_log.h"
#include "client.h"
#include "retry.h"
#include "server.h"
#include "worker.h"

#include <stdio.h>

static const char *const found_names[CANCEL_FOUND_COUNT] = {"queued", "running", "unknown"};

const char *cancel_found_name(cancel_found f)
{
    return f < CANCEL_FOUND_COUNT ? found_names[f] : "?";
}

int cancel_target(const char *data, size_t len, scan_span *id)
{
    if (len == 0)
        return AP_ERR;
    /* The request scanner reads the id (it wants a "type" too, but names
     * the id it read whatever else is wrong), so an id matches exactly
     * when the duplicate-id check would call it the same. */
    scan_result r;
    scan_status st = scan_request(data, len, AP_MAX_JSON_DEPTH, &r);
    if ((st != SCAN_OK && st != SCAN_BAD_REQUEST) || r.id_kind == SCAN_ID_NONE)
        return AP_ERR;
    *id = r.id;
    return AP_OK;
}

/* Where m is, as pool.cancel reports it. */
static cancel_found cancel_where(const msg *m)
{
    if (m == NULL)
        return CANCEL_UNKNOWN;
    if (m->state != MSG_RUNNING)
        return CANCEL_QUEUED;
    const worker *w = m->worker;
    if (!m->control && !w->proc.async && msg_from_qlink(w->running.next) != m)
        return CANCEL_QUEUED; /* prefetched: its sync worker runs another first */
    return CANCEL_RUNNING;
}

cancel_found cancel_request(client *c, const char *id, size_t id_len)
{
    msg *m = id_len ? idmap_get(&c->ids, id, (uint32_t)id_len) : NULL;
    server.stats.cancels[cancel_where(m)]++;
    if (m == NULL)
        return CANCEL_UNKNOWN;
    ap_debug("client-%llu: pool.cancel of %.*s (type %s): %s, %s", (unsigned long long)c->serial, (int)id_len, id,
             m->type, msg_state_name(m->state), found_names[cancel_where(m)]);
    return cancel_message(m, "pool.cancel", "its client");
}

cancel_found cancel_message(msg *m, const char *by, const char *who)
{
    cancel_found f = cancel_where(m);
    char why[160];
    if (m->state == MSG_COMMITTING)
        return f; /* its worker has answered: the answer is written once its session state is committed */
    if (m->state != MSG_RUNNING) {
        snprintf(why, sizeof(why), "cancelled by %s before it ran", by);
        answer_error(m, ERR_CANCELLED, why, NULL);
        return f;
    }
    snprintf(why, sizeof(why), "cancelled by %s %s", by, f == CANCEL_QUEUED ? "before it ran" : "while it ran");
    answer_detach(m, ERR_CANCELLED, why, NULL);
    if (m->control)
        return f;
    snprintf(why, sizeof(why), "message %.*s (type %s) was cancelled by %s (cancelSync kill)",
             m->id_len ? (int)m->id_len : 4, m->id_len ? m->line + m->id_off : "null", m->type, who);
    retry_let_go(m, m->pool->cfg->cancel_sync == CANCEL_SYNC_KILL ? RETRY_SYNC_KILL : RETRY_SYNC_FINISH, why);
    return f;
}
