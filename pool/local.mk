# agentpoold: the master.  Never links libpython.
bin_PROGRAMS += agentpoold
agentpoold_SOURCES = pool/main.c pool/server.c pool/server.h \
	pool/config.c pool/config.h \
	pool/listener.c pool/listener.h \
	pool/client.c pool/client.h \
	pool/answer.c pool/answer.h \
	pool/flush.c pool/flush.h \
	pool/wprog.c pool/wprog.h \
	pool/wresult.c pool/wresult.h \
	pool/refuse.c pool/refuse.h \
	pool/connlimit.c pool/connlimit.h \
	pool/control.c pool/control.h \
	pool/scan.c pool/scan.h \
	pool/reply.c pool/reply.h \
	pool/msg.c pool/msg.h \
	pool/idmap.c pool/idmap.h \
	pool/queue.c pool/queue.h \
	pool/dispatch.c pool/dispatch.h \
	pool/sched.c pool/sched.h \
	pool/retry.c pool/retry.h \
	pool/supervisor.c pool/supervisor.h \
	pool/recycle.c pool/recycle.h \
	pool/scale.c pool/scale.h \
	pool/reload.c pool/reload.h \
	pool/typetab.c pool/typetab.h \
	pool/breaker.c pool/breaker.h \
	pool/dlq.c pool/dlq.h \
	pool/hist.c pool/hist.h \
	pool/rate.c pool/rate.h \
	pool/promtext.c pool/promtext.h \
	pool/metrics.c pool/metrics.h \
	pool/access.c pool/access.h \
	pool/httpd.c pool/httpd.h \
	pool/alert.c pool/alert.h \
	pool/health.c pool/health.h \
	pool/agentstat.c pool/agentstat.h \
	pool/sdnotify.c pool/sdnotify.h \
	pool/privs.c pool/privs.h \
	pool/wenv.c pool/wenv.h \
	pool/worker.c pool/worker.h \
	pool/wout.c pool/wout.h
agentpoold_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(CJSON_CFLAGS) $(JEMALLOC_CFLAGS) $(JEMALLOC_DEFS)
agentpoold_LDADD = common/libapcommon_je.a $(LIBEVENT_LIBS) $(CJSON_LIBS) $(JEMALLOC_LIBS)
