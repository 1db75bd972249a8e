/* The playground's routes. Every answer carries a strict Content-Security-
 * Policy: scripts and styles only from this server (no inline code, no CDN),
 * network only back to this origin (fetch and the WebSocket), media only from
 * the file the user picked (blob:). The license key stays in the tab
 * (sessionStorage) and travels in the Authorization header or the WebSocket
 * subprotocol, never in a URL, so it cannot reach access logs. */
#include "server/web.h"

#include <string.h>

#include "server/respond.h"
#include "server/srv.h"

#define CSP                                                                                                  \
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; media-src blob:; img-src " \
    "'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static const char *const page_headers[] = {"Content-Security-Policy",
                                           CSP,
                                           "X-Content-Type-Options",
                                           "nosniff",
                                           "Referrer-Policy",
                                           "no-referrer",
                                           "X-Frame-Options",
                                           "DENY",
                                           "Cache-Control",
                                           "no-cache",
                                           NULL};

static const char *const redirect_headers[] = {"Location", "/playground", "Cache-Control", "no-cache", NULL};

static enum MHD_Result not_found(ld_req *r)
{
    ld_error e;
    ld_error_set(&e, LD_ERR_NOT_FOUND, "Not found: %.200s", r->path);
    return ld_respond_error(r->conn, &e, r->request_id, NULL);
}

static const char *content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot && !strcmp(dot, ".js"))
        return "text/javascript; charset=utf-8";
    if (dot && !strcmp(dot, ".css"))
        return "text/css; charset=utf-8";
    return "text/html; charset=utf-8";
}

static enum MHD_Result serve(ld_req *r, const char *name)
{
    if (r->srv->cfg.no_playground)
        return not_found(r);
    for (const ld_web_asset *a = ld_web_assets; a->name; a++)
        if (!strcmp(a->name, name))
            return ld_respond_static(r->conn, MHD_HTTP_OK, a->data, a->len, content_type(name), r->request_id,
                                     page_headers);
    return not_found(r);
}

enum MHD_Result ld_web_root(ld_req *r)
{
    if (r->srv->cfg.no_playground)
        return not_found(r);
    return ld_respond_static(r->conn, MHD_HTTP_FOUND, "", 0, "text/plain; charset=utf-8", r->request_id,
                             redirect_headers);
}

enum MHD_Result ld_web_page(ld_req *r) { return serve(r, "playground.html"); }

enum MHD_Result ld_web_asset_serve(ld_req *r)
{
    const char *name = r->path + strlen("/playground/");
    if (!strcmp(name, "playground.html")) /* the page has one address */
        return not_found(r);
    return serve(r, name);
}
