/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * events.h - the master's lifecycle event stream (docs/events.md).
 *
 * Where something happens to a worker, a message, a breaker, a pool or
 * an alert, its module makes one call: events_emit() (or events_emit_msg()
 * for a message's events).  The event is serialized there, once, into one
 * line
 *
 *   {"event":TOPIC,"time":WALL_MS,"seq":N,"priority":"critical"|"normal","data":{...}}
 *
 * kept in a ring of the last eventHistory events (eventHistoryBytes at
 * most: evring.h), and offered to the subscribers: connections that asked
 * pool.subscribe (admin: events show pids, exit statuses and other
 * clients' message ids).  A subscriber is a cursor into the ring: what it
 * has not received yet stays in the ring, never copied; subscriberBufferBytes
 * bounds it (past it its oldest undelivered events are dropped for it and
 * it is told {"event":"subscriber.dropped","data":{"count":N}} once it has
 * caught up).  Events go to its connection's output at most
 * EVENTS_WINDOW bytes at a time, and never past maxBufferedBytes, so a
 * subscriber that does not read costs the pool nothing but its cursor.
 *
 * Topics are "room.what" names; agents' own ("agent.<topic>") are meant to
 * come through events_emit_raw() (agentev.c).  Never blocks; never fails the
 * caller (an event that cannot be built is logged and counted away).
 */
#ifndef AP_EVENTS_H
#define AP_EVENTS_H

#include "scan.h"

#include <stddef.h>
#include <stdint.h>

struct client;
struct pool;
struct msg;
struct cJSON;
struct evbuffer;

typedef enum {
    EVENTS_WORKER_SPAWNED = 0,
    EVENTS_WORKER_READY,
    EVENTS_WORKER_EXITED,
    EVENTS_WORKER_RECYCLE_STARTED,
    EVENTS_WORKER_STUCK_KILLED,
    EVENTS_MESSAGE_RETRIED,
    EVENTS_MESSAGE_DEAD_LETTERED,
    EVENTS_MESSAGE_TIMEOUT,
    EVENTS_BREAKER_OPENED,
    EVENTS_BREAKER_CLOSED,
    EVENTS_POOL_BACKOFF_ENTERED,
    EVENTS_POOL_BACKOFF_LEFT,
    EVENTS_POOL_RELOAD_STARTED,
    EVENTS_POOL_RELOAD_FINISHED,
    EVENTS_ALERT_RAISED,
    EVENTS_ALERT_CLEARED,
    EVENTS_TOPIC_COUNT
} events_topic;

typedef enum { EVENTS_NORMAL = 0, EVENTS_CRITICAL = 1 } events_priority;

/* Bytes of events put in a subscriber's output at a time (or half of
 * subscriberBufferBytes if smaller). */
#define EVENTS_WINDOW (64u * 1024)
/* Patterns in one subscription. */
#define EVENTS_PATTERNS_MAX 32
/* A message id longer than this is not copied into its events (they
 * carry "idBytes" instead). */
#define EVENTS_ID_MAX 256

/* The ring, sized by eventHistory.  Never fails. */
void events_init(void);
/* Frees the ring (subscribers are gone with their connections). */
void events_free(void);
/* Records topic for pool p (named in "pool" when the pools are named;
 * NULL: none) with the data members that fields_fmt formats (printf: JSON
 * members without braces, "" for none; strings in them must be JSON-safe:
 * the master's own words, or escaped).  Offered to the subscribers at once. */
void events_emit(const struct pool *p, events_topic topic, events_priority prio, const char *fields_fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A message's event: its pool, "id" (as the request wrote it) and
 * "type" (escaped), then fields_fmt's members. */
void events_emit_msg(const struct msg *m, events_topic topic, events_priority prio, const char *fields_fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The general form: any topic (agent.<topic>: agentev.c), data members
 * already JSON.  Returns its seq, or 0 when it was not recorded. */
uint64_t events_emit_raw(const struct pool *p, const char *topic, events_priority prio, const char *fields,
                         size_t len);
/* The line of event seq while it is kept (without its '\n'; *len set),
 * else NULL. */
const char *events_text(uint64_t seq, size_t *len);
const char *events_topic_name(events_topic t);
/* s escaped for a JSON string into buf (cut to fit cap, escapes whole);
 * returns buf.  For text from outside (types, ids, reasons quoting them). */
const char *events_esc(char *buf, size_t cap, const char *s);

/* pool.subscribe / pool.unsubscribe on c (control.c's table). */
void events_subscribe(struct client *c, const char *line, const scan_result *r);
void events_unsubscribe(struct client *c, const char *line, const scan_result *r);
/* c's socket took bytes: more events may go (client.c). */
void events_client_wrote(struct client *c);
/* c is closing: its subscription ends (client.c).  Nothing when none. */
void events_client_closed(struct client *c);
/* Periodic: subscribers waiting for maxBufferedBytes get their events. */
void events_tick(void);
/* pool.stats' "events" object, into o. */
void events_stats_json(struct cJSON *o);
/* The Prometheus series. */
void events_prometheus(struct evbuffer *out);

#endif
