"""Custom vocabulary (issue 13): the `keywords` option and `--vocabulary FILE`, on the real binary.

The server runs with an English model folder whose dictionary lacks "forward"
(Debian's acoustic model and LM, symlinked; the dictionary copied without that
word), so the real recording goforward.raw ("go forward ten meters") comes out
without "forward". With keywords=forward the word gets a pronunciation from
flite's letter-to-sound rules and is found again; requests without keywords,
before, after and at the same time, are unaffected (no leak between requests on
the same decoders). The same with a clip of shared/eval/real and two words removed.
"""
import asyncio
import json
import os
import re
import threading

import pytest
import requests
import websockets

from conftest import EVAL_DIR, GOFORWARD, start_server, ws_steps

MODEL = "/usr/share/pocketsphinx/model/en-us"


def words(text):
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def model_without(tmp_path, *drop):
    """<tmp>/models/en/: Debian's model with a dictionary that lacks `drop` (and its variants)."""
    en = tmp_path / "models" / "en"
    en.mkdir(parents=True)
    os.symlink(os.path.join(MODEL, "en-us"), en / "acoustic")
    os.symlink(os.path.join(MODEL, "en-us.lm.bin"), en / "en-us.lm.bin")
    with open(os.path.join(MODEL, "cmudict-en-us.dict")) as src, open(en / "en-us.dict", "w") as dst:
        for line in src:
            if line.split(" ", 1)[0].split("(")[0] not in drop:
                dst.write(line)
    return tmp_path / "models"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kw")
    # one decoder: every request lands on the decoder the keyword request changed
    s = start_server(tmp / "data", "--models", model_without(tmp, "forward"), workers=1)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def key(srv):
    return srv.key("kw", rpm=1000, concurrency=10)


def listen(srv, key, params=(), data=None):
    with open(GOFORWARD, "rb") as f:
        return requests.post(srv.url + "/v1/listen", headers=srv.auth(key),
                             params=[("encoding", "linear16"), ("sample_rate", "16000"), *params],
                             files={"audio": f}, data=data, timeout=120)


def test_removed_word_is_missed_then_found_with_keywords(srv, key):
    plain = listen(srv, key)
    assert plain.status_code == 200, plain.text
    assert "forward" not in words(plain.json()["text"]), plain.json()
    assert {"go", "ten", "meters"} <= set(words(plain.json()["text"]))

    found = listen(srv, key, [("keywords", "forward"), ("timestamps", "true")])
    assert found.status_code == 200, found.text
    assert words(found.json()["text"]) == ["go", "forward", "ten", "meters"], found.json()
    fw = [w for w in found.json()["words"] if w["word"].lower() == "forward"]
    assert fw and 0 < fw[0]["start"] < fw[0]["end"], found.json()["words"]

    # the same decoder, next request without keywords: exactly the plain result
    again = listen(srv, key)
    assert again.json()["text"] == plain.json()["text"]
    assert again.json()["confidence"] == plain.json()["confidence"]


def test_eval_clip_words_removed_and_found(tmp_path):
    """A recording of shared/eval/real (a test-part speaker): "He was a head shorter than his companion, of almost
    delicate physique." Without "companion" and "physique" in the dictionary the decoder says "companions" and
    "to seek"; with both as keywords it says both words again."""
    srv = start_server(tmp_path / "data", "--models", model_without(tmp_path, "physique", "companion"), workers=1)
    try:
        key = srv.key("kw", rpm=1000)

        def run(params):
            with open(os.path.join(EVAL_DIR, "cathy_arctic_a0013.wav"), "rb") as f:
                r = requests.post(srv.url + "/v1/listen", headers=srv.auth(key), params=params, files={"audio": f},
                                  timeout=120)
            assert r.status_code == 200, r.text
            return r.json()

        plain = run([])
        assert not {"physique", "companion"} & set(words(plain["text"])), plain
        found = run([("keywords", "physique"), ("keywords", "companion")])
        assert {"physique", "companion"} <= set(words(found["text"])), found
        assert run([])["text"] == plain["text"]
    finally:
        srv.stop()


def test_keywords_repeat_and_come_as_form_fields(srv, key):
    r = listen(srv, key, [("keywords", "kubernetes:3"), ("keywords", "forward:2")])
    assert "forward" in words(r.json()["text"]) and "kubernetes" not in words(r.json()["text"]), r.json()
    r = listen(srv, key, data=[("keywords", "forward")])
    assert "forward" in words(r.json()["text"]), r.json()
    r = listen(srv, key, data=[("keywords", "kubernetes:3,forward")])  # a comma-separated list (SDK form fields)
    assert "forward" in words(r.json()["text"]), r.json()
    r = listen(srv, key, data=[("keywords", "forward"), ("keywords", "kubernetes:3")])  # a repeated form field:
    assert "forward" in words(r.json()["text"]), r.json()  # every value counts, not only the last


def test_concurrent_requests_do_not_share_keywords(tmp_path):
    srv = start_server(tmp_path / "data", "--models", model_without(tmp_path, "forward"), workers=2)
    try:
        key = srv.key("kw", rpm=1000, concurrency=20)
        results = {}

        def run(i):
            r = listen(srv, key, [("keywords", "forward")] if i % 2 else [])
            results[i] = (r.status_code, words(r.json().get("text", "")))

        threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, (status, w) in results.items():
            assert status == 200
            assert ("forward" in w) == bool(i % 2), results
    finally:
        srv.stop()


@pytest.mark.parametrize("value, shown", [
    ("k8s", "k8s"), ("", "''"), ("a" * 33, "a" * 33), ("forward:0", "forward:0"), ("forward:11", "forward:11"),
    ("forward:lots", "forward:lots"), ("forward:-2", "forward:-2"), ("hello w0rld:2", "hello w0rld:2"),
])
def test_bad_keywords_are_400_naming_the_word(srv, key, value, shown):
    r = listen(srv, key, [("keywords", value)])
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == "INVALID_PARAMETER" and "keywords" in body["error"] and shown in body["error"], body


def test_error_naming_bytes_that_are_not_utf8_keeps_its_message(srv, key):
    """The envelope's "error" quotes the client's value: bytes that are not UTF-8 become '?' (before, jansson
    refused the string and the member was silently dropped: {"code": …} alone)."""
    r = listen(srv, key, [("keywords", b"k\xff8")])
    assert r.status_code == 400 and r.json()["code"] == "INVALID_PARAMETER", r.text
    assert "'k?8'" in r.json()["error"], r.text


def test_too_many_keywords_is_400(srv, key):
    params = [("keywords", "word" + "".join(chr(97 + int(d)) for d in str(i))) for i in range(101)]
    r = listen(srv, key, params)
    assert r.status_code == 400 and "more than 100 keywords" in r.json()["error"], r.text


def test_keywords_in_a_json_body(srv, key):
    """The JSON-body form: an array of strings; a non-string item is a 400."""
    r = requests.post(srv.url + "/v1/listen", headers=srv.auth(key),
                      json={"url": "http://127.0.0.1:9/x.wav", "keywords": ["forward:2", 3]}, timeout=30)
    assert r.status_code == 400 and "keywords" in r.json()["error"], r.text
    r = requests.post(srv.url + "/v1/listen", headers=srv.auth(key),
                      json={"url": "http://127.0.0.1:9/x.wav", "keywords": ["forward:2", "k8s"]}, timeout=30)
    assert r.status_code == 400 and "k8s" in r.json()["error"], r.text


async def stream(uri, headers, audio, chunk=3200):
    finals = []
    async with websockets.connect(uri, extra_headers=headers, max_size=2**22, open_timeout=60) as ws:
        for i in range(0, len(audio), chunk):
            await ws.send(audio[i:i + chunk])
        await ws.send(json.dumps({"type": "close_stream"}))
        try:
            async for m in ws:
                m = json.loads(m)
                if m.get("is_final"):
                    finals.append(m["transcript"])
        except websockets.ConnectionClosed:
            pass
    return words(" ".join(finals))


def test_stream_keywords(srv, key):
    audio = open(GOFORWARD, "rb").read() + b"\0" * 32000
    base = srv.url.replace("http", "ws", 1) + "/v1/listen/stream?interim_results=false"
    with_kw = asyncio.run(stream(base + "&keywords=forward&keywords=meters:2", srv.auth(key), audio))
    assert "forward" in with_kw, with_kw
    plain = asyncio.run(stream(base, srv.auth(key), audio))
    assert "forward" not in plain and "meters" in plain, plain


def test_stream_bad_keyword_refused_before_upgrade(srv, key):
    r = requests.get(srv.url + "/v1/listen/stream?keywords=k8s", headers={
        **srv.auth(key), "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}, timeout=30)
    assert r.status_code == 400 and "k8s" in r.json()["error"], r.text


def test_operator_vocabulary_file(tmp_path):
    voc = tmp_path / "vocabulary.txt"
    voc.write_text("# product names\nforward\nlistend:3 L IH S T EH N D\n")
    srv = start_server(tmp_path / "data", "--models", model_without(tmp_path, "forward"), "--vocabulary", voc,
                       workers=1)
    try:
        key = srv.key("kw")
        r = listen(srv, key)
        assert "forward" in words(r.json()["text"]), r.json()
    finally:
        srv.stop()


def test_bad_vocabulary_file_stops_the_server(tmp_path):
    import subprocess
    from conftest import BIN, free_port, run_cli
    voc = tmp_path / "vocabulary.txt"
    voc.write_text("fine\nkubernetes K UW B ER N EH T IY Z Q9\n")
    run_cli("keys", "init", data=tmp_path / "data")
    r = subprocess.run([BIN, "serve", "--host", "127.0.0.1", "--port", str(free_port()), "--data",
                        str(tmp_path / "data"), "--workers", "1", "--vocabulary", str(voc)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "line 2" in r.stdout + r.stderr, r.stdout + r.stderr


def test_deepgram_keywords_and_keyterm(srv, key):
    def dg(query):
        with open(GOFORWARD, "rb") as f:
            return requests.post(srv.url + "/deepgram/v1/listen?encoding=linear16&sample_rate=16000" + query,
                                 headers={**srv.auth(key), "Content-Type": "application/octet-stream"}, data=f,
                                 timeout=120)

    def text(r):
        return words(r.json()["results"]["channels"][0]["alternatives"][0]["transcript"])

    assert "forward" not in text(dg(""))
    assert "forward" in text(dg("&keywords=forward:2"))
    assert "forward" in text(dg("&keyterm=go%20forward"))  # a key-term phrase: each word a keyword
    # Deepgram takes any text as a key term: punctuation separates words, tokens with digits are skipped
    assert "forward" in text(dg("&keyterm=Go-Forward%2C%20GPT-4o%21"))
    r = dg("&keywords=forward:-3")
    assert r.status_code == 400 and "forward:-3" in r.json()["err_msg"], r.text


def test_keyword_phrase_boosts_each_word(srv, key):
    """`keywords=go forward:2` (a phrase, as Smallest's docs allow) is each word with that boost."""
    r = listen(srv, key, [("keywords", "go forward:2,meters")])
    assert r.status_code == 200, r.text
    assert words(r.json()["text"]) == ["go", "forward", "ten", "meters"], r.json()
    r = listen(srv, key, [("keywords", "go f0rward:2")])
    assert r.status_code == 400 and "'go f0rward:2'" in r.json()["error"], r.text
    assert r.json()["code"] == "INVALID_PARAMETER", r.json()


def test_openai_route_takes_keywords(srv, key):
    with open(GOFORWARD, "rb") as f:
        r = requests.post(srv.url + "/v1/audio/transcriptions", headers={"Authorization": f"Bearer {key}"},
                          files={"file": ("go.raw", f)},
                          data=[("model", "whisper-1"), ("prompt", "forward"), ("keywords", "forward"),
                                ("encoding", "linear16")], timeout=120)
    assert r.status_code == 200, r.text
    assert "forward" in words(r.json()["text"]), r.json()


def test_cli_transcribe_keywords(tmp_path):
    """`listend transcribe --keywords` in local mode; a bad word is a usage error."""
    import subprocess
    from conftest import BIN
    models = model_without(tmp_path, "forward")
    base = [BIN, "transcribe", "--local", "--workers", "1", "--models", str(models), "--format", "text"]
    plain = subprocess.run(base + [GOFORWARD], capture_output=True, text=True, timeout=300)
    found = subprocess.run(base + ["--keywords", "forward", GOFORWARD], capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0 and found.returncode == 0, plain.stderr + found.stderr
    assert "forward" not in words(plain.stdout) and "forward" in words(found.stdout)
    bad = subprocess.run(base + ["--keywords", "k8s", GOFORWARD], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "k8s" in bad.stderr


def test_cli_stream_keywords(srv, key):
    """`listend stream --keywords` sends each word as a `keywords` option; a bad word is a usage error."""
    import subprocess
    from conftest import BIN
    base = [BIN, "stream", "--server", srv.url, "--key", key, "--no-interim"]
    plain = subprocess.run(base + [GOFORWARD], capture_output=True, text=True, timeout=120)
    found = subprocess.run(base + ["--keywords", "forward,meters:2", "--keywords", "go ten:3", GOFORWARD],
                           capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0 and found.returncode == 0, plain.stderr + found.stderr
    assert "forward" not in words(plain.stdout) and "forward" in words(found.stdout), plain.stdout + found.stdout
    bad = subprocess.run(base + ["--keywords", "k8s", GOFORWARD], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "k8s" in bad.stderr, bad.stderr


async def dg_stream(uri, headers, audio, chunk=3200):
    finals = []
    async with websockets.connect(uri, extra_headers=headers, max_size=2**22, open_timeout=60) as ws:
        for i in range(0, len(audio), chunk):
            await ws.send(audio[i:i + chunk])
        await ws.send(json.dumps({"type": "CloseStream"}))
        try:
            async for m in ws:
                m = json.loads(m)
                if m.get("type") == "Results" and m.get("is_final"):
                    finals.append(m["channel"]["alternatives"][0]["transcript"])
        except websockets.ConnectionClosed:
            pass
    return words(" ".join(finals))


def test_deepgram_live_keyterm(srv, key):
    audio = open(GOFORWARD, "rb").read() + b"\0" * 32000
    base = srv.url.replace("http", "ws", 1) + "/deepgram/v1/listen?encoding=linear16&sample_rate=16000"
    assert "forward" in asyncio.run(dg_stream(base + "&keyterm=go%20forward", srv.auth(key), audio))
    assert "forward" not in asyncio.run(dg_stream(base, srv.auth(key), audio))


def test_flux_configure_keyterms_between_turns(srv, key):
    """Flux's Configure replaces the stream's key terms from the next turn on ([] clears them): the same
    decoder's search is rebuilt between two turns, and the turns before and after hear accordingly."""
    turn = open(GOFORWARD, "rb").read() + b"\0" * 64000  # 2 s of silence ends each turn
    uri = srv.url.replace("http", "ws", 1) + "/deepgram/v2/listen?model=flux-general-en"
    msgs, code = asyncio.run(ws_steps(uri, key, [
        turn, {"type": "Configure", "keyterms": ["forward"]}, turn, {"type": "Configure", "keyterms": []}, turn,
        {"type": "CloseStream"}]))
    assert code == 1000, msgs
    ends = [words(m["transcript"]) for m in msgs if m.get("event") == "EndOfTurn"]
    assert len(ends) == 3 and ["forward" in e for e in ends] == [False, True, False], ends
    ok = [m for m in msgs if m["type"] == "ConfigureSuccess"]
    assert [m["keyterms"] for m in ok] == [["forward"], []], ok


def test_callback_job_keeps_keywords(tmp_path):
    """callback_url jobs store `keywords` with their options and decode with them."""
    from webhook_receiver import WebhookReceiver
    srv = start_server(tmp_path / "data", "--models", model_without(tmp_path, "forward"), "--allow-private-urls",
                       workers=1)
    try:
        key = srv.key("jobs")
        with WebhookReceiver() as rx:
            ids = {}
            for kw in ("forward", None):
                data = [("callback_url", rx.url("/done")), ("encoding", "linear16")]
                if kw:
                    data.append(("keywords", kw))
                with open(GOFORWARD, "rb") as f:
                    r = requests.post(srv.url + "/v1/listen", headers=srv.auth(key), files={"audio": f}, data=data,
                                      timeout=60)
                assert r.status_code == 202, r.text
                ids[r.json()["job_id"]] = bool(kw)
            for job_id, with_kw in ids.items():
                text = rx.wait_for(1, job_id=job_id)[0].json()["result"]["text"]
                assert ("forward" in words(text)) == with_kw, text
    finally:
        srv.stop()
