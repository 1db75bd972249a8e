/* The work-pool side of POST /v1/listen: fetch, decode, quota, hand to the
 * decoder pool; on its `done` callback render, count usage and resume the
 * connection. Also stores callback_url jobs. Runs on work-pool and decoder-pool
 * threads only. Each entry point owns one reference to the request. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/pipeline.h"

#include "asr/channels.h"
#include "audio/audio.h"
#include "server/compat_deepgram.h"
#include "server/compat_openai.h"
#include "server/srv.h"
#include "server/sse.h"
#include "server/webhooks.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/time.h"

/* Charges the key (0 for failed work) and drops the request's quota
 * reservation: the one place a request's usage is settled. */
static void charge(ld_req *r, double seconds)
{
    ld_error e = {0};
    if (ld_auth_quota_settle(r->srv->auth, &r->key, &r->hold, seconds, &e) != LD_OK)
        ld_log_fields(LD_LOG_WARNING, json_pack("{s:s}", "request_id", r->request_id), "Could not record usage: %s",
                      e.msg);
    else
        r->rate.quota_used += seconds; /* X-Quota-Remaining after this request */
}

/* Decode's probe hook: reserve the stated duration before decoding any of it. */
static ld_err reserve_probed(void *ud, double seconds, ld_error *e)
{
    ld_req *r = ud;
    return ld_auth_quota_reserve(r->srv->auth, &r->key, seconds, &r->hold, e);
}

/* After decoding: reserve now if the container stated no duration, else grow
 * the reservation when the audio was longer than stated. */
static ld_err reserve_decoded(ld_req *r, double seconds, ld_error *e)
{
    if (!r->hold.held)
        return ld_auth_quota_reserve(r->srv->auth, &r->key, seconds, &r->hold, e);
    if (seconds > r->hold.seconds)
        return ld_auth_quota_reserve(r->srv->auth, &r->key, seconds - r->hold.seconds, &r->hold, e);
    return LD_OK;
}

static void fail(ld_req *r, const ld_error *e)
{
    ld_srv *s = r->srv;
    charge(r, 0);
    json_t *extra = NULL;
    ld_error hint;
    if (e->code == LD_ERR_UNSUPPORTED_FORMAT && !r->opts.raw_pcm && strstr(e->msg, "not a recognised audio file")) {
        hint = *e; /* e.g. a PBX's raw mu-law sent without saying so */
        snprintf(hint.msg, sizeof hint.msg,
                 "%.160s (headerless audio needs encoding=linear16, linear32, mulaw or alaw)", e->msg);
        e = &hint;
    }
    switch (e->code) {
    case LD_ERR_UNSUPPORTED_FORMAT: {
        json_t *a = json_array();
        for (size_t i = 0; i < ld_audio_supported_formats_count; i++)
            json_array_append_new(a, json_string(ld_audio_supported_formats[i]));
        extra = json_pack("{s:o}", "supported_formats", a);
        break;
    }
    case LD_ERR_FILE_TOO_LARGE: extra = json_pack("{s:i}", "max_size_mb", s->cfg.max_body_mb); break;
    case LD_ERR_AUDIO_TOO_LONG: { /* a whole number of seconds as an integer (7200, as documented) */
        double m = s->cfg.max_audio_seconds;
        extra = json_pack("{s:o}", "max_duration_seconds",
                          m == (double)(json_int_t)m ? json_integer((json_int_t)m) : json_real(m));
        break;
    }
    case LD_ERR_SERVICE_UNAVAILABLE: extra = json_pack("{s:i}", "retry_after", LD_RETRY_AFTER_BUSY); break;
    case LD_ERR_RATE_LIMITED: extra = json_pack("{s:i}", "retry_after", LD_RETRY_AFTER_BUSY); break;
    case LD_ERR_INTERNAL:
        ld_log_fields(LD_LOG_ERROR, json_pack("{s:s}", "request_id", r->request_id), "Failed to process audio: %s",
                      e->msg);
        break;
    default: break;
    }
    ld_req_finish_error(r, e, extra);
}

/* With multichannel, out[] has LD_MAX_CHANNELS entries and *n gets how many
 * channels were decoded; otherwise out is one PCM (the downmix) and *n = 1. */
static ld_err raw_pcm(ld_req *r, const uint8_t *data, size_t len, ld_pcm *out, size_t *n, ld_error *e)
{
    int rate = ld_opts_raw_rate(&r->opts);
    int ch = ld_opts_raw_channels(&r->opts);
    double secs = (double)len / ld_opts_raw_width(&r->opts) / ch / rate, max = r->srv->cfg.max_audio_seconds;
    if (max > 0 && secs > max)
        return ld_error_set(e, LD_ERR_AUDIO_TOO_LONG, "Audio is longer than the maximum of %g seconds", max);
    ld_err rc = reserve_probed(r, secs * ch, e); /* each channel is charged */
    if (rc)
        return rc;
    *n = (size_t)ch;
    return ld_audio_decode_raw_channels(data, len, (ld_stream_encoding)r->opts.raw_encoding, rate, ch, out, e);
}

/* A file sent with a raw `encoding` (a client's fixed setting): its header says
 * what it is, and its bytes read as samples would be noise transcribed into
 * made-up words. */
static bool upload_is_file(ld_req *r, const uint8_t *data, size_t len)
{
    if (!ld_audio_container_magic(data, len))
        return false;
    ld_log_fields(LD_LOG_INFO, json_pack("{s:s}", "request_id", r->request_id),
                  "encoding ignored: the upload is an audio file, decoded by its header");
    return true;
}

static ld_err decode_path(ld_req *r, const char *path, const ld_decode_opts *d, ld_pcm *out, size_t *n, ld_error *e)
{
    *n = 1;
    if (r->opts.t.multichannel)
        return ld_audio_decode_file_channels(path, d, out, LD_MAX_CHANNELS, n, e);
    return ld_audio_decode_file(path, d, out, e);
}

/* The fetched file as raw samples, or as the file it is (upload_is_file). */
static ld_err decode_fd_raw(ld_req *r, int fd, const char *path, const ld_decode_opts *d, ld_pcm *out, size_t *n,
                            ld_error *e)
{
    struct stat st;
    if (fstat(fd, &st))
        return ld_error_set(e, LD_ERR_INTERNAL, "stat: %s", strerror(errno));
    if (st.st_size == 0)
        return ld_error_set(e, LD_ERR_INVALID_AUDIO, "Audio file is empty (0 bytes)");
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED)
        return ld_error_set(e, LD_ERR_INTERNAL, "mmap: %s", strerror(errno));
    bool file = upload_is_file(r, m, (size_t)st.st_size);
    ld_err rc = file ? LD_OK : raw_pcm(r, m, (size_t)st.st_size, out, n, e);
    munmap(m, (size_t)st.st_size);
    return file ? decode_path(r, path, d, out, n, e) : rc;
}

/* A fetch stops when its client hung up, or when the drain is over (so the
 * fetch threads can be joined without waiting out the fetch timeout). */
static bool client_gone(void *ud)
{
    ld_req *r = ud;
    return atomic_load(&r->client_gone) || atomic_load(&r->srv->stopping);
}

static void fetch_slot_give(ld_req *r)
{
    if (r->fetch_slot)
        ld_keycap_give(r->srv->fetch_cap, r->key.key_id);
    r->fetch_slot = false;
}

static ld_err fetch_decode(ld_req *r, const ld_decode_opts *d, ld_pcm *out, size_t *n, ld_error *e)
{
    ld_srv *s = r->srv;
    char path[1200];
    int fd = ld_fs_tempfile(s->tmp_dir, "url_", path, sizeof path);
    if (fd < 0)
        return ld_error_set(e, LD_ERR_INTERNAL, "Could not create a temp file in %s", s->tmp_dir);
    ld_fetch_opts fo = s->fetch_opts;
    fo.abort = client_gone;
    fo.abort_ud = r;
    size_t bytes = 0;
    ld_err rc = ld_audio_fetch(r->opts.url, &fo, fd, &bytes, e);
    fetch_slot_give(r); /* the network wait is over: the key may start another */
    if (rc != LD_OK)
        ld_log_fields(LD_LOG_INFO, json_pack("{s:s}", "request_id", r->request_id), "url fetch failed: %s", e->msg);
    if (rc == LD_OK) {
        r->file_bytes = bytes;
        rc = r->opts.raw_pcm ? decode_fd_raw(r, fd, path, d, out, n, e) : decode_path(r, path, d, out, n, e);
    }
    close(fd);
    unlink(path);
    return rc;
}

static ld_err decode(ld_req *r, ld_pcm *out, size_t *n, ld_error *e)
{
    ld_srv *s = r->srv;
    ld_decode_opts d = {.max_seconds = s->cfg.max_audio_seconds,
                        .tmp_dir = s->tmp_dir,
                        .on_probe = reserve_probed,
                        .probe_ud = r,
                        .abort = client_gone,
                        .abort_ud = r};
    *n = 1;
    if (r->opts.url[0])
        return fetch_decode(r, &d, out, n, e);
    size_t len;
    if (r->opts.raw_pcm) {
        const uint8_t *data = ld_spool_map(r->spool, &len);
        if (!data)
            return ld_error_set(e, LD_ERR_INTERNAL, "Could not read the upload back");
        if (!upload_is_file(r, data, len))
            return raw_pcm(r, data, len, out, n, e);
    }
    const uint8_t *mem = ld_spool_mem(r->spool, &len);
    if (mem)
        return r->opts.t.multichannel ? ld_audio_decode_mem_channels(mem, len, &d, out, LD_MAX_CHANNELS, n, e)
                                      : ld_audio_decode_mem(mem, len, &d, out, e);
    const char *path = ld_spool_path(r->spool);
    if (!path)
        return ld_error_set(e, LD_ERR_INTERNAL, "Could not read the upload back");
    return decode_path(r, path, &d, out, n, e);
}

/* listend's JSON body `j` (consumed) in the route's schema, serialised. */
static char *route_json(ld_req *r, json_t *j, const char **ctype)
{
    if (j && r->lightning)
        j = ld_webhooks_pulse_body(j, (long long)r->file_bytes);
    else if (j && r->openai)
        j = ld_openai_body(&r->opts, j);
    else if (j && r->deepgram)
        j = ld_dg_body(&r->dg, j);
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(j);
    *ctype = "application/json";
    return s;
}

static char *render(ld_req *r, const ld_transcript *t, size_t *len, const char **ctype)
{
    const ld_transcribe_opts *o = &r->opts.t;
    char *s = o->format != LD_FORMAT_JSON ? ld_transcript_render(t, o, ctype)
                                          : route_json(r, ld_transcript_json(t, o, r->request_id), ctype);
    *len = s ? strlen(s) : 0;
    return s;
}

/* The decoder pool's user data: the request and when its audio was queued
 * (for the real-time factor); with OpenAI's stream=true, the text sent so far. */
typedef struct {
    ld_req *r;
    double queued;
    ld_openai_delta *delta;
} asr_ctx;

static void on_segment(void *ud, const ld_word *words, size_t n)
{
    asr_ctx *ctx = ud;
    ld_sse_push(ctx->r->sse, ld_openai_delta_push(ctx->delta, words, n));
}

/* stream=true: the last events, then the body ends. */
static void stream_done(ld_req *r, ld_openai_delta *d, const ld_transcript *t, const ld_error *err)
{
    if (t) {
        json_t *j = ld_transcript_json(t, &r->opts.t, NULL);
        ld_sse_push(r->sse, ld_openai_delta_done(d, json_string_value(json_object_get(j, "text")), t->duration,
                                                 r->opts.diarized ? j : NULL));
        json_decref(j);
    } else {
        if (err->code == LD_ERR_INTERNAL)
            ld_log_fields(LD_LOG_ERROR, json_pack("{s:s}", "request_id", r->request_id),
                          "Failed to process audio: %s", err->msg);
        ld_sse_push(r->sse, ld_openai_sse_error(err));
    }
    ld_sse_end(r->sse);
}

/* ---- multichannel=true (issue 14): every channel is its own pool request,
 * so channels decode in parallel on the pool like the segments of one file;
 * the last one to finish answers with all of them (asr/channels.h). ---- */
typedef struct mc_ctx mc_ctx;

/* A channel's `done_ud`; lives as long as the request (the channels' owner
 * is the request: ld_pool_cancel(pool, r) finds them all). */
typedef struct {
    mc_ctx *m;
    size_t channel;
} mc_part;

struct mc_ctx {
    ld_req *r;
    double queued;
    pthread_mutex_t mu;
    size_t n, left;
    ld_transcript *t[LD_MAX_CHANNELS];
    mc_part parts[LD_MAX_CHANNELS];
    bool failed;
    ld_error err;
};

static char *render_channels(ld_req *r, ld_transcript *const *t, size_t n, size_t *len, const char **ctype)
{
    const ld_transcribe_opts *o = &r->opts.t;
    char *s = o->format != LD_FORMAT_JSON ? ld_channels_render(t, n, o, ctype)
                                          : route_json(r, ld_channels_json(t, n, o, r->request_id), ctype);
    *len = s ? strlen(s) : 0;
    return s;
}

/* A rendered transcript (body NULL: rendering failed) becomes the 200, and
 * only then is the audio charged and counted. */
static void answer(ld_req *r, char *body, size_t len, const char *ctype, double took)
{
    if (!body) {
        ld_error e = {0};
        ld_error_set(&e, LD_ERR_INTERNAL, "Could not render the transcript");
        fail(r, &e);
        return;
    }
    charge(r, r->audio_seconds);
    ld_metrics_audio("batch", r->key.key_id, r->audio_seconds);
    ld_metrics_rtf("batch", took, r->audio_seconds);
    ld_req_finish_body(r, MHD_HTTP_OK, body, len, ctype);
}

static void mc_finish(mc_ctx *m)
{
    ld_req *r = m->r;
    double took = ld_time_mono() - m->queued;
    ld_error e = m->err;
    if (!m->failed && atomic_load(&r->client_gone)) { /* as for one channel: not charged */
        m->failed = true;
        ld_error_set(&e, LD_ERR_SERVICE_UNAVAILABLE, "cancelled: the client went away");
    }
    if (!m->failed) {
        size_t len;
        const char *ctype;
        char *body = render_channels(r, m->t, m->n, &len, &ctype);
        answer(r, body, len, ctype, took);
    } else {
        fail(r, &e);
    }
    for (size_t c = 0; c < m->n; c++)
        ld_transcript_free(m->t[c]);
    pthread_mutex_destroy(&m->mu);
    free(m);
    ld_req_unref(r);
}

/* One channel's outcome (t NULL: failed or never submitted). */
static void mc_arrive(mc_ctx *m, size_t c, ld_transcript *t, const ld_error *err)
{
    pthread_mutex_lock(&m->mu);
    if (t && !(err && err->code != LD_OK)) {
        m->t[c] = t;
    } else {
        ld_transcript_free(t);
        if (!m->failed) {
            m->failed = true;
            if (err && err->code != LD_OK)
                m->err = *err;
            else
                ld_error_set(&m->err, LD_ERR_INTERNAL, "The speech engine returned no transcript");
        }
    }
    bool last = --m->left == 0;
    pthread_mutex_unlock(&m->mu);
    if (last)
        mc_finish(m);
}

static void mc_done(void *ud, ld_transcript *t, const ld_error *err)
{
    mc_part *p = ud;
    mc_arrive(p->m, p->channel, t, err);
}

/* Takes the request's reference and every pcm[0..n). */
static void run_channels(ld_req *r, ld_pcm *pcm, size_t n)
{
    ld_error e = {0};
    r->audio_seconds = ld_pcm_seconds(&pcm[0]) * (double)n; /* each channel is transcribed: counted per channel */
    if (r->opts.verbose)
        r->opts.t.timestamps = true;
    if (r->deepgram) { /* every channel's audio: two calls that differ in one channel hash apart */
        const void *parts[LD_MAX_CHANNELS];
        size_t lens[LD_MAX_CHANNELS], k = n < LD_MAX_CHANNELS ? n : LD_MAX_CHANNELS;
        for (size_t c = 0; c < k; c++)
            parts[c] = pcm[c].samples, lens[c] = pcm[c].n * sizeof *pcm[c].samples;
        ld_dg_sha256_pcm_hex(parts, lens, k, r->dg.sha256);
    }
    mc_ctx *m = calloc(1, sizeof *m);
    if (!m) {
        for (size_t c = 0; c < n; c++)
            ld_pcm_free(&pcm[c]);
        ld_error_set(&e, LD_ERR_INTERNAL, "Out of memory");
        fail(r, &e);
        ld_req_unref(r);
        return;
    }
    m->r = r;
    m->queued = ld_time_mono();
    m->n = m->left = n;
    pthread_mutex_init(&m->mu, NULL);
    ld_pool *pool = r->srv->pool;
    ld_transcribe_opts o = r->opts.t;
    /* After the last submit the request may be answered already: m is not
     * touched again here, r only through the reference taken for the check
     * at the end. Every channel is owned by r, so gone.c cancels them all. */
    ld_req_ref(r);
    for (size_t c = 0; c < n; c++) {
        m->parts[c] = (mc_part){m, c};
        ld_pool_callbacks cb = {.done = mc_done, .done_ud = &m->parts[c], .owner = r};
        if (ld_pool_submit(pool, &pcm[c], &o, &cb, &e) == LD_OK)
            continue;
        /* A full queue (503) refuses the whole request: the channels already
         * queued are cancelled rather than decoded for nothing. Channel c has
         * not arrived, so m outlives the cancels. */
        pthread_mutex_lock(&m->mu);
        if (!m->failed) {
            m->failed = true;
            m->err = e;
        }
        pthread_mutex_unlock(&m->mu);
        ld_pool_cancel(pool, r); /* channels 0..c-1 */
        for (size_t k = c; k < n; k++) {
            ld_pcm_free(&pcm[k]);
            mc_arrive(m, k, NULL, &e);
        }
        ld_req_unref(r);
        return;
    }
    /* The client may have hung up before the channels were in the pool, where
     * gone.c found nothing to cancel (as for one channel, below). */
    if (atomic_load(&r->client_gone))
        ld_pool_cancel(pool, r);
    ld_req_unref(r);
}

static void on_done(void *ud, ld_transcript *t, const ld_error *err)
{
    ld_req *r = ud; /* done_ud is the request, so gone.c can cancel by it */
    asr_ctx *ctx = r->asr_ctx;
    r->asr_ctx = NULL;
    double took = ld_time_mono() - ctx->queued;
    ld_openai_delta *delta = ctx->delta;
    free(ctx);
    ld_error e;
    if (delta) { /* the answer (200, text/event-stream) is being sent already */
        bool ok = t && !(err && err->code != LD_OK);
        /* Decided under r->mu against http.c's completion (another thread), which
         * zeroes the seconds of a client that left unless they were charged here. */
        pthread_mutex_lock(&r->mu);
        bool gone = atomic_load(&r->client_gone);
        r->sse_charged = ok && !gone;
        double secs = r->audio_seconds;
        pthread_mutex_unlock(&r->mu);
        if (ok && gone) { /* left before its end (http.c): not charged */
            ok = false;
            ld_error_set(&e, LD_ERR_SERVICE_UNAVAILABLE, "cancelled: the client went away");
        } else if (ok)
            e.code = LD_OK;
        else if (err && err->code != LD_OK)
            e = *err;
        else
            ld_error_set(&e, LD_ERR_INTERNAL, "The speech engine returned no transcript");
        stream_done(r, delta, ok ? t : NULL, &e);
        ld_openai_delta_free(delta);
        free(delta);
        if (ok) {
            charge(r, secs);
            ld_metrics_audio("batch", r->key.key_id, secs);
            ld_metrics_rtf("batch", took, secs);
        } else {
            charge(r, 0);
        }
    } else if (!t || (err && err->code != LD_OK)) {
        if (err && err->code != LD_OK)
            e = *err;
        else
            ld_error_set(&e, LD_ERR_INTERNAL, "The speech engine returned no transcript");
        fail(r, &e);
    } else {
        size_t len;
        const char *ctype;
        char *body = render(r, t, &len, &ctype);
        answer(r, body, len, ctype, took);
    }
    ld_transcript_free(t);
    ld_req_unref(r);
}

/* Headerless uploads become a WAV file, so a job can decode them later like any
 * other file. Returns 0 and fills path. */
static int wav_wrap(ld_req *r, char *path, size_t pathsz)
{
    size_t len;
    const uint8_t *data = ld_spool_map(r->spool, &len);
    if (!data || len > 0xFFFFFFF0u - 36)
        return -1;
    int fd = ld_fs_tempfile(r->srv->tmp_dir, "wav_", path, pathsz);
    if (fd < 0)
        return -1;
    uint32_t rate = (uint32_t)ld_opts_raw_rate(&r->opts), width = (uint32_t)ld_opts_raw_width(&r->opts);
    uint16_t channels = (uint16_t)ld_opts_raw_channels(&r->opts);
    uint32_t riff = (uint32_t)(36 + len), fmt_len = 16, byte_rate = rate * width * channels,
             data_len = (uint32_t)len;
    /* WAVE format tags: 1 PCM, 3 IEEE float, 6 A-law, 7 mu-law (FFmpeg: pcm_f32le, pcm_alaw, pcm_mulaw). */
    uint16_t pcm = r->opts.raw_encoding == LD_STREAM_MULAW      ? 7
                   : r->opts.raw_encoding == LD_STREAM_ALAW     ? 6
                   : r->opts.raw_encoding == LD_STREAM_LINEAR32 ? 3
                                                                : 1;
    uint16_t align = (uint16_t)(width * channels), bits = (uint16_t)(8 * width);
    uint8_t h[44];
    memcpy(h, "RIFF", 4), memcpy(h + 4, &riff, 4), memcpy(h + 8, "WAVEfmt ", 8);
    memcpy(h + 16, &fmt_len, 4), memcpy(h + 20, &pcm, 2), memcpy(h + 22, &channels, 2);
    memcpy(h + 24, &rate, 4), memcpy(h + 28, &byte_rate, 4), memcpy(h + 32, &align, 2), memcpy(h + 34, &bits, 2);
    memcpy(h + 36, "data", 4), memcpy(h + 40, &data_len, 4);
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(path);
        return -1;
    }
    bool ok = fwrite(h, 1, sizeof h, f) == sizeof h && fwrite(data, 1, len, f) == len;
    if (fclose(f) || !ok) {
        unlink(path);
        return -1;
    }
    return 0;
}

static void submit_job(ld_req *r)
{
    ld_srv *s = r->srv;
    ld_error e = {0};
    const char *url = r->opts.url[0] ? r->opts.url : NULL, *audio = NULL;
    char wav[1200] = "";
    if (!url) {
        size_t len;
        const uint8_t *data = r->opts.raw_pcm ? ld_spool_map(r->spool, &len) : NULL;
        if (data && !upload_is_file(r, data, len)) {
            if (wav_wrap(r, wav, sizeof wav) == 0)
                audio = wav;
        } else {
            audio = ld_spool_path(r->spool);
        }
        if (!audio) {
            ld_error_set(&e, LD_ERR_INTERNAL, "Could not store the upload for the job");
            fail(r, &e);
            return;
        }
    }
    json_t *accepted = NULL;
    json_t *hook = ld_webhooks_hook(r);
    ld_err rc = ld_jobs_submit(s->jobs, &r->key, r->request_id, url, audio, &r->opts.t, r->opts.callback_url, hook,
                               &accepted, &e);
    json_decref(hook);
    if (wav[0])
        unlink(wav); /* gone already when the job took it */
    ld_spool_free(r->spool);
    r->spool = NULL;
    if (rc != LD_OK) {
        json_decref(accepted);
        fail(r, &e);
        return;
    }
    char *body = json_dumps(accepted, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(accepted);
    if (!body) {
        ld_error_set(&e, LD_ERR_INTERNAL, "Out of memory");
        fail(r, &e);
        return;
    }
    ld_req_finish_body(r, MHD_HTTP_ACCEPTED, body, strlen(body), "application/json");
}

void ld_pipeline_run(void *arg)
{
    ld_req *r = arg;
    ld_srv *s = r->srv;
    ld_error e = {0};
    if (r->opts.callback_url[0]) {
        submit_job(r);
        ld_req_unref(r);
        return;
    }
    ld_pcm chans[LD_MAX_CHANNELS] = {0};
    size_t n_ch = 1;
    if (r->spool)
        r->file_bytes = ld_spool_size(r->spool);
    ld_err rc = atomic_load(&r->client_gone) /* hung up while queued: nothing to do */
                    ? ld_error_set(&e, LD_ERR_SERVICE_UNAVAILABLE, "cancelled: the client went away")
                    : decode(r, chans, &n_ch, &e);
    /* The upload is no longer needed: free its disk space before the answer. */
    ld_spool_free(r->spool);
    r->spool = NULL;
    double decoded = 0; /* what will be charged: every channel when multichannel */
    for (size_t c = 0; rc == LD_OK && c < n_ch; c++)
        decoded += ld_pcm_seconds(&chans[c]);
    if (rc != LD_OK || reserve_decoded(r, decoded, &e) != LD_OK) {
        for (size_t c = 0; c < LD_MAX_CHANNELS; c++)
            ld_pcm_free(&chans[c]);
        fail(r, &e);
        ld_req_unref(r);
        return;
    }
    if (r->opts.t.multichannel) {
        run_channels(r, chans, n_ch);
        return;
    }
    ld_pcm pcm = chans[0];
    r->audio_seconds = ld_pcm_seconds(&pcm);
    if (r->opts.verbose)
        r->opts.t.timestamps = true; /* verbose_json lists words */
    e = (ld_error){0};
    if (r->deepgram)
        ld_dg_sha256_hex(pcm.samples, pcm.n * sizeof *pcm.samples, r->dg.sha256);
    /* On success the reference (in ctx) travels to on_done. */
    asr_ctx *ctx = malloc(sizeof *ctx);
    if (ctx)
        *ctx = (asr_ctx){r, ld_time_mono(), NULL};
    ld_pool_callbacks cb = {.done = on_done, .done_ud = r};
    r->asr_ctx = ctx;
    bool stream = r->openai && r->opts.stream;
    if (ctx && stream) { /* segments are sent as they are decoded, in time order */
        ctx->delta = malloc(sizeof *ctx->delta);
        r->sse = ld_sse_new();
        if (ctx->delta)
            ld_openai_delta_init(ctx->delta, LD_RENDER_FLAGS(&r->opts.t));
        cb.segment = on_segment;
        cb.segment_ud = ctx;
    }
    if (!ctx || (stream && (!ctx->delta || !r->sse)))
        ld_error_set(&e, LD_ERR_INTERNAL, "Out of memory");
    else if (stream)
        ld_req_ref(r); /* on_done may run before the answer starts below */
    if (!e.code && atomic_load(&r->client_gone))
        ld_error_set(&e, LD_ERR_SERVICE_UNAVAILABLE, "cancelled: the client went away");
    ld_req_ref(r); /* ours, for the check after submitting */
    if (e.code || ld_pool_submit(s->pool, &pcm, &r->opts.t, &cb, &e) != LD_OK) {
        r->asr_ctx = NULL;
        ld_req_unref(r);
        if (ctx && ctx->delta && r->sse)
            ld_req_unref(r); /* the reference taken for the stream */
        if (ctx)
            free(ctx->delta);
        free(ctx);
        ld_sse_unref(r->sse);
        r->sse = NULL;
        ld_pcm_free(&pcm);
        fail(r, &e);
        ld_req_unref(r);
        return;
    }
    /* The client may have hung up between the check above and the submit,
     * while gone.c found nothing in the pool to cancel. */
    if (atomic_load(&r->client_gone))
        ld_pool_cancel(s->pool, r);
    ld_req_unref(r);
    if (stream) { /* the answer starts: 200 and the events (http.c, sse.h) */
        ld_req_finish_body(r, MHD_HTTP_OK, NULL, 0, "text/event-stream");
        ld_req_unref(r);
    }
}

void ld_pipeline_cancel(void *arg)
{
    ld_req *r = arg;
    ld_error e;
    fetch_slot_give(r);
    ld_error_set(&e, LD_ERR_SERVICE_UNAVAILABLE, "Server is shutting down; retry on another replica");
    ld_req_finish_error(r, &e, json_pack("{s:i}", "retry_after", 1));
    ld_req_unref(r);
}
