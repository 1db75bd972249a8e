"""The HTTP surface of `listend serve` that is not transcription: health
endpoints, 404/405 envelopes, request ids, access logs, keep-alive, and the
command line / environment configuration."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest
import requests

from conftest import BIN, ROOT, free_port, run_cli, start_server


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("http"))
    yield s
    s.stop()


def log_lines(srv):
    out = []
    for line in srv.log().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def test_health(srv):
    r = requests.get(srv.url + "/health", timeout=10)
    assert r.status_code == 200 and r.json() == {"status": "healthy"}
    for path in ("/api/v1/health",):
        assert requests.get(srv.url + path, timeout=10).json() == {"status": "healthy"}
    r = requests.get(srv.url + "/healthz", timeout=10)
    assert r.status_code == 200 and "true" in r.text
    r = requests.get(srv.url + "/livez", timeout=10)
    assert r.status_code == 200 and r.json() == {"alive": True}


def test_health_detailed(srv):
    b = requests.get(srv.url + "/health?detailed=true", timeout=10).json()
    assert b["status"] == "healthy"
    assert b["components"] == {"api_server": "healthy", "asr": "healthy", "license": "healthy", "store": "healthy",
                               "lightning_asr": "healthy", "license_proxy": "healthy"}
    assert isinstance(b["uptime_seconds"], int) and b["uptime_seconds"] >= 0
    assert re.fullmatch(r"\d+\.\d+\.\d+", b["version"])
    assert b["asr_workers"] == 2 and "en" in b["languages"]


def test_health_components(srv):
    r = requests.get(srv.url + "/health/asr", timeout=10)
    assert r.status_code == 200 and r.json() == {"component": "asr", "status": "healthy"}
    r = requests.get(srv.url + "/health/bogus", timeout=10)
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"


def test_head_health(srv):
    r = requests.head(srv.url + "/health", timeout=10)
    assert r.status_code == 200 and r.content == b""


def test_unknown_path_404_envelope(srv):
    r = requests.get(srv.url + "/v2/nothing", timeout=10)
    assert r.status_code == 404
    assert r.headers["Content-Type"] == "application/json"
    b = r.json()
    assert b["code"] == "NOT_FOUND" and "/v2/nothing" in b["error"]
    assert b["request_id"] == r.headers["X-Request-ID"]


@pytest.mark.parametrize("method,path,allow", [
    ("POST", "/health", "GET, HEAD"),
    ("GET", "/v1/listen", "POST"),
    ("DELETE", "/v1/license", "GET, HEAD"),
    ("PUT", "/v1/jobs/job_x", "GET, HEAD, DELETE"),
    ("HEAD", "/v1/listen/stream", "GET"),
])
def test_wrong_method_405_with_allow(srv, method, path, allow):
    r = requests.request(method, srv.url + path, timeout=10)
    assert r.status_code == 405
    assert r.headers["Allow"] == allow
    if method != "HEAD":
        b = r.json()
        assert b["code"] == "METHOD_NOT_ALLOWED" and method in b["error"]
        assert ("/v1/jobs/{id}" if "jobs" in path else path) in b["error"], b


def test_head_wherever_a_plain_get(srv):
    key = srv.key("head")
    for path in ("/health", "/v1/license", "/v1/models", "/v1/jobs", "/v1/jobs/job_nope"):
        g = requests.get(srv.url + path, headers=srv.auth(key), timeout=10)
        h = requests.head(srv.url + path, headers=srv.auth(key), timeout=10)
        assert h.status_code == g.status_code and not h.content, (path, h.status_code, g.status_code)


def test_405_before_auth_even_with_a_body(srv):
    r = requests.put(srv.url + "/v1/listen", data=b"x" * 300000, timeout=10)
    assert r.status_code == 405 and r.headers["Allow"] == "POST"


def test_request_id_echo_and_generation(srv):
    r = requests.get(srv.url + "/v2/x", headers={"X-Request-ID": "debug-123.A_b"}, timeout=10)
    assert r.headers["X-Request-ID"] == "debug-123.A_b" and r.json()["request_id"] == "debug-123.A_b"
    for bad in ("has space", "x" * 129, "semi;colon"):
        r = requests.get(srv.url + "/v2/x", headers={"X-Request-ID": bad}, timeout=10)
        assert re.fullmatch(r"req_[a-z0-9]{20}", r.headers["X-Request-ID"]), r.headers
    ids = {requests.get(srv.url + "/health", timeout=10).headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5


def test_access_log_line(srv):
    key = srv.key("logline")
    r = requests.get(srv.url + "/v1/license", headers={**srv.auth(key), "X-Request-ID": "trace-access-1"}, timeout=10)
    assert r.status_code == 200
    time.sleep(0.2)
    lines = [l for l in log_lines(srv) if l.get("request_id") == "trace-access-1" and "status" in l]
    assert len(lines) == 1, lines
    l = lines[0]
    assert l["level"] == "INFO" and l["method"] == "GET" and l["path"] == "/v1/license" and l["status"] == 200
    assert l["client"] == "127.0.0.1" and l["key_id"] == r.json()["key_id"]
    assert isinstance(l["duration_ms"], int) and re.match(r"\d{4}-\d\d-\d\dT", l["timestamp"])


def test_keep_alive_serves_several_requests_on_one_connection(srv):
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    socks = set()
    for _ in range(3):
        c.request("GET", "/health")
        r = c.getresponse()
        assert r.status == 200 and json.loads(r.read()) == {"status": "healthy"}
        socks.add(id(c.sock))
    assert len(socks) == 1
    c.close()


def test_startup_log_lines(srv):
    lines = log_lines(srv)
    assert any(l["message"] == "Starting API Server v" + l.get("version", "?") for l in lines)
    up = [l for l in lines if l["message"].startswith(f"API server listening on port {srv.port}")]
    assert len(up) == 1
    u = up[0]
    assert u["port"] == srv.port and u["tls"] is False and u["workers"] == 2 and u["languages"] == ["en"]
    assert u["data_dir"] == str(srv.data) and u["version"]


def test_help_lists_every_flag_and_env_var_and_docs_match():
    out = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    flags = set(re.findall(r"^\s+--([a-z-]+)", out.stdout, re.M)) - {"help"}
    envs = set(re.findall(r"env ([A-Z_]+)(?:, ([A-Z_]+))?", out.stdout))
    envs = {e for pair in envs for e in pair if e}
    for f in ("host", "port", "data", "tls-cert", "tls-key", "workers", "log-level", "models", "max-body-mb",
              "max-audio-seconds", "queue", "allow-private-urls", "max-streams", "drain-timeout",
              "stream-idle-timeout", "job-retention", "webhook-max-age"):
        assert f in flags, f
    assert {"API_SERVER_PORT", "PORT", "LISTEND_DATA", "LISTEND_HOST", "LISTEND_WORKERS", "LISTEND_LOG_LEVEL",
            "LISTEND_TLS_CERT"} <= envs
    with open(os.path.join(ROOT, "docs", "configuration.md")) as f:
        doc = f.read()
    for f in flags:
        assert f"--{f}" in doc, f"docs/configuration.md misses --{f}"
    for e in envs:
        assert e in doc, f"docs/configuration.md misses {e}"


def test_bad_flags_exit_2():
    for args in (["--nope"], ["--port", "abc"], ["--port"], ["--tls-cert", "/x"], ["--log-level", "loud"],
                 ["--max-connections", "0"], ["--max-streams", "0"],  # 0 served nothing (hung) or no cap at all
                 ["--stream-idle-timeout", "0"], ["--connection-timeout", "soon"],
                 ["--workers", "1000"], ["--http-threads", "100000"]):  # loaded until the OOM killer came
        r = subprocess.run([BIN, "serve", *args], capture_output=True, text=True, timeout=10)
        assert r.returncode == 2, args
        assert "listend serve" in r.stderr


def _serve_env(tmp_path, env, *args):
    data = tmp_path / "envdata"
    if not (data / "issuer.pub").exists():
        run_cli("keys", "init", data=data)
    full = dict(os.environ, **env)
    log = open(tmp_path / "env.log", "a")
    p = subprocess.Popen([BIN, "serve", "--host", "127.0.0.1", "--workers", "1", *args], env=full,
                         stdout=log, stderr=subprocess.STDOUT)
    return data, p


def _wait_up(port, proc):
    deadline = time.time() + 60
    while time.time() < deadline:
        assert proc.poll() is None, "server exited"
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.1)
    raise AssertionError("server did not come up")


def test_env_configuration_and_flags_win(tmp_path):
    p1, p2, p3 = free_port(), free_port(), free_port()
    data = tmp_path / "envdata"
    run_cli("keys", "init", data=data)
    # API_SERVER_PORT beats PORT; LISTEND_DATA is used without --data.
    _, proc = _serve_env(tmp_path, {"API_SERVER_PORT": str(p1), "PORT": str(p2), "LISTEND_DATA": str(data),
                                    "LISTEND_MAX_BODY_MB": "3"})
    try:
        _wait_up(p1, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    # A flag beats the environment. Durations take units everywhere; booleans any case.
    _, proc = _serve_env(tmp_path, {"API_SERVER_PORT": str(p1), "LISTEND_DATA": str(data),
                                    "LISTEND_MAX_BODY_MB": "3", "LISTEND_NO_PLAYGROUND": "TRUE"},
                         "--port", str(p3), "--max-body-mb", "7", "--connection-timeout", "2m",
                         "--header-timeout", "15s", "--stream-idle-timeout", "1m")
    try:
        _wait_up(p3, proc)
        assert requests.get(f"http://127.0.0.1:{p3}/playground", timeout=10).status_code == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    lines = [json.loads(l) for l in open(tmp_path / "env.log") if l.startswith("{")]
    up = [l for l in lines if l["message"].startswith("API server listening")]
    assert [(l["port"], l["max_body_mb"]) for l in up] == [(p1, 3), (p3, 7)]
    assert all(l["data_dir"] == str(data) for l in up)


def test_missing_issuer_key_fails_clearly(tmp_path):
    r = subprocess.run([BIN, "serve", "--host", "127.0.0.1", "--port", str(free_port()), "--data", str(tmp_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "keys init" in r.stderr
    assert r.stderr.count('"CRITICAL"') == 1, r.stderr  # one line says it (was two)
    # An issuer.pub that is there but not a key: `keys init` would refuse to replace it, so the
    # message names the file and what is wrong with it instead of sending the operator there.
    (tmp_path / "issuer.pub").write_text("not a key\n")
    r = subprocess.run([BIN, "serve", "--host", "127.0.0.1", "--port", str(free_port()), "--data", str(tmp_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "keys init" not in r.stderr, r.stderr
    assert f"{tmp_path / 'issuer.pub'} cannot be read as an issuer public key (not an Ed25519 public key)" in r.stderr


def test_second_server_on_one_data_dir_is_refused(server_factory):
    """Before: a second `serve --data D` started and deleted the first one's uploads in flight as stale (the first
    answered 500 "Cannot read the audio file"). The data dir is locked; the refusal names the holder."""
    srv = server_factory(workers=1)
    r = subprocess.run([BIN, "serve", "--host", "127.0.0.1", "--port", str(free_port()), "--data", str(srv.data),
                        "--workers", "1"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "in use by another listend serve" in r.stderr, r.stderr[-1000:]
    assert f"pid {srv.proc.pid}" in r.stderr
    assert requests.get(srv.url + "/health", timeout=10).status_code == 200


def test_host_unspecified_ipv6_serves_ipv4_too(server_factory):
    """`--host ::` means every address: it listened on IPv6 only (IPV6_V6ONLY set), so IPv4 clients and the
    image's healthcheck on 127.0.0.1 were refused."""
    if not socket.has_ipv6 or subprocess.run(["ip", "-6", "addr", "show", "lo"], capture_output=True,
                                             text=True).stdout.find("::1") < 0:
        pytest.skip("no IPv6 loopback on this machine: `--host ::` cannot be checked here")
    srv = server_factory("--host", "::", workers=1)
    assert requests.get(f"http://127.0.0.1:{srv.port}/health", timeout=10).status_code == 200
    assert requests.get(f"http://[::1]:{srv.port}/health", timeout=10).status_code == 200
