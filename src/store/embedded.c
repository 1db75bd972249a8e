/* Embedded backend: SQLite (<data_dir>/listend.db) for what must survive a
 * restart, memory for what is only meaningful while this process lives. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "store/embedded_internal.h"
#include "util/fs.h"
#include "util/log.h"

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS keys("
    " key_id TEXT PRIMARY KEY, name TEXT NOT NULL, issuer TEXT NOT NULL,"
    " issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
    " rpm INTEGER NOT NULL, concurrency INTEGER NOT NULL, hours_per_day REAL NOT NULL);"
    "CREATE TABLE IF NOT EXISTS revocations(key_id TEXT PRIMARY KEY, revoked_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS usage("
    " key_id TEXT NOT NULL, day TEXT NOT NULL, audio_seconds REAL NOT NULL,"
    " PRIMARY KEY(key_id, day));"
    "CREATE TABLE IF NOT EXISTS marks(name TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL);";

static ld_err report(ld_error *err, const char *what, const char *msg)
{
    ld_log(LD_LOG_ERROR, "store: %s: %s", what, msg);
    return ld_error_set(err, LD_ERR_INTERNAL, "store: %s: %s", what, msg);
}

ld_err ld_store_emb_dberr(ld_store_embedded *e, ld_error *err, const char *what)
{
    return report(err, what, e->db ? sqlite3_errmsg(e->db) : "cannot open");
}

ld_err ld_store_emb_dberr_rc(ld_store_embedded *e, ld_error *err, const char *what, int rc)
{
    /* The connection's message only while it still describes rc: once another
     * statement ran (PRAGMA data_version after a failed read) or the mutex was
     * let go, it says "not an error" or speaks of someone else's statement. */
    if (e->db && sqlite3_errcode(e->db) == rc)
        return ld_store_emb_dberr(e, err, what);
    return report(err, what, sqlite3_errstr(rc));
}

static ld_store_embedded *emb(ld_store *s) { return (ld_store_embedded *)s; }

static ld_err window_hit(ld_store *s, const char *subject, int limit, int64_t window_ms, int64_t now_ms,
                         ld_window *out, ld_error *err)
{
    return ld_store_mem_window(emb(s)->mem, subject, limit, window_ms, now_ms, true, out, err);
}

static ld_err window_peek(ld_store *s, const char *subject, int limit, int64_t window_ms, int64_t now_ms,
                          ld_window *out, ld_error *err)
{
    return ld_store_mem_window(emb(s)->mem, subject, limit, window_ms, now_ms, false, out, err);
}

static void window_undo(ld_store *s, const char *subject) { ld_store_mem_window_undo(emb(s)->mem, subject); }

static ld_err lease_acquire(ld_store *s, const char *subject, int limit, int64_t ttl_ms, int64_t now_ms,
                            char *lease_id, bool *acquired, int *held, ld_error *err)
{
    return ld_store_mem_lease_acquire(emb(s)->mem, subject, limit, ttl_ms, now_ms, lease_id, acquired, held, err);
}

static ld_err lease_renew(ld_store *s, const char *subject, const char *lease_id, int64_t ttl_ms, int64_t now_ms,
                          ld_error *err)
{
    return ld_store_mem_lease_renew(emb(s)->mem, subject, lease_id, ttl_ms, now_ms, err);
}

static void lease_release(ld_store *s, const char *subject, const char *lease_id)
{
    ld_store_mem_lease_release(emb(s)->mem, subject, lease_id);
}

static int lease_count(ld_store *s, const char *subject, int64_t now_ms)
{
    return ld_store_mem_lease_count(emb(s)->mem, subject, now_ms);
}

static void embedded_close(ld_store *s)
{
    ld_store_embedded *e = emb(s);
    if (e->usage)
        ld_store_emb_usage_flush(e);
    sqlite3_finalize(e->usage_get);
    sqlite3_finalize(e->usage_add);
    if (e->db)
        sqlite3_close(e->db);
    ld_store_mem_free(e->mem);
    ld_store_emb_usage_free(e);
    free(e->revoked);
    pthread_mutex_destroy(&e->db_mu);
    pthread_mutex_destroy(&e->usage_mu);
    pthread_mutex_destroy(&e->refresh_mu);
    pthread_rwlock_destroy(&e->revoked_lock);
    free(e->dir);
    free(e);
}

static const ld_store_ops embedded_ops = {
    .name = "embedded",
    .close = embedded_close,
    .window_hit = window_hit,
    .window_peek = window_peek,
    .window_undo = window_undo,
    .lease_acquire = lease_acquire,
    .lease_renew = lease_renew,
    .lease_release = lease_release,
    .lease_count = lease_count,
    .usage_add = ld_store_emb_usage_add,
    .usage_get = ld_store_emb_usage_get,
    .revoke = ld_store_emb_revoke,
    .is_revoked = ld_store_emb_is_revoked,
    .key_put = ld_store_emb_key_put,
    .key_get = ld_store_emb_key_get,
    .key_list = ld_store_emb_key_list,
    .mark_once = ld_store_emb_mark_once,
};

const char *ld_store_data_dir(ld_store *s) { return s && s->ops == &embedded_ops ? emb(s)->dir : NULL; }

static ld_err open_db(ld_store_embedded *e, ld_error *err)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/listend.db", e->dir) >= (int)sizeof path)
        return ld_error_set(err, LD_ERR_INTERNAL, "store: data dir path too long");
    /* Created 0600: usage and key records are the operator's business only
     * (SQLite gives the -wal/-shm files the same mode). */
    mode_t old = umask(077);
    int rc = sqlite3_open_v2(path, &e->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    umask(old);
    if (rc != SQLITE_OK)
        return ld_store_emb_dberr(e, err, "open listend.db");
    sqlite3_busy_timeout(e->db, 5000);
    /* WAL: the server's reads never wait for a CLI writer; NORMAL sync is
     * durable across process crashes, which is what usage needs. */
    if (sqlite3_exec(e->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(e->db, schema, NULL, NULL, NULL) != SQLITE_OK)
        return ld_store_emb_dberr(e, err, "init schema");
    if (sqlite3_prepare_v2(e->db, "SELECT audio_seconds FROM usage WHERE key_id=?1 AND day=?2", -1, &e->usage_get,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(e->db,
                           "INSERT INTO usage(key_id, day, audio_seconds) VALUES(?1, ?2, ?3)"
                           " ON CONFLICT(key_id, day) DO UPDATE SET audio_seconds = audio_seconds + ?3"
                           " RETURNING audio_seconds",
                           -1, &e->usage_add, NULL) != SQLITE_OK)
        return ld_store_emb_dberr(e, err, "prepare");
    return LD_OK;
}

ld_store *ld_store_open_embedded(const char *data_dir, ld_error *err)
{
    if (sodium_init() < 0) { /* lease ids come from libsodium's CSPRNG */
        ld_error_set(err, LD_ERR_INTERNAL, "store: libsodium failed to initialise");
        return NULL;
    }
    if (!data_dir || !*data_dir || ld_fs_mkdirs(data_dir, 0700)) {
        ld_error_set(err, LD_ERR_INTERNAL, "store: cannot create data dir %s", data_dir ? data_dir : "(null)");
        return NULL;
    }
    ld_store_embedded *e = calloc(1, sizeof *e);
    if (!e || !(e->dir = strdup(data_dir)) || !(e->mem = ld_store_mem_new()) ||
        !(e->usage = calloc(LD_USAGE_BUCKETS, sizeof *e->usage))) {
        if (e) {
            ld_store_mem_free(e->mem);
            free(e->dir);
            free(e);
        }
        ld_error_set(err, LD_ERR_INTERNAL, "store: out of memory");
        return NULL;
    }
    e->base.ops = &embedded_ops;
    pthread_mutex_init(&e->db_mu, NULL);
    pthread_mutex_init(&e->usage_mu, NULL);
    pthread_mutex_init(&e->refresh_mu, NULL);
    pthread_rwlock_init(&e->revoked_lock, NULL);
    if (open_db(e, err) || ld_store_emb_revocations_load(e, err)) {
        embedded_close(&e->base);
        return NULL;
    }
    return &e->base;
}
