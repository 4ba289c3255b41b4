# SPDX-License-Identifier: BSD-2-Clause
# cmocka unit tests for the statistics modules: the duration histograms
# (pool/ops/hist.c), the per-second counters (pool/ops/rate.c) and the Prometheus
# text writer (pool/ops/promtext.c, with a real evbuffer).
check_PROGRAMS += tests/unit/test_hist tests/unit/test_rate tests/unit/test_promtext
TESTS += tests/unit/test_hist tests/unit/test_rate tests/unit/test_promtext

tests_unit_test_hist_SOURCES = tests/unit/test_hist.c pool/ops/hist.c pool/ops/hist.h
tests_unit_test_hist_CPPFLAGS = $(AM_CPPFLAGS) $(POOL_INC)
tests_unit_test_hist_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_hist_LDADD = $(CMOCKA_LIBS)

tests_unit_test_rate_SOURCES = tests/unit/test_rate.c pool/ops/rate.c pool/ops/rate.h
tests_unit_test_rate_CPPFLAGS = $(AM_CPPFLAGS) $(POOL_INC)
tests_unit_test_rate_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_rate_LDADD = $(CMOCKA_LIBS)

tests_unit_test_promtext_SOURCES = tests/unit/test_promtext.c pool/ops/promtext.c pool/ops/promtext.h pool/ops/hist.c pool/ops/hist.h
tests_unit_test_promtext_CPPFLAGS = $(AM_CPPFLAGS) $(POOL_INC)
tests_unit_test_promtext_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(LIBEVENT_CFLAGS)
tests_unit_test_promtext_LDADD = $(LIBEVENT_LIBS) $(CMOCKA_LIBS)

# test_evring: the event stream's pure parts (pool/ops/evring.c: the ring,
# topic patterns, where a replay starts), with cmocka's allocator so a
# leaked event text fails.
check_PROGRAMS += tests/unit/test_evring
TESTS += tests/unit/test_evring
tests_unit_test_evring_SOURCES = tests/unit/test_evring.c pool/ops/evring.c pool/ops/evring.h common/alloc.c
tests_unit_test_evring_CPPFLAGS = $(POOL_UNIT_ALLOC_CPPFLAGS)
tests_unit_test_evring_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_evring_LDADD = $(CMOCKA_LIBS)

# test_keys: the API keys file parser (pool/ops/keyfile.c, with real files
# for keyfile_load) and the per-minute token bucket (pool/ops/tbucket.c),
# with cmocka's allocator so a leaked pools list fails.
check_PROGRAMS += tests/unit/test_keys
TESTS += tests/unit/test_keys
tests_unit_test_keys_SOURCES = tests/unit/test_keys.c pool/ops/keyfile.c pool/ops/keyfile.h pool/ops/tbucket.c \
	pool/ops/tbucket.h common/alloc.c common/safefile.c
tests_unit_test_keys_CPPFLAGS = $(POOL_UNIT_ALLOC_CPPFLAGS)
tests_unit_test_keys_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(CJSON_CFLAGS)
tests_unit_test_keys_LDADD = $(CJSON_LIBS) $(CMOCKA_LIBS) -lm
