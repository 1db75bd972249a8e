/* The public JSON of a job, as GET /v1/jobs and /v1/jobs/{id} show it. */
#include <math.h>
#include <stdlib.h>

#include "jobs/jobs_internal.h"
#include "util/time.h"

static const char *delivery_name(ld_delivery_state d)
{
    switch (d) {
    case LD_DELIVERY_PENDING: return "pending";
    case LD_DELIVERY_DELIVERED: return "delivered";
    case LD_DELIVERY_FAILED: return "failed";
    default: return "none";
    }
}

static json_t *load_or_null(const char *text)
{
    json_t *v = text ? json_loads(text, 0, NULL) : NULL;
    return v ? v : json_null();
}

json_t *ld_jobs_view(const ld_job *job, bool with_result)
{
    json_t *o = json_object();
    json_object_set_new(o, "job_id", json_string(job->id));
    json_object_set_new(o, "status", json_string(ld_job_state_name(job->state)));
    json_object_set_new(o, "progress", json_real(round(job->progress * 1000) / 1000));
    json_object_set_new(o, "request_id", json_string(job->request_id));
    json_object_set_new(o, "created_at", ld_time_json(job->created_ms / 1000));
    json_object_set_new(o, "started_at", ld_time_json(job->started_ms / 1000));
    json_object_set_new(o, "completed_at", ld_time_json(job->finished_ms / 1000));
    if (job->cancel_requested && job->state == LD_JOB_PROCESSING)
        json_object_set_new(o, "cancel_requested", json_true());
    if (with_result && job->state == LD_JOB_COMPLETED)
        json_object_set_new(o, "result", load_or_null(job->result_json));
    if (job->state == LD_JOB_FAILED)
        json_object_set_new(o, "error", load_or_null(job->error_json));
    if (job->callback_url) {
        json_t *attempts = job->attempts_json ? json_loads(job->attempts_json, 0, NULL) : NULL;
        json_object_set_new(o, "callback",
                            json_pack("{s:s, s:s, s:o, s:o, s:o}", "url", job->callback_url, "state",
                                      delivery_name(job->delivery), "attempts", attempts ? attempts : json_array(),
                                      "delivered_at", ld_time_json(job->delivered_ms / 1000), "next_attempt_at",
                                      job->delivery == LD_DELIVERY_PENDING
                                          ? ld_time_json(job->next_attempt_ms / 1000)
                                          : json_null()));
    }
    return o;
}
