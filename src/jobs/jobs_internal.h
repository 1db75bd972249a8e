/* State shared by the jobs module's files; internal to src/jobs/. */
#ifndef LD_JOBS_INTERNAL_H
#define LD_JOBS_INTERNAL_H

#include <pthread.h>

#include "jobs/jobs.h"
#include "store/jobs_store.h"

/* What one runner thread is doing, so DELETE can interrupt its wait. */
typedef struct {
    char job_id[40]; /* "" when idle */
    bool cancel;
} ld_jobs_slot;

/* One webhook delivery worker's job (deliver.c): the deliverer fills it, the
 * worker delivers and empties it. Under mu. */
typedef struct {
    bool busy;
    ld_job job;
} ld_jobs_dslot;

/* A delivery attempt the store could not record (disk full, Redis away), kept
 * by deliver.c until it can: without it the stored next_attempt_ms never moved
 * and the job was due again at once (thousands of POSTs a second, a delivered
 * webhook sent again and again). Under mu. */
typedef struct {
    char id[40];
    char *attempts_json;
    ld_delivery_state delivery;
    int64_t next_attempt_ms, delivered_ms;
} ld_jobs_unrecorded;

struct ld_jobs {
    ld_jobs_config cfg; /* defaults filled in; data_dir points at data_dir below */
    char data_dir[1024];
    char jobs_dir[1100]; /* <data>/jobs: uploaded and fetched audio */
    char tmp_dir[1100];  /* <data>/tmp: decode spill */
    char secret[65];     /* webhook secret (hex text) */
    ld_job_store *store;

    pthread_mutex_t mu;
    pthread_cond_t run_cv;     /* a job was queued, or stopping */
    pthread_cond_t deliver_cv; /* a delivery is due, or stopping */
    pthread_cond_t stop_cv;    /* stopping (broadcast): ends a runner's wait to retry the store */
    bool stopping;
    unsigned long queued_gen; /* bumped on submit, so a runner never sleeps past a new job */
    int slots_taken;          /* runners hand out their slot index with this */
    bool deliver_kick;        /* a job finished since the deliverer last looked */

    int n_runners;
    pthread_t *runners;
    ld_jobs_slot *slots; /* n_runners entries, under mu */
    pthread_t deliverer;
    bool deliverer_started;
    /* Delivery workers: a slow receiver holds one of them, never the others;
     * one key's deliveries hold at most half of them. */
    int n_dworkers, dworkers_started;
    pthread_t *dworkers;
    ld_jobs_dslot *dslots;          /* n_dworkers entries, under mu */
    pthread_cond_t dwork_cv;        /* a slot was filled, or stopping */
    ld_jobs_unrecorded *unrecorded; /* n_unrecorded entries, under mu */
    size_t n_unrecorded;
};

/* runner.c */
void *ld_jobs_runner_main(void *arg);
/* Finishes a job as cancelled (store, audio file). */
void ld_jobs_cancel_now(ld_jobs *j, const ld_job *job);
/* Marks the running job `id` for cancellation; its runner notices within 200 ms. */
void ld_jobs_interrupt(ld_jobs *j, const char *id);

/* deliver.c */
void *ld_jobs_deliverer_main(void *arg);
/* Starts cfg.webhook_workers delivery workers (0 / -1 on failure). */
int ld_jobs_dworkers_start(ld_jobs *j);
void ld_jobs_dworkers_join(ld_jobs *j);
void ld_jobs_wake_deliverer(ld_jobs *j);

/* view.c: the public JSON of a job (GET /v1/jobs/{id}); with_result adds result/error. */
json_t *ld_jobs_view(const ld_job *job, bool with_result);

/* opts.c: options and key claims <-> JSON text (malloc'd). */
char *ld_jobs_opts_dump(const ld_transcribe_opts *o);
/* The same with the route's webhook description (ld_jobs_submit's hook; NULL = none) as "webhook". */
char *ld_jobs_opts_dump_hook(const ld_transcribe_opts *o, const json_t *hook);
/* The "webhook" member of stored options text (new reference), or NULL. */
json_t *ld_jobs_opts_hook(const char *text);
void ld_jobs_opts_load(const char *text, ld_transcribe_opts *o);
char *ld_jobs_claims_dump(const ld_key_claims *k);
void ld_jobs_claims_load(const char *text, ld_key_claims *k);

#endif
