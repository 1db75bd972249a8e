"""Warm stream decoders (--stream-prewarm) and freeing idle ones
(--stream-decoder-idle): what /metrics reports (listend_stream_decoders) and the
memory given back. Latency figures are in bench/stream.py --cold, never here."""
import asyncio
import json
import os
import time

import websockets

from conftest import GOFORWARD, check_servers


def decoders(srv):
    text = __import__("requests").get(srv.url + "/metrics", timeout=10).text
    out = {}
    for line in text.splitlines():
        if line.startswith("listend_stream_decoders{"):
            out[line.split('"')[1]] = int(float(line.split()[-1]))
    return out


def wait_for(pred, timeout=90, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        check_servers()
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached in {timeout} s (load average {os.getloadavg()[0]:.1f})")


# The warmer loads decoders at nice 19 by design (it must never take CPU from live streams), so on a
# machine whose cores are kept busy it waits its turn: ≈ 1 s of CPU per decoder can take minutes there.
WARM_TIMEOUT = 240


async def streams(srv, key, n, hold=0.0):
    uri = srv.url.replace("http", "ws", 1) + "/v1/listen/stream"
    with open(GOFORWARD, "rb") as f:
        audio = f.read()

    async def one():
        async with websockets.connect(uri, extra_headers=srv.auth(key), open_timeout=60) as ws:
            await ws.send(audio)
            await asyncio.sleep(hold)
            await ws.send(json.dumps({"type": "close_stream"}))
            finals = [m for m in map(json.loads, [m async for m in ws]) if m.get("is_final")]
        return " ".join(m["transcript"] for m in finals)
    return await asyncio.gather(*[one() for _ in range(n)])


def test_default_keeps_two_warm_and_refills(server_factory):
    srv = server_factory(workers=1, env={"LISTEND_STREAM_PREWARM": ""})  # the built-in default
    wait_for(lambda: decoders(srv).get("idle") == 2, WARM_TIMEOUT, "two warm decoders")
    key = srv.key("warm", concurrency=5)
    text = asyncio.run(streams(srv, key, 1))
    assert "forward" in text[0].lower()
    d = wait_for(lambda: (lambda d: d if d.get("idle") == 2 and d.get("in_use") == 0 else None)(decoders(srv)),
                 WARM_TIMEOUT, "the warm set refilled")
    assert d == {"in_use": 0, "idle": 2}  # the one used went back; nothing beyond the warm set was kept


def test_idle_decoders_beyond_the_warm_set_are_freed(server_factory):
    srv = server_factory("--stream-prewarm", "1", "--stream-decoder-idle", "3s", workers=1)
    wait_for(lambda: decoders(srv).get("idle") == 1, WARM_TIMEOUT, "one warm decoder")
    key = srv.key("burst", concurrency=5)
    texts = asyncio.run(streams(srv, key, 4, hold=1.0))  # four at once: three decoders are created on demand
    assert all("forward" in t.lower() for t in texts), texts
    peak = srv.rss_kb()
    assert decoders(srv)["idle"] >= 3
    wait_for(lambda: decoders(srv) == {"in_use": 0, "idle": 1}, timeout=60)
    freed_mb = (peak - srv.rss_kb()) / 1024
    assert freed_mb > 120, f"only {freed_mb:.0f} MB returned after freeing 3 decoders (~95 MB each)"


def test_prewarm_zero_keeps_none(server_factory):
    srv = server_factory("--stream-prewarm", "0", workers=1)
    time.sleep(1.0)
    assert decoders(srv) == {"in_use": 0, "idle": 0}
