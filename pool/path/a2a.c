/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * a2a.c - the A2A JSON-RPC 2.0 layer (see a2a.h).
 *
 * One request: version (A2A-Version) -> parse -> envelope check
 * (jsonrpc "2.0", a string or number id, a string method) -> the method
 * by its name in that version -> params check -> the method's handler,
 * which answers now or leaves a blocking SendMessage waiting on its task
 * (one of the task's watchers, a2atask_watch).  Every answer is written by answer_result or
 * answer_error; a Task is written in the version's shape by task_json
 * (1.0: TASK_STATE_* states, ROLE_AGENT, parts {"text"} / {"data"},
 * SendMessage's result {"task": ...}; 0.3: lower-case states, "kind"
 * members, the Task itself).  SendStreamingMessage answers server-sent
 * events, each a JSON-RPC response: the Task, an artifact update per
 * handler chunk (append after the first), the result as the last
 * artifact chunk, the final status update, then the stream ends; a
 * stream's connection without room (http1_request_room) stops its task's
 * lines being taken (the stream's credit waits) until it drains.
 * SubscribeToTask streams the same from then on, the Task first; any
 * number of streams (a2aMaxWatchers) watch one task and get the same
 * events.  A message with a taskId continues a task waiting for input
 * (INPUT_REQUIRED, ctx.require_input), which ends its streams as a
 * terminal state does.  State: the waiting calls only (each on its
 * connection's record, httpfront.c), and time_text's last second
 * formatted (a cache).
 */
#include "a2a.h"
#include "a2astore.h"
#include "a2atask.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_log.h"
#include "apikey.h"
#include "httpauth.h"
#include "httpx.h"
#include "jbuf.h"
#include "jview.h"
#include "pools.h"
#include "scan.h"
#include "server.h"

#include <cJSON.h>
#include <event2/buffer.h>
#include "http1.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* JSON-RPC 2.0 and A2A error codes (A2A specification, section 8). */
enum {
    A2A_ERR_PARSE = -32700,
    A2A_ERR_INVALID_REQUEST = -32600,
    A2A_ERR_METHOD_NOT_FOUND = -32601,
    A2A_ERR_INVALID_PARAMS = -32602,
    A2A_ERR_INTERNAL = -32603,
    A2A_ERR_TASK_NOT_FOUND = -32001,
    A2A_ERR_TASK_NOT_CANCELABLE = -32002,
    A2A_ERR_PUSH_NOT_SUPPORTED = -32003,
    A2A_ERR_UNSUPPORTED_OPERATION = -32004,
    A2A_ERR_CONTENT_TYPE = -32005,
    A2A_ERR_EXTENDED_CARD = -32007,
    A2A_ERR_VERSION = -32009,
};

#define A2A_PAGE_DEFAULT 50
#define A2A_PAGE_MAX 100

struct a2a_call {
    http1_req *req; /* NULL once answered or gone */
    a2a_task *t;                /* the task it waits for (kept while it waits: its done is set) */
    char *id;                   /* the request's id as its text (a string with its quotes, or a number), answered
                                 * back; NULL: null */
    int v1;                     /* A2A-Version 1.0 (else 0.3) */
    int history;                /* historyLength asked (-1: all) */
    int sse;                    /* SendStreamingMessage: answered as server-sent events */
    int paused;                 /* sse: its connection had no room (http1_request_room); resumed when drained */
    a2a_over_fn *over;
    void *over_arg;
    char *chunk_head;           /* sse: its chunk events' bytes up to the parts (made at the first chunk) */
    size_t chunk_head_len;
};

static void call_free(struct a2a_call *call)
{
    ap_free(call->id);
    ap_free(call->chunk_head);
    ap_free(call);
}

/* ---- answers --------------------------------------------------------- */

/* o as the response, with an HTTP status of its own: 200, or 503 with
 * Retry-After (retry_s > 0) when the answer is only "not yet". */
static void send_status_body(http1_req *req, cJSON *o, int status, const char *reason, unsigned retry_s)
{
    struct evbuffer *b = httpx_json_body(req, o, "an A2A answer");
    if (b == NULL)
        return;
    http1_headers *h = http1_output_headers(req);
    http1_add_header(h, "Content-Type", "application/json");
    http1_add_header(h, "Cache-Control", "no-store");
    if (retry_s) {
        char ra[16];
        snprintf(ra, sizeof(ra), "%u", retry_s);
        http1_add_header(h, "Retry-After", ra);
    }
    http1_send_reply(req, status, reason, b);
    evbuffer_free(b);
}

static void send_body(http1_req *req, cJSON *o)
{
    send_status_body(req, o, 200, "OK", 0);
}

/* id: the request's id as its text, NULL for null. */
static cJSON *envelope(const char *id)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "jsonrpc", "2.0");
    cJSON_AddItemToObject(o, "id", id ? cJSON_CreateRaw(id) : cJSON_CreateNull());
    return o;
}

static void answer_result(http1_req *req, const char *id, cJSON *result)
{
    cJSON *o = envelope(id);
    cJSON_AddItemToObject(o, "result", result);
    send_body(req, o);
}

static cJSON *error_envelope(const char *id, int code, const char *message)
{
    cJSON *o = envelope(id);
    cJSON *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddNumberToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", message);
    return o;
}

static void answer_error(http1_req *req, const char *id, int code, const char *message)
{
    send_body(req, error_envelope(id, code, message));
}

/* Whether a task this server does not know may yet be one of a session
 * store's, not read back since agentpoold started (a2astore.h): then
 * neither TaskNotFound nor an incomplete list is the truth. */
static int tasks_loading(void)
{
    POOLS_FOREACH(p) if (a2astore_loading(p)) return 1;
    return 0;
}

/* "Not yet": 503 with Retry-After, the JSON-RPC error InternalError
 * saying why, while tasks are read back from a session store. */
static void answer_loading(http1_req *req, const char *id)
{
    send_status_body(req,
                     error_envelope(id, A2A_ERR_INTERNAL,
                                    "tasks are still being read back from the session store: try again"),
                     503, "Service Unavailable", 1);
}

/* ---- the Task, in the version's shape ---------------------------------- */

/* ms, a wall-clock time (the task table's), as the ISO 8601 text the
 * spec's "timestamp" wants. */
static void time_text(uint64_t ms, char *out, size_t cap)
{
    static time_t last_s = -1; /* the second last formatted, and its text: most tasks are of the same second */
    static char last[40];
    time_t s = (time_t)(ms / 1000);
    if (s != last_s) {
        struct tm tm;
        gmtime_r(&s, &tm);
        strftime(last, sizeof(last), "%Y-%m-%dT%H:%M:%S", &tm);
        last_s = s;
    }
    size_t n = strlen(last);
    unsigned frac = (unsigned)(ms % 1000);
    if (cap < n + 6) { /* never: the callers' room is 48 */
        if (cap)
            out[0] = '\0';
        return;
    }
    memcpy(out, last, n); /* "%s.%03uZ", by hand: on every Task written */
    out[n] = '.';
    out[n + 1] = (char)('0' + frac / 100);
    out[n + 2] = (char)('0' + frac / 10 % 10);
    out[n + 3] = (char)('0' + frac % 10);
    out[n + 4] = 'Z';
    out[n + 5] = '\0';
}

static void add_time(cJSON *o, uint64_t ms)
{
    char full[48];
    time_text(ms, full, sizeof(full));
    cJSON_AddStringToObject(o, "timestamp", full);
}

/* A part holding v: text for a string, else data (0.3: data must be an
 * object, so anything else is wrapped as {"result": v}). */
static cJSON *part_of(cJSON *v, int v1)
{
    cJSON *p = cJSON_CreateObject();
    if (cJSON_IsString(v)) {
        if (!v1)
            cJSON_AddStringToObject(p, "kind", "text");
        cJSON_AddItemToObject(p, "text", v);
    } else {
        if (!v1)
            cJSON_AddStringToObject(p, "kind", "data");
        if (!v1 && !cJSON_IsObject(v)) {
            cJSON *w = cJSON_CreateObject();
            cJSON_AddItemToObject(w, "result", v);
            v = w;
        }
        cJSON_AddItemToObject(p, "data", v);
    }
    return p;
}

/* ---- JSON written as text ---------------------------------------------
 * A Task is written straight as text (task_text, jbuf.h), the parts that
 * come as JSON text (the worker's result, the messages of the history)
 * spliced in unchanged: no tree made, printed and freed for them.  The
 * text goes into the answers' trees as one raw item (jbuf_raw). */

/* A part holding json, a JSON text as the worker wrote it (checked by
 * the master when it came), spliced raw: neither parsed nor printed
 * again.  As part_of: text for a string, else data (0.3: a data that is
 * not an object is wrapped as {"result": v}). */
static void put_part_text(jbuf *b, const char *json, int v1)
{
    json += strspn(json, " \t\r\n");
    if (json[0] == '\0')
        json = "null";
    if (json[0] == '"') {
        if (v1)
            JBUF_LIT(b, "{\"text\":");
        else
            JBUF_LIT(b, "{\"kind\":\"text\",\"text\":");
    } else if (v1) {
        JBUF_LIT(b, "{\"data\":");
    } else if (json[0] == '{') {
        JBUF_LIT(b, "{\"kind\":\"data\",\"data\":");
    } else {
        JBUF_LIT(b, "{\"kind\":\"data\",\"data\":{\"result\":");
        jbuf_add(b, json, strlen(json));
        JBUF_LIT(b, "}}");
        return;
    }
    jbuf_add(b, json, strlen(json));
    JBUF_LIT(b, "}");
}

/* put_part_text as an item. */
static cJSON *part_of_text(const char *json, int v1)
{
    jbuf b = {0};
    put_part_text(&b, json, v1);
    return jbuf_raw(&b);
}

/* A message of the agent in t, its id mid, its parts (taken). */
static cJSON *agent_message(const a2a_task *t, int v1, const char *mid, cJSON *parts)
{
    cJSON *m = cJSON_CreateObject();
    if (!v1)
        cJSON_AddStringToObject(m, "kind", "message");
    cJSON_AddStringToObject(m, "messageId", mid);
    cJSON_AddStringToObject(m, "role", v1 ? "ROLE_AGENT" : "agent");
    cJSON_AddStringToObject(m, "taskId", t->id);
    cJSON_AddStringToObject(m, "contextId", t->context);
    cJSON_AddItemToObject(m, "parts", parts);
    return m;
}

/* The agent's input-required prompt (JSON text) as its message: one
 * part, text for a string, else data. */
static cJSON *prompt_message(const a2a_task *t, int v1, const char *mid, const char *prompt)
{
    cJSON *v = cJSON_Parse(prompt);
    cJSON *parts = cJSON_CreateArray();
    cJSON_AddItemToArray(parts, part_of(v ? v : cJSON_CreateNull(), v1));
    return agent_message(t, v1, mid, parts);
}

/* The agent's status message: an error's code and message as text and
 * the whole error object as data; or INPUT_REQUIRED's prompt. */
static cJSON *status_message(const a2a_task *t, int v1)
{
    char text[1200], mid[A2ATASK_ID_MAX + 24];
    if (t->state == A2A_INPUT_REQUIRED) {
        snprintf(mid, sizeof(mid), "%s-input-%d", t->id, t->turns);
        return prompt_message(t, v1, mid, t->prompt);
    }
    cJSON *err = cJSON_Parse(t->error);
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
    const cJSON *amsg = cJSON_GetObjectItemCaseSensitive(err, "message");
    snprintf(text, sizeof(text), "%s: %s", cJSON_IsString(code) ? code->valuestring : "error",
             cJSON_IsString(amsg) ? amsg->valuestring : "");
    snprintf(mid, sizeof(mid), "%s-status", t->id);
    cJSON *parts = cJSON_CreateArray();
    cJSON_AddItemToArray(parts, part_of(cJSON_CreateString(text), v1));
    if (err)
        cJSON_AddItemToArray(parts, part_of(err, v1));
    return agent_message(t, v1, mid, parts);
}

/* Whether t's status carries a message: an error (not COMPLETED) or a prompt. */
static int has_status_message(const a2a_task *t)
{
    return t->state == A2A_INPUT_REQUIRED ? t->prompt != NULL : t->error && t->state != A2A_COMPLETED;
}

/* The artifact aid holding the parts (taken); truncated: some chunks
 * were not kept (A2ATASK_STREAM_KEEP_MAX). */
static cJSON *artifact(const char *aid, cJSON *parts, int truncated)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "artifactId", aid);
    cJSON_AddStringToObject(a, "name", aid);
    cJSON_AddItemToObject(a, "parts", parts);
    if (truncated)
        cJSON_AddBoolToObject(cJSON_AddObjectToObject(a, "metadata"), "truncated", 1);
    return a;
}

/* t's history, its last `history` messages (-1: all), in the version's
 * shape (the user's as they were sent; the agent's prompts made). */
static void put_history(jbuf *b, const a2a_task *t, int v1, int history)
{
    int n = cJSON_GetArraySize(t->history), skip = history < 0 || history >= n ? 0 : n - history;
    int first = 1;
    const cJSON *m;
    JBUF_LIT(b, "[");
    cJSON_ArrayForEach(m, t->history) {
        if (skip-- > 0)
            continue;
        const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(m, "prompt");
        const cJSON *mid = cJSON_GetObjectItemCaseSensitive(m, "messageId");
        if (!first)
            JBUF_LIT(b, ",");
        first = 0;
        if (prompt && cJSON_IsString(mid)) {
            char *text = cJSON_PrintUnformatted(prompt);
            jbuf_tree(b, prompt_message(t, v1, mid->valuestring, text ? text : "null"));
            if (text)
                cJSON_free(text);
        } else if (cJSON_IsRaw(m)) { /* a message as its text (a2atask.c's feed) */
            jbuf_add(b, m->valuestring, strlen(m->valuestring));
        } else { /* a message read back from the session store */
            jbuf_print(b, m);
        }
    }
    JBUF_LIT(b, "]");
}

/* t as a Task, written as text into b; history: messages of its history
 * shown (-1: all). */
static void task_text(jbuf *b, const a2a_task *t, int v1, int history)
{
    char ts[48];
    JBUF_LIT(b, "{\"id\":");
    jbuf_str(b, t->id);
    JBUF_LIT(b, ",\"contextId\":");
    jbuf_str(b, t->context);
    if (!v1)
        JBUF_LIT(b, ",\"kind\":\"task\"");
    JBUF_LIT(b, ",\"status\":{\"state\":");
    jbuf_str(b, a2atask_state_name(t->state, v1));
    if (has_status_message(t)) {
        JBUF_LIT(b, ",\"message\":");
        jbuf_tree(b, status_message(t, v1));
    }
    JBUF_LIT(b, ",\"timestamp\":");
    time_text(t->updated_ms, ts, sizeof(ts));
    jbuf_str(b, ts);
    JBUF_LIT(b, "}");
    cJSON *chunks = a2atask_chunks(t);
    int result = t->state == A2A_COMPLETED && t->result;
    if (chunks || result)
        JBUF_LIT(b, ",\"artifacts\":[");
    if (chunks) { /* the chunks the handler streamed, kept */
        cJSON *parts = cJSON_CreateArray();
        while (chunks->child)
            cJSON_AddItemToArray(parts, part_of(cJSON_DetachItemViaPointer(chunks, chunks->child), v1));
        cJSON_Delete(chunks);
        jbuf_tree(b, artifact("stream", parts, t->chunks_truncated));
        if (result)
            JBUF_LIT(b, ",");
    }
    if (result) {
        JBUF_LIT(b, "{\"artifactId\":\"result\",\"name\":\"result\",\"parts\":[");
        put_part_text(b, t->result, v1);
        JBUF_LIT(b, "]}");
    }
    if (chunks || result)
        JBUF_LIT(b, "]");
    if (history != 0 && t->history) {
        JBUF_LIT(b, ",\"history\":");
        put_history(b, t, v1, history);
    }
    JBUF_LIT(b, ",\"metadata\":{\"pool\":");
    jbuf_str(b, t->pool);
    JBUF_LIT(b, "}}");
}

/* t as a Task item (its text, raw); history as task_text's. */
static cJSON *task_json(const a2a_task *t, int v1, int history)
{
    jbuf b = {0};
    task_text(&b, t, v1, history);
    return jbuf_raw(&b);
}

/* ---- who asks --------------------------------------------------------- */

/* The owner of the caller's tasks: its API key's id, else its address;
 * *secret the key's secret (NULL when none). */
static void caller(http1_req *req, const pool_t *p, int tcp, char *owner, size_t cap,
                   const char **secret, size_t *slen)
{
    char why[200];
    httpauth_message(req, tcp, secret, slen, why, sizeof(why)); /* httpfront.c has refused a missing key */
    apikey *k = NULL;
    if (*secret && apikey_check(*secret, *slen, p->name, &k) != APIKEY_UNAUTHORIZED && k) {
        snprintf(owner, cap, "key:%s", apikey_id(k));
        return;
    }
    const char *addr = http1_request_peer(req);
    snprintf(owner, cap, "peer:%s", addr && addr[0] ? addr : "local");
}

/* ---- methods ---------------------------------------------------------- */

typedef struct {
    http1_req *req;
    const char *id; /* its text; NULL: null */
    jv params;      /* in the request's body, read in place (jview.h) */
    pool_t *p;
    int tcp, v1;
} a2a_req;

/* Who r is (caller's owner), for a method that needs no key of its own. */
static void owner_of(const a2a_req *r, char owner[A2ATASK_OWNER_MAX])
{
    const char *secret;
    size_t slen;
    caller(r->req, r->p, r->tcp, owner, A2ATASK_OWNER_MAX, &secret, &slen);
}

typedef struct a2a_call *method_fn(a2a_req *r, a2a_over_fn *over, void *arg);

/* historyLength in o (absent: -1, all); AP_ERR when not a non-negative integer. */
static int history_of(jv o, int *out)
{
    jv h = jv_get(o, "historyLength");
    double d;
    *out = -1;
    if (jv_none(h))
        return AP_OK;
    if (jv_number(h, &d) != AP_OK || d < 0 || d > 1e9)
        return AP_ERR;
    *out = (int)d;
    return AP_OK;
}

/* Whether modes (acceptedOutputModes) accepts what the agent answers:
 * none given, an empty list, or one of ours in it. */
static int modes_ok(jv modes)
{
    size_t cur = 0;
    jv it;
    if (jv_none(modes))
        return 1;
    if (modes.kind != JV_ARRAY)
        return 0;
    if (!jv_next(modes, &cur, NULL, &it))
        return 1;
    do {
        if (jv_is(it, "application/json") || jv_is(it, "text/plain") || jv_is(it, "*/*"))
            return 1;
    } while (jv_next(modes, &cur, NULL, &it));
    return 0;
}

/* A blocking SendMessage's answer: the Task, settled (or at once:
 * returnImmediately, refused). */
static void call_done(a2a_task *t, void *arg)
{
    struct a2a_call *call = arg;
    cJSON *task = task_json(t, call->v1, call->history);
    cJSON *res = task;
    if (call->v1) {
        res = cJSON_CreateObject();
        cJSON_AddItemToObject(res, "task", task);
    }
    answer_result(call->req, call->id, res);
    call->req = NULL;
    if (call->over)
        call->over(call->over_arg);
    call_free(call);
}

/* ---- streams: server-sent events ---------------------------------------- */

static void stream_drained(http1_req *req, void *arg);

/* Sends one event's bytes (b, emptied) on call's stream; past
 * its connection's room (http1_request_room) the call pauses (its task's
 * lines wait) until stream_drained. */
static void stream_send(struct a2a_call *call, struct evbuffer *b)
{
    if (!http1_request_room(call->req, evbuffer_get_length(b))) {
        call->paused = 1; /* resumed by stream_drained */
        http1_send_reply_chunk_with_cb(call->req, b, stream_drained, call);
    } else {
        http1_send_reply_chunk(call->req, b);
    }
}

/* One event: data is a JSON-RPC response whose result is res (1.0: an
 * object with one member named kind1 holding res; 0.3: res itself). */
static void stream_event(struct a2a_call *call, const char *kind1, cJSON *res)
{
    cJSON *o = envelope(call->id);
    if (call->v1) {
        cJSON *w = cJSON_CreateObject();
        cJSON_AddItemToObject(w, kind1, res);
        res = w;
    }
    cJSON_AddItemToObject(o, "result", res);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    struct evbuffer *b = evbuffer_new();
    if (text == NULL || b == NULL) {
        ap_error("a2a: a stream event could not be made (out of memory): dropped");
    } else {
        evbuffer_add(b, "data: ", 6);
        evbuffer_add(b, text, strlen(text));
        evbuffer_add(b, "\n\n", 2);
        stream_send(call, b);
    }
    if (text)
        cJSON_free(text);
    if (b)
        evbuffer_free(b);
}

/* The event stream's head and its first event: the Task. */
static void stream_start(struct a2a_call *call, const a2a_task *t)
{
    http1_headers *h = http1_output_headers(call->req);
    http1_add_header(h, "Content-Type", "text/event-stream");
    http1_add_header(h, "Cache-Control", "no-store");
    http1_add_header(h, "X-Accel-Buffering", "no");
    http1_send_reply_start(call->req, 200, "OK");
    stream_event(call, "task", task_json(t, call->v1, call->history));
}

static cJSON *update_head(const a2a_task *t, int v1, const char *kind03)
{
    cJSON *u = cJSON_CreateObject();
    if (!v1)
        cJSON_AddStringToObject(u, "kind", kind03);
    cJSON_AddStringToObject(u, "taskId", t->id);
    cJSON_AddStringToObject(u, "contextId", t->context);
    return u;
}

/* An artifact update: its one part (taken), appended to the stream's
 * artifact after its first chunk. */
static void stream_artifact(struct a2a_call *call, const a2a_task *t, const char *aid, cJSON *part, int append,
                            int last)
{
    cJSON *u = update_head(t, call->v1, "artifact-update");
    cJSON *a = cJSON_AddObjectToObject(u, "artifact");
    cJSON_AddStringToObject(a, "artifactId", aid);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(a, "parts"), part);
    cJSON_AddBoolToObject(u, "append", append);
    cJSON_AddBoolToObject(u, "lastChunk", last);
    stream_event(call, "artifactUpdate", u);
}

/* s as a JSON string (allocated). */
static char *json_string(const char *s)
{
    cJSON *v = cJSON_CreateString(s);
    char *text = v ? cJSON_PrintUnformatted(v) : NULL;
    cJSON_Delete(v);
    char *out = ap_strdup(text ? text : "\"\"");
    if (text)
        cJSON_free(text);
    return out;
}

/* call's chunk events' bytes up to the artifact's parts, made once: the
 * same as stream_artifact writes, so a chunk costs no JSON tree. */
static void make_chunk_head(struct a2a_call *call, const a2a_task *t)
{
    const char *id = call->id;
    char *tid = json_string(t->id), *ctx = json_string(t->context);
    size_t cap = (id ? strlen(id) : 4) + strlen(tid) + strlen(ctx) + 200;
    call->chunk_head = ap_malloc(cap);
    int n = snprintf(call->chunk_head, cap,
                     "data: {\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{%s\"taskId\":%s,\"contextId\":%s,"
                     "\"artifact\":{\"artifactId\":\"stream\",\"parts\":[",
                     id ? id : "null", call->v1 ? "\"artifactUpdate\":{" : "\"kind\":\"artifact-update\",", tid, ctx);
    call->chunk_head_len = n > 0 && (size_t)n < cap ? (size_t)n : 0;
    ap_free(tid);
    ap_free(ctx);
}

/* One chunk (the worker's JSON text, spliced as it is) as an artifact
 * update: one part, text for a string, data otherwise (0.3: a value that
 * is not an object wrapped as {"result": v}, as part_of does). */
static void stream_chunk(a2a_task *t, const char *json, size_t len, uint32_t seq, void *arg)
{
    struct a2a_call *call = arg;
    if (call->chunk_head == NULL)
        make_chunk_head(call, t);
    if (len == 0) {
        json = "null";
        len = 4;
    }
    const char *open, *close = "}";
    if (json[0] == '"') {
        open = call->v1 ? "{\"text\":" : "{\"kind\":\"text\",\"text\":";
    } else if (json[0] == '{' || call->v1) {
        open = call->v1 ? "{\"data\":" : "{\"kind\":\"data\",\"data\":";
    } else {
        open = "{\"kind\":\"data\",\"data\":{\"result\":";
        close = "}}";
    }
    char tail[64];
    int tn = snprintf(tail, sizeof(tail), "%s]},\"append\":%s,\"lastChunk\":false}}%s\n\n", close,
                      seq > 0 ? "true" : "false", call->v1 ? "}" : "");
    struct evbuffer *b = evbuffer_new();
    if (b == NULL || call->chunk_head_len == 0) {
        ap_error("a2a task %s: a stream event could not be made (out of memory): dropped", t->id);
    } else {
        evbuffer_add(b, call->chunk_head, call->chunk_head_len);
        evbuffer_add(b, open, strlen(open));
        evbuffer_add(b, json, len);
        evbuffer_add(b, tail, (size_t)tn);
        stream_send(call, b);
    }
    if (b)
        evbuffer_free(b);
}

static int stream_room(void *arg)
{
    struct a2a_call *call = arg;
    return !call->paused;
}

/* Its connection's output drained: the task's lines waiting are taken. */
static void stream_drained(http1_req *req, void *arg)
{
    struct a2a_call *call = arg;
    (void)req;
    if (!call->paused)
        return;
    call->paused = 0;
    if (call->t)
        a2atask_resume(call->t);
}

/* The task settled: the result as the last artifact chunk (COMPLETED),
 * the final status update (with the error, or INPUT_REQUIRED's prompt),
 * and the stream ends. */
static void stream_done(a2a_task *t, void *arg)
{
    struct a2a_call *call = arg;
    if (t->state == A2A_COMPLETED && t->result)
        stream_artifact(call, t, "result", part_of_text(t->result, call->v1), 0, 1);
    cJSON *u = update_head(t, call->v1, "status-update");
    cJSON *st = cJSON_AddObjectToObject(u, "status");
    cJSON_AddStringToObject(st, "state", a2atask_state_name(t->state, call->v1));
    if (has_status_message(t))
        cJSON_AddItemToObject(st, "message", status_message(t, call->v1));
    add_time(st, t->updated_ms);
    if (!call->v1)
        cJSON_AddBoolToObject(u, "final", 1);
    stream_event(call, "statusUpdate", u);
    http1_send_reply_end(call->req);
    call->req = NULL;
    if (call->over)
        call->over(call->over_arg);
    call_free(call);
}

/* A call of request r for task t. */
static struct a2a_call *call_new(const a2a_req *r, a2a_task *t, int history, int sse)
{
    struct a2a_call *call = ap_calloc(1, sizeof(*call));
    call->req = r->req;
    call->id = r->id ? ap_strdup(r->id) : NULL;
    call->v1 = r->v1;
    call->history = history;
    call->sse = sse;
    call->t = t;
    return call;
}

static const a2atask_watch_ops call_ops = {call_done, NULL, NULL};
static const a2atask_watch_ops stream_ops = {stream_done, stream_chunk, stream_room};

/* call waits for its task: one of its watchers.  AP_ERR (nothing
 * changed) when the task has a2aMaxWatchers already. */
static int call_watch(struct a2a_call *call, a2a_over_fn *over, void *arg)
{
    if (a2atask_watch(call->t, call->sse ? &stream_ops : &call_ops, call) != AP_OK)
        return AP_ERR;
    call->over = over;
    call->over_arg = arg;
    return AP_OK;
}

/* The task a message with taskId tid continues: the caller's, of this
 * pool, waiting for input (INPUT_REQUIRED), in the same context; or
 * NULL (answered: TaskNotFound, InvalidParams, UnsupportedOperation). */
static a2a_task *continued_task(a2a_req *r, jv tid, jv ctx, const char *owner)
{
    char id[A2ATASK_ID_MAX];
    if (tid.kind != JV_STRING) {
        answer_error(r->req, r->id, A2A_ERR_INVALID_PARAMS, "message.taskId must be a task id (a string)");
        return NULL;
    }
    a2atask_sweep(ap_wall_ms());
    a2a_task *t = jv_string(tid, id, sizeof(id), NULL) == AP_OK ? a2atask_find(id, owner) : NULL;
    if (t == NULL && tasks_loading()) {
        answer_loading(r->req, r->id);
        return NULL;
    }
    if (t == NULL || strcmp(t->pool, r->p->name) != 0) {
        answer_error(r->req, r->id, A2A_ERR_TASK_NOT_FOUND, "no such task (or it has expired: a2aTaskTtl)");
        return NULL;
    }
    if (ctx.kind == JV_STRING && !jv_is(ctx, t->context)) {
        answer_error(r->req, r->id, A2A_ERR_INVALID_PARAMS, "message.contextId is not the task's contextId");
        return NULL;
    }
    if (t->state != A2A_INPUT_REQUIRED) {
        char why[200];
        snprintf(why, sizeof(why), "the task is %s: only a task in input-required takes another message%s",
                 a2atask_state_name(t->state, r->v1),
                 a2atask_terminal(t->state) ? " (a terminal task cannot be restarted)" : "");
        answer_error(r->req, r->id, A2A_ERR_UNSUPPORTED_OPERATION, why);
        return NULL;
    }
    return t;
}

/* SendMessage and SendStreamingMessage (sse): checks params, starts the
 * task or continues one; answers now, or returns the call that waits. */
static struct a2a_call *message_start(a2a_req *r, int sse, a2a_over_fn *over, void *arg)
{
    static const char *const pnames[] = {"message", "configuration"}, *const mnames[] = {"parts", "contextId", "taskId"},
                             *const cnames[] = {"historyLength", "acceptedOutputModes", "returnImmediately", "blocking"};
    jv pv[2], mv[3], cv[4];
    jv_get_many(r->params, pnames, pv, 2);
    jv amsg = pv[0], conf = pv[1];
    jv_get_many(amsg, mnames, mv, 3);
    jv parts = mv[0], ctx = mv[1], tid = mv[2];
    jv_get_many(conf, cnames, cv, 4);
    jv first;
    size_t cur = 0;
    char context[SCAN_SESSION_MAX + 1];
    size_t clen = 0;
    int history;
    if (amsg.kind != JV_OBJECT || parts.kind != JV_ARRAY || !jv_next(parts, &cur, NULL, &first)) {
        answer_error(r->req, r->id, A2A_ERR_INVALID_PARAMS, "params.message must be a message with parts");
        return NULL;
    }
    if ((!jv_none(conf) && conf.kind != JV_OBJECT) || history_of(conf, &history) != AP_OK) {
        answer_error(r->req, r->id, A2A_ERR_INVALID_PARAMS,
                     "params.configuration must be an object; its historyLength a non-negative integer");
        return NULL;
    }
    if (!jv_none(ctx) && (jv_string(ctx, context, sizeof(context), &clen) != AP_OK || clen == 0)) {
        answer_error(r->req, r->id, A2A_ERR_INVALID_PARAMS, "message.contextId must be a string of 1 to 256 bytes");
        return NULL;
    }
    if (!modes_ok(cv[1])) {
        answer_error(r->req, r->id, A2A_ERR_CONTENT_TYPE,
                     "acceptedOutputModes: this agent answers application/json or text/plain");
        return NULL;
    }
    char owner[A2ATASK_OWNER_MAX];
    const char *secret;
    size_t slen;
    caller(r->req, r->p, r->tcp, owner, sizeof(owner), &secret, &slen);
    int immediate = cv[2].kind == JV_TRUE || cv[3].kind == JV_FALSE;
    a2a_task *t = NULL;
    if (!jv_none(tid)) { /* a message to an existing task: it continues an INPUT_REQUIRED one */
        if ((t = continued_task(r, tid, ctx, owner)) == NULL)
            return NULL;
        a2atask_continue(t, r->p, amsg.p, amsg.len, sse, secret, slen);
    } else {
        char why[200];
        t = a2atask_start(r->p, owner, clen ? context : NULL, amsg.p, amsg.len, sse, secret, slen, why, sizeof(why));
        if (t == NULL) {
            answer_error(r->req, r->id, A2A_ERR_INTERNAL, why);
            return NULL;
        }
    }
    struct a2a_call *call = call_new(r, t, history, sse);
    if (sse) {
        stream_start(call, t);
        if (a2atask_settled(t->state)) { /* refused at once: the Task, then its final status */
            stream_done(t, call);
            return NULL;
        }
    } else if (immediate || a2atask_settled(t->state)) {
        call_done(t, call);
        return NULL;
    }
    if (call_watch(call, over, arg) != AP_OK) { /* a settled task has no watchers: never here */
        ap_error("a2a task %s: a new task or turn found a2aMaxWatchers watchers", t->id);
        call->over = NULL;
        (sse ? stream_done : call_done)(t, call);
        return NULL;
    }
    return call;
}

static struct a2a_call *send_message(a2a_req *r, a2a_over_fn *over, void *arg)
{
    return message_start(r, 0, over, arg);
}

static struct a2a_call *send_streaming_message(a2a_req *r, a2a_over_fn *over, void *arg)
{
    return message_start(r, 1, over, arg);
}

/* The task params.id names, seen by the caller, or NULL (answered). */
static a2a_task *task_of(a2a_req *r)
{
    jv idv = jv_get(r->params, "id");
    char id[A2ATASK_ID_MAX];
    if (idv.kind != JV_STRING) {
        answer_error(r->req, r->id, A2A_ERR_INVALID_PARAMS, "params.id must be a task id (a string)");
        return NULL;
    }
    char owner[A2ATASK_OWNER_MAX];
    owner_of(r, owner);
    a2atask_sweep(ap_wall_ms());
    a2a_task *t = jv_string(idv, id, sizeof(id), NULL) == AP_OK ? a2atask_find(id, owner) : NULL;
    if (t == NULL && tasks_loading())
        answer_loading(r->req, r->id);
    else if (t == NULL)
        answer_error(r->req, r->id, A2A_ERR_TASK_NOT_FOUND, "no such task (or it has expired: a2aTaskTtl)");
    return t;
}

static struct a2a_call *get_task(a2a_req *r, a2a_over_fn *over, void *arg)
{
    (void)over;
    (void)arg;
    int history;
    if (history_of(r->params, &history) != AP_OK) {
        answer_error(r->req, r->id, A2A_ERR_INVALID_PARAMS, "historyLength must be a non-negative integer");
        return NULL;
    }
    a2a_task *t = task_of(r);
    if (t)
        answer_result(r->req, r->id, task_json(t, r->v1, history));
    return NULL;
}

static struct a2a_call *cancel_task(a2a_req *r, a2a_over_fn *over, void *arg)
{
    (void)over;
    (void)arg;
    a2a_task *t = task_of(r);
    if (t == NULL)
        return NULL;
    if (a2atask_cancel(t) != AP_OK) {
        char why[160];
        snprintf(why, sizeof(why), "the task is %s already: it cannot be canceled", a2atask_state_name(t->state, 0));
        answer_error(r->req, r->id, A2A_ERR_TASK_NOT_CANCELABLE, why);
        return NULL;
    }
    answer_result(r->req, r->id, task_json(t, r->v1, -1));
    return NULL;
}

/* ListTasks: the caller's tasks, newest first; pageToken is the serial
 * of the last task of the page before (exclusive). */
static struct a2a_call *list_tasks(a2a_req *r, a2a_over_fn *over, void *arg)
{
    (void)over;
    (void)arg;
    static const char *const names[] = {"pageSize", "pageToken", "contextId", "status"};
    jv pv[4];
    jv_get_many(r->params, names, pv, 4);
    jv ps = pv[0], tok = pv[1], ctx = pv[2], status = pv[3];
    double d;
    /* proto3 clients (the JS SDK) send every field, unset ones as their
     * zero value: "", 0 and TASK_STATE_UNSPECIFIED mean no filter */
    if (ps.kind == JV_NUMBER && jv_number(ps, &d) == AP_OK && d == 0)
        ps.kind = JV_ABSENT;
    if (jv_is(ctx, ""))
        ctx.kind = JV_ABSENT;
    if ((status.kind == JV_NUMBER && jv_number(status, &d) == AP_OK && d == 0) || jv_is(status, "") ||
        jv_is(status, "TASK_STATE_UNSPECIFIED"))
        status.kind = JV_ABSENT;
    int history;
    int size = A2A_PAGE_DEFAULT;
    uint64_t before = UINT64_MAX;
    char context[SCAN_SESSION_MAX + 1], state[64];
    if (!jv_none(ps)) {
        if (jv_number(ps, &d) != AP_OK || d < 1 || d > A2A_PAGE_MAX) {
            answer_error(r->req, r->id, A2A_ERR_INVALID_PARAMS, "pageSize must be 1 to 100");
            return NULL;
        }
        size = (int)d;
    }
    if (!jv_none(tok) && !jv_is(tok, "")) {
        char text[32], *end = NULL;
        before = jv_string(tok, text, sizeof(text), NULL) == AP_OK ? strtoull(text, &end, 10) : 0;
        if (end == NULL || *end != '\0' || before == 0) {
            answer_error(r->req, r->id, A2A_ERR_INVALID_PARAMS, "pageToken is not one this server gave");
            return NULL;
        }
    }
    if (history_of(r->params, &history) != AP_OK ||
        (!jv_none(ctx) && jv_string(ctx, context, sizeof(context), NULL) != AP_OK) ||
        (!jv_none(status) && jv_string(status, state, sizeof(state), NULL) != AP_OK)) {
        answer_error(r->req, r->id, A2A_ERR_INVALID_PARAMS,
                     "historyLength must be a non-negative integer, contextId a string of at most 256 bytes, "
                     "status a task state");
        return NULL;
    }
    a2a_state want = jv_none(status) ? A2A_STATE_COUNT : a2atask_state_of(state);
    if (!jv_none(status) && want == A2A_STATE_COUNT) {
        char why[160];
        snprintf(why, sizeof(why), "status %.60s is not a task state (%s, ...)", state,
                 r->v1 ? "TASK_STATE_WORKING" : "working");
        answer_error(r->req, r->id, A2A_ERR_INVALID_PARAMS, why);
        return NULL;
    }
    if (tasks_loading()) {
        answer_loading(r->req, r->id);
        return NULL;
    }
    char owner[A2ATASK_OWNER_MAX];
    owner_of(r, owner);
    a2atask_sweep(ap_wall_ms());
    cJSON *res = cJSON_CreateObject();
    cJSON *tasks = cJSON_AddArrayToObject(res, "tasks");
    int n = 0, total = 0;
    uint64_t last = 0;
    for (a2a_task *t = a2atask_older(NULL); t; t = a2atask_older(t)) {
        if (strcmp(t->owner, owner) != 0 || (!jv_none(ctx) && strcmp(t->context, context) != 0) ||
            (want != A2A_STATE_COUNT && t->state != want))
            continue;
        total++;
        if (t->serial >= before || n == size)
            continue;
        cJSON_AddItemToArray(tasks, task_json(t, r->v1, history));
        last = t->serial;
        n++;
    }
    char next[24] = "";
    int more = 0;
    for (a2a_task *t = a2atask_older(NULL); n == size && t; t = a2atask_older(t))
        more |= t->serial < last && strcmp(t->owner, owner) == 0;
    if (more)
        snprintf(next, sizeof(next), "%llu", (unsigned long long)last);
    cJSON_AddStringToObject(res, "nextPageToken", next);
    cJSON_AddNumberToObject(res, "pageSize", size);
    cJSON_AddNumberToObject(res, "totalSize", total);
    answer_result(r->req, r->id, res);
    return NULL;
}

/* SubscribeToTask: a stream of a task's events from now on: the Task
 * first (with the chunks streamed so far), then as
 * SendStreamingMessage's (chunks only when the task was sent as a
 * stream), to the task's next settled state.  A task waiting for input
 * is not terminal: its stream waits for the turn a message with its
 * taskId starts, and ends when that turn settles (or the task expires,
 * a2aTaskTtl after it settled, with its input-required status).  Any
 * number of streams up to a2aMaxWatchers per task, each given the same
 * events in the same order; a terminal task is UnsupportedOperation. */
static struct a2a_call *subscribe_task(a2a_req *r, a2a_over_fn *over, void *arg)
{
    a2a_task *t = task_of(r);
    if (t == NULL)
        return NULL;
    if (a2atask_terminal(t->state)) {
        answer_error(r->req, r->id, A2A_ERR_UNSUPPORTED_OPERATION,
                     "the task is in a terminal state: GetTask has its outcome");
        return NULL;
    }
    struct a2a_call *call = call_new(r, t, -1, 1);
    if (call_watch(call, over, arg) != AP_OK) {
        char why[160];
        snprintf(why, sizeof(why), "a2aMaxWatchers (%lld) streams or callers watch this task already",
                 (long long)server.cfg->a2a_max_watchers);
        answer_error(r->req, r->id, A2A_ERR_UNSUPPORTED_OPERATION, why);
        call_free(call);
        return NULL;
    }
    stream_start(call, t);
    return call;
}

static struct a2a_call *no_push(a2a_req *r, a2a_over_fn *over, void *arg)
{
    (void)over;
    (void)arg;
    answer_error(r->req, r->id, A2A_ERR_PUSH_NOT_SUPPORTED, "push notifications are not supported");
    return NULL;
}

static struct a2a_call *no_extended_card(a2a_req *r, a2a_over_fn *over, void *arg)
{
    (void)over;
    (void)arg;
    answer_error(r->req, r->id, A2A_ERR_EXTENDED_CARD, "no extended Agent Card is configured");
    return NULL;
}

/* Each method by its 1.0 and its 0.3 name (NULL: none in that version). */
static const struct {
    const char *v1, *v03;
    method_fn *fn;
} methods[] = {
    {"SendMessage", "message/send", send_message},
    {"SendStreamingMessage", "message/stream", send_streaming_message},
    {"GetTask", "tasks/get", get_task},
    {"ListTasks", "tasks/list", list_tasks},
    {"CancelTask", "tasks/cancel", cancel_task},
    {"SubscribeToTask", "tasks/resubscribe", subscribe_task},
    {"CreateTaskPushNotificationConfig", "tasks/pushNotificationConfig/set", no_push},
    {"GetTaskPushNotificationConfig", "tasks/pushNotificationConfig/get", no_push},
    {"ListTaskPushNotificationConfigs", "tasks/pushNotificationConfig/list", no_push},
    {"DeleteTaskPushNotificationConfig", "tasks/pushNotificationConfig/delete", no_push},
    {"GetExtendedAgentCard", "agent/getAuthenticatedExtendedCard", no_extended_card},
};

/* ---- one request ------------------------------------------------------- */

struct a2a_call *a2a_start(http1_req *req, pool_t *p, int tcp, a2a_over_fn *over, void *arg)
{
    const char *ver = http1_find_header(req, "A2A-Version");
    int v1 = ver && (strcmp(ver, "1.0") == 0 || strcmp(ver, "1") == 0);
    size_t blen;
    const char *body = http1_request_body(req, &blen);
    /* checked whole by the scanner, then read in place: never a tree */
    int json = body && scan_json_value(body, blen, AP_MAX_JSON_DEPTH, 0, NULL, NULL) == AP_OK;
    jv root = json ? jv_root(body, blen) : (jv){NULL, 0, JV_ABSENT};
    static const char *const names[] = {"id", "method", "params", "jsonrpc"};
    jv rv[4];
    jv_get_many(root, names, rv, 4);
    jv idv = rv[0], method = rv[1], params = rv[2];
    char *id = idv.kind == JV_STRING || idv.kind == JV_NUMBER ? ap_strndup(idv.p, idv.len) : NULL;
    char name[64];
    struct a2a_call *call = NULL;
    if (ver && !v1 && strcmp(ver, "0.3") != 0 && strcmp(ver, "0.3.0") != 0) {
        char why[160];
        snprintf(why, sizeof(why), "A2A-Version %.40s is not supported: this server speaks 1.0 and 0.3", ver);
        answer_error(req, id, A2A_ERR_VERSION, why);
    } else if (!json) {
        answer_error(req, NULL, A2A_ERR_PARSE, "the body is not JSON");
    } else if (root.kind != JV_OBJECT || !jv_is(rv[3], "2.0") || method.kind != JV_STRING ||
               (idv.kind != JV_ABSENT && id == NULL)) {
        answer_error(req, id, A2A_ERR_INVALID_REQUEST,
                     "not a JSON-RPC 2.0 request: an object with jsonrpc \"2.0\", a string method and a string or "
                     "number id");
    } else {
        size_t i = 0;
        if (jv_string(method, name, sizeof(name), NULL) != AP_OK)
            i = AP_ARRAY_LEN(methods); /* longer than any method's name */
        while (i < AP_ARRAY_LEN(methods) && strcmp(name, v1 ? methods[i].v1 : methods[i].v03) != 0)
            i++;
        if (i == AP_ARRAY_LEN(methods)) {
            char why[200];
            snprintf(why, sizeof(why), "no method %.80s in A2A %s", jv_string(method, name, sizeof(name), NULL) ==
                     AP_OK ? name : "(a long name)", v1 ? "1.0" : "0.3");
            answer_error(req, id, A2A_ERR_METHOD_NOT_FOUND, why);
        } else if (params.kind != JV_OBJECT) {
            answer_error(req, id, A2A_ERR_INVALID_PARAMS, "params must be an object");
        } else {
            a2a_req r = {req, id, params, p, tcp, v1};
            call = methods[i].fn(&r, over, arg);
        }
    }
    ap_free(id);
    return call;
}

void a2a_peer_gone(struct a2a_call *call)
{
    /* its task goes on: it forgets the call (the other watchers stay) */
    if (call->t)
        a2atask_unwatch(call->t, call);
    call_free(call);
}

void a2a_tick(void)
{
    a2atask_sweep(ap_wall_ms());
    a2astore_tick(ap_now_ms());
}

void a2a_stop(void)
{
    a2atask_stop();
}
