/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * a2a.h - the A2A JSON-RPC 2.0 endpoint of a pool: POST /a2a/{pool}
 * (docs/a2a.md).
 *
 * The master's own protocol layer, like control requests: the body
 * (bounded by maxMessageBytes, http1.c's body limit) is parsed with cJSON,
 * the method found by the A2A-Version header's names (absent or "0.3":
 * message/send, tasks/get, tasks/cancel, ... with lower-case states;
 * "1.0": SendMessage, GetTask, ListTasks, CancelTask, ... with
 * TASK_STATE_* states; anything else: VersionNotSupported), and answered
 * with a JSON-RPC response (HTTP 200; the spec's error codes).  A message
 * becomes a task (a2atask.h), or continues one waiting for input; a
 * blocking SendMessage waits for it to settle (a terminal state or
 * INPUT_REQUIRED), a SendStreamingMessage or SubscribeToTask streams its
 * events until then (several per task):
 * the call is the connection's until answered or its peer gone (the
 * task goes on either way).  httpfront.c has checked the
 * API key's right to the pool before; the key itself goes into the task's
 * request line (the key gate's limits) and names the tasks' owner.
 * Never blocks.
 */
#ifndef AP_A2A_H
#define AP_A2A_H

struct http1_req;
struct pool;
struct a2a_call;

/* Told once when a waiting call has answered (its request is http1.c's). */
typedef void a2a_over_fn(void *arg);

/* Handles req (a POST to pool p's endpoint; tcp: on a TCP listener).
 * Returns the call when it waits for its task (over(arg) is called when
 * it answers), or NULL when it was answered at once. */
struct a2a_call *a2a_start(struct http1_req *req, struct pool *p, int tcp, a2a_over_fn *over, void *arg);
/* call's connection is closing: it is forgotten (its task goes on);
 * over is not called. */
void a2a_peer_gone(struct a2a_call *call);
/* On the tick: the tasks past a2aTaskTtl are swept, so the streams
 * subscribed to a task waiting for input end at its expiry even when no
 * A2A request comes to sweep them; a reading of task records that failed
 * starts again when its backoff is over (a2astore_tick). */
void a2a_tick(void);
/* Frees every task (shutdown). */
void a2a_stop(void);

#endif
