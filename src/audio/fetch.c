/* URL fetch with libcurl: http(s) and s3:// (SigV4), size cap while
 * downloading, timeouts, at most N redirects, SSRF guard at connect time. */
#include "audio/audio.h"
#include "audio/s3.h"

#include <curl/curl.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_setup(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

typedef struct {
    int fd;
    size_t got, max;
    bool too_large, io_error, aborted;
    bool (*abort)(void *ud);
    void *abort_ud;
} sink_t;

/* libcurl's progress hook (about once a second, and on data): the caller's abort. */
static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    sink_t *s = ud;
    if (s->abort && s->abort(s->abort_ud)) {
        s->aborted = true;
        return 1;
    }
    return 0;
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    sink_t *s = ud;
    size_t n = size * nmemb;
    if (s->max && s->got + n > s->max) {
        s->too_large = true;
        return 0; /* aborts the transfer */
    }
    for (size_t off = 0; off < n;) {
        ssize_t w = write(s->fd, p + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            s->io_error = true;
            return 0;
        }
        off += (size_t)w;
    }
    s->got += n;
    return n;
}

/* Host of a URL for messages: never the path or query (presigned URLs carry secrets). */
static void url_host(const char *url, char *out, size_t n)
{
    snprintf(out, n, "the server");
    CURLU *u = curl_url();
    char *h = NULL;
    if (u && url && !curl_url_set(u, CURLUPART_URL, url, 0) && !curl_url_get(u, CURLUPART_HOST, &h, 0))
        snprintf(out, n, "%s", h);
    curl_free(h);
    curl_url_cleanup(u);
}

static bool scheme_is(const char *url, const char *scheme)
{
    size_t l = strlen(scheme);
    return !strncasecmp(url, scheme, l) && !strncmp(url + l, "://", 3);
}

static ld_err too_large(size_t max, ld_error *err)
{
    if (max >= 1024 * 1024)
        return ld_error_set(err, LD_ERR_FILE_TOO_LARGE, "Audio file too large (limit %.0f MB)",
                            (double)max / (1024.0 * 1024.0));
    return ld_error_set(err, LD_ERR_FILE_TOO_LARGE, "Audio file too large (limit %zu bytes)", max);
}

static ld_err explain(CURL *c, CURLcode rc, const sink_t *s, const ld_net_guard *g, const ld_fetch_opts *o,
                      const char *url, ld_error *err)
{
    char host[256];
    char *eff = NULL;
    curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &eff);
    url_host(eff ? eff : url, host, sizeof host);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    double t = 0;
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &t);
    const ld_err F = LD_ERR_URL_FETCH_FAILED;
    if (s->too_large || rc == CURLE_FILESIZE_EXCEEDED)
        return too_large(o->max_bytes, err);
    if (s->io_error)
        return ld_error_set(err, LD_ERR_INTERNAL, "Cannot store the downloaded audio");
    if (s->aborted)
        return ld_error_set(err, F, "Could not fetch audio from url: cancelled");
    switch (rc) {
    case CURLE_HTTP_RETURNED_ERROR:
        return ld_error_set(err, F, "Could not fetch audio from url: HTTP %ld from %s", status, host);
    case CURLE_COULDNT_CONNECT:
        if (g->refused[0])
            return ld_error_set(err, F, "Could not fetch audio from url: %s", g->refused);
        return ld_error_set(err, F, "Could not fetch audio from url: cannot connect to %s", host);
    case CURLE_OPERATION_TIMEDOUT: {
        /* One curl code for three limits: say which one ended it. */
        double conn = 0;
        curl_easy_getinfo(c, CURLINFO_CONNECT_TIME, &conn);
        if (conn <= 0)
            return ld_error_set(err, F, "Could not fetch audio from url: cannot connect to %s within %.0f s", host,
                                (double)o->connect_timeout_ms / 1000.0);
        if (o->low_speed_bytes > 0 && t * 1000.0 < (double)o->total_timeout_ms - 500.0)
            return ld_error_set(err, F,
                                "Could not fetch audio from url: %s sent less than %ld bytes/s for %ld s "
                                "(timed out after %.0f s)",
                                host, o->low_speed_bytes, o->low_speed_time_s, t < 1 ? 1 : t);
        return ld_error_set(err, F, "Could not fetch audio from url: timed out after %.0f s (limit %.0f s)",
                            t < 1 ? 1 : t, (double)o->total_timeout_ms / 1000.0);
    }
    case CURLE_TOO_MANY_REDIRECTS:
        return ld_error_set(err, F, "Could not fetch audio from url: too many redirects (limit %ld)",
                            o->max_redirects > 0 ? (long)o->max_redirects : 0L);
    case CURLE_COULDNT_RESOLVE_HOST:
        return ld_error_set(err, F, "Could not fetch audio from url: cannot resolve host %s", host);
    case CURLE_UNSUPPORTED_PROTOCOL:
        return ld_error_set(err, F, "Could not fetch audio from url: only http, https and s3 URLs are allowed");
    case CURLE_URL_MALFORMAT: return ld_error_set(err, F, "Could not fetch audio from url: malformed URL");
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
        return ld_error_set(err, F, "Could not fetch audio from url: TLS failure with %s (%s)", host,
                            curl_easy_strerror(rc));
    default:
        if (status >= 300 && status < 400)
            return ld_error_set(err, F, "Could not fetch audio from url: HTTP %ld redirect from %s not followed",
                                status, host);
        return ld_error_set(err, F, "Could not fetch audio from url: %s (%s)", curl_easy_strerror(rc), host);
    }
}

ld_err ld_audio_fetch(const char *url, const ld_fetch_opts *opts, int fd, size_t *bytes, ld_error *err)
{
    pthread_once(&curl_once, curl_setup);
    ld_fetch_opts o = opts ? *opts : (ld_fetch_opts){0};
    if (!o.connect_timeout_ms)
        o.connect_timeout_ms = 10000;
    if (!o.total_timeout_ms)
        o.total_timeout_ms = 300000;
    if (!o.max_redirects)
        o.max_redirects = 5;
    if (!o.low_speed_bytes)
        o.low_speed_bytes = 1024;
    if (!o.low_speed_time_s)
        o.low_speed_time_s = 30;
    if (o.low_speed_bytes < 0 || o.low_speed_time_s < 0)
        o.low_speed_bytes = o.low_speed_time_s = 0;
    if (bytes)
        *bytes = 0;
    if (!url || !*url)
        return ld_error_set(err, LD_ERR_URL_FETCH_FAILED, "Could not fetch audio from url: empty URL");

    ld_s3_request s3 = {0};
    const char *target = url;
    bool is_s3 = scheme_is(url, "s3");
    if (is_s3) {
        ld_err e = ld_s3_prepare(url, &s3, err);
        if (e)
            return e;
        target = s3.url;
    } else if (!scheme_is(url, "http") && !scheme_is(url, "https")) {
        return ld_error_set(err, LD_ERR_URL_FETCH_FAILED,
                            "Could not fetch audio from url: only http, https and s3 URLs are allowed");
    }

    CURL *c = curl_easy_init();
    if (!c) {
        ld_s3_free(&s3);
        return ld_error_set(err, LD_ERR_INTERNAL, "Out of memory");
    }
    /* An operator-configured S3 endpoint (MinIO on the LAN) is trusted; client URLs are not. */
    ld_net_guard g = {.allow_private = o.allow_private || (is_s3 && s3.custom_endpoint)};
    ld_audio_curl_guard(c, &g);
    sink_t s = {.fd = fd, .max = o.max_bytes, .abort = o.abort, .abort_ud = o.abort_ud};
    curl_easy_setopt(c, CURLOPT_URL, target);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    /* Signed S3 requests never follow redirects (the signature is for one host). */
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, is_s3 || o.max_redirects < 0 ? 0L : 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)(o.max_redirects < 0 ? 0 : o.max_redirects));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, o.connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o.total_timeout_ms);
    if (o.low_speed_bytes > 0) {
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, o.low_speed_bytes);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, o.low_speed_time_s);
    }
    if (o.abort) {
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, &s);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    }
    curl_easy_setopt(c, CURLOPT_USERAGENT, "listend/" LD_VERSION);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    if (o.max_bytes)
        curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o.max_bytes);
    if (is_s3) {
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, s3.headers);
        curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L); /* the signed path must go out unchanged */
    }

    CURLcode rc = curl_easy_perform(c);
    ld_err e = LD_OK;
    if (rc != CURLE_OK) {
        e = explain(c, rc, &s, &g, &o, target, err);
    } else if (bytes) {
        *bytes = s.got;
    }
    curl_easy_cleanup(c);
    ld_s3_free(&s3);
    return e;
}

ld_err ld_audio_check_url(const char *url, bool allow_private, ld_error *err)
{
    const ld_err P = LD_ERR_INVALID_PARAMETER;
    if (url && scheme_is(url, "s3")) {
        /* Goes to AWS or the operator's endpoint, never to a client-chosen host. */
        ld_s3_request r;
        ld_err e = ld_s3_prepare_at(url, 0, &r, err);
        ld_s3_free(&r);
        return e ? ld_error_set(err, P, "URL must look like s3://bucket/key") : LD_OK;
    }
    if (!url || !(scheme_is(url, "http") || scheme_is(url, "https")))
        return ld_error_set(err, P, "URL must start with http:// or https://");
    CURLU *u = curl_url();
    char *host = NULL;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) || curl_url_get(u, CURLUPART_HOST, &host, 0) || !*host) {
        curl_free(host);
        curl_url_cleanup(u);
        return ld_error_set(err, P, "Malformed URL");
    }
    curl_url_cleanup(u);
    if (allow_private) {
        curl_free(host);
        return LD_OK;
    }
    char name[256];
    size_t hl = strlen(host);
    if (host[0] == '[' && hl > 2) /* IPv6 literal: strip brackets and any zone id */
        snprintf(name, sizeof name, "%.*s", (int)strcspn(host + 1, "]%"), host + 1);
    else
        snprintf(name, sizeof name, "%s", host);
    curl_free(host);

    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int r = getaddrinfo(name, NULL, &hints, &res);
    if (r)
        return ld_error_set(err, P, "URL host %s cannot be resolved", name);
    ld_err e = LD_OK;
    for (struct addrinfo *a = res; a && !e; a = a->ai_next) {
        const char *why = ld_audio_addr_refusal(a->ai_addr);
        if (why)
            e = ld_error_set(err, P, "URL refused: %s is a %s address", name, why);
    }
    freeaddrinfo(res);
    return e;
}
