/* Revocations and issued-key records of the embedded backend.
 *
 * The request path asks is_revoked for every authenticated request, so the
 * revocation table is held in memory as a sorted array. Revocations made by
 * another process (`listend keys revoke` next to a running server) are picked
 * up by polling SQLite's PRAGMA data_version, which changes on this connection
 * whenever another connection commits: at most every LD_REVOCATION_POLL_MS, by
 * whichever request thread gets there first (the others do not wait). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/embedded_internal.h"

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmp_id(const void *a, const void *b) { return strcmp(a, b); }

static int data_version(ld_store_embedded *e)
{
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(e->db, "PRAGMA data_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    return v;
}

/* Reads the whole revocation table and swaps it in. Caller holds refresh_mu or
 * is the only user (open). */
ld_err ld_store_emb_revocations_load(ld_store_embedded *e, ld_error *err)
{
    pthread_mutex_lock(&e->db_mu);
    sqlite3_stmt *st = NULL;
    size_t n = 0, cap = 16;
    char(*ids)[32] = malloc(sizeof *ids * cap);
    int rc = ids ? sqlite3_prepare_v2(e->db, "SELECT key_id FROM revocations", -1, &st, NULL) : SQLITE_NOMEM;
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        if (!id || strlen(id) >= 32) {
            rc = SQLITE_OK;
            continue;
        }
        if (n == cap) {
            char(*nids)[32] = realloc(ids, sizeof *ids * cap * 2);
            if (!nids) {
                rc = SQLITE_NOMEM;
                break;
            }
            ids = nids;
            cap *= 2;
        }
        snprintf(ids[n++], 32, "%s", id);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    e->data_version = data_version(e);
    pthread_mutex_unlock(&e->db_mu);
    if (rc != SQLITE_DONE) {
        free(ids);
        return ld_store_emb_dberr_rc(e, err, "read revocations", rc);
    }
    qsort(ids, n, sizeof *ids, cmp_id);
    pthread_rwlock_wrlock(&e->revoked_lock);
    free(e->revoked);
    e->revoked = ids;
    e->nrevoked = n;
    pthread_rwlock_unlock(&e->revoked_lock);
    atomic_store(&e->revoked_checked_ms, mono_ms());
    return LD_OK;
}

static void maybe_refresh(ld_store_embedded *e)
{
    int64_t now = mono_ms();
    if (now - atomic_load(&e->revoked_checked_ms) < LD_REVOCATION_POLL_MS)
        return;
    if (pthread_mutex_trylock(&e->refresh_mu))
        return; /* someone else is polling; their result is as fresh */
    atomic_store(&e->revoked_checked_ms, now);
    pthread_mutex_lock(&e->db_mu);
    int v = data_version(e);
    pthread_mutex_unlock(&e->db_mu);
    if (v != e->data_version)
        ld_store_emb_revocations_load(e, NULL); /* on failure keep the old table and retry next poll */
    pthread_mutex_unlock(&e->refresh_mu);
}

ld_err ld_store_emb_is_revoked(ld_store *s, const char *key_id, bool *revoked, ld_error *err)
{
    (void)err;
    ld_store_embedded *e = (ld_store_embedded *)s;
    maybe_refresh(e);
    pthread_rwlock_rdlock(&e->revoked_lock);
    *revoked = key_id && e->nrevoked && bsearch(key_id, e->revoked, e->nrevoked, sizeof *e->revoked, cmp_id);
    pthread_rwlock_unlock(&e->revoked_lock);
    return LD_OK;
}

ld_err ld_store_emb_revoke(ld_store *s, const char *key_id, int64_t now_s, ld_error *err)
{
    ld_store_embedded *e = (ld_store_embedded *)s;
    if (!key_id || !*key_id || strlen(key_id) >= 32)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "invalid key id");
    pthread_mutex_lock(&e->db_mu);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(e->db, "INSERT OR IGNORE INTO revocations(key_id, revoked_at) VALUES(?1, ?2)", -1,
                                &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, key_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, now_s);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&e->db_mu);
    if (rc != SQLITE_DONE)
        return ld_store_emb_dberr_rc(e, err, "revoke", rc);
    /* Our own commit does not change our data_version: reload now. */
    pthread_mutex_lock(&e->refresh_mu);
    ld_err r = ld_store_emb_revocations_load(e, err);
    pthread_mutex_unlock(&e->refresh_mu);
    return r;
}

ld_err ld_store_emb_key_put(ld_store *s, const ld_store_key *k, ld_error *err)
{
    ld_store_embedded *e = (ld_store_embedded *)s;
    pthread_mutex_lock(&e->db_mu);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(e->db,
                                "INSERT OR REPLACE INTO keys(key_id, name, issuer, issued_at, expires_at, rpm,"
                                " concurrency, hours_per_day) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, k->key_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, k->name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, k->issuer, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, k->issued_at);
        sqlite3_bind_int64(st, 5, k->expires_at);
        sqlite3_bind_int(st, 6, k->rpm);
        sqlite3_bind_int(st, 7, k->concurrency);
        sqlite3_bind_double(st, 8, k->hours_per_day);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&e->db_mu);
    return rc == SQLITE_DONE ? LD_OK : ld_store_emb_dberr_rc(e, err, "record key", rc);
}

#define KEY_COLUMNS                                                                                        \
    "SELECT k.key_id, k.name, k.issuer, k.issued_at, k.expires_at, k.rpm, k.concurrency, k.hours_per_day," \
    " coalesce(r.revoked_at, 0) FROM keys k LEFT JOIN revocations r ON r.key_id = k.key_id"

static void row_to_key(sqlite3_stmt *st, ld_store_key *k)
{
    memset(k, 0, sizeof *k);
    snprintf(k->key_id, sizeof k->key_id, "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(k->name, sizeof k->name, "%s", (const char *)sqlite3_column_text(st, 1));
    snprintf(k->issuer, sizeof k->issuer, "%s", (const char *)sqlite3_column_text(st, 2));
    k->issued_at = sqlite3_column_int64(st, 3);
    k->expires_at = sqlite3_column_int64(st, 4);
    k->rpm = sqlite3_column_int(st, 5);
    k->concurrency = sqlite3_column_int(st, 6);
    k->hours_per_day = sqlite3_column_double(st, 7);
    k->revoked_at = sqlite3_column_int64(st, 8);
}

ld_err ld_store_emb_key_get(ld_store *s, const char *key_id, ld_store_key *out, bool *found, ld_error *err)
{
    ld_store_embedded *e = (ld_store_embedded *)s;
    pthread_mutex_lock(&e->db_mu);
    sqlite3_stmt *st = NULL;
    *found = false;
    int rc = sqlite3_prepare_v2(e->db, KEY_COLUMNS " WHERE k.key_id = ?1", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, key_id, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            row_to_key(st, out);
            *found = true;
            rc = SQLITE_DONE;
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&e->db_mu);
    return rc == SQLITE_DONE ? LD_OK : ld_store_emb_dberr_rc(e, err, "read key", rc);
}

ld_err ld_store_emb_key_list(ld_store *s, ld_store_key **out, size_t *n, ld_error *err)
{
    ld_store_embedded *e = (ld_store_embedded *)s;
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    pthread_mutex_lock(&e->db_mu);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(e->db, KEY_COLUMNS " ORDER BY k.issued_at, k.rowid", -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            ld_store_key *nk = realloc(*out, sizeof *nk * ncap);
            if (!nk) {
                rc = SQLITE_NOMEM;
                break;
            }
            *out = nk;
            cap = ncap;
        }
        row_to_key(st, &(*out)[(*n)++]);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&e->db_mu);
    if (rc != SQLITE_DONE) {
        free(*out);
        *out = NULL;
        *n = 0;
        return ld_store_emb_dberr_rc(e, err, "list keys", rc);
    }
    return LD_OK;
}
