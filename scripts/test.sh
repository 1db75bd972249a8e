#!/usr/bin/env bash
# The README's second command: builds with -Werror and runs every test
# (unit tests with ctest, integration tests with pytest against the real binary).
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
[ $rc -eq 5 ] && { echo "no integration tests collected" >&2; exit 1; }
exit $rc
