/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * a2atask.c - the A2A task table and each task's run (see a2atask.h).
 *
 * The table is one list, oldest first, in server.a2atasks (made at the
 * first task).  A task's request line is built with cJSON from what the
 * master decided (id 1: one request per origin client, the pool, the
 * type, "stream" as asked, "session", "key") around the message the
 * client sent; the line's answer comes back through a2atask_take (the
 * origin client's take, at the end of the turn) and sets the terminal
 * state; a2atask_closed is the origin client going (answered, or closed
 * at exit before its answer: FAILED).  The secret of an API key is put
 * into the line only, never kept or logged.
 */
#include "a2atask.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_log.h"
#include "cancel.h"
#include "client.h"
#include "pools.h"
#include "reply.h"
#include "server.h"

#include <cJSON.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct a2atask_table {
    queue_link tasks;           /* oldest first */
    int64_t n;
    uint64_t next_serial;
    uint64_t stamp;             /* makes ids unguessable across restarts: start time and pid */
};

static size_t a2atask_take(void *arg, struct evbuffer *out);
static void a2atask_closed(void *arg);

static const client_origin a2atask_origin = {a2atask_take, a2atask_closed};

static const char *const names_v1[A2A_STATE_COUNT] = {"TASK_STATE_SUBMITTED", "TASK_STATE_WORKING",
                                                      "TASK_STATE_COMPLETED", "TASK_STATE_FAILED",
                                                      "TASK_STATE_CANCELED", "TASK_STATE_REJECTED"};
static const char *const names_v03[A2A_STATE_COUNT] = {"submitted", "working", "completed",
                                                       "failed", "canceled", "rejected"};

const char *a2atask_state_name(a2a_state s, int v1)
{
    return v1 ? names_v1[s] : names_v03[s];
}

int a2atask_terminal(a2a_state s)
{
    return s >= A2A_COMPLETED;
}

static struct a2atask_table *table(void)
{
    if (server.a2atasks == NULL) {
        struct a2atask_table *tb = ap_calloc(1, sizeof(*tb));
        link_init(&tb->tasks);
        tb->stamp = (ap_now_ms() << 16) ^ (uint64_t)getpid();
        server.a2atasks = tb;
    }
    return server.a2atasks;
}

/* The one transition: a terminal state is final; reaching one tells done(). */
static void a2atask_set_state(a2a_task *t, a2a_state to)
{
    if (a2atask_terminal(t->state) || t->state == to)
        return;
    ap_debug("a2a task %s: %s -> %s", t->id, names_v03[t->state], names_v03[to]);
    t->state = to;
    t->updated_ms = ap_now_ms();
    if (a2atask_terminal(to) && t->done) {
        a2atask_done_fn *done = t->done;
        void *arg = t->done_arg;
        a2atask_unwatch(t);
        done(t, arg);
    }
}

/* The terminal state of an answer with error code. */
static a2a_state state_of_error(reply_code code)
{
    switch (code) {
    case ERR_CANCELLED: return A2A_CANCELED;
    case ERR_BAD_REQUEST:
    case ERR_TOO_LARGE:
    case ERR_QUEUE_FULL:
    case ERR_SHUTTING_DOWN:
    case ERR_CIRCUIT_OPEN:
    case ERR_FORBIDDEN:
    case ERR_SESSION_BUSY:
    case ERR_TOO_MANY_SESSIONS:
    case ERR_UNAUTHORIZED:
    case ERR_RATE_LIMITED:
    case ERR_TOO_MANY_CONNECTIONS: return A2A_REJECTED; /* refused before it ran */
    default: return A2A_FAILED;                         /* worker_crashed, timeout, agent_error, ... */
    }
}

/* The answer line of t's request, "{" + rest: its result or error kept. */
static void a2atask_answered(a2a_task *t, const char *rest, size_t len, const reply_line *rl)
{
    if (a2atask_terminal(t->state))
        return; /* cancelled by CancelTask first: its "cancelled" answer changes nothing */
    char *obj = ap_malloc(len + 2);
    obj[0] = '{';
    memcpy(obj + 1, rest, len);
    obj[len + 1] = '\0';
    cJSON *root = cJSON_ParseWithLength(obj, len + 1);
    ap_free(obj);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, rl->ok ? "result" : "error");
    char *text = v ? cJSON_PrintUnformatted(v) : NULL;
    int got = text != NULL;
    if (text) {
        char **slot = rl->ok ? &t->result : &t->error;
        ap_free(*slot);
        *slot = ap_strdup(text);
        cJSON_free(text);
    } else {
        ap_error("a2a task %s: its answer could not be read back: it is failed", t->id);
    }
    cJSON_Delete(root);
    if (!got) {
        ap_free(t->error);
        t->error = ap_strdup("{\"code\":\"other\",\"message\":\"its answer could not be read\"}");
    }
    a2atask_set_state(t, rl->ok && got ? A2A_COMPLETED : rl->ok ? A2A_FAILED : state_of_error(rl->code));
}

/* The origin client's take: chunks go to the stream's watcher (none
 * taken while it has no room: its stream's credit waits, as for a slow
 * socket reader), heartbeats are dropped, the answer ends the task. */
static size_t a2atask_take(void *arg, struct evbuffer *out)
{
    a2a_task *t = arg;
    size_t taken = 0;
    for (;;) {
        if (t->room && !t->room(t->done_arg))
            break; /* a2atask_resume takes the rest */
        struct evbuffer_ptr eol = evbuffer_search_eol(out, NULL, NULL, EVBUFFER_EOL_LF);
        if (eol.pos < 0)
            break;
        size_t len = (size_t)eol.pos;
        const char *line = (const char *)evbuffer_pullup(out, (ev_ssize_t)len + 1);
        reply_line rl;
        if (line == NULL || reply_read(line, len, &rl) != AP_OK)
            ap_error("a2a task %s: an answer line it cannot read (%zu bytes): dropped", t->id, len);
        else if (rl.kind == REPLY_LINE_ANSWER)
            a2atask_answered(t, line + rl.rest_off, len - rl.rest_off, &rl);
        else if (rl.kind == REPLY_LINE_CHUNK && t->chunk)
            t->chunk(t, line + rl.payload_off, rl.payload_len, rl.seq, t->done_arg);
        evbuffer_drain(out, len + 1);
        taken += len + 1;
    }
    return taken;
}

static void a2atask_closed(void *arg)
{
    a2a_task *t = arg;
    t->c = NULL;
    if (!a2atask_terminal(t->state)) {
        ap_warn("a2a task %s: its request was closed before it was answered: it is failed", t->id);
        ap_free(t->error);
        t->error = ap_strdup("{\"code\":\"shutting_down\",\"message\":\"the request was closed before it was "
                             "answered\"}");
        a2atask_set_state(t, A2A_FAILED);
    }
}

static void a2atask_free(a2a_task *t)
{
    struct a2atask_table *tb = server.a2atasks;
    link_del(&t->link);
    tb->n--;
    ap_free(t->message);
    ap_free(t->result);
    ap_free(t->error);
    ap_free(t);
}

/* Whether t may be dropped now: ended, its request gone, nobody waiting. */
static int droppable(const a2a_task *t)
{
    return a2atask_terminal(t->state) && t->c == NULL && t->done == NULL;
}

void a2atask_sweep(uint64_t now)
{
    struct a2atask_table *tb = server.a2atasks;
    uint64_t ttl = (uint64_t)server.cfg->a2a_task_ttl;
    for (queue_link *l = tb ? tb->tasks.next : NULL; l && l != &tb->tasks;) {
        a2a_task *t = queue_entry(l, a2a_task, link);
        l = l->next;
        if (droppable(t) && now >= t->updated_ms + ttl)
            a2atask_free(t);
    }
}

/* Room for one more task: the oldest droppable ones go.  AP_ERR when every
 * task kept is still running. */
static int make_room(struct a2atask_table *tb)
{
    for (queue_link *l = tb->tasks.next; tb->n >= server.cfg->a2a_max_tasks && l != &tb->tasks;) {
        a2a_task *t = queue_entry(l, a2a_task, link);
        l = l->next;
        if (droppable(t))
            a2atask_free(t);
    }
    return tb->n < server.cfg->a2a_max_tasks ? AP_OK : AP_ERR;
}

/* The request line of t (allocated, NUL-terminated). */
static char *task_line(const a2a_task *t, const pool_t *p, const cJSON *amsg, int stream, const char *secret,
                       size_t slen)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", 1);
    cJSON_AddStringToObject(o, "pool", p->name);
    cJSON_AddStringToObject(o, "type", "a2a.message");
    cJSON_AddItemReferenceToObject(o, "data", (cJSON *)amsg);
    cJSON_AddBoolToObject(o, "stream", stream);
    if (p->cfg->sessions)
        cJSON_AddStringToObject(o, "session", t->context);
    if (secret) {
        char key[SCAN_KEY_MAX + 1];
        snprintf(key, sizeof(key), "%.*s", (int)(slen < SCAN_KEY_MAX ? slen : SCAN_KEY_MAX), secret);
        cJSON_AddStringToObject(o, "key", key);
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

void a2atask_unwatch(a2a_task *t)
{
    t->done = NULL;
    t->chunk = NULL;
    t->room = NULL;
    t->done_arg = NULL;
}

void a2atask_resume(a2a_task *t)
{
    if (t->c)
        client_check_output(t->c); /* flush.c calls a2atask_take again at the end of the turn */
}

a2a_task *a2atask_start(pool_t *p, const char *owner, const char *context, cJSON *amsg, int stream,
                        const char *secret, size_t slen, char *why, size_t cap)
{
    struct a2atask_table *tb = table();
    a2atask_sweep(ap_now_ms());
    if (make_room(tb) != AP_OK) {
        snprintf(why, cap, "a2aMaxTasks (%lld) tasks are kept and every one is still running",
                 (long long)server.cfg->a2a_max_tasks);
        ap_warn("a2a pool %s: a task refused: %s", p->name, why);
        return NULL;
    }
    a2a_task *t = ap_calloc(1, sizeof(*t));
    t->serial = ++tb->next_serial;
    snprintf(t->id, sizeof(t->id), "%012llx-%llu", (unsigned long long)(tb->stamp & 0xffffffffffffULL),
             (unsigned long long)t->serial);
    if (context)
        snprintf(t->context, sizeof(t->context), "%s", context);
    else
        snprintf(t->context, sizeof(t->context), "ctx-%s", t->id);
    snprintf(t->owner, sizeof(t->owner), "%s", owner);
    snprintf(t->pool, sizeof(t->pool), "%s", p->name);
    t->created_ms = t->updated_ms = ap_now_ms();
    t->state = A2A_SUBMITTED;
    link_add_tail(&tb->tasks, &t->link);
    tb->n++;
    cJSON_DeleteItemFromObjectCaseSensitive(amsg, "taskId");
    cJSON_DeleteItemFromObjectCaseSensitive(amsg, "contextId");
    cJSON_AddStringToObject(amsg, "taskId", t->id);
    cJSON_AddStringToObject(amsg, "contextId", t->context);
    char *m = cJSON_PrintUnformatted(amsg);
    char *line = task_line(t, p, amsg, stream, secret, slen);
    t->message = m ? ap_strdup(m) : ap_strdup("{}");
    if (m)
        cJSON_free(m);
    t->c = line ? client_open_origin(&a2atask_origin, t, 0, (uid_t)-1) : NULL;
    if (t->c == NULL) {
        ap_error("a2a task %s (pool %s): its request could not be made (out of memory): it is failed", t->id,
                 p->name);
        t->error = ap_strdup("{\"code\":\"other\",\"message\":\"out of memory\"}");
        a2atask_set_state(t, A2A_FAILED);
    } else {
        client_feed(t->c, line, strlen(line));
        if (!a2atask_terminal(t->state))
            a2atask_set_state(t, A2A_WORKING);
    }
    if (line)
        cJSON_free(line);
    return t;
}

a2a_task *a2atask_find(const char *id, const char *owner)
{
    struct a2atask_table *tb = server.a2atasks;
    for (queue_link *l = tb ? tb->tasks.prev : NULL; l && l != &tb->tasks; l = l->prev) {
        a2a_task *t = queue_entry(l, a2a_task, link);
        if (strcmp(t->id, id) == 0)
            return strcmp(t->owner, owner) == 0 ? t : NULL;
    }
    return NULL;
}

a2a_task *a2atask_older(const a2a_task *t)
{
    struct a2atask_table *tb = server.a2atasks;
    if (tb == NULL)
        return NULL;
    const queue_link *l = t ? t->link.prev : tb->tasks.prev;
    return l == &tb->tasks ? NULL : queue_entry(l, a2a_task, link);
}

int a2atask_cancel(a2a_task *t)
{
    if (a2atask_terminal(t->state))
        return AP_ERR;
    if (t->c)
        cancel_request(t->c, "1", 1); /* its answer (cancelled) comes at the end of the turn: already terminal */
    ap_free(t->error);
    t->error = ap_strdup("{\"code\":\"cancelled\",\"message\":\"cancelled by CancelTask\"}");
    a2atask_set_state(t, A2A_CANCELED);
    return AP_OK;
}

void a2atask_stop(void)
{
    struct a2atask_table *tb = server.a2atasks;
    if (tb == NULL)
        return;
    while (!link_empty(&tb->tasks)) {
        a2a_task *t = queue_entry(tb->tasks.next, a2a_task, link);
        a2atask_unwatch(t);
        if (t->c)
            client_drop(t->c, "closed at exit"); /* a2atask_closed: t->c NULL */
        a2atask_free(t);
    }
    ap_free(tb);
    server.a2atasks = NULL;
}
