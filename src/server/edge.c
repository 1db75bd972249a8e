/* Edge refusals (edge.h). */
#include "server/edge.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/compat_deepgram.h"
#include "server/compat_openai.h"
#include "server/respond.h"
#include "server/srv.h"

void ld_edge_uri(ld_req *r, const char *uri)
{
    char *q = uri ? strchr(uri, '?') : NULL;
    if (!q)
        return;
    int n = 1;
    for (const char *p = q + 1; *p; p++)
        n += *p == '&' || *p == ';';
    if (n <= LD_EDGE_MAX_ARGS)
        return;
    r->too_many_args = n;
    /* libmicrohttpd passes its own mutable request-line buffer and parses the
     * query from it right after this callback: an empty query parses to nothing. */
    q[1] = '\0';
}

typedef struct {
    int count;
    bool bad;
    char first[32];
    bool differ;
} cl_scan;

static enum MHD_Result scan_cl(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    cl_scan *c = cls;
    if (!key || strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH))
        return MHD_YES;
    const char *v = value ? value : "";
    size_t len = strlen(v);
    if (!len || len >= sizeof c->first || strspn(v, "0123456789") != len)
        c->bad = true;
    if (c->count++ == 0)
        strncpy(c->first, v, sizeof c->first - 1);
    else if (strcmp(c->first, v))
        c->differ = true;
    return MHD_YES;
}

static enum MHD_Result refuse(ld_req *r, unsigned status, const char *msg)
{
    ld_error e;
    ld_error_set(&e, LD_ERR_INVALID_PARAMETER, "%s", msg);
    r->close_conn = true; /* the body (if any) is not read: the connection cannot be reused */
    /* before routing, but a compatibility path still answers in its client's envelope */
    r->deepgram = ld_dg_path(r->path);
    r->openai = ld_openai_path(r->path);
    json_t *body = r->deepgram ? ld_dg_error_json(&e, r->request_id, NULL)
                   : r->openai ? ld_openai_error_json(&e, r->request_id, NULL)
                               : ld_error_json(&e, r->request_id, NULL);
    return ld_respond_json(r->conn, status, body, r->request_id);
}

bool ld_edge_refuse(ld_req *r, enum MHD_Result *ret)
{
    if (r->too_many_args) {
        char msg[96];
        snprintf(msg, sizeof msg, "Too many query arguments: %d (limit %d)", r->too_many_args, LD_EDGE_MAX_ARGS);
        *ret = refuse(r, MHD_HTTP_URI_TOO_LONG, msg);
        return true;
    }
    cl_scan c = {0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, scan_cl, &c);
    /* Two lengths are a request-smuggling vector behind proxies that pick the
     * other one; even equal repeats are refused, as RFC 9112 allows. */
    if (c.count > 1) {
        *ret = refuse(r, MHD_HTTP_BAD_REQUEST,
                      c.differ ? "Conflicting Content-Length headers" : "Repeated Content-Length header");
        return true;
    }
    if (c.bad) {
        *ret = refuse(r, MHD_HTTP_BAD_REQUEST, "Malformed Content-Length header");
        return true;
    }
    /* Only chunked is a transfer coding the server reads (libmicrohttpd waited for the
     * close on any other, answering nothing); with a Content-Length too it is the
     * classic smuggling pair, refused as RFC 9112 §6.3 allows. */
    const char *te = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (te) {
        te += strspn(te, " \t");
        size_t n = strcspn(te, " \t");
        if (n != 7 || strncasecmp(te, "chunked", 7) || te[n + strspn(te + n, " \t")]) {
            *ret = refuse(r, MHD_HTTP_NOT_IMPLEMENTED, "Unsupported Transfer-Encoding (only chunked is)");
            return true;
        }
        if (c.count) {
            *ret = refuse(r, MHD_HTTP_BAD_REQUEST, "Content-Length together with Transfer-Encoding");
            return true;
        }
    }
    return false;
}

bool ld_edge_body_over_cap(ld_req *r)
{
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!cl)
        return false;
    unsigned long long n = strtoull(cl, NULL, 10);
    /* The same bound as the discarding reader (http.c): a known key's client
     * is read a bit further so it sees its 422 rather than a reset. */
    return n > r->srv->max_body + (r->authed ? LD_DRAIN_EXTRA : 0);
}
