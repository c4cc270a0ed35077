#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (clang, ASan + UBSan) into a separate
# build directory and runs each one for a bounded time.
#
#   scripts/fuzz.sh                        # every target, 60 s each
#   scripts/fuzz.sh --seconds 30           # what CI runs (scripts/test.sh)
#   scripts/fuzz.sh --seconds 600 decode   # one target, longer
#
# The repository corpus (fuzz/corpus/<target>/) is read, never written: new
# inputs go to $FUZZ_BUILD_DIR/corpus/<target>/. A crash stops the run with
# exit 1 and leaves the input in $FUZZ_BUILD_DIR/artifacts/<target>/: fix the
# bug, then add that file to fuzz/corpus/<target>/ (the unit tests replay it).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
seconds=60
targets=()
while (($#)); do
    case "$1" in
    --seconds)
        seconds=$2
        shift 2
        ;;
    -h | --help)
        sed -n '2,13p' "$0"
        exit 0
        ;;
    *)
        targets+=("$1")
        shift
        ;;
    esac
done
if ((${#targets[@]} == 0)); then
    # The list lives in fuzz/CMakeLists.txt: one place to add a target.
    read -r -a targets <<<"$(sed -n 's/^set(RW_FUZZ_TARGETS \(.*\))$/\1/p' fuzz/CMakeLists.txt)"
fi

build=${FUZZ_BUILD_DIR:-build-fuzz}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
    -DCMAKE_CXX_COMPILER=clang++ -DRW_FUZZ=ON -DRW_BUILD_TESTS=OFF >/dev/null
if ! cmake --build "$build" -j"$(nproc)" --target "${targets[@]/#/fuzz_}" >"$build/build.log" 2>&1; then
    tail -40 "$build/build.log" >&2
    exit 2
fi
build=$(cd "$build" && pwd)

# The cli target probes relative --output names: give it a scratch directory.
scratch=$(mktemp -d /tmp/rw-fuzz-XXXXXX)
trap 'rm -rf "$scratch"' EXIT
status=0
for t in "${targets[@]}"; do
    mkdir -p "$build/corpus/$t" "$build/artifacts/$t"
    echo "fuzz: $t for ${seconds}s" >&2
    if ! (cd "$scratch" && "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/artifacts/$t/" \
        "$build/corpus/$t" "$src/fuzz/corpus/$t" >"$build/fuzz_$t.log" 2>&1); then
        echo "fuzz: $t FAILED; input in $build/artifacts/$t/, log $build/fuzz_$t.log:" >&2
        tail -40 "$build/fuzz_$t.log" >&2
        status=1
        continue
    fi
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$build/fuzz_$t.log" |
        sed "s/^/fuzz: $t /" >&2
done
exit $status
