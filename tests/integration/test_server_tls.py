"""HTTPS with --tls-cert/--tls-key: a self-signed certificate made here, health
and an authenticated transcription over TLS, and plain HTTP refused."""
import subprocess

import pytest
import requests

from conftest import GOFORWARD, start_tls_server


@pytest.fixture(scope="module")
def tls_srv(tmp_path_factory):
    s = start_tls_server(tmp_path_factory.mktemp("tls"))
    yield s
    s.stop()


def test_health_over_https_verified(tls_srv):
    r = requests.get(tls_srv.url + "/health", verify=tls_srv.cert, timeout=10)
    assert r.status_code == 200 and r.json() == {"status": "healthy"}
    assert tls_srv.url.startswith("https://")


def test_transcription_over_https(tls_srv):
    key = tls_srv.key("tls")
    with open(GOFORWARD, "rb") as f:
        r = requests.post(tls_srv.url + "/v1/listen", params={"encoding": "linear16", "sample_rate": 16000},
                          files={"audio": f}, headers=tls_srv.auth(key), verify=tls_srv.cert, timeout=120)
    assert r.status_code == 200, r.text
    assert "forward" in r.json()["text"].lower()


def test_plain_http_is_not_served(tls_srv):
    with pytest.raises(requests.RequestException):
        requests.get(f"http://127.0.0.1:{tls_srv.port}/health", timeout=5)


def test_startup_log_says_tls(tls_srv):
    assert '"tls":true' in tls_srv.log()


def test_unreadable_certificate_fails_start(tmp_path):
    from conftest import BIN, free_port, run_cli
    run_cli("keys", "init", data=tmp_path)
    r = subprocess.run([BIN, "serve", "--host", "127.0.0.1", "--port", str(free_port()), "--data", str(tmp_path),
                        "--tls-cert", str(tmp_path / "none.pem"), "--tls-key", str(tmp_path / "none.key")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "TLS" in r.stderr
