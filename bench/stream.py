#!/usr/bin/python3
"""Live-stream benchmark: latency of the first interim and of the final, the
largest number of real-time streams whose finals stay on time, RSS per stream.

    /usr/bin/python3 bench/stream.py [--bin build/listend] [--max 16] [--eou 800]

Each stream sends goforward.raw ("go forward ten meters", 2.8 s) in 100 ms
frames at real-time pace, then 1.5 s of silence, then close_stream.
 - first interim latency = arrival of the first interim - the moment the audio
   of the first word's start was sent;
 - final latency = arrival of the end-of-utterance final - the moment the audio
   of the last word's end was sent (target: eou_timeout_ms + 150 ms).
Starts its own server on a free loopback port and stops it. Prints a table.
"""
import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import conftest  # noqa: E402  (start_server, GOFORWARD)

CHUNK = 3200


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
            delay = t0 + n * 0.1 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await ws.send(audio[i:i + CHUNK])
        await ws.send(json.dumps({"type": "close_stream"}))
        await asyncio.wait_for(task, 120)
    if not final or not final.get("words"):
        return None
    words = [w for w in final["words"] if w["word"] not in ".,?!"]
    # frames are sent at t0 + n*0.1 and carry audio [n*0.1, (n+1)*0.1): audio time x is complete at t0 + x + 0.1
    speech_start_sent = t0 + words[0]["start"] + 0.1
    speech_end_sent = t0 + words[-1]["end"] + 0.1
    return {
        "first_interim_ms": (first_interim - speech_start_sent) * 1000 if first_interim else None,
        "final_ms": (final_at - speech_end_sent) * 1000,
        "on_time": (final_at - speech_end_sent) * 1000 <= eou + 150,
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("LISTEND_BIN", os.path.join(HERE, "..", "build", "listend")))
    ap.add_argument("--max", type=int, default=16)
    ap.add_argument("--eou", type=int, default=800)
    ap.add_argument("--workers", type=int, default=1, help="batch decoders (streams have their own)")
    args = ap.parse_args()
    conftest.BIN = os.path.abspath(args.bin)
    with open(conftest.GOFORWARD, "rb") as f:
        audio = f.read() + b"\0\0" * 24000  # + 1.5 s silence
    data = tempfile.mkdtemp(prefix="ld-bench-stream-")
    srv = conftest.start_server(data, "--max-streams", str(args.max + 2), workers=args.workers)
    try:
        key = srv.key("bench", concurrency=args.max + 2, rpm=10000)
        uri = srv.url.replace("http", "ws", 1) + f"/v1/listen/stream?eou_timeout_ms={args.eou}"
        headers = srv.auth(key)
        base_rss = srv.rss_kb()
        # Warm-up: stream decoders are created on first use (model load, ~0.5 s CPU
        # each) and then reused; create them all before measuring.
        asyncio.run(warm(uri, headers, audio[:CHUNK * 3], args.max))
        warm_rss = srv.rss_kb()
        print(f"server RSS: {base_rss / 1024:.0f} MB before streams, {warm_rss / 1024:.0f} MB with {args.max} "
              f"stream decoders = {(warm_rss - base_rss) / 1024 / args.max:.0f} MB per stream; "
              f"eou_timeout_ms={args.eou}; on time = final within eou + 150 ms after the last word")
        print(f"{'streams':>7} {'interim p50':>11} {'interim p95':>11} {'final p50':>9} {'final p95':>9} "
              f"{'on time':>7} {'RSS MB':>7}")
        best = 0
        n = 1
        while n <= args.max:
            res = asyncio.run(wave(uri, headers, audio, args.eou, n))
            rss = srv.rss_kb()
            ok = [r for r in res if r]
            fi = [r["first_interim_ms"] for r in ok if r["first_interim_ms"] is not None]
            fl = [r["final_ms"] for r in ok]
            on_time = sum(r["on_time"] for r in ok)
            print(f"{n:>7} {statistics.median(fi) if fi else float('nan'):>11.0f} {p95(fi):>11.0f} "
                  f"{statistics.median(fl) if fl else float('nan'):>9.0f} {p95(fl):>9.0f} "
                  f"{on_time:>4}/{n:<2} {rss / 1024:>7.0f}", flush=True)
            if on_time == n and len(ok) == n:
                best = n
            elif n > 1:
                break
            n = n * 2 if n < 4 else n + 4
        print(f"largest number of real-time streams with every final on time: {best}")
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
