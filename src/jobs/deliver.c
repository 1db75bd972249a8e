/* Webhook delivery: one thread finds due deliveries (and purges jobs past
 * retention) and hands them to cfg.webhook_workers workers that POST them to
 * their callback URL, signed, retried with backoff until 2xx, a final refusal
 * or webhook_max_age_s. A receiver that hangs holds one worker for one
 * attempt's timeout; one key's deliveries hold at most half of the workers,
 * so other keys' webhooks still go out at once. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobs/jobs_internal.h"
#include "jobs/webhook.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/time.h"

#define BACKOFF_CAP_MS (10 * 60 * 1000)
#define KEEP_ATTEMPTS 100 /* older attempts are dropped from the record */
#define BATCH 128         /* due deliveries looked at per round: past those a key at its share skips */
#define PURGE_EVERY_MS (3600 * 1000)
/* Rows one purge run deletes at most (in the store's batches) before the
 * deliverer hands out deliveries again; the rest go in the next run, 1 s later. */
#define PURGE_PER_RUN 20000
#define PURGE_AGAIN_MS 1000

static bool stopping(void *ud)
{
    ld_jobs *j = ud;
    pthread_mutex_lock(&j->mu);
    bool s = j->stopping;
    pthread_mutex_unlock(&j->mu);
    return s;
}

void ld_jobs_wake_deliverer(ld_jobs *j)
{
    pthread_mutex_lock(&j->mu);
    j->deliver_kick = true;
    pthread_cond_signal(&j->deliver_cv);
    pthread_mutex_unlock(&j->mu);
}

/* The body (malloc'd) for the route the job came in on: cfg.shape's when the
 * job has a hook and shape answers, else listend's own. *put: the hook asked
 * for PUT; header: shape's extra header line or "". */
static char *webhook_body(const ld_jobs *j, const ld_job *job, bool *put, char *header, size_t headersz)
{
    bool done = job->state == LD_JOB_COMPLETED;
    json_t *v = json_loads(done ? job->result_json : job->error_json, 0, NULL);
    if (!v)
        v = json_object();
    json_t *hook = ld_jobs_opts_hook(job->opts_json), *o = NULL;
    const char *method = json_string_value(json_object_get(hook, "method"));
    *put = method && !strcmp(method, "PUT");
    *header = '\0';
    if (hook && j->cfg.shape) {
        ld_job_outcome out = {.job_id = job->id,
                              .key_id = job->key_id,
                              .request_id = job->request_id,
                              .completed = done,
                              .body = v,
                              .processing_s = (double)(job->finished_ms - job->started_ms) / 1000.0};
        o = j->cfg.shape(hook, &out, header, headersz);
    }
    if (!o) {
        o = json_pack("{s:s, s:s, s:O}", "job_id", job->id, "status", ld_job_state_name(job->state),
                      done ? "result" : "error", v);
        *header = '\0';
    }
    const char *k; /* webhook_extra's pairs, as the body's own members where it has none of that name */
    json_t *x;
    json_object_foreach(json_object_get(hook, "extra"), k, x)
    {
        if (!json_object_get(o, k))
            json_object_set(o, k, x);
    }
    json_decref(hook);
    json_decref(v);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(o);
    return s;
}

/* With j->mu held: the unrecorded attempt of job `id`, or NULL. */
static ld_jobs_unrecorded *unrecorded_find(ld_jobs *j, const char *id)
{
    for (size_t i = 0; i < j->n_unrecorded; i++)
        if (!strcmp(j->unrecorded[i].id, id))
            return &j->unrecorded[i];
    return NULL;
}

static void unrecorded_drop(ld_jobs *j, const char *id)
{
    pthread_mutex_lock(&j->mu);
    ld_jobs_unrecorded *u = unrecorded_find(j, id);
    if (u) {
        free(u->attempts_json);
        *u = j->unrecorded[--j->n_unrecorded];
    }
    pthread_mutex_unlock(&j->mu);
}

/* Keeps an attempt the store refused (takes attempts_json): the deliverer
 * honours its back-off and final state from memory and stores it when it can. */
static void unrecorded_keep(ld_jobs *j, const char *id, char *attempts_json, ld_delivery_state d, int64_t next,
                            int64_t delivered)
{
    pthread_mutex_lock(&j->mu);
    ld_jobs_unrecorded *u = unrecorded_find(j, id);
    if (!u) {
        ld_jobs_unrecorded *grown = realloc(j->unrecorded, (j->n_unrecorded + 1) * sizeof *grown);
        if (!grown) {
            pthread_mutex_unlock(&j->mu);
            free(attempts_json);
            return;
        }
        j->unrecorded = grown;
        u = grown + j->n_unrecorded++;
        *u = (ld_jobs_unrecorded){0};
        /* ids are shorter than u->id; GCC's sanitizer build took snprintf here for a "null destination" */
        memcpy(u->id, id, strnlen(id, sizeof u->id - 1));
    }
    free(u->attempts_json);
    u->attempts_json = attempts_json;
    u->delivery = d;
    u->next_attempt_ms = next;
    u->delivered_ms = delivered;
    pthread_mutex_unlock(&j->mu);
}

static void deliver_one(ld_jobs *j, const ld_job *job)
{
    int64_t now = ld_time_now_ms();
    json_t *attempts = job->attempts_json ? json_loads(job->attempts_json, 0, NULL) : NULL;
    if (!json_is_array(attempts)) {
        json_decref(attempts);
        attempts = json_array();
    }
    size_t n = json_array_size(attempts);
    int number = n ? (int)json_integer_value(json_object_get(json_array_get(attempts, n - 1), "attempt")) + 1 : 1;
    char at[32], error[512] = "";
    ld_time_iso8601(now / 1000, at);
    json_t *entry = json_pack("{s:i, s:s}", "attempt", number, "at", at);
    long status = 0;
    ld_webhook_outcome out;
    long retry_after_s = 0; /* from a 429/503 Retry-After header */
    ld_error why = {0};
    char *body = NULL, header[256] = "";
    bool put = false;
    if (ld_audio_check_url(job->callback_url, j->cfg.fetch.allow_private, &why) != LD_OK) {
        /* Allowed at submit, refused now: the name moved to a forbidden address. */
        snprintf(error, sizeof error, "callback_url refused: %s", why.msg);
        out = LD_WEBHOOK_FINAL;
    } else if (!(body = webhook_body(j, job, &put, header, sizeof header))) {
        snprintf(error, sizeof error, "cannot build the body");
        out = LD_WEBHOOK_FINAL;
    } else {
        const char *extra[] = {header, NULL};
        char secret[sizeof j->secret];
        /* Read again: with Redis the cluster's secret may have changed. */
        if (ld_jobs_secret_read(j->data_dir, secret, sizeof secret))
            snprintf(secret, sizeof secret, "%s", j->secret);
        ld_jobs_post post = {.url = job->callback_url,
                             .put = put,
                             .extra_headers = *header ? extra : NULL,
                             .body = body,
                             .secret = secret,
                             .allow_private = j->cfg.fetch.allow_private,
                             .timeout_ms = j->cfg.webhook_timeout_ms,
                             .stop = stopping,
                             .stop_ud = j};
        status = ld_jobs_post_signed(&post, error, sizeof error);
        sodium_memzero(secret, sizeof secret);
        retry_after_s = post.retry_after_s;
        out = post.refused ? LD_WEBHOOK_FINAL : ld_jobs_classify(status);
    }
    free(body);
    if (status)
        json_object_set_new(entry, "status", json_integer(status));
    else
        json_object_set_new(entry, "error", json_string(error));
    json_array_append_new(attempts, entry);
    while (json_array_size(attempts) > KEEP_ATTEMPTS)
        json_array_remove(attempts, 0);

    ld_delivery_state d = LD_DELIVERY_FAILED;
    /* The back-off counts from the attempt's end: from its start, an attempt that
     * took longer than the delay (a receiver timing out after 15 s) was retried at once. */
    int64_t ended = ld_time_now_ms(), next = 0, delivered = 0;
    if (out == LD_WEBHOOK_DELIVERED) {
        d = LD_DELIVERY_DELIVERED;
        delivered = ended;
    } else if (out == LD_WEBHOOK_RETRY) {
        int64_t delay = ld_jobs_backoff_ms(number, j->cfg.webhook_backoff_ms, BACKOFF_CAP_MS,
                                           (double)randombytes_uniform(1000000) / 1e6);
        if (retry_after_s * 1000 > delay)
            delay = retry_after_s * 1000 < BACKOFF_CAP_MS ? retry_after_s * 1000 : BACKOFF_CAP_MS;
        next = ended + delay;
        if (next - job->finished_ms <= j->cfg.webhook_max_age_s * 1000)
            d = LD_DELIVERY_PENDING;
        else
            next = 0; /* gave up: too old */
    }
    char *text = json_dumps(attempts, JSON_COMPACT);
    json_decref(attempts);
    ld_error err = {0};
    if (text && j->store->ops->record_attempt(j->store, job->id, text, d, next, delivered, &err) == LD_OK) {
        unrecorded_drop(j, job->id);
        free(text);
    } else {
        ld_log(LD_LOG_WARNING, "jobs: cannot record delivery of %s: %s; kept in memory until the store takes it",
               job->id, text ? err.msg : "out of memory");
        if (text)
            unrecorded_keep(j, job->id, text, d, next, delivered);
    }
    json_t *f = json_pack("{s:s, s:i, s:I, s:s}", "job_id", job->id, "attempt", number, "http_status",
                          (json_int_t)status, "delivery",
                          d == LD_DELIVERY_DELIVERED ? "delivered"
                          : d == LD_DELIVERY_PENDING ? "retry"
                                                     : "failed");
    if (*error)
        json_object_set_new(f, "error", json_string(error));
    if (next)
        json_object_set_new(f, "retry_in_ms", json_integer(next - ended));
    ld_metrics_webhook(d == LD_DELIVERY_DELIVERED ? "delivered" : d == LD_DELIVERY_PENDING ? "retry" : "failed");
    ld_log_fields(d == LD_DELIVERY_DELIVERED ? LD_LOG_INFO : LD_LOG_WARNING, f, "webhook attempt");
}

static void remove_files(void *ud, const ld_job *job)
{
    ld_jobs *j = ud;
    char path[1300];
    snprintf(path, sizeof path, "%s/%s.audio", j->jobs_dir, job->id);
    unlink(path);
}

/* Deletes finished jobs past retention, batch after batch (the store is free
 * for other calls between them), at most PURGE_PER_RUN; true when that bound
 * stopped it, so expired rows may be left. */
static bool purge_expired(ld_jobs *j, int64_t now)
{
    int total = 0, gone;
    while (total < PURGE_PER_RUN && !stopping(j) &&
           (gone = j->store->ops->purge(j->store, now - j->cfg.retention_s * 1000, remove_files, j)) > 0)
        total += gone;
    if (total)
        ld_log(LD_LOG_INFO, "jobs: purged %d finished jobs older than %lld s", total,
               (long long)j->cfg.retention_s);
    return total >= PURGE_PER_RUN;
}

/* With j->mu held: can `job` go to a worker now? Not when it is in flight
 * already (SQLite's due() has no lease) or its key holds its share. */
static int free_slot_for(ld_jobs *j, const ld_job *job)
{
    int per_key = j->n_dworkers / 2 > 1 ? j->n_dworkers / 2 : 1, same_key = 0, free_slot = -1;
    for (int i = 0; i < j->n_dworkers; i++) {
        const ld_jobs_dslot *d = &j->dslots[i];
        if (!d->busy) {
            if (free_slot < 0)
                free_slot = i;
            continue;
        }
        if (!strcmp(d->job.id, job->id))
            return -1;
        same_key += !strcmp(d->job.key_id, job->key_id);
    }
    return same_key >= per_key ? -1 : free_slot;
}

static void *dworker_main(void *arg)
{
    ld_jobs *j = arg;
    pthread_mutex_lock(&j->mu);
    int me = j->dworkers_started++;
    ld_jobs_dslot *d = &j->dslots[me];
    for (;;) {
        while (!j->stopping && !(d->busy && d->job.id[0]))
            pthread_cond_wait(&j->dwork_cv, &j->mu);
        if (j->stopping)
            break;
        pthread_mutex_unlock(&j->mu);
        deliver_one(j, &d->job);
        pthread_mutex_lock(&j->mu);
        ld_job_clear(&d->job);
        d->busy = false;
        j->deliver_kick = true; /* a slot is free: the deliverer may hand out more */
        pthread_cond_signal(&j->deliver_cv);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

int ld_jobs_dworkers_start(ld_jobs *j)
{
    j->n_dworkers = j->cfg.webhook_workers;
    j->dworkers = calloc((size_t)j->n_dworkers, sizeof *j->dworkers);
    j->dslots = calloc((size_t)j->n_dworkers, sizeof *j->dslots);
    if (!j->dworkers || !j->dslots)
        return -1;
    for (int i = 0; i < j->n_dworkers; i++)
        if (pthread_create(&j->dworkers[i], NULL, dworker_main, j)) {
            j->n_dworkers = i; /* join only those started */
            return -1;
        }
    return 0;
}

/* With j->mu held: is job `id` with a delivery worker now? */
static bool in_flight(const ld_jobs *j, const char *id)
{
    for (int i = 0; i < j->n_dworkers; i++)
        if (j->dslots[i].busy && !strcmp(j->dslots[i].job.id, id))
            return true;
    return false;
}

/* Stores the attempts the store refused earlier, until it refuses again. Only
 * the deliverer calls this and only for jobs not in flight, so no newer
 * attempt of the same job can be overwritten by an older one. */
static void unrecorded_flush(ld_jobs *j)
{
    for (;;) {
        ld_jobs_unrecorded u = {0};
        pthread_mutex_lock(&j->mu);
        for (size_t i = 0; i < j->n_unrecorded && !u.attempts_json; i++) {
            if (in_flight(j, j->unrecorded[i].id))
                continue;
            u = j->unrecorded[i];
            u.attempts_json = strdup(u.attempts_json);
            if (!u.attempts_json)
                break;
        }
        pthread_mutex_unlock(&j->mu);
        if (!u.attempts_json)
            return;
        ld_err rc = j->store->ops->record_attempt(j->store, u.id, u.attempts_json, u.delivery, u.next_attempt_ms,
                                                  u.delivered_ms, NULL);
        free(u.attempts_json);
        if (rc)
            return; /* still refused: the next round tries again */
        ld_log(LD_LOG_INFO, "jobs: delivery record of %s stored after the store had refused it", u.id);
        unrecorded_drop(j, u.id);
    }
}

void ld_jobs_dworkers_join(ld_jobs *j)
{
    for (int i = 0; j->dworkers && i < j->n_dworkers; i++)
        pthread_join(j->dworkers[i], NULL);
    for (int i = 0; j->dslots && i < j->n_dworkers; i++)
        ld_job_clear(&j->dslots[i].job);
    free(j->dworkers);
    free(j->dslots);
    j->dworkers = NULL;
    j->dslots = NULL;
    for (size_t i = 0; i < j->n_unrecorded; i++)
        free(j->unrecorded[i].attempts_json);
    free(j->unrecorded);
    j->unrecorded = NULL;
    j->n_unrecorded = 0;
}

void *ld_jobs_deliverer_main(void *arg)
{
    ld_jobs *j = arg;
    int64_t last_purge = 0;
    while (!stopping(j)) {
        int64_t now = ld_time_now_ms();
        if (now - last_purge >= PURGE_EVERY_MS) {
            /* A backlog past one run goes on shortly, not an hour later. */
            last_purge = purge_expired(j, now) ? now - PURGE_EVERY_MS + PURGE_AGAIN_MS : now;
        }
        unrecorded_flush(j);
        ld_job *due = NULL;
        size_t n = 0;
        pthread_mutex_lock(&j->mu);
        j->deliver_kick = false;
        pthread_mutex_unlock(&j->mu);
        j->store->ops->due(j->store, now, BATCH, &due, &n, NULL);
        bool waiting = false; /* due now but no worker free for it, or held by an unrecorded attempt */
        pthread_mutex_lock(&j->mu);
        for (size_t i = 0; i < n && !j->stopping; i++) {
            /* The store's row is behind: memory has the attempt it refused. */
            const ld_jobs_unrecorded *u = unrecorded_find(j, due[i].id);
            if (u && (u->delivery != LD_DELIVERY_PENDING || u->next_attempt_ms > now)) {
                waiting = true;
                continue;
            }
            int slot = free_slot_for(j, &due[i]);
            if (slot < 0) {
                waiting = true;
                continue;
            }
            if (u) { /* attempt numbers and back-off go on from the unrecorded attempts */
                char *attempts = strdup(u->attempts_json);
                if (attempts) {
                    free(due[i].attempts_json);
                    due[i].attempts_json = attempts;
                }
            }
            j->dslots[slot].job = due[i]; /* moved: the list entry is emptied */
            memset(&due[i], 0, sizeof due[i]);
            j->dslots[slot].busy = true;
        }
        pthread_cond_broadcast(&j->dwork_cv);
        pthread_mutex_unlock(&j->mu);
        ld_job_list_free(due, n);

        int64_t next = waiting ? 0 : j->store->ops->next_due(j->store);
        int64_t until = last_purge + PURGE_EVERY_MS;
        if (next && next < until)
            until = next;
        if (until > now + 60000)
            until = now + 60000;
        pthread_mutex_lock(&j->mu);
        bool unrecorded = j->n_unrecorded > 0;
        pthread_mutex_unlock(&j->mu);
        if ((waiting || unrecorded) && until > now + 1000)
            until = now + 1000; /* a worker's end kicks us; this is the safety net (and the store's retry) */
        struct timespec ts = ld_time_deadline(until - ld_time_now_ms());
        pthread_mutex_lock(&j->mu);
        while (!j->stopping && !j->deliver_kick && ld_time_now_ms() < until)
            if (pthread_cond_timedwait(&j->deliver_cv, &j->mu, &ts))
                break;
        pthread_mutex_unlock(&j->mu);
    }
    return NULL;
}
