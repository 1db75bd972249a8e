/* Asynchronous transcription jobs (callback_url): durably stored before they are
 * acknowledged, run on the shared decoder pool, results delivered by signed
 * webhooks with retries. Survive crashes and restarts. The /v1/jobs endpoints
 * are served by server/jobs_api.c on top of the calls below, which return data
 * and an ld_err, never HTTP.
 *
 * Thread-safety: all functions may be called from any thread.
 * Ownership: ld_jobs_new returns an owned object (ld_jobs_free stops its threads);
 * pool and auth are borrowed and must outlive it. */
#ifndef LD_JOBS_JOBS_H
#define LD_JOBS_JOBS_H

#include <jansson.h>
#include <stdbool.h>

#include "asr/pool.h"
#include "asr/transcript.h"
#include "audio/audio.h"
#include "auth/auth.h"
#include "util/err.h"

/* A finished job as its webhook body is made from it (ld_jobs_shape_fn). */
typedef struct {
    const char *job_id, *key_id, *request_id;
    bool completed;      /* else failed */
    const json_t *body;  /* completed: the POST /v1/listen JSON body; failed: the error envelope */
    double processing_s; /* from the job's start to its end */
} ld_job_outcome;

/* The webhook body in the schema of the route a job came in on: `hook` is the
 * object the server gave ld_jobs_submit (never NULL here). Returns a new
 * reference, or NULL for listend's own {"job_id","status","result"|"error"};
 * may write one extra "Name: value" header line into header (else ""). */
typedef json_t *(*ld_jobs_shape_fn)(const json_t *hook, const ld_job_outcome *o, char *header, size_t headersz);

typedef struct {
    const char *data_dir; /* jobs DB, job audio, webhook secret live here */
    ld_pool *pool;
    ld_auth *auth;             /* quota accounting when a job runs */
    ld_fetch_opts fetch;       /* for audio URLs and the callback address check */
    double max_audio_seconds;  /* decode cap (2 h) */
    int64_t retention_s;       /* purge finished jobs after this (default 7 days) */
    int64_t webhook_max_age_s; /* give up delivering after this (default 24 h) */
    /* Added by the jobs module; 0 everywhere means the default. */
    int max_running;            /* jobs transcribing at once (default max(1, pool workers / 2)) */
    int max_pending;            /* queued + processing before submit answers 503 (default 1000) */
    int64_t webhook_backoff_ms; /* first retry delay (default 1000; env LISTEND_WEBHOOK_BACKOFF_MS, for tests) */
    long webhook_timeout_ms;    /* one delivery attempt, connect + answer (default 15 000) */
    int webhook_workers;        /* deliveries in flight at once (default 8; one key: at most half) */
    int max_pending_per_key;    /* one key's queued + processing jobs (default max(1, max_pending / 4)) */
    int64_t max_audio_per_key;  /* bytes of uploaded audio one key's pending jobs may hold (default 1 GiB) */
    ld_store *store;            /* borrowed; a Redis store keeps jobs in Redis (replicas share them),
                                    anything else (or NULL) uses SQLite <data>/jobs.db */
    ld_jobs_shape_fn shape;     /* route-specific webhook bodies; NULL = listend's body always */
} ld_jobs_config;

typedef struct ld_jobs ld_jobs;

ld_jobs *ld_jobs_new(const ld_jobs_config *cfg, ld_error *err);
void ld_jobs_free(ld_jobs *j);

/* Stores a job durably and returns the 202 body {"job_id","status","request_id"}
 * in *accepted (new reference). Exactly one of audio_path (a spooled upload that
 * is moved into the data dir; on failure it is left in place) and url is set.
 * The callback URL is checked against the address policy first. `hook`
 * (borrowed; NULL = listend's webhook) is kept with the job and handed to
 * cfg.shape when the webhook is built; its member "method": "PUT" sends the
 * webhook with PUT instead of POST. */
ld_err ld_jobs_submit(ld_jobs *j, const ld_key_claims *key, const char *request_id, const char *url,
                      const char *audio_path, const ld_transcribe_opts *opts, const char *callback_url,
                      const json_t *hook, json_t **accepted, ld_error *err);

#define LD_JOBS_LIST_DEFAULT 20
#define LD_JOBS_LIST_MAX 100

/* The newest jobs of key_id (at most `limit`, 1..LD_JOBS_LIST_MAX; only those whose
 * status is `status` unless it is NULL — another name is LD_ERR_INVALID_PARAMETER),
 * each as its public view without the result, in a new JSON array (*jobs). */
ld_err ld_jobs_list(ld_jobs *j, const char *key_id, const char *status, int limit, json_t **jobs, ld_error *err);
/* One job of key_id as its public view with result or error (*view, new
 * reference). A job of another key is indistinguishable from a missing one:
 * LD_ERR_NOT_FOUND "Job not found". */
ld_err ld_jobs_get(ld_jobs *j, const char *key_id, const char *id, json_t **view, ld_error *err);
/* Cancels one job of key_id: a queued job at once (its audio goes), a running
 * one at its runner's next check (*stopping true). *view is the job after the
 * cancel. Finished jobs stay as they are. Errors as ld_jobs_get. */
ld_err ld_jobs_cancel(ld_jobs *j, const char *key_id, const char *id, json_t **view, bool *stopping, ld_error *err);

/* Jobs in `state` ("queued", "processing", "completed", "failed",
 * "cancelled"); NULL = queued + processing. -1 for an unknown state. */
int ld_jobs_count(ld_jobs *j, const char *state); /* for metrics and health */

#endif
