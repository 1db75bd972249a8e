/* Admission of one request or stream handshake (docs/api.md, "Authentication
 * and limits"): brute-force throttle per client address, key check, then rate
 * / quota / concurrency via ld_auth. */
#include "server/admit.h"

#include <sodium.h>
#include <string.h>

#include "server/srv.h"
#include "server/ws_proto.h"
#include "util/log.h"
#include "util/time.h"

static const char *header(ld_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* Checks the key from where the route takes it. *presented: a key (or an
 * Authorization header) was offered at all. */
static ld_err check_key(ld_req *r, ld_auth_from from, bool *presented, ld_error *e)
{
    ld_auth *a = r->srv->auth;
    const char *authz = header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    *presented = authz != NULL;
    if (authz || from != LD_AUTH_STREAM)
        return ld_auth_check_header(a, authz, &r->key, e);
    char key[1024];
    if (ld_ws_subprotocol_key(header(r, "Sec-WebSocket-Protocol"), key, sizeof key)) {
        *presented = true;
        ld_err rc = ld_auth_check_key(a, key, &r->key, e);
        sodium_memzero(key, sizeof key);
        return rc;
    }
    const char *token = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "token");
    if (token) {
        *presented = true;
        return ld_auth_check_key(a, token, &r->key, e);
    }
    return ld_auth_check_header(a, NULL, &r->key, e);
}

bool ld_admit(ld_req *r, ld_auth_from from, bool quota)
{
    ld_auth *a = r->srv->auth;
    int retry_after = 0;
    if (ld_auth_client_throttled(a, r->client, &retry_after)) {
        if (retry_after < 1)
            retry_after = 1;
        /* DEBUG: under a brute-force run this fires per request; the access
         * log already records each 429. */
        ld_log_fields(LD_LOG_DEBUG, json_pack("{s:s,s:s}", "client", r->client, "request_id", r->request_id),
                      "Too many failed authentications from %s", r->client);
        ld_req_fail(r, LD_ERR_RATE_LIMITED, json_pack("{s:i}", "retry_after", retry_after),
                    "Too many failed authentication attempts; retry later");
        return false;
    }

    ld_error e = {0};
    bool presented;
    if (check_key(r, from, &presented, &e) != LD_OK) {
        /* Log the address and the reason, never the key text. */
        ld_log_fields(LD_LOG_WARNING,
                      json_pack("{s:s,s:s,s:s}", "client", r->client, "request_id", r->request_id, "code",
                                ld_err_code(e.code)),
                      presented ? "Invalid license key from %s" : "Missing Authorization header from %s",
                      r->client);
        if (e.code == LD_ERR_LICENSE_EXPIRED) {
            char iso[24];
            ld_time_iso8601(r->key.expires_at, iso);
            ld_req_fail(r, LD_ERR_LICENSE_EXPIRED, json_pack("{s:s}", "expires_at", iso), "License expired");
        } else {
            ld_auth_client_failed(a, r->client);
            ld_req_fail(r, e.code ? e.code : LD_ERR_INVALID_LICENSE, NULL, "%s",
                        e.code == LD_ERR_INVALID_LICENSE || !e.code ? "Invalid license key" : e.msg);
        }
        return false;
    }

    r->authed = true;
    memset(&r->rate, 0, sizeof r->rate);
    ld_err code = ld_auth_admit(a, &r->key, quota, &r->lease, &r->rate, &e);
    r->have_rate = true;
    /* Every authenticated request, admitted or refused, counts for the key's
     * anomaly rule and refreshes its quota gauge. */
    ld_monitor_request(r->srv->monitor, &r->key, r->rate.have_quota ? r->rate.quota_used : -1);
    if (code == LD_OK)
        return true;
    json_t *extra = NULL;
    if (code == LD_ERR_QUOTA_EXCEEDED && r->rate.retry_after > 0)
        extra = json_pack("{s:i}", "retry_after", r->rate.retry_after); /* until the UTC day ends */
    /* Refused for rate, or because shared state (Redis) is down: say when to retry. */
    if (code == LD_ERR_RATE_LIMITED || code == LD_ERR_SERVICE_UNAVAILABLE)
        extra = json_pack("{s:i}", "retry_after", r->rate.retry_after > 0 ? r->rate.retry_after : 1);
    ld_req_fail(r, code, extra, "%s", e.msg[0] ? e.msg : ld_err_default_message(code));
    return false;
}
