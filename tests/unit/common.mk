# SPDX-License-Identifier: BSD-2-Clause
# cmocka unit tests for the text helpers in common/: the UTF-8 check
# (common/utf8.c, against a reference decoder) and the JSON string
# escaper (common/json.c).  test_json compiles pool/path/scan.c in so that
# every escaped string is checked by the master's strict validator and
# read back with scan_unescape().
check_PROGRAMS += tests/unit/test_utf8 tests/unit/test_json
TESTS += tests/unit/test_utf8 tests/unit/test_json

tests_unit_test_utf8_SOURCES = tests/unit/test_utf8.c common/utf8.c include/ap_utf8.h
tests_unit_test_utf8_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_utf8_LDADD = $(CMOCKA_LIBS)

tests_unit_test_json_SOURCES = tests/unit/test_json.c common/json.c common/utf8.c include/ap_json.h \
	pool/path/scan.c pool/path/scan.h
tests_unit_test_json_CPPFLAGS = $(AM_CPPFLAGS) $(POOL_INC)
tests_unit_test_json_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_json_LDADD = $(CMOCKA_LIBS)
