/* libFuzzer entry: the URL text a client puts in `url` that we parse
 * ourselves before libcurl sees it — s3://bucket/key through the SigV4 request
 * builder (path encoding, canonical request, signing) — and numeric addresses
 * through the SSRF address policy. No network: s3 preparation only builds the
 * request. Any crash or sanitizer report is a bug, and so is a prepared URL or
 * header that carries a control character (header/request splitting). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audio/audio.h"
#include "audio/s3.h"

static void no_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
        setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
        setenv("AWS_SESSION_TOKEN", "fuzz-session", 1);
        setenv("AWS_REGION", "us-east-1", 1);
        unsetenv("AWS_ENDPOINT_URL_S3");
        unsetenv("AWS_ENDPOINT_URL");
        unsetenv("AWS_S3_ENDPOINT");
        init = 1;
    }
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;

    /* The s3 builder's contract: its caller matched "s3://" (any case). */
    char *u = malloc(size + 6);
    if (!u) {
        free(s);
        return 0;
    }
    if (strncasecmp(s, "s3://", 5))
        memcpy(u, "s3://", 5), memcpy(u + 5, s, size + 1);
    else
        memcpy(u, s, size + 1);
    ld_s3_request r = {0};
    ld_error err;
    if (ld_s3_prepare_at(u, 1700000000, &r, &err) == LD_OK) {
        if (!r.url || strncmp(r.url, "https://", 8))
            abort();
        no_ctl(r.url);
        for (struct curl_slist *h = r.headers; h; h = h->next)
            no_ctl(h->data);
    }
    ld_s3_free(&r);
    free(u);

    const char *why = ld_audio_ip_refusal(s);
    if (why && !*why)
        abort();
    free(s);
    return 0;
}
