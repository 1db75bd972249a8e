/* Admission (admit.c); internal to src/server/. One function for HTTP
 * requests and stream handshakes alike. */
#ifndef LD_SERVER_ADMIT_H
#define LD_SERVER_ADMIT_H

#include <stdbool.h>

#include "server/req.h"

/* Where a route takes the license key from. */
typedef enum {
    LD_AUTH_NONE,   /* a public route */
    LD_AUTH_HEADER, /* Authorization: Token|Bearer <key> */
    LD_AUTH_STREAM, /* the header, else Sec-WebSocket-Protocol: token, <key>, else ?token=<key>
                     * (browsers cannot set headers on a WebSocket) */
} ld_auth_from;

/* In this order: the client address's failed-authentication throttle (429),
 * the key (401; expired: 403 with expires_at), a failure logged (address and
 * reason, never the key) and counted against the address, then the key's
 * limits through ld_auth_admit (rpm and concurrency 429, quota 403 when
 * `quota`, Redis down 503; retry_after when it helps). true: r->authed, r->key,
 * r->rate and r->lease (when the limits took one) are set. false: r->pending
 * holds the error. */
bool ld_admit(ld_req *r, ld_auth_from from, bool quota);

#endif
