# SPDX-License-Identifier: BSD-2-Clause
# Code both processes need: logging, allocation, clocks, the frame codec,
# the UTF-8 check, the JSON string escaper and the safe file opener.
noinst_LIBRARIES += common/libapcommon.a common/libapcommon_je.a
common_libapcommon_a_SOURCES = common/log.c common/alloc.c common/util.c common/frame.c common/safefile.c \
	common/json.c common/utf8.c common/backoff.c common/bgjob.c \
	include/ap_common.h include/ap_alloc.h include/ap_log.h include/ap_frame.h \
	include/ap_progress.h include/ap_json.h include/ap_utf8.h include/ap_backoff.h include/ap_safefile.h include/ap_bgjob.h include/ap_broker.h
# The master's copy knows it runs on jemalloc (mallctl for its version).
common_libapcommon_je_a_SOURCES = $(common_libapcommon_a_SOURCES)
common_libapcommon_je_a_CFLAGS = $(AM_CFLAGS) $(JEMALLOC_CFLAGS) $(JEMALLOC_DEFS)
