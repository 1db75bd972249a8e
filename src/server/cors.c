/* CORS: the allowed origins come from --cors-origin (config.c normalises them
 * to a comma-separated list without trailing slashes). Credentials (cookies)
 * are never allowed: the API authenticates with the Authorization header,
 * which a preflight must list explicitly, so `*` works with keys too. */
#include "server/cors.h"

#include <string.h>
#include <strings.h>

#include "server/srv.h"

#define ALLOW_HEADERS "authorization, content-type, x-request-id"
#define EXPOSE_HEADERS \
    "X-Request-ID, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, X-Quota-Limit, X-Quota-Remaining, X-Quota-Reset, Retry-After"
#define MAX_AGE "600"

static const char *origin_of(ld_req *r) { return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin"); }

/* "*" (any origin), "origin" (this one), or NULL (not allowed). */
static const char *allowed(ld_req *r, const char *origin)
{
    const char *list = r->srv->cfg.cors_origin;
    if (!*list || !origin || !*origin)
        return NULL;
    size_t n = strlen(origin);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == 1 && *p == '*')
            return "*";
        if (len == n && !strncasecmp(p, origin, n))
            return origin;
        p += len;
        if (*p == ',')
            p++;
    }
    return NULL;
}

bool ld_cors_preflight(ld_req *r, const char *route_methods)
{
    if (!MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Access-Control-Request-Method") ||
        !allowed(r, origin_of(r)))
        return false;
    r->cors_preflight = route_methods;
    return true;
}

void ld_cors_decorate(ld_req *r, struct MHD_Response *resp)
{
    const char *origin = allowed(r, origin_of(r));
    if (!origin)
        return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
    if (strcmp(origin, "*"))
        MHD_add_response_header(resp, "Vary", "Origin");
    if (r->cors_preflight) {
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", r->cors_preflight);
        MHD_add_response_header(resp, "Access-Control-Allow-Headers", ALLOW_HEADERS);
        MHD_add_response_header(resp, "Access-Control-Max-Age", MAX_AGE);
    } else {
        MHD_add_response_header(resp, "Access-Control-Expose-Headers", EXPOSE_HEADERS);
    }
}
