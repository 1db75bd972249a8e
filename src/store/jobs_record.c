/* ld_job record helpers shared by every job-store backend. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/jobs_store.h"

static const char *const state_names[LD_JOB__STATES] = {"queued", "processing", "completed", "failed", "cancelled"};

void ld_job_clear(ld_job *job)
{
    if (!job)
        return;
    free(job->key_json);
    free(job->opts_json);
    free(job->url);
    free(job->audio_path);
    free(job->callback_url);
    free(job->result_json);
    free(job->error_json);
    free(job->attempts_json);
    memset(job, 0, sizeof *job);
}

void ld_job_list_free(ld_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ld_job_clear(&jobs[i]);
    free(jobs);
}

const char *ld_job_state_name(ld_job_state s)
{
    return (int)s >= 0 && s < LD_JOB__STATES ? state_names[s] : "unknown";
}

int ld_job_state_parse(const char *name, ld_job_state *out)
{
    for (int i = 0; name && i < LD_JOB__STATES; i++)
        if (!strcmp(name, state_names[i])) {
            *out = (ld_job_state)i;
            return 0;
        }
    return -1;
}

bool ld_job_audio_path(const char *jobs_dir, const char *audio_path, char *out, size_t outsz)
{
    if (outsz)
        *out = '\0';
    if (!audio_path || !*audio_path || !outsz)
        return false;
    const char *slash = strrchr(audio_path, '/');
    const char *name = slash ? slash + 1 : audio_path;
    int n = snprintf(out, outsz, "%s/%s", jobs_dir, name);
    if (!*name || n < 0 || (size_t)n >= outsz) {
        *out = '\0';
        return false;
    }
    return true;
}
