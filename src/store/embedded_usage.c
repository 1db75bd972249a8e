/* Daily audio usage: SQLite is the record, memory answers the request path.
 * A key's row for today is read once (first use or day change), then every
 * addition is one UPSERT whose RETURNING value refreshes the cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/embedded_internal.h"
#include "util/log.h"
#include "util/metrics.h"

struct usage_entry {
    usage_entry *next;
    char key_id[LD_STORE_SUBJECT_MAX + 1];
    char day[11];
    double seconds;
    double unsaved; /* part of `seconds` the database refused; written with the next addition */
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

void ld_store_emb_usage_free(ld_store_embedded *e)
{
    if (!e->usage)
        return;
    for (int b = 0; b < LD_USAGE_BUCKETS; b++)
        for (usage_entry *u = e->usage[b], *nx; u; u = nx) {
            nx = u->next;
            free(u);
        }
    free(e->usage);
}

static bool args_ok(const char *key_id, const char *day)
{
    return key_id && *key_id && strlen(key_id) <= LD_STORE_SUBJECT_MAX && day && strlen(day) == 10;
}

/* With usage_mu held: the cache entry for key_id, current for `day`
 * (read from SQLite when missing or stale). */
static usage_entry *entry_for(ld_store_embedded *e, const char *key_id, const char *day, ld_error *err)
{
    usage_entry **bucket = &e->usage[hash(key_id) % LD_USAGE_BUCKETS], *u;
    for (u = *bucket; u; u = u->next)
        if (!strcmp(u->key_id, key_id))
            break;
    if (u && !strcmp(u->day, day))
        return u;
    double seconds = 0;
    pthread_mutex_lock(&e->db_mu);
    sqlite3_reset(e->usage_get);
    sqlite3_bind_text(e->usage_get, 1, key_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(e->usage_get, 2, day, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(e->usage_get);
    if (rc == SQLITE_ROW)
        seconds = sqlite3_column_double(e->usage_get, 0);
    else if (rc != SQLITE_DONE)
        ld_store_emb_dberr(e, err, "read usage");
    sqlite3_reset(e->usage_get);
    pthread_mutex_unlock(&e->db_mu);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return NULL;
    if (!u) {
        if (!(u = calloc(1, sizeof *u))) {
            ld_error_set(err, LD_ERR_INTERNAL, "store: out of memory");
            return NULL;
        }
        snprintf(u->key_id, sizeof u->key_id, "%s", key_id);
        u->next = *bucket;
        *bucket = u;
    }
    snprintf(u->day, sizeof u->day, "%s", day);
    u->seconds = seconds;
    return u;
}

ld_err ld_store_emb_usage_get(ld_store *s, const char *key_id, const char *day, double *seconds, ld_error *err)
{
    ld_store_embedded *e = (ld_store_embedded *)s;
    if (!args_ok(key_id, day))
        return ld_error_set(err, LD_ERR_INTERNAL, "store: bad usage arguments");
    pthread_mutex_lock(&e->usage_mu);
    usage_entry *u = entry_for(e, key_id, day, err);
    if (u)
        *seconds = u->seconds;
    pthread_mutex_unlock(&e->usage_mu);
    return u ? LD_OK : (err ? err->code : LD_ERR_INTERNAL);
}

/* With usage_mu and db_mu held: one UPSERT adding `seconds` to the row; its
 * RETURNING value and the final step's result (the commit: SQLITE_FULL shows
 * up here) both have to succeed. */
static ld_err write_row(ld_store_embedded *e, const char *key_id, const char *day, double seconds, double *total,
                        ld_error *err)
{
    sqlite3_reset(e->usage_add);
    sqlite3_bind_text(e->usage_add, 1, key_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(e->usage_add, 2, day, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(e->usage_add, 3, seconds);
    int rc = sqlite3_step(e->usage_add);
    if (rc == SQLITE_ROW) {
        *total = sqlite3_column_double(e->usage_add, 0);
        /* Drain the statement so the write commits now, not at reset. */
        while ((rc = sqlite3_step(e->usage_add)) == SQLITE_ROW)
            ;
    }
    ld_err out = LD_OK;
    if (rc != SQLITE_DONE) {
        const char *msg = sqlite3_errmsg(e->db);
        snprintf(e->usage_error, sizeof e->usage_error, "%s", msg);
        out = ld_error_set(err, LD_ERR_INTERNAL, "store: write usage: %s", msg);
    }
    sqlite3_reset(e->usage_add);
    return out;
}

ld_err ld_store_emb_usage_add(ld_store *s, const char *key_id, const char *day, double seconds, double *total,
                              ld_error *err)
{
    ld_store_embedded *e = (ld_store_embedded *)s;
    if (!args_ok(key_id, day) || !(seconds >= 0))
        return ld_error_set(err, LD_ERR_INTERNAL, "store: bad usage arguments");
    pthread_mutex_lock(&e->usage_mu);
    usage_entry *u = entry_for(e, key_id, day, err);
    ld_err rc = u ? LD_OK : (err ? err->code : LD_ERR_INTERNAL);
    if (u) {
        /* Earlier refused seconds go with this write, so usage is not lost
         * once the disk has room again. */
        double pending = u->unsaved, stored = 0;
        pthread_mutex_lock(&e->db_mu);
        rc = write_row(e, key_id, day, seconds + pending, &stored, err);
        pthread_mutex_unlock(&e->db_mu);
        if (rc == LD_OK) {
            u->seconds = stored;
            u->unsaved = 0;
            e->usage_unsaved -= pending;
            if (e->usage_unsaved < 1e-9)
                e->usage_unsaved = 0;
            if (pending > 0)
                ld_log(LD_LOG_WARNING,
                       "store: usage of %s written again after an earlier failure (%.3f s caught up)", key_id,
                       pending);
        } else {
            /* Memory still counts it: the quota holds while the disk is full. */
            u->seconds += seconds;
            u->unsaved += seconds;
            e->usage_unsaved += seconds;
            ld_metrics_usage_write_failed();
            ld_log(LD_LOG_ERROR,
                   "store: cannot write usage of %s (%.3f s kept in memory, %.3f s unsaved in all): %s", key_id,
                   seconds, e->usage_unsaved, e->usage_error);
        }
        if (total)
            *total = u->seconds;
    }
    pthread_mutex_unlock(&e->usage_mu);
    return rc;
}

void ld_store_emb_usage_flush(ld_store_embedded *e)
{
    pthread_mutex_lock(&e->usage_mu);
    for (int b = 0; b < LD_USAGE_BUCKETS; b++)
        for (usage_entry *u = e->usage[b]; u; u = u->next) {
            if (!(u->unsaved > 0))
                continue;
            double stored;
            pthread_mutex_lock(&e->db_mu);
            ld_err rc = write_row(e, u->key_id, u->day, u->unsaved, &stored, NULL);
            pthread_mutex_unlock(&e->db_mu);
            if (rc == LD_OK) {
                e->usage_unsaved -= u->unsaved;
                u->unsaved = 0;
            } else {
                ld_log(LD_LOG_ERROR, "store: usage of %s lost at shutdown (%.3f s): %s", u->key_id, u->unsaved,
                       e->usage_error);
            }
        }
    pthread_mutex_unlock(&e->usage_mu);
}

double ld_store_usage_unsaved(ld_store *s, char *why, size_t whysz)
{
    if (why && whysz)
        *why = 0;
    if (!s || strcmp(ld_store_backend(s), "embedded"))
        return 0;
    ld_store_embedded *e = (ld_store_embedded *)s;
    pthread_mutex_lock(&e->usage_mu);
    double n = e->usage_unsaved;
    if (why && whysz)
        snprintf(why, whysz, "%s", e->usage_error);
    pthread_mutex_unlock(&e->usage_mu);
    return n;
}
