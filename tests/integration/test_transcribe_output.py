"""Acceptance (issue #3): the shape of a transcript — JSON fields and their invariants with and
without timestamps/punctuation, and the text, SRT and WebVTT renderings.

Audio: three real clips joined with 0.8 s of silence between them (≈ 13 s), so the transcript
has several utterances, sentence punctuation and subtitles long enough to wrap; where each clip
lies is known, so word times can be checked against it."""
import re

import pytest

from audio_fixtures import audio_cache, listen, ok_json, parse_subtitles, words
from conftest import start_server

CLIPS = ["cathy_arctic_b0011", "cathy_arctic_a0023", "an4_mtxj_cen3"]
PUNCT = {",", ".", "?", "!"}
SLACK = 0.35  # a word may start/end this far outside its clip (VAD padding, engine alignment)


@pytest.fixture(scope="module")
def joined(tmp_path_factory):
    return audio_cache(tmp_path_factory).joined("output3", CLIPS)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("output"), workers=2)
    s.k = s.key("output", rpm=100000, concurrency=100)
    yield s
    s.stop()


def post(srv, joined, **params):
    with open(joined[0], "rb") as f:
        return listen(srv, srv.k, files={"audio": ("joined.wav", f, "audio/wav")}, params=params)


@pytest.fixture(scope="module")
def stamped(srv, joined):
    """(response, body) for timestamps=true with default punctuation."""
    r = post(srv, joined, timestamps="true")
    return r, ok_json(r)


def test_top_level_fields(stamped, joined):
    r, body = stamped
    assert body["request_id"].startswith("req_") and body["request_id"] == r.headers["X-Request-ID"]
    assert isinstance(body["text"], str) and body["text"]
    assert 0 <= body["confidence"] <= 1
    assert abs(body["duration"] - joined[1]) < 0.002, (body["duration"], joined[1])
    assert body["language"] == "en"
    assert isinstance(body["utterances"], list) and body["utterances"]


def test_words_are_ordered_and_inside_the_audio(stamped, joined):
    _r, body = stamped
    ws = body["words"]
    assert ws and all(set(w) >= {"word", "start", "end", "confidence"} for w in ws)
    starts = [w["start"] for w in ws]
    assert starts == sorted(starts)
    for w in ws:
        assert 0 <= w["start"] <= w["end"] <= body["duration"], w
        assert 0 <= w["confidence"] <= 1, w
    # Every spoken word lies in the clip it came from (segment offsets are added right) and every
    # clip has words (no segment lost).
    spans = joined[2]
    hit = set()
    for w in ws:
        if w["word"] in PUNCT:
            continue
        inside = [cid for s, e, cid in spans if s - SLACK <= w["start"] and w["end"] <= e + SLACK]
        assert inside, (w, spans)
        hit.update(inside)
    assert hit == set(CLIPS)


def test_punctuation_entries(stamped):
    _r, body = stamped
    punct = [w for w in body["words"] if w["word"] in PUNCT]
    assert punct, body["words"]
    assert body["words"][-1]["word"] in {".", "?", "!"}
    for w in punct:
        assert w["start"] == w["end"] and w["confidence"] == 1.0, w
    # The text is the word list, punctuation attached to the word before it.
    rebuilt = re.sub(r" ([,.?!])", r"\1", " ".join(w["word"] for w in body["words"]))
    assert rebuilt == body["text"]
    assert body["text"][0].isupper()


def test_utterances_cover_the_text_in_order(stamped):
    _r, body = stamped
    utts = body["utterances"]
    assert all(set(u) >= {"text", "start", "end"} for u in utts)
    assert " ".join(u["text"] for u in utts) == body["text"]
    prev_end = 0.0
    for u in utts:
        assert prev_end <= u["start"] <= u["end"] <= body["duration"], utts
        prev_end = u["end"]
    assert len(utts) >= len(CLIPS)  # 0.8 s gaps always end an utterance


def test_punctuate_false(srv, joined, stamped):
    body = ok_json(post(srv, joined, timestamps="true", punctuate="false"))
    assert body["text"] == body["text"].lower() and not PUNCT & set(body["text"]), body["text"]
    assert all(w["word"] not in PUNCT and w["word"] == w["word"].lower() for w in body["words"])
    assert words(body["text"]) == words(stamped[1]["text"])  # same recognition, only the rendering differs
    assert " ".join(w["word"] for w in body["words"]) == body["text"]


def test_timestamps_false_has_no_words(srv, joined, stamped):
    r = post(srv, joined, timestamps="false")
    body = ok_json(r)
    assert "words" not in body
    assert body["text"] == stamped[1]["text"]
    assert body["utterances"] == stamped[1]["utterances"]
    assert body["request_id"] != stamped[1]["request_id"]


def test_client_request_id_is_used(srv, joined):
    with open(joined[0], "rb") as f:
        r = listen(srv, srv.k, files={"audio": f}, headers={"X-Request-ID": "debug-123"})
    assert ok_json(r)["request_id"] == "debug-123"


def test_format_text(srv, joined, stamped):
    r = post(srv, joined, format="text")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.headers["X-Request-ID"].startswith("req_")
    assert r.text.strip() == stamped[1]["text"]


def check_cues(cues, body):
    assert len(cues) >= len(CLIPS), cues
    prev_end = 0.0
    for start, end, lines in cues:
        assert prev_end <= start < end <= body["duration"] + 0.001, cues
        assert len(lines) <= 2 and all(len(line) <= 42 for line in lines), lines
        prev_end = end
    # Same words as the JSON transcript, in the same order.
    assert words(" ".join(" ".join(c[2]) for c in cues)) == words(body["text"])
    # Each cue starts near an utterance or a word: compare with the first word's time.
    assert abs(cues[0][0] - body["words"][0]["start"]) < 0.05


@pytest.fixture(scope="module")
def subtitles(srv, joined):
    return {fmt: post(srv, joined, format=fmt) for fmt in ("srt", "vtt")}


@pytest.mark.parametrize("fmt,ctype", [("srt", "application/x-subrip"), ("vtt", "text/vtt")])
def test_subtitles_are_well_formed(subtitles, stamped, fmt, ctype):
    r = subtitles[fmt]
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith(ctype), r.headers
    check_cues(parse_subtitles(r.text, fmt), stamped[1])


def test_srt_and_vtt_have_the_same_cues(subtitles):
    assert parse_subtitles(subtitles["srt"].text, "srt") == parse_subtitles(subtitles["vtt"].text, "vtt")
