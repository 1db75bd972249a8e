/* The /v1/jobs routes (jobs_api.c), internal to src/server/. Handlers run on
 * the request's libmicrohttpd thread after admission. */
#ifndef LD_SERVER_JOBS_API_H
#define LD_SERVER_JOBS_API_H

#include "server/req.h"

/* GET /v1/jobs[?limit=N] */
enum MHD_Result ld_jobs_api_list(ld_req *r);
/* GET or DELETE /v1/jobs/{id} */
enum MHD_Result ld_jobs_api_one(ld_req *r);

#endif
