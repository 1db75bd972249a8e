/* Routing (route.c); internal to src/server/. The route table says, per path:
 * the methods allowed, how the key is presented (admit.h), whether the daily
 * quota applies, the metric label, and the handlers. */
#ifndef LD_SERVER_ROUTE_H
#define LD_SERVER_ROUTE_H

#include <microhttpd.h>

#include "server/req.h"

/* Headers are in: find the route, admit, run its first step. Early errors are
 * answered now or once the body was read (r->pending). */
enum MHD_Result ld_route_first(ld_req *r, const char *method);
/* The body is in: the route's handler answers (or suspends). */
enum MHD_Result ld_route_final(ld_req *r);

#endif
