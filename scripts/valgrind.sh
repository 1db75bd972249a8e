#!/usr/bin/env bash
# Memcheck run of the real server: starts `listend serve` (one decoder, one
# HTTP thread: tolerable under valgrind) and drives batch, stream, callback
# job and error requests through it, then SIGTERM. Fails on invalid memory
# accesses, uses of uninitialised values or definite leaks. Third-party noise
# is suppressed in scripts/valgrind.supp (each entry says why).
#
#   scripts/valgrind.sh          LD_VG_BUILD=dir (default build-hard), LD_VG_KEEP=1 keeps the data dir
set -euo pipefail
cd "$(dirname "$0")/.."
build=${LD_VG_BUILD:-build-hard}
cmake -S . -B "$build" -DLD_WERROR=ON >/dev/null
cmake --build "$build" -j2 --target listend >/dev/null

work=$(mktemp -d /tmp/listend-valgrind.XXXXXX)
[ -n "${LD_VG_KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
bin="$PWD/$build/listend"
"$bin" keys init --data "$work/data" >/dev/null
key=$("$bin" keys issue --name valgrind --rpm 1000 --data "$work/data")
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

echo "== valgrind: starting listend on 127.0.0.1:$port (log $work/valgrind.log)"
valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
    --track-origins=no --error-exitcode=97 --num-callers=30 --suppressions=scripts/valgrind.supp \
    --log-file="$work/valgrind.log" \
    "$bin" serve --host 127.0.0.1 --port "$port" --data "$work/data" --workers 1 --http-threads 1 \
    --allow-private-urls --log-level warning >"$work/server.log" 2>&1 &
vg=$!

set +e
LD_VG_URL="http://127.0.0.1:$port" LD_VG_KEY="$key" /usr/bin/python3 - <<'PY'
import asyncio, glob, json, os, sys, time
import requests, websockets
sys.path.insert(0, "tests/integration")
from conftest import EVAL_DIR, GOFORWARD
from webhook_receiver import WebhookReceiver

url, key = os.environ["LD_VG_URL"], os.environ["LD_VG_KEY"]
auth = {"Authorization": f"Token {key}"}
deadline = time.time() + 300  # model loading under memcheck is slow
while True:
    try:
        if requests.get(url + "/health", timeout=5).status_code == 200:
            break
    except requests.RequestException:
        pass
    if time.time() > deadline:
        sys.exit("server did not become healthy under valgrind")
    time.sleep(1)

def expect(r, status):
    if r.status_code != status:
        sys.exit(f"{r.request.method} {r.request.url}: {r.status_code} (expected {status}) {r.text[:300]}")
    return r

raw = open(GOFORWARD, "rb").read()
wav = sorted(glob.glob(os.path.join(EVAL_DIR, "*.wav")))[0]
expect(requests.get(url + "/v1/license", headers=auth, timeout=60), 200)
r = expect(requests.post(url + "/v1/listen?encoding=linear16&sample_rate=16000", data=raw, headers=auth, timeout=300), 200)
print("batch raw:", r.json().get("transcript", r.text[:80]))
with open(wav, "rb") as f:
    expect(requests.post(url + "/v1/listen?timestamps=true&format=srt", headers=auth,
                         files={"audio": ("a.wav", f, "audio/wav")}, timeout=300), 200)
# errors: no key, bad key, garbage audio, bad parameter, unknown route, oversized JSON
expect(requests.post(url + "/v1/listen", data=raw, timeout=60), 401)
expect(requests.post(url + "/v1/listen", data=raw, headers={"Authorization": "Token ld1.x.y"}, timeout=60), 401)
expect(requests.post(url + "/v1/listen", data=b"\0garbage" * 100, headers={**auth, "Content-Type": "audio/wav"}, timeout=60), 415)
expect(requests.post(url + "/v1/listen?num_speakers=99", data=raw, headers=auth, timeout=60), 400)
expect(requests.get(url + "/nope", timeout=60), 404)
expect(requests.post(url + "/v1/listen", data="{", headers={**auth, "Content-Type": "application/json"}, timeout=60), 400)

async def stream():
    ws_url = url.replace("http", "ws", 1) + "/v1/listen/stream?encoding=linear16&sample_rate=16000"
    async with websockets.connect(ws_url, subprotocols=["token", key], open_timeout=60) as ws:
        for i in range(0, len(raw), 3200):
            await ws.send(raw[i:i + 3200])
        await ws.send(json.dumps({"type": "CloseStream"}))
        msgs = []
        try:
            async for m in ws:
                msgs.append(m)
        except websockets.ConnectionClosed:
            pass
        return msgs
msgs = asyncio.run(asyncio.wait_for(stream(), 300))
print("stream messages:", len(msgs))

with WebhookReceiver() as rx:
    r = expect(requests.post(url + "/v1/listen", data=raw, headers=auth, timeout=60,
                             params={"encoding": "linear16", "sample_rate": 16000, "callback_url": rx.url("/hook")}), 202)
    job = r.json()["job_id"]
    rx.wait_for(1, timeout=300, job_id=job)
    expect(requests.get(url + f"/v1/jobs/{job}", headers=auth, timeout=60), 200)
print("job delivered:", job)
PY
drc=$?
set -e
kill -TERM $vg 2>/dev/null || true
vrc=0
wait $vg || vrc=$?
echo "== valgrind: driver exit $drc, valgrind/listend exit $vrc"
grep -E 'ERROR SUMMARY|definitely lost|indirectly lost|Invalid (read|write)|uninitialised' "$work/valgrind.log" | head -20
if [ $drc -ne 0 ] || [ $vrc -ne 0 ]; then
    echo "== valgrind: FAILED (full log: $work/valgrind.log, server log: $work/server.log)" >&2
    [ -n "${LD_VG_KEEP:-}" ] || { grep -A30 -E 'Invalid|definitely lost in' "$work/valgrind.log" | head -120 >&2; tail -20 "$work/server.log" >&2; }
    exit 1
fi
echo "== valgrind: clean"
