/* GET /v1/jobs, GET /v1/jobs/{id}, DELETE /v1/jobs/{id}. Written with
 * libmicrohttpd directly because jobs/ sits below server/ (same JSON shapes
 * and headers as server/respond.c). */
#include <stdlib.h>
#include <string.h>

#include "jobs/jobs_internal.h"
#include "util/time.h"

#define LIST_DEFAULT 20
#define LIST_MAX 100

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *body, const char *request_id,
                                 const char *allow)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(10));
    json_decref(body);
    if (!text)
        return MHD_NO;
    size_t len = strlen(text);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (request_id)
        MHD_add_response_header(r, "X-Request-ID", request_id);
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, const ld_error *e, const char *request_id,
                                  const char *allow)
{
    return send_json(c, (unsigned)ld_err_status(e->code), ld_jobs_envelope(e, request_id), request_id, allow);
}

static enum MHD_Result fail(struct MHD_Connection *c, ld_err code, const char *msg, const char *request_id,
                            const char *allow)
{
    ld_error e = {0};
    ld_error_set(&e, code, "%s", msg ? msg : ld_err_default_message(code));
    return send_error(c, &e, request_id, allow);
}

static enum MHD_Result list(ld_jobs *j, struct MHD_Connection *c, const ld_key_claims *key, const char *rid)
{
    int limit = LIST_DEFAULT;
    const char *arg = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    if (arg) {
        char *end;
        long v = strtol(arg, &end, 10);
        if (!*arg || *end || v < 1 || v > LIST_MAX)
            return fail(c, LD_ERR_INVALID_PARAMETER, "limit must be an integer from 1 to 100", rid, NULL);
        limit = (int)v;
    }
    ld_job *jobs = NULL;
    size_t n = 0;
    ld_error e = {0};
    if (j->store->ops->list(j->store, key->key_id, limit, &jobs, &n, &e))
        return send_error(c, &e, rid, NULL);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, ld_jobs_view(&jobs[i], false));
    ld_job_list_free(jobs, n);
    return send_json(c, MHD_HTTP_OK, json_pack("{s:o, s:s}", "jobs", arr, "request_id", rid ? rid : ""), rid,
                     NULL);
}

/* The job when it exists and belongs to this key; a job of another key is
 * indistinguishable from a missing one. */
static bool load_own(ld_jobs *j, const char *id, const ld_key_claims *key, ld_job *out)
{
    if (j->store->ops->get(j->store, id, out, NULL))
        return false;
    if (strcmp(out->key_id, key->key_id)) {
        ld_job_clear(out);
        return false;
    }
    return true;
}

static enum MHD_Result one(ld_jobs *j, struct MHD_Connection *c, const char *method, const char *id,
                           const ld_key_claims *key, const char *rid)
{
    ld_job job = {0};
    if (!strcmp(method, "DELETE")) {
        ld_error e = {0};
        ld_job_state state;
        if (j->store->ops->cancel(j->store, id, key->key_id, ld_time_now_ms(), &state, &e))
            return send_error(c, &e, rid, NULL);
        if (state == LD_JOB_PROCESSING)
            ld_jobs_interrupt(j, id);
        if (state == LD_JOB_CANCELLED) {
            /* A queued job never started: its audio can go now. */
            char path[1300];
            snprintf(path, sizeof path, "%s/%s.audio", j->jobs_dir, id);
            unlink(path);
        }
        if (!load_own(j, id, key, &job))
            return fail(c, LD_ERR_NOT_FOUND, "Job not found", rid, NULL);
        /* 202: a running job stops at its runner's next check (within a second). */
        unsigned status = job.state == LD_JOB_PROCESSING ? MHD_HTTP_ACCEPTED : MHD_HTTP_OK;
        json_t *view = ld_jobs_view(&job, true);
        ld_job_clear(&job);
        return send_json(c, status, view, rid, NULL);
    }
    if (!load_own(j, id, key, &job))
        return fail(c, LD_ERR_NOT_FOUND, "Job not found", rid, NULL);
    json_t *view = ld_jobs_view(&job, true);
    ld_job_clear(&job);
    return send_json(c, MHD_HTTP_OK, view, rid, NULL);
}

enum MHD_Result ld_jobs_handle(ld_jobs *j, struct MHD_Connection *c, const char *method, const char *url,
                               const ld_key_claims *key, const char *request_id)
{
    static const char prefix[] = "/v1/jobs";
    if (strncmp(url, prefix, sizeof prefix - 1))
        return fail(c, LD_ERR_NOT_FOUND, NULL, request_id, NULL);
    const char *rest = url + sizeof prefix - 1;
    if (!*rest || !strcmp(rest, "/")) {
        if (strcmp(method, "GET") && strcmp(method, "HEAD"))
            return fail(c, LD_ERR_METHOD_NOT_ALLOWED, NULL, request_id, "GET");
        return list(j, c, key, request_id);
    }
    if (*rest != '/' || strchr(rest + 1, '/') || strlen(rest + 1) >= sizeof(((ld_job *)0)->id))
        return fail(c, LD_ERR_NOT_FOUND, "Job not found", request_id, NULL);
    if (strcmp(method, "GET") && strcmp(method, "HEAD") && strcmp(method, "DELETE"))
        return fail(c, LD_ERR_METHOD_NOT_ALLOWED, NULL, request_id, "GET, DELETE");
    return one(j, c, method, rest + 1, key, request_id);
}
