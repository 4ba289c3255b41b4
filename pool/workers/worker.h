/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * worker.h - the master's view of its worker processes.
 *
 * A fixed table of entries (maxWorkers + maxConcurrentRecycles long).
 * An entry holds one process at a time and belongs to a logical slot:
 * slot i is always "worker-i", and its generation counts the processes
 * it has had.  A slot being recycled briefly owns two entries: the old
 * process draining and its replacement starting (make before break).
 * Each worker's lifecycle is one enum changed only by worker_set_state(),
 * which asserts the transition is legal and keeps per-state counts:
 *
 *   STARTING -> READY <-> BUSY -> DRAINING -> STOPPING -> DEAD -> STARTING
 *   (any live state -> DEAD when the process dies)
 *
 * READY has a free slot, BUSY has none; DRAINING takes no new messages
 * but finishes what it holds; STOPPING has been told to exit.  The
 * worker module owns fork/exec, the socketpair and its frames, and what
 * happens to messages when a process dies; it never reads client
 * sockets.
 */
#ifndef AP_WORKER_H
#define AP_WORKER_H

#include "ap_frame.h"
#include "config.h"
#include "ap_progress.h"
#include "flush.h"
#include "msg.h"
#include "dispatch.h"
#include "queue.h"
#include "reply.h"

#include <stdint.h>
#include <sys/types.h>

struct evbuffer;

struct event;
struct evbuffer;
struct msg;
struct pool;

/* "worker-N", or "POOL/worker-N" in a server of named pools. */
#define WORKER_NAME_MAX MSG_WORKER_NAME_MAX
_Static_assert(CONFIG_POOL_NAME_MAX + sizeof("/worker-") + 11 <= WORKER_NAME_MAX, "a worker's name fits");

typedef enum {
    WORKER_STARTING = 0,
    WORKER_READY,
    WORKER_BUSY,
    WORKER_DRAINING,
    WORKER_STOPPING,
    WORKER_DEAD,
    WORKER_STATE_COUNT
} worker_state;

/* A worker being killed on purpose, and how far that has gone (a
 * sub-state of any live state; NONE again once the process is gone). */
typedef enum {
    WORKER_KILL_NONE = 0,
    WORKER_KILL_STACKS,         /* stuck: asked for its Python stacks (SIGUSR1); SIGTERM next */
    WORKER_KILL_TERM,           /* stuck: SIGTERM sent; SIGKILL next */
    WORKER_KILL_MEMORY          /* over maxWorkerRssHard: SIGKILL sent */
} worker_kill;

/* What belongs to the process an entry runs now, not to the entry or its
 * slot: zeroed at once at each spawn (worker_spawn), so nothing of one
 * process carries over to the next. */
typedef struct {
    pid_t pid;                  /* 0 when no process */
    uint32_t generation;        /* processes this slot has had, this one included */
    uint32_t epoch;             /* its pool's reload epoch when it was forked */
    char code[AP_CODE_ID_MAX];  /* the agent code it loaded (READY's "code"; drift.c) */
    int code_drift;             /* that code differs from its epoch's */
    int async;                  /* holds many messages at once (async and gevent models) */
    char model[8];              /* "sync", "async" or "gevent", from READY ("" before) */
    uint64_t started_ms;        /* when this process was forked (monotonic) */
    uint64_t ready_ms;          /* 0 until READY */
    uint64_t spawn_ns;          /* for fork-to-ready timing */
    int running_count;          /* messages it holds, control messages included */
    int said_ready;             /* it sent READY */
    int said_start_failed;      /* it sent START_FAILED */
    int reaped;                 /* waitpid returned it: its pid is no longer ours */
    int link_broken;            /* it broke the frame protocol: nothing more it sent is read */
    uint64_t ping_seq;          /* id of the last heartbeat sent */
    int ping_out;               /* that heartbeat is unanswered */
    unsigned missed_beats;      /* in a row (no answer, or a falsy health()) */
    char *health;               /* the agent's last health() answer, JSON (owned) */
    const char *recycle_reason; /* why it is being recycled (static text), or NULL */
    unsigned spread_permille;   /* its spread of the recycle limits */
    uint64_t rss_bytes;         /* last sample */
    uint64_t stop_sent_ms;      /* when it was asked to drain or stop (gracefulTimeout) */
    uint64_t last_active_ms;    /* last answer (or ready): idleTimeout */
    uint64_t last_message_ms;   /* last answer (monotonic); 0: none yet */
    int replace_pending;        /* to be replaced (one-for-all after another's crash) */
    worker_kill kill;           /* being killed on purpose: why, how far */
    uint64_t svc_ewma_ns;       /* sync: mean handler time, moving average (prefetch) */
    uint64_t last_answer_ns;    /* sync: when its last answer came */
    uint64_t sent_bytes;        /* bytes of frames added to its output, ever */
    uint64_t ev_tokens;         /* agent events it may still publish, thousandths (agentev.c) */
    uint64_t ev_refill_ms;      /* when ev_tokens was last refilled; 0: never (full bucket) */
    uint32_t credit_batch;      /* streams: credit owed is sent once it reaches this (half the
                                 * streamWindowBytes it was started with; stream.c) */
    uint64_t ack_sent_bytes;    /* sent_bytes at the last check (suspect.c) */
    uint64_t ack_unread;        /* what it had not read then */
    uint64_t ack_checked_ms;    /* when */
    uint64_t ack_stalled_ms;    /* since when it has read nothing while something waited; 0: it reads */
} worker_proc;

typedef struct worker {
    dispatch_load load;         /* first: read in place by dispatch */
    struct pool *pool;          /* the pool whose table holds it */
    int index;                  /* entry in that table */
    int slot;                   /* logical worker number, -1: entry free */
    char name[WORKER_NAME_MAX]; /* "worker-<slot>", "<pool>/worker-<slot>" with named pools */
    worker_state state;
    worker_proc proc;           /* the process it runs now */
    int fd;                     /* the master's end of the socketpair, -1: none */
    struct evbuffer *in;        /* frames read from it, not yet handled */
    struct event *rev;          /* EV_READ on it (worker_read_cb) */
    flushable out;              /* requests written once per loop turn (flush.c); out.out NULL: no link */
    queue_link running;         /* messages the process holds (sentinel) */
    unsigned start_failures;    /* consecutive failures to start, for backoff */
    struct worker *replaces;    /* this starting process will take over that one's slot */
    struct worker *replaced_by; /* the replacement starting (or serving) for this one */
    unsigned recycle_failures;  /* replacements that failed to start in a row */
    uint64_t recycle_after_ms;  /* no recycle attempt before this */
    struct event *respawn_ev;   /* pending delayed respawn */
    uint64_t respawn_due_ms;    /* a respawn delayed by backoff is due then; 0: none waits */
    struct event *kill_ev;      /* escalation steps for a stuck worker */
    int first_start;            /* part of the initial pool */
    ap_progress *prog;          /* sync: what it runs, readable after death (wprog.c) */
    int prog_fd;                /* that page's memfd, -1: none yet */
} worker;

/* Prepares p's table for its maxWorkers slots.  Nothing is forked. */
void worker_table_init(struct pool *p);
/* Forks and execs the process for p's entry `index`.  AP_ERR (logged
 * with the reason) when fork or socketpair failed; the entry stays DEAD. */
int worker_spawn(struct pool *p, int index);
/* Sends a message to w (which must have room unless m->control). */
void worker_send(worker *w, struct msg *m);
/* Takes m off w's list of messages it holds (msg_on_worker is false
 * after; m->worker still names who ran it), frees
 * its slot, and stops a draining w that holds nothing more. */
void worker_release(worker *w, struct msg *m);
/* Answers m with what its worker sent (a RESULT or ERROR frame h and its
 * payload; src as for answer_ok_moved): the one place a worker's answer
 * becomes the client's.  w (NULL when the answer was held: sessstate.c)
 * is told of an agent error. */
void worker_answer_frame(worker *w, struct msg *m, const ap_frame_hdr *h, const char *payload, struct evbuffer *src);
/* Tells w to cancel m (async agents; a sync worker ignores it). */
void worker_cancel(worker *w, struct msg *m);
/* Sends CREDIT: n more bytes of message id's chunks were passed on. */
void worker_credit(worker *w, uint64_t id, uint32_t n);
/* w holds a message past its deadline, or its loop stopped answering:
 * logs why, has it write its Python stacks to the log (SIGUSR1), then
 * SIGTERM, then SIGKILL after a grace.  What it held is retried as after
 * a crash.  Does nothing if w is already being killed. */
void worker_kill_stuck(worker *w, const char *why);
/* w uses more memory than maxWorkerRssHard allows: logs why and kills
 * it at once (SIGKILL); what it held is retried as after a crash.  Does
 * nothing if w is already being killed. */
void worker_kill_for_memory(worker *w, const char *why);
#define WORKER_HEALTH_MAX 4096

/* One heartbeat round (every healthCheckInterval): counts the missed
 * beats of the last round, replaces workers that missed maxMissedBeats
 * in a row, and sends each worker a PING its loop answers. */
void worker_heartbeat(struct pool *p);
/* w takes no new messages; it stops once it holds none.  gracefulTimeout
 * counts from here. */
void worker_drain(worker *w);
/* Takes w out of service for good: it drains (finishes what it holds)
 * and stops; a STARTING one is stopped at once. */
void worker_retire(worker *w);
/* Asks every live worker of p to finish and exit (STOP frame). */
void worker_stop_all(struct pool *p);
/* Sends sig to every live worker's process group (the worker and what its
 * agent started); short of SIGKILL, not to one that said START_FAILED (it
 * is exiting with its reason). */
void worker_signal_all(struct pool *p, int sig);
/* Reaps every exited child (SIGCHLD) and deals with what they held.  A
 * dead worker's process group is SIGKILLed before it is reaped (what its
 * agent started dies with it), and every other child of the master
 * (re-parented to it: it is a subreaper) is killed and reaped (pgroup.h). */
void worker_reap(void);
/* At exit, after the last worker was reaped: kills and reaps every child
 * left (what agents started and left their group); may wait ~1 s. */
void worker_reap_final(void);
/* Answers every message w holds with code (and forgets them: a late
 * result from the process is dropped).  Returns how many. */
unsigned worker_fail_running(worker *w, reply_code code, const char *why, const char *extra);
/* Frees p's table and closes every socketpair (at exit). */
void worker_table_free(struct pool *p);

/* Whether the lifecycle above allows from -> to; any live state may also
 * go to DEAD (the process died).  worker_set_state asserts it. */
static inline int worker_transition_ok(worker_state from, worker_state to)
{
    if (to == WORKER_DEAD)
        return 1;
    switch (from) {
    case WORKER_DEAD: return to == WORKER_STARTING;
    case WORKER_STARTING: return to == WORKER_READY || to == WORKER_STOPPING;
    case WORKER_READY: return to == WORKER_BUSY || to == WORKER_DRAINING || to == WORKER_STOPPING;
    case WORKER_BUSY: return to == WORKER_READY || to == WORKER_DRAINING || to == WORKER_STOPPING;
    case WORKER_DRAINING: return to == WORKER_STOPPING;
    default: return 0; /* STOPPING goes only to DEAD */
    }
}
void worker_set_state(worker *w, worker_state to);
const char *worker_state_name(worker_state s);
/* Workers taking messages (READY or BUSY). */
int worker_is_accepting(const worker *w);
/* p's live workers (any state but DEAD), and how many are in each state. */
int worker_live_count(const struct pool *p);
int worker_count_in(const struct pool *p, worker_state s);
/* Finds p's worker by name ("worker-N", or its whole name); NULL when unknown. */
worker *worker_by_name(struct pool *p, const char *name, size_t len);
/* An entry of p's table with no process and no slot, or NULL. */
worker *worker_free_entry(struct pool *p);
/* Gives entry w the logical slot (and its name), or frees it (-1). */
void worker_assign(worker *w, int slot);

/* A worker's execve arguments: argv (the binary, the agent and every
 * setting a worker takes as a flag) and envp (wenv.c's allow-list plus
 * AGENTPOOL_WORKER_ID=name).  Built before fork; envp is allocated
 * (ap_free it after fork).  Shared by spawning and by --check-config's
 * throwaway worker (cfgcheck.c), so both start the same program. */
typedef struct {
    char *argv[32 + 2 * CONFIG_MAX_PYTHON_PATH];
    char **envp;
    char conc[24];
    char maxres[24];
    char window[24];
    char maxsess[24];
    char maxckpt[24];
    char hubwarn[24];
    char idenv[48];
    int maxfd;                  /* close up to here if close_range fails */
} worker_exec_args;
void worker_exec_args_build(worker_exec_args *a, const config *cfg, const char *binary, const char *name);

#endif
