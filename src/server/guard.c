/* Header deadline, minimum body rate and idle eviction (see guard.h). */
#include "server/guard.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "util/log.h"
#include "util/time.h"

typedef enum {
    PH_HEADERS, /* accepted or between requests: waiting for complete headers */
    PH_BODY,    /* headers in, body arriving */
    PH_ACTIVE,  /* request being handled / answered / upgraded: no deadline */
    PH_CUT,     /* shut down by us, waiting for libmicrohttpd to close it */
} phase;

typedef struct conn {
    struct conn *prev, *next;
    ld_guard *g;
    const void *worker; /* the pool thread's daemon: limits are per worker */
    int fd;
    phase ph;
    bool kept_alive; /* a request already completed on this connection */
    double since;    /* start of the phase (monotonic seconds) */
    uint64_t body;   /* body bytes in PH_BODY */
} conn;

struct ld_guard {
    ld_guard_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    conn *head, *tail;
    struct {
        const void *worker;
        int count;
    } workers[64]; /* libmicrohttpd splits the connection limit evenly between pool threads */
    int n_workers;
    bool stop;
    pthread_t thread;
    bool thread_ok;
    ld_guard_stats stats;
};

static void cut(ld_guard *g, conn *k, const char *why)
{
    /* Under g->mu: the CLOSED notification, which precedes close(fd), waits. */
    k->ph = PH_CUT;
    shutdown(k->fd, SHUT_RDWR);
    ld_log_fields(LD_LOG_DEBUG, json_pack("{s:s, s:i}", "component", "guard", "fd", k->fd), "closed connection: %s",
                  why);
    (void)g;
}

static double header_limit(const ld_guard *g, const conn *k)
{
    double t = g->cfg.header_timeout;
    if (k->kept_alive && g->cfg.idle_timeout > t)
        t = g->cfg.idle_timeout;
    return t;
}

static void sweep(ld_guard *g, double now)
{
    for (conn *k = g->head; k; k = k->next) {
        if (k->ph == PH_HEADERS && g->cfg.header_timeout > 0 && now - k->since > header_limit(g, k)) {
            g->stats.header_timeouts++;
            cut(g, k, "request headers not complete in time");
        } else if (k->ph == PH_BODY && g->cfg.min_body_rate > 0) {
            double grace = g->cfg.header_timeout > 0 ? g->cfg.header_timeout : 10;
            double t = now - k->since;
            if (t > grace && (double)k->body < (t - grace) * g->cfg.min_body_rate) {
                g->stats.slow_bodies++;
                cut(g, k, "request body slower than the minimum rate");
            }
        }
    }
}

static void *watchdog(void *arg)
{
    ld_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        struct timespec ts = ld_time_deadline(250); /* deadlines are seconds; a quarter is precise enough */
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        if (!g->stop)
            sweep(g, ld_time_mono());
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

ld_guard *ld_guard_new(const ld_guard_config *cfg)
{
    ld_guard *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->cfg = *cfg;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    if (pthread_create(&g->thread, NULL, watchdog, g)) {
        ld_guard_free(g);
        return NULL;
    }
    g->thread_ok = true;
    return g;
}

void ld_guard_free(ld_guard *g)
{
    if (!g)
        return;
    if (g->thread_ok) {
        pthread_mutex_lock(&g->mu);
        g->stop = true;
        pthread_cond_signal(&g->cv);
        pthread_mutex_unlock(&g->mu);
        pthread_join(g->thread, NULL);
    }
    for (conn *k = g->head, *n; k; k = n) {
        n = k->next;
        free(k);
    }
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

/* Near the limit, one new connection costs the longest-idle one its place:
 * kept-alive connections between requests first, then unfinished headers. */
static int *worker_count(ld_guard *g, const void *worker)
{
    for (int i = 0; i < g->n_workers; i++)
        if (g->workers[i].worker == worker)
            return &g->workers[i].count;
    if (g->n_workers == (int)(sizeof g->workers / sizeof *g->workers))
        return NULL;
    g->workers[g->n_workers].worker = worker;
    return &g->workers[g->n_workers++].count;
}

static void evict(ld_guard *g, conn *fresh, int count)
{
    int threads = g->cfg.threads > 0 ? g->cfg.threads : 1;
    int max = g->cfg.max_connections / threads;
    if (max <= 0)
        return;
    int reserve = max / 20 > 0 ? max / 20 : 1;
    if (reserve > 50)
        reserve = 50;
    if (count <= max - reserve)
        return;
    conn *victim = NULL;
    for (conn *k = g->head; k; k = k->next) {
        if (k == fresh || k->ph != PH_HEADERS || k->worker != fresh->worker)
            continue;
        if (!victim || (k->kept_alive && !victim->kept_alive) ||
            (k->kept_alive == victim->kept_alive && k->since < victim->since))
            victim = k;
    }
    if (victim) {
        g->stats.evicted_idle++;
        cut(g, victim, "idle connection evicted near the connection limit");
    }
}

void ld_guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                     enum MHD_ConnectionNotificationCode code)
{
    ld_guard *g = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *di = MHD_get_connection_info(c, MHD_CONNECTION_INFO_DAEMON);
        conn *k = ci && di ? calloc(1, sizeof *k) : NULL;
        if (!k)
            return; /* untracked: only MHD's own timeout applies */
        k->g = g;
        k->worker = di->daemon;
        k->fd = ci->connect_fd;
        k->ph = PH_HEADERS;
        k->since = ld_time_mono();
        pthread_mutex_lock(&g->mu);
        k->prev = g->tail;
        if (g->tail)
            g->tail->next = k;
        else
            g->head = k;
        g->tail = k;
        int *n = worker_count(g, k->worker);
        if (n)
            evict(g, k, ++*n);
        pthread_mutex_unlock(&g->mu);
        *socket_context = k;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        conn *k = *socket_context;
        if (!k)
            return;
        pthread_mutex_lock(&g->mu);
        if (k->prev)
            k->prev->next = k->next;
        else
            g->head = k->next;
        if (k->next)
            k->next->prev = k->prev;
        else
            g->tail = k->prev;
        int *n = worker_count(g, k->worker);
        if (n)
            --*n;
        pthread_mutex_unlock(&g->mu);
        *socket_context = NULL;
        free(k);
    }
}

static conn *lookup(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* The connection's own thread moves it between phases; the mutex orders
 * that against the watchdog's reads. A cut connection stays cut. */
static void enter(struct MHD_Connection *c, phase ph, bool request_done)
{
    conn *k = lookup(c);
    if (!k)
        return;
    pthread_mutex_lock(&k->g->mu);
    if (k->ph != PH_CUT) {
        k->ph = ph;
        k->since = ld_time_mono();
        k->body = 0;
        if (request_done)
            k->kept_alive = true;
    }
    pthread_mutex_unlock(&k->g->mu);
}

void ld_guard_headers_done(struct MHD_Connection *c) { enter(c, PH_BODY, false); }
void ld_guard_body_done(struct MHD_Connection *c) { enter(c, PH_ACTIVE, false); }

void ld_guard_request_done(struct MHD_Connection *c, bool closing)
{
    enter(c, closing ? PH_ACTIVE : PH_HEADERS, true);
}

void ld_guard_body(struct MHD_Connection *c, size_t n)
{
    conn *k = lookup(c);
    if (!k)
        return;
    pthread_mutex_lock(&k->g->mu);
    k->body += n;
    pthread_mutex_unlock(&k->g->mu);
}

void ld_guard_get_stats(ld_guard *g, ld_guard_stats *out)
{
    pthread_mutex_lock(&g->mu);
    *out = g->stats;
    pthread_mutex_unlock(&g->mu);
}
