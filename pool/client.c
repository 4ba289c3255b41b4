/*
 * client.c - client connections (see client.h for the lifecycle).
 *
 * Owns: reading request lines, the per-connection id set, the overflow
 * rule at admission, writing answers, and what happens to a connection's
 * messages when it leaves (queued and held ones are cancelled, running
 * ones are orphaned and their results dropped when they come).
 * Never talks to worker sockets: it hands messages to sched/worker.
 */
#include "client.h"
#include "ap_alloc.h"
#include "ap_defaults.h"
#include "ap_log.h"
#include "access.h"
#include "breaker.h"
#include "control.h"
#include "metrics.h"
#include "typetab.h"
#include "retry.h"
#include "scan.h"
#include "sched.h"
#include "server.h"

#include <assert.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
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
 * this much input waits unhandled; then libevent stops reading it and the
 * kernel's socket buffer holds the rest. */
#define CLIENT_BLOCKED_READ_MAX (64u * 1024)

static size_t client_read_max(void)
{
    return (size_t)server.cfg->max_message_bytes + 1 + 4096;
}

static void client_block(client *c, unsigned why)
{
    if (c->blocked == 0) {
        bufferevent_setwatermark(c->bev, EV_READ, 0, CLIENT_BLOCKED_READ_MAX);
        client_set_state(c, CLIENT_BLOCKED);
    }
    c->blocked |= why;
}

static void client_unblock(client *c, unsigned why)
{
    if (!(c->blocked & why) || c->state == CLIENT_CLOSING)
        return;
    c->blocked &= ~why;
    if (c->blocked == 0) {
        client_set_state(c, CLIENT_READING);
        bufferevent_setwatermark(c->bev, EV_READ, 0, client_read_max());
        /* Lines may already be buffered: handle them on the next turn of
         * the loop, not from inside whoever freed the capacity. */
        bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
    }
}

static struct evbuffer *client_out(client *c)
{
    return bufferevent_get_output(c->bev);
}

static void client_check_output(client *c)
{
    if (evbuffer_get_length(client_out(c)) > CLIENT_OUT_HIGH)
        client_block(c, CLIENT_BLOCK_OUTPUT);
}

/* Error answer to a line that never became a message. */
static void client_reject(client *c, const char *line, const scan_result *r, reply_code code, const char *why)
{
    const char *id = r && r->id_kind != SCAN_ID_NONE ? line + r->id.off : NULL;
    size_t id_len = id ? r->id.len : 0;
    reply_error(client_out(c), id, id_len, code, why, NULL);
    if (server.access)
        access_reject(c, id, id_len, r && r->error[0] == '\0' ? r->type : NULL, code);
    server.stats.errors[code]++;
    client_check_output(c);
}

/* ---- the end of a message ------------------------------------------ */

/* Unlinks m from its connection: ids, list, in-flight count, held slot. */
static void client_unlink(msg *m)
{
    client *c = m->client;
    if (c == NULL)
        return;
    link_del(&m->clink);
    if (m->id_len)
        idmap_del(&c->ids, m->line + m->id_off, m->id_len);
    if (c->held == m) {
        c->held = NULL;
        link_del(&c->room_link);
    }
    c->in_flight--;
    m->client = NULL;
    if (c->in_flight < server.cfg->max_inflight_per_connection)
        client_unblock(c, CLIENT_BLOCK_INFLIGHT);
}

/* Tells m's type breaker how m ended: ok (code < 0) or an error code.
 * Only agent errors and timeouts count as failures; an end that says
 * nothing about the type (crash, cancel, client gone) releases a probe. */
static void breaker_outcome(msg *m, int code)
{
    if (m->outcome_told || !breaker_enabled(server.breakers))
        return;
    m->outcome_told = 1;
    int failed = code == ERR_AGENT_ERROR || code == ERR_TIMEOUT;
    if (code < 0 || failed)
        breaker_record(server.breakers, m->type_idx, ap_now_ms(), failed, m->probe);
    else if (m->probe)
        breaker_probe_abandoned(server.breakers, m->type_idx);
}

/* Takes m out of everything it is on and frees it. */
static void client_msg_done(msg *m)
{
    breaker_outcome(m, ERR_OTHER);
    retry_disarm(m);
    sched_release(m);
    if (m->state == MSG_QUEUED)
        queue_remove(&server.queue, &m->qlink);
    else if (m->state == MSG_RETRY_WAIT)
        link_del(&m->qlink);
    client_unlink(m);
    msg_free(&server.msgs, m);
    if (server.state >= SERVER_DRAINING)
        server_check_shutdown();
}

msg *client_take_over(msg *m)
{
    client *c = m->client;
    msg *n = msg_new(&server.msgs, m->line, m->line_len, m->type_len);
    memcpy(n->type, m->type, (size_t)m->type_len + 1);
    n->type_len = m->type_len;
    n->id_off = m->id_off;
    n->id_len = m->id_len;
    n->data_off = m->data_off;
    n->data_len = m->data_len;
    n->retry = m->retry;
    n->timeout_ms = m->timeout_ms;
    n->accepted_ns = m->accepted_ns;
    n->attempts = m->attempts;
    n->type_idx = m->type_idx;
    n->fail = m->fail;
    n->nfail = m->nfail;
    m->fail = NULL;
    m->nfail = 0;
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
    m->client = NULL;
    m->detached = 1;
    m->outcome_told = 1;
    return n;
}

void client_msg_drop(msg *m)
{
    client_msg_done(m);
}

/* Counts an answer that nobody waits for any more. */
static void count_unwanted(const msg *m)
{
    if (m->detached)
        server.stats.late_results++;
    else
        server.stats.dropped_results++;
}

void client_detach_error(msg *m, reply_code code, const char *message, const char *extra)
{
    breaker_outcome(m, code);
    if (m->client) {
        reply_error(client_out(m->client), m->line + m->id_off, m->id_len, code, message, extra);
        client_check_output(m->client);
        server.stats.errors[code]++;
        metrics_answered(server.metrics, m, (int)code);
        if (server.access)
            access_msg(m, (int)code);
        client_unlink(m);
    }
    m->detached = 1;
}

void client_answer_ok(msg *m, const char *result, size_t len)
{
    breaker_outcome(m, -1);
    if (m->client) {
        reply_ok(client_out(m->client), m->line + m->id_off, m->id_len, result, len);
        client_check_output(m->client);
        server.stats.answered_ok++;
        metrics_answered(server.metrics, m, -1);
        if (server.access)
            access_msg(m, -1);
    } else {
        count_unwanted(m);
    }
    client_msg_done(m);
}

void client_answer_error_json(msg *m, const char *err, size_t len)
{
    reply_code code = reply_code_of_error_json(err, len);
    breaker_outcome(m, (int)code);
    if (m->client) {
        reply_error_json(client_out(m->client), m->line + m->id_off, m->id_len, err, len);
        client_check_output(m->client);
        server.stats.errors[code]++;
        metrics_answered(server.metrics, m, (int)code);
        if (server.access)
            access_msg(m, (int)code);
    } else {
        count_unwanted(m);
    }
    client_msg_done(m);
}

void client_answer_error(msg *m, reply_code code, const char *message, const char *extra)
{
    breaker_outcome(m, (int)code);
    if (m->client) {
        reply_error(client_out(m->client), m->line + m->id_off, m->id_len, code, message, extra);
        client_check_output(m->client);
        server.stats.errors[code]++;
        metrics_answered(server.metrics, m, (int)code);
        if (server.access)
            access_msg(m, (int)code);
    } else {
        count_unwanted(m);
    }
    client_msg_done(m);
}

/* ---- admission ------------------------------------------------------ */

/* Sends or queues m; applies the overflow rule when there is no room. */
static void client_admit(client *c, msg *m)
{
    int reject = server.cfg->overflow == OVERFLOW_REJECT;
    /* Connections already waiting for room go first: a new message does
     * not overtake a held one (which may be waiting on maxPendingBytes). */
    if ((reject || link_empty(&server.room_waiters)) && sched_admit(m, reject) != SCHED_FULL)
        return;
    if (reject) {
        client_answer_error(m, ERR_QUEUE_FULL, "the queue is full", NULL);
        return;
    }
    msg_set_state(&server.msgs, m, MSG_HELD);
    c->held = m;
    link_add_tail(&server.room_waiters, &c->room_link);
    client_block(c, CLIENT_BLOCK_ROOM);
}

void client_room_available(void)
{
    while (!link_empty(&server.room_waiters)) {
        client *c = queue_entry(server.room_waiters.next, client, room_link);
        msg *m = c->held;
        if (sched_admit(m, 0) == SCHED_FULL)
            return;
        c->held = NULL;
        link_del(&c->room_link);
        client_unblock(c, CLIENT_BLOCK_ROOM);
    }
}

void client_fail_held(void)
{
    while (!link_empty(&server.room_waiters)) {
        client *c = queue_entry(server.room_waiters.next, client, room_link);
        client_answer_error(c->held, ERR_SHUTTING_DOWN, "the server is shutting down", NULL);
        client_unblock(c, CLIENT_BLOCK_ROOM);
    }
}

/* Looks up {"worker":"worker-N"} in an agent.metrics request's data.
 * Returns 1 and sets *w when one is named, 0 when none is, -1 (answered)
 * when the name is wrong. */
static int client_metrics_target(client *c, const char *line, const scan_result *r, worker **w)
{
    char name[32];
    if (control_find_string(line + r->data.off, r->data.len, "worker", name, sizeof(name)) != AP_OK)
        return 0;
    *w = worker_by_name(name, strlen(name));
    if (*w == NULL || !worker_is_accepting(*w)) {
        char why[96];
        snprintf(why, sizeof(why), "no running worker named %s", name);
        client_reject(c, line, r, ERR_BAD_REQUEST, why);
        return -1;
    }
    return 1;
}

/* One complete line: answer it here, or turn it into a message. */
static void client_line(client *c, const char *line, size_t len)
{
    scan_result r;
    scan_status st = scan_request(line, len, AP_MAX_JSON_DEPTH, &r);
    if (st == SCAN_BLANK)
        return;
    c->requests++;
    if (st != SCAN_OK) {
        if (++c->bad <= CLIENT_BAD_LOG_MAX)
            ap_info("client-%llu (pid %d uid %d): bad request: %s", (unsigned long long)c->serial,
                    (int)c->peer_pid, (int)c->peer_uid, r.error);
        client_reject(c, line, &r, ERR_BAD_REQUEST, r.error);
        return;
    }
    if (strncmp(r.type, "pool.", 5) == 0) {
        control_handle(client_out(c), c->serial, line, &r);
        client_check_output(c);
        return;
    }
    if (server.state >= SERVER_DRAINING) {
        client_reject(c, line, &r, ERR_SHUTTING_DOWN, "the server is shutting down");
        return;
    }
    if (r.id_kind != SCAN_ID_NONE && idmap_get(&c->ids, line + r.id.off, (uint32_t)r.id.len)) {
        client_reject(c, line, &r, ERR_BAD_REQUEST, "duplicate id: a request with this id is already in flight on this connection");
        return;
    }
    worker *target = NULL;
    if (r.data.len && strcmp(r.type, "agent.metrics") == 0 && client_metrics_target(c, line, &r, &target) < 0)
        return;
    unsigned type_idx = typetab_index(server.types, r.type, r.type_len);
    breaker_decision bd = BREAKER_ALLOW;
    if (breaker_enabled(server.breakers)) {
        uint64_t retry_after = 0;
        bd = breaker_admit(server.breakers, type_idx, ap_now_ms(), &retry_after);
        if (bd == BREAKER_REJECT) {
            char extra[48];
            snprintf(extra, sizeof(extra), ",\"retryAfterMs\":%llu", (unsigned long long)retry_after);
            const char *id = r.id_kind != SCAN_ID_NONE ? line + r.id.off : NULL;
            reply_error(client_out(c), id, id ? r.id.len : 0, ERR_CIRCUIT_OPEN,
                        "this message type's circuit breaker is open: too many recent failures", extra);
            server.stats.errors[ERR_CIRCUIT_OPEN]++;
            metrics_type_outcome(server.metrics, type_idx, ERR_CIRCUIT_OPEN);
            if (server.access)
                access_reject(c, id, id ? r.id.len : 0, r.type, ERR_CIRCUIT_OPEN);
            client_check_output(c);
            return;
        }
    }

    msg *m = msg_new(&server.msgs, line, len, r.type_len);
    memcpy(m->type, r.type, r.type_len + 1);
    m->type_len = (uint16_t)r.type_len;
    m->id_off = (uint32_t)r.id.off;
    m->id_len = (uint32_t)r.id.len;
    m->data_off = (uint32_t)r.data.off;
    m->data_len = (uint32_t)r.data.len;
    m->retry = (int8_t)r.retry;
    m->type_idx = (uint16_t)type_idx;
    m->probe = bd == BREAKER_PROBE;
    m->timeout_ms = r.timeout_ms;
    m->accepted_ns = ap_now_ns();
    m->client = c;
    link_add_tail(&c->msgs, &m->clink);
    if (m->id_len)
        idmap_put(&c->ids, m->line + m->id_off, m->id_len, m);
    c->in_flight++;
    if (c->in_flight >= server.cfg->max_inflight_per_connection)
        client_block(c, CLIENT_BLOCK_INFLIGHT);
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

/* Handles buffered lines, at most CLIENT_LINES_PER_WAKE per call. */
static void client_process(client *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t max = (size_t)server.cfg->max_message_bytes;
    int lines = 0;
    while (c->blocked == 0 && c->state != CLIENT_CLOSING) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            break;
        if (lines++ >= CLIENT_LINES_PER_WAKE) {
            bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
            break;
        }
        /* Search only bytes not searched before: a long line arriving in
         * small reads is scanned once, not once per read. */
        struct evbuffer_ptr from;
        evbuffer_ptr_set(in, &from, c->scanned < avail ? c->scanned : 0, EVBUFFER_PTR_SET);
        struct evbuffer_ptr eol = evbuffer_search(in, "\n", 1, &from);
        if (eol.pos < 0) {
            c->scanned = avail;
            /* No full line yet.  Past the limit, stop keeping it. */
            if (avail > max) {
                if (!c->discarding) {
                    server.stats.too_large_lines++;
                    ap_info("client-%llu: line longer than maxMessageBytes (%zu), discarding it",
                            (unsigned long long)c->serial, max);
                    client_reject(c, NULL, NULL, ERR_TOO_LARGE, "request line longer than maxMessageBytes");
                    c->discarding = 1;
                }
                evbuffer_drain(in, avail);
                c->scanned = 0;
            }
            break;
        }
        size_t len = (size_t)eol.pos;
        c->scanned = 0;
        if (c->discarding) {
            evbuffer_drain(in, len + 1);
            c->discarding = 0;
            continue;
        }
        if (len > max) {
            server.stats.too_large_lines++;
            ap_info("client-%llu: line of %zu bytes is over maxMessageBytes (%zu)", (unsigned long long)c->serial,
                    len, max);
            client_reject(c, NULL, NULL, ERR_TOO_LARGE, "request line longer than maxMessageBytes");
            evbuffer_drain(in, len + 1);
            continue;
        }
        const char *line = len ? (const char *)evbuffer_pullup(in, (ev_ssize_t)len) : "";
        client_line(c, line, len);
        evbuffer_drain(in, len + 1);
    }
}

/* ---- libevent callbacks --------------------------------------------- */

static void client_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    client_process(arg);
}

/* Output left: after a direct write (flush.c) or libevent's. */
static void client_wrote(void *arg)
{
    client *c = arg;
    if (evbuffer_get_length(client_out(c)) <= CLIENT_OUT_HIGH / 2)
        client_unblock(c, CLIENT_BLOCK_OUTPUT);
    if (server.state >= SERVER_DRAINING)
        server_check_shutdown();
}

static void client_write_cb(struct bufferevent *bev, void *arg)
{
    client *c = arg;
    (void)bev;
    flush_written(&c->out);
    client_wrote(c);
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
    client *c = arg;
    (void)bev;
    if (what & BEV_EVENT_EOF) {
        size_t partial = evbuffer_get_length(bufferevent_get_input(c->bev));
        if (partial && !c->discarding)
            ap_info("client-%llu: disconnected in the middle of a line (%zu bytes dropped)",
                    (unsigned long long)c->serial, partial);
        client_close(c, "disconnected");
    } else if (what & BEV_EVENT_ERROR) {
        char why[128];
        snprintf(why, sizeof(why), "%s error: %s", (what & BEV_EVENT_READING) ? "read" : "write",
                 strerror(EVUTIL_SOCKET_ERROR()));
        client_close(c, why);
    }
}

/* ---- lifecycle -------------------------------------------------------- */

void client_accept(int fd)
{
    client *c = ap_calloc(1, sizeof(*c));
    c->serial = ++server.next_client;
    c->fd = fd;
    c->state = CLIENT_READING;
    c->accepted_ms = ap_now_ms();
    idmap_init(&c->ids);
    link_init(&c->msgs);
    c->peer_pid = 0;
    c->peer_uid = (uid_t)-1; /* unknown unless SO_PEERCRED says */
    c->peer_gid = (gid_t)-1;
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
        c->peer_pid = cred.pid;
        c->peer_uid = cred.uid;
        c->peer_gid = cred.gid;
    }
    c->bev = bufferevent_socket_new(server.base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        ap_error("client-%llu: bufferevent_socket_new failed, closing", (unsigned long long)c->serial);
        close(fd);
        ap_free(c);
        return;
    }
    bufferevent_setcb(c->bev, client_read_cb, client_write_cb, client_event_cb, c);
    bufferevent_setwatermark(c->bev, EV_WRITE, CLIENT_OUT_HIGH / 2, 0);
    /* Bounded input: libevent stops reading a connection whose unhandled
     * input passes one maximal line (plus a read's worth), so a client
     * sending faster than its lines are handled cannot grow the master.
     * Above maxMessageBytes, so the too_large check still sees a long line. */
    bufferevent_setwatermark(c->bev, EV_READ, 0, client_read_max());
    bufferevent_enable(c->bev, EV_READ);
    flush_attach(&c->out, c->bev, 0, client_wrote, c);
    link_add_tail(&server.clients, &c->link);
    server.nclients++;
    server.stats.conns_accepted++;
    ap_debug("client-%llu connected (pid %d uid %d)", (unsigned long long)c->serial, (int)c->peer_pid,
             (int)c->peer_uid);
}

static void client_close(client *c, const char *why)
{
    unsigned cancelled = 0, orphaned = 0;
    client_set_state(c, CLIENT_CLOSING);
    while (!link_empty(&c->msgs)) {
        msg *m = msg_from_clink(c->msgs.next);
        if (m->state == MSG_RUNNING) {
            /* The worker is running it: its result will be dropped.  An
             * async worker is told to cancel it, so an abandoned call
             * stops costing. */
            client_unlink(m);
            if (m->worker->async && !m->control)
                worker_cancel(m->worker, m);
            orphaned++;
        } else {
            cancelled++;
            server.stats.cancelled++;
            client_msg_done(m);
        }
    }
    if (cancelled || orphaned || c->bad > CLIENT_BAD_LOG_MAX)
        ap_info("client-%llu (pid %d) %s: %llu requests (%llu bad), %u queued cancelled, %u in flight abandoned",
                (unsigned long long)c->serial, (int)c->peer_pid, why, (unsigned long long)c->requests,
                (unsigned long long)c->bad, cancelled, orphaned);
    else
        ap_debug("client-%llu %s", (unsigned long long)c->serial, why);
    idmap_free(&c->ids);
    flush_detach(&c->out);
    bufferevent_free(c->bev);
    link_del(&c->link);
    server.nclients--;
    ap_free(c);
    if (cancelled)
        sched_pump();
    if (server.state >= SERVER_DRAINING)
        server_check_shutdown();
}

void client_reply_later(uint64_t serial, const char *id, size_t id_len, const char *result, reply_code code,
                        const char *message, const char *extra)
{
    if (serial == 0)
        return;
    for (queue_link *l = server.clients.next; l != &server.clients; l = l->next) {
        client *c = queue_entry(l, client, link);
        if (c->serial != serial)
            continue;
        if (result) {
            reply_ok(client_out(c), id, id_len, result, strlen(result));
            server.stats.answered_ok++;
        } else {
            reply_error(client_out(c), id, id_len, code, message, extra);
            server.stats.errors[code]++;
        }
        client_check_output(c);
        return;
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
        if (evbuffer_get_length(client_out(c)) > 0)
            return 0;
    }
    return 1;
}
