/* Redis job store: jobs visible from every replica. A claim is a lease in
 * ld:jobs:claims (Redis clock) renewed by this process's renewal thread while
 * it holds the job; a replica that dies stops renewing, its claim expires
 * after the visibility timeout and the next claim on any replica puts the job
 * back in the queue and runs it (at-least-once, like the SQLite store across
 * a restart). Uploaded audio goes into Redis at insert (in chunks) and is
 * written back to <data>/jobs/<id>.audio by whichever replica claims the job. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/jobs_redis_lua.h"
#include "store/jobs_store.h"
#include "store/redis.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/time.h"

#define AUDIO_CHUNK (4u << 20)   /* bounded memory and command time per audio round trip */
#define DELIVERY_LEASE_MS 120000 /* a due webhook is this replica's for 2 min (attempts time out in 15 s) */
#define MAX_HELD 256

enum { S_INSERT, S_CLAIM, S_RENEW, S_REQUEUE, S_PROGRESS, S_FINISH, S_CANCEL, S_DUE, S_ATTEMPT, S_PURGE, S__N };

typedef struct {
    ld_job_store base;
    ld_redis *r; /* borrowed from the limits store */
    char jobs_dir[1100];
    int64_t lease_ms;
    ld_redis_script *sc[S__N];

    pthread_mutex_t mu; /* held ids, stopping */
    char held[MAX_HELD][40];
    int nheld;
    bool stopping;
    pthread_cond_t cv;
    pthread_t renewer;
    bool renewer_started;
} rj_store;

static rj_store *RJ(ld_job_store *s) { return (rj_store *)s; }

static ld_err bad_reply(redisReply *rep, ld_error *err, const char *what)
{
    ld_log(LD_LOG_ERROR, "jobs store (redis): %s: %s", what, rep && rep->str ? rep->str : "unexpected reply");
    if (rep)
        freeReplyObject(rep);
    return ld_error_set(err, LD_ERR_INTERNAL, "Job store error");
}

/* Runs a script whose reply is an integer; returns it, or -1 (err set). */
static long long eval_int(rj_store *s, int which, int argc, const char **argv, ld_error *err)
{
    redisReply *rep = ld_redis_eval(s->r, s->sc[which], 0, argc, argv, err);
    if (!rep)
        return -1;
    if (rep->type != REDIS_REPLY_INTEGER) {
        bad_reply(rep, err, "script");
        return -1;
    }
    long long v = rep->integer;
    freeReplyObject(rep);
    return v;
}

/* ---- held claims ---- */

static void hold(rj_store *s, const char *id)
{
    pthread_mutex_lock(&s->mu);
    if (s->nheld < MAX_HELD)
        snprintf(s->held[s->nheld++], sizeof s->held[0], "%s", id);
    pthread_mutex_unlock(&s->mu);
}

static void unhold(rj_store *s, const char *id)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->nheld; i++)
        if (!strcmp(s->held[i], id)) {
            memcpy(s->held[i], s->held[--s->nheld], sizeof s->held[0]);
            break;
        }
    pthread_mutex_unlock(&s->mu);
}

static void renew_all(rj_store *s)
{
    const char *argv[MAX_HELD + 1];
    char ids[MAX_HELD][40], lease[24];
    pthread_mutex_lock(&s->mu);
    int n = s->nheld;
    memcpy(ids, s->held, sizeof ids[0] * (size_t)n);
    pthread_mutex_unlock(&s->mu);
    if (!n)
        return;
    snprintf(lease, sizeof lease, "%lld", (long long)s->lease_ms);
    argv[0] = lease;
    for (int done = 0; done < n;) { /* ld_redis_eval takes at most LD_REDIS_MAX_ARGS */
        int k = n - done < LD_REDIS_MAX_ARGS - 1 ? n - done : LD_REDIS_MAX_ARGS - 1;
        for (int i = 0; i < k; i++)
            argv[1 + i] = ids[done + i];
        redisReply *rep = ld_redis_eval(s->r, s->sc[S_RENEW], 0, k + 1, argv, NULL);
        if (!rep)
            return; /* Redis down: the claims may expire; whoever claims next runs the job again */
        for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
            const char *lost = rep->element[i]->str;
            ld_log(LD_LOG_WARNING,
                   "jobs store (redis): claim on %s expired while running (Redis unreachable or paused longer "
                   "than the visibility timeout); another replica may run it too",
                   lost);
            unhold(s, lost);
        }
        freeReplyObject(rep);
        done += k;
    }
}

static void *renewer_main(void *arg)
{
    rj_store *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        struct timespec ts = ld_time_deadline(s->lease_ms / 3);
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        if (s->stopping)
            break;
        pthread_mutex_unlock(&s->mu);
        renew_all(s);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- records ---- */

static void set_str(char **dst, const redisReply *v) { *dst = strndup(v->str, v->len); }

static void parse_job(const redisReply *h, const char *id, ld_job *j)
{
    memset(j, 0, sizeof *j);
    snprintf(j->id, sizeof j->id, "%s", id);
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const char *f = h->element[i]->str;
        const redisReply *v = h->element[i + 1];
        if (!f || v->type != REDIS_REPLY_STRING)
            continue;
        if (!strcmp(f, "key_id"))
            snprintf(j->key_id, sizeof j->key_id, "%s", v->str);
        else if (!strcmp(f, "request_id"))
            snprintf(j->request_id, sizeof j->request_id, "%s", v->str);
        else if (!strcmp(f, "state")) {
            if (ld_job_state_parse(v->str, &j->state))
                j->state = LD_JOB_FAILED;
        } else if (!strcmp(f, "progress"))
            j->progress = strtod(v->str, NULL);
        else if (!strcmp(f, "cancel_requested"))
            j->cancel_requested = atoi(v->str) != 0;
        else if (!strcmp(f, "runs"))
            j->runs = atoi(v->str);
        else if (!strcmp(f, "created_ms"))
            j->created_ms = strtoll(v->str, NULL, 10);
        else if (!strcmp(f, "started_ms"))
            j->started_ms = strtoll(v->str, NULL, 10);
        else if (!strcmp(f, "finished_ms"))
            j->finished_ms = strtoll(v->str, NULL, 10);
        else if (!strcmp(f, "key_json"))
            set_str(&j->key_json, v);
        else if (!strcmp(f, "opts_json"))
            set_str(&j->opts_json, v);
        else if (!strcmp(f, "url"))
            set_str(&j->url, v);
        else if (!strcmp(f, "audio_path"))
            set_str(&j->audio_path, v);
        else if (!strcmp(f, "callback_url"))
            set_str(&j->callback_url, v);
        else if (!strcmp(f, "result_json"))
            set_str(&j->result_json, v);
        else if (!strcmp(f, "error_json"))
            set_str(&j->error_json, v);
        else if (!strcmp(f, "delivery"))
            j->delivery = (ld_delivery_state)atoi(v->str);
        else if (!strcmp(f, "attempts_json"))
            set_str(&j->attempts_json, v);
        else if (!strcmp(f, "next_attempt_ms"))
            j->next_attempt_ms = strtoll(v->str, NULL, 10);
        else if (!strcmp(f, "delivered_ms"))
            j->delivered_ms = strtoll(v->str, NULL, 10);
    }
}

/* Reads jobs by id (one round trip); ids whose hash vanished are skipped. */
static ld_err read_jobs(rj_store *s, const redisReply *ids, size_t first, ld_job **out, size_t *n, ld_error *err)
{
    *out = NULL;
    *n = 0;
    size_t m = ids->elements > first ? ids->elements - first : 0;
    if (!m)
        return LD_OK;
    int *argcs = calloc(m, sizeof *argcs);
    const char *(*argvs)[2] = calloc(m, sizeof *argvs);
    const char *const **pv = calloc(m, sizeof *pv);
    redisReply **reps = calloc(m, sizeof *reps);
    char(*keys)[64] = calloc(m, sizeof *keys);
    ld_job *jobs = calloc(m, sizeof *jobs);
    ld_err rc = LD_OK;
    if (!argcs || !argvs || !pv || !reps || !keys || !jobs) {
        rc = ld_error_set(err, LD_ERR_INTERNAL, "Out of memory");
        goto out;
    }
    for (size_t i = 0; i < m; i++) {
        snprintf(keys[i], sizeof keys[i], "ld:job:%s", ids->element[first + i]->str);
        argvs[i][0] = "HGETALL";
        argvs[i][1] = keys[i];
        argcs[i] = 2;
        pv[i] = argvs[i];
    }
    if (ld_redis_pipeline(s->r, (int)m, argcs, pv, reps, err)) {
        rc = LD_ERR_SERVICE_UNAVAILABLE;
        goto out;
    }
    for (size_t i = 0; i < m; i++) {
        if (reps[i]->type == REDIS_REPLY_ARRAY && reps[i]->elements)
            parse_job(reps[i], ids->element[first + i]->str, &jobs[(*n)++]);
        freeReplyObject(reps[i]);
    }
    *out = jobs;
    jobs = NULL;
out:
    free(jobs);
    free(argcs);
    free(argvs);
    free(pv);
    free(reps);
    free(keys);
    return rc;
}

static ld_err rj_get(ld_job_store *base, const char *id, ld_job *out, ld_error *err)
{
    rj_store *s = RJ(base);
    char key[64];
    snprintf(key, sizeof key, "ld:job:%s", id);
    redisReply *rep = ld_redis_cmdv(s->r, err, "HGETALL", key, NULL);
    if (!rep)
        return LD_ERR_SERVICE_UNAVAILABLE;
    if (rep->type != REDIS_REPLY_ARRAY)
        return bad_reply(rep, err, "get");
    bool found = rep->elements > 0;
    if (found)
        parse_job(rep, id, out);
    freeReplyObject(rep);
    return found ? LD_OK : ld_error_set(err, LD_ERR_NOT_FOUND, "Job not found");
}

/* ---- audio ---- */

/* Copies the upload into ld:jobaudio:<id> in chunks (SET, then APPEND). */
static ld_err audio_put(rj_store *s, const char *id, const char *path, ld_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ld_log(LD_LOG_ERROR, "jobs store (redis): cannot read %s: %s", path, strerror(errno));
        return ld_error_set(err, LD_ERR_INTERNAL, "Cannot store the upload");
    }
    char key[64];
    snprintf(key, sizeof key, "ld:jobaudio:%s", id);
    char *buf = malloc(AUDIO_CHUNK);
    ld_err rc = buf ? LD_OK : ld_error_set(err, LD_ERR_INTERNAL, "Out of memory");
    bool first = true;
    while (!rc) {
        size_t got = 0;
        while (got < AUDIO_CHUNK) {
            ssize_t r = read(fd, buf + got, AUDIO_CHUNK - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                if (r < 0)
                    rc = ld_error_set(err, LD_ERR_INTERNAL, "Cannot store the upload");
                break;
            }
            got += (size_t)r;
        }
        if (rc || (!got && !first))
            break;
        const char *argv[] = {first ? "SET" : "APPEND", key, buf};
        size_t lens[] = {strlen(argv[0]), strlen(key), got};
        redisReply *rep = ld_redis_cmd_slow(s->r, 3, argv, lens, err);
        if (!rep)
            rc = LD_ERR_SERVICE_UNAVAILABLE;
        else if (rep->type == REDIS_REPLY_ERROR)
            rc = bad_reply(rep, err, "store audio"), rep = NULL;
        if (rep)
            freeReplyObject(rep);
        first = false;
        if (got < AUDIO_CHUNK)
            break;
    }
    free(buf);
    close(fd);
    if (rc) {
        redisReply *rep = ld_redis_cmdv(s->r, NULL, "DEL", key, NULL);
        if (rep)
            freeReplyObject(rep);
    }
    return rc;
}

/* Writes ld:jobaudio:<id> to <jobs_dir>/<id>.audio; 0 on success. */
static int audio_fetch(rj_store *s, const char *id, char *path, size_t pathsz)
{
    char key[64], tmp[1400];
    snprintf(key, sizeof key, "ld:jobaudio:%s", id);
    snprintf(path, pathsz, "%s/%s.audio", s->jobs_dir, id);
    snprintf(tmp, sizeof tmp, "%s.fetch", path); /* swept as a partial file after a crash */
    if (ld_fs_mkdirs(s->jobs_dir, 0700))
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    int rc = 0;
    for (long long off = 0;; off += AUDIO_CHUNK) {
        char from[24], to[24];
        snprintf(from, sizeof from, "%lld", off);
        snprintf(to, sizeof to, "%lld", off + AUDIO_CHUNK - 1);
        const char *argv[] = {"GETRANGE", key, from, to};
        redisReply *rep = ld_redis_cmd_slow(s->r, 4, argv, NULL, NULL);
        if (!rep || rep->type != REDIS_REPLY_STRING) {
            rc = -1;
        } else {
            for (size_t w = 0; w < rep->len && !rc;) {
                ssize_t k = write(fd, rep->str + w, rep->len - w);
                if (k < 0 && errno != EINTR)
                    rc = -1;
                else if (k > 0)
                    w += (size_t)k;
            }
        }
        size_t len = rep && rep->type == REDIS_REPLY_STRING ? rep->len : 0;
        if (rep)
            freeReplyObject(rep);
        if (rc || len < AUDIO_CHUNK)
            break;
    }
    if (close(fd) || rc || rename(tmp, path)) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* ---- operations ---- */

static void num(char *buf, size_t n, long long v) { snprintf(buf, n, "%lld", v); }

static ld_err rj_insert(ld_job_store *base, const ld_job *j, ld_error *err)
{
    rj_store *s = RJ(base);
    char local[1300];
    bool upload = !j->url && ld_job_audio_path(s->jobs_dir, j->audio_path, local, sizeof local) &&
                  access(local, R_OK) == 0;
    ld_err rc;
    if (upload && (rc = audio_put(s, j->id, local, err)))
        return rc;
    char created[24], started[24], finished[24], next[24], delivered[24], runs[24], cancel[24], delivery[24],
        progress[40];
    num(created, sizeof created, j->created_ms);
    num(started, sizeof started, j->started_ms);
    num(finished, sizeof finished, j->finished_ms);
    num(next, sizeof next, j->next_attempt_ms);
    num(delivered, sizeof delivered, j->delivered_ms);
    num(runs, sizeof runs, j->runs);
    num(cancel, sizeof cancel, j->cancel_requested);
    num(delivery, sizeof delivery, (long long)j->delivery);
    snprintf(progress, sizeof progress, "%.17g", j->progress);
    const char *state = ld_job_state_name(j->state);
    const char *argv[LD_REDIS_MAX_ARGS];
    int argc = 0;
    argv[argc++] = j->id;
    argv[argc++] = state;
    argv[argc++] = j->key_id;
    argv[argc++] = created;
    argv[argc++] = finished;
    argv[argc++] = j->delivery == LD_DELIVERY_PENDING ? "1" : "0";
    argv[argc++] = next;
#define FIELD(name, value)        \
    do {                          \
        const char *v_ = (value); \
        if (v_) {                 \
            argv[argc++] = name;  \
            argv[argc++] = v_;    \
        }                         \
    } while (0)
    FIELD("key_id", j->key_id);
    FIELD("request_id", j->request_id);
    FIELD("state", state);
    FIELD("progress", progress);
    FIELD("cancel_requested", cancel);
    FIELD("runs", runs);
    FIELD("created_ms", created);
    FIELD("started_ms", started);
    FIELD("finished_ms", finished);
    FIELD("key_json", j->key_json);
    FIELD("opts_json", j->opts_json);
    FIELD("url", j->url);
    FIELD("audio_path", j->audio_path);
    FIELD("callback_url", j->callback_url);
    FIELD("result_json", j->result_json);
    FIELD("error_json", j->error_json);
    FIELD("delivery", delivery);
    FIELD("attempts_json", j->attempts_json);
    FIELD("next_attempt_ms", next);
    FIELD("delivered_ms", delivered);
#undef FIELD
    long long v = eval_int(s, S_INSERT, argc, argv, err);
    if (v != 1) {
        if (upload) {
            char key[64];
            snprintf(key, sizeof key, "ld:jobaudio:%s", j->id);
            redisReply *rep = ld_redis_cmdv(s->r, NULL, "DEL", key, NULL);
            if (rep)
                freeReplyObject(rep);
        }
        return v < 0 ? (err ? err->code : LD_ERR_SERVICE_UNAVAILABLE)
                     : ld_error_set(err, LD_ERR_INTERNAL, "Job %s already exists", j->id);
    }
    /* Redis holds the audio now; whichever replica claims the job writes it back. */
    if (upload)
        unlink(local);
    return LD_OK;
}

static ld_err rj_claim(ld_job_store *base, int64_t now_ms, ld_job *out, bool *found, ld_error *err)
{
    rj_store *s = RJ(base);
    *found = false;
    char now[24], lease[24];
    num(now, sizeof now, now_ms);
    num(lease, sizeof lease, s->lease_ms);
    const char *argv[] = {now, lease};
    redisReply *rep = ld_redis_eval(s->r, s->sc[S_CLAIM], 0, 2, argv, err);
    if (!rep)
        return LD_ERR_SERVICE_UNAVAILABLE;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2)
        return bad_reply(rep, err, "claim");
    if (rep->element[1]->len)
        ld_log_fields(LD_LOG_WARNING, json_pack("{s:s}", "job_ids", rep->element[1]->str),
                      "jobs: claim expired (its replica stopped renewing it); queued again: %s",
                      rep->element[1]->str);
    char id[40];
    snprintf(id, sizeof id, "%s", rep->element[0]->str ? rep->element[0]->str : "");
    freeReplyObject(rep);
    if (!id[0])
        return LD_OK;
    hold(s, id);
    ld_err rc = rj_get(base, id, out, err);
    if (rc) {
        unhold(s, id);
        const char *rq[] = {id};
        eval_int(s, S_REQUEUE, 1, rq, NULL);
        return rc;
    }
    if (out->audio_path && !out->url) {
        char local[1300];
        if (audio_fetch(s, id, local, sizeof local) == 0) {
            free(out->audio_path);
            out->audio_path = strdup(local);
        } else {
            ld_log(LD_LOG_ERROR, "jobs store (redis): cannot write the audio of %s to %s", id, s->jobs_dir);
        }
    }
    *found = true;
    return LD_OK;
}

static ld_err rj_requeue(ld_job_store *base, const char *id, ld_error *err)
{
    rj_store *s = RJ(base);
    unhold(s, id);
    const char *argv[] = {id};
    return eval_int(s, S_REQUEUE, 1, argv, err) < 0 ? err ? err->code : LD_ERR_SERVICE_UNAVAILABLE : LD_OK;
}

static ld_err rj_set_progress(ld_job_store *base, const char *id, double progress, ld_error *err)
{
    char p[40];
    snprintf(p, sizeof p, "%.6f", progress);
    const char *argv[] = {id, p};
    return eval_int(RJ(base), S_PROGRESS, 2, argv, err) < 0 ? err ? err->code : LD_ERR_SERVICE_UNAVAILABLE : LD_OK;
}

static ld_err rj_finish(ld_job_store *base, const char *id, ld_job_state state, const char *result_json,
                        const char *error_json, int64_t now_ms, ld_error *err)
{
    rj_store *s = RJ(base);
    char now[24];
    num(now, sizeof now, now_ms);
    const char *argv[] = {id,
                          ld_job_state_name(state),
                          result_json ? "1" : "0",
                          result_json ? result_json : "",
                          error_json ? "1" : "0",
                          error_json ? error_json : "",
                          now};
    long long v = eval_int(s, S_FINISH, 7, argv, err);
    if (v < 0)
        return err ? err->code : LD_ERR_SERVICE_UNAVAILABLE;
    unhold(s, id);
    return v ? LD_OK : ld_error_set(err, LD_ERR_NOT_FOUND, "Job not found or already finished");
}

static ld_err rj_cancel(ld_job_store *base, const char *id, const char *key_id, int64_t now_ms, ld_job_state *state,
                        ld_error *err)
{
    rj_store *s = RJ(base);
    char now[24];
    num(now, sizeof now, now_ms);
    const char *argv[] = {id, key_id, now};
    redisReply *rep = ld_redis_eval(s->r, s->sc[S_CANCEL], 0, 3, argv, err);
    if (!rep)
        return LD_ERR_SERVICE_UNAVAILABLE;
    if (rep->type != REDIS_REPLY_STRING)
        return bad_reply(rep, err, "cancel");
    ld_err rc = ld_job_state_parse(rep->str, state) ? ld_error_set(err, LD_ERR_NOT_FOUND, "Job not found") : LD_OK;
    freeReplyObject(rep);
    return rc;
}

/* The key's newest `limit` jobs (ZREVRANGE of its index). */
static ld_err newest(rj_store *s, const char *key_id, int limit, ld_job **out, size_t *n, ld_error *err)
{
    *out = NULL;
    *n = 0;
    char key[96], stop[16];
    snprintf(key, sizeof key, "ld:jobs:key:%s", key_id);
    snprintf(stop, sizeof stop, "%d", limit > 0 ? limit - 1 : 0);
    redisReply *ids = ld_redis_cmdv(s->r, err, "ZREVRANGE", key, "0", stop, NULL);
    if (!ids)
        return LD_ERR_SERVICE_UNAVAILABLE;
    if (ids->type != REDIS_REPLY_ARRAY)
        return bad_reply(ids, err, "list");
    ld_err rc = limit > 0 ? read_jobs(s, ids, 0, out, n, err) : LD_OK;
    freeReplyObject(ids);
    return rc;
}

/* Redis keeps no per-key state index: the key's LD_JOB_STORE_SCAN newest jobs are
 * read and the first `limit` that `keep` accepts kept, in their order. */
static ld_err scan(rj_store *s, const char *key_id, bool (*keep)(const ld_job *, int), int arg, bool oldest_first,
                   int limit, ld_job **out, size_t *n, ld_error *err)
{
    ld_job *all = NULL;
    size_t total = 0;
    ld_err rc = newest(s, key_id, LD_JOB_STORE_SCAN, &all, &total, err);
    *out = NULL;
    *n = 0;
    if (rc)
        return rc;
    if (oldest_first)
        for (size_t i = 0; i < total / 2; i++) {
            ld_job t = all[i];
            all[i] = all[total - 1 - i];
            all[total - 1 - i] = t;
        }
    size_t kept = 0;
    for (size_t i = 0; i < total; i++) {
        if (keep(&all[i], arg) && (int)kept < limit) {
            if (kept != i) {
                all[kept] = all[i];
                memset(&all[i], 0, sizeof all[i]);
            }
            kept++;
        } else {
            ld_job_clear(&all[i]);
        }
    }
    *out = all;
    *n = kept;
    if (!kept) {
        free(all);
        *out = NULL;
    }
    return LD_OK;
}

static bool in_state(const ld_job *j, int state) { return (int)j->state == state; }

static bool pending(const ld_job *j, int unused)
{
    (void)unused;
    return j->state == LD_JOB_QUEUED || j->state == LD_JOB_PROCESSING;
}

static ld_err rj_list(ld_job_store *base, const char *key_id, int state, int limit, ld_job **out, size_t *n,
                      ld_error *err)
{
    if (state < 0)
        return newest(RJ(base), key_id, limit, out, n, err);
    return scan(RJ(base), key_id, in_state, state, false, limit, out, n, err);
}

/* Jobs are claimed oldest first, so a key's pending ones are among its newest
 * LD_JOB_STORE_SCAN unless more of its later jobs already finished behind a long one. */
static ld_err rj_pending_of_key(ld_job_store *base, const char *key_id, int limit, ld_job **out, size_t *n,
                                ld_error *err)
{
    return scan(RJ(base), key_id, pending, 0, true, limit, out, n, err);
}

static ld_err rj_due(ld_job_store *base, int64_t now_ms, int limit, ld_job **out, size_t *n, ld_error *err)
{
    rj_store *s = RJ(base);
    *out = NULL;
    *n = 0;
    char now[24], lim[16], lease[24];
    num(now, sizeof now, now_ms);
    num(lim, sizeof lim, limit);
    num(lease, sizeof lease, DELIVERY_LEASE_MS);
    const char *argv[] = {now, lim, lease};
    redisReply *ids = ld_redis_eval(s->r, s->sc[S_DUE], 0, 3, argv, err);
    if (!ids)
        return LD_ERR_SERVICE_UNAVAILABLE;
    if (ids->type != REDIS_REPLY_ARRAY)
        return bad_reply(ids, err, "due");
    ld_err rc = read_jobs(s, ids, 0, out, n, err);
    freeReplyObject(ids);
    return rc;
}

static int64_t rj_next_due(ld_job_store *base)
{
    rj_store *s = RJ(base);
    redisReply *rep = ld_redis_cmdv(s->r, NULL, "ZRANGE", "ld:jobs:due", "0", "0", "WITHSCORES", NULL);
    int64_t v = 0;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2)
        v = (int64_t)ld_redis_double(rep->element[1], 0);
    if (rep)
        freeReplyObject(rep);
    return v;
}

static ld_err rj_record_attempt(ld_job_store *base, const char *id, const char *attempts_json, ld_delivery_state d,
                                int64_t next_attempt_ms, int64_t delivered_ms, ld_error *err)
{
    char dl[24], next[24], deliv[24];
    num(dl, sizeof dl, (long long)d);
    num(next, sizeof next, next_attempt_ms);
    num(deliv, sizeof deliv, delivered_ms);
    const char *argv[] = {id, attempts_json ? attempts_json : "[]", dl, next, deliv};
    return eval_int(RJ(base), S_ATTEMPT, 5, argv, err) < 0 ? err ? err->code : LD_ERR_SERVICE_UNAVAILABLE : LD_OK;
}

static int rj_purge(ld_job_store *base, int64_t before_ms, void (*gone)(void *ud, const ld_job *job), void *ud)
{
    rj_store *s = RJ(base);
    char max[32];
    snprintf(max, sizeof max, "(%lld", (long long)before_ms);
    redisReply *ids = ld_redis_cmdv(s->r, NULL, "ZRANGEBYSCORE", "ld:jobs:finished", "-inf", max, "LIMIT", "0",
                                    "1000", NULL);
    if (!ids || ids->type != REDIS_REPLY_ARRAY) {
        if (ids)
            freeReplyObject(ids);
        return 0;
    }
    ld_job *jobs = NULL;
    size_t n = 0;
    int deleted = 0;
    if (read_jobs(s, ids, 0, &jobs, &n, NULL) == LD_OK) {
        char before[24];
        num(before, sizeof before, before_ms);
        for (size_t i = 0; i < n; i++) {
            const char *argv[] = {jobs[i].id, before};
            if (eval_int(s, S_PURGE, 2, argv, NULL) == 1) {
                deleted++;
                if (gone)
                    gone(ud, &jobs[i]);
            }
        }
        ld_job_list_free(jobs, n);
    }
    /* ids whose hash vanished (read_jobs skipped them) are dropped from the index too */
    for (size_t i = 0; i < ids->elements && n < ids->elements; i++) {
        const char *argv[] = {ids->element[i]->str, "0"};
        eval_int(s, S_PURGE, 2, argv, NULL);
    }
    freeReplyObject(ids);
    return deleted;
}

static int rj_count(ld_job_store *base, ld_job_state state)
{
    char key[64];
    snprintf(key, sizeof key, "ld:jobs:state:%s", ld_job_state_name(state));
    redisReply *rep = ld_redis_cmdv(RJ(base)->r, NULL, "SCARD", key, NULL);
    int v = rep && rep->type == REDIS_REPLY_INTEGER ? (int)rep->integer : -1;
    if (rep)
        freeReplyObject(rep);
    return v;
}

static bool rj_exists(ld_job_store *base, const char *id)
{
    char key[64];
    snprintf(key, sizeof key, "ld:job:%s", id);
    redisReply *rep = ld_redis_cmdv(RJ(base)->r, NULL, "EXISTS", key, NULL);
    bool found = !rep || rep->type != REDIS_REPLY_INTEGER || rep->integer != 0; /* on error keep files */
    if (rep)
        freeReplyObject(rep);
    return found;
}

static void rj_close(ld_job_store *base)
{
    rj_store *s = RJ(base);
    if (!s)
        return;
    if (s->renewer_started) {
        pthread_mutex_lock(&s->mu);
        s->stopping = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->renewer, NULL);
    }
    /* Jobs still held were abandoned by a shutdown: hand them to the other
     * replicas now rather than after the visibility timeout. */
    while (s->nheld > 0) {
        char id[40];
        snprintf(id, sizeof id, "%s", s->held[s->nheld - 1]);
        s->nheld--;
        const char *argv[] = {id};
        if (eval_int(s, S_REQUEUE, 1, argv, NULL) == 1)
            ld_log(LD_LOG_INFO, "jobs store (redis): %s queued again for another replica", id);
    }
    for (int i = 0; i < S__N; i++)
        ld_redis_script_free(s->sc[i]);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static const ld_job_store_ops redis_job_ops = {
    .close = rj_close,
    .insert = rj_insert,
    .get = rj_get,
    .claim = rj_claim,
    .requeue = rj_requeue,
    .set_progress = rj_set_progress,
    .finish = rj_finish,
    .cancel = rj_cancel,
    .list = rj_list,
    .pending_of_key = rj_pending_of_key,
    .due = rj_due,
    .next_due = rj_next_due,
    .record_attempt = rj_record_attempt,
    .purge = rj_purge,
    .count = rj_count,
    .exists = rj_exists,
};

ld_job_store *ld_store_jobs_open_redis(ld_store *store, const char *data_dir, int64_t lease_ms, ld_error *err)
{
    ld_redis *r = ld_store_redis_conn(store);
    if (!r || !data_dir || !*data_dir) {
        ld_error_set(err, LD_ERR_INTERNAL, "jobs store (redis): needs a Redis store and a data dir");
        return NULL;
    }
    rj_store *s = calloc(1, sizeof *s);
    if (!s) {
        ld_error_set(err, LD_ERR_INTERNAL, "Out of memory");
        return NULL;
    }
    s->base.ops = &redis_job_ops;
    s->r = r;
    s->lease_ms = lease_ms >= 300 ? lease_ms : LD_JOBS_REDIS_LEASE_MS;
    snprintf(s->jobs_dir, sizeof s->jobs_dir, "%s/jobs", data_dir);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    static const char *const lua[S__N] = {lua_insert, lua_claim,  lua_renew, lua_requeue, lua_progress,
                                          lua_finish, lua_cancel, lua_due,   lua_attempt, lua_purge};
    bool ok = true;
    for (int i = 0; i < S__N; i++)
        ok = (s->sc[i] = ld_redis_script_new(lua[i])) && ok;
    if (!ok || pthread_create(&s->renewer, NULL, renewer_main, s)) {
        ld_error_set(err, LD_ERR_INTERNAL, "jobs store (redis): cannot start");
        rj_close(&s->base);
        return NULL;
    }
    s->renewer_started = true;
    return &s->base;
}

ld_job_store *ld_store_jobs_open_configured(const char *data_dir, ld_store *store, ld_error *err)
{
    if (ld_store_redis_conn(store)) {
        const char *env = getenv("LISTEND_JOB_LEASE_MS");
        return ld_store_jobs_open_redis(store, data_dir, env ? atoll(env) : 0, err);
    }
    char db[4200];
    if (!data_dir || snprintf(db, sizeof db, "%s/jobs.db", data_dir) >= (int)sizeof db) {
        ld_error_set(err, LD_ERR_INTERNAL, "jobs: bad data dir");
        return NULL;
    }
    return ld_store_jobs_open_sqlite(db, err);
}
