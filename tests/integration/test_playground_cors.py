"""The playground's routes over HTTP (the browser itself: test_playground_browser.py)
and CORS (--cors-origin): off by default, preflights for allowed origins only,
Access-Control-Allow-Origin on answers and errors for allowed origins only."""
import subprocess

import pytest
import requests

from conftest import BIN, start_server


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("web"), "--cors-origin", "https://app.example",
                     "--cors-origin", "http://localhost:3000/", workers=1)
    yield s
    s.stop()


def test_root_redirects_to_the_playground(shared_server):
    r = requests.get(shared_server.url + "/", allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"] == "/playground"
    r = requests.get(shared_server.url + "/", timeout=10)
    assert r.status_code == 200 and r.url.endswith("/playground")
    r = requests.get(shared_server.url + "/playground/", allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"] == "/playground"


def test_page_and_assets_with_a_strict_policy(shared_server):
    r = requests.get(shared_server.url + "/playground", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    csp = r.headers["Content-Security-Policy"]
    for directive in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
                      "frame-ancestors 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp and "http" not in csp  # no inline code, no CDN
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script" in r.text and "/playground/playground.js" in r.text
    assert "<script>" not in r.text  # no inline script
    for name, ctype in [("playground.js", "text/javascript"), ("playground.css", "text/css"),
                        ("playground-worklet.js", "text/javascript")]:
        a = requests.get(shared_server.url + "/playground/" + name, timeout=10)
        assert a.status_code == 200 and a.headers["Content-Type"].startswith(ctype) and len(a.content) > 500
    assert requests.head(shared_server.url + "/playground", timeout=10).status_code == 200
    miss = requests.get(shared_server.url + "/playground/nope.js", timeout=10)
    assert miss.status_code == 404 and miss.json()["code"] == "NOT_FOUND"


def test_no_playground_turns_it_off(server_factory):
    s = server_factory("--no-playground", workers=1)
    for path in ("/", "/playground", "/playground/", "/playground/playground.js"):
        r = requests.get(s.url + path, allow_redirects=False, timeout=10)
        assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND", path
    assert requests.get(s.url + "/health", timeout=10).status_code == 200


def test_cors_is_off_by_default(shared_server):
    r = requests.options(shared_server.url + "/v1/listen", timeout=10,
                         headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert r.status_code == 405 and "Access-Control-Allow-Origin" not in r.headers
    r = requests.get(shared_server.url + "/v1/license", headers={"Origin": "https://app.example"}, timeout=10)
    assert r.status_code == 401 and "Access-Control-Allow-Origin" not in r.headers


def test_preflight_for_an_allowed_origin(srv):
    for origin in ("https://app.example", "http://localhost:3000"):
        r = requests.options(srv.url + "/v1/listen", timeout=10, headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert r.status_code == 204, r.text
        assert r.headers["Access-Control-Allow-Origin"] == origin and r.headers["Vary"] == "Origin"
        assert r.headers["Access-Control-Allow-Methods"] == "POST"
        allowed = {h.strip() for h in r.headers["Access-Control-Allow-Headers"].split(",")}
        assert {"authorization", "content-type"} <= allowed
        assert "Access-Control-Allow-Credentials" not in r.headers
    r = requests.options(srv.url + "/v1/jobs/job_x", timeout=10,
                         headers={"Origin": "https://app.example", "Access-Control-Request-Method": "DELETE"})
    assert r.status_code == 204 and r.headers["Access-Control-Allow-Methods"] == "GET, HEAD, DELETE"


def test_preflight_from_another_origin_is_not_allowed(srv):
    r = requests.options(srv.url + "/v1/listen", timeout=10,
                         headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert r.status_code == 405 and "Access-Control-Allow-Origin" not in r.headers


def test_answers_and_errors_carry_the_origin(srv):
    key = srv.key("cors")
    ok = requests.get(srv.url + "/v1/license", headers={**srv.auth(key), "Origin": "https://app.example"},
                      timeout=10)
    assert ok.status_code == 200 and ok.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "X-Request-ID" in ok.headers["Access-Control-Expose-Headers"]
    err = requests.post(srv.url + "/v1/listen", headers={"Origin": "https://app.example"}, timeout=10)
    assert err.status_code == 401 and err.headers["Access-Control-Allow-Origin"] == "https://app.example"
    other = requests.get(srv.url + "/v1/license", headers={**srv.auth(key), "Origin": "https://evil.example"},
                         timeout=10)
    assert other.status_code == 200 and "Access-Control-Allow-Origin" not in other.headers


def test_any_origin(server_factory):
    s = server_factory("--cors-origin", "*", workers=1)
    r = requests.options(s.url + "/v1/license", timeout=10,
                         headers={"Origin": "https://any.example", "Access-Control-Request-Method": "GET"})
    assert r.status_code == 204 and r.headers["Access-Control-Allow-Origin"] == "*" and "Vary" not in r.headers


@pytest.mark.parametrize("value", ["ftp://x.example", "https://x.example/path", "app.example", "https://"])
def test_bad_origin_is_refused_at_start(tmp_path, value):
    r = subprocess.run([BIN, "serve", "--data", str(tmp_path), "--cors-origin", value], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "--cors-origin" in r.stderr
