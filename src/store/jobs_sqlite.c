/* SQLite job store: <data>/jobs.db in WAL mode with synchronous=FULL, so a job
 * is on disk before its 202 is sent. One connection behind a mutex: job traffic
 * is a few statements per job, far below what serialising costs. */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/jobs_store.h"
#include "util/log.h"

typedef struct {
    ld_job_store base;
    sqlite3 *db;
    pthread_mutex_t mu;
} sq_store;

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS jobs ("
    " id TEXT PRIMARY KEY, key_id TEXT NOT NULL, request_id TEXT NOT NULL, state TEXT NOT NULL,"
    " progress REAL NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0,"
    " runs INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL, started_ms INTEGER NOT NULL DEFAULT 0,"
    " finished_ms INTEGER NOT NULL DEFAULT 0, key_json TEXT, opts_json TEXT, url TEXT, audio_path TEXT,"
    " callback_url TEXT, result_json TEXT, error_json TEXT, delivery INTEGER NOT NULL DEFAULT 0,"
    " attempts_json TEXT, next_attempt_ms INTEGER NOT NULL DEFAULT 0, delivered_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS jobs_by_key ON jobs(key_id, created_ms);"
    "CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state, created_ms);"
    "CREATE INDEX IF NOT EXISTS jobs_by_delivery ON jobs(delivery, next_attempt_ms);"
    "CREATE INDEX IF NOT EXISTS jobs_by_key_started ON jobs(key_id, started_ms);"
    "PRAGMA user_version = 1;";

#define COLS                                                                                     \
    "id, key_id, request_id, state, progress, cancel_requested, runs, created_ms, started_ms,"   \
    " finished_ms, key_json, opts_json, url, audio_path, callback_url, result_json, error_json," \
    " delivery, attempts_json, next_attempt_ms, delivered_ms"

/* Finished jobs deleted per purge call (one transaction). */
#define PURGE_BATCH 500

static sq_store *S(ld_job_store *s) { return (sq_store *)s; }

static ld_err db_error(sq_store *s, ld_error *err, const char *what)
{
    ld_log(LD_LOG_ERROR, "jobs store: %s: %s", what, sqlite3_errmsg(s->db));
    return ld_error_set(err, LD_ERR_INTERNAL, "Job store error");
}

static char *col_str(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? strdup((const char *)t) : NULL;
}

static void copy_col(sqlite3_stmt *st, int i, char *dst, size_t n)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(dst, n, "%s", t ? (const char *)t : "");
}

static void read_row(sqlite3_stmt *st, ld_job *j)
{
    memset(j, 0, sizeof *j);
    copy_col(st, 0, j->id, sizeof j->id);
    copy_col(st, 1, j->key_id, sizeof j->key_id);
    copy_col(st, 2, j->request_id, sizeof j->request_id);
    const unsigned char *state = sqlite3_column_text(st, 3);
    if (ld_job_state_parse((const char *)state, &j->state))
        j->state = LD_JOB_FAILED;
    j->progress = sqlite3_column_double(st, 4);
    j->cancel_requested = sqlite3_column_int(st, 5) != 0;
    j->runs = sqlite3_column_int(st, 6);
    j->created_ms = sqlite3_column_int64(st, 7);
    j->started_ms = sqlite3_column_int64(st, 8);
    j->finished_ms = sqlite3_column_int64(st, 9);
    j->key_json = col_str(st, 10);
    j->opts_json = col_str(st, 11);
    j->url = col_str(st, 12);
    j->audio_path = col_str(st, 13);
    j->callback_url = col_str(st, 14);
    j->result_json = col_str(st, 15);
    j->error_json = col_str(st, 16);
    j->delivery = (ld_delivery_state)sqlite3_column_int(st, 17);
    j->attempts_json = col_str(st, 18);
    j->next_attempt_ms = sqlite3_column_int64(st, 19);
    j->delivered_ms = sqlite3_column_int64(st, 20);
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

/* Runs a prepared statement that returns no rows; returns rows changed or -1. */
static int run(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    int changes = rc == SQLITE_DONE ? sqlite3_changes(sqlite3_db_handle(st)) : -1;
    sqlite3_finalize(st);
    return changes;
}

static void sq_close(ld_job_store *base)
{
    sq_store *s = S(base);
    if (!s)
        return;
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static ld_err sq_insert(ld_job_store *base, const ld_job *j, ld_error *err)
{
    sq_store *s = S(base);
    sqlite3_stmt *st;
    pthread_mutex_lock(&s->mu);
    ld_err rc = LD_OK;
    if (sqlite3_prepare_v2(s->db, "INSERT INTO jobs (" COLS ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_error(s, err, "insert");
        goto out;
    }
    bind_text(st, 1, j->id);
    bind_text(st, 2, j->key_id);
    bind_text(st, 3, j->request_id);
    bind_text(st, 4, ld_job_state_name(j->state));
    sqlite3_bind_double(st, 5, j->progress);
    sqlite3_bind_int(st, 6, j->cancel_requested);
    sqlite3_bind_int(st, 7, j->runs);
    sqlite3_bind_int64(st, 8, j->created_ms);
    sqlite3_bind_int64(st, 9, j->started_ms);
    sqlite3_bind_int64(st, 10, j->finished_ms);
    bind_text(st, 11, j->key_json);
    bind_text(st, 12, j->opts_json);
    bind_text(st, 13, j->url);
    bind_text(st, 14, j->audio_path);
    bind_text(st, 15, j->callback_url);
    bind_text(st, 16, j->result_json);
    bind_text(st, 17, j->error_json);
    sqlite3_bind_int(st, 18, (int)j->delivery);
    bind_text(st, 19, j->attempts_json);
    sqlite3_bind_int64(st, 20, j->next_attempt_ms);
    sqlite3_bind_int64(st, 21, j->delivered_ms);
    if (run(st) != 1)
        rc = db_error(s, err, "insert");
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Caller holds the mutex. Reads at most `limit` rows of `sql` (bound with the
 * text/int64 arguments given) into a malloc'd array. */
static ld_err query_rows(sq_store *s, const char *sql, const char *text1, int64_t int1, int limit, ld_job **out,
                         size_t *n, ld_error *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_error(s, err, "query");
    int idx = 1;
    if (text1)
        bind_text(st, idx++, text1);
    if (int1 >= 0)
        sqlite3_bind_int64(st, idx++, int1);
    sqlite3_bind_int(st, idx, limit);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            ld_job *grown = realloc(*out, cap * sizeof **out);
            if (!grown)
                break;
            *out = grown;
        }
        read_row(st, &(*out)[(*n)++]);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        ld_job_list_free(*out, *n);
        *out = NULL;
        *n = 0;
        return ld_error_set(err, LD_ERR_INTERNAL, "Job store error");
    }
    return LD_OK;
}

static ld_err sq_get(ld_job_store *base, const char *id, ld_job *out, ld_error *err)
{
    sq_store *s = S(base);
    ld_job *rows;
    size_t n;
    pthread_mutex_lock(&s->mu);
    ld_err rc = query_rows(s, "SELECT " COLS " FROM jobs WHERE id = ? LIMIT ?", id, -1, 1, &rows, &n, err);
    pthread_mutex_unlock(&s->mu);
    if (rc)
        return rc;
    if (!n) {
        free(rows);
        return ld_error_set(err, LD_ERR_NOT_FOUND, "Job not found");
    }
    *out = rows[0];
    free(rows);
    return LD_OK;
}

static ld_err sq_claim(ld_job_store *base, int64_t now_ms, ld_job *out, bool *found, ld_error *err)
{
    sq_store *s = S(base);
    ld_job *rows = NULL;
    size_t n = 0;
    *found = false;
    pthread_mutex_lock(&s->mu);
    /* Keys take turns: the queued job of the key whose last job started
     * longest ago (never: first), oldest first within a key. So a key with
     * hundreds queued delays another key's job by one job per runner, not by
     * all of its own (docs/jobs.md, fairness). */
    ld_err rc = query_rows(s,
                           "SELECT " COLS
                           " FROM jobs q WHERE state = 'queued' ORDER BY"
                           " (SELECT COALESCE(MAX(p.started_ms), 0) FROM jobs p WHERE p.key_id = q.key_id),"
                           " created_ms, rowid LIMIT ?",
                           NULL, -1, 1, &rows, &n, err);
    if (!rc && n) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(s->db,
                               "UPDATE jobs SET state = 'processing', started_ms = ?, runs = runs + 1, progress = 0"
                               " WHERE id = ? AND state = 'queued'",
                               -1, &st, NULL) != SQLITE_OK) {
            rc = db_error(s, err, "claim");
        } else {
            sqlite3_bind_int64(st, 1, now_ms);
            bind_text(st, 2, rows[0].id);
            if (run(st) != 1) {
                rc = db_error(s, err, "claim");
            } else {
                *out = rows[0];
                memset(&rows[0], 0, sizeof rows[0]);
                out->state = LD_JOB_PROCESSING;
                out->started_ms = now_ms;
                out->runs++;
                out->progress = 0;
                *found = true;
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    ld_job_list_free(rows, n);
    return rc;
}

/* Runs one UPDATE with up to three text and three numeric bindings in order:
 * the format "tdi" says text, double, int64 per position. */
static int update(sq_store *s, const char *sql, const char *fmt, ...)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    for (int i = 0; fmt[i]; i++) {
        if (fmt[i] == 't')
            bind_text(st, i + 1, va_arg(ap, const char *));
        else if (fmt[i] == 'd')
            sqlite3_bind_double(st, i + 1, va_arg(ap, double));
        else
            sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
    }
    va_end(ap);
    return run(st);
}

static ld_err sq_requeue(ld_job_store *base, const char *id, ld_error *err)
{
    sq_store *s = S(base);
    pthread_mutex_lock(&s->mu);
    int n = update(s, "UPDATE jobs SET state = 'queued', progress = 0 WHERE id = ? AND state = 'processing'", "t",
                   id);
    ld_err rc = n < 0 ? db_error(s, err, "requeue") : LD_OK;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static ld_err sq_set_progress(ld_job_store *base, const char *id, double progress, ld_error *err)
{
    sq_store *s = S(base);
    pthread_mutex_lock(&s->mu);
    int n = update(s, "UPDATE jobs SET progress = ? WHERE id = ? AND state = 'processing'", "dt", progress, id);
    ld_err rc = n < 0 ? db_error(s, err, "progress") : LD_OK;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static ld_err sq_finish(ld_job_store *base, const char *id, ld_job_state state, const char *result_json,
                        const char *error_json, int64_t now_ms, ld_error *err)
{
    sq_store *s = S(base);
    pthread_mutex_lock(&s->mu);
    /* A job without a callback (none today) or a cancelled one has nothing to deliver. */
    int n = update(s,
                   "UPDATE jobs SET state = ?, result_json = ?, error_json = ?, finished_ms = ?,"
                   " progress = CASE WHEN ? = 'completed' THEN 1 ELSE progress END,"
                   " delivery = CASE WHEN callback_url IS NULL OR ? = 'cancelled' THEN 0 ELSE 1 END,"
                   " next_attempt_ms = ?"
                   " WHERE id = ? AND state IN ('queued', 'processing')",
                   "tttittit", ld_job_state_name(state), result_json, error_json, now_ms, ld_job_state_name(state),
                   ld_job_state_name(state), now_ms, id);
    ld_err rc = n < 0    ? db_error(s, err, "finish")
                : n == 0 ? ld_error_set(err, LD_ERR_NOT_FOUND, "Job not found or already finished")
                         : LD_OK;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static ld_err sq_cancel(ld_job_store *base, const char *id, const char *key_id, int64_t now_ms, ld_job_state *state,
                        ld_error *err)
{
    sq_store *s = S(base);
    ld_job *rows;
    size_t n;
    pthread_mutex_lock(&s->mu);
    ld_err rc = query_rows(s, "SELECT " COLS " FROM jobs WHERE id = ? LIMIT ?", id, -1, 1, &rows, &n, err);
    if (!rc && (!n || strcmp(rows[0].key_id, key_id)))
        rc = ld_error_set(err, LD_ERR_NOT_FOUND, "Job not found");
    if (!rc) {
        *state = rows[0].state;
        int changed = 0;
        if (rows[0].state == LD_JOB_QUEUED) {
            changed = update(s,
                             "UPDATE jobs SET state = 'cancelled', finished_ms = ?, cancel_requested = 1"
                             " WHERE id = ? AND state = 'queued'",
                             "it", now_ms, id);
            if (changed > 0)
                *state = LD_JOB_CANCELLED;
        } else if (rows[0].state == LD_JOB_PROCESSING) {
            changed = update(s, "UPDATE jobs SET cancel_requested = 1 WHERE id = ?", "t", id);
        }
        if (changed < 0)
            rc = db_error(s, err, "cancel");
    }
    pthread_mutex_unlock(&s->mu);
    ld_job_list_free(rows, n);
    return rc;
}

static ld_err sq_list(ld_job_store *base, const char *key_id, int state, int limit, ld_job **out, size_t *n,
                      ld_error *err)
{
    sq_store *s = S(base);
    char sql[512]; /* the state's name is one of ld_job_state_name's constants, not the client's text */
    snprintf(sql, sizeof sql,
             "SELECT " COLS " FROM jobs WHERE key_id = ?%s%s%s ORDER BY created_ms DESC, rowid DESC LIMIT ?",
             state >= 0 ? " AND state = '" : "", state >= 0 ? ld_job_state_name((ld_job_state)state) : "",
             state >= 0 ? "'" : "");
    pthread_mutex_lock(&s->mu);
    ld_err rc = query_rows(s, sql, key_id, -1, limit, out, n, err);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static ld_err sq_pending_of_key(ld_job_store *base, const char *key_id, int limit, ld_job **out, size_t *n,
                                ld_error *err)
{
    sq_store *s = S(base);
    pthread_mutex_lock(&s->mu);
    ld_err rc = query_rows(s,
                           "SELECT " COLS
                           " FROM jobs WHERE key_id = ? AND state IN ('queued', 'processing')"
                           " ORDER BY created_ms, rowid LIMIT ?",
                           key_id, -1, limit, out, n, err);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static ld_err sq_due(ld_job_store *base, int64_t now_ms, int limit, ld_job **out, size_t *n, ld_error *err)
{
    sq_store *s = S(base);
    pthread_mutex_lock(&s->mu);
    ld_err rc = query_rows(s,
                           "SELECT " COLS
                           " FROM jobs WHERE delivery = 1 AND next_attempt_ms <= ?"
                           " ORDER BY next_attempt_ms, rowid LIMIT ?",
                           NULL, now_ms, limit, out, n, err);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int64_t sq_next_due(ld_job_store *base)
{
    sq_store *s = S(base);
    int64_t v = 0;
    sqlite3_stmt *st;
    pthread_mutex_lock(&s->mu);
    if (sqlite3_prepare_v2(s->db, "SELECT MIN(next_attempt_ms) FROM jobs WHERE delivery = 1", -1, &st, NULL) ==
        SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->mu);
    return v;
}

static ld_err sq_record_attempt(ld_job_store *base, const char *id, const char *attempts_json, ld_delivery_state d,
                                int64_t next_attempt_ms, int64_t delivered_ms, ld_error *err)
{
    sq_store *s = S(base);
    pthread_mutex_lock(&s->mu);
    int n = update(s,
                   "UPDATE jobs SET attempts_json = ?, delivery = ?, next_attempt_ms = ?, delivered_ms = ?"
                   " WHERE id = ?",
                   "tiiit", attempts_json, (int64_t)d, next_attempt_ms, delivered_ms, id);
    ld_err rc = n < 0 ? db_error(s, err, "record attempt") : LD_OK;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Caller holds the mutex. Deletes the rows in one transaction (one fsync for
 * the batch, not one per row); marks in gone[] those deleted. */
static int delete_batch(sq_store *s, const ld_job *rows, size_t n, bool *gone)
{
    sqlite3_stmt *st = NULL;
    int deleted = 0;
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return 0;
    if (sqlite3_prepare_v2(s->db, "DELETE FROM jobs WHERE id = ?", -1, &st, NULL) == SQLITE_OK) {
        for (size_t i = 0; i < n; i++) {
            bind_text(st, 1, rows[i].id);
            gone[i] = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(s->db) == 1;
            deleted += gone[i];
            sqlite3_reset(st);
        }
        sqlite3_finalize(st);
    }
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        ld_log(LD_LOG_ERROR, "jobs store: purge: %s", sqlite3_errmsg(s->db));
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        memset(gone, 0, n * sizeof *gone);
        return 0;
    }
    return deleted;
}

/* One batch per call: the mutex is held for one transaction of PURGE_BATCH
 * rows, so other store calls wait milliseconds; the deliverer calls again
 * until nothing expired is left. Deleting 10,000 rows one commit each under
 * the mutex held the whole store (submits, GET /v1/jobs, /metrics) for tens of
 * seconds. */
static int sq_purge(ld_job_store *base, int64_t before_ms, void (*gone)(void *ud, const ld_job *job), void *ud)
{
    sq_store *s = S(base);
    ld_job *rows = NULL;
    size_t n = 0;
    bool deleted_row[PURGE_BATCH] = {0};
    int deleted = 0;
    pthread_mutex_lock(&s->mu);
    if (query_rows(s,
                   "SELECT " COLS " FROM jobs WHERE state IN ('completed', 'failed', 'cancelled')"
                   " AND finished_ms < ? LIMIT ?",
                   NULL, before_ms, PURGE_BATCH, &rows, &n, NULL) == LD_OK &&
        n)
        deleted = delete_batch(s, rows, n, deleted_row);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; gone && i < n; i++) /* files go after the lock: unlinks need not hold the store */
        if (deleted_row[i])
            gone(ud, &rows[i]);
    ld_job_list_free(rows, n);
    return deleted;
}

static int sq_count(ld_job_store *base, ld_job_state state)
{
    sq_store *s = S(base);
    int v = -1;
    sqlite3_stmt *st;
    pthread_mutex_lock(&s->mu);
    if (sqlite3_prepare_v2(s->db, "SELECT COUNT(*) FROM jobs WHERE state = ?", -1, &st, NULL) == SQLITE_OK) {
        bind_text(st, 1, ld_job_state_name(state));
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->mu);
    return v;
}

static bool sq_exists(ld_job_store *base, const char *id)
{
    sq_store *s = S(base);
    bool found = true; /* on error, keep files rather than delete accepted audio */
    sqlite3_stmt *st;
    pthread_mutex_lock(&s->mu);
    if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM jobs WHERE id = ?", -1, &st, NULL) == SQLITE_OK) {
        bind_text(st, 1, id);
        int rc = sqlite3_step(st);
        found = rc != SQLITE_DONE;
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->mu);
    return found;
}

static const ld_job_store_ops sqlite_ops = {
    .close = sq_close,
    .insert = sq_insert,
    .get = sq_get,
    .claim = sq_claim,
    .requeue = sq_requeue,
    .set_progress = sq_set_progress,
    .finish = sq_finish,
    .cancel = sq_cancel,
    .list = sq_list,
    .pending_of_key = sq_pending_of_key,
    .due = sq_due,
    .next_due = sq_next_due,
    .record_attempt = sq_record_attempt,
    .purge = sq_purge,
    .count = sq_count,
    .exists = sq_exists,
};

ld_job_store *ld_store_jobs_open_sqlite(const char *path, ld_error *err)
{
    sq_store *s = calloc(1, sizeof *s);
    if (!s) {
        ld_error_set(err, LD_ERR_INTERNAL, "Out of memory");
        return NULL;
    }
    s->base.ops = &sqlite_ops;
    pthread_mutex_init(&s->mu, NULL);
    /* 0600 as listend.db: it holds transcripts, callback URLs and their headers
     * (SQLite gives -wal/-shm the database's mode); a file an older version made
     * 0644 is narrowed, and so are its -wal/-shm */
    mode_t old = umask(077);
    int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                             NULL);
    umask(old);
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; rc == SQLITE_OK && i < sizeof suffixes / sizeof *suffixes; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s%s", path, suffixes[i]);
        if (chmod(p, 0600) && errno != ENOENT)
            ld_log(LD_LOG_WARNING, "jobs store: cannot make %s private: %s", p, strerror(errno));
    }
    if (rc != SQLITE_OK) {
        ld_log(LD_LOG_ERROR, "jobs store: cannot open %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "?");
        ld_error_set(err, LD_ERR_INTERNAL, "Cannot open job store");
        sq_close(&s->base);
        return NULL;
    }
    sqlite3_busy_timeout(s->db, 5000);
    char *msg = NULL;
    /* FULL: the WAL is fsynced at every commit, so an acknowledged job survives
     * power loss, not only a process crash. A claim never survives a restart:
     * whatever was processing when the process died runs again. */
    if (sqlite3_exec(s->db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;", NULL, NULL, &msg) !=
            SQLITE_OK ||
        sqlite3_exec(s->db, schema, NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(s->db, "UPDATE jobs SET state = 'queued', progress = 0 WHERE state = 'processing';", NULL,
                     NULL, &msg) != SQLITE_OK) {
        ld_log(LD_LOG_ERROR, "jobs store: cannot initialise %s: %s", path, msg ? msg : "?");
        sqlite3_free(msg);
        ld_error_set(err, LD_ERR_INTERNAL, "Cannot initialise job store");
        sq_close(&s->base);
        return NULL;
    }
    return &s->base;
}
