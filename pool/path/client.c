/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * client.c - client connections (see client.h for the lifecycle).
 *
 * Owns: reading request lines, the per-connection id set, the overflow
 * rule at admission, writing answers, and what happens to a connection's
 * messages when it leaves (queued and held ones are cancelled, running
 * ones are orphaned and their results dropped when they come), told
 * apart from a half-close (the peer shut only its writing side: it is
 * answered until nothing it sent is unanswered, then closed).
 * Never talks to worker sockets: it hands messages to sched/worker.
 */
#include "client.h"
#include "answer.h"
#include "apikey.h"
#include "ap_alloc.h"
#include "ap_defaults.h"
#include "ap_log.h"
#include "breaker.h"
#include "connlimit.h"
#include "control.h"
#include "idem.h"
#include "events.h"
#include "typetab.h"
#include "usage.h"
#include "retry.h"
#include "scan.h"
#include "sched.h"
#include "server.h"
#include "sessrun.h"
#include "stream.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A connection whose unread answers pass this stops being read until
 * they drain to half of it. */
#define CLIENT_OUT_HIGH (1u << 20)
/* Bad lines logged per connection before it goes quiet (the total is
 * logged when it closes). */
#define CLIENT_BAD_LOG_MAX 3

static void client_process(client *c);
static void client_close(client *c, const char *why);

static const char *const state_names[] = {"reading", "blocked", "closing"};

const char *client_state_name(client_state s)
{
    return s < CLIENT_STATE_COUNT ? state_names[s] : "?";
}

static void client_set_state(client *c, client_state to)
{
    assert(c->state != CLIENT_CLOSING || to == CLIENT_CLOSING);
    if (c->state != to)
        ap_debug("client-%llu: %s -> %s", (unsigned long long)c->serial, state_names[c->state], state_names[to]);
    c->state = to;
}


/* Reading limit while BLOCKED: the connection keeps being read (so its
 * EOF is seen at once and a pause costs no epoll_ctl), but only until
 * this much input waits unhandled; then reading stops and the kernel's
 * socket buffer holds the rest. */
#define CLIENT_BLOCKED_READ_MAX (64u * 1024)

/* Bounded input: a connection stops being read while its unhandled input
 * reaches one maximal line (plus a read's worth), so a client sending
 * faster than its lines are handled cannot grow the master.  Above
 * maxMessageBytes, so the too_large check still sees a long line. */
static size_t client_read_max(const client *c)
{
    if (c->blocked)
        return CLIENT_BLOCKED_READ_MAX;
    return (size_t)server.cfg->max_message_bytes + 1 + 4096;
}

/* Reading on while the connection is open and its input under the
 * limit; an epoll_ctl only when that changes. */
static void client_read_update(client *c)
{
    if (c->rev == NULL)
        return; /* an origin client: nothing to read */
    int want = c->state != CLIENT_CLOSING && !c->half_closed && linein_pending(&c->in) < client_read_max(c);
    if (want == c->reading)
        return;
    if (want ? event_add(c->rev, NULL) : event_del(c->rev)) {
        ap_error("client-%llu: event_%s of its read event failed", (unsigned long long)c->serial,
                 want ? "add" : "del");
        return;
    }
    c->reading = want;
}

/* Its buffered lines are handled on the next turn of the loop (a timer
 * of 0 runs after the next poll), not from inside whoever made that
 * possible, and after the other connections had their turn. */
static void client_process_soon(client *c)
{
    static const struct timeval now = {0, 0};
    if (!evtimer_pending(c->pev, NULL))
        evtimer_add(c->pev, &now);
}

static void client_block(client *c, unsigned why)
{
    if (c->blocked == 0)
        client_set_state(c, CLIENT_BLOCKED);
    if (why & ~c->blocked & CLIENT_BLOCK_OUTPUT)
        server.stats.output_pauses++;
    if (why & ~c->blocked & CLIENT_BLOCK_BUDGET) {
        server.stats.budget_pauses++;
        server.budget_paused++;
    }
    c->blocked |= why;
    client_read_update(c);
}

static void client_unblock(client *c, unsigned why)
{
    if (!(c->blocked & why) || c->state == CLIENT_CLOSING)
        return;
    if (why & c->blocked & CLIENT_BLOCK_BUDGET)
        server.budget_paused--;
    if (why & c->blocked & (CLIENT_BLOCK_OUTPUT | CLIENT_BLOCK_BUDGET))
        sched_pump_all_soon(); /* its queued messages may go to workers again */
    c->blocked &= ~why;
    if (c->blocked == 0) {
        client_set_state(c, CLIENT_READING);
        client_read_update(c);
        if (linein_pending(&c->in))
            client_process_soon(c);
    }
}

struct evbuffer *client_output(client *c)
{
    return c->out.out;
}

static void client_count(client *c, uint64_t now_ms);

void client_check_output(client *c)
{
    client_count(c, 0);
    flush_mark(&c->out);
    if (c->out_counted > CLIENT_OUT_HIGH)
        client_block(c, CLIENT_BLOCK_OUTPUT);
}

/* ---- maxBufferedBytes ------------------------------------------------
 * server.out_bytes counts every byte in every connection's output buffer
 * (client_count, after every answer written and every write to the
 * socket: added when an answer is written, removed when the socket takes
 * it or the connection is freed), and every HTTP connection's unsent
 * output (http1.c, through client_budget_move).  Past the budget, a
 * connection that has answers unread stops being read (CLIENT_BLOCK_BUDGET,
 * before its next line), and the queued messages of one that has answers
 * unread or has never read an answer are not sent to workers (sched.c
 * asks client_parked); connections that read keep being served.  Parked
 * connections resume when their own output drains, or when the total is
 * back under the budget (then the pump runs again).  What can still
 * arrive past the budget is the answers of messages workers already
 * hold. */

static int client_over_budget(void)
{
    return server.out_bytes > (uint64_t)server.cfg->max_buffered_bytes;
}

static void client_budget_release(void);

int client_budget_over(void)
{
    return client_over_budget();
}

void client_budget_move(size_t *counted, size_t len)
{
    int was_over = client_over_budget();
    server.out_bytes += len;
    server.out_bytes -= *counted;
    *counted = len;
    if (server.out_bytes > server.out_high)
        server.out_high = server.out_bytes;
    if (was_over && !client_over_budget()) {
        sched_pump_all_soon(); /* messages parked for the budget may go now */
        client_budget_release(); /* and connections paused for it read again, whoever's bytes left */
    }
}

int client_parked(const client *c)
{
    if (c->blocked & CLIENT_BLOCK_OUTPUT)
        return 1;
    return client_over_budget() && (!c->has_read || c->out_counted > 0);
}

void client_note_parked(client *c)
{
    if (c->park_told)
        return;
    c->park_told = 1;
    size_t unread = evbuffer_get_length(client_output(c));
    if (c->blocked & CLIENT_BLOCK_OUTPUT)
        ap_info("client-%llu (pid %d uid %d): its messages wait: %zu bytes of its answers are unread",
                (unsigned long long)c->serial, (int)c->peer_pid, (int)c->peer_uid, unread);
    else
        ap_info("client-%llu (pid %d uid %d): its messages wait: %llu bytes of answers buffered for clients, over "
                "maxBufferedBytes (%lld), and it has %s",
                (unsigned long long)c->serial, (int)c->peer_pid, (int)c->peer_uid,
                (unsigned long long)server.out_bytes, (long long)server.cfg->max_buffered_bytes,
                unread ? "answers unread" : "not read any answer yet");
}

/* Brings server.out_bytes up to date with c's output (its length was
 * c->out_counted when last seen); now_ms is the clock if the caller read
 * it (0: read here if needed). */
static void client_count(client *c, uint64_t now_ms)
{
    size_t len = flush_pending(&c->out);
    if (len == c->out_counted)
        return;
    if (len < c->out_counted || c->out_counted == 0) /* bytes taken, or the first waiting: */
        c->out_progress_ms = now_ms ? now_ms : ap_now_ms(); /* clientWriteTimeout counts from here */
    client_budget_move(&c->out_counted, len);
}

/* Under the budget again: every connection paused for it resumes. */
static void client_budget_release(void)
{
    if (server.budget_paused == 0 || client_over_budget())
        return;
    for (queue_link *l = server.clients.next; l != &server.clients && server.budget_paused > 0; l = l->next)
        client_unblock(queue_entry(l, client, link), CLIENT_BLOCK_BUDGET);
}

/* Before a line is handled: past the budget, a connection with answers
 * unread stops being read (one that has read none yet is still read, so
 * its pool.* requests are answered, but its messages wait: see
 * client_parked).  Logged once per pause. */
static int client_budget_pause(client *c)
{
    if (c->blocked & CLIENT_BLOCK_BUDGET || !client_over_budget() || evbuffer_get_length(client_output(c)) == 0)
        return 0;
    client_block(c, CLIENT_BLOCK_BUDGET);
    ap_info("client-%llu (pid %d uid %d): paused: %llu bytes of answers buffered for clients, over maxBufferedBytes "
            "(%lld), and %zu of them are this connection's, unread%s",
            (unsigned long long)c->serial, (int)c->peer_pid, (int)c->peer_uid,
            (unsigned long long)server.out_bytes, (long long)server.cfg->max_buffered_bytes,
            evbuffer_get_length(client_output(c)), c->has_read ? "" : " (it has not read any yet)");
    return 1;
}

/* ---- a message leaves its connection ------------------------------- */

void client_forget(msg *m)
{
    client *c = m->client;
    if (c == NULL)
        return;
    link_del(&m->clink);
    stream_leave_client(m);
    if (m->id_len)
        idmap_del(&c->ids, m->line + m->id_off, m->id_len);
    int was_held = c->held == m;
    if (was_held) {
        c->held = NULL;
        link_del(&c->room_link);
    }
    c->in_flight--;
    m->client = NULL;
    if (c->half_closed && c->state != CLIENT_CLOSING)
        client_process_soon(c); /* it may have been its last (client_finish) */
    if (was_held)
        client_unblock(c, CLIENT_BLOCK_ROOM); /* it waits for room no more (pool.cancel, shutdown) */
    if (c->in_flight < server.cfg->max_inflight_per_connection)
        client_unblock(c, CLIENT_BLOCK_INFLIGHT);
}

msg *client_take_over(msg *m)
{
    client *c = m->client;
    msg *n = msg_new(&server.msgs, m->line, m->line_len, m->type_len);
    n->pool = m->pool;
    memcpy(n->type, m->type, (size_t)m->type_len + 1);
    n->type_len = m->type_len;
    n->id_off = m->id_off;
    n->id_len = m->id_len;
    n->data_off = m->data_off;
    n->data_len = m->data_len;
    n->retry = m->retry;
    n->timeout_ms = m->timeout_ms;
    n->want_stream = m->want_stream;
    n->accepted_ns = m->accepted_ns;
    n->attempts = m->attempts;
    n->deliveries = m->deliveries;
    n->type_idx = m->type_idx;
    n->key = m->key; /* the key's in-flight place goes with it */
    m->key = NULL;
    n->ucell = m->ucell;
    n->fail = m->fail;
    n->nfail = m->nfail;
    n->fail_cap = m->fail_cap;
    n->ckpt = m->ckpt; /* the retried copy resumes from the timed-out attempt's checkpoint */
    n->ckpt_len = m->ckpt_len;
    m->ckpt = NULL;
    m->ckpt_len = 0;
    m->fail = NULL;
    m->nfail = 0;
    m->fail_cap = 0;
    /* n takes m's place on the connection: same list position, same id. */
    n->client = c;
    n->clink.next = m->clink.next;
    n->clink.prev = m->clink.prev;
    n->clink.next->prev = &n->clink;
    n->clink.prev->next = &n->clink;
    m->clink.next = m->clink.prev = NULL;
    if (m->id_len) {
        idmap_del(&c->ids, m->line + m->id_off, m->id_len);
        idmap_put(&c->ids, n->line + n->id_off, n->id_len, n);
    }
    stream_hand_over(m, n);
    sessrun_take_over(m, n);
    idem_moved(m, n);
    m->client = NULL;
    m->detached = 1;
    m->outcome_told = 1;
    return n;
}

/* ---- admission ------------------------------------------------------ */

/* Sends or queues m; applies the overflow rule when there is no room. */
static void client_admit(client *c, msg *m)
{
    pool_t *p = m->pool;
    int reject = p->cfg->overflow == OVERFLOW_REJECT;
    /* Connections already waiting for room in this pool go first: a new
     * message does not overtake a held one (which may be waiting on
     * maxPendingBytes). */
    if ((reject || link_empty(&p->room_waiters)) && sched_admit(m, reject) != SCHED_FULL)
        return;
    if (reject) {
        answer_error(m, ERR_QUEUE_FULL, "the queue is full", NULL);
        return;
    }
    msg_set_state(&server.msgs, m, MSG_HELD);
    c->held = m;
    link_add_tail(&p->room_waiters, &c->room_link);
    client_block(c, CLIENT_BLOCK_ROOM);
}

void client_room_available(pool_t *p)
{
    while (!link_empty(&p->room_waiters)) {
        client *c = queue_entry(p->room_waiters.next, client, room_link);
        msg *m = c->held;
        if (sched_admit(m, 0) == SCHED_FULL)
            return;
        c->held = NULL;
        link_del(&c->room_link);
        client_unblock(c, CLIENT_BLOCK_ROOM);
    }
}

unsigned client_fail_held(pool_t *p, reply_code code, const char *why)
{
    unsigned n = 0;
    while (!link_empty(&p->room_waiters)) {
        client *c = queue_entry(p->room_waiters.next, client, room_link);
        answer_error(c->held, code, why, NULL);
        client_unblock(c, CLIENT_BLOCK_ROOM);
        n++;
    }
    return n;
}

/* Looks up {"worker":"worker-N"} in an agent.metrics request's data.
 * Returns 1 and sets *w when one is named, 0 when none is, -1 (answered)
 * when the name is wrong. */
static int client_metrics_target(client *c, pool_t *p, const char *line, const scan_result *r, worker **w)
{
    char name[WORKER_NAME_MAX];
    if (control_find_string(line + r->data.off, r->data.len, "worker", name, sizeof(name)) != AP_OK)
        return 0;
    *w = worker_by_name(p, name, strlen(name));
    if (*w == NULL || !worker_is_accepting(*w)) {
        char why[96];
        snprintf(why, sizeof(why), "no running worker named %s", name);
        answer_refuse(c, line, r, ERR_BAD_REQUEST, why, NULL, NULL, -1);
        return -1;
    }
    return 1;
}

/* A request with "key": its API key's checks and limits (apikey_gate).
 * AP_OK with *key (a reference the message will hold), or AP_ERR: the
 * request was answered (unauthorized, forbidden, rate_limited) and
 * counted for the key that was found.  The secret is never logged. */
static int client_key_gate(client *c, const char *line, const scan_result *r, pool_t *p, apikey **key)
{
    apikey_result ar;
    if (apikey_gate(r->key, r->key_len, p->name, c->turn_ns / 1000000u, &ar) == AP_OK) {
        *key = ar.key;
        return AP_OK;
    }
    unsigned type_idx = typetab_index(p->types, r->type, r->type_len);
    char extra[48];
    if (ar.code == ERR_RATE_LIMITED)
        snprintf(extra, sizeof(extra), ",\"retryAfterMs\":%llu", (unsigned long long)ar.retry_after_ms);
    if (++c->bad <= CLIENT_BAD_LOG_MAX && ar.code != ERR_RATE_LIMITED)
        ap_info("client-%llu (pid %d uid %d): refused %s: %s", (unsigned long long)c->serial, (int)c->peer_pid,
                (int)c->peer_uid, reply_code_name(ar.code), ar.why);
    usage_refused(p, type_idx, ar.found, ar.code);
    answer_refuse(c, line, r, ar.code, ar.why, ar.code == ERR_RATE_LIMITED ? extra : NULL, p, (int)type_idx);
    return AP_ERR;
}

/* One complete line: answer it here, or turn it into a message.  g
 * (NULL: nothing) is what an origin client's owner gives beside it
 * (client_feed). */
static void client_line(client *c, const char *line, size_t len, const client_given *g)
{
    scan_result r;
    unsigned given = g ? (g->pool ? SCAN_GIVEN_POOL : 0) | (g->stream >= 0 ? SCAN_GIVEN_STREAM : 0) |
                             (g->no_id ? SCAN_GIVEN_ID : 0)
                       : 0;
    scan_status st = scan_request_given(line, len, AP_MAX_JSON_DEPTH, given, &r);
    if (st == SCAN_BLANK)
        return;
    if (given & SCAN_GIVEN_STREAM)
        r.stream = g->stream;
    c->requests++;
    if (st != SCAN_OK) {
        if (++c->bad <= CLIENT_BAD_LOG_MAX)
            ap_info("client-%llu (pid %d uid %d): bad request: %s", (unsigned long long)c->serial,
                    (int)c->peer_pid, (int)c->peer_uid, r.error);
        answer_refuse(c, line, &r, ERR_BAD_REQUEST, r.error, NULL, NULL, -1);
        return;
    }
    if (strncmp(r.type, "pool.", 5) == 0) {
        control_handle(c, line, &r);
        return;
    }
    if (server.state >= SERVER_DRAINING) {
        answer_refuse(c, line, &r, ERR_SHUTTING_DOWN, "the server is shutting down", NULL, NULL, -1);
        return;
    }
    if (r.id_kind != SCAN_ID_NONE && idmap_get(&c->ids, line + r.id.off, (uint32_t)r.id.len)) {
        answer_refuse(c, line, &r, ERR_BAD_REQUEST, "duplicate id: a request with this id is already in flight on this connection", NULL, NULL, -1);
        return;
    }
    pool_t *p = (given & SCAN_GIVEN_POOL) ? g->pool : r.pool_given ? pools_find(r.pool, r.pool_len) : pools_default();
    if (p == NULL) {
        char names[512], why[640];
        pools_names(names, sizeof(names));
        if (r.pool_given)
            snprintf(why, sizeof(why), "unknown pool \"%s\": the pools are %s", r.pool, names);
        else
            snprintf(why, sizeof(why), "no pool takes requests that name none now: name one of %s", names);
        answer_refuse(c, line, &r, ERR_BAD_REQUEST, why, NULL, NULL, -1);
        return;
    }
    if (AP_UNLIKELY(r.resume.len > (uint64_t)p->cfg->max_checkpoint_bytes)) {
        char why[128];
        snprintf(why, sizeof(why), "resume longer than maxCheckpointBytes (%zu bytes, limit %lld)", r.resume.len,
                 (long long)p->cfg->max_checkpoint_bytes);
        answer_refuse(c, line, &r, ERR_BAD_REQUEST, why, NULL, NULL, -1);
        return;
    }
    apikey *key = NULL; /* from here on, every refusal gives it back */
    if (r.key_len && client_key_gate(c, line, &r, p, &key) != AP_OK)
        return;
    worker *target = NULL;
    if (r.data.len && strcmp(r.type, "agent.metrics") == 0 && client_metrics_target(c, p, line, &r, &target) < 0) {
        apikey_release(key);
        return;
    }
    struct idem_entry *copy_of = NULL; /* a running request with the same idempotency key */
    if (r.idem_key_len && idem_admit(p, c, line, &r, ap_now_ms(), &copy_of) == IDEM_ANSWERED) {
        apikey_release(key);
        return;
    }
    unsigned type_idx = typetab_index(p->types, r.type, r.type_len);
    breaker_decision bd = BREAKER_ALLOW;
    if (breaker_enabled(p->breakers) && copy_of == NULL) {
        uint64_t retry_after = 0;
        bd = breaker_admit(p->breakers, type_idx, c->turn_ns / 1000000u, &retry_after);
        if (bd == BREAKER_REJECT) {
            char extra[48];
            snprintf(extra, sizeof(extra), ",\"retryAfterMs\":%llu", (unsigned long long)retry_after);
            answer_refuse(c, line, &r, ERR_CIRCUIT_OPEN,
                          "this message type's circuit breaker is open: too many recent failures", extra, p,
                          (int)type_idx);
            apikey_release(key);
            return;
        }
    }

    /* A copy attached to a running request with its idempotency key is
     * never admitted: it takes no place in a session (the first one did). */
    struct session *sess = NULL;
    if (copy_of == NULL && sessrun_take(c, line, &r, p, type_idx, &sess) != AP_OK) {
        if (bd == BREAKER_PROBE)
            breaker_probe_abandoned(p->breakers, type_idx); /* refused: it probes nothing */
        apikey_release(key);
        return;
    }

    msg *m = msg_new(&server.msgs, line, len, r.type_len);
    m->pool = p;
    m->sess = sess;
    memcpy(m->type, r.type, r.type_len + 1);
    m->type_len = (uint16_t)r.type_len;
    m->id_off = (uint32_t)r.id.off;
    m->id_len = (uint32_t)r.id.len;
    m->data_off = (uint32_t)r.data.off;
    m->data_len = (uint32_t)r.data.len;
    m->retry = (int8_t)r.retry;
    m->type_idx = (uint16_t)type_idx;
    m->key = key;
    m->ucell = usage_admit(p, type_idx, key);
    m->probe = bd == BREAKER_PROBE;
    m->timeout_ms = r.timeout_ms;
    m->want_stream = (uint8_t)r.stream;
    if (AP_UNLIKELY(r.resume.len)) /* its first attempt resumes from it (ctx.resume) */
        msg_keep_checkpoint(m, line + r.resume.off, r.resume.len);
    if (m->want_stream)
        stream_begin(m);
    m->accepted_ns = c->turn_ns;
    m->client = c;
    link_add_tail(&c->msgs, &m->clink);
    if (m->id_len)
        idmap_put(&c->ids, m->line + m->id_off, m->id_len, m);
    c->in_flight++;
    if (c->in_flight >= server.cfg->max_inflight_per_connection)
        client_block(c, CLIENT_BLOCK_INFLIGHT);
    if (r.idem_key_len) {
        idem_bind(p, m, &r, copy_of);
        if (copy_of)
            return; /* answered when the running copy ends */
    }
    retry_arm(m);

    if (target) {
        /* Asked of one worker: no slot needed, it answers between messages. */
        m->control = 1;
        server.pending_bytes += m->line_len;
        worker_send(target, m);
        return;
    }
    client_admit(c, m);
}

/* While c waits for queue room or at maxInFlightPerConnection (only its
 * new messages wait; its answers are read), a pool.cancel that is its
 * next line is still handled: that is how a client stops what it waits
 * for.  Lines keep their order: only the head line is looked at, once
 * (c->head_seen, cleared when a line is taken). */
static int client_cancel_ahead(client *c)
{
    static const char type[] = "pool.cancel";
    if (c->blocked & ~(unsigned)(CLIENT_BLOCK_ROOM | CLIENT_BLOCK_INFLIGHT) || c->head_seen || c->discarding)
        return 0;
    const char *line;
    size_t len;
    if (!linein_line(&c->in, &line, &len))
        return 0;
    c->head_seen = 1;
    scan_result r;
    return len <= (size_t)server.cfg->max_message_bytes && memmem(line, len, type, sizeof(type) - 1) &&
           scan_request(line, len, AP_MAX_JSON_DEPTH, &r) == SCAN_OK && strcmp(r.type, type) == 0;
}

/* Handles buffered lines, at most CLIENT_LINES_PER_WAKE per call. */
static void client_process(client *c)
{
    size_t max = (size_t)server.cfg->max_message_bytes;
    int lines = 0;
    while (c->state != CLIENT_CLOSING && (c->blocked == 0 || client_cancel_ahead(c))) {
        size_t avail = linein_pending(&c->in);
        if (avail == 0 || client_budget_pause(c))
            break;
        if (lines++ >= CLIENT_LINES_PER_WAKE) {
            client_process_soon(c);
            break;
        }
        const char *line;
        size_t len;
        if (!linein_line(&c->in, &line, &len)) {
            /* No full line yet.  Past the limit, stop keeping it. */
            if (avail > max) {
                if (!c->discarding) {
                    server.stats.too_large_lines++;
                    ap_info("client-%llu: line longer than maxMessageBytes (%zu), discarding it",
                            (unsigned long long)c->serial, max);
                    answer_refuse(c, NULL, NULL, ERR_TOO_LARGE, "request line longer than maxMessageBytes", NULL, NULL, -1);
                    c->discarding = 1;
                }
                linein_consume(&c->in, avail);
            }
            break;
        }
        c->head_seen = 0; /* taken: whatever follows is a new head */
        if (c->discarding) {
            linein_consume(&c->in, len + 1);
            c->discarding = 0;
            continue;
        }
        if (len > max) {
            server.stats.too_large_lines++;
            ap_info("client-%llu: line of %zu bytes is over maxMessageBytes (%zu)", (unsigned long long)c->serial,
                    len, max);
            answer_refuse(c, NULL, NULL, ERR_TOO_LARGE, "request line longer than maxMessageBytes", NULL, NULL, -1);
            linein_consume(&c->in, len + 1);
            continue;
        }
        client_line(c, len ? line : "", len, NULL);
        linein_consume(&c->in, len + 1);
    }
}

/* ---- half-close --------------------------------------------------------
 * EOF on a Unix stream socket means either that the peer is gone (it
 * closed: both directions of this side are shut and poll reports
 * POLLHUP) or that it only shut its writing side (shutdown(SHUT_WR), as
 * `nc -N` and socat do: POLLIN/POLLRDHUP without POLLHUP) and still
 * reads.  The first leaves (client_close cancels its work); the second
 * is answered until client_finish sees nothing left, then closed. */

/* Whether c's peer is gone: its socket reports hang-up or an error
 * (poll with no wait; a failing poll counts as gone, logged). */
static int client_peer_gone(const client *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int n = poll(&p, 1, 0);
    if (n < 0) {
        ap_error("client-%llu: poll after EOF failed: %s; taking it as gone", (unsigned long long)c->serial,
                 strerror(errno));
        return 1;
    }
    return n > 0 && (p.revents & (POLLHUP | POLLERR)) != 0;
}

/* EOF from a peer that still reads: nothing more is read from it, and
 * its last line, even without its '\n', is handled like the others. */
static void client_half_close(client *c)
{
    c->half_closed = 1;
    server.half_closed++;
    server.stats.conns_half_closed++;
    if (linein_end(&c->in) && c->discarding == 0)
        ap_debug("client-%llu: its last line has no newline: handled as a line", (unsigned long long)c->serial);
    ap_debug("client-%llu (pid %d) half-closed: %d in flight, %zu bytes unhandled, answering them before closing",
             (unsigned long long)c->serial, (int)c->peer_pid, c->in_flight, linein_pending(&c->in));
}

/* Nothing c sent is unanswered or unhandled, every answer is written
 * and it is not subscribed to events. */
static int client_settled(const client *c)
{
    return c->in_flight == 0 && c->held == NULL && c->deferred <= 0 && c->sub == NULL && linein_pending(&c->in) == 0 &&
           link_empty(&c->streams) && flush_pending(&c->out) == 0;
}

/* A half-closed connection (or an origin client not kept) is done once settled. */
static int client_answered_all(const client *c)
{
    return (c->half_closed || (c->origin && !c->keep)) && client_settled(c);
}

int client_idle(const client *c)
{
    return c->state != CLIENT_CLOSING && client_settled(c);
}

/* Closes a half-closed connection that is done; returns 1 if it did
 * (c is freed). */
static int client_finish(client *c)
{
    if (!client_answered_all(c))
        return 0;
    client_close(c, "half-closed and answered: closed");
    return 1;
}

/* ---- libevent callbacks --------------------------------------------- */

/* Readable: one read of what the socket holds, up to the input limit,
 * then the lines. */
static void client_read_cb(evutil_socket_t fd, short what, void *arg)
{
    client *c = arg;
    size_t pending = linein_pending(&c->in), limit = client_read_max(c);
    (void)what;
    c->turn_ns = ap_now_ns(); /* one clock read for the read and every line it brings */
    if (pending < limit) {
        ssize_t n = linein_read(&c->in, fd, limit - pending);
        if (n == 0 && client_peer_gone(c)) {
            if (pending && !c->discarding)
                ap_info("client-%llu: disconnected in the middle of a line (%zu bytes dropped)",
                        (unsigned long long)c->serial, pending);
            client_close(c, "disconnected");
            return;
        }
        if (n == 0)
            client_half_close(c);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            char why[128];
            snprintf(why, sizeof(why), "read error: %s", strerror(errno));
            client_close(c, why);
            return;
        }
        if (n > 0)
            c->active_ms = c->turn_ns / 1000000u;
    }
    client_process(c);
    linein_keep(&c->in);
    client_read_update(c);
    if (c->half_closed)
        client_finish(c);
}

/* Asked for by client_process_soon: the lines already read. */
static void client_pending_cb(evutil_socket_t fd, short what, void *arg)
{
    client *c = arg;
    (void)fd;
    (void)what;
    c->turn_ns = ap_now_ns();
    client_process(c);
    linein_keep(&c->in);
    client_read_update(c);
    if (c->half_closed || c->origin)
        client_finish(c);
}

/* After a write to its socket (flush.c). */
static void client_wrote(void *arg)
{
    client *c = arg;
    c->active_ms = ap_now_ms();
    client_count(c, c->active_ms);
    if (!link_empty(&c->streams))
        stream_client_wrote(c);
    events_client_wrote(c);
    size_t left = c->out_counted;
    if (left <= CLIENT_OUT_HIGH / 2)
        client_unblock(c, CLIENT_BLOCK_OUTPUT);
    if (left == 0) {
        c->has_read = 1;
        c->park_told = 0;
        client_unblock(c, CLIENT_BLOCK_BUDGET);
        if (client_over_budget())
            sched_pump_all_soon(); /* it read: its queued messages are no longer parked */
    }
    client_budget_release();
    if (client_answered_all(c))
        client_process_soon(c); /* closed there, not under flush.c's feet */
    if (server.state >= SERVER_DRAINING)
        server_check_shutdown();
}

static void client_write_failed(void *arg, int err)
{
    char why[128];
    snprintf(why, sizeof(why), "write error: %s", strerror(err));
    client_close(arg, why);
}

/* ---- lifecycle -------------------------------------------------------- */

client *client_open_origin(const client_origin *o, void *arg, pid_t pid, uid_t uid)
{
    client *c = ap_calloc(1, sizeof(*c));
    c->serial = ++server.next_client;
    c->fd = -1;
    c->origin = o;
    c->origin_arg = arg;
    c->state = CLIENT_READING;
    c->accepted_ms = ap_now_ms();
    c->active_ms = c->accepted_ms;
    c->has_read = 1; /* its owner takes its answers at once: never parked for not reading */
    idmap_init(&c->ids);
    link_init(&c->msgs);
    link_init(&c->streams);
    c->peer_pid = pid;
    c->peer_uid = uid;
    c->peer_gid = (gid_t)-1;
    c->pev = evtimer_new(server.base, client_pending_cb, c);
    if (c->pev == NULL || flush_open_sink(&c->out, o->take, arg, client_wrote, c) != AP_OK) {
        ap_error("client-%llu: evtimer_new or the output of an origin client failed", (unsigned long long)c->serial);
        if (c->pev)
            event_free(c->pev);
        idmap_free(&c->ids);
        ap_free(c);
        return NULL;
    }
    linein_init(&c->in);
    link_add_tail(&server.clients, &c->link);
    return c;
}

void client_feed(client *c, const char *line, size_t len, const client_given *g)
{
    c->turn_ns = ap_now_ns();
    c->active_ms = c->turn_ns / 1000000u;
    client_line(c, line, len, g);
    if (client_answered_all(c))
        client_process_soon(c); /* answered nothing (cannot happen for an object): closed all the same */
}

void client_keep_open(client *c)
{
    c->keep = 1;
}

void client_drop(client *c, const char *why)
{
    client_close(c, why);
}

void client_accept(int fd, const struct ucred *cred)
{
    client *c = ap_calloc(1, sizeof(*c));
    c->serial = ++server.next_client;
    c->fd = fd;
    c->state = CLIENT_READING;
    c->accepted_ms = ap_now_ms();
    c->active_ms = c->accepted_ms;
    idmap_init(&c->ids);
    link_init(&c->msgs);
    link_init(&c->streams);
    c->peer_pid = cred->pid; /* uid -1: unknown (SO_PEERCRED failed) */
    c->peer_uid = cred->uid;
    c->peer_gid = cred->gid;
    c->rev = event_new(server.base, fd, EV_READ | EV_PERSIST, client_read_cb, c);
    c->pev = evtimer_new(server.base, client_pending_cb, c);
    if (c->rev == NULL || c->pev == NULL || flush_open(&c->out, fd, 0, client_wrote, client_write_failed, c) != AP_OK) {
        ap_error("client-%llu: event_new failed, closing", (unsigned long long)c->serial);
        if (c->rev)
            event_free(c->rev);
        if (c->pev)
            event_free(c->pev);
        close(fd);
        ap_free(c);
        return;
    }
    linein_init(&c->in);
    link_add_tail(&server.clients, &c->link);
    server.nclients++;
    client_read_update(c);
    connlimit_add(c->peer_uid);
    server.stats.conns_accepted++;
    ap_debug("client-%llu connected (pid %d uid %d)", (unsigned long long)c->serial, (int)c->peer_pid,
             (int)c->peer_uid);
}

static void client_close(client *c, const char *why)
{
    unsigned cancelled = 0, orphaned = 0;
    client_set_state(c, CLIENT_CLOSING);
    events_client_closed(c);
    while (!link_empty(&c->msgs)) {
        msg *m = msg_from_clink(c->msgs.next);
        if (m->state == MSG_RUNNING) {
            /* The worker is running it: its result will be dropped.  An
             * async worker is told to cancel it, so an abandoned call
             * stops costing. */
            client_forget(m);
            if ((m->worker->proc.async || m->stream) && !m->control && !idem_keeps_running(m))
                worker_cancel(m->worker, m); /* a sync worker stops a stream at its next chunk */
            orphaned++;
        } else {
            cancelled++;
            m->pool->stats.cancelled++;
            answer_drop(m);
        }
    }
    if (cancelled || orphaned || c->bad > CLIENT_BAD_LOG_MAX)
        ap_info("client-%llu (pid %d) %s: %llu requests (%llu bad), %u queued cancelled, %u in flight abandoned",
                (unsigned long long)c->serial, (int)c->peer_pid, why, (unsigned long long)c->requests,
                (unsigned long long)c->bad, cancelled, orphaned);
    else
        ap_debug("client-%llu %s", (unsigned long long)c->serial, why);
    idmap_free(&c->ids);
    int was_over = client_over_budget();
    server.out_bytes -= c->out_counted; /* unread answers go with it */
    flush_close(&c->out);
    if (was_over && !client_over_budget())
        sched_pump_all_soon(); /* messages parked for the budget may go now */
    if (c->blocked & CLIENT_BLOCK_BUDGET)
        server.budget_paused--;
    if (c->half_closed)
        server.half_closed--;
    if (c->rev)
        event_free(c->rev);
    event_free(c->pev);
    linein_free(&c->in);
    link_del(&c->link);
    if (c->origin) {
        c->origin->closed(c->origin_arg);
    } else {
        close(c->fd);
        server.nclients--;
        connlimit_del(c->peer_uid);
    }
    ap_free(c);
    client_budget_release();
    if (server.state >= SERVER_DRAINING)
        server_check_shutdown();
}

client *client_by_serial(uint64_t serial)
{
    for (queue_link *l = server.clients.next; serial && l != &server.clients; l = l->next) {
        client *c = queue_entry(l, client, link);
        if (c->serial == serial)
            return c;
    }
    return NULL;
}

void client_deferred(client *c, int delta)
{
    c->deferred += delta;
    if (c->half_closed && delta < 0)
        client_process_soon(c); /* it may have been its last (client_finish) */
}

/* Idle: a socket (an origin client's life is its owner's), nothing it
 * sent is unanswered (in flight, held, or a pool.* answer due later), not
 * subscribed to events, nothing waits to be written to it, and no byte
 * came or went for idleConnectionTimeout. */
static int client_is_idle(const client *c, uint64_t now)
{
    return c->origin == NULL && c->in_flight == 0 && c->deferred <= 0 && c->state != CLIENT_CLOSING && c->sub == NULL &&
           flush_pending(&c->out) == 0 &&
           now - c->active_ms >= (uint64_t)server.cfg->idle_connection_timeout;
}

/* clientWriteTimeout: answers wait and the socket took none of them for
 * that long.  Progress of any size resets the clock, so a slow reader is
 * never cut off; one that stopped reading is.  Output written during this
 * tick (events, answers) may be stamped after the tick's now: not late. */
static int client_stopped_reading(const client *c, uint64_t now)
{
    uint64_t limit = (uint64_t)server.cfg->client_write_timeout;
    return limit && flush_pending(&c->out) > 0 && now > c->out_progress_ms && now - c->out_progress_ms >= limit;
}

void client_tick(uint64_t now)
{
    if (server.cfg->idle_connection_timeout <= 0 && server.cfg->client_write_timeout <= 0 && server.half_closed == 0)
        return;
    queue_link *l = server.clients.next;
    while (l != &server.clients) {
        client *c = queue_entry(l, client, link);
        l = l->next; /* c may be freed below */
        if (c->half_closed && c->origin == NULL && client_peer_gone(c)) {
            client_close(c, "disconnected after half-closing");
        } else if (server.cfg->idle_connection_timeout > 0 && client_is_idle(c, now)) {
            server.stats.conns_idle_closed++;
            char why[96];
            snprintf(why, sizeof(why), "closed: idle for idleConnectionTimeout (%lld ms)",
                     (long long)server.cfg->idle_connection_timeout);
            ap_info("client-%llu (pid %d uid %d) %s", (unsigned long long)c->serial, (int)c->peer_pid,
                    (int)c->peer_uid, why);
            client_close(c, why);
        } else if (client_stopped_reading(c, now)) {
            size_t unread = flush_pending(&c->out);
            server.stats.write_timeouts++;
            ap_warn("client-%llu (pid %d uid %d): closing: %zu bytes of answers unread and none taken for %llu ms "
                    "(clientWriteTimeout); %d message%s of it unanswered",
                    (unsigned long long)c->serial, (int)c->peer_pid, (int)c->peer_uid, unread,
                    (unsigned long long)(now - c->out_progress_ms), c->in_flight, c->in_flight == 1 ? "" : "s");
            client_close(c, "closed for clientWriteTimeout");
        }
    }
}

void client_close_all(void)
{
    while (!link_empty(&server.clients))
        client_close(queue_entry(server.clients.next, client, link), "closed at exit");
}

int client_all_flushed(void)
{
    for (queue_link *l = server.clients.next; l != &server.clients; l = l->next) {
        client *c = queue_entry(l, client, link);
        if (flush_pending(&c->out) > 0)
            return 0;
    }
    return 1;
}
