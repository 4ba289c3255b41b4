# SPDX-License-Identifier: BSD-2-Clause
# cmocka unit tests for the request scanner (pool/path/scan.c, compiled in
# directly so the test does not depend on agentpoold's objects) and for
# the frame codec (common/frame.c, through libapcommon.a).
# `tests/unit/test_scan --bench` prints the scanner's speed.
check_PROGRAMS += tests/unit/test_scan tests/unit/test_frame
TESTS += tests/unit/test_scan tests/unit/test_frame

tests_unit_test_scan_SOURCES = tests/unit/test_scan.c pool/path/scan.c pool/path/scan.h
tests_unit_test_scan_CPPFLAGS = $(AM_CPPFLAGS) $(POOL_INC)
tests_unit_test_scan_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_scan_LDADD = common/libapcommon.a $(CMOCKA_LIBS)

tests_unit_test_frame_SOURCES = tests/unit/test_frame.c
tests_unit_test_frame_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_frame_LDADD = common/libapcommon.a $(CMOCKA_LIBS)

# The same tests against the portable (non-SSE2) string skipper.
check_PROGRAMS += tests/unit/test_scan_nosimd
TESTS += tests/unit/test_scan_nosimd
tests_unit_test_scan_nosimd_SOURCES = $(tests_unit_test_scan_SOURCES)
tests_unit_test_scan_nosimd_CPPFLAGS = $(tests_unit_test_scan_CPPFLAGS) -DSCAN_NO_SIMD
tests_unit_test_scan_nosimd_CFLAGS = $(tests_unit_test_scan_CFLAGS)
tests_unit_test_scan_nosimd_LDADD = $(tests_unit_test_scan_LDADD)

# Reading scanner-validated JSON in place (pool/path/jview.c).
check_PROGRAMS += tests/unit/test_jview
TESTS += tests/unit/test_jview
tests_unit_test_jview_SOURCES = tests/unit/test_jview.c pool/path/jview.c pool/path/jview.h pool/path/scan.c
tests_unit_test_jview_CPPFLAGS = $(AM_CPPFLAGS) $(POOL_INC)
tests_unit_test_jview_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_jview_LDADD = common/libapcommon.a $(CMOCKA_LIBS)
