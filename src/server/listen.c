/* POST /v1/listen intake on libmicrohttpd threads: options from the query,
 * the body by content type (JSON, multipart/urlencoded form, raw audio), the
 * size cap while the body streams in, then validation and the hand-off to the
 * work pool with the connection suspended. Nothing slow happens here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/listen.h"

#include "audio/audio.h"
#include "server/compat_deepgram.h"
#include "server/compat_openai.h"
#include "server/edge.h"
#include "server/pipeline.h"
#include "server/respond.h"
#include "server/srv.h"
#include "util/log.h"

#define FORM_FIELD_MAX 4096
#define FORM_REPEAT_MAX 1000 /* values of one repeatable field (ld_opts_repeatable) */
/* Distinct field names of one form, as many as a query may carry: each costs a
 * JSON entry, so 6 million tiny fields (`0=&1=&…`, 48 MB) held 1.1 GB. */
#define FORM_FIELDS_MAX LD_EDGE_MAX_ARGS

static json_t *too_large_extra(ld_srv *s) { return json_pack("{s:i}", "max_size_mb", s->cfg.max_body_mb); }

static json_t *formats_extra(void)
{
    json_t *a = json_array();
    for (size_t i = 0; i < ld_audio_supported_formats_count; i++)
        json_array_append_new(a, json_string(ld_audio_supported_formats[i]));
    return json_pack("{s:o}", "supported_formats", a);
}

/* One option by the name the route's clients use (docs/compat.md). */
static ld_err set_opt(ld_req *r, const char *key, const char *value, ld_error *e)
{
    if (r->deepgram)
        return ld_dg_opt_set(&r->dg, &r->opts, key, value, e);
    if (r->openai)
        return ld_openai_opt_set(&r->opts, key, value, e);
    return ld_opts_set(&r->opts, key, value, e);
}

static enum MHD_Result query_it(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    ld_req *r = cls;
    ld_error e;
    if (!r->pending && set_opt(r, key, value, &e) != LD_OK)
        ld_req_fail(r, e.code, NULL, "%s", e.msg);
    return MHD_YES;
}

/* The media type without parameters, lowercased, into out. */
static void media_type(const char *ct, char *out, size_t outsz)
{
    size_t n = ct ? strcspn(ct, ";") : 0;
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    if (n >= outsz)
        n = outsz - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)((ct[i] >= 'A' && ct[i] <= 'Z') ? ct[i] + 32 : ct[i]);
    out[n] = '\0';
}

static enum MHD_Result post_it(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                               const char *content_type, const char *transfer_encoding, const char *data,
                               uint64_t off, size_t size)
{
    (void)kind, (void)filename, (void)content_type, (void)transfer_encoding;
    ld_req *r = cls;
    if (r->body != LD_BODY_FORM)
        return MHD_YES;
    if (!strcmp(key, "audio") || !strcmp(key, "file")) {
        if (filename && !*filename && off == 0 && size == 0)
            return MHD_YES; /* an HTML form's file input left empty: no file (its url field may say where) */
        if (off == 0 && r->form_audio) {
            ld_req_fail(r, LD_ERR_INVALID_PARAMETER, NULL, "Send one audio file per request");
            return MHD_NO;
        }
        r->form_audio = true;
        if (!r->spool)
            r->spool = ld_spool_new(r->srv->tmp_dir, LD_SPOOL_MEM_LIMIT);
        if (!r->spool || ld_spool_write(r->spool, data, size)) {
            ld_log_fields(LD_LOG_ERROR, json_pack("{s:s}", "request_id", r->request_id),
                          "Could not store upload in %s", r->srv->tmp_dir);
            ld_req_fail(r, LD_ERR_INTERNAL, NULL, "Could not store the upload");
            return MHD_NO;
        }
        return MHD_YES;
    }
    if (!r->form)
        r->form = json_object();
    /* a repeatable option given twice (-F keywords=a -F keywords=b) becomes a
     * list, as in a JSON body; any other repeated field: the last one counts */
    json_t *cur = json_object_get(r->form, key);
    if (json_is_null(cur)) /* a field of no option, too long or not text: dropped (below) */
        return MHD_YES;
    if (!cur && json_object_size(r->form) >= FORM_FIELDS_MAX) {
        ld_req_fail(r, LD_ERR_INVALID_PARAMETER, NULL, "Too many form fields: more than %d", FORM_FIELDS_MAX);
        return MHD_NO;
    }
    json_t *last = json_is_array(cur) ? json_array_get(cur, json_array_size(cur) - 1) : cur;
    /* (libmicrohttpd may announce a field with an empty first call: not a new value) */
    if (off == 0 && last && *json_string_value(last) && ld_opts_repeatable(key)) {
        if (!json_is_array(cur)) {
            json_t *list = json_array();
            json_array_append(list, cur);
            json_object_set_new(r->form, key, list);
            cur = list;
        }
        if (json_array_size(cur) >= FORM_REPEAT_MAX) {
            ld_req_fail(r, LD_ERR_INVALID_PARAMETER, NULL, "Form field '%.64s' repeats too often", key);
            return MHD_NO;
        }
        json_array_append_new(cur, json_string(""));
    }
    json_t *slot = json_is_array(cur) ? json_array_get(cur, json_array_size(cur) - 1) : cur;
    const char *old = json_string_value(slot);
    size_t olen = old && off ? json_string_length(slot) : 0;
    bool known = ld_opts_known(key);
    if (olen + size > FORM_FIELD_MAX) {
        if (!known) { /* unknown names are ignored, however long (e.g. a file under another name) */
            json_object_set_new(r->form, key, json_null());
            return MHD_YES;
        }
        ld_req_fail(r, LD_ERR_INVALID_PARAMETER, NULL, "Form field '%.64s' is too long", key);
        return MHD_NO;
    }
    char *v = malloc(olen + size + 1);
    if (!v)
        return MHD_NO;
    memcpy(v, old ? old : "", olen);
    memcpy(v + olen, data, size);
    v[olen + size] = '\0';
    /* the bytes as sent: a chunk may end inside a character; UTF-8 is checked once the field is whole */
    json_t *text = json_stringn_nocheck(v, olen + size);
    free(v);
    if (json_is_array(cur))
        json_array_set_new(cur, json_array_size(cur) - 1, text);
    else
        json_object_set_new(r->form, key, text);
    return MHD_YES;
}

static void drop_body(ld_req *r)
{
    r->body = LD_BODY_DISCARD;
    ld_spool_free(r->spool);
    r->spool = NULL;
    free(r->json);
    r->json = NULL;
    r->json_len = r->json_cap = 0;
}

/* The body is the audio itself, spooled as it arrives. False (body drained,
 * error pending) when there is no memory for the spool. */
static bool start_raw(ld_req *r)
{
    r->body = LD_BODY_RAW;
    if ((r->spool = ld_spool_new(r->srv->tmp_dir, LD_SPOOL_MEM_LIMIT)))
        return true;
    ld_req_fail(r, LD_ERR_INTERNAL, NULL, "Out of memory");
    drop_body(r);
    return false;
}

enum MHD_Result ld_listen_first(ld_req *r)
{
    ld_srv *s = r->srv;
    struct MHD_Connection *c = r->conn;
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, query_it, r);
    ld_error qe;
    if (r->deepgram && !r->pending && ld_dg_opts_check(&r->dg, &r->opts, &qe))
        ld_req_fail(r, qe.code, NULL, "%s", qe.msg);

    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t declared = cl ? strtoull(cl, NULL, 10) : 0;
    if (declared > s->max_body) {
        /* Refused before reading a byte. Answer at once when the client waits
         * for 100-continue (it reads our answer) or the body is absurd;
         * otherwise the client is already sending, and closing on it would
         * reset the connection before it reads the 422: drop the body first. */
        if (ld_req_expects_continue(r) || declared > s->max_body + LD_DRAIN_EXTRA) {
            ld_error e;
            ld_error_set(&e, LD_ERR_FILE_TOO_LARGE, NULL);
            return ld_respond_error(c, &e, r->request_id, too_large_extra(s));
        }
        r->too_large = true;
        ld_req_fail(r, LD_ERR_FILE_TOO_LARGE, too_large_extra(s), "%s",
                    ld_err_default_message(LD_ERR_FILE_TOO_LARGE));
        return MHD_YES;
    }
    if (r->pending)
        return MHD_YES;

    char mt[128];
    media_type(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE), mt, sizeof mt);
    size_t mlen = strlen(mt);
    if (!ld_req_has_body(r)) {
        r->body = LD_BODY_NONE; /* e.g. ?url=… alone */
    } else if (!strcmp(mt, "application/json") || (mlen > 5 && !strcmp(mt + mlen - 5, "+json"))) {
        r->body = LD_BODY_JSON;
    } else if (!strcmp(mt, "multipart/form-data") || !strcmp(mt, "application/x-www-form-urlencoded")) {
        r->pp = MHD_create_post_processor(c, 64 * 1024, post_it, r);
        if (!r->pp) {
            ld_req_fail(r, LD_ERR_INVALID_PARAMETER, NULL, "Malformed %s body (missing boundary?)", mt);
            return MHD_YES;
        }
        r->body = LD_BODY_FORM;
        r->urlencoded = !strcmp(mt, "application/x-www-form-urlencoded");
    } else if (!mt[0] || !strncmp(mt, "audio/", 6) || !strncmp(mt, "video/", 6) ||
               !strcmp(mt, "application/octet-stream") || !strcmp(mt, "application/ogg")) {
        start_raw(r);
    } else {
        ld_req_fail(
            r, LD_ERR_UNSUPPORTED_FORMAT, formats_extra(),
            "Unsupported Content-Type '%.64s': send audio/* or application/octet-stream, multipart/form-data "
            "with an `audio` file, or application/json with a `url`",
            mt);
    }
    return MHD_YES;
}

enum MHD_Result ld_listen_first_lightning(ld_req *r)
{
    r->lightning = true;
    return ld_listen_first(r);
}

enum MHD_Result ld_listen_first_openai(ld_req *r)
{
    r->openai = true;
    return ld_listen_first(r);
}

enum MHD_Result ld_listen_first_deepgram(ld_req *r)
{
    r->deepgram = true;
    ld_dg_opts_init(&r->dg, &r->opts);
    return ld_listen_first(r);
}

/* An audio container's first bytes. Each signature has a byte no urlencoded
 * form has (forms are printable ASCII), so a form is never mistaken for audio. */
static bool looks_like_audio(const unsigned char *b, size_t n)
{
    if (n < 12)
        return false;
    return (!memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WAVE", 4)) ||
           (!memcmp(b, "RF64", 4) && !memcmp(b + 8, "WAVE", 4)) || (!memcmp(b, "ID3", 3) && b[3] < 0x10) ||
           (b[0] == 0xFF && (b[1] & 0xE0) == 0xE0) || (!memcmp(b, "fLaC", 4) && !(b[4] & 0x7F) && !b[5]) ||
           (!memcmp(b, "OggS", 4) && !b[4]) || !memcmp(b, "\x1A\x45\xDF\xA3", 4) ||
           (!b[0] && !memcmp(b + 4, "ftyp", 4)) ||
           (!memcmp(b, "FORM", 4) && !b[4] && (!memcmp(b + 8, "AIFF", 4) || !memcmp(b + 8, "AIFC", 4)));
}

/* `curl --data-binary @call.mp3` sends its default Content-Type,
 * application/x-www-form-urlencoded: audio there is read as a raw body. */
static bool urlencoded_audio(const ld_req *r, const char *data, size_t size)
{
    return r->urlencoded && r->body_bytes == size && looks_like_audio((const unsigned char *)data, size);
}

enum MHD_Result ld_listen_body(ld_req *r, const char *data, size_t size)
{
    ld_srv *s = r->srv;
    if (r->body_bytes > s->max_body) {
        r->too_large = true;
        ld_req_fail(r, LD_ERR_FILE_TOO_LARGE, too_large_extra(s), "%s",
                    ld_err_default_message(LD_ERR_FILE_TOO_LARGE));
        drop_body(r);
        return MHD_YES;
    }
    switch (r->body) {
    case LD_BODY_JSON:
        if (r->json_len + size > LD_JSON_BODY_MAX) {
            ld_req_fail(r, LD_ERR_INVALID_PARAMETER, NULL,
                        "JSON body larger than %d KB; upload audio as "
                        "multipart/form-data or a raw body",
                        LD_JSON_BODY_MAX / 1024);
            drop_body(r);
            return MHD_YES;
        }
        if (r->json_len + size + 1 > r->json_cap) {
            size_t cap = r->json_cap ? r->json_cap * 2 : 4096;
            while (cap < r->json_len + size + 1)
                cap *= 2;
            char *j = realloc(r->json, cap);
            if (!j)
                return MHD_NO;
            r->json = j;
            r->json_cap = cap;
        }
        memcpy(r->json + r->json_len, data, size);
        r->json_len += size;
        return MHD_YES;
    case LD_BODY_FORM:
        if (urlencoded_audio(r, data, size)) {
            MHD_destroy_post_processor(r->pp);
            r->pp = NULL;
            return start_raw(r) ? ld_listen_body(r, data, size) : MHD_YES;
        }
        if (MHD_post_process(r->pp, data, size) != MHD_YES) {
            ld_req_fail(r, LD_ERR_INVALID_PARAMETER, NULL, "Malformed form body%s",
                        r->urlencoded
                            ? " (sent as application/x-www-form-urlencoded, curl's default for --data-binary): "
                              "send audio with Content-Type: audio/* or application/octet-stream"
                            : "");
            drop_body(r);
        }
        return MHD_YES;
    case LD_BODY_RAW:
        if (ld_spool_write(r->spool, data, size)) {
            ld_log_fields(LD_LOG_ERROR, json_pack("{s:s}", "request_id", r->request_id),
                          "Could not store upload in %s", s->tmp_dir);
            ld_req_fail(r, LD_ERR_INTERNAL, NULL, "Could not store the upload");
            drop_body(r);
        }
        return MHD_YES;
    default: return MHD_YES;
    }
}

static bool has_scheme(const char *url, const char *const *schemes)
{
    for (; *schemes; schemes++)
        if (!strncasecmp(url, *schemes, strlen(*schemes)))
            return true;
    return false;
}

/* Applies body options over the query ones and checks the inputs. */
static void check(ld_req *r)
{
    ld_error e;
    if (r->body == LD_BODY_JSON) {
        json_error_t je;
        json_t *o = r->json_len ? json_loadb(r->json, r->json_len, 0, &je) : json_object();
        if (!o) {
            ld_req_fail(r, LD_ERR_INVALID_PARAMETER, NULL, "Invalid JSON body: %s (line %d)", je.text, je.line);
            return;
        }
        if (!json_is_object(o)) {
            json_decref(o);
            ld_req_fail(r, LD_ERR_INVALID_PARAMETER, NULL, "Invalid JSON body: expected an object");
            return;
        }
        ld_err code = ld_opts_set_json(&r->opts, o, &e);
        json_decref(o);
        if (code) {
            ld_req_fail(r, code, NULL, "%s", e.msg);
            return;
        }
    }
    if (r->form) {
        const char *k;
        json_t *v;
        json_object_foreach(r->form, k, v)
        {
            size_t i = 0, n = json_is_array(v) ? json_array_size(v) : json_is_string(v); /* repeated: each */
            for (; i < n; i++) {
                json_t *one = json_is_array(v) ? json_array_get(v, i) : v;
                json_t *checked = json_stringn(json_string_value(one),
                                               json_string_length(one)); /* NULL: not UTF-8 */
                json_decref(checked);
                bool text = checked && strlen(json_string_value(one)) == json_string_length(one);
                if (!text && !ld_opts_known(k))
                    continue; /* not text: no option of any route, as a file under another name */
                if (!text) {
                    ld_req_fail(r, LD_ERR_INVALID_PARAMETER, NULL, "Form field '%.64s' is not UTF-8 text", k);
                    return;
                }
                if (set_opt(r, k, json_string_value(one), &e)) {
                    ld_req_fail(r, e.code, NULL, "%s", e.msg);
                    return;
                }
            }
        }
    }
    bool audio = r->form_audio || (r->body == LD_BODY_RAW && r->spool && ld_spool_size(r->spool) > 0);
    bool url = r->opts.url[0] != '\0';
    if (audio && url) {
        ld_req_fail(r, LD_ERR_INVALID_PARAMETER, NULL, "Send either a url or an audio file, not both");
        return;
    }
    if (!audio && !url) {
        ld_req_fail(r, LD_ERR_MISSING_PARAMETER, NULL, "%s", ld_err_default_message(LD_ERR_MISSING_PARAMETER));
        return;
    }
    if (audio && (!r->spool || ld_spool_size(r->spool) == 0)) {
        ld_req_fail(r, LD_ERR_INVALID_AUDIO, NULL, "Audio file is empty (0 bytes)");
        return;
    }
    static const char *const src[] = {"http://", "https://", "s3://", NULL}, *const cb[] = {"http://", "https://",
                                                                                            NULL};
    if (url && !has_scheme(r->opts.url, src)) {
        ld_req_fail(r, LD_ERR_INVALID_PARAMETER, NULL, "Invalid parameter 'url': use http://, https:// or s3://");
        return;
    }
    if (r->opts.callback_url[0] && !has_scheme(r->opts.callback_url, cb)) {
        ld_req_fail(r, LD_ERR_INVALID_PARAMETER, NULL, "Invalid parameter 'callback_url': use http:// or https://");
        return;
    }
    if (ld_opts_validate(&r->opts, r->srv->pool, &e))
        ld_req_fail(r, e.code, NULL, "%s", e.msg);
}

enum MHD_Result ld_listen_final(ld_req *r)
{
    ld_srv *s = r->srv;
    if (r->pp) {
        /* The last urlencoded field is only delivered here. */
        enum MHD_Result ok = MHD_destroy_post_processor(r->pp);
        r->pp = NULL;
        if (ok != MHD_YES)
            ld_req_fail(r, LD_ERR_INVALID_PARAMETER, NULL, "Malformed or truncated form body");
    }
    if (!r->pending)
        check(r);
    if (!r->pending && atomic_load(&s->stopping))
        ld_req_fail(r, LD_ERR_SERVICE_UNAVAILABLE, json_pack("{s:i}", "retry_after", 1),
                    "Server is shutting down; retry on another replica");
    /* An audio URL is fetched on the fetch threads (then decoded there too), so
     * waiting on a slow server never holds the upload decoders (work). */
    bool fetch = r->opts.url[0] && !r->opts.callback_url[0];
    ld_work *pool = fetch ? s->fetch : s->work;
    if (!r->pending && fetch && !(r->fetch_slot = ld_keycap_take(s->fetch_cap, r->key.key_id)))
        ld_req_fail(r, LD_ERR_RATE_LIMITED, json_pack("{s:i}", "retry_after", 5),
                    "Too many audio URLs of this key being fetched at once (limit %d); retry later",
                    ld_keycap_limit(s->fetch_cap));
    if (!r->pending && !ld_work_reserve(pool))
        ld_req_fail(r, LD_ERR_SERVICE_UNAVAILABLE, json_pack("{s:i}", "retry_after", LD_RETRY_AFTER_BUSY),
                    fetch ? "Server busy: too many audio URLs being fetched"
                          : "Server busy: too many transcriptions in progress");
    if (r->pending) {
        if (r->fetch_slot)
            ld_keycap_give(s->fetch_cap, r->key.key_id);
        r->fetch_slot = false;
        json_t *extra = r->pextra;
        r->pextra = NULL;
        return ld_respond_error(r->conn, &r->perr, r->request_id, extra);
    }
    ld_req_ref(r); /* the pipeline's reference */
    ld_req_suspend(r);
    ld_work_push(pool, ld_pipeline_run, r);
    return MHD_YES;
}
