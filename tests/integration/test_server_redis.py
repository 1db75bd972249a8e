"""Two replicas sharing Redis (--redis-url): one key's rate limit holds across
both, and /health reports Redis going away (503 under the default `closed`
failure policy). Redis runs on a free loopback port for this module only."""
import os
import shutil
import subprocess
import time

import pytest
import requests

from conftest import free_port, start_server


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    port = free_port()
    d = tmp_path_factory.mktemp("redis")
    p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                          "no", "--dir", str(d)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        assert p.poll() is None, f"redis-server exited with {p.returncode}"
        try:
            with __import__("socket").create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    yield {"url": f"redis://127.0.0.1:{port}/0", "proc": p}
    if p.poll() is None:
        p.terminate()
        p.wait(10)


def test_rate_limit_is_shared_between_replicas_and_health_sees_redis(tmp_path, redis_url):
    a = start_server(tmp_path / "a", "--redis-url", redis_url["url"], workers=1)
    os.makedirs(tmp_path / "b")
    shutil.copy(tmp_path / "a" / "issuer.pub", tmp_path / "b" / "issuer.pub")  # same issuer, other replica
    b = start_server(tmp_path / "b", "--redis-url", redis_url["url"], workers=1)
    try:
        h = requests.get(a.url + "/health?detailed=true", timeout=5).json()
        assert h["components"]["redis"] == "healthy" and h["store"]["backend"] == "redis"
        key = a.key("shared", rpm=3)
        codes = [requests.get(s.url + "/v1/license", headers=s.auth(key), timeout=5).status_code
                 for s in (a, b, a, b)]
        assert codes == [200, 200, 200, 429], codes
        redis_url["proc"].terminate()
        redis_url["proc"].wait(10)
        deadline = time.time() + 10
        while time.time() < deadline:
            r = requests.get(b.url + "/health", timeout=5)
            if r.status_code == 503:
                break
            time.sleep(0.2)
        assert r.status_code == 503 and r.json() == {"status": "unhealthy", "reason": "Redis unavailable"}
        r = requests.get(b.url + "/health/redis", timeout=5)
        assert r.status_code == 503 and r.json()["detail"]["up"] is False
        assert "password" not in r.text
        # readiness (the vendor chart's /healthz) follows; liveness does not: no replica is restarted for Redis
        assert requests.get(b.url + "/healthz", timeout=5).status_code == 503
        r = requests.get(b.url + "/livez", timeout=5)
        assert r.status_code == 200 and r.json() == {"alive": True}
    finally:
        assert a.stop() == 0 and b.stop() == 0


def wait_health(url, status, timeout=15):
    """The /health body once its status is `status` (Redis down is noticed within ~1 s)."""
    deadline = time.time() + timeout
    while True:
        r = requests.get(url + "/health", timeout=5)
        if r.json()["status"] == status or time.time() > deadline:
            return r
        time.sleep(0.2)


def test_health_is_degraded_while_redis_is_down_under_the_open_policy(tmp_path):
    from redis_util import RedisServer
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    redis = RedisServer().start()
    a = start_server(tmp_path / "a", "--redis-url", redis.url, "--redis-failure", "open", workers=1)
    try:
        assert requests.get(a.url + "/health", timeout=5).json() == {"status": "healthy"}
        redis.stop()
        r = wait_health(a.url, "degraded")
        assert r.status_code == 200 and r.json() == {
            "status": "degraded", "reason": "Redis unavailable: serving per-replica limits (--redis-failure open)"}
        assert requests.get(a.url + "/health/redis", timeout=5).json()["status"] == "degraded"
        redis.start()  # same port: the replica reconnects by itself
        r = wait_health(a.url, "healthy")
        assert r.status_code == 200 and r.json() == {"status": "healthy"}
    finally:
        assert a.stop() == 0
        redis.stop()
