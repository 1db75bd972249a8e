/* Connection-level protection that libmicrohttpd 0.9.75 lacks: it only has an
 * inactivity timeout, so a client trickling one byte a second holds a
 * connection forever. The guard tracks every connection (NOTIFY_CONNECTION)
 * with its socket and the phase of its current request, and a watchdog thread
 * shutdown()s sockets that
 *   - have not completed request headers within header_timeout of accepting
 *     (or, on a kept-alive connection, within max(header_timeout,
 *     idle_timeout) of the previous response),
 *   - send a request body slower than min_body_rate bytes/s on average once
 *     header_timeout has passed since the headers (0 = no body rule).
 * Near the connection limit it also closes the longest-idle connection (idle
 * keep-alive first, then ones still sending headers) for each new one, so
 * thousands of idle clients cannot lock new ones out.
 *
 * A socket is only touched under the mutex that the CLOSED notification
 * takes before libmicrohttpd closes the descriptor, so a recycled fd is never
 * shut down. shutdown() (not close) lets libmicrohttpd see EOF and clean up
 * as usual.
 *
 * Thread-safety: every function may be called from any thread.
 * Ownership: ld_guard_new returns an owned object; free it only after the
 * daemon stopped (no more notifications). */
#ifndef LD_SERVER_GUARD_H
#define LD_SERVER_GUARD_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct ld_guard ld_guard;

typedef struct {
    int header_timeout;  /* seconds; 0 = no header deadline */
    int idle_timeout;    /* seconds (the connection timeout) */
    int min_body_rate;   /* bytes per second; 0 = off */
    int max_connections; /* daemon's limit; 0 = no eviction */
    int threads;         /* libmicrohttpd pool threads (the limit is split between them) */
} ld_guard_config;

ld_guard *ld_guard_new(const ld_guard_config *cfg);
void ld_guard_free(ld_guard *g);

/* MHD_OPTION_NOTIFY_CONNECTION callback; cls is the guard. */
void ld_guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                     enum MHD_ConnectionNotificationCode code);
/* From the access handler: headers complete (first call), body bytes
 * arrived, request body complete (final call; no deadline until the next
 * request), and the request finished (keep-alive wait begins unless `closing`). */
void ld_guard_headers_done(struct MHD_Connection *c);
void ld_guard_body(struct MHD_Connection *c, size_t n);
void ld_guard_body_done(struct MHD_Connection *c);
void ld_guard_request_done(struct MHD_Connection *c, bool closing);

/* Connections cut so far, by reason (for logs, metrics and tests). */
typedef struct {
    unsigned long header_timeouts, slow_bodies, evicted_idle;
} ld_guard_stats;
void ld_guard_get_stats(ld_guard *g, ld_guard_stats *out);

#endif
