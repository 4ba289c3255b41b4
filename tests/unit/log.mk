# SPDX-License-Identifier: BSD-2-Clause
# cmocka unit tests for common/: log.c (compiled into the test, with a
# made-up clock): the per-call-site rate limit and the log file.
check_PROGRAMS += tests/unit/test_log
TESTS += tests/unit/test_log
tests_unit_test_log_SOURCES = tests/unit/test_log.c common/json.c common/utf8.c common/safefile.c
tests_unit_test_log_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_log_LDADD = $(CMOCKA_LIBS)

# cmocka unit test for common/backoff.c, the one exponential backoff.
check_PROGRAMS += tests/unit/test_backoff
TESTS += tests/unit/test_backoff
tests_unit_test_backoff_SOURCES = tests/unit/test_backoff.c common/backoff.c include/ap_backoff.h
tests_unit_test_backoff_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_backoff_LDADD = $(CMOCKA_LIBS)
