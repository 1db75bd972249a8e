"""Drop-in compatibility (docs/compat.md): Deepgram's and OpenAI's official SDKs
from npm, and the same routes over plain HTTP and WebSocket.

One module-scoped server serves every test. The SDK suites
(tests/compat/*.test.mjs, `@deepgram/sdk` and `openai` pinned in
tests/compat/package-lock.json, installed with `npm ci`) run under `node --test`
in the background from the first test on, pointed at the server through
COMPAT_* variables; test_sdk_suites collects them. If the packages cannot be
installed (no npm registry), the test fails and says why: it never passes
without having run the SDKs.
"""
import asyncio
import base64
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import wave

import pytest
import requests
import websockets

from audio_fixtures import join_clips, words
from conftest import BIN, EVAL_DIR, GOFORWARD, ROOT, start_server, start_tls_server, ws_steps

COMPAT_DIR = os.path.join(ROOT, "tests", "compat")


MEETING = ["ps_librivox_sns01_0870", "sphinx4_digits_10001-90210-01803", "ps_librivox_sns01_0880"]


def write_wav(path, pcm, rate=16000):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


def long_recording(path, seconds=40.0, gap=2.0, repeat=1):
    """Real read speech (LibriVox clips of the eval set) joined by `gap` s of silence, the whole
    `repeat` times; written clip by clip (the pytest process stays small: other tests measure
    children whose peak RSS starts from ours). Returns the clips used."""
    clips = sorted(f for f in os.listdir(EVAL_DIR) if f.startswith("ps_librivox") and f.endswith(".wav"))
    assert clips, f"no LibriVox clips in {EVAL_DIR}"
    used, total = [], 0.0
    for name in clips:
        with wave.open(os.path.join(EVAL_DIR, name), "rb") as w:
            assert w.getframerate() == 16000 and w.getnchannels() == 1
            total += w.getnframes() / 16000 + gap
        used.append(name)
        if total >= seconds:
            break
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        for _ in range(repeat):
            for name in used:
                with wave.open(os.path.join(EVAL_DIR, name), "rb") as w:
                    out.writeframes(w.readframes(w.getnframes()))
                out.writeframes(b"\0\0" * int(16000 * gap))
    return len(used)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """speech.wav (goforward), long.wav, and a loopback HTTP server for them."""
    d = tmp_path_factory.mktemp("compat_audio")
    with open(GOFORWARD, "rb") as f:
        write_wav(d / "speech.wav", f.read())
    clips = long_recording(d / "long.wav")
    join_clips(MEETING, d / "meeting.wav", gap=0.6)
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "s16le", "-ar", "16000", "-ac", "1",
                    "-i", GOFORWARD, "-ar", "8000", "-f", "mulaw", str(d / "speech.ul"),
                    "-ar", "24000", "-f", "s16le", str(d / "speech24.raw")], check=True, timeout=60)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a, **kw: _Quiet(*a, directory=str(d), **kw))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield {"dir": d, "wav": str(d / "speech.wav"), "long": str(d / "long.wav"), "long_clips": clips,
           "meeting": str(d / "meeting.wav"), "mulaw": str(d / "speech.ul"), "pcm24": str(d / "speech24.raw"),
           "wav_url": base + "/speech.wav", "callback": base + "/hook"}
    httpd.shutdown()


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("compat_srv"), "--allow-private-urls")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def key(srv):
    # shared by the SDK suites and the tests here, which together send more than the default 60 a minute
    return srv.key("compat", rpm=1000)


@pytest.fixture(scope="module")
def tls_srv(tmp_path_factory):
    """For OpenAI's realtime client, which always dials wss://."""
    s = start_tls_server(tmp_path_factory.mktemp("compat_tls"))
    yield s
    s.stop()


def npm_ci():
    """Installs the pinned SDKs; fails the test with npm's own words if it cannot."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node/npm are not installed: the Deepgram and OpenAI SDK tests need Node.js >= 20 with npm "
                    "(as sdk/js does); the SDK compatibility tests did NOT run")
    lock = os.path.join(COMPAT_DIR, "package-lock.json")
    stamp = os.path.join(COMPAT_DIR, "node_modules", ".package-lock.json")
    if os.path.exists(stamp) and os.path.getmtime(stamp) >= os.path.getmtime(lock):
        return
    p = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=COMPAT_DIR, capture_output=True, text=True,
                       timeout=600)
    if p.returncode != 0:
        pytest.fail("could not install @deepgram/sdk and openai from the npm registry (npm ci in tests/compat "
                    f"exited {p.returncode}); the SDK compatibility tests did NOT run:\n{p.stdout}\n{p.stderr}")


@pytest.fixture(scope="module")
def sdk_run(srv, key, audio, tls_srv):
    """Starts `node --test` on tests/compat/*.test.mjs in the background (own keys)."""
    npm_ci()
    env = dict(os.environ, COMPAT_URL=srv.url, COMPAT_KEY=key,
               COMPAT_TLS_URL=tls_srv.url, COMPAT_TLS_KEY=tls_srv.key("compat-tls"), NODE_EXTRA_CA_CERTS=tls_srv.cert,
               COMPAT_PCM24_FILE=audio["pcm24"],
               COMPAT_EXPIRED_KEY=srv.key("compat-expired", expires="2020-01-01"),
               COMPAT_DG_RPM_KEY=srv.key("compat-dg-rpm", rpm=1), COMPAT_OA_RPM_KEY=srv.key("compat-oa-rpm", rpm=1),
               COMPAT_AUDIO_FILE=audio["wav"], COMPAT_AUDIO_URL=audio["wav_url"], COMPAT_RAW_FILE=GOFORWARD,
               COMPAT_MULAW_FILE=audio["mulaw"],
               COMPAT_LONG_FILE=audio["long"], COMPAT_MEETING_FILE=audio["meeting"])
    files = sorted(f for f in os.listdir(COMPAT_DIR) if f.endswith(".test.mjs"))
    proc = subprocess.Popen(["node", "--test", "--test-reporter=spec", *files], cwd=COMPAT_DIR, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_sdk_suites_started(sdk_run):
    """Kicks off the SDK suites early so they run alongside the tests below."""
    assert sdk_run.poll() in (None, 0), sdk_run.stdout.read()


# -- Deepgram batch over plain HTTP --------------------------------------------

def dg_post(srv, key, query="", data=None, **kw):
    headers = {"Authorization": f"Token {key}", **kw.pop("headers", {})}
    return requests.post(f"{srv.url}/deepgram/v1/listen{query}", headers=headers, data=data, timeout=120, **kw)


def test_deepgram_utterances_and_paragraphs_on_a_long_recording(srv, key, audio):
    with open(audio["long"], "rb") as f:
        r = dg_post(srv, key, "?smart_format=true&utterances=true&model=nova-2&tag=x&unknown_option=1", f,
                    headers={"Content-Type": "audio/wav"})
    assert r.status_code == 200, r.text
    b = r.json()
    assert list(b) == ["metadata", "results"]
    alt = b["results"]["channels"][0]["alternatives"][0]
    words = alt["words"]
    utts = b["results"]["utterances"]
    # 2 s between the clips: an utterance (0.8 s split) and a paragraph (1.5 s) never spans two clips
    assert len(utts) >= audio["long_clips"] and len(alt["paragraphs"]["paragraphs"]) >= audio["long_clips"]
    assert sum(len(u["words"]) for u in utts) == len(words)
    assert " ".join(u["transcript"] for u in utts) == alt["transcript"]
    assert all(u["channel"] == 0 and len(u["id"]) == 36 and 0 < u["confidence"] <= 1 for u in utts)
    paras = alt["paragraphs"]
    assert sum(p["num_words"] for p in paras["paragraphs"]) == len(words)
    assert paras["transcript"].startswith("\n") and "\n\n" in paras["transcript"]
    assert all(s["text"][-1] in ".?!" for p in paras["paragraphs"] for s in p["sentences"])
    assert b["metadata"]["duration"] > 30


def test_deepgram_multichannel_sha256_covers_every_channel(srv, key, tmp_path):
    """metadata.sha256 of a multichannel upload hashed channel 0 only: two calls whose second channel differs
    had the same hash."""
    base = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "s16le", "-ar", "16000", "-ac", "1", "-i",
            GOFORWARD]
    hashes = []
    for name, right in (("a.wav", "volume=1.0"), ("b.wav", "volume=0.5")):
        subprocess.run(base + ["-filter_complex", f"[0:a]asplit[l][r0];[r0]{right}[r];[l][r]join=inputs=2:"
                               "channel_layout=stereo", str(tmp_path / name)], check=True)
        r = dg_post(srv, key, "?multichannel=true", data=(tmp_path / name).read_bytes(),
                    headers={"Content-Type": "audio/wav"})
        assert r.status_code == 200 and len(r.json()["results"]["channels"]) == 2, r.text
        hashes.append(r.json()["metadata"]["sha256"])
    assert hashes[0] != hashes[1] and all(len(h) == 64 for h in hashes), hashes


def test_deepgram_json_url_and_callback(srv, key, audio):
    r = dg_post(srv, key, "?punctuate=true", json={"url": audio["wav_url"]})
    assert r.status_code == 200, r.text
    assert r.headers["dg-request-id"] == r.json()["metadata"]["request_id"]
    assert r.json()["results"]["channels"][0]["alternatives"][0]["transcript"] == "Go forward ten meters."
    r = dg_post(srv, key, "?callback=" + audio["callback"], json={"url": audio["wav_url"]})
    assert r.status_code == 202, r.text
    assert r.json()["request_id"] == r.headers["X-Request-ID"]


def test_deepgram_profanity_filter_masks_swear_words(srv, key, tmp_path):
    """profanity_filter=true: a listed word is asterisks in `word`, `punctuated_word`, the transcript and
    utterances (Deepgram's "****"); without it the words are as recognised. flite's voice says it (the
    engine hears this sentence right); listend's own route and subtitles take the option too."""
    wav = tmp_path / "swear.wav"
    subprocess.run(["flite", "-t", "oh shit I forgot the keys", "-o", str(wav)], check=True, timeout=60)
    body = wav.read_bytes()
    plain = dg_post(srv, key, "?punctuate=true", body, headers={"Content-Type": "audio/wav"})
    assert plain.status_code == 200, plain.text
    heard = plain.json()["results"]["channels"][0]["alternatives"][0]["transcript"]
    assert re.search(r"\bshit\b", heard.lower()), heard  # the engine hears the word (flite's voice, this sentence)
    masked = re.sub(r"\b[Ss]hit\b", "****", heard)
    r = dg_post(srv, key, "?punctuate=true&utterances=true&profanity_filter=true", body,
                headers={"Content-Type": "audio/wav"})
    assert r.status_code == 200, r.text
    alt = r.json()["results"]["channels"][0]["alternatives"][0]
    assert alt["transcript"] == masked and "shit" not in json.dumps(r.json()).lower(), alt
    assert ("****", "****") in [(w["word"], w["punctuated_word"]) for w in alt["words"]]
    assert r.json()["results"]["utterances"][0]["transcript"] == masked
    r = requests.post(f"{srv.url}/v1/listen?profanity_filter=true&format=srt", files={"file": body},
                      headers={"Authorization": f"Token {key}"}, timeout=120)
    assert r.status_code == 200 and masked in r.text, r.text
    for mode in ([], ["--server", srv.url, "--key", key]):  # `listend transcribe --profanity-filter`, both modes
        cli = subprocess.run([BIN, "transcribe", "--profanity-filter", "--format", "text", *mode, str(wav)],
                             capture_output=True, text=True, timeout=120)
        assert cli.returncode == 0 and cli.stdout.strip() == masked, (mode, cli.stdout, cli.stderr)
    r = dg_post(srv, key, "?profanity_filter=maybe", body, headers={"Content-Type": "audio/wav"})
    assert r.status_code == 400 and r.json()["err_code"] == "INVALID_QUERY_PARAMETER", r.text


@pytest.mark.parametrize("method,path,query,body,ctype,status,err_code", [
    ("GET", "/deepgram/v1/nothing", "", None, None, 404, "NOT_FOUND"),
    ("GET", "/deepgram/v1/listen", "", None, None, 405, "METHOD_NOT_ALLOWED"),
    ("POST", "/deepgram/v1/listen", "", b"hello", "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE"),
    ("POST", "/deepgram/v1/listen", "?encoding=linear16&channels=2", b"\0" * 3200, "application/octet-stream", 400,
     "INVALID_QUERY_PARAMETER"),
    ("POST", "/deepgram/v1/listen", "?utterances=perhaps", b"\0" * 3200, "audio/wav", 400, "INVALID_QUERY_PARAMETER"),
    ("POST", "/deepgram/v1/listen", "", b"not audio at all" * 100, "audio/wav", 415, "UNSUPPORTED_MEDIA_TYPE"),
])
def test_deepgram_error_envelope(srv, key, method, path, query, body, ctype, status, err_code):
    headers = {"Authorization": f"Token {key}"}
    if ctype:
        headers["Content-Type"] = ctype
    r = requests.request(method, srv.url + path + query, data=body, headers=headers, timeout=60)
    assert r.status_code == status, r.text
    b = r.json()
    assert b["err_code"] == err_code and b["err_msg"] and b["request_id"] == r.headers["X-Request-ID"]
    assert r.headers["dg-request-id"] == r.headers["X-Request-ID"]  # Deepgram's own header
    assert "error" not in b and "code" not in b


def test_smallest_shape_unchanged_on_v1_listen(srv, key, audio):
    with open(audio["wav"], "rb") as f:
        r = requests.post(srv.url + "/v1/listen", data=f, headers={"Authorization": f"Token {key}",
                                                                   "Content-Type": "audio/wav"}, timeout=60)
    assert r.status_code == 200 and r.json()["text"] == "Go forward ten meters." and "results" not in r.json()
    r = requests.post(srv.url + "/v1/listen", data=b"x", headers={"Authorization": "Token nope"}, timeout=60)
    assert r.status_code == 401 and r.json()["code"] == "INVALID_LICENSE"


# -- streams on GET /v1/listen ------------------------------------------------

def ws_base(srv):
    return srv.url.replace("http", "ws", 1)


async def run_stream(uri, key, audio, controls=({"type": "CloseStream"},)):
    return await ws_steps(uri, key, [audio, *controls])


def pcm_with_silence(seconds=2.0):
    with open(GOFORWARD, "rb") as f:
        return f.read() + b"\0\0" * int(16000 * seconds)


@pytest.mark.parametrize("path,post", [("/v1/listen", None), ("/api/v1/lightning/get_text", "same"),
                                       ("/waves/v1/pulse/get_text", "same"),
                                       ("/waves/v1/stt/live", "/waves/v1/stt/")])
def test_get_v1_listen_upgrade_is_a_smallest_stream(srv, key, path, post):
    """Where Smallest's own streaming clients connect (spec §8), the same protocol as /v1/listen/stream
    (the unified /waves/v1/stt/live adds `transcription`, the same text, and takes model=pulse); the
    Lightning/Pulse paths, and the unified path's /waves/v1/stt/, take POST uploads too."""
    unified = path == "/waves/v1/stt/live"
    query = "?encoding=linear16&sample_rate=16000" + ("&model=pulse" if unified else "")
    msgs, code = asyncio.run(run_stream(ws_base(srv) + path + query, key, pcm_with_silence(),
                                        ({"type": "close_stream"},)))
    assert code == 1000
    results = [m for m in msgs if m.get("type") == "transcription"]
    finals = [m for m in results if m["is_final"]]
    assert finals[0]["transcript"] == "Go forward ten meters." and finals[-1]["is_last"]
    if unified:
        assert all(m["transcription"] == m["transcript"] for m in results)
    else:
        assert not any("transcription" in m for m in results)
    if post:
        r = requests.post(srv.url + (path if post == "same" else post) + "?encoding=linear16&model=pulse-pro",
                          data=pcm_with_silence(), timeout=60,
                          headers={"Authorization": f"Bearer {key}", "Content-Type": "application/octet-stream"})
        assert r.status_code == 200 and r.json()["transcription"] == "Go forward ten meters.", r.text


def test_deepgram_utterance_end_survives_a_sound_without_words(srv, key):
    """UtteranceEnd is a gap in words: a 0.12 s noise burst 0.8 s after the last word (a cough, a click on the line)
    started an utterance that cancelled the pending UtteranceEnd, and none came in the 3 s of silence after (a
    voice agent waiting for it hung until the caller spoke again)."""
    import random
    rnd = random.Random(7)
    burst = b"".join(max(-32768, min(32767, int(rnd.gauss(0, 3000)))).to_bytes(2, "little", signed=True)
                     for _ in range(1920))
    with open(GOFORWARD, "rb") as f:  # its last word ends at 2.12 s of 2.79: the burst comes 0.8 s after it
        pcm = f.read() + b"\0\0" * 1600 + burst + b"\0\0" * 48000
    uri = ws_base(srv) + ("/deepgram/v1/listen?encoding=linear16&sample_rate=16000&interim_results=true"
                          "&utterance_end_ms=1000&vad_events=true&endpointing=300")
    msgs, code = asyncio.run(run_stream(uri, key, pcm))
    assert code == 1000
    finals = [m for m in msgs if m["type"] == "Results" and m["is_final"] and m["channel"]["alternatives"][0]["words"]]
    last_word = finals[-1]["channel"]["alternatives"][0]["words"][-1]["end"]
    ends = [m for m in msgs if m["type"] == "UtteranceEnd"]
    assert len(ends) == 1 and abs(ends[0]["last_word_end"] - last_word) < 0.01, msgs
    assert msgs.index(ends[0]) < msgs.index(next(m for m in msgs if m["type"] == "Metadata"))


def test_deepgram_stream_endpointing_false_and_defaults(srv, key):
    uri = ws_base(srv) + "/deepgram/v1/listen?endpointing=false&language=en-GB&encoding=linear16&sample_rate=16000"
    msgs, code = asyncio.run(run_stream(uri, key, pcm_with_silence()))
    assert code == 1000
    results = [m for m in msgs if m["type"] == "Results"]
    assert results and all(m["is_final"] and not m["speech_final"] for m in results)  # no interims by default
    assert results[0]["channel"]["alternatives"][0]["transcript"] == "go forward ten meters"  # no punctuate
    assert msgs[-1]["type"] == "Metadata" and len(msgs[-1]["sha256"]) == 64
    assert not any(m["type"] in ("SpeechStarted", "UtteranceEnd") for m in msgs)

    async def ids():  # Deepgram's dg-request-id on the 101 too, the same id as X-Request-ID
        async with websockets.connect(uri, extra_headers={"Authorization": f"Token {key}"}) as ws:
            return ws.response_headers.get("dg-request-id"), ws.response_headers.get("X-Request-ID")
    dg_id, rid = asyncio.run(ids())
    assert dg_id and dg_id == rid


@pytest.mark.parametrize("fmt", ["webm", "ogg", "wav8k", "wav"])
def test_deepgram_stream_of_a_file_without_encoding(srv, key, tmp_path, fmt):
    """Deepgram's clients omit encoding for containerized audio and send a file, or a browser's
    MediaRecorder output (WebM Opus), as it is: the first message tells listend what it is (before, the
    bytes were decoded as raw linear16: made-up words, no error)."""
    args = {"webm": ["-c:a", "libopus", "-f", "webm", "-live", "1"], "ogg": ["-c:a", "libopus", "-f", "ogg"],
            "wav8k": ["-ar", "8000", "-c:a", "pcm_mulaw", "-f", "wav"], "wav": ["-f", "wav"]}[fmt]
    out = tmp_path / ("a." + fmt)
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "s16le", "-ar", "16000", "-ac", "1",
                    "-i", GOFORWARD, *args, str(out)], check=True)
    audio = out.read_bytes()
    for route in ("/deepgram/v1/listen?punctuate=true", "/deepgram/v2/listen?model=flux-general-en"):
        msgs, code = asyncio.run(run_stream(ws_base(srv) + route, key, audio))
        assert code == 1000, msgs
        text = " ".join(m["channel"]["alternatives"][0]["transcript"] if m["type"] == "Results" else m["transcript"]
                        for m in msgs if m.get("is_final") or m.get("event") == "EndOfTurn")
        assert text.strip() == "Go forward ten meters.", (route, msgs)
    end = [m for m in msgs if m.get("event") == "EndOfTurn"][0]["audio_window_end"]
    assert 2.7 < end < 2.9, msgs  # the clip's 2.79 s: the header's rate was used (8 kHz read as 16 kHz: 1.4 s)


def test_deepgram_stream_of_a_container_it_cannot_take(srv, key, tmp_path):
    out = tmp_path / "a.mp3"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "s16le", "-ar", "16000", "-ac", "1",
                    "-i", GOFORWARD, str(out)], check=True)
    msgs, code = asyncio.run(run_stream(ws_base(srv) + "/deepgram/v1/listen", key, out.read_bytes()))
    assert code == 1003 and "MP3 cannot be streamed live" in msgs[-1]["message"], msgs


@pytest.mark.parametrize("query", ["endpointing=soon", "utterance_end_ms=-5", "encoding=speex"])
def test_deepgram_stream_bad_parameter_is_refused_before_the_upgrade(srv, key, query):
    r = requests.get(f"{srv.url}/deepgram/v1/listen?{query}", timeout=10, headers={
        "Authorization": f"Token {key}", "Upgrade": "websocket", "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert r.status_code == 400 and r.json()["err_code"] == "INVALID_QUERY_PARAMETER", r.text


# -- Deepgram Flux (GET /deepgram/v2/listen) ---------------------------------------------------------------

def test_flux_force_end_turn_keyterm_and_bad_messages(srv, key):
    """ForceEndTurn ends the turn at once (trigger manual); a bad Configure is refused in order; keyterm is
    taken; sequence_id counts every message; an unknown message is Flux's Error, then 1003."""
    with open(GOFORWARD, "rb") as f:
        speech = f.read()  # no trailing silence: only ForceEndTurn ends the turn
    uri = ws_base(srv) + "/deepgram/v2/listen?model=flux-general-en&encoding=linear16&sample_rate=16000" \
        "&keyterm=Forward"
    bad = {"type": "Configure", "thresholds": {"eot_threshold": 0.2}}  # out of range: nothing changes
    msgs, code = asyncio.run(run_stream(uri, key, speech, ({"type": "ForceEndTurn"}, bad, {"type": "CloseStream"})))
    assert code == 1000
    assert [m["sequence_id"] for m in msgs] == list(range(len(msgs)))
    # Configure is answered in order, after the turn ForceEndTurn ended
    assert [m["type"] for m in msgs[-2:]] == ["TurnInfo", "ConfigureFailure"], msgs
    ends = [m for m in msgs if m.get("event") == "EndOfTurn"]
    assert len(ends) == 1 and ends[0]["trigger"] == "manual" and ends[0]["transcript"] == "Go forward ten meters."
    assert ends[0]["end_of_turn_confidence"] == 1.0 and ends[0]["turn_index"] == 0

    msgs, code = asyncio.run(run_stream(uri, key, b"", ({"type": "Transcribe"},)))
    assert code == 1003 and msgs[-1]["type"] == "Error" and msgs[-1]["code"] == "INVALID_PARAMETER", msgs
    assert msgs[0]["type"] == "Connected" and msgs[-1]["sequence_id"] == len(msgs) - 1


def test_flux_manual_turns_and_configure(srv, key):
    """Deepgram's 'bring your own turn detection': eot_threshold=1.0 ends a turn only on ForceEndTurn or after
    eot_timeout_ms of silence (trigger timeout); Configure switches modes between turns and answers
    ConfigureSuccess with the thresholds in use, in order."""
    uri = ws_base(srv) + "/deepgram/v2/listen?model=flux-general-en&encoding=linear16&sample_rate=16000" \
        "&eot_threshold=1.0&eot_timeout_ms=3000"
    turn = pcm_with_silence(2.0)  # "go forward ten meters", then 2 s of silence: < 3 s, > 800 ms
    msgs, code = asyncio.run(ws_steps(uri, key, [
        turn, {"type": "ForceEndTurn"},
        {"type": "Configure", "thresholds": {"eot_threshold": 0.7}}, turn,
        {"type": "Configure", "thresholds": {"eot_threshold": 1.0, "eot_timeout_ms": 1000}}, turn,
        {"type": "CloseStream"}]))
    assert code == 1000, msgs
    assert [m["sequence_id"] for m in msgs] == list(range(len(msgs)))
    seen = [m["type"] if m["type"] != "TurnInfo" else m["event"] for m in msgs if m.get("event") != "Update"]
    assert seen == ["Connected", "StartOfTurn", "EndOfTurn", "ConfigureSuccess", "StartOfTurn", "EndOfTurn",
                    "ConfigureSuccess", "StartOfTurn", "EndOfTurn"], seen
    ends = [m for m in msgs if m.get("event") == "EndOfTurn"]
    assert [e["trigger"] for e in ends] == ["manual", "model", "timeout"], ends
    assert all(e["transcript"] == "Go forward ten meters." for e in ends), ends
    assert [e["turn_index"] for e in ends] == [0, 1, 2]
    assert all(e["audio_window_start"] <= e["words"][0]["start"] for e in ends), ends
    ok = [m for m in msgs if m["type"] == "ConfigureSuccess"]
    assert ok[0]["thresholds"] == {"eot_threshold": 0.7, "eot_timeout_ms": 3000} and ok[0]["keyterms"] == []
    assert ok[1]["thresholds"] == {"eot_threshold": 1.0, "eot_timeout_ms": 1000}
    # each pause-ended turn ends when its silence is long enough, not at the next turn's audio
    assert ends[1]["audio_window_end"] < 2 * len(turn) / 32000 - 0.5, ends[1]
    assert ends[2]["audio_window_end"] < 3 * len(turn) / 32000 - 0.5, ends[2]


@pytest.mark.parametrize("query", ["model=nova-3", "eot_timeout_ms=50", "eot_threshold=1.5", "encoding=speex",
                                   "eot_timeout_ms=60001"])
def test_flux_bad_parameter_is_refused_before_the_upgrade(srv, key, query):
    r = requests.get(f"{srv.url}/deepgram/v2/listen?{query}", timeout=10, headers={
        "Authorization": f"Token {key}", "Upgrade": "websocket", "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert r.status_code == 400 and r.json()["err_code"] == "INVALID_QUERY_PARAMETER", r.text
    assert r.headers.get("dg-request-id")
    r = requests.get(f"{srv.url}/deepgram/v2/listen", headers={"Authorization": f"Token {key}"}, timeout=10)
    assert r.status_code == 400 and "upgrade" in r.json()["err_msg"].lower(), r.text


# -- OpenAI over plain HTTP ---------------------------------------------------

# -- OpenAI's Realtime API, transcription sessions (GET /v1/realtime) --------------------------------------

async def realtime(uri, events, audio_chunks, items, headers=None, subprotocols=None, after=()):
    """Opens a realtime session, sends `events`, then each audio chunk as input_audio_buffer.append and the
    `after` events; collects server events until `items` transcriptions completed (or 30 s pass)."""
    got = []
    async with websockets.connect(uri, extra_headers=headers or {}, subprotocols=subprotocols,
                                  open_timeout=60) as ws:
        got.append(json.loads(await ws.recv()))  # session.created, before anything is sent
        for e in events:
            await ws.send(json.dumps(e))
            got.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))  # its answer
        for c in audio_chunks:
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(c).decode()}))
        for e in after:
            await ws.send(json.dumps(e))
        done = 0
        while done < items:
            m = json.loads(await asyncio.wait_for(ws.recv(), 30))
            got.append(m)
            done += m["type"] == "conversation.item.input_audio_transcription.completed"
        return got, ws.subprotocol


def chunks(data, n):
    return [data[i:i + n] for i in range(0, len(data), n)]


def test_openai_realtime_transcription_session(srv, key, audio):
    """OpenAI's GA events with server VAD: two utterances become two items, each speech_started,
    speech_stopped, committed (chained by previous_item_id), delta, completed; a bad event is an error
    event and the session goes on."""
    with open(audio["pcm24"], "rb") as f:
        speech = f.read()
    pcm = speech + b"\0\0" * 24000 + speech + b"\0\0" * 24000  # 24 kHz, OpenAI's default rate
    update = {"type": "session.update", "event_id": "ev_1", "session": {"type": "transcription", "audio": {"input": {
        "format": {"type": "audio/pcm", "rate": 24000}, "transcription": {"model": "gpt-4o-transcribe",
                                                                           "language": "en-US"},
        "turn_detection": {"type": "server_vad", "silence_duration_ms": 600}}}}}
    got, _ = asyncio.run(realtime(ws_base(srv) + "/v1/realtime?model=gpt-4o-transcribe", [
        {"type": "input_audio_buffer.commit", "event_id": "ev_0"}, update, {"type": "bogus", "event_id": "ev_2"}],
        chunks(pcm, 4800), 2, headers={"Authorization": f"Bearer {key}"}))
    created, empty, updated, bogus = got[:4]
    assert created["type"] == "session.created" and created["event_id"].startswith("event_")
    inp = created["session"]["audio"]["input"]
    assert inp["format"] == {"type": "audio/pcm", "rate": 24000}
    assert inp["turn_detection"] == {"type": "server_vad", "silence_duration_ms": 500}
    assert empty["type"] == "error" and empty["error"]["event_id"] == "ev_0" and "empty" in empty["error"]["message"]
    assert updated["type"] == "session.updated"
    inp = updated["session"]["audio"]["input"]
    assert inp["transcription"]["language"] == "en" and inp["turn_detection"]["silence_duration_ms"] == 600
    assert bogus["type"] == "error" and bogus["error"]["type"] == "invalid_request_error"
    assert bogus["error"]["event_id"] == "ev_2" and "bogus" in bogus["error"]["message"]
    events = got[4:]
    kinds = [e["type"].rsplit(".", 1)[-1] for e in events]
    assert kinds == ["speech_started", "speech_stopped", "committed", "delta", "completed"] * 2, kinds
    first, second = events[0]["item_id"], events[5]["item_id"]
    assert first != second and all(e["item_id"] == first for e in events[:5])
    assert events[2]["previous_item_id"] is None and events[7]["previous_item_id"] == first
    assert 0.3 < events[0]["audio_start_ms"] / 1000 < 0.8 and events[1]["audio_end_ms"] > events[0]["audio_start_ms"]
    for e in (events[4], events[9]):
        assert e["transcript"] == "Go forward ten meters." and e["content_index"] == 0
        assert e["usage"]["type"] == "duration" and 1.5 < e["usage"]["seconds"] < 4
    assert events[3]["delta"] == events[4]["transcript"]
    assert len({e["event_id"] for e in got}) == len(got)


def test_openai_realtime_binary_frames_and_odd_rates_are_error_events(srv, key):
    """OpenAI's protocol has no binary messages and `rate` is an integer: both were ignored without a word
    (binary audio was even decoded; a rate of 48000.5 or "16000" left the session at 24 kHz and answered
    session.updated). Now each is an error event and the session goes on."""
    def update(rate, event_id):
        return json.dumps({"type": "session.update", "event_id": event_id, "session": {"type": "transcription",
                           "audio": {"input": {"format": {"type": "audio/pcm", "rate": rate}}}}})

    async def run():
        async with websockets.connect(ws_base(srv) + "/v1/realtime?intent=transcription",
                                      extra_headers={"Authorization": f"Bearer {key}"}, open_timeout=60) as ws:
            got = [json.loads(await ws.recv())]
            for m in [b"\0\0" * 800, update(48000.5, "r1"), update("16000", "r2"), update(1e300, "r3"),
                      update(16000, "r4")]:
                await ws.send(m)
                got.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            return got
    created, binary, *rates, ok = asyncio.run(run())
    assert created["type"] == "session.created"
    assert binary["type"] == "error" and "input_audio_buffer.append" in binary["error"]["message"], binary
    assert [(e["type"], e["error"]["event_id"]) for e in rates] == [("error", "r1"), ("error", "r2"),
                                                                    ("error", "r3")], rates
    assert all("'rate'" in e["error"]["message"] for e in rates), rates
    assert ok["type"] == "session.updated" and ok["session"]["audio"]["input"]["format"]["rate"] == 16000, ok


def test_openai_realtime_beta_mulaw_manual_commit_and_browser_auth(srv, key, audio):
    """The beta transcription_session.update with g711_ulaw and turn_detection null (only commit ends an
    item); the key in the browser subprotocol OpenAI's clients use, answered with `realtime`."""
    with open(audio["mulaw"], "rb") as f:
        ulaw = f.read() + b"\xff" * 4000  # μ-law silence
    update = {"type": "transcription_session.update", "session": {
        "input_audio_format": "g711_ulaw", "turn_detection": None,
        "input_audio_transcription": {"model": "gpt-4o-mini-transcribe"}}}
    got, proto = asyncio.run(realtime(
        ws_base(srv) + "/v1/realtime?intent=transcription", [update], chunks(ulaw, 1600), 1,
        subprotocols=["realtime", f"openai-insecure-api-key.{key}", "openai-beta.realtime-v1"],
        after=[{"type": "input_audio_buffer.commit"}]))
    assert proto == "realtime"
    updated = got[1]
    assert updated["type"] == "transcription_session.updated"
    assert updated["session"]["input_audio_format"] == "g711_ulaw" and updated["session"]["turn_detection"] is None
    kinds = [e["type"] for e in got[2:]]
    # no turn detection: the pause does not end the item, the commit does; no speech events
    assert kinds == ["input_audio_buffer.committed", "conversation.item.input_audio_transcription.delta",
                     "conversation.item.input_audio_transcription.completed"], kinds
    assert "forward" in got[-1]["transcript"].lower()


@pytest.mark.parametrize("vad", [False, True])
def test_openai_realtime_clear_drops_the_buffer(srv, key, audio, vad):
    """input_audio_buffer.clear drops the audio sent since the last item (a commit right after it is an
    error: nothing to commit); then the same speech and a commit (or a pause) -> its words once. Without turn detection there are no speech events (OpenAI sends
    them in server_vad mode only); with it, the item speech_started announced before the clear (mid-word)
    completes with no transcript, so a client never waits for it; `cleared` follows it."""
    with open(audio["pcm24"], "rb") as f:
        speech = f.read()
    turns = {"type": "server_vad", "silence_duration_ms": 500} if vad else None
    update = {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
        "format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": turns}}}}
    first = speech[:len(speech) // 2 // 2 * 2] if vad else speech  # cut mid-speech: the item is announced
    got, _ = asyncio.run(realtime(
        ws_base(srv) + "/v1/realtime", [update], chunks(first, 4800), 2 if vad else 1,
        headers={"Authorization": f"Bearer {key}"},
        after=[{"type": "input_audio_buffer.clear"}, {"type": "input_audio_buffer.commit", "event_id": "ev_c"}] +
              [{"type": "input_audio_buffer.append", "audio": base64.b64encode(c).decode()}
               for c in chunks(speech + b"\0\0" * 24000, 4800)] + [{"type": "input_audio_buffer.commit"}]))
    events = [e for e in got[2:] if e["type"] != "error"]
    errors = [e for e in got[2:] if e["type"] == "error"]  # the commit right after the clear: nothing to commit
    assert len(errors) == 1 and errors[0]["error"]["event_id"] == "ev_c" and "empty" in errors[0]["error"]["message"]
    kinds = [e["type"].rsplit(".", 1)[-1] for e in events]
    if not vad:
        assert kinds == ["cleared", "committed", "delta", "completed"], kinds
    else:
        assert kinds == ["speech_started", "speech_stopped", "committed", "completed", "cleared",
                         "speech_started", "speech_stopped", "committed", "delta", "completed"], kinds
        assert events[3]["transcript"] == "" and events[3]["item_id"] == events[0]["item_id"]
        assert events[-1]["item_id"] != events[3]["item_id"] and events[7]["previous_item_id"] == events[3]["item_id"]
    assert events[-1]["transcript"] == "Go forward ten meters.", events[-1]


def test_openai_realtime_long_take_is_one_item(srv, key, audio):
    """Without turn detection an item is what the client commits: a 28 s take, longer than listend's 20 s
    utterance cap, still comes back as one item with all its words, its usage the whole take."""
    with open(audio["pcm24"], "rb") as f:
        speech = f.read()
    take = (speech + b"\0\0" * 4800) * 10  # 10 x (2.8 s + 0.2 s)
    update = {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
        "format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": None}}}}
    got, _ = asyncio.run(realtime(ws_base(srv) + "/v1/realtime", [update], chunks(take, 9600), 1,
                                  headers={"Authorization": f"Bearer {key}"},
                                  after=[{"type": "input_audio_buffer.commit"}]))
    kinds = [e["type"].rsplit(".", 1)[-1] for e in got[2:]]
    assert kinds == ["committed", "delta", "completed"], kinds
    done = got[-1]
    assert done["transcript"].lower().count("forward") >= 9, done["transcript"]
    assert done["usage"]["seconds"] > 25, done["usage"]


def test_openai_realtime_idle_limit_is_its_own(tmp_path, audio):
    """OpenAI's clients send no keepalive, and a push-to-talk session is silent between takes: realtime
    sessions outlive --stream-idle-timeout and end after --realtime-idle-timeout without a client event, with
    an error event and 1008."""
    s = start_server(tmp_path / "data", "--stream-idle-timeout", "1", "--realtime-idle-timeout", "4s", workers=1)
    try:
        key = s.key("idle")
        with open(audio["pcm24"], "rb") as f:
            speech = f.read()

        async def session():
            async with websockets.connect(ws_base(s) + "/v1/realtime", open_timeout=60,
                                          extra_headers={"Authorization": f"Bearer {key}"}) as ws:
                await ws.recv()  # session.created
                await ws.send(json.dumps({"type": "session.update", "session": {"type": "transcription", "audio": {
                    "input": {"format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": None}}}}))
                await ws.recv()  # session.updated
                await asyncio.sleep(2.5)  # between takes: longer than the stream idle timeout
                for c in chunks(speech, 4800):
                    await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                              "audio": base64.b64encode(c).decode()}))
                await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
                t0 = time.monotonic()  # the last client event: the idle time counts from here
                while (m := json.loads(await asyncio.wait_for(ws.recv(), 30)))["type"] != \
                        "conversation.item.input_audio_transcription.completed":
                    pass
                err = json.loads(await asyncio.wait_for(ws.recv(), 30))
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 10)
                return m, err, time.monotonic() - t0, closed.value.code

        done, err, idle, code = asyncio.run(session())
        assert done["transcript"] == "Go forward ten meters."
        assert err["type"] == "error" and "No client event received for 4 seconds" in err["error"]["message"], err
        # not before 4 s after the commit; later by the decoding of the take (a busy stream is not idle)
        assert 3.9 < idle < 12 and code == 1008, (idle, code)
    finally:
        s.stop()


@pytest.mark.parametrize("headers,status,code", [({}, 401, "invalid_api_key"),
                                                 ({"Authorization": "Bearer nope"}, 401, "invalid_api_key")])
def test_openai_realtime_refusals_are_openai_errors(srv, key, headers, status, code):
    r = requests.get(srv.url + "/v1/realtime?model=gpt-4o-transcribe", timeout=10, headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", **headers})
    assert r.status_code == status and r.json()["error"]["code"] == code, r.text
    r = requests.get(srv.url + "/v1/realtime", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error", r.text


def test_openai_stream_is_server_sent_events(srv, key, audio):
    with open(audio["wav"], "rb") as f:
        r = requests.post(srv.url + "/v1/audio/transcriptions", headers={"Authorization": f"Bearer {key}"},
                          files={"file": ("a.wav", f)}, data={"model": "whisper-1", "stream": "true"}, stream=True,
                          timeout=60)
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/event-stream"
    events = [json.loads(line[6:]) for line in r.iter_lines(decode_unicode=True) if line.startswith("data: ")]
    assert events[-1] == {"type": "transcript.text.done", "text": "Go forward ten meters.",
                          "usage": {"type": "duration", "seconds": events[-1]["usage"]["seconds"]}}
    assert "".join(e["delta"] for e in events[:-1]) == "Go forward ten meters."


def test_openai_diarized_json(srv, key, audio):
    """gpt-4o-transcribe-diarize's diarized_json on a real meeting (the LibriVox reader, the digits
    speaker, the reader again): lettered speaker segments in OpenAI's shape, the digits turn on its
    own speaker; with stream=true the same segments arrive as events before transcript.text.done."""
    fields = {"model": "gpt-4o-transcribe-diarize", "response_format": "diarized_json", "chunking_strategy": "auto",
              "known_speaker_names[]": "agent"}
    with open(audio["meeting"], "rb") as f:
        r = requests.post(srv.url + "/v1/audio/transcriptions", headers={"Authorization": f"Bearer {key}"},
                          files={"file": ("meeting.wav", f)}, data=fields, timeout=120)
    assert r.status_code == 200, r.text
    b = r.json()
    assert list(b) == ["task", "duration", "text", "segments", "usage"], b
    segs = b["segments"]
    assert segs and all(s["type"] == "transcript.text.segment" and s["id"] == f"seg_{i}" for i, s in enumerate(segs))
    assert segs[0]["speaker"] == "A" and {s["speaker"] for s in segs} == {"A", "B"}, segs
    digits = [s["speaker"] for s in segs if {"zero", "nine", "eight"} & set(words(s["text"]))]
    reader = [s["speaker"] for s in segs if {"dashwood", "disposed", "man"} & set(words(s["text"]))]
    assert digits and reader and set(digits) == {"B"} and set(reader) == {"A"}, segs
    assert words(b["text"]) == words(" ".join(s["text"] for s in segs))
    assert b["usage"] == {"type": "duration", "seconds": b["duration"]} and b["duration"] > 15
    with open(audio["meeting"], "rb") as f:
        r = requests.post(srv.url + "/v1/audio/transcriptions", headers={"Authorization": f"Bearer {key}"},
                          files={"file": ("meeting.wav", f)}, data={**fields, "stream": "true"}, timeout=120)
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[-1]["type"] == "transcript.text.done" and events[-1]["text"] == b["text"], events[-3:]
    streamed = [e for e in events if e["type"] == "transcript.text.segment"]
    assert [(s["speaker"], s["text"]) for s in streamed] == [(s["speaker"], s["text"]) for s in segs]
    r = requests.get(srv.url + "/v1/models/gpt-4o-transcribe-diarize", headers={"Authorization": f"Bearer {key}"},
                     timeout=10)
    assert r.status_code == 200 and r.json()["id"] == "gpt-4o-transcribe-diarize"


def test_openai_errors_before_the_stream_are_http_errors(srv, key, tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio" * 100)
    with open(junk, "rb") as f:
        r = requests.post(srv.url + "/v1/audio/transcriptions", headers={"Authorization": f"Bearer {key}"},
                          files={"file": ("a.wav", f)}, data={"model": "whisper-1", "stream": "true"}, timeout=60)
    assert r.status_code == 415
    assert r.json()["error"]["code"] == "unsupported_format" and r.json()["error"]["supported_formats"]
    r = requests.get(srv.url + "/v1/audio/speech", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"
    with open(junk, "rb") as f:  # the formats this route takes, diarized_json among them
        r = requests.post(srv.url + "/v1/audio/transcriptions", headers={"Authorization": f"Bearer {key}"},
                          files={"file": ("a.wav", f)}, data={"model": "whisper-1", "response_format": "xml"},
                          timeout=60)
    assert r.status_code == 400 and "verbose_json or diarized_json" in r.json()["error"]["message"], r.text


def multipart_file(path, fields):
    """A multipart/form-data body streamed from disk (requests' `files=` holds it all in memory)."""
    boundary = "listendcompat7f3a"

    def gen():
        for k, v in fields.items():
            yield f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        yield (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
               "Content-Type: audio/wav\r\n\r\n").encode()
        with open(path, "rb") as f:
            while chunk := f.read(65536):
                yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    return gen(), f"multipart/form-data; boundary={boundary}"


def test_openai_stream_ends_cleanly_at_a_drain_timeout(server_factory, audio, tmp_path):
    """SIGTERM while events are still being produced: past --drain-timeout the stream ends with an
    error event (never a connection left suspended) and the server exits 0."""
    s = server_factory("--drain-timeout", "1", workers=1)
    k = s.key("drain")
    long_recording(tmp_path / "longer.wav", repeat=3)  # 2 minutes of speech: decoding outlasts the drain timeout
    body, ctype = multipart_file(tmp_path / "longer.wav", {"model": "whisper-1", "stream": "true"})
    r = requests.post(s.url + "/v1/audio/transcriptions", headers={"Authorization": f"Bearer {k}",
                                                                   "Content-Type": ctype},
                      data=body, stream=True, timeout=120)
    assert r.status_code == 200
    lines = r.iter_lines(decode_unicode=True)
    first = next(line for line in lines if line.startswith("data: "))
    assert json.loads(first[6:])["type"] == "transcript.text.delta"
    s.proc.send_signal(signal.SIGTERM)
    events = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    assert events, "the stream ended without its last event"
    last = events[-1]
    assert last.get("type") == "transcript.text.done" or last["error"]["code"] == "service_unavailable", last
    assert s.proc.wait(60) == 0


def test_openai_stream_left_early_is_cancelled_and_not_charged(server_factory, audio, tmp_path):
    """A client that leaves its event stream after the first delta: the rest was decoded for nobody and
    charged to its key. Now the transcription is cancelled and nothing is counted (as for a batch client
    that hangs up before its answer)."""
    import http.client
    s = server_factory(workers=1)
    k = s.key("leave", hours_per_day=1)
    long_recording(tmp_path / "longer.wav", repeat=3)  # 2 minutes of speech
    body, ctype = multipart_file(tmp_path / "longer.wav", {"model": "whisper-1", "stream": "true"})
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=120)
    conn.request("POST", "/v1/audio/transcriptions", body=b"".join(body),
                 headers={"Authorization": f"Bearer {k}", "Content-Type": ctype})
    resp = conn.getresponse()
    assert resp.status == 200
    while not (line := resp.fp.readline()).startswith(b"data: "):
        pass
    assert json.loads(line[6:])["type"] == "transcript.text.delta"
    conn.sock.shutdown(socket.SHUT_RDWR)  # leave: the server's next write fails
    conn.close()
    deadline = time.time() + 120
    while time.time() < deadline:  # until the pool is idle again: the request ended, cancelled or not
        h = requests.get(s.url + "/health?detailed=true", timeout=10).json()
        if "Client left its event stream" in s.log() and h["asr_busy"] == 0 and h["queue_depth"] == 0:
            break
        time.sleep(0.3)
    assert "Client left its event stream" in s.log()
    lic = requests.get(s.url + "/v1/license", headers={"Authorization": f"Bearer {k}"}, timeout=10)
    assert float(lic.headers["X-Quota-Remaining"]) == 3600, lic.headers  # nothing was counted
    line = [json.loads(x) for x in s.log().splitlines() if '"POST /v1/audio/transcriptions ' in x]
    assert line and line[0]["status"] == 200 and "audio_seconds" not in line[0], line  # nothing charged, nothing logged
    # libmicrohttpd reports the failed write as an error; the log says who ended it (was "error")
    assert line[0]["terminated"] == "client closed the connection", line


# -- the SDK suites ------------------------------------------------------------

def test_sdk_suites(sdk_run):
    out, _ = sdk_run.communicate(timeout=600)
    print(out)
    assert sdk_run.returncode == 0, out
    # The suites skip themselves without a server: make sure they really ran.
    assert "fail 0" in out and "skipped 0" in out and "pass 0" not in out, out
