/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * control.h - requests the master answers itself: the "pool.*" types.
 *
 * They never wait for a worker or the queue, so they are answered at
 * once, even when every slot is busy and the queue is full, which is when
 * an operator needs them (pool.scale and pool.reload start work on the
 * workers, and pool.reload is answered when its work ends).  Answers are
 * built with cJSON (the master's own JSON); request data is parsed only
 * here, never for agent messages (but for agent.metrics' "worker", read
 * with control_find_string).
 */
#ifndef AP_CONTROL_H
#define AP_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "scan.h"

struct client;
struct pool;
struct cJSON;

/* Answers the pool.* request in line (already scanned into r) on c:
 * pool.ping, pool.cancel, pool.stats, pool.health, pool.history, pool.scale,
 * pool.reload (answered when the reload ends), pool.dlq.list,
 * pool.dlq.remove, pool.dlq.purge. */
void control_handle(struct client *c, const char *line, const scan_result *r);
/* pool.stats' answer (with the per-worker objects when detailed): pool
 * only's, or (only NULL) the totals over every pool, the server's own
 * fields and a "pools" object with each pool's.  The caller frees it with
 * cJSON_Delete. */
struct cJSON *control_stats_json(int detailed, const struct pool *only);
/* Finds a top-level string member `key` in a JSON object text and copies
 * it (NUL-terminated) to buf.  AP_ERR when absent, not a string, too long,
 * or the text is not an object. */
int control_find_string(const char *json, size_t len, const char *key, char *buf, size_t cap);

#endif
