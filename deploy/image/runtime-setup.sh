#!/bin/sh
# The image's runtime stage: shared libraries + model from runtime-packages.txt,
# an unprivileged user, and the data dir it owns (a fresh named volume copies
# this ownership, so the server can write listend.db, jobs.db and tmp/ there).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
uid="${LISTEND_UID:-10001}"
data="${LISTEND_DATA:-/var/lib/listend}"

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2046
apt-get install -y -qq --no-install-recommends $(grep -v -e '^\s*#' -e '^\s*$' "$here/runtime-packages.txt") >/dev/null
rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb

groupadd --system --gid "$uid" listend
useradd --system --uid "$uid" --gid "$uid" --home-dir "$data" --no-create-home \
    --shell /usr/sbin/nologin listend
# trusted/ is where extra issuer public keys are mounted (compose, Kubernetes).
install -d -m 0750 -o "$uid" -g "$uid" "$data" "$data/trusted" "$data/tmp"
