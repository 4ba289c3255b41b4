/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * msg.h - one accepted request, from its line to its answer.
 *
 * A message owns a copy of its request line (one allocation holds the
 * struct, the line and the unescaped type), and records where its id and
 * data are inside it, so the worker gets the original bytes and the
 * answer echoes the id exactly as written.  The message table maps the
 * master's internal 64-bit id to the message: the low 32 bits index a
 * slot array, the high bits are a sequence number, so a stale id (from a
 * replaced worker or a message already answered) never finds a live
 * message.  A message lives until its answer is written or it is
 * discarded; its state says where it is.
 */
#ifndef AP_MSG_H
#define AP_MSG_H

#include "queue.h"

#include <event2/event_struct.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

struct client;
struct worker;
struct pool;
struct mstream;
struct session;
struct idem_entry;
struct apikey;
struct usage_cell;

/* A worker's name, "<pool>/worker-<slot>" at most (worker.h). */
#define MSG_WORKER_NAME_MAX 96

typedef enum {
    MSG_NEW = 0,   /* parsed, not yet admitted */
    MSG_HELD,      /* the one message a blocked connection holds, waiting for room */
    MSG_QUEUED,    /* in the pool's FIFO, waiting for a slot */
    MSG_RUNNING,   /* sent to a worker, waiting for its answer */
    MSG_RETRY_WAIT,/* its worker died; waiting out the retry delay */
    MSG_SESSION_WAIT,/* accepted; waiting in its session's FIFO for the session's running message to end */
    MSG_STORE_WAIT,  /* its session's running message, not yet sent: waiting for the session's state to be read
                      * from the store, or for commits of its earlier attempts (sessstate.c) */
    MSG_COMMITTING,  /* its worker answered; the answer is held until the session state it sent is committed */
    MSG_STATE_COUNT
} msg_state;

/* One failed attempt, for the client's error and the dead-letter file. */
typedef struct {
    uint64_t wall_ms;
    pid_t pid;
    int status;                 /* waitpid status */
    char worker[MSG_WORKER_NAME_MAX];
    char reason[160];
} msg_failure;

typedef struct msg {
    uint64_t id;                /* internal id, never shown to clients */
    msg_state state;
    uint8_t control;            /* agent.metrics for a named worker: uses no slot */
    struct pool *pool;          /* the pool it was sent to ("pool", else defaultPool) */
    struct client *client;      /* NULL once the client has gone: the answer is dropped */
    struct worker *worker;      /* while RUNNING */
    uint32_t worker_gen;        /* that worker's generation when sent */
    queue_link qlink;           /* pool queue while QUEUED, worker's list while RUNNING, its session's FIFO while SESSION_WAIT */
    queue_link clink;           /* client's list of its messages */
    uint64_t accepted_ns;
    uint64_t sent_ns;
    uint32_t line_len;
    uint32_t id_off, id_len;    /* raw id bytes in line; id_len 0: no id (answered with null) */
    uint32_t data_off, data_len;/* raw data JSON in line; data_len 0: null */
    uint16_t type_len;
    int8_t retry;               /* request's "retry": -1 absent */
    int64_t timeout_ms;         /* request's "timeoutMs": -1 absent */
    uint64_t deadline_ms;       /* monotonic; 0: no deadline */
    struct event timer;         /* the deadline, or the retry delay while RETRY_WAIT */
    uint8_t timer_set;          /* timer was event_assign'ed (and may be pending) */
    uint8_t in_fifo;            /* due in retry.c's deadline FIFO instead (dlink, due_ms) */
    queue_link dlink;
    uint64_t due_ms;
    uint8_t attempts;           /* times sent to a worker, less those given back (retry_not_started) */
    uint8_t deliveries;         /* times sent to a worker, never given back (saturates at 255): bounds the
                                 * deaths one message can ride, whatever a worker's progress page says */
    uint8_t detached;           /* answered already (timeout): only its worker still holds it */
    uint8_t nfail;
    uint8_t fail_cap;           /* entries allocated in fail */
    uint8_t probe;              /* its type's breaker is half-open and this is the probe */
    uint8_t input_required;     /* its RESULT came with AP_FRAME_RESULT_INPUT: answered "inputRequired": true */
    uint8_t outcome_told;       /* its outcome went to the breaker */
    uint8_t wait_told;          /* its queue wait went to the metrics */
    uint8_t parked;             /* was kept from workers: its client was parked (counted once) */
    uint8_t want_stream;        /* the request said "stream": true: chunks go to the client as they come */
    uint8_t event_delivery;     /* an "event" message for a subscribing agent (agentev.c): no client, never
                                 * retried; what its handler publishes is not delivered to agents again */
    struct mstream *stream;     /* its chunks so far (stream.c), NULL until the first */
    struct session *sess;       /* its session ("session"), NULL without; holds a reference (session.c) */
    uint8_t store_hold;         /* STORE_WAIT: it holds a place of its pool's queue bound (queue_hold) */
    void *held;                 /* COMMITTING: its worker's answer, kept until its state is committed (sessstate.c) */
    struct idem_entry *idem;    /* its idempotency key's entry (idem.c): it runs for it, or waits on it */
    uint8_t idem_waiter;        /* attached to that entry's running message (never admitted; qlink on its list) */
    uint16_t type_idx;          /* typetab index of its type */
    struct apikey *key;         /* its API key ("key"), a reference answer_end gives back; NULL without */
    struct usage_cell *ucell;   /* its usage row (usage.c), NULL when not counted */
    msg_failure *fail;          /* failed attempts, oldest first (allocated on the first) */
    char *ckpt;                 /* its last checkpoint (CHECKPOINT frame), or the request's "resume": raw JSON,
                                 * its own allocation (freed with the message), NULL: none; sent back with
                                 * AP_FRAME_REQ_RESUME on every attempt (worker_send), kept in a dead letter */
    uint32_t ckpt_len;
    char *type;                 /* unescaped type, NUL-terminated (inside this allocation) */
    char line[];                /* the request line as received, without '\n' */
} msg;

typedef struct {
    msg **slots;
    uint32_t cap;
    uint32_t *free_idx;         /* stack of free slot indexes */
    uint32_t nfree;
    uint32_t live;
    uint64_t seq;
    uint64_t by_state[MSG_STATE_COUNT];
} msg_table;

void msg_table_init(msg_table *t);
/* Frees the table; every message must have been freed already. */
void msg_table_free(msg_table *t);

/* Allocates a message holding a copy of line[0..len) and room for a type
 * of type_cap bytes, registers it and gives it an id.  Never fails
 * (out of memory aborts by policy). */
msg *msg_new(msg_table *t, const char *line, size_t len, size_t type_cap);
/* Unregisters and frees m. */
void msg_free(msg_table *t, msg *m);
/* Keeps json[0..len) (len > 0) as m's checkpoint, in place of the one it
 * had (m->ckpt). Never fails. */
void msg_keep_checkpoint(msg *m, const char *json, size_t len);
/* The live message with internal id `id`, or NULL. */
msg *msg_lookup(const msg_table *t, uint64_t id);
/* Changes state, keeping per-state counts. */
void msg_set_state(msg_table *t, msg *m, msg_state to);
const char *msg_state_name(msg_state s);

/* Whether m is on its worker's list of messages it holds (RUNNING and
 * not yet released: worker_release unlinks qlink). */
static inline int msg_on_worker(const msg *m)
{
    return m->state == MSG_RUNNING && m->qlink.next != NULL;
}

#define msg_from_qlink(l) queue_entry(l, msg, qlink)
#define msg_from_clink(l) queue_entry(l, msg, clink)

#endif
