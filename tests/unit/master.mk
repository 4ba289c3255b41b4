# SPDX-License-Identifier: BSD-2-Clause
# cmocka unit tests for the master modules that decide (sched, retry,
# supervisor, recycle), each linked with only the module under test, the
# pure data structures it stands on (msg.c, queue.c; dispatch.c for
# sched) and the fakes of tests/unit/fake_server.h in place of the rest
# of agentpoold: a worker table filled by hand, a clock the test moves,
# recorded calls instead of forks, signals and answers.  -Wl,--wrap makes
# random() return what a test says (retry delays' jitter, recycle
# spreads) and lets test_retry see the delays its timers are armed with
# (event_add).  Built with AP_ALLOC_TEST, so a leaked message fails.
check_PROGRAMS += tests/unit/test_sched tests/unit/test_retry tests/unit/test_supervisor \
	tests/unit/test_recycle
TESTS += tests/unit/test_sched tests/unit/test_retry tests/unit/test_supervisor tests/unit/test_recycle

MASTER_UNIT_FAKES = tests/unit/fake_server.c tests/unit/fake_server.h tests/unit/fake_worker.c tests/unit/fake_events.c \
	tests/unit/fake_sessstate.c \
	pool/path/msg.c pool/path/msg.h pool/path/queue.c pool/path/queue.h common/alloc.c
MASTER_UNIT_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(LIBEVENT_CFLAGS) $(CJSON_CFLAGS)

tests_unit_test_sched_SOURCES = tests/unit/test_sched.c pool/path/sched.c pool/path/sched.h pool/path/dispatch.c \
	tests/unit/fake_client.c tests/unit/fake_sessrun.c $(MASTER_UNIT_FAKES)
tests_unit_test_sched_CPPFLAGS = $(POOL_UNIT_ALLOC_CPPFLAGS)
tests_unit_test_sched_CFLAGS = $(MASTER_UNIT_CFLAGS)
tests_unit_test_sched_LDADD = $(LIBEVENT_LIBS) $(CMOCKA_LIBS)

# test_retry #includes pool/workers/retry.c (its delay function and timer callback).
tests_unit_test_retry_SOURCES = tests/unit/test_retry.c pool/workers/retry.h tests/unit/fake_answer.c tests/unit/fake_stream.c \
	tests/unit/fake_sessrun.c \
	tests/unit/fake_client.c tests/unit/fake_sched.c tests/unit/fake_ops.c common/backoff.c pool/ops/dlqheld.c \
	$(MASTER_UNIT_FAKES)
EXTRA_tests_unit_test_retry_SOURCES = pool/workers/retry.c
tests_unit_test_retry_CPPFLAGS = $(POOL_UNIT_ALLOC_CPPFLAGS)
tests_unit_test_retry_CFLAGS = $(MASTER_UNIT_CFLAGS)
tests_unit_test_retry_LDFLAGS = $(AM_LDFLAGS) -Wl,--wrap=random,--wrap=event_add
tests_unit_test_retry_LDADD = $(LIBEVENT_LIBS) $(CMOCKA_LIBS)

tests_unit_test_supervisor_SOURCES = tests/unit/test_supervisor.c pool/workers/supervisor.c pool/workers/supervisor.h \
	common/backoff.c $(MASTER_UNIT_FAKES)
tests_unit_test_supervisor_CPPFLAGS = $(POOL_UNIT_ALLOC_CPPFLAGS)
tests_unit_test_supervisor_CFLAGS = $(MASTER_UNIT_CFLAGS)
tests_unit_test_supervisor_LDADD = $(CJSON_LIBS) $(LIBEVENT_LIBS) $(CMOCKA_LIBS)

# test_recycle links the real supervisor.c: recycle.c asks it why a
# worker its restart strategy marked is replaced.
tests_unit_test_recycle_SOURCES = tests/unit/test_recycle.c pool/workers/recycle.c pool/workers/recycle.h tests/unit/fake_ops.c \
	pool/workers/supervisor.c pool/workers/supervisor.h common/backoff.c $(MASTER_UNIT_FAKES)
tests_unit_test_recycle_CPPFLAGS = $(POOL_UNIT_ALLOC_CPPFLAGS)
tests_unit_test_recycle_CFLAGS = $(MASTER_UNIT_CFLAGS)
tests_unit_test_recycle_LDFLAGS = $(AM_LDFLAGS) -Wl,--wrap=random
tests_unit_test_recycle_LDADD = $(CJSON_LIBS) $(LIBEVENT_LIBS) $(CMOCKA_LIBS)

# test_cancel #includes pool/path/cancel.c (pool.cancel's decisions), with
# the real retry.c, scan.c and idmap.c.
check_PROGRAMS += tests/unit/test_cancel
TESTS += tests/unit/test_cancel
tests_unit_test_cancel_SOURCES = tests/unit/test_cancel.c pool/path/cancel.h pool/workers/retry.c pool/workers/retry.h \
	pool/path/scan.c pool/path/scan.h pool/path/idmap.c pool/path/idmap.h tests/unit/fake_answer.c tests/unit/fake_stream.c \
	tests/unit/fake_sessrun.c \
	tests/unit/fake_client.c tests/unit/fake_sched.c tests/unit/fake_ops.c common/backoff.c pool/ops/dlqheld.c \
	$(MASTER_UNIT_FAKES)
EXTRA_tests_unit_test_cancel_SOURCES = pool/path/cancel.c
tests_unit_test_cancel_CPPFLAGS = $(POOL_UNIT_ALLOC_CPPFLAGS)
tests_unit_test_cancel_CFLAGS = $(MASTER_UNIT_CFLAGS)
tests_unit_test_cancel_LDADD = $(LIBEVENT_LIBS) $(CMOCKA_LIBS)

# test_pools: the pure part of pool/core/pools.c (finding a pool by name,
# the default, the names, the totals over pools, live workers) over the
# fake world.  pools.c is compiled with one section per function and
# linked with --gc-sections: what builds, adds, retires and frees pools
# (which reaches every subsystem) is never called here and is dropped,
# with its references, instead of being faked.
check_PROGRAMS += tests/unit/test_pools
TESTS += tests/unit/test_pools
tests_unit_test_pools_SOURCES = tests/unit/test_pools.c pool/core/pools.c pool/core/pools.h $(MASTER_UNIT_FAKES)
tests_unit_test_pools_CPPFLAGS = $(POOL_UNIT_ALLOC_CPPFLAGS)
tests_unit_test_pools_CFLAGS = $(MASTER_UNIT_CFLAGS) -ffunction-sections -fdata-sections
tests_unit_test_pools_LDFLAGS = $(AM_LDFLAGS) -Wl,--gc-sections
tests_unit_test_pools_LDADD = $(LIBEVENT_LIBS) $(CMOCKA_LIBS)

# test_sessrun: how a session's messages move (sessrun.c) with the real
# sched.c, dispatch.c and session.c in the fake world; cancel_message,
# answer_refuse and retry_disarm are faked in the test itself.
check_PROGRAMS += tests/unit/test_sessrun
TESTS += tests/unit/test_sessrun
tests_unit_test_sessrun_SOURCES = tests/unit/test_sessrun.c pool/path/sessrun.c pool/path/sessrun.h \
	pool/path/session.c pool/path/session.h pool/path/keytab.c pool/path/sched.c pool/path/sched.h pool/path/dispatch.c \
	pool/path/scan.c pool/path/scan.h tests/unit/fake_answer.c tests/unit/fake_client.c $(MASTER_UNIT_FAKES)
tests_unit_test_sessrun_CPPFLAGS = $(POOL_UNIT_ALLOC_CPPFLAGS)
tests_unit_test_sessrun_CFLAGS = $(MASTER_UNIT_CFLAGS)
tests_unit_test_sessrun_LDADD = $(LIBEVENT_LIBS) $(CMOCKA_LIBS)
# test_idem: idempotency keys (pool/path/idem.c) with the real scan.c and
# reply.c; the test file stands in for client output, refusals and
# answer_end.
check_PROGRAMS += tests/unit/test_idem
TESTS += tests/unit/test_idem
tests_unit_test_idem_SOURCES = tests/unit/test_idem.c pool/path/idem.c pool/path/idem.h pool/path/keytab.c pool/path/scan.c \
	pool/path/scan.h pool/path/reply.c pool/path/reply.h common/json.c common/utf8.c $(MASTER_UNIT_FAKES)
tests_unit_test_idem_CPPFLAGS = $(POOL_UNIT_ALLOC_CPPFLAGS)
tests_unit_test_idem_CFLAGS = $(MASTER_UNIT_CFLAGS)
tests_unit_test_idem_LDADD = $(LIBEVENT_LIBS) $(CMOCKA_LIBS)
