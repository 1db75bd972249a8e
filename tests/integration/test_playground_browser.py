"""The playground in a real browser: Debian's chromium, headless, driven by
puppeteer-core (tests/browser, pinned in its package-lock.json) against the real
server. A person's three paths: upload a real recording and read the transcript
from the page; talk into the microphone (chromium's fake capture device playing
a real recording) and see the final text; use a bad or expired key and see the
server's own error message.

Without chromium, node or the npm packages these tests FAIL with the reason
(scripts/bootstrap.sh installs chromium; `npm ci` runs here from the lock file):
a browser test that cannot run must never pass silently.
"""
import json
import os
import shutil
import subprocess

import pytest
import requests

from audio_fixtures import check_channels, join_clips, stereo_pcm, write_wav
from conftest import EVAL_DIR, ROOT, start_server

BROWSER_DIR = os.path.join(ROOT, "tests", "browser")
CLIP = os.path.join(EVAL_DIR, "ps_librivox_sns01_0890.wav")
REFERENCE = "unless to be rather cold hearted and rather selfish is to be ill disposed".split()


@pytest.fixture(scope="module")
def browser_ready():
    if not shutil.which("chromium"):
        pytest.fail("chromium is not installed: run scripts/bootstrap.sh (Debian package chromium)")
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.fail("node/npm are not installed: the browser tests drive chromium with puppeteer-core (Node >= 18)")
    if not os.path.isfile(CLIP):
        pytest.fail(f"the real recording {CLIP} is missing (shared/eval/real beside the checkout)")
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "puppeteer-core")):
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BROWSER_DIR, capture_output=True, text=True,
                           timeout=600)
        if r.returncode:
            pytest.fail(f"npm ci in tests/browser failed (puppeteer-core from the lock file):\n{r.stderr[-2000:]}")


@pytest.fixture(scope="module")
def srv(tmp_path_factory, browser_ready):
    s = start_server(tmp_path_factory.mktemp("playground"), workers=1)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def mic_wav(tmp_path_factory):
    """The clip and then 1.5 s of silence, so the stream ends an utterance while it loops."""
    out = str(tmp_path_factory.mktemp("mic") / "mic.wav")
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", CLIP, "-af", "apad=pad_dur=1.5",
                    "-ar", "16000", "-ac", "1", out], check=True)
    return out


def drive(scenario, srv, key, *paths):
    cmd = ["node", os.path.join(BROWSER_DIR, "playground.mjs"), scenario, srv.url, key, *paths]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, f"the browser could not be driven:\n{r.stderr[-3000:]}"
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["problems"] == [], out["problems"]  # no script errors, no CSP violations
    return out


def overlap(text):
    got = {w.strip(".,?!").lower() for w in text.split()}
    return sum(w in got for w in REFERENCE) / len(REFERENCE)


def test_upload_a_real_recording(srv, tmp_path):
    """A WAV, then in the same page a PBX's headerless mu-law file (call.ul): the page tells the server
    its encoding by the name. The words can be played from with the keyboard, the drop zone is a named button
    and the microphone's state and finals are announced to screen readers. At phone widths (320-414 px) the page with its transcript does not scroll
    sideways."""
    ul = tmp_path / "call.ul"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", CLIP, "-ar", "8000", "-f", "mulaw", str(ul)],
                   check=True)
    key = srv.key("browser")
    out = drive("upload", srv, key, CLIP, str(ul))
    assert out["statusClass"] == "status ok", out
    assert overlap(out["transcript"]) >= 0.6, out["transcript"]
    words = out["words"]
    assert len(words) >= 8 and all(w["start"] >= 0 for w in words)
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)
    assert all(any(c in w["cls"] for c in ("c-hi", "c-mid", "c-lo")) for w in words)  # confidence shading
    assert out["seeked"], out  # clicking a word moved the player to it
    # the keyboard reaches the words: one Tab stop (the word clicked), arrow keys move, Enter plays from there
    assert out["tabbableWords"] == 1 and out["keyFocus"] == 4 and out["keySeeked"], out
    # a screen reader: the drop zone is a named button; the mic state and the finals are announced
    assert out["drop"]["role"] == "button" and "file" in out["drop"]["name"], out["drop"]
    assert all(v == "polite" for v in out["live"].values()), out["live"]
    assert out["srt"].startswith("1\n00:00:0") and " --> " in out["srt"]
    assert "5.3 s of audio" in out["meta"] and "requests left this minute" in out["usage"]
    assert key not in srv.log()  # the key never reaches the log (header / subprotocol only)
    assert out["second"]["statusClass"] == "status ok", out["second"]
    assert overlap(out["second"]["transcript"]) >= 0.5, out["second"]["transcript"]
    assert out["overflow"] == {"320": 0, "375": 0, "414": 0}, out["overflow"]  # phones: no sideways scrolling


@pytest.fixture(scope="module")
def mic_run(srv, mic_wav):
    """One browser for the microphone: talking, then (test_live_microphone_stop_while_connecting_... and the
    next two) its edges -- Stop while connecting, a refused option, a quota spent mid-stream (a second key
    holding ~2 s of audio a day), the server gone, an insecure origin."""
    key = srv.key("browser-mic")
    out = drive("mic", srv, key, mic_wav, "-", srv.key("browser-mic-quota", hours_per_day=0.0006))
    out["key"] = key
    return out


def test_live_microphone_shows_final_text(srv, mic_run):
    out, key = mic_run, mic_run["key"]
    assert out["state"] == "listening" and out["error"] == "", out
    assert out["states"][:2] == ["connecting", "listening"] and out["endState"] == "idle", out
    assert out["interimCount"] > 0 and out["level"] > 0, out
    assert out["finalBeforeStop"], "no final at the pause after the recording"
    assert overlap(out["final"]) >= 0.5, out["final"]
    assert key not in srv.log()


def test_live_microphone_who_spoke(srv, tmp_path):
    """Two people talk into the microphone in turn (a man, then a woman; pauses over the stream's 800 ms end
    of utterance): with the microphone's "who spoke" checked, each final line is labelled, and the two
    voices' lines carry different labels. (Two men close in voice can stay one label through the browser's
    audio processing: docs/api.md, live streams.)"""
    key = srv.key("browser-mic-who")
    talk = str(tmp_path / "talk.wav")
    join_clips(["ps_librivox_sns01_0890", "cathy_arctic_a0023"], talk, gap=1.3)
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", talk, "-af", "apad=pad_dur=1.5",
                    str(tmp_path / "mic.wav")], check=True)
    out = drive("micwho", srv, key, str(tmp_path / "mic.wav"))
    assert out["error"] == "" and out["endState"] == "idle", out
    lines = out["lines"]
    assert lines and all(x["who"].startswith("Speaker ") for x in lines), lines
    said = [(x["who"], set(x["text"].lower().replace(".", "").replace(",", "").split())) for x in lines]
    man = {who for who, ws in said if {"rather", "selfish", "cold"} & ws}
    woman = {who for who, ws in said if {"combination", "canadian", "capital", "privileges"} & ws}
    assert man and woman and man.isdisjoint(woman), lines
    assert lines[0]["who"] == "Speaker 1", lines


def test_who_spoke_and_each_channel(srv, tmp_path):
    """A meeting: with "who spoke" checked, the reader's and the digit speaker's sentences carry different
    labels, and the TXT/SRT/VTT exports name them (VTT as voice tags). A call: with "each channel" checked,
    each side's sentence is labelled Left / Right and holds only its own words."""
    key = srv.key("browser-labels")
    meeting = str(tmp_path / "meeting.wav")
    join_clips(["ps_librivox_sns01_0870", "sphinx4_digits_10001-90210-01803", "ps_librivox_sns01_0880"], meeting,
               gap=0.6)
    call = tmp_path / "call.wav"
    write_wav(call, stereo_pcm(), channels=2)
    both = drive("labels", srv, key, meeting, str(call))
    out = both["speakers"]
    assert out["statusClass"] == "status ok", out
    labels = [u["who"] for u in out["utts"]]
    digits = [u["who"] for u in out["utts"] if {"zero", "nine", "eight"} & set(u["words"].lower().split())]
    reader = [u["who"] for u in out["utts"] if {"dashwood", "disposed"} & set(u["words"].lower().split())]
    assert digits and reader and set(digits).isdisjoint(reader), out["utts"]
    assert all(w.startswith("Speaker ") for w in labels), labels
    assert "<v Speaker 1>" in out["exports"]["vtt"] and "<v Speaker 2>" in out["exports"]["vtt"], out["exports"]
    assert "Speaker 2: " in out["exports"]["srt"] and out["exports"]["txt"].startswith("Speaker 1: "), out["exports"]

    out = both["channels"]
    assert out["statusClass"] == "status ok", out
    sides = {u["who"]: u["words"] for u in out["utts"]}
    assert set(sides) == {"Left", "Right"}, out["utts"]
    check_channels(sides["Left"], sides["Right"])


def test_hide_card_data(srv, tmp_path):
    """A card number read in three groups (a real speaker: TIDIGITS' "two nine three four zero", three times):
    with "hide card/personal data" checked the page shows a token and no digit, in the words and the exports."""
    key = srv.key("browser-redact")
    with open("/usr/share/pocketsphinx/test/data/tidigits/dhd.2934z.raw", "rb") as f:
        pcm = f.read() * 3
    card = tmp_path / "card.wav"
    write_wav(card, pcm)
    out = drive("redact", srv, key, str(card))
    assert out["statusClass"] == "status ok", out
    shown = " ".join(u["words"] for u in out["utts"]) + " " + " ".join(out["exports"].values())
    assert "[CREDITCARDNUMBER_1]" in shown, out
    assert not {"two", "nine", "three", "four", "zero"} & set(shown.lower().replace(".", " ").split()), out


@pytest.mark.parametrize("kind", ["expired", "invalid"])
def test_bad_key_shows_the_servers_error(srv, kind):
    if kind == "expired":
        key, message = srv.key("browser-expired", expires="2020-01-01"), "License expired (LICENSE_EXPIRED)"
    else:
        key, message = "not-a-key", "Invalid license key (INVALID_LICENSE)"
    out = drive("badkey", srv, key, CLIP)
    assert message in out["usage"], out
    assert out["statusClass"] == "status bad" and message in out["status"], out
    assert out["micState"] == "error" and message in out["micError"], out


def test_upload_cancelled_or_replaced_is_aborted_and_not_charged(srv, tmp_path):
    """A minute of audio is transcribing: Cancel (shown while it runs) aborts the request; transcribing it
    again and then another file aborts the first too (its answer would not be shown). The server sees the
    client go and charges neither: the key's day holds only the short file's seconds."""
    long_wav = str(tmp_path / "long.wav")
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-stream_loop", "11", "-i", CLIP, "-ar", "16000",
                    "-ac", "1", long_wav], check=True)
    key = srv.key("browser-cancel")
    out = drive("cancel", srv, key, long_wav, CLIP)
    assert out["cancelShown"], out
    assert out["cancelled"]["status"] == "Cancelled." and not out["cancelled"]["cancelShown"], out
    assert out["cancelled"]["transcribeEnabled"], out
    assert out["replaced"]["statusClass"] == "status ok" and overlap(out["replaced"]["transcript"]) >= 0.6, out
    assert not out["replaced"]["cancelShown"], out
    assert out["posts"] == ["failed net::ERR_ABORTED", "failed net::ERR_ABORTED", "finished 200"], out["posts"]
    usage = requests.get(srv.url + "/v1/license", headers=srv.auth(key), timeout=10).json()["usage"]
    assert 5.0 <= usage["audio_seconds_today"] <= 6.0, usage  # the short clip (5.3 s) only



def test_live_microphone_stop_while_connecting_and_server_gone(mic_run):
    """Stop pressed while the microphone is still connecting -- as the worklet loads, as the microphone is
    granted, as the socket opens -- leaves the page idle at once (not "listening" with nothing sent), with no
    error, the microphone's tracks stopped and the socket closed. A server that cannot be reached is said to
    be so, not reported as a microphone problem."""
    for at, r in mic_run["stops"].items():
        assert r["stopped"], (at, r)  # the step was reached and Stop pressed there
        assert r["state"] == "idle" and r["error"] == "", (at, r)
        assert r["startEnabled"] and not r["stopEnabled"], (at, r)
        assert r["liveTracks"] == 0 and r["openSockets"] == 0, (at, r)
    down = mic_run["down"]
    assert down["state"] == "error" and down["error"].startswith("Cannot reach the server"), down
    assert "icrophone" not in down["error"] and down["liveTracks"] == 0, down
    assert down["usage"].startswith("Cannot reach the server"), down


def test_live_microphone_error_midstream_refreshes_usage(mic_run):
    """A key whose day holds about 2 s of audio talks on past it: the server's QUOTA_EXCEEDED is shown, the
    usage line is asked again and says the day is spent, and the words still interim when the stream
    ended stay as plain text marked not final, not in the grey of text still coming."""
    out = mic_run["quota"]
    assert out["state"] == "error" and "QUOTA_EXCEEDED" in out["error"], out
    assert out["usageClass"] == "usage bad" and "0.0 s left" in out["usage"], out
    assert out["interim"] == "" and out["startEnabled"], out


def test_live_microphone_refused_option_and_insecure_origin(mic_run):
    """A stream refused for an option (language "xx"; browsers hide the handshake's answer) says which options
    were sent, not just "see its log". On plain http:// from a host name (not localhost) browsers give pages
    no microphone: the page says so beside Start before anyone clicks, instead of a script error after."""
    assert 'language "xx"' in mic_run["refused"], mic_run["refused"]
    ins = mic_run["insecure"]
    assert ins["secure"] is False, ins
    assert "https://" in ins["note"] and "localhost" in ins["note"] and not ins["startEnabled"], ins
