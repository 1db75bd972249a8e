"""Acceptance (issue #3): extra languages from --models, a full queue (503 with Retry-After, the
server stays healthy), and a long file decoded in parallel giving the same transcript as one
decoder. Audio: real clips joined with 0.8 s silences (≈ 27 s and ≈ 62 s)."""
import concurrent.futures
import os
import time

import pytest
import requests

from audio_fixtures import (GOFORWARD, GOFORWARD_WORDS, audio_cache, error, listen, manifest, ok_json, words)
from conftest import start_server

EN_US = "/usr/share/pocketsphinx/model/en-us"
SLACK = 0.35  # a word may start/end this far outside its clip


def cathy_clips(total_seconds):
    """The first eval clips of one speaker adding up to about total_seconds (with 0.8 s gaps)."""
    out, t = [], 0.8
    for cid, (dur, _ref) in manifest().items():
        if cid.startswith("cathy_arctic") and t < total_seconds - 1:
            out.append(cid)
            t += dur + 0.8
    return out


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    return audio_cache(tmp_path_factory)


@pytest.fixture(scope="module")
def clip27(audio):
    return audio.joined("cathy27", cathy_clips(27))


@pytest.fixture(scope="module")
def clip60(audio):
    return audio.joined("cathy60", cathy_clips(62))


def post_file(srv, key, path, **params):
    with open(path, "rb") as f:
        return listen(srv, key, data=f.read(), headers={"Content-Type": "audio/wav"}, params=params)


# ---- --models ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def models_srv(tmp_path_factory):
    """A second language folder laid out as src/asr/model.h describes (acoustic model sub-folder,
    <name>.lm.bin, <name>.dict), made of symlinks to the English model: the server cannot tell,
    so English audio must come back under the new code."""
    models = tmp_path_factory.mktemp("models")
    fr = models / "fr"
    fr.mkdir()
    os.symlink(os.path.join(EN_US, "en-us"), fr / "acoustic")
    os.symlink(os.path.join(EN_US, "en-us.lm.bin"), fr / "fr.lm.bin")
    os.symlink(os.path.join(EN_US, "cmudict-en-us.dict"), fr / "fr.dict")
    (models / "not-a-language").mkdir()  # ignored: not an ISO 639-1 code
    s = start_server(tmp_path_factory.mktemp("models_data"), "--models", models, workers=1)
    s.k = s.key("models", rpm=100000)
    yield s
    s.stop()


def test_extra_language_from_models_dir(models_srv):
    with open(GOFORWARD, "rb") as f:
        pcm = f.read()
    for params in ({"language": "fr"}, {"language": "en"}):
        r = listen(models_srv, models_srv.k, data=pcm, params={"encoding": "linear16", **params},
                   headers={"Content-Type": "application/octet-stream"})
        body = ok_json(r)
        assert body["language"] == params["language"]
        assert words(body["text"]) == GOFORWARD_WORDS, body
    with open(GOFORWARD, "rb") as f:
        r = listen(models_srv, models_srv.k, files={"audio": ("g.raw", f)}, data={"language": "fr", "encoding": "linear16"})
    assert ok_json(r)["language"] == "fr"
    body = error(listen(models_srv, models_srv.k, data=pcm, params={"encoding": "linear16", "language": "de"},
                        headers={"Content-Type": "application/octet-stream"}), 400, "UNSUPPORTED_LANGUAGE")
    assert "en, fr" in body["error"], body


# ---- full queue -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("one_worker"), "--queue", 1, workers=1)
    s.k = s.key("busy", rpm=100000, concurrency=100)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def burst(one_worker, clip27, clip60):
    """One ≈ 60 s transcription, then (while it decodes) three ≈ 27 s ones at once. (With a 27 s first
    one, a loaded CI host once let one of the three arrive after it had finished: [200, 200, 503].)
    Returns (first response, [the three], /health status seen during the burst)."""
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        first = ex.submit(post_file, one_worker, one_worker.k, clip60[0])
        # The three must come while the first one's first segment decodes: the pool starts a waiting request
        # at a segment boundary (two run per decoder), after which a third would find the queue free. So they
        # go as soon as the decoder is busy, not after a fixed sleep that a loaded host can outlast.
        deadline = time.time() + 30
        while requests.get(one_worker.url + "/health?detailed=true", timeout=10).json()["asr_busy"] == 0:
            assert time.time() < deadline, "the first request never started decoding"
            time.sleep(0.02)
        assert not first.done(), "first request finished too early for the test to mean anything"
        rest = [ex.submit(post_file, one_worker, one_worker.k, clip27[0]) for _ in range(3)]
        health = requests.get(one_worker.url + "/health", timeout=10).status_code
        return first.result(), [f.result() for f in rest], health


def test_full_queue_is_503_with_retry_after(one_worker, burst):
    first, rest, health = burst
    assert ok_json(first)["text"]
    codes = [r.status_code for r in rest]
    assert set(codes) <= {200, 503} and 503 in codes, codes
    for r in rest:
        if r.status_code == 503:
            body = error(r, 503, "SERVICE_UNAVAILABLE")
            assert isinstance(body["retry_after"], int) and body["retry_after"] > 0, body
            assert r.headers["Retry-After"] == str(body["retry_after"])
        else:
            assert ok_json(r)["text"] and 20 < r.json()["duration"] < 35
    assert health == 200  # /health answers while the decoder is busy
    # Still healthy and serving afterwards.
    assert requests.get(one_worker.url + "/health", timeout=10).json() == {"status": "healthy"}
    with open(GOFORWARD, "rb") as f:
        r = listen(one_worker, one_worker.k, data=f.read(), params={"encoding": "linear16"},
                   headers={"Content-Type": "application/octet-stream"})
    assert words(ok_json(r)["text"]) == GOFORWARD_WORDS


def test_queue_counts_waiting_requests_only(burst):
    _first, rest, _health = burst
    assert sorted(r.status_code for r in rest) == [200, 503, 503]


# ---- parallel decoding ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("two_workers"), workers=2)
    s.k = s.key("par", rpm=100000)
    yield s
    s.stop()


def test_parallel_decoding_matches_one_decoder(two_workers, one_worker, burst, clip60):
    """Not a timing test: a ≈ 62 s file is cut into segments decoded on 2 decoders at once; the
    merged result must be in order, with times in the right clip, and identical to 1 decoder's.
    (Depends on `burst` only so that it runs after it on the shared one-worker server.)"""
    path, duration, spans = clip60
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        par = ex.submit(post_file, two_workers, two_workers.k, path, timestamps="true")
        seq = ex.submit(post_file, one_worker, one_worker.k, path, timestamps="true")
        par, seq = ok_json(par.result()), ok_json(seq.result())
    assert par["text"] == seq["text"]
    assert [w["word"] for w in par["words"]] == [w["word"] for w in seq["words"]]
    assert abs(par["duration"] - duration) < 0.002
    spoken = [w for w in par["words"] if w["word"] not in {",", ".", "?", "!"}]
    starts = [w["start"] for w in spoken]
    assert starts == sorted(starts)
    assert all(w["start"] <= w["end"] for w in spoken)
    clip_of_word = []
    for w in spoken:
        inside = [i for i, (s, e, _cid) in enumerate(spans) if s - SLACK <= w["start"] and w["end"] <= e + SLACK]
        assert inside, (w, spans)
        clip_of_word.append(inside[0])
    assert clip_of_word == sorted(clip_of_word)  # clips come out in order
    assert set(clip_of_word) == set(range(len(spans)))  # and none is lost
    assert [(u["start"], u["end"]) for u in par["utterances"]] == [(u["start"], u["end"]) for u in seq["utterances"]]
