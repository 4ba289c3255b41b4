# SPDX-License-Identifier: BSD-2-Clause
# cmocka tests of the broker ingress's pure parts (docs/scale-out.md):
# test_broker_wire is the "broker" setting's text form (brokercfg.c, with
# the exact refusals) and the wire forms of bentry.c (entry fields from a
# hiredis reply, the line fed, the answer key, final lines) and the ring
# of remembered cancels (bcancel.c).  Its
# allocations go through cmocka's allocator (AP_ALLOC_TEST) so leaks fail it.
check_PROGRAMS += tests/unit/test_broker_wire
TESTS += tests/unit/test_broker_wire
tests_unit_test_broker_wire_SOURCES = tests/unit/test_broker_wire.c pool/broker/bentry.c pool/broker/bentry.h \
	pool/broker/bcancel.c pool/broker/bcancel.h \
	pool/core/brokercfg.c pool/core/brokercfg.h pool/redis/rspec.c pool/redis/rspec.h common/alloc.c
tests_unit_test_broker_wire_CPPFLAGS = $(AM_CPPFLAGS) $(POOL_INC) -DAP_ALLOC_TEST
tests_unit_test_broker_wire_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(HIREDIS_CFLAGS)
tests_unit_test_broker_wire_LDADD = common/libapcommon.a $(HIREDIS_LIBS) $(CMOCKA_LIBS)
