/* libFuzzer entry: job records as read back from the job store (SQLite file
 * or a Redis shared with other replicas, so not fully trusted): options and
 * key claims JSON, and the GET /v1/jobs view built from stored result, error
 * and attempts JSON. Any crash, leak or sanitizer report is a bug. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/jobs_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;

    ld_transcribe_opts o;
    ld_jobs_opts_load(s, &o);
    if (!memchr(o.language, 0, sizeof o.language) || o.format < LD_FORMAT_JSON || o.format > LD_FORMAT_VTT)
        abort();
    ld_key_claims k;
    ld_jobs_claims_load(s, &k);
    if (!memchr(k.key_id, 0, sizeof k.key_id) || !memchr(k.name, 0, sizeof k.name))
        abort();

    ld_job job = {0};
    strcpy(job.id, "job_fuzz");
    job.state = size ? (ld_job_state)(data[0] % LD_JOB__STATES) : LD_JOB_COMPLETED;
    job.delivery = size > 1 ? (ld_delivery_state)(data[1] % 4) : LD_DELIVERY_PENDING;
    job.progress = size > 2 ? data[2] / 200.0 : 0;
    job.created_ms = 1700000000000;
    job.result_json = s;
    job.error_json = s;
    job.attempts_json = s;
    job.callback_url = s;
    json_t *v = ld_jobs_view(&job, true);
    char *out = json_dumps(v, JSON_COMPACT);
    if (!out && v)
        abort(); /* whatever was stored, the view must serialize */
    free(out);
    json_decref(v);
    free(s);
    return 0;
}
