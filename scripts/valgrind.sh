#!/usr/bin/env bash
# Memcheck run of the real server: starts `listend serve` (one decoder, one
# HTTP thread: tolerable under valgrind) and drives batch, stream, callback
# job and error requests through it, then SIGTERM. Fails on invalid memory
# accesses, uses of uninitialised values or definite leaks. Third-party noise
# is suppressed in scripts/valgrind.supp (each entry says why).
#
# Before that, a trial run (`listend --version` under memcheck: every shared
# library's constructors, a few seconds) checks that valgrind can execute this
# binary on this CPU at all. Where it cannot (an instruction valgrind does not
# emulate here), the stage prints why and exits 77 = NOT RUN: never "clean".
# scripts/valgrind_hwy.c keeps the one such case seen so far (RDTSCP in a
# libhwy constructor on AMD hosts) out of the process.
#
#   scripts/valgrind.sh          LD_VG_BUILD=dir (default build-hard), LD_VG_BIN=binary (no build),
#                                LD_VG_KEEP=1 keeps the data dir
#   exit 0 clean, 1 failed, 77 could not run here (see the message)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${LD_VG_BUILD:-build-hard}
if [ -z "${LD_VG_BIN:-}" ]; then
    cmake -S . -B "$build" -DLD_WERROR=ON >/dev/null
    cmake --build "$build" -j2 --target listend >/dev/null
fi

work=$(mktemp -d /tmp/listend-valgrind.XXXXXX)
[ -n "${LD_VG_KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
bin=${LD_VG_BIN:-$PWD/$build/listend}
cc -shared -fPIC -O1 -o "$work/valgrind_hwy.so" scripts/valgrind_hwy.c
vg=(env LD_PRELOAD="$work/valgrind_hwy.so" valgrind --tool=memcheck --error-exitcode=97 --num-callers=30
    --suppressions=scripts/valgrind.supp)

not_run() {
    echo "" >&2
    echo "!! ==================================================================== !!" >&2
    echo "!! valgrind: NOT RUN -- $1" >&2
    echo "!! $(valgrind --version) cannot execute listend on this CPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))." >&2
    echo "!! The memcheck stage did NOT check anything here; the ASan+UBSan stage carries memory-error" >&2
    echo "!! and leak coverage on this host (docs/hardening.md, 'Sanitizers and leaks')." >&2
    grep -E 'unhandled instruction|Unrecognised instruction|Illegal opcode|Process terminating' "$2" | head -5 | sed 's/^/!!   /' >&2
    echo "!! ==================================================================== !!" >&2
    exit 77
}
unsupported='unhandled instruction bytes|Unrecognised instruction|Illegal opcode'

echo "== valgrind: trial run ($bin --version under memcheck)"
trc=0
timeout 120 "${vg[@]}" -q --log-file="$work/trial.log" "$bin" --version >/dev/null 2>&1 || trc=$?
if grep -qE "$unsupported" "$work/trial.log" || [ $trc -eq 132 ]; then
    not_run "the trial run died on an instruction valgrind does not emulate (exit $trc)" "$work/trial.log"
elif [ $trc -ne 0 ]; then
    echo "== valgrind: FAILED: the trial run exited $trc" >&2
    cat "$work/trial.log" >&2
    exit 1
fi

"$bin" keys init --data "$work/data" >/dev/null
key=$("$bin" keys issue --name valgrind --rpm 1000 --data "$work/data")
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

echo "== valgrind: starting listend on 127.0.0.1:$port (log $work/valgrind.log)"
# The driver starts the server itself, so it sees at once when valgrind dies
# instead of waiting out the health deadline.
set +e
LD_VG_URL="http://127.0.0.1:$port" LD_VG_KEY="$key" /usr/bin/python3 - "$work/server.log" \
    "${vg[@]}" --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
    --track-origins=no --log-file="$work/valgrind.log" \
    "$bin" serve --host 127.0.0.1 --port "$port" --data "$work/data" --workers 1 --http-threads 1 --stream-prewarm 0 \
    --allow-private-urls --log-level warning <<'PY'
import asyncio, glob, json, os, signal, subprocess, sys, time
import requests, websockets
sys.path.insert(0, "tests/integration")
from conftest import EVAL_DIR, GOFORWARD
from webhook_receiver import WebhookReceiver

url, key = os.environ["LD_VG_URL"], os.environ["LD_VG_KEY"]
auth = {"Authorization": f"Token {key}"}
with open(sys.argv[1], "w") as log:
    server = subprocess.Popen(sys.argv[2:], stdout=log, stderr=subprocess.STDOUT)


def stop_server(code):
    """Ends the run: SIGTERM (valgrind's leak check runs at exit), then the server's exit status."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=300)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    print(f"server (valgrind) exit status: {server.returncode}")
    sys.exit(code if code else (0 if server.returncode == 0 else 3))


def fail(msg):
    print(msg, file=sys.stderr)
    stop_server(2)


deadline = time.time() + 300  # model loading under memcheck is slow
while True:
    if server.poll() is not None:
        print(f"valgrind/listend exited with {server.returncode} before becoming healthy", file=sys.stderr)
        sys.exit(4)
    try:
        if requests.get(url + "/health", timeout=5).status_code == 200:
            break
    except requests.RequestException:
        pass
    if time.time() > deadline:
        fail("server did not become healthy under valgrind")
    time.sleep(0.5)

def expect(r, status):
    if r.status_code != status:
        fail(f"{r.request.method} {r.request.url}: {r.status_code} (expected {status}) {r.text[:300]}")
    return r

try:
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
except SystemExit:
    raise
except BaseException as e:  # the server died mid-run, a timeout, a protocol error: stop it and say why
    import traceback
    traceback.print_exc()
    fail(f"driver error: {e!r}")
stop_server(0)
PY
drc=$?
set -e
echo "== valgrind: driver exit $drc"
grep -E 'ERROR SUMMARY|definitely lost|indirectly lost|Invalid (read|write)|uninitialised' "$work/valgrind.log" | head -20 || true
if grep -qE "$unsupported" "$work/valgrind.log" 2>/dev/null; then
    not_run "valgrind met an instruction it does not emulate during the server run (driver exit $drc)" "$work/valgrind.log"
fi
if [ $drc -ne 0 ]; then
    echo "== valgrind: FAILED (full log: $work/valgrind.log, server log: $work/server.log)" >&2
    [ -n "${LD_VG_KEEP:-}" ] || { grep -A30 -E 'Invalid|definitely lost in' "$work/valgrind.log" | head -120 >&2; tail -20 "$work/server.log" >&2; }
    exit 1
fi
echo "== valgrind: clean"
