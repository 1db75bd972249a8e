/* Requests refused at the edge, before routing (edge.c); internal to
 * src/server/: too many query arguments (414), conflicting or malformed
 * Content-Length headers (400), and the rule that an early error on a request
 * whose declared body exceeds the cap is answered at once instead of reading
 * the body (docs/hardening.md, "Tenant isolation", item 10).
 * Thread-safety: called on the connection's libmicrohttpd thread. */
#ifndef LD_SERVER_EDGE_H
#define LD_SERVER_EDGE_H

#include <stdbool.h>

#include "server/req.h"

#define LD_EDGE_MAX_ARGS 256 /* query arguments; no route reads more than ~40 */

/* From the URI callback, before libmicrohttpd parses the query: counts its
 * arguments and, past LD_EDGE_MAX_ARGS, cuts the query off in place so the
 * parser does not exhaust the connection's memory (it then stalls until the
 * header timeout instead of answering). */
void ld_edge_uri(ld_req *r, const char *uri);
/* First handler call: true when the request was answered here (*ret set). */
bool ld_edge_refuse(ld_req *r, enum MHD_Result *ret);
/* The declared Content-Length is larger than the server would read to drop
 * it: --max-body-mb without a valid key, 256 MB more with one. */
bool ld_edge_body_over_cap(ld_req *r);

#endif
