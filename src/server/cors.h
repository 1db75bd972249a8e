/* Cross-origin requests (cors.c); internal to src/server/. Off unless
 * --cors-origin names origins (or `*`): then browser apps served from those
 * origins may call the API with their own key (docs/configuration.md, "CORS").
 * Thread-safety: reads the immutable configuration only; called on
 * libmicrohttpd threads while a response is being built. */
#ifndef LD_SERVER_CORS_H
#define LD_SERVER_CORS_H

#include <microhttpd.h>
#include <stdbool.h>

#include "server/req.h"

/* A preflight (OPTIONS with Origin and Access-Control-Request-Method) from an
 * allowed origin: remembers the route's methods for ld_cors_decorate and
 * returns true (the router answers 204). False otherwise: OPTIONS is then
 * answered like any method the route does not serve (405). */
bool ld_cors_preflight(ld_req *r, const char *route_methods);
/* Adds Access-Control-* headers when the request's Origin is allowed (every
 * status, errors included); nothing otherwise. */
void ld_cors_decorate(ld_req *r, struct MHD_Response *resp);

#endif
