/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * stream.c - a message's chunks, from its worker to its client, with
 * credit back (see stream.h).
 *
 * A stream's state is made at admission for "stream": true, else at its
 * first chunk (or at a streamed final result with none), and freed by stream_end, which only answer_end calls.
 * Credit is owed for every chunk byte once it is passed on: taken by the
 * client's socket (a checkpoint per chunk line, compared with flush.c's
 * count of bytes written), kept for a collected answer, or dropped.
 * Owed credit goes to the worker in one CREDIT frame once it reaches
 * half the window the worker was started with (as HTTP/2 peers send
 * WINDOW_UPDATE), and only while the message is still on that worker.
 * A worker waits for credit only with a whole window in flight; then at
 * least half of it is owed or still unread by the client, so the credit
 * comes as soon as the client has taken half: never a deadlock, and one
 * CREDIT frame per half window instead of one per chunk (a paced stream
 * of small chunks cost the master a write to the worker per chunk).  State: server.streams (the
 * open streams, for heartbeats) and each connection's streams list.
 */
#include "stream.h"
#include "answer.h"
#include "ap_alloc.h"
#include "ap_log.h"
#include "client.h"
#include "reply.h"
#include "server.h"
#include "worker.h"

#include <event2/buffer.h>
#include <string.h>

static const char too_large_why[] = "stream too large to collect; send stream: true";

static mstream *stream_open(msg *m)
{
    mstream *s = ap_calloc(1, sizeof(*s));
    link_add_tail(&server.streams, &s->slink);
    server.streams_open++;
    m->pool->stats.streams++;
    s->last_ms = ap_now_ms();
    s->owner = m;
    m->stream = s;
    return s;
}

void stream_begin(msg *m)
{
    if (m->stream == NULL)
        stream_open(m);
}

/* Sends the credit owed to m's worker (only while m is on it). */
static void stream_credit(msg *m, mstream *s)
{
    if (s->passed <= s->credited)
        return;
    uint64_t n = s->passed - s->credited;
    if (!msg_on_worker(m))
        return; /* its worker let go: the credit would be for nobody */
    if (n < m->worker->proc.credit_batch)
        return; /* owed, and sent with more */
    while (n > 0) {
        uint32_t part = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
        worker_credit(m->worker, m->id, part);
        s->credited += part;
        n -= part;
    }
}

/* The chunk bytes up to now are passed on at once (kept or dropped). */
static void stream_pass_now(msg *m, mstream *s)
{
    s->passed = s->bytes;
    stream_credit(m, s);
}

static void checkpoint_add(client *c, mstream *s, uint64_t pos)
{
    if (s->ck_count == STREAM_CHECKPOINTS) {
        unsigned last = (s->ck_first + s->ck_count - 1) % STREAM_CHECKPOINTS;
        s->ck[last].pos = pos;
        s->ck[last].upto = s->bytes;
    } else {
        unsigned at = (s->ck_first + s->ck_count) % STREAM_CHECKPOINTS;
        s->ck[at].pos = pos;
        s->ck[at].upto = s->bytes;
        s->ck_count++;
    }
    if (!s->on_client) {
        link_add_tail(&c->streams, &s->clink);
        s->on_client = 1;
    }
}

static void off_client(mstream *s)
{
    if (s->on_client)
        link_del(&s->clink);
    s->on_client = 0;
    s->ck_count = 0;
}

/* Keeps a chunk for the collected answer; past maxMessageBytes the
 * stream is marked too large and nothing more is kept. */
static void keep(mstream *s, const char *payload, size_t len)
{
    if (s->too_large) {
        s->owner->pool->stats.chunks_dropped++;
        return;
    }
    if (s->kept == NULL)
        s->kept = evbuffer_new();
    size_t have = s->kept ? evbuffer_get_length(s->kept) : 0;
    /* {"chunks":[ ... ],"return":} is 22 bytes around them */
    if (s->kept == NULL || have + len + 1 + 22 > (uint64_t)server.cfg->max_message_bytes) {
        s->too_large = 1;
        if (s->kept)
            evbuffer_free(s->kept);
        s->kept = NULL;
        s->owner->pool->stats.chunks_dropped++;
        return;
    }
    if (have)
        evbuffer_add(s->kept, ",", 1);
    evbuffer_add(s->kept, payload, len);
    s->owner->pool->stats.chunks_collected++;
}

void stream_chunk(msg *m, const char *payload, size_t len, uint64_t now_ms)
{
    if (m->stream == NULL && m->detached) { /* handed over (a retry runs it): nobody waits for these */
        m->pool->stats.chunks_dropped++;
        return;
    }
    mstream *s = m->stream ? m->stream : stream_open(m);
    uint32_t seq = s->chunks++;
    s->bytes += len;
    if (m->client == NULL) { /* its client left, or it was answered (timeout) */
        m->pool->stats.chunks_dropped++;
        stream_pass_now(m, s);
        return;
    }
    if (!m->want_stream) {
        keep(s, payload, len);
        stream_pass_now(m, s);
        return;
    }
    client *c = m->client;
    struct evbuffer *out = client_output(c);
    reply_chunk(out, m->line + m->id_off, m->id_len, payload, len, seq);
    m->pool->stats.chunks_sent++;
    m->pool->stats.chunk_bytes_sent += len;
    s->last_ms = now_ms;
    checkpoint_add(c, s, c->out.written + evbuffer_get_length(out));
    client_check_output(c);
}

void stream_leave_client(msg *m)
{
    mstream *s = m->stream;
    if (s == NULL)
        return;
    off_client(s);
    stream_pass_now(m, s);
}

void stream_client_wrote(client *c)
{
    uint64_t written = c->out.written;
    for (queue_link *l = c->streams.next, *next; l != &c->streams; l = next) {
        next = l->next;
        mstream *s = queue_entry(l, mstream, clink);
        while (s->ck_count > 0 && s->ck[s->ck_first].pos <= written) {
            s->passed = s->ck[s->ck_first].upto;
            s->ck_first = (s->ck_first + 1) % STREAM_CHECKPOINTS;
            s->ck_count--;
        }
        if (s->ck_count == 0)
            off_client(s);
        stream_credit(s->owner, s);
    }
}

void stream_answer_collected(msg *m, const char *payload, struct evbuffer *src, size_t len)
{
    mstream *s = m->stream ? m->stream : stream_open(m);
    size_t kept = s->kept ? evbuffer_get_length(s->kept) : 0;
    if (s->too_large || kept + len + 22 > (uint64_t)server.cfg->max_message_bytes) {
        ap_info("message %.*s (type %s): %u chunks and its result are over maxMessageBytes (%lld) to collect; "
                "answered agent_error", m->id_len ? (int)m->id_len : 4, m->id_len ? m->line + m->id_off : "null",
                m->type, s->chunks, (long long)server.cfg->max_message_bytes);
        answer_error(m, ERR_AGENT_ERROR, too_large_why, NULL);
        return;
    }
    struct evbuffer *body = evbuffer_new();
    if (body == NULL) {
        answer_error(m, ERR_AGENT_ERROR, "out of memory collecting the stream", NULL);
        return;
    }
    evbuffer_add(body, "{\"chunks\":[", 11);
    if (s->kept)
        evbuffer_add_buffer(body, s->kept);
    evbuffer_add(body, "],\"return\":", 11);
    if (len == 0)
        evbuffer_add(body, "null", 4);
    else if (src)
        evbuffer_remove_buffer(src, body, len);
    else
        evbuffer_add(body, payload, len);
    evbuffer_add(body, "}", 1);
    answer_ok_moved(m, body, evbuffer_get_length(body));
    evbuffer_free(body);
}

int stream_partial(const msg *m)
{
    return m->want_stream && stream_chunks(m) > 0;
}

/* Counts the end of s for its client (once) and takes it off the open
 * streams. */
static void stream_over(mstream *s, int code)
{
    if (s->ended)
        return;
    s->ended = 1;
    s->owner->pool->stats.streams_ended[code < 0 || code >= ERR_COUNT ? ERR_COUNT : code]++;
    link_del(&s->slink);
    server.streams_open--;
}

static void stream_free(msg *m)
{
    mstream *s = m->stream;
    off_client(s);
    if (!s->ended) {
        link_del(&s->slink);
        server.streams_open--;
    }
    if (s->kept)
        evbuffer_free(s->kept);
    ap_free(s);
    m->stream = NULL;
}

void stream_restart(msg *m)
{
    mstream *s = m->stream;
    if (s == NULL)
        return;
    if (!m->want_stream) {
        m->pool->stats.streams--; /* counted again if it streams on its next run */
        stream_free(m);
        return;
    }
    off_client(s);
    s->chunks = 0;
    s->bytes = s->passed = s->credited = 0;
}

void stream_hand_over(msg *m, msg *n)
{
    mstream *s = m->stream;
    if (s == NULL)
        return;
    stream_restart(m); /* its chunks forgotten; freed unless "stream": true */
    if (m->stream == NULL)
        return;
    m->stream = NULL;
    s->owner = n;
    n->stream = s;
}

void stream_end(msg *m, int code)
{
    if (m->stream == NULL)
        return;
    stream_over(m->stream, code);
    stream_free(m);
}

void stream_detach(msg *m, int code)
{
    if (m->stream)
        stream_over(m->stream, code);
}

void stream_tick(uint64_t now_ms)
{
    uint64_t every = (uint64_t)server.cfg->stream_heartbeat_ms;
    if (every == 0)
        return;
    for (queue_link *l = server.streams.next; l != &server.streams; l = l->next) {
        mstream *s = queue_entry(l, mstream, slink);
        msg *m = s->owner;
        if (!m->want_stream || m->client == NULL || now_ms - s->last_ms < every)
            continue;
        s->last_ms = now_ms;
        reply_heartbeat(client_output(m->client), m->line + m->id_off, m->id_len);
        client_check_output(m->client);
        s->owner->pool->stats.heartbeats++;
    }
}
