# SPDX-License-Identifier: BSD-2-Clause
# agentpool-bench: the load generator (NDJSON and HTTP/1.1, closed and
# open loop), its cmocka unit tests and its integration test.
noinst_PROGRAMS += agentpool-bench
agentpool_bench_SOURCES = bench/main.c bench/bench.h \
	bench/load.c bench/load.h \
	bench/conn.c bench/conn.h \
	bench/bq.c bench/bq.h \
	bench/report.c bench/report.h \
	bench/addr.c bench/addr.h \
	bench/tmpl.c bench/tmpl.h \
	bench/match.c bench/match.h \
	bench/resp.c bench/resp.h \
	bench/http.c bench/http.h \
	bench/hist.c bench/hist.h \
	bench/errtab.c bench/errtab.h \
	pool/redis/rev.c pool/redis/rev.h
agentpool_bench_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(CJSON_CFLAGS) $(HIREDIS_CFLAGS) -iquote $(top_srcdir)/pool/redis
agentpool_bench_LDADD = common/libapcommon.a $(LIBEVENT_LIBS) $(CJSON_LIBS) $(HIREDIS_LIBS) -lm

# agentpool-slowhttp: the slow HTTP service bench/compare's fetch50
# workload fetches from (one file, libevent's evhttp; not installed).
noinst_PROGRAMS += agentpool-slowhttp
agentpool_slowhttp_SOURCES = bench/slowhttp.c
agentpool_slowhttp_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS)
agentpool_slowhttp_LDADD = $(LIBEVENT_LIBS)

# cmocka tests of the pure modules, with cmocka's allocator to catch leaks.
check_PROGRAMS += bench/test_hist bench/test_match bench/test_http
TESTS += bench/test_hist bench/test_match bench/test_http
bench_test_hist_SOURCES = bench/test_hist.c bench/hist.c
bench_test_hist_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
bench_test_hist_LDADD = $(CMOCKA_LIBS) -lm
bench_test_match_SOURCES = bench/test_match.c bench/match.c bench/resp.c bench/errtab.c common/alloc.c
bench_test_match_CPPFLAGS = $(AM_CPPFLAGS) -DAP_ALLOC_TEST
bench_test_match_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
bench_test_match_LDADD = $(CMOCKA_LIBS)
bench_test_http_SOURCES = bench/test_http.c bench/http.c bench/tmpl.c common/alloc.c
bench_test_http_CPPFLAGS = $(AM_CPPFLAGS) -DAP_ALLOC_TEST
bench_test_http_CFLAGS = $(AM_CFLAGS) $(CJSON_CFLAGS) $(CMOCKA_CFLAGS)
bench_test_http_LDADD = $(CJSON_LIBS) $(CMOCKA_LIBS)

TESTS += tests/integration/test_bench.py tests/integration/test_slowhttp.py tests/integration/test_compare.py
EXTRA_DIST += tests/integration/test_bench.py tests/integration/test_slowhttp.py tests/integration/test_compare.py bench/README.md bench/RESULTS.md

# bench/compare: agentpool against uWSGI, gunicorn and Celery (run by hand;
# make check runs only its tokens workload at its smallest, test_compare.py),
# its helpers and the C echo ceiling it builds with cc.
EXTRA_DIST += bench/compare bench/chaos-broker bench/broker-scale bench/stats-cost bench/instr-per-msg bench/cpu-per-msg bench/client-async bench/worker-start bench/pools-split bench/sessions-state bench/a2a bench/compare.d/app.py bench/compare.d/celery_app.py \
	bench/compare.d/celery_client.py bench/compare.d/interp_ceiling.py \
	bench/compare.d/peers.py bench/compare.d/procs.py bench/compare.d/report.py \
	bench/compare.d/asyncio_ceiling.py bench/compare.d/agents.py \
	bench/echo_ceiling.c
