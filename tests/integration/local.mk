# SPDX-License-Identifier: BSD-2-Clause
# (filled in by its module)
TESTS += tests/integration/test_startup.py
TESTS += tests/integration/test_client.py
EXTRA_DIST += tests/integration/test_client.py
TESTS += tests/integration/test_workers.py
TESTS += tests/integration/test_load_balancing.py
TESTS += tests/integration/test_leak.py
EXTRA_DIST += tests/integration/agents/probe.py
TESTS += tests/integration/test_protocol.py
TESTS += tests/integration/test_badinput.py
TESTS += tests/integration/test_flow.py
EXTRA_DIST += tests/integration/harness.py
EXTRA_DIST += tests/integration/test_protocol.py
EXTRA_DIST += tests/integration/test_badinput.py
EXTRA_DIST += tests/integration/test_flow.py
EXTRA_DIST += tests/integration/agents/aptest_agents.py
EXTRA_DIST += tests/integration/agents/exit_at_import.py
EXTRA_DIST += tests/integration/test_startup.py
EXTRA_DIST += tests/integration/test_workers.py
EXTRA_DIST += tests/integration/test_load_balancing.py
EXTRA_DIST += tests/integration/test_leak.py
TESTS += tests/integration/test_recycle.py
EXTRA_DIST += tests/integration/test_recycle.py
TESTS += tests/integration/test_retries.py
TESTS += tests/integration/test_timeouts.py
TESTS += tests/integration/test_supervision.py
TESTS += tests/integration/test_chaos.py
EXTRA_DIST += tests/integration/test_retries.py
EXTRA_DIST += tests/integration/test_timeouts.py
EXTRA_DIST += tests/integration/test_supervision.py
EXTRA_DIST += tests/integration/test_chaos.py
EXTRA_DIST += tests/integration/agents/life.py
TESTS += tests/integration/test_scale.py
EXTRA_DIST += tests/integration/test_scale.py
TESTS += tests/integration/test_reload.py
EXTRA_DIST += tests/integration/test_reload.py
TESTS += tests/integration/test_breakers.py
EXTRA_DIST += tests/integration/test_breakers.py
TESTS += tests/integration/test_metrics.py
TESTS += tests/integration/test_log_stall.py
EXTRA_DIST += tests/integration/test_log_stall.py
EXTRA_DIST += tests/integration/test_metrics.py
TESTS += tests/integration/test_prefetch.py
EXTRA_DIST += tests/integration/test_prefetch.py
TESTS += tests/integration/test_logs.py
EXTRA_DIST += tests/integration/test_logs.py
TESTS += tests/integration/test_alerts.py
EXTRA_DIST += tests/integration/test_alerts.py
TESTS += tests/integration/test_stats_detail.py
EXTRA_DIST += tests/integration/test_stats_detail.py
TESTS += tests/integration/test_health.py
EXTRA_DIST += tests/integration/test_health.py
TESTS += tests/integration/test_result_limit.py
EXTRA_DIST += tests/integration/test_result_limit.py
EXTRA_DIST += tests/integration/agents/bigresult.py
EXTRA_DIST += tests/integration/agents/observe.py
TESTS += tests/integration/test_agent_output.py
EXTRA_DIST += tests/integration/test_agent_output.py
EXTRA_DIST += tests/integration/agents/noisy.py
TESTS += tests/integration/test_systemd.py
TESTS += tests/integration/test_privs.py
TESTS += tests/integration/test_admin.py
TESTS += tests/integration/test_connlimit.py
EXTRA_DIST += tests/integration/test_connlimit.py
EXTRA_DIST += tests/integration/test_admin.py
TESTS += tests/integration/test_wenv.py
EXTRA_DIST += tests/integration/test_systemd.py
EXTRA_DIST += tests/integration/test_privs.py
EXTRA_DIST += tests/integration/test_wenv.py
EXTRA_DIST += tests/integration/agents/procinfo.py
# the unit files test_systemd.py verifies
EXTRA_DIST += docs/systemd/agentpoold.service docs/systemd/agentpoold.socket
TESTS += tests/integration/test_agent_procs.py
EXTRA_DIST += tests/integration/test_agent_procs.py
EXTRA_DIST += tests/integration/agents/spawner.py
TESTS += tests/integration/test_worker_user.py
EXTRA_DIST += tests/integration/test_worker_user.py
TESTS += tests/integration/test_untrusted_worker.py
EXTRA_DIST += tests/integration/test_untrusted_worker.py
EXTRA_DIST += tests/integration/agents/rogue.py
TESTS += tests/integration/test_suspect.py
EXTRA_DIST += tests/integration/test_suspect.py
TESTS += tests/integration/test_file_safety.py
EXTRA_DIST += tests/integration/test_file_safety.py
TESTS += tests/integration/test_ptrace.py
EXTRA_DIST += tests/integration/test_ptrace.py tests/integration/agents/spy.py
TESTS += tests/integration/test_memory_bounds.py
EXTRA_DIST += tests/integration/test_memory_bounds.py
# the operations files shipped (logrotate, sysusers, tmpfiles, the sample config)
TESTS += tests/integration/test_opsfiles.py
EXTRA_DIST += tests/integration/test_opsfiles.py docs/logrotate/agentpoold \
	docs/systemd/agentpool.sysusers docs/systemd/agentpool.tmpfiles docs/agentpool.sample.json LICENSE
# make install, run from elsewhere; the man pages and completion against --help
TESTS += tests/integration/test_install.py tests/integration/test_manpages.py
EXTRA_DIST += tests/integration/test_install.py tests/integration/test_manpages.py
# the Debian package's test, run by ./bootstrap test after the suite
EXTRA_DIST += tests/package/test-deb.sh debian/control debian/rules debian/changelog debian/copyright \
	debian/source/format debian/agentpool.sysusers debian/agentpool.tmpfiles
# contrib/: Prometheus rules (promtool check/test) and the Grafana dashboard
TESTS += tests/integration/test_contrib.py
EXTRA_DIST += tests/integration/test_contrib.py contrib/prometheus/agentpool.rules.yml \
	contrib/prometheus/agentpool.rules.test.yml contrib/grafana/agentpool.json
# pool.stats, /metrics and top --once agree after the same traffic
TESTS += tests/integration/test_counters.py
EXTRA_DIST += tests/integration/test_counters.py
# agent code identity per generation: drift logged, counted, shown; pinCode
TESTS += tests/integration/test_drift.py
EXTRA_DIST += tests/integration/test_drift.py
TESTS += tests/integration/test_context.py
EXTRA_DIST += tests/integration/test_context.py
EXTRA_DIST += tests/integration/agents/ctxagent.py
TESTS += tests/integration/test_gevent.py
EXTRA_DIST += tests/integration/test_gevent.py
EXTRA_DIST += tests/integration/agents/gevagent.py
TESTS += tests/integration/test_hubblocked.py
EXTRA_DIST += tests/integration/test_hubblocked.py
TESTS += tests/integration/test_streams.py
EXTRA_DIST += tests/integration/test_streams.py
EXTRA_DIST += tests/integration/agents/streamer.py
TESTS += tests/integration/test_cancel.py
EXTRA_DIST += tests/integration/test_cancel.py
EXTRA_DIST += tests/integration/agents/cancelagent.py
TESTS += tests/integration/test_config_kind.py
EXTRA_DIST += tests/integration/test_config_kind.py
TESTS += tests/integration/test_pools_config.py
EXTRA_DIST += tests/integration/test_pools_config.py
TESTS += tests/integration/test_pools.py
EXTRA_DIST += tests/integration/test_pools.py
TESTS += tests/integration/test_halfclose.py
EXTRA_DIST += tests/integration/test_halfclose.py
TESTS += tests/integration/test_sessions.py
EXTRA_DIST += tests/integration/test_sessions.py
TESTS += tests/integration/test_session_state.py
EXTRA_DIST += tests/integration/test_session_state.py
# test_session_redis.py: session state in a real redis-server started by
# the test (sessionStore redis://): order, survival, Redis stopped or
# silent mid-run, operating, expiry, start-up refusals.
TESTS += tests/integration/test_session_redis.py
EXTRA_DIST += tests/integration/test_session_redis.py
TESTS += tests/integration/test_idempotency.py
EXTRA_DIST += tests/integration/test_idempotency.py
# test_events.py: the lifecycle event stream (docs/events.md) through the
# real server: each topic from a real cause, replay, slow subscribers,
# agentpoolctl events and the Python clients' subscribe().
TESTS += tests/integration/test_events.py
EXTRA_DIST += tests/integration/test_events.py
TESTS += tests/integration/test_checkpoints.py
EXTRA_DIST += tests/integration/test_checkpoints.py
EXTRA_DIST += tests/integration/agents/ckptagent.py
# test_apikeys.py: API keys on the socket ("key"), per-key limits, the keys
# file's rereads and refusals, and usage accounting (ctx.usage, CPU) in
# pool.stats, Prometheus and agentpoolctl usage.
TESTS += tests/integration/test_apikeys.py
EXTRA_DIST += tests/integration/test_apikeys.py tests/integration/agents/usageagent.py
TESTS += tests/integration/test_http.py
TESTS += tests/integration/test_a2a.py
EXTRA_DIST += tests/integration/test_a2a.py tests/integration/agents/a2aagent.py
# test_a2a_js.py: the official A2A JavaScript SDK (npm, installed by ./bootstrap test) as the outside client.
TESTS += tests/integration/test_a2a_js.py
EXTRA_DIST += tests/integration/test_a2a_js.py tests/integration/a2a_js/client.mjs
EXTRA_DIST += tests/integration/test_http.py
EXTRA_DIST += tests/integration/agents/httpagent.py
# test_broker.py: the broker ingress (docs/scale-out.md): real agentpoolds
# sharing a stream of a real redis-server started by the test (as
# test_session_redis.py's), written and read with Debian's python3-redis.
TESTS += tests/integration/test_broker.py
EXTRA_DIST += tests/integration/test_broker.py tests/integration/agents/brokeragent.py
# Issue 20, the client side of the broker: pyagents.client and
# agentpool-bench through redis:// (a real redis-server and agentpoolds),
# and bench/chaos-broker at its smallest.
TESTS += tests/integration/test_broker_client.py tests/integration/test_broker_chaos.py
EXTRA_DIST += tests/integration/test_broker_client.py tests/integration/test_broker_chaos.py
