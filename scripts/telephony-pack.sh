#!/usr/bin/env bash
# Rebuilds the built-in telephony model pack (models/telephony/, compiled into the
# binary) with `listend adapt`: the clips of the *adaptation* speakers of
# bench/wer/split.tsv from shared/eval/real, rendered as 8 kHz G.711 mu-law (what a
# phone line delivers; ffmpeg -ar 8000 -c:a pcm_mulaw), adapted with one-class
# MLLR. The test speakers are never read, so bench/wer/run's telephone figures
# are on speakers the pack never heard. Extra channel material: Debian's flite
# voices (awb, rms, slt, kal16) reading models/flite-sentences.txt
# through the same mu-law line; on the adaptation speakers held out from it,
# flite alone took mu-law WER from 42 % to 31 % (docs/engine.md), so the pack
# learns the line rather than a few voices. Deterministic: the same inputs give
# the same mllr_matrix (tests/integration/test_adapt.py checks the committed one).
#
# usage: scripts/telephony-pack.sh [OUT (default models/telephony)] [EVAL_DIR (default ../shared/eval/real)]
# needs: build/listend (scripts/build.sh), ffmpeg, flite, sphinxtrain (scripts/bootstrap.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-models/telephony}
EVAL=${2:-${LISTEND_EVAL_DIR:-$(cd .. && pwd)/shared/eval/real}}
[ -f "$EVAL/manifest.tsv" ] || EVAL=/work/shared/eval/real
BIN=${LISTEND_BIN:-build/listend}
[ -x "$BIN" ] || { echo "telephony-pack: build first (scripts/build.sh)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# speaker -> part, then the adaptation clips of the manifest (id, text, speaker)
awk -F'\t' '!/^#/ && $1 != "speaker" {print $1 "\t" $2}' bench/wer/split.tsv >"$tmp/split"
awk -F'\t' 'NR == FNR {part[$1] = $2; next}
            FILENAME ~ /provenance/ && FNR > 1 {spk[$1] = $2; next}
            FILENAME ~ /manifest/ && FNR > 1 && part[spk[$1]] == "adapt" {print $1 "\t" $2 "\t" $4 "\t" spk[$1]}' \
  "$tmp/split" "$EVAL/provenance.tsv" "$EVAL/manifest.tsv" >"$tmp/clips"
mkdir -p "$tmp/audio" "$tmp/tts"
printf 'file\ttext\tspeaker\n' >"$tmp/audio/manifest.tsv"
src=() dst=()
while IFS=$'\t' read -r id file text speaker; do
  src+=("$EVAL/$file") dst+=("$tmp/audio/$id.wav")
  printf '%s.wav\t%s\t%s\n' "$id" "$text" "$speaker" >>"$tmp/audio/manifest.tsv"
done <"$tmp/clips"
n=0
for voice in awb rms slt kal16; do
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    n=$((n + 1))
    id=$(printf 'flite_%s_%03d' "$voice" "$n")
    flite -voice "$voice" -t "$line" -o "$tmp/tts/$id.wav" >/dev/null
    src+=("$tmp/tts/$id.wav") dst+=("$tmp/audio/$id.wav")
    printf '%s.wav\t%s\tflite_%s\n' "$id" "$line" "$voice" >>"$tmp/audio/manifest.tsv"
  done <models/flite-sentences.txt
done
# One ffmpeg per 60 clips instead of one per clip (process start-up was most of the
# script's time): each output has its own resampler and encoder, so the files are
# byte-identical to `ffmpeg -i IN -ar 8000 -c:a pcm_mulaw OUT` one at a time.
for ((b = 0; b < ${#src[@]}; b += 60)); do
  args=() maps=()
  for ((i = b; i < b + 60 && i < ${#src[@]}; i++)); do
    args+=(-i "${src[i]}") maps+=(-map "$((i - b)):a" -ar 8000 -c:a pcm_mulaw "${dst[i]}")
  done
  ffmpeg -nostdin -loglevel error -y "${args[@]}" "${maps[@]}"
done
echo "telephony-pack: $(wc -l <"$tmp/clips") adaptation clips from $EVAL and $n flite clips, as 8 kHz mu-law" >&2
"$BIN" adapt --audio "$tmp/audio" --out "$tmp/telephony" --held-out 0
mkdir -p "$OUT"
cp "$tmp/telephony/mllr_matrix" "$tmp/telephony/pack.json" "$OUT/"
echo "telephony-pack: wrote $OUT (rebuild to compile it in: scripts/build.sh)" >&2
