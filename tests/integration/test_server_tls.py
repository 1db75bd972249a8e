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


@pytest.mark.parametrize("cmd", ["transcribe", "stream"])
def test_cli_clients_verify_with_cacert_or_skip_with_insecure(tls_srv, tmp_path, cmd):
    """Both CLI clients: a self-signed server is refused by default (with a hint), trusted with
    --cacert, and reached unverified with --insecure; a --cacert that holds no certificate says so."""
    from conftest import BIN
    key = tls_srv.key("cli-" + cmd)
    wav = tmp_path / "gf.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "s16le", "-ar", "16000", "-ac", "1",
                    "-i", GOFORWARD, str(wav)], check=True)
    (tmp_path / "empty.pem").write_text("")
    mode = ["--no-interim"] if cmd == "stream" else []

    def run(*extra):
        return subprocess.run([BIN, cmd, str(wav), "--server", tls_srv.url, "--key", key, *mode, *extra],
                              capture_output=True, text=True, timeout=120)
    r = run()
    assert r.returncode != 0 and "--cacert FILE" in r.stderr and "--insecure" in r.stderr, r.stderr
    for extra in (["--cacert", tls_srv.cert], ["--insecure"]):
        r = run(*extra)
        assert r.returncode == 0 and "forward" in r.stdout.lower(), (extra, r.stderr)
    # a PEM armour around no certificate is refused by the same GnuTLS check in both clients
    (tmp_path / "armour.pem").write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    for bad in ("empty.pem", "armour.pem"):
        r = run("--cacert", str(tmp_path / bad))
        assert r.returncode != 0 and f"--cacert {tmp_path / bad}: no PEM certificate" in r.stderr, r.stderr
    r = run("--cacert", str(tmp_path / "missing.pem"))
    assert r.returncode != 0 and f"--cacert {tmp_path / 'missing.pem'}: No such file or directory" in r.stderr, r.stderr


@pytest.mark.parametrize("version,ok", [("TLS1.0", False), ("TLS1.1", False), ("TLS1.2", True), ("TLS1.3", True)])
def test_only_tls_1_2_and_1_3_are_served(tls_srv, version, ok):
    """TLS 1.0 and 1.1 are deprecated (RFC 8996): a client offering only one of them gets no session (gnutls's
    NORMAL priorities, libmicrohttpd's default, still served them)."""
    r = subprocess.run(["gnutls-cli", "--insecure", "--port", str(tls_srv.port),
                        "--priority", f"NORMAL:-VERS-ALL:+VERS-{version}:+SHA1:+CIPHER-ALL", "127.0.0.1"],
                       input="", capture_output=True, text=True, timeout=30)
    assert ("Handshake was completed" in r.stdout) == ok, (r.stdout[-600:], r.stderr[-600:])


def test_unusable_certificate_fails_before_the_decoders_load(tls_srv, tmp_path):
    """A readable file that is not a certificate, or a key of another certificate: refused with gnutls's reason
    before any decoder loads (it failed only after them, as "address in use, or bad TLS files?")."""
    import os
    import time
    from conftest import BIN, free_port, run_cli
    run_cli("keys", "init", data=tmp_path)
    other = tmp_path / "other.key"
    subprocess.run(["openssl", "genrsa", "-out", str(other), "2048"], check=True, capture_output=True)
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    for cert, key in ((str(tmp_path / "junk.pem"), os.path.join(os.path.dirname(tls_srv.cert), "key.pem")),
                      (tls_srv.cert, str(other))):
        t0 = time.time()
        r = subprocess.run([BIN, "serve", "--host", "127.0.0.1", "--port", str(free_port()), "--data", str(tmp_path),
                            "--workers", "8", "--tls-cert", cert, "--tls-key", key],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and "cannot be used" in r.stderr, r.stderr[-800:]
        assert "decoder pool ready" not in r.stderr and time.time() - t0 < 5
