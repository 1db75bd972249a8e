#!/usr/bin/env bash
# Makes a noise pack (an MLLR transform) with `listend adapt --denoise`: the clips of
# the *adaptation* speakers of bench/wer/split.tsv from shared/eval/real and Debian's
# flite voices (awb, rms, slt, kal16) reading models/flite-sentences.txt, each with
# pink noise mixed in at 15, 20 or 25 dB SNR (bench/wer/conditions.py, a fixed seed
# per clip), passed through the noisy route's denoiser (audio/denoise.h), adapted with
# one-class MLLR. NOT built in: the built-in `noisy` route is the denoiser with the
# model as it is, because such packs did not help speakers they never heard
# (docs/engine.md § Noise). Kept to reproduce that measurement and as an example:
#   scripts/noisy-pack.sh /tmp/packs/noisy && listend serve --models /tmp/packs
# makes model=noisy (and model=auto on noisy audio) use the denoiser plus this transform.
#
# usage: scripts/noisy-pack.sh OUT [EVAL_DIR (default ../shared/eval/real)]
# needs: build/listend (scripts/build.sh), ffmpeg, flite, sphinxtrain (scripts/bootstrap.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: scripts/noisy-pack.sh OUT [EVAL_DIR]}
EVAL=${2:-${LISTEND_EVAL_DIR:-$(cd .. && pwd)/shared/eval/real}}
[ -f "$EVAL/manifest.tsv" ] || EVAL=/work/shared/eval/real
BIN=${LISTEND_BIN:-build/listend}
[ -x "$BIN" ] || { echo "noisy-pack: build first (scripts/build.sh)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/audio"
/usr/bin/python3 - "$EVAL" "$tmp" <<'PY'
import csv, os, subprocess, sys
sys.path.insert(0, "bench/wer")
import conditions

evals, tmp = sys.argv[1], sys.argv[2]
parts = {}
for line in open("bench/wer/split.tsv"):
    if not line.startswith("#") and not line.startswith("speaker\t") and line.strip():
        spk, part = line.rstrip("\n").split("\t")[:2]
        parts[spk] = part
speaker = {r["id"]: r["speaker"] for r in csv.DictReader(open(os.path.join(evals, "provenance.tsv")), delimiter="\t")}
clips = [(r["id"], os.path.join(evals, r["file"]), r["reference_text"], speaker[r["id"]])
         for r in csv.DictReader(open(os.path.join(evals, "manifest.tsv")), delimiter="\t")
         if parts[speaker[r["id"]]] == "adapt"]
n = 0
for voice in ("awb", "rms", "slt", "kal16"):
    for line in open("models/flite-sentences.txt"):
        if line.strip():
            n += 1
            wav = os.path.join(tmp, "flite_%s_%03d_16k.wav" % (voice, n))  # these voices speak 16 kHz mono s16
            subprocess.run(["flite", "-voice", voice, "-t", line.strip(), "-o", wav], check=True, capture_output=True)
            clips.append(("flite_%s_%03d" % (voice, n), wav, line.strip(), "flite_" + voice))
with open(os.path.join(tmp, "audio", "manifest.tsv"), "w") as m:
    m.write("file\ttext\tspeaker\n")
    for i, (cid, src, text, spk) in enumerate(clips):
        conditions.add_noise(src, os.path.join(tmp, "audio", cid + ".wav"), (15.0, 20.0, 25.0)[i % 3], cid)
        m.write("%s.wav\t%s\t%s\n" % (cid, text, spk))
print("noisy-pack: %d clips with pink noise at 15/20/25 dB" % len(clips), file=sys.stderr)
PY
"$BIN" adapt --audio "$tmp/audio" --out "$tmp/noisy" --held-out 0 --denoise
mkdir -p "$OUT"
cp "$tmp/noisy/mllr_matrix" "$tmp/noisy/pack.json" "$OUT/"
echo "noisy-pack: wrote $OUT (serve it with --models $(dirname "$OUT"))" >&2
