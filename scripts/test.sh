#!/usr/bin/env bash
# The README's second command: builds with -Werror and runs every test:
#   unit tests (ctest), integration tests (pytest, real binary; includes the
#   SDKs' Python and node tests and a 60 s soak), short libFuzzer runs of every
#   target, the ASan+UBSan build with ctest + an integration subset, and a
#   valgrind memcheck run of the server. The fuzz and ASan builds run in the
#   background (nice 19) from the build stage on.
# A stage that cannot run on this host (exit 77, e.g. valgrind that cannot
# emulate this CPU) is reported as NOT RUN, loudly, in the summary at the end;
# it never prints as passed. Any other failure stops the run with its status.
# Extra arguments go to the main pytest run (e.g. -k stream -x).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
summary=()

report() {
    echo ""
    echo "== summary ($(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s)"
    printf '   %s\n' "${summary[@]}"
}

# stage NAME CMD...: runs CMD; 0 = passed, 77 = not run here (said so above), else the run stops.
stage() {
    local name=$1 rc=0 t0=$SECONDS
    shift
    echo "== $name"
    "$@" || rc=$?
    case $rc in
        0) summary+=("passed   $name ($((SECONDS - t0)) s)") ;;
        77) summary+=("NOT RUN  $name -- could not run on this host, see its message above") ;;
        *) summary+=("FAILED   $name (exit $rc)"); report; exit "$rc" ;;
    esac
}

integration() {
    # Debian's interpreter has python3-pytest/requests/websockets; a python3 earlier on PATH may not.
    local rc=0
    # Three workers on two cores, a test file each (python3-pytest-xdist): many tests
    # wait on a server, a peer or a clock (the soak's minute, a rate-limit window), so a
    # third overlaps those waits: 546 s instead of 606 s on this 2-core VM (LD_TEST_JOBS=1: one process).
    LISTEND_BIN="$PWD/build/listend" /usr/bin/python3 -m pytest -q -p no:cacheprovider --durations=30 \
        -n "${LD_TEST_JOBS:-3}" --dist loadfile tests/integration "$@" || rc=$?
    if [ $rc -eq 5 ]; then echo "no integration tests collected" >&2; return 1; fi
    return $rc
}

# The fuzz and ASan+UBSan builds need nothing from the tests: they compile at the
# lowest CPU priority while the unit and integration tests run (which mostly wait on
# servers and peers, leaving a core idle part of the time), so their stages later only
# wait for them. Nice 19 keeps the tests' timing as it was without them.
prebuild_log=$(mktemp /tmp/listend-prebuild.XXXXXX)
prebuild=""
trap '[ -z "$prebuild" ] || kill -- "-$prebuild" 2>/dev/null; rm -f "$prebuild_log"' EXIT
prebuilt() { # the background builds' status; their output when they failed
    local rc=0
    wait "$prebuild" || rc=$?
    [ $rc -eq 0 ] || { cat "$prebuild_log" >&2; echo "fuzz/ASan build failed (exit $rc)" >&2; }
    prebuild=""
    return $rc
}

stage "bootstrap (apt packages)" scripts/bootstrap.sh
stage "build (-Werror)" scripts/build.sh -DLD_WERROR=ON
# Own session (setsid), so a run that stops early takes the compilers with it. A new
# session is a new scheduler autogroup where the kernel has them (Debian does): nice
# only ranks tasks inside one group, so the group itself is niced as well.
setsid nice -n 19 bash -c '{ echo 19 >/proc/self/autogroup; } 2>/dev/null
    LD_FUZZ_BUILD_ONLY=1 scripts/fuzz.sh && LD_ASAN_BUILD_ONLY=1 scripts/sanitize.sh' >"$prebuild_log" 2>&1 &
prebuild=$!
stage "unit tests (ctest)" bash -c 'cd build && ctest --output-on-failure -j2'
stage "integration tests (pytest)" integration "$@"
stage "fuzz and ASan+UBSan builds (background, since the build stage)" prebuilt
stage "fuzz (5 s per target)" env LD_FUZZ_NO_BUILD=1 scripts/fuzz.sh 5
stage "sanitizers (ASan+UBSan: ctest + integration subset)" env LD_ASAN_NO_BUILD=1 scripts/sanitize.sh
# The build stage's binary has the same configuration valgrind.sh would build
# (RelWithDebInfo, -Werror), so the memcheck run reuses it instead of a 4th build.
stage "valgrind memcheck (server run: batch, stream, job, errors)" env LD_VG_BIN="$PWD/build/listend" scripts/valgrind.sh
report
