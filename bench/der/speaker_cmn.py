#!/usr/bin/python3
"""Per-speaker CMN experiment (issue 14): does normalising every segment with its speaker's mean
cepstrum, once speakers are known, decode better than listend's per-segment batch CMN?

    /usr/bin/python3 bench/der/speaker_cmn.py [--mulaw]

Builds bench/der/speaker_cmn.c (libpocketsphinx, listend's search settings, listend's audio decoder from
build/: run scripts/build.sh first) in a temporary folder,
decodes every clip of shared/eval/real plus pocketsphinx-testdata's `cards` speaker three ways
(batch = listend; own = live decoding with the clip's own mean held fixed, the control; speaker =
the mean of all that speaker's clips, i.e. perfect speaker labels) and prints WER per speaker group.
--mulaw: the clips rendered as 8 kHz G.711 and decoded as listend's telephony route does (16 kHz,
models/telephony MLLR transform). No parameter is chosen, so every speaker is reported (cathy is the
test part of bench/wer/split.tsv; the reader the adapt part; cards in neither).
"""
import argparse
import array
import collections
import csv
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from audio_fixtures import EVAL_DIR, word_distance, words  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "bench", "wer"))
import conditions  # noqa: E402

CARDS = "/usr/share/pocketsphinx/test/data/cards"


def speaker(clip_id):
    m = re.match(r"(cathy|ps_librivox|an4_[a-z0-9]+)", clip_id)
    return {"ps_librivox": "reader"}.get(m.group(1), m.group(1)) if m else clip_id


def clips():
    """[(speaker, wav path, reference text)]"""
    with open(os.path.join(EVAL_DIR, "manifest.tsv")) as f:
        out = [(speaker(r["id"]), os.path.join(EVAL_DIR, r["file"]), r["reference_text"])
               for r in csv.DictReader(f, delimiter="\t")]
    with open(os.path.join(CARDS, "cards.transcription")) as f:
        for line in f:
            m = re.match(r"<s>(.*)</s> \((\d+)\)", line.strip())
            out.append(("cards", os.path.join(CARDS, m.group(2) + ".wav"), m.group(1).strip()))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mulaw", action="store_true", help="8 kHz G.711 renderings, telephony transform")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ld-speaker-cmn-") as tmp:
        exe = os.path.join(tmp, "speaker_cmn")
        # listend's audio decoder (build/'s static libraries, as bench/der/run builds tune.c) and libpocketsphinx
        libs = [os.path.join(ROOT, "build", x) for x in ("libld_audio.a", "libld_util.a")]
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "pocketsphinx", "sphinxbase", "libavformat",
                                "libavcodec", "libavfilter", "libswresample", "libavutil", "jansson"],
                               capture_output=True, text=True, check=True).stdout.split()
        subprocess.run(["cc", "-O2", "-I" + os.path.join(ROOT, "src"), os.path.join(HERE, "speaker_cmn.c"), *libs,
                        "-o", exe, *flags, "-lm", "-lpthread"], check=True)
        rows, extra = clips(), []
        if a.mulaw:  # bench/wer's rendering, brought to 16 kHz as listend does (src/audio/narrowband.c)
            conv = []
            for i, (spk, path, ref) in enumerate(rows):
                d = os.path.join(tmp, str(i))
                os.mkdir(d)
                g711, out = conditions.render("mulaw", path, d), os.path.join(d, "16k.wav")
                pcm8 = array.array("h", subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", g711,
                                                        "-f", "s16le", "-"], capture_output=True, check=True).stdout)
                pcm16 = array.array("h", [0]) * (2 * len(pcm8))
                pcm16[0::2] = pcm8  # zero insertion: every sample followed by a 0, no anti-imaging filter
                conditions.write_wav16(out, pcm16, 16000)
                conv.append((spk, out, ref))
            rows, extra = conv, ["-mllr", os.path.join(ROOT, "models", "telephony", "mllr_matrix")]
        ref = {p: r for _, p, r in rows}
        group = {p: s if s in ("cathy", "reader", "cards") else "one-clip speakers" for s, p, _ in rows}
        out = subprocess.run([exe, *extra], input="".join(f"{s}\t{p}\n" for s, p, _ in rows),
                             capture_output=True, text=True, check=True).stdout
    tot = collections.defaultdict(lambda: [0, 0])
    for line in out.splitlines():
        variant, path, hyp = (line.split("\t") + [""])[:3]
        r = words(ref[path])
        for g in (group[path], "all"):
            tot[(g, variant)][0] += word_distance(r, words(hyp))
            tot[(g, variant)][1] += len(r)
    print(f"{'speakers':18} {'batch (listend)':>16} {'own mean held':>16} {'speaker mean':>16}")
    for g in ("cathy", "reader", "cards", "one-clip speakers", "all"):
        cells = [f"{tot[(g, v)][0]:4}/{tot[(g, v)][1]:<4} {100 * tot[(g, v)][0] / max(1, tot[(g, v)][1]):5.1f}%"
                 for v in ("batch", "own", "speaker")]
        print(f"{g:18} " + " ".join(f"{c:>16}" for c in cells))


if __name__ == "__main__":
    main()
