/* The embedded backend's state, shared by its files; internal to src/store/.
 * One SQLite connection serialised by db_mu, in-memory windows and
 * leases, a cache of today's usage and a copy of the revocation table.
 * Lock order: usage_mu, then db_mu; revoked_lock is never held with db_mu
 * except while swapping in a freshly read table. */
#ifndef LD_STORE_EMBEDDED_INTERNAL_H
#define LD_STORE_EMBEDDED_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>

#include "store/mem.h"
#include "store/store.h"

typedef struct usage_entry usage_entry;

typedef struct {
    ld_store base; /* first: ld_store * <-> ld_store_embedded * */
    char *dir;
    ld_store_mem *mem;

    pthread_mutex_t db_mu;
    sqlite3 *db;
    sqlite3_stmt *usage_get, *usage_add;

    pthread_mutex_t usage_mu;
    usage_entry **usage;   /* hash buckets, LD_USAGE_BUCKETS */
    double usage_unsaved;  /* seconds counted in memory that SQLite refused (disk full...), under usage_mu */
    char usage_error[160]; /* the last refusal's SQLite message, under usage_mu */

    pthread_rwlock_t revoked_lock;
    char (*revoked)[32]; /* sorted key ids */
    size_t nrevoked;
    pthread_mutex_t refresh_mu;         /* one refresher at a time; others skip */
    _Atomic int64_t revoked_checked_ms; /* monotonic ms of the last data_version poll */
    int data_version;
} ld_store_embedded;

#define LD_USAGE_BUCKETS 1024
/* Writes usage the database refused earlier (embedded_close). */
void ld_store_emb_usage_flush(ld_store_embedded *e);
/* How often the request path polls PRAGMA data_version for revocations made
 * by another process (`listend keys revoke`): bounds their delay. */
#define LD_REVOCATION_POLL_MS 250

ld_err ld_store_emb_usage_add(ld_store *s, const char *key_id, const char *day, double seconds, double *total,
                              ld_error *err);
ld_err ld_store_emb_usage_get(ld_store *s, const char *key_id, const char *day, double *seconds, ld_error *err);
void ld_store_emb_usage_free(ld_store_embedded *e);

ld_err ld_store_emb_revocations_load(ld_store_embedded *e, ld_error *err);
ld_err ld_store_emb_revoke(ld_store *s, const char *key_id, int64_t now_s, ld_error *err);
ld_err ld_store_emb_is_revoked(ld_store *s, const char *key_id, bool *revoked, ld_error *err);
ld_err ld_store_emb_key_put(ld_store *s, const ld_store_key *k, ld_error *err);
ld_err ld_store_emb_key_get(ld_store *s, const char *key_id, ld_store_key *out, bool *found, ld_error *err);
ld_err ld_store_emb_key_list(ld_store *s, ld_store_key **out, size_t *n, ld_error *err);
ld_err ld_store_emb_mark_once(ld_store *s, const char *name, int64_t ttl_ms, int64_t now_ms, bool *first,
                              ld_error *err);

/* SQLite failure -> LD_ERR_INTERNAL with sqlite's message (logged, not sent to clients). */
ld_err ld_store_emb_dberr(ld_store_embedded *e, ld_error *err, const char *what);
/* The same for a failure whose code is rc, when the connection may have moved on
 * since (another statement ran, the mutex was released): SQLite's text for rc. */
ld_err ld_store_emb_dberr_rc(ld_store_embedded *e, ld_error *err, const char *what, int rc);

#endif
