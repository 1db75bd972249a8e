/* A response body that is written while it is being sent (server-sent events
 * for OpenAI's stream=true); internal to src/server/. The producer (a decoder
 * pool thread) pushes ready events; libmicrohttpd pulls them through
 * ld_sse_read, which suspends the connection while there is nothing to send
 * and is resumed by the next push or the end.
 *
 * Thread-safety: every function may be called from any thread.
 * Ownership: reference-counted. ld_sse_new gives the caller one reference (the
 * request's); ld_sse_attach takes one for the response, which libmicrohttpd
 * gives back through ld_sse_release. */
#ifndef LD_SERVER_SSE_H
#define LD_SERVER_SSE_H

#include <microhttpd.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct ld_sse ld_sse;

ld_sse *ld_sse_new(void);
void ld_sse_unref(ld_sse *s);
/* Appends a ready event (malloc'd, stolen; NULL is ignored). Dropped after the
 * end or once the client is gone. */
void ld_sse_push(ld_sse *s, char *event);
/* Nothing follows what was pushed: the body ends once it is sent. */
void ld_sse_end(ld_sse *s);

/* The response's side: the connection it is sent on (takes a reference for
 * the response), the content reader and its free callback. */
void ld_sse_attach(ld_sse *s, struct MHD_Connection *c);
ssize_t ld_sse_read(void *sse, uint64_t pos, char *buf, size_t max);
void ld_sse_release(void *sse);

/* Shutdown (drain timeout): every stream still being sent gets `event` (copied)
 * and ends, so no connection stays suspended when the daemon stops. */
void ld_sse_end_all(const char *event);

#endif
