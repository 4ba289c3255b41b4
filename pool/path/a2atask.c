/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * a2atask.c - the A2A task table and each task's run (see a2atask.h).
 *
 * The table is one list, oldest first, in server.a2atasks (made at the
 * first task).  A task's request line is written by hand (jbuf.h) from
 * what the master decided (id 1: one request per origin client, the
 * pool, the type, "stream" as asked, "session", "key") around the
 * message the client sent, read in place (jview.h) and put on one line;
 * the line's answer comes back through a2atask_take (the
 * origin client's take, at the end of the turn) and settles the task (a
 * terminal state, or INPUT_REQUIRED); a2atask_closed is the origin client going (answered, or closed
 * at exit before its answer: FAILED).  The secret of an API key is put
 * into the line only, never kept or logged.
 */
#include "a2atask.h"
#include "a2astore.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_log.h"
#include "cancel.h"
#include "client.h"
#include "jbuf.h"
#include "jview.h"
#include "pools.h"
#include "reply.h"
#include "server.h"

#include <cJSON.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct a2atask_table {
    queue_link tasks;           /* by serial, oldest first */
    int64_t n;
    uint64_t last_serial;
    uint64_t stamp;             /* makes ids unguessable across restarts: start time and pid */
    int stopping;               /* a2atask_stop: nothing more is written to the stores */
};

static size_t a2atask_take(void *arg, struct evbuffer *out);
static void a2atask_closed(void *arg);

static const client_origin a2atask_origin = {a2atask_take, a2atask_closed};

static const char *const names_v1[A2A_STATE_COUNT] = {
    "TASK_STATE_SUBMITTED", "TASK_STATE_WORKING",  "TASK_STATE_INPUT_REQUIRED", "TASK_STATE_COMPLETED",
    "TASK_STATE_FAILED",    "TASK_STATE_CANCELED", "TASK_STATE_REJECTED"};
static const char *const names_v03[A2A_STATE_COUNT] = {"submitted", "working",  "input-required", "completed",
                                                       "failed",    "canceled", "rejected"};

const char *a2atask_state_name(a2a_state s, int v1)
{
    return v1 ? names_v1[s] : names_v03[s];
}

a2a_state a2atask_state_of(const char *name)
{
    for (int i = 0; i < A2A_STATE_COUNT; i++)
        if (strcmp(name, names_v1[i]) == 0 || strcmp(name, names_v03[i]) == 0)
            return (a2a_state)i;
    return A2A_STATE_COUNT;
}

int a2atask_terminal(a2a_state s)
{
    return s >= A2A_COMPLETED;
}

int a2atask_settled(a2a_state s)
{
    return s >= A2A_INPUT_REQUIRED;
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

/* Tells every watcher of t (settled) and forgets them: the array is
 * taken first, so a watcher leaving meanwhile changes nothing here. */
static void tell_settled(a2a_task *t)
{
    a2atask_watcher *w = t->watch;
    int n = t->nwatch;
    t->watch = NULL;
    t->nwatch = t->watch_cap = 0;
    for (int i = 0; i < n; i++)
        w[i].ops->done(t, w[i].arg);
    ap_free(w);
}

/* The one transition: a terminal state is final; settling tells the
 * watchers, and the new state is written to the session store. */
static void a2atask_set_state(a2a_task *t, a2a_state to)
{
    if (a2atask_terminal(t->state) || t->state == to)
        return;
    ap_debug("a2a task %s: %s -> %s", t->id, names_v03[t->state], names_v03[to]);
    t->state = to;
    t->updated_ms = ap_wall_ms();
    if (to != A2A_SUBMITTED && !server.a2atasks->stopping)
        a2astore_save(t);
    if (a2atask_settled(to))
        tell_settled(t);
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

static void set_text(char **slot, const char *text)
{
    ap_free(*slot);
    *slot = text ? ap_strdup(text) : NULL;
}

/* The answer line of t's request (read back into rl): its result,
 * prompt or error kept as the worker wrote it (no tree made), and t
 * settled. */
static void a2atask_answered(a2a_task *t, const char *line, const reply_line *rl)
{
    if (a2atask_terminal(t->state))
        return; /* cancelled by CancelTask first: its "cancelled" answer changes nothing */
    const char *v = line + rl->value_off;
    size_t vlen = rl->value_len;
    int input = rl->input_required;
    if (vlen == 0) {
        ap_error("a2a task %s: its answer has no value: it is failed", t->id);
        set_text(&t->error, "{\"code\":\"other\",\"message\":\"its answer could not be read\"}");
        a2atask_set_state(t, A2A_FAILED);
        return;
    }
    char **slot = input ? &t->prompt : rl->ok ? &t->result : &t->error;
    ap_free(*slot);
    *slot = ap_strndup(v, vlen);
    cJSON *prompt = input && t->history ? cJSON_ParseWithLength(v, vlen) : NULL;
    if (prompt) { /* the prompt joins the history as the agent's message */
        char mid[A2ATASK_ID_MAX + 24];
        snprintf(mid, sizeof(mid), "%s-input-%d", t->id, t->turns);
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "messageId", mid);
        cJSON_AddStringToObject(m, "role", "agent");
        cJSON_AddStringToObject(m, "taskId", t->id);
        cJSON_AddStringToObject(m, "contextId", t->context);
        cJSON_AddItemToObject(m, "prompt", prompt);
        cJSON_AddItemToArray(t->history, m);
    }
    a2atask_set_state(t, input ? A2A_INPUT_REQUIRED : rl->ok ? A2A_COMPLETED : state_of_error(rl->code));
}

/* Keeps one chunk (its JSON text, checked by the master when the worker
 * sent it) for GetTask's "stream" artifact, up to A2ATASK_STREAM_KEEP_MAX
 * bytes per turn: appended as text, parsed only when shown. */
static void keep_chunk(a2a_task *t, const char *json, size_t len)
{
    if (t->chunks_truncated)
        return;
    if (t->chunk_bytes + len + 1 > A2ATASK_STREAM_KEEP_MAX) {
        t->chunks_truncated = 1;
        ap_info("a2a task %s: its stream passed %u bytes: later chunks are not kept for GetTask", t->id,
                A2ATASK_STREAM_KEEP_MAX);
        return;
    }
    if (t->chunk_bytes + len + 2 > t->chunk_cap) {
        size_t cap = t->chunk_cap ? t->chunk_cap : 256;
        while (cap < t->chunk_bytes + len + 2)
            cap *= 2;
        t->chunks = ap_realloc(t->chunks, cap);
        t->chunk_cap = cap;
    }
    if (t->chunk_bytes)
        t->chunks[t->chunk_bytes++] = ',';
    memcpy(t->chunks + t->chunk_bytes, json, len);
    t->chunk_bytes += len;
    t->chunks[t->chunk_bytes] = '\0';
}

cJSON *a2atask_chunks(const a2a_task *t)
{
    if (t->chunks == NULL || t->chunk_bytes == 0)
        return NULL;
    char *text = ap_malloc(t->chunk_bytes + 3);
    text[0] = '[';
    memcpy(text + 1, t->chunks, t->chunk_bytes);
    text[t->chunk_bytes + 1] = ']';
    text[t->chunk_bytes + 2] = '\0';
    cJSON *arr = cJSON_ParseWithLength(text, t->chunk_bytes + 2);
    ap_free(text);
    return arr;
}

void a2atask_set_chunks(a2a_task *t, const cJSON *arr)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, arr) {
        char *text = cJSON_PrintUnformatted(c);
        if (text) {
            keep_chunk(t, text, strlen(text));
            cJSON_free(text);
        }
    }
}

/* Whether every stream watching t can take a line now. */
static int all_have_room(const a2a_task *t)
{
    for (int i = 0; i < t->nwatch; i++)
        if (t->watch[i].ops->room && !t->watch[i].ops->room(t->watch[i].arg))
            return 0;
    return 1;
}

/* The origin client's take: chunks are kept and go to every stream
 * watching (none taken while one has no room: the task's stream credit
 * waits, as for a slow socket reader), heartbeats are dropped, the
 * answer settles the task. */
static size_t a2atask_take(void *arg, struct evbuffer *out)
{
    a2a_task *t = arg;
    size_t taken = 0;
    for (;;) {
        if (!all_have_room(t))
            break; /* a2atask_resume takes the rest */
        const char *line;
        size_t len;
        reply_line rl;
        int got = reply_next(out, &line, &len, &rl);
        if (got == 0)
            break;
        if (got < 0) {
            ap_error("a2a task %s: an answer line it cannot read (%zu bytes): dropped", t->id, len);
        } else if (rl.kind == REPLY_LINE_ANSWER) {
            a2atask_answered(t, line, &rl);
        } else if (rl.kind == REPLY_LINE_CHUNK) {
            keep_chunk(t, line + rl.payload_off, rl.payload_len);
            for (int i = 0; i < t->nwatch; i++)
                if (t->watch[i].ops->chunk)
                    t->watch[i].ops->chunk(t, line + rl.payload_off, rl.payload_len, rl.seq, t->watch[i].arg);
        }
        evbuffer_drain(out, len + 1);
        taken += len + 1;
    }
    return taken;
}

static void a2atask_closed(void *arg)
{
    a2a_task *t = arg;
    t->c = NULL;
    if (!a2atask_settled(t->state)) {
        ap_warn("a2a task %s: its request was closed before it was answered: it is failed", t->id);
        set_text(&t->error, "{\"code\":\"shutting_down\",\"message\":\"the request was closed before it was "
                            "answered\"}");
        a2atask_set_state(t, A2A_FAILED);
    }
}

void a2atask_free_record(a2a_task *t)
{
    cJSON_Delete(t->history);
    ap_free(t->chunks);
    ap_free(t->result);
    ap_free(t->error);
    ap_free(t->prompt);
    ap_free(t->watch);
    ap_free(t);
}

static void a2atask_free(a2a_task *t)
{
    struct a2atask_table *tb = server.a2atasks;
    link_del(&t->link);
    tb->n--;
    a2atask_free_record(t);
}

/* Whether t may be dropped now: settled, its request gone, nobody waiting. */
static int droppable(const a2a_task *t)
{
    return a2atask_settled(t->state) && t->c == NULL && t->nwatch == 0;
}

void a2atask_sweep(uint64_t now)
{
    struct a2atask_table *tb = server.a2atasks;
    uint64_t ttl = (uint64_t)server.cfg->a2a_task_ttl;
    for (queue_link *l = tb ? tb->tasks.next : NULL; l && l != &tb->tasks;) {
        a2a_task *t = queue_entry(l, a2a_task, link);
        l = l->next;
        if (now < t->created_ms + ttl)
            break; /* the rest were created later, so settled later: none has expired */
        if (!a2atask_settled(t->state) || t->c != NULL || now < t->updated_ms + ttl)
            continue;
        if (t->nwatch == 0) {
            a2atask_free(t);
            continue;
        }
        /* Streams subscribed to a task that waited for input past its
         * time end with its status.  Out of the table first: what their
         * ends start (a pipelined request, a nested sweep) cannot find it,
         * and may change the table, so the walk starts again. */
        link_del(&t->link);
        tb->n--;
        tell_settled(t);
        a2atask_free_record(t);
        l = tb->tasks.next;
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

/* The request line of t (allocated with ap_malloc, NUL-terminated),
 * written by hand around the message's JSON text mtext: no tree. */
static char *task_line(const a2a_task *t, const pool_t *p, const char *mtext, int stream, const char *secret,
                       size_t slen)
{
    jbuf b = {0};
    JBUF_LIT(&b, "{\"id\":1,\"pool\":");
    jbuf_str(&b, p->name);
    JBUF_LIT(&b, ",\"type\":\"a2a.message\",\"data\":");
    jbuf_add(&b, mtext, strlen(mtext));
    if (stream)
        JBUF_LIT(&b, ",\"stream\":true");
    else
        JBUF_LIT(&b, ",\"stream\":false");
    if (p->cfg->sessions) {
        JBUF_LIT(&b, ",\"session\":");
        jbuf_str(&b, t->context);
    }
    if (secret) {
        char key[SCAN_KEY_MAX + 1];
        snprintf(key, sizeof(key), "%.*s", (int)(slen < SCAN_KEY_MAX ? slen : SCAN_KEY_MAX), secret);
        JBUF_LIT(&b, ",\"key\":");
        jbuf_str(&b, key);
    }
    JBUF_LIT(&b, "}");
    return b.p;
}

int a2atask_watch(a2a_task *t, const a2atask_watch_ops *ops, void *arg)
{
    if (t->nwatch >= server.cfg->a2a_max_watchers)
        return AP_ERR;
    if (t->nwatch == t->watch_cap) {
        int cap = t->watch_cap ? t->watch_cap * 2 : 2;
        t->watch = ap_realloc(t->watch, (size_t)cap * sizeof(*t->watch));
        t->watch_cap = cap;
    }
    t->watch[t->nwatch].ops = ops;
    t->watch[t->nwatch].arg = arg;
    t->nwatch++;
    return AP_OK;
}

void a2atask_unwatch(a2a_task *t, void *arg)
{
    for (int i = 0; i < t->nwatch; i++) {
        if (t->watch[i].arg == arg) {
            memmove(&t->watch[i], &t->watch[i + 1], (size_t)(t->nwatch - i - 1) * sizeof(*t->watch));
            t->nwatch--;
            break;
        }
    }
    a2atask_resume(t); /* a stream that held the task back may be gone */
}

void a2atask_resume(a2a_task *t)
{
    if (t->c)
        client_check_output(t->c); /* flush.c calls a2atask_take again at the end of the turn */
}

/* The text of the message amsg[0..mlen) (a JSON object, validated) as t
 * keeps and feeds it: its members without white space, but for its
 * taskId and contextId, which are t's, last. */
static char *message_text(const a2a_task *t, const char *amsg, size_t mlen)
{
    jbuf b = {0};
    jv m = jv_root(amsg, mlen), k, v;
    size_t cur = 0;
    JBUF_LIT(&b, "{");
    while (jv_next(m, &cur, &k, &v)) {
        if (jv_is(k, "taskId") || jv_is(k, "contextId"))
            continue;
        jbuf_add(&b, k.p, k.len);
        JBUF_LIT(&b, ":");
        jbuf_add_compact(&b, v.p, v.len);
        JBUF_LIT(&b, ",");
    }
    JBUF_LIT(&b, "\"taskId\":");
    jbuf_str(&b, t->id);
    JBUF_LIT(&b, ",\"contextId\":");
    jbuf_str(&b, t->context);
    JBUF_LIT(&b, "}");
    return b.p;
}

/* Feeds the message amsg[0..mlen) through a new origin client and
 * appends its text to t's history (its last A2ATASK_HISTORY_MAX kept).
 * t is WORKING after, or settled (refused at once, or failed). */
static void feed(a2a_task *t, pool_t *p, const char *amsg, size_t mlen, int stream, const char *secret, size_t slen)
{
    /* one text: the request line's data and the history's entry */
    char *mtext = message_text(t, amsg, mlen);
    cJSON *h = cJSON_CreateNull();
    if (h == NULL) {
        ap_free(mtext);
        mtext = NULL;
    } else {
        h->type = cJSON_Raw; /* the history item owns mtext: cJSON_Delete frees it (with free(), as jbuf made it) */
        h->valuestring = mtext;
        if (t->history == NULL)
            t->history = cJSON_CreateArray();
        cJSON_AddItemToArray(t->history, h);
        while (cJSON_GetArraySize(t->history) > A2ATASK_HISTORY_MAX)
            cJSON_DeleteItemFromArray(t->history, 0);
    }
    t->chunk_bytes = 0; /* a turn's stream artifact is its own */
    t->chunks_truncated = 0;
    t->turns++;
    char *line = mtext ? task_line(t, p, mtext, stream, secret, slen) : NULL;
    t->c = line ? client_open_origin(&a2atask_origin, t, 0, (uid_t)-1) : NULL;
    if (t->c == NULL) {
        ap_error("a2a task %s (pool %s): its request could not be made (out of memory): it is failed", t->id,
                 p->name);
        set_text(&t->error, "{\"code\":\"other\",\"message\":\"out of memory\"}");
        a2atask_set_state(t, A2A_FAILED);
    } else {
        client_feed(t->c, line, strlen(line), NULL);
        if (!a2atask_settled(t->state))
            a2atask_set_state(t, A2A_WORKING);
    }
    ap_free(line);
}

/* src into dst (cap bytes, NUL included), cut to fit. */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* A task id: the table's stamp's low 48 bits as 12 hex digits, '-', the
 * serial in decimal (what "%012llx-%llu" writes, without printf's cost
 * on every task). */
static void make_id(char id[A2ATASK_ID_MAX], uint64_t stamp, uint64_t serial)
{
    static const char hex[] = "0123456789abcdef";
    char digits[24];
    int n = 0;
    for (int i = 0; i < 12; i++)
        id[i] = hex[(stamp >> (4 * (11 - i))) & 15];
    id[12] = '-';
    do
        digits[n++] = (char)('0' + serial % 10);
    while ((serial /= 10) != 0);
    for (int i = 0; i < n; i++)
        id[13 + i] = digits[n - 1 - i];
    id[13 + n] = '\0';
}

/* t into the table at its place by serial (the newest go last). */
static void insert_sorted(struct a2atask_table *tb, a2a_task *t)
{
    queue_link *l = tb->tasks.prev;
    while (l != &tb->tasks && queue_entry(l, a2a_task, link)->serial > t->serial)
        l = l->prev;
    link_add_tail(l->next, &t->link); /* right after l */
    tb->n++;
}

a2a_task *a2atask_start(pool_t *p, const char *owner, const char *context, const char *amsg, size_t mlen,
                        int stream, const char *secret, size_t slen, char *why, size_t cap)
{
    struct a2atask_table *tb = table();
    uint64_t now = ap_wall_ms();
    a2atask_sweep(now);
    if (make_room(tb) != AP_OK) {
        snprintf(why, cap, "a2aMaxTasks (%lld) tasks are kept and every one is still running",
                 (long long)server.cfg->a2a_max_tasks);
        ap_warn("a2a pool %s: a task refused: %s", p->name, why);
        return NULL;
    }
    a2a_task *t = ap_calloc(1, sizeof(*t));
    /* the serial is the wall clock in us (unique): tasks read back from
     * the session store after a restart keep their place */
    t->serial = now * 1000 > tb->last_serial ? now * 1000 : tb->last_serial + 1;
    tb->last_serial = t->serial;
    make_id(t->id, tb->stamp, t->serial);
    if (context) {
        copy_str(t->context, sizeof(t->context), context);
    } else {
        memcpy(t->context, "ctx-", 4);
        copy_str(t->context + 4, sizeof(t->context) - 4, t->id);
    }
    copy_str(t->owner, sizeof(t->owner), owner);
    copy_str(t->pool, sizeof(t->pool), p->name);
    t->created_ms = t->updated_ms = now;
    t->state = A2A_SUBMITTED;
    insert_sorted(tb, t);
    feed(t, p, amsg, mlen, stream, secret, slen);
    return t;
}

int a2atask_continue(a2a_task *t, pool_t *p, const char *amsg, size_t mlen, int stream, const char *secret,
                     size_t slen)
{
    if (t->state != A2A_INPUT_REQUIRED)
        return AP_ERR;
    /* The last turn's request may not be closed yet: its answer (the
     * prompt) was taken, and the client that carried it goes at the end of
     * the loop's turn.  A caller quick enough to answer the prompt before
     * then must not be refused: the old request is let go now
     * (a2atask_closed: t->c is NULL after it). */
    if (t->c != NULL)
        client_drop(t->c, "its task's next turn began");
    ap_free(t->prompt);
    t->prompt = NULL;
    a2atask_set_state(t, A2A_SUBMITTED); /* a new turn: fed next, then WORKING */
    feed(t, p, amsg, mlen, stream, secret, slen);
    return AP_OK;
}

int a2atask_restore(a2a_task *t)
{
    struct a2atask_table *tb = table();
    for (queue_link *l = tb->tasks.next; l != &tb->tasks; l = l->next)
        if (strcmp(queue_entry(l, a2a_task, link)->id, t->id) == 0)
            return AP_ERR;
    if (make_room(tb) != AP_OK)
        return AP_ERR;
    insert_sorted(tb, t);
    if (t->serial > tb->last_serial)
        tb->last_serial = t->serial;
    return AP_OK;
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
    set_text(&t->error, "{\"code\":\"cancelled\",\"message\":\"cancelled by CancelTask\"}");
    a2atask_set_state(t, A2A_CANCELED);
    return AP_OK;
}

void a2atask_stop(void)
{
    struct a2atask_table *tb = server.a2atasks;
    if (tb == NULL)
        return;
    tb->stopping = 1; /* a task closed at exit is found unanswered at the next start (a2astore.c) */
    while (!link_empty(&tb->tasks)) {
        a2a_task *t = queue_entry(tb->tasks.next, a2a_task, link);
        ap_free(t->watch);
        t->watch = NULL;
        t->nwatch = t->watch_cap = 0;
        if (t->c)
            client_drop(t->c, "closed at exit"); /* a2atask_closed: t->c NULL */
        a2atask_free(t);
    }
    ap_free(tb);
    server.a2atasks = NULL;
}
