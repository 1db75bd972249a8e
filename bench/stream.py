#!/usr/bin/python3
"""Live-stream benchmark: latency of the first interim and of the final, the
largest number of real-time streams whose finals stay on time, RSS per stream,
server CPU per stream, and how fast brand-new streams start (decoder prewarm).

    /usr/bin/python3 bench/stream.py [--bin build/listend] [--max 16] [--eou 800]
    /usr/bin/python3 bench/stream.py --levels 1,4,8 --repeat 3      # capacity at fixed levels
    /usr/bin/python3 bench/stream.py --cold 1,4,8 [--prewarm N]     # new streams on a fresh server
    /usr/bin/python3 bench/stream.py --levels 8 --idle-wait 90      # ... then RSS after idling
    /usr/bin/python3 bench/stream.py --renice -10 ...               # root, shared machine: others yield

Each stream sends goforward.raw ("go forward ten meters", 2.8 s) in 100 ms
frames (--frame-ms: e.g. 20, as telephony senders do) at real-time pace, then
1.5 s of silence, then close_stream.
 - first interim latency = arrival of the first interim - the moment the audio
   of the first word's start was sent;
 - final latency = arrival of the end-of-utterance final - the moment the audio
   of the last word's end was sent (target: eou_timeout_ms + 150 ms);
 - words: streams whose final has exactly "go forward ten meters".
Capacity waves run on one server whose stream decoders were all created first
(steady state). --cold starts a fresh server for every level, waits until its
--prewarm decoders are ready, and then starts that many streams at once: the
latency a person sees when streams arrive at a server that was idle.
Every line carries the load average of the machine (others may be using it).
Starts its own servers on free loopback ports and stops them.
"""
import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time

import requests
import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import conftest  # noqa: E402  (start_server, GOFORWARD)

CHUNK = 3200  # bytes per frame: 100 ms of 16 kHz linear16 (--frame-ms changes it)
FRAME_S = 0.1
EXPECTED = ["go", "forward", "ten", "meters"]


async def one(uri, headers, audio, eou):
    t0 = None
    first_interim = final_at = None
    final = None

    async with websockets.connect(uri, extra_headers=headers, open_timeout=120) as ws:
        async def reader():
            nonlocal first_interim, final_at, final
            async for m in ws:
                j = json.loads(m)
                if j.get("type") != "transcription":
                    continue
                now = time.monotonic()
                if not j["is_final"] and first_interim is None:
                    first_interim = now
                if j["is_final"] and not j["is_last"] and final is None:
                    final, final_at = j, now
        task = asyncio.ensure_future(reader())
        t0 = time.monotonic()
        for n, i in enumerate(range(0, len(audio), CHUNK)):
            # pace: frame n is sent when its audio would have been spoken
            delay = t0 + n * FRAME_S - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await ws.send(audio[i:i + CHUNK])
        await ws.send(json.dumps({"type": "close_stream"}))
        await asyncio.wait_for(task, 120)
    if not final or not final.get("words"):
        return None
    words = [w for w in final["words"] if w["word"] not in ".,?!"]
    # frames are sent at t0 + n*F and carry audio [n*F, (n+1)*F): audio time x is complete by t0 + x + F
    speech_start_sent = t0 + words[0]["start"] + FRAME_S
    speech_end_sent = t0 + words[-1]["end"] + FRAME_S
    return {
        "first_interim_ms": (first_interim - speech_start_sent) * 1000 if first_interim else None,
        "final_ms": (final_at - speech_end_sent) * 1000,
        "on_time": (final_at - speech_end_sent) * 1000 <= eou + 150,
        "words_ok": [w["word"].lower() for w in words] == EXPECTED,
    }


async def warm(uri, headers, audio, n):
    """n streams open at the same time, so n distinct decoders get created."""
    async def hold():
        async with websockets.connect(uri, extra_headers=headers, open_timeout=120) as ws:
            await ws.send(audio)
            await asyncio.sleep(max(5.0, n * 0.8))  # decoder creation takes ~0.5 s CPU each
            await ws.send(json.dumps({"type": "close_stream"}))
            async for _ in ws:
                pass
    await asyncio.gather(*[hold() for _ in range(n)])


async def wave(uri, headers, audio, eou, n):
    return await asyncio.gather(*[one(uri, headers, audio, eou) for _ in range(n)])


def p95(xs):
    xs = sorted(x for x in xs if x is not None)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))] if xs else float("nan")


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


def cpu_s(pid):
    """utime + stime of the server process, seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load():
    return "%.1f" % os.getloadavg()[0]


HEADER = (f"{'streams':>7} {'interim p50':>11} {'interim p95':>11} {'final p50':>9} {'final p95':>9} "
          f"{'on time':>7} {'words':>5} {'CPU s':>6} {'RSS MB':>7} {'load':>5}")


def row(n, res, srv, cpu):
    ok = [r for r in res if r]
    fi = [r["first_interim_ms"] for r in ok]
    fl = [r["final_ms"] for r in ok]
    on_time = sum(r["on_time"] for r in ok)
    words = sum(r["words_ok"] for r in ok)
    print(f"{n:>7} {med(fi):>11.0f} {p95(fi):>11.0f} {med(fl):>9.0f} {p95(fl):>9.0f} "
          f"{on_time:>4}/{n:<2} {words:>2}/{n:<2} {cpu:>6.2f} {srv.rss_kb() / 1024:>7.0f} {load():>5}", flush=True)
    return on_time == n and len(ok) == n


def renice(pid, nice):
    """Every thread of pid to `nice`, except threads at 19 (the decoder warmer stays lowest)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            if os.getpriority(os.PRIO_PROCESS, int(tid)) < 19:
                os.setpriority(os.PRIO_PROCESS, int(tid), nice)
        except OSError:
            pass


def server(args, tag, prewarm=None):
    data = tempfile.mkdtemp(prefix=f"ld-bench-stream-{tag}-")
    extra = ["--max-streams", str(args.max + 2), "--log-level", "warning"]
    if prewarm is not None:
        extra += ["--stream-prewarm", str(prewarm)]
    srv = conftest.start_server(data, *extra, workers=args.workers)
    if args.renice is not None:
        renice(srv.proc.pid, args.renice)
    key = srv.key("bench", concurrency=args.max + 2, rpm=10000)
    uri = srv.url.replace("http", "ws", 1) + f"/v1/listen/stream?eou_timeout_ms={args.eou}"
    return srv, uri, srv.auth(key)


def wait_prewarmed(srv, n, timeout=120):
    """Until /metrics shows n idle stream decoders (older binaries: a fixed pause)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = requests.get(srv.url + "/metrics", timeout=5).text
        for line in text.splitlines():
            if line.startswith('listend_stream_decoders{state="idle"}'):
                if float(line.split()[-1]) >= n:
                    return
                break
        else:
            time.sleep(5)
            return
        time.sleep(0.2)


def cold(args, audio):
    levels = [int(x) for x in args.cold.split(",")]
    print(f"new streams on a fresh server, --stream-prewarm {args.prewarm if args.prewarm is not None else '(not set)'}"
          f", eou_timeout_ms={args.eou}; CPU s = server CPU during the wave")
    print(HEADER)
    for n in levels:
        for _ in range(args.repeat):
            srv, uri, headers = server(args, "cold", args.prewarm)
            try:
                wait_prewarmed(srv, args.prewarm or 0)
                time.sleep(1.0)  # let start-up work settle
                c0 = cpu_s(srv.proc.pid)
                res = asyncio.run(wave(uri, headers, audio, args.eou, n))
                row(n, res, srv, cpu_s(srv.proc.pid) - c0)
            finally:
                srv.stop()


def capacity(args, audio):
    srv, uri, headers = server(args, "cap", args.prewarm)
    try:
        base_rss = srv.rss_kb()
        # Warm-up: stream decoders are created on first use (model load, ~0.5 s CPU
        # each) and then reused; create them all before measuring.
        asyncio.run(warm(uri, headers, audio[:9600], args.max))  # 300 ms
        warm_rss = srv.rss_kb()
        print(f"server RSS: {base_rss / 1024:.0f} MB before streams, {warm_rss / 1024:.0f} MB with {args.max} "
              f"stream decoders = {(warm_rss - base_rss) / 1024 / args.max:.0f} MB per stream; "
              f"eou_timeout_ms={args.eou}; on time = final within eou + 150 ms after the last word; "
              f"CPU s = server CPU during the wave (each stream is 4.3 s of audio)")
        print(HEADER)
        best = 0
        if args.levels:
            for n in [int(x) for x in args.levels.split(",")]:
                for _ in range(args.repeat):
                    c0 = cpu_s(srv.proc.pid)
                    res = asyncio.run(wave(uri, headers, audio, args.eou, n))
                    if row(n, res, srv, cpu_s(srv.proc.pid) - c0):
                        best = max(best, n)
        else:
            n = 1
            while n <= args.max:
                c0 = cpu_s(srv.proc.pid)
                res = asyncio.run(wave(uri, headers, audio, args.eou, n))
                if row(n, res, srv, cpu_s(srv.proc.pid) - c0):
                    best = n
                elif n > 1:
                    break
                n = n * 2 if n < 4 else n + 4
        print(f"largest number of real-time streams with every final on time: {best}")
        if args.idle_wait:
            time.sleep(args.idle_wait)
            print(f"RSS after {args.idle_wait} s without streams: {srv.rss_kb() / 1024:.0f} MB (load {load()})")
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("LISTEND_BIN", os.path.join(HERE, "..", "build", "listend")))
    ap.add_argument("--max", type=int, default=16, help="streams the server allows (capacity: warm-up size)")
    ap.add_argument("--eou", type=int, default=800)
    ap.add_argument("--frame-ms", type=int, default=100, help="audio per WebSocket frame (20: telephony senders)")
    ap.add_argument("--workers", type=int, default=1, help="batch decoders (streams have their own)")
    ap.add_argument("--levels", help="comma-separated stream counts to measure instead of doubling until late")
    ap.add_argument("--repeat", type=int, default=1, help="waves per level")
    ap.add_argument("--cold", help="comma-separated counts of new streams started at once on a fresh server")
    ap.add_argument("--prewarm", type=int, help="pass --stream-prewarm N to the server")
    ap.add_argument("--idle-wait", type=int, default=0, help="after the waves, idle this long and report RSS")
    ap.add_argument("--renice", type=int, help="run the server and this client at this nice value (root: e.g. -10, "
                    "so other work on a shared machine yields to the measurement)")
    args = ap.parse_args()
    global CHUNK, FRAME_S
    FRAME_S = args.frame_ms / 1000
    CHUNK = int(16000 * FRAME_S) * 2
    if args.renice is not None:
        os.setpriority(os.PRIO_PROCESS, 0, args.renice)
    conftest.BIN = os.path.abspath(args.bin)
    with open(conftest.GOFORWARD, "rb") as f:
        audio = f.read() + b"\0\0" * 24000  # + 1.5 s silence
    print(f"listend {args.bin}, {os.cpu_count()} cores, load average {load()}, {args.frame_ms} ms frames"
          + (f", server and client at nice {args.renice}" if args.renice is not None else ""))
    if args.cold:
        cold(args, audio)
    else:
        capacity(args, audio)


if __name__ == "__main__":
    main()
