/* POST /v1/listen and its compatibility routes: intake on libmicrohttpd
 * threads (listen.c); internal to src/server/. */
#ifndef LD_SERVER_LISTEN_H
#define LD_SERVER_LISTEN_H

#include <microhttpd.h>

#include "server/req.h"

/* Headers are in: options from the query, the body's kind, the size cap. The
 * _lightning, _openai and _deepgram variants read those clients' options and
 * answer in their schemas (docs/compat.md). */
enum MHD_Result ld_listen_first(ld_req *r);
enum MHD_Result ld_listen_first_lightning(ld_req *r);
enum MHD_Result ld_listen_first_openai(ld_req *r);
enum MHD_Result ld_listen_first_deepgram(ld_req *r);
/* Consumes body bytes; MHD_NO closes the connection. */
enum MHD_Result ld_listen_body(ld_req *r, const char *data, size_t size);
/* The body is in: validate, then suspend and hand the request to the work pool. */
enum MHD_Result ld_listen_final(ld_req *r);

#endif
