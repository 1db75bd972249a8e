/* The libmicrohttpd daemon of the API port (http.c); internal to src/server/. */
#ifndef LD_SERVER_HTTP_H
#define LD_SERVER_HTTP_H

#include <microhttpd.h>

#include "server/srv.h"

/* Starts the daemon (and the connection guard) with s->cfg; NULL + err on failure. */
struct MHD_Daemon *ld_http_start(ld_srv *s, ld_error *err);

#endif
