"""Helpers for the end-to-end transcription tests (tests/integration/test_transcribe_*.py).

Audio: the real eval clips and `goforward.raw`, converted with the ffmpeg CLI into every
container/codec the server accepts; longer files are made by joining clips with silence
(pure Python, exact durations and known word order). Also: word-list comparison, an SRT/VTT
parser that checks the shape, and a loopback HTTP server for `url` inputs.

`python3 audio_fixtures.py redirect-probe BIN WORKDIR` is the half of the redirect test that runs
inside a private network namespace (`unshare -rn`), see `netns_redirect_probe`.
"""
import asyncio
import functools
import http.server
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import wave

import requests
import websockets

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOFORWARD = "/usr/share/pocketsphinx/test/data/goforward.raw"  # 16 kHz s16le mono, "go forward ten meters"
GOFORWARD_WORDS = ["go", "forward", "ten", "meters"]
GOFORWARD_SECONDS = 44576 / 16000
# shared/ sits beside the checkout (CI); /work/shared on developer machines.
EVAL_DIR = next((d for d in (os.path.join(os.path.dirname(ROOT), "shared", "eval", "real"), "/work/shared/eval/real")
                 if os.path.isdir(d)), "/work/shared/eval/real")
RATE = 16000


def manifest():
    """id -> (duration_s, reference text) from the eval set's manifest.tsv."""
    out = {}
    with open(os.path.join(EVAL_DIR, "manifest.tsv")) as f:
        next(f)
        for line in f:
            cols = line.rstrip("\n").split("\t")
            out[cols[0]] = (float(cols[2]), cols[3])
    return out


def clip_path(clip_id):
    return os.path.join(EVAL_DIR, clip_id + ".wav")


def words(text):
    """Lower-case word list without punctuation (apostrophes kept: "don't")."""
    return re.findall(r"[a-z0-9']+", text.lower())


def word_distance(a, b):
    """Levenshtein distance between two word lists (substitutions + insertions + deletions)."""
    prev = list(range(len(b) + 1))
    for i, wa in enumerate(a, 1):
        cur = [i]
        for j, wb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (wa != wb)))
        prev = cur
    return prev[-1]


def ffmpeg(*args, timeout=120):
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *map(str, args)],
                   check=True, timeout=timeout)


# name -> (output file suffix, ffmpeg output options, Content-Type for uploads)
VARIANTS = {
    "wav16k": (".wav", ["-ar", "16000", "-ac", "1"], "audio/wav"),
    "wav8k": (".wav", ["-ar", "8000", "-ac", "1"], "audio/wav"),
    "wav44k_stereo": (".wav", ["-ar", "44100", "-ac", "2"], "audio/wav"),
    "wav48k_stereo": (".wav", ["-ar", "48000", "-ac", "2"], "audio/wav"),
    "mp3": (".mp3", ["-c:a", "libmp3lame", "-b:a", "128k"], "audio/mpeg"),
    "flac": (".flac", ["-c:a", "flac"], "audio/flac"),
    "ogg_vorbis": (".ogg", ["-c:a", "libvorbis", "-q:a", "6"], "audio/ogg"),
    "ogg_opus": (".opus", ["-c:a", "libopus", "-b:a", "64k"], "audio/ogg"),
    "m4a_aac": (".m4a", ["-c:a", "aac", "-b:a", "128k"], "audio/mp4"),
    "webm_opus": (".webm", ["-c:a", "libopus", "-b:a", "64k"], "audio/webm"),
}


def convert(src, out_dir, stem, variants=VARIANTS):
    """Converts src (a WAV, or goforward.raw) into every variant; returns name -> path."""
    inp = ["-f", "s16le", "-ar", "16000", "-ac", "1", "-i", src] if src.endswith(".raw") else ["-i", src]
    out = {}
    for name, (suffix, opts, _mime) in variants.items():
        path = os.path.join(str(out_dir), f"{stem}.{name}{suffix}")
        ffmpeg(*inp, *opts, path)
        out[name] = path
    return out


def read_wav_pcm(path):
    with wave.open(path) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2), path
        return w.readframes(w.getnframes())


def write_wav(path, pcm, rate=RATE, channels=1):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


# ---- a two-sided call (multichannel): two real speakers, the right one starting later so the
# sides overlap in time as a call would ----
CALL_LEFT = "ps_librivox_sns01_0870"  # male reader, LibriVox
CALL_RIGHT = "cathy_arctic_b0497"  # female speaker, CMU ARCTIC
RIGHT_DELAY_S = 2.0


def interleave(channels):
    """s16le mono byte strings -> one interleaved byte string (shorter ones padded with silence)."""
    n = max(len(c) for c in channels) // 2
    samples = [struct.unpack(f"<{len(c) // 2}h", c) + (0,) * (n - len(c) // 2) for c in channels]
    out = [0] * (n * len(channels))
    for k, s in enumerate(samples):
        out[k::len(channels)] = s
    return struct.pack(f"<{len(out)}h", *out)


def stereo_pcm():
    """The call as interleaved s16le stereo at RATE."""
    left = read_wav_pcm(clip_path(CALL_LEFT))
    right = b"\0\0" * int(RIGHT_DELAY_S * RATE) + read_wav_pcm(clip_path(CALL_RIGHT))
    return interleave([left, right])


def unique_refs():
    """Each side's reference words that the other side's reference does not contain."""
    m = manifest()
    a, b = set(words(m[CALL_LEFT][1])), set(words(m[CALL_RIGHT][1]))
    return a - b, b - a


def recall(found, ref):
    return len(set(found) & ref) / len(ref)


def check_channels(text0, text1):
    """Each channel has most of its own side's words and almost none of the other's."""
    a, b = unique_refs()
    w0, w1 = words(text0), words(text1)
    assert recall(w0, a) >= 0.5, (text0, a)
    assert recall(w1, b) >= 0.5, (text1, b)
    assert recall(w0, b) <= 0.15, (text0, b)
    assert recall(w1, a) <= 0.15, (text1, a)


def join_clips(clip_ids, path, gap=0.8):
    """Writes the clips one after another with `gap` s of digital silence before each and after
    the last; returns (duration_s, [(start_s, end_s, clip_id)]) so tests know where each clip is."""
    silence = b"\0\0" * int(gap * RATE)
    parts, spans, t = [], [], 0.0
    for cid in clip_ids:
        pcm = read_wav_pcm(clip_path(cid))
        parts += [silence, pcm]
        t += gap
        spans.append((t, t + len(pcm) / 2 / RATE, cid))
        t += len(pcm) / 2 / RATE
    parts.append(silence)
    write_wav(path, b"".join(parts))
    return t + gap, spans


def long_file(path, seconds):
    """Joins eval clips in manifest order (join_clips) until the file lasts at least `seconds`."""
    ids, total = [], 0.8
    for cid, (clip_s, _) in manifest().items():
        if total >= seconds:
            break
        ids.append(cid)
        total += clip_s + 0.8
    duration, _ = join_clips(ids, path)
    assert duration >= seconds, f"the eval set holds only {duration:.0f} s"
    return str(path)


def parse_subtitles(text, kind):
    """Parses an SRT or WebVTT body strictly enough to catch malformed output; returns
    [(start_s, end_s, [lines])]. Raises AssertionError naming the first problem."""
    sep = "," if kind == "srt" else "."
    ts = r"(\d\d):(\d\d):(\d\d)" + re.escape(sep) + r"(\d\d\d)"
    timing = re.compile(rf"^{ts} --> {ts}$")
    assert "\r" not in text, "CR in subtitle body"
    blocks = text.strip("\n").split("\n\n")
    if kind == "vtt":
        header = blocks.pop(0)
        assert header.split("\n")[0].startswith("WEBVTT"), f"no WEBVTT header: {header!r}"
    cues = []
    for n, block in enumerate(blocks, 1):
        lines = block.split("\n")
        if kind == "srt":
            assert lines[0] == str(n), f"cue {n}: bad number line {lines[0]!r}"
            lines = lines[1:]
        elif not timing.match(lines[0]):
            lines = lines[1:]  # optional VTT cue identifier
        m = timing.match(lines[0]) if lines else None
        assert m, f"cue {n}: bad timing line in {block!r}"
        g = [int(x) for x in m.groups()]
        start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
        end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
        body = lines[1:]
        assert body and all(line.strip() for line in body), f"cue {n}: empty text in {block!r}"
        cues.append((start, end, body))
    return cues


def listen(srv, key, timeout=180, **kw):
    """POST /v1/listen with the key (requests keyword arguments otherwise)."""
    headers = {"Authorization": f"Token {key}", **kw.pop("headers", {})}
    return requests.post(srv.url + "/v1/listen", headers=headers, timeout=timeout, **kw)


def ok_json(r):
    """A 200 JSON transcript whose request_id is the X-Request-ID header; returns the body."""
    assert r.status_code == 200, r.text[:500]
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    body = r.json()
    assert body["request_id"] == r.headers["X-Request-ID"], body
    return body


def error(r, status, code):
    """The JSON error envelope {"error": <message>, "code": <code>, ...}; returns the body."""
    assert r.status_code == status, r.text[:500]
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    body = r.json()
    assert body["code"] == code, body
    assert isinstance(body["error"], str) and body["error"], body
    assert body["request_id"] == r.headers["X-Request-ID"], body
    return body


class AudioCache:
    """Test audio made once per pytest session (conversions are the slow part), lazily, so a
    module run alone only makes what it uses. Get it with `audio_cache(tmp_path_factory)`."""

    def __init__(self, root):
        self.root = str(root)
        self._memo = {}

    def _once(self, key, make):
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def variants(self, src, names=None):
        """name -> path of src converted into each of VARIANTS (or just `names`)."""
        names = tuple(names or VARIANTS)
        stem = os.path.splitext(os.path.basename(src))[0]
        return {n: self._once(("variant", src, n),
                              lambda n=n: convert(src, self.root, stem, {n: VARIANTS[n]})[n]) for n in names}

    def joined(self, name, clip_ids, gap=0.8):
        """(path, duration_s, spans) of the clips joined by join_clips."""
        path = os.path.join(self.root, name + ".wav")
        return self._once(("joined", name), lambda: (path, *join_clips(clip_ids, path, gap)))

    def silent_mp3(self, seconds):
        """A small (8 kbps, 8 kHz) MP3 of digital silence: one minute encoded, then repeated by
        stream copy, so a 3-hour file costs about a second to make (10.8 MB)."""
        def make():
            minute = os.path.join(self.root, "silence60.mp3")
            ffmpeg("-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", 60, "-c:a", "libmp3lame", "-b:a", "8k",
                   minute)
            out = os.path.join(self.root, f"silence{seconds}.mp3")
            ffmpeg("-stream_loop", int(seconds // 60) - 1, "-i", minute, "-c", "copy", out)
            return out
        return self._once(("silent_mp3", seconds), make)

    def make(self, name, *ffmpeg_args):
        """Any other file made by one ffmpeg command; `name` is the output file name."""
        out = os.path.join(self.root, name)
        return self._once(("make", name), lambda: (ffmpeg(*ffmpeg_args, out), out)[1])


_CACHE = {}


def audio_cache(tmp_path_factory):
    if "c" not in _CACHE:
        _CACHE["c"] = AudioCache(tmp_path_factory.mktemp("audio"))
    return _CACHE["c"]


class LocalHTTP:
    """Loopback HTTP server in a thread: files from `root`, plus
    /redirect?to=<url> -> 302 Location: <url>, and anything missing -> 404."""

    def __init__(self, root, host="127.0.0.1"):
        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path.startswith("/redirect?to="):
                    self.send_response(302)
                    self.send_header("Location", self.path.split("=", 1)[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer((host, 0), functools.partial(Handler, directory=str(root)))
        self.port = self.httpd.server_address[1]
        self.base = f"http://{host}:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# --- redirect probe inside a private network namespace -------------------------------------------
# The SSRF guard refuses every loopback/private address, so on the host no URL can both pass the
# guard and be served by the test. `unshare -rn` gives this script a network namespace of its own
# (only `lo`, no route out of the machine) in which a public-looking address can be put on `lo`:
# the first hop to it is allowed, the redirect to 127.0.0.1 must be refused.
PUBLIC_IP = "1.2.3.4"


def netns_redirect_probe(bin_path, workdir):
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "add", PUBLIC_IP + "/32", "dev", "lo"], check=True)
    data = os.path.join(workdir, "data")
    subprocess.run([bin_path, "keys", "init", "--data", data], check=True, capture_output=True)
    key = subprocess.run([bin_path, "keys", "issue", "--name", "ns", "--data", data], check=True,
                         capture_output=True, text=True).stdout.strip()
    www = LocalHTTP(workdir, host="0.0.0.0")
    log = open(os.path.join(workdir, "server.log"), "w")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([bin_path, "serve", "--host", "127.0.0.1", "--port", str(port), "--data", data,
                             "--workers", "1"], stdout=log, stderr=subprocess.STDOUT)
    import urllib.error
    import urllib.request

    def post(url):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/listen", data=json.dumps({"url": url}).encode(),
                                     headers={"Authorization": f"Token {key}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    try:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(f"listend exited with {proc.returncode}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                time.sleep(0.1)
        public = f"http://{PUBLIC_IP}:{www.port}"
        result = {
            "direct": post(f"{public}/clip.wav"),
            "redirect": post(f"{public}/redirect?to=http://127.0.0.1:{www.port}/clip.wav"),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        www.close()
    print(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1:2] == ["redirect-probe"]:
        netns_redirect_probe(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: audio_fixtures.py redirect-probe BIN WORKDIR")


# ---- streams ----

async def stream_audio(uri, audio, headers, chunk=6400, close_msg=None):
    """Sends audio in chunks cut anywhere (odd sizes split frames), then the close message; returns all messages."""
    msgs = []
    async with websockets.connect(uri, extra_headers=headers, max_size=2**22, open_timeout=60) as ws:
        async def reader():
            try:
                async for m in ws:
                    msgs.append(json.loads(m))
            except websockets.ConnectionClosed:
                pass
        task = asyncio.ensure_future(reader())
        try:
            for i in range(0, len(audio), chunk):
                await ws.send(audio[i:i + chunk])
            await ws.send(json.dumps(close_msg or {"type": "close_stream"}))
        except websockets.ConnectionClosed:  # the server may close first (an error message says why)
            pass
        await asyncio.wait_for(task, 180)
        return msgs, ws.close_code


def ws_url(srv, path, query):
    return srv.url.replace("http", "ws", 1) + path + "?" + query
