"""Acceptance (issue #3): inputs that are not usable audio get the error docs/audio.md
("Which error each bad input gets") promises; silence and over-long audio are handled without
transcribing or buffering what is not needed."""
import os
import random
import struct
import time

import pytest

from audio_fixtures import (GOFORWARD, audio_cache, clip_path, error, listen, ok_json, words)
from conftest import start_server

SUPPORTED = {"wav", "mp3", "flac", "ogg", "m4a"}  # spec §7.5; the server may name more (webm)


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    return audio_cache(tmp_path_factory)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("bad"), workers=1)
    s.k = s.key("bad", rpm=100000)
    yield s
    s.stop()


def upload(srv, name, data):
    return listen(srv, srv.k, files={"audio": (name, data)})


def test_random_bytes_are_unsupported_format(srv):
    data = random.Random(3).randbytes(20000)  # fixed seed: the same bytes every run
    body = error(upload(srv, "noise.wav", data), 415, "UNSUPPORTED_FORMAT")
    assert SUPPORTED <= set(body["supported_formats"]), body


def test_zero_bytes_is_invalid_audio(srv):
    body = error(upload(srv, "empty.mp3", b""), 400, "INVALID_AUDIO")
    assert "empty" in body["error"].lower(), body


def test_video_without_audio_stream_is_invalid_audio(srv, audio):
    path = audio.make("video_only.mp4", "-f", "lavfi", "-i", "testsrc=duration=1:size=160x120:rate=10", "-an")
    with open(path, "rb") as f:
        body = error(upload(srv, "video.mp4", f.read()), 400, "INVALID_AUDIO")
    assert "no audio stream" in body["error"], body


@pytest.fixture(scope="module")
def mp3(audio):
    with open(audio.variants(clip_path("cathy_arctic_b0011"), ["mp3"])["mp3"], "rb") as f:
        return f.read()


def test_truncated_mp3_is_decoded_as_far_as_it_goes(srv, mp3):
    """docs/audio.md: a truncated file that still yields audio is decoded (shorter duration)."""
    cut = mp3[: len(mp3) * 45 // 100]
    body = ok_json(upload(srv, "cut.mp3", cut))
    full = ok_json(upload(srv, "full.mp3", mp3))
    assert 0.3 * full["duration"] < body["duration"] < 0.6 * full["duration"], (body["duration"], full["duration"])
    got, whole = words(body["text"]), words(full["text"])
    assert got and got[:2] == whole[:2], (body["text"], full["text"])


def test_mp3_cut_inside_its_first_frame_is_unsupported(srv, mp3):
    """docs/audio.md: too short to be recognised (FFmpeg's MP3 probe needs a few frames) -> 415."""
    # ID3v2 tag (45 bytes) + Xing/Info frame (417 bytes at 128k) + part of the first audio frame.
    body = error(upload(srv, "cut.mp3", mp3[:800]), 415, "UNSUPPORTED_FORMAT")
    assert "not a recognised audio file" in body["error"] and body["supported_formats"], body


def test_silence_only_wav_is_200_with_empty_text(srv, audio):
    path = audio.make("silence5.wav", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", 5)
    with open(path, "rb") as f:
        r = listen(srv, srv.k, files={"audio": f}, params={"timestamps": "true"})
    body = ok_json(r)
    assert body["text"] == "" and body["words"] == [] and body["utterances"] == []
    assert abs(body["duration"] - 5.0) < 0.002
    assert 0 <= body["confidence"] <= 1
    # The other renderings of "nothing said": empty text, an SRT without cues, a bare VTT header.
    with open(path, "rb") as f:
        data = f.read()
    bodies = {fmt: listen(srv, srv.k, files={"audio": ("s.wav", data)}, params={"format": fmt})
              for fmt in ("text", "srt", "vtt")}
    assert all(r.status_code == 200 for r in bodies.values()), bodies
    assert bodies["text"].text.strip() == "" and bodies["srt"].text.strip() == ""
    assert bodies["vtt"].text.strip() == "WEBVTT"


def vm_hwm_kb(srv):
    with open(f"/proc/{srv.proc.pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def test_three_hour_file_is_audio_too_long_without_buffering_its_pcm(tmp_path_factory, audio):
    """A fresh server, so its peak RSS (VmHWM) is not already raised by earlier requests. 2 h of
    16 kHz PCM is 230 MB; the decoder must stop at the cap and spill to disk, not grow by that."""
    srv = start_server(tmp_path_factory.mktemp("long"), workers=1)
    try:
        key = srv.key("long")
        path = audio.silent_mp3(3 * 3600)
        assert os.path.getsize(path) < 12_000_000  # the 100 MB body cap is not what refuses it
        with open(GOFORWARD, "rb") as f:  # warm up: decoders loaded and used once
            ok_json(listen(srv, key, data=f.read(), params={"encoding": "linear16"},
                           headers={"Content-Type": "application/octet-stream"}))
        before = vm_hwm_kb(srv)
        with open(path, "rb") as f:
            body = error(listen(srv, key, files={"audio": ("long.mp3", f, "audio/mpeg")}), 422, "AUDIO_TOO_LONG")
        assert "7200" in body["error"], body
        grown_mb = (vm_hwm_kb(srv) - before) / 1024
        assert grown_mb < 100, f"peak RSS grew by {grown_mb:.0f} MB"
        assert srv.proc.poll() is None
    finally:
        srv.stop()


def wav_bytes(channels, rate, data):
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 2, channels * 2, 16)
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", len(data)) + data)


@pytest.mark.parametrize("multichannel", [False, True])
def test_header_rate_below_telephone_audio_is_refused_at_once(srv, multichannel):
    """A 113 KB 8-channel WAV whose header says 1 Hz was 7100 s of audio per channel: minutes of decoding and
    gigabytes of resampler output, also after the client hung up. The header's rate is refused like a headerless
    upload's sample_rate below 8000 Hz, before any audio is decoded."""
    data = wav_bytes(8, 1, random.Random(5).randbytes(7100 * 8 * 2))
    t0 = time.monotonic()
    r = listen(srv, srv.k, params={"multichannel": "true"} if multichannel else None, data=data,
               headers={"Content-Type": "audio/wav"})
    body = error(r, 400, "INVALID_AUDIO")
    assert "1 Hz is not supported" in body["error"] and time.monotonic() - t0 < 10, body
