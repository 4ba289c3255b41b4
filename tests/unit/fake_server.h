/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fake_server.h - a small stand-in for the master around one pool/ module
 * under test.
 *
 * A unit test of sched.c, retry.c, supervisor.c or recycle.c links that
 * module, the pure data structures it stands on (msg.c, queue.c, and
 * dispatch.c for sched), and these fakes instead of the rest of
 * agentpoold:
 *  - fake_server.c: the `server` global with one pool (fake_pool) whose
 *    worker table is filled by hand (fake_pool_add adds more pools), a config the test sets field by field, a clock the test moves
 *    (ap_now_ms & co.), RSS readings the test chooses (ap_rss_bytes), a
 *    log that keeps each level's last line, and random() under
 *    -Wl,--wrap=random returning what the test says.
 *  - fake_worker.c: worker.c's functions.  The ones that change a
 *    worker's state do what worker.h promises to the entry (worker_send
 *    links the message and takes a slot, worker_release gives it back,
 *    worker_set_state asserts the transition is legal) but fork, signal
 *    and write nothing; every call is recorded.
 *  - fake_answer.c: answer.c's functions: answers are recorded (id,
 *    kind, code, message) and the message is taken off its worker, queue
 *    or retry list and freed as answer_end does.  fake_client.c:
 *    client.c's (no connection exists; client_take_over copies as the
 *    real one does).
 *  - fake_sched.c, fake_ops.c: sched.c's pump, and dlq.c, wprog.c and
 *    reload.c, recorded.
 * Every fake records its calls in one list (fake_calls / fake_call_nth), so a
 * test asserts what the module asked of the rest of the server.
 */
#ifndef AP_FAKE_SERVER_H
#define AP_FAKE_SERVER_H

#include "answer.h"
#include "ap_log.h"
#include "msg.h"
#include "server.h"
#include "worker.h"

#include <stdint.h>

#define FAKE_MAX_WORKERS 16
#define FAKE_MAX_CALLS 256
#define FAKE_MAX_ANSWERS 64

/* One call to a faked function. */
typedef struct {
    const char *fn;             /* "worker_kill_stuck", "worker_spawn", ... */
    const worker *w;            /* the worker it was about, or NULL */
    uint64_t msg_id;            /* the message's internal id, or 0 */
    long long arg;              /* an integer argument (index, delay), or 0 */
    char text[200];             /* a string argument (why), or "" */
} fake_call;

/* One answer a message got (answer_end or answer_detach). */
typedef struct {
    char id[32];                /* the request's id as written, "null" without */
    uint64_t msg_id;
    answer_kind kind;
    reply_code code;
    int detached;               /* answer_detach: the message lives on */
    char message[256];
    char extra[128];
} fake_answer;

extern config fake_cfg;                 /* server.cfg and fake_pool's settings */
extern pool_t fake_pool;                /* server.pools[0], the default pool */
extern worker fake_workers[FAKE_MAX_WORKERS]; /* fake_pool's worker table */
extern uint64_t fake_now;               /* what ap_now_ms returns */
extern long fake_random_value;          /* what random() returns (with --wrap=random) */
extern uint64_t fake_rss[FAKE_MAX_WORKERS]; /* ap_rss_bytes(pid) for pid 1000 + index */
extern int fake_spawn_result;           /* what worker_spawn returns */
extern int fake_wprog_result;           /* what wprog_running returns ... */
extern uint64_t fake_wprog_running;     /* ... and the id it reports */
extern uint64_t fake_wprog_last;        /* ... and the last started when running is 0 */
extern struct client *const FAKE_CLIENT;/* a connection messages can belong to */

/* A zeroed server with one pool, fake_pool ("default": server.pools[0],
 * server.npools 1, server.default_pool), whose table fake_workers holds n
 * workers, all READY with `slots` slots each (pid 1000 + index, slot
 * index, "worker-<index>"), the fake config in force (server.cfg and
 * fake_pool.cfg), an empty message table, queue (capacity queue_cap) and
 * retry list, no calls and no answers recorded, the clock at 1000000 ms.
 * The entries from n to n+spare-1 are spare (DEAD, slot -1). */
void fake_server_setup(int n, int slots, int spare, size_t queue_cap);
/* The baseline settings fake_server_setup gives fake_cfg, into cfg. */
void fake_config_baseline(config *cfg, size_t queue_cap);
/* Adds pool p (named name, settings cfg) to the server after those there,
 * its table `workers` (n + spare entries) filled as fake_server_setup
 * fills fake_pool's.  For tests of what one pool does to another. */
void fake_pool_add(pool_t *p, const char *name, const config *cfg, worker *workers, int n, int slots, int spare,
                   size_t queue_cap);
/* Frees every message still in the table (and the table). */
void fake_server_teardown(void);

/* A message as the client module would admit it: line
 * {"id":<id>,"type":"<type>","data":null}, its id and type located, client
 * FAKE_CLIENT, state NEW, accepted now. */
msg *fake_msg(int id, const char *type);
/* The live message whose request id is `id`, or NULL. */
msg *fake_msg_by_id(int id);

void fake_record(const char *fn, const worker *w, const msg *m, long long arg, const char *text);
int fake_calls(const char *fn);
/* The k-th call (0 first) to fn, or NULL. */
const fake_call *fake_call_nth(const char *fn, int k);

void fake_record_answer(const msg *m, const answer *a, int detached);
int fake_nanswers(void);
const fake_answer *fake_answer_nth(int k);
/* The answer to request id `id`, or NULL. */
const fake_answer *fake_answer_for(int id);

/* Lines logged at each level, and the last one. */
extern int fake_log_count[AP_LOG_CRIT + 1];
extern char fake_log_last[AP_LOG_CRIT + 1][512];

/* Moves a worker the way worker.c would (asserting the move is legal). */
void fake_worker_state(worker *w, worker_state s);

#endif
