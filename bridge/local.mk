# SPDX-License-Identifier: BSD-2-Clause
# agentpool-worker: the process that embeds CPython and serves one Python
# agent to the master over fd 3.  Installed where the master finds it
# ($(pkglibexecdir)); in the build tree it sits at the top of the build dir.
pkglibexec_PROGRAMS += agentpool-worker
agentpool_worker_SOURCES = \
	bridge/main.c bridge/bridge.h \
	bridge/pyhost.c bridge/pyhost.h \
	bridge/codeid.c bridge/codeid.h \
	bridge/agent.c bridge/agent.h \
	bridge/pyerr.c bridge/pyerr.h \
	bridge/msg.c bridge/msg.h \
	bridge/hctx.c bridge/hctx.h \
	bridge/stream.c bridge/stream.h \
	bridge/publish.c bridge/publish.h \
	bridge/sstate.c bridge/sstate.h \
	bridge/checkpoint.c bridge/checkpoint.h \
	bridge/ainput.c bridge/ainput.h \
	bridge/usage.c bridge/usage.h \
	bridge/pyconv.c bridge/pyconv.h \
	bridge/wire.c bridge/wire.h \
	bridge/buf.c bridge/buf.h \
	bridge/idmap.c bridge/idmap.h \
	bridge/sync_driver.c bridge/sync_driver.h \
	bridge/async_driver.c bridge/async_driver.h \
	bridge/gevent_driver.c bridge/gevent_driver.h \
	bridge/gsleep.c bridge/gsleep.h \
	bridge/loopio.c bridge/loopio.h \
	bridge/hubwatch.c bridge/hubwatch.h \
	bridge/ploop.c bridge/ploop.h
agentpool_worker_CFLAGS = $(AM_CFLAGS) $(PYTHON_CFLAGS)
agentpool_worker_LDADD = common/libapcommon.a $(PYTHON_LIBS) -lm -lpthread
