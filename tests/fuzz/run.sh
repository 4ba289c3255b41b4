#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# run.sh - runs every libFuzzer target briefly and deterministically.
#
# For each tests/fuzz/fuzz_*.c in the source tree, runs the binary that
# make check built (see tests/fuzz/local.mk) with -seed=1 over its seed
# corpus for a fixed number of runs (-runs=N in tests/fuzz/options/<target>.flags,
# default below).  libFuzzer writes new corpus entries into the first
# directory it is given, so that is a fresh work directory in the build
# tree; crash artefacts go to the build tree too.  Exits 77 (skip) only
# when configure found no clang; a target without a binary or seeds fails.
set -u

if [ -z "${AP_CLANG:-}" ]; then
    echo "SKIP: configure found no clang, so no fuzz targets were built"
    exit 77
fi
src=${AP_SRCDIR:?AP_SRCDIR not set}/tests/fuzz
bld=${AP_BUILDDIR:?AP_BUILDDIR not set}/tests/fuzz
default_flags="-runs=20000"

status=0
ran=0
mkdir -p "$bld/artifacts" || exit 1
for c in "$src"/fuzz_*.c; do
    [ -e "$c" ] || continue
    t=$(basename "$c" .c)
    bin=$bld/$t
    seeds=$src/corpus/$t
    if [ ! -x "$bin" ]; then
        echo "FAIL: $bin was not built (is $t listed in FUZZ_TARGETS in tests/fuzz/local.mk?)"
        status=1
        continue
    fi
    if [ ! -d "$seeds" ]; then
        echo "FAIL: $t has no seed corpus ($seeds)"
        status=1
        continue
    fi
    flags=$default_flags
    [ -f "$src/options/$t.flags" ] && flags=$(grep -v "^#" "$src/options/$t.flags")
    dict=
    [ -f "$src/options/$t.dict" ] && dict=-dict=$src/options/$t.dict
    work=$bld/work/$t
    rm -rf "$work" && mkdir -p "$work" || exit 1

    echo "== $t $flags"
    # libFuzzer exits 77 on a crash by default: never let that read as a skip.
    # shellcheck disable=SC2086 # flags is a word list on purpose
    "$bin" -seed=1 $flags -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
        -error_exitcode=1 -timeout_exitcode=1 \
        -artifact_prefix="$bld/artifacts/$t-" $dict "$work" "$seeds" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "FAIL: $t exited $rc; the input that failed is in $bld/artifacts/ (rerun: $bin <file>)"
        status=1
    fi
    ran=$((ran + 1))
done
if [ $ran -eq 0 ] && [ $status -eq 0 ]; then
    echo "FAIL: no fuzz targets found in $src"
    status=1
fi
exit $status
