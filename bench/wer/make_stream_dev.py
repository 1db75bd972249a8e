#!/usr/bin/python3
"""Dev sets for live-stream settings (docs/engine.md § Live CMN of streams). Dev only:
the adapt-part speakers of bench/wer/split.tsv and flite voices, never the test part.

  bench/wer/make_stream_dev.py [--out DIR]     (default ~/.cache/listend-stream-dev)

Writes two sets, each with manifest.tsv, provenance.tsv and split.tsv for bench/wer/run:
  DIR/single  the adapt-part clips at 0, -12 and +6 dB, and flite slt and rms reading
              sentences 1-20 of models/flite-sentences.txt, awb 21-40 (120 clips, 837 words)
  DIR/multi   one stream per voice: the LibriVox reader's clips, the AN4 adapt speakers' clips
              (one word each, different people), and each flite voice's sentences in fives,
              1.2 s of silence after each (14 streams of ~30 s, 620 words)
Measure, e.g.:
  LISTEND_STREAM_CMN=150,1000 bench/wer/run --start --stream --workers 1 --part adapt \\
      --manifest DIR/single/manifest.tsv --split DIR/single/split.tsv --condition clean
"""
import argparse
import csv
import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EVAL = os.environ.get("LISTEND_EVAL_DIR") or next(
    (d for d in (os.path.join(os.path.dirname(ROOT), "shared", "eval", "real"), "/work/shared/eval/real")
     if os.path.isdir(d)), "/work/shared/eval/real")


def ffmpeg(src, dst, *args):
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", src, *args, "-ar", "16000", "-ac", "1", dst],
                   check=True)


def write_set(out, rows):
    """rows: (id, file, speaker, reference)"""
    with open(os.path.join(out, "manifest.tsv"), "w") as f:
        f.write("id\tfile\tduration_s\treference_text\n")
        f.writelines(f"{i}\t{fl}\t0\t{t}\n" for i, fl, _, t in rows)
    with open(os.path.join(out, "provenance.tsv"), "w") as f:
        f.write("id\tspeaker\n")
        f.writelines(f"{i}\t{s}\n" for i, _, s, _ in rows)
    with open(os.path.join(out, "split.tsv"), "w") as f:
        f.write("speaker\tpart\n")
        f.writelines(f"{s}\tadapt\n" for s in sorted({r[2] for r in rows}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.expanduser("~/.cache/listend-stream-dev"))
    a = ap.parse_args()
    single, multi = os.path.join(a.out, "single"), os.path.join(a.out, "multi")
    os.makedirs(single, exist_ok=True)
    os.makedirs(multi, exist_ok=True)
    parts = {}
    for line in open(os.path.join(ROOT, "bench", "wer", "split.tsv")):
        if line.strip() and not line.startswith("#") and not line.startswith("speaker\t"):
            s, p = line.rstrip("\n").split("\t")[:2]
            parts[s] = p
    spk = {r["id"]: r["speaker"] for r in csv.DictReader(open(os.path.join(EVAL, "provenance.tsv")), delimiter="\t")}
    rows, groups = [], {}
    for r in csv.DictReader(open(os.path.join(EVAL, "manifest.tsv")), delimiter="\t"):
        if parts[spk[r["id"]]] != "adapt":
            continue
        for g in (0, -12, 6):
            cid = f"{r['id']}_g{g}"
            ffmpeg(os.path.join(EVAL, r["file"]), os.path.join(single, cid + ".wav"), "-af", f"volume={g}dB")
            rows.append((cid, cid + ".wav", f"{spk[r['id']]}_g{g}", r["reference_text"]))
            if g == 0 and r["id"].startswith(("ps_librivox", "an4")):
                groups.setdefault("reader" if r["id"].startswith("ps_") else "an4mix", []).append(rows[-1])
    sents = [s.strip() for s in open(os.path.join(ROOT, "models", "flite-sentences.txt")) if s.strip()]
    for voice, first in (("slt", 0), ("rms", 0), ("awb", 20)):
        for i, text in enumerate(sents[first:first + 20]):
            cid = f"flite_{voice}_{i:02d}"
            tmp = os.path.join(single, cid + ".tmp.wav")
            subprocess.run(["flite", "-voice", voice, "-t", text, "-o", tmp], check=True)
            ffmpeg(tmp, os.path.join(single, cid + ".wav"))
            os.remove(tmp)
            rows.append((cid, cid + ".wav", f"flite_{voice}", re.sub(r"[^a-z0-9' ]+", " ", text.lower()).strip()))
            groups.setdefault(f"{voice}_{i // 5}", []).append(rows[-1])
    write_set(single, rows)
    sil = os.path.join(multi, "silence.wav")
    subprocess.run(["sox", "-D", "-n", "-r", "16000", "-c", "1", "-b", "16", sil, "trim", "0", "1.2"], check=True)
    mrows = []
    for g, rs in groups.items():
        files = [x for r in rs for x in (os.path.join(single, r[1]), sil)]
        subprocess.run(["sox", "-D", *files, os.path.join(multi, f"multi_{g}.wav")], check=True)
        mrows.append((f"multi_{g}", f"multi_{g}.wav", g, " ".join(r[3] for r in rs)))
    write_set(multi, mrows)
    print(f"{a.out}: single {len(rows)} clips, multi {len(mrows)} streams")


if __name__ == "__main__":
    main()
