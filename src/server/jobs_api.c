/* GET /v1/jobs, GET /v1/jobs/{id}, DELETE /v1/jobs/{id} (docs/api.md, "/v1/jobs"):
 * the key's own jobs through the jobs API, answered like every other route
 * (respond.c: envelope, X-Request-ID, X-RateLimit-*, status in the access log
 * and /metrics). Job bodies are never cached by proxies. */
#include <stdlib.h>
#include <string.h>

#include "server/jobs_api.h"
#include "server/respond.h"
#include "server/srv.h"

static enum MHD_Result answer(ld_req *r, ld_err rc, const ld_error *e, unsigned status, json_t *body)
{
    r->no_store = true;
    if (rc)
        return ld_respond_error(r->conn, e, r->request_id, NULL);
    return ld_respond_json(r->conn, status, body, r->request_id);
}

enum MHD_Result ld_jobs_api_list(ld_req *r)
{
    ld_error e = {0};
    int limit = LD_JOBS_LIST_DEFAULT;
    const char *arg = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "limit");
    if (arg) {
        char *end;
        long v = strtol(arg, &end, 10);
        if (!*arg || *end || v < 1 || v > LD_JOBS_LIST_MAX) {
            ld_error_set(&e, LD_ERR_INVALID_PARAMETER, "limit must be an integer from 1 to %d", LD_JOBS_LIST_MAX);
            return answer(r, e.code, &e, 0, NULL);
        }
        limit = (int)v;
    }
    const char *status = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "status");
    json_t *jobs = NULL;
    ld_err rc = ld_jobs_list(r->srv->jobs, r->key.key_id, status, limit, &jobs, &e);
    json_t *body = rc ? NULL : json_pack("{s:o, s:s}", "jobs", jobs, "request_id", r->request_id);
    return answer(r, rc, &e, MHD_HTTP_OK, body);
}

enum MHD_Result ld_jobs_api_one(ld_req *r)
{
    const char *id = r->path + strlen("/v1/jobs/");
    ld_error e = {0};
    json_t *view = NULL;
    ld_err rc;
    unsigned status = MHD_HTTP_OK;
    if (strchr(id, '/')) {
        rc = ld_error_set(&e, LD_ERR_NOT_FOUND, "Job not found");
    } else if (!strcmp(r->method, "DELETE")) {
        bool stopping = false;
        rc = ld_jobs_cancel(r->srv->jobs, r->key.key_id, id, &view, &stopping, &e);
        if (stopping) /* 202: a running job stops at its runner's next check (within a second) */
            status = MHD_HTTP_ACCEPTED;
    } else {
        rc = ld_jobs_get(r->srv->jobs, r->key.key_id, id, &view, &e);
    }
    return answer(r, rc, &e, status, view);
}
