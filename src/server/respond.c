/* Every answer of the API port is queued here (the WebSocket 101 excepted),
 * so each carries X-Request-ID, the request's headers and its recorded status. */
#include "server/respond.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/compat_deepgram.h"
#include "server/compat_openai.h"
#include "server/req.h"

/* Queues `resp` with the request's common headers. */
static enum MHD_Result queue_response(struct MHD_Connection *c, unsigned status, struct MHD_Response *resp,
                                      const char *ctype, const char *request_id, int retry_after)
{
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (request_id && *request_id)
        MHD_add_response_header(resp, "X-Request-ID", request_id);
    if (retry_after > 0) {
        char buf[24];
        snprintf(buf, sizeof buf, "%d", retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, buf);
    }
    ld_req *r = ld_req_current();
    if (r && r->deepgram && request_id && *request_id) /* where Deepgram's clients and logs look for it */
        MHD_add_response_header(resp, "dg-request-id", request_id);
    if (r)
        ld_req_decorate(r, resp, status);
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Queues `text` (malloc'd, stolen) with the request's common headers. */
static enum MHD_Result queue(struct MHD_Connection *c, unsigned status, char *text, size_t len, const char *ctype,
                             const char *request_id, int retry_after)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, text, free);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    ld_req *r = ld_req_current();
    if (r)
        ld_req_answered(r);
    return queue_response(c, status, resp, ctype, request_id, retry_after);
}

static char *dump(json_t *body, size_t *len)
{
    char *s = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    if (!s)
        s = strdup("{}");
    *len = s ? strlen(s) : 0;
    return s;
}

enum MHD_Result ld_respond_error(struct MHD_Connection *c, const ld_error *err, const char *request_id,
                                 json_t *extra)
{
    int retry_after = 0;
    json_t *ra = extra ? json_object_get(extra, "retry_after") : NULL;
    if (json_is_integer(ra))
        retry_after = (int)json_integer_value(ra);
    /* A compatibility route answers in its client's envelope (docs/compat.md). */
    ld_req *r = ld_req_current();
    json_t *o = r && r->deepgram ? ld_dg_error_json(err, request_id, extra)
                : r && r->openai ? ld_openai_error_json(err, request_id, extra)
                                 : ld_error_json(err, request_id, extra);
    size_t len;
    char *s = dump(o, &len);
    json_decref(o);
    if (!s)
        return MHD_NO;
    return queue(c, (unsigned)ld_err_status(err->code), s, len, "application/json", request_id, retry_after);
}

enum MHD_Result ld_respond_json(struct MHD_Connection *c, unsigned status, json_t *body, const char *request_id)
{
    size_t len;
    char *s = dump(body, &len);
    json_decref(body);
    if (!s)
        return MHD_NO;
    return queue(c, status, s, len, "application/json", request_id, 0);
}

enum MHD_Result ld_respond_body(struct MHD_Connection *c, unsigned status, char *body, size_t len,
                                const char *ctype, const char *request_id)
{
    return queue(c, status, body, len, ctype, request_id, 0);
}

enum MHD_Result ld_respond_stream(struct MHD_Connection *c, unsigned status, const char *ctype,
                                  MHD_ContentReaderCallback read, void *cls, MHD_ContentReaderFreeCallback release,
                                  const char *request_id)
{
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, read, cls, release);
    if (!resp) {
        release(cls);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no"); /* proxies: pass events on at once */
    return queue_response(c, status, resp, ctype, request_id, 0);
}

enum MHD_Result ld_respond_static(struct MHD_Connection *c, unsigned status, const void *data, size_t len,
                                  const char *ctype, const char *request_id, const char *const *headers)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
        MHD_add_response_header(resp, headers[i], headers[i + 1]);
    return queue_response(c, status, resp, ctype, request_id, 0);
}
