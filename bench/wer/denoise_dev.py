#!/usr/bin/python3
"""Dev-only experiments for the noisy route (docs/engine.md § Noise): WER of noisy
*adaptation-part* clips (bench/wer/split.tsv) and flite voices after an FFmpeg filter.

  bench/wer/denoise_dev.py prep [--snr 20] [--seed S] [--cards]
                                                    render the dev set once (WORK dir); S is
                                                    appended to every clip's noise seed (another
                                                    noise realisation of the same clips); --cards
                                                    adds pocketsphinx-testdata's 5 `cards` clips
                                                    (a speaker outside shared/eval)
  bench/wer/denoise_dev.py run NAME FILTER [MODEL] [-- listend transcribe args]

FILTER is an `ffmpeg -af` chain or `-` for the noisy clips as they are; `{nf}` in it
is replaced by each clip's noise level (listend's estimate, ld_audio_noise_dbfs) plus
$OFF dB, as the server does. Wrap afftdn as `apad=pad_len=400,afftdn=...,
atrim=start_sample=400` to drop its 25 ms delay like listend. MODEL (default
general) is passed as --model: `auto` sends the clips through the server's own
noisy route (its denoiser included). Never run it on the test speakers.
`{skip}` in FILTER primes the filter with the clip's own noise (the sampled-profile
experiment): the clip's quietest $PRIME s (default 0.4) is put in front of it, `{p}`
is that length in seconds, `{skip}` that length in samples + 400 (for atrim), e.g.
  'asendcmd=c={p} afftdn sn stop,apad=pad_len=400,afftdn=nr=12:nf={nf}:sn=start,atrim=start_sample={skip}'
$GATE dB: clips whose quiet stretch is louder than that over their noise level get the
route's plain filter (nr $FNR, default 12) instead.
$MINSTAT=1: the priming is random-phase noise with the clip's per-bin 10th-percentile spectrum.
$PIECES=1: the priming is the quietest non-contiguous 50 ms frames (as many as fit in $PRIME s).
$STREAM=1: each clip through a live stream (`listend stream` to a `listend serve` started on
loopback; MODEL must be auto, the streams' default), not `listend transcribe`.
Env: BIN (default build/listend), WORK (default /tmp/listend-denoise-dev), OFF, PRIME, GATE, FNR, PIECES, MINSTAT.
"""
import cmath, csv, json, math, os, random, re, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench", "wer"))
import conditions  # noqa: E402

EVAL = os.environ.get("LISTEND_EVAL_DIR") or (os.path.join(os.path.dirname(ROOT), "shared", "eval", "real")
                                              if os.path.isdir(os.path.join(os.path.dirname(ROOT), "shared"))
                                              else "/work/shared/eval/real")
WORK = os.environ.get("WORK", "/tmp/listend-denoise-dev")


def norm(s):
    return re.sub(r"[^a-z0-9' ]", " ", s.lower().replace("-", " ")).split()


def edits(r, h):
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        p, d[0] = d[0], i
        for j in range(1, len(h) + 1):
            c = min(d[j] + 1, d[j - 1] + 1, p + (r[i - 1] != h[j - 1]))
            p, d[j] = d[j], c
    return d[len(h)]


def adapt_clips():
    parts = {}
    for line in open(os.path.join(ROOT, "bench", "wer", "split.tsv")):
        if not line.startswith("#") and not line.startswith("speaker\t") and line.strip():
            s, p = line.rstrip("\n").split("\t")[:2]
            parts[s] = p
    spk = {r["id"]: r["speaker"] for r in csv.DictReader(open(os.path.join(EVAL, "provenance.tsv")), delimiter="\t")}
    return [(r["id"], os.path.join(EVAL, r["file"]), r["reference_text"])
            for r in csv.DictReader(open(os.path.join(EVAL, "manifest.tsv")), delimiter="\t")
            if parts[spk[r["id"]]] == "adapt"]


def noise_dbfs(path):
    """ld_audio_noise_dbfs in Python: the quietest 50 ms of 10 ms frame energies."""
    x, _ = conditions.read_wav16(path)
    e = [10 * math.log10(sum(v * v for v in x[i:i + 160]) / 160 + 1e-3) for i in range(0, len(x) - 159, 160)]
    return min(sum(e[i - 2:i + 3]) / 5 for i in range(2, len(e) - 2)) - 20 * math.log10(32768)


def quietest(x, sec):
    """Start and length of the quietest `sec` s of x by 10 ms frame energy (as the C route)."""
    L = max(1, int(sec * 100))
    e = [sum(v * v for v in x[i:i + 160]) for i in range(0, len(x) - 159, 160)]
    if len(e) <= L:
        return 0, len(x)
    acc = sum(e[:L])
    best, at = acc, 0
    for i in range(L, len(e)):
        acc += e[i] - e[i - L]
        if acc < best:
            best, at = acc, i - L + 1
    return at * 160, L * 160


def fft(a):
    n = len(a)
    if n == 1:
        return a
    e, o = fft(a[0::2]), fft(a[1::2])
    t = [cmath.exp(-2j * math.pi * k / n) * o[k] for k in range(n // 2)]
    return [e[k] + t[k] for k in range(n // 2)] + [e[k] - t[k] for k in range(n // 2)]


def minstat_noise(x, n, level_dbfs, N=512):
    """n samples of random-phase noise whose spectrum is x's per-bin 10th percentile of
    frame power (minimum statistics: needs no pause), at level_dbfs RMS."""
    w = [0.5 - 0.5 * math.cos(2 * math.pi * i / N) for i in range(N)]
    frames = [fft([complex(x[i + k] * w[k]) for k in range(N)]) for i in range(0, len(x) - N + 1, N // 2)]
    mag = []
    for b in range(N // 2 + 1):
        p = sorted(abs(f[b]) ** 2 for f in frames)
        mag.append(math.sqrt(p[len(p) // 10]))
    rnd = random.Random(1)
    out = [0.0] * (n + N)
    for i in range(0, n, N // 2):
        spec = [mag[b] * cmath.exp(2j * math.pi * rnd.random()) for b in range(N // 2 + 1)]
        full = spec + [spec[b].conjugate() for b in range(N // 2 - 1, 0, -1)]
        y = fft([v.conjugate() for v in full])  # inverse FFT up to scale
        for k in range(N):
            out[i + k] += w[k] * y[k].real
    out = out[N // 2:N // 2 + n]
    g = 10 ** (level_dbfs / 20) * 32768 / math.sqrt(sum(v * v for v in out) / n + 1e-9)
    return conditions.array.array("h", [max(-32768, min(32767, int(v * g))) for v in out])


CARDS = "/usr/share/pocketsphinx/test/data/cards"


def prep(snr, seed="", cards=False):
    src = os.path.join(WORK, "src")
    os.makedirs(src, exist_ok=True)
    refs = {}
    for cid, path, text in adapt_clips():
        conditions.add_noise(path, os.path.join(src, cid + ".wav"), snr,
                             os.path.splitext(os.path.basename(path))[0] + seed)
        refs[cid] = text
    for line in open(os.path.join(CARDS, "cards.transcription")) if cards else []:
        n = line.strip().rsplit("(", 1)[1].rstrip(")")
        conditions.add_noise(os.path.join(CARDS, n + ".wav"), os.path.join(src, "cards" + n + ".wav"), snr,
                             "cards" + n + seed)
        refs["cards" + n] = line.split("<s>")[1].split("</s>")[0].strip()
    sents = [l.strip() for l in open(os.path.join(ROOT, "models", "flite-sentences.txt")) if l.strip()]
    for v in ("slt", "rms"):
        for i, s in enumerate(sents[:20]):
            cid = "fl_%s_%02d" % (v, i)
            clean = os.path.join(WORK, cid + ".clean.wav")
            subprocess.run(["flite", "-voice", v, "-t", s, "-o", clean], check=True)
            conditions.add_noise(clean, os.path.join(src, cid + ".wav"), snr, cid + seed)
            refs[cid] = s
    json.dump(refs, open(os.path.join(src, "refs.json"), "w"))


def via_stream(binary, paths, model, extra):
    """Each clip through /v1/listen/stream, with bench/wer/run's server and stream client."""
    from importlib.machinery import SourceFileLoader
    wer = SourceFileLoader("wer_run", os.path.join(ROOT, "bench", "wer", "run")).load_module()
    if model != "auto":
        sys.exit("STREAM=1: streams pick their model themselves (MODEL auto)")
    proc, url, key, data = wer.start_server(binary, 1, extra)
    try:
        texts = wer.via_stream(binary, url, key, paths, "noise", None)[0]
    finally:
        proc.terminate()
        proc.wait()
        subprocess.run(["rm", "-rf", data])
    return {os.path.splitext(os.path.basename(p))[0]: t for p, t in zip(paths, texts)}


def run(name, af, model, extra):
    src = os.path.join(WORK, "src")
    refs = json.load(open(os.path.join(src, "refs.json")))
    d = os.path.join(WORK, name)
    os.makedirs(d, exist_ok=True)
    paths = []
    for cid in refs:
        inp = os.path.join(src, cid + ".wav")
        if af == "-":
            paths.append(inp)
            continue
        out = os.path.join(d, cid + ".wav")
        a = af.replace("{nf}", "%.1f" % max(-80, min(-20, noise_dbfs(inp) + float(os.environ.get("OFF", "0")))))
        if "{skip}" in af:
            x, rate = conditions.read_wav16(inp)
            st, ln = quietest(x, float(os.environ.get("PRIME", "0.4")))
            seg = x[st:st + ln]
            if os.environ.get("MINSTAT"):  # noise with the clip's per-bin 10th-percentile spectrum
                seg, gap = minstat_noise(x, ln, noise_dbfs(inp)), -99
            elif os.environ.get("PIECES"):  # the quietest 50 ms frames, wherever they are, in time order
                e = sorted(range(0, len(x) - 799, 800), key=lambda i: sum(v * v for v in x[i:i + 800]))
                seg = conditions.array.array("h")
                for i in sorted(e[:max(1, ln // 800)]):
                    seg += x[i:i + 800]
                ln = len(seg)
            gap = 10 * math.log10(sum(v * v for v in seg) / len(seg) + 1e-3) - 20 * math.log10(32768) - noise_dbfs(inp)
            if gap > float(os.environ.get("GATE", "99")):  # no stretch quiet enough: the route's own filter
                a = "apad=pad_len=400,afftdn=nr=%s:nf=%s,atrim=start_sample=400" % (
                    os.environ.get("FNR", "12"), re.search(r"nf=([-0-9.]+)", a).group(1))
            else:
                inp = os.path.join(d, cid + ".primed.wav")
                conditions.write_wav16(inp, seg + x, rate)
                a = a.replace("{skip}", str(ln + 400)).replace("{p}", "%.4f" % (ln / rate))
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", inp, "-af", a, "-ar", "16000",
                        "-c:a", "pcm_s16le", out], check=True)
        paths.append(out)
    binary = os.environ.get("BIN", os.path.join(ROOT, "build", "listend"))
    if os.environ.get("STREAM"):
        texts = via_stream(binary, paths, model, extra)
    else:
        p = subprocess.run([binary, "transcribe", "--format", "json", "--workers", "1", "--model", model, *extra,
                            *paths], capture_output=True, text=True)
        if p.returncode:
            sys.exit(p.stderr[-2000:])
        texts = {}
        for line in p.stdout.splitlines():
            j = json.loads(line)
            texts[os.path.splitext(os.path.basename(j["file"]))[0]] = j.get("text", "")
    tot = {"real": [0, 0], "flite": [0, 0]}
    for cid, text in texts.items():
        r, h = norm(refs[cid]), norm(text)
        k = "flite" if cid.startswith("fl_") else "real"
        tot[k][0] += edits(r, h)
        tot[k][1] += len(r)
    print("%-24s %-8s real %5.1f%% (%d/%d)  flite %5.1f%% (%d/%d)" % (
        name, model, 100 * tot["real"][0] / max(1, tot["real"][1]), *tot["real"],
        100 * tot["flite"][0] / max(1, tot["flite"][1]), *tot["flite"]), flush=True)


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[:1] == ["prep"]:
        prep(float(a[a.index("--snr") + 1]) if "--snr" in a else 20.0,
             a[a.index("--seed") + 1] if "--seed" in a else "", "--cards" in a)
    elif a[:1] == ["run"] and len(a) >= 3:
        extra = a[a.index("--") + 1:] if "--" in a else []
        pos = a[:a.index("--")] if "--" in a else a
        run(pos[1], pos[2], pos[3] if len(pos) > 3 else "general", extra)
    else:
        sys.exit(__doc__)
