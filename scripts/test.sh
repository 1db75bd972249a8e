#!/usr/bin/env bash
# The README's second command: builds with -Werror and runs every test:
#   unit tests (ctest), integration tests (pytest, real binary; includes the
#   SDKs' Python and node tests and a 60 s soak), short libFuzzer runs of every
#   target, the ASan+UBSan build with ctest + an integration subset, and a
#   valgrind memcheck run of the server.
# Extra arguments go to the main pytest run (e.g. -k stream -x).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/build.sh -DLD_WERROR=ON

echo "== unit tests (ctest)"
(cd build && ctest --output-on-failure -j2)

echo "== integration tests (pytest)"
# Debian's interpreter has python3-pytest/requests/websockets; a python3 earlier on PATH may not.
set +e
LISTEND_BIN="$PWD/build/listend" /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then echo "no integration tests collected" >&2; exit 1; fi
if [ $rc -ne 0 ]; then exit $rc; fi

echo "== fuzz (5 s per target)"
scripts/fuzz.sh 5

echo "== sanitizers (ASan+UBSan: ctest + integration subset)"
scripts/sanitize.sh

echo "== valgrind memcheck (server run: batch, stream, job, errors)"
scripts/valgrind.sh
