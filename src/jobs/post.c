/* The one signed JSON POST (or PUT) of both webhooks (job callbacks in jobs/deliver.c,
 * usage events in monitor/notify.c); see jobs/webhook.h. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audio/audio.h"
#include "jobs/webhook.h"
#include "util/time.h"

#define MAX_ANSWER_BYTES (64 * 1024) /* of the receiver's body: only its status counts */

/* Reads the answer's body away, up to MAX_ANSWER_BYTES: a receiver that answers
 * 2xx and then streams without end was read until the attempt timed out, and
 * the delivered webhook counted as failed and was sent again. */
static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    size_t *got = ud;
    *got += size * n;
    return *got > MAX_ANSWER_BYTES ? 0 : size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    ld_jobs_post *post = ud;
    size_t len = size * n;
    if (len > 12 && !strncasecmp(p, "Retry-After:", 12)) {
        long v = strtol(p + 12, NULL, 10);
        if (v > 0)
            post->retry_after_s = v;
    }
    return len;
}

static int on_xfer(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    const ld_jobs_post *post = ud;
    return post->stop && post->stop(post->stop_ud) ? 1 : 0; /* shutdown aborts an attempt */
}

long ld_jobs_post_signed(ld_jobs_post *p, char *error, size_t errsz)
{
    p->retry_after_s = 0;
    p->refused = false;
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(error, errsz, "out of memory");
        return 0;
    }
    char sig[LD_JOBS_SIGNATURE_MAX], hsig[LD_JOBS_SIGNATURE_MAX + 32], errbuf[CURL_ERROR_SIZE] = "";
    size_t len = strlen(p->body);
    ld_jobs_signature(p->secret, ld_time_now(), p->body, len, sig, sizeof sig);
    snprintf(hsig, sizeof hsig, "X-Listend-Signature: %s", sig);
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, hsig);
    for (const char *const *x = p->extra_headers; x && *x; x++)
        hdr = curl_slist_append(hdr, *x);
    hdr = curl_slist_append(hdr, "Expect:");
    /* The audio module's guard checks the address actually dialled (DNS
     * rebinding), limits protocols to http(s) and ignores proxy env vars. */
    ld_net_guard guard = {.allow_private = p->allow_private};
    curl_easy_setopt(h, CURLOPT_URL, p->url);
    ld_audio_curl_guard(h, &guard);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect is an answer (final), not followed */
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "listend/" LD_VERSION);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, p->body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    if (p->put) /* the same body, only the method changes */
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, p->timeout_ms < 5000 ? p->timeout_ms : 5000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, p->timeout_ms);
    size_t answer_bytes = 0;
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &answer_bytes);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, p);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_xfer);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, p);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && answer_bytes > MAX_ANSWER_BYTES)) /* the status was read */
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    else
        snprintf(error, errsz, "%s", *guard.refused ? guard.refused : *errbuf ? errbuf : curl_easy_strerror(rc));
    p->refused = *guard.refused != '\0';
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return status;
}
