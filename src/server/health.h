/* GET /health, /api/v1/health, /healthz, /livez, /health/{component} (health.c);
 * internal to src/server/. docs/api.md, "GET /health". */
#ifndef LD_SERVER_HEALTH_H
#define LD_SERVER_HEALTH_H

#include <microhttpd.h>

#include "server/req.h"

enum MHD_Result ld_health_serve(ld_req *r);
enum MHD_Result ld_healthz_serve(ld_req *r);
/* Liveness: 200 {"alive": true} whenever the process answers HTTP at all. */
enum MHD_Result ld_livez_serve(ld_req *r);
enum MHD_Result ld_health_component_serve(ld_req *r);

#endif
