"""Speaker diarization (diarize, num_speakers) end to end on real multi-speaker recordings.

Recordings are built at test time from shared/eval/real clips of two dev speakers of
bench/der/split.tsv (the LibriVox reader and the sphinx4 digits speaker), joined with pauses
(or back to back: each clip trimmed to its speech, the next voice starting 50 ms later, so the
recogniser's words run on across the change), with the clip spans as the reference. Labels are checked against that reference (word-level
agreement under the best speaker mapping), not only for presence, on /v1/listen, the
Lightning/Pulse route, Deepgram's batch route and a callback job, and on live streams (Smallest's
and Deepgram's), labelled final by final; bad values answer 400 in the route's own envelope.
"""
import array
import asyncio
import base64
import functools
import http.server
import os
import re
import subprocess
import sys
import threading
import time
import wave

import pytest
import requests

from audio_fixtures import interleave, stream_audio, write_wav, ws_url
from conftest import BIN, EVAL_DIR, ROOT, start_server

sys.path.insert(0, os.path.join(ROOT, "bench", "der"))
import der  # noqa: E402
import make_set  # noqa: E402

READER = ["ps_librivox_sns01_0870.wav", "ps_librivox_sns01_0890.wav", "ps_librivox_sns01_0920.wav",
          "ps_librivox_sns01_0930.wav"]
DIGITS = "sphinx4_digits_10001-90210-01803.wav"


def read(name):
    with wave.open(os.path.join(EVAL_DIR, name)) as w:
        a = array.array("h")
        a.frombytes(w.readframes(w.getnframes()))
        return a


def trim_to_speech(a):
    """The clip from its first to its last 10 ms frame within 10 dB of its loud frames (95th
    percentile), 30 ms margin: no breath or room tone the recogniser would leave as a pause."""
    e = make_set.frame_energy(a)
    top = sorted(e)[int(0.95 * (len(e) - 1))]
    loud = [i for i, x in enumerate(e) if x > top / 10]
    return a[max(0, loud[0] - 3) * 160:(loud[-1] + 4) * 160]


def build(path, turns, trim=False):
    """turns: [(clip, speaker, pause_after_s)] -> reference [(start, end, speaker)]. trim: each
    clip cut to its speech (trim_to_speech), so pause_after_s is the whole gap."""
    out, ref = array.array("h"), []
    for clip, who, pause in turns:
        a = read(clip)
        if trim:
            a = trim_to_speech(a)
        ref.append((len(out) / 16000, (len(out) + len(a)) / 16000, who))
        out.extend(a)
        out.extend([0] * int(pause * 16000))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(out.tobytes())
    return ref


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    d = tmp_path_factory.mktemp("diarize")
    two = build(d / "two.wav", [(READER[0], "reader", 0.6), (DIGITS, "digits", 0.5), (READER[1], "reader", 0.4),
                                (READER[2], "reader", 0.3)])
    one = build(d / "one.wav", [(READER[0], "reader", 0.5), (READER[3], "reader", 0.7), (READER[1], "reader", 0.2)])
    # back to back: no pause at the speaker changes, so only the change detector can split them
    b2b = build(d / "b2b.wav", [(READER[0], "reader", 0.05), (DIGITS, "digits", 0.05), (READER[3], "reader", 0.05),
                                (READER[2], "reader", 0.5)], trim=True)
    return {"two": (d / "two.wav", two), "one": (d / "one.wav", one), "b2b": (d / "b2b.wav", b2b)}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("diarize_srv"), "--allow-private-urls")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def key(srv):
    return srv.key("diarize", rpm=6000)  # the job test polls


def post(srv, key, path, **fields):
    with open(path, "rb") as f:
        return requests.post(srv.url + "/v1/listen", headers=srv.auth(key),
                             files={"audio": ("a.wav", f, "audio/wav")}, data=fields, timeout=120)


def agreement(ref, words):
    return der.purity(ref, [(w["start"], w["end"], w["speaker"]) for w in words
                            if w["word"] not in (".", ",", "?", "!")])


def test_two_speakers_on_v1_listen(srv, key, rec):
    path, ref = rec["two"]
    r = post(srv, key, path, diarize="true", timestamps="true")
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["num_speakers"] == 2
    assert all(isinstance(w["speaker"], int) and 0 <= w["speaker"] < 2 for w in b["words"])
    assert agreement(ref, b["words"]) >= 0.9, b["words"]
    # utterances never mix speakers and split at changes; `speakers` (the self-host docs'
    # form) holds the same turns with SPEAKER_nn labels
    assert len(b["utterances"]) >= 3
    assert [u["speaker"] for u in b["utterances"]] != [0] * len(b["utterances"])
    assert [s["speaker"] for s in b["speakers"]] == [f"SPEAKER_{u['speaker']:02d}" for u in b["utterances"]]
    assert [s["text"] for s in b["speakers"]] == [u["text"] for u in b["utterances"]]
    by_time = [(w["start"], w["speaker"]) for w in b["words"] if w["word"] not in ".,?!"]
    for u in b["utterances"]:
        assert {s for t, s in by_time if u["start"] <= t < u["end"]} <= {u["speaker"]}
    # the first speaker to talk is SPEAKER_00; the digits turn is the other one
    assert b["words"][0]["speaker"] == 0
    digits = [w for w in b["words"] if ref[1][0] <= w["start"] < ref[1][1] and w["word"] not in ".,?!"]
    assert digits and sum(w["speaker"] == 1 for w in digits) >= 0.9 * len(digits)

    # the words are the ones a request without diarize gets
    plain = post(srv, key, path, timestamps="true").json()
    assert plain["text"] == b["text"] and "speakers" not in plain and "speaker" not in plain["words"][0]


def test_back_to_back_turns_are_two_speakers(srv, key, rec):
    path, ref = rec["b2b"]
    b = post(srv, key, path, diarize="true", timestamps="true").json()
    assert b["num_speakers"] == 2, b["utterances"]
    assert agreement(ref, b["words"]) >= 0.9, b["words"]
    # the digits turn (between two reader turns, no pause either side) is the other speaker
    spk = [w["speaker"] for w in b["words"] if w["word"] not in ".,?!"]
    digits = [w["speaker"] for w in b["words"] if ref[1][0] <= w["start"] < ref[1][1] and w["word"] not in ".,?!"]
    reader = [w["speaker"] for w in b["words"] if w["start"] >= ref[2][0] and w["word"] not in ".,?!"]
    assert spk[0] == 0 and digits and sum(s == 1 for s in digits) >= 0.9 * len(digits)
    assert reader and sum(s == 0 for s in reader) >= 0.9 * len(reader)


def test_one_speaker_stays_one(srv, key, rec):
    path, _ = rec["one"]
    b = post(srv, key, path, diarize="true", timestamps="true").json()
    assert b["num_speakers"] == 1
    assert {w["speaker"] for w in b["words"]} == {0}
    assert {s["speaker"] for s in b["speakers"]} == {"SPEAKER_00"}


def test_multichannel_diarizes_each_channel_on_its_own(srv, key, rec, tmp_path):
    """diarize + multichannel: every channel has its own speakers (numbered from 0 in each, as in
    Deepgram); channels[] carries each channel's `speakers` and `num_speakers` as a mono request of it
    would, and the top level has no speaker count (the pair channel, speaker names a voice)."""
    pcm = []
    for name in ("two", "one"):
        with wave.open(str(rec[name][0])) as w:
            pcm.append(w.readframes(w.getnframes()))
    stereo = tmp_path / "stereo.wav"
    write_wav(stereo, interleave(pcm), channels=2)
    b = post(srv, key, stereo, diarize="true", timestamps="true", multichannel="true").json()
    assert "num_speakers" not in b and "speakers" not in b
    c0, c1 = b["channels"]
    assert (c0["num_speakers"], c1["num_speakers"]) == (2, 1)
    assert agreement(rec["two"][1], c0["words"]) >= 0.9
    assert {w["speaker"] for w in c1["words"]} == {0} and {s["speaker"] for s in c1["speakers"]} == {"SPEAKER_00"}
    assert [s["text"] for s in c0["speakers"]] == [u["text"] for u in c0["utterances"]]
    assert {(w["channel"], w["speaker"]) for w in b["words"]} == {(0, 0), (0, 1), (1, 0)}


def test_json_url_form_with_num_speakers(srv, key, rec):
    path, ref = rec["two"]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(path.parent))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        r = requests.post(srv.url + "/v1/listen", headers=srv.auth(key), timeout=120,
                          json={"url": f"http://127.0.0.1:{httpd.server_port}/{path.name}", "diarize": True,
                                "num_speakers": 2, "timestamps": True})
    finally:
        httpd.shutdown()
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["num_speakers"] == 2 and agreement(ref, b["words"]) >= 0.9


def test_lightning_route_with_num_speakers(srv, key, rec):
    path, ref = rec["two"]
    with open(path, "rb") as f:
        r = requests.post(srv.url + "/api/v1/lightning/get_text?diarize=true&num_speakers=2&word_timestamps=true",
                          headers={**srv.auth(key), "Content-Type": "application/octet-stream"}, data=f.read(),
                          timeout=120)
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["status"] == "success"
    assert {w["speaker"] for w in b["words"]} == {0, 1}
    assert agreement(ref, b["words"]) >= 0.9
    assert all(isinstance(u["speaker"], int) for u in b["utterances"])


def test_deepgram_batch_speaker_integers(srv, key, rec):
    path, ref = rec["two"]
    with open(path, "rb") as f:
        r = requests.post(srv.url + "/deepgram/v1/listen?diarize=true&utterances=true&punctuate=true",
                          headers={**srv.auth(key), "Content-Type": "audio/wav"}, data=f.read(), timeout=120)
    assert r.status_code == 200, r.text
    b = r.json()
    words = b["results"]["channels"][0]["alternatives"][0]["words"]
    assert agreement(ref, words) >= 0.9
    utts = b["results"]["utterances"]
    assert {u["speaker"] for u in utts} == {0, 1}
    assert all({w["speaker"] for w in u["words"]} == {u["speaker"]} for u in utts)


def test_callback_job_is_diarized(srv, key, rec):
    path, ref = rec["two"]
    r = post(srv, key, path, diarize="true", num_speakers="2", timestamps="true",
             callback_url="http://127.0.0.1:9/none")
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    deadline = time.time() + 120
    while True:
        job = requests.get(f"{srv.url}/v1/jobs/{job_id}", headers=srv.auth(key), timeout=10).json()
        if job["status"] in ("completed", "failed"):
            break
        assert time.time() < deadline, job
        time.sleep(0.3)
    assert job["status"] == "completed", job
    result = job["result"]
    assert result["num_speakers"] == 2
    assert agreement(ref, result["words"]) >= 0.9


@pytest.mark.parametrize("bad", ["0", "9", "two", "-1"])
def test_bad_num_speakers_is_400(srv, key, rec, bad):
    path, _ = rec["one"]
    r = post(srv, key, path, diarize="true", num_speakers=bad)
    assert r.status_code == 400
    assert r.json()["code"] == "INVALID_PARAMETER" and "num_speakers" in r.json()["error"]
    r = requests.post(srv.url + "/v1/listen", headers=srv.auth(key),
                      json={"url": "http://127.0.0.1:9/a.wav", "diarize": True, "num_speakers": bad}, timeout=30)
    assert r.status_code == 400 and r.json()["code"] == "INVALID_PARAMETER"
    r = requests.post(srv.url + f"/deepgram/v1/listen?diarize=true&num_speakers={bad}",
                      headers={**srv.auth(key), "Content-Type": "audio/wav"}, data=b"RIFF", timeout=30)
    assert r.status_code == 400 and r.json()["err_code"] == "INVALID_QUERY_PARAMETER"
    r = post(srv, key, path, num_speakers=bad)  # checked without diarize too (docs/api.md)
    assert r.status_code == 400 and "num_speakers" in r.json()["error"]


def test_num_speakers_without_diarize_changes_nothing(srv, key, rec):
    path, _ = rec["two"]
    plain, counted = (post(srv, key, path, timestamps="true", **extra).json() for extra in ({}, {"num_speakers": "2"}))
    assert "speakers" not in counted and "speaker" not in counted["utterances"][0]
    assert counted["text"] == plain["text"] and counted["utterances"] == plain["utterances"]


# ---- live streams: speakers labelled final by final (asr/diarize.h, ld_diarize_live) ----

def stream_words(srv, key, path, query, wav):
    """Streams a WAV's PCM (16 kHz) with the query; returns (final word entries, close code)."""
    with wave.open(str(wav)) as w:
        audio = w.readframes(w.getnframes()) + b"\0\0" * 16000  # a second of silence ends the last final
    dg = path.startswith("/deepgram")
    q = query + ("&encoding=linear16&sample_rate=16000" if dg else "")
    msgs, code = asyncio.run(stream_audio(ws_url(srv, path, q), audio, srv.auth(key),
                                          close_msg={"type": "CloseStream" if dg else "close_stream"}))
    if dg:
        return [w for m in msgs if m["type"] == "Results" and m["is_final"]
                for w in m["channel"]["alternatives"][0]["words"]], code
    return [w for m in msgs if m["type"] == "transcription" and m["is_final"] for w in m["words"]], code


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """Turns a stream ends with a final each (pauses over the 800 ms eou_timeout)."""
    d = tmp_path_factory.mktemp("diarize_live")
    two = build(d / "two.wav", [(READER[0], "reader", 1.3), (DIGITS, "digits", 1.3), (READER[1], "reader", 1.3),
                                (READER[2], "reader", 1.3)])
    one = build(d / "one.wav", [(READER[0], "reader", 1.3), (READER[3], "reader", 1.3), (READER[1], "reader", 1.3)])
    return {"two": (d / "two.wav", two), "one": (d / "one.wav", one)}


@pytest.mark.parametrize("path", ["/v1/listen/stream", "/deepgram/v1/listen"])
def test_streams_label_speakers_final_by_final(srv, key, live, path):
    wav, ref = live["two"]
    words, code = stream_words(srv, key, path, "diarize=true", wav)
    assert code == 1000 and words
    assert all(isinstance(w["speaker"], int) and 0 <= w["speaker"] <= 1 for w in words), words
    assert all(0 <= w["speaker_confidence"] <= 1 for w in words)
    assert {w["speaker"] for w in words} == {0, 1}
    assert words[0]["speaker"] == 0  # numbered by first appearance
    assert agreement(ref, words) >= 0.9, words
    # the reader comes back after the digits speaker: the same label, not a third one
    late = [w["speaker"] for w in words if w["start"] > ref[2][0] + 0.1]
    assert late and set(late) == {words[0]["speaker"]}, words


def test_stream_one_speaker_stays_one_and_num_speakers_caps(srv, key, live):
    words, code = stream_words(srv, key, "/v1/listen/stream", "diarize=true", live["one"][0])
    assert code == 1000 and len(words) > 10
    assert {w["speaker"] for w in words} == {0}, words
    words, _ = stream_words(srv, key, "/v1/listen/stream", "diarize=true&num_speakers=1", live["two"][0])
    assert words and {w["speaker"] for w in words} == {0}
    words, _ = stream_words(srv, key, "/v1/listen/stream", "diarize=false", live["two"][0])
    assert words and not any("speaker" in w for w in words)


@pytest.mark.parametrize("ask", [["--diarize"], ["--num-speakers", "2"]])
def test_cli_stream_prints_who_spoke(srv, key, live, ask):
    """`listend stream --diarize`: a line per speaker's run of words, "[start - end] Speaker N: text";
    `--num-speakers N` alone asks for it too."""
    wav, ref = live["two"]
    r = subprocess.run([BIN, "stream", str(wav), *ask, "--no-interim", "--server", srv.url, "--key", key],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [re.match(r"\[ *([\d.]+) - *([\d.]+)\] Speaker (\d): (.*)", x) for x in r.stdout.splitlines()]
    assert lines and all(lines), r.stdout
    who_at = {m[3] for m in lines if float(m[1]) >= ref[1][0] - 0.2 and float(m[2]) <= ref[1][1] + 0.2}
    others = {m[3] for m in lines if float(m[1]) >= ref[1][1] or float(m[2]) <= ref[1][0]}
    assert who_at and others and who_at.isdisjoint(others), r.stdout  # the digits speaker's lines stand apart
    assert lines[0][3] == "1"
    r = subprocess.run([BIN, "stream", str(wav), "--diarize", "--num-speakers", "9", "--server", srv.url, "--key",
                        key], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--num-speakers" in r.stderr


def test_cli_transcribe_num_speakers_implies_diarize(live):
    """`listend transcribe --num-speakers 2` (local) labels speakers without `--diarize`."""
    r = subprocess.run([BIN, "transcribe", "--num-speakers", "2", "--format", "json", "--workers", "1",
                        str(live["two"][0])], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    import json
    b = json.loads(r.stdout)
    u = b["utterances"]
    assert b["num_speakers"] == 2 and u and {x["speaker"] for x in u} == {0, 1}, r.stdout[:500]


@pytest.mark.parametrize("path", ["/v1/listen/stream", "/deepgram/v1/listen"])
def test_stream_bad_diarize_values_are_400(srv, key, path):
    h = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
         "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(), **srv.auth(key)}
    for q, name in (("diarize=maybe", "diarize"), ("diarize=true&num_speakers=9", "num_speakers"),
                    ("diarize=true&num_speakers=0", "num_speakers")):
        r = requests.get(srv.url + path + "?" + q, headers=h, timeout=30)
        assert r.status_code == 400 and name in r.text, (q, r.text)
