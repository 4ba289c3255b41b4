/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * config.c - the settings table and everything driven by it.
 *
 * settings[] lists each setting once (JSON key, type, field, range,
 * allowed names, help); config_init() sets the defaults, which --help
 * shows.  The flag for a key is its kebab-case form
 * (minWorkers -> --min-workers), its environment variable the key in
 * upper snake case after AGENTPOOL_ (AGENTPOOL_MIN_WORKERS).
 * config_parse_args() loads --config FILE first (one JSON object read
 * with cJSON after jsontext.c removed its comments: an unknown key, a
 * wrong type, a value out of range or trailing text is refused, a parse
 * error at its line and column), then every AGENTPOOL_ variable, then
 * every flag, so default < file < environment < flag; each setting's
 * origin is kept in cfg->source[] (--print-config shows it).  A "pools"
 * object is checked and kept aside while the file loads; after the flags,
 * config_pools_build() gives each pool a complete config: the top level
 * copied, then the pool's object applied by the same apply_object() as
 * the top level (its keys' origin CONFIG_SRC_POOL).  Settings flagged
 * SERVER in the table belong to the whole server and are refused inside
 * a pool.  T_DURATION settings take units (duration.c).  Then
 * config_validate() checks, for the top level and each pool, the
 * rules between settings (maxWorkers >= minWorkers, maxPendingBytes >=
 * maxMessageBytes, group needs user, workerGroup needs workerUser, env names, metricsListen's syntax
 * and metricsAllowRemote).  Every refusal is one line naming the key,
 * the value (control bytes shown escaped) and where it came from.
 * Also here: --help and --print-config from the same table, the
 * warnings --check-config prints, the lists (allowedUids, allowedGids,
 * adminUids, adminGids, env) and workerLimits.
 *
 * Called by main.c at start-up and by reload.c to build the next config
 * on SIGHUP, each time into a fresh struct that is read-only once
 * filled (httpd.c and privs.c also use config_parse_listen()).  No
 * global state; never touches the event loop or the log.
 */
#include "config.h"
#include "brokercfg.h"
#include "duration.h"
#include "jsontext.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_defaults.h"
#include "ap_frame.h"

#include <arpa/inet.h>
#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef enum { T_INT, T_DURATION, T_BOOL, T_STR, T_ENUM, T_PATHLIST, T_MODE, T_LIST, T_RLIMITS, T_BROKER } setting_type;

static const char *const strategy_names[] = {"round-robin", "least-busy", "random", NULL};
static const char *const overflow_names[] = {"block", "reject", NULL};
static const char *const cancel_sync_names[] = {"finish", "kill", NULL};
static const char *const session_busy_names[] = {"enqueue", "reject", "interrupt", NULL};
static const char *const session_sync_names[] = {"full", "normal", NULL};
static const char *const restart_names[] = {"one-for-one", "one-for-all", "rest-for-one", NULL};
static const char *const http_auth_names[] = {"keys", "none", NULL};
static const char *const log_level_names[] = {"debug", "info", "warn", "error", NULL};
static const char *const log_format_names[] = {"text", "json", NULL};
static const char *const worker_model_names[] = {"auto", "sync", "async", "gevent", NULL};

typedef struct {
    const char *key;
    setting_type type;
    size_t off;
    int64_t min, max;
    const char *const *names; /* T_ENUM, or allowed strings for T_STR */
    const char *help;
    unsigned flags;           /* SERVER: a setting of the whole server, refused inside a pool; else PER_POOL */
} setting;

#define PER_POOL 0u /* each pool has its own value (inherited from the top level unless set in the pool) */
#define SERVER 1u

#define OFF(f) offsetof(config, f)
#define I64MAX INT64_MAX

static const setting settings[] = {
    {"socket", T_STR, OFF(socket), 1, 107, NULL, "Unix socket path to listen on", SERVER},
    {"socketMode", T_MODE, OFF(socket_mode), 0, 0777, NULL, "permissions of the socket file (octal)", SERVER},
    {"defaultPool", T_STR, OFF(default_pool_name), 1, CONFIG_POOL_NAME_MAX, NULL, "the pool of a request that names none (default: the first in \"pools\"; without \"pools\": default)", SERVER},
    {"agent", T_STR, OFF(agent), 1, 1024, NULL, "the agent to run, module:Class", PER_POOL},
    {"pythonPath", T_PATHLIST, 0, 0, 0, NULL, "directory put first on sys.path (repeatable; file: array)", PER_POOL},
    {"virtualenv", T_STR, OFF(virtualenv), 0, 4096, NULL, "virtualenv whose site-packages the workers use", PER_POOL},
    {"inheritPythonEnv", T_BOOL, OFF(inherit_python_env), 0, 1, NULL, "let PYTHONHOME/PYTHONPATH etc. from the environment reach workers", PER_POOL},
    {"workerBinary", T_STR, OFF(worker_binary), 1, 4096, NULL, "path of agentpool-worker (default: next to agentpoold, else libexecdir)", SERVER},
    {"minWorkers", T_INT, OFF(min_workers), 1, 4096, NULL, "workers started and kept", PER_POOL},
    {"maxWorkers", T_INT, OFF(max_workers), 1, 4096, NULL, "upper bound when scaling", PER_POOL},
    {"workerModel", T_STR, OFF(worker_model), 0, 0, worker_model_names, "auto (async for an async def agent, else sync) | sync | async | gevent (plain def agents on greenlets, standard library monkey-patched)", PER_POOL},
    {"concurrency", T_INT, OFF(concurrency), 1, 100000, NULL, "slots per worker for async and gevent agents (sync agents have 1)", PER_POOL},
    {"prefetch", T_INT, OFF(prefetch), 1, 1024, NULL, "messages a busy sync worker may hold, queued behind the one it runs, while its handler is fast (1: off)", PER_POOL},
    {"prefetchFastUs", T_INT, OFF(prefetch_fast_us), 1, 3600000000LL, NULL, "a sync worker whose handler averages under this many microseconds counts as fast (may be sent messages ahead)", PER_POOL},
    {"loadBalancingStrategy", T_ENUM, OFF(strategy), 0, 0, strategy_names, "round-robin | least-busy | random", PER_POOL},
    {"messageQueueSize", T_INT, OFF(message_queue_size), 0, 10000000, NULL, "messages waiting for a free slot, at most", PER_POOL},
    {"overflow", T_ENUM, OFF(overflow), 0, 0, overflow_names, "when the queue is full: block (pause that connection) | reject (queue_full)", PER_POOL},
    {"sessions", T_BOOL, OFF(sessions), 0, 1, NULL, "requests may carry \"session\": a key whose messages run one at a time, in order, on the same worker when it can (off: such a request is bad_request)", PER_POOL},
    {"a2a", T_BOOL, OFF(a2a), 0, 1, NULL, "serve this pool as an A2A agent on the HTTP front door: its Agent Card and the JSON-RPC endpoint POST /a2a/POOL (docs/a2a.md)", PER_POOL},
    {"sessionBusy", T_ENUM, OFF(session_busy), 0, 0, session_busy_names, "a message whose session runs another: enqueue (waits its turn) | reject (session_busy) | interrupt (the running one is cancelled as by pool.cancel, this one runs next)", PER_POOL},
    {"maxSessions", T_INT, OFF(max_sessions), 1, 10000000, NULL, "sessions tracked at once (running, waiting or idle for affinity); a new one past it while all are busy: too_many_sessions", PER_POOL},
    {"sessionStore", T_STR, OFF(session_store), 0, 4096, NULL, "where session state lives: sqlite:PATH (embedded SQLite, WAL, group commit on a store thread) | redis://HOST:PORT/DB | none (no ctx.session state); default sqlite:SOCKET.sessions.db", PER_POOL},
    {"broker", T_BROKER, OFF(broker), 0, 0, NULL, "also take work from a Redis stream shared with other agentpoolds (docs/scale-out.md): {url: redis://HOST:PORT/DB (numeric host), stream (agentpool:POOL:requests), controlStream (agentpool:POOL:control), group (agentpool), consumer (HOSTNAME-PID), maxLength (100000), claimIntervalMs (1000), claimIdleMs (2 x timeout), replyTtl (600000), answerTtl (idempotencyTtl), downAlertMs (10000)} (flag: url=redis://127.0.0.1:6379/0,maxLength=1000; unset: off)", PER_POOL},
    {"sessionSync", T_ENUM, OFF(session_sync), 0, 0, session_sync_names, "SQLite session store: full (every commit synced: survives a machine crash) | normal (synced at checkpoints: survives a crash of agentpoold, the last commits may be lost with the machine)", PER_POOL},
    {"sessionTtl", T_DURATION, OFF(session_ttl), 1000, 366LL * 86400000, NULL, "ms a session's state is kept after its last message; expired states are deleted by a sweep off the loop", PER_POOL},
    {"maxSessionBytes", T_INT, OFF(max_session_bytes), 2, 64 * 1024 * 1024, NULL, "longest session state (its JSON) a handler may leave; past it the message is agent_error and the state is not committed", PER_POOL},
    {"sessionCacheBytes", T_INT, OFF(session_cache_bytes), 0, (int64_t)1 << 40, NULL, "bytes of idle sessions' states the master keeps in memory, per pool (past it the least recently used are read from the store again when needed)", PER_POOL},
    {"maxCheckpointBytes", T_INT, OFF(max_checkpoint_bytes), 2, 64 * 1024 * 1024, NULL, "longest ctx.checkpoint value (its JSON); a larger one raises in the handler", PER_POOL},
    {"maxMessageBytes", T_INT, OFF(max_message_bytes), 64, 64 * 1024 * 1024, NULL, "longest request line, bytes (longer: too_large)", SERVER},
    {"maxResultBytes", T_INT, OFF(max_result_bytes), 0, AP_FRAME_MAX_PAYLOAD, NULL, "longest result a worker may answer, bytes (longer: agent_error; 0: maxMessageBytes)", PER_POOL},
    {"streamWindowBytes", T_INT, OFF(stream_window_bytes), 1, AP_FRAME_MAX_PAYLOAD, NULL, "chunk bytes one stream may have in flight between its worker and its client's socket; past it its handler waits (async task, greenlet, or the whole sync worker)", PER_POOL},
    {"streamHeartbeatMs", T_DURATION, OFF(stream_heartbeat_ms), 0, 86400000, NULL, "a stream that sent nothing for this many ms gets a heartbeat line (0: off)", SERVER},
    {"maxConnections", T_INT, OFF(max_connections), 1, 1000000, NULL, "client connections at once", SERVER},
    {"adminReserveConnections", T_INT, OFF(admin_reserve_connections), 0, 1000, NULL, "of maxConnections, the last ones only administrators (adminUids/adminGids) get", SERVER},
    {"maxConnectionsPerUid", T_INT, OFF(max_connections_per_uid), 0, 1000000, NULL, "connections one peer uid may hold at once (0: no limit)", SERVER},
    {"idleConnectionTimeout", T_DURATION, OFF(idle_connection_timeout), 0, 86400000, NULL, "close a connection with nothing in flight and no traffic for this many ms (0: never)", SERVER},
    {"maxInFlightPerConnection", T_INT, OFF(max_inflight_per_connection), 1, 10000000, NULL, "unanswered messages per connection before it stops being read", SERVER},
    {"maxPendingBytes", T_INT, OFF(max_pending_bytes), 1024, (int64_t)1 << 40, NULL, "bytes of all queued and in-flight requests together", SERVER},
    {"maxBufferedBytes", T_INT, OFF(max_buffered_bytes), 1024 * 1024, (int64_t)1 << 40, NULL, "bytes of answers the master holds for clients that have not read them; past it, connections with unread answers (and new ones) wait", SERVER},
    {"clientWriteTimeout", T_DURATION, OFF(client_write_timeout), 0, 86400000, NULL, "close a connection whose answers wait and none was taken for this long, ms (0: never)", SERVER},
    {"listenBacklog", T_INT, OFF(listen_backlog), 1, 65535, NULL, "listen(2) backlog", SERVER},
    {"shutdownTimeout", T_DURATION, OFF(shutdown_timeout), 0, 86400000, NULL, "ms to finish queued and in-flight messages on SIGTERM", SERVER},
    {"restartOnFailure", T_BOOL, OFF(restart_on_failure), 0, 1, NULL, "respawn a worker that died unexpectedly", PER_POOL},
    {"pinCode", T_BOOL, OFF(pin_code), 0, 1, NULL, "refuse a worker that loaded other agent code than its generation (files changed without a reload)", PER_POOL},
    {"maxRetries", T_INT, OFF(max_retries), 0, 100, NULL, "retries of a message whose worker died", PER_POOL},
    {"retryDelay", T_DURATION, OFF(retry_delay), 0, 3600000, NULL, "first retry delay, ms (doubles per attempt)", PER_POOL},
    {"healthCheckInterval", T_DURATION, OFF(health_check_interval), 0, 3600000, NULL, "ms between heartbeats", PER_POOL},
    {"dispatchAckMs", T_DURATION, OFF(dispatch_ack_ms), 0, 3600000, NULL, "ms a worker may leave what it was sent unread before it is suspect and not chosen (0: never)", PER_POOL},
    {"workerRecycleInterval", T_DURATION, OFF(worker_recycle_interval), 0, I64MAX, NULL, "recycle a worker older than this, ms (0: never)", PER_POOL},
    {"maxMessagesPerWorker", T_INT, OFF(max_messages_per_worker), 0, I64MAX, NULL, "recycle a worker after this many messages (0: never)", PER_POOL},
    {"timeout", T_DURATION, OFF(timeout), 0, 86400000, NULL, "ms a message may take from acceptance to answer (0: none)", PER_POOL},
    {"maxRetryDelay", T_DURATION, OFF(max_retry_delay), 0, 3600000, NULL, "cap on the retry delay, ms", PER_POOL},
    {"retryOnTimeout", T_BOOL, OFF(retry_on_timeout), 0, 1, NULL, "retry a message that timed out (else answer timeout)", PER_POOL},
    {"cancelSync", T_ENUM, OFF(cancel_sync), 0, 0, cancel_sync_names, "pool.cancel of a message a sync worker is running: finish (answer cancelled at once, let the handler end, drop its result) | kill (replace the worker, as for a timeout)", PER_POOL},
    {"deadLetterFile", T_STR, OFF(dead_letter_file), 0, 4096, NULL, "JSON Lines file of messages that failed for good (default: SOCKET.deadletter.jsonl; with \"pools\": only inside a pool, else SOCKET.POOL.deadletter.jsonl)", PER_POOL},
    {"idempotencyTtl", T_DURATION, OFF(idempotency_ttl), 1, 86400000, NULL, "ms a finished request's answer is kept for its idempotencyKey (a resend within it is replayed)", PER_POOL},
    {"idempotencyCacheBytes", T_INT, OFF(idempotency_cache_bytes), 0, (int64_t)1 << 40, NULL, "bytes of answers kept for idempotency keys, per pool; past it the oldest are evicted", PER_POOL},
    {"deadLetterMaxBytes", T_INT, OFF(dead_letter_max_bytes), 4096, (int64_t)1 << 40, NULL, "size at which the dead-letter file rolls to .1", PER_POOL},
    {"gracefulTimeout", T_DURATION, OFF(graceful_timeout), 0, 86400000, NULL, "ms a worker asked to stop may take before it is killed", PER_POOL},
    {"maxWorkerRss", T_INT, OFF(max_worker_rss), 0, (int64_t)1 << 44, NULL, "recycle a worker whose RSS passes this many bytes (0: off)", PER_POOL},
    {"maxWorkerRssHard", T_INT, OFF(max_worker_rss_hard), 0, (int64_t)1 << 44, NULL, "kill a worker whose RSS passes this many bytes (0: off)", PER_POOL},
    {"recycleJitter", T_INT, OFF(recycle_jitter), 0, 50, NULL, "per-worker spread of the recycle limits, percent", PER_POOL},
    {"maxConcurrentRecycles", T_INT, OFF(max_concurrent_recycles), 1, 64, NULL, "workers recycled at once, at most", PER_POOL},
    {"restartStrategy", T_ENUM, OFF(restart_strategy), 0, 0, restart_names, "one-for-one | one-for-all | rest-for-one (the dead worker and every later slot)", PER_POOL},
    {"maxRestarts", T_INT, OFF(max_restarts), 0, 100000, NULL, "restarts within restartWindow before the pool backs off", PER_POOL},
    {"restartWindow", T_DURATION, OFF(restart_window), 1, 86400000, NULL, "ms over which restarts are counted", PER_POOL},
    {"historySize", T_INT, OFF(history_size), 1, 100000, NULL, "restart history entries kept (pool.history)", PER_POOL},
    {"hubBlockedWarnMs", T_DURATION, OFF(hub_blocked_warn_ms), 0, 3600000, NULL, "async and gevent workers log (with its stack) and count a handler that holds their event loop this many ms (0: off)", PER_POOL},
    {"maxMissedBeats", T_INT, OFF(max_missed_beats), 1, 1000, NULL, "heartbeats a worker may miss in a row before it is replaced", PER_POOL},
    {"breakerFailureThreshold", T_INT, OFF(breaker_failure_threshold), 0, 1000, NULL, "failures of one type within breakerWindow that open its breaker (0: off)", PER_POOL},
    {"breakerWindow", T_DURATION, OFF(breaker_window), 1, 86400000, NULL, "ms over which breaker failures are counted", PER_POOL},
    {"breakerResetTimeout", T_DURATION, OFF(breaker_reset_timeout), 1, 86400000, NULL, "ms an open breaker waits before letting one probe through", PER_POOL},
    {"scaleUpAfter", T_DURATION, OFF(scale_up_after), 1, 86400000, NULL, "add a worker when messages have waited this long, ms", PER_POOL},
    {"idleTimeout", T_DURATION, OFF(idle_timeout), 1, (int64_t)1 << 40, NULL, "retire a worker idle this long, ms (never below minWorkers)", PER_POOL},
    {"maxTrackedTypes", T_INT, OFF(max_tracked_types), 1, 4096, NULL, "message types tracked one by one in stats and breakers; the rest count as other", PER_POOL},
    {"metricsListen", T_STR, OFF(metrics_listen), 0, 4096, NULL, "serve /metrics, /healthz, /readyz and /stats over HTTP here: unix:/path, 127.0.0.1:PORT or [::1]:PORT (empty: off)", SERVER},
    {"metricsAllowRemote", T_BOOL, OFF(metrics_allow_remote), 0, 1, NULL, "let metricsListen be an address other machines can reach", SERVER},
    {"httpListen", T_LIST, OFF(http_listen), 0, 0, NULL, "serve the HTTP/1.1 front door here (docs/http.md): HOST:PORT, [IPV6]:PORT or unix:/path, numeric (repeatable; flag: comma-separated; unset: off)", SERVER},
    {"httpAuth", T_STR, OFF(http_auth), 0, 0, http_auth_names, "keys (a TCP httpListen needs Authorization: Bearer keys) | none (no authentication: logged as a warning at start); unix: listeners need none", SERVER},
    {"httpMaxHeaderBytes", T_INT, OFF(http_max_header_bytes), 1024, 1024 * 1024, NULL, "longest request line and headers of an HTTP request, bytes (longer: 400, connection closed); bodies are bounded by maxMessageBytes", SERVER},
    {"httpRequestTimeoutMs", T_DURATION, OFF(http_request_timeout_ms), 0, 86400000, NULL, "an HTTP request's headers and body must have arrived this many ms after its first byte, else its connection is closed (slow clients; 0: no limit)", SERVER},
    {"httpIdleTimeoutMs", T_DURATION, OFF(http_idle_timeout_ms), 1000, 86400000, NULL, "close an HTTP connection that sends nothing (between requests, or inside one) or takes none of its answer for this many ms", SERVER},
    {"a2aTaskTtl", T_DURATION, OFF(a2a_task_ttl), 1000, 366LL * 86400000, NULL, "ms an A2A task in a terminal state is kept for GetTask and ListTasks (docs/a2a.md)", SERVER},
    {"a2aMaxTasks", T_INT, OFF(a2a_max_tasks), 1, 10000000, NULL, "A2A tasks kept at once; past it the oldest terminal ones go, and with every one still running SendMessage is refused", SERVER},
    {"eventHistory", T_INT, OFF(event_history), 1, 1000000, NULL, "lifecycle events kept for replay (pool.subscribe with since; docs/events.md); fixed at start", SERVER},
    {"eventHistoryBytes", T_INT, OFF(event_history_bytes), 64 * 1024, (int64_t)1 << 32, NULL, "bytes of the events kept for replay, at most (the oldest go first)", SERVER},
    {"subscriberBufferBytes", T_INT, OFF(subscriber_buffer_bytes), 16 * 1024, (int64_t)1 << 32, NULL, "bytes of events held for one subscriber that does not read; past it its oldest are dropped (it is told how many)", SERVER},
    {"maxSubscribers", T_INT, OFF(max_subscribers), 0, 100000, NULL, "connections subscribed to events at once (pool.subscribe; past it: too_many_connections)", SERVER},
    {"alertAvailableBelow", T_INT, OFF(alert_available_below), 0, 100, NULL, "warn when fewer than this percent of the workers have a free slot (0: off)", PER_POOL},
    {"alertQueueAbove", T_INT, OFF(alert_queue_above), 0, 100, NULL, "warn when the queue is more than this percent full (0: off)", PER_POOL},
    {"alertErrorRateAbove", T_INT, OFF(alert_error_rate_above), 0, 100, NULL, "warn when more than this percent of the last minute's answers were errors (0: off)", PER_POOL},
    {"alertInterval", T_DURATION, OFF(alert_interval), 1, 86400000, NULL, "ms between two warnings of the same alert, at least", PER_POOL},
    {"user", T_STR, OFF(user), 0, 256, NULL, "started as root: drop to this user (name or uid) after binding; workers run as it too", SERVER},
    {"group", T_STR, OFF(group), 0, 256, NULL, "with user: drop to this group (name or gid) instead of the user's own", SERVER},
    {"workerUser", T_STR, OFF(worker_user), 0, 256, NULL, "run the workers as this user (name or uid), not the master's, so agent code cannot signal or ptrace the master (needs root at start)", SERVER},
    {"workerGroup", T_STR, OFF(worker_group), 0, 256, NULL, "with workerUser: the workers' group (name or gid) instead of that user's own", SERVER},
    {"allowedUids", T_LIST, OFF(allowed_uids), 0, 0, NULL, "peers allowed on the socket by uid: names or numbers (flag: comma-separated; unset: any)", SERVER},
    {"allowedGids", T_LIST, OFF(allowed_gids), 0, 0, NULL, "peers allowed on the socket by primary gid: names or numbers (flag: comma-separated)", SERVER},
    {"adminUids", T_LIST, OFF(admin_uids), 0, 0, NULL, "peers allowed admin requests (pool.scale, pool.reload, pool.dlq.*, pool.history, detailed stats) by uid (unset with adminGids: root and the server's own uid)", SERVER},
    {"adminGids", T_LIST, OFF(admin_gids), 0, 0, NULL, "peers allowed admin requests by primary gid: names or numbers (flag: comma-separated)", SERVER},
    {"chdir", T_STR, OFF(worker_chdir), 0, 4096, NULL, "the workers' working directory (empty: the master's)", PER_POOL},
    {"umask", T_MODE, OFF(worker_umask), 0, 0777, NULL, "the workers' umask (octal; default: the master's)", PER_POOL},
    {"env", T_LIST, OFF(env), 0, 0, NULL, "the workers' environment allow-list: NAME (copied) or NAME=VALUE (set); the rest is removed (unset: inherit all)", PER_POOL},
    {"workerLimits", T_RLIMITS, OFF(worker_limits), 0, 0, NULL, "setrlimit in each worker before the agent loads: {addressSpace, openFiles, coreSize} (flag: openFiles=64,coreSize=0)", PER_POOL},
    {"logLevel", T_STR, OFF(log_level), 0, 0, log_level_names, "debug | info | warn | error", SERVER},
    {"logFormat", T_STR, OFF(log_format), 0, 0, log_format_names, "text | json", SERVER},
    {"logFile", T_STR, OFF(log_file), 0, 4096, NULL, "append the log to this file, reopened on SIGUSR1 (empty: stderr)", SERVER},
    {"apiKeysFile", T_STR, OFF(api_keys_file), 0, 4096, NULL, "JSON lines of API keys (id, sha256 of the secret, pools, maxInFlight, ratePerMinute, tokensPerMinute) checked for requests that send a key; reread on SIGHUP; must not be readable by others (empty: none)", SERVER},
    {"maxTrackedKeys", T_INT, OFF(max_tracked_keys), 0, 100000, NULL, "API keys tracked one by one in usage accounting; the rest count as other", SERVER},
    {"accessLog", T_STR, OFF(access_log), 0, 4096, NULL, "append one line per answered message to this file, reopened on SIGUSR1 (empty: off)", SERVER},
    {"workerLogRate", T_INT, OFF(worker_log_rate), 0, 1000000, NULL, "lines of worker stdout/stderr logged per second per worker; past it they are dropped and counted (0: no limit)", PER_POOL},
    {"workerLogBurst", T_INT, OFF(worker_log_burst), 1, 10000000, NULL, "lines a worker may write at once above workerLogRate", PER_POOL},
};

_Static_assert(AP_ARRAY_LEN(settings) <= CONFIG_MAX_SETTINGS, "raise CONFIG_MAX_SETTINGS");

static int ncpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void config_init(config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    int cpus = ncpus();
    cfg->min_workers = cpus;
    cfg->max_workers = 3 * cpus;
    cfg->strategy = LB_ROUND_ROBIN;
    cfg->message_queue_size = 1024;
    cfg->max_retries = 3;
    cfg->retry_delay = 1000;
    cfg->health_check_interval = 30000;
    cfg->dispatch_ack_ms = 2000;
    cfg->restart_on_failure = 1;
    cfg->worker_recycle_interval = 3600000;
    cfg->max_messages_per_worker = 10000;
    cfg->timeout = 30000;
    cfg->max_retry_delay = 30000;
    cfg->dead_letter_max_bytes = 64 * 1024 * 1024;
    cfg->idempotency_ttl = 10 * 60 * 1000;
    cfg->idempotency_cache_bytes = 64 * 1024 * 1024;
    cfg->graceful_timeout = 30000;
    cfg->recycle_jitter = 10;
    cfg->max_concurrent_recycles = 1;
    cfg->restart_strategy = RESTART_ONE_FOR_ONE;
    cfg->max_restarts = 10;
    cfg->restart_window = 60000;
    cfg->history_size = 100;
    cfg->max_missed_beats = 3;
    cfg->hub_blocked_warn_ms = 1000;
    cfg->stream_window_bytes = AP_DEFAULT_STREAM_WINDOW;
    cfg->breaker_window = 60000;
    cfg->breaker_reset_timeout = 30000;
    cfg->scale_up_after = 1000;
    cfg->idle_timeout = 300000;
    cfg->max_tracked_types = 64;
    cfg->max_tracked_keys = 256;
    cfg->alert_available_below = 20;
    cfg->alert_queue_above = 80;
    cfg->alert_error_rate_above = 10;
    cfg->alert_interval = 60000;
    cfg->concurrency = 64;
    cfg->prefetch = 8;
    cfg->prefetch_fast_us = 1000;
    cfg->overflow = OVERFLOW_BLOCK;
    cfg->cancel_sync = CANCEL_SYNC_FINISH;
    cfg->sessions = 0;
    cfg->session_busy = SESSION_BUSY_ENQUEUE;
    cfg->max_sessions = 10000;
    cfg->session_ttl = 24LL * 3600 * 1000;
    cfg->max_session_bytes = 1024 * 1024;
    cfg->session_cache_bytes = 64 * 1024 * 1024;
    cfg->max_checkpoint_bytes = 256 * 1024;
    cfg->max_message_bytes = 4 * 1024 * 1024;
    cfg->max_connections = 4096;
    cfg->admin_reserve_connections = 2;
    cfg->max_inflight_per_connection = 1024;
    cfg->max_pending_bytes = 256 * 1024 * 1024;
    cfg->max_buffered_bytes = 256 * 1024 * 1024;
    cfg->client_write_timeout = 60000;
    cfg->event_history = 10000;
    cfg->event_history_bytes = 16 * 1024 * 1024;
    cfg->subscriber_buffer_bytes = 1024 * 1024;
    cfg->max_subscribers = 64;
    cfg->a2a_task_ttl = 3600000;
    cfg->a2a_max_tasks = 10000;
    cfg->listen_backlog = 1024;
    cfg->shutdown_timeout = 30000;
    cfg->socket = ap_strdup(AP_DEFAULT_SOCKET); /* $AGENTPOOL_SOCKET: config_parse_args's environment pass */
    cfg->socket_mode = 0660;
    cfg->worker_umask = -1;
    cfg->worker_limits.address_space = CONFIG_LIMIT_UNSET;
    cfg->worker_limits.open_files = CONFIG_LIMIT_UNSET;
    cfg->worker_limits.core_size = CONFIG_LIMIT_UNSET;
    cfg->agent = ap_strdup("pyagents.examples.echo:EchoAgent");
    cfg->log_level = ap_strdup("info");
    cfg->http_auth = ap_strdup("keys");
    cfg->http_max_header_bytes = 16 * 1024;
    cfg->http_request_timeout_ms = 10000;
    cfg->http_idle_timeout_ms = 60000;
    cfg->worker_model = ap_strdup("auto");
    cfg->log_format = ap_strdup("text");
    cfg->worker_log_rate = 100;
    cfg->worker_log_burst = 1000;
}

static void free_pathlist(config *cfg)
{
    for (int i = 0; i < cfg->n_python_path; i++)
        ap_free(cfg->python_path[i]);
    cfg->n_python_path = 0;
}

static void list_clear(config_list *l);

void config_free(config *cfg)
{
    for (size_t i = 0; i < AP_ARRAY_LEN(settings); i++) {
        if (settings[i].type == T_STR || settings[i].type == T_BROKER) {
            char **p = (char **)((char *)cfg + settings[i].off);
            ap_free(*p);
            *p = NULL;
        } else if (settings[i].type == T_LIST) {
            list_clear((config_list *)((char *)cfg + settings[i].off));
        }
    }
    free_pathlist(cfg);
    ap_free(cfg->config_file);
    cfg->config_file = NULL;
    cJSON_Delete(cfg->pools_json);
    cfg->pools_json = NULL;
    ap_free(cfg->pools_origin);
    cfg->pools_origin = NULL;
    for (int i = 0; i < cfg->npools; i++) {
        if (cfg->pools[i].cfg != cfg) {
            config_free(cfg->pools[i].cfg);
            ap_free(cfg->pools[i].cfg);
        }
    }
    ap_free(cfg->pools);
    cfg->pools = NULL;
    cfg->npools = 0;
}

void config_moved(config *cfg, const config *from)
{
    for (int i = 0; i < cfg->npools; i++)
        if (cfg->pools[i].cfg == from)
            cfg->pools[i].cfg = cfg;
}

/* Without "pools": one pool, "default", run with the top level itself. */
static void pools_implicit(config *cfg)
{
    if (cfg->npools > 0)
        return;
    cfg->pools = ap_calloc(1, sizeof(config_pool));
    snprintf(cfg->pools[0].name, sizeof(cfg->pools[0].name), "default");
    cfg->pools[0].cfg = cfg;
    cfg->npools = 1;
    cfg->pools_named = 0;
    cfg->default_pool = 0;
}

int64_t config_max_result_bytes(const config *cfg)
{
    return cfg->max_result_bytes ? cfg->max_result_bytes : cfg->max_message_bytes;
}

const char *config_strategy_name(int64_t s)
{
    return s >= 0 && s < 3 ? strategy_names[s] : "?";
}

const char *config_overflow_name(int64_t o)
{
    return o >= 0 && o < 2 ? overflow_names[o] : "?";
}

/* minWorkers -> min-workers, into buf. */
static void flag_name(const char *key, char *buf, size_t cap)
{
    size_t o = 0;
    for (const char *k = key; *k && o + 2 < cap; k++) {
        if (isupper((unsigned char)*k)) {
            buf[o++] = '-';
            buf[o++] = (char)tolower((unsigned char)*k);
        } else {
            buf[o++] = *k;
        }
    }
    buf[o] = '\0';
}

static const setting *find_by_key(const char *key)
{
    for (size_t i = 0; i < AP_ARRAY_LEN(settings); i++)
        if (strcmp(settings[i].key, key) == 0)
            return &settings[i];
    return NULL;
}

static const setting *find_by_flag(const char *flag, size_t len)
{
    char buf[64];
    for (size_t i = 0; i < AP_ARRAY_LEN(settings); i++) {
        flag_name(settings[i].key, buf, sizeof(buf));
        if (strlen(buf) == len && memcmp(buf, flag, len) == 0)
            return &settings[i];
    }
    return NULL;
}

/* Parses a decimal integer with nothing after it. */
static int parse_i64(const char *s, int base, int64_t *out)
{
    char *end;
    errno = 0;
    if (*s == '\0' || isspace((unsigned char)*s))
        return AP_ERR;
    long long v = strtoll(s, &end, base);
    if (errno || *end != '\0')
        return AP_ERR;
    *out = v;
    return AP_OK;
}

static int set_pathlist_from_string(config *cfg, const char *s, int append)
{
    if (!append)
        free_pathlist(cfg);
    const char *p = s;
    while (*p) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        if (n > 0) {
            if (cfg->n_python_path >= CONFIG_MAX_PYTHON_PATH)
                return AP_ERR;
            cfg->python_path[cfg->n_python_path++] = ap_strndup(p, n);
        }
        p += n;
        if (*p == ':')
            p++;
    }
    return AP_OK;
}

/* A one-line, bounded rendering of s for messages: control bytes become
 * \xNN, and anything past cap is cut with "...". */
static const char *printable(const char *s, char *buf, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (; *s && o + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f) {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        } else {
            buf[o++] = (char)c;
        }
    }
    if (*s)
        memcpy(buf + o, "...", 3), o += 3;
    buf[o] = '\0';
    return buf;
}

/* ---- list and workerLimits settings (privs.c and wenv.c read them) ---- */

#define CONFIG_LIST_ITEM_MAX 4096

static void list_clear(config_list *l)
{
    for (int i = 0; i < l->n; i++)
        ap_free(l->items[i]);
    ap_free(l->items);
    l->items = NULL;
    l->n = 0;
    l->set = 0;
}

/* Appends a copy of s[0..len).  AP_ERR with err filled when the entry is
 * empty or too long, or the list is full; the list is unchanged then. */
static int list_add(config_list *l, const char *s, size_t len, const char *origin, const char *key, char *err,
                    size_t errlen)
{
    if (len == 0) {
        snprintf(err, errlen, "%s: %s: an empty entry", origin, key);
        return AP_ERR;
    }
    if (len > CONFIG_LIST_ITEM_MAX) {
        snprintf(err, errlen, "%s: %s: entries must be 1 to %d characters long", origin, key, CONFIG_LIST_ITEM_MAX);
        return AP_ERR;
    }
    if (l->n >= CONFIG_MAX_LIST) {
        snprintf(err, errlen, "%s: %s: more than %d entries", origin, key, CONFIG_MAX_LIST);
        return AP_ERR;
    }
    if (l->items == NULL)
        l->items = ap_calloc(CONFIG_MAX_LIST, sizeof(char *));
    l->items[l->n++] = ap_strndup(s, len);
    return AP_OK;
}

/* "a,b,c" replaces the list; "" sets an empty one (in force). */
static int list_from_text(config_list *l, const char *val, const char *origin, const char *key, char *err,
                          size_t errlen)
{
    list_clear(l);
    l->set = 1;
    for (const char *p = val; *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (list_add(l, p, n, origin, key, err, errlen) != AP_OK)
            return AP_ERR;
        p += n;
        if (*p == ',' && *++p == '\0') {
            snprintf(err, errlen, "%s: %s: empty entry after the last comma", origin, key);
            return AP_ERR;
        }
    }
    return AP_OK;
}

static const struct {
    const char *key;
    size_t off;
    int64_t min;
} rlimit_keys[] = {
    {"addressSpace", offsetof(config_rlimits, address_space), 1 << 20},
    {"openFiles", offsetof(config_rlimits, open_files), 16},
    {"coreSize", offsetof(config_rlimits, core_size), 0},
};

/* One workerLimits member: an integer, "unlimited", or null (unset). */
static int rlimit_set(config_rlimits *r, const char *name, size_t nlen, const char *text, const int64_t *num,
                      const char *origin, char *err, size_t errlen)
{
    for (size_t i = 0; i < AP_ARRAY_LEN(rlimit_keys); i++) {
        if (strlen(rlimit_keys[i].key) != nlen || memcmp(rlimit_keys[i].key, name, nlen) != 0)
            continue;
        int64_t *field = (int64_t *)((char *)r + rlimit_keys[i].off);
        int64_t v;
        if (num) {
            v = *num;
        } else if (text == NULL) {
            *field = CONFIG_LIMIT_UNSET;
            return AP_OK;
        } else if (strcmp(text, "unlimited") == 0) {
            *field = CONFIG_LIMIT_UNLIMITED;
            return AP_OK;
        } else if (parse_i64(text, 10, &v) != AP_OK) {
            char pv[64];
            snprintf(err, errlen, "%s: workerLimits: %s: \"%s\" is not an integer or \"unlimited\"", origin,
                     rlimit_keys[i].key, printable(text, pv, sizeof(pv)));
            return AP_ERR;
        }
        if (v < rlimit_keys[i].min || v > ((int64_t)1 << 62)) {
            snprintf(err, errlen, "%s: workerLimits: %s: %" PRId64 " is out of range (%" PRId64 " to 2^62, or \"unlimited\")",
                     origin, rlimit_keys[i].key, v, rlimit_keys[i].min);
            return AP_ERR;
        }
        *field = v;
        return AP_OK;
    }
    char pn[64];
    snprintf(err, errlen, "%s: workerLimits: unknown limit \"%.*s\" (known: addressSpace, openFiles, coreSize)", origin,
             (int)(nlen < 48 ? nlen : 48), printable(name, pn, sizeof(pn)));
    return AP_ERR;
}

static void rlimits_clear(config_rlimits *r)
{
    r->address_space = r->open_files = r->core_size = CONFIG_LIMIT_UNSET;
}

/* "openFiles=64,coreSize=0" replaces every limit; "" clears them. */
static int rlimits_from_text(config_rlimits *r, const char *val, const char *origin, char *err, size_t errlen)
{
    rlimits_clear(r);
    for (const char *p = val; *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        char value[32];
        if (eq == NULL || (size_t)(p + n - eq - 1) >= sizeof(value)) {
            snprintf(err, errlen, "%s: workerLimits: expected NAME=VALUE pairs separated by commas", origin);
            return AP_ERR;
        }
        memcpy(value, eq + 1, (size_t)(p + n - eq - 1));
        value[p + n - eq - 1] = '\0';
        if (rlimit_set(r, p, (size_t)(eq - p), value, NULL, origin, err, errlen) != AP_OK)
            return AP_ERR;
        p += n;
        if (*p == ',')
            p++;
    }
    return AP_OK;
}

/*
 * Sets one setting from text (a flag's value, or a JSON string).  `is_json`
 * says the text came from a JSON string, which matters only for messages.
 * AP_ERR with err filled when the value is wrong for the setting.
 */
static int apply_text(config *cfg, const setting *st, const char *val, const char *origin,
                      char *err, size_t errlen)
{
    void *field = (char *)cfg + st->off;
    int64_t v;
    char pv[160];
    const char *shown = printable(val, pv, sizeof(pv));
    switch (st->type) {
    case T_INT:
        if (parse_i64(val, 10, &v) != AP_OK) {
            snprintf(err, errlen, "%s: %s: \"%s\" is not an integer", origin, st->key, shown);
            return AP_ERR;
        }
        goto range;
    case T_DURATION: {
        char why[160];
        int bare;
        if (val[0] == '-' && parse_i64(val, 10, &v) == AP_OK)
            goto range; /* a negative number: out of range, said as for integers */
        if (duration_parse(val, &v, &bare, why, sizeof(why)) != AP_OK) {
            snprintf(err, errlen, "%s: %s: \"%s\": %s", origin, st->key, shown, why);
            return AP_ERR;
        }
        cfg->bare_ms[st - settings] = (unsigned char)bare;
        goto range;
    }
    case T_MODE:
        if (parse_i64(val, 8, &v) != AP_OK) {
            snprintf(err, errlen, "%s: %s: \"%s\" is not an octal file mode", origin, st->key, shown);
            return AP_ERR;
        }
        goto range;
    case T_BOOL:
        if (strcmp(val, "true") == 0 || strcmp(val, "1") == 0 || strcmp(val, "yes") == 0)
            *(int *)field = 1;
        else if (strcmp(val, "false") == 0 || strcmp(val, "0") == 0 || strcmp(val, "no") == 0)
            *(int *)field = 0;
        else {
            snprintf(err, errlen, "%s: %s: \"%s\" is not true or false", origin, st->key, shown);
            return AP_ERR;
        }
        return AP_OK;
    case T_ENUM:
        for (int i = 0; st->names[i]; i++) {
            if (strcmp(st->names[i], val) == 0) {
                *(int64_t *)field = i;
                return AP_OK;
            }
        }
        goto badname;
    case T_STR:
        if (st->names) {
            int ok = 0;
            for (int i = 0; st->names[i]; i++)
                ok |= strcmp(st->names[i], val) == 0;
            if (!ok)
                goto badname;
        } else if ((int64_t)strlen(val) < st->min || (int64_t)strlen(val) > st->max) {
            snprintf(err, errlen, "%s: %s: \"%s\" must be %" PRId64 " to %" PRId64 " characters long",
                     origin, st->key, shown, st->min, st->max);
            return AP_ERR;
        }
        ap_free(*(char **)field);
        /* An empty string clears an optional setting (virtualenv ""). */
        *(char **)field = *val ? ap_strdup(val) : NULL;
        return AP_OK;
    case T_LIST:
        return list_from_text(field, val, origin, st->key, err, errlen);
    case T_BROKER: {
        brokercfg bc;
        char why[512];
        if (*val && brokercfg_parse(val, &bc, why, sizeof(why)) != AP_OK) {
            snprintf(err, errlen, "%s: %s", origin, why);
            return AP_ERR;
        }
        ap_free(*(char **)field);
        *(char **)field = *val ? ap_strdup(val) : NULL; /* "": off */
        return AP_OK;
    }
    case T_RLIMITS:
        return rlimits_from_text(field, val, origin, err, errlen);
    case T_PATHLIST:
        if (set_pathlist_from_string(cfg, val, 0) != AP_OK) {
            snprintf(err, errlen, "%s: %s: more than %d directories", origin, st->key, CONFIG_MAX_PYTHON_PATH);
            return AP_ERR;
        }
        return AP_OK;
    }
    return AP_ERR;
range:
    if (v < st->min || v > st->max) {
        if (st->type == T_MODE)
            snprintf(err, errlen, "%s: %s: %s is out of range (0 to 0777)", origin, st->key, shown);
        else if (st->type == T_DURATION)
            snprintf(err, errlen, "%s: %s: %s is out of range (%" PRId64 " to %" PRId64 " ms)", origin, st->key,
                     shown, st->min, st->max);
        else
            snprintf(err, errlen, "%s: %s: %s is out of range (%" PRId64 " to %" PRId64 ")",
                     origin, st->key, shown, st->min, st->max);
        return AP_ERR;
    }
    *(int64_t *)field = v;
    return AP_OK;
badname: {
    char allowed[256] = "";
    for (int i = 0; st->names[i]; i++) {
        strncat(allowed, i ? ", " : "", sizeof(allowed) - strlen(allowed) - 1);
        strncat(allowed, st->names[i], sizeof(allowed) - strlen(allowed) - 1);
    }
    snprintf(err, errlen, "%s: %s: \"%s\" is not one of %s", origin, st->key, shown, allowed);
    return AP_ERR;
}
}

static const char *json_type_name(const cJSON *item)
{
    if (cJSON_IsString(item)) return "a string";
    if (cJSON_IsNumber(item)) return "a number";
    if (cJSON_IsBool(item)) return "a boolean";
    if (cJSON_IsNull(item)) return "null";
    if (cJSON_IsArray(item)) return "an array";
    return "an object";
}

/* The value as it appears in JSON, for messages (one line, bounded). */
static const char *json_shown(const cJSON *item, char *buf, size_t cap)
{
    char *text = cJSON_PrintUnformatted(item);
    printable(text ? text : "?", buf, cap);
    cJSON_free(text);
    return buf;
}

/* Whole numbers that fit in int64_t (checked before any cast). */
static int json_int(const cJSON *item, int64_t *out)
{
    double d = item->valuedouble;
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
        return -1; /* out of range, or not finite */
    if (d != (double)(int64_t)d)
        return 0;  /* not whole */
    *out = (int64_t)d;
    return 1;
}

static int apply_json(config *cfg, const setting *st, const cJSON *item, const char *origin,
                      char *err, size_t errlen)
{
    char num[64], shown[96];
    int64_t v;
    json_shown(item, shown, sizeof(shown));
    switch (st->type) {
    case T_DURATION:
        if (cJSON_IsString(item))
            return apply_text(cfg, st, item->valuestring, origin, err, errlen);
        if (!cJSON_IsNumber(item)) {
            snprintf(err, errlen, "%s: %s: %s is %s, expected milliseconds or a duration such as \"30s\"", origin,
                     st->key, shown, json_type_name(item));
            return AP_ERR;
        }
        /* a number is milliseconds, read as an integer */
        /* fall through */
    case T_INT:
        if (!cJSON_IsNumber(item)) {
            snprintf(err, errlen, "%s: %s: %s is %s, expected an integer", origin, st->key, shown,
                     json_type_name(item));
            return AP_ERR;
        }
        switch (json_int(item, &v)) {
        case -1:
            snprintf(err, errlen, "%s: %s: %s is out of range (%" PRId64 " to %" PRId64 ")", origin, st->key,
                     shown, st->min, st->max);
            return AP_ERR;
        case 0:
            snprintf(err, errlen, "%s: %s: %s is not whole, expected an integer", origin, st->key, shown);
            return AP_ERR;
        }
        snprintf(num, sizeof(num), "%" PRId64, v);
        return apply_text(cfg, st, num, origin, err, errlen);
    case T_MODE:
        if (cJSON_IsString(item))
            return apply_text(cfg, st, item->valuestring, origin, err, errlen);
        if (cJSON_IsNumber(item)) {
            if (json_int(item, &v) != 1 || v < st->min || v > st->max) {
                snprintf(err, errlen, "%s: %s: %s is out of range (0 to 511 as a number; write the mode as a string such as \"0660\")",
                         origin, st->key, shown);
                return AP_ERR;
            }
            *(int64_t *)((char *)cfg + st->off) = v;
            return AP_OK;
        }
        snprintf(err, errlen, "%s: %s: %s is %s, expected an octal string such as \"0660\"", origin, st->key,
                 shown, json_type_name(item));
        return AP_ERR;
    case T_BOOL:
        if (!cJSON_IsBool(item)) {
            snprintf(err, errlen, "%s: %s: %s is %s, expected true or false", origin, st->key, shown,
                     json_type_name(item));
            return AP_ERR;
        }
        *(int *)((char *)cfg + st->off) = cJSON_IsTrue(item);
        return AP_OK;
    case T_PATHLIST:
        if (cJSON_IsString(item))
            return apply_text(cfg, st, item->valuestring, origin, err, errlen);
        if (!cJSON_IsArray(item)) {
            snprintf(err, errlen, "%s: %s: %s is %s, expected an array of directories", origin, st->key, shown,
                     json_type_name(item));
            return AP_ERR;
        }
        free_pathlist(cfg);
        for (const cJSON *e = item->child; e; e = e->next) {
            if (!cJSON_IsString(e) || !*e->valuestring) {
                snprintf(err, errlen, "%s: %s: entry %s must be a non-empty string", origin, st->key,
                         json_shown(e, shown, sizeof(shown)));
                return AP_ERR;
            }
            if (cfg->n_python_path >= CONFIG_MAX_PYTHON_PATH) {
                snprintf(err, errlen, "%s: %s: more than %d directories", origin, st->key, CONFIG_MAX_PYTHON_PATH);
                return AP_ERR;
            }
            cfg->python_path[cfg->n_python_path++] = ap_strdup(e->valuestring);
        }
        return AP_OK;
    case T_LIST: {
        if (cJSON_IsString(item))
            return apply_text(cfg, st, item->valuestring, origin, err, errlen);
        if (!cJSON_IsArray(item)) {
            snprintf(err, errlen, "%s: %s: %s is %s, expected an array", origin, st->key, shown, json_type_name(item));
            return AP_ERR;
        }
        config_list *l = (config_list *)((char *)cfg + st->off);
        list_clear(l);
        l->set = 1;
        for (const cJSON *e = item->child; e; e = e->next) {
            if (cJSON_IsNumber(e) && json_int(e, &v) == 1 && v >= 0 && v <= UINT32_MAX) {
                snprintf(num, sizeof(num), "%" PRId64, v);
            } else if (!cJSON_IsString(e) || strchr(e->valuestring, ',') != NULL) {
                snprintf(err, errlen, "%s: %s: entry %s must be a string without commas or an integer from 0 to %u",
                         origin, st->key, json_shown(e, shown, sizeof(shown)), UINT32_MAX);
                return AP_ERR;
            }
            const char *text = cJSON_IsNumber(e) ? num : e->valuestring;
            if (list_add(l, text, strlen(text), origin, st->key, err, errlen) != AP_OK)
                return AP_ERR;
        }
        return AP_OK;
    }
    case T_BROKER: {
        if (cJSON_IsString(item) || cJSON_IsNull(item))
            return apply_text(cfg, st, cJSON_IsNull(item) ? "" : item->valuestring, origin, err, errlen);
        if (!cJSON_IsObject(item)) {
            snprintf(err, errlen, "%s: %s: %s is %s, expected an object such as {\"url\": \"redis://127.0.0.1:6379/0\"}",
                     origin, st->key, shown, json_type_name(item));
            return AP_ERR;
        }
        char text[BROKERCFG_TEXT_MAX + 1];
        size_t o = 0;
        for (const cJSON *e = item->child; e; e = e->next) {
            const char *val;
            if (cJSON_IsString(e)) {
                val = e->valuestring;
            } else if (cJSON_IsNumber(e) && json_int(e, &v) == 1) {
                snprintf(num, sizeof(num), "%" PRId64, v);
                val = num;
            } else {
                snprintf(err, errlen, "%s: broker: %s: %s is %s, expected a string or a whole number", origin,
                         e->string ? e->string : "", json_shown(e, shown, sizeof(shown)), json_type_name(e));
                return AP_ERR;
            }
            if (strchr(val, ',') || strchr(e->string ? e->string : "", ',') ||
                o + strlen(e->string ? e->string : "") + strlen(val) + 3 > sizeof(text)) {
                snprintf(err, errlen, "%s: broker: %s: a value with a comma, or the whole too long", origin,
                         e->string ? e->string : "");
                return AP_ERR;
            }
            o += (size_t)snprintf(text + o, sizeof(text) - o, "%s%s=%s", o ? "," : "", e->string ? e->string : "", val);
        }
        text[o] = '\0';
        return apply_text(cfg, st, text, origin, err, errlen);
    }
    case T_RLIMITS: {
        if (cJSON_IsString(item))
            return apply_text(cfg, st, item->valuestring, origin, err, errlen);
        if (!cJSON_IsObject(item)) {
            snprintf(err, errlen, "%s: %s: %s is %s, expected an object such as {\"openFiles\": 1024}", origin,
                     st->key, shown, json_type_name(item));
            return AP_ERR;
        }
        config_rlimits *r = (config_rlimits *)((char *)cfg + st->off);
        rlimits_clear(r);
        for (const cJSON *e = item->child; e; e = e->next) {
            const char *name = e->string ? e->string : "";
            int rc;
            if (cJSON_IsNumber(e)) {
                if (json_int(e, &v) != 1) {
                    snprintf(err, errlen, "%s: workerLimits: %s: %s is not a whole number", origin, name,
                             json_shown(e, shown, sizeof(shown)));
                    return AP_ERR;
                }
                rc = rlimit_set(r, name, strlen(name), NULL, &v, origin, err, errlen);
            } else if (cJSON_IsString(e) || cJSON_IsNull(e)) {
                rc = rlimit_set(r, name, strlen(name), cJSON_IsNull(e) ? NULL : e->valuestring, NULL, origin, err,
                                errlen);
            } else {
                snprintf(err, errlen, "%s: workerLimits: %s: %s is %s, expected an integer or \"unlimited\"", origin,
                         name, json_shown(e, shown, sizeof(shown)), json_type_name(e));
                return AP_ERR;
            }
            if (rc != AP_OK)
                return AP_ERR;
        }
        return AP_OK;
    }
    case T_ENUM:
    case T_STR:
        if (!cJSON_IsString(item)) {
            snprintf(err, errlen, "%s: %s: %s is %s, expected a string", origin, st->key, shown,
                     json_type_name(item));
            return AP_ERR;
        }
        return apply_text(cfg, st, item->valuestring, origin, err, errlen);
    }
    return AP_ERR;
}

/*
 * Applies every key of a JSON object over cfg, each through apply_json,
 * recording `src` as its origin: the top level of the file, or one
 * pool's object (its keys checked by pools_check first).  AP_ERR with
 * err filled on the first bad key or value.
 */
static int apply_object(config *cfg, const cJSON *obj, const char *origin, config_source src, char *err,
                        size_t errlen)
{
    for (const cJSON *item = obj->child; item; item = item->next) {
        const setting *st = find_by_key(item->string);
        if (st == NULL) {
            char pk[96];
            snprintf(err, errlen, "%s: unknown setting \"%s\"", origin, printable(item->string, pk, sizeof(pk)));
            return AP_ERR;
        }
        if (apply_json(cfg, st, item, origin, err, errlen) != AP_OK)
            return AP_ERR;
        cfg->source[st - settings] = (unsigned char)src;
        if (st->off == OFF(max_workers))
            cfg->max_workers_set = 1;
    }
    return AP_OK;
}

/* A pool name is 1 to CONFIG_POOL_NAME_MAX of [a-z0-9_-]. */
static int pool_name_ok(const char *name)
{
    size_t n = strlen(name);
    return n >= 1 && n <= CONFIG_POOL_NAME_MAX && strspn(name, CONFIG_POOL_NAME_CHARS) == n;
}

/*
 * The shape of "pools", before anything is applied: an object of 1 to
 * CONFIG_MAX_POOLS objects, names valid and distinct (cJSON keeps
 * duplicate keys), each key inside a pool a known setting that is not
 * one of the whole server's.  AP_ERR with one line naming the pool and
 * the key.
 */
static int pools_check(const cJSON *pools, const char *origin, char *err, size_t errlen)
{
    char pv[96], pk[96];
    if (!cJSON_IsObject(pools)) {
        snprintf(err, errlen, "%s: pools: %s is %s, expected an object of pools such as {\"writer\": {...}}", origin,
                 json_shown(pools, pv, sizeof(pv)), json_type_name(pools));
        return AP_ERR;
    }
    if (pools->child == NULL) {
        snprintf(err, errlen, "%s: pools: empty; name at least one pool, or leave \"pools\" out for one pool", origin);
        return AP_ERR;
    }
    int n = 0;
    for (const cJSON *p = pools->child; p; p = p->next) {
        printable(p->string, pv, sizeof(pv));
        if (++n > CONFIG_MAX_POOLS) {
            snprintf(err, errlen, "%s: pools: more than %d pools", origin, CONFIG_MAX_POOLS);
            return AP_ERR;
        }
        if (!pool_name_ok(p->string)) {
            snprintf(err, errlen, "%s: pools: \"%s\" is not a pool name (1 to %d of a-z, 0-9, _ and -)", origin, pv,
                     CONFIG_POOL_NAME_MAX);
            return AP_ERR;
        }
        for (const cJSON *q = pools->child; q != p; q = q->next) {
            if (strcmp(q->string, p->string) == 0) {
                snprintf(err, errlen, "%s: pools: \"%s\" is given twice", origin, pv);
                return AP_ERR;
            }
        }
        if (!cJSON_IsObject(p)) {
            snprintf(err, errlen, "%s: pool \"%s\": %s is %s, expected an object of settings", origin, pv,
                     json_shown(p, pk, sizeof(pk)), json_type_name(p));
            return AP_ERR;
        }
        for (const cJSON *item = p->child; item; item = item->next) {
            const setting *st = find_by_key(item->string);
            printable(item->string, pk, sizeof(pk));
            if (st == NULL) {
                snprintf(err, errlen, "%s: pool \"%s\": unknown setting \"%s\"", origin, pv, pk);
                return AP_ERR;
            }
            if (st->flags & SERVER) {
                snprintf(err, errlen, "%s: pool \"%s\": %s is a setting of the whole server; set it at the top level",
                         origin, pv, pk);
                return AP_ERR;
            }
        }
    }
    return AP_OK;
}

/* "ORIGIN: line L, column C: why", the position in jt's minified text
 * mapped back to the text as written. */
static void json_error_at(const jsontext *jt, size_t min_off, const char *origin, const char *why, char *err,
                          size_t errlen)
{
    unsigned line, col;
    jsontext_line_col(jt->orig, jsontext_stop_offset(jt, min_off), &line, &col);
    snprintf(err, errlen, "%s: line %u, column %u: %s", origin, line, col, why);
}

int config_load_json(config *cfg, const char *text, size_t len, const char *origin, char *err,
                     size_t errlen)
{
    jsontext jt;
    char why[256];
    if (jsontext_open(&jt, text, len, why, sizeof(why)) != AP_OK) {
        snprintf(err, errlen, "%s: %s", origin, why);
        return AP_ERR;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(jt.min, jt.minlen, &end, 0);
    int rc = AP_OK;
    if (root == NULL) {
        size_t pos = end && end >= jt.min ? (size_t)(end - jt.min) : 0;
        json_error_at(&jt, pos, origin, "not valid JSON", err, errlen);
        rc = AP_ERR;
        goto out;
    }
    if (end && end < jt.min + jt.minlen) {
        json_error_at(&jt, (size_t)(end - jt.min), origin, "unexpected text after the JSON object", err, errlen);
        rc = AP_ERR;
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "%s: the config must be a JSON object", origin);
        rc = AP_ERR;
        goto out;
    }
    cJSON *pools = cJSON_DetachItemFromObjectCaseSensitive(root, "pools");
    if (pools && cJSON_GetObjectItemCaseSensitive(root, "pools")) {
        snprintf(err, errlen, "%s: \"pools\" is given twice", origin);
        cJSON_Delete(pools);
        rc = AP_ERR;
        goto out;
    }
    if (pools && pools_check(pools, origin, err, errlen) != AP_OK) {
        cJSON_Delete(pools);
        rc = AP_ERR;
        goto out;
    }
    if (apply_object(cfg, root, origin, CONFIG_SRC_FILE, err, errlen) != AP_OK) {
        cJSON_Delete(pools);
        rc = AP_ERR;
        goto out;
    }
    if (pools) {
        cJSON_Delete(cfg->pools_json);
        ap_free(cfg->pools_origin);
        cfg->pools_json = pools;
        cfg->pools_origin = ap_strdup(origin);
    }
out:
    cJSON_Delete(root);
    jsontext_close(&jt);
    return rc;
}

static int load_file(config *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open config file: %s", path, strerror(errno));
        return AP_ERR;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = ap_malloc(cap);
    for (;;) {
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
        if (len == cap) {
            if (cap >= (1u << 24)) {
                snprintf(err, errlen, "%s: config file larger than 16 MiB", path);
                fclose(f);
                ap_free(buf);
                return AP_ERR;
            }
            cap *= 2;
            buf = ap_realloc(buf, cap);
        }
    }
    int rc = AP_OK;
    if (ferror(f)) {
        snprintf(err, errlen, "%s: cannot read config file: %s", path, strerror(errno));
        rc = AP_ERR;
    }
    fclose(f);
    if (rc == AP_OK)
        rc = config_load_json(cfg, buf, len, path, err, errlen);
    ap_free(buf);
    if (rc == AP_OK) {
        ap_free(cfg->config_file);
        cfg->config_file = ap_strdup(path);
    }
    return rc;
}

/* ---- named pools: built from "pools" after the top level is complete ---- */

static void source_text(const config *cfg, size_t i, const char *pool, char *buf, size_t cap);

int config_is_server_wide(const char *key)
{
    const setting *st = find_by_key(key);
    return st != NULL && (st->flags & SERVER) != 0;
}

/* Copies every setting of src over dst (config_init'ed): strings
 * duplicated, lists and pythonPath copied, with their sources. */
static void copy_settings(config *dst, const config *src)
{
    for (size_t i = 0; i < AP_ARRAY_LEN(settings); i++) {
        const setting *st = &settings[i];
        const void *from = (const char *)src + st->off;
        void *to = (char *)dst + st->off;
        switch (st->type) {
        case T_INT:
        case T_DURATION:
        case T_MODE:
        case T_ENUM: *(int64_t *)to = *(const int64_t *)from; break;
        case T_BOOL: *(int *)to = *(const int *)from; break;
        case T_RLIMITS: *(config_rlimits *)to = *(const config_rlimits *)from; break;
        case T_STR:
        case T_BROKER:
            ap_free(*(char **)to);
            *(char **)to = *(char *const *)from ? ap_strdup(*(char *const *)from) : NULL;
            break;
        case T_LIST: {
            const config_list *l = from;
            config_list *d = to;
            list_clear(d);
            for (int k = 0; k < l->n; k++)
                (void)list_add(d, l->items[k], strlen(l->items[k]), "", "", NULL, 0); /* valid: it was added once */
            d->set = l->set;
            break;
        }
        case T_PATHLIST:
            free_pathlist(dst);
            for (int k = 0; k < src->n_python_path; k++)
                dst->python_path[k] = ap_strdup(src->python_path[k]);
            dst->n_python_path = src->n_python_path;
            break;
        }
        dst->source[i] = src->source[i];
        dst->bare_ms[i] = src->bare_ms[i];
    }
    dst->max_workers_set = src->max_workers_set;
}

/* Frees n pool configs of pools, and pools. */
static void pools_free(config_pool *pools, int n)
{
    for (int i = 0; i < n; i++) {
        if (pools[i].cfg) {
            config_free(pools[i].cfg);
            ap_free(pools[i].cfg);
        }
    }
    ap_free(pools);
}

/* Two pools may not write one dead-letter file: an explicit one equal to
 * another's, or to the SOCKET.POOL.deadletter.jsonl another derives. */
static int pools_check_dead_letters(const config *cfg, const config_pool *pools, int n, const char *origin,
                                    char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        const char *mine = pools[i].cfg->dead_letter_file;
        for (int j = 0; mine && j < n; j++) {
            char derived[4200];
            const char *theirs = pools[j].cfg->dead_letter_file;
            if (j == i)
                continue;
            if (theirs == NULL) {
                snprintf(derived, sizeof(derived), "%s.%s.deadletter.jsonl", cfg->socket, pools[j].name);
                theirs = derived;
            }
            if (strcmp(mine, theirs) == 0) {
                char pv[160];
                snprintf(err, errlen, "%s: pools \"%s\" and \"%s\" both write the dead-letter file \"%s\"", origin,
                         pools[j < i ? j : i].name, pools[j < i ? i : j].name, printable(mine, pv, sizeof(pv)));
                return AP_ERR;
            }
        }
    }
    return AP_OK;
}

/* "a, b, c": the pool names, for messages. */
static void pools_names(const config_pool *pools, int n, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        strncat(buf, i ? ", " : "", cap - strlen(buf) - 1);
        strncat(buf, pools[i].name, cap - strlen(buf) - 1);
    }
}

int config_pools_build(config *cfg, char *err, size_t errlen)
{
    char pv[96], names[CONFIG_MAX_POOLS * (CONFIG_POOL_NAME_MAX + 2) + 1];
    const char *origin = cfg->config_file ? cfg->config_file : cfg->pools_origin ? cfg->pools_origin : "command line";
    if (cfg->npools > 0)
        return AP_OK;
    if (cfg->pools_json == NULL) {
        if (cfg->default_pool_name && strcmp(cfg->default_pool_name, "default") != 0) {
            snprintf(err, errlen, "%s: defaultPool: \"%s\" is not a pool: without \"pools\" the only pool is \"default\"",
                     origin, printable(cfg->default_pool_name, pv, sizeof(pv)));
            return AP_ERR;
        }
        pools_implicit(cfg);
        return AP_OK;
    }
    if (cfg->dead_letter_file) {
        char src[4200];
        source_text(cfg, (size_t)(find_by_key("deadLetterFile") - settings), NULL, src, sizeof(src));
        snprintf(err, errlen,
                 "%s: deadLetterFile: set at the top level (%s), but with \"pools\" each pool has its own: set it "
                 "inside each pool that needs another file than SOCKET.POOL.deadletter.jsonl",
                 origin, src);
        return AP_ERR;
    }
    int n = cJSON_GetArraySize(cfg->pools_json), i = 0, def = 0;
    config_pool *pools = ap_calloc((size_t)n, sizeof(config_pool));
    for (const cJSON *p = cfg->pools_json->child; p; p = p->next, i++) {
        char porigin[4200];
        config *pc = ap_calloc(1, sizeof(config));
        config_init(pc);
        int64_t default_max = pc->max_workers;
        pools[i].cfg = pc;
        snprintf(pools[i].name, sizeof(pools[i].name), "%s", p->string); /* pools_check: it fits */
        copy_settings(pc, cfg);
        pc->config_file = ap_strdup(origin);
        snprintf(porigin, sizeof(porigin), "%s: pool \"%s\"", origin, pools[i].name);
        if (apply_object(pc, p, porigin, CONFIG_SRC_POOL, err, errlen) != AP_OK)
            goto fail;
        /* maxWorkers set nowhere follows this pool's minWorkers, not the top level's */
        if (!pc->max_workers_set)
            pc->max_workers = pc->min_workers > default_max ? pc->min_workers : default_max;
    }
    if (pools_check_dead_letters(cfg, pools, n, origin, err, errlen) != AP_OK)
        goto fail;
    if (cfg->default_pool_name) {
        for (def = 0; def < n && strcmp(pools[def].name, cfg->default_pool_name) != 0; def++)
            ;
        if (def == n) {
            pools_names(pools, n, names, sizeof(names));
            snprintf(err, errlen, "%s: defaultPool: \"%s\" is not a pool (pools: %s)", origin,
                     printable(cfg->default_pool_name, pv, sizeof(pv)), names);
            goto fail;
        }
    }
    cfg->pools = pools;
    cfg->npools = n;
    cfg->pools_named = 1;
    cfg->default_pool = def;
    cJSON_Delete(cfg->pools_json); /* every pool config holds what it said */
    cfg->pools_json = NULL;
    return AP_OK;
fail:
    pools_free(pools, n);
    return AP_ERR;
}

int config_parse_listen(const char *spec, config_listen_addr *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (strncmp(spec, "unix:", 5) == 0) {
        const char *path = spec + 5;
        if (path[0] != '/' || strlen(path) >= sizeof(out->path)) {
            char pv[160];
            snprintf(err, errlen, "\"%s\": a unix: address needs an absolute path shorter than %zu bytes",
                     printable(spec, pv, sizeof(pv)), sizeof(out->path));
            return AP_ERR;
        }
        out->family = AF_UNIX;
        memcpy(out->path, path, strlen(path) + 1);
        out->loopback = 1;
        return AP_OK;
    }
    char host[64], shown[96];
    const char *port;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (close == NULL || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof(host))
            goto bad;
        memcpy(host, spec + 1, (size_t)(close - spec - 1));
        host[close - spec - 1] = '\0';
        port = close + 2;
        if (inet_pton(AF_INET6, host, out->addr) != 1)
            goto bad;
        out->family = AF_INET6;
        static const unsigned char lo6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        out->loopback = memcmp(out->addr, lo6, 16) == 0;
    } else {
        const char *colon = strrchr(spec, ':');
        if (colon == NULL || (size_t)(colon - spec) >= sizeof(host))
            goto bad;
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
        port = colon + 1;
        if (inet_pton(AF_INET, host, out->addr) != 1)
            goto bad;
        out->family = AF_INET;
        out->loopback = out->addr[0] == 127;
    }
    int64_t p;
    if (!isdigit((unsigned char)port[0]) || parse_i64(port, 10, &p) != AP_OK || p < 0 || p > 65535)
        goto bad;
    out->port = (uint16_t)p;
    return AP_OK;
bad:
    snprintf(err, errlen, "\"%s\" is not unix:/path, IPV4:PORT or [IPV6]:PORT (numeric, port 0 to 65535)",
             printable(spec, shown, sizeof(shown)));
    return AP_ERR;
}

/* The rules between one config's settings (the top level's or a pool's). */
static int validate_one(const config *cfg, char *err, size_t errlen)
{
    const char *origin = cfg->config_file ? cfg->config_file : "command line";
    if (cfg->max_workers < cfg->min_workers) {
        snprintf(err, errlen, "%s: maxWorkers (%" PRId64 ") is below minWorkers (%" PRId64 ")", origin,
                 cfg->max_workers, cfg->min_workers);
        return AP_ERR;
    }
    if (strchr(cfg->agent, ':') == NULL || cfg->agent[0] == ':' || cfg->agent[strlen(cfg->agent) - 1] == ':') {
        snprintf(err, errlen, "%s: agent: \"%s\" must be module:Attribute", origin, cfg->agent);
        return AP_ERR;
    }
    if (cfg->max_result_bytes != 0 && cfg->max_result_bytes < CONFIG_MIN_RESULT_BYTES) {
        snprintf(err, errlen, "%s: maxResultBytes (%" PRId64 ") is below %d (0: as maxMessageBytes)", origin,
                 cfg->max_result_bytes, CONFIG_MIN_RESULT_BYTES);
        return AP_ERR;
    }
    if (cfg->max_pending_bytes < cfg->max_message_bytes) {
        snprintf(err, errlen, "%s: maxPendingBytes (%" PRId64 ") is below maxMessageBytes (%" PRId64 ")",
                 origin, cfg->max_pending_bytes, cfg->max_message_bytes);
        return AP_ERR;
    }
    if (cfg->group && !cfg->user) {
        snprintf(err, errlen, "%s: group: \"%s\" needs user (the group is what root drops to with it)", origin,
                 cfg->group);
        return AP_ERR;
    }
    if (cfg->worker_group && !cfg->worker_user) {
        snprintf(err, errlen, "%s: workerGroup: \"%s\" needs workerUser (the group is what the workers switch to with it)",
                 origin, cfg->worker_group);
        return AP_ERR;
    }
    for (int i = 0; i < cfg->env.n; i++) {
        const char *e = cfg->env.items[i];
        size_t k = 0;
        while (e[k] == '_' || isalpha((unsigned char)e[k]) || (k > 0 && isdigit((unsigned char)e[k])))
            k++;
        if (k == 0 || (e[k] != '\0' && e[k] != '=')) {
            char pv[96];
            snprintf(err, errlen, "%s: env: \"%s\" is not NAME or NAME=VALUE (NAME: letters, digits, _)", origin,
                     printable(e, pv, sizeof(pv)));
            return AP_ERR;
        }
    }
    for (int i = 0; i < cfg->http_listen.n; i++) {
        config_listen_addr la;
        char why[256];
        if (config_parse_listen(cfg->http_listen.items[i], &la, why, sizeof(why)) != AP_OK) {
            snprintf(err, errlen, "%s: httpListen: %s", origin, why);
            return AP_ERR;
        }
    }
    if (cfg->metrics_listen) {
        config_listen_addr la;
        char why[256];
        if (config_parse_listen(cfg->metrics_listen, &la, why, sizeof(why)) != AP_OK) {
            snprintf(err, errlen, "%s: metricsListen: %s", origin, why);
            return AP_ERR;
        }
        if (!la.loopback && !cfg->metrics_allow_remote) {
            snprintf(err, errlen,
                     "%s: metricsListen: %s is not a loopback address; set metricsAllowRemote to true to serve "
                     "metrics to other machines",
                     origin, cfg->metrics_listen);
            return AP_ERR;
        }
    }
    return AP_OK;
}

int config_validate(const config *cfg, char *err, size_t errlen)
{
    if (validate_one(cfg, err, errlen) != AP_OK)
        return AP_ERR;
    for (int i = 0; i < cfg->npools; i++) {
        char why[512];
        if (cfg->pools[i].cfg == cfg || validate_one(cfg->pools[i].cfg, why, sizeof(why)) == AP_OK)
            continue;
        snprintf(err, errlen, "pool \"%s\": %s", cfg->pools[i].name, why);
        return AP_ERR;
    }
    return AP_OK;
}

/* Flags that are not settings. */
static int is_flag(const char *arg, const char *name)
{
    return strcmp(arg, name) == 0;
}

void config_env_name(const char *key, char *buf, size_t cap)
{
    size_t o = 0;
    const char *prefix = "AGENTPOOL_";
    for (const char *p = prefix; *p && o + 1 < cap; p++)
        buf[o++] = *p;
    for (const char *k = key; *k && o + 1 < cap; k++) {
        if (isupper((unsigned char)*k) && k != key) {
            if (o + 2 >= cap)
                break;
            buf[o++] = '_';
        }
        buf[o++] = (char)toupper((unsigned char)*k);
    }
    if (cap)
        buf[o] = '\0';
}

/* The environment pass: every setting whose AGENTPOOL_ variable is set
 * and not empty, over the file.  AP_ERR naming the variable on a bad
 * value. */
static int apply_environment(config *cfg, int *max_workers_set, char *err, size_t errlen)
{
    for (size_t i = 0; i < AP_ARRAY_LEN(settings); i++) {
        char name[96], origin[112];
        config_env_name(settings[i].key, name, sizeof(name));
        const char *val = getenv(name);
        if (val == NULL || *val == '\0')
            continue;
        snprintf(origin, sizeof(origin), "environment %s", name);
        if (apply_text(cfg, &settings[i], val, origin, err, errlen) != AP_OK)
            return AP_ERR;
        cfg->source[i] = CONFIG_SRC_ENV;
        if (settings[i].off == OFF(max_workers))
            *max_workers_set = 1;
    }
    return AP_OK;
}

int config_parse_args(config *cfg, int argc, char **argv, config_action *action, char *err,
                      size_t errlen)
{
    *action = CONFIG_RUN;
    /* --help and --version answer whatever else is wrong. */
    for (int i = 1; i < argc; i++) {
        if (is_flag(argv[i], "--help") || is_flag(argv[i], "-h")) {
            *action = CONFIG_HELP;
            return AP_OK;
        }
        if (is_flag(argv[i], "--version") || is_flag(argv[i], "-V")) {
            *action = CONFIG_VERSION;
            return AP_OK;
        }
    }
    /* Pass 1: the config file, so flags apply over it. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (is_flag(a, "--config") || is_flag(a, "-c")) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "%s needs a file name", a);
                return AP_ERR;
            }
            if (load_file(cfg, argv[++i], err, errlen) != AP_OK)
                return AP_ERR;
        } else if (strncmp(a, "--config=", 9) == 0) {
            if (load_file(cfg, a + 9, err, errlen) != AP_OK)
                return AP_ERR;
        }
    }
    int path_from_flags = 0, max_workers_set = cfg->max_workers_set, check = 0;
    /* Pass 2: the environment, over the file. */
    if (apply_environment(cfg, &max_workers_set, err, errlen) != AP_OK)
        return AP_ERR;
    /* Pass 3: the flags, over both. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (is_flag(a, "--config") || is_flag(a, "-c")) {
            i++;
            continue;
        }
        if (strncmp(a, "--config=", 9) == 0)
            continue;
        if (is_flag(a, "--help") || is_flag(a, "-h")) {
            *action = CONFIG_HELP;
            return AP_OK;
        }
        if (is_flag(a, "--version") || is_flag(a, "-V")) {
            *action = CONFIG_VERSION;
            return AP_OK;
        }
        if (is_flag(a, "--check-config")) {
            check = 1;
            continue;
        }
        if (is_flag(a, "--print-config")) {
            cfg->print_config = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument \"%s\" (see --help)", a);
            return AP_ERR;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        int negated = 0;
        const setting *st = find_by_flag(name, nlen);
        if (st == NULL && nlen > 3 && strncmp(name, "no-", 3) == 0) {
            st = find_by_flag(name + 3, nlen - 3);
            negated = st && st->type == T_BOOL;
            if (!negated)
                st = NULL;
        }
        if (st == NULL) {
            snprintf(err, errlen, "unknown option \"%.*s\" (see --help)", (int)(nlen + 2), a);
            return AP_ERR;
        }
        const char *val;
        if (negated && eq) {
            snprintf(err, errlen, "option --%.*s takes no value", (int)nlen, name);
            return AP_ERR;
        }
        if (st->type == T_BOOL && !eq) {
            val = negated ? "false" : "true";
        } else if (eq) {
            val = eq + 1;
        } else {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "option --%.*s needs a value", (int)nlen, name);
                return AP_ERR;
            }
            val = argv[++i];
        }
        if (st->type == T_PATHLIST) {
            /* Repeated --python-path flags add up; the first replaces the file's list. */
            if (set_pathlist_from_string(cfg, val, path_from_flags) != AP_OK) {
                snprintf(err, errlen, "command line: pythonPath: more than %d directories", CONFIG_MAX_PYTHON_PATH);
                return AP_ERR;
            }
            path_from_flags = 1;
            cfg->source[st - settings] = CONFIG_SRC_FLAG;
            continue;
        }
        if (apply_text(cfg, st, val, "command line", err, errlen) != AP_OK)
            return AP_ERR;
        cfg->source[st - settings] = CONFIG_SRC_FLAG;
        if (st->off == OFF(max_workers))
            max_workers_set = 1;
    }
    /* maxWorkers left at its default follows a larger minWorkers. */
    cfg->max_workers_set = max_workers_set;
    if (!max_workers_set && cfg->max_workers < cfg->min_workers)
        cfg->max_workers = cfg->min_workers;
    if (check)
        *action = CONFIG_CHECK;
    else if (cfg->print_config)
        *action = CONFIG_PRINT;
    /* The pools inherit the top level as the file, environment and flags left it. */
    if (config_pools_build(cfg, err, errlen) != AP_OK)
        return AP_ERR;
    return config_validate(cfg, err, errlen);
}

/* A setting's value as text: as --help shows a default (help: durations
 * in bare milliseconds) or as --print-config shows it (durations with
 * their largest exact unit, lists in full). */
static void value_text(const setting *st, const config *cfg, int help, char *buf, size_t cap)
{
    const void *field = (const char *)cfg + st->off;
    buf[0] = '\0';
    switch (st->type) {
    case T_INT: snprintf(buf, cap, "%" PRId64, *(const int64_t *)field); break;
    case T_DURATION:
        if (help)
            snprintf(buf, cap, "%" PRId64, *(const int64_t *)field);
        else
            duration_format(*(const int64_t *)field, buf, cap);
        break;
    case T_MODE:
        if (*(const int64_t *)field < 0)
            snprintf(buf, cap, "(inherited)");
        else
            snprintf(buf, cap, "0%" PRIo64, (uint64_t) * (const int64_t *)field);
        break;
    case T_LIST: {
        const config_list *l = field;
        if (help || !l->set) {
            snprintf(buf, cap, "(not set)");
            break;
        }
        for (int i = 0; i < l->n; i++) {
            strncat(buf, i ? "," : "", cap - strlen(buf) - 1);
            strncat(buf, l->items[i], cap - strlen(buf) - 1);
        }
        if (l->n == 0)
            snprintf(buf, cap, "(empty)");
        break;
    }
    case T_RLIMITS: {
        const config_rlimits *r = field;
        for (size_t i = 0; !help && i < AP_ARRAY_LEN(rlimit_keys); i++) {
            int64_t v = *(const int64_t *)((const char *)r + rlimit_keys[i].off);
            if (v == CONFIG_LIMIT_UNSET)
                continue;
            size_t o = strlen(buf);
            if (v == CONFIG_LIMIT_UNLIMITED)
                snprintf(buf + o, cap - o, "%s%s=unlimited", o ? "," : "", rlimit_keys[i].key);
            else
                snprintf(buf + o, cap - o, "%s%s=%" PRId64, o ? "," : "", rlimit_keys[i].key, v);
        }
        if (!buf[0])
            snprintf(buf, cap, "(inherited)");
        break;
    }
    case T_BOOL: snprintf(buf, cap, "%s", *(const int *)field ? "true" : "false"); break;
    case T_ENUM: snprintf(buf, cap, "%s", st->names[*(const int64_t *)field]); break;
    case T_STR:
    case T_BROKER: snprintf(buf, cap, "%s", *(char *const *)field ? *(char *const *)field : "(none)"); break;
    case T_PATHLIST:
        for (int i = 0; !help && i < cfg->n_python_path; i++) {
            strncat(buf, i ? ":" : "", cap - strlen(buf) - 1);
            strncat(buf, cfg->python_path[i], cap - strlen(buf) - 1);
        }
        if (!buf[0])
            snprintf(buf, cap, "(none; agentpool's own package is found by itself)");
        break;
    }
}

/* "default", "file PATH", "environment NAME", "flag --NAME" or, in the
 * config of the pool named pool, "pool NAME in PATH". */
static void source_text(const config *cfg, size_t i, const char *pool, char *buf, size_t cap)
{
    char name[96];
    switch ((config_source)cfg->source[i]) {
    case CONFIG_SRC_POOL:
        snprintf(buf, cap, "pool %s in %s", pool ? pool : "?", cfg->config_file ? cfg->config_file : "?");
        return;
    case CONFIG_SRC_FILE:
        snprintf(buf, cap, "file %s", cfg->config_file ? cfg->config_file : cfg->pools_origin ? cfg->pools_origin : "?");
        return;
    case CONFIG_SRC_ENV:
        config_env_name(settings[i].key, name, sizeof(name));
        snprintf(buf, cap, "environment %s", name);
        return;
    case CONFIG_SRC_FLAG:
        flag_name(settings[i].key, name, sizeof(name));
        snprintf(buf, cap, "flag --%s", name);
        return;
    case CONFIG_SRC_DEFAULT:
        break;
    }
    snprintf(buf, cap, "default");
}

/* One --print-config line: "INDENTkey value (source)". */
static void print_setting(const config *cfg, size_t i, const char *pool, const char *indent, FILE *f)
{
    char val[4096], src[4200], shown[4096];
    value_text(&settings[i], cfg, 0, val, sizeof(val));
    source_text(cfg, i, pool, src, sizeof(src));
    fprintf(f, "%s%s %s (%s)\n", indent, settings[i].key, printable(val, shown, sizeof(shown)), src);
}

void config_print(const config *cfg, void *file)
{
    FILE *f = file;
    for (size_t i = 0; i < AP_ARRAY_LEN(settings); i++)
        if (!cfg->pools_named || (settings[i].flags & SERVER))
            print_setting(cfg, i, NULL, "", f);
    for (int p = 0; cfg->pools_named && p < cfg->npools; p++) {
        fprintf(f, "pool %s:\n", cfg->pools[p].name);
        for (size_t i = 0; i < AP_ARRAY_LEN(settings); i++)
            if (!(settings[i].flags & SERVER))
                print_setting(cfg->pools[p].cfg, i, cfg->pools[p].name, "  ", f);
    }
}

/* A duration whose key names a timeout: the ones where "30" most likely
 * meant seconds. */
static int timeout_like(const setting *st)
{
    return st->type == T_DURATION && (strcmp(st->key, "timeout") == 0 || strstr(st->key, "Timeout") != NULL);
}

/* The warning for setting i of cfg (pool: the pool it belongs to), if it
 * needs one.  1 when written. */
static int warn_setting(const config *cfg, size_t i, const char *pool, FILE *f)
{
    const setting *st = &settings[i];
    if (!timeout_like(st) || cfg->source[i] == CONFIG_SRC_DEFAULT || !cfg->bare_ms[i])
        return 0;
    int64_t v = *(const int64_t *)((const char *)cfg + st->off); /* a duration: an int64_t field */
    if (v < 1 || v >= 1000)
        return 0;
    char src[4200];
    source_text(cfg, i, pool, src, sizeof(src));
    fprintf(f, "agentpoold: warning: %s: %s: %" PRId64 " is %" PRId64 " milliseconds; if seconds were meant, write \"%" PRId64
               "s\"\n", src, st->key, v, v, v);
    return 1;
}

int config_print_warnings(const config *cfg, void *file)
{
    FILE *f = file;
    int n = 0;
    for (size_t i = 0; i < AP_ARRAY_LEN(settings); i++)
        n += warn_setting(cfg, i, NULL, f);
    /* a pool's own values; what it inherits was warned about above */
    for (int p = 0; cfg->pools_named && p < cfg->npools; p++)
        for (size_t i = 0; i < AP_ARRAY_LEN(settings); i++)
            if (cfg->pools[p].cfg->source[i] == CONFIG_SRC_POOL)
                n += warn_setting(cfg->pools[p].cfg, i, cfg->pools[p].name, f);
    return n;
}

void config_print_help(const char *prog, void *file)
{
    FILE *f = file;
    config def;
    config_init(&def);
    fprintf(f,
            "Usage: %s [--config FILE] [OPTIONS]\n"
            "agentpoold: a pre-forked pool of Python agent workers behind a Unix socket.\n\n"
            "  -c, --config FILE     JSON config file; flags below override it\n"
            "      --check-config    validate the configuration, check the socket's directory and that\n"
            "                        the agent imports in a throwaway worker, and exit (non-zero on failure)\n"
            "      --print-config    print every setting's value and where it came from (default, file,\n"
            "                        environment, flag, pool) and exit; with --check-config, then check\n"
            "  -h, --help            this text\n"
            "  -V, --version         print the version and exit\n\n"
            "Settings (JSON key in brackets; --no-FLAG turns a boolean off; each one also reads\n"
            "AGENTPOOL_<KEY IN UPPER_SNAKE> from the environment, e.g. maxWorkers: AGENTPOOL_MAX_WORKERS;\n"
            "precedence: default < file < environment < flag; durations in ms also take units:\n"
            "\"250ms\", \"30s\", \"2m\", \"1h\", \"1d\").  The file's \"pools\" object names pools, each\n"
            "taking these settings over the top level's (all but the settings of the whole server):\n",
            prog);
    for (size_t i = 0; i < AP_ARRAY_LEN(settings); i++) {
        const setting *st = &settings[i];
        char flag[64], defval[128];
        flag_name(st->key, flag, sizeof(flag));
        value_text(st, &def, 1, defval, sizeof(defval));
        fprintf(f, "  --%-28s [%s] %s%s\n      default: %s\n", flag, st->key, st->help,
                (st->flags & SERVER) ? " (whole server: not inside a pool)" : "", defval);
    }
    fprintf(f, "\nThe socket is %s unless set: $%s, like every AGENTPOOL_ variable, overrides the file.\n",
            AP_DEFAULT_SOCKET, AP_SOCKET_ENV);
    config_free(&def);
}
