"""Usage monitoring (docs/operations.md, "Usage monitoring"): a key with 60 audio
seconds a day is driven across 80 % and 95 % with real clips; every answer
carries X-Quota-*, each threshold gives exactly one WARNING line and one signed
`quota.threshold` event at --usage-webhook (also with two replicas on Redis),
and listend_key_quota_used_ratio follows. A jump in one key's request rate
gives exactly one `traffic.anomaly` event (small windows so this is quick).
"""
import csv
import hashlib
import hmac
import json
import os
import re
import subprocess
import time

import pytest
import requests

from conftest import BIN, EVAL_DIR, free_port, run_cli, start_server
from redis_util import RedisServer, have
from webhook_receiver import WebhookReceiver

QUOTA_S = 60
HOURS = QUOTA_S / 3600
BACKOFF_ENV = {"LISTEND_WEBHOOK_BACKOFF_MS": "100"}
# Windows of 1 s, a usual rate over 4 of them (and 4 s of warm-up); a window is
# unusual above max(4 x usual, 8) requests; one event per key per minute.
ANOMALY_FLAGS = ["--usage-anomaly-window", "1s", "--usage-anomaly-history", "4", "--usage-anomaly-factor", "4",
                 "--usage-anomaly-floor", "8", "--usage-anomaly-cooldown", "60s"]


def clips():
    """Real recordings of 2.5-8 s from the eval set, in manifest order."""
    with open(os.path.join(EVAL_DIR, "manifest.tsv")) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    out = [os.path.join(EVAL_DIR, r["file"]) for r in rows if 2.5 <= float(r["duration_s"]) <= 8.0]
    assert len(out) >= 15, "the eval set lost its clips"
    return out


def auth(key):
    return {"Authorization": f"Token {key}"}


def transcribe(url, key, path):
    with open(path, "rb") as f:
        return requests.post(url + "/v1/listen", data=f.read(),
                             headers={**auth(key), "Content-Type": "audio/wav"}, timeout=120)


def quota(resp):
    h = resp.headers
    return float(h["X-Quota-Limit"]), float(h["X-Quota-Remaining"]), int(h["X-Quota-Reset"])


def secs_to_utc_midnight():
    now = time.time()
    return (int(now) // 86400 + 1) * 86400 - now


def verify(secret, header, body):
    """X-Listend-Signature as docs/jobs.md has receivers check it."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    t = int(fields["t"])
    expected = hmac.new(secret.strip().encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return abs(time.time() - t) < 300 and hmac.compare_digest(expected, fields["v1"])


def log_events(*servers, event):
    """The structured WARNING lines of this event type, from the servers' logs."""
    out = []
    for srv in servers:
        for line in srv.log().splitlines():
            try:
                o = json.loads(line)
            except ValueError:
                continue
            if o.get("event") == event:
                assert o["level"] == "WARNING", o
                out.append(o)
    return out


def metric(srv, family, **labels):
    text = requests.get(srv.url + "/metrics", timeout=10).text
    for line in text.splitlines():
        m = re.match(r"^(\w+)\{(.*)\} (\S+)$", line)
        if m and m.group(1) == family:
            got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
            if all(got.get(k) == v for k, v in labels.items()):
                return float(m.group(3))
    return None


def key_id(srv, key):
    return requests.get(srv.url + "/v1/license", headers=auth(key), timeout=10).json()["key_id"]


def drive_across_thresholds(urls, key):
    """Transcribes clips (round robin over urls) until the key is refused.
    Checks X-Quota-* on every answer; returns [(used_before, used_after)]."""
    steps, used, i = [], 0.0, 0
    for path in clips():
        url = urls[i % len(urls)]
        i += 1
        before = secs_to_utc_midnight()
        r = transcribe(url, key, path)
        limit, remaining, reset = quota(r)
        assert limit == QUOTA_S
        assert secs_to_utc_midnight() - 1 <= reset <= before + 1  # read at admission
        if r.status_code == 403:
            assert r.json()["code"] == "QUOTA_EXCEEDED" and remaining == 0
            return steps
        assert r.status_code == 200, r.text
        after = used + r.json()["duration"]
        assert abs(remaining - max(0.0, QUOTA_S - after)) < 0.01, (remaining, after)
        steps.append((used, after))
        used = after
    raise AssertionError("ran out of clips before the quota")


def check_thresholds(steps, warnings, events, secret, kid):
    used_at = {}
    for before, after in steps:
        for pct in (80, 95):
            if before < QUOTA_S * pct / 100 <= after:
                used_at[pct] = after
    assert sorted(used_at) == [80, 95], steps
    by_pct = {}
    for w in warnings:
        assert w["key_id"] == kid and w["name"] == "quota-60s" and w["limit_seconds"] == pytest.approx(QUOTA_S)
        by_pct.setdefault(w["threshold_percent"], []).append(w)
    assert sorted(by_pct) == [80, 95] and all(len(v) == 1 for v in by_pct.values()), warnings
    for pct, (w,) in by_pct.items():
        assert w["used_seconds"] == pytest.approx(used_at[pct], abs=0.01)
        assert f"{pct}%" in w["message"] and kid in w["message"]
    delivered = {}
    for hit in events:
        assert verify(secret, hit.headers["x-listend-signature"], hit.body)
        assert not verify(secret, hit.headers["x-listend-signature"], hit.body + b" ")
        e = hit.json()
        assert hit.headers["x-listend-event"] == e["type"] == "quota.threshold"
        assert hit.headers["x-listend-event-id"] == e["event_id"]
        delivered.setdefault(e["event_id"], e)
    thresholds = sorted(e["threshold_percent"] for e in delivered.values())
    assert thresholds == [80, 95], [e for e in delivered.values()]
    for e in delivered.values():
        assert e["key_id"] == kid and e["name"] == "quota-60s"
        assert e["used_seconds"] == pytest.approx(used_at[e["threshold_percent"]], abs=0.01)
        assert e["limit_seconds"] == pytest.approx(QUOTA_S)
        assert e["remaining_seconds"] == pytest.approx(max(0, QUOTA_S - e["used_seconds"]), abs=0.01)
        assert e["resets_at"].endswith("T00:00:00Z") and re.fullmatch(r"\d{4}-\d\d-\d\d", e["day"])
    return used_at


def test_quota_thresholds_embedded(tmp_path):
    # The receiver fails the first delivery: the event is retried, not lost or doubled.
    with WebhookReceiver(statuses=[500]) as rx:
        srv = start_server(tmp_path / "data", "--usage-webhook", rx.url("/usage"), "--allow-private-urls",
                           workers=1, env=BACKOFF_ENV)
        try:
            key = srv.key("quota-60s", hours_per_day=HOURS)
            kid = key_id(srv, key)
            lic = requests.get(srv.url + "/v1/license", headers=auth(key), timeout=10)
            assert quota(lic)[:2] == (QUOTA_S, QUOTA_S)
            steps = drive_across_thresholds([srv.url], key)
            hits = rx.wait_for(3, timeout=30)  # 500, its retry, the other threshold
            time.sleep(1)  # nothing more comes
            assert len(rx.hits) == 3 and all(h.path == "/usage" for h in rx.hits)
            assert len({h.json()["event_id"] for h in hits}) == 2
            secret = open(os.path.join(srv.data, "webhook.secret")).read()
            used_at = check_thresholds(steps, log_events(srv, event="quota.threshold"), hits, secret, kid)
            used = steps[-1][1]
            assert metric(srv, "listend_key_quota_used_ratio", key_id=kid) == pytest.approx(
                min(used, QUOTA_S * 10) / QUOTA_S, abs=0.001)
            assert metric(srv, "listend_key_quota_warnings_total", threshold="80") == 1
            assert metric(srv, "listend_key_quota_warnings_total", threshold="95") == 1
            assert metric(srv, "listend_usage_webhook_attempts_total", result="retry") == 1
            assert metric(srv, "listend_usage_webhook_attempts_total", result="delivered") == 2
            assert used_at[95] >= 57
            # Other authenticated answers carry the quota too: jobs, license, compat routes, the 101.
            for path in ("/v1/jobs", "/v1/license", "/v1/models"):
                r = requests.get(srv.url + path, headers=auth(key), timeout=10)
                assert r.headers.get("X-Quota-Remaining") == "0", (path, r.status_code, dict(r.headers))
            r = requests.get(srv.url + "/v1/license", timeout=10)
            assert r.status_code == 401 and "X-Quota-Limit" not in r.headers
        finally:
            srv.stop()
        # The once-a-day marks are durable (listend.db): a restart today stays quiet.
        import sqlite3
        db = sqlite3.connect(os.path.join(srv.data, "listend.db"))
        names = sorted(n for (n,) in db.execute("SELECT name FROM marks"))
        db.close()
        day = hits[0].json()["day"]
        assert names == [f"quota:{kid}:{day}:80", f"quota:{kid}:{day}:95"]


def test_quota_headers_on_stream_handshake_and_compat(tmp_path):
    srv = start_server(tmp_path / "data", workers=1)
    try:
        key = srv.key("hdr", hours_per_day=1)
        # WebSocket 101 (raw handshake: the header is on the upgrade answer itself)
        import socket
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall((f"GET /v1/listen/stream?encoding=linear16&sample_rate=16000 HTTP/1.1\r\nHost: x\r\n"
                   f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                   f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Token {key}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            assert chunk, head
            head += chunk
        s.close()
        text = head.decode(errors="replace")
        assert text.startswith("HTTP/1.1 101"), text
        assert re.search(r"(?im)^X-Quota-Limit: 3600\r$", text) and re.search(r"(?im)^X-Quota-Remaining: 3600\r$", text)
        # Deepgram-compatible batch route
        with open(clips()[0], "rb") as f:
            r = requests.post(srv.url + "/deepgram/v1/listen?model=nova-2", data=f.read(),
                              headers={"Authorization": f"Token {key}", "Content-Type": "audio/wav"}, timeout=120)
        assert r.status_code == 200 and float(r.headers["X-Quota-Remaining"]) < 3600
        # OpenAI-compatible route: its refusal too
        r = requests.post(srv.url + "/v1/audio/transcriptions", headers={"Authorization": f"Bearer {key}"},
                          files={"model": (None, "whisper-1")}, timeout=30)
        assert r.status_code == 400 and r.headers["X-Quota-Limit"] == "3600", (r.status_code, r.text)
    finally:
        srv.stop()


def test_traffic_anomaly_one_event_per_jump(tmp_path):
    with WebhookReceiver() as rx:
        srv = start_server(tmp_path / "data", "--usage-webhook", rx.url("/usage"), "--allow-private-urls",
                           *ANOMALY_FLAGS, workers=1)
        try:
            steady, jumpy = srv.key("steady", rpm=5000), srv.key("jumpy", rpm=5000)
            kid = key_id(srv, jumpy)
            steady_id = key_id(srv, steady)

            def tick(keys, n=1):
                for k in keys:
                    for _ in range(n):
                        assert requests.get(srv.url + "/v1/license", headers=auth(k), timeout=10).status_code == 200

            t0 = time.time()
            while time.time() - t0 < 6:  # ~2 requests per 1 s window for both keys
                tick([steady, jumpy])
                time.sleep(0.5)
            assert rx.hits == [] and log_events(srv, event="traffic.anomaly") == []
            tick([jumpy], 40)  # the jump
            time.sleep(1.1)
            tick([jumpy], 40)  # still high in the next window: the same jump (cooldown)
            t0 = time.time()
            while time.time() - t0 < 2:
                tick([steady, jumpy])
                time.sleep(0.5)
            (hit,) = rx.wait_for(1, timeout=20)
            time.sleep(1)
            assert len(rx.hits) == 1, [h.json() for h in rx.hits]
            e = hit.json()
            secret = open(os.path.join(srv.data, "webhook.secret")).read()
            assert verify(secret, hit.headers["x-listend-signature"], hit.body)
            assert e["type"] == hit.headers["x-listend-event"] == "traffic.anomaly"
            assert e["key_id"] == kid and e["name"] == "jumpy"
            assert e["requests"] > e["threshold"] >= 8 and e["window_seconds"] == 1
            assert e["baseline"] < 4 and e["factor"] == 4 and e["floor"] == 8 and e["cooldown_seconds"] == 60
            (w,) = log_events(srv, event="traffic.anomaly")
            assert w["key_id"] == kid and w["requests"] == e["requests"]
            assert metric(srv, "listend_key_traffic_anomalies_total", key_id=kid) == 1
            assert metric(srv, "listend_key_traffic_anomalies_total", key_id=steady_id) in (None, 0)
        finally:
            srv.stop()


def test_usage_webhook_refuses_private_addresses(tmp_path):
    """The URL is checked like callback URLs: loopback needs --allow-private-urls."""
    run_cli("keys", "init", data=tmp_path / "d")
    for url, why in (("http://127.0.0.1:9/usage", "loopback"), ("http://10.1.2.3/usage", "private"),
                     ("ftp://127.0.0.1/usage", "")):
        out = subprocess.run([BIN, "serve", "--data", str(tmp_path / "d"), "--port", str(free_port()),
                              "--workers", "1", "--usage-webhook", url],
                             capture_output=True, text=True, timeout=60, env=dict(os.environ, LISTEND_STREAM_PREWARM="0"))
        assert out.returncode != 0
        log = out.stdout + out.stderr
        assert "usage-webhook" in log and why in log, log


redis_only = pytest.mark.skipif(not have("redis-server"), reason="needs redis-server")


@redis_only
def test_two_replicas_on_redis_report_once(tmp_path):
    redis = RedisServer().start()
    rx = WebhookReceiver().start()
    replicas = []
    try:
        dirs = [tmp_path / "r0", tmp_path / "r1"]
        run_cli("keys", "init", data=dirs[0])
        os.makedirs(dirs[1], mode=0o700)
        with open(dirs[0] / "issuer.pub", "rb") as a, open(dirs[1] / "issuer.pub", "wb") as b:
            b.write(a.read())
        for d in dirs:
            replicas.append(start_server(d, "--redis-url", redis.url, "--usage-webhook", rx.url("/usage"),
                                         "--allow-private-urls", *ANOMALY_FLAGS, workers=1, env=BACKOFF_ENV))

        def issue(name, **limits):
            args = ["keys", "issue", "--name", name, "--redis-url", redis.url]
            for k, v in limits.items():
                args += ["--" + k.replace("_", "-"), str(v)]
            return run_cli(*args, data=dirs[0]).stdout.strip()

        # Quota: requests alternate between the replicas.
        key = issue("quota-60s", hours_per_day=HOURS)
        kid = key_id(replicas[0], key)
        steps = drive_across_thresholds([r.url for r in replicas], key)
        hits = rx.wait_for(2, timeout=30)
        time.sleep(1)
        assert len(rx.hits) == 2
        # Both replicas sign with the cluster-wide secret.
        secret = open(os.path.join(dirs[1], "webhook.secret")).read()
        assert secret == open(os.path.join(dirs[0], "webhook.secret")).read()
        check_thresholds(steps, log_events(*replicas, event="quota.threshold"), hits, secret, kid)
        assert redis.cli("EXISTS", f"ld:m:quota:{kid}:{hits[0].json()['day']}:80") == "1"
        ratios = [metric(r, "listend_key_quota_used_ratio", key_id=kid) for r in replicas]
        assert max(ratios) == pytest.approx(steps[-1][1] / QUOTA_S, abs=0.001)  # the last charge's replica

        # Anomaly: both replicas see the same jump at the same time; one event in all.
        rx.hits.clear()
        jumpy = issue("jumpy", rpm=5000)
        t0 = time.time()
        while time.time() - t0 < 6:
            for r in replicas:
                assert requests.get(r.url + "/v1/license", headers=auth(jumpy), timeout=10).status_code == 200
            time.sleep(0.5)
        for _ in range(30):
            for r in replicas:
                assert requests.get(r.url + "/v1/license", headers=auth(jumpy), timeout=10).status_code == 200
        (hit,) = rx.wait_for(1, timeout=20)
        time.sleep(1)
        assert len(rx.hits) == 1 and hit.json()["type"] == "traffic.anomaly" and hit.json()["name"] == "jumpy"
        assert len(log_events(*replicas, event="traffic.anomaly")) == 1
    finally:
        for r in replicas:
            r.stop()
        rx.stop()
        redis.stop()


def test_usage_webhook_given_up_counts_failed(tmp_path):
    """Before: an event retried until --webhook-max-age counted its last attempt as
    `retry` (never `failed`, so ListendUsageWebhookFailing could not fire for a receiver
    that is down) and logged one attempt more than it made. Now the attempt that gives
    up is the `failed` one and `attempts` is the number of POSTs."""
    with WebhookReceiver(statuses=[500] * 100) as rx:
        srv = start_server(tmp_path / "data", "--usage-webhook", rx.url("/usage"), "--allow-private-urls",
                           "--webhook-max-age", "3s", "--webhook-backoff-ms", "300", workers=1)
        try:
            key = srv.key("tiny", hours_per_day=0.001)  # 3.6 s: one clip crosses 80 and 95 %
            assert transcribe(srv.url, key, clips()[0]).status_code == 200
            deadline = time.time() + 30
            while srv.log().count("Usage webhook: gave up") < 2:
                assert time.time() < deadline, srv.log()[-3000:]
                time.sleep(0.2)
            time.sleep(0.5)  # nothing more comes
            gave_up = {}
            for line in srv.log().splitlines():
                if "Usage webhook: gave up" in line:
                    o = json.loads(line)
                    gave_up[o["event_id"]] = o["attempts"]
            posts = {}
            for h in rx.hits:
                posts[h.json()["event_id"]] = posts.get(h.json()["event_id"], 0) + 1
            assert len(gave_up) == 2 and gave_up == posts, (gave_up, posts)
            assert all(n >= 2 for n in posts.values()), posts  # retried before giving up
            assert metric(srv, "listend_usage_webhook_attempts_total", result="failed") == 2
            assert metric(srv, "listend_usage_webhook_attempts_total", result="retry") == len(rx.hits) - 2
            assert metric(srv, "listend_usage_webhook_attempts_total", result="delivered") in (None, 0)
        finally:
            srv.stop()


def test_quota_warning_when_usage_cannot_be_written(tmp_path):
    """Before: a charge that crossed 80 % while the data dir was full reported nothing
    (the usage hook ran only after a successful write), and the catch-up write once
    the disk had room did not either: the 80 % warning was lost for the day. Now the
    crossing is reported when it happens, from the usage the replica counts (stored +
    unsaved), and once: the catch-up write does not report it again."""
    from audio_fixtures import GOFORWARD
    from conftest import fill_disk, start_server_on_tmpfs, tmpfs_mount_ok
    if not tmpfs_mount_ok():
        pytest.skip("cannot mount a tmpfs here (unshare -rm + mount not permitted): disk-full case not run")
    import wave
    wav = tmp_path / "goforward.wav"  # 2.786 s
    with open(GOFORWARD, "rb") as f, wave.open(str(wav), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(f.read())
    stage = tmp_path / "stage"
    stage.mkdir()
    run_cli("keys", "init", data=stage)
    key = run_cli("keys", "issue", "--name", "full", "--hours-per-day", "0.01", data=stage).stdout.strip()  # 36 s
    srv = start_server_on_tmpfs(stage, tmp_path)
    try:
        kid = key_id(srv, key)

        def charge():
            r = transcribe(srv.url, key, wav)
            assert r.status_code == 200, r.text
            return r.json()["duration"]

        used = charge()
        fill_disk(srv)
        while used < 0.8 * 36:
            used += charge()
        assert used < 0.95 * 36 - 3  # the catch-up request below crosses nothing
        assert "cannot write usage" in srv.log(), srv.log()[-2000:]
        assert requests.get(srv.url + "/health", timeout=10).json()["status"] == "degraded"
        (w,) = log_events(srv, event="quota.threshold")
        assert w["key_id"] == kid and w["threshold_percent"] == 80
        assert w["used_seconds"] == pytest.approx(used, abs=0.01)
        assert metric(srv, "listend_key_quota_warnings_total", threshold="80") == 1
        os.unlink(f"{srv.inside}/fill")  # room again: the next addition writes the backlog
        used += charge()
        assert "written again after an earlier failure" in srv.log(), srv.log()[-2000:]
        assert requests.get(srv.url + "/health", timeout=10).json()["status"] == "healthy"
        assert len(log_events(srv, event="quota.threshold")) == 1  # not again for the backlog
        assert metric(srv, "listend_key_quota_warnings_total", threshold="80") == 1
        used += charge()  # across 95 %, stored normally
        assert used >= 0.95 * 36
        assert [e["threshold_percent"] for e in log_events(srv, event="quota.threshold")] == [80, 95]
        assert metric(srv, "listend_key_quota_warnings_total", threshold="95") == 1
    finally:
        srv.stop()
