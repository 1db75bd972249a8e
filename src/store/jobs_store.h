/* Durable job records for asynchronous transcription (jobs/jobs.h): one
 * interface (a struct of function pointers) so a Redis backend can sit next to
 * the SQLite one (store/jobs_sqlite.c, <data>/jobs.db, WAL, synchronous=FULL).
 *
 * A job moves queued -> processing -> completed | failed | cancelled. Claiming
 * marks it processing; a claim does not survive a restart: opening the store
 * puts every processing job back to queued (at-least-once execution).
 * Finishing a job with a callback URL arms its delivery (next_attempt_at = now).
 *
 * Thread-safety: every operation may be called from any thread.
 * Ownership: ld_store_jobs_open_* return a store owned by the caller
 * (ld_store_jobs_close). Strings inside an ld_job are malloc'd and owned by the
 * record; release records with ld_job_clear / ld_job_list_free. */
#ifndef LD_STORE_JOBS_STORE_H
#define LD_STORE_JOBS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef enum {
    LD_JOB_QUEUED,
    LD_JOB_PROCESSING,
    LD_JOB_COMPLETED,
    LD_JOB_FAILED,
    LD_JOB_CANCELLED,
    LD_JOB__STATES
} ld_job_state;

/* The Redis store has no per-key state index: a list by state looks at this many of a key's newest jobs. */
#define LD_JOB_STORE_SCAN 500

/* Webhook delivery of a finished job. */
typedef enum {
    LD_DELIVERY_NONE,      /* not finished yet, or cancelled (nothing to deliver) */
    LD_DELIVERY_PENDING,   /* next attempt at next_attempt_ms */
    LD_DELIVERY_DELIVERED, /* receiver answered 2xx */
    LD_DELIVERY_FAILED     /* final 4xx, or gave up after webhook_max_age_s */
} ld_delivery_state;

typedef struct {
    char id[40]; /* "job_…" */
    char key_id[32];
    char request_id[64];
    ld_job_state state;
    double progress;                             /* 0..1 */
    bool cancel_requested;                       /* DELETE while processing */
    int runs;                                    /* times claimed (>1 after a crash) */
    int64_t created_ms, started_ms, finished_ms; /* unix ms; 0 = not yet */
    char *key_json;                              /* key claims captured at submit (quota/usage at run time) */
    char *opts_json;                             /* transcription options */
    char *url;                                   /* audio URL, or NULL */
    char *audio_path;                            /* stored upload's file name in <data>/jobs, or NULL */
    char *callback_url;
    char *result_json; /* the JSON body of POST /v1/listen, when completed */
    char *error_json;  /* error envelope when failed */
    ld_delivery_state delivery;
    char *attempts_json; /* JSON array of {"at","status"|"error"}; NULL = [] */
    int64_t next_attempt_ms, delivered_ms;
} ld_job;

void ld_job_clear(ld_job *job); /* frees the strings, zeroes the struct */
void ld_job_list_free(ld_job *jobs, size_t n);
const char *ld_job_state_name(ld_job_state s);               /* "queued", … */
int ld_job_state_parse(const char *name, ld_job_state *out); /* 0 on success */
/* The file of a stored upload: <jobs_dir>/<last component of audio_path>. Rows hold
 * the file name only, so a data dir given as another path (other cwd, absolute vs
 * relative, moved) still finds its audio; rows written by older versions hold the
 * path as --data was typed, and only its last component counts. Returns false
 * (out = "") when there is no upload or the path does not fit. */
bool ld_job_audio_path(const char *jobs_dir, const char *audio_path, char *out, size_t outsz);

typedef struct ld_job_store ld_job_store;

typedef struct {
    void (*close)(ld_job_store *s);
    /* Stores a new job (state, ids, times, strings as given). Durable on LD_OK. */
    ld_err (*insert)(ld_job_store *s, const ld_job *job, ld_error *err);
    /* LD_ERR_NOT_FOUND when absent. */
    ld_err (*get)(ld_job_store *s, const char *id, ld_job *out, ld_error *err);
    /* Oldest queued job -> processing (started_ms = now_ms, runs+1, progress 0).
     * *found = false when none is queued. */
    ld_err (*claim)(ld_job_store *s, int64_t now_ms, ld_job *out, bool *found, ld_error *err);
    /* Back to queued (e.g. the decoder queue was full). */
    ld_err (*requeue)(ld_job_store *s, const char *id, ld_error *err);
    ld_err (*set_progress)(ld_job_store *s, const char *id, double progress, ld_error *err);
    /* processing -> completed/failed/cancelled with result/error (may be NULL).
     * Arms delivery when the job has a callback and the state is not cancelled. */
    ld_err (*finish)(ld_job_store *s, const char *id, ld_job_state state, const char *result_json,
                     const char *error_json, int64_t now_ms, ld_error *err);
    /* queued -> cancelled at once; processing -> cancel_requested. *state gets
     * the state after the call. LD_ERR_NOT_FOUND when absent or of another key. */
    ld_err (*cancel)(ld_job_store *s, const char *id, const char *key_id, int64_t now_ms, ld_job_state *state,
                     ld_error *err);
    /* A key's jobs, newest first, only those in `state` unless it is -1 (Redis: among the key's
     * LD_JOB_STORE_SCAN newest). *out is malloc'd (ld_job_list_free). */
    ld_err (*list)(ld_job_store *s, const char *key_id, int state, int limit, ld_job **out, size_t *n,
                   ld_error *err);
    /* A key's queued and processing jobs, oldest first, at most `limit`. */
    ld_err (*pending_of_key)(ld_job_store *s, const char *key_id, int limit, ld_job **out, size_t *n,
                             ld_error *err);
    /* Pending deliveries due at now_ms, oldest first, at most `limit`. */
    ld_err (*due)(ld_job_store *s, int64_t now_ms, int limit, ld_job **out, size_t *n, ld_error *err);
    /* Earliest next_attempt_ms of a pending delivery, 0 when none. */
    int64_t (*next_due)(ld_job_store *s);
    /* Records a delivery attempt: the new attempts array and the new delivery state. */
    ld_err (*record_attempt)(ld_job_store *s, const char *id, const char *attempts_json, ld_delivery_state d,
                             int64_t next_attempt_ms, int64_t delivered_ms, ld_error *err);
    /* Deletes one batch of finished jobs with finished_ms < before_ms (SQLite: up to
     * 500 in one transaction, Redis: up to 1000), calls `gone` for each (to remove
     * its files) and returns how many were deleted; 0 when none is left (or on
     * error). The store is free for other calls between batches: call again
     * until it returns 0. */
    int (*purge)(ld_job_store *s, int64_t before_ms, void (*gone)(void *ud, const ld_job *job), void *ud);
    int (*count)(ld_job_store *s, ld_job_state state); /* -1 on error */
    /* Whether a job with this id exists (to sweep files orphaned by a crash). */
    bool (*exists)(ld_job_store *s, const char *id);
} ld_job_store_ops;

struct ld_job_store {
    const ld_job_store_ops *ops;
};

/* <path> is the database file, e.g. <data>/jobs.db. */
ld_job_store *ld_store_jobs_open_sqlite(const char *path, ld_error *err);

/* ---- Several replicas (store/jobs_redis.c; docs/scaling.md) ---- */

typedef struct ld_store ld_store;

/* Default visibility timeout of a claim: a job held by a replica that stopped
 * renewing (crashed, partitioned) is claimable again after this. */
#define LD_JOBS_REDIS_LEASE_MS 30000

/* Job store in the Redis of `store` (a Redis ld_store, borrowed: close the job
 * store first). Claims are leases of lease_ms (0 = default) renewed every
 * lease_ms/3 while held; an upload's audio is kept in Redis until the job
 * finishes and written to <data_dir>/jobs/<id>.audio by the claiming replica.
 * Unlike the SQLite store, opening does not requeue processing jobs (other
 * replicas may be running them); closing requeues the ones this process held. */
ld_job_store *ld_store_jobs_open_redis(ld_store *store, const char *data_dir, int64_t lease_ms, ld_error *err);

/* Redis job store when `store` is a Redis store (lease from env
 * LISTEND_JOB_LEASE_MS, else the default), else SQLite at <data_dir>/jobs.db. */
ld_job_store *ld_store_jobs_open_configured(const char *data_dir, ld_store *store, ld_error *err);

#endif
