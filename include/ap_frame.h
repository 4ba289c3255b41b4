/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ap_frame.h - the master <-> worker frame codec.
 *
 * Master and worker talk over one SOCK_STREAM socketpair.  Every frame is
 * a fixed 16-byte header followed by `len` raw payload bytes:
 *
 *   offset 0  u32  len    payload length, little endian
 *   offset 4  u8   kind   ap_frame_kind
 *   offset 5  u8   flags  per-kind flags (0 unless said otherwise)
 *   offset 6  u16  aux    per-kind small integer, little endian
 *   offset 8  u64  id     the master's internal message id, little endian
 *
 * The payload is never re-encoded: requests carry the client's bytes,
 * results carry the worker's JSON, and the master splices them.  New
 * behaviour adds kinds, never a second channel.  Decoding refuses an
 * unknown kind or a length above AP_FRAME_MAX_PAYLOAD, so a corrupt
 * stream is detected at the first bad header.
 */
#ifndef AP_FRAME_H
#define AP_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define AP_FRAME_HDR_SIZE 16
#define AP_FRAME_MAX_PAYLOAD (256u * 1024u * 1024u)

/* Longest READY "code" identity kept, with its NUL. */
#define AP_CODE_ID_MAX 32

typedef enum {
    /* worker -> master: Python is up and the agent is started.  Payload:
     * JSON {"pid":N,"async":bool,"concurrency":N,"python":"3.11.2",
     *       "code":"HEX16:N","agent":"mod:Class"} ("code": bridge/codeid.h,
     *       "" when it could not be computed), and "subscribes":[PATTERN,...]
     *       when the agent declares the events it wants (agentev.h). id = 0. */
    AP_FRAME_READY = 1,
    /* worker -> master: the agent could not be imported or on_start()
     * raised.  Payload: the traceback text.  The worker then exits with
     * AP_EXIT_START_FAILED. id = 0. */
    AP_FRAME_START_FAILED = 2,
    /* master -> worker: run one message.  aux = length of the type string;
     * payload = type bytes followed by the request's "data" JSON text
     * (empty means null).  With flags AP_FRAME_REQ_META the payload starts
     * with the message's meta (ap_frame_meta, AP_FRAME_META_SIZE bytes),
     * then the type (aux bytes), the client's id as raw JSON (meta.id_len
     * bytes) and the data; len counts all of it. */
    AP_FRAME_REQUEST = 3,
    /* worker -> master: the message's result, as JSON text.  aux: the
     * thread CPU time its handler used (ap_frame_cpu_encode; 0: not
     * measured). */
    AP_FRAME_RESULT = 4,
    /* worker -> master: the message failed.  Payload: a JSON object
     * {"code":"agent_error","message":"...","exception":"ValueError"}.
     * aux: as RESULT's. */
    AP_FRAME_ERROR = 5,
    /* master -> worker: finish what you hold, call on_stop(), exit 0. */
    AP_FRAME_STOP = 6,
    /* master -> worker: cancel message `id` (async agents). */
    AP_FRAME_CANCEL = 7,
    /* master -> worker heartbeat, and the worker's answer (same id).
     * The PONG payload is the agent's health() answer as JSON, or empty. */
    AP_FRAME_PING = 8,
    AP_FRAME_PONG = 9,
    /* worker -> master: one chunk of a streaming handler's answer, as
     * JSON text (checked like a RESULT: valid JSON, at most
     * maxResultBytes).  id = the message.  The master numbers the chunks
     * (seq); the worker sends them in order, and only while the chunk
     * bytes it has in flight for the message are below its window
     * (streamWindowBytes: one chunk may overshoot it). */
    AP_FRAME_CHUNK = 10,
    /* master -> worker: payload = u32 little endian (AP_FRAME_CREDIT_SIZE
     * bytes), the bytes of chunk payload of message `id` the master passed
     * on to the client's socket (or dropped, its client gone) since the
     * last CREDIT for it: the worker may send that much more. */
    AP_FRAME_CREDIT = 11,
    /* worker -> master: the handler of message `id` published an event
     * (ctx.publish, docs/events.md).  aux = length of the topic the agent
     * gave (without the "agent." the master puts before it: 1 to
     * AP_EVENT_TOPIC_MAX bytes, ap_frame_event_topic_valid); payload = the
     * topic bytes, then the event's data as one JSON value (at most
     * AP_EVENT_DATA_MAX bytes).  Sent only after READY. */
    AP_FRAME_EVENT = 12,
    /* worker -> master: the session state of message `id` as the handler
     * left it (docs/sessions.md): one JSON object, at most maxSessionBytes.
     * Sent only for a REQUEST that had AP_FRAME_REQ_SESSION, only when the
     * state differs from what the worker was given (or last sent), before
     * the message's RESULT, never after an exception; and at once when the
     * handler calls ctx.session.save() (flags AP_FRAME_STATE_SAVE).  The
     * master commits each to the session store, in order, and writes the
     * message's answer only once every one it got is committed. */
    AP_FRAME_STATE = 13,
    /* worker -> master: ctx.checkpoint(value) of message `id`: one JSON
     * value, at most maxCheckpointBytes.  The master keeps the last one
     * with the message and gives it back (AP_FRAME_REQ_RESUME) when the
     * message runs again after its worker died. */
    AP_FRAME_CHECKPOINT = 14,
    /* worker -> master: what the handler of message `id` reported with
     * ctx.usage(...) (pool/ops/usage.h), summed per name: one JSON object
     * of at most AP_USAGE_NAMES_MAX names of 1 to AP_USAGE_NAME_MAX bytes
     * of A-Z a-z 0-9 _, each a finite number >= 0 (tokens_in and
     * tokens_out integers below 2^53), at most AP_USAGE_JSON_MAX bytes.
     * Sent once, just before the message's RESULT or ERROR, and only
     * when the handler reported something (the handler's CPU time rides
     * in the answer's aux, so a message that reports nothing costs no
     * extra frame). */
    AP_FRAME_USAGE = 15,
    AP_FRAME_KIND_MAX = 15
} ap_frame_kind;

typedef struct {
    uint32_t len;
    uint8_t kind;
    uint8_t flags;
    uint16_t aux;
    uint64_t id;
} ap_frame_hdr;

/* RESULT flags: the handler streamed (a generator, or ctx.emit): without
 * "stream": true the client gets {"chunks": [...], "return": result}. */
#define AP_FRAME_RESULT_STREAMED 0x01
/* RESULT flags: the handler called ctx.require_input(prompt): the result
 * is the prompt, and the message's turn ended asking for input (the
 * answer line carries "inputRequired": true; A2A: INPUT_REQUIRED). */
#define AP_FRAME_RESULT_INPUT 0x02

#define AP_FRAME_CREDIT_SIZE 4

/* EVENT: the longest topic an agent gives (before "agent." is put in
 * front) and the longest data. */
#define AP_EVENT_TOPIC_MAX 128
#define AP_EVENT_DATA_MAX (64u * 1024u)

/* Whether t[0..n) is a topic an agent may publish under: 1 to
 * AP_EVENT_TOPIC_MAX bytes, dot-separated non-empty segments of
 * a-z 0-9 _ - (no wildcard, no upper case). */
int ap_frame_event_topic_valid(const char *t, size_t n);

/* USAGE: the bounds of the reported object. */
#define AP_USAGE_JSON_MAX 4096u
#define AP_USAGE_NAMES_MAX 16
#define AP_USAGE_NAME_MAX 64

/* REQUEST flags: the payload starts with ap_frame_meta; the client id
 * follows the type. */
#define AP_FRAME_REQ_META 0x01
#define AP_FRAME_META_SIZE 16
/* REQUEST flags, with AP_FRAME_REQ_META only: the message belongs to a
 * session whose state it carries (SESSION), and/or it runs again with
 * the checkpoint its last attempt recorded (RESUME).  With either, the
 * meta is followed by ap_frame_ext (AP_FRAME_EXT_SIZE bytes), and the
 * payload is: meta, ext, type (aux bytes), client id (meta.id_len),
 * state (ext.state_len bytes: a JSON object, "{}" for a new session; 0
 * without SESSION), resume (ext.resume_len bytes: one JSON value; 0
 * without RESUME), data (the rest). */
#define AP_FRAME_REQ_SESSION 0x02
#define AP_FRAME_REQ_RESUME 0x04
#define AP_FRAME_EXT_SIZE 8

/* STATE flags: sent by ctx.session.save() while the handler runs (not
 * at its end). */
#define AP_FRAME_STATE_SAVE 0x01

typedef struct {
    uint32_t state_len;
    uint32_t resume_len;
} ap_frame_ext;

void ap_frame_ext_encode(unsigned char out[AP_FRAME_EXT_SIZE], const ap_frame_ext *e);
void ap_frame_ext_decode(const unsigned char in[AP_FRAME_EXT_SIZE], ap_frame_ext *e);

/* What the handler's context tells about a message, sent before it:
 *   offset 0  u64  deadline_ms  CLOCK_MONOTONIC ms when the client is
 *                               answered timeout (0: no deadline)
 *   offset 8  u32  attempt      1 on the first run, 2 after one retry...
 *   offset 12 u32  id_len       bytes of the client's raw JSON id after
 *                               the type (0: the request had no id) */
typedef struct {
    uint64_t deadline_ms;
    uint32_t attempt;
    uint32_t id_len;
} ap_frame_meta;

void ap_frame_meta_encode(unsigned char out[AP_FRAME_META_SIZE], const ap_frame_meta *m);
void ap_frame_meta_decode(const unsigned char in[AP_FRAME_META_SIZE], ap_frame_meta *m);

/* A CREDIT payload: n bytes, u32 little endian. */
void ap_frame_credit_encode(unsigned char out[AP_FRAME_CREDIT_SIZE], uint32_t n);
uint32_t ap_frame_credit_decode(const unsigned char in[AP_FRAME_CREDIT_SIZE]);

/* The handler's CPU time in a RESULT's or ERROR's aux: a 16-bit float of
 * microseconds + 1 (5-bit exponent, 11-bit mantissa), 0 meaning "not
 * measured".  Exact below 2047 us; above, within 1/2048 below the true
 * value; up to about 51 days (larger is cut to the largest).  decode
 * gives nanoseconds (whole microseconds), AP_FRAME_CPU_NONE for 0. */
#define AP_FRAME_CPU_NONE UINT64_MAX
uint16_t ap_frame_cpu_encode(uint64_t ns);
uint64_t ap_frame_cpu_decode(uint16_t aux);

/* Writes the 16-byte encoding of h into out. Never fails. */
void ap_frame_encode(unsigned char out[AP_FRAME_HDR_SIZE], const ap_frame_hdr *h);
/* Decodes a header.  Returns 0 (AP_OK), or -1 (AP_ERR) for an unknown kind
 * or a length above AP_FRAME_MAX_PAYLOAD; *h is filled either way so the
 * caller can log what it saw. */
int ap_frame_decode(const unsigned char in[AP_FRAME_HDR_SIZE], ap_frame_hdr *h);
/* Name of a kind for logs ("REQUEST"), "?" when unknown. */
const char *ap_frame_kind_name(unsigned kind);

#endif
