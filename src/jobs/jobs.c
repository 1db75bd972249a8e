/* Jobs: lifecycle (threads, webhook secret, crash sweep), submit and counts. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobs/jobs_internal.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/rand.h"
#include "util/time.h"

#define MAX_CALLBACK_URL 2048

/* Reads <data>/webhook.secret, creating it (0600, 32 random bytes as hex) on first start. */
static ld_err load_secret(ld_jobs *j, ld_error *err)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/webhook.secret", j->data_dir);
    size_t len = 0;
    char *text = ld_fs_read(path, 4096, &len);
    if (text) {
        while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
            text[--len] = '\0';
        if (len < 32 || len >= sizeof j->secret) {
            free(text);
            return ld_error_set(err, LD_ERR_INTERNAL, "%s must hold 32..64 characters", path);
        }
        memcpy(j->secret, text, len + 1);
        free(text);
        return LD_OK;
    }
    if (errno != ENOENT)
        return ld_error_set(err, LD_ERR_INTERNAL, "Cannot read %s: %s", path, strerror(errno));
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(j->secret, sizeof j->secret, raw, sizeof raw);
    char line[80];
    int n = snprintf(line, sizeof line, "%s\n", j->secret);
    if (ld_fs_write_atomic(path, line, (size_t)n, 0600))
        return ld_error_set(err, LD_ERR_INTERNAL, "Cannot write %s: %s", path, strerror(errno));
    ld_log(LD_LOG_INFO, "jobs: created webhook secret %s", path);
    return LD_OK;
}

/* After a crash: partial downloads and audio whose job row was never
 * committed (crash between the rename and the insert) are garbage. */
static void sweep_orphans(ld_jobs *j)
{
    DIR *d = opendir(j->jobs_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char id[64];
        const char *dot = strrchr(e->d_name, '.');
        if (!dot || (size_t)(dot - e->d_name) >= sizeof id)
            continue;
        memcpy(id, e->d_name, (size_t)(dot - e->d_name));
        id[dot - e->d_name] = '\0';
        bool drop = !strcmp(dot, ".fetch") || !strcmp(dot, ".copy") ||
                    (!strcmp(dot, ".audio") && !j->store->ops->exists(j->store, id));
        if (drop && unlinkat(dirfd(d), e->d_name, 0) == 0)
            ld_log(LD_LOG_INFO, "jobs: removed orphaned file %s/%s", j->jobs_dir, e->d_name);
    }
    closedir(d);
}

static void apply_defaults(ld_jobs *j, const ld_jobs_config *cfg)
{
    j->cfg = *cfg;
    j->cfg.data_dir = j->data_dir;
    if (j->cfg.max_audio_seconds <= 0)
        j->cfg.max_audio_seconds = 7200;
    if (j->cfg.retention_s <= 0)
        j->cfg.retention_s = 7 * 86400;
    if (j->cfg.webhook_max_age_s <= 0)
        j->cfg.webhook_max_age_s = 86400;
    if (j->cfg.max_pending <= 0)
        j->cfg.max_pending = 1000;
    if (j->cfg.webhook_timeout_ms <= 0)
        j->cfg.webhook_timeout_ms = 15000;
    if (j->cfg.webhook_backoff_ms <= 0)
        j->cfg.webhook_backoff_ms = 1000;
    if (j->cfg.webhook_workers <= 0)
        j->cfg.webhook_workers = 8;
    if (j->cfg.max_pending_per_key <= 0)
        j->cfg.max_pending_per_key = j->cfg.max_pending / 4 > 1 ? j->cfg.max_pending / 4 : 1;
    if (j->cfg.max_audio_per_key <= 0)
        j->cfg.max_audio_per_key = (int64_t)1 << 30;
    if (j->cfg.max_running <= 0) {
        /* Half the decoders at most, so synchronous requests always find the
         * pool's round-robin with room for them (docs/jobs.md, fairness). */
        int workers = j->cfg.pool ? ld_pool_workers(j->cfg.pool) : 1;
        j->cfg.max_running = workers / 2 > 1 ? workers / 2 : 1;
    }
}

ld_jobs *ld_jobs_new(const ld_jobs_config *cfg, ld_error *err)
{
    if (!cfg || !cfg->data_dir) {
        ld_error_set(err, LD_ERR_INTERNAL, "jobs: no data dir");
        return NULL;
    }
    ld_jobs *j = calloc(1, sizeof *j);
    if (!j) {
        ld_error_set(err, LD_ERR_INTERNAL, "Out of memory");
        return NULL;
    }
    snprintf(j->data_dir, sizeof j->data_dir, "%s", cfg->data_dir);
    snprintf(j->jobs_dir, sizeof j->jobs_dir, "%s/jobs", j->data_dir);
    snprintf(j->tmp_dir, sizeof j->tmp_dir, "%s/tmp", j->data_dir);
    apply_defaults(j, cfg);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->run_cv, NULL);
    pthread_cond_init(&j->deliver_cv, NULL);
    pthread_cond_init(&j->stop_cv, NULL);
    pthread_cond_init(&j->dwork_cv, NULL);

    if (ld_fs_mkdirs(j->jobs_dir, 0700) || ld_fs_mkdirs(j->tmp_dir, 0700)) {
        ld_error_set(err, LD_ERR_INTERNAL, "Cannot create %s: %s", j->jobs_dir, strerror(errno));
        goto fail;
    }
    /* With Redis, opening the store already copied the cluster-wide secret into
     * <data>/webhook.secret, so every replica signs alike. */
    if (load_secret(j, err) || !(j->store = ld_store_jobs_open_configured(j->data_dir, cfg->store, err)))
        goto fail;
    sweep_orphans(j);

    ld_log_fields(LD_LOG_INFO,
                  json_pack("{s:i, s:i, s:i}", "runners", j->cfg.max_running, "queued",
                            j->store->ops->count(j->store, LD_JOB_QUEUED), "webhook_backoff_ms",
                            (int)j->cfg.webhook_backoff_ms),
                  "jobs: ready");
    j->n_runners = j->cfg.max_running;
    j->runners = calloc((size_t)j->n_runners, sizeof *j->runners);
    j->slots = calloc((size_t)j->n_runners, sizeof *j->slots);
    if (!j->runners || !j->slots) {
        ld_error_set(err, LD_ERR_INTERNAL, "Out of memory");
        goto fail;
    }
    for (int i = 0; i < j->n_runners; i++) {
        if (pthread_create(&j->runners[i], NULL, ld_jobs_runner_main, j)) {
            j->n_runners = i;
            ld_error_set(err, LD_ERR_INTERNAL, "Cannot start job runner");
            goto fail;
        }
    }
    if (ld_jobs_dworkers_start(j) || pthread_create(&j->deliverer, NULL, ld_jobs_deliverer_main, j)) {
        ld_error_set(err, LD_ERR_INTERNAL, "Cannot start webhook delivery");
        goto fail;
    }
    j->deliverer_started = true;
    return j;
fail:
    ld_jobs_free(j);
    return NULL;
}

void ld_jobs_free(ld_jobs *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    j->stopping = true;
    pthread_cond_broadcast(&j->run_cv);
    pthread_cond_broadcast(&j->deliver_cv);
    pthread_cond_broadcast(&j->dwork_cv);
    pthread_cond_broadcast(&j->stop_cv);
    pthread_mutex_unlock(&j->mu);
    for (int i = 0; i < j->n_runners; i++)
        pthread_join(j->runners[i], NULL);
    if (j->deliverer_started)
        pthread_join(j->deliverer, NULL);
    ld_jobs_dworkers_join(j);
    if (j->store)
        j->store->ops->close(j->store);
    free(j->runners);
    free(j->slots);
    pthread_cond_destroy(&j->run_cv);
    pthread_cond_destroy(&j->deliver_cv);
    pthread_cond_destroy(&j->stop_cv);
    pthread_cond_destroy(&j->dwork_cv);
    pthread_mutex_destroy(&j->mu);
    sodium_memzero(j->secret, sizeof j->secret);
    free(j);
}

static bool http_url(const char *u) { return !strncasecmp(u, "http://", 7) || !strncasecmp(u, "https://", 8); }

static ld_err check_callback(ld_jobs *j, const char *callback_url, ld_error *err)
{
    if (!callback_url || !*callback_url)
        return ld_error_set(err, LD_ERR_MISSING_PARAMETER, "Missing required parameter: callback_url");
    if (strlen(callback_url) > MAX_CALLBACK_URL || !http_url(callback_url))
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                            "callback_url must be an http:// or https:// URL of at most %d characters",
                            MAX_CALLBACK_URL);
    ld_error why = {0};
    if (ld_audio_check_url(callback_url, j->cfg.fetch.allow_private, &why) != LD_OK)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "callback_url refused: %s", why.msg);
    return LD_OK;
}

static int fsync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Copy for when the spool is on another file system than the data dir. */
static int copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    int out = in < 0 ? -1 : open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = in < 0 || out < 0 ? -1 : 0;
    char buf[65536];
    while (!rc) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r == 0)
            break;
        if (r < 0) {
            rc = errno == EINTR ? 0 : -1;
            continue;
        }
        rc = ld_fs_write_all(out, buf, (size_t)r);
    }
    if (!rc && fsync(out))
        rc = -1;
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out))
        rc = -1;
    return rc;
}

/* Moves the spooled upload to <data>/jobs/<id>.audio and makes both the data
 * and the directory entry durable before the job row is written. */
static ld_err adopt_audio(ld_jobs *j, const char *from, const char *to, ld_error *err)
{
    if (fsync_path(from, O_RDONLY))
        return ld_error_set(err, LD_ERR_INTERNAL, "Cannot store the upload");
    if (rename(from, to)) {
        char tmp[1300];
        snprintf(tmp, sizeof tmp, "%s.copy", to);
        if (errno != EXDEV || copy_file(from, tmp) || rename(tmp, to)) {
            ld_log(LD_LOG_ERROR, "jobs: cannot move %s to %s: %s", from, to, strerror(errno));
            unlink(tmp);
            return ld_error_set(err, LD_ERR_INTERNAL, "Cannot store the upload");
        }
        unlink(from);
    }
    if (fsync_path(j->jobs_dir, O_RDONLY | O_DIRECTORY)) {
        ld_log(LD_LOG_ERROR, "jobs: fsync %s: %s", j->jobs_dir, strerror(errno));
        rename(to, from);
        return ld_error_set(err, LD_ERR_INTERNAL, "Cannot store the upload");
    }
    return LD_OK;
}

/* One key's share of the queue and of the jobs dir: its queued + processing
 * jobs and the uploaded audio they hold, so one key cannot fill either for
 * everyone (docs/hardening.md, "Tenant isolation"). */
static ld_err check_key_caps(ld_jobs *j, const char *key_id, const char *audio_path, ld_error *err)
{
    ld_job *mine = NULL;
    size_t n = 0;
    ld_err rc = j->store->ops->pending_of_key(j->store, key_id, j->cfg.max_pending_per_key + 1, &mine, &n, err);
    if (rc)
        return rc;
    int64_t bytes = 0;
    struct stat st;
    char path[1300];
    for (size_t i = 0; i < n; i++)
        if (ld_job_audio_path(j->jobs_dir, mine[i].audio_path, path, sizeof path) && !stat(path, &st))
            bytes += st.st_size;
    ld_job_list_free(mine, n);
    if ((int)n >= j->cfg.max_pending_per_key)
        return ld_error_set(err, LD_ERR_RATE_LIMITED, "Too many pending jobs for this key (limit %d); retry later",
                            j->cfg.max_pending_per_key);
    if (audio_path && !stat(audio_path, &st) && bytes + st.st_size > j->cfg.max_audio_per_key)
        return ld_error_set(err, LD_ERR_RATE_LIMITED,
                            "This key's pending jobs hold too much audio (limit %.0f MB); retry when they finish",
                            (double)j->cfg.max_audio_per_key / (1024.0 * 1024.0));
    return LD_OK;
}

ld_err ld_jobs_submit(ld_jobs *j, const ld_key_claims *key, const char *request_id, const char *url,
                      const char *audio_path, const ld_transcribe_opts *opts, const char *callback_url,
                      const json_t *hook, json_t **accepted, ld_error *err)
{
    *accepted = NULL;
    if (url && !*url)
        url = NULL;
    if (audio_path && !*audio_path)
        audio_path = NULL;
    if (!url && !audio_path)
        return ld_error_set(err, LD_ERR_MISSING_PARAMETER, NULL);
    if (url && audio_path)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "url and audio are mutually exclusive");
    ld_err rc = check_callback(j, callback_url, err);
    if (rc)
        return rc;
    if (url && (rc = ld_audio_check_url(url, j->cfg.fetch.allow_private, err)))
        return rc;
    int pending = j->store->ops->count(j->store, LD_JOB_QUEUED) + j->store->ops->count(j->store, LD_JOB_PROCESSING);
    if (pending >= j->cfg.max_pending)
        return ld_error_set(err, LD_ERR_SERVICE_UNAVAILABLE, "Too many pending jobs; retry later");
    if ((rc = check_key_caps(j, key->key_id, audio_path, err)))
        return rc;

    ld_job job = {0};
    ld_rand_id("job_", job.id, sizeof job.id);
    snprintf(job.key_id, sizeof job.key_id, "%s", key->key_id);
    snprintf(job.request_id, sizeof job.request_id, "%s", request_id ? request_id : "");
    job.state = LD_JOB_QUEUED;
    job.created_ms = ld_time_now_ms();
    job.key_json = ld_jobs_claims_dump(key);
    job.opts_json = ld_jobs_opts_dump_hook(opts, hook);
    job.callback_url = strdup(callback_url);
    char dest[1300] = "";
    if (url) {
        job.url = strdup(url);
    } else {
        /* The row names the file only: the data dir may be given as another
         * path at the next start (ld_job_audio_path). */
        char name[64];
        snprintf(name, sizeof name, "%s.audio", job.id);
        job.audio_path = strdup(name);
        ld_job_audio_path(j->jobs_dir, name, dest, sizeof dest);
    }
    if (!job.key_json || !job.opts_json || !job.callback_url || !(job.url || job.audio_path)) {
        ld_job_clear(&job);
        return ld_error_set(err, LD_ERR_INTERNAL, "Out of memory");
    }
    if (audio_path && (rc = adopt_audio(j, audio_path, dest, err))) {
        ld_job_clear(&job);
        return rc;
    }
    if ((rc = j->store->ops->insert(j->store, &job, err))) {
        if (audio_path && rename(dest, audio_path))
            unlink(dest);
        ld_job_clear(&job);
        return rc;
    }
    ld_log_fields(LD_LOG_INFO,
                  json_pack("{s:s, s:s, s:s, s:s}", "job_id", job.id, "request_id", job.request_id, "key_id",
                            job.key_id, "source", url ? "url" : "upload"),
                  "job accepted");
    *accepted = json_pack("{s:s, s:s, s:s}", "job_id", job.id, "status", "processing", "request_id",
                          job.request_id);
    ld_job_clear(&job);
    pthread_mutex_lock(&j->mu);
    j->queued_gen++;
    pthread_cond_signal(&j->run_cv);
    pthread_mutex_unlock(&j->mu);
    return LD_OK;
}

int ld_jobs_count(ld_jobs *j, const char *state)
{
    if (!state)
        return j->store->ops->count(j->store, LD_JOB_QUEUED) + j->store->ops->count(j->store, LD_JOB_PROCESSING);
    ld_job_state s;
    if (ld_job_state_parse(state, &s))
        return -1;
    return j->store->ops->count(j->store, s);
}
