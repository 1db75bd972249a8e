#!/usr/bin/env bash
# Installs the Debian bookworm packages listend needs to build, run and test.
# Only missing packages are installed; as non-root it prints the apt-get line instead.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config
  libmicrohttpd-dev libwslay-dev libjansson-dev libgnutls28-dev
  libavformat-dev libavcodec-dev libswresample-dev libavutil-dev libavfilter-dev
  libcurl4-gnutls-dev libsodium-dev libsqlite3-dev libhiredis-dev
  libpocketsphinx-dev libsphinxbase-dev pocketsphinx-en-us
  flite1-dev  # letter-to-sound for keywords (asr/vocab.h)
  wamerican   # proper names for redaction (asr/redact.h), compiled in at build time
  # listend adapt (model packs): bw, mllr_solve; sphinx_fe; pocketsphinx_mdef_convert
  sphinxtrain sphinxbase-utils pocketsphinx flite
  redis-server haproxy
  # tests, benchmarks, fuzzing
  python3-pytest python3-pytest-xdist python3-requests python3-websockets
  chromium  # headless browser for the playground tests (tests/browser, puppeteer-core)
  ffmpeg pocketsphinx pocketsphinx-testdata gnutls-bin openssl curl wrk
  clang-14 libclang-rt-14-dev clang-format-14  # fuzzing; the format check (test_layout.py)
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
if [ "$(id -u)" -ne 0 ]; then
  echo "listend needs these packages; run as root:" >&2
  echo "  apt-get update && ${cmd[*]}" >&2
  exit 1
fi
echo "bootstrap: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
"${cmd[@]}" >/dev/null
