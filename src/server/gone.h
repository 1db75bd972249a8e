/* Clients that hung up while their request waits (gone.c); internal to
 * src/server/. libmicrohttpd does not watch a suspended connection, so a
 * client that gives up on a long transcription would still have it fetched,
 * decoded and charged. A watcher thread polls the sockets of suspended
 * requests twice a second; when the peer has closed (or reset) the
 * connection it marks the request client_gone and cancels its work in the
 * decoder pool. The pipeline checks the mark before each costly step.
 * Thread-safety: start/stop from the main thread; the rest is internal. */
#ifndef LD_SERVER_GONE_H
#define LD_SERVER_GONE_H

typedef struct ld_srv ld_srv;

typedef struct ld_req ld_req;

int ld_gone_start(ld_srv *s); /* 0 on success */
void ld_gone_stop(void);
/* Marks r client_gone (once: later calls do nothing), logs `why` and cancels
 * its work in the decoder pool, so nothing more is decoded or charged. The
 * watcher's way, and the event stream's when its client leaves (http.c). */
void ld_gone_cancel(ld_req *r, const char *why);

#endif
