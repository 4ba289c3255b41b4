/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * alert.h - the pool's alert thresholds (the seeds' "Alert Thresholds").
 *
 * Five alerts, each a named predicate over numbers the master already
 * keeps, evaluated from the one periodic timer (alert_tick, every 100 ms)
 * while the pool is ready:
 *
 *   low_available_workers  fewer than alertAvailableBelow percent of the
 *                          live workers have a free slot (warning)
 *   queue_nearly_full      the queue is more than alertQueueAbove percent
 *                          of messageQueueSize (warning)
 *   high_error_rate        more than alertErrorRateAbove percent of the
 *                          answers written in the last minute were errors,
 *                          once at least ALERT_ERROR_RATE_MIN_ANSWERS were
 *                          written in it (warning)
 *   no_healthy_worker      no worker takes messages and answers its
 *                          heartbeats (critical; cannot be turned off)
 *   broker_down            the pool's broker (docs/scale-out.md) has been
 *                          out of touch with its Redis for the broker's
 *                          downAlertMs (warning; off without a broker)
 *
 * A threshold of 0 turns its alert off.  An alert becoming active is
 * logged (warn, or crit) unless the same alert was logged less than
 * alertInterval ms ago; one that stays active is logged again once per
 * alertInterval; when it clears, one info line "alert NAME cleared" is
 * written if its activation was logged.  Active alerts are listed in
 * pool.stats (`alerts`) and exported to Prometheus
 * (agentpool_alert_active).  The state is a fixed struct in alert.c; the
 * tick does integer compares and two 60-slot sums, never allocates.
 */
#ifndef AP_ALERT_H
#define AP_ALERT_H

#include <stdint.h>

struct evbuffer;
struct cJSON;
struct pool;

/* high_error_rate needs at least this many answers in its minute. */
#define ALERT_ERROR_RATE_MIN_ANSWERS 20

/* p's alert state (p->alerts), freed with it. */
void alert_init(struct pool *p);
void alert_free(struct pool *p);
/* Evaluates every alert of p at now_ms (monotonic) and logs what changed. */
void alert_tick(struct pool *p, uint64_t now_ms);
/* pool.stats' `alerts`: appends p's active alerts to arr, each {"name",
 * ("pool" when pools are named), "level", "since" (wall ms), "value",
 * "threshold"}, in a fixed order.  Returns arr. */
struct cJSON *alert_json(const struct pool *p, struct cJSON *arr);
/* agentpool_alert_active{pool=P,alert=NAME} 0 or 1 for each pool and
 * each of the four. */
void alert_prometheus(struct evbuffer *out);

#endif
