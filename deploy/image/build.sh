#!/usr/bin/env bash
# The image's build stage, as a script, so that CI runs the very recipe the
# Dockerfile runs (tests/integration/test_deploy.py) without a Docker engine.
#
#   deploy/image/build.sh deps      apt-get install build-packages.txt (root)
#   deploy/image/build.sh build     compile `listend` and install it into $DESTDIR$PREFIX
#
# Environment (all optional):
#   LD_BUILD_DIR  cmake build dir (default /tmp/listend-build). An existing,
#                 already configured dir is reused as it is (its build type is not
#                 changed), so a test can reuse the dir CI built a moment ago.
#   BUILD_TYPE    for a new build dir (default Release)
#   DESTDIR       staging root of the install (default empty = real root)
#   PREFIX        install prefix inside it (default /usr/local)
#   JOBS          parallel compile jobs (default: nproc)
# Extra arguments after `build` go to cmake when it configures a new dir.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
src="$(cd "$here/../.." && pwd)"
cmd="${1:-}"
[ $# -gt 0 ] && shift

packages() { grep -v -e '^\s*#' -e '^\s*$' "$1"; }

case "$cmd" in
deps)
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2046
    apt-get install -y -qq --no-install-recommends $(packages "$here/build-packages.txt") >/dev/null
    rm -rf /var/lib/apt/lists/*
    ;;
build)
    build="${LD_BUILD_DIR:-/tmp/listend-build}"
    prefix="${PREFIX:-/usr/local}"
    root="${DESTDIR:-}"
    if [ ! -f "$build/CMakeCache.txt" ]; then
        cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" "$@" >/dev/null
    fi
    # Only the server binary: unit tests are CI's business, not the image's.
    cmake --build "$build" --target listend -j"${JOBS:-$(nproc)}"
    # No install() rules in CMakeLists.txt yet, so the layout is laid out here:
    # the binary (stripped: debug info stays in the build dir) and the two
    # container helpers next to it (they find `listend` through their own dir).
    install -D -m 0755 -s "$build/listend" "$root$prefix/bin/listend"
    install -D -m 0755 "$here/entrypoint.sh" "$root$prefix/bin/listend-entrypoint"
    install -D -m 0755 "$here/healthcheck.sh" "$root$prefix/bin/listend-healthcheck"
    install -D -m 0644 "$src/docs/deploy.md" "$root$prefix/share/doc/listend/deploy.md"
    echo "installed $root$prefix/bin/listend"
    ;;
*)
    echo "usage: $0 deps | build [cmake args...]" >&2
    exit 2
    ;;
esac
