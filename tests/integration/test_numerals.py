"""numerals=true: spoken numbers as digits, on a real recording ("go forward ten meters"), through
/v1/listen (JSON words and text, SRT), Deepgram's route and a live stream; as spoken without it;
bad values answer 400."""
import asyncio
import subprocess

import pytest
import requests

from audio_fixtures import stream_audio, ws_url
from conftest import BIN, GOFORWARD


@pytest.fixture(scope="module")
def srv(shared_server):
    shared_server.k = shared_server.key("numerals")
    return shared_server


def wav(tmp_path):
    out = tmp_path / "gf.wav"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "s16le", "-ar", "16000", "-ac", "1",
                    "-i", GOFORWARD, str(out)], check=True)
    return out.read_bytes()


def post(srv, audio, path="/v1/listen", **params):
    return requests.post(srv.url + path, headers={**srv.auth(srv.k), "Content-Type": "audio/wav"}, params=params,
                         data=audio, timeout=60)


def test_batch_numerals(srv, tmp_path):
    audio = wav(tmp_path)
    r = post(srv, audio, numerals="true", timestamps="true")
    assert r.status_code == 200, r.text
    b = r.json()
    assert "10" in b["text"].split() and "ten" not in b["text"].lower(), b["text"]
    ten = [w for w in b["words"] if w["word"] == "10"]
    assert len(ten) == 1 and ten[0]["start"] < ten[0]["end"], b["words"]
    plain = post(srv, audio, timestamps="true").json()
    assert "ten" in plain["text"].lower().split() and "10" not in plain["text"], plain["text"]
    srt = post(srv, audio, numerals="true", format="srt").text
    assert " 10 " in srt, srt
    r = post(srv, audio, path="/deepgram/v1/listen", numerals="true")
    assert r.status_code == 200, r.text
    alt = r.json()["results"]["channels"][0]["alternatives"][0]
    assert "10" in alt["transcript"].split() and any(w["word"] == "10" for w in alt["words"]), alt
    r = post(srv, audio, numerals="maybe")
    assert r.status_code == 400 and r.json()["code"] == "INVALID_PARAMETER" and "numerals" in r.json()["error"]


def test_stream_numerals(srv):
    with open(GOFORWARD, "rb") as f:
        audio = f.read() + b"\0\0" * 16000
    for q, want in (("numerals=true", "10"), ("itn_normalize=true", "10"), ("numerals=auto", "ten")):
        msgs, code = asyncio.run(stream_audio(ws_url(srv, "/v1/listen/stream", q), audio, srv.auth(srv.k)))
        finals = [m for m in msgs if m.get("type") == "transcription" and m["is_final"] and m["transcript"]]
        assert code == 1000 and finals, msgs
        text = " ".join(m["transcript"] for m in finals).lower().replace(".", "")
        assert want in text.split(), (q, text)
    r = requests.get(srv.url + "/v1/listen/stream?numerals=2", headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", **srv.auth(srv.k)}, timeout=30)
    assert r.status_code == 400 and "numerals" in r.text


def test_cli_numerals(srv, tmp_path):
    """`listend transcribe --numerals`, in the process and through the server."""
    f = tmp_path / "gf.wav"
    f.write_bytes(wav(tmp_path))
    for mode in ([], ["--server", srv.url, "--key", srv.k]):
        r = subprocess.run([BIN, "transcribe", "--numerals", "--format", "text", *mode, str(f)], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0 and "10" in r.stdout.split(), (mode, r.stdout, r.stderr)
