#include "audio/s3.h"
#include "audio/audio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* SHA-256 of the empty body: every GET we sign. */
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static const char *env(const char *a, const char *b, const char *c)
{
    const char *names[] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        const char *v = names[i] ? getenv(names[i]) : NULL;
        if (v && *v)
            return v;
    }
    return NULL;
}

/* RFC 3986 percent-encoding as SigV4 wants it; '/' kept when keep_slash. */
static char *uri_encode(const char *s, bool keep_slash)
{
    char *out = malloc(strlen(s) * 3 + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
            *p == '_' || *p == '.' || *p == '~' || (keep_slash && *p == '/'))
            *o++ = (char)*p;
        else
            o += sprintf(o, "%%%02X", *p);
    }
    *o = '\0';
    return out;
}

static bool bucket_ok(const char *b, size_t n)
{
    if (n < 3 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((b[i] >= 'a' && b[i] <= 'z') || (b[i] >= '0' && b[i] <= '9') || b[i] == '-' || b[i] == '.' ||
              b[i] == '_' || (b[i] >= 'A' && b[i] <= 'Z')))
            return false;
    return true;
}

void ld_s3_free(ld_s3_request *r)
{
    free(r->url);
    curl_slist_free_all(r->headers);
    memset(r, 0, sizeof *r);
}

static int add_header(ld_s3_request *r, const char *name, const char *value)
{
    char line[2048];
    if (snprintf(line, sizeof line, "%s: %s", name, value) >= (int)sizeof line)
        return -1;
    struct curl_slist *l = curl_slist_append(r->headers, line);
    if (!l)
        return -1;
    r->headers = l;
    return 0;
}

/* Endpoint "http(s)://host[:port][/prefix]" -> scheme, host header, path prefix. */
static int split_endpoint(const char *ep, char *scheme, char *host, char *prefix, size_t n)
{
    CURLU *u = curl_url();
    char *sc = NULL, *h = NULL, *port = NULL, *path = NULL;
    int rc = -1;
    if (u && !curl_url_set(u, CURLUPART_URL, ep, 0) && !curl_url_get(u, CURLUPART_SCHEME, &sc, 0) &&
        !curl_url_get(u, CURLUPART_HOST, &h, 0) && (!strcmp(sc, "http") || !strcmp(sc, "https"))) {
        curl_url_get(u, CURLUPART_PORT, &port, 0); /* only when explicit, as curl's Host header */
        curl_url_get(u, CURLUPART_PATH, &path, 0);
        snprintf(scheme, n, "%s", sc);
        if (port)
            snprintf(host, n, "%s:%s", h, port);
        else
            snprintf(host, n, "%s", h);
        size_t pl = path ? strlen(path) : 0;
        while (pl && path[pl - 1] == '/')
            pl--;
        snprintf(prefix, n, "%.*s", (int)pl, path ? path : "");
        rc = 0;
    }
    curl_free(sc), curl_free(h), curl_free(port), curl_free(path);
    curl_url_cleanup(u);
    return rc;
}

ld_err ld_s3_prepare_at(const char *s3url, long long now, ld_s3_request *r, ld_error *err)
{
    const ld_err F = LD_ERR_URL_FETCH_FAILED;
    memset(r, 0, sizeof *r);
    const char *b = s3url + 5; /* after "s3://" */
    const char *slash = strchr(b, '/');
    if (!slash || !slash[1] || !bucket_ok(b, (size_t)(slash - b)))
        return ld_error_set(err, F, "Could not fetch audio from url: expected s3://bucket/key");
    char bucket[64];
    snprintf(bucket, sizeof bucket, "%.*s", (int)(slash - b), b);
    const char *key = slash + 1;
    const char *region = env("AWS_REGION", "AWS_DEFAULT_REGION", NULL);
    if (!region)
        region = "us-east-1";
    const char *endpoint = env("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_S3_ENDPOINT");

    char scheme[256] = "https", host[256], prefix[256] = "";
    char *ekey = uri_encode(key, true), *ebucket = uri_encode(bucket, false);
    char path[4096];
    ld_err e = LD_OK;
    if (!ekey || !ebucket) {
        e = ld_error_set(err, LD_ERR_INTERNAL, "Out of memory");
    } else if (endpoint) {
        r->custom_endpoint = true; /* MinIO-style: path-style addressing */
        if (split_endpoint(endpoint, scheme, host, prefix, sizeof host))
            e = ld_error_set(err, LD_ERR_INTERNAL, "AWS_ENDPOINT_URL is not a valid http(s) URL");
        snprintf(path, sizeof path, "%s/%s/%s", prefix, ebucket, ekey);
    } else if (!strchr(bucket, '.')) {
        snprintf(host, sizeof host, "%s.s3.%s.amazonaws.com", bucket, region);
        snprintf(path, sizeof path, "/%s", ekey);
    } else { /* dotted buckets break virtual-host TLS names: path style */
        snprintf(host, sizeof host, "s3.%s.amazonaws.com", region);
        snprintf(path, sizeof path, "/%s/%s", ebucket, ekey);
    }
    free(ekey);
    free(ebucket);
    if (e)
        return e;
    size_t ul = strlen(scheme) + strlen(host) + strlen(path) + 8;
    if (!(r->url = malloc(ul)))
        return ld_error_set(err, LD_ERR_INTERNAL, "Out of memory");
    snprintf(r->url, ul, "%s://%s%s", scheme, host, path);

    const char *ak = env("AWS_ACCESS_KEY_ID", NULL, NULL), *sk = env("AWS_SECRET_ACCESS_KEY", NULL, NULL);
    const char *token = env("AWS_SESSION_TOKEN", NULL, NULL);
    if (!ak || !sk) /* no credentials: anonymous GET, works for public objects */
        return LD_OK;
    char amz_date[17];
    time_t t = (time_t)now;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(amz_date, sizeof amz_date, "%Y%m%dT%H%M%SZ", &tm);
    ld_sigv4_header h[4] = {{"host", host},
                            {"x-amz-content-sha256", EMPTY_SHA256},
                            {"x-amz-date", amz_date},
                            {"x-amz-security-token", token}};
    size_t nh = token ? 4 : 3;
    char auth[1024];
    if (ld_audio_sigv4_authorization("GET", path, "", h, nh, EMPTY_SHA256, ak, sk, region, "s3", amz_date, auth,
                                     sizeof auth) ||
        add_header(r, "Host", host) || add_header(r, "x-amz-content-sha256", EMPTY_SHA256) ||
        add_header(r, "x-amz-date", amz_date) || (token && add_header(r, "x-amz-security-token", token)) ||
        add_header(r, "Authorization", auth)) {
        ld_s3_free(r);
        return ld_error_set(err, LD_ERR_INTERNAL, "Cannot sign the S3 request");
    }
    return LD_OK;
}

ld_err ld_s3_prepare(const char *s3url, ld_s3_request *r, ld_error *err)
{
    return ld_s3_prepare_at(s3url, (long long)time(NULL), r, err);
}
