# cmocka unit test for common/log.c (compiled into the test, with a
# made-up clock): the per-call-site rate limit and the log file.
check_PROGRAMS += tests/unit/test_log
TESTS += tests/unit/test_log
tests_unit_test_log_SOURCES = tests/unit/test_log.c common/json.c common/utf8.c
tests_unit_test_log_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_log_LDADD = $(CMOCKA_LIBS)
