#!/usr/bin/env bash
# README command 2: install everything the tests drive, build, run every test.
# Privileged tests (real BPF programs, real kernel traffic) run when this is
# root on a kernel with BTF, and skip with a printed reason otherwise.
#
# Three builds, each in its own directory:
#   $BUILD_DIR (build)            every test: unit, schema, privileged, the 30 s soak
#   $ASAN_BUILD_DIR (build-asan)  the same under AddressSanitizer + UBSan, soak excluded
#   build-fuzz                    each libFuzzer target for $FUZZ_SECONDS (30) seconds
#   build-static                  the kernel matrix (scripts/vm-matrix.sh), beside the last two
# RW_TEST_ASAN=0 / RW_TEST_FUZZ=0 / RW_TEST_MATRIX=0 skip those (quick local runs). Extra
# arguments go to both ctest runs (e.g. -L unit).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
export BUILD_DIR=${BUILD_DIR:-build}
scripts/build.sh -DRW_BUILD_TESTS=ON
(cd "$BUILD_DIR" && ctest --output-on-failure --timeout 300 "$@")

# The kernel matrix (scripts/vm-matrix.sh: this agent on Debian's 5.10, 6.1, 6.12
# and newest kernels under qemu) shares nothing with the sanitizer and fuzz runs
# below (its own build-static/ and kernel cache; guests run their own kernels),
# so it runs beside them and the wall time is the longer of the two, not the
# sum. Its output is printed when it is done. RW_TEST_MATRIX=0 skips it.
matrix_pid=""
if [ "${RW_TEST_MATRIX:-1}" != 0 ]; then
    matrix_log=$(realpath -m "$BUILD_DIR/vm-matrix.log")
    echo "test.sh: kernel matrix started in the background (log: $matrix_log)"
    scripts/vm-matrix.sh >"$matrix_log" 2>&1 &
    matrix_pid=$!
    trap 'if [ -n "$matrix_pid" ]; then kill "$matrix_pid" 2>/dev/null || true; fi' EXIT
fi

# Sanitizers. The unit tests always run here. So do the privileged tests: they
# are what drives the real binary through its error exits (2, 3), signals in a
# flood, file rotation, SIGHUP and teardown, the paths where a lifetime bug in
# the RAII teardown would hide and that no unit test reaches; they cost about as
# long again as the plain privileged run (a few minutes of a 90-minute CI
# budget). The soak is left out: its heap threshold is about the real
# allocator, and ASan's quarantine would make it meaningless. The release
# package tests (label package) are not run twice: they build and test the
# static release binary, which is the same whatever this build is.
if [ "${RW_TEST_ASAN:-1}" != 0 ]; then
    asan_dir=${ASAN_BUILD_DIR:-build-asan}
    BUILD_DIR=$asan_dir scripts/build.sh -DRW_BUILD_TESTS=ON -DRW_SANITIZE=ON
    # Leaks are errors too; abort on the first report so ctest sees it.
    (cd "$asan_dir" && ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
        ctest --output-on-failure --timeout 600 -LE 'soak|package' "$@")
fi

# Fuzzing: every target for a bounded time (scripts/fuzz.sh --seconds N).
if [ "${RW_TEST_FUZZ:-1}" != 0 ]; then
    scripts/fuzz.sh --seconds "${FUZZ_SECONDS:-30}"
fi

if [ -n "$matrix_pid" ]; then
    matrix_rc=0
    wait "$matrix_pid" || matrix_rc=$?
    matrix_pid=""
    cat "$matrix_log"
    echo "test.sh: kernel matrix exit $matrix_rc"
    exit "$matrix_rc"
fi
