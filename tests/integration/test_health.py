"""Component health: /health/asr, /health/license, /health/redis, /health/store
and /health?detailed=true on the embedded store, then with --redis-url while
Redis is stopped (503, Redis errors counted in /metrics) and restarted (200
again, without restarting listend)."""
import os
import shutil
import time

import pytest
import requests

from conftest import GOFORWARD, start_server
from redis_util import RedisServer, have


def get(srv, path):
    return requests.get(srv.url + path, timeout=10)


def wait_status(srv, path, status, timeout=15):
    deadline = time.time() + timeout
    while True:
        r = get(srv, path)
        if r.status_code == status or time.time() > deadline:
            return r
        time.sleep(0.1)


def test_components_on_the_embedded_store(shared_server):
    r = get(shared_server, "/health/asr")
    assert r.status_code == 200 and r.json() == {"component": "asr", "status": "healthy"}
    r = get(shared_server, "/health/asr?detailed=true")
    assert r.status_code == 200
    b = r.json()
    assert b["component"] == "asr" and b["status"] == "healthy"
    d = b["detail"]
    assert d["workers"] == 2 and d["busy"] == 0 and d["queue_depth"] == 0 and d["active_streams"] == 0
    assert "en" in d["languages"] and d["max_streams"] >= 1

    r = get(shared_server, "/health/license?detailed=true")
    assert r.status_code == 200
    assert r.json() == {"component": "license", "status": "healthy",
                        "detail": {"issuer_keys": 1,
                                   "revocations": {"source": "embedded", "readable": True, "fresh": True}}}

    r = get(shared_server, "/health/redis")
    assert r.status_code == 200 and r.json()["status"] == "disabled"
    r = get(shared_server, "/health/store")
    assert r.status_code == 200 and r.json()["detail"] == {"backend": "embedded", "up": True,
                                                           "data_dir": {"writable": True}}

    r = get(shared_server, "/health?detailed=true")
    assert r.status_code == 200
    b = r.json()
    assert b["status"] == "healthy" and b["version"] and isinstance(b["uptime_seconds"], int)
    assert b["jobs"] == {"queued": 0, "processing": 0}, b
    assert b["components"] == {"api_server": "healthy", "asr": "healthy", "license": "healthy", "store": "healthy",
                               "lightning_asr": "healthy", "license_proxy": "healthy"}  # the spec's names too
    assert get(shared_server, "/health/nope").status_code == 404


def test_data_dir_folders_removed_or_unusable_at_runtime(tmp_path):
    """/health said healthy while every upload failed: <data>/tmp deleted (a tmp cleaner) or <data>/jobs
    unusable. A missing folder is made again (logged); one that cannot be written turns /health 503."""
    srv = start_server(tmp_path / "d", workers=1)
    key = srv.key("h")
    shutil.rmtree(os.path.join(srv.data, "tmp"))
    r = get(srv, "/health")
    assert r.status_code == 200 and r.json() == {"status": "healthy"}, r.text
    assert os.path.isdir(os.path.join(srv.data, "tmp"))
    with open(GOFORWARD, "rb") as f:  # a raw body over 256 KB would spool to tmp/; this one checks serving
        r = requests.post(srv.url + "/v1/listen?encoding=linear16&sample_rate=16000", data=f.read(),
                          headers={"Authorization": f"Token {key}"}, timeout=60)
    assert r.status_code == 200 and "forward" in r.json()["text"].lower(), r.text
    jobs = os.path.join(srv.data, "jobs")
    os.rename(jobs, jobs + ".moved")
    open(jobs, "w").close()  # a file where the folder was: nothing can be written there
    try:
        r = get(srv, "/health")
        assert r.status_code == 503 and r.json()["status"] == "unhealthy", r.text
        assert r.json()["reason"] == f"Data directory not writable: {jobs}: not a directory", r.text
        r = get(srv, "/health/store")
        assert r.status_code == 503 and r.json()["detail"]["data_dir"] == {
            "writable": False, "error": f"{jobs}: not a directory"}, r.text
    finally:
        os.unlink(jobs)
        os.rename(jobs + ".moved", jobs)
    assert get(srv, "/health").status_code == 200
    srv.stop()
    assert "data dir: " + os.path.join(srv.data, "tmp") + " was missing: made it again" in open(srv.log_path).read()


def redis_errors(srv):
    for line in get(srv, "/metrics").text.splitlines():
        if line.startswith("listend_redis_errors_total "):
            return float(line.split()[1])
    raise AssertionError("listend_redis_errors_total missing")


@pytest.mark.skipif(not have("redis-server"), reason="redis-server is not installed")
def test_redis_outage_turns_health_503_then_back(tmp_path):
    redis = RedisServer().start()
    srv = start_server(tmp_path / "data", "--redis-url", redis.url, workers=1)
    try:
        r = get(srv, "/health/redis")
        assert r.status_code == 200 and r.json()["status"] == "healthy" and r.json()["detail"]["up"] is True
        assert get(srv, "/health?detailed=true").json()["components"]["redis"] == "healthy"
        lic = get(srv, "/health/license?detailed=true").json()
        assert lic["status"] == "healthy" and lic["detail"]["revocations"]["source"] == "redis"
        errors_before = redis_errors(srv)

        redis.stop()
        r = wait_status(srv, "/health/redis", 503)
        assert r.status_code == 503
        assert r.json()["status"] == "unhealthy" and r.json()["detail"]["up"] is False
        r = get(srv, "/health?detailed=true")
        assert r.status_code == 503
        b = r.json()
        assert b["status"] == "unhealthy" and b["reason"] == "Redis unavailable"
        assert b["components"]["redis"] == "unhealthy" and b["components"]["store"] == "unhealthy"
        assert set(b) >= {"status", "components", "uptime_seconds", "version"}
        # The revocation list is stale while Redis is away; the store decides the 503.
        r = get(srv, "/health/license?detailed=true")
        assert r.status_code == 200 and r.json()["status"] == "degraded"
        assert r.json()["detail"]["revocations"]["fresh"] is False
        assert get(srv, "/health/asr").status_code == 200
        assert redis_errors(srv) > errors_before

        redis.start()  # same port, empty data: listend reconnects on its own
        r = wait_status(srv, "/health?detailed=true", 200, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["components"]["redis"] == "healthy"
        assert get(srv, "/health/redis").status_code == 200
        assert get(srv, "/health/license").json()["status"] == "healthy"
    finally:
        srv.stop()
        redis.stop()
