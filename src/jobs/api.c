/* What the /v1/jobs endpoints read and change: a key's job list, one job, a
 * cancel. Data and ld_err only; server/jobs_api.c turns them into HTTP. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "jobs/jobs_internal.h"
#include "util/time.h"

ld_err ld_jobs_list(ld_jobs *j, const char *key_id, const char *status, int limit, json_t **jobs, ld_error *err)
{
    *jobs = NULL;
    if (limit < 1 || limit > LD_JOBS_LIST_MAX)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "limit must be an integer from 1 to %d",
                            LD_JOBS_LIST_MAX);
    ld_job_state st = LD_JOB_QUEUED;
    if (status && ld_job_state_parse(status, &st))
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                            "status must be one of queued, processing, completed, failed, cancelled");
    int state = status ? (int)st : -1;
    ld_job *rows = NULL;
    size_t n = 0;
    ld_err rc = j->store->ops->list(j->store, key_id, state, limit, &rows, &n, err);
    if (rc)
        return rc;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, ld_jobs_view(&rows[i], false));
    ld_job_list_free(rows, n);
    *jobs = arr;
    return LD_OK;
}

/* The job when it exists and belongs to key_id. */
static ld_err load_own(ld_jobs *j, const char *key_id, const char *id, ld_job *out, ld_error *err)
{
    if (strlen(id) >= sizeof out->id || j->store->ops->get(j->store, id, out, NULL))
        return ld_error_set(err, LD_ERR_NOT_FOUND, "Job not found");
    if (strcmp(out->key_id, key_id)) {
        ld_job_clear(out);
        return ld_error_set(err, LD_ERR_NOT_FOUND, "Job not found");
    }
    return LD_OK;
}

ld_err ld_jobs_get(ld_jobs *j, const char *key_id, const char *id, json_t **view, ld_error *err)
{
    *view = NULL;
    ld_job job = {0};
    ld_err rc = load_own(j, key_id, id, &job, err);
    if (rc)
        return rc;
    *view = ld_jobs_view(&job, true);
    ld_job_clear(&job);
    return LD_OK;
}

ld_err ld_jobs_cancel(ld_jobs *j, const char *key_id, const char *id, json_t **view, bool *stopping, ld_error *err)
{
    *view = NULL;
    *stopping = false;
    if (strlen(id) >= sizeof(((ld_job *)0)->id))
        return ld_error_set(err, LD_ERR_NOT_FOUND, "Job not found");
    ld_job_state state;
    ld_err rc = j->store->ops->cancel(j->store, id, key_id, ld_time_now_ms(), &state, err);
    if (rc)
        return rc;
    if (state == LD_JOB_PROCESSING)
        ld_jobs_interrupt(j, id);
    if (state == LD_JOB_CANCELLED) {
        /* A queued job never started: its audio can go now. */
        char path[1300];
        snprintf(path, sizeof path, "%s/%s.audio", j->jobs_dir, id);
        unlink(path);
    }
    ld_job job = {0};
    if ((rc = load_own(j, key_id, id, &job, err)))
        return rc;
    *stopping = job.state == LD_JOB_PROCESSING;
    *view = ld_jobs_view(&job, true);
    ld_job_clear(&job);
    return LD_OK;
}
