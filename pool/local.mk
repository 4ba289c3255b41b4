# SPDX-License-Identifier: BSD-2-Clause
# agentpoold: the master.  Never links libpython.  Its rooms (see the
# README's source layout):
#   core/: start-up, the global state and lifecycle, settings, the socket, privileges, systemd
#   path/: a message's way from a client line to its answer
#   workers/: the worker processes seen from the master and what their lives mean
#   store/: the session store (sstore.h) and its SQLite and Redis backends
#   redis/: a Redis address and one kept-up asynchronous connection (store/ and broker/ use them)
#   broker/: the broker ingress: requests from a Redis stream shared by many agentpoolds
#   ops/: what operators read, ask and keep: pool.* requests, statistics, HTTP, alerts, logs,
#         dead letters, breakers
#   llhttp/: the HTTP front door's parser, Debian's node-llhttp sources compiled in (pool/libllhttp.a)
# llhttp, the HTTP front door's parser, from Debian's node-llhttp sources
# (pool/llhttp/README): its code as it is, so with warnings off.
noinst_LIBRARIES += pool/libllhttp.a
pool_libllhttp_a_SOURCES = pool/llhttp/llhttp_api.c pool/llhttp/llhttp_http.c pool/llhttp/llhttp_core.c
pool_libllhttp_a_CPPFLAGS = $(LLHTTP_CFLAGS) -I$(LLHTTP_DIR)
pool_libllhttp_a_CFLAGS = $(AM_CFLAGS) -w
EXTRA_DIST += pool/llhttp/README

bin_PROGRAMS += agentpoold
agentpoold_SOURCES = pool/core/main.c \
	pool/core/server.c pool/core/server.h \
	pool/core/pools.c pool/core/pools.h \
	pool/core/config.c pool/core/config.h \
	pool/core/duration.c pool/core/duration.h \
	pool/core/jsontext.c pool/core/jsontext.h \
	pool/core/listener.c pool/core/listener.h \
	pool/core/sdnotify.c pool/core/sdnotify.h \
	pool/core/privs.c pool/core/privs.h \
	pool/core/cfgcheck.c pool/core/cfgcheck.h \
	pool/core/brokercfg.c pool/core/brokercfg.h \
	pool/path/client.c pool/path/client.h \
	pool/path/linein.c pool/path/linein.h \
	pool/path/answer.c pool/path/answer.h \
	pool/path/cancel.c pool/path/cancel.h \
	pool/path/flush.c pool/path/flush.h \
	pool/path/refuse.c pool/path/refuse.h \
	pool/path/connlimit.c pool/path/connlimit.h \
	pool/path/httpfront.c pool/path/httpfront.h \
	pool/path/http1.c pool/path/http1.h \
	pool/path/h1parse.c pool/path/h1parse.h \
	pool/path/httpx.c pool/path/httpx.h \
	pool/path/a2a.c pool/path/a2a.h \
	pool/path/jbuf.c pool/path/jbuf.h \
	pool/path/jview.c pool/path/jview.h \
	pool/path/a2acard.c pool/path/a2acard.h \
	pool/path/a2atask.c pool/path/a2atask.h \
	pool/path/a2astore.c pool/path/a2astore.h \
	pool/path/httpauth.c pool/path/httpauth.h \
	pool/path/scan.c pool/path/scan.h \
	pool/path/reply.c pool/path/reply.h \
	pool/path/stream.c pool/path/stream.h \
	pool/path/msg.c pool/path/msg.h \
	pool/path/idmap.c pool/path/idmap.h \
	pool/path/idem.c pool/path/idem.h \
	pool/path/queue.c pool/path/queue.h \
	pool/path/dispatch.c pool/path/dispatch.h \
	pool/path/sched.c pool/path/sched.h \
	pool/path/session.c pool/path/session.h \
	pool/path/keytab.c pool/path/keytab.h \
	pool/path/sessrun.c pool/path/sessrun.h \
	pool/path/sessstate.c pool/path/sessstate.h \
	pool/workers/wprog.c pool/workers/wprog.h \
	pool/workers/suspect.c pool/workers/suspect.h \
	pool/workers/wresult.c pool/workers/wresult.h \
	pool/workers/retry.c pool/workers/retry.h \
	pool/workers/supervisor.c pool/workers/supervisor.h \
	pool/workers/recycle.c pool/workers/recycle.h \
	pool/workers/scale.c pool/workers/scale.h \
	pool/workers/reload.c pool/workers/reload.h \
	pool/workers/health.c pool/workers/health.h \
	pool/workers/drift.c pool/workers/drift.h \
	pool/workers/wenv.c pool/workers/wenv.h \
	pool/workers/pgroup.c pool/workers/pgroup.h \
	pool/workers/worker.c pool/workers/worker.h \
	pool/workers/wout.c pool/workers/wout.h \
	pool/store/sstore.c pool/store/sstore.h pool/store/sstore_be.h \
	pool/store/sstore_sqlite.c pool/store/walbuf.c pool/store/walbuf.h pool/store/sstore_redis.c \
	pool/ops/typetab.c pool/ops/typetab.h \
	pool/ops/procstat.c pool/ops/procstat.h \
	pool/ops/breaker.c pool/ops/breaker.h \
	pool/ops/dlq.c pool/ops/dlq.h pool/ops/dlqheld.c pool/ops/dlqheld.h \
	pool/ops/hist.c pool/ops/hist.h \
	pool/ops/rate.c pool/ops/rate.h \
	pool/ops/promtext.c pool/ops/promtext.h \
	pool/ops/control.c pool/ops/control.h \
	pool/ops/sessadmin.c pool/ops/sessadmin.h \
	pool/ops/metrics.c pool/ops/metrics.h \
	pool/ops/access.c pool/ops/access.h \
	pool/ops/httpd.c pool/ops/httpd.h \
	pool/ops/alert.c pool/ops/alert.h \
	pool/ops/evring.c pool/ops/evring.h pool/ops/events.c pool/ops/events.h \
	pool/ops/agentev.c pool/ops/agentev.h \
	pool/ops/agentstat.c pool/ops/agentstat.h \
	pool/ops/tbucket.c pool/ops/tbucket.h \
	pool/ops/keyfile.c pool/ops/keyfile.h \
	pool/ops/apikey.c pool/ops/apikey.h \
	pool/ops/usage.c pool/ops/usage.h \
	pool/redis/rspec.c pool/redis/rspec.h pool/redis/rlink.c pool/redis/rlink.h pool/redis/rev.c pool/redis/rev.h \
	pool/broker/broker.c pool/broker/broker.h pool/broker/bint.h pool/broker/bjob.c pool/broker/bcmd.c \
	pool/broker/bcancel.c pool/broker/bcancel.h pool/broker/bentry.c pool/broker/bentry.h
agentpoold_CPPFLAGS = $(AM_CPPFLAGS) $(POOL_INC) $(LLHTTP_CFLAGS)
agentpoold_CFLAGS = $(AM_CFLAGS) -pthread $(LIBEVENT_CFLAGS) $(CJSON_CFLAGS) $(SQLITE_CFLAGS) $(HIREDIS_CFLAGS) $(NETTLE_CFLAGS) $(JEMALLOC_CFLAGS) $(JEMALLOC_DEFS)
agentpoold_LDADD = common/libapcommon_je.a pool/libllhttp.a $(LIBEVENT_LIBS) $(CJSON_LIBS) $(SQLITE_LIBS) $(HIREDIS_LIBS) $(NETTLE_LIBS) -lpthread $(JEMALLOC_LIBS)
