"""Authentication and limits over HTTP: 401/403/429 envelopes exactly as the
spec shows them, X-RateLimit-* headers, the concurrency lease held until the
answer is queued (never raced by the client's next request), revocation while
running, per-address throttling of failed authentications, daily quota, and
usage surviving a restart."""
import concurrent.futures
import time

import pytest
import requests

from conftest import GOFORWARD, run_cli, start_server

GOFORWARD_S = 2.786


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("auth"))
    yield s
    s.stop()


def lic(srv, key, scheme="Token"):
    return requests.get(srv.url + "/v1/license", headers={"Authorization": f"{scheme} {key}"}, timeout=10)


def transcribe(srv, key, data=None):
    if data is None:
        data = open(GOFORWARD, "rb").read()
    return requests.post(srv.url + "/v1/listen", data=data, params={"encoding": "linear16"},
                         headers={"Authorization": f"Token {key}", "Content-Type": "application/octet-stream"},
                         timeout=120)


def invalid(r):
    assert r.status_code == 401, r.text
    body = r.json()
    assert body == {"error": "Invalid license key", "code": "INVALID_LICENSE", "request_id": r.headers["X-Request-ID"]}
    assert "X-RateLimit-Limit" not in r.headers


def test_missing_garbage_and_tampered_keys_are_401(srv):
    invalid(requests.get(srv.url + "/v1/license", timeout=10))
    invalid(lic(srv, "not-a-key"))
    invalid(lic(srv, ""))
    key = srv.key("tamper")
    mid = len(key) // 2
    tampered = key[:mid] + ("A" if key[mid] != "A" else "B") + key[mid + 1:]
    invalid(lic(srv, tampered))
    invalid(lic(srv, key, scheme="Basic"))
    invalid(requests.post(srv.url + "/v1/listen", json={"url": "http://example.com/a.wav"}, timeout=10))


def test_token_and_bearer_accepted_with_rate_headers(srv):
    key = srv.key("ok", rpm=50)
    for scheme in ("Token", "Bearer"):
        r = lic(srv, key, scheme)
        assert r.status_code == 200, r.text
        assert r.headers["X-RateLimit-Limit"] == "50"
        assert 0 <= int(r.headers["X-RateLimit-Remaining"]) < 50
        assert int(r.headers["X-RateLimit-Reset"]) >= 0


def test_license_endpoint_body(srv):
    key = srv.key("lic", rpm=7, concurrency=3, hours_per_day=2, expires="2099-01-02")
    r = lic(srv, key)
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["key_id"].startswith("k_") and b["name"] == "lic"
    assert b["expires_at"] == "2099-01-02T00:00:00Z"
    assert b["limits"] == {"requests_per_minute": 7, "concurrency": 3, "audio_hours_per_day": 2.0}
    u = b["usage"]
    assert u["requests_this_minute"] == 1 and u["requests_remaining"] == 6
    assert u["audio_seconds_today"] == 0 and u["audio_seconds_remaining"] == 7200
    assert u["concurrent"] >= 1  # this request holds a slot
    assert b["request_id"] == r.headers["X-Request-ID"]


def test_expired_key_is_403_with_expires_at(srv):
    key = srv.key("old", expires="2020-01-01")
    r = lic(srv, key)
    assert r.status_code == 403
    assert r.json() == {"error": "License expired", "code": "LICENSE_EXPIRED", "expires_at": "2020-01-01T00:00:00Z",
                        "request_id": r.headers["X-Request-ID"]}


def test_rate_limit_fourth_request_is_429(srv):
    key = srv.key("rpm3", rpm=3)
    remaining = [lic(srv, key).headers["X-RateLimit-Remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    r = lic(srv, key)
    assert r.status_code == 429
    body = r.json()
    assert body["error"] == "Rate limit exceeded" and body["code"] == "RATE_LIMIT_EXCEEDED"
    assert 0 < body["retry_after"] <= 60
    assert r.headers["Retry-After"] == str(body["retry_after"])
    assert r.headers["X-RateLimit-Remaining"] == "0"
    # A refused request does not count: still refused, not pushed further out.
    assert lic(srv, key).status_code == 429


def test_errors_of_admitted_requests_carry_rate_headers(srv):
    key = srv.key("hdr", rpm=100)
    r = requests.post(srv.url + "/v1/listen", json={}, headers={"Authorization": f"Token {key}"}, timeout=10)
    assert r.status_code == 400 and r.json()["code"] == "MISSING_PARAMETER"
    assert r.headers["X-RateLimit-Limit"] == "100"


def test_concurrency_one_overlapping_slow_uploads(srv):
    key = srv.key("conc1", concurrency=1, rpm=100)
    pcm = open(GOFORWARD, "rb").read()

    def slow_upload(delay):
        time.sleep(delay)

        def gen():
            for i in range(0, len(pcm), len(pcm) // 8 + 1):
                yield pcm[i:i + len(pcm) // 8 + 1]
                time.sleep(0.2)

        return transcribe(srv, key, gen())

    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        results = list(ex.map(slow_upload, [0, 0.4]))
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 429], [r.text for r in results]
    refused = next(r for r in results if r.status_code == 429)
    assert refused.json()["code"] == "RATE_LIMIT_EXCEEDED" and refused.json()["retry_after"] >= 1
    # The slot is free again once the first response was sent.
    assert lic(srv, key).status_code == 200


def test_concurrency_one_back_to_back_requests_are_never_refused(srv):
    """Before: the lease went back only after the last byte was sent, so a client that read
    the answer and at once sent its next request (new connection) sometimes got 429 "Rate
    limit exceeded: 1 concurrent requests allowed" — measured 37 of 6138 /v1/license calls,
    134 of 2177 with the CPUs busy; CI once failed a job-queue test on it. Now the lease is
    released before the answer is queued."""
    key = srv.key("backtoback", concurrency=1, rpm=100000)
    refused = [r.text for r in (lic(srv, key) for _ in range(1500)) if r.status_code != 200]
    assert not refused, (len(refused), refused[:2])
    refused = [r.text for r in (transcribe(srv, key) for _ in range(20)) if r.status_code != 200]
    assert not refused, (len(refused), refused[:2])


def test_revoke_while_running_takes_effect_within_2s(srv):
    key = srv.key("revokee")
    assert lic(srv, key).status_code == 200
    run_cli("keys", "revoke", key, data=srv.data)
    deadline = time.time() + 2.0
    while time.time() < deadline:
        if lic(srv, key).status_code == 401:
            break
        time.sleep(0.1)
    invalid(lic(srv, key))


def test_log_has_key_id_never_key_text(srv):
    key = srv.key("logged")
    r = lic(srv, key)
    kid = r.json()["key_id"]
    time.sleep(0.2)
    log = srv.log()
    assert kid in log
    assert key not in log and key[10:40] not in log


def test_failed_auth_throttling_per_address(server_factory):
    s = server_factory()
    good = s.key("innocent")
    codes = [lic(s, "garbage-%d" % i).status_code for i in range(30)]
    assert codes[0] == 401
    assert codes[-1] == 429, codes
    r = lic(s, "garbage")
    body = r.json()
    assert body["code"] == "RATE_LIMIT_EXCEEDED" and body["retry_after"] > 0
    assert int(r.headers["Retry-After"]) == body["retry_after"]
    # The address is throttled, whatever key it brings.
    assert lic(s, good).status_code == 429
    assert "Invalid license key from 127.0.0.1" in s.log()


def test_quota_exceeded_and_usage_survives_restart(tmp_path):
    data = tmp_path / "quota"
    s = start_server(data)
    try:
        key = s.key("small", hours_per_day=0.001)  # 3.6 s a day
        assert transcribe(s, key).status_code == 200  # 2.8 s: under the quota when admitted
        assert transcribe(s, key).status_code == 200  # 5.6 s used now
        r = transcribe(s, key)
        assert r.status_code == 403, r.text
        assert r.json()["code"] == "QUOTA_EXCEEDED"
        assert 0 < r.json()["retry_after"] <= 86400  # until the UTC day ends
        assert r.headers["Retry-After"] == str(r.json()["retry_after"])
        used = lic(s, key).json()["usage"]["audio_seconds_today"]
        assert abs(used - 2 * GOFORWARD_S) < 0.05
    finally:
        assert s.stop() == 0
    s = start_server(data)
    try:
        u = lic(s, key).json()["usage"]
        assert abs(u["audio_seconds_today"] - used) < 0.001
        assert u["audio_seconds_remaining"] == 0
        assert transcribe(s, key).status_code == 403
    finally:
        s.stop()
