/* Once-only marks in the embedded store: a row per name in listend.db with
 * its expiry, so "warned today" survives a restart. One upsert decides who is
 * first; expired rows are purged on the way (there are a few per key per day). */
#include <string.h>

#include "store/embedded_internal.h"

ld_err ld_store_emb_mark_once(ld_store *s, const char *name, int64_t ttl_ms, int64_t now_ms, bool *first,
                              ld_error *err)
{
    ld_store_embedded *e = (ld_store_embedded *)s;
    *first = false;
    if (!name || !*name || strlen(name) > LD_STORE_SUBJECT_MAX || ttl_ms <= 0)
        return ld_error_set(err, LD_ERR_INTERNAL, "store: bad mark arguments");
    ld_err rc = LD_OK;
    sqlite3_stmt *purge = NULL, *put = NULL;
    pthread_mutex_lock(&e->db_mu);
    /* The row is taken over when it expired: a later day or cooldown period. */
    if (sqlite3_prepare_v2(e->db, "DELETE FROM marks WHERE expires_ms <= ?1", -1, &purge, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(e->db,
                           "INSERT INTO marks(name, expires_ms) VALUES(?1, ?2)"
                           " ON CONFLICT(name) DO UPDATE SET expires_ms = excluded.expires_ms"
                           " WHERE marks.expires_ms <= ?3",
                           -1, &put, NULL) != SQLITE_OK) {
        rc = ld_store_emb_dberr(e, err, "prepare mark");
        goto out;
    }
    sqlite3_bind_int64(purge, 1, now_ms);
    if (sqlite3_step(purge) != SQLITE_DONE) {
        rc = ld_store_emb_dberr(e, err, "purge marks");
        goto out;
    }
    sqlite3_bind_text(put, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(put, 2, now_ms + ttl_ms);
    sqlite3_bind_int64(put, 3, now_ms);
    if (sqlite3_step(put) != SQLITE_DONE) {
        rc = ld_store_emb_dberr(e, err, "write mark");
        goto out;
    }
    *first = sqlite3_changes(e->db) == 1;
out:
    sqlite3_finalize(purge);
    sqlite3_finalize(put);
    pthread_mutex_unlock(&e->db_mu);
    return rc;
}
