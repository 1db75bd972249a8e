/* Writing responses: the one JSON error envelope and JSON bodies. Every non-2xx
 * body in listend is produced by ld_respond_error; on a compatibility route
 * (the request's deepgram/openai flag) the envelope is that client's
 * (compat_deepgram.h, compat_openai.h). Thread-safe.
 * Ownership: `extra` and `body` are stolen (decref'd) in every case. */
#ifndef LD_SERVER_RESPOND_H
#define LD_SERVER_RESPOND_H

#include <jansson.h>
#include <microhttpd.h>

#include "util/err.h"

/* {"error": err->msg, "code": ld_err_code(err->code), "request_id": …, …extra}
 * (or the compatibility route's envelope)
 * with status ld_err_status(err->code); adds Retry-After when extra has
 * retry_after, and X-Request-ID. */
enum MHD_Result ld_respond_error(struct MHD_Connection *c, const ld_error *err, const char *request_id,
                                 json_t *extra);
/* JSON body with the given status and X-Request-ID (request_id may be NULL). */
enum MHD_Result ld_respond_json(struct MHD_Connection *c, unsigned status, json_t *body, const char *request_id);
/* A body produced while it is sent (server-sent events, sse.h): `read` is
 * libmicrohttpd's content reader over `cls`, `release` frees it (also when this
 * fails). Sent chunked, with Cache-Control: no-cache. */
enum MHD_Result ld_respond_stream(struct MHD_Connection *c, unsigned status, const char *ctype,
                                  MHD_ContentReaderCallback read, void *cls, MHD_ContentReaderFreeCallback release,
                                  const char *request_id);
/* A ready body of any content type (transcripts as text/SRT/VTT, /metrics);
 * `body` is a malloc'd buffer, stolen. */
enum MHD_Result ld_respond_body(struct MHD_Connection *c, unsigned status, char *body, size_t len,
                                const char *ctype, const char *request_id);
/* A body that outlives the response (static data, not copied), with extra
 * headers as NULL-terminated name/value pairs (may be NULL). */
enum MHD_Result ld_respond_static(struct MHD_Connection *c, unsigned status, const void *data, size_t len,
                                  const char *ctype, const char *request_id, const char *const *headers);

#endif
