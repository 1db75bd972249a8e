/* Internal to src/audio/: turns s3://bucket/key into a signed HTTPS request
 * using the AWS_* environment. Thread-safe (reads env, no shared state). */
#ifndef LD_AUDIO_S3_H
#define LD_AUDIO_S3_H

#include <curl/curl.h>
#include <stdbool.h>

#include "util/err.h"

typedef struct {
    char *url;                  /* https://… to GET */
    struct curl_slist *headers; /* Host, x-amz-*, Authorization */
    bool custom_endpoint;       /* AWS_ENDPOINT_URL* set by the operator */
} ld_s3_request;

/* `now` = unix seconds used for x-amz-date. */
ld_err ld_s3_prepare_at(const char *s3url, long long now, ld_s3_request *r, ld_error *err);
ld_err ld_s3_prepare(const char *s3url, ld_s3_request *r, ld_error *err);
void ld_s3_free(ld_s3_request *r);

#endif
