"""A live stream's finals depend on the audio only: the same real clip sent as
fast as the server takes it in frames of different sizes, and at real-time pace,
gives the same finals (words and times)."""
import os
import subprocess

import pytest

from conftest import EVAL_DIR, start_server
from test_stream import run, stream, ws_url

CLIP = "sphinx4_digits_10001-90210-01803.wav"  # 8.3 s of digits with pauses: several utterances


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("repeat"))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def pcm():
    path = os.path.join(EVAL_DIR, CLIP)
    if not os.path.exists(path):
        pytest.skip("eval clip not available")
    return subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", path, "-f", "s16le", "-ar", "16000",
                           "-ac", "1", "-"], check=True, capture_output=True).stdout


def finals(srv, key, pcm, chunk, pace=0.0):
    msgs, code = run(stream(ws_url(srv, "interim_results=false"), pcm, chunk=chunk, pace=pace,
                            headers=srv.auth(key)))
    assert code == 1000
    return [(m["transcript"], m["start"], m["duration"], [(w["word"], w["start"], w["end"]) for w in m["words"]])
            for m in msgs if m["type"] == "transcription" and m["is_final"]]


def test_same_finals_at_any_frame_size_and_speed(srv, pcm):
    key = srv.key("repeat", rpm=1000)
    ref = finals(srv, key, pcm, 3200)  # 100 ms frames, as fast as possible
    assert len([f for f in ref if f[0]]) >= 2, ref
    assert finals(srv, key, pcm, 3200) == ref
    for chunk in (640, 1000, 4410, 32000):  # 20 ms, odd sizes, 1 s
        assert finals(srv, key, pcm, chunk) == ref, chunk
    assert finals(srv, key, pcm, 640, pace=0.02) == ref  # real time, 20 ms frames
