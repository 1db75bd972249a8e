"""`listend transcribe`: local mode (also at a terminal, with its progress bar), and client mode (--server)
against a real server started here: same words and output layout as local mode, error envelopes mapped to
stderr + exit status, URL arguments fetched by the server (a local HTTP server, allowed by
--allow-private-urls)."""
import http.server
import json
import os
import pty
import re
import select
import subprocess
import threading
import time
import wave

import pytest

from audio_fixtures import check_channels, long_file, stereo_pcm, write_wav
from conftest import BIN, GOFORWARD, start_server

GOFORWARD_WORDS = ["go", "forward", "ten", "meters"]


def words(text):
    return re.sub(r"[^a-z' ]", " ", text.lower()).split()


def cli(*args, env=None, **kw):
    """Runs `listend transcribe …` with a clean client environment plus `env`."""
    full = {k: v for k, v in os.environ.items() if k not in ("LISTEND_API_URL", "LICENSE_KEY")}
    full.update(env or {})
    return subprocess.run([BIN, "transcribe", *map(str, args)], capture_output=True, text=True, timeout=120,
                          env=full, **kw)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("cli_client"), "--allow-private-urls", workers=1)
    s.k = s.key("cli", rpm=100000)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def go_wav(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "goforward.wav"
    with open(GOFORWARD, "rb") as f, wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(f.read())
    return path


@pytest.fixture(scope="module")
def local_json():
    r = cli(GOFORWARD, "--timestamps", "--workers", 1)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_local_mode(local_json):
    assert words(local_json["text"]) == GOFORWARD_WORDS
    assert [w["word"].lower() for w in local_json["words"] if w["word"] not in ",."] == GOFORWARD_WORDS


def run_on_terminal(args, timeout=600):
    """Runs BIN with stdin and stderr on a pseudo-terminal, as from an interactive shell (stdout is
    piped, as in `listend transcribe long.wav > out.json`). Returns (exit status, terminal text, stdout)."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("LISTEND_API_URL", "LICENSE_KEY")}
    proc = subprocess.Popen([BIN, *map(str, args)], stdin=slave, stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    out = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read()))
    reader.start()
    term, deadline = b"", time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every holder of the terminal's other end is gone
                break
            if not chunk:
                break
            term += chunk
        elif proc.poll() is not None:
            break
    if proc.poll() is None:
        proc.kill()
    rc = proc.wait()
    reader.join()
    os.close(master)
    return rc, term.decode(errors="replace"), out[0].decode(errors="replace") if out else ""


def test_progress_bar_on_a_terminal(tmp_path):
    """A file of 60 s or more at a terminal gets a progress bar naming it, and the command ends
    normally. (Its progress callback used to read the pool's completion slot as its own state:
    "(null)" in the bar, then an abort at 100 %.)"""
    long_wav = long_file(tmp_path / "long_meeting.wav", 61)
    rc, term, out = run_on_terminal(["transcribe", "--workers", 2, long_wav])
    assert rc == 0, term[-2000:]
    bars = re.findall(r"\[[#.]{30}\] +(\d+)% ([^\r\n]*)", term)
    assert bars, term[-2000:]
    assert all(name == str(long_wav) for _, name in bars), set(name for _, name in bars)
    assert bars[-1][0] == "100" and "(null)" not in term
    body = json.loads(out)
    assert body["duration"] >= 60 and len(words(body["text"])) > 50


def test_local_mode_several_files_in_order(go_wav, tmp_path):
    """Files are decoded ahead on both decoders, but printed in argument order."""
    silent = tmp_path / "silence.raw"
    silent.write_bytes(b"\0" * 32000)
    missing = tmp_path / "missing.wav"
    inputs = [go_wav, silent, missing, GOFORWARD, go_wav]
    r = cli("--workers", 2, "--no-punctuate", *inputs)
    assert r.returncode == 1
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [d["file"] for d in lines] == [str(p) for p in inputs if p != missing]
    assert [d["text"] for d in lines] == ["go forward ten meters", "", "go forward ten meters", "go forward ten meters"]
    assert r.stderr == f"listend transcribe: {missing}: cannot read '{missing}': No such file or directory\n"


def test_local_mode_language_as_a_locale(go_wav):
    """--language takes what the server takes: en_US (a locale) and en-US are English, fr_FR names fr."""
    for lang in ("en_US", "EN-us"):
        r = cli("--language", lang, "--no-punctuate", go_wav)
        assert r.returncode == 0 and json.loads(r.stdout)["text"] == "go forward ten meters", (lang, r.stderr)
    r = cli("--language", "fr_FR", go_wav)
    assert r.returncode == 2 and "Unsupported language 'fr'" in r.stderr, r.stderr  # a usage error


def test_headerless_g711_files_by_name(srv, tmp_path):
    """.ul/.al (SoX's, Asterisk's names) are 8 kHz G.711: local and client mode alike, on the telephone path."""
    for enc, name, mode in (("mulaw", "call.ulaw", ()), ("alaw", "call.al", ("--server", srv.url, "--key", srv.k))):
        path = tmp_path / name
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "s16le", "-ar", "16000", "-ac", "1",
                        "-i", GOFORWARD, "-ar", "8000", "-f", enc, str(path)], check=True)
        r = cli(*mode, "--no-punctuate", path)
        assert r.returncode == 0, (name, mode, r.stderr)
        body = json.loads(r.stdout)
        assert body["model"] == "telephony" and body["text"] == "go forward ten meters", (name, mode, body)


def test_client_mode_same_result_as_local(srv, local_json):
    r = cli("--server", srv.url, "--key", srv.k, "--timestamps", GOFORWARD)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("{\n  \"request_id\": \"req_")  # pretty-printed, like local mode
    body = json.loads(r.stdout)
    assert body["text"] == local_json["text"]
    assert body["words"] == local_json["words"]
    assert body["utterances"] == local_json["utterances"]
    assert body["duration"] == local_json["duration"]


def test_client_mode_srt_and_text_match_local(srv, go_wav):
    for fmt in ("srt", "text"):
        local = cli("--format", fmt, "--workers", 1, go_wav)
        remote = cli("--server", srv.url, "--key", srv.k, "--format", fmt, go_wav)
        assert local.returncode == 0 and remote.returncode == 0, (local.stderr, remote.stderr)
        assert remote.stdout == local.stdout
    assert remote.stdout == "Go forward ten meters.\n"
    srt = cli("--server", srv.url + "/", "--key", srv.k, "--format", "srt", go_wav).stdout
    assert srt.startswith("1\n00:00:00,") and "Go forward ten meters." in srt
    # the endpoint itself, and a path prefix (a server behind a proxy) that gets /v1/listen as `stream` does
    assert cli("--server", srv.url + "/v1/listen", "--key", srv.k, "--format", "text", go_wav).stdout == \
        "Go forward ten meters.\n"
    r = cli("--server", srv.url + "/stt", "--key", srv.k, go_wav)
    assert r.returncode == 1 and "/stt/v1/listen" in r.stderr, r.stderr  # no such prefix on this server


def test_client_mode_env_defaults_and_several_files(srv, go_wav, tmp_path):
    missing = tmp_path / "missing.wav"
    r = cli(GOFORWARD, missing, go_wav, "--no-punctuate", env={"LISTEND_API_URL": srv.url, "LICENSE_KEY": srv.k})
    assert r.returncode == 1  # one input failed, the others are still printed
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [d["file"] for d in lines] == [GOFORWARD, str(go_wav)]
    assert all(d["text"] == "go forward ten meters" for d in lines)
    assert f"listend: {missing}: cannot read" in r.stderr
    # --local wins over LISTEND_API_URL (no server needed)
    r = cli("--local", "--format", "text", GOFORWARD, env={"LISTEND_API_URL": "http://127.0.0.1:1"})
    assert r.returncode == 0 and words(r.stdout) == GOFORWARD_WORDS, r.stderr


def test_client_mode_errors(srv, go_wav, tmp_path):
    r = cli("--server", srv.url, "--key", "not-a-key", go_wav, go_wav)
    assert r.returncode == 1 and r.stdout == ""
    # the key is refused once: no point sending the second file
    assert r.stderr.splitlines() == [f"listend: {go_wav}: 401 INVALID_LICENSE: Invalid license key"]
    r = cli("--server", srv.url, "--key", "not-a-key", go_wav)
    assert r.returncode == 1 and r.stderr.strip() == "listend: 401 INVALID_LICENSE: Invalid license key"
    not_audio = tmp_path / "notes.txt"
    not_audio.write_text("hello\n" * 100)
    r = cli("--server", srv.url, "--key", srv.k, not_audio)
    assert r.returncode == 1 and r.stderr.startswith("listend: 415 UNSUPPORTED_FORMAT: "), r.stderr
    r = cli("--server", srv.url, "--key", srv.k, "--language", "zz", go_wav)
    assert r.returncode == 1 and "400 UNSUPPORTED_LANGUAGE" in r.stderr
    r = cli("--server", srv.url, go_wav)  # no key anywhere
    assert r.returncode == 2 and "LICENSE_KEY" in r.stderr
    r = cli("--server", srv.url, "--key", srv.k, "--workers", 2, go_wav)
    assert r.returncode == 2 and "local mode only" in r.stderr
    r = cli("--server", srv.url, "--key", srv.k, "--local", go_wav)  # it ran locally without a word
    assert r.returncode == 2 and "contradict" in r.stderr
    for extra in (["--key", srv.k], ["--cacert", "ca.pem"], ["--insecure"]):  # a forgotten --server
        r = cli(*extra, go_wav)
        assert r.returncode == 2 and "apply to client mode only" in r.stderr, (extra, r.stderr)
    r = cli("--server", "http://127.0.0.1:1", "--key", srv.k, go_wav)  # nothing listens on port 1
    assert r.returncode == 1 and "cannot reach http://127.0.0.1:1/v1/listen" in r.stderr
    # a directory given as a file: said so (client mode uploaded it as an empty body, local mode blamed ioctl)
    for mode in (("--server", srv.url, "--key", srv.k), ("--local", "--workers", 1)):
        r = cli(*mode, tmp_path)
        assert r.returncode == 1 and "it is a directory" in r.stderr, r.stderr


def test_multichannel_local_and_client(srv, go_wav, tmp_path):
    """--multichannel: a two-sided call (two real speakers, the right side starting 2 s later) gives one
    transcript per channel, each with its own side's words and not the other's, locally and through a
    server; several files print in order, a mono file is one channel, text reads the sides in time order."""
    call = tmp_path / "call.wav"
    write_wav(call, stereo_pcm(), channels=2)
    bodies = []
    for args in (["--workers", 2], ["--server", srv.url, "--key", srv.k]):
        r = cli(*args, "--multichannel", "--timestamps", call)
        assert r.returncode == 0, r.stderr
        body = json.loads(r.stdout)
        chans = body["channels"]
        assert [c["channel"] for c in chans] == [0, 1], args
        check_channels(chans[0]["text"], chans[1]["text"])
        assert {w["channel"] for w in body["words"]} == {0, 1}
        assert [u["channel"] for u in body["utterances"]] == [0, 1]  # the left side speaks first
        bodies.append(body)
    text = cli("--workers", 2, "--multichannel", "--format", "text", call)
    assert text.returncode == 0 and text.stdout == bodies[0]["text"] + "\n", text.stderr
    r = cli("--workers", 2, "--multichannel", "--no-punctuate", call, go_wav)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [d["file"] for d in lines] == [str(call), str(go_wav)]
    assert [len(d["channels"]) for d in lines] == [2, 1]
    assert lines[1]["channels"][0]["text"] == "go forward ten meters"


@pytest.fixture
def http_files(go_wav):
    """A loopback HTTP server serving go_wav's folder."""
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(go_wav.parent), **kw)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_client_mode_url_argument(srv, http_files, go_wav):
    r = cli("--server", srv.url, "--key", srv.k, "--format", "text", f"{http_files}/goforward.wav")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Go forward ten meters.\n"
    r = cli("--server", srv.url, "--key", srv.k, f"{http_files}/missing.wav")
    assert r.returncode == 1 and "400 URL_FETCH_FAILED" in r.stderr and "404" in r.stderr, r.stderr
    # a headerless name says its encoding, as for files (the query string is not part of the name)
    folder = go_wav.parent  # what http_files serves
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "s16le", "-ar", "16000", "-ac", "1",
                    "-i", GOFORWARD, "-ar", "8000", "-f", "mulaw", str(folder / "call.ul")], check=True)
    r = cli("--server", srv.url, "--key", srv.k, f"{http_files}/call.ul?sig=abc")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["model"] == "telephony" and "forward ten" in json.loads(r.stdout)["text"], r.stdout


@pytest.mark.parametrize("cmd", ["transcribe", "stream"])
def test_client_key_with_a_line_break(srv, go_wav, cmd):
    """A key read from a file ends in a newline: trimmed. A line break inside it went into the Authorization header
    and ended it early (400 "Missing required parameter", or a header the user never wrote): refused, exit 2."""
    base = [BIN, cmd, str(go_wav), "--server", srv.url]
    env = {k: v for k, v in os.environ.items() if k not in ("LISTEND_API_URL", "LICENSE_KEY")}
    r = subprocess.run(base + ["--key", srv.k + "\r\n"], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0 and "forward" in r.stdout.lower(), r.stderr
    r = subprocess.run(base, capture_output=True, text=True, timeout=120, env={**env, "LICENSE_KEY": srv.k + "\n"})
    assert r.returncode == 0 and "forward" in r.stdout.lower(), r.stderr
    r = subprocess.run(base + ["--key", srv.k + "\nX-Evil: 1"], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2 and "license key contains a line break" in r.stderr and not r.stdout, r.stderr
