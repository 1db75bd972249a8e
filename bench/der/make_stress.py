#!/usr/bin/python3
"""Dev-only stress set for the speaker count: one voice talking in short turns.

  bench/der/make_stress.py --from DEVDIR --out DIR [--seed 3]

The bench set has many speakers who say one word and no speaker who talks only in
short turns, so a rule that keeps short clusters apart cannot fail on it. This set
takes the 1- and 2-speaker recordings of DEVDIR (a dev set whose words are cached by
`bench/der/run --tune`, e.g. one made with `make_set.py --dev-seeds 14-21`) and
inserts 0.5-1.0 s of silence after every 1-3 recognised words (at the middle of the
gap between two words), shifting the cached word times with the audio (no decode).
So every voice of the recording speaks in turns of 1-3 words, and its count must
stay 1 or 2. Only the count means something here: the reference segments keep the
inserted pauses as speech (they are inside a turn), so DER counts them as missed.

Then: bench/der/run --part dev --set DIR --tune "pitch_margin=0.25,0.5"
"""
import argparse
import array
import csv
import json
import os
import random
import wave


def build(src, out, seed):
    rng = random.Random(seed)
    os.makedirs(os.path.join(out, "words"), exist_ok=True)
    with open(os.path.join(src, "set.tsv")) as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["part"] == "dev" and r["speakers"] in ("1", "2")]
    done = []
    for r in rows:
        with wave.open(os.path.join(src, r["id"] + ".wav")) as w:
            a = array.array("h")
            a.frombytes(w.readframes(w.getnframes()))
        with open(os.path.join(src, "words", r["id"] + ".json")) as f:
            ws = json.load(f)
        with open(os.path.join(src, r["id"] + ".ref.tsv")) as f:
            ref = [line.split("\t") for line in f.read().split("\n")[1:] if line]
        cuts, i = [], 0  # (time, pause seconds)
        while i < len(ws) - 1:
            i += rng.choice([1, 2, 3])
            if i < len(ws):
                cuts.append(((ws[i - 1][1] + ws[i][0]) / 2, int(rng.uniform(0.5, 1.0) * 16000) / 16000))

        def start(t):  # a time at a cut belongs after the pause...
            return t + sum(p for c, p in cuts if c <= t)

        def end(t):  # ...an end time at a cut before it
            return t + sum(p for c, p in cuts if c < t)

        o, prev = array.array("h"), 0
        for c, p in cuts:
            k = int(round(c * 16000))
            o.extend(a[prev:k])
            o.extend([0] * int(round(p * 16000)))
            prev = k
        o.extend(a[prev:])
        rid = "stress_" + r["id"]
        with wave.open(os.path.join(out, rid + ".wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(o.tobytes())
        with open(os.path.join(out, "words", rid + ".json"), "w") as f:
            json.dump([[start(s), end(e)] for s, e in ws], f)
        with open(os.path.join(out, rid + ".ref.tsv"), "w") as f:
            f.write("start\tend\tspeaker\n")
            for s, e, who in ref:
                f.write(f"{start(float(s)):.3f}\t{end(float(e)):.3f}\t{who}\n")
        done.append((rid, "dev", r["speakers"], len(o) / 16000, r["who"]))
    with open(os.path.join(out, "set.tsv"), "w") as f:
        f.write("id\tpart\tspeakers\tduration_s\twho\n")
        for d in done:
            f.write(f"{d[0]}\t{d[1]}\t{d[2]}\t{d[3]:.2f}\t{d[4]}\n")
    return done


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="src", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()
    print(f"{len(build(a.src, a.out, a.seed))} recordings in {a.out}")


if __name__ == "__main__":
    main()
