#!/usr/bin/env bash
# Regenerates docs/playground.png: starts a throwaway server on a free loopback
# port, opens the playground in headless chromium (tests/browser, puppeteer-core
# from its lock file), transcribes a real recording, talks into the fake
# microphone with the same recording, and saves the page. Needs a build
# (scripts/build.sh), chromium and npm (scripts/bootstrap.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
clip=${1:-}
if [ -z "$clip" ]; then
  for d in "$root/../shared/eval/real" /work/shared/eval/real; do
    [ -f "$d/ps_librivox_sns01_0890.wav" ] && clip="$d/ps_librivox_sns01_0890.wav" && break
  done
fi
[ -n "$clip" ] || { echo "screenshot: no clip given and shared/eval/real not found" >&2; exit 1; }
command -v chromium >/dev/null || { echo "screenshot: chromium is not installed (scripts/bootstrap.sh)" >&2; exit 1; }
[ -d tests/browser/node_modules/puppeteer-core ] || (cd tests/browser && npm ci --no-audit --no-fund)
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# the fake microphone: the clip, then a pause so the stream sends a final
ffmpeg -nostdin -loglevel error -i "$clip" -af apad=pad_dur=1.5 -ar 16000 -ac 1 "$work/mic.wav"
build/listend keys init --data "$work/data" >/dev/null
key=$(build/listend keys issue --data "$work/data" --name "playground demo" --expires-in 30d 2>/dev/null)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
build/listend serve --host 127.0.0.1 --port "$port" --data "$work/data" --workers 1 --log-level warning &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
node tests/browser/playground.mjs screenshot "http://127.0.0.1:$port" "$key" "$work/mic.wav" "$root/docs/playground.png" \
  >/dev/null
echo "wrote docs/playground.png"
