#!/bin/sh
# names.sh WORDLIST OUT: the proper-name table of asr/redact.c (cmake/names.awk,
# byte-order sorted for bsearch, then cmake/names-c.awk). Run by the build.
set -e
dir=$(dirname "$0")
awk -f "$dir/names.awk" "$1" | LC_ALL=C sort | awk -f "$dir/names-c.awk" > "$2.tmp"
mv "$2.tmp" "$2"
