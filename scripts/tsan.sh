#!/usr/bin/env bash
# ThreadSanitizer run (a developer check, not part of scripts/test.sh: ≈ 6 min on
# 2 cores): builds listend with clang-14 and -DLD_TSAN=ON into build-tsan, then
# drives the concurrent paths — streams (loop thread vs decoder workers), jobs,
# overload, shutdown, event streams that lose their client — against it. Any
# ThreadSanitizer report fails the run (reports go to files in a scratch dir;
# the Debian libraries are not instrumented, but their pthread calls are
# intercepted, so their locks are seen). docs/hardening.md has what it found.
#
#   scripts/tsan.sh [extra pytest args]      LD_TSAN_BUILD=dir (default build-tsan)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${LD_TSAN_BUILD:-build-tsan}
command -v clang-14 >/dev/null || { echo "tsan: clang-14 is not installed (scripts/bootstrap.sh)" >&2; exit 77; }

echo "== tsan: building $build (-DLD_TSAN=ON, clang-14)"
cmake -S . -B "$build" -DLD_TSAN=ON -DCMAKE_C_COMPILER=clang-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target listend >/dev/null

reports=$(mktemp -d /tmp/listend-tsan.XXXXXX)
trap 'rm -rf "$reports"' EXIT
export TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1:history_size=4:log_path=$reports/tsan"

echo "== tsan: integration subset"
# TSan exits 66 when it reported something; a server stopped by SIGTERM then fails
# its test too, which is the point. Tests run one at a time: sanitized code is
# 5-15x slower, and timing bounds are not what this run checks.
set +e
LISTEND_BIN="$PWD/$build/listend" /usr/bin/python3 -m pytest -q -p no:cacheprovider --basetemp="$reports/pytest" \
    tests/integration/test_stream.py tests/integration/test_jobs.py tests/integration/test_overload.py \
    tests/integration/test_server_shutdown.py \
    "tests/integration/test_compat.py::test_openai_stream_left_early_is_cancelled_and_not_charged" \
    --deselect "tests/integration/test_stream.py::test_twenty_concurrent_streams" "$@"
prc=$?
set -e
found=$(find "$reports" -maxdepth 1 -name 'tsan.*' | sort)
rc=0
if [ -n "$found" ]; then
    rc=1
    for f in $found; do
        echo "== tsan report: $f" >&2
        grep -E 'WARNING: ThreadSanitizer|#[0-3] ' "$f" | head -20 >&2
    done
fi
[ $prc -eq 0 ] || { [ -n "$found" ] || rc=1; }
[ $rc -eq 0 ] && echo "== tsan: clean" || echo "== tsan: FAILED" >&2
exit $rc
