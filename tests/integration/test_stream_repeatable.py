"""A live stream's finals depend on the audio only: the same real clip sent as
fast as the server takes it in frames of different sizes, and at real-time pace,
gives the same finals (words and times) — also in noise, where the stream picks
the noisy route and the engine hears the audio through the denoiser."""
import os
import subprocess
import sys

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


@pytest.fixture(scope="module")
def noisy_pcm(tmp_path_factory):
    """The clip with pink noise at 15 dB (bench/wer/conditions.py)."""
    path = os.path.join(EVAL_DIR, CLIP)
    if not os.path.exists(path):
        pytest.skip("eval clip not available")
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                    "bench", "wer"))
    import conditions
    out = str(tmp_path_factory.mktemp("noisy") / "noisy.wav")
    conditions.add_noise(path, out, 15.0, CLIP)
    pcm, _ = conditions.read_wav16(out)
    return pcm.tobytes()


def finals(srv, key, pcm, chunk, pace=0.0, models=None):
    msgs, code = run(stream(ws_url(srv, "interim_results=false"), pcm, chunk=chunk, pace=pace,
                            headers=srv.auth(key)))
    assert code == 1000
    out = [m for m in msgs if m["type"] == "transcription" and m["is_final"]]
    if models is not None:
        models.update(m.get("model") for m in out)
    return [(m["transcript"], m["start"], m["duration"], [(w["word"], w["start"], w["end"]) for w in m["words"]])
            for m in out]


def test_same_finals_at_any_frame_size_and_speed(srv, pcm):
    key = srv.key("repeat", rpm=1000)
    ref = finals(srv, key, pcm, 3200)  # 100 ms frames, as fast as possible
    assert len([f for f in ref if f[0]]) >= 2, ref
    assert finals(srv, key, pcm, 3200) == ref
    for chunk in (640, 1000, 4410, 32000):  # 20 ms, odd sizes, 1 s
        assert finals(srv, key, pcm, chunk) == ref, chunk
    assert finals(srv, key, pcm, 640, pace=0.02) == ref  # real time, 20 ms frames


def test_noisy_stream_same_finals_at_any_frame_size(srv, noisy_pcm):
    key = srv.key("repeat-noisy", rpm=1000)
    models = set()
    ref = finals(srv, key, noisy_pcm, 3200, models=models)
    assert models == {"noisy"}, models
    assert len([f for f in ref if f[0]]) >= 2, ref
    for chunk in (3200, 640, 4410, 32000):
        assert finals(srv, key, noisy_pcm, chunk) == ref, chunk
