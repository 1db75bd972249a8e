"""Request-body limits and back-pressure: the size cap enforced while the body
streams in (without the body ever sitting in memory), large bodies spooled to
<data>/tmp and removed afterwards, an over-cap Content-Length refused before
reading, and 503 with Retry-After when the queues are full."""
import concurrent.futures
import os
import socket
import time

import pytest
import requests

from conftest import EVAL_DIR, GOFORWARD, start_server

CLIP = os.path.join(EVAL_DIR, "ps_librivox_sns01_0870.wav")  # 7.1 s


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("limits"), "--max-body-mb", "5")
    s.k = s.key("limits", rpm=100000)
    yield s
    s.stop()


def tmp_files(srv):
    d = os.path.join(srv.data, "tmp")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def test_streamed_oversized_body_is_422_without_rss_growth(srv):
    base = srv.rss_kb()
    chunk = b"\0" * (1 << 20)

    def gen():
        for _ in range(50):  # 50 MB against a 5 MB cap, chunked (no Content-Length)
            yield chunk

    r = requests.post(srv.url + "/v1/listen", data=gen(), timeout=120,
                      headers={**srv.auth(srv.k), "Content-Type": "application/octet-stream"})
    assert r.status_code == 422, r.text
    assert r.json() == {"error": "Audio file too large", "code": "FILE_TOO_LARGE", "max_size_mb": 5,
                        "request_id": r.headers["X-Request-ID"]}
    grown = srv.rss_kb() - base
    assert grown < 20 * 1024, f"RSS grew by {grown} kB for a 50 MB body"
    assert tmp_files(srv) == []
    assert requests.get(srv.url + "/health", timeout=10).status_code == 200


def test_oversized_multipart_is_422(srv):
    r = requests.post(srv.url + "/v1/listen", files={"audio": ("big.wav", b"\0" * (6 << 20))},
                      headers=srv.auth(srv.k), timeout=120)
    assert r.status_code == 422 and r.json()["code"] == "FILE_TOO_LARGE" and r.json()["max_size_mb"] == 5


def _headers_only(srv, length, extra=""):
    """Sends only the headers of an upload; returns what the server answers."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall((f"POST /v1/listen HTTP/1.1\r\nHost: x\r\nAuthorization: Token {srv.k}\r\n"
                   f"Content-Type: audio/wav\r\nContent-Length: {length}\r\n{extra}\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            more = s.recv(4096)
            if not more:
                break
            data += more
    return data


def test_content_length_over_cap_is_refused_before_the_body(srv):
    """The answer comes although not one body byte was sent: at once when the
    client waits for 100-continue, or when the declared size is absurd."""
    for length, extra in ((52428800, "Expect: 100-continue\r\n"), (4 << 30, "")):
        data = _headers_only(srv, length, extra)
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 422"), data
        assert b"100 Continue" not in head
        assert b'"code":"FILE_TOO_LARGE"' in body and b'"max_size_mb":5' in body


def test_content_length_over_cap_client_sees_422_not_a_reset(srv):
    """A client that sends a known-size body without 100-continue (requests,
    Node) gets the 422 JSON after the body was dropped, reliably."""
    body = b"\0" * (40 << 20)
    for _ in range(3):
        r = requests.post(srv.url + "/v1/listen", data=body, timeout=60,
                          headers={**srv.auth(srv.k), "Content-Type": "audio/wav"})
        assert r.status_code == 422 and r.json()["max_size_mb"] == 5


def test_expect_100_continue_refusal_is_immediate(srv):
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(("POST /v1/listen HTTP/1.1\r\nHost: x\r\nAuthorization: Token bad\r\n"
                   "Content-Type: audio/wav\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n").encode())
        data = s.recv(4096)
    assert data.startswith(b"HTTP/1.1 401"), data


def test_early_error_is_seen_after_the_upload(srv):
    """An unauthenticated upload still gets its 401 JSON (the body is drained)."""
    r = requests.post(srv.url + "/v1/listen", data=b"\0" * (2 << 20), timeout=60,
                      headers={"Content-Type": "audio/wav", "Authorization": "Token nope"})
    assert r.status_code == 401 and r.json()["code"] == "INVALID_LICENSE"


def test_large_upload_is_spooled_to_disk_and_removed(srv):
    pcm = open(GOFORWARD, "rb").read() * 4  # 357 kB of real speech, above the 256 kB kept in memory
    seen = []

    def gen():
        for i in range(0, len(pcm), 65536):
            yield pcm[i:i + 65536]
            if i > 300 * 1024 and not seen:
                time.sleep(0.3)
                seen.extend(tmp_files(srv))

    r = requests.post(srv.url + "/v1/listen", data=gen(), params={"encoding": "linear16"}, timeout=120,
                      headers={**srv.auth(srv.k), "Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    assert "forward" in r.json()["text"].lower()
    assert any(f.startswith("up_") for f in seen), seen
    assert tmp_files(srv) == []


def test_full_queue_is_503_with_retry_after(server_factory):
    s = server_factory("--queue", "1", workers=1)
    key = s.key("busy", rpm=1000, concurrency=100)
    clip = open(CLIP, "rb").read()

    def one(_):
        return requests.post(s.url + "/v1/listen", data=clip, timeout=180,
                             headers={**s.auth(key), "Content-Type": "audio/wav"})

    with concurrent.futures.ThreadPoolExecutor(10) as ex:
        results = list(ex.map(one, range(10)))
    codes = [r.status_code for r in results]
    assert set(codes) <= {200, 503}, codes
    assert 200 in codes and 503 in codes, codes
    busy = next(r for r in results if r.status_code == 503)
    b = busy.json()
    assert b["code"] == "SERVICE_UNAVAILABLE" and b["retry_after"] > 0
    assert busy.headers["Retry-After"] == str(b["retry_after"])
