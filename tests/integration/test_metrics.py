"""GET /metrics: the text exposition format parsed strictly, counters moving
by exactly the traffic sent (401s by reason, 200s, a transcription's audio
seconds and real-time factor, a 429, a quota 403), the spec's autoscaling
gauges, --metrics-port and --metrics-token."""
import math
import re
import time

import pytest
import requests

from conftest import GOFORWARD, run_cli, start_server

GOFORWARD_S = 2.786
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
SAMPLE = re.compile(rf"^({NAME})(?:\{{((?:{LABEL})(?:,{LABEL})*)?\}})? (\S+)$")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """Strict parse of exposition format 0.0.4. Returns {family: {"type", "help",
    "samples": [(name, labels, value)]}}; fails the test on any violation."""
    assert text.endswith("\n"), "exposition must end with a newline"
    fams, current, seen = {}, None, set()
    for line in text.splitlines():
        assert line, "no blank lines"
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            assert re.fullmatch(NAME, name) and name not in fams, line
            fams[name] = {"help": help_, "type": None, "samples": []}
            current = name
            continue
        if line.startswith("# TYPE "):
            name, _, typ = line[7:].partition(" ")
            assert name == current and fams[name]["type"] is None, f"TYPE must follow its HELP: {line}"
            assert typ in ("counter", "gauge", "histogram"), line
            fams[name]["type"] = typ
            continue
        assert not line.startswith("#"), line
        m = SAMPLE.match(line)
        assert m, f"bad sample line: {line!r}"
        name, labels_s, value = m.groups()
        fam = fams[current]
        assert fam["type"], f"sample before TYPE: {line}"
        allowed = {current} if fam["type"] != "histogram" else {current + s for s in ("_bucket", "_sum", "_count")}
        assert name in allowed, f"{name} outside its family {current}"
        labels = dict(LABEL_RE.findall(labels_s or ""))
        assert len(labels) == (labels_s or "").count('="'), f"duplicate label in {line}"
        v = float(value.replace("+Inf", "inf").replace("-Inf", "-inf"))
        key = (name, tuple(sorted(labels.items())))
        assert key not in seen, f"duplicate series {line}"
        seen.add(key)
        fam["samples"].append((name, labels, v))
    for name, fam in fams.items():
        assert fam["type"], f"{name} has no TYPE"
        if fam["type"] == "counter":
            assert all(v >= 0 for _, _, v in fam["samples"]), name
        if fam["type"] == "histogram":
            check_histogram(name, fam["samples"])
    return fams


def check_histogram(name, samples):
    groups = {}
    for n, labels, v in samples:
        base = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
        groups.setdefault(base, {"buckets": [], "sum": None, "count": None})
        g = groups[base]
        if n.endswith("_bucket"):
            g["buckets"].append((float(labels["le"].replace("+Inf", "inf")), v))
        elif n.endswith("_sum"):
            g["sum"] = v
        else:
            g["count"] = v
    for base, g in groups.items():
        les = [le for le, _ in g["buckets"]]
        assert les == sorted(les) and les[-1] == math.inf, f"{name}{base}: buckets must ascend to +Inf"
        counts = [c for _, c in g["buckets"]]
        assert counts == sorted(counts), f"{name}{base}: cumulative counts must not decrease"
        assert g["sum"] is not None and g["count"] == counts[-1], f"{name}{base}: _sum/_count"


def scrape(srv, **kw):
    r = requests.get(srv.url + "/metrics", timeout=10, **kw)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(r.text)


def value(fams, family, name=None, **labels):
    for n, l, v in fams[family]["samples"]:
        if n == (name or family) and all(l.get(k) == x for k, x in labels.items()):
            return v
    return 0.0


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("metrics"))
    yield s
    s.stop()


def lic(srv, key=None):
    h = {"Authorization": f"Token {key}"} if key else {}
    return requests.get(srv.url + "/v1/license", headers=h, timeout=10)


def test_format_and_required_families(srv):
    fams = scrape(srv)
    required = {
        "listend_http_requests_total": "counter", "listend_http_request_duration_seconds": "histogram",
        "listend_audio_seconds_total": "counter", "listend_asr_real_time_factor": "histogram",
        "listend_http_requests_in_flight": "gauge", "asr_active_requests": "gauge",
        "asr_batch_queue_depth": "gauge", "asr_active_streams": "gauge", "listend_asr_decoders_busy": "gauge",
        "listend_asr_decoders_total": "gauge", "listend_auth_failures_total": "counter",
        "listend_rate_limited_total": "counter", "listend_jobs": "gauge",
        "listend_webhook_deliveries_total": "counter", "listend_redis_errors_total": "counter",
        "process_resident_memory_bytes": "gauge", "process_open_fds": "gauge",
        "process_start_time_seconds": "gauge", "process_cpu_seconds_total": "counter",
        "listend_build_info": "gauge", "listend_key_requests_total": "counter",
        "listend_key_audio_seconds_total": "counter",
    }
    for name, typ in required.items():
        assert name in fams and fams[name]["type"] == typ and fams[name]["help"], name
    assert value(fams, "listend_asr_decoders_total") == 2  # --workers 2
    assert value(fams, "listend_build_info", version="0.1.0") == 1
    assert value(fams, "process_resident_memory_bytes") > 10e6
    assert value(fams, "process_open_fds") > 3
    assert abs(value(fams, "process_start_time_seconds") - time.time()) < 3600
    for reason in ("missing", "invalid", "expired", "revoked", "throttled"):
        assert ("listend_auth_failures_total", {"reason": reason}) in [(n, l) for n, l, _ in
                                                                         fams["listend_auth_failures_total"]["samples"]]
    for state in ("queued", "processing", "completed", "failed", "cancelled"):
        assert value(fams, "listend_jobs", state=state) == 0


def test_counters_move_by_exactly_the_traffic(srv):
    key, limited = srv.key("metrics"), srv.key("one-per-minute", rpm=1)
    expired, revoked = srv.key("old", expires="2020-01-01"), srv.key("gone")
    run_cli("keys", "revoke", revoked, data=srv.data)
    time.sleep(1.5)  # the running server notices a CLI revocation within a second
    before = scrape(srv)

    for _ in range(3):
        assert lic(srv, "not-a-key").status_code == 401
    assert lic(srv).status_code == 401
    assert lic(srv, expired).status_code == 403
    assert lic(srv, revoked).status_code == 401
    for _ in range(2):
        assert lic(srv, key).status_code == 200
    assert lic(srv, limited).status_code == 200
    r = lic(srv, limited)
    assert r.status_code == 429 and r.json()["code"] == "RATE_LIMIT_EXCEEDED"
    r = requests.post(srv.url + "/v1/listen", data=open(GOFORWARD, "rb").read(), params={"encoding": "linear16"},
                      headers={"Authorization": f"Token {key}", "Content-Type": "application/octet-stream"},
                      timeout=120)
    assert r.status_code == 200, r.text
    assert requests.get(srv.url + "/no/such/path", timeout=10).status_code == 404
    kid = lic(srv, key).json()["key_id"]  # the third 200 for `key`
    req = "listend_http_requests_total"
    # A request is counted when libmicrohttpd reports its answer sent, which the client can see a
    # moment earlier (once, with the CPUs busy, the last call was not yet counted): wait for it,
    # then check every count exactly.
    deadline = time.time() + 5
    while True:
        after = scrape(srv)
        if (value(after, req, route="/v1/license", method="GET", status="200")
                - value(before, req, route="/v1/license", method="GET", status="200") >= 4
                or time.time() > deadline):
            break
        time.sleep(0.05)

    def delta(family, name=None, **labels):
        return value(after, family, name, **labels) - value(before, family, name, **labels)

    assert delta(req, route="/v1/license", method="GET", status="401") == 5  # 3 invalid, missing, revoked
    assert delta(req, route="/v1/license", method="GET", status="403") == 1
    assert delta(req, route="/v1/license", method="GET", status="200") == 4
    assert delta(req, route="/v1/license", method="GET", status="429") == 1
    assert delta(req, route="/v1/listen", method="POST", status="200") == 1
    assert delta(req, route="unmatched", method="GET", status="404") == 1
    auth = "listend_auth_failures_total"
    assert delta(auth, reason="invalid") == 3
    assert delta(auth, reason="missing") == 1
    assert delta(auth, reason="expired") == 1
    assert delta(auth, reason="revoked") == 1
    assert delta(auth, reason="throttled") == 0
    assert delta("listend_rate_limited_total", kind="rpm") == 1
    assert delta("listend_rate_limited_total", kind="concurrency") == 0
    assert delta("listend_audio_seconds_total", mode="batch") == pytest.approx(GOFORWARD_S, abs=0.05)
    assert delta("listend_audio_seconds_total", mode="stream") == 0
    assert delta("listend_key_audio_seconds_total", key_id=kid) == pytest.approx(GOFORWARD_S, abs=0.05)
    assert delta("listend_key_requests_total", key_id=kid) == 4  # 3 licenses + 1 transcription
    rtf = "listend_asr_real_time_factor"
    assert delta(rtf, rtf + "_count", mode="batch") == 1
    assert 0 < delta(rtf, rtf + "_sum", mode="batch") < 5
    dur = "listend_http_request_duration_seconds"
    assert delta(dur, dur + "_count", route="/v1/listen") == 1
    assert delta(dur, dur + "_count", route="/v1/license") == 11
    # Quiet server: nothing in flight but the scrape itself.
    assert value(after, "asr_active_requests") == 0
    assert value(after, "asr_batch_queue_depth") == 0
    assert value(after, "listend_http_requests_in_flight") == 1


def test_a_stream_counts_its_handshake_not_its_session(srv):
    """The duration histogram had whole WebSocket sessions in it (a 3 s stream read 3.2 s), mixing
    minutes-long streams into the route's latency buckets; the `stream closed` line had no key_id and
    no audio seconds. Now the stream's request ends at its 101, and the close line says what was charged."""
    import asyncio
    import json
    import websockets
    key = srv.key("streamer")
    before = scrape(srv)
    audio = open(GOFORWARD, "rb").read()

    async def run():
        async with websockets.connect(srv.url.replace("http", "ws") + "/v1/listen/stream",
                                      extra_headers={"Authorization": f"Token {key}"}, open_timeout=60) as ws:
            await asyncio.sleep(2.0)  # a session far longer than its handshake
            for i in range(0, len(audio), 3200):
                await ws.send(audio[i:i + 3200])
            await ws.send(json.dumps({"type": "close_stream"}))
            async for _ in ws:
                pass
    asyncio.run(run())
    dur, route = "listend_http_request_duration_seconds", "/v1/listen/stream"
    deadline = time.time() + 10
    while True:  # counted when the upgraded connection is released
        after = scrape(srv)
        if value(after, dur, dur + "_count", route=route) > value(before, dur, dur + "_count", route=route) \
                or time.time() > deadline:
            break
        time.sleep(0.1)
    assert value(after, dur, dur + "_count", route=route) - value(before, dur, dur + "_count", route=route) == 1
    assert value(after, dur, dur + "_sum", route=route) - value(before, dur, dur + "_sum", route=route) < 1.0
    closed = [json.loads(x) for x in srv.log().splitlines() if "stream closed after" in x]
    kid = lic(srv, key).json()["key_id"]
    mine = [x for x in closed if x.get("key_id") == kid]
    assert len(mine) == 1 and mine[0]["audio_seconds"] == pytest.approx(GOFORWARD_S, abs=0.05), closed


def test_quota_refusal_is_counted(srv):
    key = srv.key("tiny", hours_per_day=0.0001)  # 0.36 s: one goforward uses it up
    body = open(GOFORWARD, "rb").read()
    post = lambda: requests.post(srv.url + "/v1/listen", data=body, params={"encoding": "linear16"},  # noqa: E731
                                 headers={"Authorization": f"Token {key}"}, timeout=120)
    before = scrape(srv)
    assert post().status_code == 200
    r = post()
    assert r.status_code == 403 and r.json()["code"] == "QUOTA_EXCEEDED", r.text
    after = scrape(srv)
    assert (value(after, "listend_rate_limited_total", kind="quota")
            - value(before, "listend_rate_limited_total", kind="quota")) == 1


def test_head_and_method_not_allowed(srv):
    r = requests.head(srv.url + "/metrics", timeout=10)
    assert r.status_code == 200 and r.text == ""
    r = requests.post(srv.url + "/metrics", timeout=10)
    assert r.status_code == 405 and r.json()["code"] == "METHOD_NOT_ALLOWED"


def test_metrics_port_and_token(server_factory):
    from conftest import free_port
    mport = free_port()
    s = server_factory("--metrics-port", mport, "--metrics-token", "s3cret-token", workers=1)
    murl = f"http://127.0.0.1:{mport}/metrics"
    # Moved: the API port no longer serves it.
    r = requests.get(s.url + "/metrics", timeout=10)
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Token s3cret-token"},
                    {"Authorization": "Bearer s3cret-token-and-more"}):
        r = requests.get(murl, headers=headers, timeout=10)
        assert r.status_code == 401, headers
        assert r.json()["code"] == "INVALID_LICENSE" and "error" in r.json()
    r = requests.get(murl, headers={"Authorization": "Bearer s3cret-token"}, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    fams = parse(r.text)
    assert value(fams, "listend_asr_decoders_total") == 1
    assert value(fams, "listend_auth_failures_total", reason="metrics_token") == 4  # the four refusals above
    assert requests.get(f"http://127.0.0.1:{mport}/health", timeout=10).status_code == 404
    # The API port keeps working and the key-less health check is unaffected.
    assert requests.get(s.url + "/health", timeout=10).status_code == 200


def test_token_on_api_port_from_env(server_factory):
    s = server_factory(workers=1, env={"LISTEND_METRICS_TOKEN": "env-token"})
    assert requests.get(s.url + "/metrics", timeout=10).status_code == 401
    r = requests.get(s.url + "/metrics", headers={"Authorization": "Bearer env-token"}, timeout=10)
    assert r.status_code == 200
    parse(r.text)


def test_bad_metrics_port_is_a_usage_error():
    from conftest import BIN
    import subprocess
    p = subprocess.run([BIN, "serve", "--port", "7100", "--metrics-port", "7100"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 2 and "--metrics-port" in p.stderr
    help_ = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True, timeout=30).stdout
    assert "--metrics-port" in help_ and "LISTEND_METRICS_TOKEN" in help_
