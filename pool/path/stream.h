/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * stream.h - a message's chunks, from its worker to its client, with
 * credit back.
 *
 * A worker sends CHUNK frames for a message while its handler streams
 * (bridge/stream.c).  The master numbers them (seq from 0) and, for a
 * request with "stream": true, writes each as a chunk line to the client
 * at once; without it the chunks are kept (bounded by maxMessageBytes)
 * and the final result becomes {"chunks": [...], "return": result}.
 * Flow control: the worker sends a stream's chunks only while the bytes
 * it has in flight are below its window (streamWindowBytes); the master
 * gives bytes back with CREDIT frames as the client's socket takes the
 * lines (a chunk line's end position in the connection's output is
 * kept until flush.c's written count passes it), or at once for chunks
 * it keeps or drops.  So the master holds at most a window per stream on
 * top of the connection's output watermark, and a stream whose client
 * stops reading suspends only its own handler.
 * With streamHeartbeatMs, a stream that sent nothing for that long gets
 * a heartbeat line (stream_tick).  A stream's state ends with its message
 * (answer_end calls stream_end): nothing here ends a message, except
 * stream_answer_collected, which answers it through answer.c.
 */
#ifndef AP_STREAM_H
#define AP_STREAM_H

#include "queue.h"

#include <stddef.h>
#include <stdint.h>

struct client;
struct evbuffer;
struct msg;
struct worker;

/* Checkpoints kept per stream: where in its connection's output a chunk
 * line ends, and the chunk bytes up to it.  When all are in use the last
 * one is moved forward (its credit comes a little later). */
#define STREAM_CHECKPOINTS 8

typedef struct mstream {
    struct msg *owner;          /* the message it belongs to */
    uint32_t chunks;            /* chunks received: the next one's seq */
    uint64_t bytes;             /* their JSON bytes */
    uint64_t passed;            /* of those, passed on: taken by the socket, kept or dropped */
    uint64_t credited;          /* of those, given back to the worker */
    struct evbuffer *kept;      /* without "stream": true, the chunks so far, comma-separated */
    uint8_t too_large;          /* kept would pass maxMessageBytes: the answer is agent_error */
    uint8_t on_client;          /* on its connection's streams list (clink) */
    uint8_t ended;              /* its client had its final line (counted; off server.streams) */
    queue_link clink;
    queue_link slink;           /* on server.streams while open */
    uint64_t last_ms;           /* when a line was last written for it (heartbeats) */
    unsigned ck_first, ck_count;
    struct {
        uint64_t pos;           /* the line ends before this output position */
        uint64_t upto;          /* bytes passed on once it is taken */
    } ck[STREAM_CHECKPOINTS];
} mstream;

/* m was admitted with "stream": true: its stream starts now (heartbeats
 * count from here). */
void stream_begin(struct msg *m);

/* A CHUNK frame for m (RUNNING on the worker that sent it), payload
 * [0..len) (1 to maxResultBytes: worker.c refuses other sizes), at now_ms
 * (the caller's clock read): numbered, then written to m's client, kept,
 * or dropped (and credited) as described above. */
void stream_chunk(struct msg *m, const char *payload, size_t len, uint64_t now_ms);

/* m's final RESULT came with AP_FRAME_RESULT_STREAMED and m did not ask
 * for "stream": true: answers m with {"chunks":[...],"return":result}
 * (result: payload, or when NULL the first len bytes of src, moved), or
 * agent_error "stream too large to collect; send stream: true" when that
 * would pass maxMessageBytes.  m is ended (answer_end). */
void stream_answer_collected(struct msg *m, const char *payload, struct evbuffer *src, size_t len);

/* Chunks m has had (0: none, or it does not stream). */
static inline uint32_t stream_chunks(const struct msg *m);

/* Whether m's client has part of its answer already: it asked for
 * "stream": true and a chunk came.  Such a message is never retried. */
int stream_partial(const struct msg *m);

/* m goes back to the queue to run again (nothing of it reached its
 * client): its chunks so far are forgotten (a "stream": true message
 * keeps its open stream, with no chunks). */
void stream_restart(struct msg *m);

/* n takes m's place on its connection (client_take_over: a retry on
 * timeout, which only a stream with no chunk sent gets): an open stream
 * goes to n, with no chunks; collected chunks are forgotten.  What m's
 * worker still sends for m is dropped. */
void stream_hand_over(struct msg *m, struct msg *n);

/* The one end of m's stream, from answer_end: counted by code (< 0: ok)
 * unless answer_detach counted it already, unlinked, freed.  Nothing when
 * m has none. */
void stream_end(struct msg *m, int code);

/* m was answered while its worker keeps it (answer_detach: a timeout):
 * its stream is over for its client, counted by code; what its worker
 * still sends is dropped. */
void stream_detach(struct msg *m, int code);

/* m leaves its connection (client_forget: the client left, or m was
 * answered while its worker keeps it): its stream is off the
 * connection's list, and what it had not credited is credited now (its
 * lines will never be taken, or are dropped). */
void stream_leave_client(struct msg *m);

/* Connection c's socket took bytes (flush.c wrote): the streams whose
 * chunk lines it took get their credit. */
void stream_client_wrote(struct client *c);

/* The periodic tick: heartbeat lines for streams idle streamHeartbeatMs. */
void stream_tick(uint64_t now_ms);

#include "msg.h"

static inline uint32_t stream_chunks(const struct msg *m)
{
    return m->stream ? m->stream->chunks : 0;
}

#endif
