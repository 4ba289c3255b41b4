# SPDX-License-Identifier: BSD-2-Clause
# cmocka tests for the master's dead-letter file (pool/ops/dlq.c, with
# pool/path/scan.c for its line validator).  Built with AP_ALLOC_TEST, so a
# leak fails a test (common/alloc.c compiled the same way, as in pool.mk),
# and with DLQ_TEST_HOOKS, which lets the test make one write(2) or
# fsync(2) fail (a full disk, an I/O error) and shrink the line cap.
check_PROGRAMS += tests/unit/test_dlq
TESTS += tests/unit/test_dlq

tests_unit_test_dlq_SOURCES = tests/unit/test_dlq.c pool/ops/dlq.c pool/ops/dlq.h pool/path/scan.c pool/path/scan.h \
	common/alloc.c
tests_unit_test_dlq_CPPFLAGS = $(AM_CPPFLAGS) $(POOL_INC) -DAP_ALLOC_TEST -DDLQ_TEST_HOOKS
tests_unit_test_dlq_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(CJSON_CFLAGS)
tests_unit_test_dlq_LDADD = common/libapcommon.a $(CJSON_LIBS) $(CMOCKA_LIBS)

# cmocka tests for dead letters held in memory (pool/ops/dlqheld.c) over the
# real dlq.c, built the same way (AP_ALLOC_TEST, DLQ_TEST_HOOKS).
check_PROGRAMS += tests/unit/test_dlqheld
TESTS += tests/unit/test_dlqheld
tests_unit_test_dlqheld_SOURCES = tests/unit/test_dlqheld.c pool/ops/dlqheld.c pool/ops/dlqheld.h pool/ops/dlq.c pool/ops/dlq.h \
	pool/path/scan.c pool/path/scan.h common/alloc.c
tests_unit_test_dlqheld_CPPFLAGS = $(AM_CPPFLAGS) $(POOL_INC) -DAP_ALLOC_TEST -DDLQ_TEST_HOOKS
tests_unit_test_dlqheld_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(CJSON_CFLAGS)
tests_unit_test_dlqheld_LDADD = common/libapcommon.a $(CJSON_LIBS) $(CMOCKA_LIBS)
