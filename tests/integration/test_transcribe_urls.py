"""Acceptance (issue #3): `url` input fetched from a local HTTP server, and the SSRF policy.

With `--allow-private-urls` a loopback URL is transcribed (redirects followed); without it the
same URL is refused with 400 URL_FETCH_FAILED naming the refused address, also when the refused
address is only reached through a redirect. That last case needs a first hop the guard allows,
i.e. a non-private address that still never leaves the machine: it runs in a private network
namespace (`unshare -rn`, only `lo`, holding the address 1.2.3.4) — see
audio_fixtures.netns_redirect_probe. All traffic is loopback."""
import json
import os
import shutil
import subprocess

import pytest

from audio_fixtures import (GOFORWARD, GOFORWARD_WORDS, LocalHTTP, audio_cache, clip_path, error, listen, ok_json, words)
from conftest import BIN, start_server

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def www(tmp_path_factory):
    audio = audio_cache(tmp_path_factory)
    wav = audio.variants(GOFORWARD, ["wav16k"])["wav16k"]
    d = tmp_path_factory.mktemp("www")
    shutil.copy(wav, d / "goforward.wav")
    server = LocalHTTP(d)
    yield server
    server.close()


@pytest.fixture(scope="module")
def open_srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("urls_open"), "--allow-private-urls", workers=1)
    s.k = s.key("urls", rpm=100000)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def guarded_srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("urls_guarded"), workers=1)
    s.k = s.key("urls", rpm=100000)
    yield s
    s.stop()


def test_url_on_a_private_address_with_allow_private_urls(open_srv, www):
    body = ok_json(listen(open_srv, open_srv.k, json={"url": f"{www.base}/goforward.wav", "timestamps": True}))
    assert words(body["text"]) == GOFORWARD_WORDS and body["words"]


def test_redirect_is_followed_with_allow_private_urls(open_srv, www):
    url = f"{www.base}/redirect?to={www.base}/goforward.wav"
    body = ok_json(listen(open_srv, open_srv.k, json={"url": url}))
    assert words(body["text"]) == GOFORWARD_WORDS


def test_private_url_is_refused_by_default(guarded_srv, www):
    body = error(listen(guarded_srv, guarded_srv.k, json={"url": f"{www.base}/goforward.wav"}), 400, "URL_FETCH_FAILED")
    assert "127.0.0.1" in body["error"] and "loopback" in body["error"], body
    # Same refusal for a multipart/query `url` and for `localhost` (resolved, then judged by address).
    r = listen(guarded_srv, guarded_srv.k, params={"url": f"http://localhost:{www.port}/goforward.wav"})
    body = error(r, 400, "URL_FETCH_FAILED")
    assert "refused address" in body["error"] and "loopback" in body["error"], body


def test_http_404_is_reported_with_the_status(open_srv, www):
    body = error(listen(open_srv, open_srv.k, json={"url": f"{www.base}/missing.wav"}), 400, "URL_FETCH_FAILED")
    assert "404" in body["error"], body
    assert "missing.wav" not in body["error"]  # only the host is named (paths can hold credentials)


def netns_available():
    if not shutil.which("unshare") or not shutil.which("ip"):
        return False
    return subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not netns_available(), reason="needs `unshare -rn` (user + network namespaces)")
def test_redirect_from_a_public_address_to_loopback_is_refused(tmp_path):
    shutil.copy(clip_path("cathy_arctic_b0011"), tmp_path / "clip.wav")
    out = subprocess.run(["unshare", "-rn", "/usr/bin/python3", os.path.join(HERE, "audio_fixtures.py"),
                          "redirect-probe", BIN, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr + (tmp_path / "server.log").read_text(errors="replace")
    result = json.loads(out.stdout)
    status, body = result["direct"]
    assert status == 200 and "companion" in body["text"].lower(), body  # the public first hop is allowed
    status, body = result["redirect"]
    assert status == 400 and body["code"] == "URL_FETCH_FAILED", body
    assert "refused address 127.0.0.1" in body["error"], body
