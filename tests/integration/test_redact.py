"""Redaction (redact_pii / redact_pci, Deepgram's redact): a real speaker reading digits (TIDIGITS' "two nine
three four zero", pocketsphinx-testdata) joined two or three times, as a phone or card number read in groups.
Batch (JSON, text, SRT), jobs, Deepgram's routes, live streams (interims and finals) and the CLI must not show the
digits once asked to hide them, and must show them when not asked (so each check can fail)."""
import asyncio
import io
import os
import re
import subprocess
import wave

import pytest
import requests

from audio_fixtures import stream_audio, ws_url
from conftest import BIN, EVAL_DIR, start_server
from webhook_receiver import WebhookReceiver

TIDIGITS = "/usr/share/pocketsphinx/test/data/tidigits/dhd.2934z.raw"  # 2.4 s, "two nine three four zero"
DIGIT = re.compile(r"\b(zero|oh|one|two|three|four|five|six|seven|eight|nine|\d+)\b", re.I)


def wav(groups):
    with open(TIDIGITS, "rb") as f:
        pcm = f.read() * groups  # each copy keeps its own silence: ~1 s between groups
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm)
    return out.getvalue()


@pytest.fixture(scope="module")
def srv(shared_server):
    shared_server.k = shared_server.key("redact", rpm=1000)
    return shared_server


def post(srv, audio, path="/v1/listen", **params):
    return requests.post(srv.url + path, headers={**srv.auth(srv.k), "Content-Type": "audio/wav"}, params=params,
                         data=audio, timeout=60)


def wav_bytes(samples, channels=1):
    """16 kHz 16-bit WAV bytes of interleaved `samples` (an array of "h")."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(samples.tobytes())
    return out.getvalue()


def digits(text):
    return DIGIT.findall(text)


def test_batch_hides_card_and_phone_numbers(srv):
    card, phone = wav(3), wav(2)
    plain = post(srv, card, timestamps="true").json()
    assert len(digits(plain["text"])) >= 12, plain["text"]  # the recognizer hears the digits
    assert "redacted_entities" not in plain
    for extra in ({}, {"numerals": "true"}):
        b = post(srv, card, redact_pci="true", timestamps="true", **extra).json()
        assert digits(b["text"]) == [] and "[CREDITCARDNUMBER_1]" in b["text"], b["text"]
        assert b["redacted_entities"] == ["[CREDITCARDNUMBER_1]"]
        tok = [w for w in b["words"] if w["word"] == "[CREDITCARDNUMBER_1]"]
        assert len(tok) == 1 and tok[0]["start"] < 0.5 and tok[0]["end"] > 6.0, b["words"]  # spans all three groups
        assert not any(digits(u["text"]) for u in b["utterances"]), b["utterances"]
    b = post(srv, phone, redact_pii="true").json()
    assert digits(b["text"]) == [] and b["redacted_entities"] == ["[PHONENUMBER_1]"], b
    srt = post(srv, card, redact_pci="true", format="srt").text
    assert "[CREDITCARDNUMBER_1]" in srt and not re.search(r"\b(two|nine|three|four|zero)\b", srt, re.I), srt
    # a JSON body (the url form takes options there too): a list, as Deepgram's SDKs send it
    r = requests.post(srv.url + "/v1/listen", headers=srv.auth(srv.k), files={"audio": ("c.wav", card, "audio/wav")},
                      data={"redact": "pci,ssn"}, timeout=60)
    assert r.status_code == 200 and digits(r.json()["text"]) == [], r.text
    # the same field twice (curl -F redact=pci -F redact=ssn): both count
    r = requests.post(srv.url + "/v1/listen", headers=srv.auth(srv.k), files={"audio": ("c.wav", card, "audio/wav")},
                      data=[("redact", "pci"), ("redact", "ssn")], timeout=60)
    assert r.status_code == 200 and r.json()["redacted_entities"] == ["[CREDITCARDNUMBER_1]"], r.text


def test_multichannel_redacts_each_channel_on_its_own(srv):
    """A call: the caller (left) reads a phone number in two groups a second apart while the agent (right) says
    "yes" in the gap. Subtitles merge both sides in time order; each side must be redacted on its own words (the
    agent's "yes" between the groups must not split the number), and JSON lists each channel's tokens."""
    import array
    with open(TIDIGITS, "rb") as f:
        left = array.array("h", f.read() * 2)
    with open(os.path.join(EVAL_DIR, "an4_fash_an251.wav"), "rb") as f:  # "yes", 1 s
        yes = array.array("h", f.read()[44:])
    right = array.array("h", bytes(2 * len(left)))
    at = int(1.6 * 16000)  # in the caller's pause
    right[at:at + len(yes)] = yes
    call = wav_bytes(array.array("h", (v for pair in zip(left, right) for v in pair)), channels=2)
    plain = post(srv, call, multichannel="true", format="srt").text
    assert len(digits(plain)) >= 8 and "yes" in plain.lower(), plain  # both sides heard
    srt = post(srv, call, multichannel="true", format="srt", redact_pii="true").text
    said = " ".join(line for line in srt.splitlines() if line and "-->" not in line and not line.isdigit())
    assert "[PHONENUMBER_1]" in said and digits(said) == [] and "yes" in said.lower(), srt
    b = post(srv, call, multichannel="true", redact_pii="true").json()
    assert b["channels"][0]["redacted_entities"] == ["[PHONENUMBER_1]"] and b["channels"][1]["redacted_entities"] == []
    assert b["redacted_entities"] == ["[PHONENUMBER_1]"] and digits(b["text"]) == [], b


def test_entity_spanning_utterances_joins_them(srv):
    """A phone number read in two groups, the second run straight into "go forward ten meters" (one
    utterance): the token takes the second utterance's head, and the rest joins the first utterance (it kept
    its old start, inside the token: utterances, OpenAI segments and speaker turns overlapped)."""
    import array
    with open(TIDIGITS, "rb") as f:
        digits_pcm = array.array("h", f.read())
    with open("/usr/share/pocketsphinx/test/data/goforward.raw", "rb") as f:
        go = array.array("h", f.read())
    loud = [i for i, v in enumerate(digits_pcm) if abs(v) > 300]
    head = next(i for i, v in enumerate(go) if abs(v) > 300)
    audio = wav_bytes(digits_pcm + digits_pcm[:loud[-1] - 1600] + go[head + 3200:])  # no pause: "zero" "go"
    plain = post(srv, audio, timestamps="true").json()
    assert len(plain["utterances"]) == 2 and "forward" in plain["utterances"][1]["text"], plain["utterances"]
    for extra in ({}, {"diarize": "true"}):
        b = post(srv, audio, redact_pii="true", timestamps="true", **extra).json()
        assert b["redacted_entities"] == ["[PHONENUMBER_1]"], b
        us = b["utterances"]
        if not extra:
            assert len(us) == 1 and us[0]["text"].startswith("[PHONENUMBER_1] go forward"), us
        for a, z in zip(us, us[1:]):
            assert a["end"] <= z["start"], us
        for u in us:  # each starts at its first word
            assert any(w["start"] == u["start"] for w in b["words"] if w["word"] == u["text"].split()[0].rstrip(".,?!")), (u, b)
        if extra:
            assert [(t["start"], t["end"]) for t in b["speakers"]] == [(u["start"], u["end"]) for u in us], b
    r = requests.post(srv.url + "/v1/audio/transcriptions", headers=srv.auth(srv.k),
                      files={"file": ("a.wav", audio)},
                      data={"model": "whisper-1", "response_format": "verbose_json", "redact_pii": "true"}, timeout=60)
    segs = r.json()["segments"]
    assert [(s["start"], s["text"]) for s in segs] == [(u["start"], u["text"]) for u in
                                                      post(srv, audio, redact_pii="true").json()["utterances"]]
    assert all(a["end"] <= z["start"] for a, z in zip(segs, segs[1:])), segs


def test_deepgram_redact(srv):
    card = wav(3)
    r = post(srv, card, path="/deepgram/v1/listen", redact="pci")
    assert r.status_code == 200, r.text
    alt = r.json()["results"]["channels"][0]["alternatives"][0]
    assert digits(alt["transcript"]) == [] and "[CREDITCARDNUMBER_1]" in alt["transcript"], alt["transcript"]
    assert not any(digits(w["word"]) or digits(w["punctuated_word"]) for w in alt["words"]), alt["words"]
    r = post(srv, card, path="/deepgram/v1/listen", redact="numbers")
    assert "[NUMBER_1]" in r.json()["results"]["channels"][0]["alternatives"][0]["transcript"], r.text
    # listend's own spelling on Deepgram's route too (as on its live streams): it was ignored, digits returned
    r = post(srv, card, path="/deepgram/v1/listen", redact_pci="true")
    alt = r.json()["results"]["channels"][0]["alternatives"][0]
    assert r.status_code == 200 and digits(alt["transcript"]) == [], alt["transcript"]
    plain = post(srv, card, path="/deepgram/v1/listen").json()["results"]["channels"][0]["alternatives"][0]
    assert len(digits(plain["transcript"])) >= 12, plain["transcript"]
    # what cannot be done is refused, not silently left in the transcript
    r = post(srv, card, path="/deepgram/v1/listen", redact="phi")
    assert r.status_code == 400 and "phi" in r.json()["err_msg"], r.text
    r = post(srv, card, redact_pci="maybe")
    assert r.status_code == 400 and r.json()["code"] == "INVALID_PARAMETER" and "redact_pci" in r.json()["error"]


def stream(srv, path, query, audio):
    msgs, code = asyncio.run(stream_audio(ws_url(srv, path, query), audio + b"\0\0" * 16000, srv.auth(srv.k)))
    assert code == 1000, msgs
    return [m for m in msgs if m.get("type") in ("transcription", "Results")]


def test_stream_hides_digits_in_interims_and_finals(srv):
    pcm = wav(3)[44:]
    plain = stream(srv, "/v1/listen/stream", "", pcm)
    assert len(digits(" ".join(m["transcript"] for m in plain if m["is_final"]))) >= 12, plain
    msgs = stream(srv, "/v1/listen/stream", "redact_pci=true&interim_results=true", pcm)
    finals = [m for m in msgs if m["is_final"] and m["transcript"]]
    assert finals and len(msgs) > len(finals), msgs  # interims were sent too
    for m in msgs:  # no message shows two digits in a row (an interim may end in one)
        assert not re.search(r"\b(zero|oh|one|two|three|four|five|six|seven|eight|nine)\s+"
                             r"(zero|oh|one|two|three|four|five|six|seven|eight|nine)\b", m["transcript"], re.I), m
    for m in finals:
        assert digits(m["transcript"]) == [], m
    tokens = [t for m in finals for t in m["redacted_entities"]]
    assert tokens and all(t.startswith("[CREDITCARDNUMBER_") for t in tokens), finals
    assert tokens == [f"[CREDITCARDNUMBER_{i + 1}]" for i in range(len(tokens))]  # numbered on across finals
    assert all(w["word"] in tokens for m in finals for w in m["words"] if w["word"].startswith("["))
    # a phone number read in two groups a second apart: two finals of five digits, each hidden with PII alone
    msgs = stream(srv, "/v1/listen/stream", "redact_pii=true", wav(2)[44:])
    finals = [m for m in msgs if m["is_final"] and m["transcript"]]
    assert finals and all(digits(m["transcript"]) == [] for m in finals), finals
    assert all(m["redacted_entities"] for m in finals), finals  # (the second group, with the first's last
    # words as context, may read as 9 digits: an SSN token)
    # Deepgram live: redact=pci the same way
    dg = stream(srv, "/deepgram/v1/listen", "redact=pci&encoding=linear16&sample_rate=16000", pcm)
    text = " ".join(m["channel"]["alternatives"][0]["transcript"] for m in dg if m["is_final"])
    assert "[CREDITCARDNUMBER_1]" in text and digits(text) == [], text
    r = requests.get(srv.url + "/v1/listen/stream?redact_pii=yes", headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", **srv.auth(srv.k)}, timeout=30)
    assert r.status_code == 400 and "redact_pii" in r.text


def test_job_result_is_redacted(tmp_path):
    s = start_server(tmp_path / "srv", "--allow-private-urls")
    try:
        key = s.key("redact-jobs")
        with WebhookReceiver() as rx:
            r = requests.post(s.url + "/v1/listen", headers=s.auth(key),
                              files={"audio": ("card.wav", wav(3), "audio/wav")},
                              data={"callback_url": rx.url("/done"), "redact_pci": "true", "numerals": "true"},
                              timeout=30)
            assert r.status_code == 202, r.text
            result = rx.wait_for(1, job_id=r.json()["job_id"])[0].json()["result"]
            assert digits(result["text"]) == [] and result["redacted_entities"] == ["[CREDITCARDNUMBER_1]"], result
    finally:
        s.stop()


def test_cli_redact(srv, tmp_path):
    f = tmp_path / "card.wav"
    f.write_bytes(wav(3))
    for mode in ([], ["--server", srv.url, "--key", srv.k]):
        r = subprocess.run([BIN, "transcribe", "--redact", "pci", "--format", "text", *mode, str(f)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "[CREDITCARDNUMBER_1]" in r.stdout and not digits(r.stdout), (mode, r.stdout,
                                                                                                     r.stderr)
    r = subprocess.run([BIN, "transcribe", "--redact", "phi", str(f)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "phi" in r.stderr
    # listend stream --redact: the stream route's redact list (as Deepgram spells it), interims and finals
    r = subprocess.run([BIN, "stream", "--server", srv.url, "--key", srv.k, "--redact", "pci", "--json", str(f)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "[CREDITCARDNUMBER_1]" in r.stdout, (r.stdout, r.stderr)
    assert not re.search(r"\b(two|nine|three|four|zero)\s+(two|nine|three|four|zero)\b", r.stdout, re.I), r.stdout
