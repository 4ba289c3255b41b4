/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * wresult.c - maxResultBytes, enforced by the master too (see wresult.h).
 *
 * Called by worker.c for every complete frame but its own agent.metrics
 * answers, before the payload is
 * pulled up, so an oversize result is never copied or parsed here; the
 * limit in force is config_max_result_bytes(server.cfg) (after a reload,
 * the new one, which the new workers also get on their command line).
 * Keeps no state: the refusals are counted as the agent_error answers
 * they become.  Never answers a message itself: worker.c does, through the
 * path every answer takes.
 */
#include "wresult.h"
#include "ap_log.h"
#include "server.h"

#include <stdio.h>

int wresult_refuse(const worker *w, const ap_frame_hdr *h, ap_frame_hdr *eh, char *err, size_t cap)
{
    uint64_t limit = (uint64_t)config_max_result_bytes(server.cfg);
    if (h->kind != AP_FRAME_RESULT || h->len <= limit)
        return 0;
    int n = snprintf(err, cap, "{\"code\":\"agent_error\",\"message\":\"result too large (%u bytes, limit %llu)\"}",
                     (unsigned)h->len, (unsigned long long)limit);
    if (n < 0 || (size_t)n >= cap)
        n = snprintf(err, cap, "{\"code\":\"agent_error\",\"message\":\"result too large\"}");
    ap_warn("%s (pid %d): a result of %u bytes for message %llu is over maxResultBytes (%llu); not delivered, "
            "answered agent_error",
            w->name, (int)w->proc.pid, (unsigned)h->len, (unsigned long long)h->id, (unsigned long long)limit);
    *eh = *h;
    eh->kind = AP_FRAME_ERROR;
    eh->len = (uint32_t)n;
    return 1;
}
