#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/<name>.c -> fuzz_<name>, clang-14,
# ASan+UBSan) and runs each for a bounded time, starting from its committed
# seeds in fuzz/corpus/<name>/ (which include the regress-* inputs of bugs
# already found, so every run replays them first). Fails on any crash, leak,
# sanitizer report, timeout or out-of-memory.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]     (default 5 s, all targets)
#   LD_FUZZ_NO_BUILD=1: run the binaries already built; LD_FUZZ_BUILD_ONLY=1: build and stop; LD_FUZZ_BUILD=dir, LD_FUZZ_CC=clang;
#   LD_FUZZ_WORK=dir: keep the grown corpus there instead of a throw-away directory;
#   LD_FUZZ_JOBS=n: targets run at once (default: CPU cores)
#
# New interesting inputs go to a scratch directory, never into the repository;
# a failing input is saved as build-fuzz/artifacts/<target>/crash-… — copy it
# to fuzz/corpus/<target>/regress-<what> together with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
shift || true
build=${LD_FUZZ_BUILD:-build-fuzz}
cc=${LD_FUZZ_CC:-clang-14}

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in fuzz/*.c; do targets+=("$(basename "$f" .c)"); done
fi

if [ -z "${LD_FUZZ_NO_BUILD:-}" ]; then # set it to reuse the binaries already in $build
    echo "== fuzz: building ${targets[*]} in $build"
    cmake -S . -B "$build" -DLD_FUZZ=ON -DLD_WERROR=ON -DCMAKE_C_COMPILER="$cc" >/dev/null
    cmake --build "$build" -j2 --target "${targets[@]/#/fuzz_}" >/dev/null
fi
[ -z "${LD_FUZZ_BUILD_ONLY:-}" ] || exit 0

# Input size caps: what the entry point would see from one request piece
# (larger media files only slow the search down).
max_len() {
    case $1 in
    decode) echo 65536 ;;
    stream_audio | ws_control) echo 16384 ;;
    *) echo 4096 ;;
    esac
}

if [ -n "${LD_FUZZ_WORK:-}" ]; then # kept between runs (bench/fuzz-long)
    scratch=$LD_FUZZ_WORK
    mkdir -p "$scratch"
else
    scratch=$(mktemp -d /tmp/listend-fuzz.XXXXXX)
    trap 'rm -rf "$scratch"' EXIT
fi
# one_target T: runs T from its seeds; prints ok or the failure (status 1).
one_target() {
    local t=$1 seeds=fuzz/corpus/$1 log
    mkdir -p "$scratch/$t" "$build/artifacts/$t"
    [ -d "$seeds" ] || { echo "fuzz: no seed corpus $seeds" >&2; return 1; }
    log=$build/artifacts/$t/last.log
    # First directory receives new inputs; the seed directory is only read.
    if "$build/fuzz_$t" "$scratch/$t" "$seeds" -max_total_time="$secs" -max_len="$(max_len "$t")" \
        -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 -artifact_prefix="$build/artifacts/$t/" \
        >"$log" 2>&1; then
        echo "fuzz_$t: ok ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs, $(ls "$seeds" | wc -l) seeds)"
    else
        echo "fuzz_$t: FAILED — see $log" >&2
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -20 >&2 || true
        return 1
    fi
}

# Each target is one single-threaded process: run LD_FUZZ_JOBS (default: cores) at a time.
jobs_max=${LD_FUZZ_JOBS:-$(nproc)}
for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done # statuses are in the .rc files
    (if one_target "$t"; then echo 0 >"$scratch/$t.rc"; else echo 1 >"$scratch/$t.rc"; fi) &
done
wait
fail=0
for t in "${targets[@]}"; do [ "$(cat "$scratch/$t.rc" 2>/dev/null)" = 0 ] || fail=1; done
exit $fail
