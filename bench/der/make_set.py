#!/usr/bin/python3
"""Builds the diarization evaluation set from shared/eval/real (real speech only).

  bench/der/make_set.py [--out DIR] [--seed N]
  bench/der/make_set.py --out DIR --dev-seeds 14-21   # a larger tuning set: dev speakers only
  bench/der/make_set.py --out DIR --b2b 1.0 [--dev-seeds 14-21]   # back-to-back speaker changes

Writes DIR/<id>.wav (16 kHz mono s16) and DIR/<id>.ref.tsv (start, end, speaker:
the exact reference speaker segments) plus DIR/set.tsv (id, part, speakers,
duration, text). Nothing is committed as audio: DIR defaults to
$XDG_CACHE_HOME/listend-der (or ~/.cache/listend-der); the same seed gives the
same set, byte for byte.

Speakers come from provenance.tsv (speaker column). The split is
bench/der/split.tsv (the speaker split of bench/wer/split.tsv): `dev`
recordings use only dev speakers (parameters were tuned on them), `test`
recordings only test speakers (reported). Each recording joins clips of 1-4
speakers: every clip is trimmed to its speech (energy, 30 ms margin), long
clips are cut at their own pauses (>= 0.25 s) into pieces, a turn is 1-3
pieces of one speaker (0.1-0.35 s apart), turns are 0.2-1.2 s apart, and a
quarter of the turns continue with the same speaker after a pause. Reference
segments are the pieces' spans, so pauses inside a turn count as speech of
that speaker (as human references do) and pauses between turns as silence.

--b2b FRACTION: that fraction of the speaker changes is joined back to back, the
next speaker starting 0-0.15 s after the last (below diarize's pause_s, 0.3 s,
so no pause splits the two turns; the clips' own 30 ms margins remain), as in
meetings and calls where one voice answers another without a gap. Turns that
continue with the same speaker keep their 0.2-1.2 s pause. Without the option
(or 0) no extra random number is drawn: the default set is byte for byte the set
the figures of docs/benchmarks.md were measured on.
"""
import argparse
import array
import csv
import os
import random
import sys
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EVAL = os.environ.get("LISTEND_EVAL_DIR") or next(
    (d for d in (os.path.join(os.path.dirname(ROOT), "shared", "eval", "real"), "/work/shared/eval/real")
     if os.path.isdir(d)), "/work/shared/eval/real")
RATE = 16000
FRAME = 160  # 10 ms


def default_out():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "listend-der")


def read_wav(path):
    with wave.open(path) as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2, path
        a = array.array("h")
        a.frombytes(w.readframes(w.getnframes()))
        if sys.byteorder == "big":
            a.byteswap()
        return a


def frame_energy(a):
    out = []
    for i in range(0, len(a) - FRAME + 1, FRAME):
        s = 0
        for x in a[i:i + FRAME]:
            s += x * x
        out.append(s / FRAME)
    return out


def speech_pieces(a):
    """Speech spans (sample ranges) of a clip: frames above 1/300 of the 95th-percentile
    energy (-25 dB) are speech; gaps >= 0.25 s split pieces; 30 ms margin."""
    e = frame_energy(a)
    if not e:
        return []
    top = sorted(e)[int(0.95 * (len(e) - 1))]
    thr = max(top / 300.0, 1e3)
    voiced = [x > thr for x in e]
    spans, start, last = [], None, None
    for i, v in enumerate(voiced):
        if v:
            if start is None:
                start = i
            elif i - last > 25:
                spans.append((start, last + 1))
                start = i
            last = i
    if start is not None:
        spans.append((start, last + 1))
    spans = [(s, e) for s, e in spans if e - s >= 8]  # >= 80 ms: a click is not speech
    out = []
    for s, e in spans:
        s = max(0, s - 3) * FRAME
        e = min(len(voiced), e + 3) * FRAME
        out.append((s, e))
    return out


def load_clips():
    with open(os.path.join(EVAL, "provenance.tsv")) as f:
        spk = {r["id"]: r["speaker"] for r in csv.DictReader(f, delimiter="\t")}
    with open(os.path.join(EVAL, "manifest.tsv")) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    by = {}
    for r in rows:
        a = read_wav(os.path.join(EVAL, r["file"]))
        spans = speech_pieces(a)
        if not spans:
            continue
        by.setdefault(spk[r["id"]], []).append({"id": r["id"], "audio": a, "spans": spans,
                                                "text": r["reference_text"]})
    return by


def load_split():
    parts = {}
    with open(os.path.join(HERE, "split.tsv")) as f:
        for line in f:
            if line.startswith("#") or line.startswith("speaker\t") or not line.strip():
                continue
            s, p = line.split()
            parts[s] = p
    return parts


def pieces_of(speaker_clips, rng, max_piece_s):
    """Units a speaker can take turns with: a clip's pieces, merged back while they stay short."""
    units = []
    for c in speaker_clips:
        cur = None
        for s, e in c["spans"]:
            if cur and (e - cur[0]) / RATE <= max_piece_s:
                cur = (cur[0], e)
            else:
                if cur:
                    units.append((c, cur))
                cur = (s, e)
        units.append((c, cur))
    rng.shuffle(units)
    return units


def compose(rng, speakers, by, target_s, b2b=0.0):
    """One recording: (samples, [(start_s, end_s, speaker)], text). b2b: the fraction of
    speaker changes with a 0-0.15 s gap instead of 0.2-1.2 s."""
    pools = {s: pieces_of(by[s], rng, rng.choice([2.5, 4.0, 8.0])) for s in speakers}
    out = array.array("h")
    ref, text = [], []

    def silence(sec):
        out.extend([0] * int(sec * RATE))

    silence(rng.uniform(0.3, 0.8))
    order = list(speakers)
    rng.shuffle(order)
    prev = None
    # every speaker gets a turn first (in random order), then turns continue while material lasts
    pending = list(order)
    while True:
        if pending:
            s = pending.pop(0)
        else:
            left = [x for x in speakers if pools[x]]
            if not left or len(out) / RATE >= target_s:
                break
            if prev in left and rng.random() < 0.25:
                s = prev
            else:
                others = [x for x in left if x != prev]
                s = rng.choice(others or left)
        if not pools[s]:
            continue
        if prev is not None:
            if b2b > 0 and s != prev and rng.random() < b2b:
                silence(rng.uniform(0.0, 0.15))
            else:
                silence(rng.uniform(0.2, 1.2))
        for k in range(rng.choice([1, 1, 2, 3])):
            if not pools[s]:
                break
            if k:
                silence(rng.uniform(0.1, 0.35))
            c, (a, b) = pools[s].pop()
            t0 = len(out) / RATE
            out.extend(c["audio"][a:b])
            ref.append((t0, len(out) / RATE, s))
            text.append(c["id"])
        prev = s
    silence(rng.uniform(0.3, 0.8))
    # a turn's pieces of one speaker close together are one reference segment
    merged = []
    for s, e, spk in ref:
        if merged and merged[-1][2] == spk and s - merged[-1][1] < 0.4:
            merged[-1] = (merged[-1][0], e, spk)
        else:
            merged.append((s, e, spk))
    return out, merged


def write_wav(path, a):
    b = array.array("h", a)
    if sys.byteorder == "big":
        b.byteswap()
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b.tobytes())


# (part, speakers as "main" plus others drawn from the part, how many recordings, target seconds)
PLAN = {
    "dev": {"mains": ["librivox_sns01_reader"], "seconds": 40},
    "test": {"mains": ["cathy"], "seconds": 45},
}


def build(out_dir, seed, dev_seeds=(), b2b=0.0):
    """The set of `seed` (dev and test); with dev_seeds, only dev recordings, of each of those seeds
    (ids dev<seed>_...): more tuning material from the same dev speakers, no test speaker touched."""
    by = load_clips()
    parts = load_split()
    if dev_seeds:
        rows = []
        for sd in dev_seeds:
            rows += _build(out_dir, sd, by, parts, ("dev",), f"dev{sd}", b2b)
    else:
        rows = _build(out_dir, seed, by, parts, ("dev", "test"), None, b2b)
    with open(os.path.join(out_dir, "set.tsv"), "w") as f:
        f.write("id\tpart\tspeakers\tduration_s\twho\n")
        for r in rows:
            f.write(f"{r[0]}\t{r[1]}\t{r[2]}\t{r[3]:.2f}\t{r[4]}\n")
    return rows


def _build(out_dir, seed, by, parts, which, tag, b2b=0.0):
    rng = random.Random(seed)
    missing = sorted(set(by) - set(parts))
    if missing:
        sys.exit(f"split.tsv: speakers without a part: {', '.join(missing)}")
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for part in which:
        spk = [s for s in sorted(by) if parts[s] == part]
        main = PLAN[part]["mains"][0]
        multi = [s for s in spk if s != main and sum(len(c["spans"]) for c in by[s]) > 1]
        single = [s for s in spk if s != main and s not in multi]
        n = 0
        for count, reps in ((1, 2), (2, 6), (3, 4), (4, 4)):
            for _ in range(reps):
                others = []
                if count > 1:
                    # the multi-piece speakers take part in about half the recordings
                    if multi and rng.random() < 0.6:
                        others.append(rng.choice(multi))
                    others += rng.sample([s for s in single if s not in others], count - 1 - len(others))
                speakers = [main] + others
                audio, ref = compose(rng, speakers, by, PLAN[part]["seconds"] if count > 1 else 25, b2b)
                rid = f"{tag or part}_{count}spk_{n:02d}"
                n += 1
                write_wav(os.path.join(out_dir, rid + ".wav"), audio)
                with open(os.path.join(out_dir, rid + ".ref.tsv"), "w") as f:
                    f.write("start\tend\tspeaker\n")
                    for s, e, who in ref:
                        f.write(f"{s:.3f}\t{e:.3f}\t{who}\n")
                rows.append((rid, part, len({r[2] for r in ref}), len(audio) / RATE, ",".join(speakers)))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=default_out())
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--dev-seeds", help="e.g. 14-21: dev recordings only, of each seed (extra tuning set; "
                    "use another --out)")
    ap.add_argument("--b2b", type=float, default=0.0, metavar="FRACTION",
                    help="fraction of speaker changes joined back to back (0-0.15 s gap); use another --out")
    a = ap.parse_args()
    seeds = []
    if a.dev_seeds:
        lo, _, hi = a.dev_seeds.partition("-")
        seeds = list(range(int(lo), int(hi or lo) + 1))
    rows = build(a.out, a.seed, seeds, a.b2b)
    for r in rows:
        print(f"{r[0]}\t{r[2]} speakers\t{r[3]:.1f} s\t{r[4]}")
    print(f"{len(rows)} recordings in {a.out}")


if __name__ == "__main__":
    main()
