"""multichannel=true (issue 14): each channel of a file is transcribed on its own.

The stereo files are made at test time from two different real recordings of the eval set
(left = one speaker's clip, right = another's, the right one starting later so the two
overlap in time as a call would). Each channel's transcript must carry its own clip's words
and not the other's; the mono downmix of the same file is the baseline that mixes both.
"""
import asyncio
import os
import re
import subprocess

import pytest
import requests
from audio_fixtures import (RIGHT_DELAY_S, LocalHTTP, check_channels, clip_path, error, ffmpeg, interleave, listen,
                            manifest, ok_json, read_wav_pcm, recall, stereo_pcm, stream_audio, unique_refs, words,
                            write_wav, ws_url)
from audio_fixtures import CALL_LEFT as LEFT
from audio_fixtures import CALL_RIGHT as RIGHT
from conftest import BIN, start_server
from webhook_receiver import WebhookReceiver


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("mc"), "--allow-private-urls", workers=2)
    s.k = s.key(rpm=6000)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def stereo(tmp_path_factory):
    d = tmp_path_factory.mktemp("stereo")
    path = d / "call.wav"
    write_wav(path, stereo_pcm(), channels=2)
    return str(path)


def test_stereo_upload_gives_one_transcript_per_channel(srv, stereo):
    with open(stereo, "rb") as f:
        r = listen(srv, srv.k, files={"audio": ("call.wav", f)}, data={"multichannel": "true", "timestamps": "true"})
    body = ok_json(r)
    chans = body["channels"]
    assert [c["channel"] for c in chans] == [0, 1]
    check_channels(chans[0]["text"], chans[1]["text"])
    # words and utterances carry their channel, at the top level and per channel
    for c in chans:
        assert c["words"] and all(w["channel"] == c["channel"] for w in c["words"])
        assert c["utterances"] and all(u["channel"] == c["channel"] for u in c["utterances"])
    assert len(body["words"]) == sum(len(c["words"]) for c in chans)
    # by start time; a punctuation entry (start == end) stays after the word it follows
    starts = [w["start"] for w in body["words"] if w["word"] not in ".,?!"]
    assert starts == sorted(starts)
    assert {w["channel"] for w in body["words"]} == {0, 1}
    # right channel speech starts after the delay; the top level is in time order
    assert chans[1]["words"][0]["start"] >= RIGHT_DELAY_S - 0.3
    ustarts = [u["start"] for u in body["utterances"]]
    assert ustarts == sorted(ustarts)
    assert body["text"] == " ".join(u["text"] for u in body["utterances"])
    m = manifest()
    assert abs(body["duration"] - max(m[LEFT][0], RIGHT_DELAY_S + m[RIGHT][0])) < 0.1


def test_downmix_without_multichannel_mixes_both(srv, stereo):
    """The control: without the option the two voices are one mono mix and no channels appear."""
    with open(stereo, "rb") as f:
        body = ok_json(listen(srv, srv.k, files={"audio": ("call.wav", f)}))
    assert "channels" not in body


def test_mono_file_is_one_channel(srv):
    with open(clip_path(LEFT), "rb") as f:
        body = ok_json(listen(srv, srv.k, files={"audio": ("a.wav", f)}, data={"multichannel": "true"}))
    assert len(body["channels"]) == 1
    assert body["channels"][0]["text"] == body["text"]
    assert all(u["channel"] == 0 for u in body["utterances"])


def test_raw_interleaved_pcm_and_compressed_stereo(srv, stereo, tmp_path):
    # raw body, linear16 with channels=2
    r = listen(srv, srv.k, params={"multichannel": "true", "encoding": "linear16", "channels": "2",
                                   "sample_rate": "16000"},
               data=stereo_pcm(), headers={"Content-Type": "application/octet-stream"})
    chans = ok_json(r)["channels"]
    check_channels(chans[0]["text"], chans[1]["text"])
    # a lossy stereo container (Ogg Opus at 48 kHz) splits the same way
    opus = tmp_path / "call.opus"
    ffmpeg("-i", stereo, "-c:a", "libopus", "-b:a", "96k", "-ac", "2", opus)
    with open(opus, "rb") as f:
        r = listen(srv, srv.k, params={"multichannel": "true"}, data=f.read(), headers={"Content-Type": "audio/ogg"})
    chans = ok_json(r)["channels"]
    check_channels(chans[0]["text"], chans[1]["text"])


def test_text_and_srt_formats_read_in_time_order(srv, stereo):
    with open(stereo, "rb") as f:
        data = f.read()
    r = listen(srv, srv.k, params={"multichannel": "true", "format": "text"}, data=data,
               headers={"Content-Type": "audio/wav"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    a, b = unique_refs()
    assert recall(words(r.text), a) >= 0.5 and recall(words(r.text), b) >= 0.5
    r = listen(srv, srv.k, params={"multichannel": "true", "format": "srt"}, data=data,
               headers={"Content-Type": "audio/wav"})
    assert r.status_code == 200 and "-->" in r.text
    # each cue punctuated and cased as its channel's utterances are (the other channel's overlapping words
    # used to decide this one's sentence ends: a lost full stop, a lower-case start)
    j = ok_json(listen(srv, srv.k, params={"multichannel": "true"}, data=data, headers={"Content-Type": "audio/wav"}))
    cues = " ".join(line for line in r.text.splitlines() if line and "-->" not in line and not line.isdigit())
    sentences = [u["text"] for u in j["utterances"]]
    assert sorted(cues.split()) == sorted(" ".join(sentences).split()), (cues, sentences)
    # cues by start time across channels (WebVTT requires it): a long utterance cut into several cues used to
    # put all its cues before the other channel's first one
    for fmt in ("srt", "vtt"):
        r = listen(srv, srv.k, params={"multichannel": "true", "format": fmt}, data=data,
                   headers={"Content-Type": "audio/wav"})
        starts = [line.split(" --> ")[0].replace(",", ".") for line in r.text.splitlines() if " --> " in line]
        assert len(starts) >= 3 and starts == sorted(starts), (fmt, r.text)


def test_bad_values_are_400(srv, stereo, tmp_path):
    r = listen(srv, srv.k, params={"multichannel": "maybe"}, data=b"x", headers={"Content-Type": "audio/wav"})
    assert "multichannel" in error(r, 400, "INVALID_PARAMETER")["error"]
    r = listen(srv, srv.k, params={"multichannel": "true", "encoding": "linear16", "channels": "9"},
               data=b"\0" * 3200, headers={"Content-Type": "application/octet-stream"})
    assert "channels" in error(r, 400, "INVALID_PARAMETER")["error"]
    # interleaved raw audio without multichannel is refused, not silently mixed up
    r = listen(srv, srv.k, params={"encoding": "linear16", "channels": "2"}, data=stereo_pcm(),
               headers={"Content-Type": "application/octet-stream"})
    assert "multichannel" in error(r, 400, "INVALID_PARAMETER")["error"]
    # more channels than the limit: 10-channel WAV
    ten = tmp_path / "ten.wav"
    write_wav(ten, interleave([read_wav_pcm(clip_path(LEFT))[:32000]] * 10), channels=10)
    with open(ten, "rb") as f:
        r = listen(srv, srv.k, files={"audio": ("ten.wav", f)}, data={"multichannel": "true"})
    body = error(r, 400, "INVALID_PARAMETER")
    assert "10 channels" in body["error"] and "8" in body["error"]


def test_deepgram_batch_has_one_results_channel_per_channel(srv, stereo):
    with open(stereo, "rb") as f:
        r = requests.post(srv.url + "/deepgram/v1/listen", params={"multichannel": "true", "utterances": "true",
                                                                   "punctuate": "true"},
                          headers={"Authorization": f"Token {srv.k}", "Content-Type": "audio/wav"}, data=f.read(),
                          timeout=180)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["metadata"]["channels"] == 2
    chans = body["results"]["channels"]
    assert len(chans) == 2
    t0, t1 = (c["alternatives"][0]["transcript"] for c in chans)
    check_channels(t0, t1)
    for c in chans:
        assert all("punctuated_word" in w for w in c["alternatives"][0]["words"])
    utts = body["results"]["utterances"]
    assert {u["channel"] for u in utts} == {0, 1}
    assert [u["start"] for u in utts] == sorted(u["start"] for u in utts)
    # Deepgram's raw audio: channels=2 with multichannel
    r = requests.post(srv.url + "/deepgram/v1/listen",
                      params={"multichannel": "true", "encoding": "linear16", "sample_rate": "16000", "channels": "2"},
                      headers={"Authorization": f"Token {srv.k}", "Content-Type": "application/octet-stream"},
                      data=stereo_pcm(), timeout=180)
    assert r.status_code == 200, r.text
    assert len(r.json()["results"]["channels"]) == 2


def audio_metric(srv, mode):
    text = requests.get(srv.url + "/metrics", timeout=10).text
    vals = [float(line.split()[-1]) for line in text.splitlines()
            if line.startswith(f'listend_audio_seconds_total{{mode="{mode}"}}')]
    return vals[0] if vals else 0.0


def test_jobs_transcribe_each_channel_and_count_each(srv, stereo):
    before = audio_metric(srv, "job")
    with WebhookReceiver() as rx:
        with open(stereo, "rb") as f:
            r = requests.post(srv.url + "/v1/listen", headers={"Authorization": f"Token {srv.k}"},
                              files={"audio": ("call.wav", f, "audio/wav")},
                              data={"callback_url": rx.url("/mc"), "multichannel": "true", "timestamps": "true"},
                              timeout=30)
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        # raw interleaved PCM as a job too (stored as a 2-channel WAV until it runs)
        r = requests.post(srv.url + "/v1/listen", headers={"Authorization": f"Token {srv.k}",
                                                           "Content-Type": "application/octet-stream"},
                          params={"callback_url": rx.url("/raw"), "multichannel": "true", "encoding": "linear16",
                                  "channels": "2"}, data=stereo_pcm(), timeout=30)
        assert r.status_code == 202, r.text
        raw_id = r.json()["job_id"]
        for jid in (job_id, raw_id):
            result = rx.wait_for(1, job_id=jid)[0].json()["result"]
            chans = result["channels"]
            assert [c["channel"] for c in chans] == [0, 1]
            check_channels(chans[0]["text"], chans[1]["text"])
            assert all("channel" in u for u in result["utterances"])
    # both channels are counted: 2 x the file's duration per job
    got = audio_metric(srv, "job") - before
    assert abs(got - 4 * result["duration"]) < 0.2, (got, result["duration"])


# ---- streams: channels=N interleaved PCM, each channel its own decoder ----

def test_stream_with_two_channels(srv):
    audio = stereo_pcm() + b"\0\0" * 2 * 16000  # a second of stereo silence to end the utterances
    msgs, code = asyncio.run(stream_audio(ws_url(srv, "/v1/listen/stream", "channels=2&encoding=linear16"),
                                          audio, {"Authorization": f"Token {srv.k}"}, chunk=6399))
    assert code == 1000, msgs
    finals = [m for m in msgs if m["type"] == "transcription" and m["is_final"]]
    assert all(m["channel"] in (0, 1) for m in msgs if m["type"] == "transcription")
    text = {ch: " ".join(m["transcript"] for m in finals if m["channel"] == ch) for ch in (0, 1)}
    check_channels(text[0], text[1])
    # words carry stream time: channel 1's speech starts after its delay
    first1 = min(w["start"] for m in finals if m["channel"] == 1 for w in m["words"])
    assert first1 >= RIGHT_DELAY_S - 0.3
    assert sum(m["is_last"] for m in finals) == 1 and finals[-1]["is_last"]


def test_deepgram_live_with_two_channels(srv):
    audio = stereo_pcm() + b"\0\0" * 2 * 16000
    msgs, code = asyncio.run(stream_audio(
        ws_url(srv, "/deepgram/v1/listen", "channels=2&encoding=linear16&sample_rate=16000&multichannel=true"),
        audio, {"Authorization": f"Token {srv.k}"}, close_msg={"type": "CloseStream"}))
    assert code == 1000, msgs
    results = [m for m in msgs if m["type"] == "Results" and m["is_final"]]
    assert {tuple(m["channel_index"]) for m in results} <= {(0, 2), (1, 2)}
    text = {ch: " ".join(m["channel"]["alternatives"][0]["transcript"] for m in results
                         if m["channel_index"][0] == ch) for ch in (0, 1)}
    check_channels(text[0], text[1])
    assert msgs[-1]["type"] == "Metadata" and msgs[-1]["channels"] == 2


def test_cli_streams_each_channel(srv, stereo, tmp_path):
    """`listend stream --multichannel call.wav` sends the file's channels interleaved (channels=2) and prints
    each final with its channel; `--channels 2` does the same for raw interleaved --encoding input."""
    raw = tmp_path / "call.s16"
    raw.write_bytes(stereo_pcm())
    for args in ([stereo, "--multichannel"], [raw, "--encoding", "linear16", "--channels", "2"]):
        r = subprocess.run([BIN, "stream", *map(str, args), "--server", srv.url, "--key", srv.k],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        finals = [re.match(r"ch (\d) \[ *([\d.]+) - *([\d.]+)\] (.*)", line) for line in r.stdout.splitlines()]
        assert finals and all(finals), r.stdout
        text = {ch: " ".join(m[4] for m in finals if m[1] == str(ch)) for ch in (0, 1)}
        check_channels(text[0], text[1])
        assert min(float(m[2]) for m in finals if m[1] == "1") >= RIGHT_DELAY_S - 0.3  # stream time per channel
    r = subprocess.run([BIN, "stream", str(stereo), "--channels", "2", "--server", srv.url, "--key", srv.k],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--multichannel" in r.stderr


def test_stream_bad_channels_are_400(srv):
    for q in ("channels=9", "channels=0", "channels=two", "channels=2&encoding=opus"):
        r = requests.get(srv.url + "/v1/listen/stream?" + q, timeout=10,
                         headers={"Authorization": f"Token {srv.k}", "Connection": "Upgrade", "Upgrade": "websocket",
                                  "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
        body = error(r, 400, "INVALID_PARAMETER")
        assert "channels" in body["error"], body


def _stereo_upload_decoding(srv, key, pcm, tmp_path):
    """Sends `pcm` as both channels of a multichannel upload on a raw socket and returns the socket (still
    open: closing it is the client hanging up) once the server has begun decoding it."""
    import socket
    import time
    two = tmp_path / "two.wav"
    write_wav(two, interleave([pcm, pcm]), channels=2)
    body = two.read_bytes()
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    s.sendall((f"POST /v1/listen?multichannel=true HTTP/1.1\r\nHost: x\r\nAuthorization: Token {key}\r\n"
               f"Content-Type: audio/wav\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body)
    deadline = time.time() + 60
    while time.time() < deadline and requests.get(srv.url + "/health?detailed=true", timeout=10).json()["asr_busy"] == 0:
        time.sleep(0.1)
    return s


def test_channels_are_one_request_to_the_queue(server_factory, tmp_path):
    """An upload's channels count once in the queue and in the places in progress: before, each channel
    was a request of its own, so a 4-channel file on `--queue 1` (and 6-8 channels on the default queue
    of an idle 1-decoder server) was a 503 "retry later" that no retry could ever pass, and two long
    channels took both places in progress from a short request behind them (it waited 48 s)."""
    from audio_fixtures import long_file
    srv = server_factory("--queue", "1", workers=1)
    key = srv.key(rpm=10000, concurrency=10)
    four = tmp_path / "four.wav"
    pcm = read_wav_pcm(clip_path(LEFT))
    write_wav(four, interleave([pcm] * 4), channels=4)
    with open(four, "rb") as f:
        r = listen(srv, key, files={"audio": ("four.wav", f)}, data={"multichannel": "true"})
    body = ok_json(r)
    assert len(body["channels"]) == 4, body
    # two long channels decoding; a short request behind them is answered within a few segments, while
    # they still decode (then the long upload's client leaves: nothing more to wait for)
    s = _stereo_upload_decoding(srv, key, read_wav_pcm(long_file(tmp_path / "long.wav", 60)), tmp_path)
    with open(clip_path(LEFT), "rb") as f:
        short = listen(srv, key, files={"audio": ("a.wav", f)})
    ok_json(short)
    h = requests.get(srv.url + "/health?detailed=true", timeout=10).json()
    s.close()
    assert h["asr_busy"] == 1 and h["queue_depth"] == 1, ("the short request waited for both long channels", h)
    # (a full queue still refuses a whole upload before any channel is decoded: asr_pool_test)


def test_client_that_hangs_up_cancels_every_channel(server_factory, tmp_path):
    """Before: a multichannel upload whose client hung up was logged "Client went away" but both channels
    were still decoded to the end (the hang-up cancelled by the request, the channels were queued under
    their own names). Now every channel stops: the decoder is free long before 2 x 9 minutes of audio is done."""
    import time
    from audio_fixtures import long_file
    srv = server_factory(workers=1)
    key = srv.key("leaver", rpm=10000)
    pcm = read_wav_pcm(long_file(tmp_path / "long.wav", 180)) * 3  # 9 minutes a channel
    _stereo_upload_decoding(srv, key, pcm, tmp_path).close()
    deadline = time.time() + 30
    while "Client went away" not in srv.log() and time.time() < deadline:
        time.sleep(0.2)
    assert "Client went away" in srv.log(), srv.log()[-2000:]
    gone = time.time()
    # 1080 s of audio on one decoder takes >= 54 s even at RTF 0.05; cancelled, only the running segment
    # (<= 20 s of audio: a few seconds on a loaded machine) is finished
    while time.time() < gone + 30:
        h = requests.get(srv.url + "/health?detailed=true", timeout=10).json()
        if h["queue_depth"] == 0 and h["asr_busy"] == 0:
            break
        time.sleep(0.2)
    assert h["queue_depth"] == 0 and h["asr_busy"] == 0, h
    used = requests.get(srv.url + "/v1/license", headers=srv.auth(key), timeout=10).json()["usage"]
    assert used["audio_seconds_today"] == 0, used


def test_lightning_route_lists_channels(srv, stereo):
    with open(stereo, "rb") as f:
        r = requests.post(srv.url + "/api/v1/lightning/get_text", params={"multichannel": "true"},
                          headers={"Authorization": f"Token {srv.k}", "Content-Type": "audio/wav"}, data=f.read(),
                          timeout=180)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success"
    check_channels(body["channels"][0]["text"], body["channels"][1]["text"])
    assert {u["channel"] for u in body["utterances"]} == {0, 1}


def test_openai_diarized_json_letters_name_one_voice_across_channels(srv, stereo):
    """Each channel numbers its speakers from 0 and diarized_json has no channel field: the left reader and
    the right speaker used to share "A"."""
    with open(stereo, "rb") as f:
        r = requests.post(srv.url + "/v1/audio/transcriptions", headers={"Authorization": f"Bearer {srv.k}"},
                          files={"file": ("call.wav", f)},
                          data={"model": "whisper-1", "response_format": "diarized_json", "multichannel": "true",
                                "num_speakers": "1"}, timeout=180)
    assert r.status_code == 200, r.text
    segs = r.json()["segments"]
    # usage is what the key was charged: both channels' seconds (it was the file's length)
    assert r.json()["usage"] == {"type": "duration", "seconds": round(2 * r.json()["duration"], 3)}, r.json()
    with open(stereo, "rb") as f:
        utts = ok_json(listen(srv, srv.k, params={"multichannel": "true", "diarize": "true", "num_speakers": "1"},
                              data=f.read(), headers={"Content-Type": "audio/wav"}))["utterances"]
    assert [(s["start"], s["text"]) for s in segs] == [(u["start"], u["text"]) for u in utts]
    letters = {}
    for s, u in zip(segs, utts):
        letters.setdefault(s["speaker"], set()).add((u["channel"], u["speaker"]))
    assert all(len(v) == 1 for v in letters.values()) and len(letters) == 2, letters
    assert segs[0]["speaker"] == "A" and {s["speaker"] for s in segs} == {"A", "B"}, segs


def test_url_input(srv, stereo):
    web = LocalHTTP(os.path.dirname(stereo))
    try:
        r = listen(srv, srv.k, json={"url": f"{web.base}/{os.path.basename(stereo)}", "multichannel": True})
        chans = ok_json(r)["channels"]
        check_channels(chans[0]["text"], chans[1]["text"])
    finally:
        web.close()


def test_python_sdk_exposes_channels(srv, stereo):
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                    "sdk", "python"))
    from listend import Client
    result = Client(api_url=srv.url, license_key=srv.k).transcribe_file(stereo, multichannel=True, timestamps=True)
    left, right = result.channels
    assert (left.channel, right.channel) == (0, 1)
    check_channels(left.text, right.text)
    assert all(w.channel == 1 for w in right.words)
