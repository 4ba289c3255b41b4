/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * events.c - the lifecycle event stream: emitting, subscriptions, and
 * feeding subscribers (see events.h; the ring and patterns are evring.c).
 *
 * State (file-static, like flush.c's: only this module touches it): the
 * ring, the subscriber list and the counters.  A subscriber is
 *
 *   next:    the seq of the first event it has not been handed yet;
 *            every event of the ring at or after next that it wants is
 *            owed to it, and nothing before (invariant: next >= the ring's
 *            oldest seq);
 *   backlog: the bytes of those owed events;
 *   dropped: events dropped for it and not yet told.
 *
 * Its bound: its connection's output takes events up to a window (half
 * of subscriberBufferBytes, EVENTS_WINDOW at most) and its backlog is kept
 * within the rest: past it, its oldest owed events are dropped (next moves
 * past them), so the newest wait while the output is full.  An owed event
 * the ring evicts is dropped too.  Feeding (sub_pump) copies owed events to
 * the connection's output while it holds less than the window and the master's buffered
 * answers (server.out_bytes) stay under maxBufferedBytes; it runs when an
 * event is emitted, when the connection's socket took bytes, and on the tick.
 * Once it has caught up (next is the ring's end) and events were dropped, it
 * gets one subscriber.dropped line (no seq: it is its own, not the ring's).
 * Replay with "since" only sets next back to the first event at or after
 * that time: the switch to live events is the same cursor moving on, so
 * there is no gap and no duplicate.
 */
#include "events.h"
#include "agentev.h"
#include "answer.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_json.h"
#include "ap_log.h"
#include "client.h"
#include "evring.h"
#include "promtext.h"
#include "server.h"

#include <cJSON.h>
#include <event2/buffer.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Longest event line; data members past it are replaced by
 * "truncated": true (never expected: every field is bounded). */
#define EVENTS_TEXT_MAX 4096

typedef struct events_sub {
    client *c;
    queue_link link;            /* in evstate.subs */
    uint64_t next;
    uint64_t backlog;
    uint64_t dropped;
    uint64_t delivered;
    int told;                   /* a drop was logged for it (later ones are debug: counted in stats) */
    int critical_only;
    size_t pool_len;            /* 0: every pool */
    char pool[CONFIG_POOL_NAME_MAX + 1];
    int npat;
    char pat[EVENTS_PATTERNS_MAX][EVRING_PATTERN_MAX + 1];
    uint8_t pat_len[EVENTS_PATTERNS_MAX];
} events_sub;

static struct {
    evring ring;
    int ready;
    queue_link subs;
    int nsubs;
    uint64_t emitted;
    uint64_t dropped;           /* events dropped for subscribers, all of them */
    uint64_t delivered;         /* event lines handed to subscribers' connections */
    uint64_t refused;           /* pool.subscribe refused at maxSubscribers */
} evstate;

static const struct {
    const char *name;
} topics[EVENTS_TOPIC_COUNT] = {
    [EVENTS_WORKER_SPAWNED] = {"worker.spawned"},
    [EVENTS_WORKER_READY] = {"worker.ready"},
    [EVENTS_WORKER_EXITED] = {"worker.exited"},
    [EVENTS_WORKER_RECYCLE_STARTED] = {"worker.recycle_started"},
    [EVENTS_WORKER_STUCK_KILLED] = {"worker.stuck_killed"},
    [EVENTS_MESSAGE_RETRIED] = {"message.retried"},
    [EVENTS_MESSAGE_DEAD_LETTERED] = {"message.dead_lettered"},
    [EVENTS_MESSAGE_TIMEOUT] = {"message.timeout"},
    [EVENTS_BREAKER_OPENED] = {"breaker.opened"},
    [EVENTS_BREAKER_CLOSED] = {"breaker.closed"},
    [EVENTS_POOL_BACKOFF_ENTERED] = {"pool.backoff_entered"},
    [EVENTS_POOL_BACKOFF_LEFT] = {"pool.backoff_left"},
    [EVENTS_POOL_RELOAD_STARTED] = {"pool.reload_started"},
    [EVENTS_POOL_RELOAD_FINISHED] = {"pool.reload_finished"},
    [EVENTS_ALERT_RAISED] = {"alert.raised"},
    [EVENTS_ALERT_CLEARED] = {"alert.cleared"},
};

const char *events_topic_name(events_topic t)
{
    return t < EVENTS_TOPIC_COUNT ? topics[t].name : "?";
}

const char *events_esc(char *buf, size_t cap, const char *s)
{
    ap_json_escape(buf, cap, s ? s : "", s ? strlen(s) : 0);
    return buf;
}

void events_init(void)
{
    evring_init(&evstate.ring, (size_t)server.cfg->event_history);
    link_init(&evstate.subs);
    evstate.ready = 1;
}

void events_free(void)
{
    if (!evstate.ready)
        return;
    while (!link_empty(&evstate.subs))
        events_client_closed(queue_entry(evstate.subs.next, events_sub, link)->c);
    evring_free(&evstate.ring);
    evstate.ready = 0;
}

/* ---- one subscriber -------------------------------------------------- */

static int sub_wants(const events_sub *s, const evring_entry *e)
{
    if (s->critical_only && !e->critical)
        return 0;
    if (s->pool_len && (e->pool_len != s->pool_len || memcmp(e->text + e->pool_off, s->pool, s->pool_len) != 0))
        return 0;
    for (int i = 0; i < s->npat; i++)
        if (evring_topic_match(s->pat[i], s->pat_len[i], e->text + e->topic_off, e->topic_len))
            return 1;
    return 0;
}

static size_t sub_bound(void)
{
    return (size_t)server.cfg->subscriber_buffer_bytes;
}

/* What may sit in its connection's output: half the bound, 64 KiB at
 * most; the rest of the bound is for owed events, so the newest are kept
 * while the output is full. */
static size_t sub_window(void)
{
    return sub_bound() / 2 < EVENTS_WINDOW ? sub_bound() / 2 : EVENTS_WINDOW;
}

/* Drops its oldest owed event (moves next past it).  Returns 0 when it
 * is owed none (then its backlog is 0). */
static int sub_drop_oldest(events_sub *s)
{
    const evring_entry *e;
    while ((e = evring_at(&evstate.ring, s->next)) != NULL) {
        s->next++;
        if (sub_wants(s, e)) {
            s->backlog -= e->len;
            s->dropped++;
            evstate.dropped++;
            return 1;
        }
    }
    if (s->backlog)
        ap_error("events: client-%llu: %llu bytes owed but no event: reset (a bug)",
                 (unsigned long long)s->c->serial, (unsigned long long)s->backlog);
    s->backlog = 0;
    return 0;
}

/* Keeps what is held for s within subscriberBufferBytes: owed events
 * within the bound less its output's window. */
static void sub_trim(events_sub *s)
{
    while (s->backlog > sub_bound() - sub_window() && sub_drop_oldest(s))
        ;
}

/* Copies owed events to its output (see the top comment); then, caught
 * up, tells what was dropped. */
static void sub_pump(events_sub *s)
{
    client *c = s->c;
    struct evbuffer *out = client_output(c);
    size_t window = sub_window();
    size_t have = evbuffer_get_length(out), added = 0;
    uint64_t budget = (uint64_t)server.cfg->max_buffered_bytes;
    const evring_entry *e;
    while ((e = evring_at(&evstate.ring, s->next)) != NULL) {
        if (!sub_wants(s, e)) {
            s->next++;
            continue;
        }
        if ((have + added > 0 && have + added + e->len > window) || server.out_bytes + added + e->len > budget)
            break;
        evbuffer_add(out, e->text, e->len);
        added += e->len;
        s->backlog -= e->len;
        s->next++;
        s->delivered++;
        evstate.delivered++;
    }
    if (s->next == evstate.ring.next_seq && s->dropped) {
        char line[160];
        int n = snprintf(line, sizeof(line),
                         "{\"event\":\"subscriber.dropped\",\"time\":%llu,\"priority\":\"critical\",\"data\":"
                         "{\"count\":%llu}}\n",
                         (unsigned long long)ap_wall_ms(), (unsigned long long)s->dropped);
        evbuffer_add(out, line, (size_t)n);
        added += (size_t)n;
        ap_log(s->told ? AP_LOG_DEBUG : AP_LOG_INFO,
               "client-%llu (pid %d uid %d): subscriber caught up after %llu events were dropped for it "
               "(subscriberBufferBytes %lld)%s",
               (unsigned long long)c->serial, (int)c->peer_pid, (int)c->peer_uid, (unsigned long long)s->dropped,
               (long long)server.cfg->subscriber_buffer_bytes, s->told ? "" : "; later drops are counted in pool.stats");
        s->told = 1;
        s->dropped = 0;
    }
    if (added)
        client_check_output(c);
}

/* ---- emitting ---------------------------------------------------------- */

/* The ring makes room for len bytes: evicted events owed to a subscriber
 * are dropped for it. */
static void ring_make_room(size_t len)
{
    evring *r = &evstate.ring;
    while (evring_must_evict(r, len, (uint64_t)server.cfg->event_history_bytes)) {
        uint64_t oldest = evring_oldest_seq(r);
        const evring_entry *e = evring_at(r, oldest);
        for (queue_link *l = evstate.subs.next; l != &evstate.subs; l = l->next) {
            events_sub *s = queue_entry(l, events_sub, link);
            if (s->next != oldest)
                continue;
            s->next++;
            if (sub_wants(s, e)) {
                s->backlog -= e->len;
                s->dropped++;
                evstate.dropped++;
            }
        }
        evring_evict(r);
    }
}

uint64_t events_emit_raw(const pool_t *p, const char *topic, events_priority prio, const char *fields, size_t len)
{
    if (!evstate.ready)
        return 0;
    char head[256];
    int pooled = p != NULL && server.cfg->pools_named;
    uint64_t now = ap_wall_ms();
    int hn = snprintf(head, sizeof(head), "{\"event\":\"%s\",\"time\":%llu,\"seq\":%llu,\"priority\":\"%s\",\"data\":{",
                      topic, (unsigned long long)now, (unsigned long long)evstate.ring.next_seq,
                      prio == EVENTS_CRITICAL ? "critical" : "normal");
    if (hn < 0 || (size_t)hn >= sizeof(head)) {
        ap_error("events: topic %.64s is too long: event not recorded", topic);
        return 0;
    }
    size_t plen = pooled ? strlen(p->name) : 0;
    size_t total = (size_t)hn + (pooled ? plen + 10 : 0) + (len && pooled ? 1 : 0) + len + 3;
    evring_entry e;
    memset(&e, 0, sizeof(e));
    e.text = ap_malloc(total + 1);
    size_t at = 0;
    memcpy(e.text, head, (size_t)hn);
    at = (size_t)hn;
    if (pooled) {
        memcpy(e.text + at, "\"pool\":\"", 8);
        at += 8;
        e.pool_off = (uint16_t)at;
        e.pool_len = (uint16_t)plen;
        memcpy(e.text + at, p->name, plen);
        at += plen;
        e.text[at++] = '"';
        if (len)
            e.text[at++] = ',';
    }
    memcpy(e.text + at, fields, len);
    at += len;
    memcpy(e.text + at, "}}\n", 3);
    at += 3;
    e.text[at] = '\0';
    e.len = (uint32_t)at;
    e.topic_off = 10; /* after {"event":" */
    e.topic_len = (uint16_t)strlen(topic);
    e.time_ms = now;
    e.critical = prio == EVENTS_CRITICAL;
    ring_make_room(e.len);
    uint64_t seq = evring_push(&evstate.ring, &e);
    evstate.emitted++;
    const evring_entry *in = evring_at(&evstate.ring, seq);
    queue_link *l = evstate.subs.next;
    while (l != &evstate.subs) {
        events_sub *s = queue_entry(l, events_sub, link);
        l = l->next;
        if (!sub_wants(s, in))
            continue;
        s->backlog += in->len;
        sub_pump(s); /* what fits in its output goes; the rest is owed, within the bound */
        sub_trim(s);
    }
    return seq;
}

const char *events_text(uint64_t seq, size_t *len)
{
    const evring_entry *e = evstate.ready ? evring_at(&evstate.ring, seq) : NULL;
    if (e == NULL)
        return NULL;
    *len = e->len - 1; /* its '\n' */
    return e->text;
}

/* Formats fields_fmt's members after prefix (already JSON) and emits. */
static void emit_v(const pool_t *p, events_topic topic, events_priority prio, const char *prefix, size_t plen,
                   const char *fmt, va_list ap)
{
    char fields[EVENTS_TEXT_MAX];
    memcpy(fields, prefix, plen);
    int n = vsnprintf(fields + plen, sizeof(fields) - plen, fmt, ap);
    size_t len;
    if (n < 0 || (size_t)n >= sizeof(fields) - plen) {
        ap_error("events: %s: data longer than %d bytes: recorded as truncated", events_topic_name(topic),
                 EVENTS_TEXT_MAX);
        len = (size_t)snprintf(fields, sizeof(fields), "\"truncated\":true");
    } else {
        len = plen + (size_t)n;
        if (n == 0 && plen > 0)
            len--; /* the prefix's trailing comma */
    }
    events_emit_raw(p, events_topic_name(topic), prio, fields, len);
}

void events_emit(const pool_t *p, events_topic topic, events_priority prio, const char *fields_fmt, ...)
{
    va_list ap;
    va_start(ap, fields_fmt);
    emit_v(p, topic, prio, "", 0, fields_fmt, ap);
    va_end(ap);
}

void events_emit_msg(const msg *m, events_topic topic, events_priority prio, const char *fields_fmt, ...)
{
    char prefix[EVENTS_ID_MAX + AP_JSON_ESCAPE_MAX(AP_MAX_TYPE_LEN) + 64];
    char type[AP_JSON_ESCAPE_MAX(AP_MAX_TYPE_LEN)];
    ap_json_escape(type, sizeof(type), m->type, m->type_len);
    int n;
    if (m->id_len == 0)
        n = snprintf(prefix, sizeof(prefix), "\"id\":null,\"type\":\"%s\",", type);
    else if (m->id_len <= EVENTS_ID_MAX)
        n = snprintf(prefix, sizeof(prefix), "\"id\":%.*s,\"type\":\"%s\",", (int)m->id_len, m->line + m->id_off, type);
    else
        n = snprintf(prefix, sizeof(prefix), "\"idBytes\":%u,\"type\":\"%s\",", (unsigned)m->id_len, type);
    va_list ap;
    va_start(ap, fields_fmt);
    emit_v(m->pool, topic, prio, prefix, (size_t)n, fields_fmt, ap);
    va_end(ap);
}

/* ---- subscriptions ----------------------------------------------------- */

/* Reads pool.subscribe's data into s.  NULL, or why it is refused. */
static const char *sub_parse(events_sub *s, const char *line, const scan_result *r, uint64_t *since, int *has_since,
                             char *why, size_t cap)
{
    cJSON *root = r->data.len ? cJSON_ParseWithLength(line + r->data.off, r->data.len) : cJSON_CreateObject();
    const char *err = NULL;
    if (!cJSON_IsObject(root)) {
        err = "pool.subscribe's data must be an object: {\"topics\": [PATTERN, ...], \"since\": MS, "
              "\"priority\": \"critical\", \"pool\": NAME}";
        goto out;
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "topics");
    if (t == NULL) {
        memcpy(s->pat[0], "#", 2);
        s->pat_len[0] = 1;
        s->npat = 1;
    } else if (!cJSON_IsArray(t) || cJSON_GetArraySize(t) == 0 || cJSON_GetArraySize(t) > EVENTS_PATTERNS_MAX) {
        snprintf(why, cap, "\"topics\" must be an array of 1 to %d topic patterns", EVENTS_PATTERNS_MAX);
        err = why;
        goto out;
    } else {
        const cJSON *it;
        cJSON_ArrayForEach(it, t) {
            size_t n = cJSON_IsString(it) ? strlen(it->valuestring) : 0;
            if (!cJSON_IsString(it) || !evring_pattern_valid(it->valuestring, n)) {
                snprintf(why, cap,
                         "bad topic pattern %.*s: dot-separated segments of A-Z a-z 0-9 _ -, \"*\" for one segment, "
                         "a last \"#\" for the rest (at most %d bytes)",
                         cJSON_IsString(it) ? 140 : 8, cJSON_IsString(it) ? it->valuestring : "(not a string)",
                         EVRING_PATTERN_MAX);
                err = why;
                goto out;
            }
            memcpy(s->pat[s->npat], it->valuestring, n + 1);
            s->pat_len[s->npat++] = (uint8_t)n;
        }
    }
    const cJSON *sn = cJSON_GetObjectItemCaseSensitive(root, "since");
    if (sn && (!cJSON_IsNumber(sn) || sn->valuedouble < 0)) {
        err = "\"since\" must be a time in ms since the epoch (a number, 0 or more)";
        goto out;
    }
    *has_since = sn != NULL;
    *since = sn ? (uint64_t)sn->valuedouble : 0;
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(root, "priority");
    if (pr && !(cJSON_IsString(pr) && (strcmp(pr->valuestring, "critical") == 0 || strcmp(pr->valuestring, "all") == 0))) {
        err = "\"priority\" must be \"critical\" (critical events only) or \"all\"";
        goto out;
    }
    s->critical_only = pr && strcmp(pr->valuestring, "critical") == 0;
    const cJSON *po = cJSON_GetObjectItemCaseSensitive(root, "pool");
    if (po && !(cJSON_IsString(po) && strlen(po->valuestring) >= 1 && strlen(po->valuestring) <= CONFIG_POOL_NAME_MAX)) {
        err = "\"pool\" must be a pool name";
        goto out;
    }
    if (po) {
        s->pool_len = strlen(po->valuestring);
        memcpy(s->pool, po->valuestring, s->pool_len + 1);
    }
out:
    cJSON_Delete(root);
    return err;
}

void events_subscribe(client *c, const char *line, const scan_result *r)
{
    char why[320];
    if (c->sub) {
        answer_control_refuse(c, line, r, ERR_BAD_REQUEST,
                              "this connection is subscribed already: pool.unsubscribe first");
        return;
    }
    if (evstate.nsubs >= server.cfg->max_subscribers) {
        evstate.refused++;
        snprintf(why, sizeof(why), "maxSubscribers (%lld) connections are subscribed already",
                 (long long)server.cfg->max_subscribers);
        ap_info("client-%llu (pid %d uid %d): pool.subscribe refused: %s", (unsigned long long)c->serial,
                (int)c->peer_pid, (int)c->peer_uid, why);
        answer_control_refuse(c, line, r, ERR_TOO_MANY_CONNECTIONS, why);
        return;
    }
    events_sub *s = ap_calloc(1, sizeof(*s));
    uint64_t since = 0;
    int has_since = 0;
    const char *err = sub_parse(s, line, r, &since, &has_since, why, sizeof(why));
    if (err) {
        ap_free(s);
        answer_control_refuse(c, line, r, ERR_BAD_REQUEST, err);
        return;
    }
    s->c = c;
    s->next = has_since ? evring_first_since(&evstate.ring, since) : evstate.ring.next_seq;
    for (uint64_t q = s->next; q < evstate.ring.next_seq; q++) {
        const evring_entry *e = evring_at(&evstate.ring, q);
        if (sub_wants(s, e))
            s->backlog += e->len;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "subscribed");
    for (int i = 0; i < s->npat; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(s->pat[i]));
    cJSON_AddNumberToObject(o, "seq", (double)s->next); /* the first event it can get */
    char *text = cJSON_PrintUnformatted(o);
    answer_request_ok(c, line, r, text, strlen(text));
    cJSON_free(text);
    cJSON_Delete(o);
    c->sub = s;
    link_add_tail(&evstate.subs, &s->link);
    evstate.nsubs++;
    ap_info("client-%llu (pid %d uid %d) subscribed to events (%d pattern%s%s, replay from seq %llu)",
            (unsigned long long)c->serial, (int)c->peer_pid, (int)c->peer_uid, s->npat, s->npat == 1 ? "" : "s",
            s->critical_only ? ", critical only" : "", (unsigned long long)s->next);
    sub_pump(s);
    sub_trim(s);
}

/* Ends c's subscription; returns its events delivered. */
static uint64_t sub_end(client *c)
{
    events_sub *s = c->sub;
    uint64_t delivered = s->delivered;
    link_del(&s->link);
    evstate.nsubs--;
    c->sub = NULL;
    ap_free(s);
    return delivered;
}

void events_unsubscribe(client *c, const char *line, const scan_result *r)
{
    char body[96];
    int was = c->sub != NULL;
    uint64_t delivered = was ? sub_end(c) : 0;
    int n = snprintf(body, sizeof(body), "{\"unsubscribed\":%s,\"delivered\":%llu}", was ? "true" : "false",
                     (unsigned long long)delivered);
    answer_request_ok(c, line, r, body, (size_t)n);
}

void events_client_wrote(client *c)
{
    if (c->sub && c->state != CLIENT_CLOSING)
        sub_pump(c->sub);
}

void events_client_closed(client *c)
{
    if (c->sub)
        sub_end(c);
}

void events_tick(void)
{
    for (queue_link *l = evstate.subs.next; l != &evstate.subs; l = l->next) {
        events_sub *s = queue_entry(l, events_sub, link);
        if (s->next < evstate.ring.next_seq && flush_pending(&s->c->out) == 0)
            sub_pump(s);
    }
}

/* ---- readers ----------------------------------------------------------- */

void events_stats_json(cJSON *o)
{
    cJSON *ev = cJSON_AddObjectToObject(o, "events");
    cJSON_AddNumberToObject(ev, "emitted", (double)evstate.emitted);
    cJSON_AddNumberToObject(ev, "subscribers", evstate.nsubs);
    cJSON_AddNumberToObject(ev, "dropped", (double)evstate.dropped);
    cJSON_AddNumberToObject(ev, "delivered", (double)evstate.delivered);
    cJSON_AddNumberToObject(ev, "refused", (double)evstate.refused);
    cJSON_AddNumberToObject(ev, "held", (double)evstate.ring.n);
    cJSON_AddNumberToObject(ev, "heldBytes", (double)evstate.ring.bytes);
    cJSON_AddNumberToObject(ev, "lastSeq", (double)(evstate.ring.next_seq - 1));
    agentev_stats_json(ev);
}

void events_prometheus(struct evbuffer *out)
{
    promtext_family(out, "agentpool_events_emitted_total", "counter", "Lifecycle events recorded (docs/events.md).");
    promtext_u64(out, "agentpool_events_emitted_total", NULL, 0, evstate.emitted);
    promtext_family(out, "agentpool_event_subscribers", "gauge", "Connections subscribed to events now.");
    promtext_u64(out, "agentpool_event_subscribers", NULL, 0, (uint64_t)evstate.nsubs);
    promtext_family(out, "agentpool_events_dropped_total", "counter",
                    "Events dropped for slow subscribers (past subscriberBufferBytes, or evicted from the ring "
                    "before they were sent).");
    promtext_u64(out, "agentpool_events_dropped_total", NULL, 0, evstate.dropped);
    promtext_family(out, "agentpool_events_delivered_total", "counter", "Event lines handed to subscribers.");
    promtext_u64(out, "agentpool_events_delivered_total", NULL, 0, evstate.delivered);
    agentev_prometheus(out);
}
