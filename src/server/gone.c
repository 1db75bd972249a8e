/* The hung-up client watcher (gone.h). */
/* POLLRDHUP needs _GNU_SOURCE, which the build defines. */
#include "server/gone.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "server/srv.h"
#include "util/log.h"

#define PERIOD_MS 500
#define BATCH 64 /* requests handled per lock of s->mu */

static pthread_t thread;
static atomic_bool stop, started;

/* Has the peer of this suspended connection closed or reset it? A client
 * that only half-closes after sending its body looks the same: HTTP clients
 * that wait for the answer keep their side open. */
static bool hung_up(ld_req *r)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci || ci->connect_fd == MHD_INVALID_SOCKET)
        return false;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static void *watch(void *arg)
{
    ld_srv *s = arg;
    while (!atomic_load(&stop)) {
        struct timespec ts = {0, PERIOD_MS * 1000000L};
        nanosleep(&ts, NULL);
        ld_req *gone[BATCH];
        int n = 0;
        pthread_mutex_lock(&s->mu);
        for (ld_req *r = s->live; r && n < BATCH; r = r->live_next) {
            if (atomic_load(&r->client_gone) || r->is_ws)
                continue;
            pthread_mutex_lock(&r->mu);
            bool check = r->suspended && !r->finished && !r->conn_gone;
            pthread_mutex_unlock(&r->mu);
            if (check && hung_up(r)) {
                ld_req_ref(r);
                gone[n++] = r;
            }
        }
        pthread_mutex_unlock(&s->mu);
        /* Outside s->mu: cancelling may finish the request right here. */
        for (int i = 0; i < n; i++) {
            ld_gone_cancel(gone[i], "Client went away: cancelling its transcription (nothing is charged)");
            ld_req_unref(gone[i]);
        }
    }
    return NULL;
}

void ld_gone_cancel(ld_req *r, const char *why)
{
    if (atomic_exchange(&r->client_gone, true))
        return;
    ld_log_fields(LD_LOG_INFO, json_pack("{s:s,s:s}", "request_id", r->request_id, "client", r->client), "%s", why);
    ld_pool_cancel(r->srv->pool, r);
}

int ld_gone_start(ld_srv *s)
{
    atomic_store(&stop, false);
    if (pthread_create(&thread, NULL, watch, s))
        return -1;
    atomic_store(&started, true);
    return 0;
}

void ld_gone_stop(void)
{
    if (!atomic_exchange(&started, false))
        return;
    atomic_store(&stop, true);
    pthread_join(thread, NULL);
}
