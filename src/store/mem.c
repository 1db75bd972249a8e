#include "store/mem.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/rand.h"

#define STRIPES 16
#define BUCKETS 1024         /* per stripe; chains stay short for ~10^5 subjects */
#define SWEEP_EVERY_MS 10000 /* idle subjects are dropped at most this often per stripe */

typedef struct {
    char id[32];
    int64_t expires_ms;
} lease;

typedef struct entry {
    struct entry *next;
    char subject[LD_STORE_SUBJECT_MAX + 1];
    /* Ring of the newest hits, oldest at head; ordered because stored times
     * never go backwards (see window()). */
    int64_t *ring;
    int cap, head, n;
    int64_t window_ms;
    lease *leases;
    int nleases, lcap;
} entry;

typedef struct {
    pthread_mutex_t mu;
    entry *buckets[BUCKETS];
    size_t count;
    int64_t last_sweep_ms;
} stripe;

struct ld_store_mem {
    stripe stripes[STRIPES];
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

ld_store_mem *ld_store_mem_new(void)
{
    ld_store_mem *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&m->stripes[i].mu, NULL);
    return m;
}

static void entry_free(entry *e)
{
    free(e->ring);
    free(e->leases);
    free(e);
}

void ld_store_mem_free(ld_store_mem *m)
{
    if (!m)
        return;
    for (int i = 0; i < STRIPES; i++) {
        for (int b = 0; b < BUCKETS; b++)
            for (entry *e = m->stripes[i].buckets[b], *nx; e; e = nx) {
                nx = e->next;
                entry_free(e);
            }
        pthread_mutex_destroy(&m->stripes[i].mu);
    }
    free(m);
}

static void window_expire(entry *e, int64_t now_ms)
{
    while (e->n > 0 && e->ring[e->head] <= now_ms - e->window_ms) {
        e->head = (e->head + 1) % e->cap;
        e->n--;
    }
}

static void leases_expire(entry *e, int64_t now_ms)
{
    int j = 0;
    for (int i = 0; i < e->nleases; i++)
        if (e->leases[i].expires_ms > now_ms)
            e->leases[j++] = e->leases[i];
    e->nleases = j;
}

static bool idle(entry *e, int64_t now_ms)
{
    if (e->ring)
        window_expire(e, now_ms);
    leases_expire(e, now_ms);
    return e->n == 0 && e->nleases == 0;
}

static void sweep(stripe *st, int64_t now_ms)
{
    st->last_sweep_ms = now_ms;
    for (int b = 0; b < BUCKETS; b++)
        for (entry **pp = &st->buckets[b]; *pp;) {
            entry *e = *pp;
            if (idle(e, now_ms)) {
                *pp = e->next;
                entry_free(e);
                st->count--;
            } else {
                pp = &e->next;
            }
        }
}

/* Locks the subject's stripe and returns its entry (created when `create`),
 * or NULL (stripe still locked). The caller unlocks *stp. now_ms == INT64_MIN
 * (callers without a clock) skips the sweep. */
static entry *lookup(ld_store_mem *m, const char *subject, bool create, int64_t now_ms, stripe **stp)
{
    uint64_t h = hash(subject);
    stripe *st = &m->stripes[h % STRIPES];
    *stp = st;
    pthread_mutex_lock(&st->mu);
    if (now_ms != INT64_MIN && now_ms - st->last_sweep_ms >= SWEEP_EVERY_MS)
        sweep(st, now_ms);
    entry **bucket = &st->buckets[(h / STRIPES) % BUCKETS];
    for (entry *e = *bucket; e; e = e->next)
        if (!strcmp(e->subject, subject))
            return e;
    if (!create)
        return NULL;
    entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    snprintf(e->subject, sizeof e->subject, "%s", subject);
    e->next = *bucket;
    *bucket = e;
    st->count++;
    return e;
}

/* Resizes the ring to `limit`, keeping the newest hits (limits of one subject
 * normally never change; this keeps a changed limit exact anyway). */
static int ring_fit(entry *e, int limit)
{
    if (e->cap == limit)
        return 0;
    int64_t *r = malloc(sizeof *r * (size_t)limit);
    if (!r)
        return -1;
    int keep = e->n < limit ? e->n : limit;
    for (int i = 0; i < keep; i++)
        r[i] = e->ring[(e->head + e->n - keep + i) % e->cap];
    free(e->ring);
    e->ring = r;
    e->cap = limit;
    e->head = 0;
    e->n = keep;
    return 0;
}

static bool subject_ok(const char *subject)
{
    return subject && *subject && strlen(subject) <= LD_STORE_SUBJECT_MAX;
}

ld_err ld_store_mem_window(ld_store_mem *m, const char *subject, int limit, int64_t window_ms, int64_t now_ms,
                           bool record, ld_window *out, ld_error *err)
{
    if (!subject_ok(subject) || limit < 1 || limit > LD_STORE_MEM_MAX_LIMIT || window_ms < 1)
        return ld_error_set(err, LD_ERR_INTERNAL, "store: bad window arguments");
    stripe *st;
    entry *e = lookup(m, subject, record, now_ms, &st);
    if (!e) {
        pthread_mutex_unlock(&st->mu);
        if (record)
            return ld_error_set(err, LD_ERR_INTERNAL, "store: out of memory");
        *out = (ld_window){.allowed = true, .count = 0, .oldest_ms = 0};
        return LD_OK;
    }
    if (ring_fit(e, limit)) {
        pthread_mutex_unlock(&st->mu);
        return ld_error_set(err, LD_ERR_INTERNAL, "store: out of memory");
    }
    e->window_ms = window_ms;
    window_expire(e, now_ms);
    bool allowed = e->n < limit;
    if (allowed && record) {
        /* Keep the ring ordered even if the wall clock steps back or callers
         * race with slightly different `now`: expiry then stays a head scan. */
        int64_t newest = e->n ? e->ring[(e->head + e->n - 1) % e->cap] : now_ms;
        e->ring[(e->head + e->n) % e->cap] = now_ms > newest ? now_ms : newest;
        e->n++;
    }
    out->allowed = allowed;
    out->count = e->n;
    out->oldest_ms = e->n ? e->ring[e->head] : 0;
    pthread_mutex_unlock(&st->mu);
    return LD_OK;
}

void ld_store_mem_window_undo(ld_store_mem *m, const char *subject)
{
    if (!subject_ok(subject))
        return;
    stripe *st;
    entry *e = lookup(m, subject, false, INT64_MIN, &st);
    if (e && e->n > 0)
        e->n--;
    pthread_mutex_unlock(&st->mu);
}

ld_err ld_store_mem_lease_acquire(ld_store_mem *m, const char *subject, int limit, int64_t ttl_ms, int64_t now_ms,
                                  char *lease_id, bool *acquired, int *held, ld_error *err)
{
    if (!subject_ok(subject) || limit < 1 || limit > LD_STORE_MEM_MAX_LIMIT || ttl_ms < 1)
        return ld_error_set(err, LD_ERR_INTERNAL, "store: bad lease arguments");
    stripe *st;
    entry *e = lookup(m, subject, true, now_ms, &st);
    if (!e) {
        pthread_mutex_unlock(&st->mu);
        return ld_error_set(err, LD_ERR_INTERNAL, "store: out of memory");
    }
    leases_expire(e, now_ms);
    *acquired = false;
    if (e->nleases < limit) {
        if (e->nleases == e->lcap) {
            int ncap = e->lcap ? e->lcap * 2 : 4;
            lease *nl = realloc(e->leases, sizeof *nl * (size_t)ncap);
            if (!nl) {
                pthread_mutex_unlock(&st->mu);
                return ld_error_set(err, LD_ERR_INTERNAL, "store: out of memory");
            }
            e->leases = nl;
            e->lcap = ncap;
        }
        lease *l = &e->leases[e->nleases++];
        ld_rand_id("lease_", l->id, sizeof l->id);
        l->expires_ms = now_ms + ttl_ms;
        snprintf(lease_id, 32, "%s", l->id);
        *acquired = true;
    }
    if (held)
        *held = e->nleases;
    pthread_mutex_unlock(&st->mu);
    return LD_OK;
}

static lease *find_lease(entry *e, const char *lease_id)
{
    for (int i = 0; e && i < e->nleases; i++)
        if (!strcmp(e->leases[i].id, lease_id))
            return &e->leases[i];
    return NULL;
}

ld_err ld_store_mem_lease_renew(ld_store_mem *m, const char *subject, const char *lease_id, int64_t ttl_ms,
                                int64_t now_ms, ld_error *err)
{
    if (!subject_ok(subject) || !lease_id)
        return ld_error_set(err, LD_ERR_NOT_FOUND, "lease not found");
    stripe *st;
    entry *e = lookup(m, subject, false, now_ms, &st);
    if (e)
        leases_expire(e, now_ms);
    lease *l = find_lease(e, lease_id);
    if (l)
        l->expires_ms = now_ms + ttl_ms;
    pthread_mutex_unlock(&st->mu);
    return l ? LD_OK : ld_error_set(err, LD_ERR_NOT_FOUND, "lease not found");
}

bool ld_store_mem_lease_release(ld_store_mem *m, const char *subject, const char *lease_id)
{
    if (!subject_ok(subject) || !lease_id)
        return false;
    stripe *st;
    entry *e = lookup(m, subject, false, INT64_MIN, &st);
    lease *l = find_lease(e, lease_id);
    if (l)
        *l = e->leases[--e->nleases];
    pthread_mutex_unlock(&st->mu);
    return l != NULL;
}

int ld_store_mem_lease_count(ld_store_mem *m, const char *subject, int64_t now_ms)
{
    if (!subject_ok(subject))
        return 0;
    stripe *st;
    entry *e = lookup(m, subject, false, now_ms, &st);
    int n = 0;
    if (e) {
        leases_expire(e, now_ms);
        n = e->nleases;
    }
    pthread_mutex_unlock(&st->mu);
    return n;
}

size_t ld_store_mem_size(ld_store_mem *m)
{
    size_t n = 0;
    for (int i = 0; i < STRIPES; i++) {
        pthread_mutex_lock(&m->stripes[i].mu);
        n += m->stripes[i].count;
        pthread_mutex_unlock(&m->stripes[i].mu);
    }
    return n;
}
