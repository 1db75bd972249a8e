/* GET /v1/license (license.c); internal to src/server/. docs/api.md,
 * "GET /v1/license". */
#ifndef LD_SERVER_LICENSE_H
#define LD_SERVER_LICENSE_H

#include <microhttpd.h>

#include "server/req.h"

/* The admitted key's claims, limits and today's usage. */
enum MHD_Result ld_license_serve(ld_req *r);

#endif
