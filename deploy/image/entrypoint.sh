#!/bin/sh
# Container entrypoint: `listend serve` by default; flags alone are passed to
# serve (`docker run IMAGE --workers 4`), any other command runs as given
# (`docker run IMAGE keys list`). exec makes listend PID 1, so the SIGTERM of
# `docker stop` or Kubernetes reaches it directly and starts its drain.
set -eu
case "${1:-}" in
    "" | -*) set -- serve "$@" ;;
esac
exec "$(dirname "$0")/listend" "$@"
