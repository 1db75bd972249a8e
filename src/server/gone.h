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

int ld_gone_start(ld_srv *s); /* 0 on success */
void ld_gone_stop(void);

#endif
