/* `listend transcribe --server URL`: POST /v1/listen per input, output laid
 * out exactly like local mode (transcribe.c). The upload is streamed from the file by
 * libcurl's mime API, so a 100 MB file never sits in memory; only the answer
 * (a transcript, small) is buffered. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "asr/redact.h"
#include "audio/audio.h"
#include "cli/cli.h"
#include "cli/transcribe_internal.h"

#define MAX_ANSWER ((size_t)64 << 20) /* far above any transcript body */
#define MAX_RETRIES 3                 /* 429/503 with Retry-After */
#define MAX_RETRY_WAIT 30             /* seconds: longer waits are the user's call */

typedef struct {
    char *data;
    size_t len, cap;
} answer;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    answer *a = ud;
    size_t add = size * n;
    if (a->len + add + 1 > MAX_ANSWER)
        return 0; /* aborts the transfer */
    if (a->len + add + 1 > a->cap) {
        size_t cap = a->cap ? a->cap : 4096;
        while (cap < a->len + add + 1)
            cap *= 2;
        char *d = realloc(a->data, cap);
        if (!d)
            return 0;
        a->data = d;
        a->cap = cap;
    }
    memcpy(a->data + a->len, p, add);
    a->len += add;
    a->data[a->len] = 0;
    return add;
}

static bool is_url(const char *s)
{
    return !strncasecmp(s, "http://", 7) || !strncasecmp(s, "https://", 8) || !strncasecmp(s, "s3://", 5);
}

/* "http://h:7100[/]" -> "http://h:7100/v1/listen"; a path is a prefix (a server
 * behind a proxy: "https://h/stt" -> "https://h/stt/v1/listen", as `listend
 * stream` does), unless it already ends in /v1/listen. */
static char *endpoint(const char *server)
{
    size_t n = strlen(server);
    while (n && server[n - 1] == '/')
        n--;
    static const char tail[] = "/v1/listen";
    bool named = n >= sizeof tail - 1 && !strncmp(server + n - (sizeof tail - 1), tail, sizeof tail - 1);
    char *u = malloc(n + sizeof tail);
    if (u)
        snprintf(u, n + sizeof tail, "%.*s%s", (int)n, server, named ? "" : tail);
    return u;
}

static void add_field(curl_mime *m, const char *name, const char *value)
{
    curl_mimepart *p = curl_mime_addpart(m);
    curl_mime_name(p, name);
    curl_mime_data(p, value, CURL_ZERO_TERMINATED);
}

/* The request body for one input: a streamed multipart upload or a JSON url. */
static curl_mime *multipart(CURL *c, const char *path, const ld_transcribe_opts *o)
{
    curl_mime *m = curl_mime_init(c);
    curl_mimepart *p = curl_mime_addpart(m);
    curl_mime_name(p, "audio");
    if (curl_mime_filedata(p, path) != CURLE_OK) {
        curl_mime_free(m);
        return NULL;
    }
    add_field(m, "language", o->language);
    add_field(m, "punctuate", o->punctuate ? "true" : "false");
    add_field(m, "timestamps", o->timestamps ? "true" : "false");
    add_field(m, "format", ld_format_name(o->format));
    if (o->model[0])
        add_field(m, "model", o->model);
    if (o->multichannel)
        add_field(m, "multichannel", "true");
    if (o->numerals)
        add_field(m, "numerals", "true");
    if (o->profanity_filter)
        add_field(m, "profanity_filter", "true");
    char red[32];
    ld_redact_list(o->redact, red);
    if (*red)
        add_field(m, "redact", red);
    if (o->diarize) {
        add_field(m, "diarize", "true");
        char n[16];
        snprintf(n, sizeof n, "%d", o->num_speakers);
        if (o->num_speakers > 0)
            add_field(m, "num_speakers", n);
    }
    char kw[LD_VOCAB_MAX_WORD_LEN + 8]; /* one field per keyword (the option repeats) */
    for (const char *k = o->keywords; *k;) {
        size_t n = strcspn(k, " ");
        snprintf(kw, sizeof kw, "%.*s", (int)(n < sizeof kw ? n : sizeof kw - 1), k);
        add_field(m, "keywords", kw);
        k += n + (k[n] == ' ');
    }
    ld_stream_encoding enc;
    int hz;
    if (ld_audio_raw_by_name(path, &enc, &hz)) { /* local mode's convention */
        add_field(m, "encoding", ld_audio_stream_encoding_name(enc));
        char rate[16];
        snprintf(rate, sizeof rate, "%d", hz);
        add_field(m, "sample_rate", rate);
    }
    return m;
}

static char *json_request(const char *url, const ld_transcribe_opts *o)
{
    json_t *j = json_pack("{s:s, s:s, s:b, s:b, s:s}", "url", url, "language", o->language, "punctuate",
                          o->punctuate, "timestamps", o->timestamps, "format", ld_format_name(o->format));
    if (j && o->model[0])
        json_object_set_new(j, "model", json_string(o->model));
    if (j && o->multichannel)
        json_object_set_new(j, "multichannel", json_true());
    if (j && o->diarize)
        json_object_set_new(j, "diarize", json_true());
    if (j && o->numerals)
        json_object_set_new(j, "numerals", json_true());
    if (j && o->profanity_filter)
        json_object_set_new(j, "profanity_filter", json_true());
    char red[32];
    ld_redact_list(o->redact, red);
    if (j && *red)
        json_object_set_new(j, "redact", json_string(red));
    if (j && o->diarize && o->num_speakers > 0)
        json_object_set_new(j, "num_speakers", json_integer(o->num_speakers));
    char path[2048]; /* a headerless name, as for files: s3://…/call.ul, https://…/call.raw?sig=… */
    snprintf(path, sizeof path, "%.*s", (int)strcspn(url, "?#"), url);
    ld_stream_encoding enc;
    int hz;
    if (j && ld_audio_raw_by_name(path, &enc, &hz)) {
        json_object_set_new(j, "encoding", json_string(ld_audio_stream_encoding_name(enc)));
        json_object_set_new(j, "sample_rate", json_integer(hz));
    }
    if (j && o->keywords[0]) { /* a JSON array, one "word:boost" each */
        json_t *a = json_array();
        char kw[LD_VOCAB_MAX_WORD_LEN + 8];
        for (const char *k = o->keywords; *k;) {
            size_t n = strcspn(k, " ");
            snprintf(kw, sizeof kw, "%.*s", (int)(n < sizeof kw ? n : sizeof kw - 1), k);
            json_array_append_new(a, json_string(kw));
            k += n + (k[n] == ' ');
        }
        json_object_set_new(j, "keywords", a);
    }
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

/* Prints "listend: [INPUT: ]STATUS CODE: message" for an error answer. Returns
 * true when the key itself was refused (no point trying more inputs). */
static bool report_error(const char *label, long status, const answer *a)
{
    json_error_t je;
    json_t *j = a->data ? json_loads(a->data, 0, &je) : NULL;
    const char *code = json_string_value(json_object_get(j, "code"));
    const char *msg = json_string_value(json_object_get(j, "error"));
    if (code && msg) {
        fprintf(stderr, "listend: %s%s%ld %s: %s\n", label ? label : "", label ? ": " : "", status, code, msg);
    } else { /* not our envelope (a proxy's page?): its first line */
        const char *body = a->data ? a->data : "";
        int line = (int)strcspn(body, "\r\n");
        fprintf(stderr, "listend: %s%sHTTP %ld%s%.*s\n", label ? label : "", label ? ": " : "", status,
                line ? ": " : "", line > 200 ? 200 : line, body);
    }
    json_decref(j);
    return status == 401 || status == 403;
}

/* Prints one successful answer like local mode: pretty JSON for one input,
 * JSON Lines with "file" for several; text/srt/vtt as the server sent them,
 * under "==> INPUT <==" headers when there are several. */
static bool print_answer(const answer *a, const ld_transcribe_opts *o, const char *input, int index, int n)
{
    if (o->format != LD_FORMAT_JSON) {
        if (n > 1)
            printf("%s==> %s <==\n", index ? "\n" : "", input);
        fwrite(a->data ? a->data : "", 1, a->len, stdout);
        fflush(stdout);
        return true;
    }
    json_error_t je;
    json_t *j = a->data ? json_loads(a->data, 0, &je) : NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        fprintf(stderr, "listend: %s: the server's answer is not a JSON object\n", input);
        return false;
    }
    if (n > 1)
        json_object_set_new(j, "file", json_string(input));
    char *s = json_dumps(j,
                         JSON_REAL_PRECISION(10) | JSON_PRESERVE_ORDER | (n > 1 ? JSON_COMPACT : JSON_INDENT(2)));
    json_decref(j);
    if (!s)
        return false;
    printf("%s\n", s);
    fflush(stdout);
    free(s);
    return true;
}

typedef enum { SENT_OK, SENT_FAILED, SENT_FATAL } sent;

static sent send_one(CURL *c, const char *url, const ld_transcribe_client_cfg *cfg, const ld_transcribe_opts *o,
                     const char *input, const char *label, answer *a)
{
    bool remote = is_url(input);
    struct stat st;
    bool dir = !remote && !stat(input, &st) && S_ISDIR(st.st_mode); /* it was uploaded as an empty body */
    if (!remote && (dir || access(input, R_OK) != 0)) {
        fprintf(stderr, "listend: %s: cannot read '%s'%s\n", input, input, dir ? ": it is a directory" : "");
        return SENT_FAILED;
    }
    char auth[600];
    snprintf(auth, sizeof auth, "Authorization: Token %s", cfg->key);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
    char *json = NULL;
    curl_mime *mime = NULL;
    if (remote) {
        json = json_request(input, o);
        h = curl_slist_append(h, "Content-Type: application/json");
    } else {
        mime = multipart(c, input, o);
    }
    if (remote ? !json : !mime) {
        fprintf(stderr, "listend: %s: cannot prepare the request\n", input);
        curl_slist_free_all(h);
        free(json);
        return SENT_FAILED;
    }
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "listend-transcribe");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (cfg->cacert)
        curl_easy_setopt(c, CURLOPT_CAINFO, cfg->cacert);
    if (cfg->insecure) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (remote)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    else
        curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);

    sent result = SENT_FAILED;
    for (int attempt = 0;; attempt++) {
        a->len = 0;
        if (a->data)
            a->data[0] = 0;
        CURLcode rc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (rc != CURLE_OK) {
            fprintf(stderr, "listend: %s%scannot reach %s: %s%s\n", label ? label : "", label ? ": " : "", url,
                    curl_easy_strerror(rc),
                    rc == CURLE_PEER_FAILED_VERIFICATION
                        ? " (--cacert FILE trusts your own CA; --insecure skips verification)"
                        : "");
            break;
        }
        curl_off_t wait = -1;
        curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &wait);
        if ((status == 503 || status == 429) && wait > 0 && wait <= MAX_RETRY_WAIT && attempt < MAX_RETRIES) {
            fprintf(stderr, "listend: %s%sserver busy (%ld), retrying in %ld s\n", label ? label : "",
                    label ? ": " : "", status, (long)wait);
            sleep((unsigned)wait);
            continue;
        }
        if (cfg->verbose) {
            curl_off_t up = 0, total = 0;
            curl_easy_getinfo(c, CURLINFO_SIZE_UPLOAD_T, &up);
            curl_easy_getinfo(c, CURLINFO_TOTAL_TIME_T, &total);
            struct curl_header *rid = NULL;
            curl_easy_header(c, "X-Request-ID", 0, CURLH_HEADER, -1, &rid);
            fprintf(stderr, "listend: %s: HTTP %ld, %ld bytes sent, %.3f s, request %s\n", input, status, (long)up,
                    (double)total / 1e6, rid ? rid->value : "-");
        }
        if (status == 200)
            result = SENT_OK;
        else
            result = report_error(label, status, a) ? SENT_FATAL : SENT_FAILED;
        break;
    }
    curl_mime_free(mime);
    curl_slist_free_all(h);
    free(json);
    return result;
}

int ld_transcribe_client_main(const ld_transcribe_client_cfg *cfg, const ld_transcribe_opts *o, char **inputs,
                              int n)
{
    if (cfg->cacert && ld_cli_cacert_check("transcribe", cfg->cacert) < 0)
        return 1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "listend: cannot initialise libcurl\n");
        return 1;
    }
    char *url = endpoint(cfg->server);
    CURL *c = url ? curl_easy_init() : NULL;
    if (!c) {
        fprintf(stderr, "listend: out of memory\n");
        free(url);
        curl_global_cleanup();
        return 1;
    }
    int failed = 0;
    answer a = {0};
    for (int i = 0; i < n; i++) {
        sent s = send_one(c, url, cfg, o, inputs[i], n > 1 ? inputs[i] : NULL, &a);
        if (s != SENT_OK || !print_answer(&a, o, inputs[i], i, n))
            failed++;
        if (s == SENT_FATAL)
            break;
    }
    free(a.data);
    curl_easy_cleanup(c);
    free(url);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
