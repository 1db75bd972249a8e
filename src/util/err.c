#include "util/err.h"

#include <stdio.h>
#include <string.h>

static const struct {
    int status;
    const char *code;
    const char *message;
} table[LD_ERR__COUNT] = {
    [LD_OK] = {200, "OK", "OK"},
    [LD_ERR_MISSING_PARAMETER] = {400, "MISSING_PARAMETER", "Missing required parameter: url or audio file"},
    [LD_ERR_INVALID_PARAMETER] = {400, "INVALID_PARAMETER", "Invalid parameter"},
    [LD_ERR_INVALID_AUDIO] = {400, "INVALID_AUDIO", "Audio file corrupted or invalid"},
    [LD_ERR_URL_FETCH_FAILED] = {400, "URL_FETCH_FAILED", "Could not fetch audio from url"},
    [LD_ERR_UNSUPPORTED_LANGUAGE] = {400, "UNSUPPORTED_LANGUAGE", "Unsupported language"},
    [LD_ERR_INVALID_LICENSE] = {401, "INVALID_LICENSE", "Invalid license key"},
    [LD_ERR_LICENSE_EXPIRED] = {403, "LICENSE_EXPIRED", "License expired"},
    [LD_ERR_QUOTA_EXCEEDED] = {403, "QUOTA_EXCEEDED", "Daily audio quota exceeded"},
    [LD_ERR_NOT_FOUND] = {404, "NOT_FOUND", "Not found"},
    [LD_ERR_METHOD_NOT_ALLOWED] = {405, "METHOD_NOT_ALLOWED", "Method not allowed"},
    [LD_ERR_REQUEST_TIMEOUT] = {408, "REQUEST_TIMEOUT", "Request timeout"},
    [LD_ERR_UNSUPPORTED_FORMAT] = {415, "UNSUPPORTED_FORMAT", "Unsupported audio format"},
    [LD_ERR_FILE_TOO_LARGE] = {422, "FILE_TOO_LARGE", "Audio file too large"},
    [LD_ERR_AUDIO_TOO_LONG] = {422, "AUDIO_TOO_LONG", "Audio too long"},
    [LD_ERR_RATE_LIMITED] = {429, "RATE_LIMIT_EXCEEDED", "Rate limit exceeded"},
    [LD_ERR_INTERNAL] = {500, "INTERNAL_ERROR", "Internal server error"},
    [LD_ERR_SERVICE_UNAVAILABLE] = {503, "SERVICE_UNAVAILABLE", "No ASR workers available"},
};

static int valid(ld_err e) { return (int)e >= 0 && e < LD_ERR__COUNT; }

int ld_err_status(ld_err e) { return valid(e) ? table[e].status : 500; }
const char *ld_err_code(ld_err e) { return valid(e) ? table[e].code : "INTERNAL_ERROR"; }
const char *ld_err_default_message(ld_err e) { return valid(e) ? table[e].message : "Internal server error"; }

ld_err ld_err_parse(const char *code)
{
    for (int e = LD_ERR_MISSING_PARAMETER; code && e < LD_ERR__COUNT; e++)
        if (!strcmp(table[e].code, code))
            return (ld_err)e;
    return LD_ERR_INTERNAL;
}

/* Length of the valid UTF-8 sequence at s, 0 when it is not one (RFC 3629:
 * no overlongs, no surrogates, nothing above U+10FFFF). */
static int utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    int n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    unsigned char lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80, hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
    if (!n || s[1] < lo || s[1] > hi)
        return 0;
    for (int i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

void ld_err_utf8_clean(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p;) {
        int n = utf8_len(p);
        if (n)
            p += n;
        else
            *p++ = '?';
    }
}

ld_err ld_error_vset(ld_error *err, ld_err e, const char *fmt, va_list ap)
{
    if (!err)
        return e;
    err->code = e;
    if (fmt)
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    else
        snprintf(err->msg, sizeof err->msg, "%s", ld_err_default_message(e));
    ld_err_utf8_clean(err->msg); /* client text in it, or a character cut at the end, would void the JSON */
    return e;
}

ld_err ld_error_set(ld_error *err, ld_err e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ld_error_vset(err, e, fmt, ap);
    va_end(ap);
    return e;
}

json_t *ld_error_json(const ld_error *err, const char *request_id, json_t *extra)
{
    json_t *o = json_object();
    json_object_set_new(o, "error", json_string(err->msg[0] ? err->msg : ld_err_default_message(err->code)));
    json_object_set_new(o, "code", json_string(ld_err_code(err->code)));
    if (request_id && *request_id)
        json_object_set_new(o, "request_id", json_string(request_id));
    if (extra) {
        const char *k;
        json_t *v;
        json_object_foreach(extra, k, v)
        {
            if (strcmp(k, "error") && strcmp(k, "code"))
                json_object_set(o, k, v);
        }
        json_decref(extra);
    }
    return o;
}
