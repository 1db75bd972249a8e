#!/bin/sh
# HEALTHCHECK of the image and compose file: exit 0 only when GET /health on the
# local listend answers 200 (503 while it loads models, drains or has no
# decoders). Port and scheme follow the server's own variables (https when
# LISTEND_TLS_CERT is set; -k since the certificate names the public host, not
# 127.0.0.1); LISTEND_HEALTH_PORT / LISTEND_HEALTH_SCHEME override them.
set -u
port="${LISTEND_HEALTH_PORT:-${API_SERVER_PORT:-${PORT:-7100}}}"
scheme=http
[ -n "${LISTEND_TLS_CERT:-}" ] && scheme=https
scheme="${LISTEND_HEALTH_SCHEME:-$scheme}"
exec curl -fsS -k -o /dev/null --max-time "${LISTEND_HEALTH_TIMEOUT:-4}" "$scheme://127.0.0.1:$port/health"
