# cmocka unit tests for the statistics modules: the duration histograms
# (pool/hist.c), the per-second counters (pool/rate.c) and the Prometheus
# text writer (pool/promtext.c, with a real evbuffer).
check_PROGRAMS += tests/unit/test_hist tests/unit/test_rate tests/unit/test_promtext
TESTS += tests/unit/test_hist tests/unit/test_rate tests/unit/test_promtext

tests_unit_test_hist_SOURCES = tests/unit/test_hist.c pool/hist.c pool/hist.h
tests_unit_test_hist_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/pool
tests_unit_test_hist_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_hist_LDADD = $(CMOCKA_LIBS)

tests_unit_test_rate_SOURCES = tests/unit/test_rate.c pool/rate.c pool/rate.h
tests_unit_test_rate_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/pool
tests_unit_test_rate_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_rate_LDADD = $(CMOCKA_LIBS)

tests_unit_test_promtext_SOURCES = tests/unit/test_promtext.c pool/promtext.c pool/promtext.h pool/hist.c pool/hist.h
tests_unit_test_promtext_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/pool
tests_unit_test_promtext_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(LIBEVENT_CFLAGS)
tests_unit_test_promtext_LDADD = $(LIBEVENT_LIBS) $(CMOCKA_LIBS)
