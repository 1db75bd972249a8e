"""The Python and JavaScript SDKs against a real listend.

One module-scoped server (with --allow-private-urls, so it can fetch audio and
deliver callbacks to the loopback HTTP server started here) serves every test.
The JavaScript suite (sdk/js/test/*.test.mjs) runs under `node --test` in the
background from the first test on, pointed at the same server through env vars,
so its rate-limit wait overlaps the Python tests; test_js_sdk collects it. The
Python rate-limit flow runs the same way, in a thread (test_rate_limit_then_retry).
"""
import asyncio
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import wave

import pytest

from conftest import GOFORWARD, ROOT, run_cli, start_server

sys.path.insert(0, os.path.join(ROOT, "sdk", "python"))
import listend  # noqa: E402
from listend import Client  # noqa: E402

JS_DIR = os.path.join(ROOT, "sdk", "js")
PY_EXAMPLES = os.path.join(ROOT, "sdk", "python", "examples")
DOCS = os.path.join(ROOT, "docs", "sdk.md")


# -- fixtures ----------------------------------------------------------------

def write_wav(path, pcm, rate=16000, channels=1):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the audio dir; POST stores callback bodies on the server object."""

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        try:
            self.server.callbacks.append(json.loads(body))
        except ValueError:
            self.server.callbacks.append({"_raw": body.decode(errors="replace")})
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """A loopback HTTP server with speech.wav (goforward) and a callback sink."""
    d = tmp_path_factory.mktemp("sdk_audio")
    with open(GOFORWARD, "rb") as f:
        pcm = f.read()
    write_wav(d / "speech.wav", pcm)
    handler = lambda *a, **kw: _Handler(*a, directory=str(d), **kw)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.callbacks = []
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield {"dir": d, "base": base, "wav_url": base + "/speech.wav", "wav": d / "speech.wav",
           "callback": base + "/callback", "httpd": httpd}
    httpd.shutdown()


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("sdk_srv"), "--allow-private-urls")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def keys(srv):
    revoked = srv.key("py-revoked")
    run_cli("keys", "revoke", revoked, data=srv.data)
    return {
        "good": srv.key("py-sdk"),
        "expired": srv.key("py-expired", expires="2020-01-01"),
        "revoked": revoked,
        "rpm": srv.key("py-rpm", rpm=1),
        # 10 audio seconds a day: goforward (~2.9 s) three times leaves ~1.3 s, the fourth is refused.
        "quota": srv.key("py-quota", hours_per_day=10 / 3600),
        # one second a day: the first transcription uses it up (test_stream_handshake_refusals)
        "stream-quota": srv.key("py-stream-quota", hours_per_day=1 / 3600),
        "stream-rpm": srv.key("py-stream-rpm", rpm=1),
    }


@pytest.fixture(scope="module")
def client(srv, keys):
    return Client(api_url=srv.url, license_key=keys["good"])


@pytest.fixture(scope="module")
def js_run(srv, audio, tmp_path_factory):
    """Starts `node --test` on sdk/js/test in the background (own keys)."""
    if shutil.which("node") is None:
        pytest.fail("node is not installed (the JavaScript SDK needs Node.js >= 20)")
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "ws")):
        # Node 20 has no global WebSocket: the optional `ws` dependency, from the lock file.
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True,
                       capture_output=True, timeout=300)
    revoked = srv.key("js-revoked")
    run_cli("keys", "revoke", revoked, data=srv.data)
    env = dict(os.environ, LISTEND_API_URL=srv.url, LICENSE_KEY=srv.key("js-sdk"),
               LISTEND_TEST_EXPIRED_KEY=srv.key("js-expired", expires="2020-01-01"),
               LISTEND_TEST_REVOKED_KEY=revoked, LISTEND_TEST_RPM_KEY=srv.key("js-rpm", rpm=1),
               LISTEND_TEST_QUOTA_KEY=srv.key("js-quota", hours_per_day=10 / 3600),
               LISTEND_TEST_AUDIO_URL=audio["wav_url"], LISTEND_TEST_AUDIO_FILE=str(audio["wav"]),
               LISTEND_TEST_RAW_FILE=GOFORWARD, LISTEND_TEST_CALLBACK_URL=audio["callback"],
               LISTEND_TEST_TMP=str(tmp_path_factory.mktemp("js_tmp")))
    files = sorted(os.path.join("test", f) for f in os.listdir(os.path.join(JS_DIR, "test")) if f.endswith(".test.mjs"))
    proc = subprocess.Popen(["node", "--test", "--test-reporter=spec", *files], cwd=JS_DIR, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_js_started(js_run):
    """Kicks off the JavaScript suite early so it runs alongside these tests."""
    assert js_run.poll() in (None, 0), js_run.stdout.read()


def test_rate_limit_started(rate_limit_run):
    """Kicks off the rate-limit flow early; test_rate_limit_then_retry collects it."""
    assert rate_limit_run[0].is_alive() or "error" not in rate_limit_run[1], rate_limit_run[1].get("error")


# -- batch ---------------------------------------------------------------------

def test_health_and_license(client, keys):
    h = client.health()
    assert h.healthy and h.status == "healthy" and bool(h)
    lic = client.license()
    assert lic.name == "py-sdk"
    assert lic.key_id and lic.raw["key_id"] == lic.key_id


def test_env_defaults(srv, keys, audio, monkeypatch):
    monkeypatch.setenv("LISTEND_API_URL", srv.url)
    monkeypatch.setenv("LICENSE_KEY", keys["good"])
    c = Client()
    assert c.api_url == srv.url
    assert "forward" in c.transcribe_url(audio["wav_url"]).text


def test_transcribe_url(client, audio):
    r = client.transcribe_url(audio["wav_url"], timestamps=True)
    assert "forward" in r.text and "meters" in r.text
    assert r.request_id.startswith("req_")
    assert 2.0 < r.duration < 3.5
    assert 0 <= r.confidence <= 1
    assert r.words and r.words[0].word and r.words[0].end >= r.words[0].start
    assert r.raw["text"] == r.text and str(r) == r.text


def test_transcribe_file_path_and_object(client, audio):
    r = client.transcribe_file(str(audio["wav"]))
    assert "forward" in r.text
    assert r.words == []  # only with timestamps
    with open(audio["wav"], "rb") as f:
        f.read(10)  # the upload starts where the caller's file position is
        f.seek(0)
        assert "forward" in client.transcribe_file(f, language="en").text


def test_transcribe_raw_pcm_with_options(client, tmp_path):
    r = client.transcribe_file(GOFORWARD, encoding="linear16", sample_rate=16000)
    assert "forward" in r.text
    # headerless names say their encoding, as for `listend transcribe`: goforward.raw, a PBX's call.ul
    assert "forward" in client.transcribe_file(GOFORWARD).text
    ul = tmp_path / "call.ul"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "s16le", "-ar", "16000", "-ac", "1", "-i",
                    GOFORWARD, "-ar", "8000", "-f", "mulaw", str(ul)], check=True, timeout=60)
    r = client.transcribe_file(str(ul))
    assert "forward" in r.text and r.raw["model"] == "telephony", r.raw


def test_text_formats(client, audio):
    srt = client.transcribe_url(audio["wav_url"], format="srt")
    assert isinstance(srt, listend.TextResult)
    assert "-->" in srt.text and "forward" in srt.text
    vtt = client.transcribe_url(audio["wav_url"], format="vtt")
    assert vtt.text.startswith("WEBVTT")


def test_bad_requests(client, audio, tmp_path):
    with pytest.raises(listend.BadRequestError) as e:
        client.transcribe_url(audio["base"] + "/missing.wav")
    assert e.value.status == 400 and e.value.code == "URL_FETCH_FAILED"
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio at all" * 100)
    with pytest.raises(listend.BadRequestError) as e:
        client.transcribe_file(str(junk))
    assert e.value.status in (400, 415) and e.value.code in ("INVALID_AUDIO", "UNSUPPORTED_FORMAT")
    with pytest.raises(listend.BadRequestError) as e:
        client.transcribe_url(audio["wav_url"], language="xx")
    assert e.value.code in ("UNSUPPORTED_LANGUAGE", "INVALID_PARAMETER")
    assert isinstance(e.value, listend.ListendError)


# -- jobs ------------------------------------------------------------------------

def test_submit_job_wait(client, audio):
    job = client.submit(url=audio["wav_url"], callback_url=audio["callback"])
    assert job.job_id.startswith("job_") and job.status in ("queued", "processing")
    done = client.wait(job.job_id, timeout=60, poll_interval=0.2)
    assert done.status == "completed", done.raw
    assert "forward" in done.result.text
    assert any(j.job_id == job.job_id for j in client.jobs())
    deadline = time.time() + 20
    while time.time() < deadline and not any(c.get("job_id") == job.job_id for c in audio["httpd"].callbacks):
        time.sleep(0.1)
    assert any(c.get("job_id") == job.job_id for c in audio["httpd"].callbacks)


def test_submit_file_job(client, audio):
    job = client.submit(file=str(audio["wav"]), callback_url=audio["callback"])
    assert "forward" in client.wait(job, timeout=60, poll_interval=0.2).result.text


def test_job_not_found(client):
    with pytest.raises(listend.NotFoundError) as e:
        client.job("job_doesnotexist")
    assert e.value.status == 404 and e.value.code == "NOT_FOUND"


# -- errors from real responses -----------------------------------------------

def test_invalid_and_revoked_license(srv, keys):
    for key in ("not-a-key", keys["revoked"]):
        with pytest.raises(listend.InvalidLicenseError) as e:
            Client(api_url=srv.url, license_key=key).license()
        assert e.value.status == 401 and e.value.code == "INVALID_LICENSE"


def test_expired_license(srv, keys, audio):
    with pytest.raises(listend.LicenseExpiredError) as e:
        Client(api_url=srv.url, license_key=keys["expired"]).transcribe_url(audio["wav_url"])
    assert e.value.status == 403 and e.value.code == "LICENSE_EXPIRED"
    assert e.value.expires_at.startswith("2020-01-01")


def test_retry_after_as_http_date():
    import email.utils
    from listend.errors import from_response
    when = email.utils.formatdate(time.time() + 90, usegmt=True)
    assert 85 < from_response(503, {}, {"Retry-After": when}).retry_after <= 90
    assert from_response(429, {}, {"Retry-After": "7"}).retry_after == 7
    assert from_response(429, {}, {"Retry-After": "soon"}).retry_after is None


def test_connection_error_retries(monkeypatch):
    from conftest import free_port
    sleeps = []
    c = Client(api_url=f"http://127.0.0.1:{free_port()}", license_key="x", max_retries=2)
    c._t.sleep = sleeps.append
    with pytest.raises(listend.APIConnectionError):
        c.license()
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] * 0.5


def test_timeout_bounds_the_whole_request(tmp_path):
    """A server answering 200 and then a byte every 0.1 s: no single read times
    out, the request as a whole must (APITimeoutError, not retried)."""
    import socket as socketlib
    lsock = socketlib.create_server(("127.0.0.1", 0))
    requests, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            requests.append(conn.recv(65536))
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
                while not stop.is_set():
                    conn.sendall(b" ")
                    time.sleep(0.1)
            except OSError:
                pass
            conn.close()
    threading.Thread(target=serve, daemon=True).start()
    c = Client(api_url=f"http://127.0.0.1:{lsock.getsockname()[1]}", license_key="k", timeout=1, max_retries=2)
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"\0" * 1000)
    try:
        for call in (c.license, lambda: c.transcribe_url("http://example.com/a.wav"),
                     lambda: c.transcribe_file(str(audio))):
            before, t0 = len(requests), time.monotonic()
            with pytest.raises(listend.APITimeoutError) as e:
                call()
            assert isinstance(e.value, listend.APIConnectionError)
            assert time.monotonic() - t0 < 3, f"took {time.monotonic() - t0:.1f} s"
            assert len(requests) - before == 1, "retried after a timeout"
    finally:
        stop.set()
        lsock.close()


# -- uploads do not load the file into memory ----------------------------------

UPLOAD_CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
import listend
c = listend.Client(api_url=sys.argv[2], license_key=sys.argv[3], max_retries=0)
try:
    r = c.transcribe_file(sys.argv[4])
    out = "ok " + r.text
except listend.ListendError as e:
    out = "error %s %s" % (e.status, e.code)
# VmHWM: this process's own peak. ru_maxrss would also count the pytest process
# it was forked from (Linux keeps the pre-exec peak), which grows with the suite.
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(hwm, out)
"""


def _upload_rss(url, key, path):
    p = subprocess.run([sys.executable, "-c", UPLOAD_CHILD, os.path.join(ROOT, "sdk", "python"), url, key, str(path)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    rss_kb, out = p.stdout.strip().split(" ", 1)
    return int(rss_kb), out


def test_large_upload_streams(srv, keys, tmp_path):
    # 60 MB: 48 kHz stereo, 5 minutes of silence with the speech in the middle.
    with open(GOFORWARD, "rb") as f:
        speech = f.read()
    up = bytearray()
    for i in range(0, len(speech), 2):  # 16 kHz mono -> 48 kHz stereo by repetition
        up += speech[i:i + 2] * 6
    total = 60 * 1024 * 1024 // 4 * 4
    big = tmp_path / "big.wav"
    with wave.open(str(big), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(48000)
        half = (total - len(up)) // 2 // 4 * 4
        silence = bytes(1 << 20)
        for _ in range(half // len(silence)):
            w.writeframesraw(silence)
        w.writeframesraw(bytes(half % len(silence)))
        w.writeframesraw(bytes(up))
        rest = total - half - len(up)
        for _ in range(rest // len(silence)):
            w.writeframesraw(silence)
        w.writeframesraw(bytes(rest % len(silence)))
    assert os.path.getsize(big) > 60_000_000
    rss_kb, out = _upload_rss(srv.url, keys["good"], big)
    assert out.startswith("ok") and "forward" in out, out
    # Measured ~42 MB here whatever the file size; holding the file would be > 75 MB.
    assert rss_kb < 55_000, f"client peak RSS {rss_kb} kB for a 60 MB upload"


def test_too_large_upload(server_factory, tmp_path):
    small = server_factory("--max-body-mb", "5")
    key = small.key("big")
    big = tmp_path / "huge.wav"
    with open(big, "wb") as f:  # sparse: costs no disk
        f.write(b"RIFF")
        f.truncate(80 * 1024 * 1024)
    rss_kb, out = _upload_rss(small.url, key, big)
    assert out == "error 422 FILE_TOO_LARGE", out
    assert rss_kb < 55_000, f"client peak RSS {rss_kb} kB for an 80 MB upload"
    with pytest.raises(listend.BadRequestError) as e:
        Client(api_url=small.url, license_key=key, max_retries=0).transcribe_file(str(big))
    assert e.value.body.get("max_size_mb") == 5


class _Pipe(io.RawIOBase):
    """`n` zero bytes from an unseekable file: uploaded chunked, like a pipe."""

    def __init__(self, n):
        self.n = n

    def readable(self):
        return True

    def readinto(self, b):
        k = min(len(b), self.n)
        b[:k] = bytes(k)
        self.n -= k
        return k


def test_chunked_upload_over_limit_gets_the_refusal(server_factory):
    """An upload of unknown size past --max-body-mb: the server stops reading an
    anonymous one and closes; Expect: 100-continue gets the 401 first."""
    small = server_factory("--max-body-mb", "5")
    for key, expected in (("not-a-key", listend.InvalidLicenseError), (small.key("pipe"), listend.BadRequestError)):
        c = Client(api_url=small.url, license_key=key, max_retries=0)
        with pytest.raises(expected) as e:
            c.transcribe_file(io.BufferedReader(_Pipe(40 * 1024 * 1024)), filename="pipe.raw")
        assert e.value.code == ("INVALID_LICENSE" if key == "not-a-key" else "FILE_TOO_LARGE"), e.value
    # a small one still goes through (100 Continue, then the body)
    c = Client(api_url=small.url, license_key=small.key("pipe2"), max_retries=0)
    cat = subprocess.Popen(["cat", GOFORWARD], stdout=subprocess.PIPE)
    try:
        assert "forward" in c.transcribe_file(cat.stdout, filename="g.raw").text
    finally:
        cat.stdout.close()
        cat.wait()


def test_quota_on_results_and_errors(srv, keys, audio):
    """X-Quota-* reach the caller on every result and on the refusal."""
    c = Client(api_url=srv.url, license_key=keys["quota"], max_retries=0)
    lic = c.license()
    assert isinstance(lic.quota, listend.Quota)
    assert lic.quota.limit == 10 and lic.quota.remaining == 10 and 0 < lic.quota.reset <= 86400
    left = 10.0
    for _ in range(3):
        r = c.transcribe_url(audio["wav_url"])
        left -= r.duration
        assert r.quota.limit == 10 and abs(r.quota.remaining - left) < 0.01, (r.quota, left)
    assert 0.5 < c.license().quota.used_ratio < 1
    text = c.transcribe_url(audio["wav_url"], format="text")  # still a little left: admitted
    assert text.quota.remaining == 0
    with pytest.raises(listend.QuotaExceededError) as e:
        c.transcribe_url(audio["wav_url"])
    assert e.value.quota.remaining == 0 and e.value.quota.limit == 10 and e.value.quota.reset > 0
    with pytest.raises(listend.InvalidLicenseError) as e:
        Client(api_url=srv.url, license_key="nope", max_retries=0).license()
    assert e.value.quota is None  # not authenticated: no quota to tell


# -- streaming -----------------------------------------------------------------

def test_stream_interim_and_final(client, audio):
    async def run():
        return [m async for m in client.stream(str(audio["wav"]), interim_results=True, chunk_size=3200)]
    msgs = asyncio.run(run())
    tr = [m for m in msgs if m.type == "transcription"]
    assert any(not m.is_final for m in tr), [m.raw for m in msgs]
    finals = [m for m in tr if m.is_final]
    assert finals and finals[-1].is_last
    assert "forward" in " ".join(m.transcript for m in finals)
    assert tr[0].session_id
    assert tr[0].quota is not None and tr[0].quota.limit == 100 * 3600  # from the 101 handshake

def test_stream_async_iterator_and_finalize(client):
    async def chunks():
        with open(GOFORWARD, "rb") as f:
            while True:
                b = f.read(4096)
                if not b:
                    break
                yield b
        yield {"type": "finalize"}

    async def run():
        return [m async for m in client.stream(chunks(), encoding="linear16", sample_rate=16000)]
    msgs = asyncio.run(run())
    finals = [m for m in msgs if m.type == "transcription" and m.is_final]
    assert "forward" in " ".join(m.transcript for m in finals)
    assert msgs[-1].is_last


def test_stream_auth_error(srv, keys):
    async def run():
        async for _ in Client(api_url=srv.url, license_key=keys["revoked"]).stream(b"\0" * 3200):
            pass
    with pytest.raises(listend.InvalidLicenseError):
        asyncio.run(run())


def test_stream_handshake_refusals(srv, keys, audio):
    """A refused handshake raises the batch class with the server's code and
    message (websockets 10-12 leave the body unread: the SDK reads it)."""
    async def refusal(key, **params):
        c = Client(api_url=srv.url, license_key=key, max_retries=0)
        with pytest.raises(listend.ListendError) as e:
            async for _ in c.stream(b"\0" * 3200, encoding="linear16", sample_rate=16000, **params):
                pass
        return e.value

    Client(api_url=srv.url, license_key=keys["stream-quota"]).transcribe_url(audio["wav_url"])
    Client(api_url=srv.url, license_key=keys["stream-rpm"]).license()

    async def run():
        return [await refusal(keys["expired"]), await refusal(keys["stream-quota"]),
                await refusal(keys["stream-rpm"]), await refusal(keys["good"], language="xx")]
    expired, quota, rpm, lang = asyncio.run(run())
    assert type(expired) is listend.LicenseExpiredError and expired.code == "LICENSE_EXPIRED"
    assert expired.expires_at.startswith("2020-01-01")
    assert type(quota) is listend.QuotaExceededError and quota.code == "QUOTA_EXCEEDED", quota
    assert quota.message == "Daily audio quota exceeded" and quota.quota.remaining == 0
    assert type(rpm) is listend.RateLimitError and rpm.code == "RATE_LIMIT_EXCEEDED" and rpm.retry_after > 0, rpm
    assert type(lang) is listend.BadRequestError and lang.status == 400 and lang.code == "UNSUPPORTED_LANGUAGE", lang
    assert "language" in lang.message and lang.request_id.startswith("req_")


def test_stream_refuses_wavs_it_cannot_send(client, tmp_path):
    """24-bit, float and mu-law WAVs: a clear ValueError, not wave.Error."""
    import struct
    pcm24 = tmp_path / "s24.wav"
    with wave.open(str(pcm24), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(3)
        w.setframerate(16000)
        w.writeframes(bytes(3 * 1600))

    def wav(tag, bits):  # a format the wave module cannot read
        data = bytes(bits // 8 * 1600)
        fmt = struct.pack("<HHIIHH", tag, 1, 16000, 16000 * bits // 8, bits // 8, bits)
        return (b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE" + b"fmt " +
                struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data)

    async def run(audio):
        async for _ in client.stream(audio):
            pass
    for audio, what in ((wav(3, 32), "32-bit, format 3"), (wav(7, 8), "8-bit, format 7"), (str(pcm24), "24-bit")):
        with pytest.raises(ValueError, match="16-bit mono PCM: convert this WAV first") as e:
            asyncio.run(run(audio))
        assert what in str(e.value)


def test_stream_without_websockets_says_what_to_install(client, monkeypatch):
    from listend import streaming
    monkeypatch.setattr(streaming, "websockets", None)
    with pytest.raises(ImportError, match="pip install"):
        client.stream(b"\0")


# -- examples (also the code in docs/sdk.md) ------------------------------------

def _run_example(name, *args, env):
    p = subprocess.run([sys.executable, os.path.join(PY_EXAMPLES, name), *map(str, args)], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_python_examples(srv, keys, audio):
    env = dict(os.environ, LISTEND_API_URL=srv.url, LICENSE_KEY=keys["good"],
               PYTHONPATH=os.path.join(ROOT, "sdk", "python"))
    assert "forward" in _run_example("transcribe_url.py", audio["wav_url"], env=env)
    out = _run_example("transcribe_file.py", audio["wav"], env=env)
    assert "forward" in out and "confidence" in out
    assert "forward" in _run_example("async_job.py", audio["wav_url"], audio["callback"], env=env)
    out = _run_example("stream_file.py", audio["wav"], env=env)
    assert "final" in out and "forward" in out


def _doc_blocks():
    blocks, cur, lang = [], None, None
    with open(DOCS) as f:
        for line in f:
            if cur is None and line.startswith("```") and len(line.strip()) > 3:
                cur, lang = [], line.strip()[3:]
            elif cur is not None and line.startswith("```"):
                blocks.append((lang, "".join(cur)))
                cur = None
            elif cur is not None:
                cur.append(line)
    return blocks


def test_docs_examples_are_the_tested_examples():
    """Every example in docs/sdk.md is one of the files the tests run."""
    shown = {}
    for lang, code in _doc_blocks():
        first = code.splitlines()[0] if code else ""
        for marker in ("# sdk/python/examples/", "// sdk/js/examples/"):
            if first.startswith(marker):
                shown[first[len(marker.split("sdk/")[0]):].strip()] = code
    expected = [f"sdk/python/examples/{n}" for n in os.listdir(PY_EXAMPLES) if n.endswith(".py")]
    expected += [f"sdk/js/examples/{n}" for n in os.listdir(os.path.join(JS_DIR, "examples")) if n.endswith(".mjs")]
    assert sorted(shown) == sorted(expected)
    for rel, code in shown.items():
        with open(os.path.join(ROOT, rel)) as f:
            assert code.split("\n", 1)[1] == f.read(), f"docs/sdk.md differs from {rel}"


# -- rate limits (slow: waits for the server's retry_after) --------------------

def _rate_limit_then_retry(url, key, wav_url):
    """The SDK sees a 429 with retry_after, then waits that long itself and succeeds."""
    c0 = Client(api_url=url, license_key=key, max_retries=0)
    assert "forward" in c0.transcribe_url(wav_url).text
    with pytest.raises(listend.RateLimitError) as e:
        c0.transcribe_url(wav_url)
    assert e.value.status == 429 and e.value.code == "RATE_LIMIT_EXCEEDED"
    assert 0 < e.value.retry_after <= 60
    t0 = time.monotonic()
    r = Client(api_url=url, license_key=key, max_retries=1).transcribe_url(wav_url)
    assert "forward" in r.text
    assert time.monotonic() - t0 >= e.value.retry_after - 2


@pytest.fixture(scope="module")
def rate_limit_run(srv, keys, audio):
    """Runs _rate_limit_then_retry in a thread from the first test on: its ~60 s wait
    for the per-minute window overlaps the other tests (as the JavaScript suite's does)."""
    out = {}

    def run():
        try:
            _rate_limit_then_retry(srv.url, keys["rpm"], audio["wav_url"])
        except BaseException as e:  # noqa: BLE001 -- re-raised in the test
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    yield t, out
    t.join(timeout=120)


def test_rate_limit_then_retry(rate_limit_run):
    t, out = rate_limit_run
    t.join(timeout=120)
    assert not t.is_alive(), "the rate-limited request did not finish within 120 s"
    if "error" in out:
        raise out["error"]


# -- the JavaScript suite ---------------------------------------------------------

def test_js_sdk(js_run):
    out, _ = js_run.communicate(timeout=300)
    print(out)
    assert js_run.returncode == 0, out
    # The suite skips itself without a server: make sure it really ran.
    assert "fail 0" in out and "skipped 0" in out and "pass 0" not in out, out
