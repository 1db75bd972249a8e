#!/usr/bin/env bash
# The README's first command: install what is missing, build, create a data dir
# with an issuer key pair (if missing), print a development license key, and
# start the server on :7100 (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/build.sh
export LISTEND_DATA="${LISTEND_DATA:-$PWD/listend-data}"
if [ ! -f "$LISTEND_DATA/issuer.pub" ]; then
  build/listend keys init --data "$LISTEND_DATA"
fi
KEY=$(build/listend keys issue --data "$LISTEND_DATA" --name development --expires-in 30d)
cat <<MSG

  Development license key (valid 30 days):

    export LICENSE_KEY=$KEY

  In a browser: http://localhost:${API_SERVER_PORT:-7100}/  (paste the key, drop a file or press Start talking)

  Try:  curl http://localhost:${API_SERVER_PORT:-7100}/health
        curl -H "Authorization: Token \$LICENSE_KEY" -F audio=@/usr/share/pocketsphinx/test/data/goforward.raw \\
             "http://localhost:${API_SERVER_PORT:-7100}/v1/listen?encoding=linear16&sample_rate=16000"

MSG
exec build/listend serve --data "$LISTEND_DATA" "$@"
