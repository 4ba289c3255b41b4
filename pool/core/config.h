/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * config.h - agentpoold's settings: defaults, the JSON config file and
 * command-line flags.
 *
 * One table (config.c) describes every setting once: its JSON key, its
 * flag, its environment variable, type, range and help text.  Parsing the
 * file, the environment, the flags, --help, --print-config and validation
 * are all driven by that table, so a setting cannot be documented in one
 * place and forgotten in another.  Precedence: default < file <
 * environment (AGENTPOOL_<KEY IN UPPER_SNAKE>) < flag for the top level,
 * and a named pool's own object over that (default < top level < pool);
 * each setting's struct records where its value came from.  A struct is
 * filled at start-up (and a new one at each reload) and read-only
 * afterwards.
 */
#ifndef AP_CONFIG_H
#define AP_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef enum { LB_ROUND_ROBIN = 0, LB_LEAST_BUSY, LB_RANDOM } lb_strategy;
typedef enum { OVERFLOW_BLOCK = 0, OVERFLOW_REJECT } overflow_mode;
typedef enum { RESTART_ONE_FOR_ONE = 0, RESTART_ONE_FOR_ALL, RESTART_REST_FOR_ONE } restart_strategy;
/* cancelSync: what pool.cancel does to a sync worker running the message. */
typedef enum { CANCEL_SYNC_FINISH = 0, CANCEL_SYNC_KILL } cancel_sync_mode;
/* sessionBusy: what a message does when its session runs another (session.c). */
typedef enum { SESSION_BUSY_ENQUEUE = 0, SESSION_BUSY_REJECT, SESSION_BUSY_INTERRUPT } session_busy_mode;

#define CONFIG_MAX_PYTHON_PATH 32

/* A list setting (allowedUids, allowedGids, env): JSON array, or a
 * comma-separated flag value.  `set` tells an empty list given on purpose
 * (in force: nothing allowed) from no list at all (no restriction). */
#define CONFIG_MAX_LIST 256
typedef struct {
    char **items;
    int n;
    int set;
} config_list;

/* workerLimits: setrlimit values applied in each worker before exec.
 * CONFIG_LIMIT_UNSET leaves the inherited limit alone. */
#define CONFIG_LIMIT_UNSET (-1)
#define CONFIG_LIMIT_UNLIMITED INT64_MAX
typedef struct {
    int64_t address_space;       /* RLIMIT_AS, bytes */
    int64_t open_files;          /* RLIMIT_NOFILE */
    int64_t core_size;           /* RLIMIT_CORE, bytes */
} config_rlimits;

/* Where a setting's value came from (config.source[], --print-config).
 * CONFIG_SRC_POOL: set in the pool's own object of "pools" (a pool's
 * config only; an inherited value keeps the top level's source). */
typedef enum { CONFIG_SRC_DEFAULT = 0, CONFIG_SRC_FILE, CONFIG_SRC_ENV, CONFIG_SRC_FLAG, CONFIG_SRC_POOL } config_source;
/* Named pools ("pools" in the file).  Each has a complete config of its
 * own: every per-pool setting resolved (default < top level < the pool's
 * object), the settings of the whole server copied from the top level.
 * Without "pools" there is one pool, "default", whose config is the top
 * level itself.  The settings of the whole server (config_is_server_wide)
 * are refused inside a pool, so a pool's copies always equal the top
 * level's; read them from the top level.  With "pools", a pool's
 * dead_letter_file is NULL unless its own object sets one (the master
 * derives SOCKET.POOL.deadletter.jsonl then): a top-level deadLetterFile
 * is refused, and two pools naming one file are refused.
 * Pool names: CONFIG_POOL_NAME_CHARS, 1 to CONFIG_POOL_NAME_MAX long. */
#define CONFIG_MAX_POOLS 32
#define CONFIG_POOL_NAME_MAX 64
#define CONFIG_POOL_NAME_CHARS "abcdefghijklmnopqrstuvwxyz0123456789_-"
typedef struct config_pool {
    char name[CONFIG_POOL_NAME_MAX + 1];
    struct config *cfg;          /* owned, unless it is the top level itself (no "pools") */
} config_pool;

struct cJSON;

/* Settings in the table, at most (checked at compile time in config.c). */
#define CONFIG_MAX_SETTINGS 128

typedef struct config {
    /* pool */
    int64_t min_workers;
    int64_t max_workers;
    int64_t strategy;            /* lb_strategy */
    int64_t message_queue_size;
    int64_t max_retries;
    int64_t retry_delay;
    int64_t health_check_interval;
    int64_t dispatch_ack_ms;
    int restart_on_failure;
    int pin_code;                /* "pinCode": refuse workers whose code differs from their generation's */
    int64_t worker_recycle_interval;
    int64_t max_messages_per_worker;
    int64_t timeout;
    int64_t max_retry_delay;
    int retry_on_timeout;
    int64_t cancel_sync;         /* cancel_sync_mode */
    char *dead_letter_file;
    int64_t dead_letter_max_bytes;
    int64_t idempotency_ttl;            /* ms (idem.c) */
    int64_t idempotency_cache_bytes;
    int64_t graceful_timeout;
    int64_t max_worker_rss;
    int64_t max_worker_rss_hard;
    int64_t recycle_jitter;
    int64_t max_concurrent_recycles;
    int64_t restart_strategy;    /* restart_strategy */
    int64_t max_restarts;
    int64_t restart_window;
    int64_t history_size;
    int64_t max_missed_beats;
    int64_t hub_blocked_warn_ms; /* async/gevent workers report a loop held this long (0: off) */
    int64_t breaker_failure_threshold;
    int64_t breaker_window;
    int64_t breaker_reset_timeout;
    int64_t scale_up_after;
    int64_t idle_timeout;
    int64_t max_tracked_types;
    int64_t concurrency;
    char *worker_model;          /* workerModel: auto | sync | async | gevent */
    int64_t prefetch;
    int64_t prefetch_fast_us;    /* handler mean under which prefetch is allowed */
    int64_t overflow;            /* overflow_mode */
    int sessions;                /* "sessions": requests may carry "session" (session.c) */
    int a2a;                     /* "a2a": the pool is an A2A agent on the front door (a2a.c) */
    int64_t session_busy;        /* session_busy_mode */
    int64_t max_sessions;        /* sessions tracked at once, running, waiting or idle */
    char *session_store;         /* sessionStore: sqlite:PATH | redis://HOST:PORT/DB | none; NULL: sqlite:SOCKET.sessions.db */
    int64_t session_ttl;         /* ms a session's state is kept after its last message */
    int64_t session_sync;        /* sstore_sync: full | normal (SQLite) */
    char *broker;                /* "broker": its text form (brokercfg.h), checked; NULL: off */
    int64_t max_session_bytes;   /* longest session state (JSON) a handler may leave */
    int64_t session_cache_bytes; /* bytes of idle sessions' states the master keeps in memory */
    int64_t max_checkpoint_bytes;/* longest ctx.checkpoint value */
    /* limits */
    int64_t max_message_bytes;
    int64_t max_result_bytes;    /* 0: as max_message_bytes (config_max_result_bytes) */
    int64_t stream_window_bytes; /* chunk bytes a stream may have in flight (the worker's window) */
    int64_t stream_heartbeat_ms; /* a stream idle this long gets a heartbeat line; 0: off */
    int64_t max_connections;
    int64_t admin_reserve_connections; /* of max_connections, kept for administrators */
    int64_t max_connections_per_uid;   /* per peer uid; 0: no limit */
    int64_t idle_connection_timeout;   /* ms without traffic or anything in flight; 0: never */
    int64_t max_inflight_per_connection;
    int64_t max_pending_bytes;
    int64_t max_buffered_bytes;  /* answers held for clients, all connections (client.c) */
    int64_t client_write_timeout; /* ms a connection's answers may wait with none taken; 0: off */
    int64_t listen_backlog;
    int64_t shutdown_timeout;
    /* socket */
    char *socket;
    int64_t socket_mode;
    /* python */
    char *agent;
    char *python_path[CONFIG_MAX_PYTHON_PATH];
    int n_python_path;
    char *virtualenv;
    int inherit_python_env;
    char *worker_binary;
    /* observability */
    char *metrics_listen;        /* "unix:/path", "127.0.0.1:PORT", "[::1]:PORT"; NULL: off */
    int metrics_allow_remote;    /* metricsListen may be a non-loopback address */
    config_list http_listen;     /* httpListen: the HTTP front door's addresses (httpfront.c); empty: off */
    char *http_auth;             /* "keys" | "none" */
    int64_t http_max_header_bytes; /* request line and headers of an HTTP request */
    int64_t http_request_timeout_ms; /* first byte to last byte of an HTTP request; 0: none */
    int64_t http_idle_timeout_ms;  /* evhttp's read/write timeout */
    int64_t a2a_task_ttl;        /* ms a terminal A2A task is kept (a2atask.c) */
    int64_t a2a_max_tasks;       /* A2A tasks kept at once */
    int64_t event_history;       /* events kept for replay (events.c; fixed at start) */
    int64_t event_history_bytes; /* and their bytes at most */
    int64_t subscriber_buffer_bytes; /* events held for one subscriber before its oldest are dropped */
    int64_t max_subscribers;     /* connections subscribed at once */
    int64_t alert_available_below; /* percent of workers with a free slot; 0: off */
    int64_t alert_queue_above;   /* percent of messageQueueSize; 0: off */
    int64_t alert_error_rate_above; /* percent of the last minute's answers; 0: off */
    int64_t alert_interval;      /* ms between two warnings of one alert */
    /* privileges and the workers' environment (privs.c, wenv.c) */
    char *user;                  /* root drops to this user after binding; NULL: no drop */
    char *group;                 /* with user: this group instead of the user's own */
    char *worker_user;           /* "workerUser": the workers switch to this user; NULL: the master's */
    char *worker_group;          /* "workerGroup": with workerUser, this group instead of its own */
    config_list allowed_uids;    /* peers allowed on the socket by uid (names or numbers) */
    config_list allowed_gids;    /* ... or by primary gid */
    config_list admin_uids;      /* peers allowed admin pool.* requests by uid; neither set: root and our uid */
    config_list admin_gids;      /* ... or by primary gid */
    char *worker_chdir;          /* "chdir": the workers' working directory; NULL: the master's */
    int64_t worker_umask;        /* "umask"; -1: the master's */
    config_list env;             /* allow-list, NAME or NAME=VALUE; not set: inherit everything */
    config_rlimits worker_limits;
    /* logging */
    char *log_level;
    char *log_format;
    char *log_file;              /* NULL: stderr */
    char *access_log;            /* NULL: off */
    char *api_keys_file;         /* NULL: no API keys (apikey.c) */
    int64_t max_tracked_keys;    /* usage rows keep this many key ids (usage.c) */
    char *default_pool_name;     /* "defaultPool"; NULL: the first pool (default_pool says which) */
    int64_t worker_log_rate;     /* worker output lines per second per worker; 0: no limit */
    int64_t worker_log_burst;
    int max_workers_set;         /* given explicitly (else it follows minWorkers up) */
    /* where the settings came from, for messages and --print-config */
    char *config_file;
    unsigned char source[CONFIG_MAX_SETTINGS];  /* config_source, by index in the settings table */
    unsigned char bare_ms[CONFIG_MAX_SETTINGS]; /* a duration given as a bare number (no unit) */
    int print_config;            /* --print-config was given */
    /* named pools (filled by config_parse_args; at least one after it) */
    config_pool *pools;
    int npools;
    int pools_named;             /* the file had "pools" (else one pool, "default") */
    int default_pool;            /* index in pools of requests that name none */
    /* "pools" as config_load_json found it, kept until config_pools_build
     * has built the pools from it (owned; NULL when the file had none) */
    struct cJSON *pools_json;
    char *pools_origin;          /* the origin it was loaded from, for messages */
} config;

/* What config_parse_args() decided to do besides serving. */
typedef enum { CONFIG_RUN = 0, CONFIG_HELP, CONFIG_VERSION, CONFIG_CHECK, CONFIG_PRINT } config_action;

/* Fills cfg with every default.  Never fails. */
void config_init(config *cfg);
/* Frees the strings cfg owns; cfg can be config_init'ed again. */
void config_free(config *cfg);
/* After a struct copy moved a config from `from` to cfg: the implicit
 * pool, which points at its own top level, points at the new place. */
void config_moved(config *cfg, const config *from);

/* Applies argv: finds --config FILE first and loads it, then every
 * AGENTPOOL_* variable of the environment over it (an empty one counts as
 * unset), then every flag over that.  On error returns AP_ERR with a
 * one-line reason in err (naming the key, the value and the file, the
 * variable or "command line") and cfg partly changed; the caller exits.
 * *action says whether to serve or to print help, version, the settings
 * (--print-config alone) or check the config (--check-config, with
 * cfg->print_config set when --print-config came too). */
int config_parse_args(config *cfg, int argc, char **argv, config_action *action,
                      char *err, size_t errlen);

/* Loads a JSON config text over cfg (origin names it in messages).
 * AP_ERR with err filled on the first bad key, type or value.  A "pools"
 * object is checked for its shape here (an object of 1 to
 * CONFIG_MAX_POOLS objects with valid, distinct names; no unknown key and
 * no setting of the whole server inside a pool) and kept aside in
 * cfg->pools_json, replacing one an earlier load kept: the pools are
 * built by config_pools_build, after every top-level value is known. */
int config_load_json(config *cfg, const char *text, size_t len, const char *origin,
                     char *err, size_t errlen);

/* Builds cfg->pools: without a kept "pools" object, the one implicit pool
 * "default" (defaultPool must be unset or "default"); with one, a
 * complete config per pool in file order: the top level copied (strings
 * duplicated, lists copied, sources kept), then the pool's object applied
 * over it (those keys get CONFIG_SRC_POOL), deadLetterFile not inherited.
 * Sets default_pool from defaultPool (else 0).  config_parse_args calls it
 * after the flags; after config_load_json alone, call it before using the
 * pools.  Does nothing when the pools are built already.  AP_ERR with err
 * filled (pool errors name the pool) and cfg->pools unchanged. */
int config_pools_build(config *cfg, char *err, size_t errlen);

/* Whether key names a setting of the whole server (refused inside a
 * pool); 0 for a per-pool setting or an unknown key. */
int config_is_server_wide(const char *key);

/* Cross-field checks (minWorkers <= maxWorkers, ...) of the top level,
 * then of every pool's own config (a pool's error starts with
 * pool "NAME": ). */
int config_validate(const config *cfg, char *err, size_t errlen);

/* A metricsListen address, parsed. */
typedef struct {
    int family;                  /* AF_UNIX, AF_INET or AF_INET6 */
    char path[108];              /* AF_UNIX: the socket file */
    unsigned char addr[16];      /* AF_INET: the first 4 bytes; AF_INET6: all 16 (network order) */
    uint16_t port;               /* AF_INET, AF_INET6; 0: any free port */
    int loopback;                /* a Unix socket, 127.0.0.0/8 or ::1 */
} config_listen_addr;

/* Parses "unix:/absolute/path", "A.B.C.D:PORT" or "[IPv6]:PORT" (numeric
 * addresses only: the master never resolves names).  AP_ERR with a
 * reason in err (out unspecified) when spec is none of them. */
int config_parse_listen(const char *spec, config_listen_addr *out, char *err, size_t errlen);

/* The environment variable of a JSON key: "maxWorkers" ->
 * "AGENTPOOL_MAX_WORKERS" (an upper-case letter starts a word).  Cut to
 * cap - 1 bytes. */
void config_env_name(const char *key, char *buf, size_t cap);

/* Writes every setting, one per line, "key value (source)", where source
 * is default, "file PATH", "environment NAME", "flag --NAME" or
 * "pool NAME in PATH".  With "pools": the settings of the whole server
 * once, then per pool a line "pool NAME:" and its per-pool settings, each
 * indented by two spaces. */
void config_print(const config *cfg, void *file);

/* Writes one "warning: ..." line per timeout-like duration set to a bare
 * number from 1 to 999 (milliseconds, where seconds were likely meant):
 * the top level's, then each pool's own (named by its source "pool NAME
 * in PATH"); returns how many. */
int config_print_warnings(const config *cfg, void *file);

/* Writes the --help text to f. */
void config_print_help(const char *prog, void *file);

/* maxResultBytes in force: the setting, or maxMessageBytes when it is 0.
 * A non-zero setting is at least CONFIG_MIN_RESULT_BYTES (validated). */
#define CONFIG_MIN_RESULT_BYTES 64
int64_t config_max_result_bytes(const config *cfg);

/* Names for enums, for logs and stats. */
const char *config_strategy_name(int64_t s);
const char *config_overflow_name(int64_t o);

#endif
