/* Job runners: claim a queued job, fetch → decode → quota → transcribe on the
 * shared pool → usage → result, then hand it to delivery. At most
 * cfg.max_running runners exist, which bounds how much of the pool's
 * round-robin jobs can occupy. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asr/channels.h"
#include "jobs/jobs_internal.h"
#include "jobs/webhook.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/time.h"

/* Shared between a runner and the pool's callbacks. Reference-counted because
 * a runner may walk away (shutdown, cancel) while the pool still holds it. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    bool done, abandoned;
    ld_transcript *t;
    ld_error err;
    ld_job_store *store;
    char id[40];
    double saved, saved_at;     /* last persisted progress and when (monotonic) */
    double part_from, part_len; /* multichannel: this channel's share of the job's progress */
} run_ctx;

typedef enum { OUT_DONE, OUT_FAILED, OUT_BUSY, OUT_CANCELLED, OUT_STOPPING } outcome;

/* Retrying to store an outcome the store refused: 0.5 s, 1 s, 2 s, … up to 10 s. */
#define FINISH_RETRY_FIRST_MS 500
#define FINISH_RETRY_CAP_MS 10000

static void ctx_unref(run_ctx *c)
{
    pthread_mutex_lock(&c->mu);
    int left = --c->refs;
    pthread_mutex_unlock(&c->mu);
    if (left)
        return;
    if (c->t)
        ld_transcript_free(c->t);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void on_progress(void *ud, double fraction)
{
    run_ctx *c = ud;
    pthread_mutex_lock(&c->mu);
    fraction = c->part_from + fraction * c->part_len;
    double now = ld_time_mono();
    /* Persist coarsely: a step of 5 %, or any rise once a second. */
    if (!c->abandoned && !c->done && fraction < 1.0 &&
        (fraction >= c->saved + 0.05 || (fraction > c->saved && now - c->saved_at >= 1.0))) {
        c->store->ops->set_progress(c->store, c->id, fraction, NULL);
        c->saved = fraction;
        c->saved_at = now;
    }
    pthread_mutex_unlock(&c->mu);
}

static void on_done(void *ud, ld_transcript *t, const ld_error *err)
{
    run_ctx *c = ud;
    pthread_mutex_lock(&c->mu);
    if (c->abandoned) {
        if (t)
            ld_transcript_free(t);
    } else {
        c->t = t;
        if (err)
            c->err = *err;
        else if (!t)
            ld_error_set(&c->err, LD_ERR_INTERNAL, "Transcription failed");
    }
    c->done = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    ctx_unref(c);
}

static bool slot_flag(ld_jobs *j, int slot, bool *stopping)
{
    pthread_mutex_lock(&j->mu);
    bool cancel = j->slots[slot].cancel;
    *stopping = j->stopping;
    pthread_mutex_unlock(&j->mu);
    return cancel;
}

/* Submits to the pool and waits, checking for cancel/shutdown meanwhile. */
static outcome transcribe_part(ld_jobs *j, int slot, const ld_job *job, ld_pcm *pcm, const ld_transcribe_opts *o,
                               ld_transcript **t, ld_error *err, size_t part, size_t parts)
{
    run_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        ld_error_set(err, LD_ERR_INTERNAL, "Out of memory");
        return OUT_FAILED;
    }
    if (!j->cfg.pool) {
        free(c);
        ld_error_set(err, LD_ERR_SERVICE_UNAVAILABLE, "No ASR workers available");
        return OUT_FAILED;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->refs = 2;
    c->store = j->store;
    c->saved_at = ld_time_mono();
    c->part_from = (double)part / (double)parts;
    c->part_len = 1.0 / (double)parts;
    c->saved = c->part_from;
    snprintf(c->id, sizeof c->id, "%s", job->id);
    ld_pool_callbacks cb = {.progress = on_progress, .progress_ud = c, .done = on_done, .done_ud = c};
    ld_err rc = ld_pool_submit(j->cfg.pool, pcm, o, &cb, err);
    if (rc) {
        c->refs = 1;
        ctx_unref(c);
        return rc == LD_ERR_SERVICE_UNAVAILABLE ? OUT_BUSY : OUT_FAILED;
    }
    outcome out = OUT_DONE;
    pthread_mutex_lock(&c->mu);
    while (!c->done) {
        struct timespec ts = ld_time_deadline(200);
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        if (c->done || c->abandoned)
            continue;
        pthread_mutex_unlock(&c->mu);
        bool stopping, cancel = slot_flag(j, slot, &stopping);
        pthread_mutex_lock(&c->mu);
        if (stopping) {
            /* Leave the job "processing": the store requeues it at the next start.
             * The pool drops its segments not started (done may run right here,
             * so not under c->mu). */
            c->abandoned = true;
            out = OUT_STOPPING;
            pthread_mutex_unlock(&c->mu);
            ld_pool_cancel(j->cfg.pool, c);
            pthread_mutex_lock(&c->mu);
            break;
        }
        if (cancel) {
            /* The pool drops the segments not started and lets go once the
             * running ones finish; the job is cancelled now and the slot stays
             * taken until then, so cancelling never lets more than max_running
             * jobs into the pool. */
            c->abandoned = true;
            out = OUT_CANCELLED;
            pthread_mutex_unlock(&c->mu);
            ld_pool_cancel(j->cfg.pool, c);
            ld_jobs_cancel_now(j, job);
            pthread_mutex_lock(&c->mu);
            while (!c->done) {
                pthread_mutex_unlock(&c->mu);
                slot_flag(j, slot, &stopping);
                pthread_mutex_lock(&c->mu);
                if (stopping)
                    break;
                ts = ld_time_deadline(1000);
                pthread_cond_timedwait(&c->cv, &c->mu, &ts);
            }
            break;
        }
    }
    if (out == OUT_DONE) {
        *t = c->t;
        c->t = NULL;
        if (!*t) {
            *err = c->err;
            out = OUT_FAILED;
        }
    }
    pthread_mutex_unlock(&c->mu);
    ctx_unref(c);
    return out;
}

static outcome transcribe(ld_jobs *j, int slot, const ld_job *job, ld_pcm *pcm, const ld_transcribe_opts *o,
                          ld_transcript **t, ld_error *err)
{
    return transcribe_part(j, slot, job, pcm, o, t, err, 0, 1);
}

/* multichannel=true: the channels one after another, each spread over the
 * whole pool (its segments decode in parallel), so a job still holds one
 * runner slot. Every t[c] is set on OUT_DONE; pcm[] is consumed. */
static outcome transcribe_channels(ld_jobs *j, int slot, const ld_job *job, ld_pcm *pcm, size_t n,
                                   const ld_transcribe_opts *o, ld_transcript **t, ld_error *err)
{
    outcome out = OUT_DONE;
    for (size_t c = 0; c < n && out == OUT_DONE; c++)
        out = transcribe_part(j, slot, job, &pcm[c], o, &t[c], err, c, n);
    for (size_t c = 0; c < n; c++)
        ld_pcm_free(&pcm[c]);
    if (out != OUT_DONE)
        for (size_t c = 0; c < n; c++) {
            ld_transcript_free(t[c]);
            t[c] = NULL;
        }
    return out;
}

/* Sleeps `ms` unless shutdown begins (then at once); true when stopping. */
static bool pause_unless_stopping(ld_jobs *j, long ms)
{
    struct timespec ts = ld_time_deadline(ms);
    pthread_mutex_lock(&j->mu);
    while (!j->stopping)
        if (pthread_cond_timedwait(&j->stop_cv, &j->mu, &ts) == ETIMEDOUT)
            break;
    bool stopping = j->stopping;
    pthread_mutex_unlock(&j->mu);
    return stopping;
}

static json_t *job_fields(const ld_job *job)
{
    return json_pack("{s:s, s:s}", "job_id", job->id, "request_id", job->request_id);
}

/* Stores the outcome, retrying with back-off while the store refuses it (disk
 * full, Redis away). The runner holds the job meanwhile and its audio stays:
 * deleting it before the outcome is stored lost the job (it stayed processing,
 * then re-ran at the next start on audio that was gone). False when shutdown
 * came first: the job stays processing and runs again at the next start. */
static bool store_outcome(ld_jobs *j, const ld_job *job, ld_job_state state, const char *result,
                          const char *error_json)
{
    for (int tries = 1;; tries++) {
        ld_error err = {0};
        ld_err rc = j->store->ops->finish(j->store, job->id, state, result, error_json, ld_time_now_ms(), &err);
        if (rc == LD_OK || rc == LD_ERR_NOT_FOUND) { /* not found: finished already (cancelled), nothing to keep */
            if (rc)
                ld_log(LD_LOG_WARNING, "jobs: cannot finish %s: %s", job->id, err.msg);
            if (tries > 1)
                ld_log_fields(LD_LOG_INFO, job_fields(job), "jobs: outcome stored after %d tries", tries);
            return true;
        }
        if (tries == 1)
            ld_log_fields(LD_LOG_ERROR, job_fields(job),
                          "jobs: cannot store the outcome (%s): %s; its audio is kept and the store is tried "
                          "again (back-off up to %d s)",
                          ld_job_state_name(state), err.msg, FINISH_RETRY_CAP_MS / 1000);
        /* the webhooks' doubling back-off; jitter 0.5 is the factor 1: 0.5 s, 1 s, 2 s, … 10 s */
        if (pause_unless_stopping(
                j, (long)ld_jobs_backoff_ms(tries, FINISH_RETRY_FIRST_MS, FINISH_RETRY_CAP_MS, 0.5))) {
            ld_log_fields(LD_LOG_WARNING, job_fields(job),
                          "jobs: outcome not stored before shutdown; the job stays processing and runs again at "
                          "the next start");
            return false;
        }
    }
}

static void finish(ld_jobs *j, const ld_job *job, ld_job_state state, const char *result, const ld_error *e)
{
    char *error_json = NULL;
    if (e) {
        json_t *env = ld_error_json(e, job->request_id, NULL);
        error_json = json_dumps(env, JSON_COMPACT);
        json_decref(env);
    }
    bool stored = store_outcome(j, job, state, result, error_json);
    free(error_json);
    if (!stored)
        return; /* keep the audio: the job runs again from it */
    char audio[1300];
    if (ld_job_audio_path(j->jobs_dir, job->audio_path, audio, sizeof audio))
        unlink(audio);
    json_t *f = json_pack("{s:s, s:s, s:s, s:i}", "job_id", job->id, "request_id", job->request_id, "status",
                          ld_job_state_name(state), "runs", job->runs);
    if (e)
        json_object_set_new(f, "code", json_string(ld_err_code(e->code)));
    ld_log_fields(state == LD_JOB_FAILED ? LD_LOG_WARNING : LD_LOG_INFO, f, "job finished");
    if (state != LD_JOB_CANCELLED)
        ld_jobs_wake_deliverer(j);
}

void ld_jobs_cancel_now(ld_jobs *j, const ld_job *job) { finish(j, job, LD_JOB_CANCELLED, NULL, NULL); }

typedef struct {
    ld_jobs *j;
    int slot;
} slot_ref;

/* A cancelled job's download stops (a slow URL held its runner for up to the
 * fetch timeout); a shutdown lets it finish, as the job resumes at restart. */
static bool fetch_cancelled(void *ud)
{
    slot_ref *s = ud;
    bool stopping;
    return slot_flag(s->j, s->slot, &stopping);
}

/* Fetches a URL job's audio next to the uploads; the caller unlinks `path`. */
static ld_err fetch(ld_jobs *j, int slot, const ld_job *job, char *path, size_t pathsz, ld_error *err)
{
    snprintf(path, pathsz, "%s/%s.fetch", j->jobs_dir, job->id);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return ld_error_set(err, LD_ERR_INTERNAL, "Cannot store the fetched audio");
    size_t bytes = 0;
    slot_ref ref = {j, slot};
    ld_fetch_opts fo = j->cfg.fetch;
    fo.abort = fetch_cancelled;
    fo.abort_ud = &ref;
    ld_err rc = ld_audio_fetch(job->url, &fo, fd, &bytes, err);
    close(fd);
    if (rc != LD_OK)
        ld_log_fields(LD_LOG_INFO, json_pack("{s:s, s:s}", "job_id", job->id, "request_id", job->request_id),
                      "url fetch failed: %s", err->msg);
    return rc;
}

/* The job's quota reservation (auth/quota.c), as in server/pipeline.c. */
typedef struct {
    ld_auth *auth;
    const ld_key_claims *k;
    ld_quota_hold hold;
} quota_ctx;

static ld_err reserve_probed(void *ud, double seconds, ld_error *err)
{
    quota_ctx *q = ud;
    return q->auth ? ld_auth_quota_reserve(q->auth, q->k, seconds, &q->hold, err) : LD_OK;
}

static ld_err reserve_decoded(quota_ctx *q, double seconds, ld_error *err)
{
    if (!q->hold.held)
        return reserve_probed(q, seconds, err);
    if (seconds > q->hold.seconds)
        return reserve_probed(q, seconds - q->hold.seconds, err);
    return LD_OK;
}

static void charge(quota_ctx *q, const ld_job *job, double seconds)
{
    ld_error err = {0};
    if (q->auth && ld_auth_quota_settle(q->auth, q->k, &q->hold, seconds, &err))
        ld_log(LD_LOG_WARNING, "jobs: usage not recorded for %s: %s", job->id, err.msg);
}

static outcome run_job(ld_jobs *j, int slot, ld_job *job)
{
    if (job->cancel_requested) { /* cancelled while running, then the process died */
        finish(j, job, LD_JOB_CANCELLED, NULL, NULL);
        return OUT_CANCELLED;
    }
    ld_transcribe_opts o;
    ld_key_claims k;
    ld_jobs_opts_load(job->opts_json, &o);
    ld_jobs_claims_load(job->key_json, &k);
    quota_ctx q = {.auth = j->cfg.auth, .k = &k};
    ld_error err = {0};
    ld_pcm chans[LD_MAX_CHANNELS] = {0};
    size_t n_ch = 1;
    char fetched[1300] = "", upload[1300] = "";
    ld_err rc = job->url ? fetch(j, slot, job, fetched, sizeof fetched, &err) : LD_OK;
    if (!job->url)
        ld_job_audio_path(j->jobs_dir, job->audio_path, upload, sizeof upload);
    if (!rc) {
        slot_ref ref = {j, slot};
        ld_decode_opts d = {.max_seconds = j->cfg.max_audio_seconds,
                            .tmp_dir = j->tmp_dir,
                            .on_probe = reserve_probed,
                            .probe_ud = &q,
                            .abort = fetch_cancelled, /* a cancelled job stops decoding too */
                            .abort_ud = &ref};
        const char *path = job->url ? fetched : upload;
        rc = o.multichannel ? ld_audio_decode_file_channels(path, &d, chans, LD_MAX_CHANNELS, &n_ch, &err)
                            : ld_audio_decode_file(path, &d, &chans[0], &err);
    }
    ld_pcm pcm = chans[0];
    if (*fetched)
        unlink(fetched);
    if (!rc)
        rc = reserve_decoded(&q, ld_pcm_seconds(&pcm) * (double)n_ch, &err); /* each channel is charged */
    bool stopping;
    if (rc && !slot_flag(j, slot, &stopping)) {
        charge(&q, job, 0);
        for (size_t c = 0; c < n_ch; c++)
            ld_pcm_free(&chans[c]);
        finish(j, job, LD_JOB_FAILED, NULL, &err);
        return OUT_FAILED;
    }
    if (slot_flag(j, slot, &stopping)) { /* cancelled while fetching/decoding: spare the decoders */
        charge(&q, job, 0);
        for (size_t c = 0; c < n_ch; c++)
            ld_pcm_free(&chans[c]);
        finish(j, job, LD_JOB_CANCELLED, NULL, NULL);
        return OUT_CANCELLED;
    }
    /* multichannel: every channel is transcribed, so each is counted */
    double seconds = ld_pcm_seconds(&pcm) * (double)n_ch;
    ld_transcript *t = NULL, *tc[LD_MAX_CHANNELS] = {0};
    double t0 = ld_time_mono();
    outcome out = o.multichannel ? transcribe_channels(j, slot, job, chans, n_ch, &o, tc, &err)
                                 : transcribe(j, slot, job, &pcm, &o, &t, &err);
    double took = ld_time_mono() - t0;
    if (!o.multichannel)
        ld_pcm_free(&pcm); /* no-op when the pool took it; channels were freed by transcribe_channels */
    if (out == OUT_FAILED)
        finish(j, job, LD_JOB_FAILED, NULL, &err);
    if (out != OUT_DONE) {
        charge(&q, job, 0);
        return out;
    }

    ld_job now = {0};
    bool cancelled = j->store->ops->get(j->store, job->id, &now, NULL) == LD_OK && now.cancel_requested;
    ld_job_clear(&now);
    if (cancelled) {
        charge(&q, job, 0);
        finish(j, job, LD_JOB_CANCELLED, NULL, NULL);
    } else {
        charge(&q, job, seconds);
        ld_metrics_audio("job", k.key_id, seconds);
        ld_metrics_rtf("job", took, seconds);
        json_t *result = o.multichannel ? ld_channels_json(tc, n_ch, &o, job->request_id)
                                        : ld_transcript_json(t, &o, job->request_id);
        char *text = result ? json_dumps(result, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
        json_decref(result);
        if (text) {
            finish(j, job, LD_JOB_COMPLETED, text, NULL);
        } else {
            ld_error_set(&err, LD_ERR_INTERNAL, "Cannot render the transcript");
            finish(j, job, LD_JOB_FAILED, NULL, &err);
        }
        free(text);
    }
    ld_transcript_free(t);
    for (size_t c = 0; c < n_ch; c++)
        ld_transcript_free(tc[c]);
    return cancelled ? OUT_CANCELLED : OUT_DONE;
}

/* Waits up to `ms` for a new job or shutdown; caller holds j->mu. */
static void wait_locked(ld_jobs *j, unsigned long gen, long ms)
{
    struct timespec ts = ld_time_deadline(ms);
    while (!j->stopping && j->queued_gen == gen)
        if (pthread_cond_timedwait(&j->run_cv, &j->mu, &ts) == ETIMEDOUT)
            break;
}

void *ld_jobs_runner_main(void *arg)
{
    ld_jobs *j = arg;
    pthread_mutex_lock(&j->mu);
    int slot = j->slots_taken++;
    while (!j->stopping) {
        unsigned long gen = j->queued_gen;
        pthread_mutex_unlock(&j->mu);
        ld_job job = {0};
        bool found = false;
        ld_error err = {0};
        long pause_ms = 0;
        if (j->store->ops->claim(j->store, ld_time_now_ms(), &job, &found, &err)) {
            pause_ms = 1000;
        } else if (!found) {
            pause_ms = 5000; /* a timed wait as a safety net; submits wake us at once */
        } else {
            pthread_mutex_lock(&j->mu);
            snprintf(j->slots[slot].job_id, sizeof j->slots[slot].job_id, "%s", job.id);
            j->slots[slot].cancel = false;
            pthread_mutex_unlock(&j->mu);
            ld_log_fields(LD_LOG_INFO, json_pack("{s:s, s:i}", "job_id", job.id, "run", job.runs), "job started");
            if (run_job(j, slot, &job) == OUT_BUSY) {
                /* Decoder queue full: synchronous traffic has it; try again shortly. */
                j->store->ops->requeue(j->store, job.id, NULL);
                pause_ms = 1000;
                gen = (unsigned long)-1; /* sleep even if others queue meanwhile */
            }
            pthread_mutex_lock(&j->mu);
            j->slots[slot].job_id[0] = '\0';
            j->slots[slot].cancel = false;
            pthread_mutex_unlock(&j->mu);
        }
        ld_job_clear(&job);
        pthread_mutex_lock(&j->mu);
        if (pause_ms) {
            if (gen == (unsigned long)-1)
                gen = j->queued_gen;
            wait_locked(j, gen, pause_ms);
        }
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

void ld_jobs_interrupt(ld_jobs *j, const char *id)
{
    pthread_mutex_lock(&j->mu);
    for (int i = 0; i < j->n_runners; i++)
        if (!strcmp(j->slots[i].job_id, id))
            j->slots[i].cancel = true;
    pthread_mutex_unlock(&j->mu);
}
